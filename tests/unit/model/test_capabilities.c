/* test_capabilities.c — capability names and the fields each one reveals. */
#include "test_support.h"

#include <string.h>

#include "cpex/abi.h"
#include "model/capabilities.h"

static const struct {
    const char *name;
    cpex__caps bit;
} known[] = {
    {"read_subject", CPEX_CAP_READ_SUBJECT},
    {"read_roles", CPEX_CAP_READ_ROLES},
    {"read_labels", CPEX_CAP_READ_LABELS},
    {"append_labels", CPEX_CAP_APPEND_LABELS},
    {"read_classification", CPEX_CAP_READ_CLASSIFICATION},
    {"read_headers", CPEX_CAP_READ_HEADERS},
    {"write_headers", CPEX_CAP_WRITE_HEADERS},
    {"read_request", CPEX_CAP_READ_REQUEST},
    {"read_custom", CPEX_CAP_READ_CUSTOM},
    {"write_custom", CPEX_CAP_WRITE_CUSTOM},
};
#define KNOWN_N (CPEX__COUNT(known))

static const char *const cpex_only[] = {
    "read_teams",
    "read_claims",
    "read_permissions",
    "read_agent",
    "read_delegation",
    "append_delegation",
    "read_client",
    "read_workload",
    "read_inbound_credentials",
    "read_delegated_tokens",
    "write_candidate_constraint",
};
#define CPEX_ONLY_N (CPEX__COUNT(cpex_only))

static const uint32_t all_fields[] = {
    CPEX_EXT_ENTITY_TYPE,  CPEX_EXT_ENTITY_NAME, CPEX_EXT_TAGS,    CPEX_EXT_SUBJECT_ID,
    CPEX_EXT_SUBJECT_TYPE, CPEX_EXT_ROLES,       CPEX_EXT_LABELS,  CPEX_EXT_CLASSIFICATION,
    CPEX_EXT_REQUEST_ID,   CPEX_EXT_TRACE_ID,    CPEX_EXT_SPAN_ID, CPEX_EXT_ENVIRONMENT,
    CPEX_EXT_TIMESTAMP,    CPEX_EXT_SCOPE,
};
#define FIELDS_N (CPEX__COUNT(all_fields))

static void test_parse_every_known_name(void **state)
{
    (void)state;
    cpex__caps all = 0;
    for (size_t i = 0; i < KNOWN_N; i++) {
        cpex__caps caps = 0;
        const char *sugg = "stale";
        assert_int_equal(cpex__caps_parse(known[i].name, &caps, &sugg), CPEX_CAP_KNOWN);
        assert_int_equal(caps, known[i].bit);
        assert_null(sugg);
        assert_string_equal(cpex__caps_name(known[i].bit), known[i].name);
        /* Bits accumulate; parsing twice is harmless. */
        assert_int_equal(cpex__caps_parse(known[i].name, &all, NULL), CPEX_CAP_KNOWN);
        assert_int_equal(cpex__caps_parse(known[i].name, &all, NULL), CPEX_CAP_KNOWN);
    }
    assert_int_equal(all, (1u << KNOWN_N) - 1);
    /* Each bit is distinct. */
    for (size_t i = 0; i < KNOWN_N; i++)
        for (size_t j = i + 1; j < KNOWN_N; j++)
            assert_int_not_equal(known[i].bit, known[j].bit);
}

static void test_parse_not_implemented(void **state)
{
    (void)state;
    for (size_t i = 0; i < CPEX_ONLY_N; i++) {
        cpex__caps caps = 0;
        const char *sugg = "stale";
        assert_int_equal(cpex__caps_parse(cpex_only[i], &caps, &sugg), CPEX_CAP_NOT_IMPLEMENTED);
        assert_int_equal(caps, 0);
        assert_null(sugg);
    }
}

static void test_parse_unknown_with_suggestion(void **state)
{
    (void)state;
    static const struct {
        const char *typo, *want;
    } cases[] = {
        {"read_subjet", "read_subject"},
        {"read_role", "read_roles"},
        {"readlabels", "read_labels"},
        {"append_label", "append_labels"},
        {"read_clasification", "read_classification"},
        {"read_header", "read_headers"},
        {"write_header", "write_headers"},
        {"read_requests", "read_request"},
        {"read_costom", "read_custom"},
        {"write_custon", "write_custom"},
        {"Read_Subject", "read_subject"},
    };
    for (size_t i = 0; i < CPEX__COUNT(cases); i++) {
        cpex__caps caps = 0;
        const char *sugg = NULL;
        assert_int_equal(cpex__caps_parse(cases[i].typo, &caps, &sugg), CPEX_CAP_UNKNOWN);
        assert_int_equal(caps, 0);
        assert_non_null(sugg);
        assert_string_equal(sugg, cases[i].want);
    }
}

