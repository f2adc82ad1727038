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
#include "e2e.h"
#include "test_support.h"

#define LIB(name) E2E_LIB(name)
#define PRE E2E_PRE

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
    cpex_manager *m = e2e_manager_quiet();
    track((void **)live_managers, m);
    return m;
}

static void load_ok(cpex_manager *m, const char *yaml) { e2e_load_ok(m, yaml, "test.yaml"); }

/* The good plugin: libcounter.so at priority 1, counting as "good.count". */
#define GOOD_YAML                                                                                  \
    E2E_YAML1("good", "lib:" LIB("counter"), PRE,                                                  \
              "    priority: 1\n"                                                                  \
              "    config: { label: good }\n")

/* A new manager with the good plugin and then `yaml` (if not NULL) loaded,
   not initialized. */
static cpex_manager *good_and(const char *yaml)
{
    cpex_manager *m = new_manager();
    load_ok(m, GOOD_YAML);
    if (yaml)
        load_ok(m, yaml);
    return m;
}

/* A manager running good (priority 1) and, if not NULL, the plugins of `yaml`. */
static cpex_manager *with_hostile(const char *yaml)
{
    cpex_manager *m = good_and(yaml);
    e2e_initialize_ok(m);
    return m;
}

typedef e2e_outcome outcome;

static void invoke(cpex_manager *m, outcome *o) { e2e_invoke_hello(m, PRE, o); }

static void outcome_cleanup(outcome *o) { e2e_outcome_cleanup(o); }

/* The end of a case: the outcome and the manager are released. */
static void done(cpex_manager *m, outcome *o)
{
    outcome_cleanup(o);
    manager_free(m);
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
        tp_print_result(&o->r);
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
        tp_print_result(&o->r);
        fail_msg("no soft error '%s' recorded for plugin '%s'", code, plugin);
    }
    return rec;
}

static void expect_allowed(const outcome *o) { assert_allowed(&o->r); }

/* One invoke through `m`: allowed, and the good plugin's `good_n`-th call. */
static void invoke_allowed(cpex_manager *m, outcome *o, long long good_n)
{
    invoke(m, o);
    expect_allowed(o);
    assert_good_ran(o, good_n);
}

/* invoke_allowed with a record of `plugin` with `code`, whose message contains
   `needle` (NULL: unchecked); returns the record. */
static const cpex_error_record *invoke_recorded(cpex_manager *m, outcome *o, long long good_n,
                                                const char *plugin, const char *code,
                                                const char *needle)
{
    invoke_allowed(m, o, good_n);
    const cpex_error_record *rec = expect_record(o, plugin, code);
    if (needle)
        assert_contains(rec->message, needle);
    return rec;
}

/* The invoke failed closed: a plugin_error deny naming `plugin`, whose reason
   contains `reason`. */
static void expect_failed_closed(const outcome *o, const char *plugin, const char *reason)
{
    assert_denied(&o->r, "plugin_error", plugin);
    assert_contains(o->r.violation->reason, reason);
}

/*
 * Load `yaml` (one hostile plugin) into a manager that already runs the
 * good plugin; expect `code` and return the message (malloc'd). Checks
 * that nothing was published and the good plugin still runs afterwards.
 */
static char *load_refused(const char *yaml, cpex_status code)
{
    cpex_manager *m = with_hostile(NULL);
    char *msg = e2e_load_refused(m, yaml, "test.yaml", code, NULL);
    assert_contains(msg, "test.yaml:");
    assert_int_equal(cpex_manager_plugin_count(m), 1);

    outcome o = E2E_OUTCOME_INIT;
    invoke_allowed(m, &o, 1);
    assert_int_equal(o.r.error_count, 0);
    done(m, &o);
    return msg;
}

/* A reference of our own to a library, to read its exported counter. */
typedef struct libref {
    void *dl;
    int *live;
} libref;

/*
 * load_refused(yaml, CPEX_E_LOAD), then: the message contains every needle
 * (the list ends with NULL), and, with `lib`, the refused instance was
 * destroyed (the library counts no live instance). Failures name the
 * caller's line (expect_refused).
 */
static void expect_refused_at(const char *file, int line, const char *yaml, const libref *lib, ...)
{
    char *msg = load_refused(yaml, CPEX_E_LOAD);
    va_list ap;
    va_start(ap, lib);
    e2e_contains_all(file, line, msg, ap);
    va_end(ap);
    if (lib)
        assert_int_equal(*lib->live, 0);
    free(msg);
}
#define expect_refused(yaml, lib, ...)                                                             \
    expect_refused_at(__FILE__, __LINE__, (yaml), (lib), __VA_ARGS__, (const char *)NULL)

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
    return e2e_none_loaded(all_libs, CPEX__COUNT(all_libs));
}

