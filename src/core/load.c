/*
 * load.c — changes to the set of plugins: loading a configuration
 * (every plugin through its factory, all or nothing), registering from
 * code, unregistering.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/apply.h"
#include "core/config.h"
#include "core/core.h"
#include "core/manager_internal.h"
#include "core/observe.h"
#include "core/routing.h"
#include "model/json_dump.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "util/text.h"

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
        cpex__log(cpex__sink_of(l->manager), level, l->plugin, "%s", message);
}

bool cpex__mgr_name_taken(cpex__plugin *const *plugins, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(plugins[i]->name, name) == 0)
            return true;
    return false;
}

/* "registered schemes: [a, b]; exact kinds: [c]", cut to `cap`. */
static void kind_list(const cpex_manager *m, char *buf, size_t cap)
{
    cpex__textbuf t;
    cpex__textbuf_init(&t, buf, cap);
    cpex__textbuf_add(&t, "registered schemes: [");
    for (size_t i = 0; i < m->scheme_count; i++)
        cpex__textbuf_add(&t, "%s%s", i ? ", " : "", m->schemes[i].key);
    cpex__textbuf_add(&t, "]; exact kinds: [");
    for (size_t i = 0; i < m->exact_count; i++)
        cpex__textbuf_add(&t, "%s%s", i ? ", " : "", m->exact[i].key);
    cpex__textbuf_add(&t, "]");
}

/* Undo what a factory made (the plugin's destroy, then the factory's release). */
static void product_undo(cpex_factory_product *prod)
{
    if (prod->registration.struct_size >= CPEX_REGISTRATION_SIZE_1_0 && prod->registration.destroy)
        prod->registration.destroy(prod->registration.instance);
    if (prod->release)
        prod->release(prod->release_data);
}

/* The factory request of one configured plugin (what create and a
 * scheme's identify get). */
typedef struct factory_call {
    cpex_str *hooks; /* every listed hook (a fixed array once cut the list at 64 without a word) */
    char *config_text;
    cpex_plugin_config pc;
    log_ctx lc;
    cpex_isolation_options iso;
    cpex_factory_request req;
} factory_call;

static void release_call(factory_call *fc)
{
    cpex__free(fc->config_text);
    cpex__free(fc->hooks);
    fc->config_text = NULL;
    fc->hooks = NULL;
}

/* Fill `fc` for `cp`; false on OOM (release_call either way). */
static bool prepare_call(cpex_manager *m, const cpex__config *cfg, const cpex__config_plugin *cp,
                         factory_call *fc)
{
    memset(fc, 0, sizeof *fc);
    size_t hook_count = cp->hook_count;
    fc->hooks = cpex__calloc(hook_count ? hook_count : 1, sizeof *fc->hooks);
    fc->config_text = fc->hooks ? cpex__json_dump(cp->config, JSON_COMPACT) : NULL;
    if (!fc->config_text)
        return false;
    for (size_t i = 0; i < hook_count; i++) {
        fc->hooks[i].ptr = cp->hooks[i];
        fc->hooks[i].len = strlen(cp->hooks[i]);
    }
    cpex_plugin_config *pc = &fc->pc;
    pc->struct_size = (uint32_t)sizeof *pc;
    pc->mode = cp->mode;
    pc->name.ptr = cp->name;
    pc->name.len = strlen(cp->name);
    pc->kind.ptr = cp->kind;
    pc->kind.len = strlen(cp->kind);
    pc->hook_count = hook_count;
    pc->hooks = fc->hooks;
    pc->config_json.ptr = fc->config_text;
    pc->config_json.len = strlen(fc->config_text);
    pc->config = (const cpex_json *)cp->config;
    pc->priority = cp->priority;

    fc->lc.manager = m;
    fc->lc.plugin = cp->name;
    cpex_factory_request *req = &fc->req;
    req->struct_size = (uint32_t)sizeof *req;
    req->config = pc;
    req->config_block = cp->config;
    req->source = cfg->source;
    req->base_dir = cfg->base_dir;
    req->host = cpex_host_api_get();
    req->log = factory_log;
    req->log_ctx = &fc->lc;
    cpex__isolation_options(&cp->isolation, &fc->iso);
    req->isolation = fc->iso.mode != CPEX_ISOLATION_NONE ? &fc->iso : NULL;
    req->worker_path = m->opts.worker_path;
    req->on_error = (uint32_t)(cp->has_on_error ? cp->on_error : m->opts.default_on_error);
    req->sha256 = cp->sha256;
    req->strict_permissions = cfg->strict_permissions || m->opts.strict_permissions;
    return true;
}

