/*
 * test_reload.c — live reload: one atomic publish per reload, kept
 * plugins keep their state, a bad configuration keeps the old one, and
 * the watcher (edits, renames, ConfigMap `..data` swaps, bursts, broken
 * watches). Timing bounds are generous: the machine may be loaded.
 */
#include "test_support.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cpex/cpex.h"
#include "routes.h"

#define PRE "cmf.tool_pre_invoke"
#define PLUG_CFG(n, cfg) "  - {name: " n ", kind: " RT_KIND ", hooks: [" PRE "], config: " cfg "}\n"
#define PLUG(n) PLUG_CFG(n, "{}")

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static cpex_manager *ready(const char *yaml)
{
    cpex_manager *m = rt_manager();
    assert_int_equal(rt_load(m, yaml, NULL), CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    return m;
}

/* The status, by value. */
static cpex_reload_status status_of(cpex_manager *m)
{
    cpex_reload_status st;
    cpex_reload_status_init(&st);
    assert_int_equal(cpex_manager_reload_status(m, &st), CPEX_OK);
    return st;
}

/* Wait (at most `ms`) until the successes + failures counter passes `n`. */
static bool wait_attempts(cpex_manager *m, uint64_t n, long ms)
{
    for (long waited = 0; waited < ms; waited += 20) {
        cpex_reload_status st = status_of(m);
        if (st.successes + st.failures > n)
            return true;
        sleep_ms(20);
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Reload API                                                          */
/* ------------------------------------------------------------------ */

static const char *const V1 = "plugins:\n" PLUG_CFG("keep", "{label: keep}")
    PLUG_CFG("change", "{label: change, value: 1}") PLUG_CFG("drop", "{label: drop}");
static const char *const V2 = "plugins:\n" PLUG_CFG("keep", "{label: keep}")
    PLUG_CFG("change", "{label: change, value: 2}") PLUG_CFG("fresh", "{label: fresh}");

static void test_reload_keeps_unchanged_state(void **state)
{
    (void)state;
    rt_stats_reset();
    cpex_manager *m = ready(V1);
    for (int i = 0; i < 3; i++)
        assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "keep,change=1,drop");
    uint64_t g = cpex_manager_generation(m);
    assert_int_equal(rt_reload(m, V2, NULL), CPEX_OK);
    assert_int_equal(cpex_manager_generation(m), g + 1); /* exactly once */
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "keep,change=2,fresh");
    /* The kept instance's counter goes on; the changed one starts over. */
    assert_int_equal(rt_count(m, PRE, NULL, "keep"), 5);   /* 3 before, 2 after */
    assert_int_equal(rt_count(m, PRE, NULL, "change"), 3); /* 3 since the reload */
    assert_int_equal(atomic_load(&rt_stat_of("keep")->creates), 1);
    assert_int_equal(atomic_load(&rt_stat_of("change")->creates), 2);
    /* Removed and replaced ones: shut down, then destroyed; new ones initialized. */
    assert_int_equal(atomic_load(&rt_stat_of("drop")->shutdowns), 1);
    assert_int_equal(atomic_load(&rt_stat_of("drop")->destroys), 1);
    assert_int_equal(atomic_load(&rt_stat_of("change")->destroys), 1);
    assert_int_equal(atomic_load(&rt_stat_of("fresh")->inits), 1);
    /* The same file again: everything kept, still one generation more. */
    assert_int_equal(rt_reload(m, V2, NULL), CPEX_OK);
    assert_int_equal(cpex_manager_generation(m), g + 2);
    assert_int_equal(rt_count(m, PRE, NULL, "change"), 4);
    cpex_reload_status st = status_of(m);
    assert_int_equal(st.successes, 2);
    assert_true(st.last_success_ns > 0);
    cpex_manager_free(m);
    assert_int_equal(atomic_load(&rt_stat_of("keep")->destroys), 1);
}

/* Records of one invoke of PRE, and whether an invoke of a hook nobody
 * serves is allowed: two of the manager-wide settings, seen from outside. */
static size_t records_of_one_invoke(cpex_manager *m)
{
    cpex_cmf_message *msg = test_text_message("hi");
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, PRE, &p, NULL, NULL, &res);
    size_t n = res.execution_count;
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    return n;
}

