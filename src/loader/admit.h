/*
 * admit.h — what a plugin library must pass before the dynamic loader
 * sees it, and again right after (loader layer). lib_factory.c calls these
 * around its dlopen; docs/configuration.md ("Plugin files") is the
 * operator's view.
 *
 *   1. The path names a regular file, opened without blocking (libfile.c):
 *      a FIFO, socket, directory, device, link loop or dangling link is
 *      refused with its own message instead of hanging in dlopen.
 *   2. Only root and the host's user can replace it (trust.c): otherwise a
 *      warning through the manager's log, naming the path, what is wrong
 *      and the chmod/chown that fixes it — or, under strict_permissions, a
 *      refusal with the same words.
 *   3. A `sha256:` pin is compared with the SHA-256 of the opened file.
 *   4. After dlopen the path must still name that file, unchanged.
 */
#ifndef CPEX_LOADER_ADMIT_H
#define CPEX_LOADER_ADMIT_H

#include "cpex/error.h"
#include "cpex/factory.h"
#include "loader/libcache.h"
#include "loader/libfile.h"

/**
 * Steps 1-3 for the library at `path` (resolved, absolute), which the
 * operator wrote as `as_written` (absolute; may be NULL). On CPEX_OK, `f`
 * is open (close it with cpex__libfile_close after step 4) and, when
 * req->sha256 was given, it matched. On failure `f` is closed and `err`
 * has one item "... library '<path>' ...: why, and what to do" — except
 * for a path that does not exist: then *missing is set and nothing is
 * added, so that the caller reports it with where relative paths resolve.
 * `found` (may be NULL) gets what the checks found on success, for the
 * cache (libcache.h); it is zeroed when memory ran out.
 */
cpex_status cpex__admit_library(cpex__libfile *f, const char *path, const char *as_written,
                                const cpex_factory_request *req, int *missing,
                                cpex__libcheck *found, cpex_error *err);

/**
 * Steps 2-3 again from what a recent full check found (libcache.h): the
 * same warning or refusal, and the pin compared with the hash that check
 * computed (the caller makes a full check when it computed none).
 */
cpex_status cpex__admit_cached(const cpex__libcheck *check, const cpex_factory_request *req,
                               cpex_error *err);

/** Whether `req` pins a sha256 (a request built against an older header cannot). */
int cpex__admit_pinned(const cpex_factory_request *req);

/** Step 4, after dlopen(path) succeeded: CPEX_OK, or CPEX_E_LOAD (the caller dlcloses). */
cpex_status cpex__admit_loaded(const cpex__libfile *f, const char *path, cpex_error *err);

#endif
