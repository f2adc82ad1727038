/*
 * wire_ext.h — extensions and context on the transport.
 *
 * The host writes only what the plugin's capabilities let it read
 * (cpex__caps_can_read_field, read_headers, read_custom): a hidden field
 * never leaves the host process. The worker reads the snapshot as a view
 * (strings in place) that its ext_* slots answer from; a plugin's first
 * write makes a real extensions object of it (cpex__iso_ext_materialize).
 */
#ifndef CPEX_ISOLATION_WIRE_EXT_H
#define CPEX_ISOLATION_WIRE_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpex/extensions.h"
#include "isolation/arena.h"
#include "isolation/wire.h"

/** Single-valued fields, in the order of their slots in the view. */
#define ISO_EXT_SINGLE_FIELDS                                                                      \
    CPEX_EXT_ENTITY_TYPE, CPEX_EXT_ENTITY_NAME, CPEX_EXT_SUBJECT_ID, CPEX_EXT_SUBJECT_TYPE,        \
        CPEX_EXT_CLASSIFICATION, CPEX_EXT_REQUEST_ID, CPEX_EXT_TRACE_ID, CPEX_EXT_SPAN_ID,         \
        CPEX_EXT_ENVIRONMENT, CPEX_EXT_TIMESTAMP
#define ISO_EXT_NSINGLE 10
/** List fields, likewise. */
#define ISO_EXT_LIST_FIELDS CPEX_EXT_TAGS, CPEX_EXT_ROLES, CPEX_EXT_LABELS
#define ISO_EXT_NLIST 3

/** The slot of `field` among the singles or lists; -1 when it is not one. */
int cpex__iso_ext_single_index(uint32_t field);
int cpex__iso_ext_list_index(uint32_t field);

/** What a worker's plugin may read of the call's extensions. */
typedef struct cpex__iso_ext_view {
    cpex_str single[ISO_EXT_NSINGLE]; /* ptr NULL: unset or hidden */
    struct {
        size_t count;
        const cpex_str *items;
    } list[ISO_EXT_NLIST];
    struct {
        size_t count;
        const cpex_str *names, *values;
    } headers[2];          /* request, response; empty when hidden */
    const uint8_t *custom; /* the custom object, still encoded; NULL: none */
    size_t custom_len;
} cpex__iso_ext_view;

/** Write what `caps` reveals of `ext` (NULL: nothing). */
void cpex__iso_wr_ext(cpex__iso_wr *w, const cpex_extensions *ext, uint32_t caps);
/** Read a snapshot into `out` (lists in `arena`). False when the reader stopped. */
bool cpex__iso_rd_ext(cpex__iso_rd *r, cpex__iso_arena *arena, cpex__iso_ext_view *out);
/** A new extensions object holding the view (and `custom`, copied; may be NULL). */
cpex_extensions *cpex__iso_ext_materialize(const cpex__iso_ext_view *v, const json_t *custom);

/** Write a context object (NULL: none). */
void cpex__iso_wr_ctx(cpex__iso_wr *w, const json_t *obj);
/** Pass over a context object, keeping where it is: *out NULL/0 when none. */
void cpex__iso_rd_ctx(cpex__iso_rd *r, const uint8_t **out, size_t *len);

#endif
