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

void *cpex_malloc(size_t size);
void *cpex_calloc(size_t count, size_t size);
void *cpex_realloc(void *ptr, size_t size);
void cpex_free(void *ptr);
/** strdup through cpex_malloc; NULL in gives NULL out. */
char *cpex_strdup(const char *s);
/** Copy `len` bytes and add a NUL. */
char *cpex_strndup(const char *s, size_t len);
/** printf into a new string; NULL on OOM. */
char *cpex_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Test hooks. cpex_alloc_fail_at(n): the n-th allocation from now fails
 * (1 = the next one); 0 turns failure injection off. cpex_alloc_count()
 * counts successful allocations since the last cpex_alloc_count_reset().
 * Both are process-wide and meant for single-threaded tests.
 */
void cpex_alloc_fail_at(uint64_t n);
uint64_t cpex_alloc_count(void);
void cpex_alloc_count_reset(void);
/** Whether an injected failure has happened since the last fail_at. */
int cpex_alloc_failed(void);

/** Route jansson's allocations through cpex_malloc / cpex_free (idempotent). */
void cpex_alloc_setup_jansson(void);

#endif
