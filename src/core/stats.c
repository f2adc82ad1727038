/*
 * stats.c — the metrics snapshot a host reads (cpex/observe.h): every
 * label set's counters summed over the threads' shards (metrics.c), in one
 * allocation the caller frees.
 */
#include <string.h>

#include "core/observe.h"
#include "util/alloc.h"

int64_t cpex_stats_bucket_le_ns(size_t index)
{
    if (index + 1 >= CPEX_STATS_BUCKETS)
        return INT64_MAX;
    return (int64_t)1 << (10 + index);
}

double cpex_plugin_stats_quantile(const cpex_plugin_stats *row, double q)
{
    if (!row || !(q > 0 && q < 1))
        return -1;
    uint64_t total = 0;
    for (size_t i = 0; i < CPEX_STATS_BUCKETS; i++)
        total += row->buckets[i];
    if (total == 0)
        return -1;
    double rank = q * (double)total, seen = 0;
    for (size_t i = 0; i < CPEX_STATS_BUCKETS; i++) {
        double n = (double)row->buckets[i];
        if (n > 0 && seen + n >= rank) {
            double lo = i ? (double)cpex_stats_bucket_le_ns(i - 1) : 0;
            /* The open last bucket: its lower bound is the best estimate. */
            if (i + 1 == CPEX_STATS_BUCKETS)
                return lo;
            double hi = (double)cpex_stats_bucket_le_ns(i);
            return lo + (hi - lo) * ((rank - seen) / n);
        }
        seen += n;
    }
    return (double)cpex_stats_bucket_le_ns(CPEX_STATS_BUCKETS - 2);
}

/* Mark the label ids the published snapshot uses (its plugins' handlers
 * and its hooks): those rows are shown even before they count anything. */
static void mark_live(cpex_manager *m, unsigned char *live, size_t n)
{
    cpex__mgr_sync(m);
    cpex__rcu_ticket t = cpex__rcu_enter(&m->rcu);
    const cpex__snapshot *s = atomic_load(&m->snapshot);
    for (size_t i = 0; i < s->hook_count; i++) {
        const cpex__hook *h = &s->hooks[i];
        if (!h->metric_ids)
            continue;
        if (h->metric_id < n)
            live[h->metric_id] = 1;
        for (size_t k = 0; k < h->count; k++)
            if (h->metric_ids[k] < n)
                live[h->metric_ids[k]] = 1;
    }
    cpex__rcu_exit(t);
}

cpex_status cpex_manager_stats(const cpex_manager *cm, cpex_stats **out)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!out)
        return CPEX_E_INVALID;
    *out = NULL;
    if (!m)
        return CPEX_E_INVALID;
    cpex__mlabel *labels;
    cpex__msum *sums;
    size_t n;
    if (!cpex__metrics_read(m->hub->metrics, &labels, &sums, &n))
        return CPEX_E_NOMEM;
    unsigned char *live = cpex__calloc(n ? n : 1, 1);
    if (!live) {
        cpex__metrics_read_free(labels, sums, n);
        return CPEX_E_NOMEM;
    }
    mark_live(m, live, n);
    size_t rows = 0, hooks = 0, text = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t calls = 0;
        for (size_t c = 0; c < CPEX__MC_OUTCOMES; c++)
            calls += sums[i].c[c];
        bool shown = live[i] || calls > 0;
        live[i] = shown;
        if (!shown)
            continue;
        if (labels[i].kind == CPEX__ML_HOOK)
            hooks++;
        else
            rows++;
        text += strlen(labels[i].plugin) + strlen(labels[i].hook) + 2;
    }
    size_t size = sizeof(cpex_stats) + rows * sizeof(cpex_plugin_stats) +
                  hooks * sizeof(cpex_hook_stats) + text;
    cpex_stats *st = cpex__calloc(1, size);
    if (!st) {
        cpex__free(live);
        cpex__metrics_read_free(labels, sums, n);
        return CPEX_E_NOMEM;
    }
    st->struct_size = (uint32_t)sizeof *st;
    st->metrics_on = atomic_load(&m->hub->metrics_on);
    st->plugin_stats_size = (uint32_t)sizeof(cpex_plugin_stats);
    st->hook_stats_size = (uint32_t)sizeof(cpex_hook_stats);
    cpex_plugin_stats *prow = (cpex_plugin_stats *)(void *)(st + 1);
    cpex_hook_stats *hrow = (cpex_hook_stats *)(void *)(prow + rows);
    char *strings = (char *)(hrow + hooks);
    st->plugins = prow;
    st->hooks = hrow;
    for (size_t i = 0; i < n; i++) {
        if (!live[i])
            continue;
        size_t pl = strlen(labels[i].plugin), hl = strlen(labels[i].hook);
        char *plugin = strings;
        memcpy(plugin, labels[i].plugin, pl + 1);
        char *hook = plugin + pl + 1;
        memcpy(hook, labels[i].hook, hl + 1);
        strings = hook + hl + 1;
        const cpex__msum *s = &sums[i];
        if (labels[i].kind == CPEX__ML_HOOK) {
            cpex_hook_stats *h = &hrow[st->hook_count++];
            h->struct_size = (uint32_t)sizeof *h;
            h->hook = hook;
            h->invokes = s->c[CPEX__MC_ALLOWS] + s->c[CPEX__MC_DENIES];
            h->denies = s->c[CPEX__MC_DENIES];
            continue;
        }
        cpex_plugin_stats *r = &prow[st->plugin_count++];
        r->struct_size = (uint32_t)sizeof *r;
        r->kind = labels[i].kind == CPEX__ML_SINK ? CPEX_STATS_SINK : CPEX_STATS_HANDLER;
        r->plugin = plugin;
        r->hook = hook;
        for (size_t c = 0; c < CPEX__MC_OUTCOMES; c++)
            r->invocations += s->c[c];
        r->allows = s->c[CPEX__MC_ALLOWS];
        r->denies = s->c[CPEX__MC_DENIES];
        r->errors = s->c[CPEX__MC_ERRORS];
        r->timeouts = s->c[CPEX__MC_TIMEOUTS];
        r->disables = s->c[CPEX__MC_DISABLES];
        r->cancelled = s->c[CPEX__MC_CANCELLED];
        r->not_started = s->c[CPEX__MC_NOT_STARTED];
        r->duration_sum_ns = s->c[CPEX__MC_DUR_SUM];
        memcpy(r->buckets, s->b, sizeof r->buckets);
        for (size_t k = 0; k < CPEX_STATS_BUCKETS; k++)
            r->duration_count += r->buckets[k];
    }
    cpex__audit_counts(m->hub->audit, &st->audit_enqueued, &st->audit_delivered, &st->audit_dropped,
                       &st->audit_depth, &st->audit_capacity);
    cpex__free(live);
    cpex__metrics_read_free(labels, sums, n);
    *out = st;
    return CPEX_OK;
}

void cpex_stats_free(cpex_stats *stats) { cpex__free(stats); }
