/* errors.c — the cpex_error object (cpex/error.h) and internal helpers (errors.h). */
#include "util/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

/* Whether libcpex may write into `err`: it is there and was initialized.
   Every field libcpex writes today is part of the first layout. */
static int writable(const cpex_error *err) { return err && err->struct_size >= CPEX_ERROR_SIZE_V1; }

/* Empty the fields of the first layout; struct_size stays the caller's. */
static void reset(cpex_error *err)
{
    err->code = CPEX_OK;
    err->count = 0;
    err->items = NULL;
    err->text = NULL;
}

static void item_cleanup(cpex_error_item *it)
{
    cpex__free(it->file);
    cpex__free(it->plugin);
    cpex__free(it->key);
    cpex__free(it->message);
}

void cpex_error_cleanup(cpex_error *err)
{
    if (!writable(err))
        return;
    for (size_t i = 0; i < err->count; i++)
        item_cleanup(&err->items[i]);
    cpex__free(err->items);
    cpex__free(err->text);
    reset(err);
}

const char *cpex_error_message(cpex_error *err)
{
    if (err && !writable(err))
        return "(this cpex_error was not initialized, so no message could be stored in it: "
               "initialize it with CPEX_ERROR_INIT or cpex_error_init)";
    if (!err || err->count == 0)
        return "";
    if (err->text)
        return err->text;
    static const char lost[] = "(out of memory)";
    size_t total = 1;
    for (size_t i = 0; i < err->count; i++)
        total += (err->items[i].message ? strlen(err->items[i].message) : sizeof lost - 1) + 1;
    char *t = cpex__malloc(total);
    if (!t)
        return err->items[0].message ? err->items[0].message : "";
    size_t pos = 0;
    for (size_t i = 0; i < err->count; i++) {
        const char *m = err->items[i].message ? err->items[i].message : lost;
        size_t l = strlen(m);
        memcpy(t + pos, m, l);
        pos += l;
        if (i + 1 < err->count)
            t[pos++] = '\n';
    }
    t[pos] = '\0';
    err->text = t;
    return t;
}

const char *cpex_status_name(cpex_status status)
{
    switch (status) {
    case CPEX_OK: return "CPEX_OK";
    case CPEX_E_INVALID: return "CPEX_E_INVALID";
    case CPEX_E_NOMEM: return "CPEX_E_NOMEM";
    case CPEX_E_CONFIG: return "CPEX_E_CONFIG";
    case CPEX_E_NOT_FOUND: return "CPEX_E_NOT_FOUND";
    case CPEX_E_EXISTS: return "CPEX_E_EXISTS";
    case CPEX_E_STATE: return "CPEX_E_STATE";
    case CPEX_E_LOAD: return "CPEX_E_LOAD";
    case CPEX_E_PLUGIN: return "CPEX_E_PLUGIN";
    case CPEX_E_IO: return "CPEX_E_IO";
    case CPEX_E_TYPE: return "CPEX_E_TYPE";
    }
    return "CPEX_E_UNKNOWN";
}

/* Build "<file>:<line>:<col>: plugin '<p>': <body>" from an item's parts. */
static char *compose(const cpex_error_item *it, const char *body)
{
    char loc[64] = "";
    if (it->file && it->line > 0 && it->column > 0)
        snprintf(loc, sizeof loc, ":%d:%d", it->line, it->column);
    else if (it->file && it->line > 0)
        snprintf(loc, sizeof loc, ":%d", it->line);
    return cpex__asprintf("%s%s%s%s%s%s%s", it->file ? it->file : "", loc, it->file ? ": " : "",
                          it->plugin ? "plugin '" : "", it->plugin ? it->plugin : "",
                          it->plugin ? "': " : "", body);
}

static cpex_error_item *append_item(cpex_error *err)
{
    cpex_error_item *items = cpex__realloc(err->items, (err->count + 1) * sizeof *items);
    if (!items)
        return NULL;
    err->items = items;
    cpex_error_item *it = &items[err->count++];
    memset(it, 0, sizeof *it);
    cpex__free(err->text);
    err->text = NULL;
    return it;
}

static void fill_item(cpex_error_item *it, cpex_status code, const cpex__where *where,
                      const char *body)
{
    it->code = code;
    if (where) {
        it->file = cpex__strdup(where->file);
        it->line = where->line;
        it->column = where->column;
        it->plugin = cpex__strdup(where->plugin);
        it->key = cpex__strdup(where->key);
    }
    it->message = body ? compose(it, body) : NULL;
}

cpex_status cpex__error_add(cpex_error *err, cpex_status code, const cpex__where *where,
                            const char *fmt, ...)
{
    if (!writable(err))
        return code;
    va_list ap;
    va_start(ap, fmt);
    char body[2048];
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    cpex_error_item *it = append_item(err);
    if (!it) {
        if (err->code == CPEX_OK)
            err->code = CPEX_E_NOMEM;
        return code;
    }
    fill_item(it, code, where, body);
    if (err->code == CPEX_OK)
        err->code = code;
    return code;
}

void cpex__error_move(cpex_error *to, cpex_error *from) { cpex__error_move_with(to, from, NULL); }

void cpex__error_move_with(cpex_error *to, cpex_error *from, const cpex__where *where)
{
    if (!from)
        return;
    if (!writable(to)) {
        cpex_error_cleanup(from);
        return;
    }
    /* An error whose items were lost to memory pressure still failed. */
    if (to->code == CPEX_OK && from->code != CPEX_OK)
        to->code = from->code;
    for (size_t i = 0; i < from->count; i++) {
        cpex_error_item *src = &from->items[i];
        if (where) {
            /* Recover the body: the message minus what compose() put in front. */
            cpex_error_item bare = {0};
            bare.file = src->file;
            bare.line = src->line;
            bare.column = src->column;
            bare.plugin = src->plugin;
            char *prefix = compose(&bare, "");
            const char *body = src->message ? src->message : "(out of memory)";
            if (prefix && strncmp(body, prefix, strlen(prefix)) == 0)
                body += strlen(prefix);
            cpex__where w = *where;
            if (src->file) {
                w.file = src->file;
                w.line = src->line;
                w.column = src->column;
            }
            if (src->plugin)
                w.plugin = src->plugin;
            if (src->key)
                w.key = src->key;
            cpex__error_add(to, src->code, &w, "%s", body);
            cpex__free(prefix);
        } else {
            cpex_error_item *it = append_item(to);
            if (!it)
                continue;
            *it = *src;
            memset(src, 0, sizeof *src);
            if (to->code == CPEX_OK)
                to->code = it->code;
        }
    }
    cpex_error_cleanup(from);
}
