/*
 * escape.c — text that did not come from libcpex or the command itself,
 * made safe to print; see cli.h.
 *
 * A plugin name, a `kind:` path, a plugin's log message, a context id from
 * the input or a string from a library's manifest may hold a newline (a
 * forged "summary:" line), an escape sequence (a cleared screen, a moved
 * cursor, a changed window title) or bytes that are not UTF-8. Before any of
 * it reaches standard output or standard error it goes through here:
 *
 *   \n \r \t            for those control characters
 *   \xNN                for the other control bytes (C0, DEL) and for each
 *                       byte that is not part of valid UTF-8
 *   \uNNNN              for the C1 controls U+0080..U+009F (U+009B is a CSI
 *                       on some terminals), the line and paragraph
 *                       separators U+2028/U+2029, and the bidirectional
 *                       controls (U+061C, U+200E/F, U+202A..E, U+2066..9)
 *                       that reorder what the line appears to say
 *
 * Everything else, including UTF-8 text in any script, is kept as it is.
 * A backslash is kept too: the escapes are for a person reading a terminal,
 * not a format to parse back (--json is that format).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

size_t cli_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xE0) == 0xC0   ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
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

static uint32_t decode(const unsigned char *s, size_t n)
{
    if (n == 1)
        return s[0];
    uint32_t cp = s[0] & (0xFF >> (n + 1));
    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

/* Code points that are valid UTF-8 but still steer the terminal or the
   reading order. */
static bool dangerous(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0x061C ||
           cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

enum mode {
    ONE_LINE, /* everything escaped */
    MESSAGE,  /* libcpex's own detail lines ("\n  ...") kept, indented */
    JSON      /* JSON text: only what JSON leaves raw, as \u escapes */
};

/* Whether `s` holds a newline, the only byte MESSAGE treats unlike ONE_LINE. */
static bool has_newline(const char *s) { return s && strchr(s, '\n'); }

/* Write the escaped form of `s` into `out` (NULL: only count); returns its
   length. In MESSAGE mode, occurrences of the `quoted` strings (known to
   come from elsewhere: a plugin name) are escaped as ONE_LINE, so that not
   even "\n  " in them passes for a detail line. */
static size_t emit(char *out, const char *text, enum mode mode, const char *indent,
                   const char *const *quoted)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)text;
    size_t len = 0, indent_len = indent ? strlen(indent) : 0;
    char tmp[8];
#define PUT(str, n)                                                                                \
    do {                                                                                           \
        if (out)                                                                                   \
            memcpy(out + len, (str), (n));                                                         \
        len += (n);                                                                                \
    } while (0)
    while (*s) {
        bool skipped = false;
        for (size_t q = 0; mode == MESSAGE && quoted && quoted[q] && !skipped; q++) {
            size_t qn = strlen(quoted[q]);
            if (has_newline(quoted[q]) && strncmp((const char *)s, quoted[q], qn) == 0) {
                len += emit(out ? out + len : NULL, quoted[q], ONE_LINE, NULL, NULL);
                s += qn;
                skipped = true;
            }
        }
        if (skipped)
            continue;
        size_t n = cli_utf8_len(s);
        if (n == 1 && *s >= 0x20 && *s != 0x7f) {
            PUT(s, 1);
        } else if (n == 1 && *s == '\n' && mode == MESSAGE && s[1] == ' ' && s[2] == ' ') {
            /* libcpex writes a detail line of a message as "\n  <detail>". */
            PUT("\n", 1);
            PUT(indent, indent_len);
        } else if (n == 1 && mode != JSON && (*s == '\n' || *s == '\r' || *s == '\t')) {
            tmp[0] = '\\';
            tmp[1] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
            PUT(tmp, 2);
        } else if (n >= 1 && (mode == JSON || n > 1)) {
            uint32_t cp = decode(s, n);
            if (!dangerous(cp) && cp >= 0x20 && cp != 0x7f) {
                PUT(s, n);
            } else {
                /* \uNNNN: valid JSON, and what the code point is called. */
                tmp[0] = '\\';
                tmp[1] = 'u';
                for (int i = 0; i < 4; i++)
                    tmp[2 + i] = hex[(cp >> (12 - 4 * i)) & 0xF];
                PUT(tmp, 6);
            }
        } else {
            /* A control byte, or a byte that is not UTF-8: each byte alone. */
            n = 1;
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[*s >> 4];
            tmp[3] = hex[*s & 0xF];
            PUT(tmp, 4);
        }
        s += n;
    }
#undef PUT
    return len;
}

static char *escaped(const char *text, enum mode mode, const char *indent,
                     const char *const *quoted)
{
    if (!text)
        text = "";
    size_t n = emit(NULL, text, mode, indent, quoted);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    emit(out, text, mode, indent, quoted);
    out[n] = '\0';
    return out;
}

char *cli_escape(const char *text) { return escaped(text, ONE_LINE, NULL, NULL); }

char *cli_json_safe(const char *json) { return escaped(json, JSON, NULL, NULL); }

static void put(FILE *out, const char *text, enum mode mode, const char *indent,
                const char *const *quoted)
{
    char *e = escaped(text, mode, indent, quoted);
    if (e) {
        fputs(e, out);
        free(e);
        return;
    }
    /* Out of memory: still never the raw text. */
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++)
        fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', out);
}

void cli_put(FILE *out, const char *text) { put(out, text, ONE_LINE, NULL, NULL); }

void cli_put_message(FILE *out, const char *text, const char *indent, const char *const *quoted)
{
    put(out, text, MESSAGE, indent ? indent : "", quoted);
}

static void vtext(FILE *out, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0) {
        fputs("(out of memory)", out);
        return;
    }
    cli_put(out, text);
    free(text);
}

void cli_text(FILE *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtext(out, fmt, ap);
    va_end(ap);
}

void cli_line(FILE *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vtext(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}
