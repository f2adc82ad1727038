/*
 * test_codes.c — the table of codes (cpex/codes.h): its lookups, that
 * docs/pipeline.md lists exactly its rows, and that the executor, driven
 * into each outcome, emits codes of the table of the right kind — and that
 * every code the table says is emitted has a case here (plugin_crashed: a
 * plugin isolated in a worker process that dies in the call).
 */
#include "test_support.h"
#include "plugins.h"
#include "util/alloc.h"

#define HOOK "cmf.tool_pre_invoke"
#define JSON_HOOK "doc.check"

TP_FIXTURE;

/* ------------------------------------------------------------------ */
/* The table and its lookups                                           */
/* ------------------------------------------------------------------ */

static void test_table_lookups(void **state)
{
    (void)state;
    size_t n = 0;
    const cpex_code_info *rows = cpex_code_list(&n);
    assert_non_null(rows);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        const cpex_code_info *r = &rows[i];
        assert_int_equal(r->code, (int)(i + 1)); /* value order, no gaps */
        assert_non_null(r->name);
        assert_non_null(r->meaning);
        assert_true(r->meaning[0] != '\0');
        assert_true(r->kind == CPEX_CODE_KIND_VIOLATION || r->kind == CPEX_CODE_KIND_RECORD);
        assert_ptr_equal(cpex_code_lookup(r->name), r);
        assert_int_equal(cpex_code_from_name(r->name), r->code);
        assert_string_equal(cpex_code_name(r->code), r->name);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(rows[k].name, r->name);
    }
    assert_null(cpex_code_lookup(NULL));
    assert_null(cpex_code_lookup("hostile.deny")); /* a plugin's own code */
    assert_null(cpex_code_lookup("config"));       /* documented once, never emitted */
    assert_int_equal(cpex_code_lookup("unknown_hook")->kind, CPEX_CODE_KIND_VIOLATION);
    assert_int_equal(cpex_code_from_name("Plugin_Deny"), CPEX_CODE_NONE);
    assert_null(cpex_code_name(CPEX_CODE_NONE));
    assert_null(cpex_code_name((cpex_code)(n + 1)));
    assert_null(cpex_code_name((cpex_code)-1));
    /* Named constants a host compares with. */
    assert_string_equal(cpex_code_name(CPEX_CODE_PLUGIN_DENY), "plugin_deny");
    assert_string_equal(cpex_code_name(CPEX_CODE_INTERNAL), "internal");
    assert_true(cpex_code_lookup("plugin_panic")->reserved);
    assert_string_equal(cpex_code_name(CPEX_CODE_PLUGIN_CRASHED), "plugin_crashed");
    assert_int_equal(cpex_code_lookup("plugin_crashed")->kind, CPEX_CODE_KIND_VIOLATION);
    assert_int_equal(cpex_code_lookup("invalid_argument")->kind, CPEX_CODE_KIND_VIOLATION);
    assert_int_equal(cpex_code_lookup("timeout")->kind, CPEX_CODE_KIND_RECORD);
}

/* ------------------------------------------------------------------ */
/* docs/pipeline.md lists the table, row for row                      */
/* ------------------------------------------------------------------ */

static void test_docs_list_the_table(void **state)
{
    (void)state;
    char *doc = test_read_file(CPEX_SOURCE_DIR "/docs/pipeline.md", NULL);
    assert_non_null(doc);
    char *section = strstr(doc, "\n## Codes\n");
    assert_non_null(section);
    char *table = strstr(section, "\n| code | kind | meaning |\n|---|---|---|\n");
    assert_non_null(table);
    char *line = table + strlen("\n| code | kind | meaning |\n|---|---|---|\n"); /* row 1 */

    size_t n = 0;
    const cpex_code_info *rows = cpex_code_list(&n);
    size_t i = 0;
    while (line[0] == '|') {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        char expected[512];
        if (i < n)
            snprintf(expected, sizeof expected, "| `%s` | %s%s | %s |", rows[i].name,
                     rows[i].kind == CPEX_CODE_KIND_VIOLATION ? "violation" : "record",
                     rows[i].reserved ? " (reserved)" : "", rows[i].meaning);
        else
            snprintf(expected, sizeof expected, "(nothing: the table has %zu rows)", n);
        if (i >= n || strcmp(line, expected) != 0) {
            print_error("docs/pipeline.md row %zu of the codes table:\n  is:        %s\n"
                        "  should be: %s\n(CPEX_CODE_TABLE in include/cpex/codes.h rules)\n",
                        i + 1, line, expected);
            fail();
        }
        i++;
        if (!eol)
            break;
        line = eol + 1;
    }
    if (i != n) {
        print_error("docs/pipeline.md lists %zu codes; CPEX_CODE_TABLE has %zu (first missing: "
                    "%s)\n",
                    i, n, i < n ? rows[i].name : "-");
        fail();
    }
    free(doc);
}

