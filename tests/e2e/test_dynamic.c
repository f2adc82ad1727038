/*
 * test_dynamic.c — plugins from shared libraries, end to end: YAML with
 * `lib:` kinds, cpex_manager_load_string, initialize, invoke with a CMF
 * message. The libraries are the example plugins and the test plugins
 * built into CPEX_PLUGIN_DIR.
 *
 * Leaks are covered by running under ASan/LSan (the sanitizer build); every
 * test also checks, after freeing its manager, that no library it touched
 * is still mapped (dlopen RTLD_NOLOAD returns NULL).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cpex/cmf.h"
#include "cpex/loader.h"
#include "cpex/manager.h"
#include "cpex/payload.h"
#include "cpex/plugin.h"
#include "cpex/result.h"
#include "e2e.h"
#include "test_support.h"

#define LIB(name) E2E_LIB(name)
#define PRE E2E_PRE
#define POST E2E_POST

static const char *const all_libs[] = {
    LIB("single"),          LIB("multi_handler"), LIB("multi_plugin"), LIB("abi_major2"),
    LIB("abi_newer_minor"), LIB("config_reject"), LIB("create_fail"),  LIB("init_fail"),
    LIB("bad_status"),      LIB("no_manifest"),   LIB("reg_newer"),    LIB("counter"),
    LIB("dup_host"),
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static cpex_manager *new_manager(void) { return e2e_manager_new(NULL); }

/* Load YAML; expect success and initialize. */
static void load_ok(cpex_manager *m, const char *yaml)
{
    e2e_load_ok(m, yaml, "test.yaml");
    e2e_initialize_ok(m);
}

/* Load YAML into a fresh manager; expect failure; return the messages (malloc'd). */
static char *load_fail(const char *yaml, cpex_status *code)
{
    cpex_manager *m = new_manager();
    char *msg = e2e_load_refused(m, yaml, "test.yaml", CPEX_OK, code);
    /* nothing was published */
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    cpex_manager_free(m);
    return msg;
}

/*
 * load_fail(yaml) must fail, with `code` unless that is CPEX_OK, and with a
 * message containing every needle (the list ends with NULL); failures name
 * the caller's line (expect_fail).
 */
static void expect_fail_at(const char *file, int line, const char *yaml, cpex_status code, ...)
{
    cpex_status got;
    char *msg = load_fail(yaml, &got);
    if (code != CPEX_OK)
        assert_int_equal(got, code);
    va_list ap;
    va_start(ap, code);
    e2e_contains_all(file, line, msg, ap);
    va_end(ap);
    free(msg);
}
#define expect_fail(yaml, code, ...)                                                               \
    expect_fail_at(__FILE__, __LINE__, (yaml), (code), __VA_ARGS__, (const char *)NULL)

typedef e2e_outcome outcome;

/* Invoke `hook` with a user text message. */
static void invoke(cpex_manager *m, const char *hook, outcome *o) { e2e_invoke_hello(m, hook, o); }

static void outcome_cleanup(outcome *o) { e2e_outcome_cleanup(o); }

static void expect_allow(cpex_manager *m, const char *hook)
{
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, hook, &o);
    assert_allowed(&o.r);
    assert_int_equal(o.r.error_count, 0);
    outcome_cleanup(&o);
}

static void expect_deny(cpex_manager *m, const char *hook, const char *code, const char *plugin)
{
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, hook, &o);
    assert_denied(&o.r, code, plugin);
    outcome_cleanup(&o);
}

#define is_loaded e2e_is_loaded

/* After each test: every library is closed again (case 18). */
static int teardown(void **state)
{
    (void)state;
    return e2e_none_loaded(all_libs, CPEX__COUNT(all_libs));
}

/* ------------------------------------------------------------------ */
/* 1. single plugin                                                    */
/* ------------------------------------------------------------------ */

static void test_single_loads_and_runs(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m,
            E2E_YAML1("hello", "lib:" LIB("single"), PRE, "    config: { greeting: bonjour }\n"));
    assert_true(is_loaded(LIB("single")));
    assert_true(cpex_manager_has_hooks_for(m, PRE));

    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_true(o.r.continue_processing);
    assert_null(o.r.violation);
    /* the handler really ran: it put config.greeting into the metadata */
    assert_non_null(o.r.metadata);
    json_t *g = json_object_get(o.r.metadata, "greeting");
    assert_non_null(g);
    assert_string_equal(json_string_value(g), "bonjour");
    outcome_cleanup(&o);

    /* what the manager knows: origin is the resolved path, reported name */
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "hello", &info), CPEX_OK);
    assert_string_equal(info.origin, LIB("single"));
    assert_string_equal(info.reported_name, "single");
    assert_string_equal(info.reported_version, "1.0.0");
    cpex_plugin_info_cleanup(&info);
    cpex_manager_free(m);
    assert_false(is_loaded(LIB("single")));
}

