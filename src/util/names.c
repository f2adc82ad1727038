/* names.c — see names.h. */
#include "util/names.h"

#include <string.h>

int cpex__names_find(const char *const *names, size_t count, const char *name, size_t len)
{
    for (size_t i = 0; name && i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return (int)i;
    return -1;
}

int cpex__names_index(const char *const *names, size_t count, const char *name)
{
    return name ? cpex__names_find(names, count, name, strlen(name)) : -1;
}
