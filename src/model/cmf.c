/* cmf.c — CMF messages: memory, clone, equality, builders (cpex/cmf.h). */
#include "model/cmf_internal.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model/text_check.h"
#include "util/alloc.h"
#include "util/count.h"
#include "util/names.h"

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

const char *const cpex__cmf_role_names[CMF_ROLE_COUNT] = {"system", "developer", "user",
                                                          "assistant", "tool"};

const char *const cpex__cmf_kind_names[CPEX_PART_KIND_COUNT] = {
    "text",           "thinking",      "tool_call", "tool_result", "resource", "resource_ref",
    "prompt_request", "prompt_result", "image",     "video",       "audio",    "document"};

const char *const cpex__cmf_channel_names[CMF_CHANNEL_COUNT] = {"analysis", "commentary", "final"};

const char *const cpex__cmf_resource_type_names[CMF_RESOURCE_TYPE_COUNT] = {
    "file", "blob", "uri", "database", "api", "memory", "artifact"};

const char *cpex_cmf_part_kind_name(uint32_t kind)
{
    return kind < CPEX_PART_KIND_COUNT ? cpex__cmf_kind_names[kind] : NULL;
}

const char *cpex_cmf_role_name(uint32_t role)
{
    return role < CMF_ROLE_COUNT ? cpex__cmf_role_names[role] : NULL;
}

/* ------------------------------------------------------------------ */
/* Body descriptors: which fields of each body are strings, integers,  */
/* JSON values. Packing, cloning, comparing and freeing are generic.   */
/* ------------------------------------------------------------------ */

typedef struct body_desc {
    size_t size;
    const size_t *strs;
    size_t nstrs;
    const size_t *u32s; /* compared scalars besides struct_size */
    size_t nu32s;
    const size_t *i64s; /* -1 when absent */
    size_t ni64s;
    const size_t *jsons;
    size_t njsons;
    int has_messages; /* prompt_result */
} body_desc;

#define LIST(a) a, CPEX__COUNT(a)
#define NONE NULL, 0

static const size_t tc_strs[] = {offsetof(cpex_cmf_tool_call, tool_call_id),
                                 offsetof(cpex_cmf_tool_call, name),
                                 offsetof(cpex_cmf_tool_call, namespace_)};
static const size_t tc_jsons[] = {offsetof(cpex_cmf_tool_call, arguments)};

static const size_t tr_strs[] = {offsetof(cpex_cmf_tool_result, tool_call_id),
                                 offsetof(cpex_cmf_tool_result, tool_name)};
static const size_t tr_u32s[] = {offsetof(cpex_cmf_tool_result, is_error)};
static const size_t tr_jsons[] = {offsetof(cpex_cmf_tool_result, content)};

static const size_t rs_strs[] = {offsetof(cpex_cmf_resource, resource_request_id),
                                 offsetof(cpex_cmf_resource, uri),
                                 offsetof(cpex_cmf_resource, name),
                                 offsetof(cpex_cmf_resource, description),
                                 offsetof(cpex_cmf_resource, content),
                                 offsetof(cpex_cmf_resource, blob),
                                 offsetof(cpex_cmf_resource, mime_type),
                                 offsetof(cpex_cmf_resource, version)};
static const size_t rs_u32s[] = {offsetof(cpex_cmf_resource, resource_type)};
static const size_t rs_i64s[] = {offsetof(cpex_cmf_resource, size_bytes)};
static const size_t rs_jsons[] = {offsetof(cpex_cmf_resource, annotations)};

static const size_t rr_strs[] = {
    offsetof(cpex_cmf_resource_ref, resource_request_id), offsetof(cpex_cmf_resource_ref, uri),
    offsetof(cpex_cmf_resource_ref, name), offsetof(cpex_cmf_resource_ref, selector)};
static const size_t rr_u32s[] = {offsetof(cpex_cmf_resource_ref, resource_type)};
static const size_t rr_i64s[] = {offsetof(cpex_cmf_resource_ref, range_start),
                                 offsetof(cpex_cmf_resource_ref, range_end)};

