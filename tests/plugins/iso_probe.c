/*
 * iso_probe.c — a plugin that misbehaves on request, for the isolation
 * tests (tests/e2e/test_isolation*.c): the first text part of a CMF
 * payload names what to do.
 *
 *   (anything else)   allow, with metadata probe.pid (the worker's pid),
 *                     probe.calls (calls this instance served) and
 *                     probe.echo (the text)
 *   segv, abort, exit0, stack, raise_kill   end the process that way
 *   loop              spin forever; sleep:MS  sleep that long, then allow
 *   cpu               spin on the CPU for 10 s, then allow
 *   read:PATH         try to read PATH        } each allows, reporting
 *   write:PATH        try to create PATH      } in metadata probe.result
 *   connect:PORT      try to connect to 127.0.0.1:PORT   } "ok" or
 *   exec              try to run /bin/sh               } "failed: <errno
 *   fork              try to fork                      }  text>"
 *   thread            start and join a thread          }
 *   alloc:MB          try to allocate and touch MB MiB }
 *   kill_parent       try to kill the parent process   }
 *   deny              deny with code probe_deny
 *   modify            replace the payload with a one-part message "modified"
 *   ctx               count in the local context (probe.n, returned as metadata)
 *   header            set response header x-probe (needs write_headers)
 *
 * It also serves hook test.garble (any payload: allow) for the worker's
 * reply-garbling test hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cpex/plugin.h>

typedef struct probe {
    const cpex_host_api *host;
    long calls;
    int initialized;
    long init_sleep_ms;
    int init_fail;
} probe;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void result(probe *self, const cpex_call *call, int ok, int err)
{
    char msg[200];
    if (ok)
        snprintf(msg, sizeof msg, "ok");
    else
        snprintf(msg, sizeof msg, "failed: %s", strerror(err));
    self->host->set_metadata(call, "probe.result", self->host->json_new_string(msg, strlen(msg)));
}

/* Deeper than any stack: the condition only keeps the compiler from
   calling it infinite. */
static int recurse(long depth)
{
    volatile char pad[4096];
    pad[0] = (char)depth;
    if (depth > 1L << 40)
        return 0;
    return recurse(depth + 1) + pad[0];
}

static void *thread_fn(void *arg) { return arg; }

static void spin_ns(long long ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (;;) {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        if ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) > ns)
            return;
    }
}

