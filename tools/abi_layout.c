/*
 * abi_layout.c — writes include/cpex/abi-layout.json: the size, alignment
 * and field offsets of every struct of cpex/abi.h on this platform, for
 * bindings in other languages; and checks the committed file.
 *
 *   abi_layout                     print the JSON
 *   abi_layout --output FILE       write it to FILE (cmake --build build --target abi-layout)
 *   abi_layout --check FILE        exit 0 when FILE is what this build would write,
 *                                  1 when it differs (or a list below is wrong),
 *                                  77 when FILE describes another data model (skip)
 *
 * Each struct is one list of fields, written by hand next to its C
 * declaration's order. F() takes the field's C type too: the program
 * checks, with _Generic, that the type is the field's, and checks each
 * list against the struct: offsets increase, fields do not overlap, a gap
 * between two fields is only padding, and what follows the last field is
 * only padding — so a field the list forgot is noticed, unless it is small
 * enough to pass for padding (a uint32_t beside another: that is why the
 * committed file is compared too). Built by CMake, never installed; the
 * `abi_layout` test runs --check.
 *
 * Names: a field whose C name is a keyword in Rust or Go is listed under
 * its alias (cpex_handler_reg.handler for `fn`, cpex_cmf_media.encoding
 * for `type`), with the C name in "aliases".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/abi.h"

typedef struct field {
    const char *name;
    const char *alias; /* another C name of the same field, or NULL */
    const char *type;  /* the C type, as written in the list */
    const char *since; /* the ABI version that added the field */
    size_t offset, size, align;
    int type_ok; /* the listed type is the field's type */
} field;

typedef struct layout {
    const char *name;
    size_t size, align;
    const field *fields;
    size_t count;
} layout;

/* One field of struct T, added in ABI `since`, named `alias` too (or NULL). */
#define FIELD(T, f, alias, since, ...)                                                             \
    {                                                                                              \
#f, alias, #__VA_ARGS__, since, offsetof(T, f), sizeof(((T *)0)->f),                       \
            _Alignof(__VA_ARGS__), _Generic(((T *)0)->f, __VA_ARGS__ : 1, default : 0)             \
    }
/* A field of ABI 1.0 with no other name. */
#define F(T, f, ...) FIELD(T, f, NULL, "1.0", __VA_ARGS__)

#define LAYOUT(T, list)                                                                            \
    {                                                                                              \
#T, sizeof(T), _Alignof(T), list, sizeof list / sizeof list[0]                             \
    }

static const field str_fields[] = {
    F(cpex_str, ptr, const char *),
    F(cpex_str, len, size_t),
};

static const field tool_call_fields[] = {
    F(cpex_cmf_tool_call, struct_size, uint32_t),
    F(cpex_cmf_tool_call, reserved, uint32_t),
    F(cpex_cmf_tool_call, tool_call_id, cpex_str),
    F(cpex_cmf_tool_call, name, cpex_str),
    F(cpex_cmf_tool_call, arguments, const cpex_json *),
    F(cpex_cmf_tool_call, namespace_, cpex_str),
};

static const field tool_result_fields[] = {
    F(cpex_cmf_tool_result, struct_size, uint32_t),
    F(cpex_cmf_tool_result, is_error, uint32_t),
    F(cpex_cmf_tool_result, tool_call_id, cpex_str),
    F(cpex_cmf_tool_result, tool_name, cpex_str),
    F(cpex_cmf_tool_result, content, const cpex_json *),
};

static const field resource_fields[] = {
    F(cpex_cmf_resource, struct_size, uint32_t),
    F(cpex_cmf_resource, resource_type, uint32_t),
    F(cpex_cmf_resource, resource_request_id, cpex_str),
    F(cpex_cmf_resource, uri, cpex_str),
    F(cpex_cmf_resource, name, cpex_str),
    F(cpex_cmf_resource, description, cpex_str),
    F(cpex_cmf_resource, content, cpex_str),
    F(cpex_cmf_resource, blob, cpex_str),
    F(cpex_cmf_resource, mime_type, cpex_str),
    F(cpex_cmf_resource, size_bytes, int64_t),
    F(cpex_cmf_resource, annotations, const cpex_json *),
    F(cpex_cmf_resource, version, cpex_str),
};

