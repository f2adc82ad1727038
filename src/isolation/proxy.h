/*
 * proxy.h — the host side of an isolated plugin (docs/isolation.md).
 *
 * To the manager an isolated plugin is an ordinary plugin instance: a
 * registration whose handlers forward each call to a worker process
 * (proxy.c) and whose initialize, shutdown and destroy forward those. A
 * supervisor thread per plugin (supervisor.c) starts the worker, notices
 * when it dies, restarts it with backoff and disables the plugin when it
 * crashes too often.
 *
 * A worker process is an *incarnation*: its pid, its shared memory and
 * channels. Calls hold a reference to the incarnation they use; a dead
 * one is freed when the last call lets go, while the next incarnation
 * already serves.
 */
#ifndef CPEX_ISOLATION_PROXY_H
#define CPEX_ISOLATION_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpex/abi.h"
#include "cpex/error.h"
#include "cpex/factory.h"
#include "isolation/chan.h"
#include "isolation/reply.h"

/* Defaults of the operator's keys (docs/configuration.md). */
#define ISO_DEFAULT_WORKERS 2u
#define ISO_DEFAULT_MAX_CRASHES 10u
#define ISO_DEFAULT_LOAD_TIMEOUT 10.0

/** Why an incarnation was condemned by the host before it died. */
enum { ISO_CONDEMN_NONE = 0, ISO_CONDEMN_TIMEOUT, ISO_CONDEMN_MALFORMED, ISO_CONDEMN_STOP };

typedef struct cpex__iso_proxy cpex__iso_proxy;

typedef struct cpex__iso_inc {
    _Atomic long refs;
    cpex__iso_proxy *proxy;
    pid_t pid;
    int pidfd;
    void *base;
    size_t size;
    cpex__iso_chan *chans;
    _Atomic uint32_t *busy;  /* per channel: taken by a call */
    _Atomic int dead;        /* the process is gone; death_* are final */
    _Atomic int condemned;   /* ISO_CONDEMN_*: killed by the host; take no new calls */
    _Atomic uint64_t served; /* calls answered */
    pthread_mutex_t lock;    /* guards condemn_text */
    char condemn_text[400];
    int death_signal, death_status;
    char death_text[600]; /* what callers report: how it ended, and what happens next */
} cpex__iso_inc;

enum { ISO_P_STARTING, ISO_P_READY, ISO_P_DOWN, ISO_P_DISABLED, ISO_P_STOPPED };

struct cpex__iso_proxy {
    /* Configuration: set at create, then read only. */
    char *name;
    char *worker_path;
    uint32_t channels;
    uint32_t on_error;
    uint32_t max_crashes;
    int64_t load_timeout_ns;
    double cpu_seconds; /* sandbox.cpu_seconds_per_call; 0: none */
    uint8_t *load_req;  /* the LOAD request, as sent at every start */
    size_t load_req_len;
    const cpex_host_api *host;
    size_t handler_count;
    cpex_handler_reg *handlers; /* hook and payload_type strings owned */
    char *reported_name, *reported_version;
    bool has_initialize, has_shutdown;
    bool has_verdict; /* an audit sink: the registration's verdict forwards */
    bool adopted;     /* the first LOAD reply was taken (handlers, flags) */
    char *origin, *protections;

    /* State, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;    /* state changes, channels freed */
    int state;              /* ISO_P_* */
    cpex__iso_inc *current; /* the serving worker (READY), one reference */
    cpex__iso_inc *spare;   /* a started, sandboxed worker waiting for LOAD, or NULL */
    bool initialized;       /* restarts initialize the new worker */
    bool first_done;        /* the first start finished (either way) */
    cpex_error first_err;   /* its errors, for the factory */
    char down_reason[600];
    int64_t next_start_ns;
    _Atomic uint32_t start_failures; /* in a row, for the backoff */
    int64_t crash_second[60];        /* crashes per second of the last minute: */
    uint32_t crash_count[60];        /*   the second each slot counts, and how many */
    uint64_t crashes, restarts;
    /* Log lines from outside any call (restarts, the disable notice): the
       next call passes them to the manager's log under the plugin's name. */
    _Atomic size_t pending_count; /* written under lock; callers peek without it */
    struct {
        uint32_t level;
        char *text;
    } pending[32];
    _Atomic int chan_waiters;

    /* The supervisor. */
    pthread_t thread;
    int cmd_efd; /* wakes it: stop, or a condemned worker */
    bool stop;
};

/* ---- proxy.c ---- */
int32_t cpex__iso_proxy_handler(void *instance, const cpex_call *call);
/** The verdict handler of an isolated audit sink: the verdict goes to the worker as a VERDICT. */
int32_t cpex__iso_proxy_verdict(void *instance, const cpex_call *call, const cpex_verdict *verdict);
int32_t cpex__iso_proxy_initialize(void *instance, char *err, size_t err_cap);
void cpex__iso_proxy_shutdown(void *instance);
void cpex__iso_proxy_destroy(void *instance);
/** Kill `inc` now for `why` (ISO_CONDEMN_*); its death is reported by the supervisor. */
void cpex__iso_inc_condemn(cpex__iso_inc *inc, int why, const char *text);
void cpex__iso_inc_unref(cpex__iso_inc *inc);

/* ---- supervisor.c ---- */
/** Keep a log line for the next call (under p->lock). */
void cpex__iso_proxy_note(cpex__iso_proxy *p, uint32_t level, const char *text);
/** Start the supervisor and, through it, the first worker; wait for that. */
cpex_status cpex__iso_supervisor_start(cpex__iso_proxy *p, cpex_error *err);
/** Stop the supervisor (it kills and reaps the worker left). */
void cpex__iso_supervisor_stop(cpex__iso_proxy *p);

/* ---- incarnation.c ---- */
/** Shared memory for a new worker (refs 1); *fd is the memfd to hand it. NULL with `why`. */
cpex__iso_inc *cpex__iso_inc_new(cpex__iso_proxy *p, int *fd, char *why, size_t cap);
/** Publish that the worker is gone: callers read death_* after `dead`. */
void cpex__iso_inc_mark_dead(cpex__iso_inc *inc);
/**
 * Take a free channel of `inc` (`control`: channel 0, which takes the
 * control requests); -1 when none frees before `deadline_ns` or it dies.
 */
int cpex__iso_inc_take_channel(cpex__iso_inc *inc, bool control, int64_t deadline_ns);
void cpex__iso_inc_give_channel(cpex__iso_inc *inc, int ch);
/**
 * One control request on `inc` (channel 0): `op` with the bytes of `req`
 * (its first byte replaced by `op`), the reply decoded into `out`
 * (cpex__iso_ctl_reply_free it; *buf holds the bytes it points into) within
 * `deadline_ns`. `watch_death`: the caller is the supervisor, which must
 * look for the worker's death itself. 0 on a reply; else -1 with why the
 * worker did not answer in `why` (it is condemned when it overran or sent
 * something malformed).
 */
int cpex__iso_inc_control(cpex__iso_inc *inc, uint8_t op, const uint8_t *req, size_t len,
                          int64_t deadline_ns, bool watch_death, cpex__iso_ctl_reply *out,
                          uint8_t **buf, char *why, size_t cap);
/** Wait for the reply on channel `ch` to a request `op` posted earlier (as cpex__iso_inc_control). */
int cpex__iso_inc_await(cpex__iso_inc *inc, int ch, uint8_t op, int64_t deadline_ns,
                        bool watch_death, cpex__iso_ctl_reply *out, uint8_t **buf, char *why,
                        size_t cap);

#endif
