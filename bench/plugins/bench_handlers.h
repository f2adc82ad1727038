/*
 * bench_handlers.h — the benchmark's plugin code, written against the SDK
 * only (cpex/plugin.h). It is compiled twice: into libbenchplug.so (a real
 * plugin: hidden visibility, entry points and manifest emitted by
 * benchplug.c) and into the cpex_bench binary (registered with
 * cpex_manager_register, or through the factory of kind "bench-allow"), so
 * "shared library" and "compiled in" run the very same handler code.
 *
 * Handlers (enum bench_role):
 *   allow             the trivial work every figure is measured with: read
 *                     the CMF message of the call (kind check, part count)
 *                     and allow. Reads only, never writes shared state, so
 *                     several threads can call one instance without sharing
 *                     a written cache line. Denies a message without parts:
 *                     the bench's probe proves with it that a plugin runs.
 *   modify_args       rewrite one tool argument ("city" of the first
 *                     tool_call part becomes "Lyon") the ABI 1.0 way: copy
 *                     the arguments and set the member, clone the message
 *                     (cmf_clone), put the new arguments into the clone
 *                     (cmf_set_tool_arguments), hand it back (set_payload_cmf).
 *   modify_args_slot  the same edit through the ABI 1.1 slot that edits the
 *                     call's current payload in place of a clone:
 *                     payload_set_tool_arguments (see below).
 *   modify_text       replace the text of the first text part, 1.0 way
 *                     (cmf_clone + cmf_set_text + set_payload_cmf).
 *   modify_text_slot  the same through payload_set_text (ABI 1.1).
 *
 * The 1.1 slots. The bench builds against whatever abi.h holds: CMake
 * (CMakeLists.txt, benchmarks) compiles a probe against the header and
 * defines BENCH_HAVE_PAYLOAD_SET_TOOL_ARGUMENTS / BENCH_HAVE_PAYLOAD_SET_TEXT
 * when cpex_host_api has the slot with the signature assumed here, and
 * BENCH_*_OTHER_SIGNATURE when the slot exists with another one:
 *
 *   int32_t (*payload_set_tool_arguments)(const cpex_call *call, size_t part,
 *                                         cpex_json *arguments);
 *       replace the arguments of tool_call part `part` of the call's current
 *       payload (takes ownership of `arguments`, on failure too);
 *   int32_t (*payload_set_text)(const cpex_call *call, size_t part,
 *                               const char *text, size_t len);
 *       replace the text of text/thinking part `part` of the current payload.
 *
 * Without the slot in the header the slot handlers fail with a message
 * saying so, and cpex_bench skips their cases ("not available in this
 * build"); with it, they still check CPEX_HOST_HAS at run time, as a plugin
 * running under an older host must.
 */
#ifndef CPEX_BENCH_HANDLERS_H
#define CPEX_BENCH_HANDLERS_H

#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

#define BENCH_HOOK "cmf.tool_pre_invoke"

enum bench_role {
    BENCH_ROLE_ALLOW = 0,
    BENCH_ROLE_MODIFY_ARGS = 1,
    BENCH_ROLE_MODIFY_ARGS_SLOT = 2,
    BENCH_ROLE_MODIFY_TEXT = 3,
    BENCH_ROLE_MODIFY_TEXT_SLOT = 4,
    BENCH_ROLE_COUNT = 5
};

typedef struct bench_instance {
    const cpex_host_api *host;
    /* Only for a plugin on a configured hook (bench_fill_on_hook): its one
       handler, which must live as long as the instance. */
    cpex_handler_reg on_hook;
    char *hook;
} bench_instance;

/* The allow handler: the same few loads the baseline call does. */
static int32_t bench_allow(void *instance, const cpex_call *call)
{
    const cpex_cmf_message *m = cpex_call_cmf(call);
    (void)instance;
    return m && m->part_count == 0 ? CPEX_DENY : CPEX_ALLOW;
}

static const char bench_new_text[] = "[redacted] what is the weather in Paris tomorrow?";

/* Index of the first part of `kind`, or -1. */
static inline long bench_find_part(const cpex_cmf_message *m, uint32_t kind)
{
    for (size_t i = 0; m && i < m->part_count; i++)
        if (m->parts[i].kind == kind)
            return (long)i;
    return -1;
}

