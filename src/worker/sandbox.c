/*
 * sandbox.c — a worker's protections, in the order they must go on:
 *
 *   1. resource limits: data size (memory_mb), address space (memory_mb
 *      plus room for code, stacks and the shared memory), open files,
 *      no core dumps (set at start);
 *   2. no_new_privs: nothing executed later could gain privileges (and
 *      Landlock and seccomp need it without CAP_SYS_ADMIN);
 *   3. Landlock (landlock.c): files, TCP, signals;
 *   4. seccomp (seccomp.c): system calls — last, so that setting up the
 *      others needs nothing the filter forbids.
 *
 * What the kernel lacks is a warning naming it, or with `require: true`
 * an error. A worker built with a sanitizer keeps the memory limits off
 * (the sanitizer reserves terabytes of address space) and says so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "isolation/proto.h"
#include "worker/worker.h"

#define DEFAULT_MEMORY_MB 256u
#define DEFAULT_OPEN_FILES 64u
/* Address space beyond the data limit and the transport: code, thread
   stacks, malloc's reserved arenas. */
#define AS_HEADROOM_MB 1024u

bool wk_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

static void add(char *buf, size_t cap, const char *fmt, const char *text)
{
    size_t len = strlen(buf);
    if (len < cap)
        snprintf(buf + len, cap - len, fmt, text);
}

/* A protection that is not in force: a warning now; with `require`, the
   warnings become the error at the end (all of them named). */
static void missing(wk_sandbox_res *res, const char *what)
{
    if (res->warning_count < sizeof res->warnings / sizeof *res->warnings)
        snprintf(res->warnings[res->warning_count++], sizeof res->warnings[0],
                 "the worker runs without a protection: %.250s", what);
}

static void require_all(const wk_sandbox_req *req, wk_sandbox_res *res)
{
    if (!req->require || res->warning_count == 0)
        return;
    size_t len = (size_t)snprintf(res->error, sizeof res->error,
                                  "the sandbox cannot be set up as required (sandbox.require: "
                                  "true); missing: ");
    for (size_t i = 0; i < res->warning_count && len < sizeof res->error; i++)
        len +=
            (size_t)snprintf(res->error + len, sizeof res->error - len, "%s%s", i ? "; " : "",
                             res->warnings[i] + strlen("the worker runs without a protection: "));
    if (len < sizeof res->error)
        snprintf(res->error + len, sizeof res->error - len,
                 ". Run where the kernel (and the build) offers them, or set require: false to "
                 "start without them");
}

static bool set_limit(int resource, rlim_t value)
{
    struct rlimit rl = {value, value};
    return setrlimit(resource, &rl) == 0;
}

void wk_sandbox_apply(const wk_sandbox_req *req, wk_sandbox_res *res)
{
    memset(res, 0, sizeof *res);
    char *sum = res->summary;
    size_t cap = sizeof res->summary;
    char line[400], why[400];

    /* 1. Limits. */
    uint64_t mb = req->memory_mb ? req->memory_mb : DEFAULT_MEMORY_MB;
    uint32_t files = req->open_files ? req->open_files : DEFAULT_OPEN_FILES;
    bool limits = set_limit(RLIMIT_NOFILE, files);
    if (wk_sanitized()) {
        missing(res, "memory limit (this worker is built with a sanitizer, which "
                     "reserves more address space than any limit allows)");
    } else {
        rlim_t data = (rlim_t)mb << 20;
        /* The transport's mapping (32 MiB a channel) is address space too. */
        rlim_t as = ((rlim_t)(mb + AS_HEADROOM_MB) << 20) + (rlim_t)wk.size;
        if (set_limit(RLIMIT_DATA, data) && set_limit(RLIMIT_AS, as))
            res->bits |= ISO_SB_MEMORY;
        else
            missing(res, "memory limit (setrlimit refused it)");
    }
    if (limits)
        res->bits |= ISO_SB_RLIMITS;
    else
        missing(res, "open file limit (setrlimit refused it)");

    /* 2. no_new_privs. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) {
        res->bits |= ISO_SB_NO_NEW_PRIVS;
        add(sum, cap, "%s", "no_new_privs");
    } else {
        snprintf(why, sizeof why, "no_new_privs (%s)", strerror(errno));
        missing(res, why);
    }

    /* 3. Landlock. */
    int abi = 0;
    int rc = wk_landlock_apply(req, &abi, why, sizeof why);
    if (rc == -2) {
        snprintf(res->error, sizeof res->error, "%s", why);
        return;
    }
    if (rc == 0) {
        res->bits |= ISO_SB_LANDLOCK;
        snprintf(line, sizeof line,
                 "; landlock ABI %d (reads: the library, system libraries and %zu read_paths; "
                 "writes: %zu write_paths%s%s)",
                 abi, req->read_count, req->write_count,
                 abi >= 4 && !req->network ? "; no TCP" : "", abi >= 6 ? "; signals scoped" : "");
        add(sum, cap, "%s", line);
    } else {
        missing(res, why);
    }

    /* 4. seccomp. */
    if (wk_seccomp_apply(req->network, why, sizeof why) == 0) {
        res->bits |= ISO_SB_SECCOMP;
        add(sum, cap, "; seccomp allow-list (%s)",
            req->network ? "no exec, fork, ptrace, mount; sockets allowed"
                         : "no sockets, exec, fork, ptrace, mount");
    } else {
        missing(res, why);
    }

    if (res->bits & ISO_SB_MEMORY) {
        snprintf(line, sizeof line, "; limits: data %llu MiB, %u open files, no core dumps",
                 (unsigned long long)mb, files);
    } else {
        snprintf(line, sizeof line, "; limits: %u open files, no core dumps (no memory limit)",
                 files);
    }
    add(sum, cap, "%s", line);
    if (req->cpu_seconds > 0) {
        snprintf(line, sizeof line, "; %g s of CPU per call", req->cpu_seconds);
        add(sum, cap, "%s", line);
    }
    require_all(req, res);
    for (size_t i = 0; i < res->warning_count; i++) {
        snprintf(line, sizeof line, "%s%s", i ? ", " : "; MISSING: ",
                 res->warnings[i] + strlen("the worker runs without a protection: "));
        add(sum, cap, "%s", line);
    }
}