bool cpex__mgr_identify(cpex_manager *m, const cpex__config *cfg, const cpex__config_plugin *cp,
                        char *buf, size_t cap)
{
    buf[0] = '\0';
    const cpex_factory *f = cpex__mgr_find_factory(m, cp->kind);
    if (!f)
        return false;
    cpex__identify_fn identify = cpex__mgr_find_identify(m, cp->kind, f);
    if (!identify)
        return true; /* the configuration says it all */
    factory_call fc;
    bool ok = prepare_call(m, cfg, cp, &fc) && identify(&fc.req, buf, cap) == 0;
    release_call(&fc);
    if (cap)
        buf[cap - 1] = '\0';
    return ok;
}

/* Create one configured plugin through its factory. */
cpex_status cpex__mgr_create_configured(cpex_manager *m, const cpex__config *cfg,
                                        const cpex__config_plugin *cp, cpex__binding_list *bindings,
                                        cpex__plugin **out, cpex_error *err)
{
    cpex__where where = {cfg->source, cp->pos.line, cp->pos.column, cp->name, NULL};
    cpex__where kwhere = {cfg->source, cp->kind_pos.line, cp->kind_pos.column, cp->name, "kind"};
    const cpex_factory *f = cpex__mgr_find_factory(m, cp->kind);
    if (!f) {
        char kinds[600];
        kind_list(m, kinds, sizeof kinds);
        const char *colon = strchr(cp->kind, ':');
        if (colon && colon != cp->kind)
            return cpex__error_add(err, CPEX_E_CONFIG, &kwhere,
                                   "no factory registered for scheme '%.*s' of kind '%s' (%s); "
                                   "check the spelling, or register a factory for it",
                                   (int)(colon - cp->kind), cp->kind, cp->kind, kinds);
        return cpex__error_add(err, CPEX_E_CONFIG, &kwhere,
                               "no factory registered for kind '%s' (%s); check the spelling, or "
                               "register a factory for it",
                               cp->kind, kinds);
    }

    /* The ABI view of the configuration. */
    factory_call fc;
    if (!prepare_call(m, cfg, cp, &fc)) {
        release_call(&fc);
        return cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    }

    /* What the entry is, artifact included, taken before the create: a
     * library replaced while it loads then reads as changed next time. The
     * factory identifies it from the same request (cpex__mgr_identify). */
    char *fingerprint = NULL;
    {
        char artifact[CPEX__ARTIFACT_CAP];
        cpex__identify_fn identify = cpex__mgr_find_identify(m, cp->kind, f);
        artifact[0] = '\0';
        if (!identify || identify(&fc.req, artifact, sizeof artifact) == 0) {
            artifact[sizeof artifact - 1] = '\0';
            fingerprint = cpex__mgr_fingerprint_of(m, cfg, cp, false, artifact);
        }
    }
    bool isolate = fc.iso.mode != CPEX_ISOLATION_NONE;

    cpex_factory_product prod;
    memset(&prod, 0, sizeof prod);
    prod.registration.struct_size = (uint32_t)sizeof prod.registration;
    cpex_error ferr = CPEX_ERROR_INIT;
    cpex__log_scope scope;
    cpex__log_scope_enter(&scope, m->hub, cp->name);
    cpex_status st = f->create(f->data, &fc.req, &prod, &ferr);
    cpex__log_scope_leave(&scope);
    release_call(&fc);
    if (st != CPEX_OK) {
        cpex__free(fingerprint);
        if (ferr.count == 0 && ferr.code == CPEX_OK)
            cpex__error_add(&ferr, st, NULL, "the factory for kind '%s' failed without a message",
                            cp->kind);
        cpex__error_move_with(err, &ferr, &kwhere);
        cpex__free(prod.origin);
        cpex__free(prod.isolation_info);
        return st;
    }
    cpex_error_cleanup(&ferr);
    if (isolate && !prod.isolated) {
        /* A factory that knows nothing of isolation ran the plugin in
           process: never let an operator believe otherwise. */
        product_undo(&prod);
        cpex__free(prod.origin);
        cpex__free(prod.isolation_info);
        cpex__free(fingerprint);
        cpex__where iwhere = {cfg->source, cp->pos.line, cp->pos.column, cp->name, "isolation"};
        return cpex__error_add(err, CPEX_E_CONFIG, &iwhere,
                               "the factory for kind '%s' cannot run a plugin in a separate "
                               "process; 'isolation: process' works for lib: plugins only (remove "
                               "it, or load the plugin from a library)",
                               cp->kind);
    }

    cpex__plugin_setup s;
    memset(&s, 0, sizeof s);
    s.name = cp->name;
    s.kind = cp->kind;
    s.description = cp->description;
    s.mode = cp->mode;
    s.priority = cp->priority;
    s.on_error = cp->has_on_error ? cp->on_error : m->opts.default_on_error;
    s.timeout = cp->timeout > 0           ? cp->timeout
                : cfg->has_plugin_timeout ? cfg->plugin_timeout
                                          : m->opts.default_timeout;
    s.caps = cp->caps;
    s.capabilities = (const char *const *)cp->capabilities;
    s.capability_count = cp->capability_count;
    s.hooks = (const char *const *)cp->hooks;
    s.hook_count = cp->hook_count;
    s.sink_all = cp->hook_count == 0 && cp->mode == CPEX_MODE_AUDIT;
    s.config = cp->config;
    s.state_namespace = cp->state_namespace;
    s.origin = prod.origin;
    s.isolation = prod.isolation_info;
    s.release = prod.release;
    s.release_data = prod.release_data;

    if (cp->sha256 && !prod.sha256_checked) {
        /* A pin nobody checked must not pass for a checked one. */
        cpex__where pin = {cfg->source, cp->pos.line, cp->pos.column, cp->name, "sha256"};
        st = cpex__error_add(err, CPEX_E_CONFIG, &pin,
                             "'sha256' pins a file, but the factory of kind '%s' did not check "
                             "it; remove 'sha256' from this plugin, or load the plugin through "
                             "a factory that checks pins (the lib: loader does)",
                             cp->kind);
    } else {
        st = cpex__mgr_build_plugin(m, &s, &prod.registration, bindings, &where, out, err);
    }
    if (st != CPEX_OK) {
        /* The plugin was created: let it clean up, then the factory. */
        product_undo(&prod);
        cpex__free(s.origin);
        cpex__free(s.isolation);
        cpex__free(fingerprint);
        return st;
    }
    cpex__mgr_attach(*out, &s);
    (*out)->from_config = true;
    (*out)->fingerprint = fingerprint;
    char wired[512];
    cpex__registration_list_hooks(&(*out)->reg, wired, sizeof wired);
    cpex__log(cpex__sink_of(m), CPEX_LOG_DEBUG, cp->name,
              "created from %s (kind '%s'), reported as %s %s, hooks %s",
              (*out)->origin ? (*out)->origin : "a factory", cp->kind,
              (*out)->reg.name ? (*out)->reg.name : "(unnamed)",
              (*out)->reg.version ? (*out)->reg.version : "(no version)", wired);
    return CPEX_OK;
}