/*
 * The new arguments: a copy of `args` with "city" set to "Lyon" (the only
 * way a 1.0 plugin can build them: json_copy is a deep copy). NULL when
 * memory is short. Used by both modify_args handlers and by the bench's
 * args_work case, which times this work alone.
 */
static inline cpex_json *bench_rewrite_args(const cpex_host_api *h, const cpex_json *args)
{
    cpex_json *copy = h->json_copy(args);
    cpex_json *city;
    if (!copy)
        return NULL;
    city = h->json_new_string("Lyon", 4);
    if (!city || h->json_object_set(copy, "city", city) != CPEX_HOST_OK) {
        h->json_free(copy); /* json_object_set took `city` */
        return NULL;
    }
    return copy;
}

static inline int32_t bench_fail(const cpex_host_api *h, const cpex_call *call, const char *why)
{
    h->set_error(call, why);
    return CPEX_ERROR;
}

/* Hand a modified clone back; a refusal is a failure the bench must see. */
static inline int32_t bench_hand_back(const cpex_host_api *h, const cpex_call *call,
                                      cpex_cmf_message *copy)
{
    if (h->set_payload_cmf(call, copy) != CPEX_HOST_OK) /* takes ownership even when refused */
        return bench_fail(h, call, "set_payload_cmf refused the message");
    return CPEX_ALLOW;
}

static int32_t bench_modify_args(void *instance, const cpex_call *call)
{
    const cpex_host_api *h = ((const bench_instance *)instance)->host;
    const cpex_cmf_message *m = cpex_call_cmf(call);
    long p = bench_find_part(m, CPEX_PART_TOOL_CALL);
    cpex_cmf_message *copy;
    cpex_json *args;
    if (p < 0)
        return CPEX_ALLOW; /* nothing to rewrite (the bench then reports it) */
    args = bench_rewrite_args(h, cpex_part_tool_call(&m->parts[p])->arguments);
    if (!args)
        return bench_fail(h, call, "out of memory");
    copy = h->cmf_clone(m);
    if (!copy) {
        h->json_free(args);
        return bench_fail(h, call, "out of memory");
    }
    if (h->cmf_set_tool_arguments(copy, (size_t)p, args) != CPEX_HOST_OK) { /* takes args */
        h->cmf_free(copy);
        return bench_fail(h, call, "cmf_set_tool_arguments failed");
    }
    return bench_hand_back(h, call, copy);
}

static int32_t bench_modify_text(void *instance, const cpex_call *call)
{
    const cpex_host_api *h = ((const bench_instance *)instance)->host;
    const cpex_cmf_message *m = cpex_call_cmf(call);
    long p = bench_find_part(m, CPEX_PART_TEXT);
    cpex_cmf_message *copy;
    if (p < 0)
        return CPEX_ALLOW;
    copy = h->cmf_clone(m);
    if (!copy)
        return bench_fail(h, call, "out of memory");
    if (h->cmf_set_text(copy, (size_t)p, bench_new_text, sizeof bench_new_text - 1) !=
        CPEX_HOST_OK) {
        h->cmf_free(copy);
        return bench_fail(h, call, "cmf_set_text failed");
    }
    return bench_hand_back(h, call, copy);
}

static int32_t bench_modify_args_slot(void *instance, const cpex_call *call)
{
    const cpex_host_api *h = ((const bench_instance *)instance)->host;
#if defined(BENCH_HAVE_PAYLOAD_SET_TOOL_ARGUMENTS)
    const cpex_cmf_message *m = cpex_call_cmf(call);
    long p = bench_find_part(m, CPEX_PART_TOOL_CALL);
    cpex_json *args;
    if (!CPEX_HOST_HAS(h, payload_set_tool_arguments))
        return bench_fail(h, call, "this host has no payload_set_tool_arguments slot (ABI 1.1)");
    if (p < 0)
        return CPEX_ALLOW;
    args = bench_rewrite_args(h, cpex_part_tool_call(&m->parts[p])->arguments);
    if (!args)
        return bench_fail(h, call, "out of memory");
    if (h->payload_set_tool_arguments(call, (size_t)p, args) != CPEX_HOST_OK) /* takes args */
        return bench_fail(h, call, "payload_set_tool_arguments refused the edit");
    return CPEX_ALLOW;
#else
    return bench_fail(h, call, "payload_set_tool_arguments not available in this build");
#endif
}

