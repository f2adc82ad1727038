/*
 * host_api.c — the table of functions plugins call (cpex_host_api of
 * abi.h). Every slot that takes a call checks that the call is one of ours,
 * that the plugin's capabilities allow the access and that its mode allows
 * the change; a refused change is recorded as a soft error naming the
 * plugin, never silently dropped.
 *
 * Threads (what the [thread: …] tags of abi.h promise): the slots that take
 * a call read and write its call state without a lock, so they hold only on
 * the thread running that handler and only until it returns (the executor
 * reuses the state for the next plugin of a phase). The json_*, cmf_* and
 * free slots touch nothing but their arguments. `log` without a call finds
 * the plugin through the thread's log scope, set around create,
 * initialize, shutdown and destroy; elsewhere it has no manager to name.
 */
#include <stdio.h>
#include <string.h>

#include "core/call.h"
#include "core/host_slots.h"
#include "core/call_view.h"
#include "core/core.h"
#include "core/host_state.h"
#include "cpex/cmf.h"
#include "cpex/json.h"
#include "model/json_dump.h"
#include "util/alloc.h"
#include "util/text.h"

/* ---- logging ---- */

static void h_log(const cpex_call *call, uint32_t level, const char *message)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!message)
        return;
    const cpex__log_scope *scope = cpex__current_log_scope;
    if (cs)
        cpex__log(cpex__hub_sink(cs->hub), level, cs->plugin->name, "%s", message);
    else if (scope)
        cpex__log(cpex__hub_sink(scope->hub), level, scope->plugin, "%s", message);
    else
        cpex__log(NULL, level, NULL, "%s", message);
}

/* ---- result ---- */

static int32_t h_deny(const cpex_call *call, const char *code, const char *reason,
                      const char *description, cpex_json *details)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    json_t *d = cpex_json_to_jansson(details);
    if (!cs || !code || !reason || (d && !json_is_object(d))) {
        json_decref(d);
        return CPEX_HOST_EINVAL;
    }
    cpex_violation *v = cpex__violation_new(code, reason, description, d, cs->plugin->name);
    if (!v)
        return CPEX_HOST_ENOMEM;
    cpex__text_one_line(v->code);
    cpex__text_one_line(v->reason);
    cpex__text_one_line(v->description);
    cpex_violation_free(cs->violation);
    cs->violation = v;
    cs->dirty = true;
    return CPEX_HOST_OK;
}

static int32_t h_set_error(const cpex_call *call, const char *message)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !message)
        return CPEX_HOST_EINVAL;
    char *copy = cpex__strdup(message);
    if (!copy)
        return CPEX_HOST_ENOMEM;
    cpex__text_one_line(copy);
    cpex__free(cs->error_message);
    cs->error_message = copy;
    cs->dirty = true;
    return CPEX_HOST_OK;
}

static int32_t h_set_metadata(const cpex_call *call, const char *key, cpex_json *value)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    json_t *v = cpex_json_to_jansson(value);
    if (!cs || !key || !v) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    cs->dirty = true;
    if (!cs->metadata && !(cs->metadata = json_object())) {
        json_decref(v);
        return CPEX_HOST_ENOMEM;
    }
    return json_object_set_new(cs->metadata, key, v) == 0 ? CPEX_HOST_OK : CPEX_HOST_ENOMEM;
}

/* Common checks of a payload replacement. `free_fn` frees `data` when it is
 * refused (its own kind's free); once accepted, data is of the hook's type
 * and is freed with that type's ops. */
static int32_t accept_payload(cpex__call_state *cs, uint32_t kind, void *data,
                              void (*free_fn)(void *, void *), void *user)
{
    if (!cs->can_modify) {
        cpex__call_record(cs, CPEX_CODE_DROPPED_MODIFICATION,
                          "plugin modified the payload in %s mode, which cannot modify; the "
                          "modification was dropped",
                          cpex_mode_name(cs->mode));
        free_fn(data, user);
        return CPEX_HOST_EDENIED;
    }
    if (cs->ops->kind != kind) {
        cpex__call_record(cs, CPEX_CODE_DROPPED_MODIFICATION,
                          "plugin returned a payload of another type than the hook's ('%s'); the "
                          "modification was dropped",
                          cs->ops->type_name ? cs->ops->type_name : "none");
        free_fn(data, user);
        return CPEX_HOST_EINVAL;
    }
    if (cs->new_payload)
        cs->ops->free(cs->new_payload, cs->ops->user);
    cs->new_payload = data;
    cs->dirty = true;
    return CPEX_HOST_OK;
}

