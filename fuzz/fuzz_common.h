/*
 * fuzz_common.h — what the fuzz targets share: CHECK (trap on a broken
 * invariant, so the fuzzer reports it) and the libFuzzer entry points'
 * declarations, with an LLVMFuzzerInitialize that sets up jansson's
 * allocator as cpex_manager_new does. Include it once, in one target.
 */
#ifndef CPEX_FUZZ_COMMON_H
#define CPEX_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "util/alloc.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cpex__alloc_hook_jansson(); /* so injected failures reach jansson too */
    return 0;
}

#endif /* CPEX_FUZZ_COMMON_H */
