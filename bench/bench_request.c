/*
 * bench_request.c — the request every invoke case sends, and the helpers
 * that build managers for the cases.
 *
 * The request, as a host would send it:
 *   - payload: a CMF message parsed from JSON text (cpex_cmf_parse) with a
 *     text part and a tool_call part whose arguments are a small object
 *     ({"city":"Paris","units":"metric","days":2,"hourly":false}). The text
 *     part carries the bulk: it is filled so that the message's JSON is
 *     the case's size (1 KB unless the case says 100 KB or 10 MB), the way
 *     a long conversation or a pasted document makes a message large;
 *   - extensions: a subject (id and type) and one request header;
 *   - context: a context table, threaded from each invoke's result into the
 *     next one (cpex_pipeline_result_take_context), as a host threads it
 *     from a pre hook to its post hook;
 *   - plugins: granted read_subject and read_headers, timeout and on_error
 *     at their defaults (30 s, fail).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cpex/cmf.h"
#include "cpex/loader.h"
#include "plugins/bench_handlers.h"

#ifndef CPEX_PLUGIN_DIR
#define CPEX_PLUGIN_DIR "build/plugins"
#endif

const char *bench_plugin_dir = CPEX_PLUGIN_DIR;

static const char *const bench_caps[] = {"read_subject", "read_headers"};

static const char msg_head[] = "{\"role\":\"assistant\",\"content\":["
                               "{\"content_type\":\"text\",\"text\":\"";
static const char msg_tail[] =
    "\"},{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"call_1\","
    "\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"units\":\"metric\","
    "\"days\":2,\"hourly\":false}}}]}";
static const char filler[] = "What is the weather in Paris tomorrow, and should I take an "
                             "umbrella to the meeting at the station? ";

/* ------------------------------------------------------------------ */
/* The request                                                         */
/* ------------------------------------------------------------------ */

/* The message's JSON text, `bytes` long (at least head + tail + 16). */
static char *message_text(size_t bytes, size_t *len)
{
    size_t head = sizeof msg_head - 1, tail = sizeof msg_tail - 1, fill;
    if (bytes < head + tail + 16)
        bytes = head + tail + 16;
    fill = bytes - head - tail;
    char *t = malloc(bytes + 1);
    if (!t)
        return NULL;
    memcpy(t, msg_head, head);
    for (size_t i = 0; i < fill; i++)
        t[head + i] = filler[i % (sizeof filler - 1)];
    memcpy(t + head + fill, msg_tail, tail + 1);
    *len = bytes;
    return t;
}

