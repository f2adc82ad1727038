/*
 * capabilities.h — the capability names of `capabilities:` and the
 * extension fields each one reveals or lets a plugin write.
 */
#ifndef CPEX_MODEL_CAPABILITIES_H
#define CPEX_MODEL_CAPABILITIES_H

#include <stdint.h>

/** A set of capabilities as bits. */
typedef uint32_t cpex__caps;

enum {
    CPEX_CAP_READ_SUBJECT = 1u << 0,        /* subject id and type */
    CPEX_CAP_READ_ROLES = 1u << 1,          /* subject roles */
    CPEX_CAP_READ_LABELS = 1u << 2,         /* security labels */
    CPEX_CAP_APPEND_LABELS = 1u << 3,       /* add labels (never remove) */
    CPEX_CAP_READ_CLASSIFICATION = 1u << 4, /* security classification */
    CPEX_CAP_READ_HEADERS = 1u << 5,        /* http request and response headers */
    CPEX_CAP_WRITE_HEADERS = 1u << 6,       /* set headers */
    CPEX_CAP_READ_REQUEST = 1u << 7,        /* request ids, environment, timestamp */
    CPEX_CAP_READ_CUSTOM = 1u << 8,         /* custom values */
    CPEX_CAP_WRITE_CUSTOM = 1u << 9         /* set custom values */
};

/** Outcome of cpex__caps_parse. */
typedef enum cpex__cap_parse {
    CPEX_CAP_KNOWN = 0,           /* a libcpex capability; its bit was set */
    CPEX_CAP_NOT_IMPLEMENTED = 1, /* a CPEX name libcpex does not implement yet (warn) */
    CPEX_CAP_UNKNOWN = 2          /* not a capability; *suggestion may name a close one */
} cpex__cap_parse;

/**
 * Look a capability name up and add its bit to *caps. On CPEX_CAP_UNKNOWN,
 * *suggestion (if non-NULL) is set to the closest known name or NULL.
 */
cpex__cap_parse cpex__caps_parse(const char *name, cpex__caps *caps, const char **suggestion);

/** The name of a single capability bit, or NULL. */
const char *cpex__caps_name(cpex__caps bit);

/** Whether a plugin with `caps` may read extension field `field` (enum cpex_ext_field). */
int cpex__caps_can_read_field(cpex__caps caps, uint32_t field);

#endif
