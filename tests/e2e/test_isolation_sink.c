/*
 * test_isolation_sink.c — audit sinks in worker processes (isolation:
 * process, docs/isolation.md "Audit sinks"): a sink's verdicts cross to
 * its worker and it cannot take the host down.
 *
 * The sink is tests/plugins/sink_probe.c: a verdict handler and no handler
 * at all, which logs everything it received (one line per verdict, one per
 * execution record). The same plugin in process and isolated, in one
 * manager, receives the same verdicts: their lines must be equal, field
 * for field. Then: a sink's writes are refused and recorded exactly as in
 * process; a sink that crashes, hangs past its timeout or garbles its reply
 * has its worker replaced and its error recorded under its on_error, while
 * the host goes on; and a sink-only plugin loads isolated.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iso.h"

#define SINK E2E_LIB("sink_probe")

/* ------------------------------------------------------------------ */
/* The log, where the sinks say what they received                     */
/* ------------------------------------------------------------------ */

#define MAX_LINES 4096

static struct {
    pthread_mutex_t lock;
    size_t n;
    char *plugin[MAX_LINES];
    char *text[MAX_LINES];
} logs = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, {0}};

static void collect(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&logs.lock);
    if (logs.n < MAX_LINES) {
        logs.plugin[logs.n] = strdup(plugin ? plugin : "");
        logs.text[logs.n] = strdup(message);
        logs.n++;
    }
    pthread_mutex_unlock(&logs.lock);
}

static void logs_clear(void)
{
    pthread_mutex_lock(&logs.lock);
    for (size_t i = 0; i < logs.n; i++) {
        free(logs.plugin[i]);
        free(logs.text[i]);
    }
    logs.n = 0;
    pthread_mutex_unlock(&logs.lock);
}

/* The lines `plugin` logged that start with `prefix` (NULL: what the probe
   dumps: every line but "pid"), joined by newlines; free() it. */
static char *lines_of(const char *plugin, const char *prefix)
{
    pthread_mutex_lock(&logs.lock);
    size_t cap = 1;
    for (size_t i = 0; i < logs.n; i++)
        cap += strlen(logs.text[i]) + 1;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < logs.n; i++) {
        if (strcmp(logs.plugin[i], plugin) != 0)
            continue;
        const char *t = logs.text[i];
        bool want = prefix ? strncmp(t, prefix, strlen(prefix)) == 0
                           : strncmp(t, "verdict:", 8) == 0 || strncmp(t, "record ", 7) == 0 ||
                                 strncmp(t, "writes:", 7) == 0;
        if (want) {
            strcat(out, t);
            strcat(out, "\n");
        }
    }
    pthread_mutex_unlock(&logs.lock);
    return out;
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The pid of the process that served `plugin`'s last verdict (0: none). */
static long last_pid(const char *plugin)
{
    char *pids = lines_of(plugin, "pid ");
    const char *last = NULL;
    for (const char *p = pids; (p = strstr(p, "pid ")) != NULL; p += 4)
        last = p;
    long pid = last ? atol(last + 4) : 0;
    free(pids);
    return pid;
}

/* ------------------------------------------------------------------ */
/* Managers and invokes                                                */
/* ------------------------------------------------------------------ */

static cpex_manager *live;

static int teardown(void **state)
{
    (void)state;
    cpex_manager_free(live);
    live = NULL;
    logs_clear();
    unsetenv("CPEX_WORKER_TEST_GARBLE");
    return 0;
}

/* A manager of `plugins` (YAML list items), initialized, logging to `logs`. */
static cpex_manager *sink_manager(const char *plugins)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.worker_path = ISO_WORKER;
    o.log = collect;
    o.log_level = CPEX_LOG_INFO;
    cpex_manager *m = e2e_manager_new(&o);
    char *yaml = NULL;
    assert_true(asprintf(&yaml, "plugins:\n%s", plugins) > 0);
    e2e_load_ok(m, yaml, "sinks.yaml");
    free(yaml);
    e2e_initialize_ok(m);
    return m;
}

/* Invoke `hook` with `msg` (consumed) and extensions subject alice and
   request id `rid`; the result is released. */
static void invoke(cpex_manager *m, const char *hook, cpex_cmf_message *msg, const char *rid)
{
    cpex_extensions *e = cpex_extensions_new();
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "alice"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_REQUEST_ID, rid), CPEX_OK);
    cpex_pipeline_result r;
    e2e_invoke_cmf(m, hook, msg, e, NULL, &r);
    cpex_pipeline_result_cleanup(&r);
    cpex_extensions_unref(e);
    cpex_cmf_free(msg);
}

