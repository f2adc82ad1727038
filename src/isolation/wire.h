/*
 * wire.h — the binary form of what crosses between a host and a worker
 * process (docs/isolation.md, "The transport").
 *
 * Both sides run on the same machine and the same build, so numbers are
 * written in native byte order; nothing is aligned (reads and writes go
 * through memcpy). Strings are a u32 length, the bytes and a NUL, so the
 * reader can hand out pointers into the buffer as cpex_str (which must
 * be NUL-terminated); an absent optional string is the length
 * 0xFFFFFFFF and nothing else. JSON values are a tag byte and their data.
 *
 * The reader is written for hostile input (the host reads what a worker
 * wrote): every length is checked against what is left before it is
 * used, counts are bounded by the bytes left (each item takes at least
 * one), nesting is capped, text must be UTF-8 without NUL, and the first
 * problem stops the reader with a reason. A reader never reads its buffer
 * twice at the same place, so the host decodes a private copy of a reply
 * (a worker could change shared memory while it is read).
 */
#ifndef CPEX_ISOLATION_WIRE_H
#define CPEX_ISOLATION_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cpex/abi.h"

/** An absent optional string. */
#define ISO_STR_ABSENT 0xFFFFFFFFu
/** Deepest JSON nesting either side accepts. */
#define ISO_JSON_MAX_DEPTH 64

/** JSON tags. */
enum {
    ISO_J_NULL = 0,
    ISO_J_FALSE = 1,
    ISO_J_TRUE = 2,
    ISO_J_INT = 3,
    ISO_J_REAL = 4,
    ISO_J_STRING = 5,
    ISO_J_ARRAY = 6,
    ISO_J_OBJECT = 7
};

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/** A writer into a fixed buffer. Past the end it only counts: `over` tells. */
typedef struct cpex__iso_wr {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool over;
} cpex__iso_wr;

static inline void cpex__iso_wr_init(cpex__iso_wr *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->over = false;
}

/** Room for `n` more bytes (false, and `over` set, when there is none). */
static inline bool cpex__iso_wr_room(cpex__iso_wr *w, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = true;
        return false;
    }
    return true;
}

static inline void cpex__iso_wr_bytes(cpex__iso_wr *w, const void *p, size_t n)
{
    if (n && cpex__iso_wr_room(w, n)) {
        __builtin_memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
}

static inline void cpex__iso_wr_u8(cpex__iso_wr *w, uint8_t v) { cpex__iso_wr_bytes(w, &v, 1); }
static inline void cpex__iso_wr_u32(cpex__iso_wr *w, uint32_t v) { cpex__iso_wr_bytes(w, &v, 4); }
static inline void cpex__iso_wr_i32(cpex__iso_wr *w, int32_t v) { cpex__iso_wr_bytes(w, &v, 4); }
static inline void cpex__iso_wr_u64(cpex__iso_wr *w, uint64_t v) { cpex__iso_wr_bytes(w, &v, 8); }
static inline void cpex__iso_wr_i64(cpex__iso_wr *w, int64_t v) { cpex__iso_wr_bytes(w, &v, 8); }
static inline void cpex__iso_wr_f64(cpex__iso_wr *w, double v) { cpex__iso_wr_bytes(w, &v, 8); }

/** Overwrite a u32 written earlier at `at` (a count not known in advance). */
static inline void cpex__iso_wr_u32_at(cpex__iso_wr *w, size_t at, uint32_t v)
{
    if (!w->over && at + 4 <= w->len)
        __builtin_memcpy(w->buf + at, &v, 4);
}

/** A string of `len` bytes (ptr NULL with len 0: ""). Longer than 4 GiB - 2: `over`. */
void cpex__iso_wr_strn(cpex__iso_wr *w, const char *ptr, size_t len);
/** A cpex_str; ptr NULL is written as absent. */
void cpex__iso_wr_opt(cpex__iso_wr *w, cpex_str s);
/** A NUL-terminated string; NULL is written as absent. */
void cpex__iso_wr_cstr(cpex__iso_wr *w, const char *s);
/** A JSON value (NULL as JSON null). `over` when deeper than ISO_JSON_MAX_DEPTH. */
void cpex__iso_wr_json(cpex__iso_wr *w, const json_t *v);

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/** A reader of `len` bytes. After the first problem `bad` is set and reads give zero. */
typedef struct cpex__iso_rd {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool bad;
    bool trusted;  /* the worker reading its host: text is known to be UTF-8 (built by
                      libcpex's model); bounds and terminators are still checked */
    char why[160]; /* the first problem, with its offset */
} cpex__iso_rd;

void cpex__iso_rd_init(cpex__iso_rd *r, const void *buf, size_t len);
/** Stop with a reason (the first one is kept). Returns false. */
bool cpex__iso_rd_fail(cpex__iso_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Bytes left. */
static inline size_t cpex__iso_rd_left(const cpex__iso_rd *r)
{
    return r->bad ? 0 : r->len - r->pos;
}

uint8_t cpex__iso_rd_u8(cpex__iso_rd *r);
uint32_t cpex__iso_rd_u32(cpex__iso_rd *r);
int32_t cpex__iso_rd_i32(cpex__iso_rd *r);
uint64_t cpex__iso_rd_u64(cpex__iso_rd *r);
int64_t cpex__iso_rd_i64(cpex__iso_rd *r);
double cpex__iso_rd_f64(cpex__iso_rd *r);
/** A count of items that take at least `min_item` bytes each: bounded by what is left. */
uint32_t cpex__iso_rd_count(cpex__iso_rd *r, size_t min_item, const char *what);

/** How a string must look. */
enum {
    ISO_S_TEXT = 0,    /* UTF-8 without NUL (what plugins read as C strings) */
    ISO_S_BYTES = 1,   /* any bytes (a resource blob) */
    ISO_S_OPTIONAL = 2 /* may be absent: ptr NULL */
};
/** A string in place (ptr into the buffer, NUL-terminated there). */
cpex_str cpex__iso_rd_str(cpex__iso_rd *r, int flags, const char *what);
/** A JSON value as a new jansson value (NULL when the reader stopped). */
json_t *cpex__iso_rd_json(cpex__iso_rd *r, const char *what);
/** Pass over one JSON value, checking it as cpex__iso_rd_json would, building nothing. */
void cpex__iso_rd_skip_json(cpex__iso_rd *r, const char *what);

/** Whether `len` bytes are UTF-8 without NUL. */
bool cpex__iso_text_ok(const char *s, size_t len);
/**
 * `s` as text the host accepts: itself when it already is (returns s),
 * else a malloc'd copy (cpex__free) where each NUL and each byte that is
 * not part of valid UTF-8 became '?'. NULL only when memory ran out.
 */
char *cpex__iso_text_fix(const char *s, size_t len);

#endif
