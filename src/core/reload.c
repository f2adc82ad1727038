/*
 * reload.c — replacing a manager's configuration while it serves
 * (cpex/reload.h), its counters and its callback.
 *
 * The new registry is built beside the old one under the manager's write
 * lock: plugins from code stay; each entry of the file either keeps the
 * published instance whose fingerprint (apply.h) is equal, or gets a new
 * one; the routing policy is the file's (override instances kept the same
 * way); what is new is initialized; then one publish swaps the snapshot
 * (one generation) and waits for invokes on the old one. Freeing the old
 * snapshot drops the last references of the plugins the file no longer
 * has, which shuts each down and destroys it — after the last invoke, and
 * never during a handler (background calls hold their own references).
 */
#include "core/reload.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/apply.h"
#include "core/config.h"
#include "core/routing.h"
#include "core/state.h"
#include "util/alloc.h"

cpex__reload_state *cpex__reload_state_new(void)
{
    cpex__reload_state *r = cpex__calloc(1, sizeof *r);
    if (r) {
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->watch_lock, NULL);
    }
    return r;
}

void cpex__reload_state_free(cpex__reload_state *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->identify_count; i++)
        cpex__free(r->identify[i].scheme);
    cpex__free(r->identify);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->watch_lock);
    cpex__free(r);
}

uint64_t cpex_manager_generation(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return 0;
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    uint64_t g = atomic_load(&m->snapshot)->generation;
    cpex__rcu_exit(t);
    return g;
}

size_t cpex_manager_route_cache_size(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return 0;
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    size_t n = cpex__route_cache_size(atomic_load(&m->snapshot)->routing);
    cpex__rcu_exit(t);
    return n;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

/* Copy `text` with every '…' or "…" quoted span, and every [...] list,
 * replaced by '…': messages quote values from the file. */
static void redact(const char *text, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 8 < cap; p++) {
        char close = *p == '\'' ? '\'' : *p == '"' ? '"' : *p == '[' ? ']' : 0;
        const char *end = close ? strchr(p + 1, close) : NULL;
        /* One character says nothing secret (libyaml's "expected ','"). */
        if (end && end - p <= 2)
            end = NULL;
        /* An apostrophe in prose ("plugin's") has no closing quote nearby
         * on the same line: leave it. */
        const char *nl = strchr(p + 1, '\n');
        if (end && (!nl || end < nl) &&
            (close != '\'' || p == text || p[-1] == ' ' || p[-1] == '(' || p[-1] == '`')) {
            out[o++] = *p;
            memcpy(out + o, "\xe2\x80\xa6", 3); /* … */
            o += 3;
            out[o++] = close;
            p = end;
            continue;
        }
        out[o++] = *p == '\n' ? ' ' : *p;
    }
    out[o] = '\0';
}

/* The problems of `err` as one redacted line. */
static void redacted_problems(const cpex_error *err, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; err && i < err->count && o + 16 < cap; i++) {
        const cpex_error_item *it = &err->items[i];
        /* The position and the plugin's name stay readable: the message's
         * own prefix of them is skipped and written again unredacted. */
        const char *body = it->message ? it->message : "(out of memory)";
        char prefix[600] = "";
        size_t pl = 0;
        if (it->file) {
            pl = (size_t)snprintf(prefix, sizeof prefix, "%s:%d:%d: ", it->file, it->line,
                                  it->column);
            if (it->line <= 0)
                pl = (size_t)snprintf(prefix, sizeof prefix, "%s: ", it->file);
            if (pl < sizeof prefix && strncmp(body, prefix, pl) == 0)
                body += pl;
        }
        if (it->plugin && pl < sizeof prefix) {
            char who[300];
            int wl = snprintf(who, sizeof who, "plugin '%s': ", it->plugin);
            if (wl > 0 && (size_t)wl < sizeof who && strncmp(body, who, (size_t)wl) == 0)
                body += wl;
            snprintf(prefix + pl, sizeof prefix - pl, "%s", who);
        }
        char one[768];
        redact(body, one, sizeof one);
        int n = snprintf(out + o, cap - o, "%s%s%s", i ? "; " : "", prefix, one);
        if (n < 0)
            break;
        o += (size_t)n < cap - o ? (size_t)n : cap - o - 1;
    }
    if (err && err->count > 1 && o + 32 < cap)
        snprintf(out + o, cap - o, " (%zu problems)", err->count);
}