#define HOSTILE(name, kind_suffix, extra)                                                          \
    E2E_YAML1(name, "lib:" kind_suffix, PRE, "    priority: 50\n" extra)

/* ------------------------------------------------------------------ */
/* The entry point's answer                                            */
/* ------------------------------------------------------------------ */

/* bad_status: an undefined status (42) with a message. */
static void test_unknown_status(void **state)
{
    (void)state;
    char said[96];
    e2e_abi_fmt(said, sizeof said, "returned status 42, which ABI %s does not define");
    expect_refused(HOSTILE("odd", LIB("bad_status"), ""), NULL, "plugin 'odd'", LIB("bad_status"),
                   said, "bad_status: something odd");
}

#define REG(entry) LIB("hostile_registration") "?entry=" entry

/* OK, but the registration is left exactly as the host passed it. */
static void test_ok_with_untouched_registration(void **state)
{
    (void)state;
    expect_refused(HOSTILE("blank", REG("untouched"), ""), NULL, "plugin 'blank'",
                   LIB("hostile_registration"), "registration",
                   "returned OK but filled no registration");
}

/* OK with a valid header but no handlers at all. */
static void test_ok_without_handlers(void **state)
{
    (void)state;
    libref lib = hold(LIB("hostile_registration"));
    /* each refused instance was destroyed */
    expect_refused(HOSTILE("empty", REG("no_handlers"), ""), &lib, "plugin 'empty'",
                   LIB("hostile_registration"), "registered no handlers");
    expect_refused(HOSTILE("no-array", REG("count_no_array"), ""), &lib, "plugin 'no-array'",
                   LIB("hostile_registration"), "registered 3 handlers but no handler array");
    expect_refused(HOSTILE("huge", REG("absurd_count"), ""), &lib, "plugin 'huge'",
                   LIB("hostile_registration"), "registered 1099511627776 handlers");
    release(&lib);
}

/* A registration whose struct_size is too small, or larger than the host's. */
static void test_registration_size(void **state)
{
    (void)state;
    libref lib = hold(LIB("hostile_registration"));
    expect_refused(HOSTILE("tiny", REG("too_small"), ""), NULL, "plugin 'tiny'",
                   LIB("hostile_registration"), "filled a registration of 16 bytes",
                   "host expects");
    expect_refused(HOSTILE("vast", REG("too_big"), ""), &lib, "plugin 'vast'",
                   "filled a registration of 1048576 bytes");
    release(&lib);
}

/* ------------------------------------------------------------------ */
/* Handler lists                                                       */
/* ------------------------------------------------------------------ */

#define HANDLERS(entry) LIB("hostile_handlers") "?entry=" entry

static void test_handler_lists(void **state)
{
    (void)state;
    libref lib = hold(LIB("hostile_handlers"));
    expect_refused(HOSTILE("nofn", HANDLERS("null_fn"), ""), &lib, "plugin 'nofn'",
                   LIB("hostile_handlers"), "handler for hook 'cmf.tool_post_invoke'",
                   "has no function (NULL)");

    /* A fragment that picks the good handler does not hide the broken one. */
    expect_refused(HOSTILE("nofn_frag", HANDLERS("null_fn#cmf.tool_pre_invoke"), ""), &lib,
                   "plugin 'nofn_frag'", "has no function (NULL)");

    expect_refused(HOSTILE("nohook", HANDLERS("null_hook"), ""), &lib, "plugin 'nohook'",
                   LIB("hostile_handlers"), "handler #1", "has no hook name");
    expect_refused(HOSTILE("emptyhook", HANDLERS("empty_hook"), ""), &lib, "plugin 'emptyhook'",
                   "handler #0", "has no hook name");
    expect_refused(HOSTILE("twice", HANDLERS("dup_hook"), ""), &lib, "plugin 'twice'",
                   LIB("hostile_handlers"), "two handlers for hook 'cmf.tool_pre_invoke'");
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
    expect_refused(HOSTILE("names", LIB("hostile_manifest_names") "?entry=good", ""), NULL,
                   "plugin 'names'", LIB("hostile_manifest_names"), "invalid manifest",
                   "entry name 'bad-name' contains invalid character '-'");
}

static void test_manifest_absurd_count(void **state)
{
    (void)state;
    expect_refused(HOSTILE("count", LIB("hostile_manifest_count"), ""), NULL, "plugin 'count'",
                   LIB("hostile_manifest_count"), "invalid manifest",
                   "claims 1099511627776 entries (at most 1024 accepted)");
}

