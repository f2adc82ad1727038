/*
 * spawn.h — finding the cpex-worker program and starting it.
 *
 * Workers are started with posix_spawn (a vfork-style clone and exec,
 * never a fork of the threaded host), in a process group of their own (a
 * terminal's Ctrl-C goes to the host, which decides), with every signal at
 * its default, standard input /dev/null, standard output joined to
 * standard error (a plugin's printf never mixes into a host's output), no
 * descriptor but the ones named, and an environment reduced to what the
 * runtime needs: a plugin never sees the host's secrets in its
 * environment.
 */
#ifndef CPEX_ISOLATION_SPAWN_H
#define CPEX_ISOLATION_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/**
 * The worker program: `explicit_path` (the manager option) if given, else
 * $CPEX_WORKER, else beside the library or program holding libcpex's
 * code (its directory, then the libexec directory relative to it).
 * malloc'd (cpex__free); NULL with a reason in `why` when none is there.
 */
char *cpex__iso_worker_find(const char *explicit_path, char *why, size_t cap);

/**
 * Start `path` with `argv` (argv[0] included, NULL-terminated): `fd3` (if
 * >= 0) becomes its fd 3, `out` (if >= 0) its standard output instead of
 * standard error. Returns the pid, or -1 with a reason in `why`.
 */
pid_t cpex__iso_spawn(const char *path, char *const argv[], int fd3, int out, char *why,
                      size_t cap);

/** A pidfd for `pid` (-1 on failure). */
int cpex__iso_pidfd_open(pid_t pid);
/** Send SIGKILL through a pidfd. */
void cpex__iso_pidfd_kill(int pidfd);
/**
 * Reap the process of `pidfd`: `block` waits for it to end. Returns 1 and
 * a text like "killed by signal 11 (SIGSEGV)" or "exited with status 0"
 * (and *sig, *status: -1 when not that way) once it ended, 0 while it
 * runs (non-blocking), -1 when it cannot be reaped (the host reaped it).
 */
int cpex__iso_pidfd_reap(int pidfd, int block, int *sig, int *status, char *text, size_t cap);

#endif
