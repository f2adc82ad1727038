/*
 * cpex/error.h — status codes and the error object of the host API.
 *
 * Functions that can fail return a cpex_status and, when given a non-NULL
 * `cpex_error *`, fill it with every problem found (not only the first).
 * There is no global error state.
 */
#ifndef CPEX_ERROR_H
#define CPEX_ERROR_H

#include "cpex/export.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status codes of the host API. Zero is success; every error is negative. */
typedef enum cpex_status {
    CPEX_OK = 0,
    CPEX_E_INVALID = -1,   /* a bad argument (NULL where not allowed, bad value) */
    CPEX_E_NOMEM = -2,     /* an allocation failed; nothing changed */
    CPEX_E_CONFIG = -3,    /* the configuration is invalid (see the items) */
    CPEX_E_NOT_FOUND = -4, /* no such plugin, file, factory or hook */
    CPEX_E_EXISTS = -5,    /* the name is already taken */
    CPEX_E_STATE = -6,     /* not allowed in the manager's current state */
    CPEX_E_LOAD = -7,      /* a plugin could not be created (library, entry, ABI) */
    CPEX_E_PLUGIN = -8,    /* a plugin's own initialize failed */
    CPEX_E_IO = -9,        /* a file could not be read */
    CPEX_E_TYPE = -10      /* a payload type does not match */
} cpex_status;

/** One problem. Every string is owned by the error object; any may be NULL. */
typedef struct cpex_error_item {
    cpex_status code;
    char *file;    /* configuration file, when the problem is in one */
    int line;      /* 1-based; 0 when unknown */
    int column;    /* 1-based; 0 when unknown */
    char *plugin;  /* the operator's plugin name, when known */
    char *key;     /* the YAML key, when the problem is about one */
    char *message; /* the full text: "<file>:<line>:<col>: plugin '<p>': <what>; <hint>" */
} cpex_error_item;

/**
 * An error object. Initialize with CPEX_ERROR_INIT or cpex_error_init(),
 * pass to functions, read, then release with cpex_error_cleanup(). A
 * function that succeeds leaves it untouched; one that fails appends items.
 *
 * Growth: `struct_size` is sizeof(cpex_error) as the caller was compiled,
 * set by the initializers. A later libcpex that appends fields writes only
 * those the caller's size covers. An object whose struct_size is below
 * CPEX_ERROR_SIZE_V1 (one that was never initialized) is never written:
 * every function treats it as NULL, and cpex_error_message says so.
 */
typedef struct cpex_error {
    uint32_t struct_size;   /* sizeof(cpex_error) of the caller's build */
    cpex_status code;       /* code of the first item; CPEX_OK when empty */
    size_t count;           /* number of items */
    cpex_error_item *items; /* owned */
    char *text;             /* all messages, one per line; owned; built lazily */
} cpex_error;

/** The size of the first layout: the least struct_size libcpex writes into. */
#define CPEX_ERROR_SIZE_V1 (offsetof(cpex_error, text) + sizeof(char *))

/** Static initializer for an empty error object. */
#define CPEX_ERROR_INIT                                                                            \
    {                                                                                              \
        (uint32_t)sizeof(cpex_error), CPEX_OK, 0, NULL, NULL                                       \
    }

/**
 * Make `err` empty and set its struct_size to the caller's sizeof (inline,
 * so the size is the caller's). Does not free anything it held (use
 * cleanup for that). NULL is allowed.
 */
static inline void cpex_error_init(cpex_error *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->struct_size = (uint32_t)sizeof *err;
}

/**
 * Free everything `err` holds and make it empty (its struct_size stays).
 * NULL, and an object that was never initialized, are left alone.
 */
CPEX_API void cpex_error_cleanup(cpex_error *err);

/**
 * All messages joined by newlines. The string is owned by `err` and valid
 * until the next change to it. Returns "" for an empty error object or when
 * memory is short, and a constant sentence saying so for an object that was
 * never initialized (struct_size below CPEX_ERROR_SIZE_V1).
 */
CPEX_API const char *cpex_error_message(cpex_error *err);

/** A short, constant name of a status code ("CPEX_E_CONFIG", …). */
CPEX_API const char *cpex_status_name(cpex_status status);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_ERROR_H */
