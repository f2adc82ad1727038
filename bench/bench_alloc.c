/*
 * bench_alloc.c — count every heap allocation of the process, not only
 * libcpex's own (src/util/alloc.h counts those).
 *
 * The binary defines malloc, calloc and realloc; the dynamic linker binds
 * every caller (libc itself, jansson, libyaml, libcpex, plugins) to these
 * definitions, which count and forward to glibc's allocator
 * (__libc_malloc & co.). free is not wrapped: the memory comes from the
 * same allocator. Under a sanitizer, which brings its own allocator, the
 * wrapper is compiled out and the libc figure is reported as unavailable.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_NO_MALLOC_WRAP 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define BENCH_NO_MALLOC_WRAP 1
#endif
#endif
#if !defined(__GLIBC__)
#define BENCH_NO_MALLOC_WRAP 1
#endif

static _Atomic int counting;
static _Atomic uint64_t counted;

#ifndef BENCH_NO_MALLOC_WRAP

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

static inline void count_one(void)
{
    if (__builtin_expect(atomic_load_explicit(&counting, memory_order_relaxed), 0))
        atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed);
}

void *malloc(size_t size)
{
    count_one();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    count_one();
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    count_one();
    return __libc_realloc(ptr, size);
}

int bench_malloc_wrapped(void)
{
    static int checked = -1;
    if (checked < 0) {
        /* Prove the interposition: a libc-internal allocation must count. */
        atomic_store(&counted, 0);
        atomic_store(&counting, 1);
        char *volatile s = strdup("bench");
        atomic_store(&counting, 0);
        free(s);
        checked = atomic_load(&counted) >= 1;
    }
    return checked;
}

#else

int bench_malloc_wrapped(void) { return 0; }

#endif

void bench_malloc_count_start(void)
{
    atomic_store(&counted, 0);
    atomic_store(&counting, 1);
}

uint64_t bench_malloc_count_stop(void)
{
    atomic_store(&counting, 0);
    return atomic_load(&counted);
}
