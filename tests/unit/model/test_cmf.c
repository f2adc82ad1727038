/* test_cmf.c — CMF messages: JSON round trips, fields plugins read, clone,
 * equality, builders and mutators. Errors and OOM: test_cmf_errors.c. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpex/cmf.h"
#include "cpex/json.h"
#include "test_support.h"

/* ---- helpers --------------------------------------------------------- */

static cpex_cmf_message *parse_ok(const char *text)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_parse(text, strlen(text), &err);
    if (!m)
        print_error("parse failed: %s\ninput: %s\n", cpex_error_message(&err), text);
    assert_non_null(m);
    assert_int_equal(err.count, 0);
    cpex_error_cleanup(&err);
    return m;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        print_error("bad test JSON: %s\n%s\n", jerr.text, text);
    assert_non_null(j);
    return j;
}

static void assert_json_equal(const json_t *expected, const json_t *actual)
{
    if (json_equal(expected, actual))
        return;
    char *e = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
    char *a = json_dumps(actual, JSON_COMPACT | JSON_SORT_KEYS);
    print_error("expected: %s\nactual:   %s\n", e ? e : "(null)", a ? a : "(null)");
    free(e);
    free(a);
    fail();
}

static void assert_str(cpex_str s, const char *expected)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(expected));
    assert_memory_equal(s.ptr, expected, s.len);
    assert_int_equal(s.ptr[s.len], '\0');
}

static void assert_absent(cpex_str s)
{
    assert_null(s.ptr);
    assert_int_equal(s.len, 0);
}

/* input -> message -> JSON equals `expected` (or the input itself); the
 * dump parses back to an equal message; a clone is equal. */
static void check_round_trip(const char *input, const char *expected)
{
    json_t *in = load(input);
    json_t *want = expected ? load(expected) : json_incref(in);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *m = cpex_cmf_from_json(in, &err);
    if (!m)
        print_error("from_json failed: %s\n", cpex_error_message(&err));
    assert_non_null(m);
    json_t *out = cpex_cmf_to_json(m);
    assert_non_null(out);
    assert_json_equal(want, out);

    char *text = cpex_cmf_dump(m);
    assert_non_null(text);
    cpex_cmf_message *again = parse_ok(text);
    assert_true(cpex_cmf_equal(m, again));
    cpex_cmf_message *copy = cpex_cmf_clone(m);
    assert_non_null(copy);
    assert_true(cpex_cmf_equal(m, copy));

    cpex_cmf_free(copy);
    cpex_cmf_free(again);
    free(text);
    json_decref(out);
    cpex_cmf_free(m);
    json_decref(want);
    json_decref(in);
    cpex_error_cleanup(&err);
}

/* ---- round trips: one per kind, every field present -------------------- */

#define MSG(role, parts)                                                                           \
    "{\"schema_version\":\"2.0\",\"role\":\"" role "\",\"content\":[" parts "]}"

static void test_round_trip_text(void **state)
{
    (void)state;
    check_round_trip("{\"schema_version\":\"2.0\",\"role\":\"user\",\"content\":"
                     "[{\"content_type\":\"text\",\"text\":\"h\\u00e9llo \\\"w\\\"\\n\"},"
                     "{\"content_type\":\"text\",\"text\":\"\"}],\"channel\":\"final\"}",
                     NULL);
}

static void test_round_trip_thinking(void **state)
{
    (void)state;
    check_round_trip("{\"schema_version\":\"2.0\",\"role\":\"assistant\",\"content\":"
                     "[{\"content_type\":\"thinking\",\"text\":\"let me see\"}],"
                     "\"channel\":\"analysis\"}",
                     NULL);
}

static void test_round_trip_tool_call(void **state)
{
    (void)state;
    check_round_trip(MSG("assistant", "{\"content_type\":\"tool_call\",\"content\":"
                                      "{\"tool_call_id\":\"tc1\",\"name\":\"search\","
                                      "\"arguments\":{\"q\":\"x\",\"n\":3,\"deep\":{\"a\":"
                                      "[1,2.5,null,true,\"s\"]}},\"namespace\":\"web\"}}"),
                     NULL);
}

static void test_round_trip_tool_result(void **state)
{
    (void)state;
    check_round_trip(MSG("tool", "{\"content_type\":\"tool_result\",\"content\":"
                                 "{\"tool_call_id\":\"tc1\",\"tool_name\":\"search\","
                                 "\"content\":{\"hits\":[1,2]},\"is_error\":true}}"),
                     NULL);
    check_round_trip(MSG("tool", "{\"content_type\":\"tool_result\",\"content\":"
                                 "{\"tool_call_id\":\"tc2\",\"tool_name\":\"t\","
                                 "\"content\":\"plain\",\"is_error\":false}}"),
                     NULL);
}

