/* capabilities.c — see capabilities.h. */
#include "model/capabilities.h"


#include "cpex/abi.h"
#include "util/count.h"
#include "util/names.h"
#include "util/suggest.h"

/* Indexed by bit position, so a name and its bit can never drift apart. */
static const char *const known_names[] = {
    "read_subject",        /* CPEX_CAP_READ_SUBJECT */
    "read_roles",          /* CPEX_CAP_READ_ROLES */
    "read_labels",         /* CPEX_CAP_READ_LABELS */
    "append_labels",       /* CPEX_CAP_APPEND_LABELS */
    "read_classification", /* CPEX_CAP_READ_CLASSIFICATION */
    "read_headers",        /* CPEX_CAP_READ_HEADERS */
    "write_headers",       /* CPEX_CAP_WRITE_HEADERS */
    "read_request",        /* CPEX_CAP_READ_REQUEST */
    "read_custom",         /* CPEX_CAP_READ_CUSTOM */
    "write_custom",        /* CPEX_CAP_WRITE_CUSTOM */
};
#define KNOWN_COUNT CPEX__COUNT(known_names)

/* Names the Rust framework (feat and main branches) accepts for slots
 * libcpex does not have yet. They are a warning, not an error, so that a
 * configuration written for CPEX loads here. */
static const char *const cpex__only_names[] = {
    "read_teams",
    "read_claims",
    "read_permissions",
    "read_agent",
    "read_delegation",
    "append_delegation",
    "read_client",
    "read_workload",
    "read_inbound_credentials",
    "read_delegated_tokens",
    "write_candidate_constraint",
};
#define CPEX_ONLY_COUNT CPEX__COUNT(cpex__only_names)

cpex__cap_parse cpex__caps_parse(const char *name, cpex__caps *caps, const char **suggestion)
{
    /* Cleared up front so a caller never reads a stale suggestion. */
    if (suggestion)
        *suggestion = NULL;
    if (!name)
        return CPEX_CAP_UNKNOWN;
    int bit = cpex__names_index(known_names, KNOWN_COUNT, name);
    if (bit >= 0) {
        if (caps)
            *caps |= (cpex__caps)1u << bit;
        return CPEX_CAP_KNOWN;
    }
    if (cpex__names_index(cpex__only_names, CPEX_ONLY_COUNT, name) >= 0)
        return CPEX_CAP_NOT_IMPLEMENTED;
    if (suggestion)
        *suggestion = cpex__suggest(name, known_names, KNOWN_COUNT);
    return CPEX_CAP_UNKNOWN;
}

const char *cpex__caps_name(cpex__caps bit)
{
    /* Only a single bit has a name; 0 or a combination has none. */
    if (bit == 0 || (bit & (bit - 1)) != 0)
        return NULL;
    for (size_t i = 0; i < KNOWN_COUNT; i++) {
        if (bit == (cpex__caps)1u << i)
            return known_names[i];
    }
    return NULL;
}

int cpex__caps_can_read_field(cpex__caps caps, uint32_t field)
{
    /* Secure by default: anything not listed (including hostile numbers)
     * is hidden. Write capabilities never grant a read, as in CPEX. */
    switch (field) {
    case CPEX_EXT_ENTITY_TYPE:
    case CPEX_EXT_ENTITY_NAME:
    case CPEX_EXT_SCOPE:
    case CPEX_EXT_TAGS: return 1;
    case CPEX_EXT_SUBJECT_ID:
    case CPEX_EXT_SUBJECT_TYPE: return (caps & CPEX_CAP_READ_SUBJECT) != 0;
    case CPEX_EXT_ROLES: return (caps & CPEX_CAP_READ_ROLES) != 0;
    case CPEX_EXT_LABELS: return (caps & CPEX_CAP_READ_LABELS) != 0;
    case CPEX_EXT_CLASSIFICATION: return (caps & CPEX_CAP_READ_CLASSIFICATION) != 0;
    case CPEX_EXT_REQUEST_ID:
    case CPEX_EXT_TRACE_ID:
    case CPEX_EXT_SPAN_ID:
    case CPEX_EXT_ENVIRONMENT:
    case CPEX_EXT_TIMESTAMP: return (caps & CPEX_CAP_READ_REQUEST) != 0;
    default: return 0;
    }
}