int bench_request_init(bench_request *r, size_t bytes)
{
    cpex_error err = CPEX_ERROR_INIT;
    size_t len = 0;
    memset(r, 0, sizeof *r);
    char *text = message_text(bytes ? bytes : BENCH_KB, &len);
    if (!text) {
        fprintf(stderr, "cpex_bench: out of memory for a %zu-byte message\n", bytes);
        return -1;
    }
    r->msg = cpex_cmf_parse(text, len, &err);
    free(text);
    if (!r->msg) {
        fprintf(stderr, "cpex_bench: bad CMF message: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return -1;
    }
    r->bytes = len;
    r->payload = cpex_payload_cmf(r->msg);
    r->ext = cpex_extensions_new();
    r->ctx = cpex_context_table_new();
    if (!r->ext || !r->ctx ||
        cpex_extensions_set(r->ext, CPEX_EXT_SUBJECT_ID, "alice") != CPEX_OK ||
        cpex_extensions_set(r->ext, CPEX_EXT_SUBJECT_TYPE, "user") != CPEX_OK ||
        cpex_extensions_set_header(r->ext, CPEX_HEADERS_REQUEST, "x-request-id", "req-42") !=
            CPEX_OK) {
        fprintf(stderr, "cpex_bench: cannot build the extensions\n");
        return -1;
    }
    return 0;
}

void bench_request_cleanup(bench_request *r)
{
    cpex_cmf_free(r->msg);
    cpex_extensions_unref(r->ext);
    cpex_context_table_free(r->ctx);
    memset(r, 0, sizeof *r);
}

cpex_cmf_message *bench_probe_message(void) { return cpex_cmf_new(CPEX_ROLE_ASSISTANT); }

/* ------------------------------------------------------------------ */
/* Managers                                                            */
/* ------------------------------------------------------------------ */

/* Kind "bench-allow": the compiled-in allow plugin on the one hook the
   YAML lists (so that YAML can wire one plugin per distinct hook). */
static cpex_status allow_factory(void *data, const cpex_factory_request *request,
                                 cpex_factory_product *out, cpex_error *err)
{
    char msg[256];
    const cpex_plugin_config *c = request->config;
    (void)data;
    (void)err;
    if (c->hook_count != 1) {
        fprintf(stderr, "cpex_bench: kind bench-allow takes exactly one hook, got %zu\n",
                c->hook_count);
        return CPEX_E_CONFIG;
    }
    if (bench_fill_on_hook(request->host, c->hooks[0].ptr, c->hooks[0].len, &out->registration, msg,
                           sizeof msg) != CPEX_CREATE_OK) {
        fprintf(stderr, "cpex_bench: %s\n", msg);
        return CPEX_E_NOMEM;
    }
    return CPEX_OK;
}

cpex_manager *bench_manager_new(void)
{
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_factory f = {sizeof f, allow_factory, NULL, NULL};
    if (cpex_manager_new(NULL, &m, &err) != CPEX_OK || cpex_loader_register(m, &err) != CPEX_OK ||
        cpex_manager_register_factory(m, "bench-allow", &f, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench: manager: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        cpex_manager_free(m);
        return NULL;
    }
    return m;
}

int bench_add_builtin(cpex_manager *m, const char *name, const char *hook, uint32_t mode,
                      int32_t priority, int role)
{
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    cpex_error err = CPEX_ERROR_INIT;
    char msg[256];
    int32_t rc;

    cpex_plugin_spec_init(&spec);
    spec.name = name;
    spec.kind = "builtin";
    spec.mode = mode;
    spec.priority = priority;
    spec.capabilities = bench_caps;
    spec.capability_count = sizeof bench_caps / sizeof bench_caps[0];

    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    if (hook && strcmp(hook, BENCH_HOOK) != 0)
        rc = bench_fill_on_hook(cpex_host_api_get(), hook, strlen(hook), &reg, msg, sizeof msg);
    else
        rc = bench_fill(cpex_host_api_get(), role, &reg, msg, sizeof msg);
    if (rc != CPEX_CREATE_OK) {
        fprintf(stderr, "cpex_bench: %s\n", msg);
        return -1;
    }
    /* The manager takes the instance whether this succeeds or fails. */
    if (cpex_manager_register(m, &spec, &reg, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench: register %s: %s\n", name, cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return -1;
    }
    return 0;
}

int bench_load_yaml(cpex_manager *m, const char *yaml)
{
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_load_string(m, yaml, strlen(yaml), "bench.yaml", bench_plugin_dir, &err) !=
        CPEX_OK) {
        fprintf(stderr, "cpex_bench: load: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return -1;
    }
    return 0;
}

int bench_initialize(cpex_manager *m)
{
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_initialize(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench: initialize: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return -1;
    }
    return 0;
}

int bench_buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if (*buf && (size_t)n < *cap - *len) {
            *len += (size_t)n;
            return 0;
        }
        size_t want = (*cap ? *cap * 2 : 4096) + (size_t)n;
        char *grown = realloc(*buf, want);
        if (!grown)
            return -1;
        *buf = grown;
        *cap = want;
    }
}

/* ------------------------------------------------------------------ */
/* Checks of a fixture (outside the timed loops)                       */
/* ------------------------------------------------------------------ */

int bench_plugins_on_hook(cpex_manager *m, const char *hook, int mode)
{
    char **names = cpex_manager_plugin_names(m);
    int count = 0;
    if (!names)
        return -1;
    for (size_t i = 0; names[i] && count >= 0; i++) {
        cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
        if (cpex_manager_plugin_info(m, names[i], &info) != CPEX_OK) {
            count = -1;
            break;
        }
        if (mode < 0 || info.mode == (uint32_t)mode)
            for (size_t k = 0; info.hooks && info.hooks[k]; k++)
                if (strcmp(info.hooks[k], hook) == 0)
                    count++;
        cpex_plugin_info_cleanup(&info);
    }
    cpex_strv_free(names);
    return count;
}

int bench_probe(cpex_manager *m, const char *hook, const char *first)
{
    cpex_cmf_message *msg = bench_probe_message();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    int ok = 0;
    if (!msg)
        return -1;
    cpex_payload p = cpex_payload_cmf(msg);
    cpex_manager_invoke(m, hook, &p, NULL, NULL, &res);
    ok = !res.continue_processing && res.violation && res.violation->plugin_name &&
         strcmp(res.violation->plugin_name, first) == 0;
    if (!ok)
        fprintf(stderr, "cpex_bench: probe of hook %s: expected a deny by plugin %s, got %s%s\n",
                hook, first, res.continue_processing ? "allow" : "a deny by ",
                res.continue_processing || !res.violation ? "" : res.violation->plugin_name);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    return ok ? 0 : -1;
}
