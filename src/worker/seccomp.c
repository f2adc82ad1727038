/*
 * seccomp.c — the worker's system call allow-list (libseccomp).
 *
 * Anything not listed fails with EPERM (a plugin that probes for an
 * optional call gets an error, not a dead process). Listed with
 * conditions:
 *   clone     only with CLONE_THREAD: a plugin may start threads, never a
 *             process (clone3, whose flags a filter cannot see, answers
 *             ENOSYS, so libc falls back to clone);
 *   kill, tgkill   only to the worker itself (abort() and raise() work;
 *             signalling the host or anyone else does not);
 *   prlimit64 only on the worker itself;
 *   ioctl     only the terminal and file-status queries libc's stdio uses
 *             (never TIOCSTI, which could type into the host's terminal);
 *   personality   only the query.
 * Never allowed: execve/execveat, fork/vfork, ptrace, process_vm_*,
 * mount and friends, namespaces, bpf, io_uring (it would bypass this
 * filter), userfaultfd, perf_event_open, keyrings, module loading,
 * reboot, pidfd_getfd; sockets unless `network: true`.
 * A 32-bit (int 0x80) system call kills the worker (libseccomp's default
 * for a foreign architecture).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker/worker.h"

#include "worker/seccomp_rules.h"

#ifdef CPEX_SECCOMP_PREBUILT
#include "seccomp_filters.h" /* generated: build/generated/, by cpex_seccomp_gen */
#endif

#ifdef CPEX_SECCOMP_PREBUILT
/* The filter compiled at build time, the worker's pid patched in: loading it
   costs microseconds, compiling it with libseccomp about a millisecond of
   every worker start. -1 when it cannot be used (then the rules are
   compiled here). */
static int load_prebuilt(bool net, uint32_t self)
{
    const struct sock_filter *src = net ? wk_filter_network : wk_filter_local;
    size_t n = net ? sizeof wk_filter_network / sizeof *src : sizeof wk_filter_local / sizeof *src;
    unsigned marks = net ? WK_FILTER_NETWORK_MARKS : WK_FILTER_LOCAL_MARKS;
    struct sock_filter prog_insns[1024];
    if (n > sizeof prog_insns / sizeof *prog_insns)
        return -1;
    unsigned found = 0;
    for (size_t i = 0; i < n; i++) {
        prog_insns[i] = src[i];
        if (prog_insns[i].k == WK_SECCOMP_SELF_MARK) {
            prog_insns[i].k = self;
            found++;
        }
    }
    if (found != marks)
        return -1;
    struct sock_fprog prog = {(unsigned short)n, prog_insns};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0 ? 0 : -1;
}
#endif

int wk_seccomp_apply(bool net, char *why, size_t cap)
{
    uint32_t self = (uint32_t)getpid();
#ifdef CPEX_SECCOMP_PREBUILT
    if (load_prebuilt(net, self) == 0)
        return 0;
#endif
    scmp_filter_ctx ctx = NULL;
    int rc = wk_seccomp_build(net, self, &ctx);
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (rc != 0)
        snprintf(why, cap, "the seccomp filter could not be installed: %s", strerror(-rc));
    seccomp_release(ctx);
    return rc == 0 ? 0 : -1;
}
