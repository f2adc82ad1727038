/*
 * trust.h — whether users other than the host's could replace a plugin
 * library (loader layer).
 *
 * Loading a library runs its code with the host's rights, so the library
 * must be as hard to replace as the host itself. The rule is OpenSSH's
 * StrictModes and sudo's for its plugins: the file and every directory
 * from it up to '/' must be owned by root or by the host's effective user,
 * and writable by neither group nor others. A sticky directory (/tmp)
 * counts as writable by others here, as it does for OpenSSH and sudo:
 * the sticky bit keeps others from renaming entries they do not own, but
 * a shared scratch directory is no place for code a host runs, and a rule
 * without exceptions is one an operator can check by eye. When the host
 * runs as root, "owned by the host's user" means owned by root.
 *
 * Both the path as the operator wrote it and the resolved path are
 * walked: a symbolic link on the way can be replaced by whoever can write
 * the directory that holds it.
 */
#ifndef CPEX_LOADER_TRUST_H
#define CPEX_LOADER_TRUST_H

#include <stddef.h>
#include <sys/stat.h>

/**
 * Judge the library whose fstat is `file`, at the resolved `path`
 * (absolute), reached through `as_written` (absolute; may equal `path` or
 * be NULL). Returns the number of findings (0: only root and the host's
 * user can replace it); `out` gets them as one line, each saying what is
 * wrong and what to do ("the file is writable by group and others (mode
 * 0666): run chmod go-w '/x/libp.so'"), cut to `cap`.
 */
int cpex__trust_check(const struct stat *file, const char *path, const char *as_written, char *out,
                      size_t cap);

#endif
