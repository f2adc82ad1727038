/*
 * test_manifest_hostile.c — libraries whose manifest (`cpex_plugin_list`)
 * lies about memory, loaded through a configuration and described with
 * cpex_library_describe.
 *
 * The libraries (tests/plugins/manifest_*.c) point the manifest at 0x10,
 * at unmapped memory, at another object's memory, at a misaligned list,
 * at a string that runs to the end of their segment; one claims a count
 * whose byte size wraps around, one exports a function under the
 * manifest's name. Each must give one clean error that names the
 * operator's plugin, the library path and what is wrong, with a hint —
 * never a crash (a SIGSEGV or a sanitizer report ends this test). Their
 * entry points abort(), so the test also proves that no plugin code ran.
 * After all of them the host keeps working: a good plugin loads and runs,
 * and no hostile library stays mapped.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/cpex.h"
#include "e2e.h"
#include "test_support.h"
#include "util/alloc.h"

#define LIB(name) E2E_LIB(name)
#define PRE E2E_PRE

typedef struct hostile {
    const char *plugin; /* the operator's name for it */
    const char *lib;    /* the library */
    const char *why;    /* what the error must say */
} hostile;

static const hostile cases[] = {
    {"wild-list", LIB("manifest_wild_list"), "its entry list points outside the library"},
    {"wild-string", LIB("manifest_wild_string"),
     "the display name of entry '(default)' points outside the library"},
    {"foreign-string", LIB("manifest_foreign_string"),
     "the description of entry '(default)' points outside the library"},
    {"function", LIB("manifest_function"), "the symbol is not a data object (it is a function)"},
    {"unterminated", LIB("manifest_unterminated"),
     "the display name of entry '(default)' is not terminated before the end of the library's "
     "data"},
    {"huge-count", LIB("manifest_huge_count"), "entries (at most 1024 accepted)"},
    {"misaligned", LIB("manifest_misaligned"), "its entry list is misaligned"},
};
#define NCASES (CPEX__COUNT(cases))

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A manager with the lib: scheme, as a host sets one up. */
static cpex_manager *lib_manager(void) { return e2e_manager_new(NULL); }

/* Whether the library at `path` is mapped in this process. */
#define mapped e2e_is_loaded

static char *yaml_for(const char *plugin, const char *kind)
{
    return e2e_yaml1(plugin, kind, PRE, "");
}

/* Load `yaml` into a fresh manager: it must fail with `code`; returns the messages. */
static char *load_refused(const char *yaml, cpex_status code)
{
    cpex_manager *m = lib_manager();
    char *msg = e2e_load_refused(m, yaml, "hostile.yaml", code, NULL);
    assert_int_equal(cpex_manager_plugin_count(m), 0); /* nothing was published */
    cpex_manager_free(m);
    return msg;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

static void expect_refusal(const hostile *h, const char *kind)
{
    char *yaml = yaml_for(h->plugin, kind);
    char *msg = load_refused(yaml, CPEX_E_LOAD);
    char name[64];
    snprintf(name, sizeof name, "plugin '%s'", h->plugin);
    assert_contains(msg, name);               /* the operator's plugin */
    assert_contains(msg, h->lib);             /* the resolved path */
    assert_contains(msg, "invalid manifest"); /* what failed */
    assert_contains(msg, h->why);             /* and exactly why */
    assert_contains(msg, "hint: ");           /* what to do */
    assert_contains(msg, "hostile.yaml");     /* where the operator wrote it */
    free(msg);
    free(yaml);
    assert_false(mapped(h->lib)); /* closed again */
}

static void test_config_load_refuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        char kind[512];
        snprintf(kind, sizeof kind, "lib:%s", cases[i].lib);
        expect_refusal(&cases[i], kind);
        /* the manifest is read before any entry is chosen */
        snprintf(kind, sizeof kind, "lib:%s?entry=anything", cases[i].lib);
        expect_refusal(&cases[i], kind);
    }
}

/* A hostile library beside a good one: the file fails as a whole, nothing
   is published, and the good library is closed again too. */
static void test_beside_a_good_plugin(void **state)
{
    (void)state;
    const char *yaml =
        "plugins:\n"
        "  - name: good\n"
        "    kind: \"lib:" LIB("single") "\"\n"
                                         "    hooks: [" PRE "]\n"
                                         "  - name: bad\n"
                                         "    kind: \"lib:" LIB(
                                             "manifest_wild_list") "\"\n"
                                                                   "    hooks: [" PRE "]\n";
    char *msg = load_refused(yaml, CPEX_E_LOAD);
    assert_contains(msg, "plugin 'bad'");
    assert_contains(msg, "its entry list points outside the library");
    free(msg);
    assert_false(mapped(LIB("single")));
    assert_false(mapped(LIB("manifest_wild_list")));
}

