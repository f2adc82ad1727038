/*
 * cmf_json_write.c — writing a CMF message in the CPEX core's JSON form
 * (cpex_cmf_to_json, cpex_cmf_dump in cpex/cmf.h).
 *
 * The writing half of cmf_json.c, which reads the same form: absent
 * optional fields are left out and, as CPEX does, an empty
 * resource.annotations; defaulted fields are always written. JSON values
 * are deep-copied, so the caller owns the result.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/cmf.h"
#include "model/cmf_internal.h"
#include "model/json_dump.h"

/* ------------------------------------------------------------------ */
/* Writing. Each put_* returns 0, or -1 when memory ran out.           */
/* ------------------------------------------------------------------ */

/* json_object_set_new frees `v` on failure and refuses NULL. */
static int put(json_t *obj, const char *key, json_t *v)
{
    return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

static int put_str(json_t *obj, const char *key, cpex_str s)
{
    return put(obj, key, json_stringn(s.ptr ? s.ptr : "", s.len));
}

static int put_opt_str(json_t *obj, const char *key, cpex_str s)
{
    return s.ptr ? put_str(obj, key, s) : 0;
}

static int put_opt_count(json_t *obj, const char *key, int64_t n)
{
    return n >= 0 ? put(obj, key, json_integer((json_int_t)n)) : 0;
}

static int put_bool(json_t *obj, const char *key, uint32_t b)
{
    return put(obj, key, json_boolean(b));
}

static int put_copy(json_t *obj, const char *key, const cpex_json *v, int object)
{
    const json_t *j = (const json_t *)v;
    return put(obj, key, j ? json_deep_copy(j) : object ? json_object() : json_null());
}

static int put_resource_type(json_t *obj, uint32_t type)
{
    if (type >= CMF_RESOURCE_TYPE_COUNT)
        type = CPEX_RESOURCE_FILE;
    return put(obj, "resource_type", json_string(cpex__cmf_resource_type_names[type]));
}

static int put_blob(json_t *obj, cpex_str blob)
{
    if (!blob.ptr)
        return 0;
    json_t *arr = json_array();
    if (!arr)
        return -1;
    const unsigned char *bytes = (const unsigned char *)blob.ptr;
    for (size_t i = 0; i < blob.len; i++) {
        if (json_array_append_new(arr, json_integer(bytes[i]))) {
            json_decref(arr);
            return -1;
        }
    }
    return put(obj, "blob", arr);
}

static int write_tool_call(json_t *o, const cpex_cmf_tool_call *b)
{
    return put_str(o, "tool_call_id", b->tool_call_id) || put_str(o, "name", b->name) ||
           put_copy(o, "arguments", b->arguments, 1) || put_opt_str(o, "namespace", b->namespace_);
}

static int write_tool_result(json_t *o, const cpex_cmf_tool_result *b)
{
    return put_str(o, "tool_call_id", b->tool_call_id) || put_str(o, "tool_name", b->tool_name) ||
           put_copy(o, "content", b->content, 0) || put_bool(o, "is_error", b->is_error);
}

static int write_resource(json_t *o, const cpex_cmf_resource *b)
{
    const json_t *ann = (const json_t *)b->annotations;
    return put_str(o, "resource_request_id", b->resource_request_id) || put_str(o, "uri", b->uri) ||
           put_opt_str(o, "name", b->name) || put_opt_str(o, "description", b->description) ||
           put_resource_type(o, b->resource_type) || put_opt_str(o, "content", b->content) ||
           put_blob(o, b->blob) || put_opt_str(o, "mime_type", b->mime_type) ||
           put_opt_count(o, "size_bytes", b->size_bytes) ||
           (ann && json_object_size(ann) && put_copy(o, "annotations", b->annotations, 1)) ||
           put_opt_str(o, "version", b->version);
}

static int write_resource_ref(json_t *o, const cpex_cmf_resource_ref *b)
{
    return put_str(o, "resource_request_id", b->resource_request_id) || put_str(o, "uri", b->uri) ||
           put_opt_str(o, "name", b->name) || put_resource_type(o, b->resource_type) ||
           put_opt_count(o, "range_start", b->range_start) ||
           put_opt_count(o, "range_end", b->range_end) || put_opt_str(o, "selector", b->selector);
}

static int write_prompt_request(json_t *o, const cpex_cmf_prompt_request *b)
{
    return put_str(o, "prompt_request_id", b->prompt_request_id) || put_str(o, "name", b->name) ||
           put_copy(o, "arguments", b->arguments, 1) || put_opt_str(o, "server_id", b->server_id);
}

static int write_prompt_messages(json_t *o, const cpex_cmf_prompt_result *b)
{
    json_t *arr = json_array();
    if (!arr)
        return -1;
    for (size_t i = 0; i < b->message_count; i++) {
        if (json_array_append_new(arr, cpex_cmf_to_json(b->messages[i]))) {
            json_decref(arr);
            return -1;
        }
    }
    return put(o, "messages", arr);
}

static int write_prompt_result(json_t *o, const cpex_cmf_prompt_result *b)
{
    return put_str(o, "prompt_request_id", b->prompt_request_id) ||
           put_str(o, "prompt_name", b->prompt_name) || write_prompt_messages(o, b) ||
           put_opt_str(o, "content", b->content) || put_bool(o, "is_error", b->is_error) ||
           put_opt_str(o, "error_message", b->error_message);
}

static int write_media(json_t *o, uint32_t kind, const cpex_cmf_media *b)
{
    if (put_str(o, "type", b->type) || put_str(o, "data", b->data) ||
        put_opt_str(o, "media_type", b->media_type))
        return -1;
    if (kind == CPEX_PART_VIDEO || kind == CPEX_PART_AUDIO)
        return put_opt_count(o, "duration_ms", b->duration_ms);
    if (kind == CPEX_PART_DOCUMENT)
        return put_opt_str(o, "title", b->title);
    return 0;
}

static json_t *body_to_json(uint32_t kind, const void *body)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc;
    switch (kind) {
    case CPEX_PART_TOOL_CALL: rc = write_tool_call(o, body); break;
    case CPEX_PART_TOOL_RESULT: rc = write_tool_result(o, body); break;
    case CPEX_PART_RESOURCE: rc = write_resource(o, body); break;
    case CPEX_PART_RESOURCE_REF: rc = write_resource_ref(o, body); break;
    case CPEX_PART_PROMPT_REQUEST: rc = write_prompt_request(o, body); break;
    case CPEX_PART_PROMPT_RESULT: rc = write_prompt_result(o, body); break;
    default: rc = write_media(o, kind, body); break;
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *part_to_json(const cpex_cmf_part *p)
{
    const char *name = cpex_cmf_part_kind_name(p->kind);
    if (!name || (cpex__cmf_kind_has_body(p->kind) && !p->body))
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = put(o, "content_type", json_string(name));
    if (!rc)
        rc = cpex__cmf_kind_has_body(p->kind) ? put(o, "content", body_to_json(p->kind, p->body))
                                              : put_str(o, "text", p->text);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cpex_cmf_to_json(const cpex_cmf_message *message)
{
    const char *role = message ? cpex_cmf_role_name(message->role) : NULL;
    if (!role)
        return NULL;
    cpex_str schema = message->schema_version;
    if (!schema.ptr)
        schema = (cpex_str){"2.0", 3};
    json_t *o = json_object();
    json_t *parts = json_array();
    if (!o || !parts || put_str(o, "schema_version", schema) || put(o, "role", json_string(role)))
        goto fail;
    for (size_t i = 0; i < message->part_count; i++)
        if (json_array_append_new(parts, part_to_json(&message->parts[i])))
            goto fail;
    json_t *content = parts;
    parts = NULL; /* put() takes it, whatever happens */
    if (put(o, "content", content) || put_opt_str(o, "channel", message->channel))
        goto fail;
    return o;
fail:
    json_decref(parts);
    json_decref(o);
    return NULL;
}

char *cpex_cmf_dump(const cpex_cmf_message *message)
{
    json_t *json = cpex_cmf_to_json(message);
    if (!json)
        return NULL;
    char *text = cpex__json_dump(json, JSON_COMPACT);
    json_decref(json);
    return text;
}