static const field resource_ref_fields[] = {
    F(cpex_cmf_resource_ref, struct_size, uint32_t),
    F(cpex_cmf_resource_ref, resource_type, uint32_t),
    F(cpex_cmf_resource_ref, resource_request_id, cpex_str),
    F(cpex_cmf_resource_ref, uri, cpex_str),
    F(cpex_cmf_resource_ref, name, cpex_str),
    F(cpex_cmf_resource_ref, range_start, int64_t),
    F(cpex_cmf_resource_ref, range_end, int64_t),
    F(cpex_cmf_resource_ref, selector, cpex_str),
};

static const field prompt_request_fields[] = {
    F(cpex_cmf_prompt_request, struct_size, uint32_t),
    F(cpex_cmf_prompt_request, reserved, uint32_t),
    F(cpex_cmf_prompt_request, prompt_request_id, cpex_str),
    F(cpex_cmf_prompt_request, name, cpex_str),
    F(cpex_cmf_prompt_request, arguments, const cpex_json *),
    F(cpex_cmf_prompt_request, server_id, cpex_str),
};

static const field prompt_result_fields[] = {
    F(cpex_cmf_prompt_result, struct_size, uint32_t),
    F(cpex_cmf_prompt_result, is_error, uint32_t),
    F(cpex_cmf_prompt_result, prompt_request_id, cpex_str),
    F(cpex_cmf_prompt_result, prompt_name, cpex_str),
    F(cpex_cmf_prompt_result, message_count, size_t),
    F(cpex_cmf_prompt_result, messages, const struct cpex_cmf_message *const *),
    F(cpex_cmf_prompt_result, content, cpex_str),
    F(cpex_cmf_prompt_result, error_message, cpex_str),
};

static const field media_fields[] = {
    F(cpex_cmf_media, struct_size, uint32_t),
    F(cpex_cmf_media, reserved, uint32_t),
    FIELD(cpex_cmf_media, encoding, "type", "1.0", cpex_str),
    F(cpex_cmf_media, data, cpex_str),
    F(cpex_cmf_media, media_type, cpex_str),
    F(cpex_cmf_media, duration_ms, int64_t),
    F(cpex_cmf_media, title, cpex_str),
};

static const field part_fields[] = {
    F(cpex_cmf_part, struct_size, uint32_t),
    F(cpex_cmf_part, kind, uint32_t),
    F(cpex_cmf_part, text, cpex_str),
    F(cpex_cmf_part, body, const void *),
};

static const field message_fields[] = {
    F(cpex_cmf_message, struct_size, uint32_t),
    F(cpex_cmf_message, role, uint32_t),
    F(cpex_cmf_message, schema_version, cpex_str),
    F(cpex_cmf_message, channel, cpex_str),
    F(cpex_cmf_message, part_count, size_t),
    F(cpex_cmf_message, parts, const cpex_cmf_part *),
};

static const field payload_fields[] = {
    F(cpex_payload, struct_size, uint32_t),
    F(cpex_payload, kind, uint32_t),
    F(cpex_payload, type_name, cpex_str),
    F(cpex_payload, data, const void *),
};

static const field call_fields[] = {
    F(cpex_call, struct_size, uint32_t),
    F(cpex_call, mode, uint32_t),
    F(cpex_call, hook, cpex_str),
    F(cpex_call, plugin_name, cpex_str),
    F(cpex_call, payload, const cpex_payload *),
    F(cpex_call, deadline_ns, int64_t),
    F(cpex_call, host_private, void *),
};

