/* test_cmf_errors.c — CMF messages: every class of bad input, the nesting
 * cap, and allocation failure at every step. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/cmf.h"
#include "cpex/json.h"
#include "test_support.h"
#include "util/alloc.h"

#define MSG(parts) "{\"role\":\"user\",\"content\":[" parts "]}"
#define BODY(kind, body) MSG("{\"content_type\":\"" kind "\",\"content\":{" body "}}")

/* Parses `text`, expects failure with exactly one item containing every
 * non-NULL needle. */
static void expect_error(const char *text, const char *needle1, const char *needle2)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_parse(text, strlen(text), &err);
    if (m)
        print_error("unexpectedly accepted: %s\n", text);
    assert_null(m);
    assert_int_equal(err.count, 1);
    assert_int_equal(err.code, CPEX_E_INVALID);
    const char *msg = cpex_error_message(&err);
    assert_null(strchr(msg, '\n'));
    if (needle1)
        assert_contains(msg, needle1);
    if (needle2)
        assert_contains(msg, needle2);
    cpex_error_cleanup(&err);
}

static void expect_json_error(json_t *json, const char *needle)
{
    cpex_error err = CPEX_ERROR_INIT;
    assert_null(cpex_cmf_from_json(json, &err));
    assert_int_equal(err.count, 1);
    assert_contains(cpex_error_message(&err), needle);
    cpex_error_cleanup(&err);
    json_decref(json);
}

static void test_not_json_or_not_an_object(void **state)
{
    (void)state;
    expect_error("{\"role\":", "message: invalid JSON at line 1", NULL);
    expect_error("", "message: invalid JSON", NULL);
    expect_error("{\"role\":\"user\",\"role\":\"tool\"}", "invalid JSON", "duplicate");
    expect_error(MSG("{\"content_type\":\"text\",\"text\":\"a\\u0000b\"}"), "invalid JSON", NULL);
    expect_error("[]", "message: expected a message object, got an array", NULL);
    expect_error("\"user\"", "message: expected a message object, got a string", NULL);

    cpex_error err = CPEX_ERROR_INIT;
    assert_null(cpex_cmf_parse(NULL, 0, &err));
    assert_contains(cpex_error_message(&err), "no JSON text");
    cpex_error_cleanup(&err);
    assert_null(cpex_cmf_from_json(NULL, &err));
    assert_contains(cpex_error_message(&err), "message: expected a message object, got nothing");
    cpex_error_cleanup(&err);
    /* A NULL error object is allowed. */
    assert_null(cpex_cmf_parse("[]", 2, NULL));
}

static void test_message_level_errors(void **state)
{
    (void)state;
    expect_error("{}", "role: required field is missing", NULL);
    expect_error("{\"role\":5}", "role: expected a string, got an integer", NULL);
    expect_error("{\"role\":null}", "role: expected a string, got null", NULL);
    expect_error("{\"role\":\"robot\"}", "role: unknown role \"robot\"",
                 "expected one of system, developer, user, assistant, tool");
    expect_error("{\"role\":\"User\"}", "role: unknown role \"User\"", NULL);
    expect_error("{\"role\":\"user\",\"channel\":\"loud\"}", "channel: unknown channel \"loud\"",
                 "analysis, commentary, final");
    expect_error("{\"role\":\"user\",\"channel\":1}", "channel: expected a string, got an integer",
                 NULL);
    expect_error("{\"role\":\"user\",\"schema_version\":null}",
                 "schema_version: expected a string, got null", NULL);
    expect_error("{\"role\":\"user\",\"content\":{}}",
                 "content: expected an array of content parts, got an object", NULL);
    expect_error("{\"role\":\"user\",\"content\":null}",
                 "content: expected an array of content parts, got null", NULL);
}

static void test_echoed_values_are_sanitized(void **state)
{
    (void)state;
    /* A control character in a bad value must not reach the log as is. */
    expect_error("{\"role\":\"a\\nb\\u001b[31m\"}", "unknown role \"a?b?[31m\"", NULL);
    char long_role[400];
    memset(long_role, 'x', sizeof(long_role));
    char text[512];
    snprintf(text, sizeof(text), "{\"role\":\"%.*s\"}", (int)sizeof(long_role), long_role);
    expect_error(text, "...\"", NULL);
}