void cpex__reload_report(cpex_manager *m, cpex_reload_event_kind kind, const char *path,
                         const char *message, bool from_watcher)
{
    cpex__reload_state *r = m->reload;
    cpex_reload_fn fn = NULL;
    void *user = NULL;
    if (r) {
        pthread_mutex_lock(&r->lock);
        if (kind == CPEX_RELOAD_APPLIED) {
            r->successes++;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            r->last_success_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        } else if (kind == CPEX_RELOAD_FAILED) {
            r->failures++;
            snprintf(r->last_error, sizeof r->last_error, "%s", message);
        } else if (kind == CPEX_RELOAD_UNCHANGED) {
            r->unchanged++;
        }
        fn = r->fn;
        user = r->user;
        pthread_mutex_unlock(&r->lock);
    }
    uint64_t generation = cpex_manager_generation(m);
    int level = kind == CPEX_RELOAD_FAILED || kind == CPEX_RELOAD_WATCH_LOST ? CPEX_LOG_ERROR
                : kind == CPEX_RELOAD_UNCHANGED                              ? CPEX_LOG_DEBUG
                                                                             : CPEX_LOG_INFO;
    static const char *const what[] = {"reloaded", "reload refused, the configuration in use stays",
                                       "unchanged", "watch lost", "watch restored"};
    cpex__log(cpex__sink_of(m), (uint32_t)level, NULL, "%s '%s' (generation %llu)%s%s", what[kind],
              path, (unsigned long long)generation, *message ? ": " : "", message);
    if (fn) {
        cpex_reload_event ev;
        memset(&ev, 0, sizeof ev);
        ev.struct_size = (uint32_t)sizeof ev;
        ev.kind = kind;
        ev.path = path;
        ev.generation = generation;
        ev.message = message;
        ev.from_watcher = from_watcher;
        fn(user, &ev);
    }
}

void cpex_manager_on_reload(cpex_manager *m, cpex_reload_fn fn, void *user)
{
    if (!m || !m->reload)
        return;
    pthread_mutex_lock(&m->reload->lock);
    m->reload->fn = fn;
    m->reload->user = user;
    pthread_mutex_unlock(&m->reload->lock);
}

cpex_status cpex_manager_reload_status(const cpex_manager *cm, cpex_reload_status *st)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m || !st || st->struct_size < sizeof *st)
        return CPEX_E_INVALID;
    uint32_t size = st->struct_size;
    memset(st, 0, sizeof *st);
    st->struct_size = size;
    st->generation = cpex_manager_generation(m);
    cpex__reload_state *r = m->reload;
    if (!r)
        return CPEX_OK;
    pthread_mutex_lock(&r->lock);
    st->successes = r->successes;
    st->failures = r->failures;
    st->unchanged = r->unchanged;
    st->last_success_ns = r->last_success_ns;
    snprintf(st->last_error, sizeof st->last_error, "%s", r->last_error);
    pthread_mutex_unlock(&r->lock);
    cpex__watch_fill_status(m, st);
    return CPEX_OK;
}

/* ------------------------------------------------------------------ */
/* Reloading                                                           */
/* ------------------------------------------------------------------ */

static cpex__plugin *published_named(const cpex__snapshot *cur, const char *name, bool from_config)
{
    for (size_t i = 0; i < cur->plugin_count; i++)
        if (cur->plugins[i]->from_config == from_config && strcmp(cur->plugins[i]->name, name) == 0)
            return cur->plugins[i];
    return NULL;
}

