/*
 * config_yaml.c — read the YAML configuration with libyaml and check it
 * (see config.h).
 *
 * The text is read with libyaml's event parser into a small tree of our
 * own (so nesting can be capped while parsing: libyaml's scanner gets
 * quadratically slow on deep flow nesting, and its loader has no limit),
 * then the tree is checked key by key. Every problem is reported with the
 * source, line and column, the plugin and the key, and checking goes on
 * after an error so that one run shows them all.
 *
 * Limits, against hostile or broken input:
 *   - nesting deeper than CFG_MAX_DEPTH collections is an error;
 *   - aliases are not copied in the tree, but converting to JSON expands
 *     them, so the values visited (converted or checked) are capped at
 *     CFG_MAX_VALUES ("billion laughs");
 *   - the tree holds at most CFG_MAX_NODES nodes;
 *   - at most CFG_MAX_ERRORS items are reported, then one "too many".
 *
 * Scalars resolve as in the YAML 1.2 core schema when they are plain and
 * untagged: null, ~ and empty are null; true/false (also True, TRUE...) are
 * booleans; [-+]?[0-9]+, 0o.. and 0x.. are integers; decimal and exponent
 * forms are floats; everything else is a string. Quoted and block scalars
 * are always strings. .inf, .nan and numbers out of range cannot be held in
 * JSON and are reported.
 */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libgen.h>
#include <yaml.h>

#include "util/alloc.h"
#include "util/errors.h"
#include "util/strv.h"
#include "util/suggest.h"

#define CFG_MAX_DEPTH 64
#define CFG_MAX_VALUES 100000
#define CFG_MAX_NODES 1000000
#define CFG_MAX_ERRORS 100
#define CFG_MAX_FILE_SIZE (64u * 1024u * 1024u)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* The tree                                                            */
/* ------------------------------------------------------------------ */

enum { YN_SCALAR, YN_SEQ, YN_MAP };

typedef struct ynode {
    int type;
    bool plain;         /* scalar: plain style and no tag, so it resolves */
    cpex__pos pos;
    char *text;         /* scalar: NUL-terminated (may hold NULs inside) */
    size_t len;
    struct ynode **kids; /* seq: items; map: key, value, key, value ... */
    size_t count;
    size_t cap;
} ynode;

typedef struct ydoc {
    ynode *root;
    ynode **all; /* every node, for freeing (aliases are shared) */
    size_t nall, capall;
    struct anchor {
        char *name;
        ynode *node;
    } *anchors;
    size_t nanchors, capanchors;
} ydoc;

