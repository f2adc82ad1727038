/*
 * cpex/plugin.h — the plugin SDK: everything a plugin author includes.
 *
 * A plugin is a shared library that includes this header and links against
 * nothing of libcpex. It talks to the host only through the table of
 * functions (cpex_host_api, abi.h) handed to its entry point. This header
 * depends on abi.h and the C library only.
 *
 * One plugin per library:
 *
 *     #include <cpex/plugin.h>
 *
 *     static int32_t allow(void *self, const cpex_call *call) { return CPEX_ALLOW; }
 *     static const cpex_handler_reg handlers[] = {
 *         CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf")};
 *
 *     static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
 *                           cpex_plugin_registration *out, char *err, size_t err_cap)
 *     {
 *         out->name = "allow-all";
 *         out->version = "1.0.0";
 *         out->handler_count = 1;
 *         out->handlers = handlers;
 *         return CPEX_CREATE_OK;
 *     }
 *     CPEX_PLUGIN(create, "allow-all", "1.0.0", "Allows every tool call",
 *                 "cmf.tool_pre_invoke")
 *
 * Several plugins per library (YAML: `kind: "lib:/path/libx.so?entry=allow"`):
 *
 *     CPEX_PLUGIN_ENTRY(allow, allow_create, "allow-gate", "1.0.0", "Allows", "cmf.tool_pre_invoke")
 *     CPEX_PLUGIN_ENTRY(deny, deny_create, "deny-gate", "0.5.0", "Denies", "cmf.tool_pre_invoke")
 *     CPEX_PLUGIN_LIST(allow, deny)
 *
 * Build (hidden visibility: only the entry points and the manifest are
 * exported, so the plugin's own symbols never clash with the host's):
 *
 *     cc -std=c11 -shared -fPIC -fvisibility=hidden -o libmine.so mine.c
 *
 * Lifetime and ownership:
 *   - The host table, the config and everything reachable from them are
 *     host-owned. The table lives as long as the instance; the config only
 *     during create (copy what you keep).
 *   - Strings and the handler array of the registration must stay valid
 *     until `destroy` returns: static storage is the usual choice.
 *   - What the plugin allocates with its own allocator it frees itself, in
 *     `destroy` at the latest. What it builds with host functions belongs
 *     to the host (or to whoever a slot hands it to).
 *   - On a failed create, free everything you allocated before returning:
 *     the host calls nothing of the plugin after a failure. After a
 *     successful one the host owns the instance and calls `destroy` once,
 *     even if it then refuses the registration.
 *   - A slot that "takes ownership" takes it whether it succeeds or fails.
 *
 * Threads (abi.h tags every slot and callback):
 *   - Handlers run on several threads at once (invoking host threads and
 *     the manager's workers) — guard what an instance shares between calls.
 *   - create, initialize, shutdown and destroy never overlap each other or a
 *     handler of the same instance, but may each run on a different thread.
 *   - Slots that take a `call` work only on the handler's thread, during the
 *     call; json_*, cmf_* and free work anywhere, any time; log works
 *     anywhere with a NULL call.
 *
 * Unwinding: nothing may unwind out of an exported function, a callback or
 * a handler into the host — it aborts the host. Rust: catch_unwind around
 * each body; C++: noexcept + catch (...); Go: recover() in every exported
 * function; then return CPEX_ERROR (after set_error) or a failure status.
 *
 * The hooks a plugin serves are written twice — in its handler array and
 * in CPEX_PLUGIN / CPEX_PLUGIN_ENTRY — and the loader refuses a library
 * whose manifest entry and registration list different hooks.
 */
#ifndef CPEX_PLUGIN_H
#define CPEX_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpex/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* The ABI this plugin speaks                                          */
/* ------------------------------------------------------------------ */

