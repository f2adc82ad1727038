/* text.h — making text from plugins safe to show an operator. */
#ifndef CPEX_UTIL_TEXT_H
#define CPEX_UTIL_TEXT_H

/**
 * Make `s` safe to print on one line, in place: control characters (a
 * hostile or careless plugin's newlines, escapes, terminal sequences)
 * become spaces. NULL is allowed.
 */
void cpex__text_one_line(char *s);

#endif