static const size_t pq_strs[] = {offsetof(cpex_cmf_prompt_request, prompt_request_id),
                                 offsetof(cpex_cmf_prompt_request, name),
                                 offsetof(cpex_cmf_prompt_request, server_id)};
static const size_t pq_jsons[] = {offsetof(cpex_cmf_prompt_request, arguments)};

static const size_t pr_strs[] = {offsetof(cpex_cmf_prompt_result, prompt_request_id),
                                 offsetof(cpex_cmf_prompt_result, prompt_name),
                                 offsetof(cpex_cmf_prompt_result, content),
                                 offsetof(cpex_cmf_prompt_result, error_message)};
static const size_t pr_u32s[] = {offsetof(cpex_cmf_prompt_result, is_error)};

static const size_t md_strs[] = {offsetof(cpex_cmf_media, type), offsetof(cpex_cmf_media, data),
                                 offsetof(cpex_cmf_media, media_type),
                                 offsetof(cpex_cmf_media, title)};
static const size_t md_i64s[] = {offsetof(cpex_cmf_media, duration_ms)};

static const body_desc desc_tool_call = {
    sizeof(cpex_cmf_tool_call), LIST(tc_strs), NONE, NONE, LIST(tc_jsons), 0};
static const body_desc desc_tool_result = {
    sizeof(cpex_cmf_tool_result), LIST(tr_strs), LIST(tr_u32s), NONE, LIST(tr_jsons), 0};
static const body_desc desc_resource = {
    sizeof(cpex_cmf_resource), LIST(rs_strs), LIST(rs_u32s), LIST(rs_i64s), LIST(rs_jsons), 0};
static const body_desc desc_resource_ref = {
    sizeof(cpex_cmf_resource_ref), LIST(rr_strs), LIST(rr_u32s), LIST(rr_i64s), NONE, 0};
static const body_desc desc_prompt_request = {
    sizeof(cpex_cmf_prompt_request), LIST(pq_strs), NONE, NONE, LIST(pq_jsons), 0};
static const body_desc desc_prompt_result = {
    sizeof(cpex_cmf_prompt_result), LIST(pr_strs), LIST(pr_u32s), NONE, NONE, 1};
static const body_desc desc_media = {sizeof(cpex_cmf_media), LIST(md_strs), NONE,
                                     LIST(md_i64s),          NONE,          0};

static const body_desc *desc_for(uint32_t kind)
{
    switch (kind) {
    case CPEX_PART_TOOL_CALL: return &desc_tool_call;
    case CPEX_PART_TOOL_RESULT: return &desc_tool_result;
    case CPEX_PART_RESOURCE: return &desc_resource;
    case CPEX_PART_RESOURCE_REF: return &desc_resource_ref;
    case CPEX_PART_PROMPT_REQUEST: return &desc_prompt_request;
    case CPEX_PART_PROMPT_RESULT: return &desc_prompt_result;
    case CPEX_PART_IMAGE:
    case CPEX_PART_VIDEO:
    case CPEX_PART_AUDIO:
    case CPEX_PART_DOCUMENT: return &desc_media;
    default: return NULL;
    }
}

int cpex__cmf_kind_has_body(uint32_t kind) { return desc_for(kind) != NULL; }

void cpex__cmf_body_init(uint32_t kind, cpex__cmf_body_any *tmpl)
{
    const body_desc *d = desc_for(kind);
    memset(tmpl, 0, sizeof(*tmpl));
    if (!d)
        return;
    *CMF_FIELD(tmpl, 0, uint32_t) = (uint32_t)d->size;
    for (size_t i = 0; i < d->ni64s; i++)
        *CMF_FIELD(tmpl, d->i64s[i], int64_t) = -1;
}

static void messages_free(cpex_cmf_prompt_result *pr)
{
    cpex_cmf_message **msgs = (cpex_cmf_message **)pr->messages;
    for (size_t i = 0; i < pr->message_count; i++)
        cpex_cmf_free(msgs[i]);
    cpex__free(msgs);
    pr->messages = NULL;
    pr->message_count = 0;
}

