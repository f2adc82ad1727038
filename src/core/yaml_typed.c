/*
 * yaml_typed.c — read typed values out of YAML nodes (yaml_typed.h): a
 * string, a boolean, seconds, a list of strings, a key among known ones,
 * each with the message for a value that does not fit.
 *
 * What a scalar is comes from yaml_scalar.c; which keys exist and what
 * they must hold is config_yaml.c's business.
 */
#include "core/yaml_typed.h"

#include <stdio.h>
#include <string.h>

#include "core/yaml_scalar.h"
#include "util/alloc.h"
#include "util/suggest.h"

const char *cpex__ywant_string(cpex__ydiag *diag, const cpex__ynode *v, const char *key,
                               bool required)
{
    if (v->type != CPEX__YN_SCALAR) {
        cpex__yreport(diag, v, key, "'%s' must be a string, got %s", key, cpex__ydescribe(v));
        return NULL;
    }
    if (cpex__yis_null(v) || v->len == 0) {
        if (required)
            cpex__yreport(diag, v, key, "'%s' must be a non-empty string, got %s", key,
                          v->len ? cpex__ydescribe(v) : "an empty value");
        return NULL;
    }
    if (strlen(v->text) != v->len) {
        cpex__yreport(diag, v, key, "'%s' must not contain a NUL character", key);
        return NULL;
    }
    return v->text;
}

bool cpex__ywant_bool(cpex__ydiag *diag, const cpex__ynode *v, const char *key, bool *out)
{
    cpex__yval r = cpex__yresolve(v);
    if (v->type == CPEX__YN_SCALAR && r.kind == CPEX__YV_BOOL) {
        *out = r.b;
        return true;
    }
    cpex__yreport(diag, v, key, "'%s' must be true or false, got %s%s", key, cpex__ydescribe(v),
                  cpex__yunquote_hint(v, CPEX__YV_BOOL));
    return false;
}

bool cpex__ywant_seconds(cpex__ydiag *diag, const cpex__ynode *v, const char *key, double min,
                         double max, double *out)
{
    cpex__yval r = cpex__yresolve(v);
    if (v->type == CPEX__YN_SCALAR && (r.kind == CPEX__YV_INT || r.kind == CPEX__YV_FLOAT)) {
        /* An integer past 2^53 loses digits as a double, but it is far
         * outside every range this is called with, so the verdict holds. */
        double d = r.kind == CPEX__YV_INT ? (double)r.i : r.d;
        if (!r.bad && d >= min && d <= max) { /* NaN fails both */
            *out = d;
            return true;
        }
        cpex__yreport(diag, v, key, "'%s' must be a number of seconds from %g to %g, got %.64s%s",
                      key, min, max, v->text,
                      r.bad              ? " (out of range or not finite)"
                      : d > 0 && d < min ? " (below the shortest timeout libcpex can keep)"
                                         : "");
        return false;
    }
    cpex__yreport(diag, v, key, "'%s' must be a number of seconds from %g to %g, got %s%s", key,
                  min, max, cpex__ydescribe(v), cpex__yunquote_hint(v, CPEX__YV_FLOAT));
    return false;
}

const char *cpex__yjoin(char *buf, size_t size, const char *const *names, size_t count)
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

void cpex__yreport_unknown(cpex__ydiag *diag, const cpex__ynode *at, const char *key,
                           const char *what, const char *word, const char *const *valid,
                           size_t count, const char *listed)
{
    const char *s = cpex__suggest(word, valid, count);
    if (s) {
        cpex__yreport(diag, at, key, "unknown %s '%.200s'; did you mean '%s'?", what, word, s);
    } else {
        char list[512];
        cpex__yreport(diag, at, key, "unknown %s '%.200s'; %s: %s", what, word, listed,
                      cpex__yjoin(list, sizeof list, valid, count));
    }
}

char **cpex__ywant_string_list(cpex__ydiag *diag, const cpex__ynode *v, const char *key,
                               size_t *count, const char *example)
{
    *count = 0;
    if (cpex__yis_null(v))
        return NULL;
    if (v->type != CPEX__YN_SEQ) {
        if (v->type == CPEX__YN_SCALAR)
            cpex__yreport(diag, v, key, "'%s' must be a list, got %s; write %s: [%.100s]", key,
                          cpex__ydescribe(v), key, v->text);
        else
            cpex__yreport(diag, v, key, "'%s' must be a list, got %s; e.g. %s: [%s]", key,
                          cpex__ydescribe(v), key, example);
        return NULL;
    }
    char **out = cpex__calloc(v->count + 1, sizeof *out);
    if (!out) {
        diag->nomem = true;
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < v->count; i++) {
        const cpex__ynode *it = v->kids[i];
        if (!cpex__ybudget(diag, it, NULL))
            break;
        if (it->type != CPEX__YN_SCALAR || cpex__yis_null(it) || it->len == 0 ||
            strlen(it->text) != it->len) {
            cpex__yreport(diag, it, key, "each entry of '%s' must be a non-empty string, got %s",
                          key,
                          it->type == CPEX__YN_SCALAR && it->len == 0 ? "an empty value"
                                                                      : cpex__ydescribe(it));
            continue;
        }
        out[n] = cpex__strdup(it->text);
        if (!out[n]) {
            diag->nomem = true;
            break;
        }
        n++;
    }
    *count = n;
    return out;
}

const char *cpex__ykey_text(cpex__ydiag *diag, const cpex__ynode *k, const char *where)
{
    if (k->type != CPEX__YN_SCALAR || strlen(k->text) != k->len) {
        cpex__yreport(diag, k, NULL, "keys %s must be plain names, got %s", where,
                      k->type == CPEX__YN_SCALAR ? "a name with a NUL character"
                                                 : cpex__ydescribe(k));
        return NULL;
    }
    return k->text;
}

int cpex__ykey_index(const char *key, const char *const *keys, size_t count)
{
    /* The first byte first: a plugin entry's keys are looked up in a table
       of thirty-odd names, for every entry of a configuration. */
    for (size_t i = 0; i < count; i++)
        if (keys[i][0] == key[0] && strcmp(key, keys[i]) == 0)
            return (int)i;
    return -1;
}

bool cpex__yrepeated(cpex__ydiag *diag, const cpex__ynode *k, int *first_line, int idx,
                     const char *key)
{
    if (first_line[idx] == 0) {
        first_line[idx] = k->pos.line > 0 ? k->pos.line : 1;
        return false;
    }
    cpex__yreport(diag, k, key, "duplicate key '%s' (first at line %d); keep one", key,
                  first_line[idx]);
    return true;
}
