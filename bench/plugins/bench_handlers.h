/*
 * bench_handlers.h — the benchmark's plugin code, written against the SDK
 * only (cpex/plugin.h). It is compiled twice: into libbenchplug.so (a real
 * plugin: hidden visibility, entry points and manifest emitted by
 * benchplug.c) and into the cpex_bench binary (registered with
 * cpex_manager_register), so "shared library" and "compiled in" run the
 * very same handler code.
 *
 * Handlers:
 *   allow  — the trivial work every figure is measured with: read the CMF
 *            message of the call (kind check, part count) and allow. Reads
 *            only, never writes shared state, so several threads can call
 *            one instance without sharing a written cache line.
 *   modify — clone the message through the host table, replace the text of
 *            part 0 and hand the clone back with set_payload_cmf (what a
 *            redaction plugin does).
 */
#ifndef CPEX_BENCH_HANDLERS_H
#define CPEX_BENCH_HANDLERS_H

#include <stdlib.h>

#include <cpex/plugin.h>

#define BENCH_HOOK "cmf.tool_pre_invoke"

typedef struct bench_instance {
    const cpex_host_api *host;
} bench_instance;

/* The allow handler: the same few loads the baseline call does. */
static int32_t bench_allow(void *instance, const cpex_call *call)
{
    const cpex_cmf_message *m = cpex_call_cmf(call);
    (void)instance;
    return m && m->part_count == 0 ? CPEX_DENY : CPEX_ALLOW;
}

static const char bench_new_text[] = "[redacted] what is the weather in Paris tomorrow?";

/* The modifying handler: a copy with part 0's text replaced. */
static int32_t bench_modify(void *instance, const cpex_call *call)
{
    const bench_instance *self = instance;
    const cpex_host_api *h = self->host;
    const cpex_cmf_message *m = cpex_call_cmf(call);
    cpex_cmf_message *copy;
    if (!m || m->part_count == 0)
        return CPEX_ALLOW;
    copy = h->cmf_clone(m);
    if (!copy) {
        h->set_error(call, "out of memory");
        return CPEX_ERROR;
    }
    if (h->cmf_set_text(copy, 0, bench_new_text, sizeof bench_new_text - 1) != CPEX_HOST_OK) {
        h->cmf_free(copy);
        h->set_error(call, "cannot set text");
        return CPEX_ERROR;
    }
    h->set_payload_cmf(call, copy); /* takes ownership even when refused */
    return CPEX_ALLOW;
}

static const cpex_handler_reg bench_allow_handlers[] = {
    CPEX_HANDLER(BENCH_HOOK, bench_allow, "cmf")};
static const cpex_handler_reg bench_modify_handlers[] = {
    CPEX_HANDLER(BENCH_HOOK, bench_modify, "cmf")};

static void bench_destroy(void *instance) { free(instance); }

/* Fill a registration for the allow (modify == 0) or the modify plugin. */
static int32_t bench_fill(const cpex_host_api *host, int modify, cpex_plugin_registration *out,
                          char *err, size_t err_cap)
{
    bench_instance *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    out->name = modify ? "bench-modify" : "bench-allow";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = bench_destroy;
    out->handler_count = 1;
    out->handlers = modify ? bench_modify_handlers : bench_allow_handlers;
    return CPEX_CREATE_OK;
}

#endif