static int32_t h_set_payload_cmf(const cpex_call *call, cpex_cmf_message *message)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !message) {
        cpex_cmf_free(message);
        return CPEX_HOST_EINVAL;
    }
    return accept_payload(cs, CPEX_PAYLOAD_CMF, message, cpex__payload_free_cmf, NULL);
}

static int32_t h_set_payload_json(const cpex_call *call, cpex_json *document)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    json_t *d = cpex_json_to_jansson(document);
    if (!cs || !d) {
        json_decref(d);
        return CPEX_HOST_EINVAL;
    }
    return accept_payload(cs, CPEX_PAYLOAD_JSON, d, cpex__payload_free_json, NULL);
}

cpex_status cpex_call_set_payload_custom(const cpex_call *call, void *data)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || cs->ops->kind != CPEX_PAYLOAD_CUSTOM || !cs->ops->free || !data)
        return CPEX_E_INVALID;
    /* The type's free comes from the pipeline's own copy of the type: the
     * registry snapshot may be gone for a call that outlived its invoke. */
    int32_t rc = accept_payload(cs, CPEX_PAYLOAD_CUSTOM, data, cs->ops->free, cs->ops->user);
    return rc == CPEX_HOST_OK ? CPEX_OK : rc == CPEX_HOST_EDENIED ? CPEX_E_STATE : CPEX_E_INVALID;
}

/* ---- reading JSON ---- */

static uint32_t h_json_type(const cpex_json *value)
{
    const json_t *j = cpex_json_to_jansson_const(value);
    if (!j)
        return CPEX_JSON_INVALID;
    switch (json_typeof(j)) {
    case JSON_NULL: return CPEX_JSON_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return CPEX_JSON_BOOL;
    case JSON_INTEGER: return CPEX_JSON_INTEGER;
    case JSON_REAL: return CPEX_JSON_REAL;
    case JSON_STRING: return CPEX_JSON_STRING;
    case JSON_ARRAY: return CPEX_JSON_ARRAY;
    case JSON_OBJECT: return CPEX_JSON_OBJECT;
    }
    return CPEX_JSON_INVALID;
}

static const char *h_json_string(const cpex_json *value, size_t *len)
{
    const json_t *j = cpex_json_to_jansson_const(value);
    if (!json_is_string(j)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = json_string_length(j);
    return json_string_value(j);
}

static int64_t h_json_integer(const cpex_json *value)
{
    const json_t *j = cpex_json_to_jansson_const(value);
    return json_is_integer(j) ? (int64_t)json_integer_value(j) : 0;
}

static double h_json_real(const cpex_json *value)
{
    const json_t *j = cpex_json_to_jansson_const(value);
    return json_is_number(j) ? json_number_value(j) : 0.0;
}

static int32_t h_json_bool(const cpex_json *value)
{
    return json_is_true(cpex_json_to_jansson_const(value)) ? 1 : 0;
}

static size_t h_json_size(const cpex_json *value)
{
    const json_t *j = cpex_json_to_jansson_const(value);
    if (json_is_array(j))
        return json_array_size(j);
    if (json_is_object(j))
        return json_object_size(j);
    return 0;
}

static const cpex_json *h_json_array_get(const cpex_json *array, size_t index)
{
    return (const cpex_json *)json_array_get(cpex_json_to_jansson_const(array), index);
}

static const cpex_json *h_json_object_get(const cpex_json *object, const char *key)
{
    if (!key)
        return NULL;
    return (const cpex_json *)json_object_get(cpex_json_to_jansson_const(object), key);
}

static const cpex_json *h_json_object_at(const cpex_json *object, size_t index, const char **key)
{
    json_t *j = (json_t *)cpex_json_to_jansson_const(object);
    if (!json_is_object(j))
        return NULL;
    size_t i = 0;
    for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it), i++) {
        if (i == index) {
            if (key)
                *key = json_object_iter_key(it);
            return (const cpex_json *)json_object_iter_value(it);
        }
    }
    return NULL;
}

