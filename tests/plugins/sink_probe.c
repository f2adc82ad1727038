/*
 * sink_probe.c — an audit sink and nothing else (a verdict handler, no
 * handlers: its manifest lists no hook), for tests/e2e/test_isolation_sink.c.
 *
 * For every verdict it writes, through the host table's log slot (with the
 * verdict call, so the line carries the plugin's name), a textual dump of
 * everything it received: one "verdict" line (decision, hook, violation,
 * details, flags, time, the payload's first text, the extensions it can
 * read) and one "record" line per execution record, every field. The same
 * plugin in process and isolated, fed the same verdicts, must log the same
 * lines. A line "pid N" says which process served the verdict.
 *
 * The first text part of a CMF payload may name what to do:
 *   sink:write   try every write a sink may not make (payload, header,
 *                label, custom, context, metadata, deny), logging each
 *                status, then return CPEX_DENY (ignored: a verdict is final)
 *   sink:error   set_error, then return CPEX_ERROR
 *   sink:segv    crash (only with config `crash: true`)
 *   sink:loop    spin forever (only with config `crash: true`)
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cpex/plugin.h>

typedef struct sink {
    const cpex_host_api *host;
    int crash;
} sink;

/* A log line of the verdict call (up to 1.9 KB: cpex_logf cuts at 1 KiB). */
static void say(const sink *self, const cpex_call *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const sink *self, const cpex_call *call, const char *fmt, ...)
{
    char line[1900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    self->host->log(call, CPEX_LOG_INFO, line);
}

/* `s` as text for the dump: "-" when absent. */
static const char *or_dash(cpex_str s, char *buf, size_t cap)
{
    if (!s.ptr)
        return "-";
    snprintf(buf, cap, "'%.*s'", (int)s.len, s.ptr);
    return buf;
}

static void log_record(const sink *self, const cpex_call *call, size_t i,
                       const cpex_execution_record *r)
{
    char a[300], b[300], c[300], d[300], e[300], f[100], g[100], keys[400] = "";
    size_t at = 0;
    for (uint32_t k = 0; k < r->config_key_count && at < sizeof keys - 80; k++)
        at += (size_t)snprintf(keys + at, sizeof keys - at, "%s%.*s", k ? "," : "",
                               (int)r->config_keys[k].len, r->config_keys[k].ptr);
    say(self, call,
        "record %zu: status=%s mode=%u requested=%d effective=%u matched=%d applied=%u "
        "payload_modified=%u extensions_modified=%u start=%" PRId64 " duration=%" PRId64
        " plugin=%s kind=%s hook=%s code=%s reason=%s trace=%s span=%s keys=[%s] size=%u",
        i, cpex_exec_status_text(r->status), r->mode, r->requested, r->effective, r->matched,
        r->applied, r->payload_modified, r->extensions_modified, r->start_unix_ns, r->duration_ns,
        or_dash(r->plugin_name, a, sizeof a), or_dash(r->plugin_kind, b, sizeof b),
        or_dash(r->hook, c, sizeof c), or_dash(r->code, d, sizeof d),
        or_dash(r->reason, e, sizeof e), or_dash(r->trace_id, f, sizeof f),
        or_dash(r->span_id, g, sizeof g), keys, r->struct_size);
}

/* The first text part of the payload, or "" (and the payload's kind). */
static void payload_text(const cpex_call *call, char *out, size_t cap)
{
    out[0] = '\0';
    const cpex_cmf_message *m = cpex_call_cmf(call);
    const cpex_cmf_part *p = m ? cpex_cmf_part_at(m, 0) : NULL;
    cpex_str t = p ? cpex_part_text(p) : (cpex_str){NULL, 0};
    if (t.ptr)
        snprintf(out, cap, "%.*s", (int)t.len, t.ptr);
    else if (cpex_call_json(call))
        snprintf(out, cap, "(json)");
}

static void log_verdict(const sink *self, const cpex_call *call, const cpex_verdict *v,
                        const char *text)
{
    const cpex_host_api *h = self->host;
    char a[300], b[300], c[300], d[300], e[300], subj[100], req[100];
    char *details = v->violation_details ? h->json_dump(v->violation_details) : NULL;
    cpex_str s;
    snprintf(subj, sizeof subj, "-");
    snprintf(req, sizeof req, "-");
    if (h->ext_get(call, CPEX_EXT_SUBJECT_ID, &s) == CPEX_HOST_OK)
        snprintf(subj, sizeof subj, "%.*s", (int)s.len, s.ptr);
    if (h->ext_get(call, CPEX_EXT_REQUEST_ID, &s) == CPEX_HOST_OK)
        snprintf(req, sizeof req, "%.*s", (int)s.len, s.ptr);
    say(self, call,
        "verdict: decision=%u hook=%s code=%s reason=%s description=%s plugin=%s "
        "details=%s payload_modified=%u extensions_modified=%u time=%" PRId64
        " records=%zu record_size=%u payload=%s same_payload=%d text='%s' subject=%s "
        "request_id=%s mode=%u",
        v->decision, or_dash(v->hook, a, sizeof a), or_dash(v->violation_code, b, sizeof b),
        or_dash(v->violation_reason, c, sizeof c), or_dash(v->violation_description, d, sizeof d),
        or_dash(v->violation_plugin, e, sizeof e), details ? details : "-", v->payload_modified,
        v->extensions_modified, v->time_unix_ns, v->record_count,
        v->record_size == sizeof(cpex_execution_record) ? 0u : v->record_size,
        v->payload ? "yes" : "no", v->payload == call->payload, text, subj, req, call->mode);
    h->free(details);
    for (size_t i = 0; i < v->record_count; i++)
        log_record(self, call, i, cpex_verdict_record(v, i));
}

/* Every write an audit-mode call is refused, each status logged. */
static void try_writes(const sink *self, const cpex_call *call)
{
    const cpex_host_api *h = self->host;
    static const char msg[] = "{\"role\":\"user\",\"content\":[{\"content_type\":\"text\","
                              "\"text\":\"from the sink\"}]}";
    cpex_cmf_message *m = h->cmf_parse(msg, sizeof msg - 1);
    int32_t rc[7];
    rc[0] = m ? h->set_payload_cmf(call, m) : -100;
    rc[1] = h->ext_set_header(call, CPEX_HEADERS_RESPONSE, "x-sink", "1");
    rc[2] = h->ext_append_label(call, "sink-label");
    rc[3] = h->ext_set_custom(call, "sink", h->json_new_integer(1));
    rc[4] = h->ctx_set(call, CPEX_CTX_LOCAL, "sink", h->json_new_integer(1));
    rc[5] = h->set_metadata(call, "sink", h->json_new_integer(1));
    rc[6] = h->deny(call, "sink_deny", "a sink cannot deny", NULL, NULL);
    say(self, call,
        "writes: payload=%d header=%d label=%d custom=%d context=%d metadata=%d deny=%d", rc[0],
        rc[1], rc[2], rc[3], rc[4], rc[5], rc[6]);
}

static int32_t on_verdict(void *instance, const cpex_call *call, const cpex_verdict *verdict)
{
    sink *self = instance;
    char text[256];
    payload_text(call, text, sizeof text);
    say(self, call, "pid %ld", (long)getpid());
    log_verdict(self, call, verdict, text);
    if (self->crash && strcmp(text, "sink:segv") == 0) {
        /* A store to a page that is gone: SIGSEGV, also under the sanitizers. */
        char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(page, 4096);
        *(volatile char *)page = 1;
    }
    if (self->crash && strcmp(text, "sink:loop") == 0)
        for (volatile int spin = 1; spin;) {
        }
    if (strcmp(text, "sink:write") == 0) {
        try_writes(self, call);
        return CPEX_DENY;
    }
    if (strcmp(text, "sink:error") == 0) {
        self->host->set_error(call, "the sink failed on purpose");
        return CPEX_ERROR;
    }
    return CPEX_ALLOW;
}

static void destroy(void *instance) { free(instance); }

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    sink *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    const cpex_json *crash = cpex_config_get(host, config, "crash");
    self->host = host;
    self->crash = crash && host->json_bool(crash);
    out->name = "sink-probe";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->verdict = on_verdict; /* and no handler at all */
    return CPEX_CREATE_OK;
}

/* An audit sink without handlers: a manifest entry that lists no hook. */
CPEX_SINK_PLUGIN(create, "sink-probe", "1.0.0",
                 "dumps every verdict it receives (an audit sink without handlers)")