/* Destroy plugins of a change that will not be published. */
static void discard(cpex__plugin **batch, size_t count)
{
    for (size_t i = count; i-- > 0;)
        cpex__plugin_unref(batch[i]);
    cpex__free(batch);
}

/* Publish the current plugins plus `batch` and the pending bindings. */
cpex_status cpex__mgr_commit(cpex_manager *m, cpex__plugin **batch, size_t count,
                             const cpex__binding_list *bindings)
{
    cpex__snapshot *cur = cpex__mgr_current(m);
    size_t total = cur->plugin_count + count;
    cpex__plugin **all = cpex__calloc(total ? total : 1, sizeof *all);
    if (!all)
        return CPEX_E_NOMEM;
    if (cur->plugin_count)
        memcpy(all, cur->plugins, cur->plugin_count * sizeof *all);
    if (count)
        memcpy(all + cur->plugin_count, batch, count * sizeof *all);
    cpex_status st = cpex__mgr_publish_bound(m, all, total, bindings);
    cpex__free(all);
    return st;
}

static void unbind_names(const cpex__binding_list *bindings, size_t count);

/* Bind the change's new bindings onto their hook names; false (and none
 * bound) on OOM. */
static bool bind_names(const cpex__binding_list *bindings)
{
    size_t bound = 0;
    for (; bindings && bound < bindings->count; bound++)
        if (!cpex__hook_name_bind(bindings->items[bound].hook, bindings->items[bound].type))
            break;
    if (!bindings || bound == bindings->count)
        return true;
    unbind_names(bindings, bound);
    return false;
}