/* A relative path resolves against the base directory of the configuration. */
static void test_relative_path(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    const char *yaml = E2E_YAML1("rel", "lib:libsingle.so", PRE, "");
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st =
        cpex_manager_load_string(m, yaml, strlen(yaml), "rel.yaml", CPEX_PLUGIN_DIR, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "rel", &info), CPEX_OK);
    assert_string_equal(info.origin, LIB("single"));
    cpex_plugin_info_cleanup(&info);
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_string_equal(json_string_value(json_object_get(o.r.metadata, "greeting")), "hello");
    outcome_cleanup(&o);
    cpex_manager_free(m);
    cpex_error_cleanup(&err);

    /* without a base directory, a bare name is relative to the current
       directory ... */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(CPEX_PLUGIN_DIR), 0);
    m = new_manager();
    load_ok(m, E2E_YAML1("bare", "lib:libsingle.so", PRE, ""));
    assert_int_equal(cpex_manager_plugin_info(m, "bare", &info), CPEX_OK);
    assert_string_equal(info.origin, LIB("single"));
    cpex_plugin_info_cleanup(&info);
    cpex_manager_free(m);

    /* ... and never looked up on the system library path: libc.so.6 is on
       it, but not in the current directory */
    assert_int_equal(chdir("/"), 0);
    char *msg = load_fail(E2E_YAML1("bare", "lib:libc.so.6", PRE, ""), NULL);
    assert_int_equal(chdir(cwd), 0);
    assert_contains(msg, "'/libc.so.6'");
    assert_contains(msg, "does not exist");
    free(msg);
}

/* ------------------------------------------------------------------ */
/* 2-4. files and schemes                                              */
/* ------------------------------------------------------------------ */

static void test_missing_library(void **state)
{
    (void)state;
    expect_fail(E2E_YAML1("ghost", "lib:/nonexistent/dir/libghost.so", PRE, ""), CPEX_E_LOAD,
                "test.yaml:", "plugin 'ghost'", "/nonexistent/dir/libghost.so", "does not exist",
                "stat: /nonexistent/dir/libghost.so: No such file or directory");
    /* the system's own words are kept (the file is examined before dlopen
       ever sees it, so they come from stat, not dlerror) */
}

static void test_not_a_shared_library(void **state)
{
    (void)state;
    char *path = test_write_temp("notlib", "this is not a shared library\n");
    assert_non_null(path);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "plugins:\n  - name: fake\n    kind: \"lib:%s\"\n    hooks: [" PRE "]\n", path);
    expect_fail(yaml, CPEX_OK, "plugin 'fake'", path, "not a shared library");

    unlink(path);
    free(path);

    /* an ELF program is not a library either */
    if (access("/bin/true", R_OK) == 0) {
        expect_fail("plugins:\n  - name: prog\n    kind: \"lib:/bin/true\"\n"
                    "    hooks: [" PRE "]\n",
                    CPEX_OK, "plugin 'prog'", "not a shared library");
    }

    snprintf(yaml, sizeof yaml,
             "plugins:\n  - name: dir\n    kind: \"lib:%s\"\n    hooks: [" PRE "]\n",
             CPEX_PLUGIN_DIR);
    expect_fail(yaml, CPEX_OK, "plugin 'dir'", "is a directory");
}

/* A library for another machine: a copy of libsingle.so whose ELF header
   claims AArch64 (or x86-64 when this host is AArch64). */
static void test_wrong_architecture(void **state)
{
    (void)state;
    size_t len = 0;
    char *bytes = test_read_file(LIB("single"), &len);
    assert_non_null(bytes);
    assert_true(len > 20);
    uint16_t machine = (uint16_t)((unsigned char)bytes[18] | (unsigned char)bytes[19] << 8);
    uint16_t other = machine == 183 ? 62 : 183; /* EM_AARCH64 : EM_X86_64 */
    bytes[18] = (char)(other & 0xff);
    bytes[19] = (char)(other >> 8);
    char path[] = "/tmp/cpex_test_archXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
    free(bytes);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "plugins:\n  - name: foreign\n    kind: \"lib:%s\"\n    hooks: [" PRE "]\n", path);
    expect_fail(yaml, CPEX_OK, "plugin 'foreign'", path,
                other == 183 ? "built for AArch64" : "built for x86-64",
                "rebuild the plugin for this machine");
    unlink(path);
}

