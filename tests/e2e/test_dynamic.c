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
#include "test_support.h"

#define LIB(name) CPEX_PLUGIN_DIR "/lib" name ".so"
#define PRE "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

static const char *const all_libs[] = {
    LIB("single"),      LIB("multi_handler"),   LIB("multi_plugin"),  LIB("abi_major2"),
    LIB("abi_newer_minor"), LIB("config_reject"), LIB("create_fail"), LIB("init_fail"),
    LIB("bad_status"),  LIB("no_manifest"),     LIB("reg_newer"),     LIB("counter"),
    LIB("dup_host"),
};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static cpex_manager *new_manager(void)
{
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_new(NULL, &m, &err);
    if (st == CPEX_OK)
        st = cpex_loader_register(m, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

/* Load YAML; expect success and initialize. */
static void load_ok(cpex_manager *m, const char *yaml)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err);
    if (st != CPEX_OK)
        print_error("load failed:\n%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    st = cpex_manager_initialize(m, &err);
    if (st != CPEX_OK)
        print_error("initialize failed:\n%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

/* Load YAML into a fresh manager; expect failure; return the messages (malloc'd). */
static char *load_fail(const char *yaml, cpex_status *code)
{
    cpex_manager *m = new_manager();
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err);
    if (st == CPEX_OK)
        print_error("load unexpectedly succeeded:\n%s\n", yaml);
    assert_int_not_equal(st, CPEX_OK);
    /* nothing was published */
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    if (code)
        *code = st;
    char *msg = strdup(cpex_error_message(&err));
    cpex_error_cleanup(&err);
    cpex_manager_free(m);
    return msg;
}

typedef struct outcome {
    cpex_pipeline_result r;
    cpex_cmf_message *msg;
} outcome;

/* Invoke `hook` with a user text message. */
static void invoke(cpex_manager *m, const char *hook, outcome *o)
{
    o->msg = cpex_cmf_new(CPEX_ROLE_USER);
    assert_non_null(o->msg);
    assert_int_equal(cpex_cmf_append_text(o->msg, CPEX_PART_TEXT, "hello", 5), CPEX_OK);
    cpex_payload p = cpex_payload_cmf(o->msg);
    cpex_manager_invoke(m, hook, &p, NULL, NULL, &o->r);
}

static void outcome_cleanup(outcome *o)
{
    cpex_pipeline_result_cleanup(&o->r);
    cpex_cmf_free(o->msg);
}

static void expect_allow(cpex_manager *m, const char *hook)
{
    outcome o;
    invoke(m, hook, &o);
    if (!o.r.continue_processing)
        print_error("%s denied: %s\n", hook, o.r.violation ? o.r.violation->code : "?");
    assert_true(o.r.continue_processing);
    assert_null(o.r.violation);
    assert_int_equal(o.r.error_count, 0);
    outcome_cleanup(&o);
}

static void expect_deny(cpex_manager *m, const char *hook, const char *code, const char *plugin)
{
    outcome o;
    invoke(m, hook, &o);
    assert_false(o.r.continue_processing);
    assert_non_null(o.r.violation);
    assert_string_equal(o.r.violation->code, code);
    if (plugin)
        assert_string_equal(o.r.violation->plugin_name, plugin);
    outcome_cleanup(&o);
}

/* Whether a library is still mapped in this process. */
static int is_loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return 0;
    dlclose(h); /* NOLOAD still took a reference */
    return 1;
}

/* After each test: every library is closed again (case 18). */
static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof all_libs / sizeof *all_libs; i++) {
        if (is_loaded(all_libs[i])) {
            print_error("library still loaded after the manager was freed: %s\n", all_libs[i]);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* 1. single plugin                                                    */
/* ------------------------------------------------------------------ */

static void test_single_loads_and_runs(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: hello\n"
               "    kind: \"lib:" LIB("single") "\"\n"
               "    hooks: [" PRE "]\n"
               "    config: { greeting: bonjour }\n");
    assert_true(is_loaded(LIB("single")));
    assert_true(cpex_manager_has_hooks_for(m, PRE));

    outcome o;
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
    cpex_plugin_info info;
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
    const char *yaml = "plugins:\n"
                       "  - name: rel\n"
                       "    kind: \"lib:libsingle.so\"\n"
                       "    hooks: [" PRE "]\n";
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st =
        cpex_manager_load_string(m, yaml, strlen(yaml), "rel.yaml", CPEX_PLUGIN_DIR, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    cpex_plugin_info info;
    assert_int_equal(cpex_manager_plugin_info(m, "rel", &info), CPEX_OK);
    assert_string_equal(info.origin, LIB("single"));
    cpex_plugin_info_cleanup(&info);
    outcome o;
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
    load_ok(m, "plugins:\n"
               "  - name: bare\n"
               "    kind: \"lib:libsingle.so\"\n"
               "    hooks: [" PRE "]\n");
    assert_int_equal(cpex_manager_plugin_info(m, "bare", &info), CPEX_OK);
    assert_string_equal(info.origin, LIB("single"));
    cpex_plugin_info_cleanup(&info);
    cpex_manager_free(m);

    /* ... and never looked up on the system library path: libc.so.6 is on
       it, but not in the current directory */
    assert_int_equal(chdir("/"), 0);
    char *msg = load_fail("plugins:\n"
                          "  - name: bare\n"
                          "    kind: \"lib:libc.so.6\"\n"
                          "    hooks: [" PRE "]\n",
                          NULL);
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
    cpex_status code;
    char *msg = load_fail("plugins:\n"
                          "  - name: ghost\n"
                          "    kind: \"lib:/nonexistent/dir/libghost.so\"\n"
                          "    hooks: [" PRE "]\n",
                          &code);
    assert_int_equal(code, CPEX_E_LOAD);
    assert_contains(msg, "test.yaml:");
    assert_contains(msg, "plugin 'ghost'");
    assert_contains(msg, "/nonexistent/dir/libghost.so");
    assert_contains(msg, "does not exist");
    assert_contains(msg, "dlopen: "); /* the dlerror() text is kept */
    free(msg);
}

static void test_not_a_shared_library(void **state)
{
    (void)state;
    char *path = test_write_temp("notlib", "this is not a shared library\n");
    assert_non_null(path);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "plugins:\n  - name: fake\n    kind: \"lib:%s\"\n    hooks: [" PRE "]\n", path);
    char *msg = load_fail(yaml, NULL);
    assert_contains(msg, "plugin 'fake'");
    assert_contains(msg, path);
    assert_contains(msg, "not a shared library");
    free(msg);

    unlink(path);
    free(path);

    /* an ELF program is not a library either */
    if (access("/bin/true", R_OK) == 0) {
        msg = load_fail("plugins:\n  - name: prog\n    kind: \"lib:/bin/true\"\n"
                        "    hooks: [" PRE "]\n",
                        NULL);
        assert_contains(msg, "plugin 'prog'");
        assert_contains(msg, "not a shared library");
        free(msg);
    }

    snprintf(yaml, sizeof yaml,
             "plugins:\n  - name: dir\n    kind: \"lib:%s\"\n    hooks: [" PRE "]\n",
             CPEX_PLUGIN_DIR);
    msg = load_fail(yaml, NULL);
    assert_contains(msg, "plugin 'dir'");
    assert_contains(msg, "is a directory");
    free(msg);
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
    char *msg = load_fail(yaml, NULL);
    assert_contains(msg, "plugin 'foreign'");
    assert_contains(msg, path);
    assert_contains(msg, other == 183 ? "built for AArch64" : "built for x86-64");
    assert_contains(msg, "rebuild the plugin for this machine");
    free(msg);
    unlink(path);
}

static void test_unknown_scheme(void **state)
{
    (void)state;
    char *msg = load_fail("plugins:\n"
                          "  - name: wasm-thing\n"
                          "    kind: \"wasm:/opt/foo.wasm\"\n"
                          "    hooks: [" PRE "]\n",
                          NULL);
    assert_contains(msg, "plugin 'wasm-thing'");
    assert_contains(msg, "wasm");
    assert_contains(msg, "lib"); /* the registered schemes are listed */
    free(msg);
}

/* ------------------------------------------------------------------ */
/* 5-8. multi-handler                                                  */
/* ------------------------------------------------------------------ */

static void test_multi_handler_both(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: mh\n"
               "    kind: \"lib:" LIB("multi_handler") "\"\n"
               "    hooks: [" PRE ", " POST "]\n");
    expect_allow(m, PRE);
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh");
    cpex_manager_free(m);
}