static void invoke_text(cpex_manager *m, const char *text)
{
    invoke(m, E2E_PRE, test_text_message(text), "r-text");
}

static void wait_sinks(cpex_manager *m)
{
    assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
}

/* The background errors of `plugin`, "code: message" one per line; free() it. */
static char *errors_of(cpex_manager *m, const char *plugin)
{
    cpex_error_record *bg = NULL;
    size_t n = cpex_manager_take_background_errors(m, &bg);
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(bg[i].code) + strlen(bg[i].message) + 4;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(bg[i].plugin_name, plugin) != 0)
            continue;
        strcat(out, bg[i].code);
        strcat(out, ": ");
        strcat(out, bg[i].message);
        strcat(out, "\n");
    }
    cpex_error_records_free(bg, n);
    return out;
}

/* ------------------------------------------------------------------ */
/* The verdict crosses whole                                           */
/* ------------------------------------------------------------------ */

#define SINK_ENTRY(name, extra)                                                                    \
    "  - name: " name "\n"                                                                         \
    "    kind: \"lib:" SINK "\"\n"                                                                 \
    "    mode: audit\n" extra

/* Plugins that make verdicts of every shape, and three sinks: in process,
   isolated, and isolated without capabilities. */
// clang-format off
static const char side_by_side[] =
    "  - name: allowlist\n"
    "    kind: \"lib:" E2E_LIB("tool_allowlist") "\"\n"
    "    hooks: [cmf.tool_pre_invoke]\n"
    "    config: {allow: [\"search_*\"], verify_results: false}\n"
    "  - name: redact\n"
    "    kind: \"lib:" E2E_LIB("pii_redact") "\"\n"
    "    hooks: [cmf.tool_pre_invoke]\n"
    "    mode: transform\n"
    "    config: {kinds: [email]}\n"
    "  - name: headers\n"
    "    kind: \"lib:" E2E_LIB("header_inject") "\"\n"
    "    hooks: [cmf.tool_pre_invoke]\n"
    "    capabilities: [write_headers]\n"
    "    config: {response_headers: {x-a: \"1\"}}\n"
    "  - name: background\n"
    "    kind: \"lib:" E2E_LIB("header_inject") "\"\n"
    "    hooks: [cmf.tool_pre_invoke]\n"
    "    mode: fire_and_forget\n"
    "    config: {response_headers: {x-b: \"1\"}}\n"
    SINK_ENTRY("sink-in", "    capabilities: [read_subject, read_request]\n")
    SINK_ENTRY("sink-iso", "    capabilities: [read_subject, read_request]\n"
                           "    isolation: process\n")
    SINK_ENTRY("sink-blind", "    isolation: process\n");
// clang-format on

static void test_isolated_sink_receives_what_in_process_receives(void **state)
{
    (void)state;
    live = sink_manager(side_by_side);
    /* Allowed with a redacted payload; denied with a violation and details;
       a hook nobody serves (no record); a plain text. */
    invoke(live, E2E_PRE,
           e2e_tool_call_msg("c1", "search_docs", "{\"q\":\"mail bob@example.com\"}"), "r-1");
    invoke(live, E2E_PRE, e2e_tool_call_msg("c2", "delete_repo", "{}"), "r-2");
    invoke(live, "cmf.llm_input", test_text_message("hello"), "r-3");
    invoke_text(live, "plain");
    wait_sinks(live);

    char *in = lines_of("sink-in", NULL), *iso = lines_of("sink-iso", NULL);
    char *blind = lines_of("sink-blind", NULL);
    assert_int_equal(count_of(in, "verdict:"), 4);
    if (strcmp(in, iso) != 0)
        fail_msg("the isolated sink received\n%s\nin process:\n%s", iso, in);
    /* What the lines hold (so that equal means something). */
    assert_contains(in, "decision=1 hook='cmf.tool_pre_invoke' code='tool_not_allowed'");
    assert_contains(in, "plugin='allowlist' details={");
    assert_contains(in, "description='the tool name matches none");
    assert_contains(in, "payload_modified=1");
    assert_contains(in, "hook='cmf.llm_input' code=- reason=- description=- plugin=- details=- "
                        "payload_modified=0 extensions_modified=0");
    assert_contains(in, "records=0 record_size=0 payload=yes same_payload=1 text='hello' "
                        "subject=alice request_id=r-3 mode=2"); /* CPEX_MODE_AUDIT */
    assert_contains(in, "keys=[allow,verify_results] size=");
    assert_contains(in, "mode=4 requested="); /* the fire-and-forget record */
    assert_contains(in, "plugin='redact' kind='lib:" E2E_LIB("pii_redact") "'");
    assert_true(count_of(in, "record ") >= 8);
    /* The extensions a sink sees are filtered by its capabilities there too. */
    assert_int_equal(count_of(blind, "subject=- request_id=-"), 4);
    assert_int_equal(count_of(blind, "subject=alice"), 0);
    /* And it ran where it should. */
    assert_int_equal(last_pid("sink-in"), (long)getpid());
    long pid = last_pid("sink-iso");
    assert_true(pid > 0 && pid != (long)getpid() && pid != last_pid("sink-blind"));
    free(in);
    free(iso);
    free(blind);
}

