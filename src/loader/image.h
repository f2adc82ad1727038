/*
 * image.h — the memory of a dlopen'ed library, for reading what it says
 * about itself without trusting it (loader layer).
 *
 * A library's data (its manifest above all) holds pointers we did not
 * write: a stale build, another SDK or a hostile file may point anywhere.
 * Following such a pointer blindly crashes the host (0x10), reads another
 * library's memory as if it were this one's, or reads past the end of a
 * mapping while looking for a terminator. An image is the list of the
 * library's mapped, readable PT_LOAD segments; every pointer is checked
 * against it (with the size and alignment of what is read) before it is
 * followed, and every string must end inside the segment it starts in.
 *
 * Where a NULL `const cpex__image *` is accepted it means "trusted memory":
 * the data is ordinary process memory the caller vouches for (a manifest
 * built by a test or the fuzzer). Then only NULL and alignment are
 * checked, and strings are still bounded by their maximum length.
 *
 * An image holds no references: it is valid while the library stays
 * opened (and, for an image of ranges, while the ranges stay allocated).
 */
#ifndef CPEX_LOADER_IMAGE_H
#define CPEX_LOADER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/** More readable segments than this are ignored (pointers into them are refused). */
#define CPEX_IMAGE_MAX_RANGES 32

typedef struct cpex__image_range {
    uintptr_t lo, hi; /* [lo, hi) */
} cpex__image_range;

typedef struct cpex__image {
    void *dl;       /* the library (not owned); NULL for an image of ranges */
    const void *lm; /* its link map, to tell its symbols from a dependency's; may be NULL */
    size_t count;
    cpex__image_range ranges[CPEX_IMAGE_MAX_RANGES];
} cpex__image;

/**
 * Describe the library opened as `dl` (a dlopen handle). Symbols can be
 * looked up whatever the result; returns 0 when its readable segments were
 * found, else -1 with the reason in `why` (then every pointer check fails:
 * nothing of the library can be read safely).
 */
int cpex__image_init(cpex__image *im, void *dl, char *why, size_t cap);

/** An empty image of no library; add the readable memory with cpex__image_add_range. */
void cpex__image_init_ranges(cpex__image *im);

/** Add [base, base + size) as readable. Returns 0, or -1 when the image is full. */
int cpex__image_add_range(cpex__image *im, const void *base, size_t size);

/** How many bytes from `p` on are readable in one range (0: `p` is in none). */
size_t cpex__image_room(const cpex__image *im, const void *p);

/**
 * Whether `size` bytes at `p` may be read as an object of alignment `align`
 * (a power of two). Returns NULL if so, else what is wrong as a phrase that
 * completes "the entry list ...": "is NULL", "is misaligned", "points
 * outside the library", "runs past the end of the library's data".
 */
const char *cpex__image_check(const cpex__image *im, const void *p, size_t size, size_t align);

/**
 * Whether `s` is a NUL-terminated string of at most `max` bytes that ends
 * inside the range it starts in (and, unless `allow_empty`, is not empty).
 * Reads at most max + 1 bytes, never past the range. Returns NULL if so,
 * else a phrase as above: "is NULL", "points outside the library", "is not
 * terminated before the end of the library's data", "is not a terminated
 * string of reasonable length", "is empty".
 */
const char *cpex__image_text(const cpex__image *im, const char *s, size_t max, int allow_empty);

/** What an exported symbol is, as far as the platform can tell. */
typedef enum cpex__image_sym_type {
    CPEX_SYM_UNKNOWN = 0, /* the platform cannot tell (or the symbol has no type) */
    CPEX_SYM_DATA,        /* a data object (STT_OBJECT) */
    CPEX_SYM_CODE,        /* a function (STT_FUNC, STT_GNU_IFUNC) */
    CPEX_SYM_OTHER        /* anything else (TLS, section, ...) */
} cpex__image_sym_type;

typedef struct cpex__image_sym {
    const void *addr; /* what dlsym returned */
    size_t size;      /* the ELF symbol size; 0 when unknown */
    cpex__image_sym_type type;
} cpex__image_sym;

typedef enum cpex__image_lookup {
    CPEX_SYM_FOUND = 0, /* exported by the library itself; `out` is filled */
    CPEX_SYM_MISSING,   /* not exported (why: the dlerror() text) */
    CPEX_SYM_FOREIGN    /* defined only by a library it depends on: not its own */
} cpex__image_lookup;

/**
 * Look `name` up in the library of `im` (dlsym searches its dependencies
 * too; a symbol found there is reported as foreign, never returned).
 * `why` receives the reason for MISSING and FOREIGN.
 */
cpex__image_lookup cpex__image_symbol(const cpex__image *im, const char *name, cpex__image_sym *out,
                                      char *why, size_t cap);

#endif
