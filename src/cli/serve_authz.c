/*
 * serve_authz.c — /v1/authz: forward authorization for gateways (nginx
 * auth_request, Envoy ext_authz in HTTP mode, Traefik forwardAuth).
 *
 * A gateway asks about a request it holds (the "original"); we rebuild it
 * and run the hook cmf.http_request on it:
 *   payload     {"method","path","query","host","scheme"} (JSON payload type)
 *   extensions  http.request_headers: the headers of the check request
 *               (the gateway passes the original's), hop-by-hop ones left
 *               out and names in lower case; meta: entity type "http",
 *               entity name the path; request.request_id: X-Request-Id.
 *
 * Where the original comes from — two forms, told apart by the path:
 *   /v1/authz exactly (nginx, Traefik: a fixed URL): from headers,
 *     X-Original-URI / X-Original-Method (the nginx convention) or
 *     X-Forwarded-Uri / X-Forwarded-Method (Traefik); both families
 *     present and disagreeing is refused (400), since one of them then
 *     came from the client; host X-Forwarded-Host, else Host; scheme
 *     X-Forwarded-Proto, else "http".
 *   /v1/authz/<path> (Envoy's path_prefix "/v1/authz"): the original is the
 *     check request itself, method and target below the prefix. The
 *     forwarding headers are then ordinary headers: a client reaching
 *     Envoy cannot steer the decision with them.
 *
 * The answer: allow → 200 with the response headers the plugins set;
 * deny → the status (--deny-status, else the violation's
 * details.http_status when it is 400-599, else 403), the headers of the
 * violation's details.http_headers, the violation as JSON body and,
 * shortened, in the header x-cpex-violation.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "output.h"
#include "serve.h"

#define AUTHZ_HOOK "cmf.http_request"
#define VIOLATION_HEADER "x-cpex-violation"
/* Gateways keep an auth response's headers in a small buffer (nginx:
   proxy_buffer_size, 4 KiB by default); a long reason must not overflow it. */
#define VIOLATION_HEADER_MAX 1024

typedef struct original {
    const char *method;
    const char *target; /* path and query, raw */
    const char *host;
    const char *scheme;
} original;

/* Printable ASCII without spaces: what a request target and a method are. */
static bool plain_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    }
    return true;
}

/* One of two header families: the value, after checking they agree. */
static bool pick(struct MHD_Connection *c, const char *a, const char *b, const char **out,
                 char *why, size_t cap)
{
    const char *va = MHD_lookup_connection_value(c, MHD_HEADER_KIND, a);
    const char *vb = MHD_lookup_connection_value(c, MHD_HEADER_KIND, b);
    if (va && vb && strcmp(va, vb) != 0) {
        snprintf(why, cap,
                 "%s and %s disagree; the gateway sets one of them, so the other came from the "
                 "client: set both to the same value or remove the other in the gateway's "
                 "configuration",
                 a, b);
        return false;
    }
    *out = va ? va : vb;
    return true;
}

/* Find the original request. False with a reason (a 400) when the check
   request does not say it. */
static bool find_original(serve_request *r, struct MHD_Connection *c, const char *method,
                          original *o, char *why, size_t cap)
{
    memset(o, 0, sizeof *o);
    const char *below = r->uri + strlen("/v1/authz");
    if (*below == '/') { /* Envoy: the prefix form */
        o->method = method;
        o->target = below;
    } else {
        if (!pick(c, "X-Original-URI", "X-Forwarded-Uri", &o->target, why, cap) ||
            !pick(c, "X-Original-Method", "X-Forwarded-Method", &o->method, why, cap))
            return false;
        if (!o->target) {
            snprintf(why, cap,
                     "no original request: send X-Original-URI (nginx) or X-Forwarded-Uri "
                     "(Traefik), or ask below the prefix, /v1/authz/<path> (Envoy's "
                     "path_prefix); see docs/serve.md");
            return false;
        }
        if (!o->method)
            o->method = method;
        o->host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Host");
    }
    if (!o->host)
        o->host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    o->scheme = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Proto");
    if (!o->scheme)
        o->scheme = "http";
    if (o->target[0] != '/' || !plain_token(o->target)) {
        snprintf(why, cap,
                 "the original request target must be a path starting with '/' and "
                 "holding only printable ASCII (percent-encode the rest)");
        return false;
    }
    if (!plain_token(o->method) || (o->host && *o->host && !plain_token(o->host)) ||
        !plain_token(o->scheme)) {
        snprintf(why, cap,
                 "the original method, host and scheme must be printable ASCII "
                 "without spaces");
        return false;
    }
    return true;
}

/* {"method","path","query","host","scheme"}: the payload of cmf.http_request. */
static json_t *payload_of(const original *o)
{
    const char *q = strchr(o->target, '?');
    size_t path_len = q ? (size_t)(q - o->target) : strlen(o->target);
    return json_pack("{s:s,s:s%,s:s,s:s,s:s}", "method", o->method, "path", o->target, path_len,
                     "query", q ? q + 1 : "", "host", o->host ? o->host : "", "scheme", o->scheme);
}

