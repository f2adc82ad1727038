/*
 * wire_verdict.h — an audit sink's verdict on the transport (wire.h
 * primitives): what the host's proxy sends after a VERDICT request's CALL
 * fields (proto.h), and how the worker rebuilds it for the plugin.
 *
 * Everything of a cpex_verdict but the payload, which is the call's own
 * (the verdict's payload is the call's, as in process) and travels as the
 * CALL's payload. Layout:
 *
 *   u32 decision, str hook,
 *   opt str violation code, reason, description, plugin,
 *   u8 + JSON violation details (an object),
 *   u32 payload_modified, u32 extensions_modified, i64 time_unix_ns,
 *   u32 record count, then per record:
 *     u32 status, u32 mode, i32 requested, u32 effective, i32 matched,
 *     u32 applied, u32 payload_modified, u32 extensions_modified,
 *     i64 start_unix_ns, i64 duration_ns,
 *     opt str plugin_name, plugin_kind, hook, code, reason, trace_id, span_id,
 *     u32 config key count, that many str.
 *
 * The reader is the worker's (it trusts its host's text), but like every
 * reader of wire.h it checks each length and count against what is left,
 * so a broken request stops it with a reason rather than a crash.
 */
#ifndef CPEX_ISOLATION_WIRE_VERDICT_H
#define CPEX_ISOLATION_WIRE_VERDICT_H

#include "cpex/abi.h"
#include "isolation/arena.h"
#include "isolation/wire.h"

/** Write `v` (its records read with its record_size stride). */
void cpex__iso_wr_verdict(cpex__iso_wr *w, const cpex_verdict *v);

/**
 * Read a verdict into `out`: the records (laid out with
 * sizeof(cpex_execution_record) as record_size) and their config key
 * arrays in `arena`, strings as views into the buffer, the details owned
 * by the arena; `payload` is left NULL for the caller to set. False when
 * the reader stopped (its reason in r->why).
 */
bool cpex__iso_rd_verdict(cpex__iso_rd *r, cpex__iso_arena *arena, cpex_verdict *out);

#endif
