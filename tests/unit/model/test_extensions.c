/* test_extensions.c — the extensions object: fields, lists, headers, custom,
 * copies, references, JSON form, equality, hostile input, out of memory. */
#include "test_support.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cpex/extensions.h"
#include "model/extensions_internal.h"
#include "util/alloc.h"

static const uint32_t single_fields[] = {
    CPEX_EXT_ENTITY_TYPE,    CPEX_EXT_ENTITY_NAME, CPEX_EXT_SUBJECT_ID, CPEX_EXT_SUBJECT_TYPE,
    CPEX_EXT_CLASSIFICATION, CPEX_EXT_REQUEST_ID,  CPEX_EXT_TRACE_ID,   CPEX_EXT_SPAN_ID,
    CPEX_EXT_ENVIRONMENT,    CPEX_EXT_TIMESTAMP,   CPEX_EXT_SCOPE,
};
#define SINGLE_N (CPEX__COUNT(single_fields))

static const uint32_t list_fields[] = {CPEX_EXT_TAGS, CPEX_EXT_ROLES, CPEX_EXT_LABELS};
#define LIST_N (CPEX__COUNT(list_fields))

/* Numbers that are not fields: gaps, neighbours and extremes. */
static const uint32_t hostile_fields[] = {
    0, 5, 6, 9, 15, 16, 19, 25, 26, 100, 1000, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu};
#define HOSTILE_N (CPEX__COUNT(hostile_fields))

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return j;
}

/* A fully populated object used by several tests. */
static cpex_extensions *make_full(void)
{
    cpex_extensions *e = cpex_extensions_new();
    assert_non_null(e);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "get_weather"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SCOPE, "tenant-a"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "prod"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "eu"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "alice"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_TYPE, "user"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "admin"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "dev"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "PII"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "secret"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_CLASSIFICATION, "confidential"), CPEX_OK);
    assert_int_equal(
        cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "Content-Type", "application/json"),
        CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "X-Trace", "abc"),
                     CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, CPEX_HEADERS_RESPONSE, "Server", "cpex"),
                     CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_REQUEST_ID, "req-1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_TRACE_ID, "trace-1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SPAN_ID, "span-1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENVIRONMENT, "production"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_TIMESTAMP, "2025-01-01T00:00:00Z"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(e, "tenant", json_string("acme")), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(
                         e, "limits", json_pack("{s:i,s:[i,i]}", "rpm", 60, "burst", 1, 2)),
                     CPEX_OK);
    return e;
}

static const char *full_json =
    "{\"meta\":{\"entity_type\":\"tool\",\"entity_name\":\"get_weather\",\"scope\":\"tenant-a\","
    "\"tags\":[\"prod\",\"eu\"]},"
    "\"security\":{\"subject\":{\"id\":\"alice\",\"type\":\"user\",\"roles\":[\"admin\",\"dev\"]},"
    "\"labels\":[\"PII\",\"secret\"],\"classification\":\"confidential\"},"
    "\"http\":{\"request_headers\":{\"Content-Type\":\"application/json\",\"X-Trace\":\"abc\"},"
    "\"response_headers\":{\"Server\":\"cpex\"}},"
    "\"request\":{\"request_id\":\"req-1\",\"trace_id\":\"trace-1\",\"span_id\":\"span-1\","
    "\"environment\":\"production\",\"timestamp\":\"2025-01-01T00:00:00Z\"},"
    "\"custom\":{\"tenant\":\"acme\",\"limits\":{\"rpm\":60,\"burst\":[1,2]}}}";

/* ------------------------------------------------------------------ */

static void test_new_is_empty(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    assert_non_null(e);
    for (size_t i = 0; i < SINGLE_N; i++)
        assert_null(cpex_extensions_get(e, single_fields[i]));
    for (size_t i = 0; i < LIST_N; i++) {
        assert_int_equal(cpex_extensions_count(e, list_fields[i]), 0);
        assert_null(cpex_extensions_item(e, list_fields[i], 0));
    }
    assert_int_equal(cpex_extensions_header_count(e, CPEX_HEADERS_REQUEST), 0);
    assert_int_equal(cpex_extensions_header_count(e, CPEX_HEADERS_RESPONSE), 0);
    assert_null(cpex_extensions_custom(e, "x"));
    assert_null(cpex__extensions_custom_object(e));
    json_t *j = cpex_extensions_to_json(e);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    assert_true(cpex_extensions_equal(e, NULL));
    assert_true(cpex_extensions_equal(NULL, e));
    assert_true(cpex_extensions_equal(NULL, NULL));
    cpex_extensions_unref(e);
}

static void test_single_fields(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    char buf[64];
    for (size_t i = 0; i < SINGLE_N; i++) {
        snprintf(buf, sizeof buf, "value-%zu", i);
        assert_int_equal(cpex_extensions_set(e, single_fields[i], buf), CPEX_OK);
    }
    for (size_t i = 0; i < SINGLE_N; i++) {
        snprintf(buf, sizeof buf, "value-%zu", i);
        assert_string_equal(cpex_extensions_get(e, single_fields[i]), buf);
        cpex_str s = cpex__extensions_get_str(e, single_fields[i]);
        assert_int_equal(s.len, strlen(buf));
        assert_int_equal(s.ptr[s.len], '\0');
        assert_int_equal(cpex__ext_field_kind_of(single_fields[i]), CPEX_EXT_KIND_SINGLE);
    }
    /* The value is copied. */
    strcpy(buf, "changed");
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_ENTITY_TYPE), "value-0");
    /* Replace, set the same value, set from its own borrowed pointer. */
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool"), CPEX_OK);
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_ENTITY_TYPE), "tool");
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME,
                                         cpex_extensions_get(e, CPEX_EXT_ENTITY_NAME) + 2),
                     CPEX_OK);
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_ENTITY_NAME), "lue-1");
    /* Empty string is a value, NULL clears. */
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SPAN_ID, ""), CPEX_OK);
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_SPAN_ID), "");
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SPAN_ID, NULL), CPEX_OK);
    assert_null(cpex_extensions_get(e, CPEX_EXT_SPAN_ID));
    assert_null(cpex__extensions_get_str(e, CPEX_EXT_SPAN_ID).ptr);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SPAN_ID, NULL), CPEX_OK);
    /* Not UTF-8: refused, value kept. */
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "bad\xff"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "\xc0\xaf"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "\xed\xa0\x80"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "\xe2\x82"), CPEX_E_INVALID);
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_ENTITY_TYPE), "tool");
    assert_int_equal(
        cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
        CPEX_OK);
    /* set on a list field is refused. */
    for (size_t i = 0; i < LIST_N; i++) {
        assert_int_equal(cpex_extensions_set(e, list_fields[i], "x"), CPEX_E_INVALID);
        assert_null(cpex_extensions_get(e, list_fields[i]));
        assert_int_equal(cpex_extensions_count(e, list_fields[i]), 0);
    }
    cpex_extensions_unref(e);
}