static const field host_api_fields[] = {
    F(cpex_host_api, struct_size, uint32_t),
    F(cpex_host_api, abi_version, uint32_t),
    F(cpex_host_api, host_identity, const void *),
    F(cpex_host_api, log, void (*)(const cpex_call *, uint32_t, const char *)),
    F(cpex_host_api, deny,
      int32_t (*)(const cpex_call *, const char *, const char *, const char *, cpex_json *)),
    F(cpex_host_api, set_error, int32_t (*)(const cpex_call *, const char *)),
    F(cpex_host_api, set_metadata, int32_t (*)(const cpex_call *, const char *, cpex_json *)),
    F(cpex_host_api, set_payload_cmf, int32_t (*)(const cpex_call *, struct cpex_cmf_message *)),
    F(cpex_host_api, set_payload_json, int32_t (*)(const cpex_call *, cpex_json *)),
    F(cpex_host_api, json_type, uint32_t (*)(const cpex_json *)),
    F(cpex_host_api, json_string, const char *(*)(const cpex_json *, size_t *)),
    F(cpex_host_api, json_integer, int64_t (*)(const cpex_json *)),
    F(cpex_host_api, json_real, double (*)(const cpex_json *)),
    F(cpex_host_api, json_bool, int32_t (*)(const cpex_json *)),
    F(cpex_host_api, json_size, size_t (*)(const cpex_json *)),
    F(cpex_host_api, json_array_get, const cpex_json *(*)(const cpex_json *, size_t)),
    F(cpex_host_api, json_object_get, const cpex_json *(*)(const cpex_json *, const char *)),
    F(cpex_host_api, json_object_at,
      const cpex_json *(*)(const cpex_json *, size_t, const char **)),
    F(cpex_host_api, json_dump, char *(*)(const cpex_json *)),
    F(cpex_host_api, json_parse, cpex_json *(*)(const char *, size_t)),
    F(cpex_host_api, json_new_object, cpex_json *(*)(void)),
    F(cpex_host_api, json_new_array, cpex_json *(*)(void)),
    F(cpex_host_api, json_new_string, cpex_json *(*)(const char *, size_t)),
    F(cpex_host_api, json_new_integer, cpex_json *(*)(int64_t)),
    F(cpex_host_api, json_new_real, cpex_json *(*)(double)),
    F(cpex_host_api, json_new_bool, cpex_json *(*)(int32_t)),
    F(cpex_host_api, json_new_null, cpex_json *(*)(void)),
    F(cpex_host_api, json_copy, cpex_json *(*)(const cpex_json *)),
    F(cpex_host_api, json_object_set, int32_t (*)(cpex_json *, const char *, cpex_json *)),
    F(cpex_host_api, json_array_append, int32_t (*)(cpex_json *, cpex_json *)),
    F(cpex_host_api, json_free, void (*)(cpex_json *)),
    F(cpex_host_api, free, void (*)(void *)),
    F(cpex_host_api, cmf_clone, struct cpex_cmf_message *(*)(const struct cpex_cmf_message *)),
    F(cpex_host_api, cmf_parse, struct cpex_cmf_message *(*)(const char *, size_t)),
    F(cpex_host_api, cmf_to_json, char *(*)(const struct cpex_cmf_message *)),
    F(cpex_host_api, cmf_set_text,
      int32_t (*)(struct cpex_cmf_message *, size_t, const char *, size_t)),
    F(cpex_host_api, cmf_set_tool_arguments,
      int32_t (*)(struct cpex_cmf_message *, size_t, cpex_json *)),
    F(cpex_host_api, cmf_append_text,
      int32_t (*)(struct cpex_cmf_message *, uint32_t, const char *, size_t)),
    F(cpex_host_api, cmf_remove_part, int32_t (*)(struct cpex_cmf_message *, size_t)),
    F(cpex_host_api, cmf_free, void (*)(struct cpex_cmf_message *)),
    F(cpex_host_api, ext_get, int32_t (*)(const cpex_call *, uint32_t, cpex_str *)),
    F(cpex_host_api, ext_count, size_t (*)(const cpex_call *, uint32_t)),
    F(cpex_host_api, ext_item, int32_t (*)(const cpex_call *, uint32_t, size_t, cpex_str *)),
    F(cpex_host_api, ext_header,
      int32_t (*)(const cpex_call *, uint32_t, const char *, cpex_str *)),
    F(cpex_host_api, ext_header_count, size_t (*)(const cpex_call *, uint32_t)),
    F(cpex_host_api, ext_header_at,
      int32_t (*)(const cpex_call *, uint32_t, size_t, cpex_str *, cpex_str *)),
    F(cpex_host_api, ext_custom, const cpex_json *(*)(const cpex_call *, const char *)),
    F(cpex_host_api, ext_set_header,
      int32_t (*)(const cpex_call *, uint32_t, const char *, const char *)),
    F(cpex_host_api, ext_append_label, int32_t (*)(const cpex_call *, const char *)),
    F(cpex_host_api, ext_remove_label, int32_t (*)(const cpex_call *, const char *)),
    F(cpex_host_api, ext_set_custom, int32_t (*)(const cpex_call *, const char *, cpex_json *)),
    F(cpex_host_api, ctx_get, const cpex_json *(*)(const cpex_call *, uint32_t, const char *)),
    F(cpex_host_api, ctx_set, int32_t (*)(const cpex_call *, uint32_t, const char *, cpex_json *)),
    FIELD(cpex_host_api, payload_set_text, NULL, "1.1",
          int32_t (*)(const cpex_call *, size_t, const char *, size_t)),
    FIELD(cpex_host_api, payload_set_tool_arguments, NULL, "1.1",
          int32_t (*)(const cpex_call *, size_t, cpex_json *)),
    FIELD(cpex_host_api, payload_set_tool_result_content, NULL, "1.1",
          int32_t (*)(const cpex_call *, size_t, cpex_json *)),
    FIELD(cpex_host_api, payload_append_text, NULL, "1.1",
          int32_t (*)(const cpex_call *, uint32_t, const char *, size_t)),
    FIELD(cpex_host_api, payload_remove_part, NULL, "1.1", int32_t (*)(const cpex_call *, size_t)),
    FIELD(cpex_host_api, cmf_set_tool_result_content, NULL, "1.1",
          int32_t (*)(struct cpex_cmf_message *, size_t, cpex_json *)),
    FIELD(cpex_host_api, state_get, NULL, "1.1",
          int32_t (*)(const cpex_call *, const char *, cpex_str *)),
    FIELD(cpex_host_api, state_set, NULL, "1.1",
          int32_t (*)(const cpex_call *, const char *, const void *, size_t, int64_t)),
    FIELD(cpex_host_api, state_incr, NULL, "1.1",
          int32_t (*)(const cpex_call *, const char *, int64_t, int64_t, int64_t *, int64_t *)),
    FIELD(cpex_host_api, state_delete, NULL, "1.1", int32_t (*)(const cpex_call *, const char *)),
    FIELD(cpex_host_api, state_set_add, NULL, "1.1",
          int32_t (*)(const cpex_call *, const char *, const void *, size_t, int64_t)),
    FIELD(cpex_host_api, state_set_members, NULL, "1.1",
          int32_t (*)(const cpex_call *, const char *, cpex_str **, size_t *)),
};