static int32_t on_call(void *instance, const cpex_call *call)
{
    probe *self = instance;
    const cpex_host_api *h = self->host;
    self->calls++;
    const cpex_cmf_message *m = cpex_call_cmf(call);
    char text[512] = "";
    if (m && m->part_count && m->parts[0].kind == CPEX_PART_TEXT)
        snprintf(text, sizeof text, "%.*s", (int)m->parts[0].text.len, m->parts[0].text.ptr);

    if (strcmp(text, "segv") == 0) {
        /* A store to a page that is gone: SIGSEGV from the kernel, also
           under the sanitizers (a NULL store would be UBSan's to report). */
        char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(page, 4096);
        *(volatile char *)page = 1;
    }
    if (strcmp(text, "abort") == 0)
        abort();
    if (strcmp(text, "exit0") == 0)
        exit(0);
    if (strcmp(text, "stack") == 0)
        return recurse(0) ? CPEX_ALLOW : CPEX_ERROR;
    if (strcmp(text, "raise_kill") == 0)
        raise(SIGKILL);
    if (strcmp(text, "loop") == 0)
        for (volatile int spin = 1; spin;) {
        }
    if (strncmp(text, "sleep:", 6) == 0)
        sleep_ms(atol(text + 6));
    if (strcmp(text, "cpu") == 0)
        spin_ns(10LL * 1000000000LL);
    if (strncmp(text, "read:", 5) == 0) {
        int fd = open(text + 5, O_RDONLY);
        int e = errno;
        char buf[16];
        int ok = fd >= 0 && read(fd, buf, sizeof buf) >= 0;
        if (fd >= 0)
            close(fd);
        result(self, call, ok, e);
    }
    if (strncmp(text, "write:", 6) == 0) {
        int fd = open(text + 6, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = errno;
        int ok = fd >= 0 && write(fd, "x", 1) == 1;
        if (fd >= 0)
            close(fd);
        result(self, call, ok, e);
    }
    if (strncmp(text, "connect:", 8) == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int ok = 0, e = errno;
        if (s >= 0) {
            struct sockaddr_in a;
            memset(&a, 0, sizeof a);
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)atoi(text + 8));
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
            e = errno;
            close(s);
        }
        result(self, call, ok, e);
    }
    if (strcmp(text, "exec") == 0) {
        char *argv[] = {"/bin/sh", "-c", "true", NULL};
        execv("/bin/sh", argv);
        result(self, call, 0, errno);
    }
    if (strcmp(text, "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        int e = errno;
        if (pid > 0)
            waitpid(pid, NULL, 0);
        result(self, call, pid > 0, e);
    }
    if (strcmp(text, "thread") == 0) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, thread_fn, NULL);
        if (rc == 0)
            pthread_join(t, NULL);
        result(self, call, rc == 0, rc);
    }
    if (strncmp(text, "alloc:", 6) == 0) {
        size_t mb = (size_t)atol(text + 6);
        char *p = malloc(mb << 20);
        int e = errno;
        if (p) {
            for (size_t i = 0; i < (mb << 20); i += 4096)
                p[i] = 1;
            free(p);
        }
        result(self, call, p != NULL, e);
    }
    if (strcmp(text, "kill_parent") == 0) {
        int ok = kill(getppid(), SIGTERM) == 0;
        result(self, call, ok, errno);
    }
    if (strcmp(text, "deny") == 0) {
        h->deny(call, "probe_deny", "the probe denies", NULL, NULL);
        return CPEX_DENY;
    }
    if (strcmp(text, "modify") == 0) {
        cpex_cmf_message *n = h->cmf_clone(m);
        h->cmf_set_text(n, 0, "modified", 8);
        h->set_payload_cmf(call, n);
    }
    if (strcmp(text, "ctx") == 0) {
        const cpex_json *old = h->ctx_get(call, CPEX_CTX_LOCAL, "n");
        int64_t n = old ? h->json_integer(old) + 1 : 1;
        h->ctx_set(call, CPEX_CTX_LOCAL, "n", h->json_new_integer(n));
        h->set_metadata(call, "probe.n", h->json_new_integer(n));
    }
    if (strcmp(text, "header") == 0)
        h->set_metadata(
            call, "probe.rc",
            h->json_new_integer(h->ext_set_header(call, CPEX_HEADERS_RESPONSE, "x-probe", "1")));
    h->set_metadata(call, "probe.pid", h->json_new_integer((int64_t)getpid()));
    h->set_metadata(call, "probe.initialized", h->json_new_integer(self->initialized));
    h->set_metadata(call, "probe.calls", h->json_new_integer(self->calls));
    h->set_metadata(call, "probe.echo", h->json_new_string(text, strlen(text)));
    return CPEX_ALLOW;
}

static int32_t on_garble(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    probe *self = instance;
    sleep_ms(self->init_sleep_ms);
    if (self->init_fail) {
        cpex_plugin_errorf(err, err_cap, "the probe was told to fail its initialize");
        return 1;
    }
    self->initialized = 1;
    return 0;
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf"),
    CPEX_HANDLER("test.garble", on_garble, NULL),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    sleep_ms((long)cpex_config_int(host, config, "create_sleep_ms", 0));
    if (cpex_config_int(host, config, "create_crash", 0))
        abort();
    if (cpex_config_int(host, config, "reject", 0)) {
        cpex_plugin_errorf(err, err_cap, "the probe rejects this configuration on purpose");
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    probe *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    self->init_sleep_ms = (long)cpex_config_int(host, config, "init_sleep_ms", 0);
    self->init_fail = (int)cpex_config_int(host, config, "init_fail", 0);
    host->log(NULL, CPEX_LOG_INFO, "iso-probe created");
    out->name = "iso-probe";
    out->version = "1.0.0";
    out->instance = self;
    out->initialize = initialize;
    out->destroy = destroy;
    out->handler_count = 2;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "iso-probe", "1.0.0", "misbehaves on request (isolation tests)",
            "cmf.tool_pre_invoke", "test.garble")
