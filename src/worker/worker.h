/*
 * worker.h — the cpex-worker program (docs/isolation.md): what its files
 * share.
 *
 *   main.c      start: descriptors, the shared memory, the request loop
 *   load.c      LOAD, INIT, SHUTDOWN, DESTROY: sandbox, then the loader
 *   serve.c     CALL: a request read as the plugin's call, its reply
 *   table.c     the host table the plugin gets: libcpex's own for JSON and
 *               CMF, slots of its own for everything that needs the host
 *   state.c     the state slots: upcalls, answered by the host during the call
 *   sandbox.c, seccomp.c, landlock.c   the protections
 *   describe.c  --describe: cpex_library_describe inside the sandbox
 */
#ifndef CPEX_WORKER_WORKER_H
#define CPEX_WORKER_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/factory.h"
#include "isolation/arena.h"
#include "isolation/chan.h"
#include "isolation/wire.h"
#include "isolation/wire_ext.h"

/* ------------------------------------------------------------------ */
/* One call                                                            */
/* ------------------------------------------------------------------ */

#define WCALL_MAGIC 0x77637078u

/** The worker's side of one handler call (call.host_private points here). */
typedef struct wcall {
    cpex_call call;
    uint32_t magic;
    bool active;
    uint32_t caps;
    bool can_modify;
    uint32_t payload_kind; /* enum cpex_payload_kind, 0: none */
    cpex_payload payload;
    json_t *json_payload; /* a JSON payload, owned */
    cpex__iso_wr *out;    /* the reply: what the plugin asks of the host */
    size_t op_cap;        /* where ops must stop (room kept for ISO_OP_LOST) */
    uint32_t ops, lost, logs;
    cpex__iso_ext_view ext;   /* what the plugin may read */
    cpex_extensions *pending; /* after its first write: the view, changed */
    json_t *custom;           /* the view's custom object, decoded on first read */
    bool custom_read;
    const uint8_t *ctx_raw[2]; /* context objects, still encoded */
    size_t ctx_len[2];
    json_t *ctx[2]; /* decoded on first use, owned */
    bool ctx_read[2];
    cpex_verdict verdict; /* a VERDICT request's, rebuilt in the channel's arena */
} wcall;

/** The table handed to the plugin. */
const cpex_host_api *wk_host_table(void);

/** Begin a call's ops in `out` (after the reply's header). */
void wk_call_begin(wcall *wc, cpex__iso_wr *out);
/** Release what a call made (pending extensions, decoded JSON) and close it. */
void wk_call_end(wcall *wc);

/* ------------------------------------------------------------------ */
/* Control logs                                                        */
/* ------------------------------------------------------------------ */

/**
 * Log lines outside any call go to the reply of the control request in
 * progress (LOAD, INIT, ...), which the host logs under the plugin's
 * name; at other times (a plugin's own thread) to standard error.
 */
void wk_log_control(uint32_t level, const char *text);
/** Start collecting (`on`) or write what was collected into `w` and stop. */
void wk_logs_begin(void);
void wk_logs_write(cpex__iso_wr *w);

/* ------------------------------------------------------------------ */
/* The worker                                                          */
/* ------------------------------------------------------------------ */

typedef struct wchan {
    cpex__iso_chan ch;
    cpex__iso_arena arena;
    wcall call;
    pthread_t thread;
    bool has_thread;
    timer_t cpu_timer; /* CPU time of this thread, for cpu_seconds_per_call */
    bool has_timer;
    pthread_mutex_t up_lock; /* one upcall at a time; none once the call ended */
} wchan;

/** The channel a call is served on. */
static inline wchan *wk_chan_of(wcall *wc)
{
    return (wchan *)(void *)((char *)wc - offsetof(wchan, call));
}

/** Put the state slots (state.c: upcalls to the host) into `t`. */
void wk_state_slots(cpex_host_api *t);

typedef struct worker {
    void *base; /* the shared memory */
    size_t size;
    uint32_t channels;
    wchan *chans;
    cpex_factory_product plugin; /* the loaded plugin */
    bool loaded;
    bool shut_down;
    int64_t cpu_limit_ns; /* 0: none */
    char plugin_name[256];
    const char *garble; /* test hook (CPEX_WORKER_TEST_GARBLE): how to corrupt replies */
} worker;

extern worker wk;

/** Answer the control request in `req` of `len` bytes on channel 0; true when the worker must end. */
bool wk_control(uint8_t op, const uint8_t *req, size_t len, cpex__iso_chan *ch);
/** Answer a CALL or a VERDICT (the op, req[0], says which) on channel `c`. */
void wk_serve_call(wchan *c, const uint8_t *req, size_t len);
/** Whether the loaded plugin has a verdict handler (is an audit sink). */
bool wk_has_verdict(void);
/** Serve channel `c` until the worker ends (the threads of channels 1..n-1). */
void *wk_serve_thread(void *arg);

/* ------------------------------------------------------------------ */
/* The sandbox                                                         */
/* ------------------------------------------------------------------ */

/** What LOAD asks for (cpex_isolation_options as sent). */
typedef struct wk_sandbox_req {
    bool network, require;
    uint64_t memory_mb;
    uint32_t open_files;
    double cpu_seconds;
    size_t read_count, write_count;
    const char **read_paths, **write_paths; /* resolved, absolute */
    const char *library;                    /* the library's resolved path */
} wk_sandbox_req;

/** What was put in force, for the LOAD reply. */
typedef struct wk_sandbox_res {
    uint32_t bits; /* ISO_SB_* */
    char summary[1024];
    char warnings[8][300];
    size_t warning_count;
    char error[1400]; /* set when `require` made a missing protection fatal */
} wk_sandbox_res;

/** Apply everything, in order: rlimits, no_new_privs, Landlock, seccomp. */
void wk_sandbox_apply(const wk_sandbox_req *req, wk_sandbox_res *res);
/** Landlock (landlock.c): 0 applied; -1 not available (a reason in `why`); -2 a
    path of the operator's cannot be used (always an error); *abi the kernel's version. */
int wk_landlock_apply(const wk_sandbox_req *req, int *abi, char *why, size_t cap);
/** seccomp (seccomp.c): 0 installed, else a reason in `why`. */
int wk_seccomp_apply(bool network, char *why, size_t cap);
/** Whether this worker was built with a sanitizer (memory limits then stay off). */
bool wk_sanitized(void);

/** --describe PATH: the description of a library, as JSON on fd 1 (describe.c). */
int wk_describe_main(int argc, char **argv);

#endif
