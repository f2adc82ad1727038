/*
 * text_check.c — the model's text rules (text_check.h): UTF-8 and NUL,
 * header names and values, ASCII case-insensitive comparison.
 *
 * The CMF message code and the extensions object both check their
 * strings here, so the two cannot drift apart; neither keeps a validator
 * of its own.
 */
#include "model/text_check.h"

#include <stdint.h>
#include <string.h>

/* Length of the UTF-8 sequence at `s` (`avail` bytes left), 0 when it is
 * not valid: same rules as jansson (no overlongs, no surrogates, at most
 * U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t extra;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        extra = 1;
        cp = c & 0x1Fu;
    } else if (c < 0xF0) {
        extra = 2;
        cp = c & 0x0Fu;
    } else if (c <= 0xF4) {
        extra = 3;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (avail <= extra)
        return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xC0u) != 0x80u)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3Fu);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return extra + 1;
}

cpex__text_check cpex__text_check_bytes(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (s[i] == 0)
            return CPEX__TEXT_NUL;
        size_t n = utf8_sequence(s + i, len - i);
        if (n == 0)
            return CPEX__TEXT_UTF8;
        i += n;
    }
    return CPEX__TEXT_OK;
}

bool cpex__text_ok(const char *text, size_t len)
{
    return cpex__text_check_bytes(text, len) == CPEX__TEXT_OK;
}

bool cpex__header_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (!strchr("!#$%&'*+-.^_`|~", c) || c == '\0')
            return false;
    }
    return true;
}

bool cpex__header_value_valid(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (value[i] == '\r' || value[i] == '\n')
            return false;
    }
    return cpex__text_ok(value, len);
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

bool cpex__ascii_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}
