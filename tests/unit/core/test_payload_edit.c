/*
 * test_payload_edit.c — the ABI 1.1 host-table slots that edit the call's
 * CMF payload in place (payload_set_text, payload_set_tool_arguments,
 * payload_set_tool_result_content, payload_append_text,
 * payload_remove_part) and cmf_set_tool_result_content on a clone.
 *
 * An edit changes what the next plugins and the host see, exactly like a
 * clone handed to set_payload_cmf, but costs one part: the untouched
 * parts' content is shared with the host's message, which never changes.
 */
#include <string.h>

#include "cpex/cpex.h"
#include "cpex/plugin.h"
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"
#include "util/alloc.h"

#define PRE "cmf.tool_pre_invoke"

TP_FIXTURE;

/* A message: a big text part, a tool call, a tool result. */
static cpex_cmf_message *message(size_t big)
{
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_ASSISTANT);
    char *text = malloc(big + 1);
    memset(text, 'x', big);
    text[big] = '\0';
    assert_int_equal(cpex_cmf_append_text(m, CPEX_PART_TEXT, text, big), CPEX_OK);
    free(text);
    assert_int_equal(
        cpex_cmf_append_tool_call(m, "c1", "search", json_pack("{s:s}", "q", "a"), NULL), CPEX_OK);
    assert_int_equal(cpex_cmf_append_tool_result(m, "c1", "search", json_string("r"), 0), CPEX_OK);
    return m;
}

/* What the editing plugin saw of its own edit, and the statuses it got. */
static char seen_after_edit[64];
static int32_t rc_edit[8];

static int32_t edit_everything(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    (void)p;
    rc_edit[0] = h->payload_set_tool_arguments(call, 1, h->json_parse("{\"q\":\"b\"}", 9));
    rc_edit[1] = h->payload_set_tool_result_content(call, 2, h->json_new_integer(7));
    rc_edit[2] = h->payload_append_text(call, CPEX_PART_TEXT, "tail", 4);
    const cpex_cmf_message *now = cpex_call_cmf(call);
    snprintf(seen_after_edit, sizeof seen_after_edit, "%zu parts", now ? now->part_count : 0);
    rc_edit[3] = h->payload_set_text(call, 99, "x", 1);                        /* out of range */
    rc_edit[4] = h->payload_set_tool_arguments(call, 0, h->json_new_object()); /* wrong kind */
    return CPEX_ALLOW;
}