/* Take back the first `count` bindings (those names had none before). */
static void unbind_names(const cpex__binding_list *bindings, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        cpex__hook_name *h = bindings->items[i].hook;
        cpex__free(h->payload_type);
        h->payload_type = NULL;
    }
}

/* Publish exactly `all` with the pending bindings. */
cpex_status cpex__mgr_publish_bound(cpex_manager *m, cpex__plugin *const *all, size_t total,
                                    const cpex__binding_list *bindings)
{
    /* The change's new bindings go onto their hook names; a publish that
     * fails takes them back. */
    if (!bind_names(bindings))
        return CPEX_E_NOMEM;
    if (cpex__mgr_publish(m, all, total) == CPEX_OK)
        return CPEX_OK;
    if (bindings)
        unbind_names(bindings, bindings->count);
    return CPEX_E_NOMEM;
}

/* The policy of a load's file, for the plugins registered plus `batch`. */
static cpex__policy *load_policy(cpex_manager *m, cpex__config *cfg, cpex__apply *ap,
                                 const cpex__snapshot *cur, cpex__plugin *const *batch, size_t made,
                                 cpex_error *err)
{
    if (m->policy && (m->policy->cfg->present || m->policy->cond_count))
        cpex__log(cpex__sink_of(m), CPEX_LOG_WARN, NULL,
                  "%s: its routing (routes, groups, settings, conditions) replaces the routing "
                  "of '%s', loaded earlier; to change one configuration as a whole use "
                  "cpex_manager_reload_file",
                  cfg->source, m->policy->source);
    size_t total = cur->plugin_count + made;
    cpex__plugin **all = cpex__calloc(total ? total : 1, sizeof *all);
    if (!all) {
        cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory loading '%s'", cfg->source);
        return NULL;
    }
    if (cur->plugin_count)
        memcpy(all, cur->plugins, cur->plugin_count * sizeof *all);
    if (made)
        memcpy(all + cur->plugin_count, batch, made * sizeof *all);
    cpex__policy *p = cpex__mgr_policy_for(ap, all, total, err);
    cpex__free(all);
    return p;
}

void cpex__mgr_apply_settings(cpex_manager *m, const cpex__config *cfg, bool replace)
{
    /* Each setting the file leaves out keeps its value on a load, and
       returns to the host's option (m->base) on a reload. Computed first,
       stored once each: an invoke never sees a mix of the two. */
    const cpex__settings_base *b = &m->base;
    if (cfg->unknown_hook_deny || replace) /* a load only ever turns it on */
        atomic_store(&m->deny_unknown_hooks, cfg->unknown_hook_deny || b->deny_unknown_hooks);
    if (cfg->has_short_circuit || replace)
        atomic_store(&m->short_circuit,
                     cfg->has_short_circuit ? cfg->short_circuit_on_deny : b->short_circuit);
    int records = cfg->execution_records, metrics = cfg->metrics, overflow = cfg->audit_overflow;
    int64_t queue = cfg->audit_queue_size;
    double wait = cfg->audit_max_wait;
    if (replace) {
        records = records >= 0 ? records : b->execution_records;
        metrics = metrics >= 0 ? metrics : b->metrics;
        queue = queue > 0 ? queue : (int64_t)b->audit_queue_size;
        overflow = overflow >= 0 ? overflow : (int)b->audit_overflow;
        wait = wait >= 0 ? wait : b->audit_max_wait;
    }
    cpex__observe_apply_settings(m, records, metrics, queue, overflow, wait);
}