/* ------------------------------------------------------------------ */
/* The executor, driven into each code                                 */
/* ------------------------------------------------------------------ */

/* One case: what to set up, and the code it must produce. */
typedef struct code_case {
    cpex_code code;
    void (*setup)(cpex_manager *m);
    bool fail_alloc;    /* retry with the n-th allocation failing until the code shows */
    bool uninitialized; /* invoke without cpex_manager_initialize */
    const char *hook;   /* default HOOK */
    bool one_worker;    /* a pool of one thread that cannot grow */
    const char *text;   /* the message's text, default "hello" */
    bool isolation;     /* the manager finds this build's cpex-worker */
} code_case;

static void seq_deny_silent(cpex_manager *m)
{
    tp_reg(m, tp_denying(tp_new("p", &trace), NULL, NULL));
}

static void conc_deny_silent(cpex_manager *m)
{
    tp_reg(m, tp_denying(tp_new_in("p", &trace, CPEX_MODE_CONCURRENT, 1), NULL, NULL));
}

static void seq_error_fail(cpex_manager *m)
{
    tp_reg(m, tp_failing(tp_new("p", &trace), CPEX_ON_ERROR_FAIL, "boom"));
}

static tp_plugin *overrunning(uint32_t mode, int on_error)
{
    tp_plugin *p = tp_new_in("p", &trace, mode, 1);
    p->on_error = on_error;
    p->timeout = 0.01;
    p->sleep_ms = 60;
    return p;
}

static void seq_timeout_fail(cpex_manager *m)
{
    tp_reg(m, overrunning(CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_FAIL));
}

static void json_hook_plugin(cpex_manager *m)
{
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_define_hook(m, JSON_HOOK, "json", &err), CPEX_OK);
    cpex_error_cleanup(&err);
    tp_plugin *p = tp_new("p", &trace);
    p->hooks[0] = JSON_HOOK;
    tp_reg(m, p);
}

static void nothing(cpex_manager *m) { (void)m; }

static void conc_allow(cpex_manager *m)
{
    tp_reg(m, tp_new_in("p", &trace, CPEX_MODE_CONCURRENT, 1));
}

static void seq_error_ignore(cpex_manager *m)
{
    tp_reg(m, tp_failing(tp_new("p", &trace), CPEX_ON_ERROR_IGNORE, "boom"));
}

static void seq_bad_decision(cpex_manager *m)
{
    tp_plugin *p = tp_new("p", &trace);
    p->on_error = CPEX_ON_ERROR_IGNORE;
    p->decision = 7;
    tp_reg(m, p);
}

static void seq_uninitialized(cpex_manager *m)
{
    tp_plugin *p = tp_new("p", &trace);
    p->on_error = CPEX_ON_ERROR_IGNORE;
    tp_reg(m, p);
}

static void seq_timeout_ignore(cpex_manager *m)
{
    tp_reg(m, overrunning(CPEX_MODE_SEQUENTIAL, CPEX_ON_ERROR_IGNORE));
}

static void transform_deny(cpex_manager *m)
{
    tp_reg(m, tp_denying(tp_new_in("p", &trace, CPEX_MODE_TRANSFORM, 1), "x.no", "no"));
}

static void audit_modify(cpex_manager *m)
{
    tp_plugin *p = tp_new_in("p", &trace, CPEX_MODE_AUDIT, 1);
    p->append_text = "+audit";
    tp_reg(m, p);
}

static void seq_write_without_capability(cpex_manager *m)
{
    tp_plugin *p = tp_new("p", &trace);
    p->set_header_name = "x-a";
    p->set_header_value = "1";
    tp_reg(m, p);
}

/* One worker, stuck in `h` past its deadline while `p` waits in the queue
 * until its own deadline: p is not started (not its fault), and fails
 * closed (on_error: fail). */
