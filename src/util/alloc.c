/* alloc.c — see alloc.h. Built twice: as shipped, and with CPEX_ALLOC_TESTING. */
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CPEX_ALLOC_TESTING
#include <jansson.h>
#include <stdatomic.h>

static _Atomic uint64_t fail_countdown; /* 0: off */
static _Atomic int fail_happened;
static _Atomic uint64_t alloc_counter;

/* One atomic step per allocation, so two threads never both take the
 * last count (the tests that inject are single-threaded; the benchmarks
 * that count are not). */
static int should_fail(void)
{
    uint64_t n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (n != 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1)) {
            if (n == 1) {
                atomic_store(&fail_happened, 1);
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&alloc_counter, 1, memory_order_relaxed);
    return p;
}

#define ALLOC_CHECK()                                                                              \
    do {                                                                                           \
        if (should_fail())                                                                         \
            return NULL;                                                                           \
    } while (0)
#define ALLOC_COUNT(p) counted(p)

void cpex__alloc_fail_at(uint64_t n)
{
    atomic_store(&fail_happened, 0);
    atomic_store(&fail_countdown, n);
}

uint64_t cpex__alloc_count(void) { return atomic_load(&alloc_counter); }
void cpex__alloc_count_reset(void) { atomic_store(&alloc_counter, 0); }
int cpex__alloc_failed(void) { return atomic_load(&fail_happened); }

static void *jansson_malloc(size_t size) { return cpex__malloc(size); }
static void jansson_free(void *p) { cpex__free(p); }
void cpex__alloc_hook_jansson(void) { json_set_alloc_funcs(jansson_malloc, jansson_free); }

#else
#define ALLOC_CHECK() ((void)0)
#define ALLOC_COUNT(p) (p)
#endif

void *cpex__malloc(size_t size)
{
    ALLOC_CHECK();
    return ALLOC_COUNT(malloc(size ? size : 1));
}

void *cpex__calloc(size_t count, size_t size)
{
    ALLOC_CHECK();
    return ALLOC_COUNT(calloc(count ? count : 1, size ? size : 1));
}

void *cpex__realloc(void *ptr, size_t size)
{
    ALLOC_CHECK();
    return ALLOC_COUNT(realloc(ptr, size ? size : 1));
}

void cpex__free(void *ptr) { free(ptr); }

char *cpex__strndup(const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *d = cpex__malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *cpex__strdup(const char *s) { return s ? cpex__strndup(s, strlen(s)) : NULL; }

char *cpex__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *buf = cpex__malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return buf;
}
