/*
 * bench_report.c — derived figures, the targets and the output (a table or
 * JSON) of one cpex_bench run, measured (nanoseconds) or read back from
 * bench/callgrind.sh (instructions). Both print the same cases, derived
 * figures and targets; a target stated in time (ns, ms) or allocations has
 * no verdict on instruction counts, one that compares two cases of the
 * same kind (10 MB vs 1 KB) has.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* ------------------------------------------------------------------ */
/* Derived figures                                                     */
/* ------------------------------------------------------------------ */

static double med(const char *name)
{
    const bench_case *c = bench_find_case(name);
    return c && c->ran ? c->per_op.median : NAN;
}

static double allocs_of(const char *name)
{
    const bench_case *c = bench_find_case(name);
    if (!c || !c->have_allocs)
        return NAN;
    return c->allocs.libc > c->allocs.cpex ? c->allocs.libc : c->allocs.cpex;
}

static const char *skip_of(const char *name)
{
    const bench_case *c = bench_find_case(name);
    return c ? c->skipped : NULL;
}

enum { WAY_CLONE = 0, WAY_SLOT = 1 };
enum { SIZE_1K = 0, SIZE_100K = 1, SIZE_10M = 2 };

static const char *const args_case[2][3] = {
    {"modify_args_1k", "modify_args_100k", "modify_args_10m"},
    {"modify_args_slot_1k", "modify_args_slot_100k", "modify_args_slot_10m"}};
static const char *const allow_case[3] = {"seq_10", "seq_10_100k", "seq_10_10m"};

typedef struct derived {
    double base;
    double empty_ratio, empty_handle_ratio;
    double slope, slope_ratio, intercept;
    double args_extra[2][3]; /* modify_args* minus the all-allow case of its size */
    double args_10m_vs_1k[2];
    double text_extra[2];
    double conc_100k_vs_1k, conc_10m_vs_1k;
    double lib1_ratio, lib10_ratio;
} derived;

static derived derive(void)
{
    derived d;
    d.base = med("baseline");
    d.empty_ratio = med("empty") / d.base;
    d.empty_handle_ratio = med("empty_handle") / d.base;
    static const char *const seq[] = {"seq_1", "seq_5", "seq_10", "seq_50"};
    double x[4] = {1, 5, 10, 50}, y[4];
    int have = 1;
    for (int i = 0; i < 4; i++) {
        y[i] = med(seq[i]);
        have &= !isnan(y[i]);
    }
    d.slope = have ? bench_slope(x, y, 4) : NAN;
    d.intercept = have ? (y[0] + y[1] + y[2] + y[3]) / 4 - d.slope * (1 + 5 + 10 + 50) / 4.0 : NAN;
    d.slope_ratio = d.slope / d.base;
    for (int w = 0; w < 2; w++) {
        for (int s = 0; s < 3; s++)
            d.args_extra[w][s] = med(args_case[w][s]) - med(allow_case[s]);
        d.args_10m_vs_1k[w] = d.args_extra[w][SIZE_10M] / d.args_extra[w][SIZE_1K];
    }
    d.text_extra[WAY_CLONE] = med("modify_text_1k") - med("seq_10");
    d.text_extra[WAY_SLOT] = med("modify_text_slot_1k") - med("seq_10");
    d.conc_100k_vs_1k = med("conc_1_100k") / med("conc_1_1k");
    d.conc_10m_vs_1k = med("conc_1_10m") / med("conc_1_1k");
    d.lib1_ratio = med("lib_1") / med("seq_1");
    d.lib10_ratio = med("lib_10") / med("seq_10");
    return d;
}

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

typedef struct target {
    int round; /* 1: docs/performance.md first round; 2: issue 11 */
    const char *key;
    const char *what;
    double value;
    const char *unit; /* "ns", "ms", "x", "" (a count) */
    double limit;
    int at_most; /* 1: value <= limit holds; 0: value >= limit holds */
    int like;    /* a ratio of like figures: also judged on instruction counts */
    const char *skipped;
} target;

#define MAX_TARGETS 32

static void put(target *t, size_t *n, int round, const char *key, const char *what, double value,
                const char *unit, double limit, int at_most, int like, const char *skipped)
{
    if (*n < MAX_TARGETS)
        t[(*n)++] = (target){round, key, what, value, unit, limit, at_most, like, skipped};
}

