/*
 * upcall.h — the host's side of an upcall (proto.h, "Upcalls"): a slot
 * the plugin called in its worker that needs the host's answer before
 * the handler goes on (the state slots).
 */
#ifndef CPEX_ISOLATION_UPCALL_H
#define CPEX_ISOLATION_UPCALL_H

#include <stddef.h>

#include "cpex/abi.h"
#include "isolation/chan.h"
#include "isolation/wire.h"

/**
 * Answer the upcall c->up of the worker serving `call` on channel `c`:
 * read it (a private copy: the worker is not trusted), run it through the
 * host table `h` against the real call, write the answer after the
 * request of `req_len` bytes and post it. A request the host cannot read
 * is answered CPEX_HOST_EINVAL; an answer that does not fit,
 * CPEX_HOST_ENOMEM. Never fails otherwise: the worker always gets an
 * answer.
 */
void cpex__iso_upcall_serve(const cpex_host_api *h, const cpex_call *call, cpex__iso_chan *c,
                            size_t req_len);

/**
 * Run one upcall of `len` bytes at `in` and write its answer into `out`
 * (what cpex__iso_upcall_serve does between reading and posting; apart
 * for the fuzzer).
 */
void cpex__iso_upcall_run(const cpex_host_api *h, const cpex_call *call, const uint8_t *in,
                          size_t len, cpex__iso_wr *out);

#endif
