/*
 * fuzz_kind.c — the `kind` URL parser (src/loader/kind.c).
 *
 * Input: the bytes of a kind string (cut at the first NUL, as a YAML
 * scalar would be). Besides "no crash, no leak, no UB", every parse is
 * checked against the grammar of kind.h:
 *   - success: scheme non-empty without ':', path non-empty without '?' or
 *     '#', the text starts with "<scheme>:<path>", the entry (if any) is a
 *     C identifier and follows "?entry=", the handler (if any) is
 *     non-empty and is exactly what follows the first '#';
 *   - failure: the output is zeroed and the error object holds a message
 *     that quotes the kind (or says it is empty).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/kind.h"
#include "util/alloc.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    cpex__kind k;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex__kind_parse(text, &k, &err);
    if (st == CPEX_OK) {
        CHECK(err.count == 0);
        CHECK(k.scheme && *k.scheme && !strchr(k.scheme, ':'));
        CHECK(k.path && *k.path && !strchr(k.path, '?') && !strchr(k.path, '#'));
        size_t sl = strlen(k.scheme), pl = strlen(k.path);
        CHECK(strncmp(text, k.scheme, sl) == 0 && text[sl] == ':');
        CHECK(strncmp(text + sl + 1, k.path, pl) == 0);
        const char *after = text + sl + 1 + pl; /* "", "?...", or "#..." */
        const char *hash = strchr(text + sl + 1, '#');
        if (k.handler) {
            CHECK(*k.handler && hash && strcmp(hash + 1, k.handler) == 0);
        } else {
            CHECK(!hash);
        }
        if (k.entry) {
            CHECK(cpex__entry_name_valid(k.entry, NULL, 0));
            CHECK(strncmp(after, "?entry=", 7) == 0);
            CHECK(strncmp(after + 7, k.entry, strlen(k.entry)) == 0);
            const char *end = after + 7 + strlen(k.entry);
            CHECK(*end == '\0' || *end == '#');
        } else {
            /* no entry: nothing, an empty query, or the fragment follows */
            CHECK(*after == '\0' || *after == '#' ||
                  (after[0] == '?' && (after[1] == '\0' || after[1] == '#')));
        }
        cpex__kind_cleanup(&k);
        CHECK(!k.scheme && !k.path && !k.entry && !k.handler);
    } else {
        CHECK(st == CPEX_E_CONFIG || st == CPEX_E_NOMEM);
        CHECK(!k.scheme && !k.path && !k.entry && !k.handler);
        CHECK(err.count >= 1 && err.code == st);
        const char *msg = cpex_error_message(&err);
        CHECK(msg && *msg);
        CHECK(strstr(msg, "kind"));
    }
    cpex_error_cleanup(&err);

    /* The identifier check on its own, with its reason text. */
    char why[160];
    int ok = cpex__entry_name_valid(text, why, sizeof why);
    if (ok) {
        size_t n = strlen(text);
        CHECK(n >= 1 && n <= CPEX_ENTRY_NAME_MAX);
        CHECK(!(text[0] >= '0' && text[0] <= '9'));
    } else {
        CHECK(why[0] != '\0');
    }
    free(text);
    return 0;
}
