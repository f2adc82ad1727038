/*
 * fuzz_request.c — the JSON request line reader of `cpex run`
 * (src/cli/request.c, built into this target) and what it calls: a CMF
 * message from JSON (cpex_cmf_parse / cpex_cmf_from_json) and extensions
 * from JSON (cpex_extensions_from_json).
 *
 * Input: one request line, e.g.
 *   {"hook":"cmf.tool_pre_invoke","payload":{"role":"user","content":[...]},
 *    "extensions":{...},"context":"r1"}
 *
 * Checked on every input:
 *   - cli_request_parse: success gives a hook and exactly the payload its
 *     type says; failure gives a message;
 *   - the whole line as a CMF message (cpex_cmf_parse): success or one
 *     error item; a parsed message survives the round trips
 *     dump -> parse, to_json -> from_json and clone, each equal to it;
 *   - the "payload" and "extensions" members: round trips as above, then
 *     the conversion again with one allocation made to fail (which one is
 *     derived from the input): NULL with a CPEX_E_NOMEM item, or a result
 *     equal to the first. The JSON text itself is always parsed before
 *     failures are armed: jansson 2.14's json_loadb overflows the heap
 *     when an allocation fails inside its lexer (docs/testing.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpex/cmf.h"
#include "cpex/extensions.h"
#include "request.h"
#include "util/alloc.h"
#include "fuzz_common.h"

static uint64_t fnv(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

/* A message must equal itself after dump/parse, to_json/from_json and clone. */
static void roundtrip_cmf(const cpex_cmf_message *m)
{
    char *text = cpex_cmf_dump(m);
    CHECK(text);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *again = cpex_cmf_parse(text, strlen(text), &err);
    CHECK(again && err.count == 0);
    CHECK(cpex_cmf_equal(m, again));
    cpex_cmf_free(again);
    cpex__free(text);

    json_t *j = cpex_cmf_to_json(m);
    CHECK(j);
    again = cpex_cmf_from_json(j, &err);
    CHECK(again && err.count == 0);
    CHECK(cpex_cmf_equal(m, again));
    cpex_cmf_free(again);
    json_decref(j);

    cpex_cmf_message *copy = cpex_cmf_clone(m);
    CHECK(copy && cpex_cmf_equal(m, copy));
    char *t = cpex_cmf_text_content(copy);
    CHECK(t);
    free(t);
    cpex_cmf_free(copy);
}

static void roundtrip_ext(const cpex_extensions *e)
{
    json_t *j = cpex_extensions_to_json(e);
    CHECK(j);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_extensions *again = cpex_extensions_from_json(j, &err);
    CHECK(again && err.count == 0);
    CHECK(cpex_extensions_equal(e, again));
    cpex_extensions_unref(again);
    json_decref(j);
    cpex_extensions *copy = cpex_extensions_copy(e);
    CHECK(copy && cpex_extensions_equal(e, copy));
    cpex_extensions_unref(copy);
}

/*
 * FUZZ_FROM_JSON(fn, type, from_json, equal, release, roundtrip, refusal):
 * defines fn(json, pick), which converts `json` with from_json, cleanly
 * (success: no error item, and the value survives `roundtrip`; failure: at
 * least one error item, with a message, and `refusal` holds of err), then
 * again with allocation `pick` (among those the first made) failing: a
 * value `equal` to the first, or NULL with an error code, which is
 * CPEX_E_NOMEM where the first conversion succeeded.
 */
#define FUZZ_FROM_JSON(fn, type, from_json, equal, release, roundtrip, refusal)                      \
    static void fn(const json_t *json, uint64_t pick)                                                \
    {                                                                                                \
        cpex_error err = CPEX_ERROR_INIT;                                                            \
        cpex__alloc_count_reset();                                                                   \
        type *v = from_json(json, &err);                                                             \
        uint64_t allocs = cpex__alloc_count();                                                       \
        if (v) {                                                                                     \
            CHECK(err.count == 0);                                                                   \
            roundtrip(v);                                                                            \
        } else {                                                                                     \
            CHECK(err.count >= 1 && (refusal));                                                      \
            CHECK(cpex_error_message(&err)[0] != '\0');                                              \
        }                                                                                            \
        cpex_error_cleanup(&err);                                                                    \
        if (allocs) {                                                                                \
            cpex__alloc_fail_at(pick % allocs + 1);                                                  \
            type *v2 = from_json(json, &err);                                                        \
            cpex__alloc_fail_at(0);                                                                  \
            if (v2) {                                                                                \
                CHECK(v &&equal(v, v2));                                                             \
            } else {                                                                                 \
                /* a valid value may fail only with "out of memory"; when even                     \
                   the error item cannot be allocated, the code still says so */ \
                CHECK(err.code != CPEX_OK);                                                          \
                CHECK(err.code == CPEX_E_NOMEM || !v);                                               \
            }                                                                                        \
            cpex_error_cleanup(&err);                                                                \
            release(v2);                                                                             \
        }                                                                                            \
        release(v);                                                                                  \
    }

/* The CMF conversion of a payload: a refusal says CPEX_E_INVALID. */
FUZZ_FROM_JSON(fuzz_payload, cpex_cmf_message, cpex_cmf_from_json, cpex_cmf_equal, cpex_cmf_free,
               roundtrip_cmf, err.code == CPEX_E_INVALID)
FUZZ_FROM_JSON(fuzz_extensions, cpex_extensions, cpex_extensions_from_json, cpex_extensions_equal,
               cpex_extensions_unref, roundtrip_ext, 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    /* 1. The request line reader itself. */
    cli_request req;
    char *msg = NULL;
    if (cli_request_parse(text, size, (size & 1) ? "cmf.tool_pre_invoke" : NULL, &req, &msg)) {
        CHECK(!msg && req.hook && req.hook[0]);
        if (req.is_cmf)
            CHECK(req.cmf && !req.json);
        else
            CHECK(req.json && !req.cmf);
        cli_request_cleanup(&req);
    } else {
        CHECK(msg && msg[0]);
        free(msg);
    }

    /* 2. The whole line as a CMF message. */
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_parse(text, size, &err);
    if (m) {
        CHECK(err.count == 0);
        roundtrip_cmf(m);
        cpex_cmf_free(m);
    } else {
        CHECK(err.count == 1 && cpex_error_message(&err)[0]);
    }
    cpex_error_cleanup(&err);

    /* 3. Its members, with allocation failures (JSON parsed first). */
    json_t *root = json_loadb(text, size, JSON_DECODE_ANY, NULL);
    if (root) {
        uint64_t pick = fnv(data, size);
        const json_t *payload = json_is_object(root) ? json_object_get(root, "payload") : root;
        if (payload)
            fuzz_payload(payload, pick);
        const json_t *ext = json_is_object(root) ? json_object_get(root, "extensions") : NULL;
        if (ext)
            fuzz_extensions(ext, pick);
        json_decref(root);
    }
    return 0;
}