static void test_part_level_errors(void **state)
{
    (void)state;
    expect_error(MSG("\"x\""), "content[0]: expected an object, got a string", NULL);
    expect_error(MSG("{\"content_type\":\"text\",\"text\":\"a\"},[]"),
                 "content[1]: expected an object, got an array", NULL);
    expect_error(MSG("{\"text\":\"x\"}"), "content[0].content_type: required field is missing",
                 NULL);
    expect_error(MSG("{\"content_type\":7}"),
                 "content[0].content_type: expected a string, got an integer", NULL);
    expect_error(MSG("{\"content_type\":\"gif\"}"),
                 "content[0].content_type: unknown content type \"gif\"",
                 "text, thinking, tool_call");
    expect_error(MSG("{\"content_type\":\"text\"}"), "content[0].text: required field is missing",
                 NULL);
    expect_error(MSG("{\"content_type\":\"thinking\",\"text\":[]}"),
                 "content[0].text: expected a string, got an array", NULL);
    expect_error(MSG("{\"content_type\":\"text\",\"text\":\"\"},"
                     "{\"content_type\":\"tool_call\"}"),
                 "content[1].content: required field is missing", NULL);
    expect_error(MSG("{\"content_type\":\"image\",\"content\":\"https://x\"}"),
                 "content[0].content: expected an object, got a string", NULL);
}

static void test_body_errors(void **state)
{
    (void)state;
    /* The example of cmf.h, word for word. */
    expect_error(MSG("{\"content_type\":\"text\",\"text\":\"a\"},"
                     "{\"content_type\":\"thinking\",\"text\":\"b\"},"
                     "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\","
                     "\"name\":7}}"),
                 "content[2].content.name: expected a string, got an integer", NULL);
    expect_error(BODY("tool_call", "\"name\":\"n\""),
                 "content[0].content.tool_call_id: required field is missing", NULL);
    expect_error(BODY("tool_call", "\"tool_call_id\":\"1\",\"name\":\"n\",\"arguments\":[1]"),
                 "content[0].content.arguments: expected an object, got an array", NULL);
    expect_error(BODY("tool_call", "\"tool_call_id\":\"1\",\"name\":\"n\",\"arguments\":null"),
                 "content[0].content.arguments: expected an object, got null", NULL);
    expect_error(BODY("tool_call", "\"tool_call_id\":\"1\",\"name\":\"n\",\"namespace\":{}"),
                 "content[0].content.namespace: expected a string, got an object", NULL);
    expect_error(BODY("tool_result", "\"tool_call_id\":\"1\""),
                 "content[0].content.tool_name: required field is missing", NULL);
    expect_error(BODY("tool_result", "\"tool_call_id\":\"1\",\"tool_name\":\"n\",\"is_error\":1"),
                 "content[0].content.is_error: expected a boolean, got an integer", NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\""),
                 "content[0].content.uri: required field is missing", NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"resource_type\":\"disk\""),
                 "content[0].content.resource_type: unknown resource type \"disk\"",
                 "file, blob, uri, database, api, memory, artifact");
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"size_bytes\":-1"),
                 "content[0].content.size_bytes: expected a non-negative integer, got -1", NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"size_bytes\":1.5"),
                 "content[0].content.size_bytes: expected a non-negative integer, got a real",
                 NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"blob\":[1,2,300]"),
                 "content[0].content.blob[2]: expected an integer 0-255, got 300", NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"blob\":[\"a\"]"),
                 "content[0].content.blob[0]: expected an integer 0-255, got a string", NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"blob\":\"AAEC\""),
                 "content[0].content.blob: expected an array of bytes", NULL);
    expect_error(BODY("resource", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                  "\"annotations\":[]"),
                 "content[0].content.annotations: expected an object, got an array", NULL);
    expect_error(BODY("resource_ref", "\"resource_request_id\":\"r\",\"uri\":\"u\","
                                      "\"range_end\":\"7\""),
                 "content[0].content.range_end: expected a non-negative integer, got a string",
                 NULL);
    expect_error(BODY("prompt_request", "\"prompt_request_id\":\"p\""),
                 "content[0].content.name: required field is missing", NULL);
    expect_error(BODY("prompt_result", "\"prompt_request_id\":\"p\",\"prompt_name\":\"n\","
                                       "\"messages\":{}"),
                 "content[0].content.messages: expected an array of messages, got an object", NULL);
    expect_error(BODY("video", "\"type\":\"url\""), "content[0].content.data: required field",
                 NULL);
    expect_error(BODY("audio", "\"type\":\"url\",\"data\":\"d\",\"duration_ms\":-5"),
                 "content[0].content.duration_ms: expected a non-negative integer, got -5", NULL);
    expect_error(BODY("document", "\"type\":\"url\",\"data\":\"d\",\"title\":false"),
                 "content[0].content.title: expected a string, got a boolean", NULL);
}

