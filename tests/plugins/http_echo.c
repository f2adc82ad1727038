/*
 * http_echo.c — a cmf.http_request plugin for the `cpex serve` tests: it
 * shows what the server handed it and asks for the answers the tests
 * check.
 *
 *   - name: echo
 *     kind: "lib:…/libhttp_echo.so"
 *     hooks: [cmf.http_request]
 *     capabilities: [read_headers, write_headers]
 *     config:
 *       decision: deny            # or allow
 *       reason: "..."             # the violation's reason (default "echo")
 *       http_status: 418          # put into the violation's details
 *       http_headers: {a: "1"}    # put into the violation's details
 *       response_headers: {b: "2"}   # set in the http extension
 *
 * A denial's details always carry what the plugin saw: "payload" (the JSON
 * document), "entity_type", "entity_name", "request_id" and "headers" (the
 * request headers, as an object).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

typedef struct echo {
    const cpex_host_api *host;
    int allow;
    char *reason;
    cpex_json *http_status, *http_headers, *response_headers;
} echo;

static cpex_json *str(const cpex_host_api *h, cpex_str s)
{
    return s.ptr ? h->json_new_string(s.ptr, s.len) : h->json_new_null();
}

static cpex_json *field(const cpex_host_api *h, const cpex_call *call, uint32_t f)
{
    cpex_str s = {NULL, 0};
    h->ext_get(call, f, &s);
    return str(h, s);
}

static int32_t on_http(void *instance, const cpex_call *call)
{
    echo *self = instance;
    const cpex_host_api *h = self->host;
    size_t n = self->response_headers ? h->json_size(self->response_headers) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        const cpex_json *v = h->json_object_at(self->response_headers, i, &name);
        h->ext_set_header(call, CPEX_HEADERS_RESPONSE, name, h->json_string(v, NULL));
    }
    if (self->allow)
        return CPEX_ALLOW;
    cpex_json *d = h->json_new_object();
    const cpex_json *payload = cpex_call_json(call);
    h->json_object_set(d, "payload", payload ? h->json_copy(payload) : h->json_new_null());
    h->json_object_set(d, "entity_type", field(h, call, CPEX_EXT_ENTITY_TYPE));
    h->json_object_set(d, "entity_name", field(h, call, CPEX_EXT_ENTITY_NAME));
    h->json_object_set(d, "request_id", field(h, call, CPEX_EXT_REQUEST_ID));
    cpex_json *headers = h->json_new_object();
    size_t hn = h->ext_header_count(call, CPEX_HEADERS_REQUEST);
    for (size_t i = 0; i < hn; i++) {
        cpex_str name = {NULL, 0}, value = {NULL, 0};
        if (h->ext_header_at(call, CPEX_HEADERS_REQUEST, i, &name, &value) == CPEX_HOST_OK) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(name.len < 255 ? name.len : 255), name.ptr);
            h->json_object_set(headers, key, str(h, value));
        }
    }
    h->json_object_set(d, "headers", headers);
    if (self->http_status)
        h->json_object_set(d, "http_status", h->json_copy(self->http_status));
    if (self->http_headers)
        h->json_object_set(d, "http_headers", h->json_copy(self->http_headers));
    h->deny(call, "echo", self->reason ? self->reason : "echo", NULL, d);
    return CPEX_DENY;
}

static void destroy(void *instance)
{
    echo *self = instance;
    free(self->reason);
    self->host->json_free(self->http_status);
    self->host->json_free(self->http_headers);
    self->host->json_free(self->response_headers);
    free(self);
}

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.http_request", on_http, "json")};

static cpex_json *copy_of(const cpex_host_api *h, const cpex_plugin_config *config, const char *key)
{
    const cpex_json *v = cpex_config_get(h, config, key);
    return v ? h->json_copy(v) : NULL;
}

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    echo *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    const char *decision = cpex_config_string(host, config, "decision", NULL);
    self->allow = decision && strcmp(decision, "allow") == 0;
    const char *reason = cpex_config_string(host, config, "reason", NULL);
    self->reason = reason ? strdup(reason) : NULL;
    self->http_status = copy_of(host, config, "http_status");
    self->http_headers = copy_of(host, config, "http_headers");
    self->response_headers = copy_of(host, config, "response_headers");
    out->name = "http-echo";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "http-echo", "1.0.0", "Shows what a cmf.http_request call carries",
            "cmf.http_request")
