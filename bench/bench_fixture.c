/*
 * bench_fixture.c — invoke fixtures: a manager holding exactly the plugins
 * a case names, one request, and the loops the figures are measured with.
 *
 * Before a fixture is used it is checked, outside any timed loop: the
 * invoked hook has the case's plugins in each mode (cpex_manager_plugin_info),
 * a probe message without parts is denied by the first plugin (so the
 * plugins really run on that hook), and a modifying case's first invoke
 * returns the edited message. The loops then check every invoke's decision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cpex/cmf.h"
#include "plugins/bench_handlers.h"
#include "util/alloc.h"
#include "util/coarse_clock.h"

#define OTHER_HOOK "cmf.tool_post_invoke"

struct bench_fixture {
    bench_spec spec;
    cpex_manager *m;
    const char *hook;
    char hook_buf[64];
    const cpex_hook_handle *handle;
    bench_request req;
    bench_checks c;
};

/* ------------------------------------------------------------------ */
/* The 1.1 slots                                                       */
/* ------------------------------------------------------------------ */

/* Each slot as this build sees it: state (0 absent from abi.h, 1 there
   with the assumed signature, 2 there with another), and whether the
   host's table reaches it. */
#if defined(BENCH_HAVE_PAYLOAD_SET_TOOL_ARGUMENTS)
#define ARGS_SLOT 1, CPEX_HOST_HAS(cpex_host_api_get(), payload_set_tool_arguments)
#elif defined(BENCH_PAYLOAD_SET_TOOL_ARGUMENTS_OTHER_SIGNATURE)
#define ARGS_SLOT 2, 0
#else
#define ARGS_SLOT 0, 0
#endif
#if defined(BENCH_HAVE_PAYLOAD_SET_TEXT)
#define TEXT_SLOT 1, CPEX_HOST_HAS(cpex_host_api_get(), payload_set_text)
#elif defined(BENCH_PAYLOAD_SET_TEXT_OTHER_SIGNATURE)
#define TEXT_SLOT 2, 0
#else
#define TEXT_SLOT 0, 0
#endif

static const char *slot_why(int role, const char *slot, int state, int has)
{
    static char msg[BENCH_ROLE_COUNT][192];
    if (state == 1 && has)
        return NULL;
    snprintf(msg[role], sizeof msg[role],
             state == 1   ? "not available in this build (the host table does not reach %s)"
             : state == 2 ? "not available in this build (cpex_host_api.%s has another signature "
                            "than bench/plugins/bench_handlers.h assumes)"
                          : "not available in this build (cpex_host_api has no %s slot)",
             slot);
    return msg[role];
}