static void test_list_fields(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    for (size_t f = 0; f < LIST_N; f++) {
        uint32_t field = list_fields[f];
        assert_int_equal(cpex__ext_field_kind_of(field), CPEX_EXT_KIND_LIST);
        /* Enough items to grow the array a few times; order is kept. */
        char buf[32];
        for (int i = 0; i < 40; i++) {
            snprintf(buf, sizeof buf, "item%d", i);
            assert_int_equal(cpex_extensions_add(e, field, buf), CPEX_OK);
        }
        assert_int_equal(cpex_extensions_count(e, field), 40);
        for (int i = 0; i < 40; i++) {
            snprintf(buf, sizeof buf, "item%d", i);
            assert_string_equal(cpex_extensions_item(e, field, (size_t)i), buf);
            assert_int_equal(cpex__extensions_item_str(e, field, (size_t)i).len, strlen(buf));
        }
        assert_null(cpex_extensions_item(e, field, 40));
        assert_null(cpex_extensions_item(e, field, (size_t)-1));
        assert_null(cpex__extensions_item_str(e, field, 40).ptr);
        /* Exact duplicates are kept once, for every list. */
        assert_int_equal(cpex_extensions_add(e, field, "item3"), CPEX_OK);
        assert_int_equal(cpex_extensions_count(e, field), 40);
        /* add on a list: NULL and bad UTF-8 refused. */
        assert_int_equal(cpex_extensions_add(e, field, NULL), CPEX_E_INVALID);
        assert_int_equal(cpex_extensions_add(e, field, "\x80"), CPEX_E_INVALID);
        assert_int_equal(cpex_extensions_count(e, field), 40);
    }
    cpex_extensions_unref(e);

    /* Case: labels fold ASCII case (first spelling kept); roles and tags do not. */
    e = cpex_extensions_new();
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "Secret"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "SECRET"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "secret"), CPEX_OK);
    assert_int_equal(cpex_extensions_count(e, CPEX_EXT_LABELS), 1);
    assert_string_equal(cpex_extensions_item(e, CPEX_EXT_LABELS, 0), "Secret");
    assert_true(cpex_extensions_has_label(e, "secret"));
    assert_true(cpex_extensions_has_label(e, "sEcReT"));
    assert_false(cpex_extensions_has_label(e, "secrets"));
    assert_false(cpex_extensions_has_label(e, "secre"));
    assert_false(cpex_extensions_has_label(e, NULL));
    assert_false(cpex_extensions_has_label(NULL, "secret"));
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "Admin"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "admin"), CPEX_OK);
    assert_int_equal(cpex_extensions_count(e, CPEX_EXT_ROLES), 2);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "EU"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "eu"), CPEX_OK);
    assert_int_equal(cpex_extensions_count(e, CPEX_EXT_TAGS), 2);
    /* Only ASCII folds: non-ASCII letters are distinct. */
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "\xc3\xa9t\xc3\xa9"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "\xc3\x89t\xc3\x89"), CPEX_OK);
    assert_int_equal(cpex_extensions_count(e, CPEX_EXT_LABELS), 3);
    /* add on a single field is refused. */
    for (size_t i = 0; i < SINGLE_N; i++) {
        assert_int_equal(cpex_extensions_add(e, single_fields[i], "x"), CPEX_E_INVALID);
        assert_int_equal(cpex_extensions_count(e, single_fields[i]), 0);
        assert_null(cpex_extensions_item(e, single_fields[i], 0));
        assert_null(cpex_extensions_get(e, single_fields[i]));
    }
    cpex_extensions_unref(e);
}

static void test_headers(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    const uint32_t R = CPEX_HEADERS_REQUEST;
    assert_int_equal(cpex_extensions_set_header(e, R, "Content-Type", "text/plain"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-A", "1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-B", "2"), CPEX_OK);
    assert_int_equal(cpex_extensions_header_count(e, R), 3);
    /* Case-insensitive lookup. */
    assert_string_equal(cpex_extensions_header(e, R, "content-type"), "text/plain");
    assert_string_equal(cpex_extensions_header(e, R, "CONTENT-TYPE"), "text/plain");
    assert_int_equal(cpex__extensions_header_str(e, R, "x-a").len, 1);
    assert_null(cpex_extensions_header(e, R, "X-C"));
    assert_null(cpex_extensions_header(e, R, NULL));
    /* Sets are separate. */
    assert_null(cpex_extensions_header(e, CPEX_HEADERS_RESPONSE, "X-A"));
    assert_int_equal(cpex_extensions_header_count(e, CPEX_HEADERS_RESPONSE), 0);
    /* Replace in place: position and first spelling kept. */
    assert_int_equal(cpex_extensions_set_header(e, R, "content-TYPE", "application/json"), CPEX_OK);
    assert_int_equal(cpex_extensions_header_count(e, R), 3);
    const char *v = NULL;
    assert_string_equal(cpex_extensions_header_at(e, R, 0, &v), "Content-Type");
    assert_string_equal(v, "application/json");
    assert_string_equal(cpex_extensions_header_at(e, R, 1, &v), "X-A");
    assert_string_equal(v, "1");
    assert_string_equal(cpex_extensions_header_at(e, R, 2, NULL), "X-B");
    v = "stale";
    assert_null(cpex_extensions_header_at(e, R, 3, &v));
    assert_null(v);
    cpex_str n, sv;
    assert_true(cpex__extensions_header_at_str(e, R, 1, &n, &sv));
    assert_int_equal(n.len, 3);
    assert_int_equal(sv.len, 1);
    assert_false(cpex__extensions_header_at_str(e, R, 3, &n, &sv));
    /* Value from its own borrowed pointer. */
    assert_int_equal(cpex_extensions_set_header(e, R, "x-b", cpex_extensions_header(e, R, "X-B")),
                     CPEX_OK);
    assert_string_equal(cpex_extensions_header(e, R, "X-B"), "2");
    /* Remove (case-insensitively) keeps the order of the others. */
    assert_int_equal(cpex_extensions_set_header(e, R, "x-a", NULL), CPEX_OK);
    assert_int_equal(cpex_extensions_header_count(e, R), 2);
    assert_string_equal(cpex_extensions_header_at(e, R, 0, NULL), "Content-Type");
    assert_string_equal(cpex_extensions_header_at(e, R, 1, NULL), "X-B");
    assert_int_equal(cpex_extensions_set_header(e, R, "X-Absent", NULL), CPEX_OK);
    assert_int_equal(cpex_extensions_header_count(e, R), 2);
    /* Many headers grow the array. */
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "X-H%d", i);
        assert_int_equal(cpex_extensions_set_header(e, CPEX_HEADERS_RESPONSE, name, "v"), CPEX_OK);
    }
    assert_int_equal(cpex_extensions_header_count(e, CPEX_HEADERS_RESPONSE), 50);
    assert_string_equal(cpex_extensions_header_at(e, CPEX_HEADERS_RESPONSE, 49, NULL), "X-H49");
    /* Header injection and malformed names are refused. */
    assert_int_equal(cpex_extensions_set_header(e, R, "X-Evil", "a\r\nSet-Cookie: x"),
                     CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-Evil", "a\nb"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-Evil\r\nA", "a"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "Bad Name", "a"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "Bad:Name", "a"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "", "a"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, NULL, "a"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-Bad", "\xff"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-B", "a\rb"), CPEX_E_INVALID);
    assert_string_equal(cpex_extensions_header(e, R, "X-B"), "2");
    assert_int_equal(cpex_extensions_header_count(e, R), 2);
    /* Tabs, empty values and token punctuation are fine. */
    assert_int_equal(cpex_extensions_set_header(e, R, "X-!#$%&'*+-.^_`|~", "a\tb"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, R, "X-Empty", ""), CPEX_OK);
    assert_string_equal(cpex_extensions_header(e, R, "x-empty"), "");
    cpex_extensions_unref(e);
}

