/*
 * yaml_tree.h — a YAML text as a tree of nodes, built with limits (core
 * layer, internal).
 *
 * The YAML files of the core: yaml_tree.c builds the tree from libyaml's
 * events; yaml_scalar.c says what a scalar node is (null, boolean,
 * number, string) and turns a node into JSON; yaml_typed.c reads typed
 * values out of nodes for the checks; config_yaml.c checks the
 * configuration itself. None of them reports on its own: problems go to
 * a cpex__ydiag, which the configuration checker implements.
 *
 * Limits, against hostile or broken input, each with its own message:
 *   - nesting deeper than CPEX__YAML_MAX_DEPTH collections is an error
 *     (libyaml's scanner gets quadratically slow on deep flow nesting,
 *     and its own loader has no limit);
 *   - the tree holds at most CPEX__YAML_MAX_NODES nodes (keys, values,
 *     lists and mappings);
 *   - aliases are not copied in the tree, they point at their anchor's
 *     node, so a walk (a conversion to JSON, a check) can visit far more
 *     values than there are nodes ("billion laughs"). The walks share a
 *     budget (cpex__ybudget) of the tree's own node count — each node is
 *     visited at most once without aliases — plus
 *     CPEX__YAML_MAX_ALIAS_VALUES: what aliases may add. A large file
 *     without aliases never meets it; an alias bomb always does, and the
 *     message says so.
 */
#ifndef CPEX_CORE_YAML_TREE_H
#define CPEX_CORE_YAML_TREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

#define CPEX__YAML_MAX_DEPTH 64
#define CPEX__YAML_MAX_NODES 1000000
#define CPEX__YAML_MAX_ALIAS_VALUES 100000

/* What a node is. */
enum { CPEX__YN_SCALAR, CPEX__YN_SEQ, CPEX__YN_MAP };

typedef struct cpex__ynode {
    int type;
    bool plain; /* scalar: plain style and no tag, so it resolves */
    cpex__pos pos;
    char *text; /* scalar: NUL-terminated (may hold NULs inside) */
    size_t len;
    struct cpex__ynode **kids; /* seq: items; map: key, value, key, value ... */
    size_t count;
    size_t cap;
} cpex__ynode;

typedef struct cpex__yanchor {
    char *name;
    cpex__ynode *node;
} cpex__yanchor;

/* A block of the arena nodes and scalar texts are cut from. */
typedef struct cpex__yblock cpex__yblock;

/*
 * A parsed text. Zero it before cpex__ytree_build. Nodes and their texts
 * live in an arena of large blocks (a configuration of 20,000 plugins has
 * about a million of them: one allocation each made freeing alone cost as
 * much as building); only the growing child arrays are allocated apart.
 */
typedef struct cpex__ydoc {
    cpex__ynode *root;         /* NULL for an empty text */
    size_t nodes;              /* nodes made (aliases are shared, not counted) */
    cpex__yblock *blocks;      /* the arena, newest first */
    cpex__ynode **collections; /* the lists and mappings, to free their kids */
    size_t ncollections, capcollections;
    cpex__yanchor *anchors;
    size_t nanchors, capanchors;
} cpex__ydoc;

/*
 * Where problems go, and the state every walk over one tree shares. The
 * owner fills `report` (it formats, counts and caps the messages) and
 * zeroes the rest; it may embed the struct in its own state.
 */
typedef struct cpex__ydiag cpex__ydiag;
struct cpex__ydiag {
    /* One problem at `pos` (0:0 when unknown) about `key` (may be NULL). */
    void (*report)(cpex__ydiag *diag, cpex__pos pos, const char *key, const char *fmt, va_list ap);
    bool nomem;       /* an allocation failed: stop; the owner reports it */
    size_t values;    /* spent of `budget` */
    size_t budget;    /* set by cpex__ytree_build: nodes + CPEX__YAML_MAX_ALIAS_VALUES */
    size_t aliases;   /* alias uses in the text (set by cpex__ytree_build) */
    bool over_budget; /* the budget is gone (reported once) */
};

/** Report a problem at node `at` (NULL: no position) through diag->report. */
void cpex__yreport(cpex__ydiag *diag, const cpex__ynode *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** The position of `n`; 0:0 for NULL. */
cpex__pos cpex__ynode_pos(const cpex__ynode *n);

/**
 * Spend one unit of the value budget; false (reported once, at `at`, in
 * `key` when not NULL) when it is gone.
 */
bool cpex__ybudget(cpex__ydiag *diag, const cpex__ynode *at, const char *key);

/**
 * Read `len` bytes of YAML into `doc` (zeroed by the caller; free it with
 * cpex__ydoc_free whatever the result). False when the text cannot be
 * used: reported, or diag->nomem set.
 */
bool cpex__ytree_build(cpex__ydiag *diag, const char *yaml, size_t len, cpex__ydoc *doc);

/** Free what `doc` holds and zero it. */
void cpex__ydoc_free(cpex__ydoc *doc);

#endif