static void ydoc_free(ydoc *d)
{
    for (size_t i = 0; i < d->nall; i++) {
        cpex__free(d->all[i]->text);
        cpex__free(d->all[i]->kids);
        cpex__free(d->all[i]);
    }
    cpex__free(d->all);
    for (size_t i = 0; i < d->nanchors; i++)
        cpex__free(d->anchors[i].name);
    cpex__free(d->anchors);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ */
/* Parse state and reporting                                           */
/* ------------------------------------------------------------------ */

typedef struct ctx {
    const char *source;
    cpex_error *err;
    cpex__config *cfg;
    size_t errors;     /* problems found (reported or not) */
    bool nomem;
    bool muted;        /* CFG_MAX_ERRORS reached */
    size_t values;     /* budget of CFG_MAX_VALUES */
    bool over_budget;
    bool conv_abort;   /* the current JSON conversion gave up */
    const ynode *conv_at; /* the key of the value being converted (for positions) */
    const char *conv_key; /* and its name */
    const char *plugin; /* name of the plugin being checked, or NULL */
    size_t plugin_no;  /* 1-based entry number of that plugin; 0 outside plugins */
    json_t *names;     /* plugin name -> line of its first definition */
} ctx;

static cpex__pos pos_of(const ynode *n)
{
    cpex__pos p = {0, 0};
    return n ? n->pos : p;
}

static int mark_int(size_t v)
{
    return v >= (size_t)INT_MAX ? INT_MAX : (int)v + 1;
}

/* Report a configuration problem at `pos`, naming the current plugin. */
static void report_pos(ctx *c, cpex__pos pos, const char *key, const char *fmt, va_list ap)
{
    c->errors++;
    if (c->muted)
        return;
    if (c->errors > CFG_MAX_ERRORS) {
        c->muted = true;
        cpex__where w = {c->source, 0, 0, NULL, NULL};
        cpex__error_add(c->err, CPEX_E_CONFIG, &w,
                       "too many errors; only the first %d are shown, fix those first",
                       CFG_MAX_ERRORS);
        return;
    }
    char body[2048];
    int off = 0;
    if (!c->plugin && c->plugin_no > 0)
        off = snprintf(body, sizeof body, "plugin #%zu: ", c->plugin_no);
    if (off < 0)
        off = 0;
    vsnprintf(body + off, sizeof body - (size_t)off, fmt, ap);
    cpex__where w = {c->source, pos.line, pos.column, c->plugin, key};
    cpex__error_add(c->err, CPEX_E_CONFIG, &w, "%s", body);
}

static void report(ctx *c, const ynode *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(ctx *c, const ynode *at, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_pos(c, pos_of(at), key, fmt, ap);
    va_end(ap);
}

/* Add a warning "<file>:<line>:<col>: [plugin '<p>': ]<text>" to the config. */
static void warn(ctx *c, const ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(ctx *c, const ynode *at, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    cpex__pos p = pos_of(at);
    char who[300] = "";
    if (c->plugin)
        snprintf(who, sizeof who, "plugin '%.256s': ", c->plugin);
    else if (c->plugin_no > 0)
        snprintf(who, sizeof who, "plugin #%zu: ", c->plugin_no);
    char *msg = p.line > 0 ? cpex__asprintf("%s:%d:%d: %s%s", c->source, p.line, p.column, who, body)
                           : cpex__asprintf("%s: %s%s", c->source, who, body);
    cpex__config *cfg = c->cfg;
    char **w = msg ? cpex__realloc(cfg->warnings, (cfg->warning_count + 2) * sizeof *w) : NULL;
    if (!w) {
        cpex__free(msg);
        c->nomem = true;
        return;
    }
    w[cfg->warning_count++] = msg;
    w[cfg->warning_count] = NULL;
    cfg->warnings = w;
}

/*
 * Spend one unit of the value budget; false (reported once) when it is
 * gone. `at` is where to report: the value being converted or checked.
 */
static bool budget(ctx *c, const ynode *at)
{
    if (c->over_budget)
        return false;
    if (++c->values <= CFG_MAX_VALUES)
        return true;
    c->over_budget = true;
    report(c, at, c->conv_key,
           "%s%s%sthe configuration expands to more than %d values (through aliases?); "
           "make it smaller",
           c->conv_key ? "in '" : "", c->conv_key ? c->conv_key : "", c->conv_key ? "': " : "",
           CFG_MAX_VALUES);
    return false;
}

/* ------------------------------------------------------------------ */
/* Building the tree from libyaml events                               */
/* ------------------------------------------------------------------ */

static ynode *node_new(ctx *c, ydoc *d, int type, const yaml_mark_t *mark)
{
    if (d->nall >= CFG_MAX_NODES)
        return NULL;
    if (d->nall == d->capall) {
        size_t cap = d->capall ? d->capall * 2 : 64;
        ynode **all = cpex__realloc(d->all, cap * sizeof *all);
        if (!all) {
            c->nomem = true;
            return NULL;
        }
        d->all = all;
        d->capall = cap;
    }
    ynode *n = cpex__calloc(1, sizeof *n);
    if (!n) {
        c->nomem = true;
        return NULL;
    }
    n->type = type;
    n->pos.line = mark_int(mark->line);
    n->pos.column = mark_int(mark->column);
    d->all[d->nall++] = n;
    return n;
}

static bool node_add(ctx *c, ynode *parent, ynode *kid)
{
    if (parent->count == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        ynode **kids = cpex__realloc(parent->kids, cap * sizeof *kids);
        if (!kids) {
            c->nomem = true;
            return false;
        }
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->count++] = kid;
    return true;
}

static bool anchor_add(ctx *c, ydoc *d, const yaml_char_t *name, ynode *n)
{
    if (!name)
        return true;
    if (d->nanchors == d->capanchors) {
        size_t cap = d->capanchors ? d->capanchors * 2 : 8;
        struct anchor *a = cpex__realloc(d->anchors, cap * sizeof *a);
        if (!a) {
            c->nomem = true;
            return false;
        }
        d->anchors = a;
        d->capanchors = cap;
    }
    char *copy = cpex__strdup((const char *)name);
    if (!copy) {
        c->nomem = true;
        return false;
    }
    d->anchors[d->nanchors].name = copy;
    d->anchors[d->nanchors].node = n;
    d->nanchors++;
    return true;
}

static ynode *anchor_find(const ydoc *d, const yaml_char_t *name)
{
    /* The latest definition wins (YAML lets an anchor be redefined). */
    for (size_t i = d->nanchors; i-- > 0;)
        if (strcmp(d->anchors[i].name, (const char *)name) == 0)
            return d->anchors[i].node;
    return NULL;
}

/* libyaml's syntax error, with its position. */
static void report_yaml_error(ctx *c, const yaml_parser_t *p, const char *yaml, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->nomem = true;
        return;
    }
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        /* No mark for reader errors: find the line and column of the offset. */
        cpex__pos pos = {1, 1};
        size_t end = p->problem_offset < len ? p->problem_offset : len;
        for (size_t i = 0; i < end; i++) {
            if (yaml[i] == '\n') {
                pos.line++;
                pos.column = 1;
            } else {
                pos.column++;
            }
        }
        ynode at = {.pos = pos};
        if (p->problem_value >= 0)
            report(c, &at, NULL, "YAML syntax error: %s (byte 0x%02X at offset %zu)", problem,
                   (unsigned)p->problem_value & 0xffu, p->problem_offset);
        else
            report(c, &at, NULL, "YAML syntax error: %s (at offset %zu)", problem,
                   p->problem_offset);
        return;
    }
    ynode at = {.pos = {mark_int(p->problem_mark.line), mark_int(p->problem_mark.column)}};
    if (p->context)
        report(c, &at, NULL,
               "YAML syntax error: %s (%s at line %d, column %d); check the indentation and "
               "quoting",
               problem, p->context, mark_int(p->context_mark.line),
               mark_int(p->context_mark.column));
    else
        report(c, &at, NULL, "YAML syntax error: %s; check the indentation and quoting", problem);
}

/* Read the text into `d`. False when the text cannot be used (reported). */
static bool build_tree(ctx *c, const char *yaml, size_t len, ydoc *d)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        c->nomem = true;
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    ynode *stack[CFG_MAX_DEPTH];
    size_t depth = 0;
    int documents = 0;
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            report_yaml_error(c, &parser, yaml, len);
            ok = false;
            break;
        }
        ynode *n = NULL;
        const yaml_char_t *anchor = NULL;
        bool opens = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                ynode at = {.pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                report(c, &at, NULL,
                       "more than one YAML document; put the whole configuration in one "
                       "document (remove the second '---')");
                ok = false;
            }
            break;
        case YAML_ALIAS_EVENT:
            n = anchor_find(d, ev.data.alias.anchor);
            if (!n) {
                ynode at = {.pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                report(c, &at, NULL, "YAML alias '*%s' refers to no anchor defined before it",
                       (const char *)ev.data.alias.anchor);
                ok = false;
            }
            break;
        case YAML_SCALAR_EVENT:
            n = node_new(c, d, YN_SCALAR, &ev.start_mark);
            if (!n)
                break;
            n->text = cpex__strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (!n->text) {
                c->nomem = true;
                break;
            }
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag;
            anchor = ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
            n = node_new(c, d, YN_SEQ, &ev.start_mark);
            anchor = ev.data.sequence_start.anchor;
            opens = true;
            break;
        case YAML_MAPPING_START_EVENT:
            n = node_new(c, d, YN_MAP, &ev.start_mark);
            anchor = ev.data.mapping_start.anchor;
            opens = true;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        if (c->nomem)
            ok = false;
        if (ok && !done && !n && (ev.type == YAML_SCALAR_EVENT || opens)) {
            if (!c->nomem) {
                ynode at = {.pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                report(c, &at, NULL, "the document has more than %d nodes; make it smaller",
                       CFG_MAX_NODES);
            }
            ok = false;
        }
        if (ok && n) {
            if (!anchor_add(c, d, anchor, n))
                ok = false;
            else if (depth == 0)
                d->root = d->root ? d->root : n;
            else if (!node_add(c, stack[depth - 1], n))
                ok = false;
        }
        if (ok && opens) {
            if (depth == CFG_MAX_DEPTH) {
                report(c, n, NULL, "nesting deeper than %d levels; flatten the configuration",
                       CFG_MAX_DEPTH);
                ok = false;
            } else {
                stack[depth++] = n;
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Scalars                                                             */
/* ------------------------------------------------------------------ */

typedef enum { RV_NULL, RV_BOOL, RV_INT, RV_FLOAT, RV_STRING } rkind;

typedef struct rval {
    rkind kind;
    bool b;
    json_int_t i;
    double d;
    bool bad; /* a number JSON cannot hold: out of range, .inf or .nan */
} rval;

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

static rval resolve_text(const char *s, size_t len)
{
    rval r = {RV_STRING, false, 0, 0.0, false};
    if (strlen(s) != len) /* a NUL inside: not a plain value */
        return r;
    if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL")) {
        r.kind = RV_NULL;
    } else if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        r.kind = RV_BOOL;
        r.b = true;
    } else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        r.kind = RV_BOOL;
    } else if (all_in(s + (*s == '-' || *s == '+'), "0123456789")) {
        r.kind = RV_INT;
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        r.bad = errno == ERANGE;
        r.i = (json_int_t)v;
    } else if ((s[0] == '0' && s[1] == 'o' && all_in(s + 2, "01234567")) ||
               (s[0] == '0' && s[1] == 'x' && all_in(s + 2, "0123456789abcdefABCDEF"))) {
        r.kind = RV_INT;
        errno = 0;
        unsigned long long v = strtoull(s + 2, NULL, s[1] == 'o' ? 8 : 16);
        r.bad = errno == ERANGE || v > (unsigned long long)LLONG_MAX;
        r.i = r.bad ? 0 : (json_int_t)v;
    } else if (is_float_text(s)) {
        r.kind = RV_FLOAT;
        r.d = parse_double(s, &r.bad);
    } else {
        const char *t = s + (*s == '-' || *s == '+');
        if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF") ||
            !strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
            r.kind = RV_FLOAT;
            r.bad = true;
        }
    }
    return r;
}

