/* suggest.h — "did you mean" for names an operator types. */
#ifndef CPEX_UTIL_SUGGEST_H
#define CPEX_UTIL_SUGGEST_H

#include <stddef.h>

/**
 * The candidate closest to `word` by edit distance, if it is close enough
 * to be a likely typo (distance <= max(1, len/3)); else NULL. Borrowed.
 */
const char *cpex__suggest(const char *word, const char *const *candidates, size_t count);

/** Edit distance (Levenshtein) between two short strings; large for long ones. */
size_t cpex__edit_distance(const char *a, const char *b);

#endif
