/*
 * sinks.c — audit sinks and what a registry snapshot needs to observe
 * (observe.h).
 *
 * A sink is a plugin with a verdict handler (abi.h): one from a
 * configuration, or one the host registers from code. Both are
 * cpex__plugin objects, so a verdict call reuses the call machinery
 * (capabilities, deadline, on_error) unchanged. Sinks from code live in
 * the manager's own list, outside the plugins a configuration loads, and
 * every snapshot is wired from both (cpex__snapshot_observe): a reload
 * that builds a new snapshot keeps them as long as it wires it.
 */
#include <stdio.h>
#include <string.h>

#include "core/manager_internal.h"
#include "core/observe.h"
#include "util/alloc.h"
#include "util/strv.h"

/* ------------------------------------------------------------------ */
/* Sinks from code                                                     */
/* ------------------------------------------------------------------ */

void cpex_sink_spec_init(cpex_sink_spec *s)
{
    memset(s, 0, sizeof *s);
    s->struct_size = (uint32_t)sizeof *s;
    s->on_error = CPEX_ON_ERROR_IGNORE;
}

#define SPEC_HAS(spec, field)                                                                      \
    ((size_t)(spec)->struct_size >= offsetof(cpex_sink_spec, field) + sizeof((spec)->field))

static void destroy_spec(const cpex_sink_spec *spec)
{
    if (spec && SPEC_HAS(spec, destroy) && spec->destroy)
        spec->destroy(spec->instance);
}

/* The sink's plugin object, or NULL with the problem in `err`. */
static cpex__plugin *sink_plugin(cpex_manager *m, const cpex_sink_spec *spec, cpex_error *err)
{
    cpex__where where = {NULL, 0, 0, spec->name, NULL};
    if (spec->timeout < 0 || spec->timeout > 86400) {
        cpex__error_add(err, CPEX_E_INVALID, &where, "timeout must be between 0 and 86400 seconds");
        return NULL;
    }
    if ((unsigned)spec->on_error > CPEX_ON_ERROR_DISABLE) {
        cpex__error_add(err, CPEX_E_INVALID, &where, "on_error %d is not valid",
                        (int)spec->on_error);
        return NULL;
    }
    cpex__caps caps = 0;
    for (size_t i = 0; i < spec->capability_count; i++) {
        const char *suggestion = NULL;
        const char *cap = spec->capabilities[i] ? spec->capabilities[i] : "";
        if (cpex__caps_parse(cap, &caps, &suggestion) == CPEX_CAP_UNKNOWN) {
            cpex__error_add(err, CPEX_E_CONFIG, &where, "unknown capability '%s'%s%s%s", cap,
                            suggestion ? "; did you mean '" : "", suggestion ? suggestion : "",
                            suggestion ? "'?" : "");
            return NULL;
        }
    }
    for (size_t i = 0; spec->hooks && i < spec->hook_count; i++)
        if (!spec->hooks[i] || !*spec->hooks[i]) {
            cpex__error_add(err, CPEX_E_INVALID, &where, "hook #%zu is empty", i);
            return NULL;
        }
    cpex__plugin *p = cpex__calloc(1, sizeof *p);
    if (!p) {
        cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    atomic_init(&p->state, CPEX_STATE_INITIALIZED); /* nothing to initialize */
    atomic_init(&p->disabled, 0);
    pthread_mutex_init(&p->lock, NULL);
    p->hub = cpex__hub_ref(m->hub);
    p->name = cpex__strdup(spec->name);
    p->name_len = p->name ? strlen(p->name) : 0;
    p->mode = CPEX_MODE_AUDIT;
    /* A verdict is final: a sink's failure can only be recorded (ignore)
     * or stop the sink (disable). */
    p->on_error =
        spec->on_error == CPEX_ON_ERROR_DISABLE ? CPEX_ON_ERROR_DISABLE : CPEX_ON_ERROR_IGNORE;
    p->timeout = spec->timeout > 0 ? spec->timeout : m->opts.default_timeout;
    p->timeout_ns = cpex__seconds_to_ns(p->timeout);
    p->timeout_ticks = cpex__ticks_from_ns(p->timeout_ns);
    p->caps = caps;
    p->capabilities = cpex__strv_copy(spec->capabilities, spec->capability_count);
    p->hooks = cpex__strv_copy(NULL, 0);
    p->config = json_null();
    p->api_sink = true;
    p->sink_all = spec->hooks == NULL;
    p->sink_hooks = spec->hooks ? cpex__strv_copy(spec->hooks, spec->hook_count) : NULL;
    p->reg.struct_size = (uint32_t)sizeof p->reg;
    p->reg.abi_version = CPEX_ABI_VERSION;
    p->reg.name = p->name;
    p->reg.instance = spec->instance;
    p->reg.destroy = spec->destroy;
    p->reg.verdict = spec->verdict;
    if (!p->name || !p->capabilities || !p->hooks || !p->config ||
        (spec->hooks && !p->sink_hooks)) {
        cpex__plugin_unref(p); /* destroys the instance: it is the plugin's now */
        cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
        return NULL;
    }
    return p;
}

cpex_status cpex_manager_register_sink(cpex_manager *m, const cpex_sink_spec *spec, cpex_error *err)
{
    if (!m || !spec || !SPEC_HAS(spec, on_error) || !spec->name || !*spec->name || !spec->verdict) {
        destroy_spec(spec);
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "register_sink: a manager and a spec (from cpex_sink_spec_init) "
                               "with a name and a verdict handler are required");
    }
    cpex__plugin *p = sink_plugin(m, spec, err);
    if (!p) {
        if (err && err->code != CPEX_E_NOMEM)
            destroy_spec(spec);
        return err ? err->code : CPEX_E_INVALID;
    }
    cpex__mgr_lock(m);
    cpex__where where = {NULL, 0, 0, spec->name, NULL};
    cpex__snapshot *cur = cpex__mgr_current(m);
    cpex_status st = CPEX_OK;
    bool taken = cpex__mgr_name_taken(cur->plugins, cur->plugin_count, spec->name) ||
                 cpex__mgr_name_taken(m->pending, m->pending_count, spec->name) ||
                 cpex__mgr_name_taken(m->sinks, m->sink_count, spec->name);
    cpex__plugin **grown = NULL;
    if (m->shut_down)
        st = cpex__error_add(err, CPEX_E_STATE, &where, "the manager was shut down");
    else if (taken)
        st = cpex__error_add(err, CPEX_E_EXISTS, &where,
                             "a plugin or sink named '%s' is already registered", spec->name);
    else if (!(grown = cpex__realloc(m->sinks, (m->sink_count + 1) * sizeof *grown)))
        st = cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    if (st == CPEX_OK) {
        m->sinks = grown;
        m->sinks[m->sink_count++] = p;
        p->seq = m->next_seq++;
        if (cpex__mgr_republish(m) != CPEX_OK) {
            m->sink_count--;
            st = cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
        } else {
            p = NULL; /* the manager's now */
        }
    }
    cpex__mgr_unlock(m);
    cpex__plugin_unref(p);
    return st;
}