static const field plugin_config_fields[] = {
    F(cpex_plugin_config, struct_size, uint32_t), F(cpex_plugin_config, mode, uint32_t),
    F(cpex_plugin_config, name, cpex_str),        F(cpex_plugin_config, kind, cpex_str),
    F(cpex_plugin_config, hook_count, size_t),    F(cpex_plugin_config, hooks, const cpex_str *),
    F(cpex_plugin_config, config_json, cpex_str), F(cpex_plugin_config, config, const cpex_json *),
    F(cpex_plugin_config, priority, int32_t),     F(cpex_plugin_config, reserved, uint32_t),
};

static const field handler_reg_fields[] = {
    F(cpex_handler_reg, hook, const char *),
    FIELD(cpex_handler_reg, handler, "fn", "1.0", cpex_handler_fn),
    F(cpex_handler_reg, payload_type, const char *),
};

/* A field added in ABI 1.1. */
#define F11(T, f, ...) FIELD(T, f, NULL, "1.1", __VA_ARGS__)

static const field execution_record_fields[] = {
    F11(cpex_execution_record, struct_size, uint32_t),
    F11(cpex_execution_record, status, uint32_t),
    F11(cpex_execution_record, mode, uint32_t),
    F11(cpex_execution_record, requested, int32_t),
    F11(cpex_execution_record, effective, uint32_t),
    F11(cpex_execution_record, matched, int32_t),
    F11(cpex_execution_record, applied, uint32_t),
    F11(cpex_execution_record, payload_modified, uint32_t),
    F11(cpex_execution_record, extensions_modified, uint32_t),
    F11(cpex_execution_record, config_key_count, uint32_t),
    F11(cpex_execution_record, start_unix_ns, int64_t),
    F11(cpex_execution_record, duration_ns, int64_t),
    F11(cpex_execution_record, plugin_name, cpex_str),
    F11(cpex_execution_record, plugin_kind, cpex_str),
    F11(cpex_execution_record, hook, cpex_str),
    F11(cpex_execution_record, code, cpex_str),
    F11(cpex_execution_record, reason, cpex_str),
    F11(cpex_execution_record, trace_id, cpex_str),
    F11(cpex_execution_record, span_id, cpex_str),
    F11(cpex_execution_record, config_keys, const cpex_str *),
};