static void test_sink_writes_are_refused_and_recorded_as_in_process(void **state)
{
    (void)state;
    /* Capabilities that would allow the writes: the audit mode refuses them. */
    live = sink_manager(SINK_ENTRY("sink-in", "    capabilities: [write_headers, append_labels, "
                                              "write_custom]\n")
                            SINK_ENTRY("sink-iso", "    capabilities: [write_headers, "
                                                   "append_labels, write_custom]\n"
                                                   "    isolation: process\n"));
    invoke_text(live, "sink:write");
    invoke_text(live, "sink:error");
    wait_sinks(live);
    char *w_in = lines_of("sink-in", "writes:"), *w_iso = lines_of("sink-iso", "writes:");
    assert_string_equal(w_iso, w_in);
    char refused[128];
    snprintf(refused, sizeof refused, "payload=%d header=%d label=%d custom=%d", CPEX_HOST_EDENIED,
             CPEX_HOST_EDENIED, CPEX_HOST_EDENIED, CPEX_HOST_EDENIED);
    assert_contains(w_in, refused);
    free(w_in);
    free(w_iso);
    /* The soft errors recorded for each, in order: the same ones. */
    cpex_error_record *bg = NULL;
    size_t n = cpex_manager_take_background_errors(live, &bg);
    size_t n_in = 0, n_iso = 0;
    for (size_t i = 0; i < n; i++)
        n_in += strcmp(bg[i].plugin_name, "sink-in") == 0;
    char all[8192] = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(bg[i].plugin_name, "sink-iso") != 0)
            continue;
        /* The k-th error of the isolated sink is the k-th of the one in process. */
        size_t k = n_iso++, seen = 0;
        const cpex_error_record *twin = NULL;
        for (size_t j = 0; j < n && !twin; j++)
            if (strcmp(bg[j].plugin_name, "sink-in") == 0 && seen++ == k)
                twin = &bg[j];
        assert_non_null(twin);
        assert_string_equal(bg[i].code, twin->code);
        assert_string_equal(bg[i].message, twin->message);
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s: %s\n", bg[i].code,
                 bg[i].message);
    }
    assert_int_equal(n_iso, n_in);
    assert_contains(all, "dropped_modification: ");
    assert_contains(all, "denied_write: ");
    assert_contains(all, "dropped_deny: ");
    assert_contains(all, "error: the sink failed on purpose");
    cpex_error_records_free(bg, n);
}

/* ------------------------------------------------------------------ */
/* A sink that crashes, hangs or garbles                               */
/* ------------------------------------------------------------------ */

static void test_crashing_sink_is_restarted(void **state)
{
    (void)state;
    live = sink_manager(SINK_ENTRY("sink", "    isolation: process\n"
                                           "    on_error: ignore\n"
                                           "    config: {crash: true}\n"));
    invoke_text(live, "first");
    wait_sinks(live);
    long first = last_pid("sink");
    assert_true(first > 0 && first != (long)getpid());
    invoke_text(live, "sink:segv");
    invoke_text(live, "after the crash");
    wait_sinks(live);
    char *errs = errors_of(live, "sink");
    assert_contains(errs, "error: plugin_crashed: Plugin 'sink' crashed: its worker process");
    assert_contains(errs, "SIGSEGV");
    free(errs);
    char *seen = lines_of("sink", "verdict:");
    assert_contains(seen, "text='after the crash'"); /* served by the next worker */
    free(seen);
    long next = last_pid("sink");
    assert_true(next > 0 && next != first);
    assert_true(iso_pid_gone(first));
    cpex_manager_free(live);
    live = NULL;
    assert_true(iso_pid_gone(next)); /* nothing left running */

    /* on_error: disable stops the sink at its crash. */
    logs_clear();
    live = sink_manager(SINK_ENTRY("sink", "    isolation: process\n"
                                           "    on_error: disable\n"
                                           "    config: {crash: true}\n"));
    invoke_text(live, "sink:segv");
    invoke_text(live, "not seen");
    wait_sinks(live);
    errs = errors_of(live, "sink");
    assert_contains(errs, "plugin_crashed");
    free(errs);
    seen = lines_of("sink", "verdict:");
    assert_null(strstr(seen, "not seen"));
    free(seen);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(live, "sink", &info), CPEX_OK);
    assert_true(info.disabled);
    cpex_plugin_info_cleanup(&info);
}

