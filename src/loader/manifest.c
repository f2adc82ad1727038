/* manifest.c — version rule and manifest validation; see manifest.h. */
#include "loader/manifest.h"

#include <stdio.h>
#include <string.h>

#include "loader/kind.h"
#include "util/alloc.h"
#include "util/errors.h"

/* Longest display name, version, description or hook name we accept: a
   string that runs on further is garbage (or not terminated at all). */
#define TEXT_MAX 4096u

int cpex_abi_compatible(uint32_t host, uint32_t plugin, char *why, size_t cap)
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

/* Reject a string that is NULL, longer than `max` or (when !allow_empty) empty. */
static const char *text_problem(const char *s, size_t max, int allow_empty)
{
    if (!s)
        return "is NULL";
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return "is not a terminated string of reasonable length";
    if (n == 0 && !allow_empty)
        return "is empty";
    return NULL;
}

static cpex_status corrupt(cpex_error *err, const char *path, const char *fmt_detail,
                           const char *a, const char *b)
{
    char detail[512];
    snprintf(detail, sizeof detail, fmt_detail, a ? a : "", b ? b : "");
    return cpex_error_add(err, CPEX_E_LOAD, NULL,
                          "library '%s' has an invalid manifest ('" CPEX_MANIFEST_SYMBOL "'): %s\n"
                          "  hint: the library was not built with cpex/plugin.h, or its "
                          "manifest is damaged; rebuild it with the SDK macros "
                          "(CPEX_PLUGIN or CPEX_PLUGIN_ENTRY + CPEX_PLUGIN_LIST)",
                          path, detail);
}

static cpex_status check_entry(const cpex_manifest *m, size_t i, const char *path,
                               cpex_error *err)
{
    char idx[32], why[200];
    snprintf(idx, sizeof idx, "%zu", i);
    const cpex_manifest_entry *e = m->entries[i];
    if (!e)
        return corrupt(err, path, "entry %s is NULL", idx, NULL);
    if (e->struct_size < CPEX_MANIFEST_ENTRY_SIZE_1_0 || e->struct_size > CPEX_ABI_STRUCT_SIZE_MAX) {
        snprintf(why, sizeof why, "entry %zu has struct_size %u (at least %zu expected)", i,
                 e->struct_size, (size_t)CPEX_MANIFEST_ENTRY_SIZE_1_0);
        return corrupt(err, path, "%s", why, NULL);
    }
    const char *p = text_problem(e->entry, CPEX_ENTRY_NAME_MAX, 1);
    if (p)
        return corrupt(err, path, "the name of entry %s %s", idx, p);
    if (e->entry[0] != '\0' && !cpex_entry_name_valid(e->entry, why, sizeof why)) {
        char what[300];
        snprintf(what, sizeof what, "entry name '%s' %s", e->entry, why);
        return corrupt(err, path, "%s", what, NULL);
    }
    const char *label = e->entry[0] ? e->entry : "(default)";
    if ((p = text_problem(e->display_name, TEXT_MAX, 0)))
        return corrupt(err, path, "the display name of entry '%s' %s", label, p);
    /* version and description are optional (NULL = not given). */
    if (e->version && (p = text_problem(e->version, TEXT_MAX, 1)))
        return corrupt(err, path, "the version of entry '%s' %s", label, p);
    if (e->description && (p = text_problem(e->description, TEXT_MAX, 1)))
        return corrupt(err, path, "the description of entry '%s' %s", label, p);
    if (e->hook_count > CPEX_MANIFEST_MAX_ENTRIES) {
        snprintf(why, sizeof why, "entry '%s' claims %zu hooks", label, e->hook_count);
        return corrupt(err, path, "%s", why, NULL);
    }
    if (e->hook_count && !e->hooks)
        return corrupt(err, path, "entry '%s' has a hook count but no hook list", label, NULL);
    for (size_t h = 0; h < e->hook_count; h++)
        if ((p = text_problem(e->hooks[h], TEXT_MAX, 0)))
            return corrupt(err, path, "a hook name of entry '%s' %s", label, p);
    for (size_t j = 0; j < i; j++)
        if (strcmp(m->entries[j]->entry, e->entry) == 0)
            return corrupt(err, path, "entry '%s' is listed twice", label, NULL);
    return CPEX_OK;
}