static size_t targets(const derived *d, const bench_run_info *run, target *t)
{
    size_t n = 0;
    double ms = run->instructions ? 1 : 1e-6; /* setup figures: ns -> ms */
    const bench_threads_result *th = run->threads;
    double thr_eff = th && th->ran ? th->efficiency : NAN;
    double thr_ratio = th && th->ran ? th->ratio : NAN;
#define T(r, k, w, v, u, l, most) put(t, &n, r, k, w, v, u, l, most, 0, NULL)
#define TX(r, k, w, v, u, l, most, like, sk) put(t, &n, r, k, w, v, u, l, most, like, sk)
    /* Second round: the table of issue 11, one line per row. */
    T(2, "mixed_ns", "mixed 5 seq + 5 audit + 5 concurrent, 1 KB", med("mixed"), "ns", 5000, 1);
    T(2, "mixed_allocs", "  its allocations per invoke", allocs_of("mixed"), "", 2, 1);
    TX(2, "conc_10m_vs_1k", "1 concurrent plugin, 10 MB vs 1 KB", d->conc_10m_vs_1k, "x", 1.5, 1, 1,
       NULL);
    for (int w = 0; w < 2; w++) {
        const char *sk = skip_of(args_case[w][SIZE_1K]);
        TX(2, w ? "modify_slot_extra_ns" : "modify_extra_ns",
           w ? "rewrite one tool argument, extra (1.1 slot)"
             : "rewrite one tool argument, extra (1.0 clone)",
           d->args_extra[w][SIZE_1K], "ns", 150, 1, 0, sk);
        TX(2, w ? "modify_slot_allocs" : "modify_allocs", "  its allocations per invoke",
           allocs_of(args_case[w][SIZE_1K]), "", 3, 1, 0, sk);
        TX(2, w ? "modify_slot_10m_vs_1k" : "modify_10m_vs_1k", "  the same extra, 10 MB vs 1 KB",
           d->args_10m_vs_1k[w], "x", 2, 1, 1, sk);
    }
    T(2, "slope_ns", "each further sequential plugin", d->slope, "ns", 8, 1);
    T(2, "slope_vs_baseline", "  x a plain indirect call", d->slope_ratio, "x", 5, 1);
    T(2, "seq_1_ns", "1 sequential plugin", med("seq_1"), "ns", 40, 1);
    T(2, "empty_ns", "empty invoke by hook name", med("empty"), "ns", 12, 1);
    T(2, "empty_handle_ns", "empty invoke by hook handle", med("empty_handle"), "ns", 4, 1);
    T(2, "register_1000_ms", "register + initialize 1,000 distinct hooks",
      med("register_hooks_1000") * ms, "ms", 20, 1);
    T(2, "yaml_1000_ms", "  the same from one YAML", med("yaml_hooks_1000") * ms, "ms", 20, 1);
    T(2, "load_lib_1000_ms", "load + initialize 1,000 lib: plugins", med("load_lib_1000") * ms,
      "ms", 15, 1);
    T(2, "threads_vs_control", "2 threads vs 1, fraction of the control's", thr_eff, "x", 0.95, 0);
    /* First round (docs/performance.md), kept so that nothing regresses. */
    T(1, "empty_vs_baseline", "no-plugin invoke, x baseline", d->empty_ratio, "x", 10, 1);
    T(1, "round1_slope_vs_baseline", "per sequential plugin, x baseline", d->slope_ratio, "x", 10,
      1);
    T(1, "allocs_per_invoke", "heap allocations per all-allow invoke", allocs_of("seq_10"), "", 0,
      1);
    TX(1, "lib_vs_builtin", "shared library vs compiled in (10 plugins)", d->lib10_ratio, "x", 1.1,
       1, 1, NULL);
    T(1, "threads_ratio", "2 threads vs 1 thread throughput", thr_ratio, "x", 1.7, 0);
    T(1, "load_100_ms", "load + initialize 100 lib: plugins", med("load_lib_100") * ms, "ms", 100,
      1);
#undef T
#undef TX
    return n;
}

/* A time target's value is an instruction count in a callgrind report. */
static const char *shown_unit(const target *t, const bench_run_info *run)
{
    int timed = strcmp(t->unit, "ns") == 0 || strcmp(t->unit, "ms") == 0;
    return run->instructions && timed ? " instr" : t->unit;
}

