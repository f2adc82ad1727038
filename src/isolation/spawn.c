/* spawn.c — finding and starting the worker program (see spawn.h). */
#include "isolation/spawn.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"

#ifndef CPEX_LIBEXEC_REL
#define CPEX_LIBEXEC_REL "../libexec"
#endif
#define WORKER_NAME "cpex-worker"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

extern char **environ;

/* ------------------------------------------------------------------ */
/* Finding the program                                                 */
/* ------------------------------------------------------------------ */

static bool runnable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *given(const char *path, const char *what, char *why, size_t cap)
{
    if (runnable(path))
        return cpex__strdup(path);
    snprintf(why, cap,
             "the worker program '%s' (%s) is not an executable file; build or install "
             "cpex-worker, or point %s at it",
             path, what, what);
    return NULL;
}

char *cpex__iso_worker_find(const char *explicit_path, char *why, size_t cap)
{
    if (explicit_path && *explicit_path)
        return given(explicit_path, "the manager option worker_path", why, cap);
    const char *env = getenv("CPEX_WORKER");
    if (env && *env)
        return given(env, "$CPEX_WORKER", why, cap);
    Dl_info info;
    char dir[4096] = ".";
    if (dladdr((void *)cpex__iso_worker_find, &info) && info.dli_fname &&
        strchr(info.dli_fname, '/')) {
        snprintf(dir, sizeof dir, "%s", info.dli_fname);
        *strrchr(dir, '/') = '\0';
    }
    char *beside = cpex__asprintf("%s/" WORKER_NAME, dir);
    char *libexec = cpex__asprintf("%s/" CPEX_LIBEXEC_REL "/cpex/" WORKER_NAME, dir);
    char *found = NULL;
    if (beside && runnable(beside))
        found = beside, beside = NULL;
    else if (libexec && runnable(libexec))
        found = libexec, libexec = NULL;
    else
        snprintf(why, cap,
                 "cannot find the worker program that runs isolated plugins (tried '%s' and "
                 "'%s'); install cpex-worker with libcpex, or name it with $CPEX_WORKER or the "
                 "manager option worker_path",
                 beside ? beside : "?", libexec ? libexec : "?");
    cpex__free(beside);
    cpex__free(libexec);
    return found;
}

/* ------------------------------------------------------------------ */
/* Starting it                                                         */
/* ------------------------------------------------------------------ */

/* What of the host's environment a worker keeps: locale and time zone,
   the runtime linker's path, the test hooks, and the sanitizers' options
   (for a sanitized build; below). */
static bool kept(const char *entry)
{
    static const char *const names[] = {
        "LANG=", "LANGUAGE=", "TZ=", "LD_LIBRARY_PATH=", "UBSAN_OPTIONS=", "CPEX_WORKER_TEST_"};
    if (strncmp(entry, "LC_", 3) == 0)
        return true;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/*
 * A sanitized worker (a sanitizer build of the tree) gets the host's
 * options plus: no leak check (LeakSanitizer needs ptrace, which the
 * sandbox forbids), and no fatal-signal handlers, so that a plugin that
 * crashes its worker dies of its signal as in a plain build (the host
 * reports SIGSEGV, not a sanitizer's exit status). Harmless elsewhere.
 */
#define SAN_SIGNALS "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0"

static char *san_options(const char *name, const char *host, const char *extra)
{
    return cpex__asprintf("%s=%s%s%s", name, host ? host : "", host && *host ? ":" : "", extra);
}

static char **worker_env(void)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = cpex__calloc(n + 3, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    const char *asan = NULL, *tsan = NULL;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "ASAN_OPTIONS=", 13) == 0)
            asan = *e + 13;
        else if (strncmp(*e, "TSAN_OPTIONS=", 13) == 0)
            tsan = *e + 13;
        else if (kept(*e) && !(env[k++] = cpex__strdup(*e)))
            goto oom;
    }
    if (!(env[k++] = san_options("ASAN_OPTIONS", asan, "detect_leaks=0:" SAN_SIGNALS)) ||
        !(env[k++] = san_options("TSAN_OPTIONS", tsan, SAN_SIGNALS)))
        goto oom;
    return env;
oom:
    for (size_t i = 0; i < k; i++)
        cpex__free(env[i]);
    cpex__free(env);
    return NULL;
}

pid_t cpex__iso_spawn(const char *path, char *const argv[], int fd3, int out, char *why, size_t cap)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char **env = worker_env();
    if (!env) {
        snprintf(why, cap, "out of memory starting the worker");
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* Standard error is the host's; if it has none, /dev/null. */
    bool have_err = fcntl(2, F_GETFD) >= 0;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (fd3 >= 0)
        posix_spawn_file_actions_adddup2(&fa, fd3, 3);
    if (out >= 0)
        posix_spawn_file_actions_adddup2(&fa, out, 1);
    else if (have_err)
        posix_spawn_file_actions_adddup2(&fa, 2, 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!have_err)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, fd3 >= 0 ? 4 : 3);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path, &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    for (char **e = env; *e; e++)
        cpex__free(*e);
    cpex__free(env);
    if (rc != 0) {
        snprintf(why, cap, "cannot start the worker program '%s': %s", path, strerror(rc));
        return -1;
    }
    return pid;
}

int cpex__iso_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

void cpex__iso_pidfd_kill(int pidfd)
{
    if (pidfd >= 0)
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

int cpex__iso_pidfd_reap(int pidfd, int block, int *sig, int *status, char *text, size_t cap)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    *sig = *status = -1;
    int rc;
    do
        rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | (block ? 0 : WNOHANG));
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        snprintf(text, cap, "ended (how is unknown: the host's own code reaped it)");
        return -1;
    }
    if (si.si_pid == 0)
        return 0;
    if (si.si_code == CLD_EXITED) {
        *status = si.si_status;
        snprintf(text, cap, "exited with status %d", si.si_status);
    } else {
        *sig = si.si_status;
        const char *abbrev = sigabbrev_np(si.si_status);
        snprintf(text, cap, "was killed by signal %d (SIG%s%s)", si.si_status,
                 abbrev ? abbrev : "?", si.si_code == CLD_DUMPED ? ", core dumped" : "");
    }
    return 1;
}
