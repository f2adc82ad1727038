/*
 * plugin_build.c — turning a registration (from a factory or the host)
 * into a registered plugin: every check a hostile plugin could fail, the
 * hooks the operator listed, payload types; and initializing it.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "util/text.h"

/* Unique per registration in the process: keys context-table local state. */
static _Atomic uint64_t next_plugin_id = 1;

static const char *pending_binding(const cpex__binding_list *b, const char *hook)
{
    for (size_t i = 0; b && i < b->count; i++)
        if (strcmp(b->items[i].hook, hook) == 0)
            return b->items[i].type;
    return NULL;
}

/* The size of a 1.0 registration: anything smaller cannot be read safely. */
static bool hook_listed(const cpex__plugin_setup *s, const char *hook)
{
    for (size_t i = 0; i < s->hook_count; i++)
        if (strcmp(s->hooks[i], hook) == 0)
            return true;
    return false;
}

/* A "[a, b]" list of the registration's hooks for messages. */
void cpex__mgr_list_hooks(const cpex_plugin_registration *reg, char *buf, size_t cap)
{
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, cap - pos, "[");
    for (size_t i = 0; i < reg->handler_count && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "",
                                reg->handlers[i].hook ? reg->handlers[i].hook : "(null)");
    if (pos < cap)
        snprintf(buf + pos, cap - pos, "]");
}

/*
 * Check a registration and wire it. On success *out holds a new plugin
 * (one reference) that owns the registration's instance. On failure the
 * caller still owns the instance and the release.
 */
cpex_status cpex__registration_check(const cpex_plugin_registration *reg, const char *from,
                                    const cpex__where *where, cpex_error *err)
{
    if (!reg || reg->struct_size < CPEX_REGISTRATION_SIZE_1_0)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                              "registration from %s is too small (%u bytes; ABI 1.0 needs at "
                              "least %zu); the plugin was built against a broken SDK — rebuild "
                              "it with cpex/plugin.h",
                              from, reg ? reg->struct_size : 0, CPEX_REGISTRATION_SIZE_1_0);
    if (reg->handler_count == 0 || !reg->handlers)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                              "plugin from %s registered no handlers; a plugin must register at "
                              "least one (hook, handler) pair",
                              from);
    if (reg->handler_count > CPEX__MAX_HANDLERS)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                              "plugin from %s registered %zu handlers; more than %u is not "
                              "plausible — the registration is corrupt",
                              from, reg->handler_count, CPEX__MAX_HANDLERS);
    cpex_status st = CPEX_OK;
    for (size_t i = 0; i < reg->handler_count; i++) {
        const cpex_handler_reg *h = &reg->handlers[i];
        if (!h->hook || !*h->hook) {
            st = cpex__error_add(err, CPEX_E_LOAD, where,
                                "handler #%zu from %s has no hook name", i, from);
            continue;
        }
        if (!h->fn)
            st = cpex__error_add(err, CPEX_E_LOAD, where,
                                "handler for hook '%s' from %s has no function (NULL)", h->hook,
                                from);
        for (size_t j = 0; j < i; j++)
            if (reg->handlers[j].hook && strcmp(reg->handlers[j].hook, h->hook) == 0) {
                st = cpex__error_add(err, CPEX_E_LOAD, where,
                                    "plugin from %s registered two handlers for hook '%s'; "
                                    "register one handler per hook",
                                    from, h->hook);
                break;
            }
    }
    return st;
}

