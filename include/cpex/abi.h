/*
 * cpex/abi.h — every type that crosses the boundary between a libcpex host
 * and a plugin.
 *
 * Rules this header keeps (see docs/abi.md):
 *   - it includes nothing but <stdint.h> and <stddef.h>;
 *   - fixed-width integers, pointer + length strings, enums with fixed values
 *     carried in uint32_t fields, no bitfields, no bool in structs;
 *   - every struct that may grow starts with `struct_size`; a receiver treats
 *     fields past the sender's size as zero;
 *   - the ABI version is major.minor; a minor release only appends (new
 *     fields at the end of structs, new slots at the end of the host table,
 *     new enum values). A host loads plugins of its own major whose minor is
 *     not newer than its own.
 *
 * Ownership in one sentence: what the host hands to a plugin is host-owned
 * and read-only unless a function says otherwise; what a plugin builds with
 * host functions belongs to the host; what a plugin allocates itself it
 * frees itself (in its destroy callback at the latest). And one rule: a
 * function or slot that takes ownership of something takes it whether it
 * succeeds or fails.
 *
 * Threads: every callback and host table slot is tagged with where and when
 * it may run ([thread: …]; the vocabulary is defined at cpex_host_api).
 * Handlers run on several threads at once.
 *
 * Unwinding: no panic or exception may cross from a plugin into the host
 * (it aborts the host); see cpex_handler_fn.
 */
#ifndef CPEX_ABI_H
#define CPEX_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Versions                                                            */
/* ------------------------------------------------------------------ */

/** Major version: changes only when the ABI breaks. */
#define CPEX_ABI_VERSION_MAJOR 1u
/** Minor version: grows when something is appended (docs/abi.md lists what each added). */
#define CPEX_ABI_VERSION_MINOR 1u
/** Pack a major.minor pair into one uint32_t (major in the high 16 bits). */
#define CPEX_ABI_MAKE_VERSION(major, minor)                                                        \
    ((uint32_t)(((uint32_t)(major) << 16) | ((uint32_t)(minor)&0xffffu)))
/** The ABI version this header describes. */
#define CPEX_ABI_VERSION CPEX_ABI_MAKE_VERSION(CPEX_ABI_VERSION_MAJOR, CPEX_ABI_VERSION_MINOR)
/** Major part of a packed version. */
#define CPEX_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
/** Minor part of a packed version. */
#define CPEX_ABI_MINOR(v) ((uint32_t)(v)&0xffffu)

/* ------------------------------------------------------------------ */
/* Strings and JSON                                                    */
/* ------------------------------------------------------------------ */

/**
 * A string as pointer + length. When the host produces one, `ptr` is also
 * NUL-terminated (ptr[len] == '\0') so C plugins may use it directly.
 * `ptr == NULL` means "absent" (an optional field that is not set);
 * an empty string has a non-NULL ptr and len 0.
 */
typedef struct cpex_str {
    const char *ptr;
    size_t len;
} cpex_str;

/**
 * An opaque JSON value owned by the host. Plugins read and build JSON only
 * through the host table (json_* slots). A `const cpex_json *` is borrowed;
 * a `cpex_json *` returned by a json_*_new slot is owned by the caller until
 * it is handed to a slot documented as "takes ownership", or freed with
 * json_free.
 */
typedef struct cpex_json cpex_json;

/** JSON value types, as returned by the json_type slot. */
enum cpex_json_type {
    CPEX_JSON_INVALID = 0, /* NULL pointer */
    CPEX_JSON_NULL = 1,
    CPEX_JSON_BOOL = 2,
    CPEX_JSON_INTEGER = 3,
    CPEX_JSON_REAL = 4,
    CPEX_JSON_STRING = 5,
    CPEX_JSON_ARRAY = 6,
    CPEX_JSON_OBJECT = 7
};

/* ------------------------------------------------------------------ */
/* CMF messages (read directly by plugins; host-owned)                 */
/* ------------------------------------------------------------------ */

/** Role of a CMF message. */
enum cpex_cmf_role {
    CPEX_ROLE_SYSTEM = 0,
    CPEX_ROLE_DEVELOPER = 1,
    CPEX_ROLE_USER = 2,
    CPEX_ROLE_ASSISTANT = 3,
    CPEX_ROLE_TOOL = 4
};

/** Kind of a content part; the JSON `content_type`. */
enum cpex_cmf_part_kind {
    CPEX_PART_TEXT = 0,
    CPEX_PART_THINKING = 1,
    CPEX_PART_TOOL_CALL = 2,
    CPEX_PART_TOOL_RESULT = 3,
    CPEX_PART_RESOURCE = 4,
    CPEX_PART_RESOURCE_REF = 5,
    CPEX_PART_PROMPT_REQUEST = 6,
    CPEX_PART_PROMPT_RESULT = 7,
    CPEX_PART_IMAGE = 8,
    CPEX_PART_VIDEO = 9,
    CPEX_PART_AUDIO = 10,
    CPEX_PART_DOCUMENT = 11
};
/** Number of part kinds in this ABI version. */
#define CPEX_PART_KIND_COUNT 12u

/** Resource types of resource and resource_ref parts. */
enum cpex_resource_type {
    CPEX_RESOURCE_FILE = 0, /* the default */
    CPEX_RESOURCE_BLOB = 1,
    CPEX_RESOURCE_URI = 2,
    CPEX_RESOURCE_DATABASE = 3,
    CPEX_RESOURCE_API = 4,
    CPEX_RESOURCE_MEMORY = 5,
    CPEX_RESOURCE_ARTIFACT = 6
};

/** Body of a tool_call part. */
typedef struct cpex_cmf_tool_call {
    uint32_t struct_size;
    uint32_t reserved;
    cpex_str tool_call_id;
    cpex_str name;
    const cpex_json *arguments; /* always an object (empty when none) */
    cpex_str namespace_;        /* optional */
} cpex_cmf_tool_call;

/** Body of a tool_result part. */
typedef struct cpex_cmf_tool_result {
    uint32_t struct_size;
    uint32_t is_error; /* 0 or 1 */
    cpex_str tool_call_id;
    cpex_str tool_name;
    const cpex_json *content; /* any JSON value; never NULL (JSON null when empty) */
} cpex_cmf_tool_result;