static rval resolve(const ynode *n)
{
    if (n->type != YN_SCALAR || !n->plain) {
        rval r = {RV_STRING, false, 0, 0.0, false};
        return r;
    }
    return resolve_text(n->text, n->len);
}

static bool is_null(const ynode *n)
{
    return n->type == YN_SCALAR && resolve(n).kind == RV_NULL;
}

/* "a mapping", "a list", "a string"... for "got ..." in messages. */
static const char *describe(const ynode *n)
{
    if (n->type == YN_MAP)
        return "a mapping";
    if (n->type == YN_SEQ)
        return "a list";
    switch (resolve(n).kind) {
    case RV_NULL: return "an empty value";
    case RV_BOOL: return "a boolean";
    case RV_INT: return "an integer";
    case RV_FLOAT: return "a float";
    case RV_STRING: break;
    }
    return "a string";
}

/* ", write it without quotes" when a quoted scalar would be of `want` kind unquoted. */
static const char *unquote_hint(const ynode *n, rkind want)
{
    if (n->type == YN_SCALAR && !n->plain) {
        rval r = resolve_text(n->text, n->len);
        if (r.kind == want || (want == RV_FLOAT && r.kind == RV_INT))
            return "; write it without quotes";
    }
    return "";
}

/* ------------------------------------------------------------------ */
/* YAML to JSON                                                        */
/* ------------------------------------------------------------------ */

static json_t *to_json(ctx *c, const ynode *n, int depth, const char *key);

static json_t *scalar_to_json(ctx *c, const ynode *n, const char *key)
{
    json_t *v = NULL;
    if (!n->plain) {
        v = json_stringn(n->text, n->len);
    } else {
        rval r = resolve(n);
        if (r.bad) {
            report(c, n, key,
                   "in '%s': the number '%.100s' cannot be held in JSON (out of range or not "
                   "finite); quote it to keep it as text",
                   key, n->text);
            return NULL;
        }
        switch (r.kind) {
        case RV_NULL: v = json_null(); break;
        case RV_BOOL: v = json_boolean(r.b); break;
        case RV_INT: v = json_integer(r.i); break;
        case RV_FLOAT: v = json_real(r.d); break;
        case RV_STRING: v = json_stringn(n->text, n->len); break;
        }
    }
    if (!v) {
        c->nomem = true;
        c->conv_abort = true;
    }
    return v;
}

