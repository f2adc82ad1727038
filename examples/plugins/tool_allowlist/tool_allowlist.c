/*
 * tool_allowlist.c — deny tool calls whose tool name no pattern allows.
 *
 *   - name: tool-allowlist
 *     kind: "lib:../build/plugins/libtool_allowlist.so"
 *     hooks: [cmf.tool_pre_invoke, cmf.tool_post_invoke]
 *     mode: sequential
 *     config:
 *       allow: ["search_*", "get_weather"]   # '*' matches any run of characters
 *       verify_results: true                 # post hook: only results of approved calls
 *
 * On cmf.tool_pre_invoke every tool_call part must match a pattern, else the
 * call is denied with code `tool_not_allowed` (the tool's name in the reason
 * and in details.tool). The ids of the calls it let through are kept in the
 * plugin's local context, so that, with `verify_results`, the post hook of
 * the same request can refuse a tool_result that no approved call asked for
 * (`tool_result_unapproved`): a result smuggled in without its call is as
 * bad as the call itself.
 */
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

#define CTX_APPROVED "approved_call_ids"

typedef struct allowlist {
    const cpex_host_api *host; /* valid for the life of the instance */
    size_t pattern_count;
    char **patterns;           /* our own copies: the config lives during create only */
    int verify_results;
} allowlist;

/*
 * Glob match where '*' stands for any run of characters (also empty) and
 * every other character for itself. Iterative with one backtrack point, so
 * a hostile pattern like "*a*a*a*b" costs O(n*m), never exponential time.
 */
static int tool_allowed(const allowlist *self, cpex_str name)
{
    /* A name with an embedded NUL could slip past a C-string comparison of
       a prefix; no pattern can match it. */
    if (!name.ptr || memchr(name.ptr, '\0', name.len))
        return 0;
    for (size_t i = 0; i < self->pattern_count; i++) {
        if (cpex_glob_match(self->patterns[i], name.ptr, name.len))
            return 1;
    }
    return 0;
}

static cpex_json *patterns_json(const allowlist *self)
{
    const cpex_host_api *host = self->host;
    cpex_json *arr = host->json_new_array();
    for (size_t i = 0; arr && i < self->pattern_count; i++)
        host->json_array_append(arr, host->json_new_string(self->patterns[i],
                                                           strlen(self->patterns[i])));
    return arr;
}

static int32_t deny_tool(const allowlist *self, const cpex_call *call, cpex_str name,
                         cpex_str call_id)
{
    const cpex_host_api *host = self->host;
    char reason[512];
    snprintf(reason, sizeof reason, "tool '%.*s' is not allowed by the allowlist",
             (int)(name.len > 200 ? 200 : name.len), name.ptr ? name.ptr : "");
    cpex_json *details = host->json_new_object();
    if (details) {
        host->json_object_set(details, "tool", host->json_new_string(name.ptr ? name.ptr : "",
                                                                     name.ptr ? name.len : 0));
        if (call_id.ptr)
            host->json_object_set(details, "tool_call_id",
                                  host->json_new_string(call_id.ptr, call_id.len));
        host->json_object_set(details, "allowed", patterns_json(self));
    }
    host->deny(call, "tool_not_allowed", reason,
               "the tool name matches none of the plugin's `allow` patterns; add a pattern to "
               "the plugin's config to allow it",
               details);
    return CPEX_DENY;
}

static int32_t on_pre(void *instance, const cpex_call *call)
{
    allowlist *self = instance;
    const cpex_host_api *host = self->host;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    cpex_json *approved = NULL;
    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_tool_call *tc = cpex_part_tool_call(cpex_cmf_part_at(msg, i));
        if (!tc)
            continue;
        if (!tool_allowed(self, tc->name)) {
            if (approved)
                host->json_free(approved);
            return deny_tool(self, call, tc->name, tc->tool_call_id);
        }
        if (self->verify_results && tc->tool_call_id.ptr) {
            if (!approved)
                approved = host->json_new_array();
            if (approved)
                host->json_array_append(approved, host->json_new_string(tc->tool_call_id.ptr,
                                                                        tc->tool_call_id.len));
        }
    }
    /* Only when every call passed: a denied request approves nothing. */
    if (approved)
        host->ctx_set(call, CPEX_CTX_LOCAL, CTX_APPROVED, approved);
    return CPEX_ALLOW;
}

