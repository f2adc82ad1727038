/*
 * yaml_scalar.c — resolve YAML scalars (yaml_scalar.h has the rules) and
 * convert nodes of the tree (yaml_tree.c) to JSON, expanding aliases
 * within the value budget and the depth limit.
 *
 * Resolution never reports; the conversion reports what JSON cannot hold
 * (numbers out of range, non-scalar or duplicate keys) through the tree's
 * cpex__ydiag. The configuration checks (config_yaml.c) use both.
 */
#include "core/yaml_scalar.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Scalars                                                             */
/* ------------------------------------------------------------------ */

static bool all_in(const char *s, const char *set)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr(set, *s))
            return false;
    return true;
}

static bool is_float_text(const char *s)
{
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    if (*s == '-' || *s == '+')
        s++;
    size_t digits = 0;
    while (*s >= '0' && *s <= '9') {
        s++;
        digits++;
    }
    if (*s == '.') {
        s++;
        size_t frac = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            frac++;
        }
        if (digits == 0 && frac == 0)
            return false;
    } else if (digits == 0) {
        return false;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* strtod in the C locale's notation, whatever the host's locale. */
static double parse_double(const char *s, bool *range)
{
    char buf[128];
    size_t len = strlen(s);
    if (len >= sizeof buf) {
        *range = true;
        return 0;
    }
    memcpy(buf, s, len + 1);
    const struct lconv *lc = localeconv();
    char point = lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';
    if (point != '.') {
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = point;
    }
    errno = 0;
    double d = strtod(buf, NULL);
    *range = !isfinite(d);
    return d;
}

static cpex__yval resolve_text(const char *s, size_t len)
{
    cpex__yval r = {CPEX__YV_STRING, false, 0, 0.0, false};
    /* Most scalars of a configuration are names; every other kind starts
       with one of these (the checks resolve each value several times). */
    if (len && !strchr("~nNtTfF+-.0123456789", s[0]))
        return r;
    if (strlen(s) != len) /* a NUL inside: not a plain value */
        return r;
    if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL")) {
        r.kind = CPEX__YV_NULL;
    } else if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        r.kind = CPEX__YV_BOOL;
        r.b = true;
    } else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        r.kind = CPEX__YV_BOOL;
    } else if (all_in(s + (*s == '-' || *s == '+'), "0123456789")) {
        r.kind = CPEX__YV_INT;
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        r.bad = errno == ERANGE;
        r.i = (json_int_t)v;
    } else if ((s[0] == '0' && s[1] == 'o' && all_in(s + 2, "01234567")) ||
               (s[0] == '0' && s[1] == 'x' && all_in(s + 2, "0123456789abcdefABCDEF"))) {
        r.kind = CPEX__YV_INT;
        errno = 0;
        unsigned long long v = strtoull(s + 2, NULL, s[1] == 'o' ? 8 : 16);
        r.bad = errno == ERANGE || v > (unsigned long long)LLONG_MAX;
        r.i = r.bad ? 0 : (json_int_t)v;
    } else if (is_float_text(s)) {
        r.kind = CPEX__YV_FLOAT;
        r.d = parse_double(s, &r.bad);
    } else {
        const char *t = s + (*s == '-' || *s == '+');
        if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF") || !strcmp(s, ".nan") ||
            !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
            r.kind = CPEX__YV_FLOAT;
            r.bad = true;
        }
    }
    return r;
}

cpex__yval cpex__yresolve(const cpex__ynode *n)
{
    if (n->type != CPEX__YN_SCALAR || !n->plain) {
        cpex__yval r = {CPEX__YV_STRING, false, 0, 0.0, false};
        return r;
    }
    return resolve_text(n->text, n->len);
}

bool cpex__yis_null(const cpex__ynode *n)
{
    return n->type == CPEX__YN_SCALAR && cpex__yresolve(n).kind == CPEX__YV_NULL;
}

const char *cpex__ydescribe(const cpex__ynode *n)
{
    if (n->type == CPEX__YN_MAP)
        return "a mapping";
    if (n->type == CPEX__YN_SEQ)
        return "a list";
    switch (cpex__yresolve(n).kind) {
    case CPEX__YV_NULL: return "an empty value";
    case CPEX__YV_BOOL: return "a boolean";
    case CPEX__YV_INT: return "an integer";
    case CPEX__YV_FLOAT: return "a float";
    case CPEX__YV_STRING: break;
    }
    return "a string";
}

