/*
 * extensions_json.c — the JSON form of the extensions object
 * (cpex_extensions_to_json, cpex_extensions_from_json in
 * cpex/extensions.h).
 *
 * The object itself (storage, copy-on-write, setters, getters) is
 * extensions.c; this file only walks it through its public and internal
 * accessors (extensions_internal.h). Strings are checked with the model's
 * text rules (text_check.h), the same the setters apply.
 *
 *   - to_json and from_json deep-copy: the caller owns that JSON.
 *   - from_json reports every problem with its path
 *     ("security.subject.roles[2]: expected a string"), like a config
 *     file, not only the first.
 */
#include "model/extensions_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "model/text_check.h"
#include "util/errors.h"
#include "util/suggest.h"

/* One table describes the JSON form; to_json and from_json both walk it,
 * so the two cannot disagree on a key. */
typedef enum key_kind { K_SINGLE, K_LIST, K_OBJECT, K_HEADERS, K_CUSTOM } key_kind;

struct obj_spec;
typedef struct key_spec {
    const char *name;
    key_kind kind;
    uint32_t arg; /* field number or header set */
    const struct obj_spec *sub;
} key_spec;

typedef struct obj_spec {
    const key_spec *keys;
    size_t count;
} obj_spec;

#define SPEC(keys)                                                                                 \
    {                                                                                              \
        keys, sizeof keys / sizeof keys[0]                                                         \
    }

static const key_spec meta_keys[] = {
    {"entity_type", K_SINGLE, CPEX_EXT_ENTITY_TYPE, NULL},
    {"entity_name", K_SINGLE, CPEX_EXT_ENTITY_NAME, NULL},
    {"scope", K_SINGLE, CPEX_EXT_SCOPE, NULL},
    {"tags", K_LIST, CPEX_EXT_TAGS, NULL},
};
static const obj_spec meta_spec = SPEC(meta_keys);

static const key_spec subject_keys[] = {
    {"id", K_SINGLE, CPEX_EXT_SUBJECT_ID, NULL},
    {"type", K_SINGLE, CPEX_EXT_SUBJECT_TYPE, NULL},
    {"roles", K_LIST, CPEX_EXT_ROLES, NULL},
};
static const obj_spec subject_spec = SPEC(subject_keys);

static const key_spec security_keys[] = {
    {"subject", K_OBJECT, 0, &subject_spec},
    {"labels", K_LIST, CPEX_EXT_LABELS, NULL},
    {"classification", K_SINGLE, CPEX_EXT_CLASSIFICATION, NULL},
};
static const obj_spec security_spec = SPEC(security_keys);

static const key_spec http_keys[] = {
    {"request_headers", K_HEADERS, CPEX_HEADERS_REQUEST, NULL},
    {"response_headers", K_HEADERS, CPEX_HEADERS_RESPONSE, NULL},
};
static const obj_spec http_spec = SPEC(http_keys);

static const key_spec request_keys[] = {
    {"request_id", K_SINGLE, CPEX_EXT_REQUEST_ID, NULL},
    {"trace_id", K_SINGLE, CPEX_EXT_TRACE_ID, NULL},
    {"span_id", K_SINGLE, CPEX_EXT_SPAN_ID, NULL},
    {"environment", K_SINGLE, CPEX_EXT_ENVIRONMENT, NULL},
    {"timestamp", K_SINGLE, CPEX_EXT_TIMESTAMP, NULL},
};
static const obj_spec request_spec = SPEC(request_keys);

static const key_spec top_keys[] = {
    {"meta", K_OBJECT, 0, &meta_spec}, {"security", K_OBJECT, 0, &security_spec},
    {"http", K_OBJECT, 0, &http_spec}, {"request", K_OBJECT, 0, &request_spec},
    {"custom", K_CUSTOM, 0, NULL},
};
static const obj_spec top_spec = SPEC(top_keys);

#define MAX_SPEC_KEYS 8

/* ---- to_json ---- */

/* Adds `value` under `key` unless it is NULL; false on failure. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new_nocheck(obj, key, value) == 0;
}

/* Builds the object of `spec` (`ext` may be NULL: no members); empty
 * members are left out. NULL on OOM. */