static void test_multi_handler_fragment(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: mh-pre\n"
               "    kind: \"lib:" LIB("multi_handler") "#" PRE "\"\n"
               "    hooks: [" PRE "]\n");
    assert_true(cpex_manager_has_hooks_for(m, PRE));
    assert_false(cpex_manager_has_hooks_for(m, POST));
    expect_allow(m, PRE);
    expect_allow(m, POST); /* no handler wired: a no-op */
    cpex_manager_free(m);

    /* the fragment keeps one handler; a hook listed without a handler is an error */
    char *msg = load_fail("plugins:\n"
                          "  - name: mh-pre\n"
                          "    kind: \"lib:" LIB("multi_handler") "#" PRE "\"\n"
                          "    hooks: [" PRE ", " POST "]\n",
                          NULL);
    assert_contains(msg, "plugin 'mh-pre'");
    assert_contains(msg, POST);
    free(msg);

    /* without a fragment, hooks: filters what is wired */
    m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: mh-post-only\n"
               "    kind: \"lib:" LIB("multi_handler") "\"\n"
               "    hooks: [" POST "]\n");
    assert_false(cpex_manager_has_hooks_for(m, PRE));
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh-post-only");
    cpex_manager_free(m);
}

static void test_multi_handler_unknown_fragment(void **state)
{
    (void)state;
    cpex_status code;
    char *msg = load_fail("plugins:\n"
                          "  - name: mh-bad\n"
                          "    kind: \"lib:" LIB("multi_handler") "#cmf.nope\"\n"
                          "    hooks: [" PRE "]\n",
                          &code);
    assert_int_equal(code, CPEX_E_CONFIG);
    assert_contains(msg, "plugin 'mh-bad'");
    assert_contains(msg, LIB("multi_handler"));
    assert_contains(msg, "'#cmf.nope'");
    assert_contains(msg, "[" PRE ", " POST "]");
    free(msg);

    /* an empty fragment is refused at parse */
    msg = load_fail("plugins:\n"
                    "  - name: mh-empty\n"
                    "    kind: \"lib:" LIB("multi_handler") "#\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "plugin 'mh-empty'");
    assert_contains(msg, "empty '#' fragment");
    free(msg);
}

static void test_two_libraries(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: hello\n"
               "    kind: \"lib:" LIB("single") "\"\n"
               "    hooks: [" PRE "]\n"
               "    priority: 10\n"
               "  - name: mh\n"
               "    kind: \"lib:" LIB("multi_handler") "\"\n"
               "    hooks: [" PRE ", " POST "]\n"
               "    priority: 20\n");
    assert_int_equal(cpex_manager_plugin_count(m), 2);
    outcome o;
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
    load_ok(m, "plugins:\n"
               "  - name: gate\n"
               "    kind: \"lib:" LIB("multi_plugin") "?entry=allow\"\n"
               "    hooks: [" PRE "]\n");
    expect_allow(m, PRE);
    cpex_manager_free(m);

    m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: gate\n"
               "    kind: \"lib:" LIB("multi_plugin") "?entry=deny\"\n"
               "    hooks: [" PRE "]\n");
    expect_deny(m, PRE, "example.multi_plugin.deny", "gate");
    cpex_manager_free(m);

    /* entry and fragment together */
    m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: gate\n"
               "    kind: \"lib:" LIB("multi_plugin") "?entry=deny#" PRE "\"\n"
               "    hooks: [" PRE "]\n");
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
               "    kind: \"lib:" LIB("multi_plugin") "?entry=deny\"\n"
               "    hooks: [" PRE "]\n"
               "    priority: 20\n");
    expect_deny(m, PRE, "example.multi_plugin.deny", "denier");
    cpex_plugin_info a, d;
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
    char *msg = load_fail("plugins:\n"
                          "  - name: gate\n"
                          "    kind: \"lib:" LIB("multi_plugin") "?entry=nonexistent\"\n"
                          "    hooks: [" PRE "]\n",
                          NULL);
    assert_contains(msg, "plugin 'gate'");
    assert_contains(msg, "no entry 'nonexistent' in " LIB("multi_plugin") "; available: [allow, "
                         "deny]");
    free(msg);
}

