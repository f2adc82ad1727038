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
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "worker/worker.h"

static const char *const always[] = {
    /* files and descriptors (Landlock decides which files) */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "close", "close_range", "stat", "fstat", "lstat",
    "newfstatat", "statx", "statfs", "fstatfs", "lseek", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir",
    "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
    "symlink", "symlinkat", "truncate", "ftruncate", "fallocate", "fsync", "fdatasync",
    "sync_file_range", "utimensat", "chmod", "fchmod", "fchmodat", "umask", "fcntl", "dup",
    "dup2", "dup3", "pipe", "pipe2", "flock", "sendfile", "copy_file_range", "splice", "tee",
    "memfd_create", "fadvise64", "readahead",
    /* memory */
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "msync", "mincore", "mlock",
    "munlock", "membarrier", "get_mempolicy",
    /* threads and synchronization */
    "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
    "sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "arch_prctl", "prctl",
    /* time */
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "timer_create", "timer_settime", "timer_gettime", "timer_delete", "timer_getoverrun",
    "getitimer", "setitimer", "alarm", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    /* identity and limits (read only, or lowering) */
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups",
    "getresuid", "getresgid", "getpgrp", "getpgid", "getsid", "getrusage", "times", "sysinfo",
    "uname", "getrlimit", "setrlimit", "capget", "getrandom", "getcpu",
    /* signals (to itself: see kill/tgkill) */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "sigaltstack", "restart_syscall", "signalfd", "signalfd4",
    /* waiting on descriptors */
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "wait4", "waitid",
    /* more restrictions on itself are always welcome */
    "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    /* the end */
    "exit", "exit_group",
};

static const char *const network[] = {
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto",
    "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname",
    "getpeername", "getsockopt", "setsockopt",
};

static int allow_all(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not a call of this architecture */
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc != 0 && rc != -EDOM)
            return rc;
    }
    return 0;
}

int wk_seccomp_apply(bool net, char *why, size_t cap)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx) {
        snprintf(why, cap, "libseccomp could not start a filter");
        return -1;
    }
    int rc = allow_all(ctx, always, sizeof always / sizeof *always);
    if (rc == 0 && net)
        rc = allow_all(ctx, network, sizeof network / sizeof *network);
    scmp_datum_t self = (scmp_datum_t)getpid();
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                              SCMP_A0(SCMP_CMP_EQ, self));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, self));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                              SCMP_A0(SCMP_CMP_EQ, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                              SCMP_A0(SCMP_CMP_EQ, 0xffffffffu));
    static const unsigned long ioctls[] = {TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX,
                                           FIONCLEX};
    for (size_t i = 0; rc == 0 && i < sizeof ioctls / sizeof *ioctls; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (rc != 0)
        snprintf(why, cap, "the seccomp filter could not be installed: %s", strerror(-rc));
    seccomp_release(ctx);
    return rc == 0 ? 0 : -1;
}
