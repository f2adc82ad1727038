/*
 * libfile.h — what a plugin library path names, checked before the
 * dynamic loader sees it (loader layer).
 *
 * dlopen opens whatever the path names and blocks in open() on a FIFO
 * (forever, with no writer), reads a device, and follows any link. So the
 * loader hands it only a regular file, checked without blocking: stat
 * says what the path is (each other kind gets its own message), then the
 * file is opened O_RDONLY | O_NONBLOCK (a FIFO swapped in meanwhile cannot
 * block the open either) and fstat must agree with the stat. Its SHA-256
 * is read through that descriptor, and who could replace it is judged
 * from its fstat (trust.c).
 *
 * Why dlopen(path) and not dlopen("/proc/self/fd/N") of the descriptor
 * we checked: glibc names the loaded object after the string it was
 * given, and (a) matches later dlopen calls against loaded objects by
 * that name first — a second library opened under a descriptor number
 * reused after a close gets the first library's handle back; (b) expands
 * $ORIGIN in RUNPATH to /proc/self/fd, so a plugin that ships its
 * dependencies beside it no longer finds them; (c) backtraces, gdb, core
 * files and sanitizer reports show /proc/self/fd/N, which names nothing
 * once the descriptor is closed. Instead the path is loaded and then
 * checked again (cpex__libfile_same): it must still name the very file
 * that was checked (device, inode), unchanged (size, modification and
 * change times). What remains is a swap and a swap back within the load,
 * which needs write access to the file's directory — exactly what the
 * trust check reports, and strict_permissions refuses.
 */
#ifndef CPEX_LOADER_LIBFILE_H
#define CPEX_LOADER_LIBFILE_H

#include <stddef.h>
#include <sys/stat.h>

#include "util/sha256.h"

typedef struct cpex__libfile {
    int fd;         /* read-only descriptor of the regular file; -1 when not open */
    struct stat st; /* its fstat */
} cpex__libfile;

/** What went wrong opening a path (cpex__libfile_open). */
typedef enum cpex__libfile_fail {
    CPEX_LIBFILE_OK = 0,
    CPEX_LIBFILE_MISSING, /* nothing at the path (the caller says where paths resolve) */
    CPEX_LIBFILE_OTHER    /* anything else: `why` says what and what to do */
} cpex__libfile_fail;

/**
 * Open `path` for the dynamic loader without blocking. CPEX_LIBFILE_OK
 * with f->fd open on a regular file; otherwise f->fd is -1 and `why` is a
 * phrase that completes "cannot load library '<path>': " — a FIFO, a
 * socket, a directory, a character or block device, a link loop, a
 * dangling link (with its target), a path through a non-directory, no
 * permission — with what to do.
 */
cpex__libfile_fail cpex__libfile_open(cpex__libfile *f, const char *path, char *why, size_t cap);

/**
 * After dlopen(path): 0 when `path` still names the very file `f` holds
 * (device and inode) with the same size and modification and change
 * times; else -1 with `why` completing "library '<path>' ".
 */
int cpex__libfile_same(const cpex__libfile *f, const char *path, char *why, size_t cap);

/**
 * The SHA-256 of the open file, read through its descriptor from the
 * start, as 64 lowercase hex digits. 0, or -1 with `why` (a read error).
 */
int cpex__libfile_sha256(const cpex__libfile *f, char hex[CPEX__SHA256_HEX + 1], char *why,
                         size_t cap);

/** Close the descriptor (if open). */
void cpex__libfile_close(cpex__libfile *f);

#endif