const char *bench_slot_unavailable(int role)
{
    if (role == BENCH_ROLE_MODIFY_ARGS_SLOT)
        return slot_why(role, "payload_set_tool_arguments", ARGS_SLOT);
    if (role == BENCH_ROLE_MODIFY_TEXT_SLOT)
        return slot_why(role, "payload_set_text", TEXT_SLOT);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Building and checking                                               */
/* ------------------------------------------------------------------ */

static char *lib_yaml(int count)
{
    char *y = NULL;
    size_t len = 0, cap = 0;
    int bad = bench_buf_printf(&y, &len, &cap, "plugins:\n");
    for (int i = 0; !bad && i < count; i++)
        bad = bench_buf_printf(&y, &len, &cap,
                               "  - name: lib%03d\n"
                               "    kind: \"lib:libbenchplug.so?entry=allow\"\n"
                               "    hooks: [" BENCH_HOOK "]\n"
                               "    mode: sequential\n"
                               "    priority: %d\n"
                               "    capabilities: [read_subject, read_headers]\n",
                               i, i);
    if (bad) {
        free(y);
        return NULL;
    }
    return y;
}

/* The plugins of the spec; *first is the name of the one that runs first. */
static int add_plugins(cpex_manager *m, const bench_spec *s, char *first, size_t first_cap)
{
    char name[32];
    first[0] = '\0';
    if (s->hooks > 0) { /* one YAML load: much quicker to set up than one register each */
        char *yaml = bench_hooks_yaml(s->hooks);
        int rc = yaml ? bench_load_yaml(m, yaml) : -1;
        free(yaml);
        if (rc != 0)
            return -1;
        snprintf(first, first_cap, "h%04d", s->hooks - 1); /* the invoked hook is the last */
    }
    for (int i = 0; i < s->seq; i++) {
        int role = s->modify && i == 4 ? s->modify : BENCH_ROLE_ALLOW;
        snprintf(name, sizeof name, "%s%03d", role ? "modify" : "allow", i);
        if (bench_add_builtin(m, name, BENCH_HOOK, CPEX_MODE_SEQUENTIAL, i, role) != 0)
            return -1;
        if (i == 0)
            snprintf(first, first_cap, "%s", name);
    }
    for (int i = 0; i < s->audit; i++) {
        snprintf(name, sizeof name, "audit%d", i);
        if (bench_add_builtin(m, name, BENCH_HOOK, CPEX_MODE_AUDIT, i, BENCH_ROLE_ALLOW) != 0)
            return -1;
    }
    for (int i = 0; i < s->conc; i++) {
        snprintf(name, sizeof name, "conc%d", i);
        if (bench_add_builtin(m, name, BENCH_HOOK, CPEX_MODE_CONCURRENT, i, BENCH_ROLE_ALLOW) != 0)
            return -1;
        if (i == 0 && !first[0])
            snprintf(first, first_cap, "%s", name);
    }
    if (s->lib > 0) {
        char *yaml = lib_yaml(s->lib);
        int rc = yaml ? bench_load_yaml(m, yaml) : -1;
        free(yaml);
        if (rc != 0)
            return -1;
        if (!first[0])
            snprintf(first, first_cap, "lib000");
    }
    return bench_initialize(m);
}

/* Each mode has the plugins the spec asks for on the invoked hook. */
static int check_counts(bench_fixture *f)
{
    const bench_spec *s = &f->spec;
    int want[3] = {s->hooks ? 1 : s->other_hook ? 0 : s->seq + s->lib, s->audit, s->conc};
    static const int modes[3] = {CPEX_MODE_SEQUENTIAL, CPEX_MODE_AUDIT, CPEX_MODE_CONCURRENT};
    for (int k = 0; k < 3; k++) {
        int have = bench_plugins_on_hook(f->m, f->hook, modes[k]);
        if (have != want[k]) {
            fprintf(stderr, "cpex_bench: hook %s has %d %s plugins, the case wants %d\n", f->hook,
                    have, cpex_mode_name((uint32_t)modes[k]), want[k]);
            return -1;
        }
    }
    if (s->other_hook && bench_plugins_on_hook(f->m, BENCH_HOOK, -1) != s->seq) {
        fprintf(stderr, "cpex_bench: the other hook lost its plugins\n");
        return -1;
    }
    return 0;
}

/* A modifying case's invoke returns the edited message. */
static int check_edit(bench_fixture *f)
{
    const cpex_host_api *h = cpex_host_api_get();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(f->m, f->hook, &f->req.payload, f->req.ext, NULL, &res);
    const cpex_cmf_message *out = cpex_pipeline_result_cmf(&res, f->req.msg);
    int ok = res.continue_processing && res.payload_modified && out && out != f->req.msg;
    if (ok && (f->spec.modify == BENCH_ROLE_MODIFY_ARGS ||
               f->spec.modify == BENCH_ROLE_MODIFY_ARGS_SLOT)) {
        long p = bench_find_part(out, CPEX_PART_TOOL_CALL);
        const cpex_cmf_tool_call *tc = p < 0 ? NULL : cpex_part_tool_call(&out->parts[p]);
        const cpex_json *city = tc ? h->json_object_get(tc->arguments, "city") : NULL;
        size_t n = 0;
        const char *v = city ? h->json_string(city, &n) : NULL;
        ok = v && n == 4 && memcmp(v, "Lyon", 4) == 0;
    } else if (ok) {
        long p = bench_find_part(out, CPEX_PART_TEXT);
        ok = p >= 0 && cpex_str_eq(out->parts[p].text, bench_new_text);
    }
    if (!ok)
        fprintf(stderr, "cpex_bench: the modifying plugin's edit is not in the result (%s)\n",
                res.continue_processing ? "allowed" : "denied");
    cpex_pipeline_result_cleanup(&res);
    return ok ? 0 : -1;
}

static int build(bench_fixture *f)
{
    const bench_spec *s = &f->spec;
    char first[32];
    cpex_error err = CPEX_ERROR_INIT;
    f->m = bench_manager_new();
    if (!f->m || add_plugins(f->m, s, first, sizeof first) != 0)
        return -1;
    f->hook = BENCH_HOOK;
    if (s->other_hook)
        f->hook = OTHER_HOOK;
    if (s->hooks > 0) {
        snprintf(f->hook_buf, sizeof f->hook_buf, "bench.hook_%04d", s->hooks - 1);
        f->hook = f->hook_buf;
    }
    if (s->by_handle) {
        f->handle = cpex_manager_hook(f->m, f->hook, &err);
        if (!f->handle) {
            fprintf(stderr, "cpex_bench: cpex_manager_hook: %s\n", cpex_error_message(&err));
            cpex_error_cleanup(&err);
            return -1;
        }
    }
    if (check_counts(f) != 0)
        return -1;
    if (first[0] && !s->other_hook && bench_probe(f->m, f->hook, first) != 0)
        return -1;
    if (s->modify && check_edit(f) != 0)
        return -1;
    return 0;
}

bench_fixture *bench_fixture_new(const bench_spec *spec)
{
    bench_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->spec = *spec;
    if (bench_request_init(&f->req, spec->payload) != 0 ||
        (spec->special == BENCH_INVOKE && build(f) != 0)) {
        bench_fixture_free(f);
        return NULL;
    }
    return f;
}

void bench_fixture_free(bench_fixture *f)
{
    if (!f)
        return;
    cpex_manager_free(f->m);
    bench_request_cleanup(&f->req);
    free(f);
}

/* ------------------------------------------------------------------ */
/* Loops                                                               */
/* ------------------------------------------------------------------ */

/*
 * The baseline: the allow handler's code (the compiled-in copy), called
 * through a function pointer the compiler cannot see through (volatile),
 * with a cpex_call built once, as the executor would pass it.
 */
int64_t bench_baseline_loop(const bench_request *req, long iters, long *denied)
{
    bench_instance inst;
    cpex_call call;
    memset(&inst, 0, sizeof inst);
    memset(&call, 0, sizeof call);
    call.struct_size = (uint32_t)sizeof call;
    call.mode = CPEX_MODE_SEQUENTIAL;
    call.hook.ptr = BENCH_HOOK;
    call.hook.len = sizeof BENCH_HOOK - 1;
    call.plugin_name.ptr = "baseline";
    call.plugin_name.len = 8;
    call.payload = &req->payload;
    inst.host = cpex_host_api_get();

    cpex_handler_fn volatile fp = bench_allow;
    int32_t acc = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        cpex_handler_fn fn = fp;
        acc += fn(&inst, &call);
        __asm__ volatile("" : "+r"(acc));
    }
    int64_t t1 = bench_now_ns();
    if (acc != 0)
        (*denied)++;
    return t1 - t0;
}

