/*
 * yaml_typed.h — typed values read out of YAML nodes, for the
 * configuration checks (core layer, internal).
 *
 * Each reader takes the node and the name of its key, and when the node
 * does not fit reports it through the tree's cpex__ydiag with the key and
 * a hint ("'timeout' must be a number of seconds from 0.001 to 86400, got a
 * string; write it without quotes").
 */
#ifndef CPEX_CORE_YAML_TYPED_H
#define CPEX_CORE_YAML_TYPED_H

#include <stdbool.h>
#include <stddef.h>

#include "core/yaml_tree.h"

/**
 * A string value: any non-empty scalar, taken as written (borrowed from
 * the node). NULL (reported) when it is a mapping, a list, empty (with
 * `required`) or holds a NUL. With !required an empty value gives NULL
 * without a report.
 */
const char *cpex__ywant_string(cpex__ydiag *diag, const cpex__ynode *v, const char *key,
                               bool required);

/** A boolean into *out; false (reported) otherwise. */
bool cpex__ywant_bool(cpex__ydiag *diag, const cpex__ynode *v, const char *key, bool *out);

/**
 * A number of seconds from `min` to `max` (both included) into *out; false
 * (reported, with the range) otherwise: a string, a value out of the range,
 * an integer or float too large for JSON, .inf or .nan.
 */
bool cpex__ywant_seconds(cpex__ydiag *diag, const cpex__ynode *v, const char *key, double min,
                         double max, double *out);

/**
 * A list of non-empty strings, copied into a new NULL-terminated array
 * (free with cpex_strv_free) with *count entries; bad entries are reported
 * and left out. NULL when `v` is null (no report), not a list (reported,
 * `example` shows what to write) or memory ran out (diag->nomem).
 */
char **cpex__ywant_string_list(cpex__ydiag *diag, const cpex__ynode *v, const char *key,
                               size_t *count, const char *example);

/** `names` joined with ", " into buf (truncated to `size`); returns buf. */
const char *cpex__yjoin(char *buf, size_t size, const char *const *names, size_t count);

/**
 * Report "unknown <what> 'word'; did you mean 'x'?" when one of `valid` is
 * close, else "unknown <what> 'word'; <listed>: a, b, c".
 */
void cpex__yreport_unknown(cpex__ydiag *diag, const cpex__ynode *at, const char *key,
                           const char *what, const char *word, const char *const *valid,
                           size_t count, const char *listed);

/**
 * The key node `k` of a pair as text, or NULL (reported: "keys <where>
 * must be plain names") when it is not a scalar or holds a NUL.
 */
const char *cpex__ykey_text(cpex__ydiag *diag, const cpex__ynode *k, const char *where);

/** Index of `key` in `keys`, or -1. */
int cpex__ykey_index(const char *key, const char *const *keys, size_t count);

/**
 * Whether key number `idx` of a mapping was seen before (reported as a
 * duplicate); first_line[idx] remembers the line of its first occurrence.
 */
bool cpex__yrepeated(cpex__ydiag *diag, const cpex__ynode *k, int *first_line, int idx,
                     const char *key);

#endif