cpex_status cpex_manager_unregister_sink(cpex_manager *m, const char *name, cpex_error *err)
{
    if (!m || !name)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "unregister_sink: name required");
    cpex__mgr_lock(m);
    cpex__mgr_current(m); /* what is pending goes out before this change */
    size_t idx = m->sink_count;
    for (size_t i = 0; i < m->sink_count; i++)
        if (strcmp(m->sinks[i]->name, name) == 0)
            idx = i;
    cpex__plugin *gone = NULL;
    cpex_status st = CPEX_OK;
    if (idx == m->sink_count) {
        st = cpex__error_add(err, CPEX_E_NOT_FOUND, NULL,
                             "no sink named '%s' was registered with cpex_manager_register_sink",
                             name);
    } else {
        gone = m->sinks[idx];
        memmove(&m->sinks[idx], &m->sinks[idx + 1], (m->sink_count - idx - 1) * sizeof *m->sinks);
        m->sink_count--;
        if (cpex__mgr_republish(m) != CPEX_OK) {
            /* Put it back: the published snapshot still has it. */
            memmove(&m->sinks[idx + 1], &m->sinks[idx], (m->sink_count - idx) * sizeof *m->sinks);
            m->sinks[idx] = gone;
            m->sink_count++;
            gone = NULL;
            st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
        }
    }
    cpex__mgr_unlock(m);
    cpex__plugin_unref(gone); /* queued verdicts keep their own references */
    return st;
}

/* ------------------------------------------------------------------ */
/* Wiring a snapshot                                                   */
/* ------------------------------------------------------------------ */

static bool is_sink(const cpex__plugin *p)
{
    return p->reg.verdict && p->mode != CPEX_MODE_DISABLED;
}

static bool sink_observes(const cpex__plugin *p, const char *hook)
{
    if (p->sink_all)
        return true;
    for (char **h = p->sink_hooks; h && *h; h++)
        if (strcmp(*h, hook) == 0)
            return true;
    return false;
}