static bool unknown_hook_allowed(cpex_manager *m)
{
    bool allowed = false;
    rt_run(m, "no.such.hook", NULL, &allowed, NULL);
    return allowed;
}

#define SETTINGS_ON                                                                                \
    "plugin_settings:\n  execution_records: true\n  unknown_hook: deny\nplugins:\n" PLUG("a")
#define SETTINGS_NONE "plugins:\n" PLUG("a")

/* After `yaml` is reloaded (or loaded, `load`), one invoke of PRE gives
 * `records` execution records and a hook nobody serves is `allowed`. */
static void after(cpex_manager *m, bool load, const char *yaml, size_t records, bool allowed)
{
    assert_int_equal(load ? rt_load(m, yaml, NULL) : rt_reload(m, yaml, NULL), CPEX_OK);
    assert_int_equal(records_of_one_invoke(m), records);
    assert_int_equal(unknown_hook_allowed(m), allowed);
}

/* A reload replaces the configuration as a whole, its manager-wide
 * settings included: what the new file leaves out returns to the host's
 * options. A load adds to what is there and changes only what it sets. */
static void test_reload_replaces_settings(void **state)
{
    (void)state;
    cpex_manager *m = ready(SETTINGS_ON);
    assert_int_equal(records_of_one_invoke(m), 1);
    assert_false(unknown_hook_allowed(m));
    after(m, true, "plugins:\n" PLUG("b"), 2, false); /* a load without the keys: as they are */
    after(m, false, SETTINGS_NONE, 0, true);          /* a reload without them: the defaults */
    after(m, false, SETTINGS_ON, 1, false);           /* on again */
    cpex_manager_free(m);

    /* The host's options are the floor a reload returns to: records on and
       unknown hooks denied by the host stay so when a file turns records
       off and then leaves the key out; a file cannot allow what the host
       denies. */
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.execution_records = 1;
    o.unknown_hook = CPEX_UNKNOWN_HOOK_DENY;
    m = rt_manager_with(o);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    after(m, true, SETTINGS_NONE, 1, false);
    after(
        m, false,
        "plugin_settings:\n  execution_records: false\n  unknown_hook: allow\nplugins:\n" PLUG("a"),
        0, false);
    after(m, false, SETTINGS_NONE, 1, false);
    cpex_manager_free(m);
}

/* A plugin registered from code survives reloads. */
static void test_code_plugins_survive(void **state)
{
    (void)state;
    cpex_manager *m = rt_manager();
    assert_int_equal(rt_load(m, V1, NULL), CPEX_OK);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "host";
    static const cpex_handler_reg h[] = {CPEX_HANDLER(PRE, rt_handler, "cmf")};
    rt_plugin *p = calloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "host");
    p->stat = rt_stat_of("host");
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.instance = p;
    reg.destroy = rt_destroy;
    reg.handlers = h;
    reg.handler_count = 1;
    reg.handler_size = (uint32_t)sizeof h[0];
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    assert_int_equal(rt_reload(m, V2, NULL), CPEX_OK);
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "host,keep,change=2,fresh");
    /* A file plugin may not take a code plugin's name. */
    char *msg = NULL;
    assert_int_equal(rt_reload(m, "plugins:\n" PLUG("host"), &msg), CPEX_E_EXISTS);
    assert_contains(msg, "registered from code");
    free(msg);
    cpex_error_cleanup(&err);
    cpex_manager_free(m);
}

typedef struct seen {
    int kinds[5];
    char message[2048];
    uint64_t generation;
    pthread_mutex_t lock;
} seen;

static void on_reload(void *user, const cpex_reload_event *ev)
{
    seen *s = user;
    pthread_mutex_lock(&s->lock);
    s->kinds[ev->kind]++;
    snprintf(s->message, sizeof s->message, "%s", ev->message);
    s->generation = ev->generation;
    pthread_mutex_unlock(&s->lock);
}