/*
 * The modifying handler's own work, without an invoke: build the rewritten
 * arguments through the host table and free them. What a modify case costs
 * beyond this is the library's share.
 */
static int64_t args_work_loop(bench_fixture *f, long iters)
{
    const cpex_host_api *h = cpex_host_api_get();
    long p = bench_find_part(f->req.msg, CPEX_PART_TOOL_CALL);
    const cpex_json *args = p < 0 ? NULL : cpex_part_tool_call(&f->req.msg->parts[p])->arguments;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        cpex_json *a = args ? bench_rewrite_args(h, args) : NULL;
        if (__builtin_expect(!a, 0))
            f->c.soft_errors++;
        h->json_free(a);
    }
    int64_t t1 = bench_now_ns();
    f->c.invokes += iters;
    return t1 - t0;
}

void bench_invoke_loop(cpex_manager *m, const char *hook, const cpex_hook_handle *handle,
                       bench_request *req, long iters, bench_checks *c)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_context_table *ctx = req->ctx;
    for (long i = 0; i < iters; i++) {
        if (handle)
            cpex_manager_invoke_hook(m, handle, &req->payload, req->ext, ctx, &res);
        else
            cpex_manager_invoke(m, hook, &req->payload, req->ext, ctx, &res);
        if (__builtin_expect(!res.continue_processing, 0))
            c->denied++;
        if (__builtin_expect(res.error_count != 0, 0))
            c->soft_errors += (long)res.error_count;
        if (res.payload_modified)
            c->modified++;
        ctx = cpex_pipeline_result_take_context(&res);
        cpex_pipeline_result_cleanup(&res);
    }
    req->ctx = ctx;
    c->invokes += iters;
}

/* The deadline clock's ticker (util/coarse_clock.h) parks when nothing
 * reads the clock for a while, as while a fixture is built; until it runs
 * again every deadline read takes the slow path. Outside valgrind that is
 * a few microseconds; under it, a varying share of the run, which would
 * move the instruction counts. So the timed loop starts with it running
 * (at most 2 s of waiting). */
static void warm_clock(void)
{
    for (int i = 0; i < 20000 && !cpex__coarse_ticker_running(); i++) {
        (void)cpex__coarse_now_ns();
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

int64_t bench_fixture_run(bench_fixture *f, long iters)
{
    if (f->spec.special == BENCH_BASELINE) {
        f->c.invokes += iters;
        return bench_baseline_loop(&f->req, iters, &f->c.denied);
    }
    if (f->spec.special == BENCH_ARGS_WORK)
        return args_work_loop(f, iters);
    warm_clock();
    int64_t t0 = bench_now_ns();
    bench_invoke_loop(f->m, f->hook, f->handle, &f->req, iters, &f->c);
    return bench_now_ns() - t0;
}

bench_checks bench_fixture_checks(const bench_fixture *f) { return f->c; }

bench_allocs bench_fixture_allocs(bench_fixture *f, long iters)
{
    bench_allocs a = {0, -1};
    if (f->spec.special == BENCH_BASELINE) {
        a.libc = 0;
        return a;
    }
    bench_fixture_run(f, 16); /* warm: thread slots, lazily built state */
    int wrapped = bench_malloc_wrapped();
    cpex__alloc_count_reset();
    if (wrapped)
        bench_malloc_count_start();
    bench_fixture_run(f, iters);
    uint64_t libc = wrapped ? bench_malloc_count_stop() : 0;
    a.cpex = (double)cpex__alloc_count() / (double)iters;
    if (wrapped)
        a.libc = (double)libc / (double)iters;
    return a;
}
