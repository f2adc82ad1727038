/*
 * manager.c — the manager: factories, payload types, configuration
 * loading, registration, lifecycle, queries and the invoke entry.
 *
 * Changes build a new registry snapshot off to the side and publish it
 * with one atomic store; invokes read the snapshot under the RCU read
 * section and never take a lock a writer holds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/config.h"
#include "core/core.h"
#include "cpex/version.h"
#include "util/alloc.h"
#include "util/errors.h"

const char *cpex_version(void) { return CPEX_VERSION_STRING; }

static _Atomic uint64_t next_plugin_id = 1;

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

static const char *level_name(uint32_t level)
{
    switch (level) {
    case CPEX_LOG_DEBUG: return "debug";
    case CPEX_LOG_INFO: return "info";
    case CPEX_LOG_WARN: return "warn";
    default: return "error";
    }
}

void cpex_log(const cpex_manager *m, uint32_t level, const char *plugin, const char *fmt, ...)
{
    uint32_t min = m ? m->opts.log_level : CPEX_LOG_WARN;
    if (level < min)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m && m->opts.log) {
        m->opts.log(m->opts.log_user, level, plugin, msg);
        return;
    }
    if (plugin)
        fprintf(stderr, "cpex: [%s] plugin '%s': %s\n", level_name(level), plugin, msg);
    else
        fprintf(stderr, "cpex: [%s] %s\n", level_name(level), msg);
}

/* ------------------------------------------------------------------ */
/* Creation and destruction                                            */
/* ------------------------------------------------------------------ */

void cpex_manager_options_init(cpex_manager_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->default_timeout = 30.0;
    o->default_on_error = CPEX_ON_ERROR_FAIL;
    o->worker_threads = 2;
    o->short_circuit_on_deny = true;
    o->log_level = CPEX_LOG_WARN;
}

void cpex_plugin_spec_init(cpex_plugin_spec *s)
{
    memset(s, 0, sizeof *s);
    s->struct_size = (uint32_t)sizeof *s;
    s->mode = CPEX_MODE_SEQUENTIAL;
    s->priority = 100;
    s->on_error = (cpex_on_error)-1; /* the manager's default */
}

static int64_t seconds_to_ns(double s) { return (int64_t)(s * 1e9); }

static const char *const builtin_cmf_hooks[] = {
    "cmf.tool_pre_invoke",   "cmf.tool_post_invoke",  "cmf.llm_input",
    "cmf.llm_output",        "cmf.prompt_pre_fetch",  "cmf.prompt_post_fetch",
    "cmf.resource_pre_fetch", "cmf.resource_post_fetch",
};

static bool add_binding(cpex_manager *m, const char *hook, const char *type)
{
    cpex_binding *n = cpex_realloc(m->bindings, (m->binding_count + 1) * sizeof *n);
    if (!n)
        return false;
    m->bindings = n;
    n[m->binding_count].hook = cpex_strdup(hook);
    n[m->binding_count].type = cpex_strdup(type);
    if (!n[m->binding_count].hook || !n[m->binding_count].type) {
        cpex_free(n[m->binding_count].hook);
        cpex_free(n[m->binding_count].type);
        return false;
    }
    m->binding_count++;
    return true;
}

static const char *binding_of(const cpex_manager *m, const char *hook)
{
    for (size_t i = 0; i < m->binding_count; i++)
        if (strcmp(m->bindings[i].hook, hook) == 0)
            return m->bindings[i].type;
    return NULL;
}

cpex_status cpex_manager_new(const cpex_manager_options *options, cpex_manager **out,
                             cpex_error *err)
{
    if (!out)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "cpex_manager_new: out is NULL");
    *out = NULL;
    cpex_alloc_setup_jansson();
    cpex_manager_options opts;
    cpex_manager_options_init(&opts);
    if (options) {
        if (options->struct_size < sizeof(uint32_t) || options->struct_size > sizeof opts)
            return cpex_error_add(err, CPEX_E_INVALID, NULL,
                                  "cpex_manager_new: options.struct_size %u is not one this "
                                  "library knows (expected %zu); call cpex_manager_options_init",
                                  options->struct_size, sizeof opts);
        memcpy(&opts, options, options->struct_size);
    }
    if (!(opts.default_timeout > 0) || opts.default_timeout > 86400.0)
        return cpex_error_add(err, CPEX_E_INVALID, NULL,
                              "default_timeout must be between 0 and 86400 seconds (got %g)",
                              opts.default_timeout);
    if ((unsigned)opts.default_on_error > CPEX_ON_ERROR_DISABLE)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "default_on_error %d is not valid",
                              (int)opts.default_on_error);
    if (opts.worker_threads == 0)
        opts.worker_threads = 1;
    if (opts.worker_threads > 256)
        return cpex_error_add(err, CPEX_E_INVALID, NULL,
                              "worker_threads must be at most 256 (got %u)", opts.worker_threads);

    cpex_manager *m = cpex_calloc(1, sizeof *m);
    if (!m)
        return cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
    m->opts = opts;
    m->opts.struct_size = (uint32_t)sizeof m->opts;
    m->default_timeout_ns = seconds_to_ns(opts.default_timeout);
    pthread_mutex_init(&m->write_lock, NULL);
    pthread_mutex_init(&m->bg_lock, NULL);
    pthread_cond_init(&m->bg_idle, NULL);
    cpex_rcu_init(&m->rcu);
    for (size_t i = 0; i < sizeof builtin_cmf_hooks / sizeof *builtin_cmf_hooks; i++)
        if (!add_binding(m, builtin_cmf_hooks[i], "cmf"))
            goto oom;
    cpex_snapshot *empty = cpex_snapshot_build(NULL, 0, NULL, 0, NULL, 0);
    if (!empty)
        goto oom;
    atomic_init(&m->snapshot, empty);
    m->workers = cpex_workers_new(opts.worker_threads);
    if (!m->workers)
        goto oom;
    *out = m;
    return CPEX_OK;
oom:
    cpex_manager_free(m);
    return cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory creating the manager");
}

static void free_factory_slots(cpex_factory_slot *slots, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (slots[i].factory.destroy)
            slots[i].factory.destroy(slots[i].factory.data);
        cpex_free(slots[i].key);
    }
    cpex_free(slots);
}

