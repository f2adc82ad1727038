/*
 * plugin_build.c — turning a registration (from a factory or the host)
 * into a registered plugin: every check a hostile plugin could fail, the
 * hooks the operator listed, payload types; and initializing it.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "core/observe.h"
#include "util/alloc.h"
#include "util/count.h"
#include "util/errors.h"
#include "util/text.h"

/* Unique per registration in the process: keys context-table local state. */
static _Atomic uint64_t next_plugin_id = 1;

static const char *pending_binding(const cpex__binding_list *b, const cpex__hook_name *hook)
{
    for (size_t i = 0; b && i < b->count; i++)
        if (b->items[i].hook == hook)
            return b->items[i].type;
    return NULL;
}

static bool add_pending(cpex__binding_list *b, cpex__hook_name *hook, const char *type)
{
    cpex__pending_binding *n = cpex__grow(b->items, b->count, &b->cap, sizeof *n, 8);
    if (!n)
        return false;
    b->items = n;
    b->items[b->count].hook = hook;
    b->items[b->count].type = type;
    b->count++;
    return true;
}

/* Whether the operator listed `hook` under the plugin's hooks:. */
static bool hook_listed(const cpex__plugin_setup *s, const char *hook)
{
    for (size_t i = 0; i < s->hook_count; i++)
        if (cpex__hook_same(s->hooks[i], hook))
            return true;
    return false;
}

