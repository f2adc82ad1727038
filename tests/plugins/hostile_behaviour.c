/*
 * hostile_behaviour.c — plugins that load fine and misbehave when called.
 * Entries (kind "lib:…/libhostile_behaviour.so?entry=<case>"):
 *
 *   decide   returns config.decision (default 7): a decision code no ABI
 *            version defines
 *   modify   replaces the payload (part 0 text + " [modified]") whatever
 *            its mode; with config.as: json, replaces a CMF payload with a
 *            JSON document (the wrong type). The slot's return code goes
 *            into the metadata as "modify.rc".
 *   deny     denies with a violation (code hostile.deny) whatever its mode
 *   misuse   calls host slots with NULL and out-of-range arguments and a
 *            forged call; returns allow. The return codes go into the
 *            metadata as "misuse.rc" (an array).
 */
#include <string.h>

#include "common_plugin.h"

typedef struct self {
    const cpex_host_api *host;
    int32_t decision;
    int as_json;
} self;

static int32_t on_decide(void *instance, const cpex_call *call)
{
    (void)call;
    return ((self *)instance)->decision;
}

static int32_t on_modify(void *instance, const cpex_call *call)
{
    self *s = instance;
    const cpex_host_api *h = s->host;
    int32_t rc;
    if (s->as_json) {
        cpex_json *doc = h->json_new_object();
        h->json_object_set(doc, "hostile", h->json_new_bool(1));
        rc = h->set_payload_json(call, doc);
    } else {
        const cpex_cmf_message *m = cpex_call_cmf(call);
        cpex_cmf_message *copy = m ? h->cmf_clone(m) : NULL;
        if (!copy)
            return CPEX_ERROR;
        const cpex_cmf_part *p0 = cpex_cmf_part_at(copy, 0);
        cpex_str old = cpex_part_text(p0);
        char text[256];
        snprintf(text, sizeof text, "%.*s [modified]", (int)old.len, old.ptr ? old.ptr : "");
        h->cmf_set_text(copy, 0, text, strlen(text));
        rc = h->set_payload_cmf(call, copy);
    }
    h->set_metadata(call, "modify.rc", h->json_new_integer(rc));
    return CPEX_ALLOW;
}

static int32_t on_deny(void *instance, const cpex_call *call)
{
    self *s = instance;
    s->host->deny(call, "hostile.deny", "the hostile plugin says no", NULL, NULL);
    return CPEX_DENY;
}

static int32_t on_misuse(void *instance, const cpex_call *call)
{
    self *s = instance;
    const cpex_host_api *h = s->host;
    int32_t rc[24];
    size_t n = 0;
    cpex_str out;
    /* A call the host did not make: a copy whose private pointer is ours. */
    int junk[256];
    memset(junk, 0x5a, sizeof junk);
    cpex_call forged = *call;
    forged.host_private = junk;

    rc[n++] = h->deny(NULL, "c", "r", NULL, NULL);
    rc[n++] = h->deny(call, NULL, "r", NULL, NULL);
    rc[n++] = h->deny(&forged, "c", "r", NULL, NULL);
    rc[n++] = h->set_error(NULL, "x");
    rc[n++] = h->set_payload_cmf(call, NULL);
    rc[n++] = h->set_payload_cmf(&forged, h->cmf_clone(cpex_call_cmf(call)));
    rc[n++] = h->set_metadata(call, NULL, h->json_new_null());
    rc[n++] = h->ext_get(call, 9999, &out);
    rc[n++] = h->ext_get(&forged, CPEX_EXT_ENTITY_TYPE, &out);
    rc[n++] = h->ext_item(call, CPEX_EXT_TAGS, (size_t)-1, &out);
    rc[n++] = h->ctx_set(call, 77, "k", h->json_new_null());
    rc[n++] = h->ctx_set(&forged, CPEX_CTX_LOCAL, "k", h->json_new_null());
    cpex_json *not_object = h->json_new_integer(5);
    rc[n++] = h->json_object_set(not_object, "k", h->json_new_integer(1)); /* value taken */
    h->json_free(not_object);
    rc[n++] = h->cmf_set_text(NULL, 0, "x", 1);
    rc[n++] = h->json_array_append(NULL, h->json_new_integer(1));
    h->log(&forged, CPEX_LOG_DEBUG, "forged call");
    (void)h->ctx_get(&forged, CPEX_CTX_GLOBAL, "k");
    (void)h->json_object_get(NULL, "k");
    (void)h->json_array_get(NULL, 3);

    cpex_json *arr = h->json_new_array();
    for (size_t i = 0; i < n; i++)
        h->json_array_append(arr, h->json_new_integer(rc[i]));
    h->set_metadata(call, "misuse.rc", arr);
    return CPEX_ALLOW;
}

static const cpex_handler_reg decide_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_decide, "cmf")};
static const cpex_handler_reg modify_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_modify, "cmf")};
static const cpex_handler_reg deny_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_deny, "cmf")};
static const cpex_handler_reg misuse_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_misuse, "cmf")};

static int32_t make(const cpex_host_api *host, const cpex_plugin_config *config,
                    cpex_plugin_registration *out, const cpex_handler_reg *handlers, char *err,
                    size_t err_cap)
{
    self *s = calloc(1, sizeof *s);
    if (!s) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    s->host = host;
    s->decision = (int32_t)cpex_config_int(host, config, "decision", 7);
    s->as_json = strcmp(cpex_config_string(host, config, "as", "cmf"), "json") == 0;
    out->instance = s;
    out->destroy = destroy;
    return TEST_REGISTER_N(out, "hostile-behaviour", "6.6.6", handlers, 1);
}

#define CREATE(name)                                                                               \
    static int32_t create_##name(const cpex_host_api *host, const cpex_plugin_config *config,      \
                                 cpex_plugin_registration *out, char *err, size_t err_cap)         \
    {                                                                                              \
        return make(host, config, out, name##_handlers, err, err_cap);                             \
    }

CREATE(decide)
CREATE(modify)
CREATE(deny)
CREATE(misuse)

CPEX_PLUGIN_ENTRY(decide, create_decide, "decide", "6.6.6", "returns an undefined decision",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_ENTRY(modify, create_modify, "modify", "6.6.6", "modifies the payload in any mode",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_ENTRY(deny, create_deny, "deny", "6.6.6", "denies in any mode", "cmf.tool_pre_invoke")
CPEX_PLUGIN_ENTRY(misuse, create_misuse, "misuse", "6.6.6", "calls host slots with bad arguments",
                  "cmf.tool_pre_invoke")
CPEX_PLUGIN_LIST(decide, modify, deny, misuse)
