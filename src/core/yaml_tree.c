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
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "util/alloc.h"

/* ------------------------------------------------------------------ */
/* The arena                                                           */
/* ------------------------------------------------------------------ */

/* Blocks are this large, or as large as one scalar that does not fit. */
#define BLOCK_SIZE (64u * 1024u)

struct cpex__yblock {
    cpex__yblock *next;
    size_t used, size;
    max_align_t data[]; /* `size` bytes */
};

/* `size` bytes of the arena, aligned for any node; NULL (nomem) when memory is out. */
static void *arena_take(cpex__ydiag *diag, cpex__ydoc *d, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    cpex__yblock *b = d->blocks;
    if (!b || b->size - b->used < size) {
        size_t want = size > BLOCK_SIZE ? size : BLOCK_SIZE;
        b = cpex__malloc(sizeof *b + want);
        if (!b) {
            diag->nomem = true;
            return NULL;
        }
        b->size = want;
        b->used = 0;
        /* A block made for one large scalar goes behind the current one,
           whose room stays usable. */
        if (want > BLOCK_SIZE && d->blocks) {
            b->next = d->blocks->next;
            d->blocks->next = b;
        } else {
            b->next = d->blocks;
            d->blocks = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

void cpex__ydoc_free(cpex__ydoc *d)
{
    for (size_t i = 0; i < d->ncollections; i++)
        cpex__free(d->collections[i]->kids);
    cpex__free(d->collections);
    for (cpex__yblock *b = d->blocks, *next; b; b = next) {
        next = b->next;
        cpex__free(b);
    }
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

void cpex__yreport(cpex__ydiag *diag, const cpex__ynode *at, const char *key, const char *fmt, ...)
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
    if (++diag->values <= diag->budget)
        return true;
    diag->over_budget = true;
    const char *in = key ? "in '" : "", *k = key ? key : "", *end = key ? "': " : "";
    if (diag->aliases)
        cpex__yreport(diag, at, key,
                      "%s%s%sthe %zu alias%s of the configuration expand it by more than %d "
                      "values (the limit for what aliases add); use fewer aliases, or anchor "
                      "smaller values",
                      in, k, end, diag->aliases, diag->aliases == 1 ? "" : "es",
                      CPEX__YAML_MAX_ALIAS_VALUES);
    else /* each node is visited once without aliases: a walk that is not */
        cpex__yreport(diag, at, key, "%s%s%sthe configuration has more than %zu values", in, k, end,
                      diag->budget);
    return false;
}

/* ------------------------------------------------------------------ */
/* Building the tree from libyaml events                               */
/* ------------------------------------------------------------------ */

/* libyaml's 0-based line or column as a 1-based int. */
static int mark_int(size_t v) { return v >= (size_t)INT_MAX ? INT_MAX : (int)v + 1; }

/* A node at `mark`, or NULL: out of memory (diag->nomem) or over the node limit. */
static cpex__ynode *node_new(cpex__ydiag *diag, cpex__ydoc *d, int type, const yaml_mark_t *mark)
{
    if (d->nodes >= CPEX__YAML_MAX_NODES)
        return NULL;
    if (type != CPEX__YN_SCALAR && d->ncollections == d->capcollections) {
        size_t cap = d->capcollections ? d->capcollections * 2 : 64;
        cpex__ynode **c = cpex__realloc(d->collections, cap * sizeof *c);
        if (!c) {
            diag->nomem = true;
            return NULL;
        }
        d->collections = c;
        d->capcollections = cap;
    }
    cpex__ynode *n = arena_take(diag, d, sizeof *n);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = type;
    n->pos.line = mark_int(mark->line);
    n->pos.column = mark_int(mark->column);
    if (type != CPEX__YN_SCALAR)
        d->collections[d->ncollections++] = n;
    d->nodes++;
    return n;
}

static bool node_add(cpex__ydiag *diag, cpex__ynode *parent, cpex__ynode *kid)
{
    cpex__ynode **kids = cpex__grow(parent->kids, parent->count, &parent->cap, sizeof *kids, 8);
    if (!kids) {
        diag->nomem = true;
        return false;
    }
    parent->kids = kids;
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

/*
 * libyaml's reader error (bad encoding, a forbidden character): it has no
 * mark, only the byte offset. problem_value is the offending byte for the
 * "octet" problems but the decoded code point for the "character" ones
 * (U+D800 arrives as 0xD800, whose low byte is 0x00), so the message shows
 * the code point when there is one and the input's own bytes at the
 * offset, read from the text itself.
 */
static void report_reader_error(cpex__ydiag *diag, const yaml_parser_t *p, const char *problem,
                                const char *yaml, size_t len)
{
    const unsigned char *u = (const unsigned char *)yaml;
    size_t off = p->problem_offset < len ? p->problem_offset : len;
    /* Line and column in characters, as libyaml's marks count them. */
    cpex__pos pos = {1, 1};
    for (size_t i = 0; i < off; i++) {
        if (u[i] == '\n') {
            pos.line = pos.line < INT_MAX ? pos.line + 1 : INT_MAX;
            pos.column = 1;
        } else if ((u[i] & 0xC0) != 0x80 && pos.column < INT_MAX) {
            pos.column++;
        }
    }
    /* The bytes of the sequence that starts at the offset (one for a byte
       that starts none), at most four. */
    size_t n = 0;
    if (off < len) {
        unsigned char b = u[off];
        n = b >= 0xF0 && b <= 0xF7   ? 4
            : b >= 0xE0 && b <= 0xEF ? 3
            : b >= 0xC0 && b <= 0xDF ? 2
                                     : 1;
        if (n > len - off)
            n = len - off;
    }
    char bytes[5 * 4 + 1] = "";
    for (size_t i = 0, w = 0; i < n; i++, w = strlen(bytes))
        snprintf(bytes + w, sizeof bytes - w, "%s0x%02X", i ? " " : "", u[off + i]);
    char code[24] = "";
    if (p->problem_value > 0xFF || (p->problem_value >= 0 && strstr(problem, "character")))
        snprintf(code, sizeof code, "U+%04X, ", (unsigned)p->problem_value);
    cpex__ynode at = {.pos = pos};
    if (n)
        cpex__yreport(diag, &at, NULL, "YAML syntax error: %s (%s%s %s at offset %zu)", problem,
                      code, n == 1 ? "byte" : "bytes", bytes, p->problem_offset);
    else
        cpex__yreport(diag, &at, NULL, "YAML syntax error: %s (%sat offset %zu)", problem, code,
                      p->problem_offset);
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
        report_reader_error(diag, p, problem, yaml, len);
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
        case YAML_STREAM_END_EVENT: done = true; break;
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
            diag->aliases++;
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
            n->text = arena_take(diag, d, ev.data.scalar.length + 1);
            if (!n->text)
                break;
            memcpy(n->text, ev.data.scalar.value, ev.data.scalar.length);
            n->text[ev.data.scalar.length] = '\0';
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
        default: break;
        }
        if (diag->nomem)
            ok = false;
        if (ok && !done && !n && (ev.type == YAML_SCALAR_EVENT || opens)) {
            if (!diag->nomem) {
                cpex__ynode at = {
                    .pos = {mark_int(ev.start_mark.line), mark_int(ev.start_mark.column)}};
                cpex__yreport(diag, &at, NULL,
                              "the document has more than %d nodes (keys, values, lists and "
                              "mappings, the limit of one configuration); split it, or make "
                              "it smaller",
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
    diag->budget = d->nodes + CPEX__YAML_MAX_ALIAS_VALUES;
    return ok;
}