/* After every refusal the host still loads and runs a good plugin. */
static void test_host_keeps_running(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        char kind[512];
        snprintf(kind, sizeof kind, "lib:%s", cases[i].lib);
        char *yaml = yaml_for(cases[i].plugin, kind);
        free(load_refused(yaml, CPEX_E_LOAD));
        free(yaml);
    }
    cpex_manager *m = lib_manager();
    e2e_load_ok(m, E2E_YAML1("hello", "lib:" LIB("single"), PRE, ""), "good.yaml");
    e2e_initialize_ok(m);

    e2e_outcome o = E2E_OUTCOME_INIT;
    e2e_invoke_hello(m, PRE, &o);
    assert_true(o.r.continue_processing);
    assert_null(o.r.violation);
    e2e_outcome_cleanup(&o);
    cpex_manager_free(m);
    for (size_t i = 0; i < NCASES; i++)
        assert_false(mapped(cases[i].lib));
}

/* A valid manifest whose entry point is a data object: never called. */
static void test_entry_point_is_data(void **state)
{
    (void)state;
    char *yaml = yaml_for("data-entry", "lib:" LIB("manifest_entry_is_data"));
    char *msg = load_refused(yaml, CPEX_E_LOAD);
    assert_contains(msg, "plugin 'data-entry'");
    assert_contains(msg, LIB("manifest_entry_is_data"));
    assert_contains(msg, "exports 'cpex_plugin_create', but it is not a function");
    assert_contains(msg, "hint: ");
    free(msg);
    free(yaml);
    assert_false(mapped(LIB("manifest_entry_is_data")));

    cpex_library_info *info = NULL;
    assert_int_equal(cpex_library_describe(LIB("manifest_entry_is_data"), NULL, &info, NULL),
                     CPEX_OK);
    assert_true(info->has_manifest);
    assert_int_equal(info->entry_count, 1);
    assert_false(info->entries[0].exported);
    assert_false(info->usable);
    assert_int_equal(info->problem_count, 1);
    assert_contains(info->problems[0], "cpex_plugin_create is exported but is not a function");
    cpex_library_info_free(info);
}

/* ------------------------------------------------------------------ */
/* Describing                                                          */
/* ------------------------------------------------------------------ */

static cpex_library_info *describe(const char *path, const char *const *symbols)
{
    cpex_library_info *info = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_library_describe(path, symbols, &info, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_non_null(info);
    cpex_error_cleanup(&err);
    return info;
}

static int has_line(char **lines, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(lines[i], needle))
            return 1;
    return 0;
}

static void expect_problem(const cpex_library_info *info, const char *needle)
{
    if (!has_line(info->problems, info->problem_count, needle)) {
        print_error("no problem says '%s'; the problems are:\n", needle);
        for (size_t i = 0; i < info->problem_count; i++)
            print_error("  %s\n", info->problems[i]);
    }
    assert_true(has_line(info->problems, info->problem_count, needle));
    assert_false(info->usable);
}

static void test_describe_hostile(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES; i++) {
        cpex_library_info *info = describe(cases[i].lib, NULL);
        assert_string_equal(info->path, cases[i].lib);
        assert_true(info->loaded);
        assert_true(info->has_manifest);
        expect_problem(info, "invalid manifest: ");
        expect_problem(info, cases[i].why);
        cpex_library_info_free(info);
        assert_false(mapped(cases[i].lib));
    }
}

