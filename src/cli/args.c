/* args.c — the little option parsing the commands need; see cli.h. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
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

bool cli_parse_count(const char *s, size_t *out)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > (SIZE_MAX - 9) / 10)
            return false;
        n = n * 10 + (size_t)(*s - '0');
    }
    *out = n;
    return n > 0;
}

bool cli_parse_seconds(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || *end != '\0' || !isfinite(v) || !(v > 0) || v > 86400.0 * 365)
        return false;
    *out = v;
    return true;
}