static char *h_json_dump(const cpex_json *value)
{
    const json_t *j = cpex_json_to_jansson_const(value);
    return cpex__json_dump(j, JSON_COMPACT);
}

/* ---- building JSON ---- */

static cpex_json *h_json_parse(const char *text, size_t len)
{
    if (!text)
        return NULL;
    return cpex_json_from_jansson(json_loadb(text, len, JSON_DECODE_ANY, NULL));
}

static cpex_json *h_json_new_object(void) { return cpex_json_from_jansson(json_object()); }
static cpex_json *h_json_new_array(void) { return cpex_json_from_jansson(json_array()); }
static cpex_json *h_json_new_string(const char *text, size_t len)
{
    return text ? cpex_json_from_jansson(json_stringn(text, len)) : NULL;
}
static cpex_json *h_json_new_integer(int64_t v) { return cpex_json_from_jansson(json_integer(v)); }
static cpex_json *h_json_new_real(double v) { return cpex_json_from_jansson(json_real(v)); }
static cpex_json *h_json_new_bool(int32_t v) { return cpex_json_from_jansson(json_boolean(v)); }
static cpex_json *h_json_new_null(void) { return cpex_json_from_jansson(json_null()); }
static cpex_json *h_json_copy(const cpex_json *v)
{
    return cpex_json_from_jansson(json_deep_copy(cpex_json_to_jansson_const(v)));
}

static int32_t h_json_object_set(cpex_json *object, const char *key, cpex_json *value)
{
    json_t *o = cpex_json_to_jansson(object), *v = cpex_json_to_jansson(value);
    if (!json_is_object(o) || !key || !v) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    return json_object_set_new(o, key, v) == 0 ? CPEX_HOST_OK : CPEX_HOST_ENOMEM;
}

static int32_t h_json_array_append(cpex_json *array, cpex_json *value)
{
    json_t *a = cpex_json_to_jansson(array), *v = cpex_json_to_jansson(value);
    if (!json_is_array(a) || !v) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    return json_array_append_new(a, v) == 0 ? CPEX_HOST_OK : CPEX_HOST_ENOMEM;
}

static void h_json_free(cpex_json *value) { json_decref(cpex_json_to_jansson(value)); }
static void h_free(void *memory) { cpex__free(memory); }

/* ---- CMF ---- */

static cpex_cmf_message *h_cmf_clone(const cpex_cmf_message *m) { return cpex_cmf_clone(m); }
static cpex_cmf_message *h_cmf_parse(const char *json, size_t len)
{
    return json ? cpex_cmf_parse(json, len, NULL) : NULL;
}
static char *h_cmf_to_json(const cpex_cmf_message *m) { return m ? cpex_cmf_dump(m) : NULL; }

static int32_t status_to_host(cpex_status st)
{
    switch (st) {
    case CPEX_OK: return CPEX_HOST_OK;
    case CPEX_E_NOMEM: return CPEX_HOST_ENOMEM;
    default: return CPEX_HOST_EINVAL;
    }
}

static int32_t h_cmf_set_text(cpex_cmf_message *m, size_t part, const char *text, size_t len)
{
    if (!m || !text)
        return CPEX_HOST_EINVAL;
    return status_to_host(cpex_cmf_set_text(m, part, text, len));
}

static int32_t h_cmf_set_tool_arguments(cpex_cmf_message *m, size_t part, cpex_json *arguments)
{
    json_t *a = cpex_json_to_jansson(arguments);
    if (!m || !a) {
        json_decref(a);
        return CPEX_HOST_EINVAL;
    }
    return status_to_host(cpex_cmf_set_tool_arguments(m, part, a));
}