static void test_errors_inside_nested_messages(void **state)
{
    (void)state;
    expect_error(BODY("prompt_result",
                      "\"prompt_request_id\":\"p\",\"prompt_name\":\"n\",\"messages\":["
                      "{\"role\":\"user\"},{\"role\":\"user\",\"content\":["
                      "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\"}}]}]"),
                 "content[0].content.messages[1].content[0].content.name: required field", NULL);
    expect_error(BODY("prompt_result", "\"prompt_request_id\":\"p\",\"prompt_name\":\"n\","
                                       "\"messages\":[{\"role\":\"bot\"}]"),
                 "content[0].content.messages[0].role: unknown role \"bot\"", NULL);
    expect_error(BODY("prompt_result", "\"prompt_request_id\":\"p\",\"prompt_name\":\"n\","
                                       "\"messages\":[3]"),
                 "content[0].content.messages[0]: expected a message object, got an integer", NULL);
}

static void test_strings_that_cannot_go_in(void **state)
{
    (void)state;
    /* Hosts can build such strings with jansson even though the parser refuses them. */
    json_t *j = json_pack("{s:s,s:[{s:s,s:o}]}", "role", "user", "content", "content_type", "text",
                          "text", json_stringn("safe\0DROP", 9));
    expect_json_error(j, "content[0].text: contains a NUL character");
    j = json_pack("{s:s,s:[{s:s,s:{s:s,s:o}}]}", "role", "user", "content", "content_type",
                  "tool_call", "content", "tool_call_id", "1", "name",
                  json_stringn_nocheck("\xff\xfe", 2));
    expect_json_error(j, "content[0].content.name: is not valid UTF-8");
}

/* ---- nesting cap ----------------------------------------------------- */

/* A message with `levels` prompt_result levels below it, in the canonical
 * form (every defaulted field written) so that it round-trips exactly. */
static json_t *nested(int levels)
{
    json_t *m = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "schema_version", "2.0", "role", "tool",
                          "content", "content_type", "text", "text", "bottom");
    for (int i = 0; i < levels; i++)
        m = json_pack("{s:s,s:s,s:[{s:s,s:{s:s,s:s,s:[o],s:b}}]}", "schema_version", "2.0", "role",
                      "assistant", "content", "content_type", "prompt_result", "content",
                      "prompt_request_id", "p", "prompt_name", "n", "messages", m, "is_error", 0);
    assert_non_null(m);
    return m;
}

static void test_nesting_cap(void **state)
{
    (void)state;
    json_t *ok = nested(32);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_from_json(ok, &err);
    assert_non_null(m);
    json_t *back = cpex_cmf_to_json(m);
    assert_true(json_equal(ok, back));
    cpex_cmf_message *copy = cpex_cmf_clone(m);
    assert_true(cpex_cmf_equal(m, copy));
    cpex_cmf_free(copy);
    json_decref(back);
    cpex_cmf_free(m);
    json_decref(ok);

    json_t *deep = nested(33);
    m = cpex_cmf_from_json(deep, &err);
    assert_null(m);
    assert_int_equal(err.count, 1);
    const char *msg = cpex_error_message(&err);
    assert_contains(msg, "nested more than 32 levels deep");
    assert_contains(msg, "content[0].content.messages[0].content[0].content.messages[0]");
    cpex_error_cleanup(&err);
    json_decref(deep);

    /* Far deeper input stops at the cap too (no stack growth with input). */
    deep = nested(1000);
    m = cpex_cmf_from_json(deep, &err);
    assert_null(m);
    assert_contains(cpex_error_message(&err), "32 levels");
    cpex_error_cleanup(&err);
    json_decref(deep);
}

/* ---- allocation failure ---------------------------------------------- */

