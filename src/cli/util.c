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
    fputs(text ? text : "null", out);
    free(text);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2) || (n == 4 && s[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
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
        size_t n = utf8_seq(p);
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
