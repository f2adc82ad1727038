/*
 * yaml_tree.c — build a tree of nodes from libyaml's events, within the
 * limits of yaml_tree.h: nesting depth, node count, anchors and aliases,
 * the value budget of the walks; libyaml's syntax errors with their
 * positions.
 *
 * Only the tree: what a scalar means is yaml_scalar.c's job, what the
 * configuration must hold is config_yaml.c's.
 */
#include "core/yaml_tree.h"

#include <limits.h>
#include <string.h>

#include <yaml.h>

#include "util/alloc.h"

void cpex__ydoc_free(cpex__ydoc *d)
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
/* Reporting and the value budget                                      */
/* ------------------------------------------------------------------ */

cpex__pos cpex__ynode_pos(const cpex__ynode *n)
{
    cpex__pos p = {0, 0};
    return n ? n->pos : p;
}

void cpex__yreport(cpex__ydiag *diag, const cpex__ynode *at, const char *key, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag->report(diag, cpex__ynode_pos(at), key, fmt, ap);
    va_end(ap);
}

bool cpex__ybudget(cpex__ydiag *diag, const cpex__ynode *at, const char *key)
{
    if (diag->over_budget)
        return false;
    if (++diag->values <= CPEX__YAML_MAX_VALUES)
        return true;
    diag->over_budget = true;
    cpex__yreport(diag, at, key,
                  "%s%s%sthe configuration expands to more than %d values (through aliases?); "
                  "make it smaller",
                  key ? "in '" : "", key ? key : "", key ? "': " : "", CPEX__YAML_MAX_VALUES);
    return false;
}

/* ------------------------------------------------------------------ */
/* Building the tree from libyaml events                               */
/* ------------------------------------------------------------------ */

/* libyaml's 0-based line or column as a 1-based int. */
static int mark_int(size_t v)
{
    return v >= (size_t)INT_MAX ? INT_MAX : (int)v + 1;
}

/* A node at `mark`, or NULL: out of memory (diag->nomem) or over the node limit. */
static cpex__ynode *node_new(cpex__ydiag *diag, cpex__ydoc *d, int type, const yaml_mark_t *mark)
{
    if (d->nall >= CPEX__YAML_MAX_NODES)
        return NULL;
    if (d->nall == d->capall) {
        size_t cap = d->capall ? d->capall * 2 : 64;
        cpex__ynode **all = cpex__realloc(d->all, cap * sizeof *all);
        if (!all) {
            diag->nomem = true;
            return NULL;
        }
        d->all = all;
        d->capall = cap;
    }
    cpex__ynode *n = cpex__calloc(1, sizeof *n);
    if (!n) {
        diag->nomem = true;
        return NULL;
    }
    n->type = type;
    n->pos.line = mark_int(mark->line);
    n->pos.column = mark_int(mark->column);
    d->all[d->nall++] = n;
    return n;
}

static bool node_add(cpex__ydiag *diag, cpex__ynode *parent, cpex__ynode *kid)
{
    if (parent->count == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        cpex__ynode **kids = cpex__realloc(parent->kids, cap * sizeof *kids);
        if (!kids) {
            diag->nomem = true;
            return false;
        }
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->count++] = kid;
    return true;
}

static bool anchor_add(cpex__ydiag *diag, cpex__ydoc *d, const yaml_char_t *name, cpex__ynode *n)
{
    if (!name)
        return true;
    if (d->nanchors == d->capanchors) {
        size_t cap = d->capanchors ? d->capanchors * 2 : 8;
        cpex__yanchor *a = cpex__realloc(d->anchors, cap * sizeof *a);
        if (!a) {
            diag->nomem = true;
            return false;
        }
        d->anchors = a;
        d->capanchors = cap;
    }
    char *copy = cpex__strdup((const char *)name);
    if (!copy) {
        diag->nomem = true;
        return false;
    }
    d->anchors[d->nanchors].name = copy;
    d->anchors[d->nanchors].node = n;
    d->nanchors++;
    return true;
}