void cpex__cmf_body_release(uint32_t kind, void *body)
{
    const body_desc *d = desc_for(kind);
    if (!d || !body)
        return;
    for (size_t i = 0; i < d->njsons; i++) {
        const cpex_json **slot = CMF_FIELD(body, d->jsons[i], const cpex_json *);
        json_decref((json_t *)*slot);
        *slot = NULL;
    }
    if (d->has_messages)
        messages_free(body);
}

/* ------------------------------------------------------------------ */
/* Cells: the refcounted, immutable-once-shared content of a part      */
/* ------------------------------------------------------------------ */

/*
 * A part's content (its text, or its body with every string it points at)
 * lives in one cell. Cloning a message shares cells (a reference count);
 * changing a part of a message gives that part a new cell, unless the
 * message is the cell's only holder. So a clone costs one allocation
 * whatever the payload's size, and a cell another thread reads (a worker's
 * copy, an abandoned handler's) is never written.
 */
struct cpex__cmf_cell {
    _Atomic size_t refs;
    uint32_t kind;
    uint32_t reserved;
    max_align_t data[]; /* the text (NUL-terminated) or the body */
};

static cpex__cmf_cell *cell_of_data(const void *data)
{
    return (cpex__cmf_cell *)(void *)((char *)(uintptr_t)data - offsetof(cpex__cmf_cell, data));
}

cpex__cmf_cell *cpex__cmf_cell_of(const cpex_cmf_part *part)
{
    const void *data = cpex__cmf_kind_has_body(part->kind) ? part->body : part->text.ptr;
    return data ? cell_of_data(data) : NULL;
}

static void *cell_new(uint32_t kind, size_t size)
{
    if (size > SIZE_MAX - sizeof(cpex__cmf_cell))
        return NULL;
    cpex__cmf_cell *c = cpex__malloc(sizeof *c + size);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->kind = kind;
    c->reserved = 0;
    return c->data;
}

