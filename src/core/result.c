/* result.c — the pipeline result (cpex/result.h). */
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "core/observe.h"
#include "cpex/cmf.h"
#include "cpex/result.h"
#include "util/alloc.h"

void cpex_violation_free(cpex_violation *v)
{
    if (!v)
        return;
    cpex__free(v->code);
    cpex__free(v->reason);
    cpex__free(v->description);
    json_decref(v->details);
    cpex__free(v->plugin_name);
    cpex__free(v);
}

void cpex_error_record_cleanup(cpex_error_record *rec)
{
    if (!rec)
        return;
    cpex__free(rec->plugin_name);
    cpex__free(rec->code);
    cpex__free(rec->message);
    json_decref(rec->details);
    memset(rec, 0, sizeof *rec);
}

void cpex_error_records_free(cpex_error_record *records, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cpex_error_record_cleanup(&records[i]);
    cpex__free(records);
}

/* A modified payload carries the free function of its type, so the
 * result can release it without the registry. */
typedef struct owned_payload {
    cpex_payload view;
    void (*free_fn)(void *data, void *user);
    void *user;
} owned_payload;

/* What cpex_pipeline_result_cleanup does when the result owns something. */
static __attribute__((noinline)) void cleanup_owned(cpex_pipeline_result *r,
                                                    const cpex_execution_record *execs)
{
    if (execs)
        cpex__recs_free(cpex__recs_of(execs));
    /* Each tested first: with records on, an invoke that changed nothing
       comes here for its records alone. */
    if (r->violation)
        cpex_violation_free(r->violation);
    if (r->modified_payload) {
        owned_payload *op = (owned_payload *)r->modified_payload;
        op->free_fn((void *)op->view.data, op->user);
        cpex__free(op);
    }
    if (r->extensions)
        cpex_extensions_unref(r->extensions);
    if (r->metadata)
        json_decref(r->metadata);
    if (r->errors)
        cpex_error_records_free(r->errors, r->error_count);
    if (r->context)
        cpex_context_table_free(r->context);
    cpex__result_reset(r);
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_GENERATION)
        r->generation = 0;
}

void cpex_pipeline_result_cleanup(cpex_pipeline_result *r)
{
    if (!cpex__result_fillable(r))
        return;
    /* An all-allow invoke owns nothing: one test of every owning pointer
       together, and the flags reset, without a call or a frame (the
       owning path is out of line). */
    const cpex_execution_record *execs =
        r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS ? r->executions : NULL;
    uintptr_t owned = (uintptr_t)r->violation | (uintptr_t)r->modified_payload |
                      (uintptr_t)r->extensions | (uintptr_t)r->metadata | (uintptr_t)r->errors |
                      (uintptr_t)r->context | (uintptr_t)execs;
    if (__builtin_expect(owned != 0, 0)) {
        cleanup_owned(r, execs);
        return;
    }
    /* Nothing owned: every pointer is NULL already, and so is the count
       that goes with one (errors). The flags are set again: a change whose
       result could not be kept (out of memory) leaves its flag without its
       pointer. */
    r->continue_processing = true;
    r->payload_modified = false;
    r->extensions_modified = false;
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_V2)
        r->no_plugin_ran = false;
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_GENERATION)
        r->generation = 0;
}

cpex_payload *cpex__result_payload_new(uint32_t kind, const char *type_name, void *data,
                                       void (*free_fn)(void *, void *), void *user)
{
    owned_payload *op = cpex__calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->view.struct_size = (uint32_t)sizeof op->view;
    op->view.kind = kind;
    op->view.type_name.ptr = type_name;
    op->view.type_name.len = strlen(type_name);
    op->view.data = data;
    op->free_fn = free_fn;
    op->user = user;
    return &op->view;
}

cpex_context_table *cpex_pipeline_result_take_context(cpex_pipeline_result *r)
{
    if (!r)
        return NULL;
    cpex_context_table *t = r->context;
    r->context = NULL;
    return t;
}

const cpex_cmf_message *cpex_pipeline_result_cmf(const cpex_pipeline_result *r,
                                                 const cpex_cmf_message *original)
{
    if (r && r->modified_payload) {
        if (r->modified_payload->kind != CPEX_PAYLOAD_CMF)
            return NULL;
        return r->modified_payload->data;
    }
    return original;
}