static void test_bad_config_keeps_old(void **state)
{
    (void)state;
    cpex_manager *m =
        ready("plugin_settings: {routing_enabled: true}\n"
              "plugins:\n" PLUG("a") PLUG("b") "routes:\n  - {tool: t, plugins: [a]}\n");
    seen s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    cpex_manager_on_reload(m, on_reload, &s);
    uint64_t g = cpex_manager_generation(m);
    /* Two problems, one quoting a secret-looking value. */
    char *msg = NULL;
    assert_int_equal(rt_reload(m,
                               "plugin_settings: {routing_enabled: true}\n"
                               "plugins:\n" PLUG("a") "  - {name: b, kind: " RT_KIND
                                                      ", hooks: sk-SECRET-42}\n"
                                                      "routes:\n  - {tool: t, plugins: [nobody]}\n",
                               &msg),
                     CPEX_E_CONFIG);
    assert_contains(msg, "sk-SECRET-42"); /* the caller's own error says everything */
    free(msg);
    assert_int_equal(cpex_manager_generation(m), g);
    assert_string_equal(rt_run_entity(m, PRE, "tool", "t", NULL, NULL, NULL), "a");
    /* A load-time failure (unknown plugin), also nothing published. */
    assert_int_equal(
        rt_reload(m,
                  "plugin_settings: {routing_enabled: true}\n"
                  "plugins:\n" PLUG_CFG(
                      "a", "{token: sk-SECRET-43}") "routes:\n  - {tool: t, plugins: [nobody]}\n",
                  &msg),
        CPEX_E_CONFIG);
    assert_contains(msg, "route 0 references unknown plugin 'nobody'");
    free(msg);
    assert_int_equal(cpex_manager_generation(m), g);
    assert_string_equal(rt_run_entity(m, PRE, "tool", "t", NULL, NULL, NULL), "a");
    cpex_reload_status st = status_of(m);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.successes, 0);
    /* Reports name the place but quote nothing of the file. */
    assert_int_equal(s.kinds[CPEX_RELOAD_FAILED], 2);
    assert_contains(s.message, "routes.yaml:5:25: route 0 references unknown plugin");
    assert_contains(s.message, "route 0 references unknown plugin");
    assert_null(strstr(s.message, "nobody"));
    assert_null(strstr(st.last_error, "SECRET"));
    assert_null(strstr(st.last_error, "nobody"));
    cpex_manager_free(m);
    pthread_mutex_destroy(&s.lock);
}

/* ------------------------------------------------------------------ */
/* Reload under load                                                   */
/* ------------------------------------------------------------------ */

/* Two policies for one entity, with different plugins and an override. */
static const char *const POLICY_A =
    "plugin_settings: {routing_enabled: true}\n"
    "plugins:\n" PLUG_CFG("p1", "{label: p1}") PLUG_CFG("p2", "{label: p2}")
        PLUG_CFG("p3", "{label: p3}") "routes:\n  - {tool: t, plugins: [p1, p2]}\n";
static const char *const POLICY_B =
    "plugin_settings: {routing_enabled: true}\n"
    "plugins:\n" PLUG_CFG("p1", "{label: p1}") PLUG_CFG("p2", "{label: p2}")
        PLUG_CFG("p3", "{label: p3, value: 7}") "routes:\n  - tool: t\n    plugins: [p3, {p1: "
                                                "{config: {value: 9}}}]\n";

#define LOAD_THREADS 4
#define MAX_SAMPLES 200000

typedef struct sample {
    uint64_t generation;
    char policy; /* 'A', 'B' or 'x' (anything else) */
} sample;

typedef struct load_ctx {
    cpex_manager *m;
    atomic_bool stop;
    atomic_int failed;
    sample *samples;
    atomic_size_t count;
} load_ctx;

static void *invoker(void *arg)
{
    load_ctx *c = arg;
    cpex_extensions *e = rt_entity("tool", "t", NULL, NULL);
    while (!atomic_load(&c->stop)) {
        bool allowed = false;
        uint64_t g = 0;
        const char *t = rt_run(c->m, PRE, e, &allowed, &g);
        char policy = strcmp(t, "p1,p2") == 0 ? 'A' : strcmp(t, "p3=7,p1=9") == 0 ? 'B' : 'x';
        if (!allowed || policy == 'x') {
            if (atomic_fetch_add(&c->failed, 1) < 5)
                fprintf(stderr, "bad invoke: generation %llu, allowed %d, trace '%s'\n",
                        (unsigned long long)g, allowed, t);
        }
        size_t i = atomic_fetch_add(&c->count, 1);
        if (i < MAX_SAMPLES) {
            c->samples[i].generation = g;
            c->samples[i].policy = policy;
        }
    }
    cpex_extensions_unref(e);
    return NULL;
}

