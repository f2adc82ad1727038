/* request.c — parsing a request line; see request.h. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static const char *const known_keys[] = {"hook", "payload", "payload_type", "extensions",
                                         "context"};
#define KNOWN_KEY_COUNT (sizeof known_keys / sizeof known_keys[0])

static bool fail(char **error, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static bool fail(char **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(error, fmt, ap) < 0)
        *error = NULL;
    va_end(ap);
    return false;
}

/* "PREFIX: problem; problem; ..." from the items of `err` (cleaned up
   here): an error line is one line, in either output form. */
static bool fail_with(char **error, const char *prefix, cpex_error *err)
{
    size_t len = strlen(prefix) + 3;
    for (size_t i = 0; i < err->count; i++)
        len += (err->items[i].message ? strlen(err->items[i].message) : 16) + 2;
    char *text = malloc(len);
    if (text) {
        size_t pos = (size_t)snprintf(text, len, "%s: ", prefix);
        for (size_t i = 0; i < err->count; i++)
            pos +=
                (size_t)snprintf(text + pos, len - pos, "%s%s", i ? "; " : "",
                                 err->items[i].message ? err->items[i].message : "(out of memory)");
    }
    *error = text;
    cpex_error_cleanup(err);
    return false;
}

/* Edit distance, for "did you mean": keys are short, so the O(n*m) table is tiny. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    }
    return d[la][lb];
}

static const char *suggest(const char *key)
{
    const char *best = NULL;
    size_t best_d = 3; /* farther than two edits is no suggestion */
    for (size_t i = 0; i < KNOWN_KEY_COUNT; i++) {
        size_t d = distance(key, known_keys[i]);
        if (d < best_d) {
            best_d = d;
            best = known_keys[i];
        }
    }
    return best;
}

static bool is_known(const char *key)
{
    for (size_t i = 0; i < KNOWN_KEY_COUNT; i++) {
        if (strcmp(key, known_keys[i]) == 0)
            return true;
    }
    return false;
}

/* A non-empty string member, or NULL; *bad when present but not one. */
static const char *string_member(const json_t *obj, const char *key, bool *bad)
{
    const json_t *v = json_object_get(obj, key);
    *bad = false;
    if (!v)
        return NULL;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

bool cli_request_parse(const char *line, size_t len, const char *default_hook, cli_request *out,
                       char **error)
{
    memset(out, 0, sizeof *out);
    *error = NULL;
    json_error_t jerr;
    /* Duplicate keys are refused: which of two "hook"s would win is not
       something an operator should have to guess. */
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(error, "invalid JSON at column %d: %s", jerr.column, jerr.text);
    bool ok = false, bad = false;
    if (!json_is_object(root)) {
        fail(error, "a request must be a JSON object like {\"hook\":...,\"payload\":{...}}");
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (!is_known(key)) {
            const char *s = suggest(key);
            if (s)
                fail(error, "unknown key '%s' (did you mean '%s'?)", key, s);
            else
                fail(error,
                     "unknown key '%s'; a request has hook, payload, payload_type, "
                     "extensions and context",
                     key);
            goto done;
        }
    }

    const char *hook = string_member(root, "hook", &bad);
    if (bad) {
        fail(error, "\"hook\" must be a non-empty string such as \"cmf.tool_pre_invoke\"");
        goto done;
    }
    if (!hook)
        hook = default_hook;
    if (!hook) {
        fail(error, "no hook: give \"hook\" in the line, or --hook on the command line");
        goto done;
    }
    const char *ctx = string_member(root, "context", &bad);
    if (bad) {
        fail(error, "\"context\" must be a non-empty string (an id shared by the lines of "
                    "one request)");
        goto done;
    }
    const char *ptype = string_member(root, "payload_type", &bad);
    if (bad || (ptype && strcmp(ptype, "cmf") != 0 && strcmp(ptype, "json") != 0)) {
        fail(error, "\"payload_type\" must be \"cmf\" or \"json\"");
        goto done;
    }
    const json_t *payload = json_object_get(root, "payload");
    if (!payload) {
        fail(error, "no \"payload\": give the message (a CMF message for cmf.* hooks)");
        goto done;
    }
    /* The default follows the built-in bindings (cpex_manager_define_hook):
       cmf.* hooks carry CMF messages, except cmf.http_request, whose payload
       is a JSON description of an HTTP request. */
    out->is_cmf = ptype ? strcmp(ptype, "cmf") == 0
                        : strncmp(hook, "cmf.", 4) == 0 && strcmp(hook, "cmf.http_request") != 0;
    cpex_error err = CPEX_ERROR_INIT;
    if (out->is_cmf) {
        if (!json_is_object(payload)) {
            fail(error, "payload: a CMF message must be a JSON object with \"role\" and "
                        "\"content\"");
            goto done;
        }
        out->cmf = cpex_cmf_from_json(payload, &err);
        if (!out->cmf) {
            fail_with(error, "payload", &err);
            goto done;
        }
    } else {
        out->json = json_incref((json_t *)payload);
    }
    const json_t *ext = json_object_get(root, "extensions");
    if (ext && !json_is_null(ext)) {
        out->extensions = cpex_extensions_from_json(ext, &err);
        if (!out->extensions) {
            fail_with(error, "extensions", &err);
            goto done;
        }
    }
    out->hook = strdup(hook);
    out->context_id = ctx ? strdup(ctx) : NULL;
    if (!out->hook || (ctx && !out->context_id)) {
        fail(error, "out of memory");
        goto done;
    }
    ok = true;
done:
    json_decref(root);
    if (!ok) {
        cli_request_cleanup(out);
        if (!*error)
            *error = strdup("out of memory");
    }
    return ok;
}

void cli_request_cleanup(cli_request *r)
{
    free(r->hook);
    free(r->context_id);
    cpex_cmf_free(r->cmf);
    json_decref(r->json);
    cpex_extensions_unref(r->extensions);
    memset(r, 0, sizeof *r);
}