void cpex_manager_free(cpex_manager *m)
{
    if (!m)
        return;
    if (m->workers)
        cpex_manager_shutdown(m);
    cpex_workers_free(m->workers); /* joins: late handlers have finished after this */
    cpex_snapshot_free(atomic_load(&m->snapshot));
    free_factory_slots(m->exact, m->exact_count);
    free_factory_slots(m->schemes, m->scheme_count);
    for (size_t i = 0; i < m->type_count; i++)
        cpex_free(m->types[i].name);
    cpex_free(m->types);
    for (size_t i = 0; i < m->binding_count; i++) {
        cpex_free(m->bindings[i].hook);
        cpex_free(m->bindings[i].type);
    }
    cpex_free(m->bindings);
    cpex_error_records_free(m->bg_errors, m->bg_error_count);
    pthread_cond_destroy(&m->bg_idle);
    pthread_mutex_destroy(&m->bg_lock);
    pthread_mutex_destroy(&m->write_lock);
    cpex_free(m);
}

/* ------------------------------------------------------------------ */
/* Factories, payload types, hook bindings                             */
/* ------------------------------------------------------------------ */

static cpex_status put_factory(cpex_factory_slot **slots, size_t *count, const char *key,
                               const cpex_factory *f, cpex_error *err)
{
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*slots)[i].key, key) == 0) {
            if ((*slots)[i].factory.destroy)
                (*slots)[i].factory.destroy((*slots)[i].factory.data);
            (*slots)[i].factory = *f;
            return CPEX_OK;
        }
    }
    char *k = cpex_strdup(key);
    cpex_factory_slot *n = k ? cpex_realloc(*slots, (*count + 1) * sizeof *n) : NULL;
    if (!n) {
        cpex_free(k);
        return cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory registering a factory");
    }
    *slots = n;
    n[*count].key = k;
    n[*count].factory = *f;
    (*count)++;
    return CPEX_OK;
}

static cpex_status check_factory(const cpex_factory *f, cpex_error *err)
{
    if (!f || f->struct_size < sizeof *f || !f->create)
        return cpex_error_add(err, CPEX_E_INVALID, NULL,
                              "factory must have struct_size = sizeof(cpex_factory) and a create "
                              "function");
    return CPEX_OK;
}

cpex_status cpex_manager_register_factory(cpex_manager *m, const char *kind,
                                          const cpex_factory *f, cpex_error *err)
{
    if (!m || !kind || !*kind)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "register_factory: empty kind");
    cpex_status st = check_factory(f, err);
    if (st != CPEX_OK)
        return st;
    pthread_mutex_lock(&m->write_lock);
    st = put_factory(&m->exact, &m->exact_count, kind, f, err);
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

