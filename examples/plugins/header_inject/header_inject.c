/*
 * header_inject.c — add HTTP headers and a security label; shows how
 * capabilities gate extension writes.
 *
 *   - name: header-inject
 *     kind: "lib:../build/plugins/libheader_inject.so"
 *     hooks: [cmf.tool_pre_invoke, cmf.tool_post_invoke]
 *     mode: sequential                         # or transform: both may modify
 *     capabilities: [write_headers, append_labels]
 *     config:
 *       response_headers: { x-cpex-gateway: "example" }
 *       request_headers:  { x-cpex-checked: "yes" }
 *       labels: ["cpex-checked"]
 *       tools: ["send_*"]      # optional: act only on messages naming these tools
 *
 * On cmf.http_request (`cpex serve`'s /v1/authz; a JSON payload describing
 * an HTTP request) it injects the same way, whatever `tools` says: the
 * response headers it sets are the ones the gateway receives with the
 * allow, and passes on to the upstream (docs/serve.md).
 *
 * Every write goes through the host table: ext_set_header needs the
 * `write_headers` capability, ext_append_label needs `append_labels`. A
 * write the plugin is not entitled to is refused (CPEX_HOST_EDENIED), and
 * the host records it as a soft error `denied_write` naming the plugin; the
 * plugin goes on and allows the call, so an operator sees the refusal in
 * the result's errors instead of a silent no-op or a failed request. The
 * plugin counts its refused writes in the metadata `header_inject.refused`.
 */
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

typedef struct pair {
    char *name;
    char *value;
} pair;

typedef struct injector {
    const cpex_host_api *host;
    size_t response_count, request_count, label_count, tool_count;
    pair *response;
    pair *request;
    char **labels;
    char **tools; /* glob patterns ('*'); none: act on every message */
} injector;

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}
static int name_selected(const injector *self, cpex_str name)
{
    for (size_t i = 0; name.ptr && i < self->tool_count; i++) {
        if (cpex_glob_match(self->tools[i], name.ptr, name.len))
            return 1;
    }
    return 0;
}

/* Whether this message concerns one of the configured tools (or no filter is set). */
static int selected(const injector *self, const cpex_cmf_message *msg)
{
    if (self->tool_count == 0)
        return 1;
    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_part *part = cpex_cmf_part_at(msg, i);
        const cpex_cmf_tool_call *tc = cpex_part_tool_call(part);
        const cpex_cmf_tool_result *tr = cpex_part_tool_result(part);
        if ((tc && name_selected(self, tc->name)) || (tr && name_selected(self, tr->tool_name)))
            return 1;
    }
    return 0;
}

static int32_t inject(injector *self, const cpex_call *call)
{
    const cpex_host_api *host = self->host;
    int64_t written = 0, refused = 0;
    for (size_t i = 0; i < self->response_count; i++) {
        if (host->ext_set_header(call, CPEX_HEADERS_RESPONSE, self->response[i].name,
                                 self->response[i].value) == CPEX_HOST_OK)
            written++;
        else
            refused++;
    }
    for (size_t i = 0; i < self->request_count; i++) {
        if (host->ext_set_header(call, CPEX_HEADERS_REQUEST, self->request[i].name,
                                 self->request[i].value) == CPEX_HOST_OK)
            written++;
        else
            refused++;
    }
    for (size_t i = 0; i < self->label_count; i++) {
        if (host->ext_append_label(call, self->labels[i]) == CPEX_HOST_OK)
            written++;
        else
            refused++;
    }
    /* Not an error: the host has recorded each refusal already; the
       counters let a dashboard see the plugin's view of it. */
    if (refused) {
        cpex_json *md = host->json_new_object();
        if (md) {
            host->json_object_set(md, "written", host->json_new_integer(written));
            host->json_object_set(md, "refused", host->json_new_integer(refused));
            host->set_metadata(call, "header_inject", md);
        }
    }
    return CPEX_ALLOW;
}

static int32_t on_message(void *instance, const cpex_call *call)
{
    injector *self = instance;
    if (!selected(self, cpex_call_cmf(call)))
        return CPEX_ALLOW;
    return inject(self, call);
}

static int32_t on_http(void *instance, const cpex_call *call) { return inject(instance, call); }