static void test_parse_unknown_without_suggestion(void **state)
{
    (void)state;
    const char *names[] = {"", "fly", "root_access_everything", "x"};
    for (size_t i = 0; i < CPEX__COUNT(names); i++) {
        cpex__caps caps = 0;
        const char *sugg = "stale";
        assert_int_equal(cpex__caps_parse(names[i], &caps, &sugg), CPEX_CAP_UNKNOWN);
        assert_null(sugg);
        assert_int_equal(caps, 0);
    }
    /* NULL name, NULL outputs: no crash. */
    assert_int_equal(cpex__caps_parse(NULL, NULL, NULL), CPEX_CAP_UNKNOWN);
    assert_int_equal(cpex__caps_parse("read_roles", NULL, NULL), CPEX_CAP_KNOWN);
    assert_int_equal(cpex__caps_parse("read_rolez", NULL, NULL), CPEX_CAP_UNKNOWN);
    /* A very long hostile name. */
    char longname[4096];
    memset(longname, 'r', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *sugg = "stale";
    assert_int_equal(cpex__caps_parse(longname, NULL, &sugg), CPEX_CAP_UNKNOWN);
    assert_null(sugg);
}

static void test_caps_name_edge_cases(void **state)
{
    (void)state;
    assert_null(cpex__caps_name(0));
    assert_null(cpex__caps_name(CPEX_CAP_READ_SUBJECT | CPEX_CAP_READ_ROLES));
    assert_null(cpex__caps_name(1u << 10));
    assert_null(cpex__caps_name(1u << 31));
    assert_null(cpex__caps_name(0xffffffffu));
}

/* The fields a single capability is expected to reveal, besides meta. */
static int expected_read(cpex__caps cap, uint32_t field)
{
    switch (field) {
    case CPEX_EXT_ENTITY_TYPE:
    case CPEX_EXT_ENTITY_NAME:
    case CPEX_EXT_SCOPE:
    case CPEX_EXT_TAGS: return 1;
    case CPEX_EXT_SUBJECT_ID:
    case CPEX_EXT_SUBJECT_TYPE: return cap == CPEX_CAP_READ_SUBJECT;
    case CPEX_EXT_ROLES: return cap == CPEX_CAP_READ_ROLES;
    case CPEX_EXT_LABELS: return cap == CPEX_CAP_READ_LABELS;
    case CPEX_EXT_CLASSIFICATION: return cap == CPEX_CAP_READ_CLASSIFICATION;
    default: return cap == CPEX_CAP_READ_REQUEST;
    }
}

static void test_can_read_matrix(void **state)
{
    (void)state;
    /* No capability: meta only. */
    for (size_t f = 0; f < FIELDS_N; f++)
        assert_int_equal(cpex__caps_can_read_field(0, all_fields[f]),
                         expected_read(0, all_fields[f]));
    /* Each capability alone reveals exactly its fields (write ones none). */
    for (size_t i = 0; i < KNOWN_N; i++) {
        for (size_t f = 0; f < FIELDS_N; f++) {
            int got = cpex__caps_can_read_field(known[i].bit, all_fields[f]);
            int want = expected_read(known[i].bit, all_fields[f]);
            if (got != want)
                fail_msg("capability %s, field %u: got %d, want %d", known[i].name,
                         (unsigned)all_fields[f], got, want);
        }
    }
    /* Everything reveals every field. */
    for (size_t f = 0; f < FIELDS_N; f++)
        assert_true(cpex__caps_can_read_field(0x3ffu, all_fields[f]));
}

static void test_write_does_not_grant_read(void **state)
{
    (void)state;
    cpex__caps w = CPEX_CAP_APPEND_LABELS | CPEX_CAP_WRITE_HEADERS | CPEX_CAP_WRITE_CUSTOM;
    assert_false(cpex__caps_can_read_field(w, CPEX_EXT_LABELS));
    assert_false(cpex__caps_can_read_field(w, CPEX_EXT_SUBJECT_ID));
    assert_true(cpex__caps_can_read_field(w | CPEX_CAP_READ_LABELS, CPEX_EXT_LABELS));
}

static void test_can_read_hostile_fields(void **state)
{
    (void)state;
    const uint32_t bad[] = {0, 5, 9, 15, 19, 25, 100, 0x7fffffffu, 0xffffffffu};
    for (size_t i = 0; i < CPEX__COUNT(bad); i++)
        assert_false(cpex__caps_can_read_field(0xffffffffu, bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_every_known_name),
        cmocka_unit_test(test_parse_not_implemented),
        cmocka_unit_test(test_parse_unknown_with_suggestion),
        cmocka_unit_test(test_parse_unknown_without_suggestion),
        cmocka_unit_test(test_caps_name_edge_cases),
        cmocka_unit_test(test_can_read_matrix),
        cmocka_unit_test(test_write_does_not_grant_read),
        cmocka_unit_test(test_can_read_hostile_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