/*
 * CPEX_PLUGIN_ABI_MAJOR / CPEX_PLUGIN_ABI_MINOR: the version the emitted
 * entry points and manifest claim. They default to this header's version,
 * which is what a real plugin wants: build against the oldest SDK header
 * whose features you need, and every host of that major and an equal or
 * newer minor loads the plugin. Defining them before the #include is for
 * test plugins that must claim another version.
 */
#ifndef CPEX_PLUGIN_ABI_MAJOR
#define CPEX_PLUGIN_ABI_MAJOR CPEX_ABI_VERSION_MAJOR
#endif
#ifndef CPEX_PLUGIN_ABI_MINOR
#define CPEX_PLUGIN_ABI_MINOR CPEX_ABI_VERSION_MINOR
#endif
/** The packed version the plugin claims (manifest and registration). */
#define CPEX_PLUGIN_ABI_VERSION CPEX_ABI_MAKE_VERSION(CPEX_PLUGIN_ABI_MAJOR, CPEX_PLUGIN_ABI_MINOR)

/** Free text stored in the manifest's build_info (override before the #include). */
#ifndef CPEX_PLUGIN_BUILD_INFO
#ifdef __VERSION__
#define CPEX_PLUGIN_BUILD_INFO "libcpex plugin SDK; compiler " __VERSION__
#else
#define CPEX_PLUGIN_BUILD_INFO "libcpex plugin SDK"
#endif
#endif

/* ------------------------------------------------------------------ */
/* Writing messages                                                    */
/* ------------------------------------------------------------------ */

/**
 * Write a formatted message into the err buffer an entry point or an
 * initialize callback receives (NUL-terminated, truncated to err_cap;
 * nothing happens when err is NULL or err_cap is 0).
 */
