/*
 * state_manager.c — which state backend a manager has, and the public
 * status query.
 *
 * A manager has one backend. The host chooses it with
 * cpex_manager_options.state, or a configuration with
 * `plugin_settings.state`; without either it is the memory backend. A
 * configuration may choose a backend only while the manager has never had
 * a plugin (later, plugins already keep state in the one in force) and
 * only when nothing else chose one; repeating the same setting is fine.
 * A replaced backend is kept until the manager is freed, so a slot that
 * loaded the old pointer an instant before can never touch freed memory.
 */
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/core.h"
#include "core/manager_internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/errors.h"

cpex_status cpex__mgr_state_init(cpex_manager *m, const cpex_state_options *options,
                                 cpex_error *err)
{
    char why[300];
    cpex__state_backend *b = NULL;
    int st = cpex__state_new(options, &m->hub->sink, &b, why, sizeof why);
    if (st != CPEX_OK)
        return cpex__error_add(err, (cpex_status)st, NULL, "cpex_manager_new: %s", why);
    if (options && !(b->origin = cpex__strdup("host options"))) {
        cpex__state_free(b);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    atomic_init(&m->hub->state, b);
    return CPEX_OK;
}

cpex_status cpex__mgr_state_prepare(cpex_manager *m, const cpex__config *cfg,
                                    cpex__state_backend **fresh, cpex_error *err)
{
    *fresh = NULL;
    if (!cfg->has_state)
        return CPEX_OK;
    cpex__where w = {cfg->source, cfg->state_pos.line, cfg->state_pos.column, NULL,
                     "plugin_settings.state"};
    cpex__state_backend *cur = atomic_load(&m->hub->state);
    cpex_state_options want = cfg->state;
    cpex__state_options_defaults(&want);
    if (cpex__state_options_same(&cur->opts, &want))
        return CPEX_OK;
    if (cur->origin)
        return cpex__error_add(err, CPEX_E_CONFIG, &w,
                               "this manager's state backend is already %s (chosen by %s); a "
                               "manager has one backend: remove plugin_settings.state from "
                               "this file or make it the same",
                               cur->description, cur->origin);
    if (cpex__mgr_current(m)->plugin_count > 0 || cpex__mgr_unpublished(m))
        return cpex__error_add(err, CPEX_E_CONFIG, &w,
                               "plugin_settings.state would change the state backend of a "
                               "manager that already has plugins (they keep their state in %s); "
                               "put it in the first configuration the manager loads",
                               cur->description);
    char why[300];
    int st = cpex__state_new(&want, &m->hub->sink, fresh, why, sizeof why);
    if (st != CPEX_OK)
        return cpex__error_add(err, (cpex_status)st, &w, "%s", why);
    return CPEX_OK;
}

bool cpex__mgr_state_install(cpex_manager *m, cpex__state_backend *fresh, const char *origin)
{
    if (!(fresh->origin = cpex__strdup(origin)))
        return false;
    cpex__state_backend *old = atomic_load(&m->hub->state);
    fresh->retired = old;
    atomic_store_explicit(&m->hub->state, fresh, memory_order_release);
    cpex__log(&m->hub->sink, CPEX_LOG_INFO, NULL, "plugin state: %s (from %s)", fresh->description,
              origin);
    return true;
}

/* ------------------------------------------------------------------ */
/* Status                                                              */
/* ------------------------------------------------------------------ */

cpex_status cpex_manager_state_status(cpex_manager *m, double probe_timeout, cpex_state_status *out)
{
    if (!m || !out || out->struct_size < sizeof *out)
        return CPEX_E_INVALID;
    memset(out, 0, sizeof *out);
    out->struct_size = (uint32_t)sizeof *out;
    cpex__state_backend *b = atomic_load_explicit(&m->hub->state, memory_order_acquire);
    out->backend = b->opts.backend;
    out->description = cpex__strdup(b->description);
    out->origin = cpex__strdup(b->origin ? b->origin : "default");
    out->answers = true;
    if (probe_timeout > 0) {
        out->probed = true;
        cpex__state_err e = {""};
        int64_t start = cpex__now_ns();
        int32_t st =
            b->ops->ping(b, cpex__deadline_add(start, cpex__seconds_to_ns(probe_timeout)), &e);
        double ms = (double)(cpex__now_ns() - start) / 1e6;
        cpex__state_note(b, st, &e, NULL);
        out->answers = st == CPEX_HOST_OK;
        out->message =
            out->answers && out->backend == CPEX_STATE_MEMORY
                ? cpex__strdup("in this process, always there")
            : out->answers
                ? cpex__asprintf("answered a PING in %.1f ms", ms)
                : cpex__asprintf("%s after %.1f ms: %s",
                                 st == CPEX_HOST_ETIMEOUT ? "no answer in time" : "unavailable", ms,
                                 e.text[0] ? e.text : "no detail");
    }
    out->failing = atomic_load(&b->failing);
    out->calls = atomic_load(&b->calls);
    out->failures = atomic_load(&b->failures);
    out->unavailable = atomic_load(&b->unavailable);
    out->timeouts = atomic_load(&b->timeouts);
    out->outages = atomic_load(&b->outages);
    out->keys = b->ops->keys ? b->ops->keys(b) : 0;
    if (!out->description || !out->origin || (out->probed && !out->message)) {
        cpex_state_status_cleanup(out);
        return CPEX_E_NOMEM;
    }
    return CPEX_OK;
}

void cpex_state_status_cleanup(cpex_state_status *s)
{
    if (!s)
        return;
    cpex__free(s->description);
    cpex__free(s->origin);
    cpex__free(s->message);
    s->description = s->origin = s->message = NULL;
}
