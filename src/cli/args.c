/* args.c — the little option parsing the commands need; see cli.h. */
#include <stdarg.h>
#include <string.h>

#include "cli.h"

bool cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    if (arg[n] != '\0')
        return false; /* "--inputs" is not "--input" */
    if (*i + 1 < argc) {
        *value = argv[++*i];
        return true;
    }
    *value = NULL;
    return true;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cpex %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'cpex %s --help' for usage.\n", command);
    return CLI_USAGE;
}