static int32_t h_cmf_append_text(cpex_cmf_message *m, uint32_t kind, const char *text, size_t len)
{
    if (!m || !text)
        return CPEX_HOST_EINVAL;
    return status_to_host(cpex_cmf_append_text(m, kind, text, len));
}

static int32_t h_cmf_remove_part(cpex_cmf_message *m, size_t part)
{
    if (!m)
        return CPEX_HOST_EINVAL;
    return status_to_host(cpex_cmf_remove_part(m, part));
}

static void h_cmf_free(cpex_cmf_message *m) { cpex_cmf_free(m); }

/* ---- extensions ---- */

/* What the plugin reads: its own pending writes over the pipeline's. */
static const cpex_extensions *ext_source(const cpex__call_state *cs)
{
    return cs->pending_ext ? cs->pending_ext : cs->ext;
}

/* Lend `v` to the plugin: OK, or NOTFOUND (ptr NULL, len 0) for NULL. */
static int32_t lend_str(const char *v, cpex_str *out)
{
    out->ptr = v;
    out->len = v ? strlen(v) : 0;
    return v ? CPEX_HOST_OK : CPEX_HOST_ENOTFOUND;
}

/* Whether the call's plugin may read `field`, with extensions to read from. */
static bool can_read_field(const cpex__call_state *cs, uint32_t field)
{
    return ext_source(cs) && cpex__caps_can_read_field(cs->plugin->caps, field);
}

static int32_t h_ext_get(const cpex_call *call, uint32_t field, cpex_str *out)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !out)
        return CPEX_HOST_EINVAL;
    return lend_str(can_read_field(cs, field) ? cpex_extensions_get(ext_source(cs), field) : NULL,
                    out);
}

static size_t h_ext_count(const cpex_call *call, uint32_t field)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !can_read_field(cs, field))
        return 0;
    return cpex_extensions_count(ext_source(cs), field);
}

static int32_t h_ext_item(const cpex_call *call, uint32_t field, size_t index, cpex_str *out)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !out)
        return CPEX_HOST_EINVAL;
    return lend_str(
        can_read_field(cs, field) ? cpex_extensions_item(ext_source(cs), field, index) : NULL, out);
}

static bool can_read_headers(const cpex__call_state *cs)
{
    return (cs->plugin->caps & CPEX_CAP_READ_HEADERS) != 0 && ext_source(cs);
}

static int32_t h_ext_header(const cpex_call *call, uint32_t set, const char *name, cpex_str *out)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !name || !out)
        return CPEX_HOST_EINVAL;
    return lend_str(can_read_headers(cs) ? cpex_extensions_header(ext_source(cs), set, name) : NULL,
                    out);
}

static size_t h_ext_header_count(const cpex_call *call, uint32_t set)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !can_read_headers(cs))
        return 0;
    return cpex_extensions_header_count(ext_source(cs), set);
}

static int32_t h_ext_header_at(const cpex_call *call, uint32_t set, size_t index, cpex_str *name,
                               cpex_str *value)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !name || !value)
        return CPEX_HOST_EINVAL;
    const char *v = NULL;
    const char *n =
        can_read_headers(cs) ? cpex_extensions_header_at(ext_source(cs), set, index, &v) : NULL;
    lend_str(n ? (v ? v : "") : NULL, value);
    return lend_str(n, name);
}

static const cpex_json *h_ext_custom(const cpex_call *call, const char *key)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !key || !ext_source(cs) || !(cs->plugin->caps & CPEX_CAP_READ_CUSTOM))
        return NULL;
    return (const cpex_json *)cpex_extensions_custom(ext_source(cs), key);
}

/* May this call `action` (e.g. "set header") `subject` (its name) with
 * capability `cap`? Records a refusal. */