static int32_t bench_modify_text_slot(void *instance, const cpex_call *call)
{
    const cpex_host_api *h = ((const bench_instance *)instance)->host;
#if defined(BENCH_HAVE_PAYLOAD_SET_TEXT)
    long p = bench_find_part(cpex_call_cmf(call), CPEX_PART_TEXT);
    if (!CPEX_HOST_HAS(h, payload_set_text))
        return bench_fail(h, call, "this host has no payload_set_text slot (ABI 1.1)");
    if (p < 0)
        return CPEX_ALLOW;
    if (h->payload_set_text(call, (size_t)p, bench_new_text, sizeof bench_new_text - 1) !=
        CPEX_HOST_OK)
        return bench_fail(h, call, "payload_set_text refused the edit");
    return CPEX_ALLOW;
#else
    return bench_fail(h, call, "payload_set_text not available in this build");
#endif
}

static const cpex_handler_reg bench_handlers[BENCH_ROLE_COUNT][1] = {
    {CPEX_HANDLER(BENCH_HOOK, bench_allow, "cmf")},
    {CPEX_HANDLER(BENCH_HOOK, bench_modify_args, "cmf")},
    {CPEX_HANDLER(BENCH_HOOK, bench_modify_args_slot, "cmf")},
    {CPEX_HANDLER(BENCH_HOOK, bench_modify_text, "cmf")},
    {CPEX_HANDLER(BENCH_HOOK, bench_modify_text_slot, "cmf")},
};

static const char *const bench_role_names[BENCH_ROLE_COUNT] = {
    "bench-allow", "bench-modify-args", "bench-modify-args-slot", "bench-modify-text",
    "bench-modify-text-slot"};

static inline void bench_destroy(void *instance)
{
    bench_instance *self = instance;
    if (self)
        free(self->hook);
    free(self);
}

static inline bench_instance *bench_instance_new(const cpex_host_api *host, char *err,
                                                 size_t err_cap)
{
    bench_instance *self = calloc(1, sizeof *self);
    if (!self)
        cpex_plugin_errorf(err, err_cap, "out of memory");
    else
        self->host = host;
    return self;
}

/* Fill a registration for the plugin of `role` on BENCH_HOOK. */
static inline int32_t bench_fill(const cpex_host_api *host, int role, cpex_plugin_registration *out,
                                 char *err, size_t err_cap)
{
    bench_instance *self;
    if (role < 0 || role >= BENCH_ROLE_COUNT) {
        cpex_plugin_errorf(err, err_cap, "unknown bench role %d", role);
        return CPEX_CREATE_INIT_FAILED;
    }
    self = bench_instance_new(host, err, err_cap);
    if (!self)
        return CPEX_CREATE_INIT_FAILED;
    out->name = bench_role_names[role];
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = bench_destroy;
    out->handler_count = 1;
    out->handlers = bench_handlers[role];
    return CPEX_CREATE_OK;
}

/* Fill a registration for an allow plugin on hook `hook` (`len` bytes, copied). */
static inline int32_t bench_fill_on_hook(const cpex_host_api *host, const char *hook, size_t len,
                                         cpex_plugin_registration *out, char *err, size_t err_cap)
{
    bench_instance *self = bench_instance_new(host, err, err_cap);
    if (!self)
        return CPEX_CREATE_INIT_FAILED;
    self->hook = malloc(len + 1);
    if (!self->hook) {
        bench_destroy(self);
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    memcpy(self->hook, hook, len);
    self->hook[len] = '\0';
    self->on_hook = bench_handlers[BENCH_ROLE_ALLOW][0];
    self->on_hook.hook = self->hook;
    out->name = bench_role_names[BENCH_ROLE_ALLOW];
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = bench_destroy;
    out->handler_count = 1;
    out->handlers = &self->on_hook;
    return CPEX_CREATE_OK;
}

#endif
