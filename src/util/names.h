/* names.h — tables of names (an enum's values spelled out): lookups. */
#ifndef CPEX_UTIL_NAMES_H
#define CPEX_UTIL_NAMES_H

#include <stddef.h>

/** The index of the `len` bytes at `name` (no NUL needed) in `names`, or -1. */
int cpex__names_find(const char *const *names, size_t count, const char *name, size_t len);

/** The index of the string `name` in `names`, or -1 (also for NULL). */
int cpex__names_index(const char *const *names, size_t count, const char *name);

#endif