static void conc_pool_busy(cpex_manager *m)
{
    tp_plugin *h = overrunning(CPEX_MODE_CONCURRENT, CPEX_ON_ERROR_IGNORE);
    h->sleep_ms = 300;
    tp_reg(m, h);
    tp_plugin *p = tp_new_in("q", &trace, CPEX_MODE_CONCURRENT, 2);
    p->on_error = CPEX_ON_ERROR_FAIL;
    p->timeout = 0.05;
    tp_reg(m, p);
}

static void faf_allow(cpex_manager *m)
{
    tp_reg(m, tp_new_in("p", &trace, CPEX_MODE_FIRE_AND_FORGET, 1));
}

/* A plugin on HOOK, and a configuration that denies hooks no plugin serves. */
static void deny_unknown_hooks(cpex_manager *m)
{
    tp_reg(m, tp_new("p", &trace));
    static const char yaml[] = "plugin_settings: {unknown_hook: deny}\nplugins: []\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, yaml, strlen(yaml), NULL, NULL, &err), CPEX_OK);
    cpex_error_cleanup(&err);
}

/* The isolation probe (tests/plugins/iso_probe.c) in a worker process,
 * with on_error fail: the case's text "segv" makes its worker die in the
 * call, which halts with plugin_crashed. */
static void isolated_crash_fail(cpex_manager *m)
{
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_loader_register(m, &err), CPEX_OK);
    static const char yaml[] = "plugins:\n"
                               "  - name: p\n"
                               "    kind: \"lib:" CPEX_PLUGIN_DIR "/libiso_probe.so\"\n"
                               "    hooks: [" HOOK "]\n"
                               "    on_error: fail\n"
                               "    isolation: process\n";
    if (cpex_manager_load_string(m, yaml, strlen(yaml), NULL, NULL, &err) != CPEX_OK)
        fail_msg("%s", cpex_error_message(&err));
    cpex_error_cleanup(&err);
}

/* Fail unless `code` is in the table with `kind` and is not reserved. */
static void expect_known(const char *code, cpex_code_kind kind, const char *where)
{
    const cpex_code_info *info = cpex_code_lookup(code);
    if (!info || info->kind != kind || info->reserved) {
        print_error("%s code '%s' is %s\n", where, code ? code : "(null)",
                    !info            ? "not in CPEX_CODE_TABLE"
                    : info->reserved ? "marked reserved"
                                     : "of the other kind");
        fail();
    }
}

/* Every code of `res` is a table code of its kind; returns whether `want` is among them. */
static bool check_result(const cpex_pipeline_result *res, cpex_code want)
{
    bool seen = false;
    if (res->violation) {
        expect_known(res->violation->code, CPEX_CODE_KIND_VIOLATION, "violation");
        seen = cpex_code_from_name(res->violation->code) == want;
    }
    for (size_t i = 0; i < res->error_count; i++) {
        expect_known(res->errors[i].code, CPEX_CODE_KIND_RECORD, "record");
        seen = seen || cpex_code_from_name(res->errors[i].code) == want;
    }
    return seen;
}

/* Invoke the case once (the n-th allocation failing when n > 0); true
 * when its code showed. *reached says whether allocation n happened. */
static bool run_once(cpex_manager *m, const code_case *c, uint64_t n, bool *reached)
{
    const char *hook = c->hook ? c->hook : HOOK;
    cpex_cmf_message *msg = test_text_message(c->text ? c->text : "hello");
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    if (n)
        cpex__alloc_fail_at(n);
    if (c->code == CPEX_CODE_INVALID_ARGUMENT)
        cpex_manager_invoke(NULL, hook, &payload, NULL, NULL, &res);
    else
        cpex_manager_invoke(m, hook, &payload, NULL, NULL, &res);
    *reached = n && cpex__alloc_failed();
    cpex__alloc_fail_at(0);
    assert_int_equal(cpex_manager_wait_background(m, 5.0), CPEX_OK);
    bool seen = check_result(&res, c->code);
    cpex_error_record *bg = NULL;
    size_t nbg = cpex_manager_take_background_errors(m, &bg);
    for (size_t i = 0; i < nbg; i++)
        expect_known(bg[i].code, CPEX_CODE_KIND_RECORD, "background record");
    cpex_error_records_free(bg, nbg);
    if (!seen)
        tp_print_result(&res);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    return seen;
}

