/*
 * serve_invoke.c — POST /v1/invoke (one `cpex run` request line in, one
 * `cpex run --json` result object out), GET /healthz, and /v1/null.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "output.h"
#include "request.h"
#include "serve.h"

/* "application/json", with or without parameters (charset=utf-8). A
   browser can send text/plain across origins without asking first; it
   cannot send application/json so, which keeps web pages from driving the
   pipeline of a server on the loopback interface. */
static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* Keep the context table the result hands back under the request's id. */
static void keep_context(serve_server *s, const cli_request *req, cpex_pipeline_result *res)
{
    static atomic_bool told;
    cpex_context_table *next = cpex_pipeline_result_take_context(res);
    size_t evicted = cli_contexts_evicted(s->contexts);
    if (next && !cli_contexts_put(s->contexts, req->context_id, next))
        serve_log(s, SERVE_ERROR, "out of memory keeping context '%s'", req->context_id);
    if (evicted == 0 && cli_contexts_evicted(s->contexts) > 0 && !atomic_exchange(&told, true))
        serve_log(s, SERVE_WARN,
                  "more than %zu context ids at once; from here on the least recently used id "
                  "is dropped (a later request with it starts with no context); --max-contexts "
                  "sets the limit",
                  s->opts->max_contexts);
}

enum MHD_Result serve_invoke(serve_request *r, struct MHD_Connection *c)
{
    serve_server *s = r->server;
    if (!is_json_type(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return serve_respond_error(r, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                   "send the request object with Content-Type: application/json");
    cli_request req;
    char *error = NULL;
    if (!cli_request_parse(r->body ? r->body : "", r->body_len, NULL, &req, &error)) {
        enum MHD_Result rc = serve_respond_error(r, c, MHD_HTTP_BAD_REQUEST, error);
        free(error);
        return rc;
    }
    cpex_payload payload = req.is_cmf ? cpex_payload_cmf(req.cmf) : cpex_payload_json(req.json);
    /* The table is consumed by the invoke; the result hands back the next. */
    cpex_context_table *ctx =
        req.context_id ? cli_contexts_take(s->contexts, req.context_id) : NULL;
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(s->manager, req.hook, &payload, req.extensions, ctx, &res);
    json_t *doc = cli_result_json(0, &req, &res);
    serve_metrics_decision(&s->metrics, EP_INVOKE, res.continue_processing, res.error_count);
    if (req.context_id)
        keep_context(s, &req, &res);
    cpex_pipeline_result_cleanup(&res);
    cli_request_cleanup(&req);
    if (!doc)
        return serve_respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return serve_respond_json(r, c, MHD_HTTP_OK, doc, NULL);
}

enum MHD_Result serve_healthz(serve_request *r, struct MHD_Connection *c)
{
    serve_server *s = r->server;
    int phase = atomic_load(&s->phase);
    bool up = phase == SERVE_READY && cpex_manager_is_initialized(s->manager);
    const char *status = up                        ? "ok"
                         : phase == SERVE_STARTING ? "starting"
                         : phase == SERVE_STOPPING ? "stopping"
                                                   : "not initialized";
    /* The generation serving, and how reloads went: a deployment checks
       that its new configuration is the one in force. */
    cpex_reload_status rs;
    cpex_reload_status_init(&rs);
    cpex_manager_reload_status(s->manager, &rs);
    json_t *doc = json_pack("{s:s,s:I,s:I,s:{s:b,s:I,s:I}}", "status", status, "plugins",
                            (json_int_t)cpex_manager_plugin_count(s->manager), "generation",
                            (json_int_t)cpex_manager_generation(s->manager), "reload", "watching",
                            rs.watching && rs.watcher_alive, "applied", (json_int_t)rs.successes,
                            "failed", (json_int_t)rs.failures);
    if (doc && rs.last_error[0]) /* redacted by the library: no text of the file */
        json_object_set_new(json_object_get(doc, "reload"), "last_error",
                            json_string(rs.last_error));
    return serve_respond_json(r, c, up ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, doc, NULL);
}

enum MHD_Result serve_null(serve_request *r, struct MHD_Connection *c)
{
    /* The HTTP work alone (request read, body kept, answer sent) without
       parsing or invoking: the baseline of the benchmark. */
    char *body = strdup("{}\n");
    return serve_respond(r, c, MHD_HTTP_OK, "application/json", body, body ? 3 : 0, NULL);
}