/* Connection-level headers describe the hop to us, not the original. */
static bool hop_by_hop(const char *name)
{
    static const char *const names[] = {"connection",       "keep-alive",        "te",
                                        "trailer",          "transfer-encoding", "upgrade",
                                        "proxy-connection", "content-length",    NULL};
    for (size_t i = 0; names[i]; i++) {
        if (strcasecmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

typedef struct header_copy {
    cpex_extensions *ext;
    char *bad; /* the first header refused, malloc'd */
} header_copy;

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    header_copy *h = cls;
    (void)kind;
    if (hop_by_hop(key))
        return MHD_YES;
    char name[256];
    if (key_size == 0 || key_size >= sizeof name) {
        h->bad = strdup(key_size ? "(a name over 255 bytes)" : "(an empty name)");
        return MHD_NO;
    }
    for (size_t i = 0; i <= key_size; i++)
        name[i] = (char)tolower((unsigned char)key[i]);
    /* A repeated header is one list, comma-joined (RFC 9110, 5.3). */
    const char *before = cpex_extensions_header(h->ext, CPEX_HEADERS_REQUEST, name);
    char *joined = NULL;
    if (before) {
        size_t n = strlen(before);
        joined = malloc(n + 2 + value_size + 1);
        if (!joined) {
            h->bad = strdup("(out of memory)");
            return MHD_NO;
        }
        memcpy(joined, before, n);
        memcpy(joined + n, ", ", 2);
        memcpy(joined + n + 2, value, value_size);
        joined[n + 2 + value_size] = '\0';
    }
    cpex_status st =
        cpex_extensions_set_header(h->ext, CPEX_HEADERS_REQUEST, name, joined ? joined : value);
    free(joined);
    if (st != CPEX_OK) {
        h->bad = strdup(name);
        return MHD_NO;
    }
    return MHD_YES;
}

/* The extensions of the invoke; NULL with a reason on failure. */
static cpex_extensions *extensions_of(struct MHD_Connection *c, const char *path, size_t path_len,
                                      char *why, size_t cap)
{
    header_copy h = {cpex_extensions_new(), NULL};
    char *entity = strndup(path, path_len);
    if (!h.ext || !entity) {
        snprintf(why, cap, "out of memory");
        goto fail;
    }
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, copy_header, &h);
    if (h.bad) {
        snprintf(why, cap,
                 "header '%.100s' cannot be passed on: a header name is a token and "
                 "a value UTF-8 text without line breaks",
                 h.bad);
        goto fail;
    }
    const char *rid = cpex_extensions_header(h.ext, CPEX_HEADERS_REQUEST, "x-request-id");
    if (cpex_extensions_set(h.ext, CPEX_EXT_ENTITY_TYPE, "http") != CPEX_OK ||
        cpex_extensions_set(h.ext, CPEX_EXT_ENTITY_NAME, entity) != CPEX_OK ||
        (rid && cpex_extensions_set(h.ext, CPEX_EXT_REQUEST_ID, rid) != CPEX_OK)) {
        snprintf(why, cap, "out of memory");
        goto fail;
    }
    free(entity);
    return h.ext;
fail:
    free(h.bad);
    free(entity);
    cpex_extensions_unref(h.ext);
    return NULL;
}

/* A plugin's response header that may go on the wire: a token name that
   is not about the connection, a value without control characters. */
static bool header_sendable(const char *name, const char *value)
{
    if (!*name || hop_by_hop(name) || strcasecmp(name, VIOLATION_HEADER) == 0 ||
        strcasecmp(name, "content-type") == 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (!isalnum(*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    }
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    }
    return true;
}

/* Append name and value to `h` at *k if they may be sent; log if not. */
static void add_header(serve_server *s, const char **h, size_t *k, const char *name,
                       const char *value)
{
    if (!name || !value)
        return;
    if (!header_sendable(name, value)) {
        serve_log(s, SERVE_WARN,
                  "a plugin asked for the response header '%s', which cannot be "
                  "sent (a connection header, a name that is no token, or "
                  "control characters in its value); left out",
                  name);
        return;
    }
    h[(*k)++] = name;
    h[(*k)++] = value;
}

/*
 * name, value, ..., NULL: the response headers the plugins set (the http
 * extension), those a denial asks for (its details.http_headers, an object
 * of strings), then the violation header. Borrowed from `ext` and
 * `v`; free the array only.
 */
static const char **response_headers(serve_server *s, const cpex_extensions *ext,
                                     const cpex_violation *v, const char *violation)
{
    size_t n = ext ? cpex_extensions_header_count(ext, CPEX_HEADERS_RESPONSE) : 0;
    const json_t *asked = v && v->details ? json_object_get(v->details, "http_headers") : NULL;
    size_t m = json_is_object(asked) ? json_object_size(asked) : 0;
    const char **h = calloc(2 * (n + m) + 3, sizeof *h);
    size_t k = 0;
    for (size_t i = 0; h && i < n; i++) {
        const char *value = NULL;
        const char *name = cpex_extensions_header_at(ext, CPEX_HEADERS_RESPONSE, i, &value);
        add_header(s, h, &k, name, value);
    }
    const char *key;
    const json_t *value;
    if (h && m) {
        json_object_foreach((json_t *)asked, key, value)
        {
            if (json_is_string(value))
                add_header(s, h, &k, key, json_string_value(value));
            else
                serve_log(s, SERVE_WARN,
                          "violation details.http_headers.%s is not a string; "
                          "left out",
                          key);
        }
    }
    if (h && violation) {
        h[k++] = VIOLATION_HEADER;
        h[k++] = violation;
    }
    return h;
}

/* The header form of a violation: {"code","reason","plugin"} as ASCII
   JSON, the reason cut so that the whole fits VIOLATION_HEADER_MAX. */
static char *violation_header(const cpex_violation *v)
{
    const char *reason = v->reason ? v->reason : "";
    size_t keep = strlen(reason);
    for (int round = 0; round < 8; round++) {
        char *cut = strndup(reason, keep);
        json_t *o = json_pack("{s:o,s:o,s:o}", "code", cli_json_str(v->code ? v->code : ""),
                              "reason", cli_json_str(cut ? cut : ""), "plugin",
                              cli_json_str(v->plugin_name ? v->plugin_name : ""));
        free(cut);
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        json_decref(o);
        if (!text || strlen(text) <= VIOLATION_HEADER_MAX)
            return text;
        free(text);
        /* Escapes make the text longer than the reason: cut by the excess, twice over. */
        keep = keep > VIOLATION_HEADER_MAX / 2 ? VIOLATION_HEADER_MAX / 2 : keep / 2;
    }
    return NULL;
}

/* The status of a denial. */
static unsigned deny_status(const serve_opts *o, const cpex_violation *v)
{
    if (o->deny_status)
        return o->deny_status;
    const json_t *st = v && v->details ? json_object_get(v->details, "http_status") : NULL;
    if (json_is_integer(st) && json_integer_value(st) >= 400 && json_integer_value(st) <= 599)
        return (unsigned)json_integer_value(st);
    return MHD_HTTP_FORBIDDEN;
}

enum MHD_Result serve_authz(serve_request *r, struct MHD_Connection *c, const char *method)
{
    serve_server *s = r->server;
    if (!cpex_manager_has_hooks_for(s->manager, AUTHZ_HOOK))
        /* Fail closed: a configuration without it would allow everything. */
        return serve_respond_error(r, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "no plugin of the configuration handles cmf.http_request, "
                                   "so there is nothing to decide with; wire one (hooks: "
                                   "[cmf.http_request]); see docs/serve.md");
    char why[400];
    original o;
    if (!find_original(r, c, method, &o, why, sizeof why))
        return serve_respond_error(r, c, MHD_HTTP_BAD_REQUEST, why);
    json_t *payload_json = payload_of(&o);
    const char *q = strchr(o.target, '?');
    cpex_extensions *ext =
        payload_json ? extensions_of(c, o.target, q ? (size_t)(q - o.target) : strlen(o.target),
                                     why, sizeof why)
                     : NULL;
    if (!payload_json || !ext) {
        json_decref(payload_json);
        return serve_respond_error(
            r, c, payload_json ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
            payload_json ? why : "out of memory");
    }
    cpex_payload payload = cpex_payload_json(payload_json);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(s->manager, AUTHZ_HOOK, &payload, ext, NULL, &res);
    serve_metrics_decision(&s->metrics, EP_AUTHZ, res.continue_processing, res.error_count);
    const cpex_extensions *final =
        res.extensions_modified && res.extensions ? res.extensions : NULL;
    enum MHD_Result rc;
    if (res.continue_processing) {
        const char **hdr = response_headers(s, final, NULL, NULL);
        rc = hdr ? serve_respond(r, c, MHD_HTTP_OK, NULL, NULL, 0, hdr)
                 : serve_respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        free(hdr);
    } else {
        /* A deny always carries a violation; fail closed if one is missing. */
        cpex_violation none = {0};
        none.code = (char *)cpex_code_name(CPEX_CODE_PLUGIN_DENY);
        const cpex_violation *v = res.violation ? res.violation : &none;
        char *vh = violation_header(v);
        const char **hdr = vh ? response_headers(s, final, v, vh) : NULL;
        if (hdr)
            rc = serve_respond_json(r, c, deny_status(s->opts, v), cli_violation_json(v), hdr);
        else
            rc = serve_respond_error(r, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        free(hdr);
        free(vh);
    }
    cpex_pipeline_result_cleanup(&res);
    cpex_extensions_unref(ext);
    json_decref(payload_json);
    return rc;
}
