/* redis_server.c — see redis_server.h. */
#include "redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

/* Every server started (its pid and directory, copied: the test_redis may
   live on a stack that a failed test has left), stopped at exit whatever
   happened to the test. */
static struct {
    pid_t pid;
    char dir[128];
} running[16];

static void stop_all(void)
{
    for (int i = 0; i < 16; i++) {
        if (running[i].pid > 0) {
            kill(running[i].pid, SIGKILL);
            waitpid(running[i].pid, NULL, 0);
        }
        if (running[i].dir[0]) {
            char path[256];
            snprintf(path, sizeof path, "%s/redis.log", running[i].dir);
            unlink(path);
            rmdir(running[i].dir);
        }
        running[i].pid = 0;
        running[i].dir[0] = '\0';
    }
}

static void remember(const test_redis *r)
{
    static bool registered;
    if (!registered) {
        registered = true;
        atexit(stop_all);
    }
    for (int i = 0; i < 16; i++) {
        if (running[i].pid == 0 && !running[i].dir[0]) {
            running[i].pid = r->pid;
            snprintf(running[i].dir, sizeof running[i].dir, "%s", r->dir);
            return;
        }
    }
}

/* The server `pid` is gone (and, with `dir_gone`, its directory). */
static void forget(pid_t pid, const char *dir, bool dir_gone)
{
    for (int i = 0; i < 16; i++) {
        if (pid > 0 && running[i].pid == pid)
            running[i].pid = 0;
        if (dir_gone && dir[0] && strcmp(running[i].dir, dir) == 0)
            running[i].dir[0] = '\0';
    }
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *test_redis_binary(void)
{
    static char found[512];
    const char *env = getenv("CPEX_REDIS_SERVER");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/usr/local/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/redis-server", d);
        if (access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}

int test_redis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool answers(int port)
{
    struct timeval tv = {0, 300000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r && (r->type == REDIS_REPLY_STATUS ||
                   r->type == REDIS_REPLY_ERROR); /* NOAUTH answers too */
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static bool spawn(test_redis *r)
{
    const char *bin = test_redis_binary();
    if (!bin) {
        snprintf(r->error, sizeof r->error,
                 "redis-server not found (install the Debian package redis-server: "
                 "scripts/deps.sh test)");
        return false;
    }
    char port[16], log[200];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    const char *argv[40] = {bin,  "--port",       port, "--bind",     "127.0.0.1", "--save",
                            "",   "--appendonly", "no", "--dir",      r->dir,      "--daemonize",
                            "no", "--logfile",    log,  "--loglevel", "warning"};
    int n = 17;
    for (int i = 0; i < 8 && r->extra[i]; i++)
        argv[n++] = r->extra[i];
    argv[n] = NULL;
    /* fork + exec rather than posix_spawn: the child asks to be killed when
       this process dies (a crashed test leaves no server behind), and gets
       no descriptor of ours (a pipe held open would hang whoever reads it). */
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    if (pid < 0) {
        r->pid = 0;
        snprintf(r->error, sizeof r->error, "cannot start %s: %s", bin, strerror(errno));
        return false;
    }
    r->pid = pid;
    remember(r);
    /* Ready when it answers; a child that exits (port taken) is reported. */
    for (int i = 0; i < 200; i++) {
        int status;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            forget(r->pid, r->dir, false);
            r->pid = 0;
            snprintf(r->error, sizeof r->error, "redis-server exited at start (see %s)", log);
            return false;
        }
        if (answers(r->port))
            return true;
        nap_ms(50);
    }
    snprintf(r->error, sizeof r->error, "redis-server on port %d did not answer in 10 s", r->port);
    test_redis_kill(r);
    return false;
}

bool test_redis_start(test_redis *r, int port)
{
    r->pid = 0;
    snprintf(r->dir, sizeof r->dir, "/tmp/cpex-redis-XXXXXX");
    if (!mkdtemp(r->dir)) {
        snprintf(r->error, sizeof r->error, "mkdtemp: %s", strerror(errno));
        r->dir[0] = '\0';
        return false;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = port ? port : test_redis_free_port();
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
        if (spawn(r))
            return true;
        if (port || !test_redis_binary())
            break; /* a fixed port, or nothing to start: trying again would not help */
    }
    return false;
}

bool test_redis_restart(test_redis *r)
{
    if (r->pid)
        test_redis_kill(r);
    return spawn(r);
}

void test_redis_kill(test_redis *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGCONT);
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    forget(r->pid, r->dir, false);
    r->pid = 0;
}

void test_redis_pause(test_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGSTOP);
}

void test_redis_resume(test_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGCONT);
}

void test_redis_stop(test_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGTERM);
        int done = 0;
        for (int i = 0; i < 100 && !done; i++) {
            done = waitpid(r->pid, NULL, WNOHANG) == r->pid;
            if (!done)
                nap_ms(50);
        }
        if (!done) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
        }
        forget(r->pid, r->dir, false);
        r->pid = 0;
    }
    if (r->dir[0]) {
        char path[256];
        snprintf(path, sizeof path, "%s/redis.log", r->dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/dump.rdb", r->dir);
        unlink(path);
        rmdir(r->dir);
        forget(0, r->dir, true);
        r->dir[0] = '\0';
    }
}

bool test_redis_query(const test_redis *r, char *buf, size_t cap, int argc, const char **argv)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return false;
    }
    redisSetTimeout(c, tv);
    redisReply *x = redisCommandArgv(c, argc, argv, NULL);
    bool ok = x != NULL;
    if (x) {
        switch (x->type) {
        case REDIS_REPLY_INTEGER: snprintf(buf, cap, "%lld", x->integer); break;
        case REDIS_REPLY_NIL: snprintf(buf, cap, "(nil)"); break;
        case REDIS_REPLY_ARRAY: snprintf(buf, cap, "(array of %zu)", x->elements); break;
        default: snprintf(buf, cap, "%.*s", (int)x->len, x->str ? x->str : ""); break;
        }
        freeReplyObject(x);
    }
    redisFree(c);
    return ok;
}