static void test_custom(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    json_t *v = json_string("one");
    json_incref(v); /* keep one reference to watch ownership */
    assert_int_equal(cpex_extensions_set_custom(e, "k", v), CPEX_OK);
    assert_ptr_equal(cpex_extensions_custom(e, "k"), v);
    assert_int_equal(v->refcount, 2);
    assert_int_equal(json_object_size(cpex__extensions_custom_object(e)), 1);
    /* Replace drops the old value's reference. */
    assert_int_equal(cpex_extensions_set_custom(e, "k", json_integer(2)), CPEX_OK);
    assert_int_equal(v->refcount, 1);
    assert_int_equal(json_integer_value(cpex_extensions_custom(e, "k")), 2);
    /* Failure still takes the value. */
    json_incref(v);
    assert_int_equal(cpex_extensions_set_custom(e, NULL, v), CPEX_E_INVALID);
    assert_int_equal(v->refcount, 1);
    json_incref(v);
    assert_int_equal(cpex_extensions_set_custom(NULL, "k", v), CPEX_E_INVALID);
    assert_int_equal(v->refcount, 1);
    json_incref(v);
    assert_int_equal(cpex_extensions_set_custom(e, "bad\xff", v), CPEX_E_INVALID);
    assert_int_equal(v->refcount, 1);
    json_decref(v);
    /* Delete, delete again, lookups of absent keys. */
    assert_int_equal(cpex_extensions_set_custom(e, "other", json_true()), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(e, "k", NULL), CPEX_OK);
    assert_null(cpex_extensions_custom(e, "k"));
    assert_int_equal(cpex_extensions_set_custom(e, "k", NULL), CPEX_OK);
    assert_non_null(cpex_extensions_custom(e, "other"));
    assert_null(cpex_extensions_custom(e, NULL));
    assert_int_equal(cpex_extensions_set_custom(e, "other", NULL), CPEX_OK);
    /* Emptied custom: left out of JSON, equal to an empty object. */
    json_t *j = cpex_extensions_to_json(e);
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    assert_true(cpex_extensions_equal(e, NULL));
    /* Values nested too deeply (or cyclic) are refused, and released. */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 300; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    assert_int_equal(cpex_extensions_set_custom(e, "deep", deep), CPEX_E_INVALID);
    assert_null(cpex_extensions_custom(e, "deep"));
    json_t *shallow = json_pack("{s:[{s:[1]}]}", "a", "b");
    assert_int_equal(cpex_extensions_set_custom(e, "ok", shallow), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(e, "ok", NULL), CPEX_OK);
    /* Deleting on an object that never had custom values. */
    cpex_extensions *e2 = cpex_extensions_new();
    assert_int_equal(cpex_extensions_set_custom(e2, "k", NULL), CPEX_OK);
    assert_null(cpex__extensions_custom_object(e2));
    cpex_extensions_unref(e2);
    cpex_extensions_unref(e);
}

