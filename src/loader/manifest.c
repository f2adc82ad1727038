/* manifest.c — the version rule, and reading a manifest safely; see manifest.h. */
#include "loader/manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "loader/kind.h"
#include "util/alloc.h"
#include "util/errors.h"

/* Longest display name, version, description or hook name we accept: a
   string that runs on further is garbage (or not terminated at all). */
#define TEXT_MAX 4096u

int cpex__abi_compatible(uint32_t host, uint32_t plugin, char *why, size_t cap)
{
    uint32_t hmaj = CPEX_ABI_MAJOR(host), hmin = CPEX_ABI_MINOR(host);
    uint32_t pmaj = CPEX_ABI_MAJOR(plugin), pmin = CPEX_ABI_MINOR(plugin);
    /* The major decides alone: minors of different majors mean nothing. */
    int ok = pmaj == hmaj && pmin <= hmin;
    if (why && cap) {
        const char *rule = "";
        if (pmaj != hmaj)
            rule = "; the major versions differ, and a plugin loads only into a host of "
                   "its own major";
        else if (pmin > hmin)
            rule = "; the plugin's minor is newer than the host's, so it may need host "
                   "functions this host lacks";
        snprintf(why, cap, "host has ABI %u.%u, plugin has ABI %u.%u%s", hmaj, hmin, pmaj, pmin,
                 rule);
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* The copy                                                            */
/* ------------------------------------------------------------------ */

/* The strings of a copy live in blocks (a load reads the manifest of its
 * library for every plugin: one allocation per string was a third of it). */
typedef struct cpex__manifest_block {
    struct cpex__manifest_block *next;
    size_t used, cap;
    char data[];
} cpex__manifest_block;

#define BLOCK_MIN 2048

/* A copy of `src` in the copy's blocks; NULL on OOM. */
static const char *copy_string(cpex__manifest_copy *copy, const char *src)
{
    size_t len = strlen(src) + 1;
    cpex__manifest_block *b = copy->strings;
    if (!b || b->cap - b->used < len) {
        size_t cap = len > BLOCK_MIN ? len : BLOCK_MIN;
        b = cpex__malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = copy->strings;
        b->used = 0;
        b->cap = cap;
        copy->strings = b;
    }
    char *dst = b->data + b->used;
    memcpy(dst, src, len);
    b->used += len;
    return dst;
}

cpex__manifest_copy *cpex__manifest_copy_ref(cpex__manifest_copy *copy)
{
    if (copy)
        atomic_fetch_add(&copy->extra_refs, 1);
    return copy;
}

void cpex__manifest_copy_free(cpex__manifest_copy *copy)
{
    if (!copy)
        return;
    /* fetch_sub returns the holders beyond this one: none, free it. */
    if (atomic_fetch_sub(&copy->extra_refs, 1) > 0)
        return;
    for (size_t i = 0; copy->store && i < copy->capacity; i++)
        cpex__free((void *)copy->store[i].hooks);
    cpex__free(copy->store);
    cpex__free(copy->list);
    while (copy->strings) {
        cpex__manifest_block *b = copy->strings;
        copy->strings = b->next;
        cpex__free(b);
    }
    cpex__free(copy);
}

/* ------------------------------------------------------------------ */
/* The reader                                                          */
/* ------------------------------------------------------------------ */

typedef struct reader {
    const cpex__image *im;
    cpex__manifest_report *rep;
    cpex__manifest_copy *copy; /* NULL: check only, allocate nothing */
    int nomem;
} reader;

static cpex__manifest_verdict invalid(reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static cpex__manifest_verdict invalid(reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->rep->detail, sizeof r->rep->detail, fmt, ap);
    va_end(ap);
    return CPEX_MANIFEST_INVALID;
}

/* A checked string into the copy (when copying). Returns 0, or -1 on OOM. */
static int keep(reader *r, const char **dst, const char *src)
{
    if (!r->copy || !src)
        return 0;
    *dst = copy_string(r->copy, src);
    if (*dst)
        return 0;
    r->nomem = 1;
    return -1;
}

/* `name` (a bounded string) for a message: control bytes become '?'. */
static const char *shown(const char *name, char *buf, size_t cap)
{
    size_t n = 0;
    for (; name[n] && n + 1 < cap; n++)
        buf[n] = (unsigned char)name[n] < 0x20 || name[n] == 0x7f ? '?' : name[n];
    buf[n] = '\0';
    return buf;
}

/* Entry `i`, whose pointer is `ep`; `names` holds the names of entries 0..i-1. */
static cpex__manifest_verdict read_entry(reader *r, const cpex_manifest_entry *ep, size_t i,
                                         const char **names)
{
    const char *p;
    char why[200], buf[CPEX_ENTRY_NAME_MAX + 1];
    if (!ep)
        return invalid(r, "entry %zu is NULL", i);
    /* struct_size first: only it is common to every version. */
    if ((p = cpex__image_check(r->im, ep, sizeof(uint32_t), _Alignof(cpex_manifest_entry))))
        return invalid(r, "entry %zu %s", i, p);
    uint32_t size;
    memcpy(&size, ep, sizeof size);
    if (size < CPEX_MANIFEST_ENTRY_SIZE_1_0 || size > CPEX_ABI_STRUCT_SIZE_MAX)
        return invalid(r, "entry %zu has struct_size %u (at least %zu expected)", i, size,
                       (size_t)CPEX_MANIFEST_ENTRY_SIZE_1_0);
    /* What both sides know; a longer (newer) entry's tail is not ours. */
    cpex_manifest_entry e;
    size_t n = size < sizeof e ? size : sizeof e;
    if ((p = cpex__image_check(r->im, ep, n, 1)))
        return invalid(r, "entry %zu %s", i, p);
    memset(&e, 0, sizeof e);
    memcpy(&e, ep, n);

    cpex_manifest_entry *dst = r->copy ? &r->copy->store[i] : NULL;
    if ((p = cpex__image_text(r->im, e.entry, CPEX_ENTRY_NAME_MAX, 1)))
        return invalid(r, "the name of entry %zu %s", i, p);
    if (e.entry[0] != '\0' && !cpex__entry_name_valid(e.entry, why, sizeof why))
        return invalid(r,
                       "entry name '%s' %s ('%s' is not a C identifier, so no entry point "
                       "can be named after it)",
                       shown(e.entry, buf, sizeof buf), why, buf);
    const char *label = e.entry[0] ? e.entry : "(default)";
    for (size_t j = 0; j < i; j++)
        if (strcmp(names[j], e.entry) == 0)
            return invalid(r, "entry '%s' is listed twice", label);
    if ((p = cpex__image_text(r->im, e.display_name, TEXT_MAX, 0)))
        return invalid(r, "the display name of entry '%s' %s", label, p);
    /* version and description are optional (NULL = not given). */
    if (e.version && (p = cpex__image_text(r->im, e.version, TEXT_MAX, 1)))
        return invalid(r, "the version of entry '%s' %s", label, p);
    if (e.description && (p = cpex__image_text(r->im, e.description, TEXT_MAX, 1)))
        return invalid(r, "the description of entry '%s' %s", label, p);
    if (e.hook_count > CPEX_MANIFEST_MAX_ENTRIES)
        return invalid(r, "entry '%s' claims %zu hooks (at most %u accepted)", label, e.hook_count,
                       CPEX_MANIFEST_MAX_ENTRIES);
    if (e.hook_count && !e.hooks)
        return invalid(r, "entry '%s' has a hook count but no hook list", label);
    if (e.hook_count && (p = cpex__image_check(r->im, e.hooks, e.hook_count * sizeof(const char *),
                                               _Alignof(const char *))))
        return invalid(r, "the hook list of entry '%s' %s", label, p);
    if (dst && (keep(r, &dst->entry, e.entry) || keep(r, &dst->display_name, e.display_name) ||
                keep(r, &dst->version, e.version) || keep(r, &dst->description, e.description)))
        return CPEX_MANIFEST_NOMEM;
    const char **hooks = NULL;
    if (dst && e.hook_count) {
        hooks = cpex__calloc(e.hook_count, sizeof *hooks);
        if (!hooks)
            return CPEX_MANIFEST_NOMEM;
        dst->hooks = hooks;
        dst->hook_count = e.hook_count;
    }
    for (size_t h = 0; h < e.hook_count; h++) {
        const char *hook;
        memcpy(&hook, &e.hooks[h], sizeof hook);
        if ((p = cpex__image_text(r->im, hook, TEXT_MAX, 0)))
            return invalid(r, "a hook name of entry '%s' %s", label, p);
        if (hooks && keep(r, &hooks[h], hook))
            return CPEX_MANIFEST_NOMEM;
    }
    if (dst)
        dst->struct_size = (uint32_t)sizeof *dst;
    names[i] = dst ? dst->entry : e.entry;
    return CPEX_MANIFEST_VALID;
}

/* Steps 4 and 5 of manifest.h, once the header is known to be of our major. */
static cpex__manifest_verdict read_body(reader *r, const cpex__image_sym *sym)
{
    const cpex__manifest_report *rep = r->rep;
    const char *p;
    uint32_t size = rep->struct_size;
    if (size > CPEX_ABI_STRUCT_SIZE_MAX || (sym->size && size > sym->size))
        return invalid(r, "struct_size is %u%s", size,
                       sym->size && size > sym->size ? ", larger than the symbol" : "");
    if (size < CPEX_MANIFEST_SIZE_1_0)
        return invalid(r, "struct_size is %u; a %u.x manifest has at least %zu bytes", size,
                       CPEX_ABI_MAJOR(rep->abi_version), (size_t)CPEX_MANIFEST_SIZE_1_0);
    cpex_manifest m;
    size_t n = size < sizeof m ? size : sizeof m;
    if ((p = cpex__image_check(r->im, sym->addr, n, 1)))
        return invalid(r, "the manifest %s", p);
    memset(&m, 0, sizeof m);
    memcpy(&m, sym->addr, n);

    /* Build information first: a description shows it even when the
       entries turn out to be damaged. */
    if (m.build_info && (p = cpex__image_text(r->im, m.build_info, TEXT_MAX, 1)))
        return invalid(r, "its build information %s", p);
    cpex__manifest_copy *c = r->copy;
    if (c && keep(r, &c->manifest.build_info, m.build_info))
        return CPEX_MANIFEST_NOMEM;
    if (m.entry_count == 0)
        return invalid(r, "it lists no entries");
    if (m.entry_count > CPEX_MANIFEST_MAX_ENTRIES)
        return invalid(r, "it claims %zu entries (at most %u accepted)", m.entry_count,
                       CPEX_MANIFEST_MAX_ENTRIES);
    if (!m.entries)
        return invalid(r, "it has an entry count but no entry list");
    if ((p = cpex__image_check(r->im, m.entries, m.entry_count * sizeof(const void *),
                               _Alignof(const void *))))
        return invalid(r, "its entry list %s", p);

    if (c) {
        c->store = cpex__calloc(m.entry_count, sizeof *c->store);
        c->list = cpex__calloc(m.entry_count, sizeof *c->list);
        if (!c->store || !c->list)
            return CPEX_MANIFEST_NOMEM;
        c->capacity = m.entry_count;
        c->manifest.entries = c->list;
    }
    const char *names[CPEX_MANIFEST_MAX_ENTRIES];
    for (size_t i = 0; i < m.entry_count; i++) {
        const cpex_manifest_entry *ep;
        memcpy(&ep, &m.entries[i], sizeof ep);
        cpex__manifest_verdict v = read_entry(r, ep, i, names);
        if (v != CPEX_MANIFEST_VALID)
            return v;
        if (c) {
            c->list[i] = &c->store[i];
            c->manifest.entry_count = i + 1;
        }
    }
    return CPEX_MANIFEST_VALID;
}

cpex__manifest_verdict cpex__manifest_read(const cpex__image *im, const cpex__image_sym *sym,
                                           uint32_t host_abi, cpex__manifest_copy **out,
                                           cpex__manifest_report *rep)
{
    reader r = {im, rep, NULL, 0};
    const char *p;
    memset(rep, 0, sizeof *rep);
    if (out)
        *out = NULL;
    if (!sym || !sym->addr)
        return invalid(&r, "the symbol is NULL");
    /* 1. The symbol. */
    if (sym->type == CPEX_SYM_CODE)
        return invalid(&r, "the symbol is not a data object (it is a function)");
    if (sym->type == CPEX_SYM_OTHER)
        return invalid(&r, "the symbol is not a data object");
    if (sym->size && sym->size < 2 * sizeof(uint32_t))
        return invalid(&r, "the symbol is %zu bytes, too small for a manifest", sym->size);
    if ((p = cpex__image_check(im, sym->addr, 2 * sizeof(uint32_t), _Alignof(cpex_manifest))))
        return invalid(&r, "the symbol %s", p);
    /* 2. The header: struct_size alone first (a sender may have no more). */
    memcpy(&rep->struct_size, sym->addr, sizeof rep->struct_size);
    if (rep->struct_size < 2 * sizeof(uint32_t))
        return invalid(&r, "struct_size is %u", rep->struct_size);
    memcpy(&rep->abi_version, (const char *)sym->addr + sizeof(uint32_t), sizeof rep->abi_version);
    rep->header = 1;
    /* 3. Another major may lay the rest out differently: stop. */
    if (CPEX_ABI_MAJOR(rep->abi_version) != CPEX_ABI_MAJOR(host_abi))
        return CPEX_MANIFEST_OTHER_MAJOR;
    /* 4, 5. */
    if (out) {
        r.copy = cpex__calloc(1, sizeof *r.copy);
        if (!r.copy)
            return CPEX_MANIFEST_NOMEM;
        r.copy->manifest.struct_size = (uint32_t)sizeof r.copy->manifest;
        r.copy->manifest.abi_version = rep->abi_version;
        r.copy->declared_size = rep->struct_size;
    }
    cpex__manifest_verdict v = read_body(&r, sym);
    if (v == CPEX_MANIFEST_NOMEM || r.nomem) {
        cpex__manifest_copy_free(r.copy);
        return CPEX_MANIFEST_NOMEM;
    }
    if (out)
        *out = r.copy;
    return v;
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

static cpex_status corrupt(cpex_error *err, const char *path, const char *detail)
{
    return cpex__error_add(err, CPEX_E_LOAD, NULL,
                           "library '%s' has an invalid manifest ('" CPEX_MANIFEST_SYMBOL "'): %s\n"
                           "  hint: the library was not built with cpex/plugin.h, or its "
                           "manifest is damaged; rebuild it with the SDK macros "
                           "(CPEX_PLUGIN or CPEX_PLUGIN_ENTRY + CPEX_PLUGIN_LIST)",
                           path, detail);
}

cpex_status cpex__manifest_load(const cpex__image *im, const cpex__image_sym *sym,
                                uint32_t host_abi, const char *path, cpex__manifest_copy **out,
                                cpex_error *err)
{
    char why[300];
    cpex__manifest_report rep;
    cpex__manifest_copy *copy = NULL;
    if (out)
        *out = NULL;
    if (!path)
        path = "(unknown)";
    cpex__manifest_verdict v = cpex__manifest_read(im, sym, host_abi, out ? &copy : NULL, &rep);
    /* The version before the layout: the operator needs the versions, and
       another major's layout means nothing to us. */
    /* The text only for a refusal (it is a printf). */
    if (rep.header && !cpex__abi_compatible(host_abi, rep.abi_version, NULL, 0) &&
        !cpex__abi_compatible(host_abi, rep.abi_version, why, sizeof why)) {
        cpex__manifest_copy_free(copy);
        int major = CPEX_ABI_MAJOR(host_abi) != CPEX_ABI_MAJOR(rep.abi_version);
        return cpex__error_add(
            err, CPEX_E_LOAD, NULL,
            "library '%s' was built for an incompatible plugin ABI (%s)\n"
            "  %s\n"
            "  hint: rebuild the plugin against the cpex/plugin.h installed with this host "
            "(ABI %u.%u)%s",
            path, major ? "different major version" : "newer minor version", why,
            CPEX_ABI_MAJOR(host_abi), CPEX_ABI_MINOR(host_abi),
            major ? "" : ", or upgrade the host to a release with this ABI minor");
    }
    if (v == CPEX_MANIFEST_NOMEM)
        return cpex__error_add(err, CPEX_E_NOMEM, NULL,
                               "out of memory reading the manifest of library '%s'", path);
    if (v != CPEX_MANIFEST_VALID) {
        cpex__manifest_copy_free(copy);
        return corrupt(err, path, rep.detail);
    }
    if (out)
        *out = copy;
    return CPEX_OK;
}

cpex_status cpex__manifest_validate(const cpex_manifest *m, uint32_t host_abi, const char *path,
                                    size_t object_size, cpex_error *err)
{
    cpex__image_sym sym = {m, object_size, CPEX_SYM_UNKNOWN};
    return cpex__manifest_load(NULL, &sym, host_abi, path, NULL, err);
}

const cpex_manifest_entry *cpex__manifest_find(const cpex_manifest *m, const char *entry)
{
    if (!m || !entry)
        return NULL;
    for (size_t i = 0; i < m->entry_count; i++)
        if (strcmp(m->entries[i]->entry, entry) == 0)
            return m->entries[i];
    return NULL;
}

size_t cpex__manifest_named_count(const cpex_manifest *m)
{
    size_t n = 0;
    for (size_t i = 0; m && i < m->entry_count; i++)
        if (m->entries[i]->entry[0])
            n++;
    return n;
}

char *cpex__manifest_entry_list(const cpex_manifest *m)
{
    size_t total = 3;
    for (size_t i = 0; m && i < m->entry_count; i++)
        total += (m->entries[i]->entry[0] ? strlen(m->entries[i]->entry) : 9) + 2;
    char *s = cpex__malloc(total);
    if (!s)
        return NULL;
    size_t pos = 0;
    s[pos++] = '[';
    for (size_t i = 0; m && i < m->entry_count; i++) {
        const char *name = m->entries[i]->entry[0] ? m->entries[i]->entry : "(default)";
        size_t l = strlen(name);
        if (i) {
            s[pos++] = ',';
            s[pos++] = ' ';
        }
        memcpy(s + pos, name, l);
        pos += l;
    }
    s[pos++] = ']';
    s[pos] = '\0';
    return s;
}
