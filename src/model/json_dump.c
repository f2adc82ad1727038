/* json_dump.c — see json_dump.h. */
#include "model/json_dump.h"

#include <stdint.h>
#include <string.h>

#include "util/alloc.h"

/* Output of json_dump_callback. jansson (2.14) ignores a failed write of
 * an object key, so json_dumps can return corrupted JSON when memory runs
 * short; this buffer remembers any failure and the dump is discarded. */
typedef struct dump_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} dump_buf;

static int dump_append(const char *bytes, size_t size, void *ctx)
{
    dump_buf *b = ctx;
    if (b->failed)
        return -1;
    if (size >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= size && cap < SIZE_MAX / 2)
            cap *= 2;
        char *grown = cap - b->len > size ? cpex__realloc(b->data, cap) : NULL;
        if (!grown) {
            b->failed = 1;
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, size);
    b->len += size;
    b->data[b->len] = '\0';
    return 0;
}

char *cpex__json_dump(const json_t *value, size_t flags)
{
    if (!value)
        return NULL;
    dump_buf b = {NULL, 0, 0, 0};
    int rc = json_dump_callback(value, dump_append, &b, flags | JSON_ENCODE_ANY);
    if (rc || b.failed || !b.data) {
        cpex__free(b.data);
        return NULL;
    }
    return b.data;
}