static void test_manifest_and_entry_disagree_on_abi(void **state)
{
    (void)state;
    /* Manifest 1.0, registration 2.0: refused after create, destroyed. */
    char major2[96], minor5[96];
    e2e_abi_fmt(major2, sizeof major2, "host has ABI %s, plugin has ABI 2.0");
    e2e_abi_fmt(minor5, sizeof minor5, "host has ABI %s, plugin has ABI 1.5");
    libref lib = hold(LIB("hostile_abi_split"));
    expect_refused(HOSTILE("split", LIB("hostile_abi_split"), ""), &lib, "plugin 'split'",
                   LIB("hostile_abi_split"), "registration is for an incompatible plugin ABI",
                   major2);
    release(&lib);

    /* Manifest 1.5, registration 1.0: refused from the manifest, before any
       plugin code runs (the entry point aborts). */
    expect_refused(HOSTILE("split2", LIB("hostile_abi_split_manifest"), ""), NULL,
                   "plugin 'split2'", LIB("hostile_abi_split_manifest"),
                   "incompatible plugin ABI (newer minor version)", minor5);
}

/* ------------------------------------------------------------------ */
/* Loading and initializing                                            */
/* ------------------------------------------------------------------ */

static void test_unresolved_symbol(void **state)
{
    (void)state;
    expect_refused(HOSTILE("dangling", LIB("hostile_unresolved"), ""), NULL, "plugin 'dangling'",
                   LIB("hostile_unresolved"), "cannot load library",
                   "uses a symbol that no library provides",
                   "undefined symbol: cpex_hostile_no_such_function");
}

#define INIT_FAIL_MSG "init_fail: backend at 10.0.0.1:9 is unreachable"

/* init_fail: initialize fails with its own message; the plugin fails closed. */
static void test_initialize_fails(void **state)
{
    (void)state;
    for (int ignore = 0; ignore <= 1; ignore++) {
        const char *yaml = ignore ? HOSTILE("flaky", LIB("init_fail"), "    on_error: ignore\n")
                                  : HOSTILE("flaky", LIB("init_fail"), "");
        /* The manager is initialized: the new plugin is initialized on load,
           and its failure refuses the load. */
        char *msg = load_refused(yaml, CPEX_E_PLUGIN);
        assert_contains(msg, "plugin 'flaky'");
        assert_contains(msg, INIT_FAIL_MSG);
        free(msg);

        /* Loaded before initialize: the load succeeds, initialize reports the
           failure, and every invoke that reaches the plugin fails closed
           (on_error fail: a deny naming it) or records it (ignore). */
        cpex_manager *m = good_and(yaml);
        cpex_error err = CPEX_ERROR_INIT;
        assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_PLUGIN);
        assert_contains(cpex_error_message(&err), "plugin 'flaky'");
        cpex_error_cleanup(&err);
        outcome o = E2E_OUTCOME_INIT;
        if (ignore) {
            invoke_recorded(m, &o, 1, "flaky", "not_initialized", INIT_FAIL_MSG);
        } else {
            invoke(m, &o);
            assert_good_ran(&o, 1);
            expect_failed_closed(&o, "flaky", "init_fail: backend at 10.0.0.1:9");
        }
        done(m, &o);
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
    cpex_manager *m =
        good_and(HOSTILE("garbage", LIB("hostile_init_garbage"), "    on_error: ignore\n"));
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_E_PLUGIN);
    const char *msg = cpex_error_message(&err);
    assert_contains(msg, "plugin 'garbage'");
    assert_contains(msg, "init_garbage: failed");
    assert_true(strlen(msg) < 4096); /* the unterminated buffer was cut */
    int clean = printable_line(msg, "the initialize error");
    cpex_error_cleanup(&err);

    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "garbage", &info), CPEX_OK);
    assert_int_equal(info.state, CPEX_STATE_FAILED);
    assert_non_null(info.reason);
    assert_contains(info.reason, "init_garbage: failed");
    clean &= printable_line(info.reason, "the plugin's reason (cpex_plugin_info)");
    cpex_plugin_info_cleanup(&info);

    outcome o = E2E_OUTCOME_INIT;
    const cpex_error_record *rec = invoke_recorded(m, &o, 1, "garbage", "not_initialized", NULL);
    clean &= printable_line(rec->message, "the invoke's error record");
    done(m, &o);
    if (!clean)
        fail_msg("a plugin's initialize message reached the operator with its control "
                 "characters (the loader sanitizes create messages; initialize messages "
                 "must be sanitized too)");
}

/* ------------------------------------------------------------------ */
/* Misbehaving handlers                                                */
/* ------------------------------------------------------------------ */

/* The hostile_behaviour plugin `entry` named `name`, with `extra` YAML. */
#define BEHAVIOUR(name, entry, extra) HOSTILE(name, LIB("hostile_behaviour") "?entry=" entry, extra)