static void edits_reach_later_plugins_and_the_host(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new_in("editor", &trace, CPEX_MODE_SEQUENTIAL, 1);
    e->custom = edit_everything;
    tp_plugin *later = tp_new_in("later", &trace, CPEX_MODE_TRANSFORM, 2);
    later->append_text = "+later"; /* clones what it sees, appends to part 0 */
    tp_reg(m, e);
    tp_reg(m, later);
    tp_init(m);
    cpex_cmf_message *msg = message(200);
    char *before = cpex_cmf_dump(msg);
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, PRE, &payload, NULL, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(rc_edit[0], CPEX_HOST_OK);
    assert_int_equal(rc_edit[1], CPEX_HOST_OK);
    assert_int_equal(rc_edit[2], CPEX_HOST_OK);
    assert_int_equal(rc_edit[3], CPEX_HOST_EINVAL);
    assert_int_equal(rc_edit[4], CPEX_HOST_EINVAL);
    assert_string_equal(seen_after_edit, "4 parts"); /* the handler reads its edits */
    const cpex_cmf_message *out = cpex_pipeline_result_cmf(&res, msg);
    assert_int_equal(out->part_count, 4);
    const cpex_cmf_tool_call *tc = out->parts[1].body;
    assert_string_equal(json_string_value(json_object_get((const json_t *)tc->arguments, "q")),
                        "b");
    const cpex_cmf_tool_result *tr = out->parts[2].body;
    assert_int_equal(json_integer_value((const json_t *)tr->content), 7);
    assert_string_equal(out->parts[3].text.ptr, "tail");
    assert_int_equal(out->parts[0].text.len, 200 + strlen("+later"));
    /* The host's message did not change. */
    char *after = cpex_cmf_dump(msg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static int32_t set_arguments(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    (void)p;
    rc_edit[0] = h->payload_set_tool_arguments(call, 1, h->json_parse("{\"q\":\"c\"}", 9));
    return CPEX_ALLOW;
}

/* Rewriting one argument of a large message shares the large part: the
 * final message's text is the host's text, not a copy, and the invoke
 * allocates a few blocks, whatever the size. */
static void an_edit_does_not_copy_other_parts(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *e = tp_new_in("editor", &trace, CPEX_MODE_SEQUENTIAL, 1);
    e->custom = set_arguments;
    tp_reg(m, e);
    tp_init(m);
    cpex_cmf_message *msg = message(10u << 20);
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex__alloc_hook_jansson();
    cpex__alloc_count_reset();
    cpex_manager_invoke(m, PRE, &payload, NULL, NULL, &res);
    uint64_t allocs = cpex__alloc_count();
    assert_allowed(&res);
    assert_int_equal(rc_edit[0], CPEX_HOST_OK);
    const cpex_cmf_message *out = cpex_pipeline_result_cmf(&res, msg);
    assert_ptr_not_equal(out, msg);
    assert_ptr_equal(out->parts[0].text.ptr, msg->parts[0].text.ptr); /* shared, not copied */
    assert_ptr_not_equal(out->parts[1].body, msg->parts[1].body);     /* the edited part */
    assert_ptr_equal(out->parts[2].body, msg->parts[2].body);
    /* clone + new part + result wrapper + the plugin's own JSON (parsed) */
    assert_true(allocs <= 12);
    cpex_pipeline_result_cleanup(&res);
    /* The result's copy is gone; the host's message is intact. */
    assert_int_equal(msg->parts[0].text.len, 10u << 20);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static int32_t try_edit(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    (void)p;
    rc_edit[0] = h->payload_set_text(call, 0, "no", 2);
    rc_edit[1] = h->payload_remove_part(call, 0);
    return CPEX_ALLOW;
}

static void modes_that_cannot_modify_are_refused(void **state)
{
    (void)state;
    const uint32_t modes[] = {CPEX_MODE_AUDIT, CPEX_MODE_CONCURRENT};
    for (size_t i = 0; i < 2; i++) {
        cpex_manager *m = tp_manager();
        tp_plugin *p = tp_new_in("watcher", &trace, modes[i], 1);
        p->custom = try_edit;
        tp_reg(m, p);
        tp_init(m);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        tp_run(m, PRE, &res);
        assert_allowed(&res);
        assert_false(res.payload_modified);
        assert_int_equal(rc_edit[0], CPEX_HOST_EDENIED);
        assert_int_equal(rc_edit[1], CPEX_HOST_EDENIED);
        assert_non_null(tp_find_record(&res, "watcher", "dropped_modification"));
        cpex_pipeline_result_cleanup(&res);
        tp_manager_free(m);
    }
}

static void a_json_hook_is_refused(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    assert_int_equal(cpex_manager_define_hook(m, "host.json", "json", NULL), CPEX_OK);
    tp_plugin *p = tp_new("editor", &trace);
    p->hooks[0] = "host.json";
    p->custom = try_edit;
    tp_reg(m, p);
    tp_init(m);
    json_t *doc = json_pack("{s:i}", "a", 1);
    cpex_payload payload = cpex_payload_json(doc);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, "host.json", &payload, NULL, NULL, &res);
    assert_allowed(&res);
    assert_false(res.payload_modified);
    assert_int_equal(rc_edit[0], CPEX_HOST_EINVAL);
    assert_non_null(tp_find_record(&res, "editor", "dropped_modification"));
    cpex_pipeline_result_cleanup(&res);
    json_decref(doc);
    tp_manager_free(m);
}

static void clone_tool_result_content(void **state)
{
    (void)state;
    const cpex_host_api *h = tp_host();
    assert_true(CPEX_HOST_HAS(h, cmf_set_tool_result_content));
    cpex_cmf_message *m = message(8);
    cpex_cmf_message *c = h->cmf_clone(m);
    assert_int_equal(h->cmf_set_tool_result_content(c, 2, h->json_new_string("new", 3)),
                     CPEX_HOST_OK);
    assert_int_equal(h->cmf_set_tool_result_content(c, 0, h->json_new_null()), CPEX_HOST_EINVAL);
    assert_int_equal(h->cmf_set_tool_result_content(NULL, 2, h->json_new_null()), CPEX_HOST_EINVAL);
    const cpex_cmf_tool_result *was = m->parts[2].body, *now = c->parts[2].body;
    assert_string_equal(json_string_value((const json_t *)was->content), "r");
    assert_string_equal(json_string_value((const json_t *)now->content), "new");
    h->cmf_free(c);
    cpex_cmf_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edits_reach_later_plugins_and_the_host),
        cmocka_unit_test(an_edit_does_not_copy_other_parts),
        cmocka_unit_test(modes_that_cannot_modify_are_refused),
        cmocka_unit_test(a_json_hook_is_refused),
        cmocka_unit_test(clone_tool_result_content),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
