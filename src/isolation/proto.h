/*
 * proto.h — the conversation between a host and its worker process
 * (docs/isolation.md, "The transport").
 *
 * One shared memory file (memfd, sealed against shrinking) per worker
 * process, mapped by both:
 *
 *   [ cpex__iso_shm_head, page ]  [ cpex__iso_chan_ctl x channels, page-rounded ]
 *   [ request area | reply area ] x channels   (ISO_AREA_SIZE each)
 *
 * A channel carries one request and its reply at a time. The host writes a
 * request into the request area, its length into req_len, then bumps
 * req_seq (release); the worker answers into the reply area, sets rep_len,
 * then sets rep_seq to that sequence number (release). Each side spins a
 * little on the other's counter, then sleeps on it with a futex; a
 * *_sleeping flag tells the other side that a wake is needed, so the fast
 * path makes no system call at all.
 *
 * Requests (first byte the op):
 *   LOAD      sandbox settings and the plugin's configuration: the worker
 *             applies the sandbox, loads the library with the loader's
 *             checks and calls its entry point;
 *   PREPARE   the same bytes; the worker applies the sandbox only, and
 *             waits for LOAD (a spare worker, ready for a quick restart);
 *   INIT, SHUTDOWN, DESTROY   the plugin's callbacks (DESTROY ends the worker);
 *   CALL      one handler call: handler index, mode, deadline, capability
 *             bits, hook, plugin name, payload, the extensions the plugin may
 *             read, its local and global context;
 *   VERDICT   one call of the plugin's verdict handler (an audit sink): the
 *             bytes of a CALL (handler index 0, mode audit, the final
 *             payload, the extensions the sink may read), then the verdict
 *             (wire_verdict.h): decision, violation, flags, time and every
 *             execution record with its strings.
 * Replies start with a status byte (ISO_REP_*); a CALL or VERDICT reply then
 * holds the plugin's decision and, in order, what it asked of the host
 * (ISO_OP_*), which the host replays through its own host table against the
 * real call — with the same capability and mode checks and soft errors as
 * in process. A LOAD reply says which handlers the plugin registered and
 * whether it has a verdict handler (a sink may have no handler at all).
 *
 * Upcalls: a few slots need the host's answer before the handler goes on
 * (the state slots: the host owns the state backend, and a sandboxed
 * worker has no network). During a CALL the worker writes such a request
 * into the last ISO_UP_ROOM bytes of the reply area (ops stop below),
 * its length into up_len, then sets rep_seq to ISO_SEQ_UPCALL | k, k its
 * channel's upcall counter (so the word the host sleeps on changes with
 * every upcall). The host runs it through its own table against the real
 * call, writes the answer into the request area after the request
 * (up_ans_off, up_ans_len), then sets up_done to that rep_seq value; the
 * worker, waiting on up_done, reads it and the handler goes on. One
 * upcall at a time per channel; none after the handler returned.
 */
#ifndef CPEX_ISOLATION_PROTO_H
#define CPEX_ISOLATION_PROTO_H

#include <stdatomic.h>
#include <stdint.h>

#define ISO_SHM_MAGIC 0x6f736978u /* "xiso" */
/* 2: the VERDICT request, and the LOAD reply's verdict flag. Host and worker
   are always one build; the number only keeps a stale worker binary out. */
#define ISO_PROTO_VERSION 2u
/** Bytes of each request and each reply area (untouched pages cost nothing). */
#define ISO_AREA_SIZE (16u * 1024u * 1024u)
#define ISO_PAGE 4096u
/** The most channels (calls at once) one worker serves. */
#define ISO_MAX_CHANNELS 64u
/** The fd the worker finds the shared memory on. */
#define ISO_SHM_FD 3

typedef struct cpex__iso_shm_head {
    uint32_t magic;
    uint32_t version;
    uint32_t channels;
    uint32_t area_size;
} cpex__iso_shm_head;

/* Host-written and worker-written words on separate cache lines. */
typedef struct cpex__iso_chan_ctl {
    _Atomic uint32_t req_seq;       /* host: sequence of the request posted */
    uint32_t req_len;               /* host: its length */
    _Atomic uint32_t host_sleeping; /* host: waiting on rep_seq in the kernel */
    _Atomic uint32_t up_done;       /* host: the rep_seq value of the upcall answered */
    uint32_t up_ans_off;            /* host: where its answer starts in the request area */
    uint32_t up_ans_len;            /* host: its length */
    uint32_t pad0[10];
    _Atomic uint32_t rep_seq;         /* worker: sequence of the request answered */
    uint32_t rep_len;                 /* worker: length of the reply */
    _Atomic uint32_t worker_sleeping; /* worker: waiting on req_seq or up_done in the kernel */
    uint32_t up_len;                  /* worker: length of the upcall posted */
    uint32_t pad1[12];
} cpex__iso_chan_ctl;

_Static_assert(sizeof(cpex__iso_chan_ctl) == 128, "two cache lines");

