/*
 * json_dump.h — JSON to text in libcpex's own memory.
 */
#ifndef CPEX_MODEL_JSON_DUMP_H
#define CPEX_MODEL_JSON_DUMP_H

#include <stddef.h>

#include <jansson.h>

/**
 * Serialize `value` (any JSON value) with jansson's `flags`. The text is
 * allocated with cpex__malloc, so the caller frees it with cpex__free
 * whatever allocator the host gave jansson (json_dumps would allocate with
 * jansson's, which is the host's to choose). NULL on OOM or a NULL value;
 * never a truncated text.
 */
char *cpex__json_dump(const json_t *value, size_t flags);

#endif
