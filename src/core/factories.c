/*
 * factories.c — the factories a manager creates plugins with: by exact
 * kind, or by the scheme before the kind's first ':'.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "util/alloc.h"
#include "util/errors.h"


/* ------------------------------------------------------------------ */
/* Factories, payload types, hook bindings                             */
/* ------------------------------------------------------------------ */

static cpex_status put_factory(cpex__factory_slot **slots, size_t *count, const char *key,
                               const cpex_factory *f, cpex_error *err)
{
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*slots)[i].key, key) == 0) {
            if ((*slots)[i].factory.destroy)
                (*slots)[i].factory.destroy((*slots)[i].factory.data);
            (*slots)[i].factory = *f;
            return CPEX_OK;
        }
    }
    char *k = cpex__strdup(key);
    cpex__factory_slot *n = k ? cpex__realloc(*slots, (*count + 1) * sizeof *n) : NULL;
    if (!n) {
        cpex__free(k);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory registering a factory");
    }
    *slots = n;
    n[*count].key = k;
    n[*count].factory = *f;
    (*count)++;
    return CPEX_OK;
}

/* Destroy a refused factory's data (its destroy, when it has one); returns `st`. */
static cpex_status refuse(const cpex_factory *f, cpex_status st)
{
    if (f && f->struct_size >= offsetof(cpex_factory, destroy) + sizeof f->destroy && f->destroy)
        f->destroy(f->data);
    return st;
}

/* Check and store a factory under `key` in one of the two tables; a
 * refused factory's data is destroyed (what a function takes, it takes on
 * failure too). */
static cpex_status register_in(cpex_manager *m, cpex__factory_slot **slots, size_t *count,
                               const char *key, const cpex_factory *f, cpex_error *err)
{
    if (!f || f->struct_size < sizeof *f || !f->create)
        return refuse(f, cpex__error_add(err, CPEX_E_INVALID, NULL,
                                         "factory must have struct_size = sizeof(cpex_factory) "
                                         "and a create function"));
    cpex__mgr_lock(m);
    cpex_status st = put_factory(slots, count, key, f, err);
    cpex__mgr_unlock(m);
    return st == CPEX_OK ? st : refuse(f, st);
}

cpex_status cpex_manager_register_factory(cpex_manager *m, const char *kind, const cpex_factory *f,
                                          cpex_error *err)
{
    if (!m || !kind || !*kind)
        return refuse(f,
                      cpex__error_add(err, CPEX_E_INVALID, NULL, "register_factory: empty kind"));
    return register_in(m, &m->exact, &m->exact_count, kind, f, err);
}

cpex_status cpex_manager_register_scheme(cpex_manager *m, const char *scheme, const cpex_factory *f,
                                         cpex_error *err)
{
    if (!m || !scheme || !*scheme || strchr(scheme, ':'))
        return refuse(f, cpex__error_add(err, CPEX_E_INVALID, NULL,
                                         "register_scheme: a scheme must be non-empty and "
                                         "contain no ':' (got '%s')",
                                         scheme ? scheme : "(null)"));
    return register_in(m, &m->schemes, &m->scheme_count, scheme, f, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cpex_manager_schemes(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    if (!m)
        return NULL;
    cpex__mgr_lock(m);
    char **v = cpex__calloc(m->scheme_count + 1, sizeof *v);
    for (size_t i = 0; v && i < m->scheme_count; i++) {
        v[i] = cpex__strdup(m->schemes[i].key);
        if (!v[i]) {
            cpex_strv_free(v);
            v = NULL;
        }
    }
    /* Sort while the lock still guards scheme_count: a registration on
     * another thread may grow it the moment the lock is released. */
    if (v)
        qsort(v, m->scheme_count, sizeof *v, cmp_str);
    cpex__mgr_unlock(m);
    return v;
}

/* Find the factory for a kind: exact first, then the scheme before the first ':'. */
const cpex_factory *cpex__mgr_find_factory(const cpex_manager *m, const char *kind)
{
    for (size_t i = 0; i < m->exact_count; i++)
        if (strcmp(m->exact[i].key, kind) == 0)
            return &m->exact[i].factory;
    const char *colon = strchr(kind, ':');
    if (!colon || colon == kind)
        return NULL;
    size_t len = (size_t)(colon - kind);
    for (size_t i = 0; i < m->scheme_count; i++)
        if (strlen(m->schemes[i].key) == len && memcmp(m->schemes[i].key, kind, len) == 0)
            return &m->schemes[i].factory;
    return NULL;
}
