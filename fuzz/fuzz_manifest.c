/*
 * fuzz_manifest.c — the loader's manifest reader (src/loader/manifest.c):
 * a `cpex_plugin_list` manifest built from the fuzz bytes, as a hostile or
 * damaged library could present it, validated by cpex__manifest_validate.
 *
 * The harness is as hostile as a library can be without lying about
 * memory it does not have:
 *   - every struct is allocated with exactly the bytes its struct_size
 *     declares (at least its first field; at most the struct this host
 *     knows), so a validator that reads a field the sender did not
 *     declare is caught by AddressSanitizer;
 *   - the object size passed in (the ELF symbol size) is fuzzed as well,
 *     and the manifest allocation is cut to it when it is smaller;
 *   - an absurd entry or hook count comes with a one-element array: the
 *     count must be refused before the array is read;
 *   - strings may be NULL, empty, arbitrary bytes, or not terminated at
 *     all (4097 non-NUL bytes: the longest bounded read of the validator
 *     is 4096 + 1), so every length check must be bounded.
 *
 * Checked: a refusal is one CPEX_E_LOAD item naming the library; an
 * accepted manifest really is sane (1..1024 entries, none NULL, names
 * empty or C identifiers, no duplicates, bounded hook lists), and the
 * helpers that trust a validated manifest (find, named_count,
 * entry_list) agree with it. cpex__abi_compatible is checked against the
 * version rule on the way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/abi.h"
#include "loader/kind.h"
#include "loader/manifest.h"
#include "util/alloc.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reading the input ---- */

typedef struct src {
    const uint8_t *p;
    size_t n;
} src;

static uint8_t u8(src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static uint32_t u32(src *s)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | u8(s);
    return v;
}

/* ---- allocations of one run ---- */

#define MAX_BLOCKS 4096
typedef struct arena {
    void *blocks[MAX_BLOCKS];
    size_t count;
} arena;

static void *arena_alloc(arena *a, size_t size)
{
    if (a->count == MAX_BLOCKS)
        return NULL;
    void *p = calloc(1, size ? size : 1);
    if (p)
        a->blocks[a->count++] = p;
    return p;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->blocks[i]);
    a->count = 0;
}

/* The longest string read the validator may make: TEXT_MAX (4096) + 1. */
#define UNTERMINATED_LEN 4097

static const char *const names[] = {
    "", "allow", "deny", "audit", "a-b", "1x", "x y", "_", "Z9", "allow", "\xff", "a.b",
};

static const char *str(src *s, arena *a)
{
    uint8_t kind = u8(s);
    switch (kind % 8) {
    case 0: /* a plausible name (the common case when the input runs out) */
        return names[u8(s) % (sizeof names / sizeof names[0])];
    case 1: return NULL;
    case 2: { /* not terminated within the longest bounded read */
        char *b = arena_alloc(a, UNTERMINATED_LEN);
        if (b)
            memset(b, 'a' + (kind >> 3) % 26, UNTERMINATED_LEN);
        return b;
    }
    case 3: { /* a long identifier: at, or one past, the entry name limit */
        size_t len = CPEX_ENTRY_NAME_MAX + (kind >> 7);
        char *b = arena_alloc(a, len + 1);
        if (b)
            memset(b, 'e', len);
        return b;
    }
    default: { /* arbitrary bytes, NUL-terminated */
        size_t len = u8(s) % 64;
        if (len > s->n)
            len = s->n;
        char *b = arena_alloc(a, len + 1);
        if (b)
            memcpy(b, s->p, len);
        s->p += len;
        s->n -= len;
        return b;
    }
    }
}

static uint32_t version(src *s)
{
    switch (u8(s) % 4) {
    case 0: return CPEX_ABI_VERSION;
    case 1: return CPEX_ABI_MAKE_VERSION(CPEX_ABI_VERSION_MAJOR, u8(s));
    case 2: {
        uint32_t major = u8(s) % 4;
        return CPEX_ABI_MAKE_VERSION(major, u8(s));
    }
    default: return u32(s);
    }
}

/* A count: mostly small, sometimes at the limit or absurd. */
static size_t count(src *s)
{
    uint8_t c = u8(s);
    switch (c % 8) {
    case 6: return CPEX_MANIFEST_MAX_ENTRIES + (c >> 7); /* 1024 or 1025 */
    case 7: return (c & 8) ? SIZE_MAX : (size_t)u32(s) | 0x10000u;
    default: return c % 6;
    }
}

/* A struct_size: this host's, the 1.0 size, or anything. */
static uint32_t struct_size(src *s, size_t mine, size_t v1_0)
{
    switch (u8(s) % 4) {
    case 0: return (uint32_t)mine;
    case 1: return (uint32_t)v1_0;
    case 2: return (uint32_t)(v1_0 - 1 - u8(s) % 8);
    default: return u32(s);
    }
}

/* Copy `full` into a block of exactly the declared size (min: `first`, max: sizeof). */
static void *declared(arena *a, const void *full, size_t full_size, uint32_t declared_size,
                      size_t first)
{
    size_t n = declared_size < full_size ? declared_size : full_size;
    if (n < first)
        n = first;
    void *b = arena_alloc(a, n);
    if (b)
        memcpy(b, full, n);
    return b;
}