static json_t *map_to_json(ctx *c, const ynode *n, int depth, const char *key)
{
    json_t *obj = json_object();
    if (!obj) {
        c->nomem = true;
        c->conv_abort = true;
        return NULL;
    }
    for (size_t i = 0; i + 1 < n->count && !c->conv_abort; i += 2) {
        const ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (k->type != YN_SCALAR) {
            report(c, k, key, "in '%s': mapping keys must be scalars, got %s", key, describe(k));
            continue;
        }
        if (strlen(k->text) != k->len) {
            report(c, k, key, "in '%s': a key contains a NUL character", key);
            continue;
        }
        if (json_object_get(obj, k->text)) {
            int first = 0;
            for (size_t j = 0; j < i; j += 2)
                if (n->kids[j]->type == YN_SCALAR && !strcmp(n->kids[j]->text, k->text)) {
                    first = n->kids[j]->pos.line;
                    break;
                }
            report(c, k, key, "in '%s': duplicate key '%.200s' (first at line %d); keep one",
                   key, k->text, first);
            continue;
        }
        json_t *jv = to_json(c, v, depth + 1, key);
        if (!jv)
            continue;
        if (json_object_set_new(obj, k->text, jv) != 0) {
            c->nomem = true;
            c->conv_abort = true;
        }
    }
    if (c->conv_abort) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *to_json(ctx *c, const ynode *n, int depth, const char *key)
{
    if (c->conv_abort || !budget(c, c->conv_at ? c->conv_at : n)) {
        c->conv_abort = true;
        return NULL;
    }
    if (depth > CFG_MAX_DEPTH) {
        /* The tree itself is never this deep: aliases make it so; report at the key. */
        report(c, c->conv_at ? c->conv_at : n, key,
               "in '%s': nesting deeper than %d levels (a recursive alias?)", key, CFG_MAX_DEPTH);
        c->conv_abort = true;
        return NULL;
    }
    if (n->type == YN_SCALAR)
        return scalar_to_json(c, n, key);
    if (n->type == YN_MAP)
        return map_to_json(c, n, depth, key);
    json_t *arr = json_array();
    if (!arr) {
        c->nomem = true;
        c->conv_abort = true;
        return NULL;
    }
    for (size_t i = 0; i < n->count && !c->conv_abort; i++) {
        json_t *jv = to_json(c, n->kids[i], depth + 1, key);
        if (jv && json_array_append_new(arr, jv) != 0) {
            c->nomem = true;
            c->conv_abort = true;
        }
    }
    if (c->conv_abort) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/*
 * Convert the value `n` of the key node `k` named `key`; NULL when it could
 * not be (reported).
 */
static json_t *convert(ctx *c, const ynode *k, const ynode *n, const char *key)
{
    c->conv_abort = false;
    c->conv_at = k;
    c->conv_key = key;
    json_t *v = to_json(c, n, 1, key);
    c->conv_abort = false;
    c->conv_at = NULL;
    c->conv_key = NULL;
    return v;
}

/* ------------------------------------------------------------------ */
/* Typed values                                                        */
/* ------------------------------------------------------------------ */

/*
 * A string value: any non-empty scalar, taken as written. NULL (reported)
 * when it is a mapping, a list, empty (with `required`) or holds a NUL.
 * With !required an empty value gives NULL without a report.
 */
static const char *want_string(ctx *c, const ynode *v, const char *key, bool required)
{
    if (v->type != YN_SCALAR) {
        report(c, v, key, "'%s' must be a string, got %s", key, describe(v));
        return NULL;
    }
    if (is_null(v) || v->len == 0) {
        if (required)
            report(c, v, key, "'%s' must be a non-empty string, got %s", key,
                   v->len ? describe(v) : "an empty value");
        return NULL;
    }
    if (strlen(v->text) != v->len) {
        report(c, v, key, "'%s' must not contain a NUL character", key);
        return NULL;
    }
    return v->text;
}

static bool want_bool(ctx *c, const ynode *v, const char *key, bool *out)
{
    rval r = resolve(v);
    if (v->type == YN_SCALAR && r.kind == RV_BOOL) {
        *out = r.b;
        return true;
    }
    report(c, v, key, "'%s' must be true or false, got %s%s", key, describe(v),
           unquote_hint(v, RV_BOOL));
    return false;
}

/* A positive, finite number of seconds. */
static bool want_seconds(ctx *c, const ynode *v, const char *key, double *out)
{
    rval r = resolve(v);
    if (v->type == YN_SCALAR && (r.kind == RV_INT || r.kind == RV_FLOAT)) {
        double d = r.kind == RV_INT ? (double)r.i : r.d;
        if (!r.bad && d > 0 && isfinite(d)) {
            *out = d;
            return true;
        }
        report(c, v, key, "'%s' must be a positive number of seconds, got %.64s", key, v->text);
        return false;
    }
    report(c, v, key, "'%s' must be a positive number of seconds, got %s%s", key, describe(v),
           unquote_hint(v, RV_FLOAT));
    return false;
}

/* Join names with ", " into buf. */
static const char *join(char *buf, size_t size, const char *const *names, size_t count)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && pos < size; i++) {
        int n = snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", names[i]);
        if (n < 0)
            break;
        pos += (size_t)n;
    }
    return buf;
}

/* "unknown <what> 'x'; did you mean 'y'?" or "...; valid <plural>: a, b, c". */
static void report_unknown(ctx *c, const ynode *at, const char *key, const char *what,
                           const char *word, const char *const *valid, size_t count,
                           const char *listed)
{
    const char *s = cpex__suggest(word, valid, count);
    if (s) {
        report(c, at, key, "unknown %s '%.200s'; did you mean '%s'?", what, word, s);
    } else {
        char list[512];
        report(c, at, key, "unknown %s '%.200s'; %s: %s", what, word, listed,
               join(list, sizeof list, valid, count));
    }
}

/* A list of non-empty strings, copied into a NULL-terminated array. */
static char **want_string_list(ctx *c, const ynode *v, const char *key, size_t *count,
                               const char *example)
{
    *count = 0;
    if (is_null(v))
        return NULL;
    if (v->type != YN_SEQ) {
        if (v->type == YN_SCALAR)
            report(c, v, key, "'%s' must be a list, got %s; write %s: [%.100s]", key,
                   describe(v), key, v->text);
        else
            report(c, v, key, "'%s' must be a list, got %s; e.g. %s: [%s]", key, describe(v),
                   key, example);
        return NULL;
    }
    char **out = cpex__calloc(v->count + 1, sizeof *out);
    if (!out) {
        c->nomem = true;
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < v->count; i++) {
        const ynode *it = v->kids[i];
        if (!budget(c, it))
            break;
        if (it->type != YN_SCALAR || is_null(it) || it->len == 0 ||
            strlen(it->text) != it->len) {
            report(c, it, key, "each entry of '%s' must be a non-empty string, got %s", key,
                   it->type == YN_SCALAR && it->len == 0 ? "an empty value" : describe(it));
            continue;
        }
        out[n] = cpex__strdup(it->text);
        if (!out[n]) {
            c->nomem = true;
            break;
        }
        n++;
    }
    *count = n;
    return out;
}