static void test_reload_under_load(void **state)
{
    (void)state;
    rt_stats_reset();
    cpex_manager *m = ready(POLICY_A);
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.samples = calloc(MAX_SAMPLES, sizeof *c.samples);
    assert_non_null(c.samples);
    pthread_t threads[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, invoker, &c), 0);
    uint64_t g0 = cpex_manager_generation(m);
    const int reloads = 20;
    for (int i = 0; i < reloads; i++) {
        sleep_ms(5);
        assert_int_equal(rt_reload(m, i % 2 == 0 ? POLICY_B : POLICY_A, NULL), CPEX_OK);
    }
    sleep_ms(5);
    atomic_store(&c.stop, true);
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(cpex_manager_generation(m), g0 + (uint64_t)reloads);
    assert_int_equal(atomic_load(&c.failed), 0);
    /* Every generation ran one policy: A on even steps from g0, B on odd. */
    size_t n = atomic_load(&c.count);
    if (n > MAX_SAMPLES)
        n = MAX_SAMPLES;
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t step = c.samples[i].generation - g0;
        assert_true(step <= (uint64_t)reloads);
        assert_int_equal(c.samples[i].policy, step % 2 == 0 ? 'A' : 'B');
    }
    /* Unchanged p2 kept its one instance throughout; the override of p1 and
     * p3 (whose config differs) were made once per B. Nothing was shut down
     * while one of its handlers ran. */
    assert_int_equal(atomic_load(&rt_stat_of("p2")->creates), 1);
    assert_int_equal(atomic_load(&rt_stat_of("p1")->bad_shutdowns), 0);
    assert_int_equal(atomic_load(&rt_stat_of("p3")->bad_shutdowns), 0);
    cpex_manager_free(m);
    for (int i = 0; i < RT_MAX_STATS; i++) {
        assert_int_equal(atomic_load(&rt_stats[i].creates), atomic_load(&rt_stats[i].destroys));
        assert_int_equal(atomic_load(&rt_stats[i].inits), atomic_load(&rt_stats[i].shutdowns));
    }
    free(c.samples);
    printf("reload under load: %zu invokes over %d reloads, none failed or mixed\n",
           (size_t)atomic_load(&c.count), reloads);
}

/* ------------------------------------------------------------------ */
/* Watching                                                            */
/* ------------------------------------------------------------------ */

static char *temp_dir(void)
{
    char *d = strdup("/tmp/cpex_watch_XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Write through a temporary file renamed over `path` (what deploy tools do). */
static void replace_file(const char *path, const char *text)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    write_file(tmp, text);
    assert_int_equal(rename(tmp, path), 0);
}

static void rm_rf(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* An initialized, empty manager whose reload events go to `s` (may be NULL). */
static cpex_manager *watching_manager(seen *s)
{
    cpex_manager *m = rt_manager();
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    if (s) {
        memset(s, 0, sizeof *s);
        pthread_mutex_init(&s->lock, NULL);
        cpex_manager_on_reload(m, on_reload, s);
    }
    return m;
}

/* Free the manager (joins its watcher), then the directory. */
static void done(cpex_manager *m, seen *s, char *dir)
{
    cpex_manager_free(m);
    if (s)
        pthread_mutex_destroy(&s->lock);
    rm_rf(dir);
    free(dir);
}

static const char *const W1 = "plugins:\n" PLUG_CFG("w", "{label: w, value: 1}");
static const char *const W2 = "plugins:\n" PLUG_CFG("w", "{label: w, value: 2}");
static const char *const W3 = "plugins:\n" PLUG_CFG("w", "{label: w, value: 3}");

/* Wait (bounded) until an invoke shows `trace`. */
static bool wait_trace(cpex_manager *m, const char *trace, long ms)
{
    for (long waited = 0; waited < ms; waited += 20) {
        if (strcmp(rt_run(m, PRE, NULL, NULL, NULL), trace) == 0)
            return true;
        sleep_ms(20);
    }
    return false;
}

static void test_watch_edits_and_renames(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/cpex.yaml", dir);
    write_file(path, W1);
    cpex_manager *m = watching_manager(NULL);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_watch_file(m, path, 50, &err), CPEX_OK);
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "w=1");
    assert_int_equal(cpex_manager_watch_file(m, path, 50, &err), CPEX_E_EXISTS);
    cpex_error_cleanup(&err);
    /* An atomic rename over the file. */
    replace_file(path, W2);
    assert_true(wait_trace(m, "w=2", 10000));
    /* An edit in place. */
    write_file(path, W3);
    assert_true(wait_trace(m, "w=3", 10000));
    cpex_reload_status st = status_of(m);
    assert_true(st.watching && st.watcher_alive);
    assert_string_equal(st.watched_path, path);
    /* An empty file is refused (after re-reading it), the old one serves. */
    uint64_t attempts = st.successes + st.failures;
    write_file(path, "");
    assert_true(wait_attempts(m, attempts, 10000));
    st = status_of(m);
    assert_contains(st.last_error, "empty");
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "w=3");
    /* A broken file: refused, reported, the old one serves. */
    attempts = st.successes + st.failures;
    replace_file(path,
                 "plugins:\n  - {name: w, kind: " RT_KIND ", hooks: [" PRE "], bad_key: 1}\n");
    assert_true(wait_attempts(m, attempts, 10000));
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "w=3");
    /* Fixed again. */
    replace_file(path, W1);
    assert_true(wait_trace(m, "w=1", 10000));
    assert_int_equal(cpex_manager_watch_stop(m), CPEX_OK);
    st = status_of(m);
    assert_false(st.watching);
    /* No longer watched. */
    replace_file(path, W2);
    sleep_ms(300);
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "w=1");
    done(m, NULL, dir);
}

