/*
 * libinfo.c — see libinfo.h.
 *
 * The manifest is data in a file we did not write: a stale build, another
 * SDK or a hostile library may present any bytes and any pointers. So the
 * reader checks every pointer against the library's own mapped, readable
 * segments before following it, every size and count against a sane bound,
 * and every string for a terminator within the segment, and reports what is
 * wrong instead of crashing. It mirrors the loader's rules (ABI major first,
 * then the layout) so that inspect and a real load agree.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpex/cpex.h>

#include "cli.h"
#include "elfsyms.h"
#include "libinfo.h"

#ifndef CPEX_DEFAULT_PLUGIN_DIR
#define CPEX_DEFAULT_PLUGIN_DIR "plugins"
#endif

/* The same bounds as the loader (src/loader/manifest.h, kind.h). */
#define MANIFEST_SIZE_1_0 (offsetof(cpex_manifest, build_info) + sizeof(const char *))
#define ENTRY_SIZE_1_0 (offsetof(cpex_manifest_entry, hooks) + sizeof(const char *const *))
#define STRUCT_SIZE_MAX 65536u
#define MAX_ENTRIES 1024u
#define TEXT_MAX 4096u
#define ENTRY_NAME_MAX 200u

/* ------------------------------------------------------------------ */
/* The library's mapped memory                                         */
/* ------------------------------------------------------------------ */

typedef struct segment {
    uintptr_t lo, hi;
} segment;

typedef struct image {
    struct link_map *lm;
    segment seg[32];
    size_t nseg;
} image;

static int collect_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    image *im = data;
    if (info->dlpi_addr != im->lm->l_addr || !info->dlpi_name ||
        strcmp(info->dlpi_name, im->lm->l_name) != 0)
        return 0;
    for (size_t i = 0; i < info->dlpi_phnum && im->nseg < 32; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R)) {
            im->seg[im->nseg].lo = info->dlpi_addr + ph->p_vaddr;
            im->seg[im->nseg].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
            im->nseg++;
        }
    }
    return 1;
}

/* How many bytes from p on are readable inside one segment (0: p is not inside). */
static size_t room(const image *im, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    for (size_t i = 0; i < im->nseg; i++) {
        if (a >= im->seg[i].lo && a < im->seg[i].hi)
            return im->seg[i].hi - a;
    }
    return 0;
}

/* Whether [p, p+size) lies in the library and p is aligned for `align`. */
static bool readable(const image *im, const void *p, size_t size, size_t align)
{
    if (!p || ((uintptr_t)p % align) != 0)
        return false;
    return room(im, p) >= size;
}

/* NULL if `s` is a terminated string of at most TEXT_MAX bytes inside the
   library (and, unless allow_empty, not empty); else what is wrong. */
