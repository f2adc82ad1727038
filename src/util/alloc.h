/*
 * alloc.h — the one allocation entry point of libcpex.
 *
 * Every allocation in the library (jansson's included, through
 * json_set_alloc_funcs) goes through these functions, so a test can make
 * the n-th allocation fail and prove that each path ends cleanly.
 */
#ifndef CPEX_UTIL_ALLOC_H
#define CPEX_UTIL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *cpex__malloc(size_t size);
void *cpex__calloc(size_t count, size_t size);
void *cpex__realloc(void *ptr, size_t size);
void cpex__free(void *ptr);
/** strdup through cpex__malloc; NULL in gives NULL out. */
char *cpex__strdup(const char *s);
/** Copy `len` bytes and add a NUL. */
char *cpex__strndup(const char *s, size_t len);
/** printf into a new string; NULL on OOM. */
char *cpex__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Test hooks. cpex__alloc_fail_at(n): the n-th allocation from now fails
 * (1 = the next one); 0 turns failure injection off. cpex__alloc_count()
 * counts successful allocations since the last cpex__alloc_count_reset().
 * Both are process-wide and meant for single-threaded tests.
 */
void cpex__alloc_fail_at(uint64_t n);
uint64_t cpex__alloc_count(void);
void cpex__alloc_count_reset(void);
/** Whether an injected failure has happened since the last fail_at. */
int cpex__alloc_failed(void);

/** Route jansson's allocations through cpex__malloc / cpex__free (idempotent). */
void cpex__alloc_setup_jansson(void);

#endif