static void test_round_trip_resource(void **state)
{
    (void)state;
    check_round_trip(
        MSG("assistant",
            "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"rr1\","
            "\"uri\":\"db://users/42\",\"name\":\"User\",\"description\":\"a row\","
            "\"resource_type\":\"database\",\"content\":\"text body\",\"blob\":[0,1,255,10],"
            "\"mime_type\":\"text/plain\",\"size_bytes\":1234,"
            "\"annotations\":{\"classification\":\"secret\",\"ttl\":5},\"version\":\"v1\"}}"),
        NULL);
}

static void test_round_trip_resource_ref(void **state)
{
    (void)state;
    check_round_trip(MSG("user", "{\"content_type\":\"resource_ref\",\"content\":"
                                 "{\"resource_request_id\":\"rr2\",\"uri\":\"https://x/api\","
                                 "\"name\":\"API\",\"resource_type\":\"api\",\"range_start\":0,"
                                 "\"range_end\":10,\"selector\":\"$.items[0]\"}}"),
                     NULL);
}

static void test_round_trip_prompt_request(void **state)
{
    (void)state;
    check_round_trip(MSG("user", "{\"content_type\":\"prompt_request\",\"content\":"
                                 "{\"prompt_request_id\":\"pr1\",\"name\":\"summarize\","
                                 "\"arguments\":{\"lang\":\"fr\"},\"server_id\":\"s1\"}}"),
                     NULL);
}

static void test_round_trip_prompt_result(void **state)
{
    (void)state;
    check_round_trip(
        MSG("assistant",
            "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"pr1\","
            "\"prompt_name\":\"summarize\",\"messages\":["
            "{\"schema_version\":\"2.0\",\"role\":\"system\",\"content\":"
            "[{\"content_type\":\"text\",\"text\":\"be brief\"}]},"
            "{\"schema_version\":\"1.9\",\"role\":\"user\",\"content\":"
            "[{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"t\","
            "\"name\":\"n\",\"arguments\":{}}}],\"channel\":\"commentary\"}],"
            "\"content\":\"rendered\",\"is_error\":true,\"error_message\":\"partial\"}}"),
        NULL);
}

static void test_round_trip_image(void **state)
{
    (void)state;
    check_round_trip(MSG("user", "{\"content_type\":\"image\",\"content\":{\"type\":\"url\","
                                 "\"data\":\"https://x/a.jpg\",\"media_type\":\"image/jpeg\"}}"),
                     NULL);
}

static void test_round_trip_video(void **state)
{
    (void)state;
    check_round_trip(MSG("user", "{\"content_type\":\"video\",\"content\":{\"type\":\"url\","
                                 "\"data\":\"https://x/v.mp4\",\"media_type\":\"video/mp4\","
                                 "\"duration_ms\":5000}}"),
                     NULL);
}

static void test_round_trip_audio(void **state)
{
    (void)state;
    check_round_trip(MSG("user", "{\"content_type\":\"audio\",\"content\":{\"type\":\"base64\","
                                 "\"data\":\"AAEC\",\"media_type\":\"audio/mp3\","
                                 "\"duration_ms\":0}}"),
                     NULL);
}

static void test_round_trip_document(void **state)
{
    (void)state;
    check_round_trip(MSG("developer", "{\"content_type\":\"document\",\"content\":"
                                      "{\"type\":\"base64\",\"data\":\"JVBERi0=\","
                                      "\"media_type\":\"application/pdf\",\"title\":\"Spec\"}}"),
                     NULL);
}

static void test_round_trip_all_kinds_in_one_message(void **state)
{
    (void)state;
    check_round_trip(
        "{\"schema_version\":\"2.0\",\"role\":\"assistant\",\"content\":["
        "{\"content_type\":\"text\",\"text\":\"a\"},"
        "{\"content_type\":\"thinking\",\"text\":\"b\"},"
        "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"n\","
        "\"arguments\":{}}},"
        "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\","
        "\"tool_name\":\"n\",\"content\":null,\"is_error\":false}},"
        "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"r\","
        "\"uri\":\"u\",\"resource_type\":\"memory\"}},"
        "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":\"r\","
        "\"uri\":\"u\",\"resource_type\":\"artifact\"}},"
        "{\"content_type\":\"prompt_request\",\"content\":{\"prompt_request_id\":\"p\","
        "\"name\":\"n\",\"arguments\":{}}},"
        "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"p\","
        "\"prompt_name\":\"n\",\"messages\":[],\"is_error\":false}},"
        "{\"content_type\":\"image\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
        "{\"content_type\":\"video\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
        "{\"content_type\":\"audio\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
        "{\"content_type\":\"document\",\"content\":{\"type\":\"url\",\"data\":\"d\"}}],"
        "\"channel\":\"commentary\"}",
        NULL);
}