static const field verdict_fields[] = {
    F11(cpex_verdict, struct_size, uint32_t),
    F11(cpex_verdict, decision, uint32_t),
    F11(cpex_verdict, hook, cpex_str),
    F11(cpex_verdict, violation_code, cpex_str),
    F11(cpex_verdict, violation_reason, cpex_str),
    F11(cpex_verdict, violation_description, cpex_str),
    F11(cpex_verdict, violation_plugin, cpex_str),
    F11(cpex_verdict, violation_details, const cpex_json *),
    F11(cpex_verdict, payload, const cpex_payload *),
    F11(cpex_verdict, payload_modified, uint32_t),
    F11(cpex_verdict, extensions_modified, uint32_t),
    F11(cpex_verdict, record_size, uint32_t),
    F11(cpex_verdict, reserved, uint32_t),
    F11(cpex_verdict, record_count, size_t),
    F11(cpex_verdict, records, const cpex_execution_record *),
    F11(cpex_verdict, time_unix_ns, int64_t),
};

static const field registration_fields[] = {
    F(cpex_plugin_registration, struct_size, uint32_t),
    F(cpex_plugin_registration, abi_version, uint32_t),
    F(cpex_plugin_registration, name, const char *),
    F(cpex_plugin_registration, version, const char *),
    F(cpex_plugin_registration, instance, void *),
    F(cpex_plugin_registration, initialize, int32_t (*)(void *, char *, size_t)),
    F(cpex_plugin_registration, shutdown, void (*)(void *)),
    F(cpex_plugin_registration, destroy, void (*)(void *)),
    F(cpex_plugin_registration, handler_count, size_t),
    F(cpex_plugin_registration, handlers, const cpex_handler_reg *),
    FIELD(cpex_plugin_registration, handler_size, NULL, "1.1", uint32_t),
    FIELD(cpex_plugin_registration, reserved, NULL, "1.1", uint32_t),
    FIELD(cpex_plugin_registration, verdict, NULL, "1.1", cpex_verdict_fn),
};

static const field manifest_entry_fields[] = {
    F(cpex_manifest_entry, struct_size, uint32_t),
    F(cpex_manifest_entry, reserved, uint32_t),
    F(cpex_manifest_entry, entry, const char *),
    F(cpex_manifest_entry, display_name, const char *),
    F(cpex_manifest_entry, version, const char *),
    F(cpex_manifest_entry, description, const char *),
    F(cpex_manifest_entry, hook_count, size_t),
    F(cpex_manifest_entry, hooks, const char *const *),
};

static const field manifest_fields[] = {
    F(cpex_manifest, struct_size, uint32_t),
    F(cpex_manifest, abi_version, uint32_t),
    F(cpex_manifest, entry_count, size_t),
    F(cpex_manifest, entries, const cpex_manifest_entry *const *),
    F(cpex_manifest, build_info, const char *),
};

