/* alloc.c — see alloc.h. */
#include "util/alloc.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t fail_countdown; /* 0: off */
static _Atomic int fail_happened;
static _Atomic uint64_t alloc_counter;

static int should_fail(void)
{
    uint64_t n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n == 0)
        return 0;
    if (n == 1) {
        atomic_store(&fail_countdown, 0);
        atomic_store(&fail_happened, 1);
        return 1;
    }
    atomic_store(&fail_countdown, n - 1);
    return 0;
}

void *cpex__malloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&alloc_counter, 1, memory_order_relaxed);
    return p;
}

void *cpex__calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&alloc_counter, 1, memory_order_relaxed);
    return p;
}

void *cpex__realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = realloc(ptr, size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&alloc_counter, 1, memory_order_relaxed);
    return p;
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

static pthread_once_t jansson_once = PTHREAD_ONCE_INIT;
static void setup_jansson_once(void) { json_set_alloc_funcs(jansson_malloc, jansson_free); }

void cpex__alloc_setup_jansson(void) { pthread_once(&jansson_once, setup_jansson_once); }