cpex_status cpex_manifest_validate(const cpex_manifest *m, uint32_t host_abi, const char *path,
                                   size_t object_size, cpex_error *err)
{
    char why[300];
    if (!path)
        path = "(unknown)";
    if (!m)
        return corrupt(err, path, "the symbol is NULL", NULL, NULL);
    /* struct_size and abi_version are the first 8 bytes of every version:
       check that they are there before reading anything else. */
    if (object_size && object_size < 2 * sizeof(uint32_t)) {
        snprintf(why, sizeof why, "the symbol is %zu bytes, too small for a manifest",
                 object_size);
        return corrupt(err, path, "%s", why, NULL);
    }
    if (m->struct_size < 2 * sizeof(uint32_t) || m->struct_size > CPEX_ABI_STRUCT_SIZE_MAX ||
        (object_size && m->struct_size > object_size)) {
        snprintf(why, sizeof why, "struct_size is %u%s", m->struct_size,
                 object_size && m->struct_size > object_size ? ", larger than the symbol" : "");
        return corrupt(err, path, "%s", why, NULL);
    }
    /* The version before the rest of the layout: a different major may lay
       the manifest out differently, and the operator needs the versions. */
    if (!cpex_abi_compatible(host_abi, m->abi_version, why, sizeof why)) {
        int major = CPEX_ABI_MAJOR(host_abi) != CPEX_ABI_MAJOR(m->abi_version);
        return cpex_error_add(
            err, CPEX_E_LOAD, NULL,
            "library '%s' was built for an incompatible plugin ABI (%s)\n"
            "  %s\n"
            "  hint: rebuild the plugin against the cpex/plugin.h installed with this host "
            "(ABI %u.%u)%s",
            path, major ? "different major version" : "newer minor version", why,
            CPEX_ABI_MAJOR(host_abi), CPEX_ABI_MINOR(host_abi),
            major ? "" : ", or upgrade the host to a release with this ABI minor");
    }
    if (m->struct_size < CPEX_MANIFEST_SIZE_1_0) {
        snprintf(why, sizeof why, "struct_size is %u; a %u.x manifest has at least %zu bytes",
                 m->struct_size, CPEX_ABI_MAJOR(host_abi), (size_t)CPEX_MANIFEST_SIZE_1_0);
        return corrupt(err, path, "%s", why, NULL);
    }
    if (m->entry_count == 0)
        return corrupt(err, path, "it lists no entries", NULL, NULL);
    if (m->entry_count > CPEX_MANIFEST_MAX_ENTRIES) {
        snprintf(why, sizeof why, "it claims %zu entries (at most %u accepted)", m->entry_count,
                 CPEX_MANIFEST_MAX_ENTRIES);
        return corrupt(err, path, "%s", why, NULL);
    }
    if (!m->entries)
        return corrupt(err, path, "it has an entry count but no entry list", NULL, NULL);
    if (m->build_info && text_problem(m->build_info, TEXT_MAX, 1))
        return corrupt(err, path, "its build information %s",
                       text_problem(m->build_info, TEXT_MAX, 1), NULL);
    for (size_t i = 0; i < m->entry_count; i++) {
        cpex_status st = check_entry(m, i, path, err);
        if (st != CPEX_OK)
            return st;
    }
    return CPEX_OK;
}

const cpex_manifest_entry *cpex_manifest_find(const cpex_manifest *m, const char *entry)
{
    if (!m || !entry)
        return NULL;
    for (size_t i = 0; i < m->entry_count; i++)
        if (strcmp(m->entries[i]->entry, entry) == 0)
            return m->entries[i];
    return NULL;
}

size_t cpex_manifest_named_count(const cpex_manifest *m)
{
    size_t n = 0;
    for (size_t i = 0; m && i < m->entry_count; i++)
        if (m->entries[i]->entry[0])
            n++;
    return n;
}

char *cpex_manifest_entry_list(const cpex_manifest *m)
{
    size_t total = 3;
    for (size_t i = 0; m && i < m->entry_count; i++)
        total += (m->entries[i]->entry[0] ? strlen(m->entries[i]->entry) : 9) + 2;
    char *s = cpex_malloc(total);
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