/** Body of a resource part. Integers of -1 mean "absent". */
typedef struct cpex_cmf_resource {
    uint32_t struct_size;
    uint32_t resource_type; /* enum cpex_resource_type */
    cpex_str resource_request_id;
    cpex_str uri;
    cpex_str name;                /* optional */
    cpex_str description;         /* optional */
    cpex_str content;             /* optional text content */
    cpex_str blob;                /* optional raw bytes (ptr may hold NULs; len counts) */
    cpex_str mime_type;           /* optional */
    int64_t size_bytes;           /* -1 when absent */
    const cpex_json *annotations; /* always an object */
    cpex_str version;             /* optional */
} cpex_cmf_resource;

/** Body of a resource_ref part. */
typedef struct cpex_cmf_resource_ref {
    uint32_t struct_size;
    uint32_t resource_type; /* enum cpex_resource_type */
    cpex_str resource_request_id;
    cpex_str uri;
    cpex_str name;       /* optional */
    int64_t range_start; /* -1 when absent */
    int64_t range_end;   /* -1 when absent */
    cpex_str selector;   /* optional */
} cpex_cmf_resource_ref;

/** Body of a prompt_request part. */
typedef struct cpex_cmf_prompt_request {
    uint32_t struct_size;
    uint32_t reserved;
    cpex_str prompt_request_id;
    cpex_str name;
    const cpex_json *arguments; /* always an object */
    cpex_str server_id;         /* optional */
} cpex_cmf_prompt_request;

struct cpex_cmf_message;

/** Body of a prompt_result part. */
typedef struct cpex_cmf_prompt_result {
    uint32_t struct_size;
    uint32_t is_error; /* 0 or 1 */
    cpex_str prompt_request_id;
    cpex_str prompt_name;
    size_t message_count;
    const struct cpex_cmf_message *const *messages;
    cpex_str content;       /* optional */
    cpex_str error_message; /* optional */
} cpex_cmf_prompt_result;

/** Body of image, video, audio and document parts. */
typedef struct cpex_cmf_media {
    uint32_t struct_size;
    uint32_t reserved;
    union {
        cpex_str type;     /* "url" or "base64" (the 1.0 name) */
        cpex_str encoding; /* the same field, under a name that is not a keyword in
                              Rust or Go (1.1) */
    };
    cpex_str data;
    cpex_str media_type; /* optional */
    int64_t duration_ms; /* video and audio; -1 when absent */
    cpex_str title;      /* document; optional */
} cpex_cmf_media;

/**
 * One content part. `text` is set for text and thinking parts; `body` points
 * to the kind's struct for every other kind (cpex_cmf_tool_call for
 * CPEX_PART_TOOL_CALL, and so on; cpex_cmf_media for the four media kinds).
 * plugin.h has typed accessors that check the kind.
 */
typedef struct cpex_cmf_part {
    uint32_t struct_size;
    uint32_t kind; /* enum cpex_cmf_part_kind */
    cpex_str text;
    const void *body;
} cpex_cmf_part;

/** A CMF message: role and ordered content parts. */
typedef struct cpex_cmf_message {
    uint32_t struct_size;
    uint32_t role;           /* enum cpex_cmf_role */
    cpex_str schema_version; /* "2.0" unless the input said otherwise */
    cpex_str channel;        /* optional: "analysis", "commentary" or "final" */
    size_t part_count;
    const cpex_cmf_part *parts;
} cpex_cmf_message;

/* ------------------------------------------------------------------ */
/* Payloads                                                            */
/* ------------------------------------------------------------------ */

/** Built-in payload kinds. Host-defined types use CPEX_PAYLOAD_CUSTOM. */
enum cpex_payload_kind {
    CPEX_PAYLOAD_CMF = 1,   /* data is a const cpex_cmf_message * */
    CPEX_PAYLOAD_JSON = 2,  /* data is a const cpex_json * */
    CPEX_PAYLOAD_CUSTOM = 3 /* data is a host-defined type named by type_name */
};

/** A payload: what a hook carries. Host-owned and read-only to plugins. */
typedef struct cpex_payload {
    uint32_t struct_size;
    uint32_t kind;      /* enum cpex_payload_kind */
    cpex_str type_name; /* "cmf", "json", or the host-defined type's name */
    const void *data;
} cpex_payload;

/* ------------------------------------------------------------------ */
/* Modes, decisions, statuses                                          */
/* ------------------------------------------------------------------ */

/** Execution mode (phase) of a plugin. */
enum cpex_mode {
    CPEX_MODE_SEQUENTIAL = 0,
    CPEX_MODE_TRANSFORM = 1,
    CPEX_MODE_AUDIT = 2,
    CPEX_MODE_CONCURRENT = 3,
    CPEX_MODE_FIRE_AND_FORGET = 4,
    CPEX_MODE_DISABLED = 5
};

/** What a handler returns. Any other value is treated as CPEX_ERROR. */
enum cpex_decision {
    CPEX_ALLOW = 0, /* continue; modifications made through the host table apply */
    CPEX_DENY = 1,  /* stop the pipeline (where the mode may block); the violation
                       set with the `deny` slot, or `plugin_deny` when none */
    CPEX_ERROR = 2  /* the handler failed; message set with `set_error`; the
                       plugin's on_error decides what happens */
};

/** Status codes returned by host table slots. */
enum cpex_host_status {
    CPEX_HOST_OK = 0,
    CPEX_HOST_EINVAL = 1,    /* bad argument (NULL, wrong kind, out of range) */
    CPEX_HOST_ENOMEM = 2,    /* allocation failed */
    CPEX_HOST_EDENIED = 3,   /* the plugin's capabilities or mode do not allow it;
                               the host also records a soft error */
    CPEX_HOST_ENOTFOUND = 4, /* absent, or not visible to this plugin */
    /* since 1.1 (state slots): */
    CPEX_HOST_EUNAVAILABLE = 5, /* the state backend is down or unreachable (also while
                                   the host waits before reconnecting); nothing was done */
    CPEX_HOST_ETIMEOUT = 6,     /* the state backend did not answer in time (its command
                                   timeout or the call's deadline); the change may or may
                                   not have been applied */
    CPEX_HOST_ETYPE = 7         /* the key holds another kind of value (a set where text
                                   or a counter is expected, text that is not an integer) */
};