static void test_copy_independence(void **state)
{
    (void)state;
    cpex_extensions *a = make_full();
    cpex_extensions *b = cpex_extensions_copy(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_true(cpex_extensions_equal(a, b));
    assert_int_equal(cpex__extensions_refcount(a), 1);
    assert_int_equal(cpex__extensions_refcount(b), 1);

    /* Change every part of the copy. */
    assert_int_equal(cpex_extensions_set(b, CPEX_EXT_SUBJECT_ID, "mallory"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(b, CPEX_EXT_ENTITY_TYPE, NULL), CPEX_OK);
    assert_int_equal(cpex_extensions_add(b, CPEX_EXT_LABELS, "extra"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(b, CPEX_EXT_TAGS, "t3"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(b, CPEX_EXT_ROLES, "r3"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(b, CPEX_HEADERS_REQUEST, "x-trace", "changed"),
                     CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(b, CPEX_HEADERS_REQUEST, "content-type", NULL),
                     CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(b, CPEX_HEADERS_RESPONSE, "X-New", "1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(b, "tenant", json_string("evil")), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(b, "limits", NULL), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(b, "new", json_null()), CPEX_OK);
    assert_false(cpex_extensions_equal(a, b));

    /* The original is untouched. */
    json_t *want = parse(full_json);
    json_t *got = cpex_extensions_to_json(a);
    assert_true(json_equal(want, got));
    json_decref(got);

    /* Dropping the original leaves the copy whole (shared data stays alive). */
    cpex_extensions_unref(a);
    assert_string_equal(cpex_extensions_get(b, CPEX_EXT_SUBJECT_TYPE), "user");
    assert_string_equal(cpex_extensions_item(b, CPEX_EXT_ROLES, 1), "dev");
    assert_string_equal(cpex_extensions_header(b, CPEX_HEADERS_REQUEST, "X-TRACE"), "changed");
    assert_string_equal(cpex_extensions_header(b, CPEX_HEADERS_RESPONSE, "server"), "cpex");
    assert_string_equal(json_string_value(cpex_extensions_custom(b, "tenant")), "evil");
    assert_null(cpex_extensions_custom(b, "limits"));
    assert_int_equal(cpex_extensions_count(b, CPEX_EXT_LABELS), 3);

    /* A copy of the copy, and changing the first copy afterwards. */
    cpex_extensions *c = cpex_extensions_copy(b);
    assert_true(cpex_extensions_equal(b, c));
    assert_int_equal(cpex_extensions_add(b, CPEX_EXT_LABELS, "more"), CPEX_OK);
    assert_int_equal(cpex_extensions_count(c, CPEX_EXT_LABELS), 3);
    cpex_extensions_unref(b);
    cpex_extensions_unref(c);

    /* Copies of empty and NULL. */
    cpex_extensions *empty = cpex_extensions_new();
    cpex_extensions *ec = cpex_extensions_copy(empty);
    assert_true(cpex_extensions_equal(empty, ec));
    cpex_extensions_unref(ec);
    cpex_extensions_unref(empty);
    assert_null(cpex_extensions_copy(NULL));
    json_decref(want);
}

/* Custom values are copied on write: a copy reads the same values until
 * either side writes, and a write never shows through to the other side. */
/* A view (what a worker thread reads through) sees the object as it was
 * when the view was made, whatever the owner writes or frees afterwards,
 * and costs no allocation. */
static void test_view_outlives_and_ignores_writes(void **state)
{
    (void)state;
    cpex_extensions *e = make_full();
    cpex_extensions *before = cpex_extensions_copy(e);
    void *storage = malloc(cpex__extensions_size);
    assert_non_null(storage);
    cpex_extensions *view = storage;
    cpex__alloc_count_reset();
    cpex__extensions_view_init(view, e);
    assert_int_equal(cpex__alloc_count(), 0);
    assert_true(cpex_extensions_equal(view, e));
    /* The owner writes every kind of field: the view keeps the old values. */
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "mallory"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "new"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "X-Trace", "zzz"),
                     CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(e, "tenant", json_string("other")), CPEX_OK);
    assert_false(cpex_extensions_equal(view, e));
    assert_true(cpex_extensions_equal(view, before));
    assert_string_equal(cpex_extensions_get(view, CPEX_EXT_SUBJECT_ID), "alice");
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_SUBJECT_ID), "mallory");
    /* The owner goes away; the view still reads (ASan checks the memory). */
    cpex_extensions_unref(e);
    assert_string_equal(cpex_extensions_header(view, CPEX_HEADERS_REQUEST, "x-trace"), "abc");
    assert_true(cpex_extensions_equal(view, before));
    cpex__extensions_view_release(view);
    cpex__extensions_view_release(view); /* idempotent */
    free(storage);
    cpex_extensions_unref(before);
}

/* A copy shares the content until one side writes (no allocation beyond
 * the copy's own), and a write never shows on the other side. */
static void test_copy_shares_until_written(void **state)
{
    (void)state;
    cpex_extensions *a = make_full();
    cpex__alloc_count_reset();
    cpex_extensions *b = cpex_extensions_copy(a);
    assert_int_equal(cpex__alloc_count(), 1);
    assert_true(cpex_extensions_equal(a, b));
    assert_int_equal(cpex_extensions_set(b, CPEX_EXT_SUBJECT_ID, "bob"), CPEX_OK);
    assert_string_equal(cpex_extensions_get(a, CPEX_EXT_SUBJECT_ID), "alice");
    assert_int_equal(cpex_extensions_set(a, CPEX_EXT_ENTITY_NAME, "other"), CPEX_OK);
    assert_string_equal(cpex_extensions_get(b, CPEX_EXT_ENTITY_NAME), "get_weather");
    cpex_extensions_unref(a);
    assert_string_equal(cpex_extensions_get(b, CPEX_EXT_ENTITY_NAME), "get_weather");
    cpex_extensions_unref(b);
}

static void test_custom_copy_on_write(void **state)
{
    (void)state;
    cpex_extensions *a = make_full();
    cpex_extensions *b = cpex_extensions_copy(a);
    /* Shared for reading. */
    assert_ptr_equal(cpex__extensions_custom_object(a), cpex__extensions_custom_object(b));
    /* Writing the copy detaches it; the original keeps its values. */
    const json_t *a_limits = cpex_extensions_custom(a, "limits");
    assert_int_equal(cpex_extensions_set_custom(b, "tenant", json_string("other")), CPEX_OK);
    assert_ptr_not_equal(cpex__extensions_custom_object(a), cpex__extensions_custom_object(b));
    assert_ptr_equal(cpex_extensions_custom(a, "limits"), a_limits);
    assert_ptr_not_equal(cpex_extensions_custom(b, "limits"), a_limits);
    assert_true(json_equal(cpex_extensions_custom(b, "limits"), a_limits));
    assert_string_equal(json_string_value(cpex_extensions_custom(a, "tenant")), "acme");
    /* Once private, further writes do not copy again. */
    const json_t *b_obj = cpex__extensions_custom_object(b);
    assert_int_equal(cpex_extensions_set_custom(b, "x", json_true()), CPEX_OK);
    assert_ptr_equal(cpex__extensions_custom_object(b), b_obj);
    /* Deleting on a shared object detaches too. */
    cpex_extensions *c = cpex_extensions_copy(a);
    assert_int_equal(cpex_extensions_set_custom(c, "limits", NULL), CPEX_OK);
    assert_null(cpex_extensions_custom(c, "limits"));
    assert_non_null(cpex_extensions_custom(a, "limits"));
    /* Writing the original while a copy shares its values: the copy is
     * unaffected (the original is still solely owned; only the custom
     * values are shared). */
    cpex_extensions *d = cpex_extensions_copy(a);
    assert_int_equal(cpex_extensions_set_custom(a, "tenant", json_string("a")), CPEX_OK);
    assert_string_equal(json_string_value(cpex_extensions_custom(d, "tenant")), "acme");
    assert_string_equal(json_string_value(cpex_extensions_custom(a, "tenant")), "a");
    /* The last holder of a once-shared object writes in place. */
    cpex_extensions_unref(a);
    const json_t *d_obj = cpex__extensions_custom_object(d);
    assert_int_equal(cpex_extensions_set_custom(d, "tenant", json_string("d")), CPEX_OK);
    assert_ptr_equal(cpex__extensions_custom_object(d), d_obj);
    assert_string_equal(json_string_value(cpex_extensions_custom(d, "tenant")), "d");
    cpex_extensions_unref(b);
    cpex_extensions_unref(c);
    cpex_extensions_unref(d);
}

static void test_ref_unref(void **state)
{
    (void)state;
    cpex_extensions *e = make_full();
    assert_int_equal(cpex__extensions_refcount(e), 1);
    const cpex_extensions *ce = e;
    cpex_extensions *r = cpex_extensions_ref(ce);
    assert_ptr_equal(r, e);
    assert_int_equal(cpex__extensions_refcount(e), 2);
    cpex_extensions_ref(e);
    assert_int_equal(cpex__extensions_refcount(e), 3);
    cpex_extensions_unref(e);
    cpex_extensions_unref(e);
    assert_int_equal(cpex__extensions_refcount(e), 1);
    assert_string_equal(cpex_extensions_get(e, CPEX_EXT_SUBJECT_ID), "alice");
    cpex_extensions_unref(e); /* freed: ASan would report a leak otherwise */
    assert_null(cpex_extensions_ref(NULL));
    cpex_extensions_unref(NULL);
    assert_int_equal(cpex__extensions_refcount(NULL), 0);
}

/* Several threads share one read-only object: each refs it, reads it,
 * copies and changes the copy, and unrefs, as concurrent invokes do. */
#define THREADS 8
#define ROUNDS 2000

static void *share_worker(void *arg)
{
    cpex_extensions *shared = arg;
    for (int i = 0; i < ROUNDS; i++) {
        cpex_extensions *mine = cpex_extensions_ref(shared);
        if (strcmp(cpex_extensions_get(mine, CPEX_EXT_SUBJECT_ID), "alice") != 0)
            return (void *)1;
        if (!cpex_extensions_has_label(mine, "pii"))
            return (void *)1;
        if (strcmp(cpex_extensions_header(mine, CPEX_HEADERS_REQUEST, "x-trace"), "abc") != 0)
            return (void *)1;
        cpex_extensions *w = cpex_extensions_copy(mine);
        if (!w)
            return (void *)1;
        if (cpex_extensions_add(w, CPEX_EXT_LABELS, "touched") != CPEX_OK ||
            cpex_extensions_set_custom(w, "tenant", json_integer(i)) != CPEX_OK)
            return (void *)1;
        cpex_extensions_unref(mine);
        cpex_extensions_unref(w);
    }
    return NULL;
}

static void test_threads_share(void **state)
{
    (void)state;
    cpex_extensions *e = make_full();
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, share_worker, e), 0);
    for (int i = 0; i < THREADS; i++) {
        void *ret = (void *)1;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    assert_int_equal(cpex__extensions_refcount(e), 1);
    assert_false(cpex_extensions_has_label(e, "touched"));
    assert_string_equal(json_string_value(cpex_extensions_custom(e, "tenant")), "acme");
    cpex_extensions_unref(e);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    cpex_extensions *e = make_full();
    json_t *got = cpex_extensions_to_json(e);
    json_t *want = parse(full_json);
    assert_non_null(got);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("to_json gave %s", s);
    }
    /* Header and list order survive. */
    const char *key = json_object_iter_key(
        json_object_iter(json_object_get(json_object_get(got, "http"), "request_headers")));
    assert_string_equal(key, "Content-Type");

    cpex_error err = CPEX_ERROR_INIT;
    cpex_extensions *back = cpex_extensions_from_json(got, &err);
    assert_non_null(back);
    assert_int_equal(err.count, 0);
    assert_true(cpex_extensions_equal(e, back));
    assert_string_equal(cpex_extensions_item(back, CPEX_EXT_TAGS, 1), "eu");
    assert_string_equal(cpex_extensions_header_at(back, CPEX_HEADERS_REQUEST, 1, NULL), "X-Trace");

    /* The result belongs to the caller: changing it does not reach the object,
     * and from_json copied what it read. */
    json_object_set_new(json_object_get(json_object_get(got, "custom"), "limits"), "rpm",
                        json_integer(1));
    json_object_set_new(json_object_get(got, "custom"), "tenant", json_string("x"));
    assert_int_equal(
        json_integer_value(json_object_get(cpex_extensions_custom(e, "limits"), "rpm")), 60);
    assert_int_equal(
        json_integer_value(json_object_get(cpex_extensions_custom(back, "limits"), "rpm")), 60);
    assert_string_equal(json_string_value(cpex_extensions_custom(back, "tenant")), "acme");

    json_decref(got);
    json_decref(want);
    cpex_extensions_unref(back);
    cpex_extensions_unref(e);

    /* Partly filled objects leave empty slots out. */
    e = cpex_extensions_new();
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "x"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, CPEX_HEADERS_RESPONSE, "A", "b"), CPEX_OK);
    got = cpex_extensions_to_json(e);
    want =
        parse("{\"security\":{\"labels\":[\"x\"]},\"http\":{\"response_headers\":{\"A\":\"b\"}}}");
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    cpex_extensions_unref(e);
    got = cpex_extensions_to_json(NULL);
    assert_int_equal(json_object_size(got), 0);
    json_decref(got);

    /* Null members mean absent; duplicates in arrays are folded like add. */
    json_t *in = parse("{\"meta\":null,\"security\":{\"subject\":null,\"labels\":[\"A\",\"a\"],"
                       "\"classification\":null},\"custom\":{}}");
    e = cpex_extensions_from_json(in, NULL);
    assert_non_null(e);
    assert_int_equal(cpex_extensions_count(e, CPEX_EXT_LABELS), 1);
    assert_null(cpex_extensions_get(e, CPEX_EXT_CLASSIFICATION));
    assert_null(cpex__extensions_custom_object(e));
    cpex_extensions_unref(e);
    json_decref(in);
}