static void destroy(void *instance)
{
    injector *self = instance;
    for (size_t i = 0; i < self->response_count; i++) {
        free(self->response[i].name);
        free(self->response[i].value);
    }
    for (size_t i = 0; i < self->request_count; i++) {
        free(self->request[i].name);
        free(self->request[i].value);
    }
    for (size_t i = 0; i < self->label_count; i++)
        free(self->labels[i]);
    for (size_t i = 0; i < self->tool_count; i++)
        free(self->tools[i]);
    free(self->response);
    free(self->request);
    free(self->labels);
    free(self->tools);
    free(self);
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_message, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", on_message, "cmf"),
    CPEX_HANDLER("cmf.http_request", on_http, "json"),
};

/* Copy a {name: value} map of strings. Returns 0, or -1 with a message, or -2 on OOM. */
static int read_headers(const cpex_host_api *host, const cpex_plugin_config *config,
                        const char *key, pair **out, size_t *count, char *err, size_t err_cap)
{
    const cpex_json *obj = cpex_config_get(host, config, key);
    if (!obj)
        return 0;
    if (host->json_type(obj) != CPEX_JSON_OBJECT) {
        cpex_plugin_errorf(err, err_cap, "config.%s must be a map of header name to value", key);
        return -1;
    }
    size_t n = host->json_size(obj);
    if (n == 0)
        return 0;
    if (!(*out = calloc(n, sizeof **out)))
        return -2;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        size_t vlen = 0;
        const cpex_json *v = host->json_object_at(obj, i, &name);
        const char *value = v ? host->json_string(v, &vlen) : NULL;
        if (!name || !*name || !value || memchr(value, '\0', vlen) || strpbrk(name, "\r\n:") ||
            memchr(value, '\r', vlen) || memchr(value, '\n', vlen)) {
            /* CR/LF in a header is response splitting waiting to happen. */
            cpex_plugin_errorf(err, err_cap,
                               "config.%s.%.100s must be a string without line breaks (and the "
                               "name without ':')",
                               key, name ? name : "?");
            return -1;
        }
        (*out)[i].name = dup_n(name, strlen(name));
        (*out)[i].value = dup_n(value, vlen);
        (*count)++;
        if (!(*out)[i].name || !(*out)[i].value)
            return -2;
    }
    return 0;
}

/* Copy a list of non-empty strings. Same returns as read_headers. */
static int read_strings(const cpex_host_api *host, const cpex_plugin_config *config,
                        const char *key, char ***out, size_t *count, char *err, size_t err_cap)
{
    const cpex_json *arr = cpex_config_get(host, config, key);
    if (!arr)
        return 0;
    if (host->json_type(arr) != CPEX_JSON_ARRAY) {
        cpex_plugin_errorf(err, err_cap, "config.%s must be a list of strings", key);
        return -1;
    }
    size_t n = host->json_size(arr);
    if (n == 0)
        return 0;
    if (!(*out = calloc(n, sizeof **out)))
        return -2;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_array_get(arr, i), &len);
        if (!s || len == 0 || memchr(s, '\0', len)) {
            cpex_plugin_errorf(err, err_cap, "config.%s[%zu] must be a non-empty string", key, i);
            return -1;
        }
        if (!((*out)[i] = dup_n(s, len)))
            return -2;
        (*count)++;
    }
    return 0;
}

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    injector *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    int rc = read_headers(host, config, "response_headers", &self->response, &self->response_count,
                          err, err_cap);
    if (rc == 0)
        rc = read_headers(host, config, "request_headers", &self->request, &self->request_count,
                          err, err_cap);
    if (rc == 0)
        rc = read_strings(host, config, "labels", &self->labels, &self->label_count, err, err_cap);
    if (rc == 0)
        rc = read_strings(host, config, "tools", &self->tools, &self->tool_count, err, err_cap);
    if (rc == 0 && self->response_count + self->request_count + self->label_count == 0) {
        cpex_plugin_errorf(err, err_cap,
                           "nothing to inject: give response_headers, request_headers or labels "
                           "in the plugin's config");
        rc = -1;
    }
    if (rc != 0) {
        destroy(self);
        if (rc == -2)
            cpex_plugin_errorf(err, err_cap, "out of memory");
        return rc == -2 ? CPEX_CREATE_INIT_FAILED : CPEX_CREATE_CONFIG_REJECTED;
    }
    out->name = "header-inject";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "header-inject", "1.0.0",
            "Adds HTTP headers (needs write_headers) and security labels (needs append_labels)",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke", "cmf.http_request")