static const char *text_problem(const image *im, const char *s, bool allow_empty)
{
    if (!s)
        return "is NULL";
    size_t r = room(im, s);
    if (r == 0)
        return "points outside the library";
    size_t max = r < TEXT_MAX + 1 ? r : TEXT_MAX + 1;
    size_t n = strnlen(s, max);
    if (n == max)
        return "is not a terminated string of reasonable length";
    if (n == 0 && !allow_empty)
        return "is empty";
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The description being built                                         */
/* ------------------------------------------------------------------ */

typedef struct desc {
    json_t *doc;
    json_t *problems;
    json_t *notes;
    bool usable;
} desc;

static void add_msg(json_t *list, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    json_array_append_new(list, cli_json_str(buf));
}

static void problem(desc *d, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void problem(desc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_msg(d->problems, fmt, ap);
    va_end(ap);
    d->usable = false;
}

static void note(desc *d, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(desc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_msg(d->notes, fmt, ap);
    va_end(ap);
}

static json_t *version_json(uint32_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%u.%u", (unsigned)CPEX_ABI_MAJOR(v), (unsigned)CPEX_ABI_MINOR(v));
    return json_string(buf);
}

/* ------------------------------------------------------------------ */
/* Finding the file                                                    */
/* ------------------------------------------------------------------ */

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The path to open. A name with a '/' is taken as it is. A bare name is
 * tried in the current directory, then as lib<name>.so and <name> in the
 * build's plugin directory. Never a bare name for dlopen, which would
 * search the system library path instead.
 */
static char *find_library(const char *arg)
{
    char *p = NULL;
    if (strchr(arg, '/'))
        return strdup(arg);
    if (is_file(arg))
        return asprintf(&p, "./%s", arg) < 0 ? NULL : p;
    if (asprintf(&p, "%s/lib%s.so", CPEX_DEFAULT_PLUGIN_DIR, arg) >= 0 && is_file(p))
        return p;
    free(p);
    p = NULL;
    if (asprintf(&p, "%s/%s", CPEX_DEFAULT_PLUGIN_DIR, arg) >= 0 && is_file(p))
        return p;
    free(p);
    return asprintf(&p, "./%s", arg) < 0 ? NULL : p;
}

/* What to do about a failed dlopen, from the words of dlerror(). */
static const char *dlopen_hint(const char *e)
{
    if (strstr(e, "invalid ELF header") || strstr(e, "file too short"))
        return "the file is not a shared library; give the plugin's .so file";
    if (strstr(e, "wrong ELF class") || strstr(e, "ELF file's machine") ||
        strstr(e, "ELF file OS ABI") || strstr(e, "ELF file data encoding"))
        return "the library was built for another architecture; rebuild it for this machine "
               "(file(1) shows what it was built for)";
    if (strstr(e, "cannot open shared object file"))
        return "a library it depends on is missing; ldd(1) on the plugin shows which";
    if (strstr(e, "undefined symbol"))
        return "it needs a symbol nothing loaded provides; a plugin links nothing of libcpex and "
               "calls the host only through the table it is handed";
    if (strstr(e, "position-independent executable"))
        return "that is a program, not a shared library; build the plugin with -shared";
    return "check that it is a plugin built for this machine and that its dependencies are "
           "installed (ldd(1))";
}

/* ------------------------------------------------------------------ */
/* Symbols                                                             */
/* ------------------------------------------------------------------ */

/* A symbol of the library itself (not of a dependency), with its ELF entry. */
static void *own_symbol(void *dl, const image *im, const char *name, const ElfW(Sym) **esym,
                        bool *foreign)
{
    dlerror();
    void *sym = dlsym(dl, name);
    *foreign = false;
    if (esym)
        *esym = NULL;
    if (!sym)
        return NULL;
    Dl_info di;
    struct link_map *owner = NULL;
    if (dladdr1(sym, &di, (void **)&owner, RTLD_DL_LINKMAP) && owner && owner != im->lm) {
        *foreign = true; /* dlsym also searches the dependencies */
        return NULL;
    }
    ElfW(Sym) *es = NULL;
    if (esym && dladdr1(sym, &di, (void **)&es, RTLD_DL_SYMENT) && es)
        *esym = es;
    return sym;
}

static bool is_c_identifier(const char *s)
{
    if (!s || !*s || strlen(s) > ENTRY_NAME_MAX)
        return false;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    }
    return true;
}

/* What the operator writes in kind: for an entry ("" = the default). */
static json_t *kind_for(const char *abs, const char *entry)
{
    char *k = NULL;
    if (entry[0] ? asprintf(&k, "lib:%s?entry=%s", abs, entry) < 0
                 : asprintf(&k, "lib:%s", abs) < 0)
        return json_null();
    json_t *j = cli_json_str(k);
    free(k);
    return j;
}

static char *entry_symbol(const char *entry)
{
    char *s = NULL;
    if (entry[0] ? asprintf(&s, "%s%s", CPEX_ENTRY_SYMBOL_PREFIX, entry) < 0
                 : asprintf(&s, "%s", CPEX_ENTRY_SYMBOL) < 0)
        return NULL;
    return s;
}

/* Check that entry point `entry` is exported as a function of the library. */
static bool check_entry_symbol(desc *d, void *dl, const image *im, const char *entry,
                               json_t *ej)
{
    char *name = entry_symbol(entry);
    if (!name)
        return false;
    const ElfW(Sym) *es = NULL;
    bool foreign = false;
    void *sym = own_symbol(dl, im, name, &es, &foreign);
    bool ok = sym != NULL;
    if (foreign)
        problem(d, "entry '%s': symbol %s is defined only by a library it depends on, not by this "
                   "one; export it from the plugin itself",
                entry[0] ? entry : "(default)", name);
    else if (!sym)
        problem(d, "entry '%s': the manifest lists it but the library does not export %s; "
                   "rebuild it with the SDK macros, or export the function with default "
                   "visibility",
                entry[0] ? entry : "(default)", name);
    else if (es && ELF64_ST_TYPE(es->st_info) != STT_FUNC &&
             ELF64_ST_TYPE(es->st_info) != STT_GNU_IFUNC) {
        problem(d, "entry '%s': %s is exported but is not a function", entry[0] ? entry : "(default)",
                name);
        ok = false;
    }
    json_object_set_new(ej, "symbol", cli_json_str(name));
    json_object_set_new(ej, "exported", json_boolean(ok));
    free(name);
    return ok;
}

/* ------------------------------------------------------------------ */
/* The manifest                                                        */
/* ------------------------------------------------------------------ */

static json_t *opt_text(const char *s) { return s ? cli_json_str(s) : json_null(); }

/* Read and check one entry; adds it to `entries` when it could be read. */
static bool read_entry(desc *d, const image *im, const cpex_manifest_entry *ep, size_t i,
                       json_t *entries, json_t *seen, void *dl, const char *abs)
{
    cpex_manifest_entry e;
    const char *p;
    if (!ep) {
        problem(d, "invalid manifest: entry %zu is NULL", i);
        return false;
    }
    if (!readable(im, ep, sizeof(uint32_t), _Alignof(cpex_manifest_entry))) {
        problem(d, "invalid manifest: entry %zu points outside the library (or is misaligned)", i);
        return false;
    }
    if (ep->struct_size < ENTRY_SIZE_1_0 || ep->struct_size > STRUCT_SIZE_MAX) {
        problem(d, "invalid manifest: entry %zu has struct_size %u (at least %zu expected)", i,
                (unsigned)ep->struct_size, (size_t)ENTRY_SIZE_1_0);
        return false;
    }
    /* Read what both sides know; a longer (newer) entry's tail is not ours. */
    size_t n = ep->struct_size < sizeof e ? ep->struct_size : sizeof e;
    if (!readable(im, ep, n, 1)) {
        problem(d, "invalid manifest: entry %zu runs past the end of the library's data", i);
        return false;
    }
    memset(&e, 0, sizeof e);
    memcpy(&e, ep, n);
    if ((p = text_problem(im, e.entry, true))) {
        problem(d, "invalid manifest: the name of entry %zu %s", i, p);
        return false;
    }
    if (e.entry[0] && !is_c_identifier(e.entry)) {
        problem(d, "invalid manifest: entry name '%.200s' is not a C identifier of at most %u "
                   "characters",
                e.entry, ENTRY_NAME_MAX);
        return false;
    }
    const char *label = e.entry[0] ? e.entry : "(default)";
    if (json_object_get(seen, e.entry)) {
        problem(d, "invalid manifest: entry '%s' is listed twice", label);
        return false;
    }
    json_object_set_new(seen, e.entry, json_true());
    if ((p = text_problem(im, e.display_name, false))) {
        problem(d, "invalid manifest: the display name of entry '%s' %s", label, p);
        return false;
    }
    if (e.version && (p = text_problem(im, e.version, true))) {
        problem(d, "invalid manifest: the version of entry '%s' %s", label, p);
        return false;
    }
    if (e.description && (p = text_problem(im, e.description, true))) {
        problem(d, "invalid manifest: the description of entry '%s' %s", label, p);
        return false;
    }
    if (e.hook_count > MAX_ENTRIES) {
        problem(d, "invalid manifest: entry '%s' claims %zu hooks (at most %u accepted)", label,
                e.hook_count, MAX_ENTRIES);
        return false;
    }
    if (e.hook_count &&
        !readable(im, e.hooks, e.hook_count * sizeof(const char *), _Alignof(const char *))) {
        problem(d, "invalid manifest: the hook list of entry '%s' points outside the library", label);
        return false;
    }
    json_t *hooks = json_array();
    for (size_t h = 0; h < e.hook_count; h++) {
        if ((p = text_problem(im, e.hooks[h], false))) {
            problem(d, "invalid manifest: hook %zu of entry '%s' %s", h, label, p);
            json_decref(hooks);
            return false;
        }
        json_array_append_new(hooks, cli_json_str(e.hooks[h]));
    }
    json_t *ej = json_object();
    json_object_set_new(ej, "entry", cli_json_str(e.entry));
    json_object_set_new(ej, "display_name", cli_json_str(e.display_name));
    json_object_set_new(ej, "version", opt_text(e.version));
    json_object_set_new(ej, "description", opt_text(e.description));
    json_object_set_new(ej, "hooks", hooks);
    check_entry_symbol(d, dl, im, e.entry, ej);
    json_object_set_new(ej, "kind", kind_for(abs, e.entry));
    json_array_append_new(entries, ej);
    return true;
}

/* Read the manifest at `m`; fills abi, compatible, build_info and entries.
   Returns whether every entry could be read. */
static bool read_manifest(desc *d, const image *im, const cpex_manifest *m, const ElfW(Sym) *es,
                          void *dl, const char *abs, uint32_t host_abi)
{
    json_t *doc = d->doc;
    size_t object_size = es ? (size_t)es->st_size : 0;
    if (es && ELF64_ST_TYPE(es->st_info) != STT_OBJECT && ELF64_ST_TYPE(es->st_info) != STT_NOTYPE) {
        problem(d, "invalid manifest: %s is exported but is not a data object (a function?)",
                CPEX_MANIFEST_SYMBOL);
        return false;
    }
    /* struct_size and abi_version come first in every version of the ABI. */
    if (!readable(im, m, 2 * sizeof(uint32_t), _Alignof(cpex_manifest)) ||
        (object_size && object_size < 2 * sizeof(uint32_t))) {
        problem(d, "invalid manifest: %s is too small or lies outside the library's data",
                CPEX_MANIFEST_SYMBOL);
        return false;
    }
    uint32_t size = m->struct_size, abi = m->abi_version;
    json_object_set_new(doc, "abi", version_json(abi));
    /* The major decides alone, and is checked before the layout: another
       major may lay the rest out differently. */
    bool compatible = CPEX_ABI_MAJOR(abi) == CPEX_ABI_MAJOR(host_abi) &&
                      CPEX_ABI_MINOR(abi) <= CPEX_ABI_MINOR(host_abi);
    json_object_set_new(doc, "compatible", json_boolean(compatible));
    if (CPEX_ABI_MAJOR(abi) != CPEX_ABI_MAJOR(host_abi)) {
        problem(d, "incompatible ABI: host has ABI %u.%u, library has ABI %u.%u; the major "
                   "versions differ. Rebuild the plugin against the cpex/plugin.h installed "
                   "with this host",
                (unsigned)CPEX_ABI_MAJOR(host_abi), (unsigned)CPEX_ABI_MINOR(host_abi),
                (unsigned)CPEX_ABI_MAJOR(abi), (unsigned)CPEX_ABI_MINOR(abi));
        return false;
    }
    if (!compatible)
        problem(d, "incompatible ABI: host has ABI %u.%u, library has ABI %u.%u; the library's "
                   "minor is newer, so it may need host functions this host lacks. Rebuild it "
                   "against this host's cpex/plugin.h, or upgrade the host",
                (unsigned)CPEX_ABI_MAJOR(host_abi), (unsigned)CPEX_ABI_MINOR(host_abi),
                (unsigned)CPEX_ABI_MAJOR(abi), (unsigned)CPEX_ABI_MINOR(abi));
    if (size < MANIFEST_SIZE_1_0 || size > STRUCT_SIZE_MAX || (object_size && size > object_size)) {
        problem(d, "invalid manifest: struct_size is %u (at least %zu expected%s)", (unsigned)size,
                (size_t)MANIFEST_SIZE_1_0,
                object_size && size > object_size ? ", and no more than the symbol's size" : "");
        return false;
    }
    cpex_manifest mf;
    size_t n = size < sizeof mf ? size : sizeof mf;
    if (!readable(im, m, n, 1)) {
        problem(d, "invalid manifest: it runs past the end of the library's data");
        return false;
    }
    memset(&mf, 0, sizeof mf);
    memcpy(&mf, m, n);
    const char *p;
    if (mf.build_info && (p = text_problem(im, mf.build_info, true)))
        problem(d, "invalid manifest: its build information %s", p);
    else
        json_object_set_new(doc, "build_info", opt_text(mf.build_info));
    if (mf.entry_count == 0) {
        problem(d, "invalid manifest: it lists no entries");
        return false;
    }
    if (mf.entry_count > MAX_ENTRIES) {
        problem(d, "invalid manifest: it claims %zu entries (at most %u accepted)", mf.entry_count,
                MAX_ENTRIES);
        return false;
    }
    if (!readable(im, mf.entries, mf.entry_count * sizeof(void *), _Alignof(void *))) {
        problem(d, "invalid manifest: its entry list points outside the library");
        return false;
    }
    json_t *entries = json_object_get(doc, "entries");
    json_t *seen = json_object();
    bool complete = true;
    for (size_t i = 0; complete && i < mf.entry_count; i++)
        complete = read_entry(d, im, mf.entries[i], i, entries, seen, dl, abs);
    /* After garbage, the rest is not worth reading. */
    json_decref(seen);
    return complete;
}

/* Entries made up from exported symbols, for a library without a manifest. */
static void entries_from_symbols(desc *d, char **symbols, const char *abs)
{
    json_t *entries = json_object_get(d->doc, "entries");
    size_t plen = strlen(CPEX_ENTRY_SYMBOL_PREFIX);
    for (size_t i = 0; symbols && symbols[i]; i++) {
        const char *entry;
        if (strcmp(symbols[i], CPEX_ENTRY_SYMBOL) == 0)
            entry = "";
        else if (strncmp(symbols[i], CPEX_ENTRY_SYMBOL_PREFIX, plen) == 0 &&
                 is_c_identifier(symbols[i] + plen))
            entry = symbols[i] + plen;
        else
            continue;
        json_t *ej = json_object();
        json_object_set_new(ej, "entry", cli_json_str(entry));
        json_object_set_new(ej, "display_name", json_null());
        json_object_set_new(ej, "version", json_null());
        json_object_set_new(ej, "description", json_null());
        json_object_set_new(ej, "hooks", json_null());
        json_object_set_new(ej, "symbol", cli_json_str(symbols[i]));
        json_object_set_new(ej, "exported", json_true());
        json_object_set_new(ej, "kind", kind_for(abs, entry));
        json_array_append_new(entries, ej);
    }
    if (json_array_size(entries) == 0)
        problem(d, "no entry point: the library exports neither %s nor %s<entry>; it is not a "
                   "libcpex plugin (or was built with hidden visibility and no export)",
                CPEX_ENTRY_SYMBOL, CPEX_ENTRY_SYMBOL_PREFIX);
}

/* Exported entry symbols the manifest does not list: the loader refuses them. */
static void unlisted_symbols(desc *d, char **symbols)
{
    json_t *entries = json_object_get(d->doc, "entries");
    for (size_t i = 0; symbols && symbols[i]; i++) {
        bool listed = false;
        size_t k;
        json_t *ej;
        json_array_foreach(entries, k, ej) {
            const char *s = json_string_value(json_object_get(ej, "symbol"));
            listed = listed || (s && strcmp(s, symbols[i]) == 0);
        }
        if (!listed)
            note(d, "%s is exported but not listed in the manifest, so the loader will not "
                    "select it; add it to CPEX_PLUGIN_LIST",
                 symbols[i]);
    }
}

json_t *cli_describe_library(const char *arg)
{
    desc d;
    d.doc = json_object();
    d.problems = json_array();
    d.notes = json_array();
    d.usable = true;
    if (!d.doc || !d.problems || !d.notes) {
        json_decref(d.doc);
        json_decref(d.problems);
        json_decref(d.notes);
        return NULL;
    }
    uint32_t host_abi = cpex_host_api_get()->abi_version;
    json_t *doc = d.doc;
    json_object_set_new(doc, "library", cli_json_str(arg));
    json_object_set_new(doc, "path", json_null());
    json_object_set_new(doc, "loaded", json_false());
    json_object_set_new(doc, "host_abi", version_json(host_abi));
    json_object_set_new(doc, "abi", json_null());
    json_object_set_new(doc, "compatible", json_null());
    json_object_set_new(doc, "manifest", json_false());
    json_object_set_new(doc, "build_info", json_null());
    json_object_set_new(doc, "entries", json_array());
    json_object_set_new(doc, "symbols", json_array());

    char *path = find_library(arg), *abs = NULL, **symbols = NULL;
    void *dl = NULL;
    if (!path) {
        problem(&d, "out of memory");
        goto finish;
    }
    abs = realpath(path, NULL);
    if (!abs) {
        problem(&d, "cannot find '%s': %s%s", path, strerror(errno),
                strchr(arg, '/') ? ""
                                 : "; a bare name is looked up in the current directory and as "
                                   "lib<name>.so in " CPEX_DEFAULT_PLUGIN_DIR);
        goto finish;
    }
    json_object_set_new(doc, "path", cli_json_str(abs));
    if (strpbrk(abs, "?#"))
        note(&d, "the path contains '?' or '#', which a kind cannot hold; rename or symlink the "
                 "file before using it in kind:");

    /* RTLD_LOCAL: its symbols stay out of our namespace, as in the loader.
       RTLD_NOW: an unresolved symbol shows here, not at the first call. */
    dl = dlopen(abs, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        problem(&d, "cannot load '%s': %s; %s", abs, e ? e : "unknown error",
                dlopen_hint(e ? e : ""));
        goto finish;
    }
    json_object_set_new(doc, "loaded", json_true());
    image im;
    memset(&im, 0, sizeof im);
    if (dlinfo(dl, RTLD_DI_LINKMAP, &im.lm) != 0 || !im.lm) {
        problem(&d, "cannot find where '%s' is mapped: %s", abs, dlerror());
        goto finish;
    }
    dl_iterate_phdr(collect_segments, &im);
    if (im.nseg == 0) {
        problem(&d, "cannot find the mapped segments of '%s'; refusing to read its manifest", abs);
        goto finish;
    }

    char why[256];
    symbols = cli_elf_exported(abs, CPEX_ENTRY_SYMBOL, why, sizeof why);
    if (!symbols)
        note(&d, "cannot list the exported symbols (%s); entry symbols are checked by name only",
             why);
    json_t *sj = json_object_get(doc, "symbols");
    for (size_t i = 0; symbols && symbols[i]; i++)
        json_array_append_new(sj, cli_json_str(symbols[i]));

    const ElfW(Sym) *es = NULL;
    bool foreign = false;
    const cpex_manifest *m = own_symbol(dl, &im, CPEX_MANIFEST_SYMBOL, &es, &foreign);
    if (foreign)
        note(&d, "%s is defined by a library this one depends on, not by this one; ignored",
             CPEX_MANIFEST_SYMBOL);
    if (m) {
        json_object_set_new(doc, "manifest", json_true());
        if (read_manifest(&d, &im, m, es, dl, abs, host_abi) && symbols)
            unlisted_symbols(&d, symbols);
    } else {
        note(&d, "no manifest: the library does not export %s, so it is described from its "
                 "exported symbols; names, versions and hooks are known only once a plugin is "
                 "created, and the ABI version is checked by the entry point at load time",
             CPEX_MANIFEST_SYMBOL);
        if (!symbols) {
            /* Without the symbol table, only the default entry can be found. */
            char *one[2] = {NULL, NULL};
            bool f = false;
            if (own_symbol(dl, &im, CPEX_ENTRY_SYMBOL, NULL, &f))
                one[0] = CPEX_ENTRY_SYMBOL;
            entries_from_symbols(&d, one, abs);
        } else {
            entries_from_symbols(&d, symbols, abs);
        }
    }

finish:
    if (dl)
        dlclose(dl);
    cli_strv_free(symbols);
    free(abs);
    free(path);
    json_object_set_new(doc, "problems", d.problems);
    json_object_set_new(doc, "notes", d.notes);
    json_object_set_new(doc, "usable", json_boolean(d.usable));
    return doc;
}