/* ---- defaults: what the output adds or drops -------------------------- */

static void test_defaults_are_filled_in(void **state)
{
    (void)state;
    check_round_trip("{\"role\":\"user\"}",
                     "{\"schema_version\":\"2.0\",\"role\":\"user\",\"content\":[]}");
    check_round_trip(
        "{\"role\":\"assistant\",\"content\":["
        "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"n\"}},"
        "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\","
        "\"tool_name\":\"n\"}},"
        "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"r\","
        "\"uri\":\"u\",\"annotations\":{}}},"
        "{\"content_type\":\"prompt_request\",\"content\":{\"prompt_request_id\":\"p\","
        "\"name\":\"n\"}},"
        "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"p\","
        "\"prompt_name\":\"n\"}}]}",
        MSG("assistant",
            "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"n\","
            "\"arguments\":{}}},"
            "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\","
            "\"tool_name\":\"n\",\"content\":null,\"is_error\":false}},"
            "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"r\","
            "\"uri\":\"u\",\"resource_type\":\"file\"}},"
            "{\"content_type\":\"prompt_request\",\"content\":{\"prompt_request_id\":\"p\","
            "\"name\":\"n\",\"arguments\":{}}},"
            "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"p\","
            "\"prompt_name\":\"n\",\"messages\":[],\"is_error\":false}}"));
}

static void test_unknown_keys_and_nulls_are_dropped(void **state)
{
    (void)state;
    /* Unknown keys are ignored (as CPEX does); null optional fields are absent;
     * fields of another media kind (duration on an image) are not kept. */
    check_round_trip(
        "{\"role\":\"user\",\"extensions\":{\"x\":1},\"channel\":null,\"content\":["
        "{\"content_type\":\"text\",\"text\":\"t\",\"extra\":1},"
        "{\"content_type\":\"image\",\"content\":{\"type\":\"url\",\"data\":\"d\","
        "\"duration_ms\":5,\"title\":\"x\",\"media_type\":null,\"zzz\":[1]}},"
        "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"n\","
        "\"namespace\":null}}]}",
        MSG("user", "{\"content_type\":\"text\",\"text\":\"t\"},"
                    "{\"content_type\":\"image\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
                    "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\","
                    "\"name\":\"n\",\"arguments\":{}}}"));
}

static void test_empty_optional_is_not_absent(void **state)
{
    (void)state;
    const char *text = MSG("user", "{\"content_type\":\"resource\",\"content\":"
                                   "{\"resource_request_id\":\"\",\"uri\":\"u\",\"name\":\"\","
                                   "\"resource_type\":\"file\",\"blob\":[],\"size_bytes\":0}},"
                                   "{\"content_type\":\"resource\",\"content\":"
                                   "{\"resource_request_id\":\"r\",\"uri\":\"u\","
                                   "\"resource_type\":\"file\"}}");
    check_round_trip(text, NULL);
    cpex_cmf_message *m = parse_ok(text);
    const cpex_cmf_resource *empty = m->parts[0].body;
    const cpex_cmf_resource *absent = m->parts[1].body;
    assert_str(empty->resource_request_id, "");
    assert_str(empty->name, "");
    assert_non_null(empty->blob.ptr);
    assert_int_equal(empty->blob.len, 0);
    assert_int_equal(empty->size_bytes, 0);
    assert_absent(absent->name);
    assert_absent(absent->blob);
    assert_absent(absent->description);
    assert_int_equal(absent->size_bytes, -1);
    cpex_cmf_free(m);
}

/* ---- what plugins read ----------------------------------------------- */

static void test_fields_of_tool_call_message(void **state)
{
    (void)state;
    cpex_cmf_message *m =
        parse_ok("{\"role\":\"assistant\",\"channel\":\"final\",\"content\":["
                 "{\"content_type\":\"text\",\"text\":\"checking\"},"
                 "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"tc_001\","
                 "\"name\":\"get_weather\",\"arguments\":{\"city\":\"London\"}}},"
                 "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"tc_001\","
                 "\"tool_name\":\"get_weather\",\"is_error\":true}}]}");
    assert_int_equal(m->struct_size, sizeof(cpex_cmf_message));
    assert_int_equal(m->role, CPEX_ROLE_ASSISTANT);
    assert_str(m->schema_version, "2.0");
    assert_str(m->channel, "final");
    assert_int_equal(m->part_count, 3);
    for (size_t i = 0; i < m->part_count; i++)
        assert_int_equal(m->parts[i].struct_size, sizeof(cpex_cmf_part));

    assert_int_equal(m->parts[0].kind, CPEX_PART_TEXT);
    assert_str(m->parts[0].text, "checking");
    assert_null(m->parts[0].body);

    assert_int_equal(m->parts[1].kind, CPEX_PART_TOOL_CALL);
    assert_absent(m->parts[1].text);
    const cpex_cmf_tool_call *tc = m->parts[1].body;
    assert_int_equal(tc->struct_size, sizeof(cpex_cmf_tool_call));
    assert_str(tc->tool_call_id, "tc_001");
    assert_str(tc->name, "get_weather");
    assert_absent(tc->namespace_);
    const json_t *args = cpex_json_to_jansson_const(tc->arguments);
    assert_true(json_is_object(args));
    assert_string_equal(json_string_value(json_object_get(args, "city")), "London");

    const cpex_cmf_tool_result *tr = m->parts[2].body;
    assert_int_equal(tr->struct_size, sizeof(cpex_cmf_tool_result));
    assert_int_equal(tr->is_error, 1);
    assert_str(tr->tool_name, "get_weather");
    assert_non_null(tr->content);
    assert_true(json_is_null(cpex_json_to_jansson_const(tr->content)));
    cpex_cmf_free(m);
}