/** Status an entry point (create) returns. */
enum cpex_create_status {
    CPEX_CREATE_OK = 0,
    CPEX_CREATE_ABI_MISMATCH = 1,    /* the plugin cannot speak the host's ABI */
    CPEX_CREATE_CONFIG_REJECTED = 2, /* the plugin rejected its config block */
    CPEX_CREATE_INIT_FAILED = 3      /* construction failed for another reason */
};

/*
 * The 1.0 spellings of the create statuses, kept so that code written
 * against ABI 1.0 still builds. They shared the prefix CPEX_PLUGIN_ with
 * the lifecycle states of manager.h; new code uses CPEX_CREATE_*.
 */
#define cpex_plugin_status cpex_create_status
#define CPEX_PLUGIN_OK CPEX_CREATE_OK
#define CPEX_PLUGIN_ABI_MISMATCH CPEX_CREATE_ABI_MISMATCH
#define CPEX_PLUGIN_CONFIG_REJECTED CPEX_CREATE_CONFIG_REJECTED
#define CPEX_PLUGIN_INIT_FAILED CPEX_CREATE_INIT_FAILED

/** Context scopes for ctx_get / ctx_set. */
enum cpex_ctx_scope {
    CPEX_CTX_LOCAL = 0, /* this plugin's own state, threaded from pre to post hook */
    CPEX_CTX_GLOBAL = 1 /* shared by the plugins of one invoke */
};

/** Extension fields readable through ext_get / ext_count / ext_item. */
enum cpex_ext_field {
    /* meta: always readable */
    CPEX_EXT_ENTITY_TYPE = 1,
    CPEX_EXT_ENTITY_NAME = 2,
    CPEX_EXT_TAGS = 3, /* list */
    /* security */
    CPEX_EXT_SUBJECT_ID = 10,     /* read_subject */
    CPEX_EXT_SUBJECT_TYPE = 11,   /* read_subject */
    CPEX_EXT_ROLES = 12,          /* list; read_roles */
    CPEX_EXT_LABELS = 13,         /* list; read_labels */
    CPEX_EXT_CLASSIFICATION = 14, /* read_classification */
    /* request: read_request */
    CPEX_EXT_REQUEST_ID = 20,
    CPEX_EXT_TRACE_ID = 21,
    CPEX_EXT_SPAN_ID = 22,
    CPEX_EXT_ENVIRONMENT = 23,
    CPEX_EXT_TIMESTAMP = 24,
    /* ---- since 1.1: routing ---- */
    CPEX_EXT_SCOPE = 4 /* meta: the tenant or deployment scope routes select on; always readable */
};

/** Header sets of the http extension. */
enum cpex_header_set { CPEX_HEADERS_REQUEST = 0, CPEX_HEADERS_RESPONSE = 1 };

/** Log levels for the host's log slot. */
enum cpex_log_level {
    CPEX_LOG_DEBUG = 0,
    CPEX_LOG_INFO = 1,
    CPEX_LOG_WARN = 2,
    CPEX_LOG_ERROR = 3
};

/* Limits of the state slots (since 1.1; docs/state.md). A key is 1 to
   CPEX_STATE_KEY_MAX bytes, none of them a control byte, space or DEL
   (0x00-0x20, 0x7f); values and set members are any bytes. */
#define CPEX_STATE_KEY_MAX 1024u
#define CPEX_STATE_VALUE_MAX (1024u * 1024u)
#define CPEX_STATE_MEMBER_MAX 4096u
/** Longest time to live a state slot takes, in milliseconds (about 31 years). */
#define CPEX_STATE_TTL_MAX_MS INT64_C(1000000000000)

/* ------------------------------------------------------------------ */
/* One handler call                                                    */
/* ------------------------------------------------------------------ */

/**
 * What a handler is called with. Host-owned, valid only during the call,
 * and only on the thread running the handler: the host reuses it for the
 * next plugin once the handler returns. Pass the pointer back to host table
 * slots that take a `call`: it is how the host knows which plugin, phase
 * and pipeline a request belongs to. Never keep it, never hand it to
 * another thread.
 */
typedef struct cpex_call {
    uint32_t struct_size;
    uint32_t mode;               /* enum cpex_mode: the phase this call runs in */
    cpex_str hook;               /* hook name */
    cpex_str plugin_name;        /* the operator's name for this plugin */
    const cpex_payload *payload; /* as modified by earlier plugins */
    int64_t deadline_ns;         /* CLOCK_MONOTONIC nanoseconds; return before it (for
                                   timeouts of a second or more it may lie a few ms
                                   early: the host times those with a clock word it
                                   keeps current every 2 ms, docs/pipeline.md) */
    void *host_private;          /* the host's; do not touch */
} cpex_call;

/**
 * A handler: one function of a plugin bound to one hook.
 * `instance` is the pointer the plugin registered. Returns enum cpex_decision.
 *
 * [thread: any, concurrent] One instance's handlers run on several threads
 * at once: on the host threads that invoke hooks (sequential, transform and
 * audit phases) and on the manager's worker threads (concurrent and
 * fire-and-forget phases), for many invokes at a time; a concurrent or
 * fire-and-forget handler that overran its deadline may still run after its
 * invoke returned. Never before `initialize` returned, never once `shutdown`
 * began. Guard what the instance shares between calls.
 *
 * Nothing may unwind out of a handler (nor out of an entry point or a
 * callback): a Rust panic, a C++ exception or a Go panic that crosses into
 * the host aborts the host process. Catch it and return CPEX_ERROR after
 * `set_error` — Rust: std::panic::catch_unwind around the body of an
 * `extern "C" fn` (with panic = "abort" nothing can be caught: every panic
 * aborts); C++: a noexcept function whose body is try { … } catch (...);
 * Go: a deferred recover() in every exported function. docs/abi.md,
 * "Unwinding", has the details.
 */
