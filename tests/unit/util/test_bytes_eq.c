/*
 * test_bytes_eq.c — cpex__bytes_eq (util/hash.h), the compare behind hook
 * lookups, the name cache and payload type checks: it reads overlapping
 * words and, below 4 bytes, three chosen bytes, so each length has its own
 * code path. Every length up to 40, a difference at every position, and
 * unaligned starts.
 */
#include "test_support.h"

#include <string.h>

#include "util/hash.h"

static void test_every_length_and_position(void **state)
{
    (void)state;
    char a[64], b[64];
    for (size_t off = 0; off < 3; off++) {
        for (size_t n = 0; n <= 40; n++) {
            for (size_t i = 0; i < sizeof a; i++)
                a[i] = b[i] = (char)('a' + (i * 7 + n) % 26);
            /* bytes around the compared range differ: they must not count */
            if (off > 0)
                b[off - 1] ^= 1;
            b[off + n] ^= 1;
            assert_true(cpex__bytes_eq(a + off, b + off, n));
            for (size_t pos = 0; pos < n; pos++) {
                b[off + pos] ^= 0x20;
                if (cpex__bytes_eq(a + off, b + off, n))
                    fail_msg("length %zu, offset %zu: a difference at %zu was missed", n, off, pos);
                b[off + pos] ^= 0x20;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_and_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
