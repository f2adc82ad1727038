/*
 * test_hostile.c — deliberately broken and hostile plugin libraries
 * (tests/plugins/hostile_*.c and the older bad ones), each through YAML
 * loading and invoking, as an operator would meet them.
 *
 * Every case proves two things:
 *   1. the host's answer is specific: a load error that names the
 *      configuration file, the operator's plugin name, the resolved
 *      library path and what is wrong; or, for a plugin that misbehaves
 *      when called, a soft error record (or a fail-closed deny) naming the
 *      plugin;
 *   2. the rest keeps working: a good plugin ("good", libcounter.so, which
 *      counts its calls in the result metadata as "good.count") loaded in
 *      the same manager before the hostile one still runs, and nothing of
 *      a refused library stays mapped.
 *
 * Where a hostile create allocates an instance, the test holds its own
 * reference to the library and reads the library's exported
 * `hostile_live_instances`: 0 after the refusal proves the host called the
 * plugin's destroy (LeakSanitizer proves it again in the ASan build).
 * Hostile libraries whose plugin code must never run (the manifest is
 * refused first) abort() in their entry points.
 *
 * docs/testing.md has the table of cases and the behaviour proven here.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpex/cmf.h"
#include "cpex/loader.h"
#include "cpex/manager.h"
#include "cpex/payload.h"
#include "cpex/result.h"
#include "test_support.h"

#define LIB(name) CPEX_PLUGIN_DIR "/lib" name ".so"
#define PRE "cmf.tool_pre_invoke"

static const char *const all_libs[] = {
    LIB("counter"),
    LIB("bad_status"),
    LIB("init_fail"),
    LIB("hostile_registration"),
    LIB("hostile_handlers"),
    LIB("hostile_manifest_names"),
    LIB("hostile_manifest_count"),
    LIB("hostile_abi_split"),
    LIB("hostile_abi_split_manifest"),
    LIB("hostile_unresolved"),
    LIB("hostile_init_garbage"),
    LIB("hostile_behaviour"),
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void quiet_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user;
    (void)level;
    (void)plugin;
    (void)message;
}

/* Managers and library references not yet released: a test that fails
   half-way leaves them here, and teardown releases them so the next test
   starts clean. */
#define MAX_LIVE 8
static cpex_manager *live_managers[MAX_LIVE];
static void *live_refs[MAX_LIVE];

static void track(void **slots, void *p)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (!slots[i]) {
            slots[i] = p;
            return;
        }
}

static void untrack(void **slots, void *p)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (slots[i] == p)
            slots[i] = NULL;
}

static void manager_free(cpex_manager *m)
{
    untrack((void **)live_managers, m);
    cpex_manager_free(m);
}

static cpex_manager *new_manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = quiet_log;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_new(&o, &m, &err);
    if (st == CPEX_OK)
        st = cpex_loader_register(m, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
    track((void **)live_managers, m);
    return m;
}