static void test_unknown_scheme(void **state)
{
    (void)state;
    expect_fail(E2E_YAML1("wasm-thing", "wasm:/opt/foo.wasm", PRE, ""), CPEX_OK,
                "plugin 'wasm-thing'", "wasm", "lib"); /* the registered schemes are listed */
}

/* ------------------------------------------------------------------ */
/* 5-8. multi-handler                                                  */
/* ------------------------------------------------------------------ */

static void test_multi_handler_both(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, E2E_YAML1("mh", "lib:" LIB("multi_handler"), PRE ", " POST, ""));
    expect_allow(m, PRE);
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh");
    cpex_manager_free(m);
}

static void test_multi_handler_fragment(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, E2E_YAML1("mh-pre", "lib:" LIB("multi_handler") "#" PRE, PRE, ""));
    assert_true(cpex_manager_has_hooks_for(m, PRE));
    assert_false(cpex_manager_has_hooks_for(m, POST));
    expect_allow(m, PRE);
    expect_allow(m, POST); /* no handler wired: a no-op */
    cpex_manager_free(m);

    /* the fragment keeps one handler; a hook listed without a handler is an error */
    expect_fail(E2E_YAML1("mh-pre", "lib:" LIB("multi_handler") "#" PRE, PRE ", " POST, ""),
                CPEX_OK, "plugin 'mh-pre'", POST);

    /* without a fragment, hooks: filters what is wired */
    m = new_manager();
    load_ok(m, E2E_YAML1("mh-post-only", "lib:" LIB("multi_handler"), POST, ""));
    assert_false(cpex_manager_has_hooks_for(m, PRE));
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh-post-only");
    cpex_manager_free(m);
}

static void test_multi_handler_unknown_fragment(void **state)
{
    (void)state;
    expect_fail(E2E_YAML1("mh-bad", "lib:" LIB("multi_handler") "#cmf.nope", PRE, ""),
                CPEX_E_CONFIG, "plugin 'mh-bad'", LIB("multi_handler"), "'#cmf.nope'",
                "[" PRE ", " POST "]");

    /* an empty fragment is refused at parse */
    expect_fail(E2E_YAML1("mh-empty", "lib:" LIB("multi_handler") "#", PRE, ""), CPEX_OK,
                "plugin 'mh-empty'", "empty '#' fragment");
}

static void test_two_libraries(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m,
            "plugins:\n"
            "  - name: hello\n"
            "    kind: \"lib:" LIB("single") "\"\n"
                                             "    hooks: [" PRE "]\n"
                                             "    priority: 10\n"
                                             "  - name: mh\n"
                                             "    kind: \"lib:" LIB(
                                                 "multi_handler") "\"\n"
                                                                  "    hooks: [" PRE ", " POST "]\n"
                                                                  "    priority: 20\n");
    assert_int_equal(cpex_manager_plugin_count(m), 2);
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_true(o.r.continue_processing);
    assert_string_equal(json_string_value(json_object_get(o.r.metadata, "greeting")), "hello");
    outcome_cleanup(&o);
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh");
    cpex_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* 9-13. multi-plugin                                                  */
/* ------------------------------------------------------------------ */

static void test_multi_plugin_entries(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, E2E_YAML1("gate", "lib:" LIB("multi_plugin") "?entry=allow", PRE, ""));
    expect_allow(m, PRE);
    cpex_manager_free(m);

    m = new_manager();
    load_ok(m, E2E_YAML1("gate", "lib:" LIB("multi_plugin") "?entry=deny", PRE, ""));
    expect_deny(m, PRE, "example.multi_plugin.deny", "gate");
    cpex_manager_free(m);

    /* entry and fragment together */
    m = new_manager();
    load_ok(m, E2E_YAML1("gate", "lib:" LIB("multi_plugin") "?entry=deny#" PRE, PRE, ""));
    expect_deny(m, PRE, "example.multi_plugin.deny", "gate");
    cpex_manager_free(m);
}

