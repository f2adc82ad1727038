/*
 * bench_cases.c — the managers, the request and the loops the figures are
 * measured with.
 *
 * Every invoke case uses the same request, as a host would send it:
 *   - payload: a CMF message (cpex_cmf_parse) with one text part and one
 *     tool_call part whose arguments are a small JSON object;
 *   - extensions: a subject (id and type) and one request header;
 *   - context: a context table created once per fixture and threaded from
 *     each invoke's result into the next one (cpex_pipeline_result_take_context),
 *     as a host threads it from a pre hook to the post hook;
 *   - plugins: granted read_subject and read_headers, timeout and on_error
 *     at their defaults (30 s, fail).
 * The loop times invoke + cpex_pipeline_result_cleanup, i.e. the whole cost
 * a host pays per request and hook.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cpex/cmf.h"
#include "cpex/context.h"
#include "cpex/extensions.h"
#include "cpex/loader.h"
#include "cpex/manager.h"
#include "cpex/payload.h"
#include "cpex/result.h"
#include "plugins/bench_handlers.h"
#include "util/alloc.h"

#ifndef CPEX_PLUGIN_DIR
#define CPEX_PLUGIN_DIR "build/plugins"
#endif

const char *bench_plugin_dir = CPEX_PLUGIN_DIR;

#define OTHER_HOOK "cmf.tool_post_invoke"
#define BENCH_LIB "libbenchplug.so"

static const char message_json[] =
    "{\"role\":\"assistant\",\"content\":["
    "{\"content_type\":\"text\",\"text\":\"What is the weather in Paris tomorrow?\"},"
    "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"call_1\","
    "\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"units\":\"metric\","
    "\"days\":2,\"hourly\":false}}}]}";

static const char *const bench_caps[] = {"read_subject", "read_headers"};

/* ------------------------------------------------------------------ */
/* The request                                                         */
/* ------------------------------------------------------------------ */

typedef struct request {
    cpex_cmf_message *msg;
    cpex_payload payload;
    cpex_extensions *ext;
    cpex_context_table *ctx;
} request;

