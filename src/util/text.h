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

#endif