static int32_t may_write(cpex__call_state *cs, cpex__caps cap, const char *action,
                         const char *subject)
{
    if (!(cs->plugin->caps & cap)) {
        cpex__call_record(cs, CPEX_CODE_DENIED_WRITE,
                          "plugin may not %s '%.200s': it needs the capability '%s' in its "
                          "configuration",
                          action, subject, cpex__caps_name(cap));
        return CPEX_HOST_EDENIED;
    }
    if (!cs->can_modify) {
        cpex__call_record(cs, CPEX_CODE_DENIED_WRITE,
                          "plugin may not %s '%.200s' in %s mode, which cannot modify; the write "
                          "was dropped",
                          action, subject, cpex_mode_name(cs->mode));
        return CPEX_HOST_EDENIED;
    }
    if (!cs->pending_ext) {
        cs->pending_ext = cs->ext ? cpex_extensions_copy(cs->ext) : cpex_extensions_new();
        cs->dirty = true;
        if (!cs->pending_ext)
            return CPEX_HOST_ENOMEM;
    }
    return CPEX_HOST_OK;
}

static int32_t h_ext_set_header(const cpex_call *call, uint32_t set, const char *name,
                                const char *value)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !name || !value || (set != CPEX_HEADERS_REQUEST && set != CPEX_HEADERS_RESPONSE))
        return CPEX_HOST_EINVAL;
    int32_t rc = may_write(cs, CPEX_CAP_WRITE_HEADERS, "set header", name);
    if (rc != CPEX_HOST_OK)
        return rc;
    return status_to_host(cpex_extensions_set_header(cs->pending_ext, set, name, value));
}

static int32_t h_ext_append_label(const cpex_call *call, const char *label)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !label || !*label)
        return CPEX_HOST_EINVAL;
    int32_t rc = may_write(cs, CPEX_CAP_APPEND_LABELS, "append label", label);
    if (rc != CPEX_HOST_OK)
        return rc;
    return status_to_host(cpex_extensions_add(cs->pending_ext, CPEX_EXT_LABELS, label));
}

static int32_t h_ext_remove_label(const cpex_call *call, const char *label)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs)
        return CPEX_HOST_EINVAL;
    cpex__call_record(cs, CPEX_CODE_DENIED_WRITE,
                      "plugin tried to remove label '%.200s'; labels only grow, the removal was "
                      "refused",
                      label ? label : "");
    return CPEX_HOST_EDENIED;
}

static int32_t h_ext_set_custom(const cpex_call *call, const char *key, cpex_json *value)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    json_t *v = cpex_json_to_jansson(value);
    if (!cs || !key) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    int32_t rc = may_write(cs, CPEX_CAP_WRITE_CUSTOM, "set custom value", key);
    if (rc != CPEX_HOST_OK) {
        json_decref(v);
        return rc;
    }
    return status_to_host(cpex_extensions_set_custom(cs->pending_ext, key, v));
}

/* ---- context ---- */

static json_t *ctx_object(cpex__call_state *cs, uint32_t scope, bool create)
{
    if (cs->snapshot_ctx) {
        json_t **scratch = scope == CPEX_CTX_LOCAL ? &cs->scratch_local : &cs->scratch_global;
        cs->dirty = true;
        json_t *base = scope == CPEX_CTX_LOCAL ? cs->base_local : cs->base_global;
        if (*scratch || !create)
            return *scratch ? *scratch : base;
        *scratch = base ? json_deep_copy(base) : json_object();
        return *scratch;
    }
    if (!*cs->table) {
        if (!create)
            return NULL;
        *cs->table = cpex_context_table_new();
        if (!*cs->table)
            return NULL;
    }
    return scope == CPEX_CTX_LOCAL ? cpex__ctx_local_state(*cs->table, cs->plugin, create)
                                   : cpex__ctx_global_state(*cs->table, create);
}

static const cpex_json *h_ctx_get(const cpex_call *call, uint32_t scope, const char *key)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !key || scope > CPEX_CTX_GLOBAL)
        return NULL;
    return (const cpex_json *)json_object_get(ctx_object(cs, scope, false), key);
}

static int32_t h_ctx_set(const cpex_call *call, uint32_t scope, const char *key, cpex_json *value)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    json_t *v = cpex_json_to_jansson(value);
    if (!cs || !key || scope > CPEX_CTX_GLOBAL) {
        json_decref(v);
        return CPEX_HOST_EINVAL;
    }
    json_t *obj = ctx_object(cs, scope, v != NULL);
    if (!v) {
        if (obj)
            json_object_del(obj, key);
        return CPEX_HOST_OK;
    }
    if (!obj) {
        json_decref(v);
        return CPEX_HOST_ENOMEM;
    }
    return json_object_set_new(obj, key, v) == 0 ? CPEX_HOST_OK : CPEX_HOST_ENOMEM;
}