typedef int32_t (*cpex_handler_fn)(void *instance, const cpex_call *call);

/* ------------------------------------------------------------------ */
/* The host table                                                      */
/* ------------------------------------------------------------------ */

/**
 * Functions a plugin calls on the host. Handed to the entry point; valid for
 * the life of the plugin instance.
 *
 * Growth. The table is append-only, as every minor of major 1 keeps it:
 * never reorder a slot, never remove one, never change a signature; a new
 * slot goes at the end, in a group marked with the ABI version that added
 * it ("ABI 1.0" below). A plugin built against an older header sees a prefix
 * of the table; a plugin that calls a slot newer than the minor it requires
 * checks first that the host has it: CPEX_HOST_HAS(host, slot) (plugin.h)
 * compares `struct_size` with the slot's offset.
 *
 * Threads. Each slot is tagged with where and when it may be called:
 *
 *   [thread: any, any time]   from any thread (the host's, or one the plugin
 *                             started), inside or outside a handler call,
 *                             concurrently with itself. The slot touches only
 *                             the values it is given; a value is not locked,
 *                             so one thread at a time changes or frees it
 *                             (reading a borrowed value from several threads
 *                             while it is valid is fine).
 *   [thread: any, any time; call: only during it]
 *                             the same, and a non-NULL `call` must be a call
 *                             whose handler is still running.
 *   [thread: caller, during the call]
 *                             needs the `call` a handler was given: only on
 *                             the thread running that handler and only until
 *                             it returns (the slot writes the call's own
 *                             state, which the host reuses afterwards).
 *   [thread: any, during the call]
 *                             needs the `call` a handler was given, from any
 *                             thread (the handler's own helpers too), but
 *                             only until that handler returns.
 *
 * The plugin's own functions are tagged the same way:
 *
 *   [thread: any, concurrent] the host may run it on any of its threads, and
 *                             on several at once (handlers).
 *   [thread: any, exclusive]  the host may run it on any of its threads, but
 *                             never at the same time as another callback or
 *                             handler of the same instance (the entry point,
 *                             initialize, shutdown, destroy).
 *
 * Ownership: a slot documented "takes ownership" takes the value whether it
 * succeeds or fails; the plugin never frees or uses it again. Strings passed
 * in as `const char *` are NUL-terminated and copied by the host.
 */
