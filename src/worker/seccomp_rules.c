/*
 * seccomp_rules.c — the worker's system call allow-list as libseccomp
 * rules (what seccomp.c says the filter allows and why). Shared by the
 * worker, which can compile it at start, and by cpex_seccomp_gen, which
 * compiles it once at build time (src/worker/gen/).
 */
#include "worker/seccomp_rules.h"

#include <errno.h>
#include <linux/sched.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <termios.h>

/* One group of related calls per line. */
/* clang-format off */
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
/* clang-format on */

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

int wk_seccomp_build(bool net, uint32_t self, scmp_filter_ctx *out)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    *out = NULL;
    if (!ctx)
        return -ENOMEM;
    int rc = allow_all(ctx, always, sizeof always / sizeof *always);
    if (rc == 0 && net)
        rc = allow_all(ctx, network, sizeof network / sizeof *network);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A0(SCMP_CMP_EQ, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                              SCMP_A0(SCMP_CMP_EQ, 0xffffffffu));
    static const unsigned long ioctls[] = {TCGETS,  TIOCGWINSZ, FIONREAD,
                                           FIONBIO, FIOCLEX,    FIONCLEX};
    for (size_t i = 0; rc == 0 && i < sizeof ioctls / sizeof *ioctls; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]));
    if (rc != 0) {
        seccomp_release(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}
