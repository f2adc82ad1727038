/* test_manifest.c — the version rule and manifest validation, with hostile
   manifests built here (no dlopen). */
#include <string.h>

#include "loader/manifest.h"
#include "test_support.h"
#include "util/alloc.h"

#define V(maj, min) CPEX_ABI_MAKE_VERSION(maj, min)

static void test_version_rule(void **state)
{
    (void)state;
    /* same major, plugin minor <= host minor: accepted */
    assert_true(cpex_abi_compatible(V(1, 0), V(1, 0), NULL, 0));
    assert_true(cpex_abi_compatible(V(1, 3), V(1, 0), NULL, 0));
    assert_true(cpex_abi_compatible(V(1, 3), V(1, 3), NULL, 0));
    assert_true(cpex_abi_compatible(V(2, 0), V(2, 0), NULL, 0));
    assert_true(cpex_abi_compatible(V(1, 0xffff), V(1, 0xfffe), NULL, 0));
    /* newer plugin minor: refused */
    assert_false(cpex_abi_compatible(V(1, 0), V(1, 1), NULL, 0));
    assert_false(cpex_abi_compatible(V(1, 3), V(1, 99), NULL, 0));
    /* other major, whatever the minors: refused */
    assert_false(cpex_abi_compatible(V(1, 0), V(2, 0), NULL, 0));
    assert_false(cpex_abi_compatible(V(2, 0), V(1, 0), NULL, 0));
    assert_false(cpex_abi_compatible(V(2, 5), V(1, 0), NULL, 0));
    assert_false(cpex_abi_compatible(V(1, 5), V(0, 1), NULL, 0));
    assert_false(cpex_abi_compatible(V(1, 0), 0, NULL, 0));
    /* the pre-1.0 Rust-style plain "1" is major 0, minor 1: refused */
    assert_false(cpex_abi_compatible(CPEX_ABI_VERSION, 1, NULL, 0));

    char why[256];
    assert_false(cpex_abi_compatible(V(1, 0), V(2, 0), why, sizeof why));
    assert_contains(why, "host has ABI 1.0, plugin has ABI 2.0");
    assert_contains(why, "major versions differ");
    assert_false(cpex_abi_compatible(V(1, 0), V(1, 99), why, sizeof why));
    assert_contains(why, "host has ABI 1.0, plugin has ABI 1.99");
    assert_contains(why, "minor is newer");
    assert_true(cpex_abi_compatible(V(1, 2), V(1, 1), why, sizeof why));
    assert_string_equal(why, "host has ABI 1.2, plugin has ABI 1.1");
    char small[5];
    assert_false(cpex_abi_compatible(V(1, 0), V(2, 0), small, sizeof small));
    assert_int_equal(strlen(small), 4);
}

/* A well-formed two-entry manifest the tests then damage one field at a time. */
static const char *const allow_hooks[] = {"cmf.tool_pre_invoke"};
static const char *const deny_hooks[] = {"cmf.tool_pre_invoke", "cmf.tool_post_invoke"};

typedef struct fixture {
    cpex_manifest_entry a, b;
    const cpex_manifest_entry *list[2];
    cpex_manifest m;
} fixture;

static void build(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->a.struct_size = (uint32_t)sizeof f->a;
    f->a.entry = "allow";
    f->a.display_name = "allow-gate";
    f->a.version = "1.0.0";
    f->a.description = "allows";
    f->a.hook_count = 1;
    f->a.hooks = allow_hooks;
    f->b = f->a;
    f->b.entry = "deny";
    f->b.display_name = "deny-gate";
    f->b.hook_count = 2;
    f->b.hooks = deny_hooks;
    f->list[0] = &f->a;
    f->list[1] = &f->b;
    f->m.struct_size = (uint32_t)sizeof f->m;
    f->m.abi_version = CPEX_ABI_VERSION;
    f->m.entry_count = 2;
    f->m.entries = f->list;
    f->m.build_info = "test";
}

static void expect_valid(fixture *f)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manifest_validate(&f->m, CPEX_ABI_VERSION, "/x/lib.so", 0, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

static void expect_invalid(fixture *f, uint32_t host, size_t object_size, const char *needle)
{
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manifest_validate(&f->m, host, "/x/lib.so", object_size, &err),
                     CPEX_E_LOAD);
    assert_int_equal(err.count, 1);
    const char *msg = cpex_error_message(&err);
    assert_contains(msg, "library '/x/lib.so'"); /* names the file */
    assert_contains(msg, needle);
    assert_contains(msg, "hint: "); /* and says what to do */
    cpex_error_cleanup(&err);
}

static void test_valid(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    expect_valid(&f);
    /* the object size, when known, may equal the struct */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manifest_validate(&f.m, CPEX_ABI_VERSION, "/x", sizeof f.m, &err),
                     CPEX_OK);
    /* a single default entry, no build info, no version/description */
    build(&f);
    f.a.entry = "";
    f.a.version = NULL;
    f.a.description = NULL;
    f.m.entry_count = 1;
    f.m.build_info = NULL;
    expect_valid(&f);
    /* a default entry beside named ones */
    build(&f);
    f.a.entry = "";
    expect_valid(&f);
    /* an entry that names no hooks */
    build(&f);
    f.a.hook_count = 0;
    f.a.hooks = NULL;
    expect_valid(&f);
    /* an older-minor plugin in a newer host */
    build(&f);
    f.m.abi_version = V(CPEX_ABI_VERSION_MAJOR, 0);
    assert_int_equal(cpex_manifest_validate(&f.m, V(CPEX_ABI_VERSION_MAJOR, 7), "/x", 0, &err),
                     CPEX_OK);
    assert_int_equal(err.count, 0);
}

