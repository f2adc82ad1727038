/*
 * prometheus.c — the metrics in the Prometheus text exposition format
 * (version 0.0.4), built from a stats snapshot: one HELP and one TYPE line
 * per family, then its samples; label values escaped (backslash, double
 * quote, line feed). `cpex serve` exposes it as /metrics.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/observe.h"
#include "util/alloc.h"

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = cpex__realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* A label value, escaped as the format says. */
static void put_label(buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(b, "\\\\");
        else if (*s == '"')
            put(b, "\\\"");
        else if (*s == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *s);
    }
}

static void family(buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{who="..",hook=".."` without the closing brace. */
static void labels(buf *b, const char *name, const char *suffix, const char *who,
                   const cpex_plugin_stats *r)
{
    put(b, "%s%s{%s=\"", name, suffix, who);
    put_label(b, r->plugin);
    put(b, "\",hook=\"");
    put_label(b, r->hook);
    put(b, "\"");
}

typedef struct counter_family {
    const char *suffix; /* after cpex_plugin_ / cpex_sink_ */
    const char *help;
    size_t offset; /* of the uint64_t in cpex_plugin_stats */
} counter_family;

static const counter_family plugin_counters[] = {
    {"invocations_total", "Handler calls dispatched, every outcome.",
     offsetof(cpex_plugin_stats, invocations)},
    {"allows_total", "Handler calls that completed and allowed.",
     offsetof(cpex_plugin_stats, allows)},
    {"denies_total", "Handler calls that completed with a deny (dropped ones included).",
     offsetof(cpex_plugin_stats, denies)},
    {"errors_total",
     "Handler calls that failed: an error, an unknown decision, or not initialized.",
     offsetof(cpex_plugin_stats, errors)},
    {"timeouts_total", "Handler calls that overran their timeout.",
     offsetof(cpex_plugin_stats, timeouts)},
    {"disables_total", "Times a handler call disabled its plugin (on_error: disable).",
     offsetof(cpex_plugin_stats, disables)},
    {"cancelled_total", "Concurrent calls no longer awaited once a deny decided.",
     offsetof(cpex_plugin_stats, cancelled)},
    {"not_started_total", "Worker-thread calls still queued at their deadline.",
     offsetof(cpex_plugin_stats, not_started)},
};

static uint64_t field(const cpex_plugin_stats *r, size_t offset)
{
    uint64_t v;
    memcpy(&v, (const char *)r + offset, sizeof v);
    return v;
}

static void rows(buf *b, const cpex_stats *st, uint32_t kind)
{
    const char *prefix = kind == CPEX_STATS_SINK ? "cpex_sink_" : "cpex_plugin_";
    const char *who = kind == CPEX_STATS_SINK ? "sink" : "plugin";
    bool any = false;
    for (size_t i = 0; i < st->plugin_count; i++)
        any = any || cpex_stats_plugin(st, i)->kind == kind;
    if (!any)
        return;
    char name[96];
    for (size_t c = 0; c < sizeof plugin_counters / sizeof plugin_counters[0]; c++) {
        snprintf(name, sizeof name, "%s%s", prefix, plugin_counters[c].suffix);
        family(b, name, "counter", plugin_counters[c].help);
        for (size_t i = 0; i < st->plugin_count; i++) {
            const cpex_plugin_stats *r = cpex_stats_plugin(st, i);
            if (r->kind != kind)
                continue;
            labels(b, name, "", who, r);
            put(b, "} %llu\n", (unsigned long long)field(r, plugin_counters[c].offset));
        }
    }
    snprintf(name, sizeof name, "%sduration_seconds", prefix);
    family(b, name, "histogram",
           kind == CPEX_STATS_SINK ? "Time inside the verdict handler."
                                   : "Time inside the handler (queue time excluded).");
    for (size_t i = 0; i < st->plugin_count; i++) {
        const cpex_plugin_stats *r = cpex_stats_plugin(st, i);
        if (r->kind != kind)
            continue;
        uint64_t cum = 0;
        for (size_t k = 0; k < CPEX_STATS_BUCKETS; k++) {
            cum += r->buckets[k];
            labels(b, name, "_bucket", who, r);
            if (k + 1 == CPEX_STATS_BUCKETS)
                put(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
            else
                put(b, ",le=\"%.9g\"} %llu\n", (double)cpex_stats_bucket_le_ns(k) / 1e9,
                    (unsigned long long)cum);
        }
        labels(b, name, "_sum", who, r);
        put(b, "} %.9g\n", (double)r->duration_sum_ns / 1e9);
        labels(b, name, "_count", who, r);
        put(b, "} %llu\n", (unsigned long long)r->duration_count);
    }
}

static void hooks(buf *b, const cpex_stats *st)
{
    if (!st->hook_count)
        return;
    static const struct {
        const char *name, *help;
        int denies;
    } fams[] = {
        {"cpex_hook_invokes_total", "Invokes that ran the hook's pipeline.", 0},
        {"cpex_hook_denies_total", "Invokes of the hook that were denied.", 1},
    };
    for (size_t f = 0; f < 2; f++) {
        family(b, fams[f].name, "counter", fams[f].help);
        for (size_t i = 0; i < st->hook_count; i++) {
            const cpex_hook_stats *h = cpex_stats_hook(st, i);
            put(b, "%s{hook=\"", fams[f].name);
            put_label(b, h->hook);
            put(b, "\"} %llu\n", (unsigned long long)(fams[f].denies ? h->denies : h->invokes));
        }
    }
}

char *cpex_manager_metrics_text(const cpex_manager *m)
{
    cpex_stats *st = NULL;
    if (!m || cpex_manager_stats(m, &st) != CPEX_OK)
        return NULL;
    buf b = {cpex__malloc(4096), 0, 4096, false};
    if (!b.p) {
        cpex_stats_free(st);
        return NULL;
    }
    b.p[0] = '\0';
    rows(&b, st, CPEX_STATS_HANDLER);
    rows(&b, st, CPEX_STATS_SINK);
    hooks(&b, st);
    family(&b, "cpex_audit_verdicts_enqueued_total", "counter",
           "Verdicts handed to the audit queue.");
    put(&b, "cpex_audit_verdicts_enqueued_total %llu\n", (unsigned long long)st->audit_enqueued);
    family(&b, "cpex_audit_verdicts_delivered_total", "counter",
           "Verdicts whose audit sinks were all called.");
    put(&b, "cpex_audit_verdicts_delivered_total %llu\n", (unsigned long long)st->audit_delivered);
    family(&b, "cpex_audit_verdicts_dropped_total", "counter",
           "Verdicts lost: the audit queue was full past the wait, or in drop mode.");
    put(&b, "cpex_audit_verdicts_dropped_total %llu\n", (unsigned long long)st->audit_dropped);
    family(&b, "cpex_audit_queue_depth", "gauge", "Verdicts waiting for the audit sinks.");
    put(&b, "cpex_audit_queue_depth %u\n", st->audit_depth);
    family(&b, "cpex_audit_queue_capacity", "gauge", "The most verdicts the audit queue holds.");
    put(&b, "cpex_audit_queue_capacity %u\n", st->audit_capacity);
    cpex_stats_free(st);
    if (b.oom) {
        cpex__free(b.p);
        return NULL;
    }
    return b.p;
}