static json_t *build_object(const cpex_extensions *ext, const obj_spec *spec)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (size_t k = 0; k < spec->count; k++) {
        const key_spec *ks = &spec->keys[k];
        json_t *v = NULL;
        switch (ks->kind) {
        case K_SINGLE: {
            cpex_str s = cpex__extensions_get_str(ext, ks->arg);
            if (!s.ptr)
                continue;
            v = json_stringn_nocheck(s.ptr, s.len);
            break;
        }
        case K_LIST: {
            size_t n = cpex_extensions_count(ext, ks->arg);
            if (n == 0)
                continue;
            v = json_array();
            for (size_t i = 0; v && i < n; i++) {
                cpex_str s = cpex__extensions_item_str(ext, ks->arg, i);
                if (json_array_append_new(v, json_stringn_nocheck(s.ptr, s.len)) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
            break;
        }
        case K_HEADERS: {
            size_t n = cpex_extensions_header_count(ext, ks->arg);
            if (n == 0)
                continue;
            v = json_object();
            for (size_t i = 0; v && i < n; i++) {
                cpex_str name, value;
                cpex__extensions_header_at_str(ext, ks->arg, i, &name, &value);
                if (!put(v, name.ptr, json_stringn_nocheck(value.ptr, value.len))) {
                    json_decref(v);
                    v = NULL;
                }
            }
            break;
        }
        case K_OBJECT:
            v = build_object(ext, ks->sub);
            if (v && json_object_size(v) == 0) {
                json_decref(v);
                continue;
            }
            break;
        case K_CUSTOM: {
            const json_t *custom = cpex__extensions_custom_object(ext);
            if (!custom || json_object_size(custom) == 0)
                continue;
            bool too_deep = false; /* cannot happen: checked on the way in */
            /* Deep: the caller owns the result and may change it. */
            v = cpex__ext_json_copy(custom, &too_deep);
            break;
        }
        }
        if (!put(obj, ks->name, v)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *cpex_extensions_to_json(const cpex_extensions *ext) { return build_object(ext, &top_spec); }

/* ---- from_json ---- */

typedef struct parse_ctx {
    cpex_error *err;
    cpex_extensions *ext;
    size_t errors;
    bool nomem;
} parse_ctx;

/* Records one problem. cpex__error_add ignores a NULL err, so the count is
 * kept here too: it decides success even when the caller passed no err. */
#define PARSE_ERROR(c, ...)                                                                        \
    do {                                                                                           \
        (c)->errors++;                                                                             \
        (void)cpex__error_add((c)->err, CPEX_E_INVALID, NULL, __VA_ARGS__);                        \
    } while (0)

static void parse_nomem(parse_ctx *c)
{
    if (!c->nomem) {
        c->nomem = true;
        c->errors++;
        (void)cpex__error_add(c->err, CPEX_E_NOMEM, NULL, "extensions: out of memory");
    }
}

static const char *json_kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

/* A JSON string usable as a C string: jansson strings may hold NUL bytes. */
static bool c_string_ok(const json_t *s)
{
    return strlen(json_string_value(s)) == json_string_length(s);
}

static void parse_status(parse_ctx *c, cpex_status st, const char *path, const char *what)
{
    if (st == CPEX_E_NOMEM)
        parse_nomem(c);
    else if (st != CPEX_OK)
        PARSE_ERROR(c, "%s: %s", path, what);
}

static void parse_single(parse_ctx *c, const json_t *v, uint32_t field, const char *path)
{
    if (!json_is_string(v)) {
        PARSE_ERROR(c, "%s: expected a string, got %s", path, json_kind_name(v));
        return;
    }
    if (!c_string_ok(v)) {
        PARSE_ERROR(c, "%s: string contains a NUL byte", path);
        return;
    }
    parse_status(c, cpex_extensions_set(c->ext, field, json_string_value(v)), path,
                 "not valid UTF-8");
}

static void parse_list(parse_ctx *c, const json_t *v, uint32_t field, const char *path)
{
    if (!json_is_array(v)) {
        PARSE_ERROR(c, "%s: expected an array of strings, got %s", path, json_kind_name(v));
        return;
    }
    for (size_t i = 0; i < json_array_size(v) && !c->nomem; i++) {
        const json_t *item = json_array_get(v, i);
        if (!json_is_string(item)) {
            PARSE_ERROR(c, "%s[%zu]: expected a string, got %s", path, i, json_kind_name(item));
        } else if (!c_string_ok(item)) {
            PARSE_ERROR(c, "%s[%zu]: string contains a NUL byte", path, i);
        } else {
            cpex_status st = cpex_extensions_add(c->ext, field, json_string_value(item));
            if (st == CPEX_E_NOMEM)
                parse_nomem(c);
            else if (st != CPEX_OK)
                PARSE_ERROR(c, "%s[%zu]: not valid UTF-8", path, i);
        }
    }
}

static void parse_headers(parse_ctx *c, const json_t *v, uint32_t set, const char *path)
{
    if (!json_is_object(v)) {
        PARSE_ERROR(c, "%s: expected an object of header names to strings, got %s", path,
                    json_kind_name(v));
        return;
    }
    const char *name;
    size_t name_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)v, name, name_len, value)
    {
        if (c->nomem)
            return;
        if (strlen(name) != name_len || !cpex__header_name_valid(name, name_len)) {
            PARSE_ERROR(c, "%s.%s: not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)",
                        path, name);
            continue;
        }
        if (!json_is_string(value)) {
            PARSE_ERROR(c, "%s.%s: expected a string, got %s", path, name, json_kind_name(value));
            continue;
        }
        cpex_str prev = cpex__extensions_header_str(c->ext, set, name);
        if (prev.ptr) {
            /* Two spellings of one header: which value wins would be an
             * accident of key order, so ask the author to pick. */
            cpex_str prev_name = {NULL, 0};
            for (size_t i = 0; cpex__extensions_header_at_str(c->ext, set, i, &prev_name, NULL);
                 i++) {
                if (cpex__ascii_ieq(prev_name.ptr, prev_name.len, name, name_len))
                    break;
            }
            PARSE_ERROR(c,
                        "%s.%s: duplicate header (names are case-insensitive; '%s' is already set)",
                        path, name, prev_name.ptr);
            continue;
        }
        if (!c_string_ok(value) ||
            !cpex__header_value_valid(json_string_value(value), json_string_length(value))) {
            PARSE_ERROR(c, "%s.%s: header value must be UTF-8 without CR, LF or NUL", path, name);
            continue;
        }
        parse_status(c, cpex_extensions_set_header(c->ext, set, name, json_string_value(value)),
                     path, "invalid header");
    }
}

static void parse_custom(parse_ctx *c, const json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        PARSE_ERROR(c, "%s: expected an object, got %s", path, json_kind_name(v));
        return;
    }
    if (json_object_size(v) == 0)
        return;
    bool too_deep = false;
    /* Deep: the input stays the caller's, to change or free as they like. */
    json_t *copy = cpex__ext_json_copy(v, &too_deep);
    if (!copy) {
        if (too_deep)
            PARSE_ERROR(c, "%s: nested more than %d levels deep", path, CPEX__EXT_MAX_JSON_DEPTH);
        else
            parse_nomem(c);
        return;
    }
    if (cpex__extensions_replace_custom(c->ext, copy) != CPEX_OK)
        parse_nomem(c);
}

static void unknown_key(parse_ctx *c, const obj_spec *spec, const char *path, const char *key)
{
    const char *names[MAX_SPEC_KEYS];
    char list[256];
    size_t pos = 0;
    list[0] = '\0';
    for (size_t i = 0; i < spec->count; i++) {
        names[i] = spec->keys[i].name;
        int n = snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "", names[i]);
        if (n > 0 && (size_t)n < sizeof list - pos)
            pos += (size_t)n;
    }
    const char *hint = cpex__suggest(key, names, spec->count);
    const char *sep = *path ? "." : "";
    if (hint)
        PARSE_ERROR(c, "%s%s%s: unknown key; did you mean '%s'?", path, sep, key, hint);
    else
        PARSE_ERROR(c, "%s%s%s: unknown key; expected one of: %s", path, sep, key, list);
}

