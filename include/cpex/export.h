/*
 * cpex/export.h — marks the functions libcpex.so exports. The library is
 * built with hidden visibility, so only what the public headers declare
 * with CPEX_API is part of its ABI; internal helpers stay private.
 */
#ifndef CPEX_EXPORT_H
#define CPEX_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define CPEX_API __attribute__((visibility("default")))
#else
#define CPEX_API
#endif

#endif /* CPEX_EXPORT_H */