typedef struct cpex_host_api {
    uint32_t struct_size;
    uint32_t abi_version;      /* the host's CPEX_ABI_VERSION */
    const void *host_identity; /* one address per host library; lets an SDK
                                   notice a second copy of the host */

    /* ---- logging (ABI 1.0) ---- */
    /**
     * [thread: any, any time; call: only during it] Log a message under the
     * plugin's name. With `call` NULL: inside create, initialize, shutdown
     * and destroy the line still goes to the manager's log under the
     * plugin's name; from a thread of the plugin's own it goes to standard
     * error (warnings and errors only).
     */
    void (*log)(const cpex_call *call, uint32_t level, const char *message);

    /* ---- result of the current call (ABI 1.0) ---- */
    /**
     * [thread: caller, during the call] Describe the violation for a
     * CPEX_DENY return. `code` and `reason` are required; `description` may
     * be NULL; `details` (an object or NULL): takes ownership. A second call
     * replaces the first.
     */
    int32_t (*deny)(const cpex_call *call, const char *code, const char *reason,
                    const char *description, cpex_json *details);
    /** [thread: caller, during the call] Describe the failure for a CPEX_ERROR return. */
    int32_t (*set_error)(const cpex_call *call, const char *message);
    /** [thread: caller, during the call] Add a metadata key to the result
        (takes ownership of `value`). */
    int32_t (*set_metadata)(const cpex_call *call, const char *key, cpex_json *value);
    /**
     * [thread: caller, during the call] Replace the payload with a CMF
     * message built with the cmf_* slots (takes ownership). Refused,
     * recorded and freed in audit, concurrent and fire-and-forget modes, or
     * when the hook's payload is not CMF.
     */
    int32_t (*set_payload_cmf)(const cpex_call *call, struct cpex_cmf_message *message);
    /**
     * [thread: caller, during the call] Replace a JSON payload (takes
     * ownership); same rules as set_payload_cmf.
     */
    int32_t (*set_payload_json)(const cpex_call *call, cpex_json *document);

    /* ---- reading JSON (ABI 1.0); every slot [thread: any, any time] ---- */
    uint32_t (*json_type)(const cpex_json *value);
    /** String value and its length (may be NULL); NULL if not a string. */
    const char *(*json_string)(const cpex_json *value, size_t *len);
    int64_t (*json_integer)(const cpex_json *value); /* 0 if not an integer */
    double (*json_real)(const cpex_json *value);     /* integers convert; 0 otherwise */
    int32_t (*json_bool)(const cpex_json *value);    /* 1 for true, else 0 */
    size_t (*json_size)(const cpex_json *value);     /* array or object length */
    const cpex_json *(*json_array_get)(const cpex_json *array, size_t index);
    const cpex_json *(*json_object_get)(const cpex_json *object, const char *key);
    /**
     * The index-th member of an object in insertion order: writes its key
     * to *key (borrowed) and returns its value; NULL past the end.
     */
    const cpex_json *(*json_object_at)(const cpex_json *object, size_t index, const char **key);
    /** Serialize compactly; the caller frees the text with the `free` slot. */
    char *(*json_dump)(const cpex_json *value);

    /* ---- building JSON (ABI 1.0; caller owns the result); every slot
       [thread: any, any time] ---- */
    cpex_json *(*json_parse)(const char *text, size_t len); /* NULL on bad JSON */
    cpex_json *(*json_new_object)(void);
    cpex_json *(*json_new_array)(void);
    cpex_json *(*json_new_string)(const char *text, size_t len);
    cpex_json *(*json_new_integer)(int64_t value);
    cpex_json *(*json_new_real)(double value);
    cpex_json *(*json_new_bool)(int32_t value);
    cpex_json *(*json_new_null)(void);
    cpex_json *(*json_copy)(const cpex_json *value); /* deep copy */
    /** Set a member (takes ownership of `value`). */
    int32_t (*json_object_set)(cpex_json *object, const char *key, cpex_json *value);
    /** Append (takes ownership of `value`). */
    int32_t (*json_array_append)(cpex_json *array, cpex_json *value);
    void (*json_free)(cpex_json *value);
    /** Free memory the host returned as `char *` (json_dump, cmf_to_json). */
    void (*free)(void *memory);

    /* ---- CMF messages (ABI 1.0; caller owns what these return); every
       slot [thread: any, any time] ---- */
    struct cpex_cmf_message *(*cmf_clone)(const struct cpex_cmf_message *message);
    struct cpex_cmf_message *(*cmf_parse)(const char *json, size_t len);
    char *(*cmf_to_json)(const struct cpex_cmf_message *message);
    /** Replace the text of a text or thinking part. */
    int32_t (*cmf_set_text)(struct cpex_cmf_message *message, size_t part, const char *text,
                            size_t len);
    /** Replace the arguments of a tool_call part (takes ownership of `arguments`). */
    int32_t (*cmf_set_tool_arguments)(struct cpex_cmf_message *message, size_t part,
                                      cpex_json *arguments);
    /** Append a text (or thinking) part. */
    int32_t (*cmf_append_text)(struct cpex_cmf_message *message, uint32_t kind, const char *text,
                               size_t len);
    int32_t (*cmf_remove_part)(struct cpex_cmf_message *message, size_t part);
    void (*cmf_free)(struct cpex_cmf_message *message);

    /* ---- extensions (ABI 1.0; filtered by the plugin's capabilities);
       every slot [thread: caller, during the call] ---- */
    /**
     * Read a single-valued field. CPEX_HOST_ENOTFOUND when it is unset or
     * the plugin may not see it (the two are indistinguishable on purpose).
     */
    int32_t (*ext_get)(const cpex_call *call, uint32_t field, cpex_str *out);
    /** Number of items of a list field (tags, roles, labels); 0 when hidden. */
    size_t (*ext_count)(const cpex_call *call, uint32_t field);
    int32_t (*ext_item)(const cpex_call *call, uint32_t field, size_t index, cpex_str *out);
    /** Look a header up, case-insensitively. Needs read_headers. */
    int32_t (*ext_header)(const cpex_call *call, uint32_t set, const char *name, cpex_str *out);
    /** Number of headers of a set; 0 when hidden. */
    size_t (*ext_header_count)(const cpex_call *call, uint32_t set);
    int32_t (*ext_header_at)(const cpex_call *call, uint32_t set, size_t index, cpex_str *name,
                             cpex_str *value);
    /** A custom value (borrowed, valid during the call). Needs read_custom. */
    const cpex_json *(*ext_custom)(const cpex_call *call, const char *key);
    /** Set a header. Needs write_headers and a sequential or transform mode. */
    int32_t (*ext_set_header)(const cpex_call *call, uint32_t set, const char *name,
                              const char *value);
    /** Add a security label. Needs append_labels and a serial mode. */
    int32_t (*ext_append_label)(const cpex_call *call, const char *label);
    /** Always refused: labels only grow. Recorded as a soft error. */
    int32_t (*ext_remove_label)(const cpex_call *call, const char *label);
    /** Set a custom value (takes ownership; NULL deletes). Needs write_custom. */
    int32_t (*ext_set_custom)(const cpex_call *call, const char *key, cpex_json *value);

    /* ---- context (ABI 1.0); every slot [thread: caller, during the call] ---- */
    /** Read a context value (borrowed, valid during the call); NULL if unset. */
    const cpex_json *(*ctx_get)(const cpex_call *call, uint32_t scope, const char *key);
    /**
     * Write a context value (takes ownership; NULL deletes). Persists in
     * sequential and transform modes; elsewhere it lives until the call ends.
     */
    int32_t (*ctx_set)(const cpex_call *call, uint32_t scope, const char *key, cpex_json *value);

    /* ---- editing the call's CMF payload in place (ABI 1.1); every slot
       [thread: caller, during the call] ---- */
    /*
     * Change one part of the payload the call carries, without cloning the
     * message first: the first edit of a call makes its working copy (one
     * allocation whatever the payload's size: the parts' content is shared,
     * and a changed part gets content of its own), and from then on
     * `call->payload` shows the handler its edits. When the handler allows,
     * the edited message is the payload the next plugins see, exactly as if
     * it had been handed to set_payload_cmf. Only sequential and transform
     * modes may modify: elsewhere a slot returns CPEX_HOST_EDENIED and the
     * host records a dropped_modification; a hook whose payload is not CMF
     * gives CPEX_HOST_EINVAL (recorded too). CPEX_HOST_EINVAL also for a part
     * index out of range or of another kind. A slot that "takes ownership"
     * takes the value on every path.
     */
    /** Replace the text of text/thinking part `part`. */
    int32_t (*payload_set_text)(const cpex_call *call, size_t part, const char *text, size_t len);
    /** Replace the arguments of tool_call part `part` (an object; takes ownership). */
    int32_t (*payload_set_tool_arguments)(const cpex_call *call, size_t part, cpex_json *arguments);
    /** Replace the content of tool_result part `part` (any value; takes ownership). */
    int32_t (*payload_set_tool_result_content)(const cpex_call *call, size_t part,
                                               cpex_json *content);
    /** Append a text (or thinking) part. */
    int32_t (*payload_append_text)(const cpex_call *call, uint32_t kind, const char *text,
                                   size_t len);
    /** Remove part `part`. */
    int32_t (*payload_remove_part)(const cpex_call *call, size_t part);
    /**
     * [thread: any, any time] Replace the content of tool_result part `part`
     * of a message the plugin owns (a clone); takes ownership of `content`.
     * The 1.0 table had no way to do it short of a JSON round trip.
     */
    int32_t (*cmf_set_tool_result_content)(struct cpex_cmf_message *message, size_t part,
                                           cpex_json *content);

    /* ---- shared state (ABI 1.1); every slot [thread: any, during the call]:
       from any thread while the handler of `call` runs (it may fan out to
       its own threads and wait for them), never after it returned ---- */
    /*
     * Shared state that outlives calls and, with the Redis backend, is shared
     * by every replica of the gateway (docs/state.md). Keys live in the
     * plugin's namespace: its configured name, or the `state_namespace` of
     * its YAML entry; two plugins never see each other's keys unless they
     * name the same namespace. `key` is NUL-terminated, 1 to
     * CPEX_STATE_KEY_MAX bytes, no control bytes, spaces or DEL.
     *
     * Any mode may use them.
     *
     * Time: each slot returns before call->deadline_ns (and within the
     * backend's command timeout): CPEX_HOST_ETIMEOUT when the backend did
     * not answer in time, CPEX_HOST_EUNAVAILABLE when it is down. These are
     * the plugin's to decide on (fail closed or open); the host counts them
     * and logs once per outage, not per call.
     *
     * ttl_ms: 0 means no expiry; 1 to CPEX_STATE_TTL_MAX_MS otherwise.
     * Other statuses: CPEX_HOST_EINVAL (bad key, size or argument; a call
     * not in progress), CPEX_HOST_ENOMEM (the memory backend is full, or
     * the host ran out of memory), CPEX_HOST_ETYPE.
     */
    /**
     * Read a value. On CPEX_HOST_OK *value holds a copy (NUL-terminated;
     * may hold NULs) that the plugin releases with the `free` slot; a
     * counter reads as its decimal text. CPEX_HOST_ENOTFOUND when unset or
     * expired ({NULL, 0}).
     */
    int32_t (*state_get)(const cpex_call *call, const char *key, cpex_str *value);
    /** Store `len` bytes (at most CPEX_STATE_VALUE_MAX), replacing any value of any kind;
        the key expires after ttl_ms (0: never). */
    int32_t (*state_set)(const cpex_call *call, const char *key, const void *value, size_t len,
                         int64_t ttl_ms);
    /**
     * Add `delta` to a counter atomically and write the new value to *value
     * (may be NULL). A missing key counts from 0 and is created with ttl_ms
     * as its time to live (0: none) in the same atomic step; an existing
     * key keeps its expiry. *ttl_left_ms (may be NULL) gets the time the
     * key has left after the step, -1 when it never expires. Text that is
     * not a 64-bit integer is CPEX_HOST_ETYPE; an overflow CPEX_HOST_EINVAL.
     */
    int32_t (*state_incr)(const cpex_call *call, const char *key, int64_t delta, int64_t ttl_ms,
                          int64_t *value, int64_t *ttl_left_ms);
    /** Remove a key of any kind. CPEX_HOST_ENOTFOUND when there was none. */
    int32_t (*state_delete)(const cpex_call *call, const char *key);
    /**
     * Add `len` bytes (at most CPEX_STATE_MEMBER_MAX) to the set at `key`
     * (created when missing; adding a member twice keeps one). ttl_ms > 0
     * sets the set's time to live on every add (a session that stays
     * active stays); 0 leaves its expiry as it is.
     */
    int32_t (*state_set_add)(const cpex_call *call, const char *key, const void *member, size_t len,
                             int64_t ttl_ms);
    /**
     * The members of the set at `key`, in no particular order. On
     * CPEX_HOST_OK *members is one block the plugin releases with the `free`
     * slot (each member NUL-terminated), *count their number; a missing set
     * is an empty one (*members NULL, *count 0).
     */
    int32_t (*state_set_members)(const cpex_call *call, const char *key, cpex_str **members,
                                 size_t *count);

    /* New slots go here, in a group marked with the ABI version that adds
       them (and CPEX_ABI_VERSION_MINOR grows by one). */
} cpex_host_api;