static void parse_object(parse_ctx *c, const json_t *obj, const obj_spec *spec, const char *path)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        if (c->nomem)
            return;
        const key_spec *ks = NULL;
        for (size_t i = 0; i < spec->count && !ks; i++) {
            if (strcmp(spec->keys[i].name, key) == 0)
                ks = &spec->keys[i];
        }
        if (!ks) {
            unknown_key(c, spec, path, key);
            continue;
        }
        /* Paths of known keys are short ("security.subject.roles"). */
        char sub[96];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", ks->name);
        if (json_is_null(value))
            continue; /* null: absent, as an unset Option serializes in CPEX */
        switch (ks->kind) {
        case K_SINGLE: parse_single(c, value, ks->arg, sub); break;
        case K_LIST: parse_list(c, value, ks->arg, sub); break;
        case K_HEADERS: parse_headers(c, value, ks->arg, sub); break;
        case K_CUSTOM: parse_custom(c, value, sub); break;
        case K_OBJECT:
            if (!json_is_object(value))
                PARSE_ERROR(c, "%s: expected an object, got %s", sub, json_kind_name(value));
            else
                parse_object(c, value, ks->sub, sub);
            break;
        }
    }
}

cpex_extensions *cpex_extensions_from_json(const json_t *json, cpex_error *err)
{
    if (!json || !json_is_object(json)) {
        (void)cpex__error_add(err, CPEX_E_INVALID, NULL, "extensions: expected an object, got %s",
                              json ? json_kind_name(json) : "nothing");
        return NULL;
    }
    parse_ctx c = {err, cpex_extensions_new(), 0, false};
    if (!c.ext) {
        parse_nomem(&c);
        return NULL;
    }
    /* Every problem is reported, not only the first, like a config file. */
    parse_object(&c, json, &top_spec, "");
    if (c.errors) {
        cpex_extensions_unref(c.ext);
        return NULL;
    }
    return c.ext;
}
