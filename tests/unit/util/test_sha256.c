/*
 * test_sha256.c — the SHA-256 libcpex pins plugin libraries with: the NIST
 * test vectors (FIPS 180-2 appendix B / the CAVP short messages), the
 * padding boundaries (55, 56, 63, 64, 119, 120 bytes), input fed in every
 * chunk size agreeing with one call, and the hex checks the `sha256:` key
 * uses.
 */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

static void expect(const char *msg, size_t len, const char *want)
{
    char hex[CPEX__SHA256_HEX + 1];
    cpex__sha256_of(msg, len, hex);
    assert_string_equal(hex, want);
}

static void test_nist_vectors(void **state)
{
    (void)state;
    expect("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect(two_blocks, strlen(two_blocks),
           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    static const char long_msg[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                                   "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    expect(long_msg, strlen(long_msg),
           "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* One million 'a', fed in 1000-byte pieces. */
    char piece[1000];
    memset(piece, 'a', sizeof piece);
    cpex__sha256 h;
    uint8_t d[CPEX__SHA256_SIZE];
    char hex[CPEX__SHA256_HEX + 1];
    cpex__sha256_init(&h);
    for (int i = 0; i < 1000; i++)
        cpex__sha256_update(&h, piece, sizeof piece);
    cpex__sha256_final(&h, d);
    cpex__sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Where the padding spills into a second block. */
static void test_padding_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *hex;
    } cases[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < CPEX__COUNT(cases); i++)
        expect(a, cases[i].n, cases[i].hex);
}

/* Any split of the input gives the hash of the whole. */
static void test_chunks_agree(void **state)
{
    (void)state;
    unsigned char msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof msg; len += 13) {
        char whole[CPEX__SHA256_HEX + 1];
        cpex__sha256_of(msg, len, whole);
        for (size_t chunk = 1; chunk <= 130; chunk++) {
            cpex__sha256 h;
            uint8_t d[CPEX__SHA256_SIZE];
            char hex[CPEX__SHA256_HEX + 1];
            cpex__sha256_init(&h);
            for (size_t off = 0; off < len; off += chunk)
                cpex__sha256_update(&h, msg + off, len - off < chunk ? len - off : chunk);
            cpex__sha256_final(&h, d);
            cpex__sha256_hex(d, hex);
            assert_string_equal(hex, whole);
        }
    }
}

static void test_hex_valid(void **state)
{
    (void)state;
    size_t bad = 99;
    assert_true(cpex__sha256_hex_valid(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &bad));
    assert_true(cpex__sha256_hex_valid(
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", NULL));
    assert_false(cpex__sha256_hex_valid(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a", &bad));
    assert_int_equal(bad, 63); /* too short: the length */
    assert_false(cpex__sha256_hex_valid(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adad", &bad));
    assert_int_equal(bad, 66);
    assert_false(cpex__sha256_hex_valid(
        "ba7816bf8f01cfea414140de5dae2223g00361a396177a9cb410ff61f20015ad", &bad));
    assert_int_equal(bad, 32);
    assert_false(cpex__sha256_hex_valid("", &bad));
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_vectors),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_chunks_agree),
        cmocka_unit_test(test_hex_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
