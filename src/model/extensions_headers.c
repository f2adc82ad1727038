/*
 * extensions_headers.c — the header sets of the extensions object
 * (cpex/extensions.h): names are unique case-insensitively and keep their
 * first spelling and their order. Setter and getters; the object's memory
 * is extensions_layout.h.
 */
#include "model/extensions_layout.h"

#include <stdint.h>
#include <string.h>

#include "model/extensions_internal.h"
#include "model/text_check.h"
#include "util/alloc.h"

static const cpex__ext_headers *header_set(const cpex_extensions *ext, uint32_t set)
{
    return (ext && set < CPEX__EXT_HEADER_SETS) ? &ext->body->headers[set] : NULL;
}

cpex_status cpex_extensions_set_header(cpex_extensions *ext, uint32_t set, const char *name,
                                       const char *value)
{
    if (!ext || set >= CPEX__EXT_HEADER_SETS || !name)
        return CPEX_E_INVALID;
    cpex__ext_check_sole_owner(ext);
    if (!cpex__ext_own_body(ext))
        return CPEX_E_NOMEM;
    size_t name_len = strlen(name);
    if (!cpex__header_name_valid(name, name_len))
        return CPEX_E_INVALID;
    cpex__ext_headers *h = &ext->body->headers[set];
    cpex__ext_header *found = cpex__ext_header_find(h, name, name_len);
    if (!value) {
        if (found) {
            cpex__ext_header gone = *found;
            size_t pos = (size_t)(found - h->items);
            memmove(found, found + 1, (h->count - pos - 1) * sizeof *found);
            h->count--;
            cpex__ext_str_unref(gone.name);
            cpex__ext_str_unref(gone.value);
        }
        return CPEX_OK;
    }
    size_t value_len = strlen(value);
    if (!cpex__header_value_valid(value, value_len))
        return CPEX_E_INVALID;
    if (found) {
        /* Replace in place: position and the first spelling of the name
         * stay, as an HTTP stack would keep them. */
        cpex__ext_str *v = cpex__ext_str_new(value, value_len);
        if (!v)
            return CPEX_E_NOMEM;
        cpex__ext_str *old = found->value;
        found->value = v;
        cpex__ext_str_unref(old);
        return CPEX_OK;
    }
    cpex__ext_header *items = cpex__grow(h->items, h->count, &h->cap, sizeof *items, 8);
    if (!items)
        return CPEX_E_NOMEM;
    h->items = items;
    cpex__ext_str *n = cpex__ext_str_new(name, name_len);
    cpex__ext_str *v = n ? cpex__ext_str_new(value, value_len) : NULL;
    if (!v) {
        cpex__ext_str_unref(n);
        return CPEX_E_NOMEM;
    }
    h->items[h->count].name = n;
    h->items[h->count].value = v;
    h->count++;
    return CPEX_OK;
}

cpex_str cpex__extensions_header_str(const cpex_extensions *ext, uint32_t set, const char *name)
{
    const cpex__ext_headers *h = header_set(ext, set);
    if (!h || !name)
        return cpex__ext_str_view(NULL);
    const cpex__ext_header *found = cpex__ext_header_find(h, name, strlen(name));
    return found ? cpex__ext_str_view(found->value) : cpex__ext_str_view(NULL);
}

const char *cpex_extensions_header(const cpex_extensions *ext, uint32_t set, const char *name)
{
    return cpex__extensions_header_str(ext, set, name).ptr;
}

size_t cpex_extensions_header_count(const cpex_extensions *ext, uint32_t set)
{
    const cpex__ext_headers *h = header_set(ext, set);
    return h ? h->count : 0;
}

int cpex__extensions_header_at_str(const cpex_extensions *ext, uint32_t set, size_t index,
                                   cpex_str *name, cpex_str *value)
{
    const cpex__ext_headers *h = header_set(ext, set);
    if (!h || index >= h->count)
        return 0;
    if (name)
        *name = cpex__ext_str_view(h->items[index].name);
    if (value)
        *value = cpex__ext_str_view(h->items[index].value);
    return 1;
}

const char *cpex_extensions_header_at(const cpex_extensions *ext, uint32_t set, size_t index,
                                      const char **value)
{
    cpex_str n, v;
    if (!cpex__extensions_header_at_str(ext, set, index, &n, &v)) {
        if (value)
            *value = NULL;
        return NULL;
    }
    if (value)
        *value = v.ptr;
    return n.ptr;
}