static int id_approved(const cpex_host_api *host, const cpex_json *approved, cpex_str id)
{
    size_t n = approved ? host->json_size(approved) : 0;
    for (size_t i = 0; id.ptr && i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_array_get(approved, i), &len);
        if (s && len == id.len && memcmp(s, id.ptr, len) == 0)
            return 1;
    }
    return 0;
}

static int32_t on_post(void *instance, const cpex_call *call)
{
    allowlist *self = instance;
    const cpex_host_api *host = self->host;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    const cpex_json *approved = host->ctx_get(call, CPEX_CTX_LOCAL, CTX_APPROVED);
    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_part *part = cpex_cmf_part_at(msg, i);
        const cpex_cmf_tool_result *tr = cpex_part_tool_result(part);
        const cpex_cmf_tool_call *tc = cpex_part_tool_call(part);
        if (tc && !tool_allowed(self, tc->name))
            return deny_tool(self, call, tc->name, tc->tool_call_id);
        if (!tr)
            continue;
        if (tr->tool_name.ptr && tr->tool_name.len && !tool_allowed(self, tr->tool_name))
            return deny_tool(self, call, tr->tool_name, tr->tool_call_id);
        if (self->verify_results && !id_approved(host, approved, tr->tool_call_id)) {
            char reason[512];
            snprintf(reason, sizeof reason,
                     "result of tool call '%.*s' (tool '%.*s') has no approved call",
                     (int)(tr->tool_call_id.len > 120 ? 120 : tr->tool_call_id.len),
                     tr->tool_call_id.ptr ? tr->tool_call_id.ptr : "",
                     (int)(tr->tool_name.len > 120 ? 120 : tr->tool_name.len),
                     tr->tool_name.ptr ? tr->tool_name.ptr : "");
            cpex_json *details = host->json_new_object();
            if (details && tr->tool_call_id.ptr)
                host->json_object_set(details, "tool_call_id",
                                      host->json_new_string(tr->tool_call_id.ptr,
                                                            tr->tool_call_id.len));
            host->deny(call, "tool_result_unapproved", reason,
                       "verify_results is on: a tool result passes only if cmf.tool_pre_invoke "
                       "approved its tool_call_id in the same context (thread the context "
                       "table from the pre hook into the post hook)",
                       details);
            return CPEX_DENY;
        }
    }
    return CPEX_ALLOW;
}

static void destroy(void *instance)
{
    allowlist *self = instance;
    for (size_t i = 0; i < self->pattern_count; i++)
        free(self->patterns[i]);
    free(self->patterns);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_pre, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", on_post, "cmf"),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    const cpex_json *allow = cpex_config_get(host, config, "allow");
    const cpex_json *verify = cpex_config_get(host, config, "verify_results");
    if (!allow || host->json_type(allow) != CPEX_JSON_ARRAY) {
        cpex_plugin_errorf(err, err_cap,
                           "config.allow is required: a list of tool name patterns, "
                           "e.g. allow: [\"search_*\", \"get_weather\"]");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    if (verify && host->json_type(verify) != CPEX_JSON_BOOL) {
        cpex_plugin_errorf(err, err_cap, "config.verify_results must be true or false");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    size_t n = host->json_size(allow);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_array_get(allow, i), &len);
        if (!s || len == 0 || memchr(s, '\0', len)) {
            cpex_plugin_errorf(err, err_cap,
                               "config.allow[%zu] must be a non-empty string (a tool name "
                               "pattern where '*' matches any characters)",
                               i);
            return CPEX_CREATE_CONFIG_REJECTED;
        }
    }
    allowlist *self = calloc(1, sizeof *self);
    if (!self || (n && !(self->patterns = calloc(n, sizeof *self->patterns)))) {
        free(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    self->verify_results = verify ? host->json_bool(verify) : 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_array_get(allow, i), &len);
        self->patterns[i] = malloc(len + 1);
        if (!self->patterns[i]) {
            destroy(self);
            cpex_plugin_errorf(err, err_cap, "out of memory");
            return CPEX_CREATE_INIT_FAILED;
        }
        memcpy(self->patterns[i], s, len + 1);
        self->pattern_count++;
    }
    out->name = "tool-allowlist";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "tool-allowlist", "1.0.0",
            "Denies tool calls whose tool name matches no allow pattern",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke")
