/* strv.c — see strv.h. */
#include "util/strv.h"

#include "util/alloc.h"

char **cpex__strv_copy(const char *const *v, size_t n)
{
    char **out = cpex__calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = cpex__strdup(v[i]);
        if (!out[i]) {
            cpex_strv_free(out);
            return NULL;
        }
    }
    return out;
}

size_t cpex__strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **cpex__strv_dup(char *const *v)
{
    return v ? cpex__strv_copy((const char *const *)v, cpex__strv_len(v)) : NULL;
}

char **cpex__strv_empty(void) { return cpex__calloc(1, sizeof(char *)); }

void cpex_strv_free(char **v)
{
    if (!v)
        return;
    for (char **s = v; *s; s++)
        cpex__free(*s);
    cpex__free(v);
}
