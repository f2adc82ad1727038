/* wire_ext.c — extensions and context on the transport (see wire_ext.h). */
#include "isolation/wire_ext.h"

#include <string.h>

#include "model/capabilities.h"
#include "model/extensions_internal.h"

static const uint32_t single_fields[ISO_EXT_NSINGLE] = {ISO_EXT_SINGLE_FIELDS};
static const uint32_t list_fields[ISO_EXT_NLIST] = {ISO_EXT_LIST_FIELDS};

int cpex__iso_ext_single_index(uint32_t field)
{
    for (int i = 0; i < ISO_EXT_NSINGLE; i++)
        if (single_fields[i] == field)
            return i;
    return -1;
}

int cpex__iso_ext_list_index(uint32_t field)
{
    for (int i = 0; i < ISO_EXT_NLIST; i++)
        if (list_fields[i] == field)
            return i;
    return -1;
}

/*
 * Layout: u8 present; then u32 n + n x (u32 slot, str) for the singles,
 * u32 n + n x (u32 slot, u32 count, count x str) for the lists, two header
 * sets of u32 count + count x (str name, str value), u8 custom + JSON.
 */
void cpex__iso_wr_ext(cpex__iso_wr *w, const cpex_extensions *ext, uint32_t caps)
{
    cpex__iso_wr_u8(w, ext != NULL);
    if (!ext)
        return;
    size_t at = w->len;
    uint32_t n = 0;
    cpex__iso_wr_u32(w, 0);
    for (uint32_t i = 0; i < ISO_EXT_NSINGLE; i++) {
        if (!cpex__caps_can_read_field(caps, single_fields[i]))
            continue;
        cpex_str s = cpex__extensions_get_str(ext, single_fields[i]);
        if (!s.ptr)
            continue;
        cpex__iso_wr_u32(w, i);
        cpex__iso_wr_strn(w, s.ptr, s.len);
        n++;
    }
    cpex__iso_wr_u32_at(w, at, n);
    at = w->len;
    n = 0;
    cpex__iso_wr_u32(w, 0);
    for (uint32_t i = 0; i < ISO_EXT_NLIST; i++) {
        size_t count = cpex__caps_can_read_field(caps, list_fields[i])
                           ? cpex_extensions_count(ext, list_fields[i])
                           : 0;
        if (!count)
            continue;
        cpex__iso_wr_u32(w, i);
        cpex__iso_wr_u32(w, (uint32_t)count);
        for (size_t k = 0; k < count; k++) {
            cpex_str s = cpex__extensions_item_str(ext, list_fields[i], k);
            cpex__iso_wr_strn(w, s.ptr, s.len);
        }
        n++;
    }
    cpex__iso_wr_u32_at(w, at, n);
    for (uint32_t set = 0; set < 2; set++) {
        size_t count = (caps & CPEX_CAP_READ_HEADERS) ? cpex_extensions_header_count(ext, set) : 0;
        cpex__iso_wr_u32(w, (uint32_t)count);
        for (size_t k = 0; k < count; k++) {
            cpex_str name = {NULL, 0}, value = {NULL, 0};
            cpex__extensions_header_at_str(ext, set, k, &name, &value);
            cpex__iso_wr_strn(w, name.ptr, name.len);
            cpex__iso_wr_strn(w, value.ptr, value.len);
        }
    }
    const json_t *custom =
        (caps & CPEX_CAP_READ_CUSTOM) ? cpex__extensions_custom_object(ext) : NULL;
    bool has_custom = custom && json_object_size(custom) > 0;
    cpex__iso_wr_u8(w, has_custom);
    if (has_custom)
        cpex__iso_wr_json(w, custom);
}

