/*
 * state_redis_io.h — the Redis backend's wire: commands written in the
 * Redis protocol into one buffer, and a connection whose every wait is
 * bounded by a deadline (state_redis_io.c). Not installed.
 */
#ifndef CPEX_CORE_STATE_REDIS_IO_H
#define CPEX_CORE_STATE_REDIS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis.h>

#include "core/state.h"

/** Commands to send: a small inline buffer that moves to the heap when it must. */
typedef struct cpex__rio_buf {
    char *p;
    size_t len, cap;
    bool heap;
    bool oom;
    char small[1024];
} cpex__rio_buf;

/** One pooled connection. */
typedef struct cpex__rio_conn {
    int fd; /* -1: not connected */
    redisReader *reader;
    bool busy;
} cpex__rio_conn;

void cpex__rio_init(cpex__rio_buf *o);
void cpex__rio_free(cpex__rio_buf *o);
void cpex__rio_put(cpex__rio_buf *o, const void *bytes, size_t n);
/** "*N\r\n" or "$N\r\n". */
void cpex__rio_count(cpex__rio_buf *o, char kind, size_t n);
/** One bulk argument. */
void cpex__rio_arg(cpex__rio_buf *o, const char *bytes, size_t n);
/** One command of `argc` arguments (NULL lens, or a len of (size_t)-1: NUL-terminated). */
void cpex__rio_cmd(cpex__rio_buf *o, int argc, const char *const *argv, const size_t *lens);
/* A command of NUL-terminated words. */
#define CMD(o, ...)                                                                                \
    do {                                                                                           \
        const char *const a_[] = {__VA_ARGS__};                                                    \
        cpex__rio_cmd(o, (int)(sizeof a_ / sizeof *a_), a_, NULL);                                 \
    } while (0)

/** Wait for `events` on fd until `deadline`: 1 ready, 0 time is up, -1 error. */
int cpex__rio_wait(int fd, short events, int64_t deadline);
void cpex__rio_close(cpex__rio_conn *c);
int32_t cpex__rio_io_error(cpex__state_err *e, const char *what, int err);
int32_t cpex__rio_timed_out(cpex__state_err *e, const char *what, int64_t budget_ns);
/** Send the buffer, then read `n` replies into r[] (the caller frees them), all by deadline. */
int32_t cpex__rio_exchange(cpex__rio_conn *c, const cpex__rio_buf *o, size_t n, redisReply **r,
                           int64_t deadline, int64_t budget, cpex__state_err *e);
void cpex__rio_free_replies(redisReply **r, size_t n);

#endif
