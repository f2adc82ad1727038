/*
 * test_unknown_hook.c — an invoke on a hook no plugin serves: still an
 * allow (the framework's contract), but the result says that no plugin
 * ran (no_plugin_ran), and a manager may deny it instead (unknown_hook:
 * deny, from cpex_manager_options or plugin_settings). What counts:
 *
 *   - no plugin lists the hook (a mistyped name, a trailing space): no
 *     plugin ran; denied under unknown_hook deny;
 *   - the only plugins of the hook are configured `mode: disabled`: the
 *     same (nothing is configured to run for it);
 *   - every plugin of the hook was disabled at run time (on_error:
 *     disable): no plugin ran, but the hook is known: always allowed;
 *   - a plugin that runs and fails, or is not initialized, ran.
 */
#include "test_support.h"
/* after test_support.h */
#include "plugins.h"
#include "util/alloc.h"

#define HOOK "cmf.tool_pre_invoke"

TP_FIXTURE;

/* Invoke `hook`; the result is left in *res for the caller to check. */
static void run(cpex_manager *m, const char *hook, cpex_pipeline_result *res)
{
    cpex_pipeline_result_cleanup(res);
    tp_run(m, hook, res);
}

static cpex_manager *deny_manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.unknown_hook = CPEX_UNKNOWN_HOOK_DENY;
    return tp_manager_with(&o);
}

static void test_unserved_hook_allows_and_says_so(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, HOOK, &res); /* no plugin at all */
    assert_allowed(&res);
    assert_true(res.no_plugin_ran);
    assert_false(res.payload_modified);

    tp_plugin *p = tp_new("guard", &trace);
    tp_start(m, p);
    run(m, HOOK, &res);
    assert_allowed(&res);
    assert_false(res.no_plugin_ran);
    assert_int_equal(tp_calls(p), 1);
    static const char *const misses[] = {"CMF.TOOL_PRE_INVOKE", "cmf.tool_pre_invoke ",
                                         " cmf.tool_pre_invoke", "cmf.tool_pre_invok", ""};
    for (size_t i = 0; i < CPEX__COUNT(misses); i++) {
        run(m, misses[i], &res);
        assert_allowed(&res);
        assert_true(res.no_plugin_ran);
        assert_int_equal(res.error_count, 0);
    }
    assert_int_equal(tp_calls(p), 1);

    /* The JSON form carries the flag. */
    json_t *j = cpex_pipeline_result_to_json(&res);
    assert_true(json_is_true(json_object_get(j, "no_plugin_ran")));
    json_decref(j);
    run(m, HOOK, &res);
    j = cpex_pipeline_result_to_json(&res);
    assert_true(json_is_false(json_object_get(j, "no_plugin_ran")));
    json_decref(j);
    tp_finish(m, &res);
}

/* Without deny, the unserved path allocates nothing (one flag store). */
static void test_unserved_hook_allocates_nothing(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("guard", &trace));
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex__alloc_fail_at(1);
    cpex_manager_invoke(m, "no.such.hook", &payload, NULL, NULL, &res);
    bool allocated = cpex__alloc_failed();
    cpex__alloc_fail_at(0);
    assert_false(allocated);
    assert_allowed(&res);
    assert_true(res.no_plugin_ran);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

/* Two plugins: "off" (mode: disabled) alone on "only.disabled", and
 * "flaky" on HOOK, which fails once and is disabled by it. */
static tp_plugin *start_off_and_flaky(cpex_manager *m, tp_plugin **off)
{
    *off = tp_new_in("off", &trace, CPEX_MODE_DISABLED, 1);
    (*off)->hooks[0] = "only.disabled";
    tp_plugin *flaky = tp_failing(tp_new("flaky", &trace), CPEX_ON_ERROR_DISABLE, "boom");
    tp_start(m, *off, flaky);
    return flaky;
}

static void test_disabled_plugins(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *off;
    tp_plugin *flaky = start_off_and_flaky(m, &off);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;

    /* Configured `mode: disabled`: listed, but nothing is to run. */
    assert_true(cpex_manager_has_hooks_for(m, "only.disabled"));
    run(m, "only.disabled", &res);
    assert_allowed(&res);
    assert_true(res.no_plugin_ran);
    assert_int_equal(tp_calls(off), 0);

    /* A plugin that runs and fails ran; disabled by its failure, the next
     * invoke runs none. */
    run(m, HOOK, &res);
    assert_allowed(&res);
    assert_record(&res, "flaky", "error");
    assert_false(res.no_plugin_ran);
    run(m, HOOK, &res);
    assert_allowed(&res);
    assert_true(res.no_plugin_ran);
    assert_int_equal(res.error_count, 0);
    assert_int_equal(tp_calls(flaky), 1);
    tp_finish(m, &res);
}

/* A plugin that is not initialized fails closed: it ran (as a failure). */
static void test_uninitialized_plugin_ran(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("late", &trace);
    p->on_error = CPEX_ON_ERROR_IGNORE;
    tp_reg(m, p);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, HOOK, &res);
    assert_record(&res, "late", "not_initialized");
    assert_false(res.no_plugin_ran);
    tp_finish(m, &res);
}