static cpex__ynode *anchor_find(const cpex__ydoc *d, const yaml_char_t *name)
{
    /* The latest definition wins (YAML lets an anchor be redefined). */
    for (size_t i = d->nanchors; i-- > 0;)
        if (strcmp(d->anchors[i].name, (const char *)name) == 0)
            return d->anchors[i].node;
    return NULL;
}

/* libyaml's syntax error, with its position. */
static void report_yaml_error(cpex__ydiag *diag, const yaml_parser_t *p, const char *yaml,
                              size_t len)
{
    if (p->error == YAML_MEMORY_ERROR) {
        diag->nomem = true;
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
        cpex__ynode at = {.pos = pos};
        if (p->problem_value >= 0)
            cpex__yreport(diag, &at, NULL, "YAML syntax error: %s (byte 0x%02X at offset %zu)",
                          problem, (unsigned)p->problem_value & 0xffu, p->problem_offset);
        else
            cpex__yreport(diag, &at, NULL, "YAML syntax error: %s (at offset %zu)", problem,
                          p->problem_offset);
        return;
    }
    cpex__ynode at = {.pos = {mark_int(p->problem_mark.line), mark_int(p->problem_mark.column)}};
    if (p->context)
        cpex__yreport(diag, &at, NULL,
                      "YAML syntax error: %s (%s at line %d, column %d); check the indentation "
                      "and quoting",
                      problem, p->context, mark_int(p->context_mark.line),
                      mark_int(p->context_mark.column));
    else
        cpex__yreport(diag, &at, NULL, "YAML syntax error: %s; check the indentation and quoting",
                      problem);
}

bool cpex__ytree_build(cpex__ydiag *diag, const char *yaml, size_t len, cpex__ydoc *d)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        diag->nomem = true;
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    cpex__ynode *stack[CPEX__YAML_MAX_DEPTH];
    size_t depth = 0;
    int documents = 0;
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            report_yaml_error(diag, &parser, yaml, len);
            ok = false;
            break;
        }
        cpex__ynode *n = NULL;
        const yaml_char_t *anchor = NULL;
        bool opens = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                cpex__ynode at = {
                    .pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                cpex__yreport(diag, &at, NULL,
                              "more than one YAML document; put the whole configuration in one "
                              "document (remove the second '---')");
                ok = false;
            }
            break;
        case YAML_ALIAS_EVENT:
            n = anchor_find(d, ev.data.alias.anchor);
            if (!n) {
                cpex__ynode at = {
                    .pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                cpex__yreport(diag, &at, NULL,
                              "YAML alias '*%s' refers to no anchor defined before it",
                              (const char *)ev.data.alias.anchor);
                ok = false;
            }
            break;
        case YAML_SCALAR_EVENT:
            n = node_new(diag, d, CPEX__YN_SCALAR, &ev.start_mark);
            if (!n)
                break;
            n->text = cpex__strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (!n->text) {
                diag->nomem = true;
                break;
            }
            n->len = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag;
            anchor = ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
            n = node_new(diag, d, CPEX__YN_SEQ, &ev.start_mark);
            anchor = ev.data.sequence_start.anchor;
            opens = true;
            break;
        case YAML_MAPPING_START_EVENT:
            n = node_new(diag, d, CPEX__YN_MAP, &ev.start_mark);
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
        if (diag->nomem)
            ok = false;
        if (ok && !done && !n && (ev.type == YAML_SCALAR_EVENT || opens)) {
            if (!diag->nomem) {
                cpex__ynode at = {
                    .pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                cpex__yreport(diag, &at, NULL,
                              "the document has more than %d nodes; make it smaller",
                              CPEX__YAML_MAX_NODES);
            }
            ok = false;
        }
        if (ok && n) {
            if (!anchor_add(diag, d, anchor, n))
                ok = false;
            else if (depth == 0)
                d->root = d->root ? d->root : n;
            else if (!node_add(diag, stack[depth - 1], n))
                ok = false;
        }
        if (ok && opens) {
            if (depth == CPEX__YAML_MAX_DEPTH) {
                cpex__yreport(diag, n, NULL,
                              "nesting deeper than %d levels; flatten the configuration",
                              CPEX__YAML_MAX_DEPTH);
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
