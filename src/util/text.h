/* text.h — making text from plugins safe to show an operator. */
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

#endif