static void test_hanging_sink_is_stopped_at_its_deadline(void **state)
{
    (void)state;
    live = sink_manager(SINK_ENTRY("sink", "    isolation: process\n"
                                           "    timeout: 0.3\n"
                                           "    config: {crash: true}\n"));
    invoke_text(live, "first");
    wait_sinks(live);
    long first = last_pid("sink");
    double t0 = iso_now();
    invoke_text(live, "sink:loop");
    invoke_text(live, "after the hang");
    wait_sinks(live);
    /* Killed at its deadline, not waited for (a sink in process would hold
       the audit thread for good). */
    assert_true(iso_now() - t0 < 20);
    char *errs = errors_of(live, "sink");
    assert_contains(errs, "timeout: ");
    free(errs);
    char *seen = lines_of("sink", "verdict:");
    assert_contains(seen, "text='after the hang'");
    free(seen);
    assert_true(last_pid("sink") != first);
}

static void test_garbled_reply_is_a_crash(void **state)
{
    (void)state;
    setenv("CPEX_WORKER_TEST_GARBLE", "trailing", 1); /* the worker garbles hook test.garble */
    live = sink_manager(SINK_ENTRY("sink", "    isolation: process\n"));
    invoke_text(live, "first");
    wait_sinks(live);
    long first = last_pid("sink");
    invoke(live, "test.garble", test_text_message("garbled"), "r-g");
    invoke_text(live, "after");
    wait_sinks(live);
    char *errs = errors_of(live, "sink");
    assert_contains(errs, "plugin_crashed: ");
    assert_contains(errs, "malformed reply");
    free(errs);
    char *seen = lines_of("sink", "verdict:");
    assert_contains(seen, "text='after'");
    free(seen);
    assert_true(last_pid("sink") != first);
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

static void test_sink_only_plugin_loads_isolated(void **state)
{
    (void)state;
    /* Every hook (no hooks:), and only the hook listed (which it has no
       handler for: a sink may observe it). */
    live = sink_manager(SINK_ENTRY("every", "    isolation: process\n")
                            SINK_ENTRY("pre-only", "    isolation: process\n"
                                                   "    hooks: [cmf.tool_pre_invoke]\n"));
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(live, "every", &info), CPEX_OK);
    assert_true(info.audit_sink);
    assert_null(info.sink_hooks);
    assert_null(info.hooks[0]);
    assert_non_null(info.isolation);
    assert_contains(info.isolation, "process");
    assert_string_equal(info.reported_name, "sink-probe");
    cpex_plugin_info_cleanup(&info);
    assert_int_equal(cpex_manager_plugin_info(live, "pre-only", &info), CPEX_OK);
    assert_true(info.audit_sink);
    assert_non_null(info.sink_hooks);
    assert_string_equal(info.sink_hooks[0], E2E_PRE);
    assert_null(info.sink_hooks[1]);
    cpex_plugin_info_cleanup(&info);
    invoke_text(live, "pre");
    invoke(live, E2E_POST, test_text_message("post"), "r-post");
    wait_sinks(live);
    char *every = lines_of("every", "verdict:"), *pre = lines_of("pre-only", "verdict:");
    assert_int_equal(count_of(every, "verdict:"), 2);
    assert_int_equal(count_of(pre, "verdict:"), 1);
    assert_contains(pre, "text='pre'");
    free(every);
    free(pre);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_isolated_sink_receives_what_in_process_receives, teardown),
        cmocka_unit_test_teardown(test_sink_writes_are_refused_and_recorded_as_in_process,
                                  teardown),
        cmocka_unit_test_teardown(test_crashing_sink_is_restarted, teardown),
        cmocka_unit_test_teardown(test_hanging_sink_is_stopped_at_its_deadline, teardown),
        cmocka_unit_test_teardown(test_garbled_reply_is_a_crash, teardown),
        cmocka_unit_test_teardown(test_sink_only_plugin_loads_isolated, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