const char *cpex__yunquote_hint(const cpex__ynode *n, cpex__ykind want)
{
    if (n->type == CPEX__YN_SCALAR && !n->plain) {
        cpex__yval r = resolve_text(n->text, n->len);
        if (r.kind == want || (want == CPEX__YV_FLOAT && r.kind == CPEX__YV_INT))
            return "; write it without quotes";
    }
    return "";
}

/* ------------------------------------------------------------------ */
/* YAML to JSON                                                        */
/* ------------------------------------------------------------------ */

/* One conversion: the value of one key. */
typedef struct conv {
    cpex__ydiag *diag;
    const cpex__ynode *at; /* the key of the value being converted (for positions) */
    const char *key;       /* and its name */
    bool abort;            /* the conversion gave up */
} conv;

static json_t *to_json(conv *c, const cpex__ynode *n, int depth);

/* Out of memory: the whole conversion stops. */
static void conv_nomem(conv *c)
{
    c->diag->nomem = true;
    c->abort = true;
}

static json_t *scalar_to_json(conv *c, const cpex__ynode *n)
{
    json_t *v = NULL;
    if (!n->plain) {
        v = json_stringn(n->text, n->len);
    } else {
        cpex__yval r = cpex__yresolve(n);
        if (r.bad) {
            cpex__yreport(c->diag, n, c->key,
                          "in '%s': the number '%.100s' cannot be held in JSON (out of range or "
                          "not finite); quote it to keep it as text",
                          c->key, n->text);
            return NULL;
        }
        switch (r.kind) {
        case CPEX__YV_NULL: v = json_null(); break;
        case CPEX__YV_BOOL: v = json_boolean(r.b); break;
        case CPEX__YV_INT: v = json_integer(r.i); break;
        case CPEX__YV_FLOAT: v = json_real(r.d); break;
        case CPEX__YV_STRING: v = json_stringn(n->text, n->len); break;
        }
    }
    if (!v)
        conv_nomem(c);
    return v;
}

static json_t *map_to_json(conv *c, const cpex__ynode *n, int depth)
{
    json_t *obj = json_object();
    if (!obj) {
        conv_nomem(c);
        return NULL;
    }
    for (size_t i = 0; i + 1 < n->count && !c->abort; i += 2) {
        const cpex__ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (k->type != CPEX__YN_SCALAR) {
            cpex__yreport(c->diag, k, c->key, "in '%s': mapping keys must be scalars, got %s",
                          c->key, cpex__ydescribe(k));
            continue;
        }
        if (strlen(k->text) != k->len) {
            cpex__yreport(c->diag, k, c->key, "in '%s': a key contains a NUL character", c->key);
            continue;
        }
        if (json_object_get(obj, k->text)) {
            int first = 0;
            for (size_t j = 0; j < i; j += 2)
                if (n->kids[j]->type == CPEX__YN_SCALAR && !strcmp(n->kids[j]->text, k->text)) {
                    first = n->kids[j]->pos.line;
                    break;
                }
            cpex__yreport(c->diag, k, c->key,
                          "in '%s': duplicate key '%.200s' (first at line %d); keep one", c->key,
                          k->text, first);
            continue;
        }
        json_t *jv = to_json(c, v, depth + 1);
        if (!jv)
            continue;
        if (json_object_set_new(obj, k->text, jv) != 0)
            conv_nomem(c);
    }
    if (c->abort) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *to_json(conv *c, const cpex__ynode *n, int depth)
{
    if (c->abort || !cpex__ybudget(c->diag, c->at ? c->at : n, c->key)) {
        c->abort = true;
        return NULL;
    }
    if (depth > CPEX__YAML_MAX_DEPTH) {
        /* The tree itself is never this deep: aliases make it so; report at the key. */
        cpex__yreport(c->diag, c->at ? c->at : n, c->key,
                      "in '%s': nesting deeper than %d levels (a recursive alias?)", c->key,
                      CPEX__YAML_MAX_DEPTH);
        c->abort = true;
        return NULL;
    }
    if (n->type == CPEX__YN_SCALAR)
        return scalar_to_json(c, n);
    if (n->type == CPEX__YN_MAP)
        return map_to_json(c, n, depth);
    json_t *arr = json_array();
    if (!arr) {
        conv_nomem(c);
        return NULL;
    }
    for (size_t i = 0; i < n->count && !c->abort; i++) {
        json_t *jv = to_json(c, n->kids[i], depth + 1);
        if (jv && json_array_append_new(arr, jv) != 0)
            conv_nomem(c);
    }
    if (c->abort) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *cpex__yto_json(cpex__ydiag *diag, const cpex__ynode *key_node, const cpex__ynode *n,
                       const char *key)
{
    conv c = {diag, key_node, key, false};
    return to_json(&c, n, 1);
}