void cpex__snapshot_obs_free(cpex__snapshot *snap)
{
    cpex__snap_obs *o = snap->obs;
    if (!o)
        return;
    cpex__free(o->metric_ids);
    for (size_t i = 0; i < snap->hook_count; i++)
        cpex__free((void *)(uintptr_t)atomic_load(&snap->hooks[i].rec_template));
    cpex__free(o->sink_lists);
    for (size_t i = 0; i < o->all_count; i++)
        if (o->all[i]->api_sink)
            cpex__plugin_unref(o->all[i]);
    for (size_t i = 0; i < o->named_count; i++)
        if (o->named_sinks[i]->api_sink && (i == 0 || o->named_sinks[i - 1] != o->named_sinks[i]))
            cpex__plugin_unref(o->named_sinks[i]);
    cpex__free(o->all);
    cpex__free(o->named_hooks);
    cpex__free(o->named_sinks);
    cpex__free(o);
    snap->obs = NULL;
}

/* The metric id of `p`'s handler on `h`: kept on the plugin after the first lookup. */
static uint32_t entry_metric_id(cpex__metrics *mx, cpex__plugin *p, const cpex__hook *h)
{
    for (size_t k = 0; k < p->handler_count; k++) {
        if (p->hook_ids[k] != h->id)
            continue;
        if (p->metric_ids[k] == CPEX__NO_METRIC)
            p->metric_ids[k] = cpex__metrics_id(mx, CPEX__ML_HANDLER, p->name, h->name);
        return p->metric_ids[k];
    }
    return cpex__metrics_id(mx, CPEX__ML_HANDLER, p->name, h->name); /* not wired on it */
}

const cpex__rec_template *cpex__hook_template(const cpex__hook *h)
{
    cpex__hook *mh = (cpex__hook *)(uintptr_t)h; /* the snapshot's; only this field changes */
    const cpex__rec_template *t = atomic_load_explicit(&mh->rec_template, memory_order_acquire);
    if (t)
        return t;
    cpex__rec_template *made = cpex__rec_template_new(h);
    if (!made)
        return NULL;
    const cpex__rec_template *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&mh->rec_template, &expected, made,
                                                memory_order_acq_rel, memory_order_acquire))
        return made;
    cpex__free(made); /* another invoke made it first */
    return expected;
}

bool cpex__snapshot_observe(cpex_manager *m, cpex__snapshot *snap)
{
    cpex__snap_obs *o = cpex__calloc(1, sizeof *o);
    if (!o)
        return false;
    snap->obs = o;
    cpex__metrics *mx = m->hub->metrics;

    /* Metric ids of every hook and entry. Each is looked up once and kept
       on the hook's name and the plugin, so a registration that rebuilds
       the snapshot does not hash every label again. */
    size_t total = 0;
    for (size_t i = 0; i < snap->hook_count; i++)
        total += snap->hooks[i].count;
    if (total && !(o->metric_ids = cpex__malloc(total * sizeof *o->metric_ids)))
        goto fail;
    size_t at = 0;
    for (size_t i = 0; i < snap->hook_count; i++) {
        cpex__hook *h = &snap->hooks[i];
        h->metric_ids = o->metric_ids + at;
        cpex__hook_name *name = m->names.by_id[h->id];
        if (name->metric_id == CPEX__NO_METRIC)
            name->metric_id = cpex__metrics_id(mx, CPEX__ML_HOOK, "", h->name);
        h->metric_id = name->metric_id;
        for (size_t k = 0; k < h->count; k++)
            o->metric_ids[at + k] = entry_metric_id(mx, h->entries[k].plugin, h);
        at += h->count;
    }

    /* Sinks, in registration order: the snapshot's plugins, then those
     * registered from code (the snapshot holds a reference to each). */
    size_t nsinks = m->sink_count;
    for (size_t i = 0; i < snap->plugin_count; i++)
        nsinks += is_sink(snap->plugins[i]);
    if (!nsinks)
        return true;
    cpex__plugin **sinks = cpex__calloc(nsinks, sizeof *sinks);
    if (!sinks)
        goto fail;
    size_t n = 0;
    for (size_t i = 0; i < snap->plugin_count; i++)
        if (is_sink(snap->plugins[i]))
            sinks[n++] = snap->plugins[i];
    for (size_t i = 0; i < m->sink_count; i++)
        sinks[n++] = m->sinks[i];
    for (size_t i = 1; i < n; i++) /* by registration order (few: insertion sort) */
        for (size_t j = i; j > 0 && sinks[j - 1]->seq > sinks[j]->seq; j--) {
            cpex__plugin *tmp = sinks[j];
            sinks[j] = sinks[j - 1];
            sinks[j - 1] = tmp;
        }
    size_t nall = 0, nnamed = 0;
    for (size_t i = 0; i < n; i++) {
        if (sinks[i]->sink_all)
            nall++;
        else
            for (char **h = sinks[i]->sink_hooks; h && *h; h++)
                nnamed++;
    }
    o->all = cpex__calloc(nall ? nall : 1, sizeof *o->all);
    o->named_hooks = cpex__calloc(nnamed ? nnamed : 1, sizeof *o->named_hooks);
    o->named_sinks = cpex__calloc(nnamed ? nnamed : 1, sizeof *o->named_sinks);
    o->sink_lists = cpex__calloc(snap->hook_count * n + 1, sizeof *o->sink_lists);
    if (!o->all || !o->named_hooks || !o->named_sinks || !o->sink_lists) {
        cpex__free(sinks);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        cpex__plugin *p = sinks[i];
        bool api_ref_taken = false;
        if (p->sink_all) {
            o->all[o->all_count++] = p->api_sink ? cpex__plugin_ref(p) : p;
            continue;
        }
        for (char **h = p->sink_hooks; h && *h; h++) {
            o->named_hooks[o->named_count] = *h;
            o->named_sinks[o->named_count++] =
                p->api_sink && !api_ref_taken ? cpex__plugin_ref(p) : p;
            api_ref_taken = true;
        }
    }
    for (size_t i = 0; i < snap->hook_count; i++) {
        cpex__hook *h = &snap->hooks[i];
        cpex__plugin **list = o->sink_lists + i * n;
        uint32_t c = 0;
        for (size_t k = 0; k < n; k++)
            if (sink_observes(sinks[k], h->name))
                list[c++] = sinks[k];
        h->sinks = list;
        h->sink_count = c;
    }
    cpex__free(sinks);
    snap->any_sinks = true;
    return true;
fail:
    cpex__snapshot_obs_free(snap);
    return false;
}

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