/* ------------------------------------------------------------------ */
/* Execution records and verdicts                                      */
/* ------------------------------------------------------------------ */

/* ---- audit (ABI 1.1) ---- */

/** How one handler call ended (cpex_execution_record.status). */
enum cpex_exec_status {
    CPEX_EXEC_COMPLETED = 0,       /* the handler returned in time (allow or deny) */
    CPEX_EXEC_ERROR = 1,           /* it returned CPEX_ERROR or an unknown decision */
    CPEX_EXEC_TIMEOUT = 2,         /* it overran its deadline; its result was discarded */
    CPEX_EXEC_CANCELLED = 3,       /* concurrent: no longer awaited (a deny decided first) */
    CPEX_EXEC_NOT_INITIALIZED = 4, /* the plugin was not initialized: not called, fails closed */
    CPEX_EXEC_NOT_STARTED = 5      /* a worker-thread call still queued at its deadline: not
                                      called (every worker was busy; not the plugin's fault) */
};

/**
 * What one dispatched handler call did: one record per call, in execution
 * order (docs/observability.md maps every field to OpenTelemetry). Every
 * string is owned by whoever handed the record out (the pipeline result,
 * or the verdict during a verdict call) and is NUL-terminated; an absent
 * optional string has ptr NULL. Records are laid out in an array whose
 * stride is given beside it (record_size / execution_size): index it
 * with that stride, never with sizeof, so later minors may append fields.
 */
typedef struct cpex_execution_record {
    uint32_t struct_size;
    uint32_t status;              /* enum cpex_exec_status */
    uint32_t mode;                /* enum cpex_mode: the configured one (also when this call
                                   disabled the plugin) */
    int32_t requested;            /* what the handler returned: CPEX_ALLOW or CPEX_DENY; -1 when
                                   there is no result (error, timeout, not called) */
    uint32_t effective;           /* what took effect for the pipeline: CPEX_ALLOW or CPEX_DENY */
    int32_t matched;              /* 1: the plugin acted (asked to deny or had a change accepted);
                                   0: it did not; -1: unknown (no result) */
    uint32_t applied;             /* 1: it changed the payload, the extensions or the decision */
    uint32_t payload_modified;    /* 1: its payload change was accepted */
    uint32_t extensions_modified; /* 1: its extension writes were accepted */
    uint32_t config_key_count;    /* entries of config_keys (at most 64) */
    int64_t start_unix_ns;        /* wall clock when the handler was called (ns since the Unix
                                   epoch); 0 when it was not called */
    int64_t duration_ns;          /* time inside the handler (queue time excluded); 0 when not
                                   called */
    cpex_str plugin_name;         /* the operator's name */
    cpex_str plugin_kind;         /* the configured kind; ptr NULL when none was given */
    cpex_str hook;                /* the invoked hook name */
    cpex_str code;                /* the violation or record code of the outcome (see
                                   docs/pipeline.md); ptr NULL for a plain allow */
    cpex_str reason;              /* the violation reason or error text: at most 256 bytes in
                                   all (a longer text is cut at a UTF-8 boundary and ends
                                   with an ellipsis, U+2026) */
    cpex_str trace_id;            /* the request extension's trace id; ptr NULL when unset
                                   (and always in a verdict: a sink reads it with ext_get) */
    cpex_str span_id;             /* the request extension's span id; as trace_id */
    const cpex_str *config_keys;  /* names (never values) of the plugin's top-level config keys */
} cpex_execution_record;