static char **empty_strv(ctx *c)
{
    char **v = cpex__strv_empty();
    if (!v)
        c->nomem = true;
    return v;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

/* The key of a pair as text, or NULL (reported) when it is not a scalar. */
static const char *key_text(ctx *c, const ynode *k, const char *where)
{
    if (k->type != YN_SCALAR || strlen(k->text) != k->len) {
        report(c, k, NULL, "keys %s must be plain names, got %s", where,
               k->type == YN_SCALAR ? "a name with a NUL character" : describe(k));
        return NULL;
    }
    return k->text;
}

static int key_index(const char *key, const char *const *keys, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(key, keys[i]) == 0)
            return (int)i;
    return -1;
}

/* Whether key `idx` was seen before; reports the repetition. */
static bool repeated(ctx *c, const ynode *k, int *first_line, int idx, const char *key)
{
    if (first_line[idx] == 0) {
        first_line[idx] = k->pos.line > 0 ? k->pos.line : 1;
        return false;
    }
    report(c, k, key, "duplicate key '%s' (first at line %d); keep one", key, first_line[idx]);
    return true;
}

/* ------------------------------------------------------------------ */
/* plugin_settings                                                     */
/* ------------------------------------------------------------------ */

enum {
    S_PLUGIN_TIMEOUT,
    S_SHORT_CIRCUIT,
    S_ROUTING_ENABLED,
    S_PARALLEL_WITHIN_BAND,
    S_FAIL_ON_PLUGIN_ERROR,
    S_ROUTE_CACHE_MAX,
    S_CAPTURE_TIMINGS,
    S_COUNT
};
static const char *const settings_keys[S_COUNT] = {
    "plugin_timeout",   "short_circuit_on_deny",   "routing_enabled", "parallel_execution_within_band",
    "fail_on_plugin_error", "route_cache_max_entries", "capture_timings",
};