/** Offset of channel `i`'s control block. */
#define ISO_CTL_OFFSET(i) ((size_t)ISO_PAGE + (size_t)(i) * sizeof(cpex__iso_chan_ctl))
/** Offset of the first area, after the control blocks of `n` channels. */
#define ISO_AREAS_OFFSET(n)                                                                        \
    ((size_t)ISO_PAGE +                                                                            \
     (((size_t)(n) * sizeof(cpex__iso_chan_ctl) + ISO_PAGE - 1) / ISO_PAGE) * ISO_PAGE)
/** Offsets of channel `i`'s areas among `n` channels. */
#define ISO_REQ_OFFSET(n, i) (ISO_AREAS_OFFSET(n) + (size_t)(i)*2u * ISO_AREA_SIZE)
#define ISO_REP_OFFSET(n, i) (ISO_REQ_OFFSET(n, i) + ISO_AREA_SIZE)
/** Size of the whole file for `n` channels. */
#define ISO_SHM_SIZE(n) (ISO_AREAS_OFFSET(n) + (size_t)(n)*2u * ISO_AREA_SIZE)

/** A sequence number is never this bit: the host sets it in rep_seq of a dead worker. */
#define ISO_SEQ_DEAD 0x80000000u
/** Nor this one: rep_seq with it set is an upcall (see above). */
#define ISO_SEQ_UPCALL 0x40000000u
/** The bits a sequence number (and an upcall counter) may use. */
#define ISO_SEQ_MASK 0x3fffffffu
/** Bytes at the end of a reply area kept for an upcall (a state value and its key fit). */
#define ISO_UP_ROOM (2u * 1024u * 1024u)

/* Requests. */
enum {
    ISO_REQ_LOAD = 1,
    ISO_REQ_INIT = 2,
    ISO_REQ_SHUTDOWN = 3,
    ISO_REQ_DESTROY = 4,
    ISO_REQ_CALL = 5,
    ISO_REQ_PREPARE = 6,
    ISO_REQ_VERDICT = 7
};

/* Reply statuses. */
enum {
    ISO_REP_OK = 1,     /* done; the rest of the reply follows */
    ISO_REP_FAILED = 2, /* LOAD: error items follow; INIT: a message */
    ISO_REP_BADREQ = 3  /* the worker could not read the request: a message follows */
};

/* What a CALL reply asks of the host, in the order the plugin asked. */
enum {
    ISO_OP_LOG = 1,          /* u32 level, str message */
    ISO_OP_DENY = 2,         /* str code, str reason, opt description, u8 + JSON details */
    ISO_OP_SET_ERROR = 3,    /* str message */
    ISO_OP_METADATA = 4,     /* str key, JSON value */
    ISO_OP_PAYLOAD_CMF = 5,  /* u8 accepted (the worker's verdict) + message when accepted */
    ISO_OP_PAYLOAD_JSON = 6, /* u8 accepted + JSON when accepted */
    ISO_OP_HEADER = 7,       /* u32 set, str name, str value */
    ISO_OP_LABEL = 8,        /* str label */
    ISO_OP_REMOVE_LABEL = 9, /* str label (always refused: recorded by the host) */
    ISO_OP_CUSTOM = 10,      /* str key, u8 + JSON value (absent: delete) */
    ISO_OP_CTX_SET = 11,     /* u32 scope, str key, u8 + JSON value (absent: delete) */
    ISO_OP_LOST = 12         /* u32 count: requests the reply area had no room for */
};
/*
 * Upcalls (u8 op, str key, then per op); the answer is an i32 status
 * (enum cpex_host_status), then when it is CPEX_HOST_OK:
 *   STATE_GET          -> bytes value
 *   STATE_SET          bytes value, i64 ttl_ms
 *   STATE_INCR         i64 delta, i64 ttl_ms -> i64 value, i64 ttl_left_ms
 *   STATE_DELETE
 *   STATE_SET_ADD      bytes member, i64 ttl_ms
 *   STATE_SET_MEMBERS  -> u32 count, count x bytes
 */
enum {
    ISO_UP_STATE_GET = 1,
    ISO_UP_STATE_SET = 2,
    ISO_UP_STATE_INCR = 3,
    ISO_UP_STATE_DELETE = 4,
    ISO_UP_STATE_SET_ADD = 5,
    ISO_UP_STATE_SET_MEMBERS = 6
};

/** The most ops one reply may carry (more is taken as a broken worker). */
#define ISO_MAX_OPS 65536u

/** Sandbox bits a LOAD reply reports in force (and the host shows in `cpex check`). */
enum {
    ISO_SB_NO_NEW_PRIVS = 1u << 0,
    ISO_SB_SECCOMP = 1u << 1,
    ISO_SB_LANDLOCK = 1u << 2,
    ISO_SB_RLIMITS = 1u << 3,
    ISO_SB_MEMORY = 1u << 4
};

#endif
