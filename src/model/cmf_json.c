/*
 * cmf_json.c — reading the CPEX core's JSON form of a CMF message
 * (cpex_cmf_from_json, cpex_cmf_parse in cpex/cmf.h).
 *
 * Reading follows serde's rules for CPEX's Rust types so the same document
 * is accepted by both:
 *   - unknown keys (in the message, a part or a body) are ignored;
 *   - `null` for an Option field means absent; `null` for any other field
 *     is a type error (tool_result.content excepted: it is any JSON);
 *   - defaulted fields (schema_version, content, arguments, annotations,
 *     messages, is_error, tool_result.content) may be left out.
 * Differences, all on the side of refusing: strings may not contain NUL
 * (plugins read them as C strings, where a NUL would hide the rest from a
 * filter); cpex_cmf_parse rejects duplicate keys (two parsers must not see
 * two different messages); prompt_result nesting is capped at
 * CMF_MAX_DEPTH. One leniency: a missing resource_type means "file".
 *
 * Writing is cmf_json_write.c; the message's memory is cmf.c's
 * (cmf_internal.h), and its strings are checked with text_check.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/cmf_internal.h"
#include "model/text_check.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "util/names.h"
#include "util/text.h"

/* ------------------------------------------------------------------ */
/* Error paths                                                         */
/* ------------------------------------------------------------------ */

#define PATH_CAP 2048

typedef struct pctx {
    cpex_error *err;
    size_t len;
    char path[PATH_CAP]; /* "content[2].content" */
} pctx;

/* Appends a segment; returns the mark to restore. A path too long for the
 * buffer is cut: it only makes the message shorter. */