/* ---- the table ---- */

static const cpex_host_api host_api;

static const cpex_host_api host_api = {
    .struct_size = (uint32_t)sizeof(cpex_host_api),
    .abi_version = CPEX_ABI_VERSION,
    .host_identity = &host_api,
    .log = h_log,
    .deny = h_deny,
    .set_error = h_set_error,
    .set_metadata = h_set_metadata,
    .set_payload_cmf = h_set_payload_cmf,
    .set_payload_json = h_set_payload_json,
    .json_type = h_json_type,
    .json_string = h_json_string,
    .json_integer = h_json_integer,
    .json_real = h_json_real,
    .json_bool = h_json_bool,
    .json_size = h_json_size,
    .json_array_get = h_json_array_get,
    .json_object_get = h_json_object_get,
    .json_object_at = h_json_object_at,
    .json_dump = h_json_dump,
    .json_parse = h_json_parse,
    .json_new_object = h_json_new_object,
    .json_new_array = h_json_new_array,
    .json_new_string = h_json_new_string,
    .json_new_integer = h_json_new_integer,
    .json_new_real = h_json_new_real,
    .json_new_bool = h_json_new_bool,
    .json_new_null = h_json_new_null,
    .json_copy = h_json_copy,
    .json_object_set = h_json_object_set,
    .json_array_append = h_json_array_append,
    .json_free = h_json_free,
    .free = h_free,
    .cmf_clone = h_cmf_clone,
    .cmf_parse = h_cmf_parse,
    .cmf_to_json = h_cmf_to_json,
    .cmf_set_text = h_cmf_set_text,
    .cmf_set_tool_arguments = h_cmf_set_tool_arguments,
    .cmf_append_text = h_cmf_append_text,
    .cmf_remove_part = h_cmf_remove_part,
    .cmf_free = h_cmf_free,
    .ext_get = h_ext_get,
    .ext_count = h_ext_count,
    .ext_item = h_ext_item,
    .ext_header = h_ext_header,
    .ext_header_count = h_ext_header_count,
    .ext_header_at = h_ext_header_at,
    .ext_custom = h_ext_custom,
    .ext_set_header = h_ext_set_header,
    .ext_append_label = h_ext_append_label,
    .ext_remove_label = h_ext_remove_label,
    .ext_set_custom = h_ext_set_custom,
    .ctx_get = h_ctx_get,
    .ctx_set = h_ctx_set,
    .payload_set_text = cpex__h_payload_set_text,
    .payload_set_tool_arguments = cpex__h_payload_set_tool_arguments,
    .payload_set_tool_result_content = cpex__h_payload_set_tool_result_content,
    .payload_append_text = cpex__h_payload_append_text,
    .payload_remove_part = cpex__h_payload_remove_part,
    .cmf_set_tool_result_content = cpex__h_cmf_set_tool_result_content,
    /* since 1.1: state (host_state.c) */
    .state_get = cpex__h_state_get,
    .state_set = cpex__h_state_set,
    .state_incr = cpex__h_state_incr,
    .state_delete = cpex__h_state_delete,
    .state_set_add = cpex__h_state_set_add,
    .state_set_members = cpex__h_state_set_members,
};

const cpex_host_api *cpex_host_api_get(void) { return &host_api; }

/* ---- what an isolation proxy sends its worker (core/call_view.h) ---- */

int cpex__call_view_get(const cpex_call *call, cpex__call_view *out)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs || !out)
        return -1;
    out->caps = cs->plugin->caps;
    out->ext = ext_source(cs);
    /* Reads never create: ctx_object with create=false is what ctx_get sees. */
    out->ctx_local = ctx_object(cs, CPEX_CTX_LOCAL, false);
    out->ctx_global = ctx_object(cs, CPEX_CTX_GLOBAL, false);
    return 0;
}