static void test_multi_plugin_without_entry(void **state)
{
    (void)state;
    char *msg = load_fail("plugins:\n"
                          "  - name: gate\n"
                          "    kind: \"lib:" LIB("multi_plugin") "\"\n"
                          "    hooks: [" PRE "]\n",
                          NULL);
    assert_contains(msg, "plugin 'gate'");
    assert_contains(msg, LIB("multi_plugin"));
    assert_contains(msg, "an entry is needed");
    assert_contains(msg, "[allow, deny]");
    assert_contains(msg, "cpex_plugin_create");
    assert_contains(msg, "?entry=allow");
    free(msg);
}

static void test_bad_entry_names(void **state)
{
    (void)state;
    /* the path does not exist: the name is refused before any dlopen or lookup */
    char *msg = load_fail("plugins:\n"
                          "  - name: bad1\n"
                          "    kind: \"lib:/nonexistent/libx.so?entry=1bad\"\n"
                          "    hooks: [" PRE "]\n",
                          NULL);
    assert_contains(msg, "plugin 'bad1'");
    assert_contains(msg, "must start with a letter or underscore (got '1')");
    assert_null(strstr(msg, "does not exist"));
    free(msg);
    msg = load_fail("plugins:\n"
                    "  - name: bad2\n"
                    "    kind: \"lib:" LIB("multi_plugin") "?entry=a-b\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "plugin 'bad2'");
    assert_contains(msg, "contains invalid character '-'; only [A-Za-z0-9_] allowed");
    free(msg);
    msg = load_fail("plugins:\n"
                    "  - name: bad3\n"
                    "    kind: \"lib:" LIB("multi_plugin") "?entry=allow&entry=deny\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "repeats the 'entry' parameter");
    free(msg);
    msg = load_fail("plugins:\n"
                    "  - name: bad4\n"
                    "    kind: \"lib:" LIB("multi_plugin") "?timeout=3\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "unknown query parameter 'timeout'");
    free(msg);
}

/* ------------------------------------------------------------------ */
/* 14. ABI versions                                                    */
/* ------------------------------------------------------------------ */

static void test_abi_mismatch(void **state)
{
    (void)state;
    cpex_status code;
    char *msg = load_fail("plugins:\n"
                          "  - name: future\n"
                          "    kind: \"lib:" LIB("abi_major2") "\"\n"
                          "    hooks: [" PRE "]\n",
                          &code);
    assert_int_equal(code, CPEX_E_LOAD);
    assert_contains(msg, "plugin 'future'");
    assert_contains(msg, LIB("abi_major2"));
    assert_contains(msg, "host has ABI 1.0, plugin has ABI 2.0");
    assert_contains(msg, "rebuild");
    free(msg);

    msg = load_fail("plugins:\n"
                    "  - name: newer\n"
                    "    kind: \"lib:" LIB("abi_newer_minor") "\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "plugin 'newer'");
    assert_contains(msg, "host has ABI 1.0, plugin has ABI 1.99");
    free(msg);

    /* a hand-written plugin without a manifest whose registration claims 1.99:
       refused after create, and its destroy runs (LSan would see the leak) */
    msg = load_fail("plugins:\n"
                    "  - name: regnewer\n"
                    "    kind: \"lib:" LIB("reg_newer") "\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "plugin 'regnewer'");
    assert_contains(msg, "host has ABI 1.0, plugin has ABI 1.99");
    free(msg);
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
                     CPEX_PLUGIN_ABI_MISMATCH);
    assert_contains(err, "plugin built for ABI 1.0, host has 2.0");
    assert_contains(err, "rebuild the plugin");
    assert_null(reg.name);
    assert_int_equal(create(CPEX_ABI_MAKE_VERSION(0, 9), NULL, NULL, &reg, err, sizeof err),
                     CPEX_PLUGIN_ABI_MISMATCH);
    assert_contains(err, "host has 0.9");
    /* a host with a compatible version but no table is refused too */
    assert_int_equal(create(CPEX_ABI_VERSION, NULL, NULL, &reg, err, sizeof err),
                     CPEX_PLUGIN_INIT_FAILED);
    /* a newer-minor host is fine (the plugin sees a prefix) */
    cpex_plugin_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = (uint32_t)sizeof cfg;
    const cpex_host_api *host = cpex_host_api_get();
    assert_int_equal(create(CPEX_ABI_MAKE_VERSION(1, 7), host, &cfg, &reg, err, sizeof err),
                     CPEX_PLUGIN_OK);
    assert_int_equal(reg.abi_version, CPEX_ABI_VERSION);
    assert_int_equal(reg.struct_size, sizeof reg);
    assert_string_equal(reg.name, "single");
    assert_non_null(reg.destroy);
    reg.destroy(reg.instance);
    /* a host whose registration struct is smaller than the 1.0 size is refused */
    memset(&reg, 0, sizeof reg);
    reg.struct_size = 8;
    assert_int_equal(create(CPEX_ABI_VERSION, host, &cfg, &reg, err, sizeof err),
                     CPEX_PLUGIN_INIT_FAILED);
    dlclose(dl);

    /* the abi_newer_minor library's own handshake refuses a 1.0 host */
    dl = dlopen(LIB("abi_newer_minor"), RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    sym = dlsym(dl, "cpex_plugin_create");
    memcpy(&create, &sym, sizeof create);
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    assert_int_equal(create(CPEX_ABI_VERSION, host, &cfg, &reg, err, sizeof err),
                     CPEX_PLUGIN_ABI_MISMATCH);
    assert_contains(err, "plugin built for ABI 1.99, host has 1.0");
    dlclose(dl);
}

/* ------------------------------------------------------------------ */
/* 15. the plugin's own failures                                       */
/* ------------------------------------------------------------------ */

static void test_plugin_failures(void **state)
{
    (void)state;
    cpex_status code;
    char *msg = load_fail("plugins:\n"
                          "  - name: strict\n"
                          "    kind: \"lib:" LIB("config_reject") "\"\n"
                          "    hooks: [" PRE "]\n"
                          "    config: { limit: -3 }\n",
                          &code);
    assert_int_equal(code, CPEX_E_CONFIG);
    assert_contains(msg, "plugin 'strict'");
    assert_contains(msg, LIB("config_reject"));
    assert_contains(msg, "rejected its configuration");
    assert_contains(msg, "config.limit must be a positive integer (got -3)");
    free(msg);

    /* the same library with a good config loads */
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - name: strict\n"
               "    kind: \"lib:" LIB("config_reject") "\"\n"
               "    hooks: [" PRE "]\n"
               "    config: { limit: 10 }\n");
    expect_allow(m, PRE);
    cpex_manager_free(m);

    msg = load_fail("plugins:\n"
                    "  - name: broken\n"
                    "    kind: \"lib:" LIB("create_fail") "\"\n"
                    "    hooks: [" PRE "]\n",
                    &code);
    assert_int_equal(code, CPEX_E_LOAD);
    assert_contains(msg, "plugin 'broken'");
    assert_contains(msg, "failed to create an instance");
    assert_contains(msg, "create_fail: cannot open model file /nonexistent/model.bin");
    free(msg);

    msg = load_fail("plugins:\n"
                    "  - name: odd\n"
                    "    kind: \"lib:" LIB("bad_status") "\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "plugin 'odd'");
    assert_contains(msg, "returned status 42");
    assert_contains(msg, "bad_status: something odd");
    free(msg);

    /* a plugin with its own copy of the host is refused by the SDK */
    msg = load_fail("plugins:\n"
                    "  - name: twin\n"
                    "    kind: \"lib:" LIB("dup_host") "\"\n"
                    "    hooks: [" PRE "]\n",
                    NULL);
    assert_contains(msg, "plugin 'twin'");
    assert_contains(msg, "links its own copy of libcpex");
    free(msg);

    /* initialize fails: the load succeeds, initialize reports the plugin's
       own message, and the plugin fails closed */
    m = new_manager();
    const char *yaml = "plugins:\n"
                       "  - name: flaky\n"
                       "    kind: \"lib:" LIB("init_fail") "\"\n"
                       "    hooks: [" PRE "]\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, yaml, strlen(yaml), "test.yaml", NULL, &err),
                     CPEX_OK);
    assert_int_not_equal(cpex_manager_initialize(m, &err), CPEX_OK);
    assert_contains(cpex_error_message(&err), "flaky");
    assert_contains(cpex_error_message(&err), "init_fail: backend at 10.0.0.1:9 is unreachable");
    cpex_error_cleanup(&err);
    outcome o;
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
    load_ok(m, "plugins:\n"
               "  - name: hello\n"
               "    kind: \"lib:" LIB("single") "\"\n"
               "    hooks: [" PRE "]\n");
    const char *bad = "plugins:\n"
                      "  - name: gate\n"
                      "    kind: \"lib:" LIB("multi_plugin") "?entry=allow\"\n"
                      "    hooks: [" PRE "]\n"
                      "  - name: strict\n"
                      "    kind: \"lib:" LIB("config_reject") "\"\n"
                      "    hooks: [" PRE "]\n";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_not_equal(cpex_manager_load_string(m, bad, strlen(bad), "bad.yaml", NULL, &err),
                         CPEX_OK);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_plugin_count(m), 1);
    /* nothing of the failed batch stays loaded */
    assert_false(is_loaded(LIB("multi_plugin")));
    assert_false(is_loaded(LIB("config_reject")));
    outcome o;
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
    load_ok(m, "plugins:\n"
               "  - name: first\n"
               "    kind: \"lib:" LIB("counter") "\"\n"
               "    hooks: [" PRE "]\n"
               "    config: { start: 100, label: a }\n"
               "  - name: second\n"
               "    kind: \"lib:" LIB("counter") "\"\n"
               "    hooks: [" PRE "]\n"
               "    config: { start: 0, label: b }\n");
    for (int round = 1; round <= 3; round++) {
        outcome o;
        invoke(m, PRE, &o);
        assert_true(o.r.continue_processing);
        assert_int_equal(json_integer_value(json_object_get(o.r.metadata, "a.count")),
                         100 + round);
        assert_int_equal(json_integer_value(json_object_get(o.r.metadata, "b.count")), round);
        outcome_cleanup(&o);
    }
    /* unregistering one keeps the library for the other */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_unregister(m, "first", &err), CPEX_OK);
    assert_true(is_loaded(LIB("counter")));
    outcome o;
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
    load_ok(m, "plugins:\n"
               "  - name: handmade\n"
               "    kind: \"lib:" LIB("no_manifest") "\"\n"
               "    hooks: [" PRE "]\n");
    outcome o;
    invoke(m, PRE, &o);
    assert_true(o.r.continue_processing);
    assert_true(json_is_true(json_object_get(o.r.metadata, "no_manifest")));
    outcome_cleanup(&o);
    cpex_manager_free(m);

    /* without a manifest, a missing named entry says which symbol is missing */
    char *msg = load_fail("plugins:\n"
                          "  - name: handmade\n"
                          "    kind: \"lib:" LIB("no_manifest") "?entry=other\"\n"
                          "    hooks: [" PRE "]\n",
                          NULL);
    assert_contains(msg, "plugin 'handmade'");
    assert_contains(msg, "does not export 'cpex_plugin_create_other'");
    assert_contains(msg, "no manifest");
    free(msg);
}

/* ------------------------------------------------------------------ */
/* 18. everything at once, then nothing left mapped                     */
/* ------------------------------------------------------------------ */

static void test_all_closed_after_free(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    load_ok(m, "plugins:\n"
               "  - { name: s,  kind: \"lib:" LIB("single") "\", hooks: [" PRE "] }\n"
               "  - { name: mh, kind: \"lib:" LIB("multi_handler") "\", hooks: [" POST "] }\n"
               "  - { name: a,  kind: \"lib:" LIB("multi_plugin") "?entry=allow\", hooks: [" PRE
               "] }\n"
               "  - { name: c1, kind: \"lib:" LIB("counter") "\", hooks: [" PRE "] }\n"
               "  - { name: c2, kind: \"lib:" LIB("counter") "\", hooks: [" PRE "] }\n"
               "  - { name: nm, kind: \"lib:" LIB("no_manifest") "\", hooks: [" PRE "] }\n");
    expect_allow(m, PRE);
    expect_deny(m, POST, "example.multi_handler.post_deny", "mh");
    assert_true(is_loaded(LIB("single")));
    assert_true(is_loaded(LIB("counter")));
    cpex_manager_shutdown(m);
    /* shutdown does not destroy: the libraries stay until the manager goes */
    assert_true(is_loaded(LIB("counter")));
    cpex_manager_free(m);
    for (size_t i = 0; i < sizeof all_libs / sizeof *all_libs; i++)
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
