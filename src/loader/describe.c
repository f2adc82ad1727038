/*
 * describe.c — cpex_library_describe: what a plugin library holds, without
 * creating a plugin (cpex/loader.h).
 *
 * It reads the manifest exactly as a load does (manifest.c through the
 * library's image, image.c), so that a description and a real load agree:
 * the ABI major first, then the layout, every pointer checked against the
 * library's own readable memory. Where a load stops at the first problem,
 * a description goes on where it still makes sense (a newer minor, the
 * entries read before a damaged one) so that the operator sees as much as
 * can be known, and every problem is one line that says what to do.
 */
#include "cpex/loader.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/abi.h"
#include "loader/image.h"
#include "loader/kind.h"
#include "loader/libfile.h"
#include "loader/manifest.h"
#include "loader/trust.h"
#include "util/alloc.h"
#include "util/errors.h"

/* ------------------------------------------------------------------ */
/* Building the info                                                   */
/* ------------------------------------------------------------------ */

typedef struct builder {
    cpex_library_info *info;
    size_t entry_cap, problem_cap, note_cap;
    int nomem;
} builder;

/* Room for one more element in *arr (of `count`, capacity *cap). */
static int grow(builder *b, void **arr, size_t *cap, size_t count, size_t elem)
{
    if (b->nomem)
        return -1;
    if (count < *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 4;
    void *p = cpex__realloc(*arr, n * elem);
    if (!p) {
        b->nomem = 1;
        return -1;
    }
    *arr = p;
    *cap = n;
    return 0;
}

static void add_line(builder *b, char ***list, size_t *count, size_t *cap, const char *fmt,
                     va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    void *arr = *list;
    if (grow(b, &arr, cap, *count, sizeof(char *)) != 0)
        return;
    *list = arr;
    char *s = cpex__strdup(buf);
    if (!s) {
        b->nomem = 1;
        return;
    }
    (*list)[(*count)++] = s;
}

static void problem(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(builder *b, const char *fmt, ...)
{
    cpex_library_info *i = b->info;
    va_list ap;
    va_start(ap, fmt);
    add_line(b, &i->problems, &i->problem_count, &b->problem_cap, fmt, ap);
    va_end(ap);
    i->usable = 0;
}

static void note(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(builder *b, const char *fmt, ...)
{
    cpex_library_info *i = b->info;
    va_list ap;
    va_start(ap, fmt);
    add_line(b, &i->notes, &i->note_count, &b->note_cap, fmt, ap);
    va_end(ap);
}

/* A copy of `s` (NULL stays NULL); notes a failure in `b`. */
static char *copy_str(builder *b, const char *s)
{
    if (!s || b->nomem)
        return NULL;
    char *c = cpex__strdup(s);
    if (!c)
        b->nomem = 1;
    return c;
}

/* A new entry ("" = the default) with its symbol and kind; NULL when out of memory. */
static cpex_library_entry *add_entry(builder *b, const char *entry)
{
    cpex_library_info *i = b->info;
    void *arr = i->entries;
    if (grow(b, &arr, &b->entry_cap, i->entry_count, sizeof *i->entries) != 0)
        return NULL;
    i->entries = arr;
    cpex_library_entry *e = &i->entries[i->entry_count++];
    memset(e, 0, sizeof *e);
    e->entry = copy_str(b, entry);
    e->symbol = entry[0] ? cpex__asprintf(CPEX_ENTRY_SYMBOL_PREFIX "%s", entry)
                         : cpex__strdup(CPEX_ENTRY_SYMBOL);
    e->kind = entry[0] ? cpex__asprintf("lib:%s?entry=%s", i->path, entry)
                       : cpex__asprintf("lib:%s", i->path);
    if (!e->entry || !e->symbol || !e->kind) {
        b->nomem = 1;
        return NULL;
    }
    return e;
}

/* Free `n` strings of `v`, then `v`. */
static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        cpex__free(v[i]);
    cpex__free(v);
}

static void entry_free(cpex_library_entry *e)
{
    cpex__free(e->entry);
    cpex__free(e->symbol);
    cpex__free(e->kind);
    cpex__free(e->display_name);
    cpex__free(e->version);
    cpex__free(e->description);
    free_strings(e->hooks, e->hook_count);
}

void cpex_library_info_free(cpex_library_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->entry_count; i++)
        entry_free(&info->entries[i]);
    cpex__free(info->entries);
    free_strings(info->problems, info->problem_count);
    free_strings(info->notes, info->note_count);
    cpex__free(info->build_info);
    cpex__free(info->path);
    cpex__free(info->sandbox);
    cpex__free(info->sha256);
    cpex__free(info);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                        */
/* ------------------------------------------------------------------ */

/* The entry named by an entry point symbol ("" for the default), or NULL. */
static const char *entry_of_symbol(const char *symbol)
{
    size_t plen = strlen(CPEX_ENTRY_SYMBOL_PREFIX);
    if (strcmp(symbol, CPEX_ENTRY_SYMBOL) == 0)
        return "";
    if (strncmp(symbol, CPEX_ENTRY_SYMBOL_PREFIX, plen) == 0 &&
        cpex__entry_name_valid(symbol + plen, NULL, 0))
        return symbol + plen;
    return NULL;
}

static const cpex_library_entry *entry_with_symbol(const cpex_library_info *i, const char *sym)
{
    for (size_t k = 0; k < i->entry_count; k++)
        if (i->entries[k].symbol && strcmp(i->entries[k].symbol, sym) == 0)
            return &i->entries[k];
    return NULL;
}

/* Whether `e`'s symbol is the library's own function; a problem if not. */
static void check_entry_symbol(builder *b, const cpex__image *im, cpex_library_entry *e)
{
    char why[256];
    cpex__image_sym s;
    const char *label = e->entry[0] ? e->entry : "(default)";
    switch (cpex__image_symbol(im, e->symbol, &s, why, sizeof why)) {
    case CPEX_SYM_FOREIGN:
        problem(b,
                "entry '%s': symbol %s is defined only by a library it depends on, not by "
                "this one; export it from the plugin itself",
                label, e->symbol);
        break;
    case CPEX_SYM_MISSING:
        problem(b,
                "entry '%s': the manifest lists it but the library does not export %s; "
                "rebuild it with the SDK macros, or export the function with default "
                "visibility",
                label, e->symbol);
        break;
    case CPEX_SYM_FOUND:
        if (s.type == CPEX_SYM_DATA || s.type == CPEX_SYM_OTHER)
            problem(b, "entry '%s': %s is exported but is not a function", label, e->symbol);
        else
            e->exported = 1;
        break;
    }
}

/* A library without a manifest: its entries are the entry points it exports. */
static void entries_from_symbols(builder *b, const cpex__image *im, const char *const *syms)
{
    /* The default first (dlsym finds it by name), then what the caller knows. */
    const char *const default_only[] = {CPEX_ENTRY_SYMBOL, NULL};
    const char *const *lists[2] = {default_only, syms};
    for (size_t l = 0; l < 2; l++) {
        for (size_t k = 0; lists[l] && lists[l][k] && !b->nomem; k++) {
            const char *entry = entry_of_symbol(lists[l][k]);
            char why[256];
            cpex__image_sym s;
            if (!entry || entry_with_symbol(b->info, lists[l][k]) ||
                cpex__image_symbol(im, lists[l][k], &s, why, sizeof why) != CPEX_SYM_FOUND)
                continue;
            cpex_library_entry *e = add_entry(b, entry);
            if (e)
                check_entry_symbol(b, im, e);
        }
    }
    if (!b->nomem && b->info->entry_count == 0)
        problem(b,
                "no entry point: the library exports neither %s nor %s<entry>; it is not a "
                "libcpex plugin (or was built with hidden visibility and no export)",
                CPEX_ENTRY_SYMBOL, CPEX_ENTRY_SYMBOL_PREFIX);
}

/* ------------------------------------------------------------------ */
/* The manifest                                                        */
/* ------------------------------------------------------------------ */

static void describe_manifest(builder *b, const cpex__image *im, const cpex__image_sym *ms,
                              const char *const *syms)
{
    cpex_library_info *info = b->info;
    uint32_t host = info->host_abi;
    cpex__manifest_copy *copy = NULL;
    cpex__manifest_report rep;
    cpex__manifest_verdict v = cpex__manifest_read(im, ms, host, &copy, &rep);
    if (v == CPEX_MANIFEST_NOMEM) {
        b->nomem = 1;
        return;
    }
    if (rep.header) {
        info->abi_known = 1;
        info->abi_version = rep.abi_version;
        info->compatible = cpex__abi_compatible(host, rep.abi_version, NULL, 0);
    }
    unsigned hmaj = CPEX_ABI_MAJOR(host), hmin = CPEX_ABI_MINOR(host);
    unsigned pmaj = CPEX_ABI_MAJOR(rep.abi_version), pmin = CPEX_ABI_MINOR(rep.abi_version);
    if (v == CPEX_MANIFEST_OTHER_MAJOR)
        problem(b,
                "incompatible ABI: host has ABI %u.%u, library has ABI %u.%u; the major "
                "versions differ. Rebuild the plugin against the cpex/plugin.h installed "
                "with this host",
                hmaj, hmin, pmaj, pmin);
    else if (rep.header && !info->compatible)
        problem(b,
                "incompatible ABI: host has ABI %u.%u, library has ABI %u.%u; the library's "
                "minor is newer, so it may need host functions this host lacks. Rebuild it "
                "against this host's cpex/plugin.h, or upgrade the host",
                hmaj, hmin, pmaj, pmin);
    if (v == CPEX_MANIFEST_INVALID)
        problem(b, "invalid manifest: %s", rep.detail);
    if (copy) {
        const cpex_manifest *m = &copy->manifest;
        info->build_info = copy_str(b, m->build_info);
        for (size_t k = 0; k < m->entry_count && !b->nomem; k++) {
            const cpex_manifest_entry *me = m->entries[k];
            cpex_library_entry *e = add_entry(b, me->entry);
            if (!e)
                break;
            e->display_name = copy_str(b, me->display_name);
            e->version = copy_str(b, me->version);
            e->description = copy_str(b, me->description);
            if (me->hook_count) {
                e->hooks = cpex__calloc(me->hook_count, sizeof *e->hooks);
                if (!e->hooks) {
                    b->nomem = 1;
                    break;
                }
                e->hook_count = me->hook_count;
                for (size_t h = 0; h < me->hook_count; h++)
                    e->hooks[h] = copy_str(b, me->hooks[h]);
            }
            check_entry_symbol(b, im, e);
        }
        cpex__manifest_copy_free(copy);
    }
    /* Entry points the manifest does not list: the loader will refuse them. */
    for (size_t k = 0; v == CPEX_MANIFEST_VALID && syms && syms[k] && !b->nomem; k++)
        if (entry_of_symbol(syms[k]) && !entry_with_symbol(info, syms[k]))
            note(b,
                 "%s is exported but not listed in the manifest, so the loader will not "
                 "select it; add it to CPEX_PLUGIN_LIST",
                 syms[k]);
}

/* ------------------------------------------------------------------ */
/* The library                                                         */
/* ------------------------------------------------------------------ */

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

static void describe_loaded(builder *b, void *dl, const char *const *syms)
{
    cpex_library_info *info = b->info;
    char why[300];
    cpex__image im;
    if (cpex__image_init(&im, dl, why, sizeof why) != 0) {
        problem(b, "cannot read '%s' safely: %s; refusing to read its manifest", info->path, why);
        return;
    }
    cpex__image_sym ms;
    switch (cpex__image_symbol(&im, CPEX_MANIFEST_SYMBOL, &ms, why, sizeof why)) {
    case CPEX_SYM_FOUND:
        info->has_manifest = 1;
        describe_manifest(b, &im, &ms, syms);
        return;
    case CPEX_SYM_FOREIGN:
        note(b, "%s is defined by a library this one depends on, not by this one; ignored",
             CPEX_MANIFEST_SYMBOL);
        break;
    case CPEX_SYM_MISSING: break;
    }
    note(b,
         "no manifest: the library does not export %s, so it is described from its exported "
         "symbols; names, versions and hooks are known only once a plugin is created, and "
         "the ABI version is checked by the entry point at load time",
         CPEX_MANIFEST_SYMBOL);
    entries_from_symbols(b, &im, syms);
}

/* What a load checks before dlopen (admit.h): a regular file opened
   without blocking (else a problem), its hash, who could replace it (a
   note: a load warns, or refuses under strict_permissions). Whether the
   file may be handed to dlopen. */
static int check_file(builder *b, cpex__libfile *f)
{
    cpex_library_info *info = b->info;
    char why[600];
    switch (cpex__libfile_open(f, info->path, why, sizeof why)) {
    case CPEX_LIBFILE_MISSING:
        problem(b, "cannot load '%s': the file does not exist; check the path", info->path);
        return 0;
    case CPEX_LIBFILE_OTHER: problem(b, "cannot load '%s': %s", info->path, why); return 0;
    case CPEX_LIBFILE_OK: break;
    }
    char hex[CPEX__SHA256_HEX + 1];
    if (cpex__libfile_sha256(f, hex, why, sizeof why) == 0)
        info->sha256 = copy_str(b, hex);
    else
        problem(b, "library '%s' %s", info->path, why);
    /* The directories above it are judged along its absolute path. */
    char *real = realpath(info->path, NULL);
    char found[1536];
    int findings = cpex__trust_check(&f->st, real ? real : info->path, NULL, found, sizeof found);
    free(real); /* from libc */
    if (findings > 0)
        note(b,
             "users other than root and this user could replace this library: %s. A load "
             "warns about it, and refuses it under plugin_settings.strict_permissions: true",
             found);
    return !b->nomem;
}

cpex_status cpex_library_describe(const char *path, const char *const *exported_symbols,
                                  cpex_library_info **out, cpex_error *err)
{
    if (out)
        *out = NULL;
    if (!path || !*path || !out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex_library_describe: %s",
                               out ? "no path" : "NULL output");
    builder b;
    memset(&b, 0, sizeof b);
    cpex_library_info *info = b.info = cpex__calloc(1, sizeof *info);
    if (!info)
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory describing '%s'", path);
    info->host_abi = CPEX_ABI_VERSION;
    info->compatible = -1;
    info->usable = 1;
    /* Never a bare name: dlopen would search the system library path. */
    info->path = strchr(path, '/') ? cpex__strdup(path) : cpex__asprintf("./%s", path);
    if (!info->path)
        b.nomem = 1;
    else if (strpbrk(info->path, "?#"))
        note(&b, "the path contains '?' or '#', which a kind cannot hold; rename or symlink the "
                 "file before using it in kind:");

    void *dl = NULL;
    cpex__libfile file = {-1, {0}};
    if (!b.nomem && check_file(&b, &file)) {
        /* RTLD_LOCAL: its symbols stay out of our namespace, as in a load.
           RTLD_NOW: an unresolved symbol shows here, not at the first call. */
        dlerror();
        dl = dlopen(info->path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
            const char *e = dlerror();
            problem(&b, "cannot load '%s': %s; %s", info->path, e ? e : "unknown error",
                    dlopen_hint(e ? e : ""));
        } else {
            char why[400];
            if (cpex__libfile_same(&file, info->path, why, sizeof why) != 0) {
                problem(&b, "library '%s' %s; describe it again once nothing rewrites it",
                        info->path, why);
                dlclose(dl);
                dl = NULL;
            }
        }
    }
    cpex__libfile_close(&file);
    if (dl) {
        info->loaded = 1;
        describe_loaded(&b, dl, exported_symbols);
        dlclose(dl);
    }
    if (b.nomem) {
        cpex_library_info_free(info);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory describing '%s'", path);
    }
    *out = info;
    return CPEX_OK;
}