static void check_settings(ctx *c, const ynode *v)
{
    if (is_null(v))
        return;
    if (v->type != YN_MAP) {
        report(c, v, "plugin_settings", "'plugin_settings' must be a mapping, got %s",
               describe(v));
        return;
    }
    int first[S_COUNT] = {0};
    cpex__config *cfg = c->cfg;
    for (size_t i = 0; i + 1 < v->count; i += 2) {
        const ynode *k = v->kids[i], *val = v->kids[i + 1];
        if (!budget(c, k))
            return;
        const char *key = key_text(c, k, "of 'plugin_settings'");
        if (!key)
            continue;
        int idx = key_index(key, settings_keys, S_COUNT);
        if (idx < 0) {
            report_unknown(c, k, key, "plugin_settings key", key, settings_keys, S_COUNT,
                           "valid keys");
            continue;
        }
        if (repeated(c, k, first, idx, key))
            continue;
        switch (idx) {
        case S_PLUGIN_TIMEOUT:
            if (want_seconds(c, val, "plugin_settings.plugin_timeout", &cfg->plugin_timeout))
                cfg->has_plugin_timeout = true;
            break;
        case S_SHORT_CIRCUIT:
            if (want_bool(c, val, "plugin_settings.short_circuit_on_deny",
                          &cfg->short_circuit_on_deny))
                cfg->has_short_circuit = true;
            break;
        default:
            warn(c, k,
                 "'plugin_settings.%s' is accepted for CPEX compatibility but not implemented "
                 "by libcpex; it has no effect",
                 key);
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* plugins                                                             */
/* ------------------------------------------------------------------ */

enum {
    P_NAME,
    P_KIND,
    P_DESCRIPTION,
    P_AUTHOR,
    P_VERSION,
    P_HOOKS,
    P_MODE,
    P_PRIORITY,
    P_ON_ERROR,
    P_TIMEOUT,
    P_CAPABILITIES,
    P_TAGS,
    P_CONFIG,
    P_CONDITIONS,
    P_ISOLATION, /* the three keys of config_isolation.c, in CPEX__ISOLATION_KEYS order */
    P_WORKERS,
    P_SANDBOX,
    P_COUNT
};
static const char *const plugin_keys[P_COUNT] = {
    "name",     "kind",     "description", "author",       "version", "hooks",  "mode",
    "priority", "on_error", "timeout",     "capabilities", "tags",    "config", "conditions",
    CPEX__ISOLATION_KEYS,
};

/* config_isolation.c reports through this: at the key's value, naming the plugin. */
typedef struct iso_report_ctx {
    ctx *c;
    const ynode *at;
} iso_report_ctx;

static void iso_report(void *rc, const char *key, const char *message)
{
    iso_report_ctx *r = rc;
    report(r->c, r->at, key, "%s", message);
}

static void check_mode(ctx *c, cpex__config_plugin *p, const ynode *v)
{
    const char *valid[CPEX_MODE_DISABLED + 1];
    for (uint32_t m = 0; m <= CPEX_MODE_DISABLED; m++)
        valid[m] = cpex_mode_name(m);
    if (v->type != YN_SCALAR || is_null(v)) {
        char list[256];
        report(c, v, "mode", "'mode' must be one of %s; got %s",
               join(list, sizeof list, valid, COUNT(valid)), describe(v));
        return;
    }
    int m = cpex__mode_from_name(v->text);
    if (m < 0 || strlen(v->text) != v->len) {
        report_unknown(c, v, "mode", "mode", v->text, valid, COUNT(valid), "valid modes");
        return;
    }
    p->mode = (uint32_t)m;
}

static void check_on_error(ctx *c, cpex__config_plugin *p, const ynode *v)
{
    const char *valid[CPEX_ON_ERROR_DISABLE + 1];
    for (int e = 0; e <= CPEX_ON_ERROR_DISABLE; e++)
        valid[e] = cpex_on_error_name((cpex_on_error)e);
    if (v->type != YN_SCALAR || is_null(v)) {
        char list[128];
        report(c, v, "on_error", "'on_error' must be one of %s; got %s",
               join(list, sizeof list, valid, COUNT(valid)), describe(v));
        return;
    }
    int e = cpex__on_error_from_name(v->text);
    if (e < 0 || strlen(v->text) != v->len) {
        report_unknown(c, v, "on_error", "on_error value", v->text, valid, COUNT(valid),
                       "valid values");
        return;
    }
    p->on_error = (cpex_on_error)e;
    p->has_on_error = true;
}

static void check_priority(ctx *c, cpex__config_plugin *p, const ynode *v)
{
    rval r = resolve(v);
    if (v->type != YN_SCALAR || r.kind != RV_INT) {
        report(c, v, "priority", "'priority' must be an integer, got %s%s", describe(v),
               unquote_hint(v, RV_INT));
        return;
    }
    if (r.bad || r.i < INT32_MIN || r.i > INT32_MAX) {
        report(c, v, "priority", "'priority' %.64s is out of range (%d to %d)", v->text,
               INT32_MIN, INT32_MAX);
        return;
    }
    p->priority = (int32_t)r.i;
}

static void check_hooks(ctx *c, cpex__config_plugin *p, const ynode *v)
{
    p->hooks_pos = v->pos;
    if (v->type != YN_SEQ || v->count == 0) {
        if (v->type == YN_SCALAR && !is_null(v))
            report(c, v, "hooks", "'hooks' must be a list of hook names, got %s; write hooks: [%.100s]",
                   describe(v), v->text);
        else if (v->type == YN_MAP)
            report(c, v, "hooks", "'hooks' must be a list of hook names, got a mapping");
        else
            report(c, v, "hooks",
                   "'hooks' is empty; list at least one hook, e.g. hooks: [tool_pre_invoke]");
        return;
    }
    size_t n = 0;
    char **hooks = want_string_list(c, v, "hooks", &n, "tool_pre_invoke");
    if (!hooks)
        return;
    /* Duplicates (an error: the plugin would be wired twice). */
    for (size_t i = 0, seen = 0; i < v->count && seen < n; i++) {
        const ynode *it = v->kids[i];
        if (it->type != YN_SCALAR || it->len == 0 || strlen(it->text) != it->len || is_null(it))
            continue;
        for (size_t j = 0; j < seen; j++) {
            if (strcmp(hooks[j], it->text) == 0) {
                int first = 0;
                for (size_t k = 0; k < i; k++)
                    if (v->kids[k]->type == YN_SCALAR && !strcmp(v->kids[k]->text, it->text)) {
                        first = v->kids[k]->pos.line;
                        break;
                    }
                report(c, it, "hooks", "hook '%.200s' is listed twice (first at line %d); keep one",
                       it->text, first);
                break;
            }
        }
        seen++;
    }
    cpex_strv_free(p->hooks);
    p->hooks = hooks;
    p->hook_count = n;
}

static void check_capabilities(ctx *c, cpex__config_plugin *p, const ynode *v)
{
    size_t n = 0;
    char **names = want_string_list(c, v, "capabilities", &n, "read_subject, read_headers");
    if (!names)
        return;
    const char *known[32];
    size_t nknown = 0;
    for (unsigned b = 0; b < 32; b++) {
        const char *name = cpex__caps_name((cpex__caps)1u << b);
        if (name)
            known[nknown++] = name;
    }
    /* Keep each name once, in order; check each. */
    size_t kept = 0, item = 0;
    for (size_t i = 0; i < n; i++) {
        /* The node of names[i], for the position. */
        const ynode *at = v;
        for (; item < v->count; item++) {
            const ynode *it = v->kids[item];
            if (it->type == YN_SCALAR && it->len > 0 && !is_null(it) &&
                strlen(it->text) == it->len) {
                at = it;
                item++;
                break;
            }
        }
        bool dup = false;
        for (size_t j = 0; j < kept; j++)
            if (strcmp(names[j], names[i]) == 0)
                dup = true;
        if (dup) {
            cpex__free(names[i]);
            names[i] = NULL;
            continue;
        }
        const char *suggestion = NULL;
        cpex__cap_parse r = cpex__caps_parse(names[i], &p->caps, &suggestion);
        if (r == CPEX_CAP_UNKNOWN) {
            if (suggestion)
                report(c, at, "capabilities", "unknown capability '%.200s'; did you mean '%s'?",
                       names[i], suggestion);
            else {
                char list[512];
                report(c, at, "capabilities", "unknown capability '%.200s'; valid capabilities: %s",
                       names[i], join(list, sizeof list, known, nknown));
            }
        } else if (r == CPEX_CAP_NOT_IMPLEMENTED) {
            warn(c, at,
                 "capability '%.200s' is a CPEX capability libcpex does not implement yet; it "
                 "grants nothing",
                 names[i]);
        }
        names[kept++] = names[i];
        if (kept - 1 != i)
            names[i] = NULL;
    }
    names[kept] = NULL;
    cpex_strv_free(p->capabilities);
    p->capabilities = names;
    p->capability_count = kept;
}

/* The plugin's name, looked up first so that every message can name it. */
static const char *find_name(const ynode *map)
{
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const ynode *k = map->kids[i], *v = map->kids[i + 1];
        if (k->type == YN_SCALAR && k->len == 4 && !strcmp(k->text, "name")) {
            if (v->type == YN_SCALAR && v->len > 0 && !is_null(v) && strlen(v->text) == v->len)
                return v->text;
            return NULL;
        }
    }
    return NULL;
}

static void check_plugin(ctx *c, const ynode *map, cpex__config_plugin *p)
{
    p->mode = CPEX_MODE_SEQUENTIAL;
    p->priority = 100;
    p->on_error = CPEX_ON_ERROR_FAIL;
    p->pos = map->pos;
    if (map->type != YN_MAP) {
        report(c, map, NULL,
               "each entry of 'plugins' must be a mapping with at least name, kind and hooks; "
               "got %s",
               describe(map));
        return;
    }
    c->plugin = find_name(map);
    int first[P_COUNT] = {0};
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const ynode *k = map->kids[i], *v = map->kids[i + 1];
        if (!budget(c, k))
            return;
        const char *key = key_text(c, k, "of a plugin");
        if (!key)
            continue;
        int idx = key_index(key, plugin_keys, P_COUNT);
        if (idx < 0) {
            report_unknown(c, k, key, "key", key, plugin_keys, P_COUNT, "valid keys");
            continue;
        }
        if (repeated(c, k, first, idx, key))
            continue;
        const char *s;
        switch (idx) {
        case P_NAME: {
            s = want_string(c, v, key, true);
            if (!s)
                break;
            p->name = cpex__strdup(s);
            if (!p->name) {
                c->nomem = true;
                break;
            }
            json_t *line = json_object_get(c->names, s);
            if (line) {
                report(c, v, key, "duplicate plugin name '%.200s' (first defined at line %d); "
                                  "plugin names must be unique",
                       s, (int)json_integer_value(line));
            } else if (json_object_set_new(c->names, s, json_integer(p->pos.line)) != 0) {
                c->nomem = true;
            }
            break;
        }
        case P_KIND:
            p->kind_pos = v->pos;
            s = want_string(c, v, key, true);
            if (s && !(p->kind = cpex__strdup(s)))
                c->nomem = true;
            break;
        case P_DESCRIPTION:
        case P_AUTHOR:
        case P_VERSION: {
            char **slot = idx == P_DESCRIPTION ? &p->description
                          : idx == P_AUTHOR    ? &p->author
                                               : &p->version;
            s = want_string(c, v, key, false);
            if (s && !(*slot = cpex__strdup(s)))
                c->nomem = true;
            break;
        }
        case P_HOOKS:
            check_hooks(c, p, v);
            break;
        case P_MODE:
            check_mode(c, p, v);
            break;
        case P_PRIORITY:
            check_priority(c, p, v);
            break;
        case P_ON_ERROR:
            check_on_error(c, p, v);
            break;
        case P_TIMEOUT:
            want_seconds(c, v, key, &p->timeout);
            break;
        case P_CAPABILITIES:
            check_capabilities(c, p, v);
            break;
        case P_TAGS: {
            size_t n = 0;
            char **tags = want_string_list(c, v, key, &n, "pii, audit");
            if (tags) {
                cpex_strv_free(p->tags);
                p->tags = tags;
                p->tag_count = n;
            }
            break;
        }
        case P_CONFIG:
            json_decref(p->config);
            p->config = convert(c, k, v, key);
            break;
        case P_CONDITIONS:
            warn(c, k,
                 "'conditions' is accepted for CPEX compatibility but not implemented by "
                 "libcpex; the plugin runs for every invocation of its hooks");
            break;
        case P_ISOLATION:
        case P_WORKERS:
        case P_SANDBOX: {
            json_t *j = convert(c, k, v, key);
            iso_report_ctx rc = {c, v};
            if (j && !cpex__isolation_key(&p->isolation, key, j, iso_report, &rc))
                c->nomem = true;
            json_decref(j);
            break;
        }
        }
    }
    iso_report_ctx iso_rc = {c, map};
    cpex__isolation_finish(&p->isolation, iso_report, &iso_rc);
    if (!first[P_NAME])
        report(c, map, "name", "missing required key 'name'; add name: <a unique name>");
    if (!first[P_KIND])
        report(c, map, "kind",
               "missing required key 'kind'; add kind: <factory kind> (e.g. lib:<path>)");
    if (!first[P_HOOKS])
        report(c, map, "hooks",
               "missing required key 'hooks'; list the hooks it serves, e.g. hooks: "
               "[tool_pre_invoke]");
}

static void check_plugins(ctx *c, const ynode *v)
{
    if (is_null(v))
        return;
    if (v->type != YN_SEQ) {
        report(c, v, "plugins", "'plugins' must be a list of plugin entries (- name: ...), got %s",
               describe(v));
        return;
    }
    cpex__config *cfg = c->cfg;
    cfg->plugins = cpex__calloc(v->count ? v->count : 1, sizeof *cfg->plugins);
    if (!cfg->plugins) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->count && !c->nomem; i++) {
        if (!budget(c, v->kids[i]))
            break;
        cpex__config_plugin *p = &cfg->plugins[cfg->plugin_count++];
        c->plugin = NULL;
        c->plugin_no = i + 1;
        check_plugin(c, v->kids[i], p);
        if (!p->capabilities)
            p->capabilities = empty_strv(c);
        if (!p->tags)
            p->tags = empty_strv(c);
        if (!p->config && !(p->config = json_null()))
            c->nomem = true;
    }
    c->plugin = NULL;
    c->plugin_no = 0;
}