static void test_multi_plugin_both_entries(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: allower\n"
               "    kind: \"lib:" LIB("multi_plugin") "?entry=allow\"\n"
                                                      "    hooks: [" PRE "]\n"
                                                      "    priority: 10\n"
                                                      "  - name: denier\n"
                                                      "    kind: \"lib:" LIB(
                                                          "multi_plugin") "?entry=deny\"\n"
                                                                          "    hooks: [" PRE "]\n"
                                                                          "    priority: 20\n");
    expect_deny(m, PRE, "example.multi_plugin.deny", "denier");
    cpex_plugin_info a = CPEX_PLUGIN_INFO_INIT, d = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "allower", &a), CPEX_OK);
    assert_int_equal(cpex_manager_plugin_info(m, "denier", &d), CPEX_OK);
    assert_string_equal(a.reported_name, "allow-gate");
    assert_string_equal(a.reported_version, "1.0.0");
    assert_string_equal(d.reported_name, "deny-gate");
    assert_string_equal(d.reported_version, "0.5.0");
    assert_string_equal(a.origin, d.origin);
    cpex_plugin_info_cleanup(&a);
    cpex_plugin_info_cleanup(&d);

    /* removing one instance leaves the other (and the library) working */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "denier", &err), CPEX_OK);
    expect_allow(m, PRE);
    assert_true(is_loaded(LIB("multi_plugin")));
    cpex_manager_free(m);
}

static void test_multi_plugin_unknown_entry(void **state)
{
    (void)state;
    expect_fail(E2E_YAML1("gate", "lib:" LIB("multi_plugin") "?entry=nonexistent", PRE, ""),
                CPEX_OK, "plugin 'gate'",
                "no entry 'nonexistent' in " LIB("multi_plugin") "; available: [allow, deny]");
}

static void test_multi_plugin_without_entry(void **state)
{
    (void)state;
    expect_fail(E2E_YAML1("gate", "lib:" LIB("multi_plugin"), PRE, ""), CPEX_OK, "plugin 'gate'",
                LIB("multi_plugin"), "an entry is needed", "[allow, deny]", "cpex_plugin_create",
                "?entry=allow");
}

static void test_bad_entry_names(void **state)
{
    (void)state;
    /* the path does not exist: the name is refused before any dlopen or lookup */
    char *msg = load_fail(E2E_YAML1("bad1", "lib:/nonexistent/libx.so?entry=1bad", PRE, ""), NULL);
    assert_contains(msg, "plugin 'bad1'");
    assert_contains(msg, "must start with a letter or underscore (got '1')");
    assert_null(strstr(msg, "does not exist"));
    free(msg);
    expect_fail(E2E_YAML1("bad2", "lib:" LIB("multi_plugin") "?entry=a-b", PRE, ""), CPEX_OK,
                "plugin 'bad2'", "contains invalid character '-'; only [A-Za-z0-9_] allowed");
    expect_fail(E2E_YAML1("bad3", "lib:" LIB("multi_plugin") "?entry=allow&entry=deny", PRE, ""),
                CPEX_OK, "repeats the 'entry' parameter");
    expect_fail(E2E_YAML1("bad4", "lib:" LIB("multi_plugin") "?timeout=3", PRE, ""), CPEX_OK,
                "unknown query parameter 'timeout'");
}

/* ------------------------------------------------------------------ */
/* 14. ABI versions                                                    */
/* ------------------------------------------------------------------ */

static void test_abi_mismatch(void **state)
{
    (void)state;
    char major2[96], minor99[96];
    e2e_abi_fmt(major2, sizeof major2, "host has ABI %s, plugin has ABI 2.0");
    e2e_abi_fmt(minor99, sizeof minor99, "host has ABI %s, plugin has ABI 1.99");
    expect_fail(E2E_YAML1("future", "lib:" LIB("abi_major2"), PRE, ""), CPEX_E_LOAD,
                "plugin 'future'", LIB("abi_major2"), major2, "rebuild");

    expect_fail(E2E_YAML1("newer", "lib:" LIB("abi_newer_minor"), PRE, ""), CPEX_OK,
                "plugin 'newer'", minor99);

    /* a hand-written plugin without a manifest whose registration claims 1.99:
       refused after create, and its destroy runs (LSan would see the leak) */
    expect_fail(E2E_YAML1("regnewer", "lib:" LIB("reg_newer"), PRE, ""), CPEX_OK,
                "plugin 'regnewer'", minor99);
}

