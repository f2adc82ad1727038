/* codes.c — the table of cpex/codes.h as data, and its lookups. */
#include <string.h>

#include "cpex/codes.h"
#include "util/count.h"

#define KIND_VIOLATION CPEX_CODE_KIND_VIOLATION
#define KIND_RECORD CPEX_CODE_KIND_RECORD
#define STATUS_EMITTED false
#define STATUS_RESERVED true

/* Row n of the table sits at index n - 1: a duplicate value or a gap
 * breaks the assertion below. */
#define ROW(id, value, name, kind, status, meaning)                                                \
    [value - 1] = {CPEX_CODE_##id, name, KIND_##kind, STATUS_##status, meaning},
static const cpex_code_info rows[] = {CPEX_CODE_TABLE(ROW)};
#undef ROW

#define ONE(id, value, name, kind, status, meaning) +1
_Static_assert(CPEX__COUNT(rows) == 0 CPEX_CODE_TABLE(ONE),
               "the values of CPEX_CODE_TABLE must run 1, 2, 3, ... without gaps or repeats");
#undef ONE

const cpex_code_info *cpex_code_list(size_t *count)
{
    if (count)
        *count = CPEX__COUNT(rows);
    return rows;
}

const cpex_code_info *cpex_code_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < CPEX__COUNT(rows); i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

const char *cpex_code_name(cpex_code code)
{
    if (code <= CPEX_CODE_NONE || (size_t)code > CPEX__COUNT(rows))
        return NULL;
    return rows[code - 1].name;
}

cpex_code cpex_code_from_name(const char *name)
{
    const cpex_code_info *row = cpex_code_lookup(name);
    return row ? row->code : CPEX_CODE_NONE;
}