/* Check a registration and wire it (manager_internal.h). */
cpex_status cpex__mgr_build_plugin(cpex_manager *m, const cpex__plugin_setup *s,
                                   const cpex_plugin_registration *reg,
                                   cpex__binding_list *bindings, const cpex__where *where,
                                   cpex__plugin **out, cpex_error *err)
{
    *out = NULL;
    const char *from = s->origin ? s->origin : "the host";
    cpex_status st = cpex__registration_check(reg, from, where, err);
    if (st != CPEX_OK)
        return st;

    /* An audit sink (ABI 1.1): a verdict handler the registration carries. */
    bool verdict = reg->struct_size >= CPEX_REGISTRATION_SIZE_VERDICT && reg->verdict;
    if (s->sink_all && !verdict)
        return cpex__error_add(err, CPEX_E_CONFIG, where,
                               "the plugin is in audit mode without hooks:, which makes it an "
                               "audit sink for every hook, but it registers no verdict handler "
                               "(ABI 1.1); list the hooks it serves under hooks:, or use a "
                               "plugin built as an audit sink");

    /* Which handlers are wired: those whose hook the operator listed. */
    size_t wired = 0;
    for (size_t i = 0; i < reg->handler_count; i++)
        if (!s->hooks || hook_listed(s, cpex__registration_handler(reg, i).hook))
            wired++;
    /* A sink may list a hook it has no handler for: it observes its verdicts. */
    for (size_t i = 0; s->hooks && !verdict && i < s->hook_count; i++) {
        bool served = false;
        for (size_t k = 0; k < reg->handler_count; k++)
            served =
                served || cpex__hook_same(cpex__registration_handler(reg, k).hook, s->hooks[i]);
        if (!served) {
            char list[512];
            cpex__registration_list_hooks(reg, list, sizeof list);
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
        const cpex_handler_reg handler = cpex__registration_handler(reg, i);
        const cpex_handler_reg *h = &handler;
        if (!h->payload_type || (s->hooks && !hook_listed(s, h->hook)))
            continue;
        if (!cpex__mgr_type_known(m, h->payload_type)) {
            st = cpex__error_add(err, CPEX_E_TYPE, where,
                                 "handler for hook '%s' expects payload type '%s', which is not "
                                 "registered with this manager",
                                 h->hook, h->payload_type);
            continue;
        }
        cpex__hook_name *name = cpex__hook_names_intern(&m->names, h->hook, strlen(h->hook));
        if (!name) {
            st = cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
            continue;
        }
        const char *bound = name->payload_type;
        if (!bound)
            bound = pending_binding(bindings, name);
        if (bound && strcmp(bound, h->payload_type) != 0) {
            st = cpex__error_add(err, CPEX_E_TYPE, where,
                                 "handler for hook '%s' expects payload type '%s' but the hook "
                                 "carries '%s'",
                                 h->hook, h->payload_type, bound);
        } else if (!bound && bindings && !add_pending(bindings, name, h->payload_type)) {
            st = cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
        }
    }
    if (st != CPEX_OK)
        return st;

    cpex__plugin *p = cpex__calloc(1, sizeof *p);
    if (!p)
        return cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
    atomic_init(&p->refs, 1);
    atomic_init(&p->state, CPEX_STATE_CREATED);
    atomic_init(&p->disabled, 0);
    pthread_mutex_init(&p->lock, NULL);
    p->hub = cpex__hub_ref(m->hub);
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
    p->timeout_ticks = cpex__ticks_from_ns(p->timeout_ns);
    p->coarse_clock = p->timeout_ns >= cpex__coarse_min_timeout_ns();
    p->caps = s->caps;
    p->capabilities = cpex__strv_copy(s->capabilities, s->capability_count);
    p->config = s->config ? json_deep_copy(s->config) : json_null();
    /* The namespace of its state keys: the operator's, checked where it was
       written, or the name made safe (NULL when too long: the state slots
       then refuse, and nothing else changes). */
    p->state_ns = s->state_namespace ? cpex__strdup(s->state_namespace)
                  : p->name          ? cpex__state_namespace_of(p->name)
                                     : NULL;
    p->state_ns_len = p->state_ns ? strlen(p->state_ns) : 0;
    p->handlers = cpex__calloc(wired ? wired : 1, sizeof *p->handlers);
    p->hook_ids = cpex__calloc(wired ? wired : 1, sizeof *p->hook_ids);
    p->metric_ids = cpex__malloc((wired ? wired : 1) * sizeof *p->metric_ids);
    for (size_t i = 0; p->metric_ids && i < (wired ? wired : 1); i++)
        p->metric_ids[i] = UINT32_MAX; /* CPEX__NO_METRIC: not looked up yet */
    p->hooks = cpex__calloc(wired + 1, sizeof *p->hooks);
    p->rec = cpex__calloc(1, sizeof *p->rec);
    bool ok = p->name && (!s->state_namespace || p->state_ns) && (!s->kind || p->kind) &&
              (!s->description || p->description) && p->capabilities && p->config && p->handlers &&
              p->hook_ids && p->metric_ids && p->hooks && p->rec &&
              cpex__rec_static_init(p->rec, p->name, p->kind, p->config);
    if (ok && verdict) {
        /* What it observes: every hook (hookless in audit mode, or a
         * registration from code with no handler and no hooks), the hooks
         * listed, or the hooks of its handlers. */
        p->sink_all = s->sink_all || (!s->hooks && reg->handler_count == 0);
        if (!p->sink_all) {
            p->sink_hooks = s->hooks ? cpex__strv_copy(s->hooks, s->hook_count) : NULL;
            ok = !s->hooks || p->sink_hooks;
        }
    }
    for (size_t i = 0; ok && i < reg->handler_count; i++) {
        cpex_handler_reg h = cpex__registration_handler(reg, i);
        if (s->hooks && !hook_listed(s, h.hook))
            continue;
        cpex__hook_name *name = cpex__hook_names_intern(&m->names, h.hook, strlen(h.hook));
        p->handlers[p->handler_count] = h;
        p->hooks[p->handler_count] = cpex__strdup(cpex__hook_canonical(h.hook));
        ok = p->hooks[p->handler_count] != NULL && name != NULL;
        if (name)
            p->hook_ids[p->handler_count] = name->id;
        p->handler_count++;
    }
    if (!ok) {
        cpex__plugin_unref(p); /* registration not yet attached: destroys nothing of the plugin's */
        return cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
    }
    /* Copy what the registration's size covers; the rest stays zero. The
       plugin keeps its wired handlers in this host's layout. */
    memcpy(&p->reg, reg, reg->struct_size < sizeof p->reg ? reg->struct_size : sizeof p->reg);
    cpex__registration_use_handlers(&p->reg, p->handlers, p->handler_count);
    if (verdict && !p->sink_all && !p->sink_hooks) {
        /* The hooks of its handlers, once wired. */
        p->sink_hooks = cpex__strv_copy((const char *const *)p->hooks, p->handler_count);
        if (!p->sink_hooks) {
            cpex__plugin_unref(p);
            return cpex__error_add(err, CPEX_E_NOMEM, where, "out of memory");
        }
    }
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
    if (st == CPEX_STATE_INITIALIZED)
        return CPEX_OK;
    char msg[1024] = "";
    cpex__log_scope scope;
    cpex__log_scope_enter(&scope, m->hub, p->name);
    int32_t rc = p->reg.initialize ? p->reg.initialize(p->reg.instance, msg, sizeof msg) : 0;
    cpex__log_scope_leave(&scope);
    msg[sizeof msg - 1] = '\0'; /* the plugin may have left it unterminated */
    cpex__text_one_line(msg);
    if (rc == 0) {
        atomic_store(&p->state, CPEX_STATE_INITIALIZED);
        cpex__log(cpex__sink_of(m), CPEX_LOG_DEBUG, p->name, "initialized");
        return CPEX_OK;
    }
    char reason[1100];
    snprintf(reason, sizeof reason, "%s",
             msg[0] ? msg : "initialize returned an error without a message");
    cpex__plugin_set_reason(p, reason);
    atomic_store(&p->state, CPEX_STATE_FAILED);
    return cpex__error_add(err, CPEX_E_PLUGIN, where,
                           "initialize failed: %s (the plugin stays registered and fails closed: "
                           "each invoke that reaches it applies its on_error)",
                           reason);
}