static void load_ok(cpex_manager *m, const char *yaml)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err);
    if (st != CPEX_OK)
        print_error("load failed:\n%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

/* A manager with the good plugin loaded and initialized. */
static cpex_manager *manager_with_good(void)
{
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: good\n"
               "    kind: \"lib:" LIB("counter") "\"\n"
               "    hooks: [" PRE "]\n"
               "    priority: 1\n"
               "    config: { label: good }\n");
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

typedef struct outcome {
    cpex_pipeline_result r;
    cpex_cmf_message *msg;
} outcome;

static void invoke(cpex_manager *m, outcome *o)
{
    o->msg = cpex_cmf_new(CPEX_ROLE_USER);
    assert_non_null(o->msg);
    assert_int_equal(cpex_cmf_append_text(o->msg, CPEX_PART_TEXT, "hello", 5), CPEX_OK);
    cpex_payload p = cpex_payload_cmf(o->msg);
    cpex_manager_invoke(m, PRE, &p, NULL, NULL, &o->r);
}

static void outcome_cleanup(outcome *o)
{
    cpex_pipeline_result_cleanup(&o->r);
    cpex_cmf_free(o->msg);
}

static void print_result(const cpex_pipeline_result *r)
{
    json_t *j = cpex_pipeline_result_to_json(r);
    char *s = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
    print_message("result: %s\n", s ? s : "(null)");
    free(s);
    json_decref(j);
}

static long long meta_int(const cpex_pipeline_result *r, const char *key)
{
    json_t *v = r->metadata ? json_object_get(r->metadata, key) : NULL;
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* The good plugin ran, and this is its n-th call. */
static void assert_good_ran(const outcome *o, long long n)
{
    if (meta_int(&o->r, "good.count") != n) {
        print_result(&o->r);
        fail_msg("the good plugin did not run as call %lld", n);
    }
}

/* The first record of `plugin` with `code`, or NULL. */
static const cpex_error_record *find_record(const cpex_pipeline_result *r, const char *plugin,
                                            const char *code)
{
    for (size_t i = 0; i < r->error_count; i++)
        if (strcmp(r->errors[i].plugin_name, plugin) == 0 && strcmp(r->errors[i].code, code) == 0)
            return &r->errors[i];
    return NULL;
}

static const cpex_error_record *expect_record(const outcome *o, const char *plugin,
                                              const char *code)
{
    const cpex_error_record *rec = find_record(&o->r, plugin, code);
    if (!rec) {
        print_result(&o->r);
        fail_msg("no soft error '%s' recorded for plugin '%s'", code, plugin);
    }
    return rec;
}

static void expect_allowed(const outcome *o)
{
    if (!o->r.continue_processing || o->r.violation) {
        print_result(&o->r);
        fail_msg("expected the pipeline to allow");
    }
}

/*
 * Load `yaml` (one hostile plugin) into a manager that already runs the
 * good plugin; expect `code` and return the message (malloc'd). Checks
 * that nothing was published and the good plugin still runs afterwards.
 */
static char *load_refused(const char *yaml, cpex_status code)
{
    cpex_manager *m = manager_with_good();
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err);
    if (st == CPEX_OK)
        print_error("load unexpectedly succeeded:\n%s\n", yaml);
    assert_int_equal(st, code);
    char *msg = strdup(cpex_error_message(&err));
    assert_non_null(msg);
    cpex_error_cleanup(&err);
    assert_contains(msg, "test.yaml:");
    assert_int_equal(cpex_manager_plugin_count(m), 1);

    outcome o;
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    assert_int_equal(o.r.error_count, 0);
    outcome_cleanup(&o);
    manager_free(m);
    return msg;
}

/* A reference of our own to a library, to read its exported counter. */
typedef struct libref {
    void *dl;
    int *live;
} libref;

static libref hold(const char *path)
{
    libref r;
    r.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!r.dl)
        print_error("dlopen %s: %s\n", path, dlerror());
    assert_non_null(r.dl);
    track(live_refs, r.dl);
    r.live = dlsym(r.dl, "hostile_live_instances");
    assert_non_null(r.live);
    return r;
}

static void release(libref *r)
{
    untrack(live_refs, r->dl);
    dlclose(r->dl);
    r->dl = NULL;
    r->live = NULL;
}

static int is_loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return 0;
    dlclose(h);
    return 1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live_managers[i])
            cpex_manager_free(live_managers[i]);
        if (live_refs[i])
            dlclose(live_refs[i]);
        live_managers[i] = NULL;
        live_refs[i] = NULL;
    }
    for (size_t i = 0; i < sizeof all_libs / sizeof *all_libs; i++) {
        if (is_loaded(all_libs[i])) {
            print_error("library still loaded after the test: %s\n", all_libs[i]);
            return -1;
        }
    }
    return 0;
}

#define HOSTILE(name, kind_suffix, extra)                                                          \
    "plugins:\n"                                                                                   \
    "  - name: " name "\n"                                                                         \
    "    kind: \"lib:" kind_suffix "\"\n"                                                          \
    "    hooks: [" PRE "]\n"                                                                       \
    "    priority: 50\n" extra

