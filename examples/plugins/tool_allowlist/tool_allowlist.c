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
 *
 * On cmf.http_request (`cpex serve`'s /v1/authz; a JSON payload
 * {method, path, query, host, scheme}) the request's path must match a
 * pattern of `allow_paths` (as below; '*' matches any run of characters,
 * '/' included), else it is denied with `path_not_allowed`. A plugin wired
 * to cmf.http_request without allow_paths denies every request (fail
 * closed). One of allow and allow_paths is required.
 */
//     config:
//       allow_paths: ["/", "/public/*", "/api/*"]
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

#define CTX_APPROVED "approved_call_ids"

typedef struct allowlist {
    const cpex_host_api *host; /* valid for the life of the instance */
    size_t pattern_count;
    char **patterns; /* our own copies: the config lives during create only */
    size_t path_count;
    char **paths; /* allow_paths */
    int verify_results;
} allowlist;

/*
 * Glob match where '*' stands for any run of characters (also empty) and
 * every other character for itself. Iterative with one backtrack point, so
 * a hostile pattern like "*a*a*a*b" costs O(n*m), never exponential time.
 */
static int matches(char *const *patterns, size_t count, cpex_str name)
{
    /* A name with an embedded NUL could slip past a C-string comparison of
       a prefix; no pattern can match it. */
    if (!name.ptr || memchr(name.ptr, '\0', name.len))
        return 0;
    for (size_t i = 0; i < count; i++) {
        if (cpex_glob_match(patterns[i], name.ptr, name.len))
            return 1;
    }
    return 0;
}

static int tool_allowed(const allowlist *self, cpex_str name)
{
    return matches(self->patterns, self->pattern_count, name);
}

static cpex_json *strings_json(const allowlist *self, char *const *items, size_t count)
{
    const cpex_host_api *host = self->host;
    cpex_json *arr = host->json_new_array();
    for (size_t i = 0; arr && i < count; i++)
        host->json_array_append(arr, host->json_new_string(items[i], strlen(items[i])));
    return arr;
}

/*
 * Deny because `name`, a tool or a path (`what`), matches none of
 * `patterns`: code `code`, the name in the reason and in details.<what>,
 * the patterns in details.allowed, and `call_id` when it has one.
 */
static int32_t deny_unlisted(const allowlist *self, const cpex_call *call, const char *code,
                             const char *what, cpex_str name, cpex_str call_id,
                             char *const *patterns, size_t count, const char *description)
{
    const cpex_host_api *host = self->host;
    char reason[512];
    snprintf(reason, sizeof reason, "%s '%.*s' is not allowed by the allowlist", what,
             (int)(name.len > 200 ? 200 : name.len), name.ptr ? name.ptr : "");
    cpex_json *details = host->json_new_object();
    if (details) {
        host->json_object_set(
            details, what,
            host->json_new_string(name.ptr ? name.ptr : "", name.ptr ? name.len : 0));
        if (call_id.ptr)
            host->json_object_set(details, "tool_call_id",
                                  host->json_new_string(call_id.ptr, call_id.len));
        host->json_object_set(details, "allowed", strings_json(self, patterns, count));
    }
    host->deny(call, code, reason, description, details);
    return CPEX_DENY;
}