/* The SDK's handshake, called directly: it refuses before touching anything. */
static void test_sdk_handshake(void **state)
{
    (void)state;
    void *dl = dlopen(LIB("single"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    void *sym = dlsym(dl, "cpex_plugin_create");
    assert_non_null(sym);
    cpex_plugin_create_fn create;
    memcpy(&create, &sym, sizeof create);
    const cpex_manifest *man = dlsym(dl, "cpex_plugin_list");
    assert_non_null(man);
    assert_int_equal(man->abi_version, CPEX_ABI_VERSION);
    assert_int_equal(man->entry_count, 1);
    assert_string_equal(man->entries[0]->entry, "");
    assert_string_equal(man->entries[0]->display_name, "single");
    assert_int_equal(man->entries[0]->hook_count, 1);
    assert_string_equal(man->entries[0]->hooks[0], PRE);

    cpex_plugin_registration reg;
    char err[256];
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    /* NULL host and config: the handshake must fail before reading them */
    assert_int_equal(create(CPEX_ABI_MAKE_VERSION(2, 0), NULL, NULL, &reg, err, sizeof err),
                     CPEX_CREATE_ABI_MISMATCH);
    char expected[96];
    assert_contains(
        err, e2e_abi_fmt(expected, sizeof expected, "plugin built for ABI %s, host has 2.0"));
    assert_contains(err, "rebuild the plugin");
    assert_null(reg.name);
    assert_int_equal(create(CPEX_ABI_MAKE_VERSION(0, 9), NULL, NULL, &reg, err, sizeof err),
                     CPEX_CREATE_ABI_MISMATCH);
    assert_contains(err, "host has 0.9");
    /* a host with a compatible version but no table is refused too */
    assert_int_equal(create(CPEX_ABI_VERSION, NULL, NULL, &reg, err, sizeof err),
                     CPEX_CREATE_INIT_FAILED);
    /* a newer-minor host is fine (the plugin sees a prefix) */
    cpex_plugin_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = (uint32_t)sizeof cfg;
    const cpex_host_api *host = cpex_host_api_get();
    assert_int_equal(create(CPEX_ABI_MAKE_VERSION(1, 7), host, &cfg, &reg, err, sizeof err),
                     CPEX_CREATE_OK);
    assert_int_equal(reg.abi_version, CPEX_ABI_VERSION);
    assert_int_equal(reg.struct_size, sizeof reg);
    assert_int_equal(reg.handler_size, sizeof(cpex_handler_reg)); /* the SDK sets it (1.1) */
    assert_string_equal(reg.name, "single");
    assert_non_null(reg.destroy);
    reg.destroy(reg.instance);
    /* a plugin built with this SDK needs its minor: an older-minor host is refused */
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)CPEX_REGISTRATION_SIZE_1_0;
    assert_int_equal(create(CPEX_ABI_MAKE_VERSION(1, 0), host, &cfg, &reg, err, sizeof err),
                     CPEX_CREATE_ABI_MISMATCH);
    assert_contains(
        err, e2e_abi_fmt(expected, sizeof expected, "plugin built for ABI %s, host has 1.0"));
    assert_null(reg.name);
    /* a host whose registration struct is smaller than the 1.0 size is refused */
    memset(&reg, 0, sizeof reg);
    reg.struct_size = 8;
    assert_int_equal(create(CPEX_ABI_VERSION, host, &cfg, &reg, err, sizeof err),
                     CPEX_CREATE_INIT_FAILED);
    dlclose(dl);

    /* the abi_newer_minor library's own handshake refuses this (older-minor) host */
    dl = dlopen(LIB("abi_newer_minor"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    sym = dlsym(dl, "cpex_plugin_create");
    memcpy(&create, &sym, sizeof create);
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    assert_int_equal(create(CPEX_ABI_VERSION, host, &cfg, &reg, err, sizeof err),
                     CPEX_CREATE_ABI_MISMATCH);
    assert_contains(
        err, e2e_abi_fmt(expected, sizeof expected, "plugin built for ABI 1.99, host has %s"));
    dlclose(dl);
}

/* ------------------------------------------------------------------ */
/* 15. the plugin's own failures                                       */
/* ------------------------------------------------------------------ */

static void test_plugin_failures(void **state)
{
    (void)state;
    expect_fail(
        E2E_YAML1("strict", "lib:" LIB("config_reject"), PRE, "    config: { limit: -3 }\n"),
        CPEX_E_CONFIG, "plugin 'strict'", LIB("config_reject"), "rejected its configuration",
        "config.limit must be a positive integer (got -3)");

    /* the same library with a good config loads */
    cpex_manager *m = new_manager();
    load_ok(m,
            E2E_YAML1("strict", "lib:" LIB("config_reject"), PRE, "    config: { limit: 10 }\n"));
    expect_allow(m, PRE);
    cpex_manager_free(m);

    expect_fail(E2E_YAML1("broken", "lib:" LIB("create_fail"), PRE, ""), CPEX_E_LOAD,
                "plugin 'broken'", "failed to create an instance",
                "create_fail: cannot open model file /nonexistent/model.bin");

    expect_fail(E2E_YAML1("odd", "lib:" LIB("bad_status"), PRE, ""), CPEX_OK, "plugin 'odd'",
                "returned status 42", "bad_status: something odd");

    /* a plugin with its own copy of the host is refused by the SDK */
    expect_fail(E2E_YAML1("twin", "lib:" LIB("dup_host"), PRE, ""), CPEX_OK, "plugin 'twin'",
                "links its own copy of libcpex");

    /* initialize fails: the load succeeds, initialize reports the plugin's
       own message, and the plugin fails closed */
    m = new_manager();
    const char *yaml = E2E_YAML1("flaky", "lib:" LIB("init_fail"), PRE, "");
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err),
                     CPEX_OK);
    assert_int_not_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    assert_contains(cpex_error_message(&err), "flaky");
    assert_contains(cpex_error_message(&err), "init_fail: backend at 10.0.0.1:9 is unreachable");
    cpex_error_cleanup(&err);
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_false(o.r.continue_processing);
    outcome_cleanup(&o);
    cpex_manager_free(m);
}

/* A failed load leaves the host running and earlier plugins untouched. */
static void test_failure_is_isolated(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, E2E_YAML1("hello", "lib:" LIB("single"), PRE, ""));
    const char *bad =
        "plugins:\n"
        "  - name: gate\n"
        "    kind: \"lib:" LIB("multi_plugin") "?entry=allow\"\n"
                                               "    hooks: [" PRE "]\n"
                                               "  - name: strict\n"
                                               "    kind: \"lib:" LIB(
                                                   "config_reject") "\"\n"
                                                                    "    hooks: [" PRE "]\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_not_equal(cpex_manager_load_string(m, bad, strlen(bad), "bad.yaml", NULL, &err),
                         CPEX_OK);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    /* nothing of the failed batch stays loaded */
    assert_false(is_loaded(LIB("multi_plugin")));
    assert_false(is_loaded(LIB("config_reject")));
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_true(o.r.continue_processing);
    assert_string_equal(json_string_value(json_object_get(o.r.metadata, "greeting")), "hello");
    outcome_cleanup(&o);
    cpex_manager_free(m);
}