cpex_status cpex__mgr_build_plugin(cpex_manager *m, const cpex__plugin_setup *s,
                                const cpex_plugin_registration *reg, cpex__binding_list *bindings,
                                const cpex__where *where, cpex__plugin **out, cpex_error *err)
{
    *out = NULL;
    const char *from = s->origin ? s->origin : "the host";
    cpex_status st = cpex__registration_check(reg, from, where, err);
    if (st != CPEX_OK)
        return st;

    /* Which handlers are wired: those whose hook the operator listed. */
    size_t wired = 0;
    for (size_t i = 0; i < reg->handler_count; i++)
        if (!s->hooks || hook_listed(s, reg->handlers[i].hook))
            wired++;
    for (size_t i = 0; s->hooks && i < s->hook_count; i++) {
        bool served = false;
        for (size_t k = 0; k < reg->handler_count; k++)
            served = served || strcmp(reg->handlers[k].hook, s->hooks[i]) == 0;
        if (!served) {
            char list[512];
            cpex__mgr_list_hooks(reg, list, sizeof list);
            st = cpex__error_add(err, CPEX_E_CONFIG, where,
                                "hook '%s' is listed under hooks: but the plugin registers no "
                                "handler for it; it serves %s",
                                s->hooks[i], list);
        }
    }
    if (st != CPEX_OK)
        return st;

    /* Payload types: declared ones must exist and agree with their hooks. */
    for (size_t i = 0; i < reg->handler_count; i++) {
        const cpex_handler_reg *h = &reg->handlers[i];
        if (!h->payload_type || (s->hooks && !hook_listed(s, h->hook)))
            continue;
        if (!cpex__mgr_type_known(m, h->payload_type)) {
            st = cpex__error_add(err, CPEX_E_TYPE, where,
                                "handler for hook '%s' expects payload type '%s', which is not "
                                "registered with this manager",
                                h->hook, h->payload_type);
            continue;
        }
        const char *bound = cpex__mgr_binding_of(m, h->hook);
        if (!bound)
            bound = pending_binding(bindings, h->hook);
        if (bound && strcmp(bound, h->payload_type) != 0) {
            st = cpex__error_add(err, CPEX_E_TYPE, where,
                                "handler for hook '%s' expects payload type '%s' but the hook "
                                "carries '%s'",
                                h->hook, h->payload_type, bound);
        } else if (!bound && bindings) {
            if (bindings->count == sizeof bindings->items / sizeof *bindings->items) {
                st = cpex__error_add(err, CPEX_E_CONFIG, where,
                                    "too many new hooks in one change");
                continue;
            }
            bindings->items[bindings->count].hook = (char *)h->hook;
            bindings->items[bindings->count].type = (char *)h->payload_type;
            bindings->count++;
        }
    }
    if (st != CPEX_OK)
        return st;

    cpex__plugin *p = cpex__calloc(1, sizeof *p);
    if (!p)
        return cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
    atomic_init(&p->refs, 1);
    atomic_init(&p->state, CPEX_PLUGIN_CREATED);
    atomic_init(&p->disabled, 0);
    pthread_mutex_init(&p->lock, NULL);
    p->manager = m;
    p->id = atomic_fetch_add(&next_plugin_id, 1);
    p->name = cpex__strdup(s->name);
    p->name_len = p->name ? strlen(p->name) : 0;
    p->kind = s->kind ? cpex__strdup(s->kind) : NULL;
    p->description = s->description ? cpex__strdup(s->description) : NULL;
    p->mode = s->mode;
    p->priority = s->priority;
    p->on_error = s->on_error;
    p->timeout = s->timeout;
    p->timeout_ns = cpex__seconds_to_ns(s->timeout);
    p->caps = s->caps;
    p->capabilities = cpex__strv_copy(s->capabilities, s->capability_count);
    p->config = s->config ? json_deep_copy(s->config) : json_null();
    p->handlers = cpex__calloc(wired, sizeof *p->handlers);
    p->hooks = cpex__calloc(wired + 1, sizeof *p->hooks);
    bool ok = p->name && (!s->kind || p->kind) && (!s->description || p->description) &&
              p->capabilities && p->config && p->handlers && p->hooks;
    for (size_t i = 0; ok && i < reg->handler_count; i++) {
        if (s->hooks && !hook_listed(s, reg->handlers[i].hook))
            continue;
        p->handlers[p->handler_count] = reg->handlers[i];
        p->hooks[p->handler_count] = cpex__strdup(reg->handlers[i].hook);
        ok = p->hooks[p->handler_count] != NULL;
        p->handler_count++;
    }
    if (!ok) {
        cpex__plugin_unref(p); /* registration not yet attached: destroys nothing of the plugin's */
        return cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
    }
    /* Copy what the registration's size covers; the rest stays zero. */
    memcpy(&p->reg, reg, reg->struct_size < sizeof p->reg ? reg->struct_size : sizeof p->reg);
    p->reg.handlers = p->handlers;
    p->reg.handler_count = p->handler_count;
    p->seq = m->next_seq++;
    *out = p;
    return CPEX_OK;
}

/* Attach ownership of the instance and the factory's release to the plugin. */
cpex_status cpex__mgr_attach(cpex__plugin *p, cpex__plugin_setup *s)
{
    p->origin = s->origin;
    s->origin = NULL;
    p->isolation = s->isolation;
    s->isolation = NULL;
    p->release = s->release;
    p->release_data = s->release_data;
    return CPEX_OK;
}

/* Initialize one plugin; on failure record its state and reason. */
cpex_status cpex__mgr_init_plugin(cpex_manager *m, cpex__plugin *p, const cpex__where *where,
                               cpex_error *err)
{
    int st = atomic_load(&p->state);
    if (st == CPEX_PLUGIN_INITIALIZED)
        return CPEX_OK;
    char msg[1024] = "";
    cpex__log_scope scope;
    cpex__log_scope_enter(&scope, m, p->name);
    int32_t rc = p->reg.initialize ? p->reg.initialize(p->reg.instance, msg, sizeof msg) : 0;
    cpex__log_scope_leave(&scope);
    msg[sizeof msg - 1] = '\0'; /* the plugin may have left it unterminated */
    cpex__text_one_line(msg);
    if (rc == 0) {
        atomic_store(&p->state, CPEX_PLUGIN_INITIALIZED);
        cpex__log(cpex__sink_of(m), CPEX_LOG_DEBUG, p->name, "initialized");
        return CPEX_OK;
    }
    char reason[1100];
    snprintf(reason, sizeof reason, "%s", msg[0] ? msg : "initialize returned an error without a message");
    cpex__plugin_set_reason(p, reason);
    atomic_store(&p->state, CPEX_PLUGIN_FAILED);
    return cpex__error_add(err, CPEX_E_PLUGIN, where,
                          "initialize failed: %s (the plugin stays registered and fails closed: "
                          "each invoke that reaches it applies its on_error)",
                          reason);
}
