/*
 * text_check.h — what text the model accepts (model layer, internal).
 *
 * One set of rules for every string that comes into a model object: CMF
 * messages (cmf.c, cmf_json.c) and extensions (extensions_fields.c,
 * extensions_headers.c, extensions_custom.c, extensions_json.c). UTF-8 is
 * checked the way jansson checks it (no overlong forms, no surrogates,
 * nothing past U+10FFFF), so anything accepted can be serialized; a NUL is
 * refused because plugins read the strings as C strings, where it would
 * hide the rest.
 */
#ifndef CPEX_MODEL_TEXT_CHECK_H
#define CPEX_MODEL_TEXT_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/** Why a string cannot go into a model object. */
typedef enum cpex__text_check {
    CPEX__TEXT_OK = 0,
    CPEX__TEXT_NUL = 1, /* plugins use ptr as a C string: a NUL would hide the rest */
    CPEX__TEXT_UTF8 = 2 /* the JSON form cannot carry it */
} cpex__text_check;

/** The first problem of `len` bytes of text, in order; CPEX__TEXT_OK when none. */
cpex__text_check cpex__text_check_bytes(const char *text, size_t len);

/** Whether `len` bytes are UTF-8 without a NUL (cpex__text_check_bytes gives OK). */
bool cpex__text_ok(const char *text, size_t len);

/**
 * Whether `name` is an HTTP header name: RFC 9110 token characters, at
 * least one. Names and values may end up on the wire; refusing anything
 * else stops header injection at the source.
 */
bool cpex__header_name_valid(const char *name, size_t len);

/** Whether `value` is a header value: UTF-8 without CR, LF or NUL. */
bool cpex__header_value_valid(const char *value, size_t len);

/**
 * Equality with ASCII-only case folding, the way CPEX compares header
 * names and labels (eq_ignore_ascii_case), independent of the C locale.
 */
bool cpex__ascii_ieq(const char *a, size_t alen, const char *b, size_t blen);

#endif