static cpex_status load_config(cpex_manager *m, cpex__config *cfg, cpex_error *err)
{
    cpex_error local = CPEX_ERROR_INIT;
    for (size_t i = 0; i < cfg->warning_count; i++)
        cpex__log(cpex__sink_of(m), CPEX_LOG_WARN, NULL, "%s", cfg->warnings[i]);
    cpex__mgr_lock(m);
    cpex__snapshot *cur = cpex__mgr_current(m);
    cpex__plugin **batch = NULL;
    size_t made = 0;
    cpex__binding_list bindings = {0, 0, NULL};
    cpex__state_backend *fresh_state = NULL; /* plugin_settings.state, installed on success */
    cpex__policy *policy = NULL;
    cpex__apply ap;
    cpex__apply_init(&ap, m, cfg, &bindings, NULL);
    if (m->shut_down) {
        cpex__error_add(&local, CPEX_E_STATE, NULL,
                        "the manager was shut down; create a new manager to load '%s'",
                        cfg->source);
        goto fail;
    }
    if (cpex__mgr_unpublished(m)) { /* their names are not in `cur` */
        cpex__error_add(&local, CPEX_E_NOMEM, NULL,
                        "out of memory publishing the plugins registered before loading '%s'; "
                        "nothing was loaded: retry",
                        cfg->source);
        goto fail;
    }
    if (cpex__mgr_state_prepare(m, cfg, &fresh_state, &local) != CPEX_OK)
        goto fail;
    batch = cpex__calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *batch);
    if (!batch) {
        cpex__error_add(&local, CPEX_E_NOMEM, NULL, "out of memory loading '%s'", cfg->source);
        goto fail;
    }
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const cpex__config_plugin *cp = &cfg->plugins[i];
        if (cpex__mgr_name_taken(cur->plugins, cur->plugin_count, cp->name)) {
            cpex__where w = {cfg->source, cp->pos.line, cp->pos.column, cp->name, "name"};
            cpex__error_add(&local, CPEX_E_EXISTS, &w,
                            "a plugin named '%s' is already registered with this manager; "
                            "choose another name",
                            cp->name);
            continue;
        }
        cpex__plugin *p = NULL;
        if (cpex__mgr_create_configured(m, cfg, cp, &bindings, &p, &local) == CPEX_OK)
            batch[made++] = p;
    }
    if (local.code != CPEX_OK)
        goto fail;
    /* A file with routing keys (or conditions) replaces the routing; one
     * without leaves the current routing as it is (routing.h). */
    if (cfg->routing && cfg->routing->present) {
        if (!(policy = load_policy(m, cfg, &ap, cur, batch, made, &local)))
            goto fail;
    }
    if (m->init_called) {
        for (size_t i = 0; i < made; i++) {
            cpex__where w = {cfg->source, cfg->plugins[i].pos.line, cfg->plugins[i].pos.column,
                             batch[i]->name, NULL};
            cpex__mgr_init_plugin(m, batch[i], &w, &local);
        }
        cpex__mgr_init_made(&ap, &local);
        if (local.code != CPEX_OK)
            goto fail;
    }
    /* The backend goes in before the plugins that use it are published. */
    if (fresh_state && !cpex__mgr_state_install(m, fresh_state, cfg->source)) {
        cpex__error_add(&local, CPEX_E_NOMEM, NULL, "out of memory loading '%s'", cfg->source);
        goto fail;
    }
    fresh_state = NULL;
    cpex__policy *before = m->policy;
    if (policy)
        m->policy = policy;
    if (cpex__mgr_commit(m, batch, made, &bindings) != CPEX_OK) {
        m->policy = before;
        cpex__error_add(&local, CPEX_E_NOMEM, NULL, "out of memory publishing '%s'", cfg->source);
        goto fail;
    }
    if (policy)
        cpex__policy_unref(before);
    for (size_t i = 0; i < made; i++)
        cpex__plugin_unref(batch[i]); /* the snapshot holds them now */
    cpex__free(batch);
    cpex__binding_list_free(&bindings);
    cpex__apply_cleanup(&ap);
    cpex__mgr_apply_settings(m, cfg, false);
    cpex__mgr_unlock(m);
    return CPEX_OK;
fail:
    cpex__policy_unref(policy); /* its override instances go with it */
    cpex__apply_cleanup(&ap);
    discard(batch, made);
    cpex__binding_list_free(&bindings);
    cpex__state_free(fresh_state);
    cpex__mgr_unlock(m);
    cpex_status code = local.code;
    cpex__error_move(err, &local);
    return code;
}

cpex_status cpex_manager_load_string(cpex_manager *m, const char *yaml, size_t len,
                                     const char *source, const char *base_dir, cpex_error *err)
{
    if (!m || !yaml)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "load_string: manager and text required");
    cpex__config *cfg = NULL;
    cpex_status st = cpex__config_parse(yaml, len, source, base_dir, &cfg, err);
    if (st != CPEX_OK)
        return st;
    st = load_config(m, cfg, err);
    cpex__config_free(cfg);
    return st;
}