static void test_deny_option(void **state)
{
    (void)state;
    cpex_manager *m = deny_manager();
    tp_plugin *off;
    start_off_and_flaky(m, &off);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;

    run(m, "CMF.TOOL_PRE_INVOKE", &res);
    assert_denied(&res, "unknown_hook", NULL);
    assert_null(res.violation->plugin_name);
    assert_true(res.no_plugin_ran);
    assert_contains(res.violation->reason,
                    "no plugin is configured to run for hook 'CMF.TOOL_PRE_INVOKE', and this "
                    "manager denies such invokes (unknown_hook: deny); check the hook's spelling");

    run(m, "only.disabled", &res); /* nothing configured to run */
    assert_denied(&res, "unknown_hook", NULL);
    assert_true(res.no_plugin_ran);

    run(m, HOOK, &res); /* served: runs (and fails, so it is disabled) */
    assert_allowed(&res);
    assert_false(res.no_plugin_ran);
    run(m, HOOK, &res); /* known, its plugin disabled at run time: allowed */
    assert_allowed(&res);
    assert_true(res.no_plugin_ran);
    tp_finish(m, &res);

    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.unknown_hook = 2;
    cpex_manager *bad = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &bad, &err), CPEX_E_INVALID);
    assert_contains(cpex_error_message(&err), "unknown_hook 2 is not valid");
    cpex_error_cleanup(&err);
}

/* plugin_settings.unknown_hook: deny turns deny on for the manager when
 * the load is published; a later `allow` does not turn it off. */
static void test_deny_from_configuration(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_error err = CPEX_ERROR_INIT;
    static const char bad[] = "plugin_settings:\n  unknown_hook: dney\nplugins: []\n";
    assert_int_equal(cpex_manager_load_string(m, bad, strlen(bad), "u.yaml", NULL, &err),
                     CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err),
                    "u.yaml:2:17: unknown unknown_hook value 'dney'; valid values: allow, deny");
    cpex_error_cleanup(&err);
    static const char list[] = "plugin_settings: {unknown_hook: [deny]}\nplugins: []\n";
    assert_int_equal(cpex_manager_load_string(m, list, strlen(list), "u.yaml", NULL, &err),
                     CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err),
                    "'plugin_settings.unknown_hook' must be allow or deny; got a list");
    cpex_error_cleanup(&err);
    run(m, "x.y", &res); /* refused loads changed nothing */
    assert_allowed(&res);

    static const char deny[] = "plugin_settings:\n  unknown_hook: deny\nplugins: []\n";
    assert_int_equal(cpex_manager_load_string(m, deny, strlen(deny), "u.yaml", NULL, &err),
                     CPEX_OK);
    run(m, "x.y", &res);
    assert_denied(&res, "unknown_hook", NULL);
    static const char allow[] = "plugin_settings:\n  unknown_hook: allow\nplugins: []\n";
    assert_int_equal(cpex_manager_load_string(m, allow, strlen(allow), "u.yaml", NULL, &err),
                     CPEX_OK);
    run(m, "x.y", &res);
    assert_denied(&res, "unknown_hook", NULL);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* A caller built before no_plugin_ran existed: nothing past its size is
 * written, and the unknown_hook deny still reaches it as a deny. */
static void test_older_caller_struct(void **state)
{
    (void)state;
    for (int deny = 0; deny < 2; deny++) {
        cpex_manager *m = deny ? deny_manager() : tp_manager();
        union {
            cpex_pipeline_result r;
            unsigned char bytes[sizeof(cpex_pipeline_result) + 16];
        } u;
        memset(u.bytes, 0xa5, sizeof u.bytes);
        cpex_pipeline_result_init(&u.r);
        u.r.struct_size = (uint32_t)CPEX_PIPELINE_RESULT_SIZE_V1;
        memset(u.bytes + CPEX_PIPELINE_RESULT_SIZE_V1, 0xa5,
               sizeof u.bytes - CPEX_PIPELINE_RESULT_SIZE_V1);
        assert_int_equal(cpex_manager_invoke(m, "x.y", NULL, NULL, NULL, &u.r), CPEX_OK);
        for (size_t i = CPEX_PIPELINE_RESULT_SIZE_V1; i < sizeof u.bytes; i++)
            assert_int_equal(u.bytes[i], 0xa5);
        assert_true(u.r.continue_processing == !deny);
        json_t *j = cpex_pipeline_result_to_json(&u.r);
        assert_null(json_object_get(j, "no_plugin_ran"));
        json_decref(j);
        cpex_pipeline_result_cleanup(&u.r);
        for (size_t i = CPEX_PIPELINE_RESULT_SIZE_V1; i < sizeof u.bytes; i++)
            assert_int_equal(u.bytes[i], 0xa5);
        tp_manager_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_unserved_hook_allows_and_says_so),
        TP_TEST(test_unserved_hook_allocates_nothing),
        TP_TEST(test_disabled_plugins),
        TP_TEST(test_uninitialized_plugin_ran),
        TP_TEST(test_deny_option),
        TP_TEST(test_deny_from_configuration),
        TP_TEST(test_older_caller_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
