/*
 * strv.h — NULL-terminated string vectors, allocated with cpex__malloc.
 */
#ifndef CPEX_UTIL_STRV_H
#define CPEX_UTIL_STRV_H

#include <stddef.h>

#include "cpex/export.h"

/** Copy `n` strings into a new NULL-terminated vector. NULL on OOM. */
char **cpex__strv_copy(const char *const *v, size_t n);
/** Copy a NULL-terminated vector (NULL in: NULL out). NULL on OOM. */
char **cpex__strv_dup(char *const *v);
/** A new empty vector (just the terminator). NULL on OOM. */
char **cpex__strv_empty(void);
/** Number of strings before the terminator; 0 for NULL. */
size_t cpex__strv_len(char *const *v);
/** Free a vector and its strings (public: declared in cpex/manager.h too). */
CPEX_API void cpex_strv_free(char **v);

#endif