static void test_fields_of_resources(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(MSG(
        "tool", "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"rr1\","
                "\"uri\":\"file:///a\",\"resource_type\":\"blob\",\"blob\":[104,0,105],"
                "\"size_bytes\":3,\"annotations\":{\"k\":\"v\"}}},"
                "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"rr2\","
                "\"uri\":\"file:///b\"}},"
                "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":\"rr3\","
                "\"uri\":\"db://t\",\"resource_type\":\"database\",\"range_end\":7}}"));
    const cpex_cmf_resource *r = m->parts[0].body;
    assert_int_equal(r->struct_size, sizeof(cpex_cmf_resource));
    assert_int_equal(r->resource_type, CPEX_RESOURCE_BLOB);
    assert_int_equal(r->blob.len, 3);
    assert_memory_equal(r->blob.ptr, "h\0i", 3);
    assert_int_equal(r->size_bytes, 3);
    assert_absent(r->content);
    assert_absent(r->mime_type);
    assert_absent(r->version);
    assert_string_equal(
        json_string_value(json_object_get(cpex_json_to_jansson_const(r->annotations), "k")), "v");

    const cpex_cmf_resource *r2 = m->parts[1].body;
    assert_int_equal(r2->resource_type, CPEX_RESOURCE_FILE); /* missing means file */
    assert_true(json_is_object(cpex_json_to_jansson_const(r2->annotations)));
    assert_int_equal(json_object_size(cpex_json_to_jansson_const(r2->annotations)), 0);

    const cpex_cmf_resource_ref *rr = m->parts[2].body;
    assert_int_equal(rr->struct_size, sizeof(cpex_cmf_resource_ref));
    assert_int_equal(rr->resource_type, CPEX_RESOURCE_DATABASE);
    assert_int_equal(rr->range_start, -1);
    assert_int_equal(rr->range_end, 7);
    assert_absent(rr->selector);
    assert_str(rr->uri, "db://t");
    cpex_cmf_free(m);
}

static void test_fields_of_prompts_and_media(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(
        MSG("user", "{\"content_type\":\"prompt_request\",\"content\":{\"prompt_request_id\":\"p\","
                    "\"name\":\"n\"}},"
                    "{\"content_type\":\"video\",\"content\":{\"type\":\"url\",\"data\":\"d\"}},"
                    "{\"content_type\":\"document\",\"content\":{\"type\":\"url\",\"data\":\"d\","
                    "\"title\":\"T\"}}"));
    const cpex_cmf_prompt_request *pq = m->parts[0].body;
    assert_int_equal(pq->struct_size, sizeof(cpex_cmf_prompt_request));
    assert_true(json_is_object(cpex_json_to_jansson_const(pq->arguments)));
    assert_absent(pq->server_id);
    const cpex_cmf_media *v = m->parts[1].body;
    assert_int_equal(v->struct_size, sizeof(cpex_cmf_media));
    assert_str(v->type, "url");
    assert_int_equal(v->duration_ms, -1);
    assert_absent(v->media_type);
    assert_absent(v->title);
    const cpex_cmf_media *d = m->parts[2].body;
    assert_str(d->title, "T");
    assert_int_equal(d->duration_ms, -1);
    cpex_cmf_free(m);
}