/* The reload proper (the caller parsed `cfg`). */
static cpex_status reload_config(cpex_manager *m, cpex__config *cfg, cpex_error *err,
                                 size_t *kept_out)
{
    cpex_error local = CPEX_ERROR_INIT;
    for (size_t i = 0; i < cfg->warning_count; i++)
        cpex__log(cpex__sink_of(m), CPEX_LOG_WARN, NULL, "%s", cfg->warnings[i]);
    cpex__mgr_lock(m);
    cpex__snapshot *cur = cpex__mgr_current(m);
    cpex__binding_list bindings = {0, 0, NULL};
    cpex__apply ap;
    cpex__apply_init(&ap, m, cfg, &bindings, m->policy);
    cpex__policy *policy = NULL;
    cpex__state_backend *fresh_state = NULL; /* plugin_settings.state (one per manager) */
    size_t cap = cur->plugin_count + cfg->plugin_count;
    cpex__plugin **list = cpex__calloc(cap ? cap : 1, sizeof *list);
    cpex__plugin **created =
        cpex__calloc(cfg->plugin_count ? cfg->plugin_count : 1, sizeof *created);
    size_t n = 0, made = 0, kept = 0, code = 0;
    if (m->shut_down) {
        cpex__error_add(&local, CPEX_E_STATE, NULL,
                        "the manager was shut down; create a new manager to load '%s'",
                        cfg->source);
        goto fail;
    }
    if (cpex__mgr_unpublished(m)) { /* `cur` lacks them: they would be dropped */
        cpex__error_add(&local, CPEX_E_NOMEM, NULL,
                        "out of memory publishing the plugins registered before reloading "
                        "'%s'; the running configuration stays: retry",
                        cfg->source);
        goto fail;
    }
    if (!list || !created) {
        cpex__error_add(&local, CPEX_E_NOMEM, NULL, "out of memory reloading '%s'", cfg->source);
        goto fail;
    }
    if (cpex__mgr_state_prepare(m, cfg, &fresh_state, &local) != CPEX_OK)
        goto fail;
    /* Plugins registered from code stay, in their order. */
    for (size_t i = 0; i < cur->plugin_count; i++)
        if (!cur->plugins[i]->from_config)
            list[n++] = cur->plugins[i];
    code = n;
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const cpex__config_plugin *cp = &cfg->plugins[i];
        if (published_named(cur, cp->name, false)) {
            cpex__where w = {cfg->source, cp->pos.line, cp->pos.column, cp->name, "name"};
            cpex__error_add(&local, CPEX_E_EXISTS, &w,
                            "a plugin named '%s' is registered from code with this manager; "
                            "choose another name",
                            cp->name);
            continue;
        }
        cpex__plugin *old = published_named(cur, cp->name, true);
        char *fp = old && old->fingerprint ? cpex__mgr_fingerprint(m, cfg, cp, false) : NULL;
        bool keep = fp && strcmp(fp, old->fingerprint) == 0 && cpex__mgr_keepable(m, old);
        cpex__free(fp);
        if (keep) {
            list[n++] = old; /* its instance and state carry over */
            kept++;
            continue;
        }
        cpex__plugin *p = NULL;
        if (cpex__mgr_create_configured(m, cfg, cp, &bindings, &p, &local) == CPEX_OK) {
            created[made++] = p;
            list[n++] = p;
        }
    }
    if (local.code != CPEX_OK)
        goto fail;
    if (!(policy = cpex__mgr_policy_for(&ap, list, n, &local)))
        goto fail;
    if (m->init_called) {
        for (size_t i = 0; i < made; i++) {
            cpex__where w = {cfg->source, 0, 0, created[i]->name, NULL};
            cpex__mgr_init_plugin(m, created[i], &w, &local);
        }
        cpex__mgr_init_made(&ap, &local);
        if (local.code != CPEX_OK)
            goto fail;
    }
    /* The file's order is the registration order of its plugins (ties of
     * priority): kept plugins take their new place. Only writers read seq. */
    for (size_t i = code; i < n; i++)
        list[i]->seq = m->next_seq++;
    /* The backend goes in before the plugins that use it are published. */
    if (fresh_state && !cpex__mgr_state_install(m, fresh_state, cfg->source)) {
        cpex__error_add(&local, CPEX_E_NOMEM, NULL, "out of memory reloading '%s'", cfg->source);
        goto fail;
    }
    fresh_state = NULL;
    cpex__policy *before = m->policy;
    m->policy = policy;
    if (cpex__mgr_publish_bound(m, list, n, &bindings) != CPEX_OK) {
        m->policy = before;
        cpex__error_add(&local, CPEX_E_NOMEM, NULL, "out of memory publishing '%s'", cfg->source);
        goto fail;
    }
    /* The old snapshot is gone: what the file dropped is shut down now
     * (or when the background work that holds it ends). */
    cpex__policy_unref(before);
    for (size_t i = 0; i < made; i++)
        cpex__plugin_unref(created[i]);
    cpex__free(created);
    cpex__free(list);
    cpex__apply_cleanup(&ap);
    cpex__binding_list_free(&bindings);
    /* The file's manager-wide settings (unknown_hook, short_circuit,
       observation) replace those of the configuration it replaces: what it
       leaves out returns to the host's options. */
    cpex__mgr_apply_settings(m, cfg, true);
    cpex__mgr_unlock(m);
    if (kept_out)
        *kept_out = kept;
    return CPEX_OK;
