/*
 * state.h — the state backend interface behind the host table's state
 * slots (docs/state.md), and what the manager, the slots and the
 * configuration share about it. Not installed.
 *
 * A backend is a small table of operations on full keys (prefix,
 * namespace and the plugin's key already joined and checked). Every
 * operation returns an enum cpex_host_status and must return by
 * `deadline` (CLOCK_MONOTONIC ns); on a failure it may describe it in *e
 * (for the once-per-outage log line). Operations are called from any
 * number of threads at once.
 */
#ifndef CPEX_CORE_STATE_H
#define CPEX_CORE_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpex/abi.h"
#include "cpex/state.h"
#include "util/log.h"

/** Why an operation failed, for the log (NUL-terminated; empty when unknown). */
typedef struct cpex__state_err {
    char text[256];
} cpex__state_err;

typedef struct cpex__state_backend cpex__state_backend;

typedef struct cpex__state_ops {
    /* *value: cpex__malloc'ed, NUL-terminated copy. */
    int32_t (*get)(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                   char **value, size_t *len, cpex__state_err *e);
    int32_t (*set)(cpex__state_backend *b, const char *key, size_t klen, const void *value,
                   size_t len, int64_t ttl_ms, int64_t deadline, cpex__state_err *e);
    int32_t (*incr)(cpex__state_backend *b, const char *key, size_t klen, int64_t delta,
                    int64_t ttl_ms, int64_t deadline, int64_t *value, int64_t *ttl_left_ms,
                    cpex__state_err *e);
    int32_t (*del)(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                   cpex__state_err *e);
    int32_t (*set_add)(cpex__state_backend *b, const char *key, size_t klen, const void *member,
                       size_t len, int64_t ttl_ms, int64_t deadline, cpex__state_err *e);
    /* *members: one cpex__malloc'ed block (array, then the NUL-terminated bytes). */
    int32_t (*set_members)(cpex__state_backend *b, const char *key, size_t klen, int64_t deadline,
                           cpex_str **members, size_t *count, cpex__state_err *e);
    int32_t (*ping)(cpex__state_backend *b, int64_t deadline, cpex__state_err *e);
    uint64_t (*keys)(cpex__state_backend *b); /* may be NULL */
    void (*free)(cpex__state_backend *b);
} cpex__state_ops;

/** What every backend starts with. */
struct cpex__state_backend {
    const cpex__state_ops *ops;
    cpex_state_options opts; /* with owned copies of the strings */
    char *description;       /* for messages; never holds a password */
    char *origin;            /* who chose it ("host options", a file); NULL: the default.
                                     Set before the manager publishes it, then fixed */
    const char *key_prefix;  /* joined before every namespace ("" for memory) */
    size_t key_prefix_len;
    const cpex__log_sink *log;    /* the manager's */
    cpex__state_backend *retired; /* the manager's list of replaced backends */

    /* health: counted on every slot call, logged once per outage */
    _Atomic uint64_t calls, failures, unavailable, timeouts, outages;
    _Atomic bool failing;
    pthread_mutex_t health_lock; /* guards the two below and the log lines' order */
    int64_t failing_since;
    uint64_t failures_at_start;
};

/**
 * Check `o` and create its backend (no connection is made: a Redis that is
 * down does not stop a host from starting). NULL `o`: the memory backend
 * with its defaults. On failure returns CPEX_E_INVALID or CPEX_E_NOMEM
 * with a message in `why`.
 */
int cpex__state_new(const cpex_state_options *o, const cpex__log_sink *log,
                    cpex__state_backend **out, char *why, size_t why_cap);
void cpex__state_free(cpex__state_backend *b);
/** Whether two option sets choose the same backend with the same settings. */
bool cpex__state_options_same(const cpex_state_options *a, const cpex_state_options *b);
/** Fill the defaults in for the zero fields of `o` (strings stay as they are). */
void cpex__state_options_defaults(cpex_state_options *o);

/* Called by the backends' constructors and destructors. */
bool cpex__state_base_init(cpex__state_backend *b, const cpex__state_ops *ops,
                           const cpex_state_options *o, const cpex__log_sink *log);
void cpex__state_base_cleanup(cpex__state_backend *b);
int cpex__state_memory_new(const cpex_state_options *o, const cpex__log_sink *log,
                           cpex__state_backend **out, char *why, size_t why_cap);
int cpex__state_redis_new(const cpex_state_options *o, const cpex__log_sink *log,
                          cpex__state_backend **out, char *why, size_t why_cap);

/**
 * Count one slot call that reached the backend with result `status`, and
 * log the start (first failure) and the end (first success after) of an
 * outage. `plugin` names the caller in the first line.
 */
void cpex__state_note(cpex__state_backend *b, int32_t status, const cpex__state_err *e,
                      const char *plugin);

/* ---- keys and namespaces ---- */

#define CPEX__STATE_NS_MAX 255u
#define CPEX__STATE_PREFIX_MAX 128u
/* Ranges of the options (the YAML checks and cpex__state_new share them). */
#define CPEX__STATE_TIMEOUT_MAX_MS 600000u
#define CPEX__STATE_POOL_MAX 256u
#define CPEX__STATE_MAX_KEYS_MAX UINT64_C(1000000000)
#define CPEX__STATE_MAX_BYTES_MIN UINT64_C(65536)
#define CPEX__STATE_MAX_BYTES_MAX (UINT64_C(1) << 40)

/** Whether byte `c` may appear in a plugin's key. */
static inline bool cpex__state_key_byte(unsigned char c) { return c > 0x20 && c != 0x7f; }
/** Whether `ns` is a valid explicit namespace ([A-Za-z0-9_.-], 1..255 bytes); else why. */
bool cpex__state_namespace_valid(const char *ns, char *why, size_t why_cap);
/**
 * The namespace a plugin named `name` gets: the name, with every byte
 * outside [A-Za-z0-9_.-] written as %XX, so distinct names never share one.
 * NULL when out of memory or longer than CPEX__STATE_NS_MAX.
 */
char *cpex__state_namespace_of(const char *name);
/** Whether the prefix is usable (at most 128 key bytes). */
bool cpex__state_prefix_valid(const char *prefix, char *why, size_t why_cap);

/* ---- Redis addresses ---- */

typedef struct cpex__redis_url {
    char *host;     /* name or address; IPv6 without brackets */
    int port;       /* 1..65535; default 6379 */
    int db;         /* 0..100000; default 0 */
    char *user;     /* NULL: none */
    char *password; /* NULL: none */
} cpex__redis_url;

/** What cpex__redis_url_parse found. */
enum { CPEX__URL_OK = 0, CPEX__URL_BAD = 1, CPEX__URL_NOMEM = 2 };
/**
 * Parse "redis://[[user]:password@]host[:port][/db]": CPEX__URL_OK, or
 * CPEX__URL_BAD (why says what is malformed) or CPEX__URL_NOMEM (out of
 * memory: not the URL's fault), `out` then empty.
 */
int cpex__redis_url_parse(const char *url, cpex__redis_url *out, char *why, size_t why_cap);
void cpex__redis_url_cleanup(cpex__redis_url *u);

#endif
