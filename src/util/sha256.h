/*
 * sha256.h — SHA-256 (FIPS 180-4), for pinning plugin libraries.
 *
 * Written here rather than taken from a crypto library: the loader needs
 * one hash of a file it already holds open, and a ~150-line function with
 * the NIST test vectors (tests/unit/util/test_sha256.c) is less to trust
 * and ship than a dependency. Not constant-time: it hashes public files.
 */
#ifndef CPEX_UTIL_SHA256_H
#define CPEX_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CPEX__SHA256_SIZE 32
/** Characters of a hash in hex, without the NUL. */
#define CPEX__SHA256_HEX 64

typedef struct cpex__sha256 {
    uint32_t state[8];
    uint64_t length;   /* bytes hashed so far */
    uint8_t block[64]; /* a partial block */
    size_t used;       /* bytes in `block` */
} cpex__sha256;

void cpex__sha256_init(cpex__sha256 *h);
void cpex__sha256_update(cpex__sha256 *h, const void *data, size_t len);
/** Finish into `out` (32 bytes); `h` must be initialized again before reuse. */
void cpex__sha256_final(cpex__sha256 *h, uint8_t out[CPEX__SHA256_SIZE]);

/** The SHA-256 of `len` bytes at `data`, as 64 lowercase hex digits and a NUL. */
void cpex__sha256_of(const void *data, size_t len, char hex[CPEX__SHA256_HEX + 1]);

/** `digest` as 64 lowercase hex digits and a NUL into `hex`. */
void cpex__sha256_hex(const uint8_t digest[CPEX__SHA256_SIZE], char hex[CPEX__SHA256_HEX + 1]);

/**
 * Whether `text` is a SHA-256 in hex: exactly 64 hex digits, either case.
 * On false, *bad (if not NULL) is the offset of the first character that
 * is not a hex digit, or the length when it is only the length that is wrong.
 */
int cpex__sha256_hex_valid(const char *text, size_t *bad);

#endif
