/* output.c — writing results of `cpex run`; see output.h. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"

static bool show_generation;

void cli_output_show_generation(bool show) { show_generation = show; }

json_t *cli_json_diff(const json_t *before, const json_t *after)
{
    json_t *diff = json_object();
    const char *key;
    json_t *value;
    if (!diff)
        return NULL;
    if (json_is_object(after)) {
        json_object_foreach((json_t *)after, key, value)
        {
            const json_t *old = json_is_object(before) ? json_object_get(before, key) : NULL;
            if (old && json_equal((json_t *)old, value))
                continue;
            /* Objects (header sets, slots) show only their changed members;
               anything else (a label list) shows whole. */
            if (old && json_is_object(old) && json_is_object(value))
                json_object_set_new(diff, key, cli_json_diff(old, value));
            else
                json_object_set(diff, key, value);
        }
    }
    if (json_is_object(before)) {
        json_object_foreach((json_t *)before, key, value)
        {
            if (!json_is_object(after) || !json_object_get(after, key))
                json_object_set_new(diff, key, json_null());
        }
    }
    return diff;
}

json_t *cli_violation_json(const cpex_violation *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "code", cli_json_str(v->code ? v->code : ""));
    json_object_set_new(o, "reason", cli_json_str(v->reason ? v->reason : ""));
    if (v->description)
        json_object_set_new(o, "description", cli_json_str(v->description));
    json_object_set_new(o, "details", v->details ? json_incref(v->details) : json_object());
    if (v->plugin_name)
        json_object_set_new(o, "plugin", cli_json_str(v->plugin_name));
    return o;
}

static json_t *errors_json(const cpex_pipeline_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->error_count; i++) {
        const cpex_error_record *e = &r->errors[i];
        json_t *o = json_object();
        json_object_set_new(o, "plugin", cli_json_str(e->plugin_name ? e->plugin_name : ""));
        json_object_set_new(o, "code", cli_json_str(e->code ? e->code : ""));
        json_object_set_new(o, "message", cli_json_str(e->message ? e->message : ""));
        if (e->details)
            json_object_set(o, "details", e->details);
        json_array_append_new(a, o);
    }
    return a;
}

/* The final payload as JSON (a new reference). */
static json_t *final_payload(const cli_request *req, const cpex_pipeline_result *r)
{
    if (r->modified_payload) {
        if (r->modified_payload->kind == CPEX_PAYLOAD_CMF)
            return cpex_cmf_to_json(r->modified_payload->data);
        if (r->modified_payload->kind == CPEX_PAYLOAD_JSON)
            return json_incref((json_t *)r->modified_payload->data);
        return json_null(); /* host-defined types: the CLI defines none */
    }
    return req->is_cmf ? cpex_cmf_to_json(req->cmf) : json_incref(req->json);
}

/* The changed parts of the extensions, or NULL when nothing changed. */
static json_t *extensions_diff(const cli_request *req, const cpex_pipeline_result *r)
{
    if (!r->extensions_modified || !r->extensions)
        return NULL;
    json_t *before = req->extensions ? cpex_extensions_to_json(req->extensions) : NULL;
    json_t *after = cpex_extensions_to_json(r->extensions);
    json_t *diff = cli_json_diff(before, after);
    json_decref(before);
    json_decref(after);
    return diff;
}

/* The execution records, one object each (cpex_execution_record_to_json). */
static json_t *executions_json(const cpex_pipeline_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->execution_count; i++)
        json_array_append_new(a,
                              cpex_execution_record_to_json(cpex_pipeline_result_execution(r, i)));
    return a;
}

json_t *cli_result_json(size_t line, const cli_request *req, const cpex_pipeline_result *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (line)
        json_object_set_new(o, "line", json_integer((json_int_t)line));
    json_object_set_new(o, "hook", cli_json_str(req->hook));
    if (req->context_id)
        json_object_set_new(o, "context", cli_json_str(req->context_id));
    json_object_set_new(o, "decision", json_string(r->continue_processing ? "allow" : "deny"));
    json_object_set_new(o, "no_plugin_ran", json_boolean(r->no_plugin_ran));
    if (r->violation)
        json_object_set_new(o, "violation", cli_violation_json(r->violation));
    json_object_set_new(o, "payload_modified", json_boolean(r->payload_modified));
    json_object_set_new(o, "payload", final_payload(req, r));
    json_t *ext = extensions_diff(req, r);
    if (ext)
        json_object_set_new(o, "extensions", ext);
    if (r->metadata)
        json_object_set(o, "metadata", r->metadata);
    json_object_set_new(o, "errors", errors_json(r));
    /* The registry generation the invoke ran on (a reload between lines changes it). */
    json_object_set_new(o, "generation", json_integer((json_int_t)r->generation));
    if (r->executions)
        json_object_set_new(o, "executions", executions_json(r));
    return o;
}

json_t *cli_error_json(size_t line, const char *message)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (line)
        json_object_set_new(o, "line", json_integer((json_int_t)line));
    json_object_set_new(o, "error", cli_json_str(message ? message : "out of memory"));
    return o;
}

static void output_json(FILE *out, json_t *o)
{
    cli_print_json(out, o); /* "null" when building it ran out of memory */
    fputc('\n', out);
    json_decref(o);
}

static const char *decision_word(int32_t d)
{
    return d == CPEX_ALLOW ? "allow" : d == CPEX_DENY ? "deny" : "-";
}