static inline void cpex_plugin_errorf(char *err, size_t err_cap, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline void cpex_plugin_errorf(char *err, size_t err_cap, const char *fmt, ...)
{
    if (!err || err_cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/**
 * Log a formatted line through the host (under the plugin's name; `call`
 * may be NULL outside a handler call). Lines longer than 1 KiB are cut.
 */
static inline void cpex_logf(const cpex_host_api *host, const cpex_call *call, uint32_t level,
                             const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static inline void cpex_logf(const cpex_host_api *host, const cpex_call *call, uint32_t level,
                             const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (!host || !host->log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    host->log(call, level, line);
}

/* ------------------------------------------------------------------ */
/* The host table                                                      */
/* ------------------------------------------------------------------ */

/**
 * Whether the host table `host` has the slot `slot` (and it is set). Use it
 * before calling a slot added in a later minor than the plugin requires:
 * an older host's table is shorter, and its struct_size says so.
 */
#define CPEX_HOST_HAS(host, slot)                                                                  \
    ((host) != NULL &&                                                                             \
     (size_t)(host)->struct_size >= offsetof(cpex_host_api, slot) + sizeof((host)->slot) &&        \
     (host)->slot != NULL)

/**
 * Whether the host offers the state slots (state_get, state_set, state_incr,
 * state_delete, state_set_add, state_set_members; ABI 1.1). When it does
 * not, a message for the operator goes into `err` (NUL-terminated,
 * truncated to err_cap; nothing when err is NULL) and 0 is returned: a
 * plugin that needs the slots refuses to be created with it
 * (CPEX_PLUGIN_INIT_FAILED), one that can do without logs it and falls
 * back. A plugin that wants to load on a 1.0 host at all must also claim
 * ABI 1.0 (`#define CPEX_PLUGIN_ABI_MINOR 0` before including this header).
 */
static inline int cpex_host_has_state(const cpex_host_api *host, char *err, size_t err_cap)
{
    if (CPEX_HOST_HAS(host, state_get) && CPEX_HOST_HAS(host, state_set) &&
        CPEX_HOST_HAS(host, state_incr) && CPEX_HOST_HAS(host, state_delete) &&
        CPEX_HOST_HAS(host, state_set_add) && CPEX_HOST_HAS(host, state_set_members))
        return 1;
    if (err && err_cap) {
        unsigned v = host ? (unsigned)host->abi_version : 0u;
        snprintf(err, err_cap,
                 "the host (ABI %u.%u) has no state slots: they came with ABI 1.1; run the "
                 "plugin on a libcpex host of ABI 1.1 or newer",
                 (unsigned)CPEX_ABI_MAJOR(v), (unsigned)CPEX_ABI_MINOR(v));
    }
    return 0;
}

/** Whether `s` holds exactly the NUL-terminated text `text`. */
static inline int cpex_str_eq(cpex_str s, const char *text)
{
    size_t n;
    if (!s.ptr || !text)
        return 0;
    n = strlen(text);
    return s.len == n && memcmp(s.ptr, text, n) == 0;
}

/**
 * Whether `len` bytes of `s` match `pattern`, where '*' matches any run of
 * characters (including none) and every other character matches itself.
 * Iterative, so a hostile pattern never takes exponential time. For the
 * allow-lists operators write in `config:` ("search_*").
 */
static inline int cpex_glob_match(const char *pattern, const char *s, size_t len)
{
    const char *star = NULL;
    size_t i = 0, star_i = 0;
    while (i < len) {
        if (*pattern == '*') {
            star = pattern++;
            star_i = i;
        } else if (*pattern != '\0' && *pattern == s[i]) {
            pattern++;
            i++;
        } else if (star) {
            pattern = star + 1;
            i = ++star_i;
        } else {
            return 0;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

/* ------------------------------------------------------------------ */
/* Reading the configuration                                           */
/* ------------------------------------------------------------------ */

/**
 * Member `key` of the plugin's `config:` block (borrowed from the host,
 * valid during create), or NULL when the block is not an object or has no
 * such key.
 */
static inline const cpex_json *cpex_config_get(const cpex_host_api *host,
                                               const cpex_plugin_config *config, const char *key)
{
    if (!host || !config || !config->config || !host->json_object_get)
        return NULL;
    return host->json_object_get(config->config, key);
}

/**
 * String member `key` of the config block, or `fallback` when absent or
 * not a string. Borrowed: valid during create only — copy it to keep it.
 */
static inline const char *cpex_config_string(const cpex_host_api *host,
                                             const cpex_plugin_config *config, const char *key,
                                             const char *fallback)
{
    const cpex_json *v = cpex_config_get(host, config, key);
    const char *s;
    if (!v || host->json_type(v) != CPEX_JSON_STRING)
        return fallback;
    s = host->json_string(v, NULL);
    return s ? s : fallback;
}

/** Integer member `key` of the config block, or `fallback` when absent or not an integer. */
static inline int64_t cpex_config_int(const cpex_host_api *host, const cpex_plugin_config *config,
                                      const char *key, int64_t fallback)
{
    const cpex_json *v = cpex_config_get(host, config, key);
    if (!v || host->json_type(v) != CPEX_JSON_INTEGER)
        return fallback;
    return host->json_integer(v);
}

/* ------------------------------------------------------------------ */
/* Reading payloads (host-owned, read-only, valid during the call)     */
/* ------------------------------------------------------------------ */

/** The CMF message a call carries, or NULL when the payload is not CMF. */
static inline const cpex_cmf_message *cpex_call_cmf(const cpex_call *call)
{
    if (!call || !call->payload || call->payload->kind != CPEX_PAYLOAD_CMF)
        return NULL;
    return (const cpex_cmf_message *)call->payload->data;
}

/** The JSON document a call carries, or NULL when the payload is not JSON. */
static inline const cpex_json *cpex_call_json(const cpex_call *call)
{
    if (!call || !call->payload || call->payload->kind != CPEX_PAYLOAD_JSON)
        return NULL;
    return (const cpex_json *)call->payload->data;
}

/** Part `index` of `message`, or NULL when out of range. */
static inline const cpex_cmf_part *cpex_cmf_part_at(const cpex_cmf_message *message, size_t index)
{
    if (!message || index >= message->part_count)
        return NULL;
    return &message->parts[index];
}

/** The text of a text or thinking part; {NULL, 0} for any other kind. */
static inline cpex_str cpex_part_text(const cpex_cmf_part *part)
{
    cpex_str none = {NULL, 0};
    if (!part || (part->kind != CPEX_PART_TEXT && part->kind != CPEX_PART_THINKING))
        return none;
    return part->text;
}

/* The typed accessors below return the part's body when the part is of
   that kind, else NULL: a plugin never casts `body` by hand. */
#define CPEX__PART_BODY(part, k, type)                                                             \
    ((part) && (part)->kind == (uint32_t)(k) ? (const type *)(part)->body : (const type *)NULL)

/** The tool call of a tool_call part, or NULL. */
static inline const cpex_cmf_tool_call *cpex_part_tool_call(const cpex_cmf_part *part)
{
    return CPEX__PART_BODY(part, CPEX_PART_TOOL_CALL, cpex_cmf_tool_call);
}
/** The tool result of a tool_result part, or NULL. */
static inline const cpex_cmf_tool_result *cpex_part_tool_result(const cpex_cmf_part *part)
{
    return CPEX__PART_BODY(part, CPEX_PART_TOOL_RESULT, cpex_cmf_tool_result);
}
/** The resource of a resource part, or NULL. */
static inline const cpex_cmf_resource *cpex_part_resource(const cpex_cmf_part *part)
{
    return CPEX__PART_BODY(part, CPEX_PART_RESOURCE, cpex_cmf_resource);
}
/** The reference of a resource_ref part, or NULL. */
static inline const cpex_cmf_resource_ref *cpex_part_resource_ref(const cpex_cmf_part *part)
{
    return CPEX__PART_BODY(part, CPEX_PART_RESOURCE_REF, cpex_cmf_resource_ref);
}
/** The request of a prompt_request part, or NULL. */
static inline const cpex_cmf_prompt_request *cpex_part_prompt_request(const cpex_cmf_part *part)
{
    return CPEX__PART_BODY(part, CPEX_PART_PROMPT_REQUEST, cpex_cmf_prompt_request);
}
/** The result of a prompt_result part, or NULL. */
static inline const cpex_cmf_prompt_result *cpex_part_prompt_result(const cpex_cmf_part *part)
{
    return CPEX__PART_BODY(part, CPEX_PART_PROMPT_RESULT, cpex_cmf_prompt_result);
}
/** The media body of an image, video, audio or document part, or NULL. */
static inline const cpex_cmf_media *cpex_part_media(const cpex_cmf_part *part)
{
    if (!part || (part->kind != CPEX_PART_IMAGE && part->kind != CPEX_PART_VIDEO &&
                  part->kind != CPEX_PART_AUDIO && part->kind != CPEX_PART_DOCUMENT))
        return NULL;
    return (const cpex_cmf_media *)part->body;
}

/* ------------------------------------------------------------------ */
/* Verdicts and execution records (ABI 1.1, audit sinks)               */
/* ------------------------------------------------------------------ */


/** The name of an enum cpex_exec_status value ("completed", ...), "unknown" otherwise. */
static inline const char *cpex_exec_status_text(uint32_t status)
{
    static const char *const names[] = {"completed", "error",           "timeout",
                                        "cancelled", "not_initialized", "not_started"};
    return status < sizeof names / sizeof names[0] ? names[status] : "unknown";
}

/* ------------------------------------------------------------------ */
/* The entry point glue                                                */
/* ------------------------------------------------------------------ */

/**
 * The function a plugin author writes: fill `out` (name, version,
 * instance, callbacks, handlers) and return CPEX_CREATE_OK, or return
 * CPEX_CREATE_CONFIG_REJECTED / CPEX_CREATE_INIT_FAILED with a message in
 * `err` (cpex_plugin_errorf) after freeing what it allocated. `out` comes
 * zero-filled with struct_size, abi_version and handler_size already set
 * (leave them); the ABI handshake has already passed.
 */
typedef int32_t (*cpex_plugin_create_impl)(const cpex_host_api *host,
                                           const cpex_plugin_config *config,
                                           cpex_plugin_registration *out, char *err,
                                           size_t err_cap);

/*
 * Duplicated-host check. A plugin that links (or statically embeds) its own
 * copy of libcpex would hand the host objects from another allocator and
 * registry: it works until it crashes. This weak reference resolves to
 * cpex_host_api_get only when the plugin itself is linked with a libcpex
 * (or the host exports one globally, in which case it is the same host);
 * if that copy's host_identity differs from the host loading the plugin,
 * the create is refused. Define CPEX_PLUGIN_NO_HOST_CHECK to turn it off.
 */
#if !defined(CPEX_PLUGIN_NO_HOST_CHECK) && defined(__ELF__) &&                                     \
    (defined(__GNUC__) || defined(__clang__))
static const cpex_host_api *cpex__sdk_linked_host(void)
    __attribute__((weakref("cpex_host_api_get")));
#define CPEX__LINKED_HOST() (cpex__sdk_linked_host ? cpex__sdk_linked_host() : NULL)
#else
#define CPEX__LINKED_HOST() ((const cpex_host_api *)NULL)
#endif

/**
 * What every emitted entry point does. The handshake comes first, before
 * the plugin touches anything the host handed it: the host's major must
 * equal the plugin's and its minor must not be older (else the host's
 * structs and table may lack what the plugin reads). Then the author's
 * create fills a local registration, which is copied out at the size the
 * host declared in out->struct_size, so a plugin can never write past the
 * host's struct.
 */
static inline int32_t cpex_plugin_dispatch(uint32_t host_abi, const cpex_host_api *host,
                                           const cpex_plugin_config *config,
                                           cpex_plugin_registration *out, char *err, size_t err_cap,
                                           cpex_plugin_create_impl create)
{
    const uint32_t mine = CPEX_PLUGIN_ABI_VERSION;
    const cpex_host_api *linked;
    cpex_plugin_registration reg;
    size_t n;
    int32_t status;

    if (err && err_cap)
        err[0] = '\0';
    if (CPEX_ABI_MAJOR(host_abi) != CPEX_ABI_MAJOR(mine) ||
        CPEX_ABI_MINOR(host_abi) < CPEX_ABI_MINOR(mine)) {
        cpex_plugin_errorf(err, err_cap,
                           "plugin built for ABI %u.%u, host has %u.%u; rebuild the plugin "
                           "against the cpex/plugin.h of the host (ABI %u.%u) or an older "
                           "one of major %u",
                           (unsigned)CPEX_ABI_MAJOR(mine), (unsigned)CPEX_ABI_MINOR(mine),
                           (unsigned)CPEX_ABI_MAJOR(host_abi), (unsigned)CPEX_ABI_MINOR(host_abi),
                           (unsigned)CPEX_ABI_MAJOR(host_abi), (unsigned)CPEX_ABI_MINOR(host_abi),
                           (unsigned)CPEX_ABI_MAJOR(host_abi));
        return CPEX_CREATE_ABI_MISMATCH;
    }
    if (!host || !config || !out || !create ||
        out->struct_size <
            offsetof(cpex_plugin_registration, handlers) + sizeof(const cpex_handler_reg *)) {
        cpex_plugin_errorf(err, err_cap,
                           "the host passed an incomplete create request "
                           "(NULL table, config or registration)");
        return CPEX_CREATE_INIT_FAILED;
    }
    linked = CPEX__LINKED_HOST();
    if (linked && linked->host_identity != host->host_identity) {
        cpex_plugin_errorf(err, err_cap,
                           "the plugin links its own copy of libcpex, which is not the host "
                           "loading it; link the plugin against nothing of libcpex and use "
                           "only the host table");
        return CPEX_CREATE_INIT_FAILED;
    }

    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = mine;
    reg.handler_size = (uint32_t)sizeof(cpex_handler_reg);
    status = create(host, config, &reg, err, err_cap);
    if (status != CPEX_CREATE_OK)
        return status;
    /* An audit sink needs a host that reads the verdict handler: one whose
       registration is long enough to carry it (a plugin that only cares
       about its handlers would otherwise lose its sink in silence). */
    if (reg.verdict && out->struct_size < CPEX_REGISTRATION_SIZE_VERDICT) {
        cpex_plugin_errorf(err, err_cap,
                           "the plugin is an audit sink (it registers a verdict handler), which "
                           "this host cannot take: its registration is %u bytes, a verdict "
                           "handler needs %u (ABI 1.1 with audit sinks); upgrade the host's "
                           "libcpex",
                           (unsigned)out->struct_size, (unsigned)CPEX_REGISTRATION_SIZE_VERDICT);
        if (reg.destroy)
            reg.destroy(reg.instance);
        return CPEX_CREATE_INIT_FAILED;
    }
    n = out->struct_size < sizeof reg ? out->struct_size : sizeof reg;
    reg.struct_size = (uint32_t)n;
    memcpy(out, &reg, n);
    return CPEX_CREATE_OK;
}

/* Export one symbol from a library built with hidden visibility. */
#if defined(_WIN32)
#define CPEX_EXPORT __declspec(dllexport)
#else
#define CPEX_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define CPEX__EXTERN extern "C"
#else
#define CPEX__EXTERN extern
#endif

/* Emit an exported entry point `symbol` that runs the handshake, then `create_fn`.
   The export attribute (and C linkage in C++) sit on the first declaration,
   which the definition inherits. */
#define CPEX__ENTRY_POINT(symbol, create_fn)                                                       \
    CPEX__EXTERN CPEX_EXPORT int32_t symbol(                                                       \
        uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,            \
        cpex_plugin_registration *out, char *err, size_t err_cap);                                 \
    int32_t symbol(uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config, \
                   cpex_plugin_registration *out, char *err, size_t err_cap)                       \
    {                                                                                              \
        return cpex_plugin_dispatch(host_abi, host, config, out, err, err_cap, create_fn);         \
    }

/* Emit one static manifest entry `var` (hooks: the variadic string literals). */
#define CPEX__MANIFEST_ENTRY(var, entry_name, display_name, version_, description_, ...)           \
    static const char *const var##_hooks[] = {__VA_ARGS__};                                        \
    static const cpex_manifest_entry var = {(uint32_t)sizeof(cpex_manifest_entry),                 \
                                            0u,                                                    \
                                            entry_name,                                            \
                                            display_name,                                          \
                                            version_,                                              \
                                            description_,                                          \
                                            sizeof(var##_hooks) / sizeof(var##_hooks[0]),          \
                                            var##_hooks};

/* Emit the exported manifest over the static array `entries`. */
#define CPEX__MANIFEST(entries)                                                                    \
    CPEX__EXTERN CPEX_EXPORT const cpex_manifest cpex_plugin_list;                                 \
    const cpex_manifest cpex_plugin_list = {                                                       \
        (uint32_t)sizeof(cpex_manifest), CPEX_PLUGIN_ABI_VERSION,                                  \
        sizeof(entries) / sizeof(entries[0]), entries, CPEX_PLUGIN_BUILD_INFO};

/**
 * CPEX_PLUGIN(create_fn, display_name, version, description, hook, ...)
 *
 * For a library with one plugin. Emits the entry point `cpex_plugin_create`
 * (which runs the ABI handshake, then `create_fn`, of type
 * cpex_plugin_create_impl) and the manifest `cpex_plugin_list` with one
 * default entry (entry name ""). display_name, version and description
 * are string literals (description may be NULL); the hooks are the names,
 * as string literals, of the hooks the plugin serves (at least one). Use
 * once per library, at file scope.
 */
#define CPEX_PLUGIN(create_fn, display_name, version, description, ...)                            \
    CPEX__MANIFEST_ENTRY(cpex__entry_default, "", display_name, version, description, __VA_ARGS__) \
    static const cpex_manifest_entry *const cpex__entries[] = {&cpex__entry_default};              \
    CPEX__MANIFEST(cpex__entries)                                                                  \
    CPEX__ENTRY_POINT(cpex_plugin_create, create_fn)

/**
 * CPEX_SINK_PLUGIN(create_fn, display_name, version, description)
 *
 * For a library with one plugin that serves no hook and only observes
 * verdicts: an audit sink (its registration sets `verdict` and may have no
 * handlers; docs/observability.md). Emits what CPEX_PLUGIN emits, with a
 * manifest entry that lists no hooks. Use once per library, at file scope,
 * instead of CPEX_PLUGIN.
 */
#define CPEX_SINK_PLUGIN(create_fn, display_name, version_, description_)                          \
    static const cpex_manifest_entry cpex__entry_default = {(uint32_t)sizeof(cpex_manifest_entry), \
                                                            0u,                                    \
                                                            "",                                    \
                                                            display_name,                          \
                                                            version_,                              \
                                                            description_,                          \
                                                            0,                                     \
                                                            NULL};                                 \
    static const cpex_manifest_entry *const cpex__entries[] = {&cpex__entry_default};              \
    CPEX__MANIFEST(cpex__entries)                                                                  \
    CPEX__ENTRY_POINT(cpex_plugin_create, create_fn)

/**
 * CPEX_PLUGIN_ENTRY(entry, create_fn, display_name, version, description, hook, ...)
 *
 * For a library with several plugins: one per entry. `entry` is a bare C
 * identifier (not a string); it emits the entry point
 * `cpex_plugin_create_<entry>` and a manifest entry that CPEX_PLUGIN_LIST
 * must then name (an entry left out of the list is an unused-variable
 * warning). The operator selects it with `?entry=<entry>`.
 */
#define CPEX_PLUGIN_ENTRY(entry, create_fn, display_name, version, description, ...)               \
    CPEX__MANIFEST_ENTRY(cpex__entry_##entry, #entry, display_name, version, description,          \
                         __VA_ARGS__)                                                              \
    CPEX__ENTRY_POINT(cpex_plugin_create_##entry, create_fn)

/* A bounded map over the variadic entry names (at most 32 entries). */
#define CPEX__CAT(a, b) CPEX__CAT_(a, b)
#define CPEX__CAT_(a, b) a##b
#define CPEX__NARGS(...)                                                                           \
    CPEX__NARGS_(__VA_ARGS__, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,  \
                 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define CPEX__NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,   \
                     _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, N, \
                     ...)                                                                          \
    N
#define CPEX__REF(e) &cpex__entry_##e
#define CPEX__MAP_1(a) CPEX__REF(a)
#define CPEX__MAP_2(a, ...) CPEX__REF(a), CPEX__MAP_1(__VA_ARGS__)
#define CPEX__MAP_3(a, ...) CPEX__REF(a), CPEX__MAP_2(__VA_ARGS__)
#define CPEX__MAP_4(a, ...) CPEX__REF(a), CPEX__MAP_3(__VA_ARGS__)
#define CPEX__MAP_5(a, ...) CPEX__REF(a), CPEX__MAP_4(__VA_ARGS__)
#define CPEX__MAP_6(a, ...) CPEX__REF(a), CPEX__MAP_5(__VA_ARGS__)
#define CPEX__MAP_7(a, ...) CPEX__REF(a), CPEX__MAP_6(__VA_ARGS__)
#define CPEX__MAP_8(a, ...) CPEX__REF(a), CPEX__MAP_7(__VA_ARGS__)
#define CPEX__MAP_9(a, ...) CPEX__REF(a), CPEX__MAP_8(__VA_ARGS__)
#define CPEX__MAP_10(a, ...) CPEX__REF(a), CPEX__MAP_9(__VA_ARGS__)
#define CPEX__MAP_11(a, ...) CPEX__REF(a), CPEX__MAP_10(__VA_ARGS__)
#define CPEX__MAP_12(a, ...) CPEX__REF(a), CPEX__MAP_11(__VA_ARGS__)
#define CPEX__MAP_13(a, ...) CPEX__REF(a), CPEX__MAP_12(__VA_ARGS__)
#define CPEX__MAP_14(a, ...) CPEX__REF(a), CPEX__MAP_13(__VA_ARGS__)
#define CPEX__MAP_15(a, ...) CPEX__REF(a), CPEX__MAP_14(__VA_ARGS__)
#define CPEX__MAP_16(a, ...) CPEX__REF(a), CPEX__MAP_15(__VA_ARGS__)
#define CPEX__MAP_17(a, ...) CPEX__REF(a), CPEX__MAP_16(__VA_ARGS__)
#define CPEX__MAP_18(a, ...) CPEX__REF(a), CPEX__MAP_17(__VA_ARGS__)
#define CPEX__MAP_19(a, ...) CPEX__REF(a), CPEX__MAP_18(__VA_ARGS__)
#define CPEX__MAP_20(a, ...) CPEX__REF(a), CPEX__MAP_19(__VA_ARGS__)
#define CPEX__MAP_21(a, ...) CPEX__REF(a), CPEX__MAP_20(__VA_ARGS__)
#define CPEX__MAP_22(a, ...) CPEX__REF(a), CPEX__MAP_21(__VA_ARGS__)
#define CPEX__MAP_23(a, ...) CPEX__REF(a), CPEX__MAP_22(__VA_ARGS__)
#define CPEX__MAP_24(a, ...) CPEX__REF(a), CPEX__MAP_23(__VA_ARGS__)
#define CPEX__MAP_25(a, ...) CPEX__REF(a), CPEX__MAP_24(__VA_ARGS__)
#define CPEX__MAP_26(a, ...) CPEX__REF(a), CPEX__MAP_25(__VA_ARGS__)
#define CPEX__MAP_27(a, ...) CPEX__REF(a), CPEX__MAP_26(__VA_ARGS__)
#define CPEX__MAP_28(a, ...) CPEX__REF(a), CPEX__MAP_27(__VA_ARGS__)
#define CPEX__MAP_29(a, ...) CPEX__REF(a), CPEX__MAP_28(__VA_ARGS__)
#define CPEX__MAP_30(a, ...) CPEX__REF(a), CPEX__MAP_29(__VA_ARGS__)
#define CPEX__MAP_31(a, ...) CPEX__REF(a), CPEX__MAP_30(__VA_ARGS__)
#define CPEX__MAP_32(a, ...) CPEX__REF(a), CPEX__MAP_31(__VA_ARGS__)

/**
 * CPEX_PLUGIN_LIST(entry, ...)
 *
 * Emit the manifest `cpex_plugin_list` naming the entries (bare
 * identifiers, each defined earlier with CPEX_PLUGIN_ENTRY; at most 32).
 * Use once per library, after the entries. The manifest is constant data:
 * the host reads it to check `?entry=` and tools read it to describe the
 * library, without running any plugin code.
 */
#define CPEX_PLUGIN_LIST(...)                                                                      \
    static const cpex_manifest_entry *const cpex__entries[] = {                                    \
        CPEX__CAT(CPEX__MAP_, CPEX__NARGS(__VA_ARGS__))(__VA_ARGS__)};                             \
    CPEX__MANIFEST(cpex__entries)

#ifdef __cplusplus
}
#endif

#endif /* CPEX_PLUGIN_H */
