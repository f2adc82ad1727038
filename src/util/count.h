/* count.h — the number of elements of an array. */
#ifndef CPEX_UTIL_COUNT_H
#define CPEX_UTIL_COUNT_H

/** The number of elements of array `a` (an array, not a pointer: sizeof of
 *  a pointer would give a wrong count). A constant expression. */
#define CPEX__COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