fail:
    cpex__policy_unref(policy);
    cpex__state_free(fresh_state);
    cpex__apply_cleanup(&ap);
    for (size_t i = made; i-- > 0;)
        cpex__plugin_unref(created[i]);
    cpex__free(created);
    cpex__free(list);
    cpex__binding_list_free(&bindings);
    cpex__mgr_unlock(m);
    cpex_status code_st = local.code;
    cpex__error_move(err, &local);
    return code_st;
}

cpex_status cpex__reload_parsed(cpex_manager *m, cpex__config *cfg, const char *path,
                                bool from_watcher, cpex_error *err)
{
    cpex_error local = CPEX_ERROR_INIT;
    size_t kept = 0;
    cpex_status st = reload_config(m, cfg, &local, &kept);
    char msg[1100];
    if (st == CPEX_OK)
        snprintf(msg, sizeof msg, "%zu plugin%s, %zu kept with their state", cfg->plugin_count,
                 cfg->plugin_count == 1 ? "" : "s", kept);
    else
        redacted_problems(&local, msg, sizeof msg);
    cpex__error_move(err, &local);
    cpex__reload_report(m, st == CPEX_OK ? CPEX_RELOAD_APPLIED : CPEX_RELOAD_FAILED, path, msg,
                        from_watcher);
    return st;
}

/* A parse failure counts as a failed reload too. */
static cpex_status parse_failed(cpex_manager *m, const char *path, cpex_status st,
                                cpex_error *local, cpex_error *err, bool from_watcher)
{
    char msg[1100];
    redacted_problems(local, msg, sizeof msg);
    cpex__error_move(err, local);
    cpex__reload_report(m, CPEX_RELOAD_FAILED, path, msg, from_watcher);
    return st;
}

cpex_status cpex__reload_text(cpex_manager *m, const char *yaml, size_t len, const char *source,
                              const char *base_dir, bool from_watcher, cpex_error *err)
{
    cpex__config *cfg = NULL;
    cpex_error local = CPEX_ERROR_INIT;
    cpex_status st = cpex__config_parse(yaml, len, source, base_dir, &cfg, &local);
    if (st != CPEX_OK)
        return parse_failed(m, source ? source : "<string>", st, &local, err, from_watcher);
    st = cpex__reload_parsed(m, cfg, source ? source : "<string>", from_watcher, err);
    cpex__config_free(cfg);
    return st;
}

cpex_status cpex_manager_reload_string(cpex_manager *m, const char *yaml, size_t len,
                                       const char *source, const char *base_dir, cpex_error *err)
{
    if (!m || !yaml)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "reload_string: manager and text required");
    return cpex__reload_text(m, yaml, len, source, base_dir, false, err);
}

cpex_status cpex_manager_reload_file(cpex_manager *m, const char *path, cpex_error *err)
{
    if (!m || !path)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "reload_file: manager and path required");
    cpex__config *cfg = NULL;
    cpex_error local = CPEX_ERROR_INIT;
    cpex_status st = cpex__config_parse_file(path, &cfg, &local);
    if (st != CPEX_OK)
        return parse_failed(m, path, st, &local, err, false);
    st = cpex__reload_parsed(m, cfg, path, false, err);
    cpex__config_free(cfg);
    return st;
}