static void test_nested_prompt_result_messages(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(
        MSG("assistant",
            "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"pr\","
            "\"prompt_name\":\"outer\",\"messages\":[{\"role\":\"user\",\"content\":["
            "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"inner\","
            "\"prompt_name\":\"inner\",\"messages\":[{\"role\":\"tool\",\"content\":["
            "{\"content_type\":\"text\",\"text\":\"deep\"}]}]}}]},{\"role\":\"system\"}]}}"));
    const cpex_cmf_prompt_result *pr = m->parts[0].body;
    assert_int_equal(pr->struct_size, sizeof(cpex_cmf_prompt_result));
    assert_str(pr->prompt_name, "outer");
    assert_int_equal(pr->is_error, 0);
    assert_absent(pr->content);
    assert_absent(pr->error_message);
    assert_int_equal(pr->message_count, 2);
    assert_int_equal(pr->messages[0]->role, CPEX_ROLE_USER);
    assert_str(pr->messages[0]->schema_version, "2.0");
    assert_int_equal(pr->messages[1]->role, CPEX_ROLE_SYSTEM);
    assert_int_equal(pr->messages[1]->part_count, 0);
    const cpex_cmf_prompt_result *inner = pr->messages[0]->parts[0].body;
    assert_int_equal(inner->message_count, 1);
    assert_int_equal(inner->messages[0]->role, CPEX_ROLE_TOOL);
    assert_str(inner->messages[0]->parts[0].text, "deep");

    char *text = cpex_cmf_text_content(inner->messages[0]);
    assert_string_equal(text, "deep");
    free(text);
    cpex_cmf_free(m);
}

/* ---- clone and equality ---------------------------------------------- */

static const char *const rich_message =
    "{\"role\":\"assistant\",\"channel\":\"final\",\"content\":["
    "{\"content_type\":\"text\",\"text\":\"hello\"},"
    "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\",\"name\":\"n\","
    "\"arguments\":{\"a\":[1,2]}}},"
    "{\"content_type\":\"resource\",\"content\":{\"resource_request_id\":\"r\",\"uri\":\"u\","
    "\"blob\":[1,2,3],\"annotations\":{\"x\":true}}},"
    "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":\"p\","
    "\"prompt_name\":\"n\",\"messages\":[{\"role\":\"user\",\"content\":"
    "[{\"content_type\":\"text\",\"text\":\"in\"}]}]}}]}";

static void test_clone_is_equal_and_independent(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(rich_message);
    char *before = cpex_cmf_dump(m);
    cpex_cmf_message *c = cpex_cmf_clone(m);
    assert_non_null(c);
    assert_true(cpex_cmf_equal(m, c));
    /* Its own parts array, the parts' content shared (nothing copied). */
    assert_ptr_not_equal(c->parts, m->parts);
    assert_ptr_equal(c->parts[0].text.ptr, m->parts[0].text.ptr);
    assert_ptr_equal(c->parts[1].body, m->parts[1].body);

    /* Changing the clone through the API leaves m as it was: a changed
     * part gets content of its own. */
    assert_int_equal(cpex_cmf_set_tool_arguments(c, 1, json_pack("{s:b}", "b", 1)), CPEX_OK);
    assert_ptr_not_equal(c->parts[1].body, m->parts[1].body);
    assert_false(cpex_cmf_equal(m, c));
    assert_int_equal(cpex_cmf_set_text(c, 0, "bye", 3), CPEX_OK);
    assert_int_equal(cpex_cmf_remove_part(c, 2), CPEX_OK);
    assert_int_equal(cpex_cmf_append_text(c, CPEX_PART_TEXT, "more", 4), CPEX_OK);
    char *after = cpex_cmf_dump(m);
    assert_string_equal(before, after);
    free(after);

    /* And the other way round: changing m leaves a second clone alone. */
    cpex_cmf_message *c2 = cpex_cmf_clone(m);
    char *c2_before = cpex_cmf_dump(c2);
    assert_int_equal(cpex_cmf_set_text(m, 0, "changed", 7), CPEX_OK);
    assert_int_equal(cpex_cmf_set_tool_arguments(m, 1, NULL), CPEX_OK);
    char *c2_after = cpex_cmf_dump(c2);
    assert_string_equal(c2_before, c2_after);

    /* A clone outlives its original. */
    cpex_cmf_free(m);
    char *c2_last = cpex_cmf_dump(c2);
    assert_string_equal(c2_before, c2_last);
    free(c2_before);
    free(c2_after);
    free(c2_last);
    cpex_cmf_free(c2);
    free(before);
    cpex_cmf_free(c);
}

