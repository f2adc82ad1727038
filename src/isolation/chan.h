/*
 * chan.h — one channel of the shared memory (proto.h): posting a request
 * or a reply and waiting for the other side, spinning first (a round trip
 * between two spinning sides costs well under a microsecond; a futex
 * sleep and wake costs several), then sleeping on a futex.
 */
#ifndef CPEX_ISOLATION_CHAN_H
#define CPEX_ISOLATION_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isolation/proto.h"

/** A channel as one side maps it. */
typedef struct cpex__iso_chan {
    cpex__iso_chan_ctl *ctl;
    uint8_t *req;    /* request area */
    uint8_t *rep;    /* reply area */
    uint32_t seq;    /* host: the last sequence posted; worker: the last one answered */
    int64_t spin_ns; /* this side's spin window, adapted to the other side (see chan.c) */
    uint32_t up;     /* host: the rep_seq value of the last upcall seen; worker: of the last sent */
} cpex__iso_chan;

/* Bounds of the adaptive spin windows. */
#define ISO_SPIN_MIN_NS 20000
#define ISO_SPIN_MAX_NS 400000

/** Fill `c` for channel `i` of `channels` in the mapping at `base`. */
void cpex__iso_chan_bind(cpex__iso_chan *c, void *base, uint32_t channels, uint32_t i);

/** Sleep while *addr == expected, at most `timeout_ns` (< 0: no limit). */
void cpex__iso_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int64_t timeout_ns);
/** Wake every sleeper on addr. */
void cpex__iso_futex_wake(_Atomic uint32_t *addr);

/* ---- the host's side ---- */

/** Post the request of `len` bytes already written to c->req. */
void cpex__iso_chan_post(cpex__iso_chan *c, uint32_t len);

enum { ISO_WAIT_REPLY = 0, ISO_WAIT_DEAD = 1, ISO_WAIT_TIMEOUT = 2, ISO_WAIT_UPCALL = 3 };
/**
 * Wait for the reply to the last request posted: spin up to c->spin_ns,
 * then sleep until CLOCK_MONOTONIC reaches `deadline_ns`. `dead` (set by
 * whoever saw the worker die, before it marks rep_seq ISO_SEQ_DEAD and
 * wakes) ends the wait early. ISO_WAIT_UPCALL: the worker posted an
 * upcall (c->up holds its rep_seq value); answer it with
 * cpex__iso_chan_answer, then wait again.
 */
int cpex__iso_chan_wait_reply(cpex__iso_chan *c, const _Atomic int *dead, int64_t deadline_ns);
/** Hand the worker the answer to upcall c->up: `len` bytes at `off` of the request area. */
void cpex__iso_chan_answer(cpex__iso_chan *c, uint32_t off, uint32_t len);

/** Mark a dead worker's channel (rep_seq) and wake the host thread waiting on it. */
void cpex__iso_chan_mark_dead(cpex__iso_chan *c);

/* ---- the worker's side ---- */

/** Wait for a request newer than c->seq: spin c->spin_ns, then sleep. Returns its sequence. */
uint32_t cpex__iso_chan_wait_request(cpex__iso_chan *c);
/** Post the reply of `len` bytes (in c->rep) to request `seq`. */
void cpex__iso_chan_reply(cpex__iso_chan *c, uint32_t seq, uint32_t len);
/**
 * Post the upcall of `len` bytes written at c->rep + ISO_AREA_SIZE -
 * ISO_UP_ROOM and wait for the host's answer; *off and *len get where it
 * is in c->req. Only while a CALL is being served, one at a time.
 */
void cpex__iso_chan_upcall(cpex__iso_chan *c, uint32_t len, uint32_t *ans_off, uint32_t *ans_len);

#endif