/* Every struct of abi.h, in the header's order. */
static const layout layouts[] = {
    LAYOUT(cpex_str, str_fields),
    LAYOUT(cpex_cmf_tool_call, tool_call_fields),
    LAYOUT(cpex_cmf_tool_result, tool_result_fields),
    LAYOUT(cpex_cmf_resource, resource_fields),
    LAYOUT(cpex_cmf_resource_ref, resource_ref_fields),
    LAYOUT(cpex_cmf_prompt_request, prompt_request_fields),
    LAYOUT(cpex_cmf_prompt_result, prompt_result_fields),
    LAYOUT(cpex_cmf_media, media_fields),
    LAYOUT(cpex_cmf_part, part_fields),
    LAYOUT(cpex_cmf_message, message_fields),
    LAYOUT(cpex_payload, payload_fields),
    LAYOUT(cpex_call, call_fields),
    LAYOUT(cpex_host_api, host_api_fields),
    LAYOUT(cpex_execution_record, execution_record_fields),
    LAYOUT(cpex_verdict, verdict_fields),
    LAYOUT(cpex_plugin_config, plugin_config_fields),
    LAYOUT(cpex_handler_reg, handler_reg_fields),
    LAYOUT(cpex_plugin_registration, registration_fields),
    LAYOUT(cpex_manifest_entry, manifest_entry_fields),
    LAYOUT(cpex_manifest, manifest_fields),
};

#define LAYOUT_COUNT (sizeof layouts / sizeof layouts[0])

/* ------------------------------------------------------------------ */
/* Checking the lists against the structs                              */
/* ------------------------------------------------------------------ */

/* Check one list; print each problem. Returns the number found. */
static int check_layout(const layout *l)
{
    int problems = 0;
    size_t end = 0;
    for (size_t i = 0; i < l->count; i++) {
        const field *f = &l->fields[i];
        if (!f->type_ok) {
            fprintf(stderr, "%s.%s: the listed type '%s' is not the field's type\n", l->name,
                    f->name, f->type);
            problems++;
        }
        if (i == 0 && f->offset != 0) {
            fprintf(stderr, "%s: the list starts at offset %zu, not 0: a field is missing\n",
                    l->name, f->offset);
            problems++;
        }
        if (i > 0 && f->offset < end) {
            fprintf(stderr,
                    "%s.%s: offset %zu is before the end (%zu) of the field listed "
                    "before it: out of order or overlapping\n",
                    l->name, f->name, f->offset, end);
            problems++;
        } else if (i > 0 && f->offset - end >= f->align) {
            fprintf(stderr,
                    "%s.%s: %zu bytes lie unlisted before it (more than padding to "
                    "its alignment of %zu): a field is missing from the list\n",
                    l->name, f->name, f->offset - end, f->align);
            problems++;
        }
        end = f->offset + f->size;
    }
    if (end > l->size) {
        fprintf(stderr, "%s: the listed fields end at %zu, past the struct's size %zu\n", l->name,
                end, l->size);
        problems++;
    } else if (l->size - end >= l->align) {
        fprintf(stderr,
                "%s: %zu bytes after the last listed field are more than padding: a "
                "field at the end is missing from the list\n",
                l->name, l->size - end);
        problems++;
    }
    return problems;
}

/* ------------------------------------------------------------------ */
/* Writing the JSON                                                    */
/* ------------------------------------------------------------------ */

/* A growing text buffer; aborts when memory runs out (a build tool). */
typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void put(text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        if (!t->data) {
            fprintf(stderr, "abi_layout: out of memory\n");
            exit(2);
        }
    }
    memcpy(t->data + t->len, s, n + 1);
    t->len += n;
}

static void put_size(text *t, size_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", v);
    put(t, buf);
}

/* Names and C types hold no character JSON must escape. */
static void put_string(text *t, const char *s)
{
    put(t, "\"");
    put(t, s);
    put(t, "\"");
}

static const char *data_model(void)
{
    if (sizeof(void *) == 8 && sizeof(long) == 8)
        return "LP64";
    if (sizeof(void *) == 8 && sizeof(long) == 4)
        return "LLP64";
    if (sizeof(void *) == 4 && sizeof(long) == 4)
        return "ILP32";
    return "other";
}