static int request_init(request *r)
{
    cpex_error err = CPEX_ERROR_INIT;
    memset(r, 0, sizeof *r);
    r->msg = cpex_cmf_parse(message_json, sizeof message_json - 1, &err);
    if (!r->msg) {
        fprintf(stderr, "cpex_bench: bad CMF message: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return -1;
    }
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

static void request_cleanup(request *r)
{
    cpex_cmf_free(r->msg);
    cpex_extensions_unref(r->ext);
    cpex_context_table_free(r->ctx);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ */
/* Managers                                                            */
/* ------------------------------------------------------------------ */

static cpex_manager *new_manager(void)
{
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_new(NULL, &m, &err) != CPEX_OK || cpex_loader_register(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench: manager: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        cpex_manager_free(m);
        return NULL;
    }
    return m;
}

/* Register the compiled-in allow (or modify) plugin. */
static int add_builtin(cpex_manager *m, const char *name, uint32_t mode, int32_t priority,
                       int modify)
{
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    cpex_error err = CPEX_ERROR_INIT;
    char msg[256];

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
    if (bench_fill(cpex_host_api_get(), modify, &reg, msg, sizeof msg) != CPEX_CREATE_OK) {
        fprintf(stderr, "cpex_bench: %s\n", msg);
        return -1;
    }
    if (cpex_manager_register(m, &spec, &reg, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench: register %s: %s\n", name, cpex_error_message(&err));
        cpex_error_cleanup(&err);
        bench_destroy(reg.instance); /* a refused registration stays ours */
        return -1;
    }
    return 0;
}

/* YAML for `count` lib: plugins of libbenchplug.so (entry allow), relative to base_dir. */
static char *lib_yaml(int count, const char *prefix)
{
    size_t cap = 128 + (size_t)count * 256, len = 0;
    char *y = malloc(cap);
    if (!y)
        return NULL;
    len += (size_t)snprintf(y + len, cap - len, "plugins:\n");
    for (int i = 0; i < count; i++) {
        int n = snprintf(y + len, cap - len,
                         "  - name: %s%03d\n"
                         "    kind: \"lib:" BENCH_LIB "?entry=allow\"\n"
                         "    hooks: [" BENCH_HOOK "]\n"
                         "    mode: sequential\n"
                         "    priority: %d\n"
                         "    capabilities: [read_subject, read_headers]\n",
                         prefix, i, i);
        if (n < 0 || (size_t)n >= cap - len) { /* cannot happen with 256 bytes per entry */
            free(y);
            return NULL;
        }
        len += (size_t)n;
    }
    return y;
}

static int load_yaml(cpex_manager *m, const char *yaml)
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

static int initialize(cpex_manager *m)
{
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_manager_initialize(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex_bench: initialize: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return -1;
    }
    return 0;
}

/* A manager with `n` compiled-in sequential allow plugins. */
static cpex_manager *seq_manager(int n)
{
    cpex_manager *m = new_manager();
    char name[32];
    for (int i = 0; m && i < n; i++) {
        snprintf(name, sizeof name, "allow%03d", i);
        if (add_builtin(m, name, CPEX_MODE_SEQUENTIAL, i, 0) != 0) {
            cpex_manager_free(m);
            return NULL;
        }
    }
    if (m && initialize(m) != 0) {
        cpex_manager_free(m);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

struct bench_fixture {
    int baseline;
    cpex_manager *m;
    const char *hook;
    request req;
    long invokes, denied, soft_errors, modified;
};

static cpex_manager *build_manager(const char *name, const char **hook)
{
    int n;
    char tail;
    cpex_manager *m = NULL;
    *hook = BENCH_HOOK;

    if (strcmp(name, "empty") == 0) {
        /* plugins exist, but none for the invoked hook */
        m = seq_manager(10);
        *hook = OTHER_HOOK;
    } else if (strcmp(name, "seq_10_modify") == 0) {
        /* 10 sequential plugins; the 5th (priority 4) modifies the payload */
        m = new_manager();
        char pname[32];
        for (int i = 0; m && i < 10; i++) {
            snprintf(pname, sizeof pname, "%s%03d", i == 4 ? "modify" : "allow", i);
            if (add_builtin(m, pname, CPEX_MODE_SEQUENTIAL, i, i == 4) != 0) {
                cpex_manager_free(m);
                return NULL;
            }
        }
        if (m && initialize(m) != 0) {
            cpex_manager_free(m);
            m = NULL;
        }
    } else if (strcmp(name, "mixed") == 0) {
        /* 5 sequential, 5 audit, 5 concurrent */
        static const uint32_t modes[3] = {CPEX_MODE_SEQUENTIAL, CPEX_MODE_AUDIT,
                                          CPEX_MODE_CONCURRENT};
        static const char *const labels[3] = {"seq", "audit", "conc"};
        m = new_manager();
        char pname[32];
        for (int k = 0; m && k < 3; k++)
            for (int i = 0; m && i < 5; i++) {
                snprintf(pname, sizeof pname, "%s%d", labels[k], i);
                if (add_builtin(m, pname, modes[k], i, 0) != 0) {
                    cpex_manager_free(m);
                    return NULL;
                }
            }
        if (m && initialize(m) != 0) {
            cpex_manager_free(m);
            m = NULL;
        }
    } else if (sscanf(name, "seq_%d%c", &n, &tail) == 1 && n > 0 && n <= 1000) {
        m = seq_manager(n);
    } else if (sscanf(name, "lib_%d%c", &n, &tail) == 1 && n > 0 && n <= 1000) {
        m = new_manager();
        char *yaml = m ? lib_yaml(n, "lib") : NULL;
        if (!yaml || load_yaml(m, yaml) != 0 || initialize(m) != 0) {
            cpex_manager_free(m);
            m = NULL;
        }
        free(yaml);
    } else {
        fprintf(stderr, "cpex_bench: unknown case '%s'\n", name);
    }
    return m;
}

bench_fixture *bench_fixture_new(const char *name)
{
    bench_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (request_init(&f->req) != 0) {
        bench_fixture_free(f);
        return NULL;
    }
    if (strcmp(name, "baseline") == 0) {
        f->baseline = 1;
        return f;
    }
    f->m = build_manager(name, &f->hook);
    if (!f->m) {
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
    request_cleanup(&f->req);
    free(f);
}

/*
 * The baseline: the allow handler's code (the compiled-in copy), called
 * through a function pointer the compiler cannot see through (volatile),
 * with a cpex_call built once, as the executor would pass it.
 */
static int64_t run_baseline(bench_fixture *f, long iters)
{
    bench_instance inst;
    cpex_call call;
    memset(&call, 0, sizeof call);
    call.struct_size = (uint32_t)sizeof call;
    call.mode = CPEX_MODE_SEQUENTIAL;
    call.hook.ptr = BENCH_HOOK;
    call.hook.len = sizeof BENCH_HOOK - 1;
    call.plugin_name.ptr = "baseline";
    call.plugin_name.len = 8;
    call.payload = &f->req.payload;
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
        f->denied++;
    return t1 - t0;
}

/* Invoke + result cleanup, the context table threaded from one to the next. */
static void invoke_loop(bench_fixture *f, long iters)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_context_table *ctx = f->req.ctx;
    for (long i = 0; i < iters; i++) {
        cpex_manager_invoke(f->m, f->hook, &f->req.payload, f->req.ext, ctx, &res);
        if (__builtin_expect(!res.continue_processing, 0))
            f->denied++;
        if (__builtin_expect(res.error_count != 0, 0))
            f->soft_errors += (long)res.error_count;
        if (res.payload_modified)
            f->modified++;
        ctx = cpex_pipeline_result_take_context(&res);
        cpex_pipeline_result_cleanup(&res);
    }
    f->req.ctx = ctx;
    f->invokes += iters;
}

int64_t bench_fixture_run(bench_fixture *f, long iters)
{
    if (f->baseline)
        return run_baseline(f, iters);
    int64_t t0 = bench_now_ns();
    invoke_loop(f, iters);
    return bench_now_ns() - t0;
}

void bench_fixture_checks(const bench_fixture *f, long *invokes, long *denied,
                          long *soft_errors, long *modified)
{
    *invokes = f->invokes;
    *denied = f->denied;
    *soft_errors = f->soft_errors;
    *modified = f->modified;
}

bench_allocs bench_fixture_allocs(bench_fixture *f, long iters)
{
    bench_allocs a = {0, -1};
    if (f->baseline) {
        a.libc = 0;
        return a;
    }
    invoke_loop(f, 16); /* warm: thread slots, lazily built state */
    int wrapped = bench_malloc_wrapped();
    cpex__alloc_count_reset();
    if (wrapped)
        bench_malloc_count_start();
    invoke_loop(f, iters);
    uint64_t libc = wrapped ? bench_malloc_count_stop() : 0;
    a.cpex = (double)cpex__alloc_count() / (double)iters;
    if (wrapped)
        a.libc = (double)libc / (double)iters;
    return a;
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

typedef struct thread_arg {
    cpex_manager *m; /* NULL: the control loop (baseline calls, nothing shared) */
    long iters;
    pthread_barrier_t *barrier;
    int64_t start, end;
    int64_t cpu;  /* thread CPU time of the loop */
    long bad;
    int ok;
} thread_arg;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *thread_main(void *p)
{
    thread_arg *a = p;
    bench_fixture f;
    memset(&f, 0, sizeof f);
    f.m = a->m;
    f.hook = BENCH_HOOK;
    a->ok = request_init(&f.req) == 0; /* each thread its own request */
    pthread_barrier_wait(a->barrier);
    if (a->ok) {
        int64_t c0 = thread_cpu_ns();
        a->start = bench_now_ns();
        if (a->m)
            invoke_loop(&f, a->iters);
        else
            run_baseline(&f, a->iters);
        a->end = bench_now_ns();
        a->cpu = thread_cpu_ns() - c0;
    }
    a->bad = f.denied + f.soft_errors;
    request_cleanup(&f.req);
    return NULL;
}

static cpex_manager *threads_manager;
static int threads_manager_plugins;

void bench_threads_done(void)
{
    cpex_manager_free(threads_manager);
    threads_manager = NULL;
}

double bench_threads_throughput(int threads, long iters, int plugins, double *cpu_ns)
{
    cpex_manager *m = threads_manager;
    if (plugins > 0 && (!m || threads_manager_plugins != plugins)) {
        cpex_manager_free(m);
        m = threads_manager = seq_manager(plugins);
        threads_manager_plugins = plugins;
        if (!m)
            return -1;
    }
    if (threads < 1 || threads > 64)
        return -1;
    pthread_t tids[64];
    thread_arg args[64];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].m = plugins > 0 ? m : NULL;
        args[i].iters = iters;
        args[i].barrier = &barrier;
        if (pthread_create(&tids[i], NULL, thread_main, &args[i]) != 0) {
            fprintf(stderr, "cpex_bench: cannot start thread %d\n", i);
            exit(1);
        }
    }
    int64_t start = INT64_MAX, end = 0, cpu = 0;
    int ok = 1;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        cpu += args[i].cpu;
        if (!args[i].ok || args[i].bad)
            ok = 0;
        if (args[i].start < start)
            start = args[i].start;
        if (args[i].end > end)
            end = args[i].end;
    }
    pthread_barrier_destroy(&barrier);
    if (!ok || end <= start)
        return -1;
    if (cpu_ns)
        *cpu_ns = (double)cpu / ((double)threads * (double)iters);
    return (double)threads * (double)iters * 1e9 / (double)(end - start);
}

/* ------------------------------------------------------------------ */
/* Load + initialize                                                   */
/* ------------------------------------------------------------------ */

int64_t bench_load_lib_plugins(int count)
{
    cpex_manager *m = new_manager();
    char *yaml = m ? lib_yaml(count, "p") : NULL;
    int64_t elapsed = -1;
    if (yaml) {
        int64_t t0 = bench_now_ns();
        int ok = load_yaml(m, yaml) == 0 && initialize(m) == 0;
        int64_t t1 = bench_now_ns();
        if (ok && cpex_manager_plugin_count(m) == (size_t)count)
            elapsed = t1 - t0;
    }
    free(yaml);
    cpex_manager_free(m);
    return elapsed;
}