void cpex__observe_apply_settings(cpex_manager *m, int execution_records, int metrics,
                                  int64_t queue_size, int overflow, double max_wait)
{
    uint32_t flags = atomic_load(&m->obs_flags);
    if (execution_records >= 0)
        flags = execution_records ? flags | CPEX__OBS_RECORDS : flags & ~CPEX__OBS_RECORDS;
    if (metrics >= 0)
        flags = metrics ? flags | CPEX__OBS_METRICS : flags & ~CPEX__OBS_METRICS;
    atomic_store(&m->obs_flags, flags);
    atomic_store(&m->hub->metrics_on, (flags & CPEX__OBS_METRICS) != 0);
    if (queue_size > 0)
        m->opts.audit_queue_size = (uint32_t)queue_size;
    if (overflow >= 0)
        m->opts.audit_overflow = (uint32_t)overflow;
    if (max_wait >= 0)
        m->opts.audit_max_wait = max_wait;
    cpex__audit_configure(m->hub->audit, m->opts.audit_queue_size, m->opts.audit_overflow,
                          cpex__seconds_to_ns(m->opts.audit_max_wait));
}

/* ------------------------------------------------------------------ */
/* Verdicts of invokes that ran no pipeline                            */
/* ------------------------------------------------------------------ */

void cpex__observe_unrun(cpex_manager *m, const cpex__snapshot *snap, const cpex__hook *h,
                         const char *hook, size_t hook_len, const cpex_payload *payload,
                         const cpex__type_slot *custom, const cpex_extensions *ext,
                         const cpex_pipeline_result *res)
{
    if (atomic_load_explicit(&m->closing, memory_order_relaxed))
        return;
    cpex__plugin *local[16];
    cpex__plugin **list = local;
    size_t n = 0;
    const cpex__snap_obs *o = snap->obs;
    if (h) {
        list = (cpex__plugin **)(uintptr_t)h->sinks;
        n = h->sink_count;
    } else if (o) {
        size_t cap = o->all_count + o->named_count;
        if (cap > 16 && !(list = cpex__calloc(cap, sizeof *list)))
            return;
        /* Every-hook and named sinks, back in registration order. */
        for (size_t i = 0; i < o->all_count; i++)
            list[n++] = o->all[i];
        for (size_t i = 0; i < o->named_count; i++)
            if (strlen(o->named_hooks[i]) == hook_len &&
                memcmp(o->named_hooks[i], hook, hook_len) == 0)
                list[n++] = o->named_sinks[i];
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && list[j - 1]->seq > list[j]->seq; j--) {
                cpex__plugin *tmp = list[j];
                list[j] = list[j - 1];
                list[j - 1] = tmp;
            }
    }
    if (n) {
        if (payload && payload->kind == CPEX_PAYLOAD_CUSTOM && !custom && payload->type_name.ptr)
            custom = cpex__snapshot_type(snap, payload->type_name.ptr, payload->type_name.len);
        cpex__payload_ops ops = cpex__payload_ops_for(payload, custom);
        cpex__verdict_src src = {
            m->hub,         hook,    hook_len, list, n,     res->continue_processing,
            res->violation, payload, &ops,     ext,  false, false,
            NULL,           0};
        cpex__verdict_item *it = cpex__verdict_new(m->hub->audit, &src);
        if (it)
            cpex__verdict_commit(m->hub->audit, it);
    }
    if (list != local && !h)
        cpex__free(list);
}