static char *from_json_error(const char *text)
{
    json_t *in = parse(text);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_extensions *e = cpex_extensions_from_json(in, &err);
    json_decref(in);
    assert_null(e);
    assert_true(err.count > 0);
    assert_int_equal(err.code, CPEX_E_INVALID);
    char *msg = strdup(cpex_error_message(&err));
    cpex_error_cleanup(&err);
    return msg;
}

#define EXPECT_ERROR(json, needle)                                                                 \
    do {                                                                                           \
        char *m_ = from_json_error(json);                                                          \
        assert_contains(m_, needle);                                                               \
        free(m_);                                                                                  \
    } while (0)

static void test_from_json_errors(void **state)
{
    (void)state;
    /* Unknown keys, with the path and a suggestion. */
    EXPECT_ERROR("{\"security\":{\"subjet\":{}}}",
                 "security.subjet: unknown key; did you mean 'subject'?");
    EXPECT_ERROR("{\"metaa\":{}}", "metaa: unknown key; did you mean 'meta'?");
    EXPECT_ERROR("{\"security\":{\"subject\":{\"idd\":\"x\"}}}",
                 "security.subject.idd: unknown key; did you mean 'id'?");
    EXPECT_ERROR("{\"http\":{\"request_header\":{}}}",
                 "http.request_header: unknown key; did you mean 'request_headers'?");
    EXPECT_ERROR("{\"request\":{\"traceid\":\"x\"}}",
                 "request.traceid: unknown key; did you mean 'trace_id'?");
    EXPECT_ERROR("{\"meta\":{\"tag\":[]}}", "meta.tag: unknown key; did you mean 'tags'?");
    /* No close name: the known ones are listed. */
    EXPECT_ERROR("{\"agent\":{}}",
                 "agent: unknown key; expected one of: meta, security, http, request, custom");
    /* Wrong types. */
    EXPECT_ERROR("{\"meta\":{\"entity_type\":5}}",
                 "meta.entity_type: expected a string, got an integer");
    EXPECT_ERROR("{\"meta\":{\"tags\":\"prod\"}}",
                 "meta.tags: expected an array of strings, got a string");
    EXPECT_ERROR("{\"meta\":{\"tags\":[\"a\",true]}}",
                 "meta.tags[1]: expected a string, got a boolean");
    EXPECT_ERROR("{\"security\":{\"subject\":{\"roles\":[1.5]}}}",
                 "security.subject.roles[0]: expected a string, got a number");
    EXPECT_ERROR("{\"security\":[]}", "security: expected an object, got an array");
    EXPECT_ERROR("{\"security\":{\"subject\":\"alice\"}}",
                 "security.subject: expected an object, got a string");
    EXPECT_ERROR("{\"http\":{\"request_headers\":[]}}", "http.request_headers: expected an object");
    EXPECT_ERROR("{\"http\":{\"response_headers\":{\"X-A\":1}}}",
                 "http.response_headers.X-A: expected a string, got an integer");
    EXPECT_ERROR("{\"custom\":[1]}", "custom: expected an object, got an array");
    EXPECT_ERROR("{\"request\":{\"timestamp\":{}}}",
                 "request.timestamp: expected a string, got an object");
    /* Headers: bad names, injection, case-insensitive duplicates. */
    EXPECT_ERROR("{\"http\":{\"request_headers\":{\"Bad Name\":\"x\"}}}",
                 "http.request_headers.Bad Name: not a valid header name");
    EXPECT_ERROR("{\"http\":{\"request_headers\":{\"X-A\":\"a\\r\\nB: c\"}}}",
                 "http.request_headers.X-A: header value must be");
    EXPECT_ERROR("{\"http\":{\"request_headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}}}",
                 "http.request_headers.x-a: duplicate header");
    /* Embedded NUL. */
    EXPECT_ERROR("{\"meta\":{\"entity_name\":\"a\\u0000b\"}}",
                 "meta.entity_name: string contains a NUL byte");
    EXPECT_ERROR("{\"meta\":{\"tags\":[\"a\\u0000b\"]}}", "meta.tags[0]: string contains a NUL");

    /* Every problem is reported, one item each. */
    json_t *in = parse("{\"meta\":{\"entity_type\":1,\"tags\":[2]},\"securty\":{},\"custom\":3}");
    cpex_error err = CPEX_ERROR_INIT;
    assert_null(cpex_extensions_from_json(in, &err));
    assert_int_equal(err.count, 4);
    const char *all = cpex_error_message(&err);
    assert_contains(all, "meta.entity_type");
    assert_contains(all, "meta.tags[0]");
    assert_contains(all, "securty: unknown key; did you mean 'security'?");
    assert_contains(all, "custom: expected an object, got an integer");
    cpex_error_cleanup(&err);
    /* A NULL err is fine. */
    assert_null(cpex_extensions_from_json(in, NULL));
    json_decref(in);

    /* Not an object at the top. */
    in = parse("[1]");
    assert_null(cpex_extensions_from_json(in, &err));
    assert_contains(cpex_error_message(&err), "extensions: expected an object, got an array");
    cpex_error_cleanup(&err);
    json_decref(in);
    assert_null(cpex_extensions_from_json(NULL, &err));
    assert_int_equal(err.code, CPEX_E_INVALID);
    cpex_error_cleanup(&err);

    /* Invalid UTF-8 smuggled in through jansson's unchecked constructors. */
    in = json_pack("{s:{s:o}}", "meta", "entity_type", json_stringn_nocheck("\xff", 1));
    assert_null(cpex_extensions_from_json(in, &err));
    assert_contains(cpex_error_message(&err), "meta.entity_type: not valid UTF-8");
    cpex_error_cleanup(&err);
    json_decref(in);
}