static size_t path_push(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(pctx *c, const char *fmt, ...)
{
    size_t mark = c->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + c->len, PATH_CAP - c->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->len += (size_t)n < PATH_CAP - c->len ? (size_t)n : PATH_CAP - 1 - c->len;
    return mark;
}

static size_t path_key(pctx *c, const char *key)
{
    return path_push(c, c->len ? ".%s" : "%s", key);
}

static void path_pop(pctx *c, size_t mark)
{
    c->len = mark;
    c->path[mark] = '\0';
}

static const char *type_name(const json_t *v)
{
    if (!v)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "nothing";
}

/* Input echoed into a message: printable ASCII only, so a hostile value
 * cannot forge log lines, and short. */
static const char *quoted(char *buf, size_t cap, const char *s, size_t len)
{
    size_t o = 0, i = 0, limit = cap - 5;
    buf[o++] = '"';
    for (; i < len && o < limit; i++)
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Adds "<path>.<key>: <what>" to the error. `key` may be NULL (the path
 * itself is at fault) or start with '[' (an index). Always returns -1. */
static int fail(pctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(pctx *c, const char *key, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *sep = (c->len && key && key[0] != '[') ? "." : "";
    const char *where = c->len ? c->path : (key ? "" : "message");
    cpex__error_add(c->err, CPEX_E_INVALID, NULL, "%s%s%s: %s", where, sep, key ? key : "", what);
    return -1;
}

/* The index of name `s` in `names`; else fails at `key` with "unknown <what>
 * "s" (expected one of <names>)" and returns -1. */
static int lookup_name(pctx *c, const char *key, const char *what, const char *const *names,
                       size_t count, cpex_str s)
{
    int idx = cpex__names_find(names, count, s.ptr, s.len);
    if (idx >= 0)
        return idx;
    char q[80], list[300];
    cpex__textbuf t;
    cpex__textbuf_init(&t, list, sizeof list);
    cpex__textbuf_join(&t, names, count);
    return fail(c, key, "unknown %s %s (expected one of %s)", what,
                quoted(q, sizeof q, s.ptr, s.len), list);
}

static int oom(pctx *c)
{
    cpex__error_add(c->err, CPEX_E_NOMEM, NULL, "%s: out of memory", c->len ? c->path : "message");
    return -1;
}

/* ------------------------------------------------------------------ */
/* Field readers. On success they fill *out; on failure they report.   */
/* ------------------------------------------------------------------ */

typedef enum str_rule {
    STR_REQUIRED, /* must be a string */
    STR_OPTIONAL, /* absent or null: ptr NULL */
    STR_DEFAULTED /* absent: ptr NULL (the caller's default); null is an error */
} str_rule;

static int check_text(pctx *c, const char *key, const char *s, size_t len)
{
    switch (cpex__text_check_bytes(s, len)) {
    case CPEX__TEXT_NUL: return fail(c, key, "contains a NUL character, which is not allowed");
    case CPEX__TEXT_UTF8: return fail(c, key, "is not valid UTF-8");
    default: return 0;
    }
}

/* The string stays borrowed from `obj`. */
static int read_str(pctx *c, const json_t *obj, const char *key, str_rule rule, cpex_str *out)
{
    const json_t *v = json_object_get(obj, key);
    out->ptr = NULL;
    out->len = 0;
    if (!v && rule == STR_REQUIRED)
        return fail(c, key, "required field is missing");
    if (!v || (json_is_null(v) && rule == STR_OPTIONAL))
        return 0;
    if (!json_is_string(v))
        return fail(c, key, "expected a string, got %s", type_name(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (check_text(c, key, s, len))
        return -1;
    out->ptr = s;
    out->len = len;
    return 0;
}

/* CPEX's u64 fields; absent or null gives -1. */
static int read_count(pctx *c, const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = -1;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return fail(c, key, "expected a non-negative integer, got %s", type_name(v));
    json_int_t n = json_integer_value(v);
    if (n < 0)
        return fail(c, key, "expected a non-negative integer, got %lld", (long long)n);
    *out = (int64_t)n;
    return 0;
}

static int read_bool(pctx *c, const json_t *obj, const char *key, uint32_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return fail(c, key, "expected a boolean, got %s", type_name(v));
    *out = json_is_true(v) ? 1u : 0u;
    return 0;
}

/* A private copy of an object field, {} when absent. */
static int read_object(pctx *c, const json_t *obj, const char *key, const cpex_json **out)
{
    const json_t *v = json_object_get(obj, key);
    if (v && !json_is_object(v))
        return fail(c, key, "expected an object, got %s", type_name(v));
    json_t *copy = v ? json_deep_copy(v) : json_object();
    if (!copy)
        return oom(c);
    *out = (const cpex_json *)copy;
    return 0;
}

static int read_any(pctx *c, const json_t *obj, const char *key, const cpex_json **out)
{
    const json_t *v = json_object_get(obj, key);
    json_t *copy = v ? json_deep_copy(v) : json_null();
    if (!copy)
        return oom(c);
    *out = (const cpex_json *)copy;
    return 0;
}

static int read_resource_type(pctx *c, const json_t *obj, uint32_t *out)
{
    cpex_str s;
    *out = CPEX_RESOURCE_FILE;
    if (read_str(c, obj, "resource_type", STR_DEFAULTED, &s))
        return -1;
    if (!s.ptr)
        return 0;
    int idx = lookup_name(c, "resource_type", "resource type", cpex__cmf_resource_type_names,
                          CMF_RESOURCE_TYPE_COUNT, s);
    if (idx < 0)
        return -1;
    *out = (uint32_t)idx;
    return 0;
}

/* serde's Vec<u8>: an array of integers 0-255. The bytes go to *scratch,
 * which the caller frees after packing. */
static int read_blob(pctx *c, const json_t *obj, cpex_str *out, char **scratch)
{
    const json_t *v = json_object_get(obj, "blob");
    out->ptr = NULL;
    out->len = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fail(c, "blob", "expected an array of bytes (integers 0-255), got %s", type_name(v));
    size_t n = json_array_size(v);
    char *bytes = cpex__malloc(n ? n : 1);
    if (!bytes)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        const json_t *b = json_array_get(v, i);
        if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 255) {
            char key[48], got[32];
            snprintf(key, sizeof(key), "blob[%zu]", i);
            if (json_is_integer(b))
                snprintf(got, sizeof(got), "%lld", (long long)json_integer_value(b));
            cpex__free(bytes);
            return fail(c, key, "expected an integer 0-255, got %s",
                        json_is_integer(b) ? got : type_name(b));
        }
        bytes[i] = (char)(unsigned char)json_integer_value(b);
    }
    *scratch = bytes;
    out->ptr = bytes;
    out->len = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Bodies                                                              */
/* ------------------------------------------------------------------ */

static cpex_cmf_message *parse_message(pctx *c, const json_t *json, int depth);

static int parse_tool_call(pctx *c, const json_t *o, cpex_cmf_tool_call *b)
{
    if (read_str(c, o, "tool_call_id", STR_REQUIRED, &b->tool_call_id) ||
        read_str(c, o, "name", STR_REQUIRED, &b->name) ||
        read_str(c, o, "namespace", STR_OPTIONAL, &b->namespace_))
        return -1;
    return read_object(c, o, "arguments", &b->arguments);
}

static int parse_tool_result(pctx *c, const json_t *o, cpex_cmf_tool_result *b)
{
    if (read_str(c, o, "tool_call_id", STR_REQUIRED, &b->tool_call_id) ||
        read_str(c, o, "tool_name", STR_REQUIRED, &b->tool_name) ||
        read_bool(c, o, "is_error", &b->is_error))
        return -1;
    return read_any(c, o, "content", &b->content);
}

static int parse_resource(pctx *c, const json_t *o, cpex_cmf_resource *b, char **scratch)
{
    if (read_str(c, o, "resource_request_id", STR_REQUIRED, &b->resource_request_id) ||
        read_str(c, o, "uri", STR_REQUIRED, &b->uri) ||
        read_str(c, o, "name", STR_OPTIONAL, &b->name) ||
        read_str(c, o, "description", STR_OPTIONAL, &b->description) ||
        read_resource_type(c, o, &b->resource_type) ||
        read_str(c, o, "content", STR_OPTIONAL, &b->content) ||
        read_str(c, o, "mime_type", STR_OPTIONAL, &b->mime_type) ||
        read_count(c, o, "size_bytes", &b->size_bytes) ||
        read_str(c, o, "version", STR_OPTIONAL, &b->version))
        return -1;
    if (read_blob(c, o, &b->blob, scratch))
        return -1;
    return read_object(c, o, "annotations", &b->annotations);
}

static int parse_resource_ref(pctx *c, const json_t *o, cpex_cmf_resource_ref *b)
{
    if (read_str(c, o, "resource_request_id", STR_REQUIRED, &b->resource_request_id) ||
        read_str(c, o, "uri", STR_REQUIRED, &b->uri) ||
        read_str(c, o, "name", STR_OPTIONAL, &b->name) ||
        read_resource_type(c, o, &b->resource_type) ||
        read_count(c, o, "range_start", &b->range_start) ||
        read_count(c, o, "range_end", &b->range_end) ||
        read_str(c, o, "selector", STR_OPTIONAL, &b->selector))
        return -1;
    return 0;
}

static int parse_prompt_request(pctx *c, const json_t *o, cpex_cmf_prompt_request *b)
{
    if (read_str(c, o, "prompt_request_id", STR_REQUIRED, &b->prompt_request_id) ||
        read_str(c, o, "name", STR_REQUIRED, &b->name) ||
        read_str(c, o, "server_id", STR_OPTIONAL, &b->server_id))
        return -1;
    return read_object(c, o, "arguments", &b->arguments);
}

/* Nested messages are owned by `b` as soon as they exist, so releasing the
 * template after a failure frees them. */
static int parse_prompt_messages(pctx *c, const json_t *o, cpex_cmf_prompt_result *b, int depth)
{
    const json_t *v = json_object_get(o, "messages");
    if (!v)
        return 0;
    if (!json_is_array(v))
        return fail(c, "messages", "expected an array of messages, got %s", type_name(v));
    size_t n = json_array_size(v);
    if (n == 0)
        return 0;
    cpex_cmf_message **msgs = cpex__calloc(n, sizeof(*msgs));
    if (!msgs)
        return oom(c);
    b->messages = (const cpex_cmf_message *const *)msgs;
    for (size_t i = 0; i < n; i++) {
        size_t mark = path_push(c, "%smessages[%zu]", c->len ? "." : "", i);
        msgs[i] = parse_message(c, json_array_get(v, i), depth + 1);
        path_pop(c, mark);
        if (!msgs[i])
            return -1;
        b->message_count = i + 1;
    }
    return 0;
}

static int parse_prompt_result(pctx *c, const json_t *o, cpex_cmf_prompt_result *b, int depth)
{
    if (read_str(c, o, "prompt_request_id", STR_REQUIRED, &b->prompt_request_id) ||
        read_str(c, o, "prompt_name", STR_REQUIRED, &b->prompt_name) ||
        read_str(c, o, "content", STR_OPTIONAL, &b->content) ||
        read_bool(c, o, "is_error", &b->is_error) ||
        read_str(c, o, "error_message", STR_OPTIONAL, &b->error_message))
        return -1;
    return parse_prompt_messages(c, o, b, depth);
}

/* `type` is not checked against "url"/"base64": CPEX keeps it a free string. */
static int parse_media(pctx *c, const json_t *o, uint32_t kind, cpex_cmf_media *b)
{
    if (read_str(c, o, "type", STR_REQUIRED, &b->type) ||
        read_str(c, o, "data", STR_REQUIRED, &b->data) ||
        read_str(c, o, "media_type", STR_OPTIONAL, &b->media_type))
        return -1;
    if (kind == CPEX_PART_VIDEO || kind == CPEX_PART_AUDIO)
        return read_count(c, o, "duration_ms", &b->duration_ms);
    if (kind == CPEX_PART_DOCUMENT)
        return read_str(c, o, "title", STR_OPTIONAL, &b->title);
    return 0;
}

/* Fills `t` (owning its JSON values and messages, borrowing strings). On
 * failure `t` owns nothing. */
static int parse_body(pctx *c, uint32_t kind, const json_t *o, int depth, cpex__cmf_body_any *t,
                      char **scratch)
{
    int rc;
    cpex__cmf_body_init(kind, t);
    switch (kind) {
    case CPEX_PART_TOOL_CALL: rc = parse_tool_call(c, o, &t->tool_call); break;
    case CPEX_PART_TOOL_RESULT: rc = parse_tool_result(c, o, &t->tool_result); break;
    case CPEX_PART_RESOURCE: rc = parse_resource(c, o, &t->resource, scratch); break;
    case CPEX_PART_RESOURCE_REF: rc = parse_resource_ref(c, o, &t->resource_ref); break;
    case CPEX_PART_PROMPT_REQUEST: rc = parse_prompt_request(c, o, &t->prompt_request); break;
    case CPEX_PART_PROMPT_RESULT: rc = parse_prompt_result(c, o, &t->prompt_result, depth); break;
    default: rc = parse_media(c, o, kind, &t->media); break;
    }
    if (rc)
        cpex__cmf_body_release(kind, t);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Parts and messages                                                  */
/* ------------------------------------------------------------------ */

static int parse_kind(pctx *c, const json_t *item, uint32_t *kind)
{
    cpex_str ct;
    if (read_str(c, item, "content_type", STR_REQUIRED, &ct))
        return -1;
    int idx = lookup_name(c, "content_type", "content type", cpex__cmf_kind_names,
                          CPEX_PART_KIND_COUNT, ct);
    if (idx < 0)
        return -1;
    *kind = (uint32_t)idx;
    return 0;
}

static int parse_text_part(pctx *c, const json_t *item, cpex_cmf_part *out)
{
    cpex_str text;
    if (read_str(c, item, "text", STR_REQUIRED, &text))
        return -1;
    out->text.ptr = cpex__cmf_text_new(out->kind, text.ptr, text.len);
    out->text.len = text.len;
    return out->text.ptr ? 0 : oom(c);
}

static int parse_body_part(pctx *c, const json_t *item, int depth, cpex_cmf_part *out)
{
    const json_t *content = json_object_get(item, "content");
    if (!content)
        return fail(c, "content", "required field is missing");
    if (!json_is_object(content))
        return fail(c, "content", "expected an object, got %s", type_name(content));
    cpex__cmf_body_any tmpl;
    char *scratch = NULL;
    size_t mark = path_key(c, "content");
    int rc = parse_body(c, out->kind, content, depth, &tmpl, &scratch);
    path_pop(c, mark);
    if (rc == 0) {
        out->body = cpex__cmf_body_pack(out->kind, &tmpl);
        rc = out->body ? 0 : oom(c);
    }
    cpex__free(scratch);
    return rc;
}

/* Fills `out`; on failure `out` owns nothing. */
static int parse_part(pctx *c, const json_t *item, int depth, cpex_cmf_part *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(item))
        return fail(c, NULL, "expected an object, got %s", type_name(item));
    uint32_t kind = 0;
    if (parse_kind(c, item, &kind))
        return -1;
    out->struct_size = (uint32_t)sizeof(*out);
    out->kind = kind;
    int rc = cpex__cmf_kind_has_body(kind) ? parse_body_part(c, item, depth, out)
                                           : parse_text_part(c, item, out);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int parse_role(pctx *c, const json_t *json, uint32_t *role)
{
    cpex_str s;
    if (read_str(c, json, "role", STR_REQUIRED, &s))
        return -1;
    int idx = lookup_name(c, "role", "role", cpex__cmf_role_names, CMF_ROLE_COUNT, s);
    if (idx < 0)
        return -1;
    *role = (uint32_t)idx;
    return 0;
}

static int parse_channel(pctx *c, const json_t *json, cpex_str *channel)
{
    if (read_str(c, json, "channel", STR_OPTIONAL, channel))
        return -1;
    if (!channel->ptr)
        return 0;
    return lookup_name(c, "channel", "channel", cpex__cmf_channel_names, CMF_CHANNEL_COUNT,
                       *channel) < 0
               ? -1
               : 0;
}

static int parse_parts(pctx *c, const json_t *content, int depth, cpex_cmf_message *m)
{
    for (size_t i = 0; i < json_array_size(content); i++) {
        size_t mark = path_push(c, "%scontent[%zu]", c->len ? "." : "", i);
        int rc = parse_part(c, json_array_get(content, i), depth, &cmf_parts(m)[i]);
        path_pop(c, mark);
        if (rc)
            return -1;
        m->part_count = i + 1;
    }
    return 0;
}

static cpex_cmf_message *parse_message(pctx *c, const json_t *json, int depth)
{
    if (depth > CMF_MAX_DEPTH) {
        fail(c, NULL, "prompt_result messages nested more than %d levels deep", CMF_MAX_DEPTH);
        return NULL;
    }
    if (!json_is_object(json)) {
        fail(c, NULL, "expected a message object, got %s", type_name(json));
        return NULL;
    }
    uint32_t role = 0;
    cpex_str schema, channel;
    if (parse_role(c, json, &role) || read_str(c, json, "schema_version", STR_DEFAULTED, &schema) ||
        parse_channel(c, json, &channel))
        return NULL;
    const json_t *content = json_object_get(json, "content");
    if (content && !json_is_array(content)) {
        fail(c, "content", "expected an array of content parts, got %s", type_name(content));
        return NULL;
    }
    cpex_cmf_message *m =
        cpex__cmf_message_alloc(role, schema.ptr ? schema.ptr : "2.0", schema.ptr ? schema.len : 3,
                                content ? json_array_size(content) : 0);
    if (!m) {
        oom(c);
        return NULL;
    }
    if (channel.ptr && cpex__cmf_message_set_channel(m, channel.ptr, channel.len) != CPEX_OK) {
        oom(c);
        goto fail;
    }
    if (content && parse_parts(c, content, depth, m))
        goto fail;
    return m;
fail:
    cpex_cmf_free(m);
    return NULL;
}

cpex_cmf_message *cpex_cmf_from_json(const json_t *json, cpex_error *err)
{
    pctx c;
    c.err = err;
    c.len = 0;
    c.path[0] = '\0';
    return parse_message(&c, json, 0);
}

cpex_cmf_message *cpex_cmf_parse(const char *text, size_t len, cpex_error *err)
{
    if (!text) {
        cpex__error_add(err, CPEX_E_INVALID, NULL, "message: no JSON text given");
        return NULL;
    }
    json_error_t jerr;
    json_t *json = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!json) {
        cpex__error_add(err, CPEX_E_INVALID, NULL,
                        "message: invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                        jerr.text);
        return NULL;
    }
    cpex_cmf_message *m = cpex_cmf_from_json(json, err);
    json_decref(json);
    return m;
}