/* Append a record with any code string (details taken). False on OOM. */
static bool records_push(cpex_error_record **records, size_t *count, const char *plugin,
                         const char *code, const char *message, json_t *details)
{
    cpex_error_record *n = cpex__realloc(*records, (*count + 1) * sizeof *n);
    if (!n) {
        json_decref(details);
        return false;
    }
    *records = n;
    cpex_error_record *rec = &n[*count];
    rec->plugin_name = cpex__strdup(plugin ? plugin : "");
    rec->code = cpex__strdup(code);
    rec->message = cpex__strdup(message);
    rec->details = details;
    if (!rec->plugin_name || !rec->code || !rec->message) {
        cpex_error_record_cleanup(rec);
        return false;
    }
    (*count)++;
    return true;
}

bool cpex__records_add(cpex_error_record **records, size_t *count, const char *plugin,
                       cpex_code code, const char *message, json_t *details)
{
    return records_push(records, count, plugin, cpex_code_name(code), message, details);
}

void cpex__records_move(cpex_error_record **records, size_t *count, cpex_error_record *from,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        records_push(records, count, from[i].plugin_name, from[i].code, from[i].message,
                     from[i].details);
        from[i].details = NULL; /* taken by records_push, even when it failed */
    }
}

cpex_violation *cpex__violation_new(const char *code, const char *reason, const char *description,
                                    json_t *details, const char *plugin)
{
    cpex_violation *v = cpex__calloc(1, sizeof *v);
    if (!v) {
        json_decref(details);
        return NULL;
    }
    v->code = cpex__strdup(code);
    v->reason = cpex__strdup(reason);
    v->description = description ? cpex__strdup(description) : NULL;
    v->details = details ? details : json_object();
    v->plugin_name = plugin ? cpex__strdup(plugin) : NULL;
    if (!v->code || !v->reason || !v->details || (description && !v->description) ||
        (plugin && !v->plugin_name)) {
        cpex_violation_free(v);
        return NULL;
    }
    return v;
}

cpex_violation *cpex__pipeline_violation(cpex_code code, const char *reason, json_t *details,
                                         const char *plugin)
{
    return cpex__violation_new(cpex_code_name(code), reason, NULL, details, plugin);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *cpex_pipeline_result_to_json(const cpex_pipeline_result *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "continue_processing", json_boolean(r->continue_processing));
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_V2)
        json_object_set_new(o, "no_plugin_ran", json_boolean(r->no_plugin_ran));
    if (r->violation) {
        json_t *v = json_object();
        json_object_set_new(v, "code", str_or_null(r->violation->code));
        json_object_set_new(v, "reason", str_or_null(r->violation->reason));
        if (r->violation->description)
            json_object_set_new(v, "description", json_string(r->violation->description));
        json_object_set(v, "details",
                        r->violation->details ? r->violation->details : json_object());
        json_object_set_new(v, "plugin_name", str_or_null(r->violation->plugin_name));
        json_object_set_new(o, "violation", v);
    }
    json_object_set_new(o, "payload_modified", json_boolean(r->payload_modified));
    if (r->modified_payload) {
        const cpex_payload *p = r->modified_payload;
        if (p->kind == CPEX_PAYLOAD_CMF)
            json_object_set_new(o, "modified_payload", cpex_cmf_to_json(p->data));
        else if (p->kind == CPEX_PAYLOAD_JSON)
            json_object_set(o, "modified_payload", (json_t *)p->data);
    }
    json_object_set_new(o, "extensions_modified", json_boolean(r->extensions_modified));
    if (r->extensions)
        json_object_set_new(o, "extensions", cpex_extensions_to_json(r->extensions));
    if (r->metadata)
        json_object_set(o, "metadata", r->metadata);
    json_t *errs = json_array();
    for (size_t i = 0; i < r->error_count; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "plugin_name", str_or_null(r->errors[i].plugin_name));
        json_object_set_new(e, "code", str_or_null(r->errors[i].code));
        json_object_set_new(e, "message", str_or_null(r->errors[i].message));
        if (r->errors[i].details)
            json_object_set(e, "details", r->errors[i].details);
        json_array_append_new(errs, e);
    }
    json_object_set_new(o, "errors", errs);
    if (r->struct_size >= CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS && r->executions) {
        json_t *ex = json_array();
        for (size_t i = 0; ex && i < r->execution_count; i++)
            json_array_append_new(
                ex, cpex_execution_record_to_json(cpex_pipeline_result_execution(r, i)));
        json_object_set_new(o, "executions", ex);
    }
    return o;
}
