/* util.c — small helpers shared by the commands; see cli.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

char *cli_join(char **items, const char *sep)
{
    size_t len = 1, seplen = strlen(sep);
    for (size_t i = 0; items && items[i]; i++)
        len += strlen(items[i]) + seplen;
    char *s = malloc(len);
    if (!s)
        return NULL;
    s[0] = '\0';
    size_t pos = 0;
    for (size_t i = 0; items && items[i]; i++) {
        if (i) {
            memcpy(s + pos, sep, seplen);
            pos += seplen;
        }
        size_t n = strlen(items[i]);
        memcpy(s + pos, items[i], n);
        pos += n;
    }
    s[pos] = '\0';
    return s;
}

void cli_print_json(FILE *out, const json_t *value)
{
    /* JSON_ENCODE_ANY: a payload may be any JSON value, not only an object. */
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    char *safe = text ? cli_json_safe(text) : NULL;
    fputs(safe ? safe : "null", out);
    free(safe);
    free(text);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

json_t *cli_json_str(const char *text)
{
    if (!text)
        return json_null();
    json_t *s = json_string(text);
    if (s)
        return s;
    /* Not UTF-8 (a plugin's message, a byte of a broken input line):
       show it with '?' for each bad byte rather than drop it. */
    char *copy = strdup(text);
    if (!copy)
        return json_null();
    for (unsigned char *p = (unsigned char *)copy; *p;) {
        size_t n = cli_utf8_len(p);
        if (n == 0) {
            *p++ = '?';
        } else {
            p += n;
        }
    }
    s = json_string(copy);
    free(copy);
    return s ? s : json_null();
}