static const char *verdict(const target *t, const bench_run_info *run)
{
    if (t->skipped)
        return "not available in this build";
    if (run->instructions && !t->like)
        return "n/a (instructions)";
    if (isnan(t->value))
        return "not run";
    int holds = t->at_most ? t->value <= t->limit + 1e-9 : t->value >= t->limit;
    return holds ? "holds" : "MISSED";
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

static void fmt(char *buf, size_t cap, double v, const char *unit)
{
    if (isnan(v) || isinf(v))
        snprintf(buf, cap, "-");
    else if (fabs(v) >= 1e6)
        snprintf(buf, cap, "%.0f%s", v, unit);
    else if (fabs(v) >= 100)
        snprintf(buf, cap, "%.1f%s", v, unit);
    else if (fabs(v) >= 1 || v == 0)
        snprintf(buf, cap, "%.2f%s", v, unit);
    else
        snprintf(buf, cap, "%.3f%s", v, unit);
}

static void print_case(const bench_case *c, const bench_run_info *run, double base)
{
    char val[32] = "", range[64] = "", ratio[32] = "", allocs[48] = "";
    int setup = c->kind == BENCH_CASE_SETUP;
    double scale = setup && !run->instructions ? 1e-6 : 1; /* setup: ms */
    if (c->skipped && !c->ran) {
        printf("  %-22s %-48s %s\n", c->name, c->what, c->skipped);
        return;
    }
    if (c->kind == BENCH_CASE_THREADS) {
        const bench_threads_result *t = run->threads;
        if (t && t->ran)
            printf("  %-22s %-48s %.2f of the control's scaling (2 vs 1: %.2f, control %.2f)\n",
                   c->name, c->what, t->efficiency, t->ratio, t->control_ratio);
        return;
    }
    if (!c->ran)
        return;
    fmt(val, sizeof val, c->per_op.median * scale, "");
    if (!run->instructions) {
        char lo[24], hi[24];
        fmt(lo, sizeof lo, c->per_op.min * scale, "");
        fmt(hi, sizeof hi, c->per_op.max * scale, "");
        snprintf(range, sizeof range, "[%s .. %s]", lo, hi);
    }
    if (!setup && !isnan(base))
        fmt(ratio, sizeof ratio, c->per_op.median / base, "");
    if (c->have_allocs) {
        if (c->allocs.libc >= 0)
            snprintf(allocs, sizeof allocs, "%.2f / %.2f", c->allocs.cpex, c->allocs.libc);
        else
            snprintf(allocs, sizeof allocs, "%.2f / -", c->allocs.cpex);
    }
    printf("  %-22s %-48s %12s %-4s %23s %9s %13s\n", c->name, c->what, val,
           setup ? (run->instructions ? "/op" : "ms") : "", range, ratio, allocs);
}

static void print_derived(const derived *d, const bench_run_info *run)
{
    const char *u = run->instructions ? " instr" : " ns";
    char a[32], b[32], c[32];
    printf("\nderived\n");
    fmt(a, sizeof a, d->slope, u);
    fmt(b, sizeof b, d->slope_ratio, "x");
    fmt(c, sizeof c, d->intercept, u);
    printf("  slope over 1, 5, 10, 50 sequential plugins: %s per plugin = %s baseline "
           "(intercept %s)\n",
           a, b, c);
    fmt(a, sizeof a, d->empty_ratio, "x");
    fmt(b, sizeof b, d->empty_handle_ratio, "x");
    printf("  empty invoke: %s baseline by name, %s by handle\n", a, b);
    for (int w = 0; w < 2; w++) {
        if (skip_of(args_case[w][SIZE_1K])) {
            printf("  rewrite one tool argument (%s): %s\n", w ? "1.1 slot" : "1.0 clone",
                   skip_of(args_case[w][SIZE_1K]));
            continue;
        }
        fmt(a, sizeof a, d->args_extra[w][SIZE_1K], u);
        fmt(b, sizeof b, d->args_extra[w][SIZE_100K], u);
        fmt(c, sizeof c, d->args_extra[w][SIZE_10M], u);
        printf("  rewrite one tool argument (%s), extra over all-allow: %s at 1 KB, %s at 100 KB, "
               "%s at 10 MB\n",
               w ? "1.1 slot" : "1.0 clone", a, b, c);
    }
    fmt(a, sizeof a, med("args_work"), u);
    printf("    of which the handler's own JSON work (copy the arguments, set one): %s\n", a);
    fmt(a, sizeof a, d->text_extra[WAY_CLONE], u);
    fmt(b, sizeof b, d->text_extra[WAY_SLOT], u);
    printf("  replace the text (1 KB), extra over all-allow: %s (1.0 clone), %s (1.1 slot)\n", a,
           skip_of("modify_text_slot_1k") ? "not available in this build" : b);
    fmt(a, sizeof a, d->conc_100k_vs_1k, "x");
    fmt(b, sizeof b, d->conc_10m_vs_1k, "x");
    printf("  1 concurrent plugin, 100 KB vs 1 KB: %s; 10 MB vs 1 KB: %s\n", a, b);
    fmt(a, sizeof a, d->lib1_ratio, "");
    fmt(b, sizeof b, d->lib10_ratio, "");
    printf("  shared library / compiled in: %s (1 plugin), %s (10 plugins)\n", a, b);
    const bench_threads_result *t = run->threads;
    if (t && t->ran)
        printf("  threads, %d sequential plugins, %ld invokes per thread: 1 thread %.2f M/s, 2 "
               "threads %.2f M/s, ratio %.2f; control %.2f; fraction of the control's scaling "
               "%.2f; CPU ns per invoke %.1f (1 thread), %.1f (2)\n",
               t->plugins, t->iters, t->one.median / 1e6, t->two.median / 1e6, t->ratio,
               t->control_ratio, t->efficiency, t->cpu_one.median, t->cpu_two.median);
}

static void print_targets(const derived *d, const bench_run_info *run)
{
    target t[MAX_TARGETS];
    size_t n = targets(d, run, t);
    for (int round = 2; round >= 1; round--) {
        printf("\ntargets (%s)\n", round == 2 ? "second round, issue 11" : "first round");
        for (size_t i = 0; i < n; i++) {
            if (t[i].round != round)
                continue;
            char val[32], lim[32];
            fmt(val, sizeof val, t[i].value, shown_unit(&t[i], run));
            snprintf(lim, sizeof lim, "%s %g%s", t[i].at_most ? "<=" : ">=", t[i].limit, t[i].unit);
            printf("  %-48s %12s   (%s)  %s\n", t[i].what, val, lim, verdict(&t[i], run));
        }
    }
}

void bench_print_table(const bench_run_info *run)
{
    derived d = derive();
    const char *group = "";
    printf("libcpex benchmark — %ld CPUs, %s\n", bench_cpu_count(), bench_cpu_model());
    if (run->instructions)
        printf("callgrind: instructions per invoke (setup: per operation), (count at 2N - count "
               "at N) / N; x base = / the baseline's count\n");
    else
        printf("%s; %d repetitions per case; ns per invoke incl. result cleanup (setup: ms per "
               "operation): median [min .. max]; x base = median / the baseline's median of this "
               "run; allocs: libcpex's counter / every libc allocation\n",
               run->quick ? "QUICK mode (smoke test: figures are indicative only)" : "full run",
               run->reps);
    for (size_t i = 0; i < bench_case_count; i++) {
        const bench_case *c = &bench_cases[i];
        if (run->only && strcmp(run->only, c->name) != 0)
            continue;
        if (strcmp(c->group, group) != 0) {
            group = c->group;
            printf("\n%s\n", group);
        }
        print_case(c, run, d.base);
    }
    if (run->only)
        return;
    print_derived(&d, run);
    print_targets(&d, run);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

static void json_str(const char *key, const char *s, int comma)
{
    printf("\"%s\": \"", key);
    for (const char *p = s; p && *p; p++)
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p >= 0x20)
            putchar(*p);
    printf("\"%s", comma ? ", " : "");
}

static void json_num(const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        printf("\"%s\": null%s", key, comma ? ", " : "");
    else
        printf("\"%s\": %.4f%s", key, v, comma ? ", " : "");
}

static void json_stat(const char *key, bench_stat s, int comma)
{
    printf("\"%s\": {", key);
    json_num("median", s.median, 1);
    json_num("min", s.min, 1);
    json_num("max", s.max, 0);
    printf("}%s", comma ? ", " : "");
}

static void json_case(const bench_case *c, const bench_run_info *run, double base)
{
    static const char *const kinds[] = {"invoke", "setup", "threads"};
    printf("{");
    json_str("name", c->name, 1);
    json_str("group", c->group, 1);
    json_str("what", c->what, 1);
    json_str("kind", kinds[c->kind], 1);
    json_str("per", c->kind == BENCH_CASE_SETUP ? "operation" : "invoke", 1);
    if (c->kind == BENCH_CASE_THREADS) {
        const bench_threads_result *t = run->threads;
        json_num("efficiency_vs_control", t && t->ran ? t->efficiency : NAN, 1);
    } else if (c->ran) {
        printf("\"iterations\": %ld, ", c->iters);
        json_stat("value", c->per_op, 1);
        json_num("ratio_to_baseline", c->kind == BENCH_CASE_INVOKE ? c->per_op.median / base : NAN,
                 1);
    }
    if (c->have_allocs) {
        json_num("allocs_per_invoke_cpex", c->allocs.cpex, 1);
        json_num("allocs_per_invoke_libc", c->allocs.libc >= 0 ? c->allocs.libc : NAN, 1);
    }
    if (c->skipped)
        json_str("skipped", c->skipped, 1);
    printf("\"ran\": %s}", c->ran ? "true" : "false");
}

void bench_print_json(const bench_run_info *run)
{
    derived d = derive();
    printf("{\n  ");
    json_str("tool", "cpex_bench", 1);
    json_str("unit", run->instructions ? "instructions" : "ns", 0);
    printf(",\n  \"machine\": {\"cpus\": %ld, ", bench_cpu_count());
    json_str("cpu_model", bench_cpu_model(), 0);
    printf("},\n  \"quick\": %s, \"repetitions\": %d,\n  \"cases\": [\n",
           run->quick ? "true" : "false", run->reps);
    for (size_t i = 0; i < bench_case_count; i++) {
        printf("    ");
        json_case(&bench_cases[i], run, d.base);
        printf("%s\n", i + 1 < bench_case_count ? "," : "");
    }
    printf("  ],\n  \"derived\": {");
    json_num("baseline", d.base, 1);
    json_num("empty_vs_baseline", d.empty_ratio, 1);
    json_num("empty_handle_vs_baseline", d.empty_handle_ratio, 1);
    json_num("slope_per_plugin", d.slope, 1);
    json_num("slope_vs_baseline", d.slope_ratio, 1);
    json_num("intercept", d.intercept, 1);
    json_num("modify_extra_1k", d.args_extra[WAY_CLONE][SIZE_1K], 1);
    json_num("modify_extra_100k", d.args_extra[WAY_CLONE][SIZE_100K], 1);
    json_num("modify_extra_10m", d.args_extra[WAY_CLONE][SIZE_10M], 1);
    json_num("modify_slot_extra_1k", d.args_extra[WAY_SLOT][SIZE_1K], 1);
    json_num("modify_slot_extra_100k", d.args_extra[WAY_SLOT][SIZE_100K], 1);
    json_num("modify_slot_extra_10m", d.args_extra[WAY_SLOT][SIZE_10M], 1);
    json_num("modify_text_extra_1k", d.text_extra[WAY_CLONE], 1);
    json_num("modify_text_slot_extra_1k", d.text_extra[WAY_SLOT], 1);
    json_num("args_work", med("args_work"), 1);
    json_num("conc_100k_vs_1k", d.conc_100k_vs_1k, 1);
    json_num("conc_10m_vs_1k", d.conc_10m_vs_1k, 1);
    json_num("lib_vs_builtin_1", d.lib1_ratio, 1);
    json_num("lib_vs_builtin_10", d.lib10_ratio, 0);
    printf("},\n  \"threads\": ");
    const bench_threads_result *t = run->threads;
    if (t && t->ran) {
        printf("{\"plugins\": %d, \"iterations_per_thread\": %ld, ", t->plugins, t->iters);
        json_stat("one_thread_per_s", t->one, 1);
        json_stat("two_threads_per_s", t->two, 1);
        json_num("ratio", t->ratio, 1);
        json_stat("cpu_ns_per_invoke_one", t->cpu_one, 1);
        json_stat("cpu_ns_per_invoke_two", t->cpu_two, 1);
        json_num("control_ratio", t->control_ratio, 1);
        json_num("efficiency_vs_control", t->efficiency, 0);
        printf("}");
    } else {
        printf("null");
    }
    printf(",\n  \"targets\": [\n");
    target tg[MAX_TARGETS];
    size_t n = targets(&d, run, tg);
    for (size_t i = 0; i < n; i++) {
        printf("    {\"round\": %d, ", tg[i].round);
        json_str("target", tg[i].key, 1);
        json_str("what", tg[i].what[0] == ' ' ? tg[i].what + 2 : tg[i].what, 1);
        json_num("value", tg[i].value, 1);
        json_str("unit", strcmp(shown_unit(&tg[i], run), " instr") ? tg[i].unit : "instructions",
                 1);
        printf("\"%s\": %g, ", tg[i].at_most ? "at_most" : "at_least", tg[i].limit);
        json_str("verdict", verdict(&tg[i], run), 0);
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ],\n  \"ok\": %s\n}\n", run->failures ? "false" : "true");
}