bool cpex__iso_rd_ext(cpex__iso_rd *r, cpex__iso_arena *arena, cpex__iso_ext_view *out)
{
    memset(out, 0, sizeof *out);
    if (!cpex__iso_rd_u8(r))
        return !r->bad;
    uint32_t n = cpex__iso_rd_count(r, 9, "extensions");
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint32_t slot = cpex__iso_rd_u32(r);
        cpex_str s = cpex__iso_rd_str(r, ISO_S_TEXT, "extensions field");
        if (slot >= ISO_EXT_NSINGLE)
            return cpex__iso_rd_fail(r, "extensions: field slot %u", slot);
        out->single[slot] = s;
    }
    n = cpex__iso_rd_count(r, 8, "extension lists");
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint32_t slot = cpex__iso_rd_u32(r);
        uint32_t count = cpex__iso_rd_count(r, 5, "extension list");
        if (slot >= ISO_EXT_NLIST)
            return cpex__iso_rd_fail(r, "extensions: list slot %u", slot);
        cpex_str *items = count ? cpex__iso_arena_alloc(arena, count * sizeof *items) : NULL;
        if (count && !items)
            return cpex__iso_rd_fail(r, "extensions: out of memory");
        for (uint32_t k = 0; k < count && !r->bad; k++)
            items[k] = cpex__iso_rd_str(r, ISO_S_TEXT, "extension list item");
        out->list[slot].count = count;
        out->list[slot].items = items;
    }
    for (int set = 0; set < 2 && !r->bad; set++) {
        uint32_t count = cpex__iso_rd_count(r, 10, "headers");
        cpex_str *names = count ? cpex__iso_arena_alloc(arena, 2 * count * sizeof *names) : NULL;
        if (count && !names)
            return cpex__iso_rd_fail(r, "headers: out of memory");
        for (uint32_t k = 0; k < count && !r->bad; k++) {
            names[k] = cpex__iso_rd_str(r, ISO_S_TEXT, "header name");
            names[count + k] = cpex__iso_rd_str(r, ISO_S_TEXT, "header value");
        }
        out->headers[set].count = count;
        out->headers[set].names = names;
        out->headers[set].values = names ? names + count : NULL;
    }
    if (cpex__iso_rd_u8(r)) {
        size_t at = r->pos;
        cpex__iso_rd_skip_json(r, "custom");
        out->custom = r->buf + at;
        out->custom_len = r->pos - at;
    }
    if (r->bad)
        memset(out, 0, sizeof *out);
    return !r->bad;
}

cpex_extensions *cpex__iso_ext_materialize(const cpex__iso_ext_view *v, const json_t *custom)
{
    cpex_extensions *e = cpex_extensions_new();
    if (!e)
        return NULL;
    cpex_status st = CPEX_OK;
    for (int i = 0; i < ISO_EXT_NSINGLE && st == CPEX_OK; i++)
        if (v->single[i].ptr)
            st = cpex_extensions_set(e, single_fields[i], v->single[i].ptr);
    for (int i = 0; i < ISO_EXT_NLIST && st == CPEX_OK; i++)
        for (size_t k = 0; k < v->list[i].count && st == CPEX_OK; k++)
            st = cpex_extensions_add(e, list_fields[i], v->list[i].items[k].ptr);
    for (uint32_t set = 0; set < 2 && st == CPEX_OK; set++)
        for (size_t k = 0; k < v->headers[set].count && st == CPEX_OK; k++)
            st = cpex_extensions_set_header(e, set, v->headers[set].names[k].ptr,
                                            v->headers[set].values[k].ptr);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)custom, key, val)
    {
        if (st != CPEX_OK)
            break;
        json_t *copy = json_deep_copy(val);
        st = copy ? cpex_extensions_set_custom(e, key, copy) : CPEX_E_NOMEM;
    }
    if (st != CPEX_OK) {
        cpex_extensions_unref(e);
        return NULL;
    }
    return e;
}

void cpex__iso_wr_ctx(cpex__iso_wr *w, const json_t *obj)
{
    cpex__iso_wr_u8(w, obj != NULL);
    if (obj)
        cpex__iso_wr_json(w, obj);
}

void cpex__iso_rd_ctx(cpex__iso_rd *r, const uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!cpex__iso_rd_u8(r))
        return;
    size_t at = r->pos;
    cpex__iso_rd_skip_json(r, "context");
    if (!r->bad) {
        *out = r->buf + at;
        *len = r->pos - at;
    }
}