/* ------------------------------------------------------------------ */
/* Top level                                                           */
/* ------------------------------------------------------------------ */

enum { T_SETTINGS, T_PLUGINS, T_GLOBAL, T_ROUTES, T_PLUGIN_DIRS, T_GROUPS, T_AUTHENTICATION,
       T_APL, T_COUNT };
static const char *const top_keys[T_COUNT] = {
    "plugin_settings", "plugins", "global", "routes", "plugin_dirs",
    "groups", "authentication", "apl",
};

static void check_top(ctx *c, const ynode *root)
{
    if (!root || is_null(root)) {
        report(c, NULL, NULL,
               "the configuration is empty; expected a mapping with at least 'plugins:'");
        return;
    }
    if (root->type != YN_MAP) {
        report(c, root, NULL,
               "the top level must be a mapping (plugin_settings, plugins, global, routes), "
               "got %s",
               describe(root));
        return;
    }
    int first[T_COUNT] = {0};
    for (size_t i = 0; i + 1 < root->count; i += 2) {
        const ynode *k = root->kids[i], *v = root->kids[i + 1];
        if (!budget(c, k))
            return;
        const char *key = key_text(c, k, "at the top level");
        if (!key)
            continue;
        int idx = key_index(key, top_keys, T_COUNT);
        if (idx < 0) {
            report_unknown(c, k, key, "top-level key", key, top_keys, T_COUNT, "valid keys");
            continue;
        }
        if (repeated(c, k, first, idx, key))
            continue;
        switch (idx) {
        case T_SETTINGS:
            check_settings(c, v);
            break;
        case T_PLUGINS:
            check_plugins(c, v);
            break;
        case T_GLOBAL:
            c->cfg->global = convert(c, k, v, key);
            break;
        case T_ROUTES:
            c->cfg->routes = convert(c, k, v, key);
            break;
        case T_PLUGIN_DIRS:
            warn(c, k,
                 "'plugin_dirs' is accepted for CPEX compatibility but not implemented by "
                 "libcpex; it has no effect (name libraries in 'kind' instead)");
            break;
        case T_GROUPS:
        case T_AUTHENTICATION:
        case T_APL:
            /* CPEX (main branch) knows these; we accept them so a CPEX file
             * loads, and say plainly that they do nothing here yet. */
            warn(c, k,
                 "'%s' is a CPEX key that libcpex does not implement yet; it is ignored", key);
            break;
        }
    }
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

void cpex__config_free(cpex__config *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->plugin_count; i++) {
        cpex__config_plugin *p = &config->plugins[i];
        cpex__free(p->name);
        cpex__free(p->kind);
        cpex__free(p->description);
        cpex__free(p->author);
        cpex__free(p->version);
        cpex_strv_free(p->hooks);
        cpex_strv_free(p->capabilities);
        cpex_strv_free(p->tags);
        json_decref(p->config);
        cpex__isolation_cleanup(&p->isolation);
    }
    cpex__free(config->plugins);
    json_decref(config->global);
    json_decref(config->routes);
    cpex_strv_free(config->warnings);
    cpex__free(config->source);
    cpex__free(config->base_dir);
    cpex__free(config);
}

