/*
 * reply.h — everything a worker process says, read as strictly as a
 * manifest (fuzzed by fuzz/fuzz_reply.c).
 *
 * The host never trusts a worker: a plugin runs there and may have taken
 * it over. A reply is decoded from a private copy, completely, before any
 * of it is used: every length, count, enum value, string (UTF-8, no NUL)
 * and JSON value (depth, duplicate keys, finite numbers) is checked, a CMF
 * message as cpex_cmf_from_json would check it, and bytes left over are an
 * error. The first problem ends the decoding with a reason; the caller
 * then kills the worker and reports a crash.
 */
#ifndef CPEX_ISOLATION_REPLY_H
#define CPEX_ISOLATION_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"
#include "cpex/error.h"

/** One request of the plugin to the host (proto.h ISO_OP_*). */
typedef struct cpex__iso_op {
    uint8_t type;
    uint32_t num;          /* LOG level, HEADER set, CTX_SET scope, PAYLOAD accepted, LOST count */
    const char *a;         /* the strings, by op: code/message/key/name/label */
    const char *b;         /* reason / header value */
    const char *c;         /* description (may be NULL) */
    json_t *json;          /* owned: details, metadata, custom, context value, JSON payload */
    cpex_cmf_message *cmf; /* owned: an accepted CMF payload */
} cpex__iso_op;

/** A CALL reply. Strings point into the buffer it was decoded from. */
typedef struct cpex__iso_call_reply {
    uint8_t status;      /* ISO_REP_OK or ISO_REP_BADREQ */
    int32_t decision;    /* the handler's return value, as it returned it */
    const char *message; /* BADREQ: why the worker could not read the request */
    size_t op_count;
    cpex__iso_op *ops;
} cpex__iso_call_reply;

/**
 * Decode a CALL reply of `len` bytes. On success returns true and fills
 * `out` (release with cpex__iso_call_reply_free); else false with the reason in
 * `why` and nothing to release.
 */
bool cpex__iso_call_reply_decode(const void *buf, size_t len, cpex__iso_call_reply *out, char *why,
                                 size_t cap);
void cpex__iso_call_reply_free(cpex__iso_call_reply *r);

/** One log line a worker passes on. */
typedef struct cpex__iso_log_line {
    uint32_t level;
    const char *text;
} cpex__iso_log_line;

/** One handler a worker's plugin registered. */
typedef struct cpex__iso_handler_info {
    const char *hook;
    const char *payload_type; /* may be NULL */
} cpex__iso_handler_info;

/** A reply to LOAD, INIT, SHUTDOWN or DESTROY. Strings point into the buffer. */
typedef struct cpex__iso_ctl_reply {
    uint8_t status; /* ISO_REP_OK, ISO_REP_FAILED or ISO_REP_BADREQ */
    /* LOAD, OK */
    const char *origin;         /* the library's resolved path */
    const char *name, *version; /* reported; may be NULL */
    bool has_initialize, has_shutdown;
    bool has_verdict; /* an audit sink: then handler_count may be 0 */
    size_t handler_count;
    cpex__iso_handler_info *handlers;
    uint32_t sandbox;        /* ISO_SB_* in force */
    const char *protections; /* one line for an operator */
    size_t warning_count;
    const char **warnings;
    /* LOAD, FAILED: error items; INIT FAILED / BADREQ: one message */
    size_t error_count;
    cpex_status *error_codes;
    const char **errors;
    const char *message;
    /* any */
    size_t log_count;
    cpex__iso_log_line *logs;
} cpex__iso_ctl_reply;

/** Decode the reply to a request of type `req` (ISO_REQ_*). As cpex__iso_call_reply_decode. */
bool cpex__iso_ctl_reply_decode(uint8_t req, const void *buf, size_t len, cpex__iso_ctl_reply *out,
                                char *why, size_t cap);
void cpex__iso_ctl_reply_free(cpex__iso_ctl_reply *r);

#endif