cpex_status cpex_manager_load_file(cpex_manager *m, const char *path, cpex_error *err)
{
    if (!m || !path)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "load_file: manager and path required");
    cpex__config *cfg = NULL;
    cpex_status st = cpex__config_parse_file(path, &cfg, err);
    if (st != CPEX_OK)
        return st;
    st = load_config(m, cfg, err);
    cpex__config_free(cfg);
    return st;
}

/* ------------------------------------------------------------------ */
/* Programmatic registration                                           */
/* ------------------------------------------------------------------ */

/*
 * The registration handed to cpex_manager_register is the manager's from
 * the call on (manager.h): a refusal destroys the instance, once, as the
 * factory path does. A registration too small to hold `destroy` has none.
 */
static void destroy_refused(cpex_manager *m, const char *name, const cpex_plugin_registration *reg)
{
    if (!reg || reg->struct_size < CPEX_REGISTRATION_SIZE_1_0 || !reg->destroy)
        return;
    cpex__log_scope scope;
    cpex__log_scope_enter(&scope, m ? m->hub : NULL, name);
    reg->destroy(reg->instance);
    cpex__log_scope_leave(&scope);
}

/* The spec as the manager keeps it; CPEX_OK, or the problem in `err`. */
static cpex_status setup_from_spec(cpex_manager *m, const cpex_plugin_spec *spec,
                                   const cpex__where *where, cpex__plugin_setup *s, cpex_error *err)
{
    if (spec->mode > CPEX_MODE_DISABLED)
        return cpex__error_add(err, CPEX_E_INVALID, where, "mode %u is not valid", spec->mode);
    if ((int)spec->on_error != -1 && (unsigned)spec->on_error > CPEX_ON_ERROR_DISABLE)
        return cpex__error_add(err, CPEX_E_INVALID, where, "on_error %d is not valid",
                               (int)spec->on_error);
    if (spec->timeout != 0 && !cpex__timeout_valid(spec->timeout))
        return cpex__error_add(err, CPEX_E_INVALID, where,
                               "cpex_plugin_spec.timeout must be 0 (the manager's default) or a "
                               "number of seconds from %g to %g (got %g)",
                               CPEX_TIMEOUT_MIN, CPEX_TIMEOUT_MAX, spec->timeout);
    cpex__caps caps = 0;
    for (size_t i = 0; i < spec->capability_count; i++) {
        const char *suggestion = NULL;
        const char *cap = spec->capabilities[i] ? spec->capabilities[i] : "";
        cpex__cap_parse r = cpex__caps_parse(cap, &caps, &suggestion);
        if (r == CPEX_CAP_UNKNOWN)
            return cpex__error_add(err, CPEX_E_CONFIG, where, "unknown capability '%s'%s%s%s", cap,
                                   suggestion ? "; did you mean '" : "",
                                   suggestion ? suggestion : "", suggestion ? "'?" : "");
        if (r == CPEX_CAP_NOT_IMPLEMENTED)
            cpex__log(cpex__sink_of(m), CPEX_LOG_WARN, spec->name,
                      "capability '%s' is a CPEX capability libcpex does not implement yet; it "
                      "grants nothing",
                      cap);
    }
    memset(s, 0, sizeof *s);
    s->name = spec->name;
    s->kind = spec->kind;
    s->mode = spec->mode;
    s->priority = spec->priority;
    s->on_error = (int)spec->on_error == -1 ? m->opts.default_on_error : spec->on_error;
    s->timeout = spec->timeout > 0 ? spec->timeout : m->opts.default_timeout;
    s->caps = caps;
    s->capabilities = spec->capabilities;
    s->capability_count = spec->capability_count;
    s->hooks = spec->hooks;
    s->hook_count = spec->hooks ? spec->hook_count : 0;
    s->config = spec->config;
    /* Hosts built before state_namespace was appended pass the smaller size. */
    if (spec->struct_size >= offsetof(cpex_plugin_spec, state_namespace) + sizeof(const char *) &&
        spec->state_namespace) {
        char why[200];
        if (!cpex__state_namespace_valid(spec->state_namespace, why, sizeof why))
            return cpex__error_add(err, CPEX_E_INVALID, where, "state_namespace '%.100s': %s",
                                   spec->state_namespace, why);
        s->state_namespace = spec->state_namespace;
    }
    return CPEX_OK;
}