static const cpex_manifest_entry *make_entry(src *s, arena *a)
{
    if (u8(s) % 16 == 15)
        return NULL;
    cpex_manifest_entry e;
    memset(&e, 0, sizeof e);
    e.struct_size = struct_size(s, sizeof e, CPEX_MANIFEST_ENTRY_SIZE_1_0);
    e.entry = str(s, a);
    e.display_name = str(s, a);
    if (!e.display_name && u8(s) % 2)
        e.display_name = "Display";
    e.version = str(s, a);
    e.description = str(s, a);
    e.hook_count = count(s);
    if (e.hook_count || u8(s) % 2) {
        size_t n = e.hook_count <= CPEX_MANIFEST_MAX_ENTRIES ? e.hook_count : 1;
        if (u8(s) % 8 != 7) { /* else: a count but no list */
            const char **hooks = arena_alloc(a, (n ? n : 1) * sizeof *hooks);
            for (size_t i = 0; hooks && i < n; i++)
                hooks[i] = i < 8 ? str(s, a) : "cmf.tool_pre_invoke";
            e.hooks = hooks;
        }
    }
    return declared(a, &e, sizeof e, e.struct_size, sizeof e.struct_size);
}

static void check_abi_rule(uint32_t host, uint32_t plugin)
{
    char why[300];
    int ok = cpex__abi_compatible(host, plugin, why, sizeof why);
    int want = CPEX_ABI_MAJOR(host) == CPEX_ABI_MAJOR(plugin) &&
               CPEX_ABI_MINOR(plugin) <= CPEX_ABI_MINOR(host);
    CHECK(ok == want);
    CHECK(strstr(why, "host has ABI") != NULL);
}

static void check_valid(const cpex_manifest *m)
{
    CHECK(m->struct_size >= CPEX_MANIFEST_SIZE_1_0);
    CHECK(m->entry_count >= 1 && m->entry_count <= CPEX_MANIFEST_MAX_ENTRIES && m->entries);
    size_t named = 0;
    for (size_t i = 0; i < m->entry_count; i++) {
        const cpex_manifest_entry *e = m->entries[i];
        CHECK(e && e->struct_size >= CPEX_MANIFEST_ENTRY_SIZE_1_0);
        CHECK(e->entry && strlen(e->entry) <= CPEX_ENTRY_NAME_MAX);
        CHECK(e->entry[0] == '\0' || cpex__entry_name_valid(e->entry, NULL, 0));
        CHECK(e->display_name && e->display_name[0]);
        CHECK(e->hook_count <= CPEX_MANIFEST_MAX_ENTRIES && (!e->hook_count || e->hooks));
        for (size_t h = 0; h < e->hook_count; h++)
            CHECK(e->hooks[h] && e->hooks[h][0]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(m->entries[j]->entry, e->entry) != 0);
        CHECK(cpex__manifest_find(m, e->entry) == e);
        named += e->entry[0] != '\0';
    }
    CHECK(cpex__manifest_named_count(m) == named);
    CHECK(cpex__manifest_find(m, "no such entry!") == NULL);
    char *list = cpex__manifest_entry_list(m);
    CHECK(list);
    size_t len = strlen(list);
    CHECK(len >= 2 && list[0] == '[' && list[len - 1] == ']');
    cpex__free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    src s = {data, size};
    arena *a = calloc(1, sizeof *a);
    if (!a)
        return 0;

    /* The symbol size the loader learned from ELF (0: unknown). */
    size_t object_size;
    switch (u8(&s) % 4) {
    case 0: object_size = 0; break;
    case 1: object_size = sizeof(cpex_manifest); break;
    case 2: object_size = u8(&s) % 48; break;
    default: object_size = u32(&s) % 70000; break;
    }

    cpex_manifest m;
    memset(&m, 0, sizeof m);
    m.struct_size = struct_size(&s, sizeof m, CPEX_MANIFEST_SIZE_1_0);
    m.abi_version = version(&s);
    m.entry_count = count(&s);
    m.build_info = (u8(&s) % 4 == 0) ? str(&s, a) : NULL;
    if (u8(&s) % 16 != 15) { /* else: a count but no list */
        size_t n = m.entry_count <= CPEX_MANIFEST_MAX_ENTRIES ? m.entry_count : 1;
        const cpex_manifest_entry **entries = arena_alloc(a, (n ? n : 1) * sizeof *entries);
        for (size_t i = 0; entries && i < n; i++)
            entries[i] = make_entry(&s, a);
        m.entries = (const cpex_manifest_entry *const *)entries;
    }

    /* The manifest as the library's data symbol: the declared size, cut
       to the symbol's size when that is known and smaller. */
    uint32_t decl = m.struct_size;
    if (object_size && object_size < decl)
        decl = (uint32_t)object_size;
    const cpex_manifest *sym = declared(a, &m, sizeof m, decl, sizeof m.struct_size);
    if (object_size && object_size < 2 * sizeof(uint32_t))
        sym = declared(a, &m, sizeof m, (uint32_t)object_size, object_size ? object_size : 1);

    if (sym) {
        cpex_error err = CPEX_ERROR_INIT;
        cpex_status st =
            cpex__manifest_validate(sym, CPEX_ABI_VERSION, "/fuzz/libfuzz.so", object_size, &err);
        if (st == CPEX_OK) {
            CHECK(err.count == 0);
            CHECK(CPEX_ABI_MAJOR(sym->abi_version) == CPEX_ABI_VERSION_MAJOR &&
                  CPEX_ABI_MINOR(sym->abi_version) <= CPEX_ABI_VERSION_MINOR);
            CHECK(!object_size || sym->struct_size <= object_size);
            check_valid(sym);
        } else {
            CHECK(st == CPEX_E_LOAD && err.count == 1 && err.code == CPEX_E_LOAD);
            CHECK(strstr(cpex_error_message(&err), "/fuzz/libfuzz.so") != NULL);
        }
        cpex_error_cleanup(&err);
    }

    check_abi_rule(CPEX_ABI_VERSION, m.abi_version);
    uint32_t host = u32(&s);
    check_abi_rule(host, u32(&s));
    arena_free(a);
    free(a);
    return 0;
}
