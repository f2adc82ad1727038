/*
 * cpex/codes.h — every code the pipeline writes into a result, in one table.
 *
 * Two kinds of code:
 *
 *  - violation codes: cpex_violation.code when the pipeline itself stops an
 *    invoke. A plugin that denies with the host table's `deny` slot chooses
 *    its own code, which is not one of these (it could spell one, so read
 *    cpex_violation.plugin_name too when that matters);
 *  - record codes: cpex_error_record.code of a soft error, in a result's
 *    `errors` and in the manager's background error log.
 *
 * A host compares a result's code with a named one:
 *
 *     switch (cpex_code_from_name(result.violation->code)) {
 *     case CPEX_CODE_PLUGIN_TIMEOUT: ...
 *     }
 *     // or: strcmp(code, cpex_code_name(CPEX_CODE_PLUGIN_TIMEOUT)) == 0
 *
 * The table below is the only place the strings are spelled: the library,
 * docs/pipeline.md (checked by a test) and hosts all take them from here.
 * A code marked reserved is documented but nothing emits it yet. Codes are
 * appended, never renumbered or removed within a major version.
 */
#ifndef CPEX_CODES_H
#define CPEX_CODES_H

#include "cpex/export.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The table: X(ID, value, "name", KIND, STATUS, "meaning"), in value order.
 * KIND is VIOLATION or RECORD; STATUS is EMITTED or RESERVED. Expand it
 * with a macro of six parameters to generate code from the table.
 */
#define CPEX_CODE_TABLE(X)                                                                         \
    X(PLUGIN_DENY, 1, "plugin_deny", VIOLATION, EMITTED,                                           \
      "a sequential plugin denied without describing a violation (libcpex fails closed)")          \
    X(CONCURRENT_DENY, 2, "concurrent_deny", VIOLATION, EMITTED,                                   \
      "a concurrent plugin denied without describing a violation")                                 \
    X(PLUGIN_ERROR, 3, "plugin_error", VIOLATION, EMITTED,                                         \
      "a plugin with on_error fail failed: an error, an unknown decision, or not initialized")     \
    X(PLUGIN_TIMEOUT, 4, "plugin_timeout", VIOLATION, EMITTED,                                     \
      "a plugin with on_error fail overran its timeout; details hold timeout_ms")                  \
    X(PLUGIN_PANIC, 5, "plugin_panic", VIOLATION, RESERVED,                                        \
      "reserved: CPEX's code for a plugin whose code panicked and was caught (libcpex cannot "     \
      "catch one; an isolated plugin's crash is plugin_crashed)")                                  \
    X(PAYLOAD_TYPE_MISMATCH, 6, "payload_type_mismatch", VIOLATION, EMITTED,                       \
      "the invoke's payload does not fit the hook (type name, kind or unregistered type)")         \
    X(INVALID_ARGUMENT, 7, "invalid_argument", VIOLATION, EMITTED,                                 \
      "cpex_manager_invoke was called without a manager or a hook")                                \
    X(INTERNAL_ERROR, 8, "internal_error", VIOLATION, EMITTED,                                     \
      "memory ran out while stopping the pipeline or starting a phase that may deny (fail "        \
      "closed)")                                                                                   \
    X(ERROR, 9, "error", RECORD, EMITTED,                                                          \
      "a handler returned CPEX_ERROR; the message is the plugin's own")                            \
    X(BAD_DECISION, 10, "bad_decision", RECORD, EMITTED,                                           \
      "a handler returned a value that is not CPEX_ALLOW, CPEX_DENY or CPEX_ERROR")                \
    X(NOT_INITIALIZED, 11, "not_initialized", RECORD, EMITTED,                                     \
      "the plugin is not initialized (never, failed, or shut down) and fails closed")              \
    X(TIMEOUT, 12, "timeout", RECORD, EMITTED,                                                     \
      "a handler overran its timeout; its result was discarded")                                   \
    X(DROPPED_DENY, 13, "dropped_deny", RECORD, EMITTED,                                           \
      "a plugin denied in a mode that cannot block; the deny was ignored")                         \
    X(DROPPED_MODIFICATION, 14, "dropped_modification", RECORD, EMITTED,                           \
      "a payload modification was refused: the mode cannot modify, or the type is not the hook's") \
    X(DENIED_WRITE, 15, "denied_write", RECORD, EMITTED,                                           \
      "an extension write was refused: a capability is missing, the mode cannot modify, or it "    \
      "removed a label")                                                                           \
    X(INTERNAL, 16, "internal", RECORD, EMITTED,                                                   \
      "memory ran out and something was lost (metadata, the modified payload, a background call)") \
    X(NOT_STARTED, 17, "not_started", RECORD, EMITTED,                                             \
      "a worker-thread handler could not start before its deadline: every worker was busy; not "   \
      "the plugin's failure (it is not disabled)")                                                 \
    X(WORKER_POOL_BUSY, 18, "worker_pool_busy", VIOLATION, EMITTED,                                \
      "a concurrent plugin with on_error fail could not start before its deadline: every worker "  \
      "thread was busy (fail closed)")                                                             \
    X(UNKNOWN_HOOK, 19, "unknown_hook", VIOLATION, EMITTED,                                        \
      "no plugin is configured to run for the invoked hook and the manager denies such invokes "   \
      "(unknown_hook: deny)")                                                                      \
    X(PLUGIN_CRASHED, 20, "plugin_crashed", VIOLATION, EMITTED,                                    \
      "an isolated plugin with on_error fail lost its worker process in the call (it died, sent "  \
      "a malformed reply, or crashed too often and is disabled); details hold worker_pid and "     \
      "signal or exit_status when it died")

/** A code of the table; CPEX_CODE_NONE is "not a code of the table". */
typedef enum cpex_code {
    CPEX_CODE_NONE = 0,
#define CPEX__CODE_ENUM_ROW(id, value, name, kind, status, meaning) CPEX_CODE_##id = value,
    CPEX_CODE_TABLE(CPEX__CODE_ENUM_ROW)
#undef CPEX__CODE_ENUM_ROW
} cpex_code;

/** Where a code appears. */
typedef enum cpex_code_kind {
    CPEX_CODE_KIND_NONE = 0,      /* not a code of the table */
    CPEX_CODE_KIND_VIOLATION = 1, /* cpex_violation.code */
    CPEX_CODE_KIND_RECORD = 2     /* cpex_error_record.code */
} cpex_code_kind;

/** One row of the table. Static data: never freed. */
typedef struct cpex_code_info {
    cpex_code code;
    const char *name; /* the string a result carries, e.g. "plugin_deny" */
    cpex_code_kind kind;
    bool reserved;       /* documented, not emitted yet */
    const char *meaning; /* one line of English */
} cpex_code_info;

/** Every row of the table, in value order; *count (must not be NULL) gets their number. */
CPEX_API const cpex_code_info *cpex_code_list(size_t *count);

/** The row of the code spelled `name`, or NULL when it is not in the table (or NULL). */
CPEX_API const cpex_code_info *cpex_code_lookup(const char *name);

/** The string of `code` ("plugin_deny", …), or NULL for CPEX_CODE_NONE or an unknown value. */
CPEX_API const char *cpex_code_name(cpex_code code);

/** The code spelled `name`, or CPEX_CODE_NONE when it is not in the table (or NULL). */
CPEX_API cpex_code cpex_code_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_CODES_H */
