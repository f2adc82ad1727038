/* plugin.c — lifetime of a registered plugin (see core.h). */

#include "core/core.h"
#include "core/observe.h"
#include "util/alloc.h"
#include "util/log.h"
#include "util/strv.h"

cpex__plugin *cpex__plugin_ref(cpex__plugin *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void cpex__plugin_unref(cpex__plugin *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: nothing can call the plugin any more. Keep the
     * lifecycle in order even when the host skipped shutdown (unregister). */
    cpex__log_scope scope;
    cpex__log_scope_enter(&scope, p->hub, p->name);
    if ((atomic_load(&p->state) == CPEX_STATE_INITIALIZED || atomic_load(&p->shutdown_owed)) &&
        p->reg.shutdown)
        p->reg.shutdown(p->reg.instance);
    if (p->reg.destroy)
        p->reg.destroy(p->reg.instance);
    cpex__log_scope_leave(&scope);
    if (p->release)
        p->release(p->release_data);
    cpex__free(p->name);
    cpex__free(p->state_ns);
    cpex__free(p->kind);
    cpex__free(p->origin);
    cpex__free(p->isolation);
    cpex__free(p->description);
    cpex_strv_free(p->capabilities);
    cpex_strv_free(p->hooks);
    json_decref(p->config);
    cpex__free(p->fingerprint);
    cpex__free(p->handlers);
    cpex__free(p->hook_ids);
    cpex__free(p->metric_ids);
    cpex__free(p->reason);
    cpex__rec_static_free(p->rec);
    cpex__free(p->rec);
    cpex_strv_free(p->sink_hooks);
    pthread_mutex_destroy(&p->lock);
    cpex__hub_unref(p->hub);
    cpex__free(p);
}

void cpex__plugin_set_reason(cpex__plugin *p, const char *reason)
{
    char *copy = cpex__strdup(reason);
    pthread_mutex_lock(&p->lock);
    cpex__free(p->reason);
    p->reason = copy;
    pthread_mutex_unlock(&p->lock);
}

bool cpex__plugin_disable(cpex__plugin *p, const char *reason)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&p->disabled, &expected, 1))
        return false;
    cpex__plugin_set_reason(p, reason);
    cpex__log(cpex__hub_sink(p->hub), CPEX_LOG_WARN, p->name, "disabled (on_error: disable): %s",
              reason);
    return true;
}