/* ------------------------------------------------------------------ */
/* 16-17                                                                */
/* ------------------------------------------------------------------ */

static void test_same_library_twice(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(
        m, "plugins:\n"
           "  - name: first\n"
           "    kind: \"lib:" LIB("counter") "\"\n"
                                             "    hooks: [" PRE "]\n"
                                             "    config: { start: 100, label: a }\n"
                                             "  - name: second\n"
                                             "    kind: \"lib:" LIB(
                                                 "counter") "\"\n"
                                                            "    hooks: [" PRE "]\n"
                                                            "    config: { start: 0, label: b }\n");
    for (int round = 1; round <= 3; round++) {
        outcome o = E2E_OUTCOME_INIT;
        invoke(m, PRE, &o);
        assert_true(o.r.continue_processing);
        assert_int_equal(json_integer_value(json_object_get(o.r.metadata, "a.count")), 100 + round);
        assert_int_equal(json_integer_value(json_object_get(o.r.metadata, "b.count")), round);
        outcome_cleanup(&o);
    }
    /* unregistering one keeps the library for the other */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "first", &err), CPEX_OK);
    assert_true(is_loaded(LIB("counter")));
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_null(json_object_get(o.r.metadata, "a.count"));
    assert_int_equal(json_integer_value(json_object_get(o.r.metadata, "b.count")), 4);
    outcome_cleanup(&o);
    cpex_manager_free(m);
}