/* A Kubernetes ConfigMap volume: the file is a link through `..data`,
 * itself a link to a timestamped directory; an update makes a new
 * directory, points `..data_tmp` at it and renames that over `..data`. */
static void test_watch_configmap_swap(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char p[700], q[700];
    snprintf(p, sizeof p, "%s/..2024_01_01", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/..2024_01_01/cpex.yaml", dir);
    write_file(p, W1);
    snprintf(p, sizeof p, "%s/..data", dir);
    assert_int_equal(symlink("..2024_01_01", p), 0);
    snprintf(p, sizeof p, "%s/cpex.yaml", dir);
    assert_int_equal(symlink("..data/cpex.yaml", p), 0);
    seen s;
    cpex_manager *m = watching_manager(&s);
    assert_int_equal(cpex_manager_watch_file(m, p, 50, NULL), CPEX_OK);
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "w=1");
    /* The update, as the kubelet does it. */
    snprintf(q, sizeof q, "%s/..2024_01_02", dir);
    assert_int_equal(mkdir(q, 0700), 0);
    snprintf(q, sizeof q, "%s/..2024_01_02/cpex.yaml", dir);
    write_file(q, W2);
    snprintf(q, sizeof q, "%s/..data_tmp", dir);
    assert_int_equal(symlink("..2024_01_02", q), 0);
    snprintf(p, sizeof p, "%s/..data", dir);
    assert_int_equal(rename(q, p), 0);
    snprintf(q, sizeof q, "%s/..2024_01_01", dir);
    rm_rf(q);
    assert_true(wait_trace(m, "w=2", 10000));
    pthread_mutex_lock(&s.lock);
    assert_true(s.kinds[CPEX_RELOAD_APPLIED] >= 2); /* the first reload, then the swap */
    pthread_mutex_unlock(&s.lock);
    done(m, &s, dir); /* stops and joins the watcher */
}

