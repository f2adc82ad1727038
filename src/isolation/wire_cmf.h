/*
 * wire_cmf.h — CMF messages on the transport (wire.h primitives).
 *
 * A message is written field by field from its ABI struct, so any message
 * a plugin or host can hand over is written the same way. It is read back
 * as a *view*: the ABI structs (message, parts, bodies) in an arena, the
 * strings pointing into the buffer, the JSON values built and owned by the
 * arena. The worker hands the view to the plugin as the payload without a
 * copy; the host turns a reply's view into a message of its own with
 * cpex_cmf_clone.
 *
 * Reading checks everything the JSON reader of cmf.h checks: roles, part
 * kinds, channels and resource types in range, text UTF-8 without NUL
 * (a blob may hold any bytes), arguments and annotations objects, integers
 * of -1 ("absent") or more, is_error 0 or 1, nesting at most 32 deep.
 */
#ifndef CPEX_ISOLATION_WIRE_CMF_H
#define CPEX_ISOLATION_WIRE_CMF_H

#include "cpex/abi.h"
#include "isolation/arena.h"
#include "isolation/wire.h"

/** Write `message` (libcpex-built or a view). */
void cpex__iso_wr_cmf(cpex__iso_wr *w, const cpex_cmf_message *message);

/** Read a message as a view in `arena`; NULL when the reader stopped. */
const cpex_cmf_message *cpex__iso_rd_cmf(cpex__iso_rd *r, cpex__iso_arena *arena);

#endif