static void test_emits(void **state)
{
    const code_case *c = *state;
    cpex_manager *m;
    if (c->one_worker || c->isolation) {
        cpex_manager_options o;
        cpex_manager_options_init(&o);
        if (c->one_worker) {
            o.worker_threads = 1;
            o.max_worker_threads = 1;
        }
        if (c->isolation)
            o.worker_path = CPEX_BINARY_DIR "/cpex-worker";
        m = tp_manager_with(&o);
    } else {
        m = tp_manager();
    }
    c->setup(m);
    if (!c->uninitialized)
        tp_init(m);
    bool seen = false;
    if (!c->fail_alloc) {
        bool reached;
        seen = run_once(m, c, 0, &reached);
    } else {
        /* Fail the 1st, 2nd, ... allocation of the invoke until the code
         * shows (or the invoke no longer reaches the n-th). */
        bool reached = true;
        for (uint64_t n = 1; !seen && reached && n < 500; n++)
            seen = run_once(m, c, n, &reached);
    }
    if (!seen)
        fail_msg("the invoke did not produce code '%s'", cpex_code_name(c->code));
    tp_manager_free(m);
}

#define CASE(code_, ...)                                                                           \
    &(const code_case) { .code = CPEX_CODE_##code_, __VA_ARGS__ }

static const code_case *const cases[] = {
    CASE(PLUGIN_DENY, .setup = seq_deny_silent),
    CASE(CONCURRENT_DENY, .setup = conc_deny_silent),
    CASE(PLUGIN_ERROR, .setup = seq_error_fail),
    CASE(PLUGIN_TIMEOUT, .setup = seq_timeout_fail),
    CASE(PAYLOAD_TYPE_MISMATCH, .setup = json_hook_plugin, .hook = JSON_HOOK),
    CASE(INVALID_ARGUMENT, .setup = nothing),
    CASE(INTERNAL_ERROR, .setup = conc_allow, .fail_alloc = true),
    CASE(ERROR, .setup = seq_error_ignore),
    CASE(BAD_DECISION, .setup = seq_bad_decision),
    CASE(NOT_INITIALIZED, .setup = seq_uninitialized, .uninitialized = true),
    CASE(TIMEOUT, .setup = seq_timeout_ignore),
    CASE(DROPPED_DENY, .setup = transform_deny),
    CASE(DROPPED_MODIFICATION, .setup = audit_modify),
    CASE(DENIED_WRITE, .setup = seq_write_without_capability),
    CASE(INTERNAL, .setup = faf_allow, .fail_alloc = true),
    CASE(NOT_STARTED, .setup = conc_pool_busy, .one_worker = true),
    CASE(WORKER_POOL_BUSY, .setup = conc_pool_busy, .one_worker = true),
    CASE(UNKNOWN_HOOK, .setup = deny_unknown_hooks, .hook = "CMF.TOOL_PRE_INVOKE"),
    CASE(PLUGIN_CRASHED, .setup = isolated_crash_fail, .text = "segv", .isolation = true),
};

/* Every code the table says is emitted has a case above, and no case is
 * for a reserved code. */
static void test_every_emitted_code_has_a_case(void **state)
{
    (void)state;
    size_t n = 0;
    const cpex_code_info *rows = cpex_code_list(&n);
    for (size_t i = 0; i < n; i++) {
        size_t found = 0;
        for (size_t k = 0; k < CPEX__COUNT(cases); k++)
            found += cases[k]->code == rows[i].code;
        if (found != (rows[i].reserved ? 0u : 1u)) {
            print_error("code '%s' (%s) has %zu cases in test_codes.c\n", rows[i].name,
                        rows[i].reserved ? "reserved" : "emitted", found);
            fail();
        }
    }
}

int main(void)
{
    enum { FIXED = 3, CASES = CPEX__COUNT(cases) };
    static char names[CASES][64];
    struct CMUnitTest tests[FIXED + CASES] = {
        cmocka_unit_test(test_table_lookups),
        cmocka_unit_test(test_docs_list_the_table),
        cmocka_unit_test(test_every_emitted_code_has_a_case),
    };
    for (size_t k = 0; k < CASES; k++) {
        snprintf(names[k], sizeof names[k], "emits %s", cpex_code_name(cases[k]->code));
        tests[FIXED + k] = (struct CMUnitTest)TP_CASE(names[k], test_emits, cases[k]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