/**
 * The final verdict of one invoke, as an audit sink receives it: after the
 * decision, read-only. Host-owned, valid during the verdict call only. The
 * final payload is also `call->payload`; the final extensions are read
 * through the ext_* slots with the call, filtered by the sink's
 * capabilities as everywhere.
 */
typedef struct cpex_verdict {
    uint32_t struct_size;
    uint32_t decision;       /* CPEX_ALLOW or CPEX_DENY: the invoke's outcome */
    cpex_str hook;           /* the invoked hook name */
    cpex_str violation_code; /* when denied; ptr NULL when allowed */
    cpex_str violation_reason;
    cpex_str violation_description; /* optional */
    cpex_str violation_plugin;      /* the operator's name of the plugin that denied (optional) */
    const cpex_json *violation_details; /* an object when denied, else NULL */
    const cpex_payload *payload;        /* the final payload (NULL when the invoke carried none) */
    uint32_t payload_modified;          /* 1: some plugin's payload change was accepted */
    uint32_t extensions_modified;       /* 1: some plugin's extension write was accepted */
    uint32_t record_size;               /* stride of `records` in bytes */
    uint32_t reserved;                  /* 0 */
    size_t record_count;
    const cpex_execution_record *records; /* every handler call of the invoke, fire-and-forget
                                             ones included, in execution order */
    int64_t time_unix_ns;                 /* wall clock when the decision was final */
} cpex_verdict;

/**
 * An audit sink's verdict handler: sees the final verdict of every invoke
 * of the hooks it observes, allowed and denied, and cannot change anything
 * (its modifications are refused and recorded, a deny is ignored and
 * recorded). Returns CPEX_ALLOW, or CPEX_ERROR after `set_error` (recorded
 * in the background error log; on_error: disable stops the sink).
 *
 * [thread: any, concurrent] Runs on the manager's audit thread, after the
 * invoke returned: verdicts arrive in the order they were decided. Never
 * before `initialize` returned, never once `shutdown` began (every verdict
 * queued before shutdown is delivered first). `call->mode` is
 * CPEX_MODE_AUDIT and the call's slots work as in an audit-mode handler.
 */
typedef int32_t (*cpex_verdict_fn)(void *instance, const cpex_call *call,
                                   const cpex_verdict *verdict);

/** Record `index` of a verdict (laid out with the verdict's record_size as
 *  stride), or NULL past the end. For sinks in plugins and in hosts. */
static inline const cpex_execution_record *cpex_verdict_record(const cpex_verdict *verdict,
                                                               size_t index)
{
    if (!verdict || index >= verdict->record_count || !verdict->records)
        return NULL;
    return (const cpex_execution_record *)(const void *)((const char *)verdict->records +
                                                         index * verdict->record_size);
}

/* ------------------------------------------------------------------ */
/* Creating a plugin                                                   */
/* ------------------------------------------------------------------ */

/** The configuration handed to an entry point. Host-owned, valid during create. */
typedef struct cpex_plugin_config {
    uint32_t struct_size;
    uint32_t mode; /* enum cpex_mode */
    cpex_str name; /* the operator's name */
    cpex_str kind; /* the full kind string */
    size_t hook_count;
    const cpex_str *hooks;   /* hooks the operator listed */
    cpex_str config_json;    /* the `config:` block as JSON text ("null" when absent) */
    const cpex_json *config; /* the same, readable with the json_* slots */
    int32_t priority;
    uint32_t reserved;
} cpex_plugin_config;

/**
 * One (hook, handler) pair of a registration. It carries no size of its
 * own: the registration's `handler_size` (ABI 1.1) says how large each
 * element of the array is, so a later minor may append fields here.
 */
typedef struct cpex_handler_reg {
    const char *hook; /* hook name (NUL-terminated) */
    union {
        cpex_handler_fn fn;      /* the 1.0 name */
        cpex_handler_fn handler; /* the same field, under a name that is not a keyword in
                                    Rust (1.1) */
    };
    const char *payload_type; /* "cmf", "json", a host type name, or NULL for any */
} cpex_handler_reg;

/**
 * An initializer of one cpex_handler_reg, e.g.
 *     static const cpex_handler_reg handlers[] = {
 *         CPEX_HANDLER("cmf.tool_pre_invoke", on_pre, "cmf")};
 * Since 1.1 the function sits in a union (`fn` / `handler`), so a plain
 * positional initializer {hook, fn, type} still means the same but makes
 * -Wall (-Wmissing-braces) ask for braces around it; this writes them.
 */
#define CPEX_HANDLER(hook, function, payload_type)                                                 \
    {                                                                                              \
        (hook), {(function)}, (payload_type)                                                       \
    }

/**
 * What an entry point fills in on success. The host zero-fills it and sets
 * `struct_size` to its own size before the call; the plugin sets
 * `struct_size` to the size it was built with and `abi_version` to
 * CPEX_ABI_VERSION. Strings and the handler array must stay valid until
 * `destroy` returns (static storage is the usual choice).
 *
 * Ownership: once the entry point returns CPEX_CREATE_OK the host owns the
 * instance, and calls `destroy` exactly once — also when it then refuses
 * the registration (bad size, ABI, handlers, a manifest that disagrees).
 *
 * Threads: the callbacks below are [thread: any, exclusive]: the host may
 * call them on any of its threads (destroy possibly on a worker thread),
 * but never two at once, and never while a handler of the same instance
 * runs. Other instances, of the same library too, run meanwhile.
 */