static void test_equal_sees_every_difference(void **state)
{
    (void)state;
    static const char *const variants[] = {
        "{\"role\":\"user\",\"content\":[{\"content_type\":\"text\",\"text\":\"a\"}]}",
        "{\"role\":\"tool\",\"content\":[{\"content_type\":\"text\",\"text\":\"a\"}]}",
        "{\"role\":\"user\",\"schema_version\":\"1.0\",\"content\":"
        "[{\"content_type\":\"text\",\"text\":\"a\"}]}",
        "{\"role\":\"user\",\"channel\":\"final\",\"content\":"
        "[{\"content_type\":\"text\",\"text\":\"a\"}]}",
        "{\"role\":\"user\",\"content\":[{\"content_type\":\"thinking\",\"text\":\"a\"}]}",
        "{\"role\":\"user\",\"content\":[{\"content_type\":\"text\",\"text\":\"b\"}]}",
        "{\"role\":\"user\",\"content\":[]}",
        MSG("user", "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\","
                    "\"name\":\"n\",\"arguments\":{\"a\":1}}}"),
        MSG("user", "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\","
                    "\"name\":\"n\",\"arguments\":{\"a\":2}}}"),
        MSG("user", "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\","
                    "\"name\":\"n\",\"arguments\":{\"a\":2},\"namespace\":\"\"}}"),
        MSG("user", "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\","
                    "\"tool_name\":\"n\",\"is_error\":true}}"),
        MSG("user", "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"1\","
                    "\"tool_name\":\"n\"}}"),
        MSG("user", "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":"
                    "\"r\",\"uri\":\"u\",\"range_start\":1}}"),
        MSG("user", "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":"
                    "\"r\",\"uri\":\"u\",\"range_start\":2}}"),
        MSG("user", "{\"content_type\":\"resource_ref\",\"content\":{\"resource_request_id\":"
                    "\"r\",\"uri\":\"u\",\"range_start\":2,\"resource_type\":\"uri\"}}"),
        MSG("user", "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":"
                    "\"p\",\"prompt_name\":\"n\",\"messages\":[{\"role\":\"user\"}]}}"),
        MSG("user", "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":"
                    "\"p\",\"prompt_name\":\"n\",\"messages\":[{\"role\":\"tool\"}]}}"),
        MSG("user", "{\"content_type\":\"prompt_result\",\"content\":{\"prompt_request_id\":"
                    "\"p\",\"prompt_name\":\"n\"}}"),
    };
    size_t n = CPEX__COUNT(variants);
    cpex_cmf_message *msgs[CPEX__COUNT(variants)];
    for (size_t i = 0; i < n; i++)
        msgs[i] = parse_ok(variants[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (cpex_cmf_equal(msgs[i], msgs[j]) != (i == j)) {
                print_error("variants %zu and %zu: equal says %d\n", i, j, (int)(i != j));
                fail();
            }
    for (size_t i = 0; i < n; i++)
        cpex_cmf_free(msgs[i]);
    assert_true(cpex_cmf_equal(NULL, NULL));
}

/* ---- builders and mutators ------------------------------------------- */

static void test_new_and_append(void **state)
{
    (void)state;
    assert_null(cpex_cmf_new(5));
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_ASSISTANT);
    assert_non_null(m);
    assert_str(m->schema_version, "2.0");
    assert_absent(m->channel);
    assert_int_equal(m->part_count, 0);
    char *empty = cpex_cmf_dump(m);
    assert_string_equal(empty,
                        "{\"schema_version\":\"2.0\",\"role\":\"assistant\",\"content\":[]}");
    free(empty);

    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_THINKING, "hmm", 3), CPEX_OK);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "hello world", 5), CPEX_OK);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, NULL, 0), CPEX_OK);
    json_t *args = json_pack("{s:s}", "q", "x");
    assert_int_equal(cpex_cmf_append_tool_call(m, "t1", "search", args, "web"), CPEX_OK);
    assert_int_equal(cpex_cmf_append_tool_call(m, "t2", "noargs", NULL, NULL), CPEX_OK);
    assert_int_equal(cpex_cmf_append_tool_result(m, "t1", "search", json_string("ok"), 7), CPEX_OK);
    assert_int_equal(cpex_cmf_append_tool_result(m, "t2", "noargs", NULL, 0), CPEX_OK);
    assert_int_equal(m->part_count, 7);

    assert_str(m->parts[1].text, "hello");
    assert_str(m->parts[2].text, "");
    const cpex_cmf_tool_call *tc = m->parts[3].body;
    assert_ptr_equal(cpex_json_to_jansson_const(tc->arguments), args); /* taken over */
    assert_str(tc->namespace_, "web");
    assert_str(tc->name, "search");
    const cpex_cmf_tool_call *tc2 = m->parts[4].body;
    assert_absent(tc2->namespace_);
    assert_int_equal(json_object_size(cpex_json_to_jansson_const(tc2->arguments)), 0);
    const cpex_cmf_tool_result *tr = m->parts[5].body;
    assert_int_equal(tr->is_error, 1);
    const cpex_cmf_tool_result *tr2 = m->parts[6].body;
    assert_true(json_is_null(cpex_json_to_jansson_const(tr2->content)));

    json_t *out = cpex_cmf_to_json(m);
    json_t *want = load(MSG(
        "assistant",
        "{\"content_type\":\"thinking\",\"text\":\"hmm\"},"
        "{\"content_type\":\"text\",\"text\":\"hello\"},{\"content_type\":\"text\",\"text\":\"\"},"
        "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"t1\",\"name\":\"search\","
        "\"arguments\":{\"q\":\"x\"},\"namespace\":\"web\"}},"
        "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"t2\",\"name\":\"noargs\","
        "\"arguments\":{}}},"
        "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"t1\","
        "\"tool_name\":\"search\",\"content\":\"ok\",\"is_error\":true}},"
        "{\"content_type\":\"tool_result\",\"content\":{\"tool_call_id\":\"t2\","
        "\"tool_name\":\"noargs\",\"content\":null,\"is_error\":false}}"));
    assert_json_equal(want, out);
    json_decref(want);
    json_decref(out);
    cpex_cmf_free(m);
}