static const char *const rich =
    "{\"role\":\"assistant\",\"channel\":\"final\",\"schema_version\":\"2.1\",\"content\":["
    "{\"content_type\":\"text\",\"text\":\"hello\"},"
    "{\"content_type\":\"thinking\",\"text\":\"hm\"},"
    "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"n\","
    "\"arguments\":{\"a\":[1,{\"b\":2}]},\"namespace\":\"ns\"}},"
    "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\",\"tool_name\":\"n\","
    "\"content\":{\"r\":[1,2]}}},"
    "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"r\",\"uri\":\"u\","
    "\"blob\":[1,2,3],\"annotations\":{\"x\":true},\"size_bytes\":3,\"name\":\"nm\"}},"
    "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":\"r\","
    "\"uri\":\"u\",\"range_start\":1}},"
    "{\"content_type\":\"prompt_request\",\"content\":{\"prompt_request_id\":\"p\","
    "\"name\":\"n\",\"arguments\":{\"k\":\"v\"}}},"
    "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"p\","
    "\"prompt_name\":\"n\",\"messages\":[{\"role\":\"user\",\"channel\":\"analysis\","
    "\"content\":[{\"content_type\":\"text\",\"text\":\"in\"},{\"content_type\":\"tool_call\","
    "\"content\":{\"tool_call_id\":\"2\",\"name\":\"m\",\"arguments\":{\"z\":1}}}]},"
    "{\"role\":\"tool\"}],\"content\":\"c\"}},"
    "{\"content_type\":\"image\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
    "{\"content_type\":\"video\",\"content\":{\"type\":\"url\",\"data\":\"d\","
    "\"duration_ms\":4}},"
    "{\"content_type\":\"audio\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
    "{\"content_type\":\"document\",\"content\":{\"type\":\"url\",\"data\":\"d\","
    "\"title\":\"t\"}}]}";

static cpex_cmf_message *rich_message(void)
{
    cpex_cmf_message *m = cpex_cmf_parse(rich, strlen(rich), NULL);
    assert_non_null(m);
    return m;
}

/* Runs `step` with the n-th allocation failing, for n = first, first+1, …
 * until a run sees no failure. `step` returns whether its operation saw
 * the injected failure and checks its own outcome; ASan checks leaks. */
static void each_failure_from(uint64_t first, int (*step)(void *ctx), void *ctx)
{
    cpex__alloc_hook_jansson();
    for (uint64_t n = first; n < 100000; n++) {
        cpex__alloc_fail_at(n);
        if (!step(ctx)) {
            assert_true(n > first); /* the operation allocates: something was tried */
            return;
        }
    }
    fail_msg("allocation failure loop did not end");
}

static void each_failure(int (*step)(void *ctx), void *ctx) { each_failure_from(1, step, ctx); }

/* Whether the injected failure happened; stops injecting either way so the
 * checks that follow can allocate. */
static int injected_failure(void)
{
    int failed = cpex__alloc_failed();
    cpex__alloc_fail_at(0);
    return failed;
}

static int from_json_step(void *ctx)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_from_json(ctx, &err);
    int failed = injected_failure();
    if (failed) {
        assert_null(m);
        assert_int_equal(err.code, CPEX_E_NOMEM);
        assert_contains(cpex_error_message(&err), "out of memory");
    } else {
        assert_non_null(m);
        assert_int_equal(err.count, 0);
    }
    cpex_error_cleanup(&err);
    cpex_cmf_free(m);
    return failed;
}

static int parse_step(void *ctx)
{
    (void)ctx;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_parse(rich, strlen(rich), &err);
    int failed = injected_failure();
    if (failed) {
        assert_null(m);
        assert_true(err.count >= 1);
    } else {
        assert_non_null(m);
        assert_int_equal(err.count, 0);
    }
    cpex_error_cleanup(&err);
    cpex_cmf_free(m);
    return failed;
}