static void test_watch_burst_is_one_reload(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/cpex.yaml", dir);
    write_file(path, W1);
    cpex_manager *m = watching_manager(NULL);
    /* A long quiet period, so that even a slowed-down loop of 50 writes is
     * one burst. */
    assert_int_equal(cpex_manager_watch_file(m, path, 1000, NULL), CPEX_OK);
    cpex_reload_status st = status_of(m);
    uint64_t successes = st.successes, g = cpex_manager_generation(m);
    for (int i = 0; i < 50; i++) {
        char text[256];
        snprintf(text, sizeof text, "plugins:\n" PLUG_CFG("w", "{label: w, value: %d}"), 100 + i);
        write_file(path, text);
    }
    assert_true(wait_trace(m, "w=149", 15000));
    sleep_ms(1500); /* anything else the burst might have caused has happened by now */
    st = status_of(m);
    assert_int_equal(st.successes, successes + 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(cpex_manager_generation(m), g + 1);
    /* The same content written again is skipped (hash). */
    write_file(path, "plugins:\n" PLUG_CFG("w", "{label: w, value: 149}"));
    for (int i = 0; i < 250 && status_of(m).unchanged == st.unchanged; i++)
        sleep_ms(20);
    assert_true(status_of(m).unchanged > st.unchanged);
    assert_int_equal(cpex_manager_generation(m), g + 1);
    done(m, NULL, dir);
}

static void test_watch_lost_and_restored(void **state)
{
    (void)state;
    char *parent = temp_dir();
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/conf", parent);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/cpex.yaml", dir);
    write_file(path, W1);
    seen s;
    cpex_manager *m = watching_manager(&s);
    assert_int_equal(cpex_manager_watch_file(m, path, 50, NULL), CPEX_OK);
    rm_rf(dir); /* the directory goes away: the watch breaks, the config stays */
    bool lost = false;
    for (int i = 0; i < 500 && !lost; i++) {
        lost = !status_of(m).watcher_alive;
        sleep_ms(20);
    }
    assert_true(lost);
    assert_string_equal(rt_run(m, PRE, NULL, NULL, NULL), "w=1");
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(path, W2);
    assert_true(wait_trace(m, "w=2", 15000)); /* maybe read before the watch is back */
    bool alive = false;
    for (int i = 0; i < 500 && !alive; i++) {
        alive = status_of(m).watcher_alive;
        sleep_ms(20);
    }
    assert_true(alive);
    pthread_mutex_lock(&s.lock);
    assert_true(s.kinds[CPEX_RELOAD_WATCH_LOST] >= 1);
    assert_true(s.kinds[CPEX_RELOAD_WATCH_RESTORED] >= 1);
    pthread_mutex_unlock(&s.lock);
    done(m, &s, parent);
}

/* A callback cannot join its own thread; free always can. */
static cpex_manager *stop_target;
static atomic_int stop_rc = -1;
static void stop_from_callback(void *user, const cpex_reload_event *ev)
{
    (void)user;
    if (ev->from_watcher)
        atomic_store(&stop_rc, cpex_manager_watch_stop(stop_target));
}

/* A callback may read the status, also during watch_file's first reload. */
static atomic_int status_reads;
static void read_status(void *user, const cpex_reload_event *ev)
{
    (void)ev;
    cpex_reload_status st;
    cpex_reload_status_init(&st);
    if (cpex_manager_reload_status(user, &st) == CPEX_OK)
        atomic_fetch_add(&status_reads, 1);
}

static void test_watch_callback_reads_status(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/cpex.yaml", dir);
    write_file(path, W1);
    cpex_manager *m = watching_manager(NULL);
    cpex_manager_on_reload(m, read_status, m);
    assert_int_equal(cpex_manager_watch_file(m, path, 50, NULL), CPEX_OK);
    assert_true(atomic_load(&status_reads) >= 1);
    done(m, NULL, dir);
}

static void test_watch_stop_rules(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/cpex.yaml", dir);
    cpex_manager *m = rt_manager();
    /* A missing file: nothing is watched. */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_not_equal(cpex_manager_watch_file(m, path, 50, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    assert_false(status_of(m).watching);
    write_file(path, W1);
    stop_target = m;
    cpex_manager_on_reload(m, stop_from_callback, NULL);
    assert_int_equal(cpex_manager_watch_file(m, path, 50, NULL), CPEX_OK);
    replace_file(path, W2);
    for (int i = 0; i < 500 && atomic_load(&stop_rc) == -1; i++)
        sleep_ms(20);
    assert_int_equal(atomic_load(&stop_rc), CPEX_E_STATE);
    done(m, NULL, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_keeps_unchanged_state),
        cmocka_unit_test(test_code_plugins_survive),
        cmocka_unit_test(test_reload_replaces_settings),
        cmocka_unit_test(test_bad_config_keeps_old),
        cmocka_unit_test(test_reload_under_load),
        cmocka_unit_test(test_watch_edits_and_renames),
        cmocka_unit_test(test_watch_configmap_swap),
        cmocka_unit_test(test_watch_burst_is_one_reload),
        cmocka_unit_test(test_watch_lost_and_restored),
        cmocka_unit_test(test_watch_callback_reads_status),
        cmocka_unit_test(test_watch_stop_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
