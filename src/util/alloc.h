/*
 * alloc.h — the one allocation entry point of libcpex.
 *
 * Every allocation the library makes itself goes through these functions.
 * As shipped they are plain calls to malloc and friends. The library's
 * jansson values use jansson's allocator, which is the host's to choose:
 * libcpex never calls json_set_alloc_funcs (it would change the allocator
 * of every jansson user in the process). Text that jansson would allocate
 * for libcpex is made with cpex__json_dump (model/json_dump.h) instead.
 *
 * Tests and benchmarks link a second build of alloc.c, compiled with
 * CPEX_ALLOC_TESTING (the cpex_static and cpex_model libraries of the
 * build), which adds the hooks below: failure injection, so a test can
 * make the n-th allocation fail and prove that each path ends cleanly,
 * and a counter. The shipped library has neither.
 */
#ifndef CPEX_UTIL_ALLOC_H
#define CPEX_UTIL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *cpex__malloc(size_t size);
void *cpex__calloc(size_t count, size_t size);
void *cpex__realloc(void *ptr, size_t size);
void cpex__free(void *ptr);

/**
 * Room for one more element in an array of `size`-byte elements that holds
 * `count` of *cap: `items` itself when there is room, else the array
 * reallocated to twice *cap (or `first` when empty) with *cap updated.
 * NULL on out of memory or overflow: `items` and *cap are unchanged and
 * still valid.
 */
static inline void *cpex__grow(void *items, size_t count, size_t *cap, size_t size, size_t first)
{
    if (count < *cap)
        return items;
    size_t n = *cap ? *cap * 2 : first;
    if (n < *cap || n > SIZE_MAX / size)
        return NULL;
    void *p = cpex__realloc(items, n * size);
    if (p)
        *cap = n;
    return p;
}
/** strdup through cpex__malloc; NULL in gives NULL out. */
char *cpex__strdup(const char *s);
/** Copy `len` bytes and add a NUL. */
char *cpex__strndup(const char *s, size_t len);
/** printf into a new string; NULL on OOM. */
char *cpex__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Test hooks: only in the CPEX_ALLOC_TESTING build of alloc.c (a program
 * that links the shipped library and calls them does not link).
 *
 * cpex__alloc_fail_at(n): the n-th allocation from now fails (1 = the next
 * one); 0 turns failure injection off. cpex__alloc_count() counts
 * successful allocations since the last cpex__alloc_count_reset(). Both
 * are process-wide and meant for single-threaded tests.
 */
void cpex__alloc_fail_at(uint64_t n);
uint64_t cpex__alloc_count(void);
void cpex__alloc_count_reset(void);
/** Whether an injected failure has happened since the last fail_at. */
int cpex__alloc_failed(void);
/**
 * Route jansson's allocations through cpex__malloc / cpex__free, so the
 * hooks above see them too. The test is the host here: it may choose
 * jansson's allocator; the library never does.
 */
void cpex__alloc_hook_jansson(void);

#endif