static void test_append_refuses_bad_input(void **state)
{
    (void)state;
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_USER);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TOOL_CALL, "x", 1), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "a\0b", 3), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "\xff", 1), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "\xed\xa0\x80", 3), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "\xc0\xaf", 2), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, NULL, 2), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_text(NULL, CPEX_PART_TEXT, "x", 1), CPEX_E_INVALID);
    /* Taken over even when refused: ASan would report these as leaks. */
    assert_int_equal(cpex_cmf_append_tool_call(m, "1", "n", json_array(), NULL), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_tool_call(m, NULL, "n", json_object(), NULL), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_tool_call(m, "1", "\xff", json_object(), NULL),
                     CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_tool_call(NULL, "1", "n", json_object(), NULL),
                     CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_tool_result(m, "1", NULL, json_true(), 0), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_append_tool_result(NULL, "1", "n", json_string("x"), 0),
                     CPEX_E_INVALID);
    assert_int_equal(m->part_count, 0);
    /* Multi-byte UTF-8 is fine. */
    assert_int_equal(
        cpex_cmf_append_text(m, CPEX_PART_TEXT, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
        CPEX_OK);
    cpex_cmf_free(m);
}

static void test_set_text(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(rich_message);
    assert_int_equal(cpex_cmf_set_text(m, 0, "replaced!", 8), CPEX_OK);
    assert_str(m->parts[0].text, "replaced");
    /* The new text may come from the old one. */
    assert_int_equal(cpex_cmf_set_text(m, 0, m->parts[0].text.ptr + 2, 3), CPEX_OK);
    assert_str(m->parts[0].text, "pla");
    assert_int_equal(cpex_cmf_set_text(m, 0, NULL, 0), CPEX_OK);
    assert_str(m->parts[0].text, "");
    assert_int_equal(cpex_cmf_set_text(m, 1, "x", 1), CPEX_E_INVALID); /* a tool_call */
    assert_int_equal(cpex_cmf_set_text(m, 4, "x", 1), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_set_text(m, 0, "a\0", 2), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_set_text(NULL, 0, "x", 1), CPEX_E_INVALID);
    assert_str(m->parts[0].text, "");

    cpex_cmf_message *t =
        parse_ok(MSG("assistant", "{\"content_type\":\"thinking\",\"text\":\"a\"}"));
    assert_int_equal(cpex_cmf_set_text(t, 0, "b", 1), CPEX_OK);
    assert_str(t->parts[0].text, "b");
    cpex_cmf_free(t);
    cpex_cmf_free(m);
}

static void test_set_tool_arguments(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(rich_message);
    json_t *args = json_pack("{s:i}", "k", 1);
    assert_int_equal(cpex_cmf_set_tool_arguments(m, 1, args), CPEX_OK);
    const cpex_cmf_tool_call *tc = m->parts[1].body;
    assert_ptr_equal(cpex_json_to_jansson_const(tc->arguments), args);
    assert_int_equal(cpex_cmf_set_tool_arguments(m, 1, NULL), CPEX_OK);
    assert_int_equal(json_object_size(cpex_json_to_jansson_const(tc->arguments)), 0);
    assert_int_equal(cpex_cmf_set_tool_arguments(m, 1, json_integer(3)), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_set_tool_arguments(m, 0, json_object()), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_set_tool_arguments(m, 9, json_object()), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_set_tool_arguments(NULL, 0, json_object()), CPEX_E_INVALID);
    assert_true(json_is_object(cpex_json_to_jansson_const(tc->arguments)));
    cpex_cmf_free(m);
}