static void cell_ref(cpex__cmf_cell *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static void cell_unref(cpex__cmf_cell *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (cpex__cmf_kind_has_body(c->kind))
        cpex__cmf_body_release(c->kind, c->data);
    cpex__free(c);
}

bool cpex__cmf_cell_sole(const cpex__cmf_cell *c)
{
    /* Acquire: a holder on another thread that dropped its reference
     * finished reading before we may write. */
    return atomic_load_explicit(&((cpex__cmf_cell *)(uintptr_t)c)->refs, memory_order_acquire) == 1;
}

char *cpex__cmf_text_new(uint32_t kind, const char *text, size_t len)
{
    char *t = len < SIZE_MAX ? cell_new(kind, len + 1) : NULL;
    if (!t)
        return NULL;
    if (len)
        memcpy(t, text, len);
    t[len] = '\0';
    return t;
}

void *cpex__cmf_body_pack(uint32_t kind, cpex__cmf_body_any *tmpl)
{
    const body_desc *d = desc_for(kind);
    if (!d)
        return NULL;
    size_t total = d->size;
    for (size_t i = 0; i < d->nstrs; i++) {
        const cpex_str *s = CMF_FIELD(tmpl, d->strs[i], cpex_str);
        if (!s->ptr)
            continue;
        if (s->len >= SIZE_MAX - total) {
            total = SIZE_MAX;
            break;
        }
        total += s->len + 1;
    }
    char *mem = total == SIZE_MAX ? NULL : cell_new(kind, total);
    if (!mem) {
        cpex__cmf_body_release(kind, tmpl);
        return NULL;
    }
    memcpy(mem, tmpl, d->size);
    *CMF_FIELD(mem, 0, uint32_t) = (uint32_t)d->size;
    char *tail = mem + d->size;
    for (size_t i = 0; i < d->nstrs; i++) {
        cpex_str *s = CMF_FIELD(mem, d->strs[i], cpex_str);
        if (!s->ptr)
            continue;
        if (s->len)
            memcpy(tail, s->ptr, s->len);
        tail[s->len] = '\0';
        s->ptr = tail;
        tail += s->len + 1;
    }
    return mem;
}

void cpex__cmf_part_clear(cpex_cmf_part *part)
{
    cell_unref(cpex__cmf_cell_of(part));
    memset(part, 0, sizeof(*part));
}

void cpex__cmf_part_share(const cpex_cmf_part *src, cpex_cmf_part *dst)
{
    *dst = *src;
    dst->struct_size = (uint32_t)sizeof(*dst);
    cpex__cmf_cell *c = cpex__cmf_cell_of(src);
    if (c)
        cell_ref(c);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/*
 * A message made by libcpex: its header, then room for `part_cap` parts
 * (the parts array while it fits) and then the schema version's text
 * unless it is the usual "2.0". A clone is this one allocation plus a
 * reference on each part's cell.
 */
#define CMF_MAGIC 0x636d6631u /* "cmf1" */

typedef struct cmf_impl {
    uint32_t magic;
    bool parts_inline;  /* msg.parts is the inline array */
    bool channel_owned; /* msg.channel was copied (not a name of the table) */
    size_t part_cap;    /* capacity of msg.parts */
    cpex_cmf_message msg;
    max_align_t tail[]; /* inline parts, then the schema text */
} cmf_impl;

static cmf_impl *impl_of(const cpex_cmf_message *m)
{
    return (cmf_impl *)(void *)((char *)(uintptr_t)m - offsetof(cmf_impl, msg));
}

bool cpex__cmf_is_ours(const cpex_cmf_message *m) { return m && impl_of(m)->magic == CMF_MAGIC; }

static const char default_schema[] = "2.0";

cpex_cmf_message *cpex__cmf_message_alloc(uint32_t role, const char *schema, size_t schema_len,
                                          size_t part_cap)
{
    bool usual = schema_len == 3 && memcmp(schema, default_schema, 3) == 0;
    if (part_cap > (SIZE_MAX / 2) / sizeof(cpex_cmf_part) || schema_len > SIZE_MAX / 4)
        return NULL;
    size_t parts_size = part_cap * sizeof(cpex_cmf_part);
    cmf_impl *im = cpex__malloc(sizeof *im + parts_size + (usual ? 0 : schema_len + 1));
    if (!im)
        return NULL;
    memset(im, 0, sizeof *im + parts_size);
    im->magic = CMF_MAGIC;
    im->part_cap = part_cap;
    im->parts_inline = true;
    cpex_cmf_message *m = &im->msg;
    m->struct_size = (uint32_t)sizeof(*m);
    m->role = role;
    m->parts = part_cap ? (const cpex_cmf_part *)(void *)im->tail : NULL;
    if (usual) {
        m->schema_version.ptr = default_schema;
    } else {
        char *text = (char *)im->tail + parts_size;
        if (schema_len)
            memcpy(text, schema, schema_len);
        text[schema_len] = '\0';
        m->schema_version.ptr = text;
    }
    m->schema_version.len = schema_len;
    return m;
}

cpex_status cpex__cmf_message_set_channel(cpex_cmf_message *message, const char *channel,
                                          size_t len)
{
    cmf_impl *im = impl_of(message);
    int idx = cpex__names_find(cpex__cmf_channel_names, CMF_CHANNEL_COUNT, channel, len);
    const char *text = idx >= 0 ? cpex__cmf_channel_names[idx] : cpex__strndup(channel, len);
    if (!text)
        return CPEX_E_NOMEM;
    if (im->channel_owned)
        cpex__free((void *)message->channel.ptr);
    im->channel_owned = idx < 0;
    message->channel.ptr = text;
    message->channel.len = len;
    return CPEX_OK;
}

/* Room for one more part; false on OOM (the message is unchanged). */
static bool reserve_part(cpex_cmf_message *m)
{
    cmf_impl *im = impl_of(m);
    if (m->part_count < im->part_cap)
        return true;
    size_t cap = im->part_cap ? im->part_cap * 2 : 4;
    if (cap > SIZE_MAX / sizeof(cpex_cmf_part))
        return false;
    cpex_cmf_part *grown = cpex__malloc(cap * sizeof *grown);
    if (!grown)
        return false;
    if (m->part_count)
        memcpy(grown, m->parts, m->part_count * sizeof *grown);
    if (!im->parts_inline)
        cpex__free((void *)m->parts);
    im->parts_inline = false;
    im->part_cap = cap;
    m->parts = grown;
    return true;
}

cpex_cmf_message *cpex_cmf_new(uint32_t role)
{
    if (role >= CMF_ROLE_COUNT)
        return NULL;
    return cpex__cmf_message_alloc(role, "2.0", 3, 0);
}

void cpex_cmf_free(cpex_cmf_message *message)
{
    if (!message)
        return;
    cmf_impl *im = impl_of(message);
    cpex_cmf_part *parts = cmf_parts(message);
    for (size_t i = 0; i < message->part_count; i++)
        cpex__cmf_part_clear(&parts[i]);
    if (!im->parts_inline)
        cpex__free(parts);
    if (im->channel_owned)
        cpex__free((void *)message->channel.ptr);
    im->magic = 0;
    cpex__free(im);
}

/* ------------------------------------------------------------------ */
/* Clone                                                               */
/* ------------------------------------------------------------------ */

/* Fill `tmpl` with a copy of body `src` that owns its JSON values (deep
 * copies, except the one at `skip_json`, which the caller replaces) and
 * its nested messages (clones); strings stay borrowed until packed. */
static cpex_status body_copy_into(uint32_t kind, const void *src, size_t skip_json,
                                  cpex__cmf_body_any *tmpl, int import_depth)
{
    const body_desc *d = desc_for(kind);
    memcpy(tmpl, src, d->size);
    for (size_t i = 0; i < d->njsons; i++) {
        const cpex_json **slot = CMF_FIELD(tmpl, d->jsons[i], const cpex_json *);
        if (d->jsons[i] == skip_json) {
            *slot = NULL;
            continue;
        }
        json_t *copy = *slot ? json_deep_copy((const json_t *)*slot) : NULL;
        if (*slot && !copy) {
            for (size_t j = 0; j < i; j++)
                if (d->jsons[j] != skip_json)
                    json_decref((json_t *)*CMF_FIELD(tmpl, d->jsons[j], const cpex_json *));
            return CPEX_E_NOMEM;
        }
        *slot = (const cpex_json *)copy;
    }
    if (d->has_messages) {
        const cpex_cmf_prompt_result *pr = src;
        tmpl->prompt_result.messages = NULL;
        tmpl->prompt_result.message_count = 0;
        cpex_cmf_message **msgs =
            pr->message_count ? cpex__calloc(pr->message_count, sizeof(*msgs)) : NULL;
        if (pr->message_count && !msgs) {
            cpex__cmf_body_release(kind, tmpl);
            return CPEX_E_NOMEM;
        }
        tmpl->prompt_result.messages = (const cpex_cmf_message *const *)msgs;
        for (size_t i = 0; i < pr->message_count; i++) {
            msgs[i] = import_depth ? cpex__cmf_import(pr->messages[i], import_depth + 1)
                                   : cpex_cmf_clone(pr->messages[i]);
            if (!msgs[i]) {
                cpex__cmf_body_release(kind, tmpl);
                return CPEX_E_NOMEM;
            }
            tmpl->prompt_result.message_count = i + 1;
        }
    }
    return CPEX_OK;
}

cpex_cmf_message *cpex_cmf_clone(const cpex_cmf_message *message)
{
    if (!message)
        return NULL;
    /* A message built by hand (an isolated worker's view of the host's
     * payload, for one) has no cells to share: copy its content instead. */
    if (!cpex__cmf_is_ours(message))
        return cpex__cmf_import(message, 1);
    const char *schema = message->schema_version.ptr ? message->schema_version.ptr : "2.0";
    size_t schema_len = message->schema_version.ptr ? message->schema_version.len : 3;
    cpex_cmf_message *copy =
        cpex__cmf_message_alloc(message->role, schema, schema_len, message->part_count);
    if (!copy)
        return NULL;
    if (message->channel.ptr && cpex__cmf_message_set_channel(copy, message->channel.ptr,
                                                              message->channel.len) != CPEX_OK) {
        cpex_cmf_free(copy);
        return NULL;
    }
    /* The parts share their cells: no content is copied. */
    for (size_t i = 0; i < message->part_count; i++)
        cpex__cmf_part_share(&message->parts[i], &cmf_parts(copy)[i]);
    copy->part_count = message->part_count;
    return copy;
}

cpex_cmf_message *cpex__cmf_import(const cpex_cmf_message *src, int depth)
{
    if (!src || depth > CMF_MAX_DEPTH)
        return NULL;
    const char *schema = src->schema_version.ptr ? src->schema_version.ptr : "2.0";
    size_t schema_len = src->schema_version.ptr ? src->schema_version.len : 3;
    cpex_cmf_message *m = cpex__cmf_message_alloc(src->role, schema, schema_len, src->part_count);
    if (!m)
        return NULL;
    if (src->channel.ptr &&
        cpex__cmf_message_set_channel(m, src->channel.ptr, src->channel.len) != CPEX_OK)
        goto fail;
    for (size_t i = 0; i < src->part_count; i++) {
        const cpex_cmf_part *from = &src->parts[i];
        cpex_cmf_part *to = &cmf_parts(m)[i];
        memset(to, 0, sizeof *to);
        to->struct_size = (uint32_t)sizeof *to;
        to->kind = from->kind;
        if (!cpex__cmf_kind_has_body(from->kind)) {
            to->text.ptr = cpex__cmf_text_new(from->kind, from->text.ptr ? from->text.ptr : "",
                                              from->text.ptr ? from->text.len : 0);
            to->text.len = from->text.ptr ? from->text.len : 0;
            if (!to->text.ptr)
                goto fail;
        } else {
            cpex__cmf_body_any tmpl;
            if (!from->body ||
                body_copy_into(from->kind, from->body, SIZE_MAX, &tmpl, depth) != CPEX_OK ||
                !(to->body = cpex__cmf_body_pack(from->kind, &tmpl)))
                goto fail;
        }
        m->part_count = i + 1;
    }
    return m;
fail:
    cpex_cmf_free(m);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Equality                                                            */
/* ------------------------------------------------------------------ */

static int str_equal(cpex_str a, cpex_str b)
{
    if (!a.ptr || !b.ptr)
        return a.ptr == b.ptr;
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int body_equal(uint32_t kind, const void *a, const void *b)
{
    const body_desc *d = desc_for(kind);
    if (!a || !b)
        return a == b;
    for (size_t i = 0; i < d->nstrs; i++)
        if (!str_equal(*CMF_FIELD(a, d->strs[i], const cpex_str),
                       *CMF_FIELD(b, d->strs[i], const cpex_str)))
            return 0;
    for (size_t i = 0; i < d->nu32s; i++)
        if (*CMF_FIELD(a, d->u32s[i], const uint32_t) != *CMF_FIELD(b, d->u32s[i], const uint32_t))
            return 0;
    for (size_t i = 0; i < d->ni64s; i++)
        if (*CMF_FIELD(a, d->i64s[i], const int64_t) != *CMF_FIELD(b, d->i64s[i], const int64_t))
            return 0;
    for (size_t i = 0; i < d->njsons; i++) {
        const json_t *ja = (const json_t *)*CMF_FIELD(a, d->jsons[i], const cpex_json *const);
        const json_t *jb = (const json_t *)*CMF_FIELD(b, d->jsons[i], const cpex_json *const);
        if ((ja || jb) && !json_equal(ja, jb))
            return 0;
    }
    if (d->has_messages) {
        const cpex_cmf_prompt_result *pa = a, *pb = b;
        if (pa->message_count != pb->message_count)
            return 0;
        for (size_t i = 0; i < pa->message_count; i++)
            if (!cpex_cmf_equal(pa->messages[i], pb->messages[i]))
                return 0;
    }
    return 1;
}

int cpex_cmf_equal(const cpex_cmf_message *a, const cpex_cmf_message *b)
{
    if (!a || !b)
        return a == b;
    if (a->role != b->role || a->part_count != b->part_count ||
        !str_equal(a->schema_version, b->schema_version) || !str_equal(a->channel, b->channel))
        return 0;
    for (size_t i = 0; i < a->part_count; i++) {
        const cpex_cmf_part *pa = &a->parts[i], *pb = &b->parts[i];
        if (pa->kind != pb->kind)
            return 0;
        if (cpex__cmf_kind_has_body(pa->kind) ? !body_equal(pa->kind, pa->body, pb->body)
                                              : !str_equal(pa->text, pb->text))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Builders and mutators                                               */
/* ------------------------------------------------------------------ */

/* Takes `part`: on failure its contents are freed. */
static cpex_status push_part(cpex_cmf_message *message, cpex_cmf_part *part)
{
    if (!reserve_part(message)) {
        cpex__cmf_part_clear(part);
        return CPEX_E_NOMEM;
    }
    cmf_parts(message)[message->part_count++] = *part;
    return CPEX_OK;
}

static int cstr_ok(const char *s) { return s && cpex__text_ok(s, strlen(s)); }

static int opt_cstr_ok(const char *s) { return !s || cstr_ok(s); }

static cpex_str borrow(const char *s)
{
    cpex_str out = {s, s ? strlen(s) : 0};
    return out;
}

static cpex_status push_body(cpex_cmf_message *message, uint32_t kind, cpex__cmf_body_any *tmpl)
{
    cpex_cmf_part part = {(uint32_t)sizeof(part), kind, {NULL, 0}, NULL};
    part.body = cpex__cmf_body_pack(kind, tmpl);
    if (!part.body)
        return CPEX_E_NOMEM;
    return push_part(message, &part);
}

cpex_status cpex_cmf_append_text(cpex_cmf_message *message, uint32_t kind, const char *text,
                                 size_t len)
{
    if (!message || (kind != CPEX_PART_TEXT && kind != CPEX_PART_THINKING) || (!text && len) ||
        (text && !cpex__text_ok(text, len)))
        return CPEX_E_INVALID;
    cpex_cmf_part part = {(uint32_t)sizeof(part), kind, {NULL, len}, NULL};
    part.text.ptr = cpex__cmf_text_new(kind, text ? text : "", len);
    if (!part.text.ptr)
        return CPEX_E_NOMEM;
    return push_part(message, &part);
}

cpex_status cpex_cmf_append_tool_call(cpex_cmf_message *message, const char *tool_call_id,
                                      const char *name, json_t *arguments, const char *namespace_)
{
    if (!message || !cstr_ok(tool_call_id) || !cstr_ok(name) || !opt_cstr_ok(namespace_) ||
        (arguments && !json_is_object(arguments))) {
        json_decref(arguments);
        return CPEX_E_INVALID;
    }
    if (!arguments && !(arguments = json_object()))
        return CPEX_E_NOMEM;
    cpex__cmf_body_any tmpl;
    cpex__cmf_body_init(CPEX_PART_TOOL_CALL, &tmpl);
    tmpl.tool_call.tool_call_id = borrow(tool_call_id);
    tmpl.tool_call.name = borrow(name);
    tmpl.tool_call.namespace_ = borrow(namespace_);
    tmpl.tool_call.arguments = (const cpex_json *)arguments;
    return push_body(message, CPEX_PART_TOOL_CALL, &tmpl);
}

cpex_status cpex_cmf_append_tool_result(cpex_cmf_message *message, const char *tool_call_id,
                                        const char *tool_name, json_t *content, int is_error)
{
    if (!message || !cstr_ok(tool_call_id) || !cstr_ok(tool_name)) {
        json_decref(content);
        return CPEX_E_INVALID;
    }
    if (!content && !(content = json_null()))
        return CPEX_E_NOMEM;
    cpex__cmf_body_any tmpl;
    cpex__cmf_body_init(CPEX_PART_TOOL_RESULT, &tmpl);
    tmpl.tool_result.tool_call_id = borrow(tool_call_id);
    tmpl.tool_result.tool_name = borrow(tool_name);
    tmpl.tool_result.content = (const cpex_json *)content;
    tmpl.tool_result.is_error = is_error ? 1u : 0u;
    return push_body(message, CPEX_PART_TOOL_RESULT, &tmpl);
}

cpex_status cpex_cmf_set_text(cpex_cmf_message *message, size_t part, const char *text, size_t len)
{
    if (!message || part >= message->part_count || (!text && len) ||
        (text && !cpex__text_ok(text, len)))
        return CPEX_E_INVALID;
    cpex_cmf_part *p = &cmf_parts(message)[part];
    if (p->kind != CPEX_PART_TEXT && p->kind != CPEX_PART_THINKING)
        return CPEX_E_INVALID;
    /* A new cell (copied before the old one goes: `text` may point into
     * it): the old cell may be shared with a clone. */
    char *copy = cpex__cmf_text_new(p->kind, text ? text : "", len);
    if (!copy)
        return CPEX_E_NOMEM;
    cpex__cmf_cell *old = cpex__cmf_cell_of(p);
    p->text.ptr = copy;
    p->text.len = len;
    cell_unref(old);
    return CPEX_OK;
}

/* Put `value` (taken) into JSON field `field` of part `index`'s body: in
 * place when this message is the body's only holder, else in a new cell. */
static cpex_status set_body_json(cpex_cmf_message *message, size_t index, size_t field,
                                 json_t *value)
{
    cpex_cmf_part *p = &cmf_parts(message)[index];
    cpex__cmf_cell *old = cpex__cmf_cell_of(p);
    if (cpex__cmf_cell_sole(old)) {
        const cpex_json **slot = CMF_FIELD((void *)(uintptr_t)p->body, field, const cpex_json *);
        json_t *prev = (json_t *)(uintptr_t)*slot;
        *slot = (const cpex_json *)value;
        json_decref(prev);
        return CPEX_OK;
    }
    cpex__cmf_body_any tmpl;
    if (body_copy_into(p->kind, p->body, field, &tmpl, 0) != CPEX_OK) {
        json_decref(value);
        return CPEX_E_NOMEM;
    }
    *CMF_FIELD(&tmpl, field, const cpex_json *) = (const cpex_json *)value;
    void *body = cpex__cmf_body_pack(p->kind, &tmpl); /* takes the template's values */
    if (!body)
        return CPEX_E_NOMEM;
    p->body = body;
    cell_unref(old);
    return CPEX_OK;
}

cpex_status cpex_cmf_set_tool_arguments(cpex_cmf_message *message, size_t part, json_t *arguments)
{
    if (!message || part >= message->part_count ||
        message->parts[part].kind != CPEX_PART_TOOL_CALL ||
        (arguments && !json_is_object(arguments))) {
        json_decref(arguments);
        return CPEX_E_INVALID;
    }
    if (!arguments && !(arguments = json_object()))
        return CPEX_E_NOMEM;
    return set_body_json(message, part, offsetof(cpex_cmf_tool_call, arguments), arguments);
}

cpex_status cpex_cmf_set_tool_result_content(cpex_cmf_message *message, size_t part,
                                             json_t *content)
{
    if (!message || part >= message->part_count ||
        message->parts[part].kind != CPEX_PART_TOOL_RESULT) {
        json_decref(content);
        return CPEX_E_INVALID;
    }
    if (!content && !(content = json_null()))
        return CPEX_E_NOMEM;
    return set_body_json(message, part, offsetof(cpex_cmf_tool_result, content), content);
}

cpex_status cpex_cmf_remove_part(cpex_cmf_message *message, size_t part)
{
    if (!message || part >= message->part_count)
        return CPEX_E_INVALID;
    cpex_cmf_part *parts = cmf_parts(message);
    cpex__cmf_part_clear(&parts[part]);
    size_t n = message->part_count - 1;
    memmove(&parts[part], &parts[part + 1], (n - part) * sizeof(*parts));
    message->part_count = n;
    return CPEX_OK;
}

char *cpex_cmf_text_content(const cpex_cmf_message *message)
{
    if (!message)
        return NULL;
    size_t total = 1;
    for (size_t i = 0; i < message->part_count; i++)
        if (message->parts[i].kind == CPEX_PART_TEXT)
            total += message->parts[i].text.len;
    char *out = cpex__malloc(total);
    if (!out)
        return NULL;
    size_t pos = 0;
    for (size_t i = 0; i < message->part_count; i++) {
        const cpex_cmf_part *p = &message->parts[i];
        if (p->kind != CPEX_PART_TEXT || p->text.len == 0)
            continue;
        memcpy(out + pos, p->text.ptr, p->text.len);
        pos += p->text.len;
    }
    out[pos] = '\0';
    return out;
}