static void test_from_json_deep_custom(void **state)
{
    (void)state;
    /* Built by hand: deeper than the copy limit. */
    json_t *inner = json_object();
    json_t *top = inner;
    for (int i = 0; i < 600; i++) {
        json_t *next = json_object();
        json_object_set_new(inner, "x", next);
        inner = next;
    }
    json_t *in = json_pack("{s:{s:o}}", "custom", "deep", top);
    cpex_error err = CPEX_ERROR_INIT;
    assert_null(cpex_extensions_from_json(in, &err));
    assert_contains(cpex_error_message(&err), "custom: nested more than");
    cpex_error_cleanup(&err);
    json_decref(in);
}

static void test_equal(void **state)
{
    (void)state;
    cpex_extensions *a = make_full();
    cpex_extensions *b = make_full();
    assert_true(cpex_extensions_equal(a, b));
    assert_true(cpex_extensions_equal(a, a));
    assert_false(cpex_extensions_equal(a, NULL));
    assert_false(cpex_extensions_equal(NULL, a));

    /* Each single field counts. */
    for (size_t i = 0; i < SINGLE_N; i++) {
        cpex_extensions *c = cpex_extensions_copy(a);
        assert_int_equal(cpex_extensions_set(c, single_fields[i], "different"), CPEX_OK);
        assert_false(cpex_extensions_equal(a, c));
        assert_int_equal(cpex_extensions_set(c, single_fields[i], NULL), CPEX_OK);
        assert_false(cpex_extensions_equal(a, c));
        cpex_extensions_unref(c);
    }
    /* Each list counts, including its order. */
    for (size_t i = 0; i < LIST_N; i++) {
        cpex_extensions *c = cpex_extensions_copy(a);
        assert_int_equal(cpex_extensions_add(c, list_fields[i], "zzz"), CPEX_OK);
        assert_false(cpex_extensions_equal(a, c));
        cpex_extensions_unref(c);
    }
    cpex_extensions *x = cpex_extensions_new(), *y = cpex_extensions_new();
    cpex_extensions_add(x, CPEX_EXT_TAGS, "a");
    cpex_extensions_add(x, CPEX_EXT_TAGS, "b");
    cpex_extensions_add(y, CPEX_EXT_TAGS, "b");
    cpex_extensions_add(y, CPEX_EXT_TAGS, "a");
    assert_false(cpex_extensions_equal(x, y));
    /* Headers: order does not count, spelling and values do. */
    cpex_extensions_unref(x);
    cpex_extensions_unref(y);
    x = cpex_extensions_new();
    y = cpex_extensions_new();
    cpex_extensions_set_header(x, CPEX_HEADERS_REQUEST, "A", "1");
    cpex_extensions_set_header(x, CPEX_HEADERS_REQUEST, "B", "2");
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "B", "2");
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "A", "1");
    assert_true(cpex_extensions_equal(x, y));
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "a", "3");
    assert_false(cpex_extensions_equal(x, y));
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "A", NULL);
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "a", "1");
    assert_false(cpex_extensions_equal(x, y)); /* "a" vs "A" */
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "a", NULL);
    cpex_extensions_set_header(y, CPEX_HEADERS_REQUEST, "A", "1");
    assert_true(cpex_extensions_equal(x, y));
    cpex_extensions_set_header(y, CPEX_HEADERS_RESPONSE, "A", "1");
    assert_false(cpex_extensions_equal(x, y));
    cpex_extensions_unref(x);
    cpex_extensions_unref(y);
    /* Custom: compared as JSON; an empty object equals none. */
    x = cpex_extensions_new();
    y = cpex_extensions_new();
    cpex_extensions_set_custom(x, "k", json_pack("{s:i}", "a", 1));
    cpex_extensions_set_custom(y, "k", json_pack("{s:i}", "a", 1));
    assert_true(cpex_extensions_equal(x, y));
    cpex_extensions_set_custom(y, "k", json_pack("{s:i}", "a", 2));
    assert_false(cpex_extensions_equal(x, y));
    cpex_extensions_set_custom(x, "k", NULL);
    cpex_extensions_set_custom(y, "k", NULL);
    assert_true(cpex_extensions_equal(x, y));
    assert_true(cpex_extensions_equal(x, NULL));
    cpex_extensions_unref(x);
    cpex_extensions_unref(y);
    cpex_extensions_unref(a);
    cpex_extensions_unref(b);
}

static void test_hostile_numbers(void **state)
{
    (void)state;
    cpex_extensions *e = make_full();
    json_t *before = cpex_extensions_to_json(e);
    for (size_t i = 0; i < HOSTILE_N; i++) {
        uint32_t f = hostile_fields[i];
        assert_int_equal(cpex__ext_field_kind_of(f), CPEX_EXT_KIND_NONE);
        assert_int_equal(cpex_extensions_set(e, f, "x"), CPEX_E_INVALID);
        assert_int_equal(cpex_extensions_set(e, f, NULL), CPEX_E_INVALID);
        assert_int_equal(cpex_extensions_add(e, f, "x"), CPEX_E_INVALID);
        assert_null(cpex_extensions_get(e, f));
        assert_null(cpex__extensions_get_str(e, f).ptr);
        assert_int_equal(cpex_extensions_count(e, f), 0);
        assert_null(cpex_extensions_item(e, f, 0));
        assert_null(cpex__extensions_item_str(e, f, 0).ptr);
        /* Header sets: only 0 and 1 exist. */
        uint32_t set = f < 2 ? f + 2 : f;
        assert_int_equal(cpex_extensions_set_header(e, set, "X-A", "1"), CPEX_E_INVALID);
        assert_int_equal(cpex_extensions_set_header(e, set, "X-A", NULL), CPEX_E_INVALID);
        assert_null(cpex_extensions_header(e, set, "Content-Type"));
        assert_int_equal(cpex_extensions_header_count(e, set), 0);
        const char *v = "stale";
        assert_null(cpex_extensions_header_at(e, set, 0, &v));
        assert_null(v);
        assert_false(cpex__extensions_header_at_str(e, set, 0, NULL, NULL));
    }
    json_t *after = cpex_extensions_to_json(e);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    cpex_extensions_unref(e);

    /* NULL objects everywhere. */
    assert_int_equal(cpex_extensions_set(NULL, CPEX_EXT_ENTITY_TYPE, "x"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_add(NULL, CPEX_EXT_TAGS, "x"), CPEX_E_INVALID);
    assert_int_equal(cpex_extensions_set_header(NULL, 0, "A", "b"), CPEX_E_INVALID);
    assert_null(cpex_extensions_get(NULL, CPEX_EXT_ENTITY_TYPE));
    assert_int_equal(cpex_extensions_count(NULL, CPEX_EXT_TAGS), 0);
    assert_null(cpex_extensions_item(NULL, CPEX_EXT_TAGS, 0));
    assert_null(cpex_extensions_header(NULL, 0, "A"));
    assert_int_equal(cpex_extensions_header_count(NULL, 0), 0);
    assert_null(cpex_extensions_header_at(NULL, 0, 0, NULL));
    assert_null(cpex_extensions_custom(NULL, "k"));
    assert_null(cpex__extensions_custom_object(NULL));
}

/* ---- out of memory: every failure leaves the object as it was ---- */

typedef cpex_status (*mutation)(cpex_extensions *e);

static cpex_status m_set(cpex_extensions *e)
{
    return cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "bob");
}
static cpex_status m_add_label(cpex_extensions *e)
{
    return cpex_extensions_add(e, CPEX_EXT_LABELS, "new");
}
static cpex_status m_add_grow(cpex_extensions *e)
{
    return cpex_extensions_add(e, CPEX_EXT_ROLES, "r3");
}
static cpex_status m_add_first(cpex_extensions *e)
{
    return cpex_extensions_add(e, CPEX_EXT_TAGS, "first");
}
static cpex_status m_hdr_new(cpex_extensions *e)
{
    return cpex_extensions_set_header(e, CPEX_HEADERS_RESPONSE, "X-New", "v");
}
static cpex_status m_hdr_replace(cpex_extensions *e)
{
    return cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "x-trace", "v2");
}
static cpex_status m_custom_new(cpex_extensions *e)
{
    return cpex_extensions_set_custom(e, "added", json_string("v"));
}
static cpex_status m_custom_first(cpex_extensions *e)
{
    return cpex_extensions_set_custom(e, "first", json_true());
}