/* One line per handler call (--verbose). */
static void output_executions(FILE *out, const cpex_pipeline_result *r, const char *pad)
{
    for (size_t i = 0; i < r->execution_count; i++) {
        const cpex_execution_record *x = cpex_pipeline_result_execution(r, i);
        cli_text(out, "%splugin %.*s (%s): %s, %s -> %s, %.1f us", pad, (int)x->plugin_name.len,
                 x->plugin_name.ptr ? x->plugin_name.ptr : "", cpex_mode_name(x->mode),
                 cpex_exec_status_name(x->status), decision_word(x->requested),
                 decision_word((int32_t)x->effective), (double)x->duration_ns / 1e3);
        if (x->payload_modified || x->extensions_modified)
            cli_text(out, ", changed %s%s%s", x->payload_modified ? "payload" : "",
                     x->payload_modified && x->extensions_modified ? " and " : "",
                     x->extensions_modified ? "extensions" : "");
        if (x->code.ptr)
            cli_text(out, ", %.*s", (int)x->code.len, x->code.ptr);
        if (x->reason.ptr)
            cli_text(out, ": %.*s", (int)x->reason.len, x->reason.ptr);
        fputc('\n', out);
    }
}

/* The readable form. Every string from the request or the plugins is
   escaped (cli_text): a plugin's reason cannot start a line of its own. */
static void output_text(FILE *out, size_t line, const cli_request *req,
                        const cpex_pipeline_result *r, bool verbose)
{
    const char *pad = "          ";
    cli_text(out, "line %zu  %s", line, req->hook);
    if (req->context_id)
        cli_text(out, "  [%s]", req->context_id);
    if (show_generation)
        fprintf(out, "  (generation %llu)", (unsigned long long)r->generation);
    if (r->continue_processing) {
        fputs("  ALLOW", out);
        /* The hook may be mistyped: an allow no plugin made says so. */
        if (r->no_plugin_ran)
            fputs("  (no plugin ran for this hook)", out);
        fputc('\n', out);
    } else {
        const cpex_violation *v = r->violation;
        cli_text(out, "  DENY  %s: %s", v && v->code ? v->code : "?",
                 v && v->reason ? v->reason : "");
        if (v && v->plugin_name)
            cli_text(out, " (plugin %s)", v->plugin_name);
        fputc('\n', out);
        if (v && v->details && json_object_size(v->details)) {
            fprintf(out, "%sdetails: ", pad);
            cli_print_json(out, v->details);
            fputc('\n', out);
        }
    }
    if (r->payload_modified) {
        json_t *p = final_payload(req, r);
        fprintf(out, "%spayload modified: ", pad);
        cli_print_json(out, p);
        fputc('\n', out);
        json_decref(p);
    }
    json_t *ext = extensions_diff(req, r);
    if (ext) {
        fprintf(out, "%sextensions changed: ", pad);
        cli_print_json(out, ext);
        fputc('\n', out);
        json_decref(ext);
    }
    if (r->metadata && json_object_size(r->metadata)) {
        fprintf(out, "%smetadata: ", pad);
        cli_print_json(out, r->metadata);
        fputc('\n', out);
    }
    for (size_t i = 0; i < r->error_count; i++) {
        const cpex_error_record *e = &r->errors[i];
        cli_line(out, "%ssoft error: plugin %s [%s]: %s", pad,
                 e->plugin_name ? e->plugin_name : "?", e->code ? e->code : "?",
                 e->message ? e->message : "");
    }
    if (verbose)
        output_executions(out, r, pad);
}

void cli_output_result(FILE *out, const cli_output_opts *opts, size_t line,
                       const cli_request *request, const cpex_pipeline_result *result)
{
    if (opts->json)
        output_json(out, cli_result_json(line, request, result));
    else
        output_text(out, line, request, result, opts->verbose);
}

/* A latency in microseconds for the table, or "-" when nothing was timed. */
static void put_us(FILE *out, double ns)
{
    if (ns < 0)
        fprintf(out, " %9s", "-");
    else
        fprintf(out, " %9.1f", ns / 1e3);
}

void cli_output_stats(FILE *out, const cpex_stats *st)
{
    fprintf(out, "stats: per plugin and hook (latency estimated from log-scale buckets)\n");
    fprintf(out, "  %-26s %-24s %7s %7s %7s %7s %7s %9s %9s\n", "plugin", "hook", "calls", "allow",
            "deny", "error", "timeout", "p50 us", "p99 us");
    for (size_t i = 0; i < st->plugin_count; i++) {
        const cpex_plugin_stats *r = cpex_stats_plugin(st, i);
        char name[80];
        snprintf(name, sizeof name, "%s%s", r->kind == CPEX_STATS_SINK ? "sink " : "", r->plugin);
        cli_text(out, "  %-26s %-24s", name, r->hook);
        fprintf(out, " %7llu %7llu %7llu %7llu %7llu", (unsigned long long)r->invocations,
                (unsigned long long)r->allows, (unsigned long long)r->denies,
                (unsigned long long)r->errors, (unsigned long long)r->timeouts);
        put_us(out, cpex_plugin_stats_quantile(r, 0.5));
        put_us(out, cpex_plugin_stats_quantile(r, 0.99));
        fputc('\n', out);
    }
    for (size_t i = 0; i < st->hook_count; i++) {
        const cpex_hook_stats *h = cpex_stats_hook(st, i);
        cli_line(out, "  hook %s: %llu invokes, %llu denied", h->hook,
                 (unsigned long long)h->invokes, (unsigned long long)h->denies);
    }
    if (st->audit_enqueued || st->audit_dropped)
        fprintf(out, "  audit queue: %llu verdicts handed over, %llu delivered, %llu dropped\n",
                (unsigned long long)st->audit_enqueued, (unsigned long long)st->audit_delivered,
                (unsigned long long)st->audit_dropped);
}

void cli_output_line_error(FILE *out, bool json, size_t line, const char *message)
{
    if (json) {
        output_json(out, cli_error_json(line, message));
    } else {
        cli_line(out, "line %zu  error: %s", line, message ? message : "out of memory");
    }
}
