/* kind.c — the kind URL parser; see kind.h for the grammar and its limits. */
#include "loader/kind.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/errors.h"

static int is_ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

/* Show one character so that an operator can see it, even when it is a
   control or non-ASCII byte (which would otherwise garble the message). */
static void show_char(char c, char *buf, size_t cap)
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(buf, cap, "%c", c);
    else
        snprintf(buf, cap, "\\x%02x", u);
}

int cpex__entry_name_valid(const char *name, char *why, size_t cap)
{
    char shown[8];
    if (!name || !*name) {
        if (why && cap)
            snprintf(why, cap, "is empty");
        return 0;
    }
    if (!is_ident_start(name[0])) {
        show_char(name[0], shown, sizeof shown);
        if (why && cap)
            snprintf(why, cap, "must start with a letter or underscore (got '%s')", shown);
        return 0;
    }
    size_t i = 1;
    for (; name[i]; i++) {
        if (!is_ident_char(name[i])) {
            show_char(name[i], shown, sizeof shown);
            if (why && cap)
                snprintf(why, cap, "contains invalid character '%s'; only [A-Za-z0-9_] allowed",
                         shown);
            return 0;
        }
    }
    if (i > CPEX_ENTRY_NAME_MAX) {
        if (why && cap)
            snprintf(why, cap, "is %zu characters long; at most %d allowed", i,
                     CPEX_ENTRY_NAME_MAX);
        return 0;
    }
    return 1;
}

void cpex__kind_cleanup(cpex__kind *kind)
{
    if (!kind)
        return;
    cpex__free(kind->scheme);
    cpex__free(kind->path);
    cpex__free(kind->entry);
    cpex__free(kind->handler);
    memset(kind, 0, sizeof *kind);
}

static cpex_status bad(cpex_error *err, const char *text, const char *what)
{
    return cpex__error_add(err, CPEX_E_CONFIG, NULL, "kind '%s' %s", text, what);
}

/*
 * The query (the text between '?' and the fragment, `len` bytes, no '?').
 * Only `entry=<ident>` is allowed; every other form gets its own message so
 * the operator knows exactly what to change. On success *entry is the value
 * (owned) or NULL for an empty query.
 */
static cpex_status parse_query(const char *text, const char *q, size_t len, char **entry,
                               cpex_error *err)
{
    *entry = NULL;
    if (len == 0)
        return CPEX_OK; /* `lib:/x.so?` — documented as "no entry" */

    if (memchr(q, '&', len)) {
        /* Tell a repeated entry apart from other parameters: the fixes differ. */
        int all_entry = 1;
        const char *p = q, *end = q + len;
        while (p <= end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp ? amp : end;
            if ((size_t)(stop - p) < 6 || memcmp(p, "entry=", 6) != 0)
                all_entry = 0;
            if (!amp)
                break;
            p = amp + 1;
        }
        if (all_entry)
            return bad(err, text,
                       "repeats the 'entry' parameter; name exactly one entry "
                       "('?entry=<name>') — to load two entries, write two plugins");
        return bad(err, text,
                   "has a multi-parameter query; the only parameter is 'entry' "
                   "('?entry=<name>'); loader settings never go in the kind");
    }

    const char *eq = memchr(q, '=', len);
    if (!eq)
        return cpex__error_add(err, CPEX_E_CONFIG, NULL,
                               "kind '%s' has a malformed query '%.*s'; expected "
                               "'entry=<name>'",
                               text, (int)len, q);
    size_t klen = (size_t)(eq - q);
    if (klen != 5 || memcmp(q, "entry", 5) != 0)
        return cpex__error_add(err, CPEX_E_CONFIG, NULL,
                               "kind '%s' has an unknown query parameter '%.*s'; the only "
                               "parameter is 'entry' ('?entry=<name>')",
                               text, (int)klen, q);
    size_t vlen = len - klen - 1;
    if (vlen == 0)
        return bad(err, text,
                   "has an empty 'entry=' value; write '?entry=<name>' or drop the "
                   "'?' to use the library's default entry");
    char *value = cpex__strndup(eq + 1, vlen);
    if (!value)
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory parsing kind '%s'", text);
    char why[160];
    if (!cpex__entry_name_valid(value, why, sizeof why)) {
        cpex_status st = cpex__error_add(err, CPEX_E_CONFIG, NULL,
                                         "kind '%s': entry name '%s' %s (an entry is a C "
                                         "identifier: the library exports "
                                         "'cpex_plugin_create_<entry>')",
                                         text, value, why);
        cpex__free(value);
        return st;
    }
    *entry = value;
    return CPEX_OK;
}

cpex_status cpex__kind_parse(const char *text, cpex__kind *out, cpex_error *err)
{
    if (!out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__kind_parse: NULL output");
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return cpex__error_add(err, CPEX_E_CONFIG, NULL,
                               "kind is empty; write 'lib:<path to library>'");

    /* 1. The scheme: before the first ':' (never a later one: drive letters). */
    const char *colon = strchr(text, ':');
    if (!colon || colon == text)
        return bad(err, text,
                   "is missing a scheme prefix; write 'lib:<path to library>' for a "
                   "shared library");
    const char *rest = colon + 1;

    /* 2. The fragment first: a hook name may contain '?'. */
    const char *hash = strchr(rest, '#');
    const char *body_end = hash ? hash : rest + strlen(rest);
    if (hash && hash[1] == '\0')
        return bad(err, text,
                   "has an empty '#' fragment; name a hook the plugin registers "
                   "(e.g. '#cmf.tool_pre_invoke') or drop the '#' to keep every handler");

    /* 3. The query: the first '?' before the fragment. */
    const char *qmark = memchr(rest, '?', (size_t)(body_end - rest));
    const char *path_end = qmark ? qmark : body_end;
    if (path_end == rest)
        return bad(err, text, "has an empty library path; write 'lib:<path to library>'");

    char *entry = NULL;
    if (qmark) {
        cpex_status st = parse_query(text, qmark + 1, (size_t)(body_end - qmark - 1), &entry, err);
        if (st != CPEX_OK)
            return st;
    }

    out->scheme = cpex__strndup(text, (size_t)(colon - text));
    out->path = cpex__strndup(rest, (size_t)(path_end - rest));
    out->entry = entry;
    out->handler = hash ? cpex__strdup(hash + 1) : NULL;
    if (!out->scheme || !out->path || (hash && !out->handler)) {
        cpex__kind_cleanup(out);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory parsing kind '%s'", text);
    }
    return CPEX_OK;
}
