/*
 * host_edit.c — the host-table slots that edit one part of the call's CMF
 * payload (ABI 1.1). A plugin that rewrites one tool argument of a 10 MB
 * message pays for one part, not for the message: the first edit of a call
 * clones the message it sees (one allocation: cpex_cmf_clone shares every
 * part's content), each edit gives the part it changes content of its own,
 * and the result is the call's new payload, as set_payload_cmf would make
 * it.
 */
#include <string.h>

#include "core/call.h"
#include "core/host_slots.h"
#include "cpex/cmf.h"
#include "cpex/json.h"
#include "model/cmf_internal.h"

static int32_t status_to_host(cpex_status st)
{
    return st == CPEX_OK ? CPEX_HOST_OK : st == CPEX_E_NOMEM ? CPEX_HOST_ENOMEM : CPEX_HOST_EINVAL;
}

/* The call's working copy of its CMF payload, made on the first edit; NULL
 * with *rc set when the call may not edit (recorded) or memory is short. */
static cpex_cmf_message *working_copy(const cpex_call *call, int32_t *rc)
{
    cpex__call_state *cs = cpex__call_state_of(call);
    if (!cs) {
        *rc = CPEX_HOST_EINVAL;
        return NULL;
    }
    if (!cs->can_modify) {
        cpex__call_record(cs, CPEX_CODE_DROPPED_MODIFICATION,
                          "plugin edited the payload in %s mode, which cannot modify; the edit "
                          "was dropped",
                          cpex_mode_name(cs->mode));
        *rc = CPEX_HOST_EDENIED;
        return NULL;
    }
    if (cs->ops->kind != CPEX_PAYLOAD_CMF || !cs->base_payload) {
        cpex__call_record(cs, CPEX_CODE_DROPPED_MODIFICATION,
                          "plugin edited the payload as a CMF message, but the hook carries "
                          "'%s'; the edit was dropped",
                          cs->ops->type_name ? cs->ops->type_name : "none");
        *rc = CPEX_HOST_EINVAL;
        return NULL;
    }
    if (!cs->new_payload) {
        cpex_cmf_message *copy = cpex_cmf_clone(cs->base_payload->data);
        if (!copy) {
            *rc = CPEX_HOST_ENOMEM;
            return NULL;
        }
        cs->new_payload = copy;
        cs->dirty = true;
    }
    /* From now on the handler reads what it wrote. */
    cs->edit_view = *cs->base_payload;
    cs->edit_view.data = cs->new_payload;
    cs->call.payload = &cs->edit_view;
    return cs->new_payload;
}

int32_t cpex__h_payload_set_text(const cpex_call *call, size_t part, const char *text, size_t len)
{
    int32_t rc = CPEX_HOST_OK;
    cpex_cmf_message *m = working_copy(call, &rc);
    if (!m)
        return rc;
    return text ? status_to_host(cpex_cmf_set_text(m, part, text, len)) : CPEX_HOST_EINVAL;
}

/* Replace a JSON field of part `part` of the call's working copy with
 * `value` (taken, on failure too) through `set`. */
static int32_t set_json_field(const cpex_call *call, size_t part, cpex_json *value,
                              cpex_status (*set)(cpex_cmf_message *, size_t, json_t *))
{
    json_t *v = cpex_json_to_jansson(value);
    int32_t rc = CPEX_HOST_OK;
    cpex_cmf_message *m = v ? working_copy(call, &rc) : NULL;
    if (!m) {
        json_decref(v);
        return v ? rc : CPEX_HOST_EINVAL;
    }
    return status_to_host(set(m, part, v));
}

int32_t cpex__h_payload_set_tool_arguments(const cpex_call *call, size_t part, cpex_json *arguments)
{
    return set_json_field(call, part, arguments, cpex_cmf_set_tool_arguments);
}

int32_t cpex__h_payload_set_tool_result_content(const cpex_call *call, size_t part,
                                                cpex_json *content)
{
    return set_json_field(call, part, content, cpex_cmf_set_tool_result_content);
}

int32_t cpex__h_payload_append_text(const cpex_call *call, uint32_t kind, const char *text,
                                    size_t len)
{
    int32_t rc = CPEX_HOST_OK;
    cpex_cmf_message *m = working_copy(call, &rc);
    if (!m)
        return rc;
    return text ? status_to_host(cpex_cmf_append_text(m, kind, text, len)) : CPEX_HOST_EINVAL;
}

int32_t cpex__h_payload_remove_part(const cpex_call *call, size_t part)
{
    int32_t rc = CPEX_HOST_OK;
    cpex_cmf_message *m = working_copy(call, &rc);
    if (!m)
        return rc;
    return status_to_host(cpex_cmf_remove_part(m, part));
}

int32_t cpex__h_cmf_set_tool_result_content(struct cpex_cmf_message *message, size_t part,
                                            cpex_json *content)
{
    json_t *c = cpex_json_to_jansson(content);
    if (!message || !c) {
        json_decref(c);
        return CPEX_HOST_EINVAL;
    }
    return status_to_host(cpex_cmf_set_tool_result_content(message, part, c));
}