static void test_parse_under_allocation_failure(void **state)
{
    (void)state;
    json_t *doc = json_loads(rich, 0, NULL);
    each_failure(from_json_step, doc);
    json_decref(doc);

    /* jansson 2.14's loader overflows a buffer when an allocation fails
     * mid-string (lex_save ignores strbuffer_append_byte's result), so the
     * failures start after json_loadb's own allocations. */
    cpex__alloc_hook_jansson();
    cpex__alloc_count_reset();
    doc = json_loadb(rich, strlen(rich), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    uint64_t loader_allocs = cpex__alloc_count();
    json_decref(doc);
    each_failure_from(loader_allocs + 1, parse_step, NULL);
}

static int clone_step(void *ctx)
{
    const cpex_cmf_message *m = ctx;
    cpex_cmf_message *c = cpex_cmf_clone(m);
    int failed = injected_failure();
    if (failed) {
        assert_null(c);
    } else {
        assert_non_null(c);
        assert_true(cpex_cmf_equal(m, c));
    }
    cpex_cmf_free(c);
    return failed;
}

static int dump_step(void *ctx)
{
    const cpex_cmf_message *m = ctx;
    char *text = cpex_cmf_dump(m);
    int failed = injected_failure();
    if (failed) {
        assert_null(text);
    } else {
        assert_non_null(text);
        cpex_cmf_message *again = cpex_cmf_parse(text, strlen(text), NULL);
        assert_true(cpex_cmf_equal(m, again));
        cpex_cmf_free(again);
    }
    free(text);
    return failed;
}

static int text_content_step(void *ctx)
{
    char *t = cpex_cmf_text_content(ctx);
    int failed = injected_failure();
    if (failed)
        assert_null(t);
    else
        assert_string_equal(t, "hello");
    free(t);
    return failed;
}

static void test_clone_and_write_under_allocation_failure(void **state)
{
    (void)state;
    cpex_cmf_message *m = rich_message();
    each_failure(clone_step, m);
    each_failure(dump_step, m);
    each_failure(text_content_step, m);
    cpex_cmf_free(m);
}

/* Each mutator either succeeds or returns CPEX_E_NOMEM leaving the message
 * as it was (remove_part tolerates a failed shrink and succeeds). */
static cpex_status mutate(cpex_cmf_message *m, int which)
{
    switch (which) {
    case 0: return cpex_cmf_append_text(m, CPEX_PART_TEXT, "more", 4);
    case 1: return cpex_cmf_append_tool_call(m, "9", "t", json_pack("{s:i}", "a", 1), "ns");
    case 2: return cpex_cmf_append_tool_call(m, "9", "t", NULL, NULL);
    case 3: return cpex_cmf_append_tool_result(m, "9", "t", json_pack("[i]", 1), 1);
    case 4: return cpex_cmf_append_tool_result(m, "9", "t", NULL, 0);
    case 5: return cpex_cmf_set_text(m, 0, "new text", 8);
    case 6: return cpex_cmf_set_tool_arguments(m, 2, json_pack("{s:s}", "q", "r"));
    case 7: return cpex_cmf_set_tool_arguments(m, 2, NULL);
    case 8: return cpex_cmf_set_tool_result_content(m, 3, json_pack("{s:b}", "ok", 1));
    case 9: return cpex_cmf_set_tool_result_content(m, 3, NULL);
    default: return cpex_cmf_remove_part(m, 7);
    }
}

/* The last mutation, remove_part, allocates nothing. */
#define MUTATIONS 11

static void test_mutators_under_allocation_failure(void **state)
{
    (void)state;
    cpex__alloc_hook_jansson();
    cpex_cmf_message *before = rich_message();
    for (int which = 0; which < MUTATIONS; which++) {
        int failures = 0;
        for (uint64_t n = 1; n < 1000; n++) {
            cpex_cmf_message *m = cpex_cmf_clone(before);
            assert_non_null(m);
            /* json_pack in mutate() allocates first: failing it hands NULL
             * to the mutator, which is a valid call too. */
            cpex__alloc_fail_at(n);
            cpex_status st = mutate(m, which);
            int failed = injected_failure();
            failures += failed;
            if (failed && st != CPEX_OK) {
                assert_int_equal(st, CPEX_E_NOMEM);
                assert_true(cpex_cmf_equal(m, before));
            } else {
                assert_int_equal(st, CPEX_OK);
                assert_false(cpex_cmf_equal(m, before));
            }
            cpex_cmf_free(m);
            if (!failed)
                break;
        }
        if (which == MUTATIONS - 1)
            assert_int_equal(failures, 0);
        else
            assert_true(failures > 0);
    }
    cpex_cmf_free(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_json_or_not_an_object),
        cmocka_unit_test(test_message_level_errors),
        cmocka_unit_test(test_echoed_values_are_sanitized),
        cmocka_unit_test(test_part_level_errors),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_errors_inside_nested_messages),
        cmocka_unit_test(test_strings_that_cannot_go_in),
        cmocka_unit_test(test_nesting_cap),
        cmocka_unit_test(test_parse_under_allocation_failure),
        cmocka_unit_test(test_clone_and_write_under_allocation_failure),
        cmocka_unit_test(test_mutators_under_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