static void test_versions(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    f.m.abi_version = V(2, 0);
    expect_invalid(&f, V(1, 0), 0, "different major version");
    expect_invalid(&f, V(1, 0), 0, "host has ABI 1.0, plugin has ABI 2.0");
    expect_invalid(&f, V(1, 0), 0, "rebuild the plugin against");
    build(&f);
    f.m.abi_version = V(1, 99);
    expect_invalid(&f, V(1, 0), 0, "newer minor version");
    expect_invalid(&f, V(1, 0), 0, "host has ABI 1.0, plugin has ABI 1.99");
    expect_invalid(&f, V(1, 0), 0, "upgrade the host");
    /* the major is checked before the layout: a 2.x manifest with a size
       that would be corrupt in 1.x still gets the version message */
    build(&f);
    f.m.abi_version = V(2, 0);
    f.m.struct_size = 12;
    expect_invalid(&f, V(1, 0), 0, "host has ABI 1.0, plugin has ABI 2.0");
}

static void test_sizes(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    f.m.struct_size = 0;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "struct_size is 0");
    build(&f);
    f.m.struct_size = 1u << 30;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "struct_size is 1073741824");
    build(&f);
    f.m.struct_size = (uint32_t)CPEX_MANIFEST_SIZE_1_0 - 8;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "at least");
    build(&f);
    /* claims more than the symbol holds */
    expect_invalid(&f, CPEX_ABI_VERSION, sizeof f.m - 8, "larger than the symbol");
    /* a symbol too small to hold even the header */
    expect_invalid(&f, CPEX_ABI_VERSION, 4, "too small for a manifest");
    build(&f);
    f.a.struct_size = 8;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "entry 0 has struct_size 8");
    build(&f);
    f.b.struct_size = 0xffffffffu;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "entry 1 has struct_size");
}

static void test_entries(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    f.m.entry_count = 0;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "lists no entries");
    build(&f);
    f.m.entry_count = 1025;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "claims 1025 entries");
    build(&f);
    f.m.entry_count = (size_t)-1;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "entries (at most 1024");
    build(&f);
    f.m.entries = NULL;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "no entry list");
    build(&f);
    f.list[1] = NULL;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "entry 1 is NULL");
    build(&f);
    f.a.entry = NULL;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "the name of entry 0 is NULL");
    build(&f);
    f.b.entry = "1bad";
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "must start with a letter or underscore (got '1')");
    build(&f);
    f.b.entry = "a-b";
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "invalid character '-'");
    build(&f);
    f.b.entry = "allow";
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "entry 'allow' is listed twice");
    build(&f);
    f.a.entry = "";
    f.b.entry = "";
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "entry '(default)' is listed twice");
    build(&f);
    f.a.display_name = NULL;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "the display name of entry 'allow' is NULL");
    build(&f);
    f.a.display_name = "";
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "display name of entry 'allow' is empty");
    build(&f);
    f.a.hook_count = 3;
    f.a.hooks = NULL;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "hook count but no hook list");
    build(&f);
    f.a.hook_count = 5000;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "claims 5000 hooks");
    static const char *const bad_hooks[] = {"cmf.tool_pre_invoke", NULL};
    build(&f);
    f.b.hooks = bad_hooks;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "a hook name of entry 'deny' is NULL");
    static const char *const empty_hook[] = {""};
    build(&f);
    f.a.hooks = empty_hook;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "a hook name of entry 'allow' is empty");
}

static void test_unterminated(void **state)
{
    (void)state;
    /* strings that do not end within a sane length are refused, not read on */
    static char big[8192];
    memset(big, 'x', sizeof big - 1);
    fixture f;
    build(&f);
    f.a.description = big;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "description of entry 'allow' is not a terminated");
    build(&f);
    f.m.build_info = big;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "build information is not a terminated");
    static char longentry[300];
    memset(longentry, 'a', sizeof longentry - 1);
    build(&f);
    f.a.entry = longentry;
    expect_invalid(&f, CPEX_ABI_VERSION, 0, "the name of entry 0 is not a terminated");
}

static void test_queries(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    assert_ptr_equal(cpex_manifest_find(&f.m, "allow"), &f.a);
    assert_ptr_equal(cpex_manifest_find(&f.m, "deny"), &f.b);
    assert_null(cpex_manifest_find(&f.m, "foo"));
    assert_null(cpex_manifest_find(&f.m, ""));
    assert_null(cpex_manifest_find(NULL, "allow"));
    assert_int_equal(cpex_manifest_named_count(&f.m), 2);
    char *list = cpex_manifest_entry_list(&f.m);
    assert_string_equal(list, "[allow, deny]");
    cpex_free(list);
    f.a.entry = "";
    assert_ptr_equal(cpex_manifest_find(&f.m, ""), &f.a);
    assert_int_equal(cpex_manifest_named_count(&f.m), 1);
    list = cpex_manifest_entry_list(&f.m);
    assert_string_equal(list, "[(default), deny]");
    cpex_free(list);
    cpex_alloc_fail_at(1);
    assert_null(cpex_manifest_entry_list(&f.m));
    cpex_alloc_fail_at(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_rule), cmocka_unit_test(test_valid),
        cmocka_unit_test(test_versions),     cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_entries),      cmocka_unit_test(test_unterminated),
        cmocka_unit_test(test_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