static void write_json(text *t)
{
    char version[32];
    snprintf(version, sizeof version, "%u.%u", (unsigned)CPEX_ABI_VERSION_MAJOR,
             (unsigned)CPEX_ABI_VERSION_MINOR);
    put(t, "{\n  \"generated_by\": \"tools/abi_layout.c; do not edit\",\n  \"abi_version\": ");
    put_string(t, version);
    put(t, ",\n  \"data_model\": ");
    put_string(t, data_model());
    put(t, ",\n  \"pointer_size\": ");
    put_size(t, sizeof(void *));
    put(t, ",\n  \"structs\": [");
    for (size_t i = 0; i < LAYOUT_COUNT; i++) {
        const layout *l = &layouts[i];
        put(t, i ? ",\n    {" : "\n    {");
        put(t, "\"name\": ");
        put_string(t, l->name);
        put(t, ", \"size\": ");
        put_size(t, l->size);
        put(t, ", \"align\": ");
        put_size(t, l->align);
        put(t, ", \"fields\": [");
        for (size_t k = 0; k < l->count; k++) {
            const field *f = &l->fields[k];
            put(t, k ? ",\n      {" : "\n      {");
            put(t, "\"name\": ");
            put_string(t, f->name);
            if (f->alias) {
                put(t, ", \"aliases\": [");
                put_string(t, f->alias);
                put(t, "]");
            }
            put(t, ", \"type\": ");
            put_string(t, f->type);
            put(t, ", \"offset\": ");
            put_size(t, f->offset);
            put(t, ", \"size\": ");
            put_size(t, f->size);
            put(t, ", \"since\": ");
            put_string(t, f->since);
            put(t, "}");
        }
        put(t, "\n    ]}");
    }
    put(t, "\n  ]\n}\n");
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    text t = {NULL, 0, 0};
    char buf[4096];
    size_t n;
    put(&t, "");
    while ((n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
        buf[n] = '\0';
        put(&t, buf);
    }
    fclose(f);
    return t.data;
}

/* Compare `path` with `want`; say where they first differ. 0 same, 1 not, 77 skip. */
static int check_file(const char *path, const char *want)
{
    char *have = read_all(path);
    if (!have) {
        fprintf(stderr, "abi_layout: cannot read %s\n", path);
        return 1;
    }
    char model[64];
    snprintf(model, sizeof model, "\"data_model\": \"%s\"", data_model());
    if (!strstr(have, model)) {
        printf("abi_layout: %s describes another data model than this build's (%s); not "
               "compared\n",
               path, data_model());
        free(have);
        return 77;
    }
    int rc = 0;
    if (strcmp(have, want) != 0) {
        size_t line = 1, i = 0;
        for (; have[i] && have[i] == want[i]; i++)
            if (have[i] == '\n')
                line++;
        fprintf(stderr,
                "abi_layout: %s does not match abi.h as this build compiles it (first "
                "difference on line %zu)\n  hint: regenerate it with `cmake --build build "
                "--target abi-layout` and commit it\n",
                path, line);
        rc = 1;
    }
    free(have);
    return rc;
}

int main(int argc, char **argv)
{
    int problems = 0;
    for (size_t i = 0; i < LAYOUT_COUNT; i++)
        problems += check_layout(&layouts[i]);
    if (problems) {
        fprintf(stderr, "abi_layout: %d problem(s) in the field lists of tools/abi_layout.c\n",
                problems);
        return 1;
    }
    text t = {NULL, 0, 0};
    write_json(&t);
    int rc = 0;
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        rc = check_file(argv[2], t.data);
    } else if (argc == 3 && strcmp(argv[1], "--output") == 0) {
        FILE *f = fopen(argv[2], "wb");
        if (!f || fputs(t.data, f) == EOF || fclose(f) != 0) {
            fprintf(stderr, "abi_layout: cannot write %s\n", argv[2]);
            rc = 1;
        }
    } else if (argc == 1) {
        fputs(t.data, stdout);
    } else {
        fprintf(stderr, "usage: abi_layout [--check FILE | --output FILE]\n");
        rc = 2;
    }
    free(t.data);
    return rc;
}
