/*
 * redis_server.h — a real redis-server for tests and benchmarks: started on
 * a free loopback port with a temporary directory and no persistence,
 * stopped (and its directory removed) afterwards. Never a system Redis.
 * Uses no test framework, so the benchmarks share it.
 */
#ifndef CPEX_TEST_REDIS_SERVER_H
#define CPEX_TEST_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct test_redis {
    pid_t pid; /* 0: not running */
    int port;
    char dir[128];        /* its temporary directory */
    char url[64];         /* redis://127.0.0.1:PORT/0 */
    char error[512];      /* why the last call failed */
    const char *extra[8]; /* more redis-server arguments (e.g. "--requirepass", "pw") */
} test_redis;

/** The redis-server executable ($CPEX_REDIS_SERVER, else from PATH), or NULL. */
const char *test_redis_binary(void);
/** A port on 127.0.0.1 that nothing listens on right now. */
int test_redis_free_port(void);
/**
 * Start a server on `port` (0: a free one) and wait (at most 10 s) until it
 * answers PING. False with r->error set when it could not.
 */
bool test_redis_start(test_redis *r, int port);
/** Start it again on the same port (after test_redis_kill or _stop). */
bool test_redis_restart(test_redis *r);
/** SIGKILL it and reap it (a crash, mid-run); the directory stays for a restart. */
void test_redis_kill(test_redis *r);
/** SIGSTOP / SIGCONT: a server that accepts connections but answers nothing. */
void test_redis_pause(test_redis *r);
void test_redis_resume(test_redis *r);
/** Stop it (SIGTERM, then SIGKILL after 5 s) and remove its directory. */
void test_redis_stop(test_redis *r);
/**
 * Send one command (arguments as words) and return the reply as text in
 * buf: a string, an integer in decimal, "(nil)", "ERR …" for an error.
 * False when the server could not be asked.
 */
bool test_redis_query(const test_redis *r, char *buf, size_t cap, int argc, const char **argv);

#endif
