/* args.c — the little option parsing the commands need; see cli.h. */
#include <stdarg.h>
#include <stdlib.h>
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
    char *text = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    /* The message quotes the command line: escaped. */
    cli_line(stderr, "cpex %s: %s", command, n >= 0 ? text : "(out of memory)");
    free(n >= 0 ? text : NULL);
    fprintf(stderr, "Run 'cpex %s --help' for usage.\n", command);
    return CLI_USAGE;
}
