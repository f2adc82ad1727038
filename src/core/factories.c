/*
 * factories.c — factories, payload types and hook bindings, and
 * publishing a new registry snapshot (the one way any change reaches
 * invokes: one atomic store, then an RCU wait before the old one goes).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/call.h"
#include "core/config.h"
#include "core/core.h"
#include "core/manager_internal.h"
#include "cpex/version.h"
#include "util/alloc.h"
#include "util/errors.h"

bool cpex__mgr_add_binding(cpex_manager *m, const char *hook, const char *type)
{
    cpex__binding *n = cpex__realloc(m->bindings, (m->binding_count + 1) * sizeof *n);
    if (!n)
        return false;
    m->bindings = n;
    n[m->binding_count].hook = cpex__strdup(hook);
    n[m->binding_count].type = cpex__strdup(type);
    if (!n[m->binding_count].hook || !n[m->binding_count].type) {
        cpex__free(n[m->binding_count].hook);
        cpex__free(n[m->binding_count].type);
        return false;
    }
    m->binding_count++;
    return true;
}

const char *cpex__mgr_binding_of(const cpex_manager *m, const char *hook)
{
    for (size_t i = 0; i < m->binding_count; i++)
        if (strcmp(m->bindings[i].hook, hook) == 0)
            return m->bindings[i].type;
    return NULL;
}


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

static cpex_status check_factory(const cpex_factory *f, cpex_error *err)
{
    if (!f || f->struct_size < sizeof *f || !f->create)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                              "factory must have struct_size = sizeof(cpex_factory) and a create "
                              "function");
    return CPEX_OK;
}

cpex_status cpex_manager_register_factory(cpex_manager *m, const char *kind,
                                          const cpex_factory *f, cpex_error *err)
{
    if (!m || !kind || !*kind)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "register_factory: empty kind");
    cpex_status st = check_factory(f, err);
    if (st != CPEX_OK)
        return st;
    pthread_mutex_lock(&m->write_lock);
    st = put_factory(&m->exact, &m->exact_count, kind, f, err);
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

cpex_status cpex_manager_register_scheme(cpex_manager *m, const char *scheme,
                                         const cpex_factory *f, cpex_error *err)
{
    if (!m || !scheme || !*scheme || strchr(scheme, ':'))
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                              "register_scheme: a scheme must be non-empty and contain no ':' "
                              "(got '%s')",
                              scheme ? scheme : "(null)");
    cpex_status st = check_factory(f, err);
    if (st != CPEX_OK)
        return st;
    pthread_mutex_lock(&m->write_lock);
    st = put_factory(&m->schemes, &m->scheme_count, scheme, f, err);
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

void cpex_strv_free(char **v)
{
    if (!v)
        return;
    for (char **s = v; *s; s++)
        cpex__free(*s);
    cpex__free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cpex_manager_schemes(const cpex_manager *cm)
{
    cpex_manager *m = (cpex_manager *)cm;
    pthread_mutex_lock(&m->write_lock);
    char **v = cpex__calloc(m->scheme_count + 1, sizeof *v);
    for (size_t i = 0; v && i < m->scheme_count; i++) {
        v[i] = cpex__strdup(m->schemes[i].key);
        if (!v[i]) {
            cpex_strv_free(v);
            v = NULL;
        }
    }
    pthread_mutex_unlock(&m->write_lock);
    if (v)
        qsort(v, m->scheme_count, sizeof *v, cmp_str);
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

bool cpex__mgr_type_known(const cpex_manager *m, const char *name)
{
    if (strcmp(name, "cmf") == 0 || strcmp(name, "json") == 0)
        return true;
    for (size_t i = 0; i < m->type_count; i++)
        if (strcmp(m->types[i].name, name) == 0)
            return true;
    return false;
}

/* Publish a new snapshot of `plugins`; waits for readers of the old one. */
cpex_status cpex__mgr_publish(cpex_manager *m, cpex__plugin *const *plugins, size_t count)
{
    cpex__snapshot *next = cpex__snapshot_build(plugins, count, m->bindings, m->binding_count,
                                              m->types, m->type_count);
    if (!next)
        return CPEX_E_NOMEM;
    cpex__snapshot *old = atomic_exchange(&m->snapshot, next);
    cpex__rcu_synchronize(&m->rcu);
    cpex__snapshot_free(old);
    return CPEX_OK;
}

cpex_status cpex__mgr_republish(cpex_manager *m)
{
    cpex__snapshot *cur = atomic_load(&m->snapshot);
    return cpex__mgr_publish(m, cur->plugins, cur->plugin_count);
}

cpex_status cpex_manager_register_payload_type(cpex_manager *m, const cpex_payload_type *type,
                                               cpex_error *err)
{
    if (!m || !type || type->struct_size < sizeof *type || !type->name || !*type->name ||
        !type->clone || !type->free)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                              "payload type needs struct_size, a name, clone and free");
    pthread_mutex_lock(&m->write_lock);
    cpex_status st = CPEX_OK;
    if (cpex__mgr_type_known(m, type->name)) {
        st = cpex__error_add(err, CPEX_E_EXISTS, NULL, "payload type '%s' is already registered",
                            type->name);
        goto out;
    }
    char *name = cpex__strdup(type->name);
    cpex__type_slot *n = name ? cpex__realloc(m->types, (m->type_count + 1) * sizeof *n) : NULL;
    if (!n) {
        cpex__free(name);
        st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
        goto out;
    }
    m->types = n;
    n[m->type_count].name = name;
    n[m->type_count].type = *type;
    n[m->type_count].type.name = name;
    m->type_count++;
    if (cpex__mgr_republish(m) != CPEX_OK) {
        m->type_count--;
        cpex__free(name);
        st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
out:
    pthread_mutex_unlock(&m->write_lock);
    return st;
}

cpex_status cpex_manager_define_hook(cpex_manager *m, const char *hook, const char *payload_type,
                                     cpex_error *err)
{
    if (!m || !hook || !*hook || !payload_type)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "define_hook: hook and type required");
    pthread_mutex_lock(&m->write_lock);
    cpex_status st = CPEX_OK;
    const char *bound = cpex__mgr_binding_of(m, hook);
    if (!cpex__mgr_type_known(m, payload_type)) {
        st = cpex__error_add(err, CPEX_E_NOT_FOUND, NULL,
                            "payload type '%s' is not registered; register it first",
                            payload_type);
    } else if (bound && strcmp(bound, payload_type) != 0) {
        st = cpex__error_add(err, CPEX_E_TYPE, NULL,
                            "hook '%s' already carries payload type '%s'", hook, bound);
    } else if (!bound) {
        if (!cpex__mgr_add_binding(m, hook, payload_type) || cpex__mgr_republish(m) != CPEX_OK)
            st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    pthread_mutex_unlock(&m->write_lock);
    return st;
}