/* ------------------------------------------------------------------ */
/* The entry point's answer                                            */
/* ------------------------------------------------------------------ */

/* bad_status: an undefined status (42) with a message. */
static void test_unknown_status(void **state)
{
    (void)state;
    char *msg = load_refused(HOSTILE("odd", LIB("bad_status"), ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'odd'");
    assert_contains(msg, LIB("bad_status"));
    assert_contains(msg, "returned status 42, which ABI 1.0 does not define");
    assert_contains(msg, "bad_status: something odd");
    free(msg);
}

/* OK, but the registration is left exactly as the host passed it. */
static void test_ok_with_untouched_registration(void **state)
{
    (void)state;
    char *msg = load_refused(
        HOSTILE("blank", LIB("hostile_registration") "?entry=untouched", ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'blank'");
    assert_contains(msg, LIB("hostile_registration"));
    assert_contains(msg, "registration");
    assert_contains(msg, "returned OK but filled no registration");
    free(msg);
}

/* OK with a valid header but no handlers at all. */
static void test_ok_without_handlers(void **state)
{
    (void)state;
    libref lib = hold(LIB("hostile_registration"));
    char *msg = load_refused(
        HOSTILE("empty", LIB("hostile_registration") "?entry=no_handlers", ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'empty'");
    assert_contains(msg, LIB("hostile_registration"));
    assert_contains(msg, "registered no handlers");
    assert_int_equal(*lib.live, 0); /* the refused instance was destroyed */
    free(msg);

    msg = load_refused(
        HOSTILE("no-array", LIB("hostile_registration") "?entry=count_no_array", ""),
        CPEX_E_LOAD);
    assert_contains(msg, "plugin 'no-array'");
    assert_contains(msg, LIB("hostile_registration"));
    assert_contains(msg, "registered 3 handlers but no handler array");
    assert_int_equal(*lib.live, 0);
    free(msg);

    msg = load_refused(
        HOSTILE("huge", LIB("hostile_registration") "?entry=absurd_count", ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'huge'");
    assert_contains(msg, LIB("hostile_registration"));
    assert_contains(msg, "registered 1099511627776 handlers");
    assert_int_equal(*lib.live, 0);
    free(msg);
    release(&lib);
}

/* A registration whose struct_size is too small, or larger than the host's. */
static void test_registration_size(void **state)
{
    (void)state;
    libref lib = hold(LIB("hostile_registration"));
    char *msg = load_refused(
        HOSTILE("tiny", LIB("hostile_registration") "?entry=too_small", ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'tiny'");
    assert_contains(msg, LIB("hostile_registration"));
    assert_contains(msg, "filled a registration of 16 bytes");
    assert_contains(msg, "host expects");
    free(msg);

    msg = load_refused(HOSTILE("vast", LIB("hostile_registration") "?entry=too_big", ""),
                       CPEX_E_LOAD);
    assert_contains(msg, "plugin 'vast'");
    assert_contains(msg, "filled a registration of 1048576 bytes");
    assert_int_equal(*lib.live, 0);
    free(msg);
    release(&lib);
}

/* ------------------------------------------------------------------ */
/* Handler lists                                                       */
/* ------------------------------------------------------------------ */

static void test_handler_lists(void **state)
{
    (void)state;
    libref lib = hold(LIB("hostile_handlers"));
    char *msg = load_refused(HOSTILE("nofn", LIB("hostile_handlers") "?entry=null_fn", ""),
                             CPEX_E_LOAD);
    assert_contains(msg, "plugin 'nofn'");
    assert_contains(msg, LIB("hostile_handlers"));
    assert_contains(msg, "handler for hook 'cmf.tool_post_invoke'");
    assert_contains(msg, "has no function (NULL)");
    assert_int_equal(*lib.live, 0);
    free(msg);

    /* A fragment that picks the good handler does not hide the broken one. */
    msg = load_refused(HOSTILE("nofn_frag",
                               LIB("hostile_handlers") "?entry=null_fn#cmf.tool_pre_invoke", ""),
                       CPEX_E_LOAD);
    assert_contains(msg, "plugin 'nofn_frag'");
    assert_contains(msg, "has no function (NULL)");
    assert_int_equal(*lib.live, 0);
    free(msg);

    msg = load_refused(HOSTILE("nohook", LIB("hostile_handlers") "?entry=null_hook", ""),
                       CPEX_E_LOAD);
    assert_contains(msg, "plugin 'nohook'");
    assert_contains(msg, LIB("hostile_handlers"));
    assert_contains(msg, "handler #1");
    assert_contains(msg, "has no hook name");
    assert_int_equal(*lib.live, 0);
    free(msg);

    msg = load_refused(HOSTILE("emptyhook", LIB("hostile_handlers") "?entry=empty_hook", ""),
                       CPEX_E_LOAD);
    assert_contains(msg, "plugin 'emptyhook'");
    assert_contains(msg, "handler #0");
    assert_contains(msg, "has no hook name");
    assert_int_equal(*lib.live, 0);
    free(msg);

    msg = load_refused(HOSTILE("twice", LIB("hostile_handlers") "?entry=dup_hook", ""),
                       CPEX_E_LOAD);
    assert_contains(msg, "plugin 'twice'");
    assert_contains(msg, LIB("hostile_handlers"));
    assert_contains(msg, "two handlers for hook 'cmf.tool_pre_invoke'");
    assert_int_equal(*lib.live, 0);
    free(msg);
    release(&lib);
}

/* ------------------------------------------------------------------ */
/* Manifests and ABI versions                                          */
/* ------------------------------------------------------------------ */

static void test_manifest_entry_not_identifier(void **state)
{
    (void)state;
    /* The entry asked for is valid; the manifest as a whole is not. The
       entry points abort(): the host must not run them. */
    char *msg = load_refused(
        HOSTILE("names", LIB("hostile_manifest_names") "?entry=good", ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'names'");
    assert_contains(msg, LIB("hostile_manifest_names"));
    assert_contains(msg, "invalid manifest");
    assert_contains(msg, "entry name 'bad-name' contains invalid character '-'");
    free(msg);
}

static void test_manifest_absurd_count(void **state)
{
    (void)state;
    char *msg = load_refused(HOSTILE("count", LIB("hostile_manifest_count"), ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'count'");
    assert_contains(msg, LIB("hostile_manifest_count"));
    assert_contains(msg, "invalid manifest");
    assert_contains(msg, "claims 1099511627776 entries (at most 1024 accepted)");
    free(msg);
}

static void test_manifest_and_entry_disagree_on_abi(void **state)
{
    (void)state;
    /* Manifest 1.0, registration 2.0: refused after create, destroyed. */
    libref lib = hold(LIB("hostile_abi_split"));
    char *msg = load_refused(HOSTILE("split", LIB("hostile_abi_split"), ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'split'");
    assert_contains(msg, LIB("hostile_abi_split"));
    assert_contains(msg, "registration is for an incompatible plugin ABI");
    assert_contains(msg, "host has ABI 1.0, plugin has ABI 2.0");
    assert_int_equal(*lib.live, 0);
    free(msg);
    release(&lib);

    /* Manifest 1.5, registration 1.0: refused from the manifest, before any
       plugin code runs (the entry point aborts). */
    msg = load_refused(HOSTILE("split2", LIB("hostile_abi_split_manifest"), ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'split2'");
    assert_contains(msg, LIB("hostile_abi_split_manifest"));
    assert_contains(msg, "incompatible plugin ABI (newer minor version)");
    assert_contains(msg, "host has ABI 1.0, plugin has ABI 1.5");
    free(msg);
}

/* ------------------------------------------------------------------ */
/* Loading and initializing                                            */
/* ------------------------------------------------------------------ */

static void test_unresolved_symbol(void **state)
{
    (void)state;
    char *msg = load_refused(HOSTILE("dangling", LIB("hostile_unresolved"), ""), CPEX_E_LOAD);
    assert_contains(msg, "plugin 'dangling'");
    assert_contains(msg, LIB("hostile_unresolved"));
    assert_contains(msg, "cannot load library");
    assert_contains(msg, "uses a symbol that no library provides");
    assert_contains(msg, "undefined symbol: cpex_hostile_no_such_function");
    free(msg);
}

/* init_fail: initialize fails with its own message; the plugin fails closed. */
static void test_initialize_fails(void **state)
{
    (void)state;
    for (int ignore = 0; ignore <= 1; ignore++) {
        cpex_manager *m = manager_with_good();
        const char *yaml = ignore ? HOSTILE("flaky", LIB("init_fail"), "    on_error: ignore\n")
                                  : HOSTILE("flaky", LIB("init_fail"), "");
        cpex_error err = CPEX_ERROR_INIT;
        /* The manager is initialized: the new plugin is initialized on load,
           and its failure refuses the load. */
        cpex_status st =
            cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err);
        assert_int_equal(st, CPEX_E_PLUGIN);
        assert_contains(cpex_error_message(&err), "test.yaml:");
        assert_contains(cpex_error_message(&err), "plugin 'flaky'");
        assert_contains(cpex_error_message(&err),
                        "init_fail: backend at 10.0.0.1:9 is unreachable");
        cpex_error_cleanup(&err);
        assert_int_equal(cpex_manager_plugin_count(m), 1);
        outcome o;
        invoke(m, &o);
        expect_allowed(&o);
        assert_good_ran(&o, 1);
        outcome_cleanup(&o);
        manager_free(m);

        /* Loaded before initialize: the load succeeds, initialize reports the
           failure, and every invoke that reaches the plugin fails closed
           (on_error fail: a deny naming it) or records it (ignore). */
        m = new_manager();
        load_ok(m, "plugins:\n"
                   "  - name: good\n"
                   "    kind: \"lib:" LIB("counter") "\"\n"
                   "    hooks: [" PRE "]\n"
                   "    priority: 1\n"
                   "    config: { label: good }\n");
        load_ok(m, yaml);
        assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_PLUGIN);
        assert_contains(cpex_error_message(&err), "plugin 'flaky'");
        cpex_error_cleanup(&err);
        invoke(m, &o);
        assert_good_ran(&o, 1);
        if (ignore) {
            expect_allowed(&o);
            const cpex_error_record *rec = expect_record(&o, "flaky", "not_initialized");
            assert_contains(rec->message, "init_fail: backend at 10.0.0.1:9 is unreachable");
        } else {
            assert_false(o.r.continue_processing);
            assert_non_null(o.r.violation);
            assert_string_equal(o.r.violation->code, "plugin_error");
            assert_string_equal(o.r.violation->plugin_name, "flaky");
            assert_contains(o.r.violation->reason, "init_fail: backend at 10.0.0.1:9");
        }
        outcome_cleanup(&o);
        manager_free(m);
    }
}

/* No control character of a plugin's message may reach the operator: an
   escape sequence or a forged line. Returns 0 (and says where) if one does. */
static int printable_line(const char *text, const char *what)
{
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p == 0x1b || (*p == '\n' && strncmp(p + 1, "FAKE", 4) == 0)) {
            char shown[121]; /* printed with the control characters made visible */
            size_t i = 0;
            for (; i < sizeof shown - 1 && text[i]; i++)
                shown[i] = (unsigned char)text[i] < 0x20 ? '?' : text[i];
            shown[i] = '\0';
            print_error("%s carries the plugin's control characters (escape or forged "
                        "line): %s...\n",
                        what, shown);
            return 0;
        }
    }
    return 1;
}

static void test_initialize_garbage_message(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: good\n"
               "    kind: \"lib:" LIB("counter") "\"\n"
               "    hooks: [" PRE "]\n"
               "    priority: 1\n"
               "    config: { label: good }\n");
    load_ok(m, HOSTILE("garbage", LIB("hostile_init_garbage"), "    on_error: ignore\n"));
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_PLUGIN);
    const char *msg = cpex_error_message(&err);
    assert_contains(msg, "plugin 'garbage'");
    assert_contains(msg, "init_garbage: failed");
    assert_true(strlen(msg) < 4096); /* the unterminated buffer was cut */
    int clean = printable_line(msg, "the initialize error");
    cpex_error_cleanup(&err);

    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "garbage", &info), CPEX_OK);
    assert_int_equal(info.state, CPEX_PLUGIN_FAILED);
    assert_non_null(info.reason);
    assert_contains(info.reason, "init_garbage: failed");
    clean &= printable_line(info.reason, "the plugin's reason (cpex_plugin_info)");
    cpex_plugin_info_cleanup(&info);

    outcome o;
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    const cpex_error_record *rec = expect_record(&o, "garbage", "not_initialized");
    clean &= printable_line(rec->message, "the invoke's error record");
    outcome_cleanup(&o);
    manager_free(m);
    if (!clean)
        fail_msg("a plugin's initialize message reached the operator with its control "
                 "characters (the loader sanitizes create messages; initialize messages "
                 "must be sanitized too)");
}

/* ------------------------------------------------------------------ */
/* Misbehaving handlers                                                */
/* ------------------------------------------------------------------ */

/* A manager running good (priority 1) and one hostile plugin from YAML. */
static cpex_manager *with_hostile(const char *yaml)
{
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: good\n"
               "    kind: \"lib:" LIB("counter") "\"\n"
               "    hooks: [" PRE "]\n"
               "    priority: 1\n"
               "    config: { label: good }\n");
    load_ok(m, yaml);
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

static void test_unknown_decision(void **state)
{
    (void)state;
    /* on_error ignore: recorded, the pipeline goes on */
    cpex_manager *m = with_hostile(HOSTILE("decider", LIB("hostile_behaviour") "?entry=decide",
                                           "    on_error: ignore\n"));
    outcome o;
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    const cpex_error_record *rec = expect_record(&o, "decider", "bad_decision");
    assert_contains(rec->message, "unknown decision 7");
    outcome_cleanup(&o);
    manager_free(m);

    /* on_error fail (the default): fails closed, naming the plugin */
    m = with_hostile(HOSTILE("decider", LIB("hostile_behaviour") "?entry=decide",
                             "    config: { decision: -1 }\n"));
    invoke(m, &o);
    assert_false(o.r.continue_processing);
    assert_non_null(o.r.violation);
    assert_string_equal(o.r.violation->code, "plugin_error");
    assert_string_equal(o.r.violation->plugin_name, "decider");
    assert_contains(o.r.violation->reason, "unknown decision -1");
    assert_good_ran(&o, 1);
    outcome_cleanup(&o);
    /* ... and the next invoke still reaches the good plugin first */
    invoke(m, &o);
    assert_good_ran(&o, 2);
    outcome_cleanup(&o);
    manager_free(m);

    /* on_error disable: recorded once, then never called again */
    m = with_hostile(HOSTILE("decider", LIB("hostile_behaviour") "?entry=decide",
                             "    on_error: disable\n"));
    invoke(m, &o);
    expect_allowed(&o);
    expect_record(&o, "decider", "bad_decision");
    outcome_cleanup(&o);
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 2);
    assert_int_equal(o.r.error_count, 0);
    outcome_cleanup(&o);
    manager_free(m);
}

static void test_modification_in_audit_mode(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(HOSTILE("auditor", LIB("hostile_behaviour") "?entry=modify",
                                           "    mode: audit\n"));
    outcome o;
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    assert_false(o.r.payload_modified);
    assert_null(o.r.modified_payload);
    assert_string_equal(cpex_pipeline_result_cmf(&o.r, o.msg)->parts[0].text.ptr, "hello");
    const cpex_error_record *rec = expect_record(&o, "auditor", "dropped_modification");
    assert_contains(rec->message, "audit mode");
    assert_int_equal(meta_int(&o.r, "modify.rc"), CPEX_HOST_EDENIED);
    outcome_cleanup(&o);
    manager_free(m);

    /* The same plugin in sequential mode does modify: the refusal is the mode's. */
    m = with_hostile(HOSTILE("editor", LIB("hostile_behaviour") "?entry=modify", ""));
    invoke(m, &o);
    expect_allowed(&o);
    assert_true(o.r.payload_modified);
    assert_string_equal(cpex_pipeline_result_cmf(&o.r, o.msg)->parts[0].text.ptr,
                        "hello [modified]");
    assert_int_equal(meta_int(&o.r, "modify.rc"), CPEX_HOST_OK);
    assert_int_equal(o.r.error_count, 0);
    outcome_cleanup(&o);
    manager_free(m);

    /* A payload of the wrong type (JSON for a CMF hook): dropped, recorded. */
    m = with_hostile(HOSTILE("liar", LIB("hostile_behaviour") "?entry=modify",
                             "    config: { as: json }\n"));
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    assert_false(o.r.payload_modified);
    expect_record(&o, "liar", "dropped_modification");
    assert_int_equal(meta_int(&o.r, "modify.rc"), CPEX_HOST_EINVAL);
    outcome_cleanup(&o);
    manager_free(m);
}

static void test_deny_in_transform_mode(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(HOSTILE("shaper", LIB("hostile_behaviour") "?entry=deny",
                                           "    mode: transform\n"));
    outcome o;
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    const cpex_error_record *rec = expect_record(&o, "shaper", "dropped_deny");
    assert_contains(rec->message, "transform mode");
    assert_contains(rec->message, "the hostile plugin says no");
    outcome_cleanup(&o);
    manager_free(m);

    /* audit: the same */
    m = with_hostile(HOSTILE("watcher", LIB("hostile_behaviour") "?entry=deny",
                             "    mode: audit\n"));
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    rec = expect_record(&o, "watcher", "dropped_deny");
    assert_contains(rec->message, "audit mode");
    outcome_cleanup(&o);
    manager_free(m);

    /* fire_and_forget: dropped and recorded in the background error log */
    m = with_hostile(HOSTILE("bg", LIB("hostile_behaviour") "?entry=deny",
                             "    mode: fire_and_forget\n"));
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    outcome_cleanup(&o);
    assert_int_equal(cpex_manager_wait_background(m, 10.0), CPEX_OK);
    cpex_error_record *bg = NULL;
    size_t n = cpex_manager_take_background_errors(m, &bg);
    assert_int_equal(n, 1);
    assert_string_equal(bg[0].plugin_name, "bg");
    assert_string_equal(bg[0].code, "dropped_deny");
    cpex_error_records_free(bg, n);
    manager_free(m);

    /* where a deny is allowed (sequential), it is the plugin's own violation */
    m = with_hostile(HOSTILE("gate", LIB("hostile_behaviour") "?entry=deny", ""));
    invoke(m, &o);
    assert_false(o.r.continue_processing);
    assert_string_equal(o.r.violation->code, "hostile.deny");
    assert_string_equal(o.r.violation->plugin_name, "gate");
    assert_good_ran(&o, 1);
    outcome_cleanup(&o);
    manager_free(m);
}

/* Host slots called with NULLs, bad values and a forged call. */
static void test_host_table_misuse(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(HOSTILE("clumsy", LIB("hostile_behaviour") "?entry=misuse", ""));
    outcome o;
    invoke(m, &o);
    expect_allowed(&o);
    assert_good_ran(&o, 1);
    json_t *rcs = json_object_get(o.r.metadata, "misuse.rc");
    assert_true(json_is_array(rcs));
    static const int expected[] = {
        CPEX_HOST_EINVAL,    /* deny(NULL call) */
        CPEX_HOST_EINVAL,    /* deny(NULL code) */
        CPEX_HOST_EINVAL,    /* deny(forged call) */
        CPEX_HOST_EINVAL,    /* set_error(NULL call) */
        CPEX_HOST_EINVAL,    /* set_payload_cmf(NULL message) */
        CPEX_HOST_EINVAL,    /* set_payload_cmf(forged call) */
        CPEX_HOST_EINVAL,    /* set_metadata(NULL key) */
        CPEX_HOST_ENOTFOUND, /* ext_get(unknown field) */
        CPEX_HOST_EINVAL,    /* ext_get(forged call) */
        CPEX_HOST_ENOTFOUND, /* ext_item(index SIZE_MAX) */
        CPEX_HOST_EINVAL,    /* ctx_set(scope 77) */
        CPEX_HOST_EINVAL,    /* ctx_set(forged call) */
        CPEX_HOST_EINVAL,    /* json_object_set(not an object) */
        CPEX_HOST_EINVAL,    /* cmf_set_text(NULL message) */
        CPEX_HOST_EINVAL,    /* json_array_append(NULL array) */
    };
    size_t n = sizeof expected / sizeof expected[0];
    if (json_array_size(rcs) != n)
        print_result(&o.r);
    assert_int_equal(json_array_size(rcs), n);
    for (size_t i = 0; i < n; i++) {
        if (json_integer_value(json_array_get(rcs, i)) != expected[i])
            print_error("slot call #%zu returned %lld, expected %d\n", i,
                        (long long)json_integer_value(json_array_get(rcs, i)), expected[i]);
        assert_int_equal(json_integer_value(json_array_get(rcs, i)), expected[i]);
    }
    /* nothing the forged calls did reached the result */
    assert_null(o.r.violation);
    assert_false(o.r.payload_modified);
    outcome_cleanup(&o);
    manager_free(m);
}

/* Every hostile plugin at once beside the good one, the misbehaving ones
   with on_error ignore: one invoke, every problem recorded, good still runs. */
static void test_all_at_once(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(
        "plugins:\n"
        "  - { name: decider, kind: \"lib:" LIB("hostile_behaviour") "?entry=decide\", "
        "hooks: [" PRE "], on_error: ignore, priority: 10 }\n"
        "  - { name: shaper, kind: \"lib:" LIB("hostile_behaviour") "?entry=deny\", "
        "hooks: [" PRE "], mode: transform }\n"
        "  - { name: auditor, kind: \"lib:" LIB("hostile_behaviour") "?entry=modify\", "
        "hooks: [" PRE "], mode: audit }\n"
        "  - { name: clumsy, kind: \"lib:" LIB("hostile_behaviour") "?entry=misuse\", "
        "hooks: [" PRE "], priority: 20 }\n");
    for (int round = 1; round <= 3; round++) {
        outcome o;
        invoke(m, &o);
        expect_allowed(&o);
        assert_good_ran(&o, round);
        expect_record(&o, "decider", "bad_decision");
        expect_record(&o, "shaper", "dropped_deny");
        expect_record(&o, "auditor", "dropped_modification");
        assert_false(o.r.payload_modified);
        outcome_cleanup(&o);
    }
    manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_unknown_status, teardown),
        cmocka_unit_test_teardown(test_ok_with_untouched_registration, teardown),
        cmocka_unit_test_teardown(test_ok_without_handlers, teardown),
        cmocka_unit_test_teardown(test_registration_size, teardown),
        cmocka_unit_test_teardown(test_handler_lists, teardown),
        cmocka_unit_test_teardown(test_manifest_entry_not_identifier, teardown),
        cmocka_unit_test_teardown(test_manifest_absurd_count, teardown),
        cmocka_unit_test_teardown(test_manifest_and_entry_disagree_on_abi, teardown),
        cmocka_unit_test_teardown(test_unresolved_symbol, teardown),
        cmocka_unit_test_teardown(test_initialize_fails, teardown),
        cmocka_unit_test_teardown(test_initialize_garbage_message, teardown),
        cmocka_unit_test_teardown(test_unknown_decision, teardown),
        cmocka_unit_test_teardown(test_modification_in_audit_mode, teardown),
        cmocka_unit_test_teardown(test_deny_in_transform_mode, teardown),
        cmocka_unit_test_teardown(test_host_table_misuse, teardown),
        cmocka_unit_test_teardown(test_all_at_once, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