static void run_mutation_oom(cpex_extensions *(*make)(void), mutation m)
{
    for (uint64_t n = 1;; n++) {
        cpex_extensions *e = make();
        cpex_extensions *snapshot = cpex_extensions_copy(e);
        cpex__alloc_fail_at(n);
        cpex_status st = m(e);
        int failed = cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (st == CPEX_E_NOMEM) {
            assert_true(failed);
            assert_true(cpex_extensions_equal(e, snapshot));
        } else {
            assert_int_equal(st, CPEX_OK);
        }
        cpex_extensions_unref(e);
        cpex_extensions_unref(snapshot);
        if (!failed)
            break;
        assert_true(n < 1000);
    }
}

static cpex_extensions *make_empty(void) { return cpex_extensions_new(); }

static void test_oom_mutations(void **state)
{
    (void)state;
    mutation ms[] = {m_set,     m_add_label,   m_add_grow,   m_add_first,
                     m_hdr_new, m_hdr_replace, m_custom_new, m_custom_first};
    for (size_t i = 0; i < CPEX__COUNT(ms); i++) {
        run_mutation_oom(make_full, ms[i]);
        run_mutation_oom(make_empty, ms[i]);
    }
}

/* Writing custom values on a copy (the copy-on-write path) under OOM. */
static void test_oom_custom_cow(void **state)
{
    (void)state;
    cpex_extensions *orig = make_full();
    json_t *want = parse(full_json);
    for (int op = 0; op < 3; op++) {
        for (uint64_t n = 1;; n++) {
            cpex_extensions *c = cpex_extensions_copy(orig);
            cpex__alloc_fail_at(n);
            /* json_true() and NULL allocate nothing: only our copy can fail. */
            cpex_status st = op == 0   ? cpex_extensions_set_custom(c, "added", json_true())
                             : op == 1 ? cpex_extensions_set_custom(c, "tenant", NULL)
                                       : cpex_extensions_set_custom(c, "tenant", json_false());
            int failed = cpex__alloc_failed();
            cpex__alloc_fail_at(0);
            if (st == CPEX_E_NOMEM)
                assert_true(cpex_extensions_equal(c, orig));
            else
                assert_int_equal(st, CPEX_OK);
            json_t *j = cpex_extensions_to_json(orig);
            assert_true(json_equal(j, want));
            json_decref(j);
            cpex_extensions_unref(c);
            if (!failed)
                break;
        }
    }
    json_decref(want);
    cpex_extensions_unref(orig);
}

static void test_oom_copy_and_json(void **state)
{
    (void)state;
    cpex_extensions *e = make_full();
    json_t *want = parse(full_json);
    int done = 0;
    for (uint64_t n = 1; !done; n++) {
        cpex__alloc_fail_at(n);
        cpex_extensions *c = cpex_extensions_copy(e);
        done = !cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (c) /* never a silently incomplete copy */
            assert_true(cpex_extensions_equal(e, c));
        else
            assert_false(done);
        cpex_extensions_unref(c);
    }
    done = 0;
    for (uint64_t n = 1; !done; n++) {
        cpex__alloc_fail_at(n);
        json_t *j = cpex_extensions_to_json(e);
        done = !cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (j)
            assert_true(json_equal(j, want));
        else
            assert_false(done);
        json_decref(j);
    }
    done = 0;
    for (uint64_t n = 1; !done; n++) {
        cpex_error err = CPEX_ERROR_INIT;
        cpex__alloc_fail_at(n);
        cpex_extensions *back = cpex_extensions_from_json(want, &err);
        done = !cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (back) {
            assert_true(cpex_extensions_equal(e, back));
            assert_int_equal(err.count, 0);
        } else {
            assert_false(done);
            /* The error item itself may have been the failed allocation. */
            if (err.count)
                assert_int_equal(err.code, CPEX_E_NOMEM);
        }
        cpex_extensions_unref(back);
        cpex_error_cleanup(&err);
    }
    json_decref(want);
    cpex_extensions_unref(e);
}

/* ------------------------------------------------------------------ */
/* The meta record (extensions_internal.h): what the router reads      */
/* ------------------------------------------------------------------ */

/* The record `ext` would have if it were computed now from its fields. */
static void assert_meta_fresh(const cpex_extensions *ext)
{
    const cpex__ext_meta *m = cpex__extensions_meta_of(ext);
    cpex_str type = cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_TYPE);
    cpex_str name = cpex__extensions_get_str(ext, CPEX_EXT_ENTITY_NAME);
    cpex_str scope = cpex__extensions_get_str(ext, CPEX_EXT_SCOPE);
    assert_ptr_equal(m->type.ptr, type.ptr);
    assert_ptr_equal(m->name.ptr, name.ptr);
    assert_ptr_equal(m->scope.ptr, scope.ptr);
    assert_int_equal(m->tag_count, cpex_extensions_count(ext, CPEX_EXT_TAGS));
    /* The parts, each made when it was set. */
    uint32_t type_id = type.ptr ? cpex__entity_type_id(type) : 0;
    assert_int_equal(m->type_id, type_id);
    assert_true(m->type_hash == (type.ptr && !type_id ? cpex__hash_bytes(type.ptr, type.len) : 0));
    assert_true(m->name_hash == (name.ptr ? cpex__hash_bytes(name.ptr, name.len) : 0));
    assert_true(m->scope_hash == (scope.ptr ? cpex__hash_bytes(scope.ptr, scope.len) : 0));
    uint64_t w0 = 0, w1 = 0;
    if (name.ptr)
        cpex__hash_words(name.ptr, name.len, &w0, &w1);
    assert_true(m->name_w0 == w0 && m->name_w1 == w1);
    /* The flags: the router reads nothing else without them. */
    bool keyed = type.ptr && name.ptr;
    assert_int_equal(m->keyed, keyed);
    assert_int_equal(m->plain, keyed && m->tag_count == 0);
    bool words = keyed && type_id && !scope.ptr && name.len <= 16;
    assert_int_equal(m->words_only, words);
    assert_int_equal(m->fast, words && m->tag_count == 0);
    if (keyed) {
        assert_int_equal(m->small, cpex__ext_meta_small(type_id, scope.ptr != NULL, name.len));
        cpex__ext_meta again = *m;
        assert_true(m->hash == cpex__ext_entity_hash(&again));
    } else {
        assert_true(m->hash == 0);
    }
}

