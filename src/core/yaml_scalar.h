/*
 * yaml_scalar.h — what a YAML scalar is, and a node as JSON (core layer,
 * internal; the tree is yaml_tree.h's).
 *
 * Scalars resolve as in the YAML 1.2 core schema when they are plain and
 * untagged: null, ~ and empty are null; true/false (also True, TRUE...)
 * are booleans; [-+]?[0-9]+, 0o.. and 0x.. are integers; decimal and
 * exponent forms are floats; everything else is a string. Quoted and
 * block scalars are always strings. .inf, .nan and numbers out of range
 * cannot be held in JSON: they resolve with `bad` set, and the conversion
 * reports them.
 */
#ifndef CPEX_CORE_YAML_SCALAR_H
#define CPEX_CORE_YAML_SCALAR_H

#include <stdbool.h>

#include <jansson.h>

#include "core/yaml_tree.h"

typedef enum cpex__ykind {
    CPEX__YV_NULL,
    CPEX__YV_BOOL,
    CPEX__YV_INT,
    CPEX__YV_FLOAT,
    CPEX__YV_STRING
} cpex__ykind;

/* A resolved scalar. */
typedef struct cpex__yval {
    cpex__ykind kind;
    bool b;
    json_int_t i;
    double d;
    bool bad; /* a number JSON cannot hold: out of range, .inf or .nan */
} cpex__yval;

/** What `n` is: a string for collections and quoted scalars. */
cpex__yval cpex__yresolve(const cpex__ynode *n);

/** Whether `n` is a null scalar. */
bool cpex__yis_null(const cpex__ynode *n);

/** "a mapping", "a list", "a string"... for "got ..." in messages. */
const char *cpex__ydescribe(const cpex__ynode *n);

/** "; write it without quotes" when a quoted scalar would be of `want` kind unquoted, else "". */
const char *cpex__yunquote_hint(const cpex__ynode *n, cpex__ykind want);

/**
 * The value `n` of the key node `key_node` named `key`, as JSON (aliases
 * expanded, spending the value budget); NULL when it could not be
 * converted (reported, or diag->nomem set).
 */
json_t *cpex__yto_json(cpex__ydiag *diag, const cpex__ynode *key_node, const cpex__ynode *n,
                       const char *key);

#endif