static void test_describe_good(void **state)
{
    (void)state;
    /* a library of two named plugins; one unlisted entry point is noted */
    const char *const syms[] = {"cpex_plugin_create_allow", "cpex_plugin_create_deny",
                                "cpex_plugin_create_extra", "cpex_plugin_creation", NULL};
    cpex_library_info *info = describe(LIB("multi_plugin"), syms);
    assert_true(info->usable);
    assert_true(info->loaded && info->has_manifest && info->abi_known);
    assert_int_equal(info->abi_version, CPEX_ABI_VERSION); /* built with this SDK */
    assert_int_equal(info->compatible, 1);
    assert_int_equal(info->host_abi, CPEX_ABI_VERSION);
    assert_int_equal(info->problem_count, 0);
    assert_int_equal(info->entry_count, 2);
    const cpex_library_entry *e = &info->entries[1];
    assert_string_equal(e->entry, "deny");
    assert_string_equal(e->symbol, "cpex_plugin_create_deny");
    assert_string_equal(e->kind, "lib:" LIB("multi_plugin") "?entry=deny");
    assert_string_equal(e->version, "0.5.0");
    assert_true(e->exported);
    assert_int_equal(e->hook_count, 1);
    assert_string_equal(e->hooks[0], PRE);
    assert_true(has_line(info->notes, info->note_count,
                         "cpex_plugin_create_extra is exported "
                         "but not listed"));
    assert_false(has_line(info->notes, info->note_count, "cpex_plugin_creation"));
    cpex_library_info_free(info);

    /* no manifest: the default entry point is found by name */
    info = describe(LIB("no_manifest"), NULL);
    assert_true(info->usable);
    assert_false(info->has_manifest);
    assert_false(info->abi_known);
    assert_int_equal(info->compatible, -1);
    assert_int_equal(info->entry_count, 1);
    assert_string_equal(info->entries[0].entry, "");
    assert_string_equal(info->entries[0].kind, "lib:" LIB("no_manifest"));
    assert_true(info->entries[0].exported);
    assert_null(info->entries[0].display_name);
    assert_null(info->entries[0].hooks);
    assert_true(has_line(info->notes, info->note_count, "no manifest"));
    cpex_library_info_free(info);

    /* a major this host does not speak: versions, and nothing more is read */
    info = describe(LIB("abi_major2"), NULL);
    assert_false(info->usable);
    assert_true(info->abi_known);
    assert_int_equal(info->compatible, 0);
    assert_int_equal(CPEX_ABI_MAJOR(info->abi_version), 2);
    assert_int_equal(info->entry_count, 0);
    expect_problem(info, "the major versions differ");
    cpex_library_info_free(info);
}

static void test_describe_not_a_library(void **state)
{
    (void)state;
    cpex_library_info *info = describe(CPEX_SOURCE_DIR "/README.md", NULL);
    assert_false(info->loaded);
    expect_problem(info, "the file is not a shared library");
    cpex_library_info_free(info);
    info = describe(CPEX_PLUGIN_DIR "/no-such-library.so", NULL);
    assert_false(info->loaded);
    expect_problem(info, "cannot load");
    cpex_library_info_free(info);
    /* a bare name is never looked up in the system library path */
    info = describe("libc.so.6", NULL);
    assert_string_equal(info->path, "./libc.so.6");
    assert_false(info->loaded);
    cpex_library_info_free(info);

    cpex_error err = CPEX_ERROR_INIT;
    cpex_library_info *out = (cpex_library_info *)&err; /* must be reset */
    assert_int_equal(cpex_library_describe(NULL, NULL, &out, &err), CPEX_E_INVALID);
    assert_null(out);
    assert_int_equal(cpex_library_describe(LIB("single"), NULL, NULL, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    cpex_library_info_free(NULL);
}

/* Every allocation of a description may fail: each failure is a clean
   CPEX_E_NOMEM (the sanitizer build proves nothing leaks). */
static void test_describe_out_of_memory(void **state)
{
    (void)state;
    const char *libs[] = {LIB("multi_plugin"), LIB("manifest_unterminated"), LIB("no_manifest")};
    const char *const syms[] = {"cpex_plugin_create_allow", "cpex_plugin_create_extra", NULL};
    for (size_t l = 0; l < CPEX__COUNT(libs); l++) {
        for (uint64_t n = 1; n < 1000; n++) {
            cpex_library_info *info = NULL;
            cpex_error err = CPEX_ERROR_INIT;
            cpex__alloc_fail_at(n);
            cpex_status st = cpex_library_describe(libs[l], syms, &info, &err);
            int failed = cpex__alloc_failed();
            cpex__alloc_fail_at(0);
            if (!failed) {
                assert_int_equal(st, CPEX_OK);
                cpex_library_info_free(info);
                cpex_error_cleanup(&err);
                break;
            }
            assert_int_equal(st, CPEX_E_NOMEM);
            assert_null(info);
            cpex_error_cleanup(&err);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load_refuses),
        cmocka_unit_test(test_beside_a_good_plugin),
        cmocka_unit_test(test_host_keeps_running),
        cmocka_unit_test(test_entry_point_is_data),
        cmocka_unit_test(test_describe_hostile),
        cmocka_unit_test(test_describe_good),
        cmocka_unit_test(test_describe_not_a_library),
        cmocka_unit_test(test_describe_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