static void test_no_manifest(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, E2E_YAML1("handmade", "lib:" LIB("no_manifest"), PRE, ""));
    outcome o = E2E_OUTCOME_INIT;
    invoke(m, PRE, &o);
    assert_true(o.r.continue_processing);
    assert_true(json_is_true(json_object_get(o.r.metadata, "no_manifest")));
    outcome_cleanup(&o);
    cpex_manager_free(m);

    /* without a manifest, a missing named entry says which symbol is missing */
    expect_fail(E2E_YAML1("handmade", "lib:" LIB("no_manifest") "?entry=other", PRE, ""), CPEX_OK,
                "plugin 'handmade'", "does not export 'cpex_plugin_create_other'", "no manifest");
}

/* ------------------------------------------------------------------ */
/* 18. everything at once, then nothing left mapped                     */
/* ------------------------------------------------------------------ */

static void test_all_closed_after_free(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(
        m,
        "plugins:\n"
        "  - { name: s,  kind: \"lib:" LIB(
            "single") "\", hooks: [" PRE "] }\n"
                      "  - { name: mh, kind: \"lib:" LIB(
                          "multi_handler") "\", hooks: [" POST "] }\n"
                                           "  - { name: a,  kind: \"lib:" LIB(
                                               "multi_plugin") "?entry=allow\", hooks: [" PRE
                                                               "] }\n"
                                                               "  - { name: c1, kind: \"lib:" LIB(
                                                                   "counter") "\", hooks: [" PRE
                                                                              "] }\n"
                                                                              "  - { name: c2, "
                                                                              "kind: \"lib:" LIB(
                                                                                  "counter") "\", "
                                                                                             "hooks"
                                                                                             ": "
                                                                                             "[" PRE
                                                                                             "] }\n"
                                                                                             "  - "
                                                                                             "{ "
                                                                                             "name:"
                                                                                             " nm, "
                                                                                             "kind:"
                                                                                             " \"li"
                                                                                             "b"
                                                                                             ":" LIB(
                                                                                                 "n"
                                                                                                 "o"
                                                                                                 "_"
                                                                                                 "m"
                                                                                                 "a"
                                                                                                 "n"
                                                                                                 "i"
                                                                                                 "f"
                                                                                                 "e"
                                                                                                 "s"
                                                                                                 "t") "\", hooks: [" PRE
                                                                                                      "] }\n");
    expect_allow(m, PRE);
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh");
    assert_true(is_loaded(LIB("single")));
    assert_true(is_loaded(LIB("counter")));
    cpex_manager_shutdown(m);
    /* shutdown does not destroy: the libraries stay until the manager goes */
    assert_true(is_loaded(LIB("counter")));
    cpex_manager_free(m);
    for (size_t i = 0; i < CPEX__COUNT(all_libs); i++)
        assert_false(is_loaded(all_libs[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_single_loads_and_runs, teardown),
        cmocka_unit_test_teardown(test_relative_path, teardown),
        cmocka_unit_test_teardown(test_missing_library, teardown),
        cmocka_unit_test_teardown(test_not_a_shared_library, teardown),
        cmocka_unit_test_teardown(test_wrong_architecture, teardown),
        cmocka_unit_test_teardown(test_unknown_scheme, teardown),
        cmocka_unit_test_teardown(test_multi_handler_both, teardown),
        cmocka_unit_test_teardown(test_multi_handler_fragment, teardown),
        cmocka_unit_test_teardown(test_multi_handler_unknown_fragment, teardown),
        cmocka_unit_test_teardown(test_two_libraries, teardown),
        cmocka_unit_test_teardown(test_multi_plugin_entries, teardown),
        cmocka_unit_test_teardown(test_multi_plugin_both_entries, teardown),
        cmocka_unit_test_teardown(test_multi_plugin_unknown_entry, teardown),
        cmocka_unit_test_teardown(test_multi_plugin_without_entry, teardown),
        cmocka_unit_test_teardown(test_bad_entry_names, teardown),
        cmocka_unit_test_teardown(test_abi_mismatch, teardown),
        cmocka_unit_test_teardown(test_sdk_handshake, teardown),
        cmocka_unit_test_teardown(test_plugin_failures, teardown),
        cmocka_unit_test_teardown(test_failure_is_isolated, teardown),
        cmocka_unit_test_teardown(test_same_library_twice, teardown),
        cmocka_unit_test_teardown(test_no_manifest, teardown),
        cmocka_unit_test_teardown(test_all_closed_after_free, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