typedef struct cpex_plugin_registration {
    uint32_t struct_size;
    uint32_t abi_version;
    const char *name;    /* plugin-reported name (diagnostic) */
    const char *version; /* plugin-reported version (diagnostic) */
    void *instance;      /* passed to every callback and handler */
    /** Optional. [thread: any, exclusive] Called once before the first
        handler; non-zero is failure, with a message written into err (at
        most err_cap bytes, NUL-terminated). */
    int32_t (*initialize)(void *instance, char *err, size_t err_cap);
    /** Optional. [thread: any, exclusive] Called once after the last
        handler call returned (background ones included). */
    void (*shutdown)(void *instance);
    /** Optional. [thread: any, exclusive] Releases the instance; nothing is
        called after it. */
    void (*destroy)(void *instance);
    size_t handler_count;
    const cpex_handler_reg *handlers;

    /* ---- ABI 1.1 ---- */
    /**
     * sizeof(cpex_handler_reg) as the plugin was built: the stride of
     * `handlers`. 0 (what a 1.0 plugin's shorter struct reads as) means the
     * 1.0 size, CPEX_HANDLER_REG_SIZE_1_0. The host accepts sizes from the
     * 1.0 size up to 1024 bytes in steps of the struct's alignment, reads
     * the fields it knows, treats fields an older plugin lacks as zero, and
     * refuses an entry whose bytes past the host's own size are not all
     * zero (fields of a newer minor that this host cannot honour). The SDK
     * (cpex/plugin.h) sets it.
     */
    uint32_t handler_size;
    uint32_t reserved; /* 0 */

    /* ---- audit (ABI 1.1) ---- */
    /**
     * Optional: makes the plugin an audit sink (cpex_verdict_fn). It then
     * receives the verdict of every invoke of the hooks listed under its
     * `hooks:`; a plugin in `mode: audit` configured without `hooks:`
     * receives every hook's verdict, and none of its handlers is wired
     * (docs/observability.md). A registration that sets it may have no
     * handlers. The SDK refuses to create a plugin that sets it on a host
     * whose registration is too short to carry it.
     */
    cpex_verdict_fn verdict;
} cpex_plugin_registration;

/**
 * An entry point: `cpex_plugin_create` or `cpex_plugin_create_<entry>`.
 *
 * host_abi: the host's CPEX_ABI_VERSION; host: the host table; config: the
 * plugin's configuration; out: the registration to fill; err/err_cap: a
 * buffer for a message on failure (NUL-terminated, truncated to err_cap).
 * Returns enum cpex_create_status. On failure `out` is ignored and nothing
 * the plugin allocated may remain.
 *
 * [thread: any, exclusive] Called on the thread that loads the
 * configuration. Like every function a plugin exports, it must not let a
 * panic or exception unwind into the host (see cpex_handler_fn).
 */
typedef int32_t (*cpex_plugin_create_fn)(uint32_t host_abi, const cpex_host_api *host,
                                         const cpex_plugin_config *config,
                                         cpex_plugin_registration *out, char *err, size_t err_cap);

/* ------------------------------------------------------------------ */
/* The manifest                                                        */
/* ------------------------------------------------------------------ */

/** One entry of a manifest. Read-only data in the library. */
typedef struct cpex_manifest_entry {
    uint32_t struct_size;
    uint32_t reserved;
    const char *entry; /* C identifier; "" for the default cpex_plugin_create */
    const char *display_name;
    const char *version;
    const char *description;
    size_t hook_count;
    const char *const *hooks; /* hook names this entry serves */
} cpex_manifest_entry;

/**
 * The manifest a library exports as the data symbol `cpex_plugin_list`
 * (type `const cpex_manifest`). Reading it runs no plugin code.
 */
typedef struct cpex_manifest {
    uint32_t struct_size;
    uint32_t abi_version; /* CPEX_ABI_VERSION the library was built with */
    size_t entry_count;
    const cpex_manifest_entry *const *entries;
    const char *build_info; /* free text: compiler, date; may be NULL */
} cpex_manifest;

/*
 * The sizes of the structs a plugin sends, per minor that changed them: the
 * 1.0 sizes are the least a sender of major 1 may present. Spelled as
 * offset + size of the version's last field (not sizeof) so that they stay
 * frozen when a later minor appends fields.
 */
#define CPEX_REGISTRATION_SIZE_1_0                                                                 \
    (offsetof(cpex_plugin_registration, handlers) + sizeof(const cpex_handler_reg *))
#define CPEX_REGISTRATION_SIZE_1_1 (offsetof(cpex_plugin_registration, reserved) + sizeof(uint32_t))
/* The registration's audit group (ABI 1.1): a host whose registration is
 * shorter cannot take a verdict handler. */
#define CPEX_REGISTRATION_SIZE_VERDICT                                                             \
    (offsetof(cpex_plugin_registration, verdict) + sizeof(cpex_verdict_fn))
#define CPEX_HANDLER_REG_SIZE_1_0 (offsetof(cpex_handler_reg, payload_type) + sizeof(const char *))
#define CPEX_MANIFEST_SIZE_1_0 (offsetof(cpex_manifest, build_info) + sizeof(const char *))
#define CPEX_MANIFEST_ENTRY_SIZE_1_0                                                               \
    (offsetof(cpex_manifest_entry, hooks) + sizeof(const char *const *))

/** Name of the default entry point symbol. */
#define CPEX_ENTRY_SYMBOL "cpex_plugin_create"
/** Prefix of named entry point symbols (append the entry name). */
#define CPEX_ENTRY_SYMBOL_PREFIX "cpex_plugin_create_"
/** Name of the manifest data symbol. */
#define CPEX_MANIFEST_SYMBOL "cpex_plugin_list"

#ifdef __cplusplus
}
#endif

#endif /* CPEX_ABI_H */
