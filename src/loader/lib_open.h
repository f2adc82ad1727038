/*
 * lib_open.h — dlopen that loads the file a path names now (loader layer).
 *
 * glibc's dlopen first compares the name it is given with the libraries
 * already loaded: while a library opened as /opt/p/rate.so stays loaded,
 * dlopen("/opt/p/rate.so") returns that handle even after a deployment
 * renamed a new build over the path. A reload that must run the new code
 * therefore cannot just dlopen the path again.
 *
 * cpex__lib_open remembers, for every library it opened, the name it was
 * opened under and the identity (device, inode, size, mtime) of the file.
 * Opening a path whose file is one of those returns another reference to
 * it (same code, shared globals, as before). Opening a path whose name is
 * taken by a library of another identity loads a private copy of the new
 * file instead: copied into a fresh directory (under $TMPDIR or /tmp, else
 * beside the library), opened under that unique name, and unlinked at once
 * (the mapping stays valid). docs/configuration.md ("Reload") says so.
 */
#ifndef CPEX_LOADER_LIB_OPEN_H
#define CPEX_LOADER_LIB_OPEN_H

#include <stdbool.h>
#include <stddef.h>

/**
 * dlopen(path, RTLD_NOW | RTLD_LOCAL), loading `path`'s current file.
 * NULL on failure, with the reason in `why` (dlerror text, or why a private
 * copy could not be made).
 */
void *cpex__lib_open(const char *path, char *why, size_t cap);

struct stat;
/**
 * cpex__lib_open for a file the caller has just checked: `known` is what
 * stat(path) gave then (one system call less per plugin of a library
 * loaded many times). NULL `known`: stat it here. *reused (may be NULL)
 * says whether the handle is another reference to a file of that identity
 * this process already mapped and a caller confirmed after mapping it
 * (cpex__lib_open_confirm): nothing was read from disk now, so there is no
 * new mapping to check against the file. A mapping not yet confirmed (its
 * own load may still be checking it, or refused it) is never reported as
 * reused.
 */
void *cpex__lib_open_checked(const char *path, const struct stat *known, bool *reused, char *why,
                             size_t cap);

/** Record that the file was checked after `dl` was mapped (the check after
 *  dlopen passed): later opens of that identity may skip that check. */
void cpex__lib_open_confirm(void *dl);

/** dlclose a handle from cpex__lib_open. */
void cpex__lib_close(void *dl);

/**
 * The identity of the file `path` names ("dev:ino:size:mtime_ns", following
 * links) into buf; -1 when it cannot be read.
 */
int cpex__lib_identity(const char *path, char *buf, size_t cap);

#endif