cpex_status cpex__config_parse(const char *yaml, size_t len, const char *source,
                              const char *base_dir, cpex__config **out, cpex_error *err)
{
    if (!out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__config_parse: out is NULL");
    *out = NULL;
    if (!yaml && len)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__config_parse: yaml is NULL");
    if (!yaml)
        yaml = "";
    ctx c;
    memset(&c, 0, sizeof c);
    c.source = source ? source : "<string>";
    c.err = err;
    c.cfg = cpex__calloc(1, sizeof *c.cfg);
    c.names = json_object();
    if (c.cfg) {
        c.cfg->source = cpex__strdup(c.source);
        c.cfg->base_dir = base_dir ? cpex__strdup(base_dir) : NULL;
        c.cfg->warnings = cpex__calloc(1, sizeof *c.cfg->warnings);
    }
    if (!c.cfg || !c.names || !c.cfg->source || (base_dir && !c.cfg->base_dir) ||
        !c.cfg->warnings) {
        c.nomem = true;
    } else {
        ydoc doc;
        memset(&doc, 0, sizeof doc);
        if (build_tree(&c, yaml, len, &doc) && !c.nomem)
            check_top(&c, doc.root);
        ydoc_free(&doc);
    }
    json_decref(c.names);
    if (c.nomem) {
        cpex__config_free(c.cfg);
        cpex__where w = {c.source, 0, 0, NULL, NULL};
        return cpex__error_add(err, CPEX_E_NOMEM, &w, "out of memory while reading the configuration");
    }
    if (c.errors) {
        cpex__config_free(c.cfg);
        return CPEX_E_CONFIG;
    }
    *out = c.cfg;
    return CPEX_OK;
}

/* The absolute directory of `path` (its directory as given if that fails). */
static char *dir_of(const char *path)
{
    char *copy = cpex__strdup(path);
    if (!copy)
        return NULL;
    const char *dir = dirname(copy);
    char *real = realpath(dir, NULL);
    char *result = cpex__strdup(real ? real : dir);
    free(real); /* from libc */
    cpex__free(copy);
    return result;
}

cpex_status cpex__config_parse_file(const char *path, cpex__config **out, cpex_error *err)
{
    if (!out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex__config_parse_file: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                              "cpex__config_parse_file: no configuration file named");
    cpex__where w = {path, 0, 0, NULL, NULL};
    FILE *f = fopen(path, "rb");
    if (!f)
        return cpex__error_add(err, CPEX_E_IO, &w, "cannot read the configuration file: %s",
                              strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int read_errno = 0;
    bool too_big = false, nomem = false;
    for (;;) {
        if (len == cap) {
            if (cap >= CFG_MAX_FILE_SIZE) {
                too_big = true;
                break;
            }
            size_t ncap = cap ? cap * 2 : 4096;
            char *nb = cpex__realloc(buf, ncap + 1);
            if (!nb) {
                nomem = true;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                read_errno = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    cpex_status st;
    if (nomem) {
        st = cpex__error_add(err, CPEX_E_NOMEM, &w, "out of memory while reading the configuration");
    } else if (too_big) {
        st = cpex__error_add(err, CPEX_E_IO, &w,
                            "the configuration file is larger than %u MiB; is it the right file?",
                            CFG_MAX_FILE_SIZE >> 20);
    } else if (read_errno) {
        st = cpex__error_add(err, CPEX_E_IO, &w, "cannot read the configuration file: %s",
                            strerror(read_errno));
    } else {
        buf[len] = '\0';
        char *dir = dir_of(path);
        if (!dir)
            st = cpex__error_add(err, CPEX_E_NOMEM, &w,
                                "out of memory while reading the configuration");
        else
            st = cpex__config_parse(buf, len, path, dir, out, err);
        cpex__free(dir);
    }
    cpex__free(buf);
    return st;
}
