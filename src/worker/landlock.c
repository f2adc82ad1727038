/*
 * landlock.c — the file (and, from ABI 4, TCP) rules of a worker, through
 * Landlock's system calls (there is no library for it in Debian 12).
 *
 * Reads: the plugin's library, the system library directories and the
 * few files the runtime linker and libc read (ld.so.cache, localtime),
 * the worker's own /proc entry, /dev/null, /dev/urandom and the
 * operator's read_paths. Writes: /dev/null and the operator's
 * write_paths. With `network: false` and ABI 4 or later, TCP bind and
 * connect are handled and never allowed; from ABI 6, signals and abstract
 * UNIX sockets are scoped to the worker. Every right the kernel knows is
 * handled, so anything not allowed here is denied.
 *
 * The constants are spelled here, not taken from <linux/landlock.h>:
 * Debian 12's header stops at ABI 2, and the kernel running the worker
 * may know more.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker/worker.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define LL_VERSION_FLAG (1u << 0)
#define LL_RULE_PATH_BENEATH 1

#define FS_EXECUTE (1ull << 0)
#define FS_WRITE_FILE (1ull << 1)
#define FS_READ_FILE (1ull << 2)
#define FS_READ_DIR (1ull << 3)
#define FS_REMOVE_DIR (1ull << 4)
#define FS_REMOVE_FILE (1ull << 5)
#define FS_MAKE_CHAR (1ull << 6)
#define FS_MAKE_DIR (1ull << 7)
#define FS_MAKE_REG (1ull << 8)
#define FS_MAKE_SOCK (1ull << 9)
#define FS_MAKE_FIFO (1ull << 10)
#define FS_MAKE_BLOCK (1ull << 11)
#define FS_MAKE_SYM (1ull << 12)
#define FS_REFER (1ull << 13)     /* ABI 2 */
#define FS_TRUNCATE (1ull << 14)  /* ABI 3 */
#define FS_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define NET_BIND_TCP (1ull << 0)  /* ABI 4 */
#define NET_CONNECT_TCP (1ull << 1)
#define SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define SCOPE_SIGNAL (1ull << 1)

/* The kernel's struct landlock_ruleset_attr; its size tells the kernel
   which fields we know (older kernels get a shorter one). */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* Rights that make sense on a file (the kernel refuses directory rights there). */
#define FS_FILE_RIGHTS (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)
#define FS_READ (FS_READ_FILE | FS_READ_DIR)
#define FS_READ_EXEC (FS_READ | FS_EXECUTE)

typedef struct ll {
    int fd;
    uint64_t handled;
    char *why;
    size_t cap;
} ll;

/* Allow `rights` beneath `path`. A system path that does not exist is
   skipped; one the operator named is an error (`required`): -2, which no
   `require: false` excuses. -1: Landlock itself failed. */
static int allow(ll *l, const char *path, uint64_t rights, int required)
{
    int pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        if (!required)
            return 0;
        snprintf(l->why, l->cap,
                 "sandbox path '%s' cannot be opened: %s; create it, or remove "
                 "it from the sandbox's paths",
                 path, strerror(errno));
        return -2;
    }
    struct stat st;
    if (fstat(pfd, &st) == 0 && !S_ISDIR(st.st_mode))
        rights &= FS_FILE_RIGHTS;
    struct ll_path_beneath pb = {rights & l->handled, pfd};
    long rc =
        pb.allowed_access ? syscall(SYS_landlock_add_rule, l->fd, LL_RULE_PATH_BENEATH, &pb, 0) : 0;
    int e = errno;
    close(pfd);
    if (rc != 0) {
        snprintf(l->why, l->cap, "Landlock refused a rule for '%s': %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int wk_landlock_apply(const wk_sandbox_req *req, int *abi_out, char *why, size_t cap)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_VERSION_FLAG);
    /* Test hook (docs/testing.md): act as a kernel without Landlock. */
    if (getenv("CPEX_WORKER_TEST_NO_LANDLOCK")) {
        abi = -1;
        errno = ENOSYS;
    }
    *abi_out = abi > 0 ? (int)abi : 0;
    if (abi <= 0) {
        snprintf(why, cap, "the kernel offers no Landlock (%s)",
                 errno == ENOSYS       ? "not built in"
                 : errno == EOPNOTSUPP ? "disabled at boot"
                                       : strerror(errno));
        return -1;
    }
    struct ll_ruleset_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR |
                             FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_CHAR | FS_MAKE_DIR |
                             FS_MAKE_REG | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_BLOCK |
                             FS_MAKE_SYM;
    size_t attr_size = sizeof attr.handled_access_fs;
    if (abi >= 2)
        attr.handled_access_fs |= FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= FS_IOCTL_DEV;
    if (abi >= 4) {
        attr_size = offsetof(struct ll_ruleset_attr, scoped);
        if (!req->network)
            attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP;
    }
    if (abi >= 6) {
        attr_size = sizeof attr;
        attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL;
    }
    ll l = {(int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0), attr.handled_access_fs,
            why, cap};
    if (l.fd < 0) {
        snprintf(why, cap, "Landlock refused the ruleset: %s", strerror(errno));
        return -1;
    }
    static const char *const system_dirs[] = {
        "/lib",
        "/lib64",
        "/lib32",
        "/libx32",
        "/usr/lib",
        "/usr/lib64",
        "/usr/lib32",
        "/usr/libx32",
        "/usr/local/lib",
        "/usr/share/zoneinfo",
        "/usr/share/locale",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/dev/urandom",
        "/dev/zero",
    };
    static const char *const resolver_files[] = {
        "/etc/resolv.conf", "/etc/hosts",    "/etc/nsswitch.conf",
        "/etc/services",    "/etc/gai.conf", "/etc/host.conf",
    };
    char self[64];
    snprintf(self, sizeof self, "/proc/%ld", (long)getpid());
    /* A library that cannot be opened is the loader's to report, in its words. */
    int rc = allow(&l, req->library, FS_READ_FILE | FS_EXECUTE, 0);
    for (size_t i = 0; rc == 0 && i < sizeof system_dirs / sizeof *system_dirs; i++)
        rc = allow(&l, system_dirs[i], FS_READ_EXEC, 0);
    for (size_t i = 0;
         rc == 0 && req->network && i < sizeof resolver_files / sizeof *resolver_files; i++)
        rc = allow(&l, resolver_files[i], FS_READ_FILE, 0);
    if (rc == 0)
        rc = allow(&l, self, FS_READ, 0);
    if (rc == 0)
        rc = allow(&l, "/dev/null", FS_READ_FILE | FS_WRITE_FILE, 0);
    for (size_t i = 0; rc == 0 && i < req->read_count; i++)
        rc = allow(&l, req->read_paths[i], FS_READ, 1);
    for (size_t i = 0; rc == 0 && i < req->write_count; i++)
        rc = allow(&l, req->write_paths[i], attr.handled_access_fs & ~FS_EXECUTE, 1);
    if (rc == 0 && syscall(SYS_landlock_restrict_self, l.fd, 0) != 0) {
        snprintf(why, cap, "Landlock could not restrict the worker: %s", strerror(errno));
        rc = -1;
    }
    close(l.fd);
    return rc;
}