cpex_status cpex_manager_register_scheme(cpex_manager *m, const char *scheme,
                                         const cpex_factory *f, cpex_error *err)
{
    if (!m || !scheme || !*scheme || strchr(scheme, ':'))
        return cpex_error_add(err, CPEX_E_INVALID, NULL,
                              "register_scheme: a scheme must be non-empty and contain no ':' "
                              "(got '%s')",
                              scheme ? scheme : "(null)");
    cpex_status st = check_factory(f, err);
    if (st != CPEX_OK)
        return st;
    pthread_mutex_lock(&m->write_lock);
    st = put_factory(&m->schemes, &m->scheme_count, scheme, f, err);
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

void cpex_strv_free(char **v)
{
    if (!v)
        return;
    for (char **s = v; *s; s++)
        cpex_free(*s);
    cpex_free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cpex_manager_schemes(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    pthread_mutex_lock(&m->write_lock);
    char **v = cpex_calloc(m->scheme_count + 1, sizeof *v);
    for (size_t i = 0; v && i < m->scheme_count; i++) {
        v[i] = cpex_strdup(m->schemes[i].key);
        if (!v[i]) {
            cpex_strv_free(v);
            v = NULL;
        }
    }
    pthread_mutex_unlock(&m->write_lock);
    if (v)
        qsort(v, m->scheme_count, sizeof *v, cmp_str);
    return v;
}

/* Find the factory for a kind: exact first, then the scheme before the first ':'. */
static const cpex_factory *find_factory(const cpex_manager *m, const char *kind)
{
    for (size_t i = 0; i < m->exact_count; i++)
        if (strcmp(m->exact[i].key, kind) == 0)
            return &m->exact[i].factory;
    const char *colon = strchr(kind, ':');
    if (!colon || colon == kind)
        return NULL;
    size_t len = (size_t)(colon - kind);
    for (size_t i = 0; i < m->scheme_count; i++)
        if (strlen(m->schemes[i].key) == len && memcmp(m->schemes[i].key, kind, len) == 0)
            return &m->schemes[i].factory;
    return NULL;
}

static bool type_known(const cpex_manager *m, const char *name)
{
    if (strcmp(name, "cmf") == 0 || strcmp(name, "json") == 0)
        return true;
    for (size_t i = 0; i < m->type_count; i++)
        if (strcmp(m->types[i].name, name) == 0)
            return true;
    return false;
}

/* Publish a new snapshot of `plugins`; waits for readers of the old one. */
static cpex_status publish(cpex_manager *m, cpex_plugin *const *plugins, size_t count)
{
    cpex_snapshot *next = cpex_snapshot_build(plugins, count, m->bindings, m->binding_count,
                                              m->types, m->type_count);
    if (!next)
        return CPEX_E_NOMEM;
    cpex_snapshot *old = atomic_exchange(&m->snapshot, next);
    cpex_rcu_synchronize(&m->rcu);
    cpex_snapshot_free(old);
    return CPEX_OK;
}

static cpex_status republish(cpex_manager *m)
{
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    return publish(m, cur->plugins, cur->plugin_count);
}

cpex_status cpex_manager_register_payload_type(cpex_manager *m, const cpex_payload_type *type,
                                               cpex_error *err)
{
    if (!m || !type || type->struct_size < sizeof *type || !type->name || !*type->name ||
        !type->clone || !type->free)
        return cpex_error_add(err, CPEX_E_INVALID, NULL,
                              "payload type needs struct_size, a name, clone and free");
    pthread_mutex_lock(&m->write_lock);
    cpex_status st = CPEX_OK;
    if (type_known(m, type->name)) {
        st = cpex_error_add(err, CPEX_E_EXISTS, NULL, "payload type '%s' is already registered",
                            type->name);
        goto out;
    }
    char *name = cpex_strdup(type->name);
    cpex_type_slot *n = name ? cpex_realloc(m->types, (m->type_count + 1) * sizeof *n) : NULL;
    if (!n) {
        cpex_free(name);
        st = cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
        goto out;
    }
    m->types = n;
    n[m->type_count].name = name;
    n[m->type_count].type = *type;
    n[m->type_count].type.name = name;
    m->type_count++;
    if (republish(m) != CPEX_OK) {
        m->type_count--;
        cpex_free(name);
        st = cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
out:
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

cpex_status cpex_manager_define_hook(cpex_manager *m, const char *hook, const char *payload_type,
                                     cpex_error *err)
{
    if (!m || !hook || !*hook || !payload_type)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "define_hook: hook and type required");
    pthread_mutex_lock(&m->write_lock);
    cpex_status st = CPEX_OK;
    const char *bound = binding_of(m, hook);
    if (!type_known(m, payload_type)) {
        st = cpex_error_add(err, CPEX_E_NOT_FOUND, NULL,
                            "payload type '%s' is not registered; register it first",
                            payload_type);
    } else if (bound && strcmp(bound, payload_type) != 0) {
        st = cpex_error_add(err, CPEX_E_TYPE, NULL,
                            "hook '%s' already carries payload type '%s'", hook, bound);
    } else if (!bound) {
        if (!add_binding(m, hook, payload_type) || republish(m) != CPEX_OK)
            st = cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

/* ------------------------------------------------------------------ */
/* Building a plugin from a registration                               */
/* ------------------------------------------------------------------ */

/* Trusted settings for a new plugin (from YAML or the host). */
typedef struct plugin_setup {
    const char *name;
    const char *kind;
    const char *description;
    uint32_t mode;
    int32_t priority;
    cpex_on_error on_error;
    double timeout;
    cpex_caps caps;
    const char *const *capabilities;
    size_t capability_count;
    const char *const *hooks; /* NULL: every handler */
    size_t hook_count;
    const json_t *config;
    char *origin;             /* taken */
    void (*release)(void *);
    void *release_data;
} plugin_setup;

static char **strv_copy(const char *const *v, size_t n)
{
    char **out = cpex_calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = cpex_strdup(v[i]);
        if (!out[i]) {
            cpex_strv_free(out);
            return NULL;
        }
    }
    return out;
}

/* The size of a 1.0 registration: anything smaller cannot be read safely. */
#define REGISTRATION_MIN_SIZE (offsetof(cpex_plugin_registration, handlers) + sizeof(void *))

/* Pending hook bindings of one change (committed only on publish). */
typedef struct binding_list {
    size_t count;
    cpex_binding items[64];
} binding_list;

static const char *pending_binding(const binding_list *b, const char *hook)
{
    for (size_t i = 0; b && i < b->count; i++)
        if (strcmp(b->items[i].hook, hook) == 0)
            return b->items[i].type;
    return NULL;
}

static bool hook_listed(const plugin_setup *s, const char *hook)
{
    for (size_t i = 0; i < s->hook_count; i++)
        if (strcmp(s->hooks[i], hook) == 0)
            return true;
    return false;
}

/* A "[a, b]" list of the registration's hooks for messages. */
static void list_hooks(const cpex_plugin_registration *reg, char *buf, size_t cap)
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
static cpex_status build_plugin(cpex_manager *m, const plugin_setup *s,
                                const cpex_plugin_registration *reg, binding_list *bindings,
                                const cpex_where *where, cpex_plugin **out, cpex_error *err)
{
    *out = NULL;
    const char *from = s->origin ? s->origin : "the host";
    if (!reg || reg->struct_size < REGISTRATION_MIN_SIZE)
        return cpex_error_add(err, CPEX_E_LOAD, where,
                              "registration from %s is too small (%u bytes; ABI 1.0 needs at "
                              "least %zu); the plugin was built against a broken SDK — rebuild "
                              "it with cpex/plugin.h",
                              from, reg ? reg->struct_size : 0, REGISTRATION_MIN_SIZE);
    if (reg->handler_count == 0 || !reg->handlers)
        return cpex_error_add(err, CPEX_E_LOAD, where,
                              "plugin from %s registered no handlers; a plugin must register at "
                              "least one (hook, handler) pair",
                              from);
    if (reg->handler_count > 4096)
        return cpex_error_add(err, CPEX_E_LOAD, where,
                              "plugin from %s registered %zu handlers; more than 4096 is not "
                              "plausible — the registration is corrupt",
                              from, reg->handler_count);
    cpex_status st = CPEX_OK;
    for (size_t i = 0; i < reg->handler_count; i++) {
        const cpex_handler_reg *h = &reg->handlers[i];
        if (!h->hook || !*h->hook) {
            st = cpex_error_add(err, CPEX_E_LOAD, where,
                                "handler #%zu from %s has no hook name", i, from);
            continue;
        }
        if (!h->fn)
            st = cpex_error_add(err, CPEX_E_LOAD, where,
                                "handler for hook '%s' from %s has no function (NULL)", h->hook,
                                from);
        for (size_t j = 0; j < i; j++)
            if (reg->handlers[j].hook && strcmp(reg->handlers[j].hook, h->hook) == 0) {
                st = cpex_error_add(err, CPEX_E_LOAD, where,
                                    "plugin from %s registered two handlers for hook '%s'; "
                                    "register one handler per hook",
                                    from, h->hook);
                break;
            }
    }
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
            list_hooks(reg, list, sizeof list);
            st = cpex_error_add(err, CPEX_E_CONFIG, where,
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
        if (!type_known(m, h->payload_type)) {
            st = cpex_error_add(err, CPEX_E_TYPE, where,
                                "handler for hook '%s' expects payload type '%s', which is not "
                                "registered with this manager",
                                h->hook, h->payload_type);
            continue;
        }
        const char *bound = binding_of(m, h->hook);
        if (!bound)
            bound = pending_binding(bindings, h->hook);
        if (bound && strcmp(bound, h->payload_type) != 0) {
            st = cpex_error_add(err, CPEX_E_TYPE, where,
                                "handler for hook '%s' expects payload type '%s' but the hook "
                                "carries '%s'",
                                h->hook, h->payload_type, bound);
        } else if (!bound && bindings) {
            if (bindings->count == sizeof bindings->items / sizeof *bindings->items) {
                st = cpex_error_add(err, CPEX_E_CONFIG, where,
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

    cpex_plugin *p = cpex_calloc(1, sizeof *p);
    if (!p)
        return cpex_error_add(err, CPEX_E_NOMEM, where, "out of memory");
    atomic_init(&p->refs, 1);
    atomic_init(&p->state, CPEX_PLUGIN_CREATED);
    atomic_init(&p->disabled, 0);
    pthread_mutex_init(&p->lock, NULL);
    p->manager = m;
    p->id = atomic_fetch_add(&next_plugin_id, 1);
    p->name = cpex_strdup(s->name);
    p->kind = s->kind ? cpex_strdup(s->kind) : NULL;
    p->description = s->description ? cpex_strdup(s->description) : NULL;
    p->mode = s->mode;
    p->priority = s->priority;
    p->on_error = s->on_error;
    p->timeout = s->timeout;
    p->timeout_ns = seconds_to_ns(s->timeout);
    p->caps = s->caps;
    p->capabilities = strv_copy(s->capabilities, s->capability_count);
    p->config = s->config ? json_deep_copy(s->config) : json_null();
    p->handlers = cpex_calloc(wired, sizeof *p->handlers);
    p->hooks = cpex_calloc(wired + 1, sizeof *p->hooks);
    bool ok = p->name && (!s->kind || p->kind) && (!s->description || p->description) &&
              p->capabilities && p->config && p->handlers && p->hooks;
    for (size_t i = 0; ok && i < reg->handler_count; i++) {
        if (s->hooks && !hook_listed(s, reg->handlers[i].hook))
            continue;
        p->handlers[p->handler_count] = reg->handlers[i];
        p->hooks[p->handler_count] = cpex_strdup(reg->handlers[i].hook);
        ok = p->hooks[p->handler_count] != NULL;
        p->handler_count++;
    }
    if (!ok) {
        cpex_plugin_unref(p); /* registration not yet attached: destroys nothing of the plugin's */
        return cpex_error_add(err, CPEX_E_NOMEM, where, "out of memory");
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
static cpex_status attach(cpex_plugin *p, plugin_setup *s)
{
    p->origin = s->origin;
    s->origin = NULL;
    p->release = s->release;
    p->release_data = s->release_data;
    return CPEX_OK;
}

/* Initialize one plugin; on failure record its state and reason. */
static cpex_status init_plugin(cpex_manager *m, cpex_plugin *p, const cpex_where *where,
                               cpex_error *err)
{
    int st = atomic_load(&p->state);
    if (st == CPEX_PLUGIN_INITIALIZED)
        return CPEX_OK;
    char msg[1024] = "";
    int32_t rc = p->reg.initialize ? p->reg.initialize(p->reg.instance, msg, sizeof msg) : 0;
    msg[sizeof msg - 1] = '\0';
    if (rc == 0) {
        atomic_store(&p->state, CPEX_PLUGIN_INITIALIZED);
        cpex_log(m, CPEX_LOG_DEBUG, p->name, "initialized");
        return CPEX_OK;
    }
    char reason[1100];
    snprintf(reason, sizeof reason, "%s", msg[0] ? msg : "initialize returned an error without a message");
    cpex_plugin_set_reason(p, reason);
    atomic_store(&p->state, CPEX_PLUGIN_FAILED);
    return cpex_error_add(err, CPEX_E_PLUGIN, where,
                          "initialize failed: %s (the plugin stays registered and fails closed: "
                          "each invoke that reaches it applies its on_error)",
                          reason);
}

/* ------------------------------------------------------------------ */
/* Loading a configuration                                             */
/* ------------------------------------------------------------------ */

typedef struct log_ctx {
    cpex_manager *manager;
    const char *plugin;
} log_ctx;

static void factory_log(void *ctx, uint32_t level, const char *message)
{
    log_ctx *l = ctx;
    if (message)
        cpex_log(l->manager, level, l->plugin, "%s", message);
}

static bool name_taken(cpex_plugin *const *plugins, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(plugins[i]->name, name) == 0)
            return true;
    return false;
}

static void kind_list(const cpex_manager *m, char *buf, size_t cap)
{
    size_t pos = (size_t)snprintf(buf, cap, "registered schemes: [");
    for (size_t i = 0; i < m->scheme_count && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "", m->schemes[i].key);
    if (pos < cap)
        pos += (size_t)snprintf(buf + pos, cap - pos, "]; exact kinds: [");
    for (size_t i = 0; i < m->exact_count && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "", m->exact[i].key);
    if (pos < cap)
        snprintf(buf + pos, cap - pos, "]");
}

/* Create one configured plugin through its factory. */
static cpex_status create_configured(cpex_manager *m, const cpex_config *cfg,
                                     const cpex_config_plugin *cp, binding_list *bindings,
                                     cpex_plugin **out, cpex_error *err)
{
    cpex_where where = {cfg->source, cp->pos.line, cp->pos.column, cp->name, NULL};
    cpex_where kwhere = {cfg->source, cp->kind_pos.line, cp->kind_pos.column, cp->name, "kind"};
    const cpex_factory *f = find_factory(m, cp->kind);
    if (!f) {
        char kinds[600];
        kind_list(m, kinds, sizeof kinds);
        const char *colon = strchr(cp->kind, ':');
        if (colon && colon != cp->kind)
            return cpex_error_add(err, CPEX_E_CONFIG, &kwhere,
                                  "no factory registered for scheme '%.*s' of kind '%s' (%s); "
                                  "check the spelling, or register a factory for it",
                                  (int)(colon - cp->kind), cp->kind, cp->kind, kinds);
        return cpex_error_add(err, CPEX_E_CONFIG, &kwhere,
                              "no factory registered for kind '%s' (%s); check the spelling, or "
                              "register a factory for it",
                              cp->kind, kinds);
    }

    /* The ABI view of the configuration. */
    cpex_str hooks[64];
    size_t hook_count = cp->hook_count < 64 ? cp->hook_count : 64;
    for (size_t i = 0; i < hook_count; i++) {
        hooks[i].ptr = cp->hooks[i];
        hooks[i].len = strlen(cp->hooks[i]);
    }
    char *config_text = json_dumps(cp->config, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!config_text)
        return cpex_error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    cpex_plugin_config pc;
    memset(&pc, 0, sizeof pc);
    pc.struct_size = (uint32_t)sizeof pc;
    pc.mode = cp->mode;
    pc.name.ptr = cp->name;
    pc.name.len = strlen(cp->name);
    pc.kind.ptr = cp->kind;
    pc.kind.len = strlen(cp->kind);
    pc.hook_count = hook_count;
    pc.hooks = hooks;
    pc.config_json.ptr = config_text;
    pc.config_json.len = strlen(config_text);
    pc.config = (const cpex_json *)cp->config;
    pc.priority = cp->priority;

    log_ctx lc = {m, cp->name};
    cpex_factory_request req;
    memset(&req, 0, sizeof req);
    req.struct_size = (uint32_t)sizeof req;
    req.config = &pc;
    req.config_block = cp->config;
    req.source = cfg->source;
    req.base_dir = cfg->base_dir;
    req.host = cpex_host_api_get();
    req.log = factory_log;
    req.log_ctx = &lc;

    cpex_factory_product prod;
    memset(&prod, 0, sizeof prod);
    prod.registration.struct_size = (uint32_t)sizeof prod.registration;
    cpex_error ferr = CPEX_ERROR_INIT;
    cpex_status st = f->create(f->data, &req, &prod, &ferr);
    cpex_free(config_text);
    if (st != CPEX_OK) {
        if (ferr.count == 0)
            cpex_error_add(&ferr, st, NULL, "the factory for kind '%s' failed without a message",
                           cp->kind);
        cpex_error_move_with(err, &ferr, &kwhere);
        cpex_free(prod.origin);
        return st;
    }
    cpex_error_cleanup(&ferr);

    plugin_setup s;
    memset(&s, 0, sizeof s);
    s.name = cp->name;
    s.kind = cp->kind;
    s.description = cp->description;
    s.mode = cp->mode;
    s.priority = cp->priority;
    s.on_error = cp->has_on_error ? cp->on_error : m->opts.default_on_error;
    s.timeout = cp->timeout > 0 ? cp->timeout
              : cfg->has_plugin_timeout ? cfg->plugin_timeout
                                        : m->opts.default_timeout;
    s.caps = cp->caps;
    s.capabilities = (const char *const *)cp->capabilities;
    s.capability_count = cp->capability_count;
    s.hooks = (const char *const *)cp->hooks;
    s.hook_count = cp->hook_count;
    s.config = cp->config;
    s.origin = prod.origin;
    s.release = prod.release;
    s.release_data = prod.release_data;

    st = build_plugin(m, &s, &prod.registration, bindings, &where, out, err);
    if (st != CPEX_OK) {
        /* The plugin was created: let it clean up, then the factory. */
        if (prod.registration.struct_size >= REGISTRATION_MIN_SIZE &&
            prod.registration.destroy)
            prod.registration.destroy(prod.registration.instance);
        if (prod.release)
            prod.release(prod.release_data);
        cpex_free(s.origin);
        return st;
    }
    attach(*out, &s);
    char wired[512];
    list_hooks(&(*out)->reg, wired, sizeof wired);
    cpex_log(m, CPEX_LOG_DEBUG, cp->name, "created from %s (kind '%s'), reported as %s %s, hooks %s",
             (*out)->origin ? (*out)->origin : "a factory", cp->kind,
             (*out)->reg.name ? (*out)->reg.name : "(unnamed)",
             (*out)->reg.version ? (*out)->reg.version : "(no version)", wired);
    return CPEX_OK;
}

/* Destroy plugins of a change that will not be published. */
static void discard(cpex_plugin **batch, size_t count)
{
    for (size_t i = count; i-- > 0;)
        cpex_plugin_unref(batch[i]);
    cpex_free(batch);
}

/* Publish the current plugins plus `batch` and the pending bindings. */
static cpex_status commit(cpex_manager *m, cpex_plugin **batch, size_t count,
                          const binding_list *bindings)
{
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    size_t total = cur->plugin_count + count;
    cpex_plugin **all = cpex_calloc(total ? total : 1, sizeof *all);
    if (!all)
        return CPEX_E_NOMEM;
    if (cur->plugin_count)
        memcpy(all, cur->plugins, cur->plugin_count * sizeof *all);
    if (count)
        memcpy(all + cur->plugin_count, batch, count * sizeof *all);
    size_t before = m->binding_count;
    for (size_t i = 0; bindings && i < bindings->count; i++) {
        if (!add_binding(m, bindings->items[i].hook, bindings->items[i].type)) {
            cpex_free(all);
            goto undo;
        }
    }
    cpex_status st = publish(m, all, total);
    cpex_free(all);
    if (st == CPEX_OK)
        return CPEX_OK;
undo:
    while (m->binding_count > before) {
        m->binding_count--;
        cpex_free(m->bindings[m->binding_count].hook);
        cpex_free(m->bindings[m->binding_count].type);
    }
    return CPEX_E_NOMEM;
}

static cpex_status load_config(cpex_manager *m, cpex_config *cfg, cpex_error *err)
{
    cpex_error local = CPEX_ERROR_INIT;
    for (size_t i = 0; i < cfg->warning_count; i++)
        cpex_log(m, CPEX_LOG_WARN, NULL, "%s", cfg->warnings[i]);
    pthread_mutex_lock(&m->write_lock);
    cpex_plugin **batch = NULL;
    size_t made = 0;
    binding_list bindings;
    bindings.count = 0;
    if (m->shut_down) {
        cpex_error_add(&local, CPEX_E_STATE, NULL,
                       "the manager was shut down; create a new manager to load '%s'",
                       cfg->source);
        goto fail;
    }
    batch = cpex_calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *batch);
    if (!batch) {
        cpex_error_add(&local, CPEX_E_NOMEM, NULL, "out of memory loading '%s'", cfg->source);
        goto fail;
    }
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const cpex_config_plugin *cp = &cfg->plugins[i];
        if (name_taken(cur->plugins, cur->plugin_count, cp->name)) {
            cpex_where w = {cfg->source, cp->pos.line, cp->pos.column, cp->name, "name"};
            cpex_error_add(&local, CPEX_E_EXISTS, &w,
                           "a plugin named '%s' is already registered with this manager; "
                           "choose another name",
                           cp->name);
            continue;
        }
        cpex_plugin *p = NULL;
        if (create_configured(m, cfg, cp, &bindings, &p, &local) == CPEX_OK)
            batch[made++] = p;
    }
    if (local.count)
        goto fail;
    if (m->init_called) {
        for (size_t i = 0; i < made; i++) {
            cpex_where w = {cfg->source, cfg->plugins[i].pos.line, cfg->plugins[i].pos.column,
                            batch[i]->name, NULL};
            init_plugin(m, batch[i], &w, &local);
        }
        if (local.count)
            goto fail;
    }
    if (commit(m, batch, made, &bindings) != CPEX_OK) {
        cpex_error_add(&local, CPEX_E_NOMEM, NULL, "out of memory publishing '%s'", cfg->source);
        goto fail;
    }
    for (size_t i = 0; i < made; i++)
        cpex_plugin_unref(batch[i]); /* the snapshot holds them now */
    cpex_free(batch);
    pthread_mutex_unlock(&m->write_lock);
    return CPEX_OK;
fail:
    discard(batch, made);
    pthread_mutex_unlock(&m->write_lock);
    cpex_status code = local.code;
    cpex_error_move(err, &local);
    return code;
}

cpex_status cpex_manager_load_string(cpex_manager *m, const char *yaml, size_t len,
                                     const char *source, const char *base_dir, cpex_error *err)
{
    if (!m || !yaml)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "load_string: manager and text required");
    cpex_config *cfg = NULL;
    cpex_status st = cpex_config_parse(yaml, len, source, base_dir, &cfg, err);
    if (st != CPEX_OK)
        return st;
    st = load_config(m, cfg, err);
    cpex_config_free(cfg);
    return st;
}

cpex_status cpex_manager_load_file(cpex_manager *m, const char *path, cpex_error *err)
{
    if (!m || !path)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "load_file: manager and path required");
    cpex_config *cfg = NULL;
    cpex_status st = cpex_config_parse_file(path, &cfg, err);
    if (st != CPEX_OK)
        return st;
    st = load_config(m, cfg, err);
    cpex_config_free(cfg);
    return st;
}

/* ------------------------------------------------------------------ */
/* Programmatic registration                                           */
/* ------------------------------------------------------------------ */

cpex_status cpex_manager_register(cpex_manager *m, const cpex_plugin_spec *spec,
                                  const cpex_plugin_registration *reg, cpex_error *err)
{
    if (!m || !spec || !reg || spec->struct_size < sizeof *spec || !spec->name || !*spec->name)
        return cpex_error_add(err, CPEX_E_INVALID, NULL,
                              "register: a manager, a spec (from cpex_plugin_spec_init) with a "
                              "name, and a registration are required");
    cpex_where where = {NULL, 0, 0, spec->name, NULL};
    if (spec->mode > CPEX_MODE_DISABLED)
        return cpex_error_add(err, CPEX_E_INVALID, &where, "mode %u is not valid", spec->mode);
    if ((int)spec->on_error != -1 && (unsigned)spec->on_error > CPEX_ON_ERROR_DISABLE)
        return cpex_error_add(err, CPEX_E_INVALID, &where, "on_error %d is not valid",
                              (int)spec->on_error);
    if (spec->timeout < 0 || spec->timeout > 86400)
        return cpex_error_add(err, CPEX_E_INVALID, &where,
                              "timeout must be between 0 and 86400 seconds");
    cpex_caps caps = 0;
    for (size_t i = 0; i < spec->capability_count; i++) {
        const char *suggestion = NULL;
        const char *cap = spec->capabilities[i] ? spec->capabilities[i] : "";
        cpex_cap_parse r = cpex_caps_parse(cap, &caps, &suggestion);
        if (r == CPEX_CAP_UNKNOWN)
            return cpex_error_add(err, CPEX_E_CONFIG, &where,
                                  "unknown capability '%s'%s%s%s", cap,
                                  suggestion ? "; did you mean '" : "",
                                  suggestion ? suggestion : "", suggestion ? "'?" : "");
        if (r == CPEX_CAP_NOT_IMPLEMENTED)
            cpex_log(m, CPEX_LOG_WARN, spec->name,
                     "capability '%s' is a CPEX capability libcpex does not implement yet; it "
                     "grants nothing",
                     cap);
    }
    plugin_setup s;
    memset(&s, 0, sizeof s);
    s.name = spec->name;
    s.kind = spec->kind;
    s.mode = spec->mode;
    s.priority = spec->priority;
    s.on_error = (int)spec->on_error == -1 ? m->opts.default_on_error : spec->on_error;
    s.timeout = spec->timeout > 0 ? spec->timeout : m->opts.default_timeout;
    s.caps = caps;
    s.capabilities = spec->capabilities;
    s.capability_count = spec->capability_count;
    s.hooks = spec->hooks;
    s.hook_count = spec->hooks ? spec->hook_count : 0;
    s.config = spec->config;

    pthread_mutex_lock(&m->write_lock);
    cpex_status st;
    cpex_plugin *p = NULL;
    binding_list bindings;
    bindings.count = 0;
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    if (m->shut_down) {
        st = cpex_error_add(err, CPEX_E_STATE, &where, "the manager was shut down");
    } else if (name_taken(cur->plugins, cur->plugin_count, spec->name)) {
        st = cpex_error_add(err, CPEX_E_EXISTS, &where, "plugin '%s' is already registered",
                            spec->name);
    } else {
        st = build_plugin(m, &s, reg, &bindings, &where, &p, err);
    }
    if (st == CPEX_OK && m->init_called) {
        st = init_plugin(m, p, &where, err);
        if (st != CPEX_OK) {
            p->reg.destroy = NULL; /* the caller keeps the instance on failure */
            p->reg.shutdown = NULL;
            cpex_plugin_unref(p);
            p = NULL;
        }
    }
    if (st == CPEX_OK && commit(m, &p, 1, &bindings) != CPEX_OK) {
        p->reg.destroy = NULL;
        p->reg.shutdown = NULL;
        cpex_plugin_unref(p);
        st = cpex_error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    } else if (st == CPEX_OK) {
        cpex_plugin_unref(p);
    }
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

cpex_status cpex_manager_unregister(cpex_manager *m, const char *name, cpex_error *err)
{
    if (!m || !name)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "unregister: name required");
    pthread_mutex_lock(&m->write_lock);
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    cpex_status st = CPEX_OK;
    size_t idx = cur->plugin_count;
    for (size_t i = 0; i < cur->plugin_count; i++)
        if (strcmp(cur->plugins[i]->name, name) == 0)
            idx = i;
    if (idx == cur->plugin_count) {
        st = cpex_error_add(err, CPEX_E_NOT_FOUND, NULL, "no plugin named '%s' is registered",
                            name);
    } else {
        cpex_plugin **rest = cpex_calloc(cur->plugin_count, sizeof *rest);
        if (!rest) {
            st = cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
        } else {
            size_t n = 0;
            for (size_t i = 0; i < cur->plugin_count; i++)
                if (i != idx)
                    rest[n++] = cur->plugins[i];
            /* The old snapshot's reference is the last one unless background work holds
             * it: the plugin is shut down and destroyed when publish frees it. */
            if (publish(m, rest, n) != CPEX_OK)
                st = cpex_error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
            cpex_free(rest);
        }
    }
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

cpex_status cpex_manager_initialize(cpex_manager *m, cpex_error *err)
{
    if (!m)
        return cpex_error_add(err, CPEX_E_INVALID, NULL, "initialize: manager is NULL");
    pthread_mutex_lock(&m->write_lock);
    cpex_status st = CPEX_OK;
    if (m->shut_down) {
        st = cpex_error_add(err, CPEX_E_STATE, NULL,
                            "the manager was shut down; plugins cannot be initialized again — "
                            "create a new manager");
    } else {
        m->init_called = true;
        cpex_snapshot *cur = atomic_load(&m->snapshot);
        for (size_t i = 0; i < cur->plugin_count; i++) {
            cpex_where w = {NULL, 0, 0, cur->plugins[i]->name, NULL};
            if (init_plugin(m, cur->plugins[i], &w, err) != CPEX_OK)
                st = CPEX_E_PLUGIN;
        }
    }
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

static void wait_bg_locked_out(cpex_manager *m)
{
    pthread_mutex_lock(&m->bg_lock);
    while (m->bg_pending > 0)
        pthread_cond_wait(&m->bg_idle, &m->bg_lock);
    pthread_mutex_unlock(&m->bg_lock);
}

void cpex_manager_shutdown(cpex_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->write_lock);
    if (m->shut_down) {
        pthread_mutex_unlock(&m->write_lock);
        return;
    }
    m->shut_down = true;
    /* New invokes fail closed from here; invokes already running finish
     * with initialized plugins (the RCU wait), then the background work
     * they and earlier invokes started; only then is shutdown called, with
     * nothing of the plugin running. */
    atomic_store(&m->closing, 1);
    cpex_rcu_synchronize(&m->rcu);
    wait_bg_locked_out(m);
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    for (size_t i = cur->plugin_count; i-- > 0;) {
        cpex_plugin *p = cur->plugins[i];
        int st = atomic_exchange(&p->state, CPEX_PLUGIN_SHUT_DOWN);
        if (st == CPEX_PLUGIN_INITIALIZED && p->reg.shutdown)
            p->reg.shutdown(p->reg.instance);
    }
    pthread_mutex_unlock(&m->write_lock);
}

bool cpex_manager_is_initialized(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return false;
    pthread_mutex_lock(&m->write_lock);
    bool ok = m->init_called && !m->shut_down;
    cpex_snapshot *cur = atomic_load(&m->snapshot);
    for (size_t i = 0; ok && i < cur->plugin_count; i++)
        ok = atomic_load(&cur->plugins[i]->state) == CPEX_PLUGIN_INITIALIZED;
    pthread_mutex_unlock(&m->write_lock);
    return ok;
}

cpex_status cpex_manager_wait_background(cpex_manager *m, double timeout)
{
    if (!m)
        return CPEX_E_INVALID;
    pthread_mutex_lock(&m->bg_lock);
    if (timeout < 0) {
        while (m->bg_pending > 0)
            pthread_cond_wait(&m->bg_idle, &m->bg_lock);
    } else {
        struct timespec abs;
        clock_gettime(CLOCK_REALTIME, &abs);
        int64_t ns = seconds_to_ns(timeout);
        abs.tv_sec += (time_t)(ns / 1000000000);
        abs.tv_nsec += (long)(ns % 1000000000);
        if (abs.tv_nsec >= 1000000000) {
            abs.tv_sec++;
            abs.tv_nsec -= 1000000000;
        }
        while (m->bg_pending > 0)
            if (pthread_cond_timedwait(&m->bg_idle, &m->bg_lock, &abs) != 0)
                break;
    }
    bool idle = m->bg_pending == 0;
    pthread_mutex_unlock(&m->bg_lock);
    return idle ? CPEX_OK : CPEX_E_STATE;
}

size_t cpex_manager_take_background_errors(cpex_manager *m, cpex_error_record **records)
{
    if (!records)
        return 0;
    *records = NULL;
    if (!m)
        return 0;
    pthread_mutex_lock(&m->bg_lock);
    size_t n = m->bg_error_count;
    *records = m->bg_errors;
    m->bg_errors = NULL;
    m->bg_error_count = 0;
    pthread_mutex_unlock(&m->bg_lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */
/* ------------------------------------------------------------------ */

bool cpex_manager_has_hooks_for(const cpex_manager *cm, const char *hook)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m || !hook)
        return false;
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    const cpex_snapshot *s = atomic_load(&m->snapshot);
    bool any = false;
    /* Disabled-mode plugins are not in the hook index; ask the plugins. */
    for (size_t i = 0; !any && i < s->plugin_count; i++)
        for (char **h = s->plugins[i]->hooks; h && *h && !any; h++)
            any = strcmp(*h, hook) == 0;
    cpex_rcu_exit(t);
    return any;
}

size_t cpex_manager_plugin_count(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return 0;
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    size_t n = atomic_load(&m->snapshot)->plugin_count;
    cpex_rcu_exit(t);
    return n;
}

char **cpex_manager_plugin_names(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return NULL;
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    const cpex_snapshot *s = atomic_load(&m->snapshot);
    char **v = cpex_calloc(s->plugin_count + 1, sizeof *v);
    for (size_t i = 0; v && i < s->plugin_count; i++) {
        v[i] = cpex_strdup(s->plugins[i]->name);
        if (!v[i]) {
            cpex_strv_free(v);
            v = NULL;
        }
    }
    cpex_rcu_exit(t);
    return v;
}

void cpex_plugin_info_cleanup(cpex_plugin_info *info)
{
    if (!info)
        return;
    cpex_free(info->name);
    cpex_free(info->kind);
    cpex_free(info->origin);
    cpex_free(info->reported_name);
    cpex_free(info->reported_version);
    cpex_free(info->description);
    cpex_free(info->reason);
    cpex_strv_free(info->hooks);
    cpex_strv_free(info->capabilities);
    json_decref(info->config);
    memset(info, 0, sizeof *info);
}

static char **strv_dup(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return strv_copy((const char *const *)v, n);
}

cpex_status cpex_manager_plugin_info(const cpex_manager *cm, const char *name,
                                     cpex_plugin_info *info)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m || !name || !info)
        return CPEX_E_INVALID;
    memset(info, 0, sizeof *info);
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    const cpex_snapshot *s = atomic_load(&m->snapshot);
    cpex_plugin *p = NULL;
    for (size_t i = 0; i < s->plugin_count; i++)
        if (strcmp(s->plugins[i]->name, name) == 0)
            p = s->plugins[i];
    if (!p) {
        cpex_rcu_exit(t);
        return CPEX_E_NOT_FOUND;
    }
    info->name = cpex_strdup(p->name);
    info->kind = cpex_strdup(p->kind);
    info->origin = cpex_strdup(p->origin);
    info->reported_name = cpex_strdup(p->reg.name);
    info->reported_version = cpex_strdup(p->reg.version);
    info->description = cpex_strdup(p->description);
    info->mode = p->mode;
    info->priority = p->priority;
    info->on_error = p->on_error;
    info->timeout = p->timeout;
    info->state = (cpex_plugin_state)atomic_load(&p->state);
    info->disabled = atomic_load(&p->disabled) != 0;
    pthread_mutex_lock(&p->lock);
    info->reason = cpex_strdup(p->reason);
    pthread_mutex_unlock(&p->lock);
    info->hooks = strv_dup(p->hooks);
    info->capabilities = strv_dup(p->capabilities);
    /* A copy, not a reference: jansson's refcounts are not safe across threads. */
    info->config = json_deep_copy(p->config);
    cpex_rcu_exit(t);
    bool ok = info->name && (!p->kind || info->kind) && (!p->origin || info->origin) &&
              info->hooks && info->capabilities && info->config;
    if (!ok) {
        cpex_plugin_info_cleanup(info);
        return CPEX_E_NOMEM;
    }
    return CPEX_OK;
}

json_t *cpex_manager_plugin_config(const cpex_manager *cm, const char *name)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m || !name)
        return NULL;
    json_t *cfg = NULL;
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    const cpex_snapshot *s = atomic_load(&m->snapshot);
    for (size_t i = 0; i < s->plugin_count; i++)
        if (strcmp(s->plugins[i]->name, name) == 0)
            cfg = json_deep_copy(s->plugins[i]->config);
    cpex_rcu_exit(t);
    return cfg;
}

/* ------------------------------------------------------------------ */
/* Invoke                                                              */
/* ------------------------------------------------------------------ */

static void deny_invoke(cpex_pipeline_result *res, const char *code, const char *reason)
{
    res->continue_processing = false;
    res->violation = cpex_violation_new(code, reason, NULL, NULL, NULL);
}

static bool str_eq(cpex_str a, const char *b)
{
    return a.ptr && strlen(b) == a.len && memcmp(a.ptr, b, a.len) == 0;
}

void cpex_manager_invoke(cpex_manager *m, const char *hook, const cpex_payload *payload,
                         const cpex_extensions *extensions, cpex_context_table *context,
                         cpex_pipeline_result *res)
{
    if (!res)
        return;
    cpex_pipeline_result_init(res);
    res->context = context;
    if (!m || !hook) {
        deny_invoke(res, "invalid_argument", "cpex_manager_invoke: manager and hook required");
        return;
    }
    size_t len = strlen(hook);
    cpex_rcu_ticket t = cpex_rcu_enter(&m->rcu);
    const cpex_snapshot *s = atomic_load_explicit(&m->snapshot, memory_order_seq_cst);
    const cpex_hook *h = cpex_snapshot_find(s, hook, len);
    if (!h || h->count == 0) {
        cpex_rcu_exit(t);
        return; /* allow, payload and extensions untouched */
    }
    if (h->payload_type) {
        char reason[300];
        if (!payload || !str_eq(payload->type_name, h->payload_type)) {
            snprintf(reason, sizeof reason, "hook '%.100s' carries payload type '%.60s' but the "
                     "invoke passed '%.*s'", hook, h->payload_type,
                     payload && payload->type_name.ptr ? (int)payload->type_name.len : 4,
                     payload && payload->type_name.ptr ? payload->type_name.ptr : "none");
            res->context = NULL;
            deny_invoke(res, "payload_type_mismatch", reason);
            res->context = context;
            cpex_rcu_exit(t);
            return;
        }
    }
    if (payload && payload->kind == CPEX_PAYLOAD_CUSTOM &&
        (!payload->type_name.ptr ||
         !cpex_snapshot_type(s, payload->type_name.ptr, payload->type_name.len))) {
        deny_invoke(res, "payload_type_mismatch",
                    "the invoke passed a custom payload whose type is not registered with this "
                    "manager");
        cpex_rcu_exit(t);
        return;
    }
    if (payload && ((payload->kind == CPEX_PAYLOAD_CMF && !str_eq(payload->type_name, "cmf")) ||
                    (payload->kind == CPEX_PAYLOAD_JSON && !str_eq(payload->type_name, "json")) ||
                    payload->kind < CPEX_PAYLOAD_CMF || payload->kind > CPEX_PAYLOAD_CUSTOM)) {
        deny_invoke(res, "payload_type_mismatch",
                    "the payload's kind and type name disagree; build it with cpex_payload_cmf, "
                    "cpex_payload_json or cpex_payload_custom");
        cpex_rcu_exit(t);
        return;
    }
    cpex_execute(m, s, h, payload, extensions, context,
                 atomic_load_explicit(&m->closing, memory_order_relaxed) != 0, res);
    cpex_rcu_exit(t);
}
