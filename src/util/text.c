/* text.c — see text.h. */
#include "util/text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void cpex__text_one_line(char *s)
{
    if (!s)
        return;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/* Length of the valid UTF-8 sequence at s (1-4), 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
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

/* Valid code points that still steer a terminal or the reading order. */
static bool steers(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0x061C ||
           cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* The escaped form of the character at `s` into `piece` (room for 6);
   returns its length and stores in *used how many input bytes it takes. */
static size_t escape_one(const unsigned char *s, char *piece, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = utf8_len(s);
    *used = n ? n : 1;
    if (n == 1 && *s >= 0x20 && *s != 0x7f) {
        piece[0] = (char)*s;
        return 1;
    }
    if (n == 1 && (*s == '\n' || *s == '\r' || *s == '\t')) {
        piece[0] = '\\';
        piece[1] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
        return 2;
    }
    if (n > 1) {
        uint32_t cp = s[0] & (0xFFu >> (n + 1));
        for (size_t i = 1; i < n; i++)
            cp = (cp << 6) | (s[i] & 0x3Fu);
        if (!steers(cp)) {
            memcpy(piece, s, n);
            return n;
        }
        piece[0] = '\\';
        piece[1] = 'u';
        for (unsigned i = 0; i < 4; i++)
            piece[2 + i] = hex[(cp >> (12 - 4 * i)) & 0xF];
        return 6;
    }
    /* A control byte, or a byte that is not UTF-8: each byte alone. */
    piece[0] = '\\';
    piece[1] = 'x';
    piece[2] = hex[*s >> 4];
    piece[3] = hex[*s & 0xF];
    return 4;
}

bool cpex__text_escape(char *dst, size_t cap, const char *src)
{
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    char piece[8];
    size_t used, total = 0;
    for (const unsigned char *p = s; *p; p += used)
        total += escape_one(p, piece, &used);
    if (cap == 0)
        return total == 0;
    /* All of it if it fits; else whole pieces and "...", if that fits. */
    bool whole = total < cap;
    size_t limit = whole ? cap : cap >= 4 ? cap - 4 : 0, len = 0;
    for (; *s; s += used) {
        size_t plen = escape_one(s, piece, &used);
        if (len + plen > limit)
            break;
        memcpy(dst + len, piece, plen);
        len += plen;
    }
    if (!whole && cap >= 4) {
        memcpy(dst + len, "...", 3);
        len += 3;
    }
    dst[len] = '\0';
    return whole;
}

void cpex__textbuf_init(cpex__textbuf *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    buf[0] = '\0';
}

void cpex__textbuf_add(cpex__textbuf *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->cap)
        return; /* full */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t room = t->cap - t->len - 1;
    t->len += (size_t)n < room ? (size_t)n : room;
}

void cpex__textbuf_put(cpex__textbuf *t, const char *s, size_t n)
{
    size_t room = t->cap - t->len - 1;
    if (n > room)
        n = room;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void cpex__textbuf_str(cpex__textbuf *t, const char *s, size_t max)
{
    cpex__textbuf_put(t, s, strnlen(s, max));
}

void cpex__textbuf_join(cpex__textbuf *t, const char *const *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cpex__textbuf_add(t, "%s%s", i ? ", " : "", items[i]);
}