cpex_status cpex_manager_register(cpex_manager *m, const cpex_plugin_spec *spec,
                                  const cpex_plugin_registration *reg, cpex_error *err)
{
    /* Hosts built before state_namespace was appended pass the smaller size. */
    const size_t min_spec = offsetof(cpex_plugin_spec, state_namespace);
    if (!m || !spec || !reg || spec->struct_size < min_spec || spec->struct_size > sizeof *spec ||
        !spec->name || !*spec->name) {
        destroy_refused(m, spec && spec->struct_size >= min_spec ? spec->name : NULL, reg);
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "register: a manager, a spec (from cpex_plugin_spec_init) with a "
                               "name, and a registration are required");
    }
    cpex__where where = {NULL, 0, 0, spec->name, NULL};
    cpex__plugin_setup s;
    cpex_status st = setup_from_spec(m, spec, &where, &s, err);
    if (st != CPEX_OK) {
        destroy_refused(m, spec->name, reg);
        return st;
    }

    cpex__mgr_lock(m);
    cpex__plugin *p = NULL;
    cpex__binding_list bindings = {0, 0, NULL};
    /* Registered means published or pending (publish.c): no publish here. */
    cpex__snapshot *cur = atomic_load(&m->snapshot);
    if (m->shut_down)
        st = cpex__error_add(err, CPEX_E_STATE, &where, "the manager was shut down");
    else if (cpex__mgr_name_taken(cur->plugins, cur->plugin_count, spec->name) ||
             cpex__mgr_name_taken(m->pending, m->pending_count, spec->name))
        st = cpex__error_add(err, CPEX_E_EXISTS, &where, "plugin '%s' is already registered",
                             spec->name);
    else
        st = cpex__mgr_build_plugin(m, &s, reg, &bindings, &where, &p, err);
    if (st != CPEX_OK) {
        cpex__binding_list_free(&bindings);
        cpex__mgr_unlock(m);
        destroy_refused(m, spec->name, reg);
        return st;
    }
    /* From here the plugin owns the instance: letting go of it destroys it
       (after shutdown, if it was initialized). Its initialize runs with
       nothing pending: code it runs (or waits for) may invoke, and an
       invoke that finds registrations pending needs the lock (publish.c). */
    if (m->init_called) {
        cpex__mgr_current(m);
        st = cpex__mgr_init_plugin(m, p, &where, err);
    }
    /* Its bindings go onto the hook names now (the next registration checks
       against them); the plugin is published by the next reader. */
    if (st == CPEX_OK && !bind_names(&bindings))
        st = cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    else if (st == CPEX_OK && !cpex__mgr_add_pending(m, p)) {
        unbind_names(&bindings, bindings.count);
        st = cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    }
    cpex__plugin_unref(p); /* the pending list holds it now, or nothing does */
    cpex__binding_list_free(&bindings);
    cpex__mgr_unlock(m);
    return st;
}

cpex_status cpex_manager_unregister(cpex_manager *m, const char *name, cpex_error *err)
{
    if (!m || !name)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "unregister: name required");
    cpex__mgr_lock(m);
    cpex__snapshot *cur = cpex__mgr_current(m);
    cpex_status st = CPEX_OK;
    size_t idx = cur->plugin_count;
    for (size_t i = 0; i < cur->plugin_count; i++)
        if (strcmp(cur->plugins[i]->name, name) == 0)
            idx = i;
    if (idx == cur->plugin_count && cpex__mgr_unpublished(m)) { /* it may be one of them */
        st = cpex__error_add(err, CPEX_E_NOMEM, NULL,
                             "unregister '%s': out of memory publishing the plugins registered "
                             "before it; nothing was changed: retry",
                             name);
    } else if (idx == cur->plugin_count) {
        st = cpex__error_add(err, CPEX_E_NOT_FOUND, NULL, "no plugin named '%s' is registered",
                             name);
    } else {
        cpex__plugin **rest = cpex__calloc(cur->plugin_count, sizeof *rest);
        if (!rest) {
            st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
        } else {
            size_t n = 0;
            for (size_t i = 0; i < cur->plugin_count; i++)
                if (i != idx)
                    rest[n++] = cur->plugins[i];
            /* The old snapshot's reference is the last one unless background work holds
             * it: the plugin is shut down and destroyed when publish frees it. */
            if (cpex__mgr_publish(m, rest, n) != CPEX_OK)
                st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
            cpex__free(rest);
        }
    }
    cpex__mgr_unlock(m);
    return st;
}