static void test_remove_part(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(rich_message);
    assert_int_equal(cpex_cmf_remove_part(m, 4), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_remove_part(m, 1), CPEX_OK);
    assert_int_equal(m->part_count, 3);
    assert_int_equal(m->parts[0].kind, CPEX_PART_TEXT);
    assert_int_equal(m->parts[1].kind, CPEX_PART_RESOURCE);
    assert_int_equal(m->parts[2].kind, CPEX_PART_PROMPT_RESULT);
    assert_int_equal(cpex_cmf_remove_part(m, 2), CPEX_OK);
    assert_int_equal(cpex_cmf_remove_part(m, 0), CPEX_OK);
    assert_int_equal(m->part_count, 1);
    assert_int_equal(m->parts[0].kind, CPEX_PART_RESOURCE);
    assert_int_equal(cpex_cmf_remove_part(m, 0), CPEX_OK);
    assert_int_equal(m->part_count, 0);
    assert_int_equal(cpex_cmf_remove_part(m, 0), CPEX_E_INVALID);
    assert_int_equal(cpex_cmf_remove_part(NULL, 0), CPEX_E_INVALID);
    /* Still usable afterwards. */
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, "again", 5), CPEX_OK);
    char *text = cpex_cmf_dump(m);
    assert_contains(text, "\"channel\":\"final\"");
    assert_contains(text, "\"again\"");
    free(text);
    cpex_cmf_free(m);
}

static void test_text_content(void **state)
{
    (void)state;
    cpex_cmf_message *m = parse_ok(
        MSG("assistant", "{\"content_type\":\"text\",\"text\":\"Hello \"},"
                         "{\"content_type\":\"thinking\",\"text\":\"(hidden)\"},"
                         "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"1\","
                         "\"name\":\"n\"}},{\"content_type\":\"text\",\"text\":\"world!\"}"));
    char *t = cpex_cmf_text_content(m);
    assert_string_equal(t, "Hello world!");
    free(t);
    cpex_cmf_free(m);
    m = cpex_cmf_new(CPEX_ROLE_USER);
    t = cpex_cmf_text_content(m);
    assert_string_equal(t, "");
    free(t);
    cpex_cmf_free(m);
    assert_null(cpex_cmf_text_content(NULL));
}

static void test_names(void **state)
{
    (void)state;
    static const char *const kinds[] = {
        "text",           "thinking",      "tool_call", "tool_result", "resource", "resource_ref",
        "prompt_request", "prompt_result", "image",     "video",       "audio",    "document"};
    for (uint32_t k = 0; k < CPEX_PART_KIND_COUNT; k++)
        assert_string_equal(cpex_cmf_part_kind_name(k), kinds[k]);
    assert_null(cpex_cmf_part_kind_name(CPEX_PART_KIND_COUNT));
    assert_string_equal(cpex_cmf_role_name(CPEX_ROLE_SYSTEM), "system");
    assert_string_equal(cpex_cmf_role_name(CPEX_ROLE_DEVELOPER), "developer");
    assert_string_equal(cpex_cmf_role_name(CPEX_ROLE_USER), "user");
    assert_string_equal(cpex_cmf_role_name(CPEX_ROLE_ASSISTANT), "assistant");
    assert_string_equal(cpex_cmf_role_name(CPEX_ROLE_TOOL), "tool");
    assert_null(cpex_cmf_role_name(5));
    assert_null(cpex_cmf_to_json(NULL));
    assert_null(cpex_cmf_dump(NULL));
    cpex_cmf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_text),
        cmocka_unit_test(test_round_trip_thinking),
        cmocka_unit_test(test_round_trip_tool_call),
        cmocka_unit_test(test_round_trip_tool_result),
        cmocka_unit_test(test_round_trip_resource),
        cmocka_unit_test(test_round_trip_resource_ref),
        cmocka_unit_test(test_round_trip_prompt_request),
        cmocka_unit_test(test_round_trip_prompt_result),
        cmocka_unit_test(test_round_trip_image),
        cmocka_unit_test(test_round_trip_video),
        cmocka_unit_test(test_round_trip_audio),
        cmocka_unit_test(test_round_trip_document),
        cmocka_unit_test(test_round_trip_all_kinds_in_one_message),
        cmocka_unit_test(test_defaults_are_filled_in),
        cmocka_unit_test(test_unknown_keys_and_nulls_are_dropped),
        cmocka_unit_test(test_empty_optional_is_not_absent),
        cmocka_unit_test(test_fields_of_tool_call_message),
        cmocka_unit_test(test_fields_of_resources),
        cmocka_unit_test(test_fields_of_prompts_and_media),
        cmocka_unit_test(test_nested_prompt_result_messages),
        cmocka_unit_test(test_clone_is_equal_and_independent),
        cmocka_unit_test(test_equal_sees_every_difference),
        cmocka_unit_test(test_new_and_append),
        cmocka_unit_test(test_append_refuses_bad_input),
        cmocka_unit_test(test_set_text),
        cmocka_unit_test(test_set_tool_arguments),
        cmocka_unit_test(test_remove_part),
        cmocka_unit_test(test_text_content),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
