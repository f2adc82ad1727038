/* text.h — text for an operator: made safe to show, and built in fixed buffers. */
#ifndef CPEX_UTIL_TEXT_H
#define CPEX_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Make `s` safe to print on one line, in place: control characters (a
 * hostile or careless plugin's newlines, escapes, terminal sequences)
 * become spaces. NULL is allowed.
 */
void cpex__text_one_line(char *s);

/**
 * Write `src` (NULL: "") into `dst` escaped for one line of a terminal:
 * \n, \r and \t for those, \xNN for the other control bytes (C0, DEL) and
 * for each byte that is not part of valid UTF-8, \uNNNN for the C1
 * controls, the line and paragraph separators and the bidirectional
 * controls; other text (UTF-8 in any script, backslashes) as it is.
 * `dst` (capacity `cap`; 0 writes nothing) is always terminated; an escape
 * or a UTF-8 sequence is never cut: what does not fit is dropped and "..."
 * ends the text (when cap >= 4). Returns false when something was dropped.
 */
bool cpex__text_escape(char *dst, size_t cap, const char *src);

/**
 * Text built in a caller's fixed buffer: appends never overflow, what does
 * not fit is cut, and the buffer always holds a NUL-terminated string.
 */
typedef struct cpex__textbuf {
    char *buf;
    size_t cap; /* > 0 */
    size_t len; /* of the text so far; cap - 1 at most */
} cpex__textbuf;

/** Start writing into `buf` (`cap` > 0 bytes), which then holds "". */
void cpex__textbuf_init(cpex__textbuf *t, char *buf, size_t cap);

/** Append printf-formatted text, cut to what fits. */
void cpex__textbuf_add(cpex__textbuf *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Append the `n` bytes at `s` (no printf), cut to what fits. */
void cpex__textbuf_put(cpex__textbuf *t, const char *s, size_t n);

/** Append the string `s`, at most `max` bytes of it. */
void cpex__textbuf_str(cpex__textbuf *t, const char *s, size_t max);

/** Append the `count` strings of `items`, separated by ", ". */
void cpex__textbuf_join(cpex__textbuf *t, const char *const *items, size_t count);

/** The most bytes cpex__text_dec writes: 20 digits, a sign, some padding. */
#define CPEX__TEXT_DEC_MAX 24

/**
 * `v` in decimal at `out` (no NUL), preceded by '-' when `minus`, with at
 * least `width` digits (zero-padded; width <= 20); returns its length
 * (at most CPEX__TEXT_DEC_MAX). What printf's %llu / %0*llu write, without
 * printf: for texts built once per plugin of a large load.
 */
static inline size_t cpex__text_dec(char *out, unsigned long long v, bool minus, size_t width)
{
    char d[CPEX__TEXT_DEC_MAX];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (sizeof d - i < width)
        d[--i] = '0';
    if (minus)
        d[--i] = '-';
    for (size_t k = i; k < sizeof d; k++)
        out[k - i] = d[k];
    return sizeof d - i;
}

/** `v` in decimal at `out` (no NUL), as %lld writes it; returns its length. */
static inline size_t cpex__text_signed(char *out, long long v)
{
    return v < 0 ? cpex__text_dec(out, 0ull - (unsigned long long)v, true, 0)
                 : cpex__text_dec(out, (unsigned long long)v, false, 0);
}

#endif
