/* test_manifest.c — the version rule and manifest validation, with hostile
   manifests built here (no dlopen): in trusted memory (cpex__manifest_validate)
   and through an image of one memory block standing for a library, whose
   pointers are followed only inside it (cpex__manifest_read / _load). */
#include <string.h>

#include "loader/image.h"
#include "loader/manifest.h"
#include "test_support.h"
#include "util/alloc.h"

#define V(maj, min) CPEX_ABI_MAKE_VERSION(maj, min)

static void test_version_rule(void **state)
{
    (void)state;
    /* same major, plugin minor <= host minor: accepted */
    assert_true(cpex__abi_compatible(V(1, 0), V(1, 0), NULL, 0));
    assert_true(cpex__abi_compatible(V(1, 3), V(1, 0), NULL, 0));
    assert_true(cpex__abi_compatible(V(1, 3), V(1, 3), NULL, 0));
    assert_true(cpex__abi_compatible(V(2, 0), V(2, 0), NULL, 0));
    assert_true(cpex__abi_compatible(V(1, 0xffff), V(1, 0xfffe), NULL, 0));
    /* newer plugin minor: refused */
    assert_false(cpex__abi_compatible(V(1, 0), V(1, 1), NULL, 0));
    assert_false(cpex__abi_compatible(V(1, 3), V(1, 99), NULL, 0));
    /* other major, whatever the minors: refused */
    assert_false(cpex__abi_compatible(V(1, 0), V(2, 0), NULL, 0));
    assert_false(cpex__abi_compatible(V(2, 0), V(1, 0), NULL, 0));
    assert_false(cpex__abi_compatible(V(2, 5), V(1, 0), NULL, 0));
    assert_false(cpex__abi_compatible(V(1, 5), V(0, 1), NULL, 0));
    assert_false(cpex__abi_compatible(V(1, 0), 0, NULL, 0));
    /* the pre-1.0 Rust-style plain "1" is major 0, minor 1: refused */
    assert_false(cpex__abi_compatible(CPEX_ABI_VERSION, 1, NULL, 0));

    char why[256];
    assert_false(cpex__abi_compatible(V(1, 0), V(2, 0), why, sizeof why));
    assert_contains(why, "host has ABI 1.0, plugin has ABI 2.0");
    assert_contains(why, "major versions differ");
    assert_false(cpex__abi_compatible(V(1, 0), V(1, 99), why, sizeof why));
    assert_contains(why, "host has ABI 1.0, plugin has ABI 1.99");
    assert_contains(why, "minor is newer");
    assert_true(cpex__abi_compatible(V(1, 2), V(1, 1), why, sizeof why));
    assert_string_equal(why, "host has ABI 1.2, plugin has ABI 1.1");
    char small[5];
    assert_false(cpex__abi_compatible(V(1, 0), V(2, 0), small, sizeof small));
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
    cpex_status st = cpex__manifest_validate(&f->m, CPEX_ABI_VERSION, "/x/lib.so", 0, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
}

static void expect_invalid(fixture *f, uint32_t host, size_t object_size, const char *needle)
{
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__manifest_validate(&f->m, host, "/x/lib.so", object_size, &err),
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
    assert_int_equal(cpex__manifest_validate(&f.m, CPEX_ABI_VERSION, "/x", sizeof f.m, &err),
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
    assert_int_equal(cpex__manifest_validate(&f.m, V(CPEX_ABI_VERSION_MAJOR, 7), "/x", 0, &err),
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
    assert_ptr_equal(cpex__manifest_find(&f.m, "allow"), &f.a);
    assert_ptr_equal(cpex__manifest_find(&f.m, "deny"), &f.b);
    assert_null(cpex__manifest_find(&f.m, "foo"));
    assert_null(cpex__manifest_find(&f.m, ""));
    assert_null(cpex__manifest_find(NULL, "allow"));
    assert_int_equal(cpex__manifest_named_count(&f.m), 2);
    char *list = cpex__manifest_entry_list(&f.m);
    assert_string_equal(list, "[allow, deny]");
    cpex__free(list);
    f.a.entry = "";
    assert_ptr_equal(cpex__manifest_find(&f.m, ""), &f.a);
    assert_int_equal(cpex__manifest_named_count(&f.m), 1);
    list = cpex__manifest_entry_list(&f.m);
    assert_string_equal(list, "[(default), deny]");
    cpex__free(list);
    cpex__alloc_fail_at(1);
    assert_null(cpex__manifest_entry_list(&f.m));
    cpex__alloc_fail_at(0);
}

/* ------------------------------------------------------------------ */
/* Reading through an image: pointers are followed only inside it      */
/* ------------------------------------------------------------------ */

/* A fake library: one block of "mapped" memory holding a whole manifest. */
typedef struct fake_lib {
    cpex_manifest m;
    cpex_manifest_entry e[2];
    const cpex_manifest_entry *list[2];
    const char *hooks[2];
    char text[256];
} fake_lib;

static const char *put(fake_lib *f, size_t *pos, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = f->text + *pos;
    memcpy(p, s, n);
    *pos += n;
    return p;
}

static void fake_build(fake_lib *f, cpex__image *im)
{
    memset(f, 0, sizeof *f);
    size_t pos = 0;
    f->hooks[0] = put(f, &pos, "cmf.tool_pre_invoke");
    f->hooks[1] = put(f, &pos, "cmf.tool_post_invoke");
    for (int i = 0; i < 2; i++) {
        f->e[i].struct_size = (uint32_t)sizeof f->e[i];
        f->e[i].entry = put(f, &pos, i ? "deny" : "allow");
        f->e[i].display_name = put(f, &pos, i ? "deny-gate" : "allow-gate");
        f->e[i].version = put(f, &pos, "1.2.3");
        f->e[i].description = NULL;
        f->e[i].hook_count = (size_t)i + 1;
        f->e[i].hooks = f->hooks;
        f->list[i] = &f->e[i];
    }
    f->m.struct_size = (uint32_t)sizeof f->m;
    f->m.abi_version = CPEX_ABI_VERSION;
    f->m.entry_count = 2;
    f->m.entries = f->list;
    f->m.build_info = put(f, &pos, "fake");
    cpex__image_init_ranges(im);
    assert_int_equal(cpex__image_add_range(im, f, sizeof *f), 0);
}

static cpex__manifest_verdict fake_read(const cpex__image *im, const fake_lib *f,
                                        cpex__manifest_copy **copy, cpex__manifest_report *rep)
{
    cpex__image_sym sym = {&f->m, sizeof f->m, CPEX_SYM_DATA};
    return cpex__manifest_read(im, &sym, CPEX_ABI_VERSION, copy, rep);
}

static void expect_image_invalid(const cpex__image *im, const fake_lib *f, const char *needle)
{
    cpex__manifest_report rep;
    assert_int_equal(fake_read(im, f, NULL, &rep), CPEX_MANIFEST_INVALID);
    assert_contains(rep.detail, needle);
    /* and as the loader says it */
    cpex__image_sym sym = {&f->m, sizeof f->m, CPEX_SYM_DATA};
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__manifest_load(im, &sym, CPEX_ABI_VERSION, "/x/lib.so", NULL, &err),
                     CPEX_E_LOAD);
    assert_contains(cpex_error_message(&err), "library '/x/lib.so' has an invalid manifest");
    assert_contains(cpex_error_message(&err), needle);
    assert_contains(cpex_error_message(&err), "hint: ");
    cpex_error_cleanup(&err);
}

static void test_image_checks(void **state)
{
    (void)state;
    static char block[64];
    memset(block, 'x', sizeof block);
    block[9] = '\0';
    cpex__image im;
    cpex__image_init_ranges(&im);
    assert_int_equal(cpex__image_add_range(&im, block, sizeof block), 0);
    assert_int_equal(cpex__image_room(&im, block), sizeof block);
    assert_int_equal(cpex__image_room(&im, block + 60), 4);
    assert_int_equal(cpex__image_room(&im, block + 64), 0);
    assert_null(cpex__image_check(&im, block, 64, 1));
    assert_string_equal(cpex__image_check(&im, NULL, 1, 1), "is NULL");
    assert_string_equal(cpex__image_check(&im, block + 1, 65, 1),
                        "runs past the end of the library's data");
    assert_string_equal(cpex__image_check(&im, (void *)(uintptr_t)0x10, 8, 8),
                        "points outside the library");
    const char *aligned = block + (8 - (uintptr_t)block % 8) % 8;
    assert_string_equal(cpex__image_check(&im, aligned + 1, 8, 8), "is misaligned");
    /* strings: terminated inside the range, bounded, never read past it */
    assert_null(cpex__image_text(&im, block, 100, 0));
    assert_string_equal(cpex__image_text(&im, block, 5, 0),
                        "is not a terminated string of reasonable length");
    assert_string_equal(cpex__image_text(&im, block + 10, 4096, 0),
                        "is not terminated before the end of the library's data");
    assert_string_equal(cpex__image_text(&im, block + 9, 10, 0), "is empty");
    assert_null(cpex__image_text(&im, block + 9, 10, 1));
    assert_string_equal(cpex__image_text(&im, (const char *)(uintptr_t)0x1000, 10, 1),
                        "points outside the library");
    /* NULL image: trusted memory, only NULL, alignment and length count */
    assert_null(cpex__image_check(NULL, aligned, 1u << 30, 8));
    assert_string_equal(cpex__image_check(NULL, aligned + 1, 8, 8), "is misaligned");
    assert_null(cpex__image_text(NULL, block, 9, 0));
    assert_string_equal(cpex__image_text(NULL, block, 8, 0),
                        "is not a terminated string of reasonable length");
    /* a full image refuses more ranges; an empty or wrapping one is ignored */
    cpex__image_init_ranges(&im);
    for (size_t i = 0; i < CPEX_IMAGE_MAX_RANGES; i++)
        assert_int_equal(cpex__image_add_range(&im, block + i, 1), 0);
    assert_int_equal(cpex__image_add_range(&im, block, 1), -1);
    cpex__image_init_ranges(&im);
    assert_int_equal(cpex__image_add_range(&im, block, 0), 0);
    assert_int_equal(cpex__image_add_range(&im, (void *)(uintptr_t)-8, 64), 0);
    assert_int_equal(im.count, 0);
    /* no library: no symbols */
    cpex__image_sym sym;
    char why[100];
    assert_int_equal(cpex__image_symbol(&im, "x", &sym, why, sizeof why), CPEX_SYM_MISSING);
}

static void test_image_read(void **state)
{
    (void)state;
    fake_lib f;
    cpex__image im;
    fake_build(&f, &im);
    cpex__manifest_report rep;
    cpex__manifest_copy *c = NULL;
    assert_int_equal(fake_read(&im, &f, &c, &rep), CPEX_MANIFEST_VALID);
    assert_true(rep.header);
    assert_non_null(c);
    /* the copy is the host's: equal text, none of the library's pointers */
    const cpex_manifest *m = &c->manifest;
    assert_int_equal(m->struct_size, sizeof(cpex_manifest));
    assert_int_equal(m->abi_version, CPEX_ABI_VERSION);
    assert_int_equal(c->declared_size, sizeof f.m);
    assert_int_equal(m->entry_count, 2);
    assert_string_equal(m->build_info, "fake");
    assert_int_equal(cpex__image_room(&im, m->build_info), 0);
    assert_int_equal(cpex__image_room(&im, m->entries), 0);
    for (size_t i = 0; i < 2; i++) {
        const cpex_manifest_entry *e = m->entries[i];
        assert_int_equal(cpex__image_room(&im, e), 0);
        assert_int_equal(cpex__image_room(&im, e->entry), 0);
        assert_int_equal(cpex__image_room(&im, e->hooks), 0);
        assert_int_equal(cpex__image_room(&im, e->hooks[0]), 0);
        assert_string_equal(e->entry, f.e[i].entry);
        assert_string_equal(e->display_name, f.e[i].display_name);
        assert_null(e->description);
        assert_int_equal(e->hook_count, i + 1);
    }
    assert_string_equal(m->entries[1]->hooks[1], "cmf.tool_post_invoke");
    assert_ptr_equal(cpex__manifest_find(m, "deny"), m->entries[1]);
    char *list = cpex__manifest_entry_list(m);
    assert_string_equal(list, "[allow, deny]");
    cpex__free(list);
    cpex__manifest_copy_free(c);
    cpex__manifest_copy_free(NULL);

    /* an older (shorter) entry: the fields it lacks are zero in the copy */
    fake_build(&f, &im);
    f.e[0].struct_size = (uint32_t)CPEX_MANIFEST_ENTRY_SIZE_1_0;
    assert_int_equal(fake_read(&im, &f, &c, &rep), CPEX_MANIFEST_VALID);
    assert_int_equal(c->manifest.entries[0]->struct_size, sizeof(cpex_manifest_entry));
    cpex__manifest_copy_free(c);

    /* a problem after the first entry: the copy holds what was read */
    fake_build(&f, &im);
    f.e[1].display_name = (const char *)(uintptr_t)0x1000;
    assert_int_equal(fake_read(&im, &f, &c, &rep), CPEX_MANIFEST_INVALID);
    assert_contains(rep.detail, "the display name of entry 'deny' points outside the library");
    assert_non_null(c);
    assert_int_equal(c->manifest.entry_count, 1);
    assert_string_equal(c->manifest.entries[0]->entry, "allow");
    cpex__manifest_copy_free(c);
}

static void test_image_refusals(void **state)
{
    (void)state;
    fake_lib f;
    cpex__image im;
    static char outside[] = "a string outside the library";

    fake_build(&f, &im);
    f.m.entries = (const cpex_manifest_entry *const *)(uintptr_t)0x10;
    expect_image_invalid(&im, &f, "its entry list points outside the library");
    fake_build(&f, &im);
    f.m.entries = (const cpex_manifest_entry *const *)((char *)f.list + 1);
    expect_image_invalid(&im, &f, "its entry list is misaligned");
    fake_build(&f, &im);
    f.m.entries = (const cpex_manifest_entry *const *)((char *)(&f + 1) - sizeof(void *));
    expect_image_invalid(&im, &f, "its entry list runs past the end of the library's data");
    fake_build(&f, &im);
    f.list[1] = (const cpex_manifest_entry *)(uintptr_t)0xdead0000;
    expect_image_invalid(&im, &f, "entry 1 points outside the library");
    fake_build(&f, &im);
    /* an aligned entry in the last 8 bytes: its struct_size is readable, the rest is not */
    uint32_t big = (uint32_t)sizeof(cpex_manifest_entry);
    memcpy((char *)(&f + 1) - 8, &big, sizeof big);
    f.list[0] = (const cpex_manifest_entry *)((char *)(&f + 1) - 8);
    expect_image_invalid(&im, &f, "entry 0 runs past the end of the library's data");
    fake_build(&f, &im);
    f.e[0].display_name = outside;
    expect_image_invalid(&im, &f, "the display name of entry 'allow' points outside the library");
    fake_build(&f, &im);
    f.e[0].entry = outside;
    expect_image_invalid(&im, &f, "the name of entry 0 points outside the library");
    fake_build(&f, &im);
    f.e[1].version = outside;
    expect_image_invalid(&im, &f, "the version of entry 'deny' points outside the library");
    fake_build(&f, &im);
    f.e[1].description = outside;
    expect_image_invalid(&im, &f, "the description of entry 'deny' points outside the library");
    fake_build(&f, &im);
    f.m.build_info = outside;
    expect_image_invalid(&im, &f, "its build information points outside the library");
    fake_build(&f, &im);
    f.e[0].hooks = (const char *const *)(uintptr_t)0xdead0000;
    expect_image_invalid(&im, &f, "the hook list of entry 'allow' points outside the library");
    fake_build(&f, &im);
    f.hooks[1] = outside;
    expect_image_invalid(&im, &f, "a hook name of entry 'deny' points outside the library");
    /* a string that runs to the end of the library's memory */
    fake_build(&f, &im);
    memset(f.text + sizeof f.text - 8, 'x', 8);
    f.e[1].description = f.text + sizeof f.text - 8;
    expect_image_invalid(&im, &f,
                         "the description of entry 'deny' is not terminated before the end of "
                         "the library's data");
    /* a count whose byte size wraps around is refused before multiplying */
    fake_build(&f, &im);
    f.m.entry_count = SIZE_MAX / sizeof(void *) + 2;
    expect_image_invalid(&im, &f, "entries (at most 1024 accepted)");
    fake_build(&f, &im);
    f.e[0].hook_count = SIZE_MAX / sizeof(void *) + 2;
    expect_image_invalid(&im, &f, "hooks (at most 1024 accepted)");

    /* the symbol itself */
    fake_build(&f, &im);
    cpex__manifest_report rep;
    cpex__image_sym sym = {&f.m, 0, CPEX_SYM_CODE};
    assert_int_equal(cpex__manifest_read(&im, &sym, CPEX_ABI_VERSION, NULL, &rep),
                     CPEX_MANIFEST_INVALID);
    assert_string_equal(rep.detail, "the symbol is not a data object (it is a function)");
    assert_false(rep.header);
    sym.type = CPEX_SYM_OTHER;
    assert_int_equal(cpex__manifest_read(&im, &sym, CPEX_ABI_VERSION, NULL, &rep),
                     CPEX_MANIFEST_INVALID);
    assert_contains(rep.detail, "not a data object");
    sym.type = CPEX_SYM_DATA;
    sym.addr = outside;
    assert_int_equal(cpex__manifest_read(&im, &sym, CPEX_ABI_VERSION, NULL, &rep),
                     CPEX_MANIFEST_INVALID);
    assert_string_equal(rep.detail, "the symbol points outside the library");
    sym.addr = NULL;
    assert_int_equal(cpex__manifest_read(&im, &sym, CPEX_ABI_VERSION, NULL, &rep),
                     CPEX_MANIFEST_INVALID);
    assert_string_equal(rep.detail, "the symbol is NULL");
}

static void test_image_versions(void **state)
{
    (void)state;
    fake_lib f;
    cpex__image im;
    cpex__manifest_report rep;
    cpex__manifest_copy *c = NULL;
    /* another major: the header is reported, the rest is not read */
    fake_build(&f, &im);
    f.m.abi_version = V(2, 0);
    f.m.entries = (const cpex_manifest_entry *const *)(uintptr_t)0x10;
    assert_int_equal(fake_read(&im, &f, &c, &rep), CPEX_MANIFEST_OTHER_MAJOR);
    assert_null(c);
    assert_true(rep.header);
    assert_int_equal(rep.abi_version, V(2, 0));
    /* a newer minor is read (its layout is a superset) but not loaded */
    fake_build(&f, &im);
    f.m.abi_version = V(CPEX_ABI_VERSION_MAJOR, CPEX_ABI_VERSION_MINOR + 1);
    assert_int_equal(fake_read(&im, &f, &c, &rep), CPEX_MANIFEST_VALID);
    assert_non_null(c);
    cpex__manifest_copy_free(c);
    cpex__image_sym sym = {&f.m, sizeof f.m, CPEX_SYM_DATA};
    cpex_error err = CPEX_ERROR_INIT;
    c = (cpex__manifest_copy *)&err; /* must be reset */
    assert_int_equal(cpex__manifest_load(&im, &sym, CPEX_ABI_VERSION, "/x/lib.so", &c, &err),
                     CPEX_E_LOAD);
    assert_null(c);
    assert_contains(cpex_error_message(&err), "newer minor version");
    cpex_error_cleanup(&err);
    /* ... and the version wins over a layout problem */
    f.list[0] = NULL;
    assert_int_equal(cpex__manifest_load(&im, &sym, CPEX_ABI_VERSION, "/x/lib.so", &c, &err),
                     CPEX_E_LOAD);
    assert_contains(cpex_error_message(&err), "newer minor version");
    cpex_error_cleanup(&err);
    /* a header too short to hold a version */
    fake_build(&f, &im);
    f.m.struct_size = 4;
    assert_int_equal(fake_read(&im, &f, NULL, &rep), CPEX_MANIFEST_INVALID);
    assert_false(rep.header);
    assert_string_equal(rep.detail, "struct_size is 4");
}

/* Every allocation of a copy may fail: NOMEM, nothing leaked, no copy. */
static void test_image_out_of_memory(void **state)
{
    (void)state;
    fake_lib f;
    cpex__image im;
    fake_build(&f, &im);
    cpex__image_sym sym = {&f.m, sizeof f.m, CPEX_SYM_DATA};
    for (uint64_t n = 1; n < 200; n++) {
        cpex__manifest_copy *c = NULL;
        cpex_error err = CPEX_ERROR_INIT;
        cpex__alloc_fail_at(n);
        cpex_status st = cpex__manifest_load(&im, &sym, CPEX_ABI_VERSION, "/x", &c, &err);
        int failed = cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        cpex_error_cleanup(&err);
        if (!failed) {
            assert_int_equal(st, CPEX_OK);
            cpex__manifest_copy_free(c);
            return;
        }
        assert_int_equal(st, CPEX_E_NOMEM);
        assert_null(c);
    }
    fail_msg("the copy never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_rule),   cmocka_unit_test(test_valid),
        cmocka_unit_test(test_versions),       cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_entries),        cmocka_unit_test(test_unterminated),
        cmocka_unit_test(test_queries),        cmocka_unit_test(test_image_checks),
        cmocka_unit_test(test_image_read),     cmocka_unit_test(test_image_refusals),
        cmocka_unit_test(test_image_versions), cmocka_unit_test(test_image_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
