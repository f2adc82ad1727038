/*
 * hash.h — the hash of names and keys (util layer, internal), inline so
 * that the invoke path (hook names, route keys) pays no call for it. In
 * util so that the model can hash too: the extensions keep the hash of
 * their entity (extensions_internal.h), computed when the host sets it.
 */
#ifndef CPEX_UTIL_HASH_H
#define CPEX_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t cpex__load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Eight bytes per multiply and the last eight bytes read once
 * (overlapping): a 20-byte name costs three multiplies, where byte-wise
 * FNV-1a chained twenty (~15 ns). Then a full avalanche (the finalizer of
 * MurmurHash3): every input bit reaches the low bits the tables index
 * with, so names that differ only in their last characters ("hook_0001",
 * "hook_0002", ...) spread instead of colliding. */
static inline uint64_t cpex__hash_bytes(const char *name, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)len;
    uint64_t w = 0;
    if (len > 8 && len <= 16) { /* the usual name: two loads, no loop */
        h = (h ^ cpex__load64(name)) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        w = cpex__load64(name + len - 8);
    } else if (len >= 8) {
        for (size_t i = 0; i + 8 < len; i += 8) {
            h = (h ^ cpex__load64(name + i)) * 0xff51afd7ed558ccdull;
            h ^= h >> 32;
        }
        w = cpex__load64(name + len - 8);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, name, 4);
        memcpy(&b, name + len - 4, 4);
        w = (uint64_t)a | (uint64_t)b << 32;
    } else {
        for (size_t i = 0; i < len; i++)
            w |= (uint64_t)(unsigned char)name[i] << (8 * i);
    }
    h ^= w;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Fold `v` into `h` (route keys: the entity's parts, then groups). */
static inline uint64_t cpex__hash_mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x9e3779b97f4a7c15ull;
}

/* The first and last eight bytes of a string, zero-padded when shorter:
 * with its length, a string of up to 16 bytes is equal to another exactly
 * when both words are (route keys compare names so). */
static inline void cpex__hash_words(const char *s, size_t len, uint64_t *w0, uint64_t *w1)
{
    if (len >= 8) {
        *w0 = cpex__load64(s);
        *w1 = cpex__load64(s + len - 8);
        return;
    }
    uint64_t w = 0;
    memcpy(&w, s, len);
    *w0 = w;
    *w1 = 0;
}

static inline uint32_t cpex__load32(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* Equality of two byte strings of length n, without a call: overlapping
 * word loads (two for 4 to 16 bytes, the usual names), three byte loads
 * below 4. */
static inline __attribute__((always_inline)) int cpex__bytes_eq(const char *a, const char *b,
                                                                size_t n)
{
    if (n >= 8 && n <= 16)
        return cpex__load64(a) == cpex__load64(b) &&
               cpex__load64(a + n - 8) == cpex__load64(b + n - 8);
    if (n > 16 && n <= 24) /* "cmf.tool_pre_invoke" and its kin: no loop */
        return ((cpex__load64(a) ^ cpex__load64(b)) | (cpex__load64(a + 8) ^ cpex__load64(b + 8)) |
                (cpex__load64(a + n - 8) ^ cpex__load64(b + n - 8))) == 0;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (cpex__load64(a + i) != cpex__load64(b + i))
                return 0;
        return cpex__load64(a + n - 8) == cpex__load64(b + n - 8);
    }
    if (n >= 4)
        return cpex__load32(a) == cpex__load32(b) &&
               cpex__load32(a + n - 4) == cpex__load32(b + n - 4);
    /* 1 to 3 bytes ("cmf"): first, middle and last cover them all. */
    if (n > 0)
        return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
    return 1;
}

#endif
