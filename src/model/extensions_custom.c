/*
 * extensions_custom.c — the custom value of the extensions object
 * (cpex/extensions.h): a JSON object shared whole between copies through
 * its counted wrapper (extensions_layout.h) and deep-copied only when a
 * shared one is written; its depth limit and deep copy, which the JSON
 * form uses too (extensions_internal.h).
 */
#include "model/extensions_layout.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "model/extensions_internal.h"
#include "model/text_check.h"
#include "util/alloc.h"

/* Takes `obj`; NULL (and `obj` released) on OOM. */
static cpex__ext_custom *custom_new(json_t *obj)
{
    cpex__ext_custom *c = cpex__malloc(sizeof *c);
    if (!c) {
        json_decref(obj);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->obj = obj;
    return c;
}

static const json_t *custom_obj(const cpex_extensions *ext)
{
    return ext->body->custom ? ext->body->custom->obj : NULL;
}

/* Whether `v` nests at most CPEX__EXT_MAX_JSON_DEPTH levels (which also
 * rules out cycles). Checked when a value comes in, so later copies cannot
 * fail on it. */
static bool depth_ok(const json_t *v, int depth)
{
    if (depth > CPEX__EXT_MAX_JSON_DEPTH)
        return false;
    if (json_is_object(v)) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)v, key, value)
        {
            if (!depth_ok(value, depth + 1))
                return false;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!depth_ok(json_array_get(v, i), depth + 1))
                return false;
        }
    }
    return true;
}

/* A fully independent copy that reports every failure (jansson's own deep
 * copy has not always done so, and can drop members when memory is short).
 * `depth` bounds recursion on hostile input. */
static json_t *deep_copy(const json_t *v, int depth, bool *too_deep)
{
    if (depth > CPEX__EXT_MAX_JSON_DEPTH) {
        *too_deep = true;
        return NULL;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        json_t *dst = json_object();
        if (!dst)
            return NULL;
        const char *key;
        size_t key_len;
        json_t *value;
        json_object_keylen_foreach((json_t *)v, key, key_len, value)
        {
            json_t *c = deep_copy(value, depth + 1, too_deep);
            if (!c || json_object_setn_new_nocheck(dst, key, key_len, c) != 0) {
                json_decref(dst);
                return NULL;
            }
        }
        return dst;
    }
    case JSON_ARRAY: {
        json_t *dst = json_array();
        if (!dst)
            return NULL;
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *c = deep_copy(json_array_get(v, i), depth + 1, too_deep);
            if (!c || json_array_append_new(dst, c) != 0) {
                json_decref(dst);
                return NULL;
            }
        }
        return dst;
    }
    case JSON_STRING: return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return json_integer(json_integer_value(v));
    case JSON_REAL: return json_real(json_real_value(v));
    case JSON_TRUE: return json_true();
    case JSON_FALSE: return json_false();
    case JSON_NULL: return json_null();
    }
    return NULL;
}

json_t *cpex__ext_json_copy(const json_t *v, bool *too_deep) { return deep_copy(v, 0, too_deep); }
cpex_status cpex_extensions_set_custom(cpex_extensions *ext, const char *key, json_t *value)
{
    if (!ext || !key) {
        json_decref(value);
        return CPEX_E_INVALID;
    }
    cpex__ext_check_sole_owner(ext);
    size_t key_len = strlen(key);
    if (!cpex__text_ok(key, key_len) || (value && !depth_ok(value, 1))) {
        json_decref(value);
        return CPEX_E_INVALID;
    }
    if (!cpex__ext_own_body(ext)) {
        json_decref(value);
        return CPEX_E_NOMEM;
    }
    cpex__ext_custom *cur = ext->body->custom;
    if (!value && (!cur || !json_object_getn(cur->obj, key, key_len)))
        return CPEX_OK; /* deleting what is not there */

    /* Write into our own wrapper; a shared one (a copy's) is deep-copied
     * first. Nothing is installed until the write succeeded, so a failure
     * leaves the object as it was. A count read as > 1 that drops to 1
     * meanwhile only costs a needless copy; it cannot read 1 while another
     * object shares it, because sharing needs a copy of this object, and
     * this object has a single owner (us). */
    cpex__ext_custom *target = cur;
    if (!cur || atomic_load_explicit(&cur->refs, memory_order_acquire) > 1) {
        bool too_deep = false;
        json_t *obj = cur ? deep_copy(cur->obj, 0, &too_deep) : json_object();
        target = obj ? custom_new(obj) : NULL;
        if (!target) {
            json_decref(value);
            return CPEX_E_NOMEM;
        }
    }
    int rc = value ? json_object_setn_new_nocheck(target->obj, key, key_len, value)
                   : json_object_deln(target->obj, key, key_len);
    if (rc != 0) {
        /* Only set can fail here (the key is present for a delete); it has
         * released `value`. */
        if (target != cur)
            cpex__ext_custom_unref(target);
        return CPEX_E_NOMEM;
    }
    if (target != cur) {
        ext->body->custom = target;
        cpex__ext_custom_unref(cur);
    }
    return CPEX_OK;
}

cpex_status cpex__extensions_replace_custom(cpex_extensions *ext, json_t *obj)
{
    if (!cpex__ext_own_body(ext)) {
        json_decref(obj);
        return CPEX_E_NOMEM;
    }
    cpex__ext_custom *wrapped = custom_new(obj);
    if (!wrapped)
        return CPEX_E_NOMEM;
    cpex__ext_custom_unref(ext->body->custom);
    ext->body->custom = wrapped;
    return CPEX_OK;
}

const json_t *cpex_extensions_custom(const cpex_extensions *ext, const char *key)
{
    if (!ext || !key || !ext->body->custom)
        return NULL;
    return json_object_get(ext->body->custom->obj, key);
}

const json_t *cpex__extensions_custom_object(const cpex_extensions *ext)
{
    return ext ? custom_obj(ext) : NULL;
}