static void test_meta_record(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    assert_meta_fresh(e);
    assert_false(cpex__extensions_meta_of(e)->keyed);
    /* Every write to type, name, scope and tags, in any order, keeps it fresh. */
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "get_weather"), CPEX_OK);
    assert_meta_fresh(e);
    assert_false(cpex__extensions_meta_of(e)->keyed);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool"), CPEX_OK);
    assert_meta_fresh(e);
    const cpex__ext_meta *m = cpex__extensions_meta_of(e);
    assert_true(m->fast);
    assert_int_equal(m->type_id, CPEX__ENTITY_TOOL);
    uint64_t tool_hash = m->hash;
    /* The same entity set the other way round: the same hash. */
    cpex_extensions *f = cpex_extensions_new();
    cpex_extensions_set(f, CPEX_EXT_ENTITY_TYPE, "tool");
    cpex_extensions_set(f, CPEX_EXT_ENTITY_NAME, "get_weather");
    assert_true(cpex__extensions_meta_of(f)->hash == tool_hash);
    cpex_extensions_unref(f);
    static const char *const types[] = {"llm", "tool", "prompt", "resource", "http", "Tool", ""};
    static const uint32_t ids[] = {
        CPEX__ENTITY_LLM, CPEX__ENTITY_TOOL, CPEX__ENTITY_PROMPT, CPEX__ENTITY_RESOURCE, 0, 0, 0};
    for (size_t i = 0; i < CPEX__COUNT(types); i++) {
        assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, types[i]), CPEX_OK);
        assert_meta_fresh(e);
        assert_int_equal(m->type_id, ids[i]);
        assert_int_equal(m->words_only, ids[i] != 0);
    }
    cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool");
    assert_true(m->hash == tool_hash);
    /* Names of every length around the two words. */
    static const char *const names[] = {"",
                                        "a",
                                        "abcdefg",
                                        "abcdefgh",
                                        "abcdefghi",
                                        "abcdefghijklmnop",
                                        "abcdefghijklmnopq",
                                        "a much longer tool name, 33 bytes"};
    for (size_t i = 0; i < CPEX__COUNT(names); i++) {
        assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, names[i]), CPEX_OK);
        assert_meta_fresh(e);
        assert_int_equal(m->words_only, strlen(names[i]) <= 16);
    }
    cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "get_weather");
    assert_true(m->hash == tool_hash);
    /* A scope changes the hash and leaves the words' fast path. */
    cpex_extensions_set(e, CPEX_EXT_SCOPE, "hr");
    assert_meta_fresh(e);
    assert_true(m->hash != tool_hash);
    assert_false(m->fast);
    cpex_extensions_set(e, CPEX_EXT_SCOPE, NULL);
    assert_meta_fresh(e);
    assert_true(m->hash == tool_hash && m->fast);
    /* Other fields do not touch it. */
    cpex_extensions_set(e, CPEX_EXT_REQUEST_ID, "r-1");
    cpex_extensions_add(e, CPEX_EXT_ROLES, "admin");
    assert_meta_fresh(e);
    assert_true(m->fast);
    /* Tags: counted, off the fast path, the hash unchanged (tags join the key in the router). */
    cpex_extensions_add(e, CPEX_EXT_TAGS, "pii");
    assert_meta_fresh(e);
    assert_false(m->plain || m->fast);
    assert_true(m->hash == tool_hash);
    /* Unsetting the name: no entity. */
    cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, NULL);
    assert_meta_fresh(e);
    assert_false(m->keyed);
    cpex_extensions_unref(e);
}

static void test_meta_record_copy_on_write(void **state)
{
    (void)state;
    cpex_extensions *e = cpex_extensions_new();
    cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool");
    cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "get_weather");
    const cpex__ext_meta *m = cpex__extensions_meta_of(e);
    uint64_t hash = m->hash;
    /* A copy shares the body, so the record too. */
    cpex_extensions *c = cpex_extensions_copy(e);
    assert_ptr_equal(cpex__extensions_meta_of(c), m);
    /* A write elsewhere clones the body: the clone's record is the same
     * entity, and stays valid once the original is gone. */
    assert_int_equal(cpex_extensions_set_header(c, CPEX_HEADERS_REQUEST, "x-a", "1"), CPEX_OK);
    const cpex__ext_meta *cm = cpex__extensions_meta_of(c);
    assert_ptr_not_equal(cm, m);
    assert_meta_fresh(c);
    assert_true(cm->hash == hash && cm->fast);
    cpex_extensions_unref(e);
    assert_meta_fresh(c);
    assert_memory_equal(cm->name.ptr, "get_weather", 11);
    /* A write to the entity of a copy: the copy's record follows, the
     * original's does not. */
    e = cpex_extensions_copy(c);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "search_docs"), CPEX_OK);
    assert_meta_fresh(e);
    assert_meta_fresh(c);
    assert_true(cpex__extensions_meta_of(e)->hash != hash);
    assert_true(cpex__extensions_meta_of(c)->hash == hash);
    /* A view reads the body it was made from, record included. */
    cpex_extensions *view = cpex__calloc(1, cpex__extensions_size);
    assert_non_null(view);
    cpex__extensions_view_init(view, c);
    assert_ptr_equal(cpex__extensions_meta_of(view), cpex__extensions_meta_of(c));
    cpex_extensions_set(c, CPEX_EXT_ENTITY_TYPE, "resource"); /* c moves to a body of its own */
    assert_meta_fresh(c);
    assert_meta_fresh(view);
    assert_int_equal(cpex__extensions_meta_of(view)->type_id, CPEX__ENTITY_TOOL);
    cpex__extensions_view_release(view);
    cpex__free(view);
    /* The JSON form round trip rebuilds it with the setters. */
    json_t *j = cpex_extensions_to_json(e);
    cpex_extensions *back = cpex_extensions_from_json(j, NULL);
    assert_non_null(back);
    assert_meta_fresh(back);
    assert_true(cpex__extensions_meta_of(back)->hash == cpex__extensions_meta_of(e)->hash);
    json_decref(j);
    cpex_extensions_unref(back);
    cpex_extensions_unref(e);
    cpex_extensions_unref(c);
}

int main(void)
{
    /* Route jansson through cpex__malloc so injected failures reach it too. */
    cpex__alloc_hook_jansson();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_is_empty),
        cmocka_unit_test(test_single_fields),
        cmocka_unit_test(test_list_fields),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_custom),
        cmocka_unit_test(test_copy_independence),
        cmocka_unit_test(test_custom_copy_on_write),
        cmocka_unit_test(test_view_outlives_and_ignores_writes),
        cmocka_unit_test(test_copy_shares_until_written),
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_threads_share),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_from_json_errors),
        cmocka_unit_test(test_from_json_deep_custom),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_hostile_numbers),
        cmocka_unit_test(test_oom_mutations),
        cmocka_unit_test(test_oom_custom_cow),
        cmocka_unit_test(test_oom_copy_and_json),
        cmocka_unit_test(test_meta_record),
        cmocka_unit_test(test_meta_record_copy_on_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
