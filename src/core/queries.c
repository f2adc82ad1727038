/*
 * queries.c — read-only questions about the registered plugins; each
 * reads the published snapshot under the RCU read section.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* Queries                                                             */
/* ------------------------------------------------------------------ */

bool cpex_manager_has_hooks_for(const cpex_manager *cm, const char *hook)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m || !hook)
        return false;
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load(&m->snapshot);
    const char *canonical = cpex__hook_canonical(hook); /* either prompt hook spelling */
    const cpex__hook *found = cpex__snapshot_find(s, canonical, strlen(canonical));
    bool any = found && found->count > 0;
    /* Disabled-mode plugins are not in the hook index; ask them. */
    for (size_t i = 0; !any && i < s->plugin_count; i++)
        if (s->plugins[i]->mode == CPEX_MODE_DISABLED)
            for (char **h = s->plugins[i]->hooks; h && *h && !any; h++)
                any = strcmp(*h, canonical) == 0;
    cpex__rcu_exit(t);
    return any;
}

size_t cpex_manager_plugin_count(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return 0;
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    size_t n = atomic_load(&m->snapshot)->plugin_count;
    cpex__rcu_exit(t);
    return n;
}

char **cpex_manager_plugin_names(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return NULL;
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load(&m->snapshot);
    char **v = cpex__calloc(s->plugin_count + 1, sizeof *v);
    for (size_t i = 0; v && i < s->plugin_count; i++) {
        v[i] = cpex__strdup(s->plugins[i]->name);
        if (!v[i]) {
            cpex_strv_free(v);
            v = NULL;
        }
    }
    cpex__rcu_exit(t);
    return v;
}

/*
 * Whether libcpex may fill `info`: there, and at least the first layout.
 * Every field filled today is part of that layout; a field appended later
 * must be filled (and freed) only where the caller's struct_size covers it.
 */
static bool info_fillable(const cpex_plugin_info *info)
{
    return info && info->struct_size >= CPEX_PLUGIN_INFO_SIZE_V1;
}

/* Whether the caller's struct has the (appended) `isolation` field. */
static bool info_has_isolation(const cpex_plugin_info *info)
{
    return info->struct_size >= offsetof(cpex_plugin_info, isolation) + sizeof(char *);
}

/* Empty an info, keeping the caller's struct_size. */
static void info_reset(cpex_plugin_info *info)
{
    uint32_t size = info->struct_size;
    memset(info, 0, size < sizeof *info ? size : sizeof *info);
    info->struct_size = size;
}

void cpex_plugin_info_cleanup(cpex_plugin_info *info)
{
    if (!info_fillable(info))
        return;
    cpex__free(info->name);
    cpex__free(info->kind);
    cpex__free(info->origin);
    if (info_has_isolation(info))
        cpex__free(info->isolation);
    cpex__free(info->reported_name);
    cpex__free(info->reported_version);
    cpex__free(info->description);
    cpex__free(info->reason);
    cpex_strv_free(info->hooks);
    cpex_strv_free(info->capabilities);
    json_decref(info->config);
    if (info->struct_size >= CPEX_PLUGIN_INFO_SIZE_SINKS)
        cpex_strv_free(info->sink_hooks);
    info_reset(info);
}

cpex_status cpex_manager_plugin_info(const cpex_manager *cm, const char *name,
                                     cpex_plugin_info *info)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m || !name || !info_fillable(info))
        return CPEX_E_INVALID;
    info_reset(info);
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load(&m->snapshot);
    cpex__plugin *p = NULL;
    for (size_t i = 0; i < s->plugin_count; i++)
        if (strcmp(s->plugins[i]->name, name) == 0)
            p = s->plugins[i];
    if (!p) {
        cpex__rcu_exit(t);
        return CPEX_E_NOT_FOUND;
    }
    info->name = cpex__strdup(p->name);
    info->kind = cpex__strdup(p->kind);
    info->origin = cpex__strdup(p->origin);
    bool has_iso = info_has_isolation(info);
    if (has_iso)
        info->isolation = cpex__strdup(p->isolation);
    info->reported_name = cpex__strdup(p->reg.name);
    info->reported_version = cpex__strdup(p->reg.version);
    info->description = cpex__strdup(p->description);
    info->mode = p->mode;
    info->priority = p->priority;
    info->on_error = p->on_error;
    info->timeout = p->timeout;
    info->state = (cpex_plugin_state)atomic_load(&p->state);
    info->disabled = atomic_load(&p->disabled) != 0;
    pthread_mutex_lock(&p->lock);
    info->reason = cpex__strdup(p->reason);
    pthread_mutex_unlock(&p->lock);
    info->hooks = cpex__strv_dup(p->hooks);
    info->capabilities = cpex__strv_dup(p->capabilities);
    /* A copy, not a reference: jansson's refcounts are not safe across threads. */
    info->config = json_deep_copy(p->config);
    bool sinks_ok = true;
    if (info->struct_size >= CPEX_PLUGIN_INFO_SIZE_SINKS && p->reg.verdict) {
        info->audit_sink = true;
        if (!p->sink_all && p->sink_hooks)
            sinks_ok = (info->sink_hooks = cpex__strv_dup(p->sink_hooks)) != NULL;
    }
    cpex__rcu_exit(t);
    bool ok = info->name && (!p->kind || info->kind) && (!p->origin || info->origin) &&
              (!has_iso || !p->isolation || info->isolation) && info->hooks && info->capabilities &&
              info->config && sinks_ok;
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
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load(&m->snapshot);
    for (size_t i = 0; i < s->plugin_count; i++)
        if (strcmp(s->plugins[i]->name, name) == 0)
            cfg = json_deep_copy(s->plugins[i]->config);
    cpex__rcu_exit(t);
    return cfg;
}