static int32_t deny_tool(const allowlist *self, const cpex_call *call, cpex_str name,
                         cpex_str call_id)
{
    return deny_unlisted(self, call, "tool_not_allowed", "tool", name, call_id, self->patterns,
                         self->pattern_count,
                         "the tool name matches none of the plugin's `allow` patterns; add a "
                         "pattern to the plugin's config to allow it");
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
                host->json_array_append(
                    approved, host->json_new_string(tc->tool_call_id.ptr, tc->tool_call_id.len));
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
                host->json_object_set(
                    details, "tool_call_id",
                    host->json_new_string(tr->tool_call_id.ptr, tr->tool_call_id.len));
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

/* cmf.http_request: the request's path against allow_paths. */
static int32_t on_http(void *instance, const cpex_call *call)
{
    allowlist *self = instance;
    const cpex_host_api *host = self->host;
    const cpex_json *req = cpex_call_json(call);
    const cpex_json *p = req ? host->json_object_get(req, "path") : NULL;
    cpex_str path = {NULL, 0};
    path.ptr = p ? host->json_string(p, &path.len) : NULL;
    if (path.ptr && matches(self->paths, self->path_count, path))
        return CPEX_ALLOW;
    cpex_str none = {NULL, 0};
    return deny_unlisted(
        self, call, "path_not_allowed", "path", path, none, self->paths, self->path_count,
        self->path_count ? "the path matches none of the plugin's `allow_paths` patterns; "
                           "add a pattern to the plugin's config to allow it"
                         : "the plugin has no `allow_paths`, so it allows no HTTP request; "
                           "list the paths to allow in its config");
}

static void free_strings(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i]);
    free(items);
}

static void destroy(void *instance)
{
    allowlist *self = instance;
    free_strings(self->patterns, self->pattern_count);
    free_strings(self->paths, self->path_count);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_pre, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", on_post, "cmf"),
    CPEX_HANDLER("cmf.http_request", on_http, "json"),
};

/* Check a list of patterns (absent is fine). 0, or -1 with a message. */
static int check_patterns(const cpex_host_api *host, const cpex_json *list, const char *key,
                          const char *what, char *err, size_t err_cap)
{
    if (!list)
        return 0;
    if (host->json_type(list) != CPEX_JSON_ARRAY) {
        cpex_plugin_errorf(err, err_cap, "config.%s must be a list of %s patterns", key, what);
        return -1;
    }
    size_t n = host->json_size(list);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_array_get(list, i), &len);
        if (!s || len == 0 || memchr(s, '\0', len)) {
            cpex_plugin_errorf(err, err_cap,
                               "config.%s[%zu] must be a non-empty string (a %s pattern where "
                               "'*' matches any characters)",
                               key, i, what);
            return -1;
        }
    }
    return 0;
}

/* Copy a checked list of patterns. 0, or -1 on OOM. */
static int copy_patterns(const cpex_host_api *host, const cpex_json *list, char ***out,
                         size_t *count)
{
    size_t n = list ? host->json_size(list) : 0;
    if (n == 0)
        return 0;
    if (!(*out = calloc(n, sizeof **out)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_array_get(list, i), &len);
        if (!((*out)[i] = malloc(len + 1)))
            return -1;
        memcpy((*out)[i], s, len + 1);
        (*count)++;
    }
    return 0;
}

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    const cpex_json *allow = cpex_config_get(host, config, "allow");
    const cpex_json *paths = cpex_config_get(host, config, "allow_paths");
    const cpex_json *verify = cpex_config_get(host, config, "verify_results");
    if (!allow && !paths) {
        cpex_plugin_errorf(err, err_cap,
                           "config.allow is required: a list of tool name patterns, "
                           "e.g. allow: [\"search_*\", \"get_weather\"] (or allow_paths, "
                           "HTTP path patterns for cmf.http_request)");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    if (check_patterns(host, allow, "allow", "tool name", err, err_cap) != 0 ||
        check_patterns(host, paths, "allow_paths", "path", err, err_cap) != 0)
        return CPEX_CREATE_CONFIG_REJECTED;
    if (verify && host->json_type(verify) != CPEX_JSON_BOOL) {
        cpex_plugin_errorf(err, err_cap, "config.verify_results must be true or false");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    allowlist *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    self->verify_results = verify ? host->json_bool(verify) : 0;
    if (copy_patterns(host, allow, &self->patterns, &self->pattern_count) != 0 ||
        copy_patterns(host, paths, &self->paths, &self->path_count) != 0) {
        destroy(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
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
            "Denies tool calls whose tool name matches no allow pattern, and HTTP requests "
            "whose path matches no allow_paths pattern",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke", "cmf.http_request")