static void test_unknown_decision(void **state)
{
    (void)state;
    /* on_error ignore: recorded, the pipeline goes on */
    cpex_manager *m = with_hostile(BEHAVIOUR("decider", "decide", "    on_error: ignore\n"));
    outcome o = E2E_OUTCOME_INIT;
    invoke_recorded(m, &o, 1, "decider", "bad_decision", "unknown decision 7");
    done(m, &o);

    /* on_error fail (the default): fails closed, naming the plugin */
    m = with_hostile(BEHAVIOUR("decider", "decide", "    config: { decision: -1 }\n"));
    invoke(m, &o);
    expect_failed_closed(&o, "decider", "unknown decision -1");
    assert_good_ran(&o, 1);
    outcome_cleanup(&o);
    /* ... and the next invoke still reaches the good plugin first */
    invoke(m, &o);
    assert_good_ran(&o, 2);
    done(m, &o);

    /* on_error disable: recorded once, then never called again */
    m = with_hostile(BEHAVIOUR("decider", "decide", "    on_error: disable\n"));
    invoke(m, &o);
    expect_allowed(&o);
    expect_record(&o, "decider", "bad_decision");
    outcome_cleanup(&o);
    invoke_allowed(m, &o, 2);
    assert_int_equal(o.r.error_count, 0);
    done(m, &o);
}

static void test_modification_in_audit_mode(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(BEHAVIOUR("auditor", "modify", "    mode: audit\n"));
    outcome o = E2E_OUTCOME_INIT;
    invoke_allowed(m, &o, 1);
    assert_false(o.r.payload_modified);
    assert_null(o.r.modified_payload);
    assert_string_equal(cpex_pipeline_result_cmf(&o.r, o.msg)->parts[0].text.ptr, "hello");
    const cpex_error_record *rec = expect_record(&o, "auditor", "dropped_modification");
    assert_contains(rec->message, "audit mode");
    assert_int_equal(meta_int(&o.r, "modify.rc"), CPEX_HOST_EDENIED);
    done(m, &o);

    /* The same plugin in sequential mode does modify: the refusal is the mode's. */
    m = with_hostile(BEHAVIOUR("editor", "modify", ""));
    invoke(m, &o);
    expect_allowed(&o);
    assert_true(o.r.payload_modified);
    assert_string_equal(cpex_pipeline_result_cmf(&o.r, o.msg)->parts[0].text.ptr,
                        "hello [modified]");
    assert_int_equal(meta_int(&o.r, "modify.rc"), CPEX_HOST_OK);
    assert_int_equal(o.r.error_count, 0);
    done(m, &o);

    /* A payload of the wrong type (JSON for a CMF hook): dropped, recorded. */
    m = with_hostile(BEHAVIOUR("liar", "modify", "    config: { as: json }\n"));
    invoke_recorded(m, &o, 1, "liar", "dropped_modification", NULL);
    assert_false(o.r.payload_modified);
    assert_int_equal(meta_int(&o.r, "modify.rc"), CPEX_HOST_EINVAL);
    done(m, &o);
}

static void test_deny_in_transform_mode(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(BEHAVIOUR("shaper", "deny", "    mode: transform\n"));
    outcome o = E2E_OUTCOME_INIT;
    const cpex_error_record *rec =
        invoke_recorded(m, &o, 1, "shaper", "dropped_deny", "transform mode");
    assert_contains(rec->message, "the hostile plugin says no");
    done(m, &o);

    /* audit: the same */
    m = with_hostile(BEHAVIOUR("watcher", "deny", "    mode: audit\n"));
    invoke_recorded(m, &o, 1, "watcher", "dropped_deny", "audit mode");
    done(m, &o);

    /* fire_and_forget: dropped and recorded in the background error log */
    m = with_hostile(BEHAVIOUR("bg", "deny", "    mode: fire_and_forget\n"));
    invoke_allowed(m, &o, 1);
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
    m = with_hostile(BEHAVIOUR("gate", "deny", ""));
    invoke(m, &o);
    assert_denied(&o.r, "hostile.deny", "gate");
    assert_good_ran(&o, 1);
    done(m, &o);
}

/* Host slots called with NULLs, bad values and a forged call. */
static void test_host_table_misuse(void **state)
{
    (void)state;
    cpex_manager *m = with_hostile(BEHAVIOUR("clumsy", "misuse", ""));
    outcome o = E2E_OUTCOME_INIT;
    invoke_allowed(m, &o, 1);
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
    size_t n = CPEX__COUNT(expected);
    if (json_array_size(rcs) != n)
        tp_print_result(&o.r);
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
    done(m, &o);
}

/* Every hostile plugin at once beside the good one, the misbehaving ones
   with on_error ignore: one invoke, every problem recorded, good still runs. */
static void test_all_at_once(void **state)
{
    (void)state;
    /* One line of YAML per line of code. */
    /* clang-format off */
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
    /* clang-format on */
    for (int round = 1; round <= 3; round++) {
        outcome o = E2E_OUTCOME_INIT;
        invoke_allowed(m, &o, round);
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
