/*
 * payload_types.c — host-defined payload types and the hook -> payload
 * type bindings a manager checks invokes and registrations against.
 */
#include <string.h>

#include "core/core.h"
#include "core/manager_internal.h"
#include "util/alloc.h"
#include "util/errors.h"

bool cpex__mgr_add_binding(cpex_manager *m, const char *hook, const char *type)
{
    cpex__hook_name *e = cpex__hook_names_intern(&m->names, hook, strlen(hook));
    return e && cpex__hook_name_bind(e, type);
}

const char *cpex__mgr_binding_of(const cpex_manager *m, const char *hook)
{
    const cpex__hook_name *e = cpex__hook_names_find(&m->names, hook, strlen(hook));
    return e ? e->payload_type : NULL;
}

void cpex__binding_list_free(cpex__binding_list *list)
{
    cpex__free(list->items);
    list->items = NULL;
    list->count = list->cap = 0;
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

cpex_status cpex_manager_register_payload_type(cpex_manager *m, const cpex_payload_type *type,
                                               cpex_error *err)
{
    if (!m || !type || type->struct_size < sizeof *type || !type->name || !*type->name ||
        !type->clone || !type->free)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "payload type needs struct_size, a name, clone and free");
    cpex__mgr_lock(m);
    cpex__mgr_current(m); /* what is pending goes out before this change */
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
    cpex__mgr_unlock(m);
    return st;
}

cpex_status cpex_manager_define_hook(cpex_manager *m, const char *hook, const char *payload_type,
                                     cpex_error *err)
{
    if (!m || !hook || !*hook || !payload_type)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "define_hook: hook and type required");
    cpex__mgr_lock(m);
    cpex__mgr_current(m); /* what is pending goes out before this change */
    cpex_status st = CPEX_OK;
    const char *bound = cpex__mgr_binding_of(m, hook);
    if (!cpex__mgr_type_known(m, payload_type)) {
        st =
            cpex__error_add(err, CPEX_E_NOT_FOUND, NULL,
                            "payload type '%s' is not registered; register it first", payload_type);
    } else if (bound && strcmp(bound, payload_type) != 0) {
        st = cpex__error_add(err, CPEX_E_TYPE, NULL, "hook '%s' already carries payload type '%s'",
                             hook, bound);
    } else if (!bound) {
        if (!cpex__mgr_add_binding(m, hook, payload_type) || cpex__mgr_republish(m) != CPEX_OK)
            st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    cpex__mgr_unlock(m);
    return st;
}
