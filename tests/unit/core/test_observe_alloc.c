/*
 * test_observe_alloc.c — every allocation of an observed invoke may fail:
 * execution records, metrics, a verdict for an audit sink that waits for a
 * fire-and-forget call. For n = 1, 2, 3, ... the n-th allocation from the
 * invoke on fails, until a run reaches no failure. Every run must end
 * cleanly (no crash; no leak under make test-asan) with the decision the
 * pipeline makes without failures, or a deny, and say what it lost: the
 * records are complete, or a soft error says they were lost; the verdict
 * reaches the sink, or it is counted as dropped.
 */
#include "test_support.h"
#include "plugins.h"

#include "util/alloc.h"

#define HOOK "cmf.tool_pre_invoke"
#define MAX_N 5000

TP_FIXTURE;

static atomic_int verdicts;

static int32_t sink(void *instance, const cpex_call *call, const cpex_verdict *v)
{
    (void)instance;
    (void)call;
    (void)v;
    atomic_fetch_add(&verdicts, 1);
    return CPEX_ALLOW;
}

static void test_observed_invoke_under_allocation_failures(void **state)
{
    (void)state;
    cpex__alloc_hook_jansson();
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.execution_records = true;
    o.metrics = true;
    cpex_manager *m = tp_manager_with(&o);
    tp_plugin *a = tp_new_in("seq", NULL, CPEX_MODE_SEQUENTIAL, 1);
    a->config = "{\"k\":1}";
    tp_plugin *t = tp_new_in("tx", NULL, CPEX_MODE_TRANSFORM, 1);
    t->append_text = "+t";
    tp_plugin *e =
        tp_failing(tp_new_in("soft", NULL, CPEX_MODE_AUDIT, 1), CPEX_ON_ERROR_IGNORE, "it broke");
    tp_plugin *c = tp_new_in("conc", NULL, CPEX_MODE_CONCURRENT, 1);
    tp_plugin *f = tp_new_in("bg", NULL, CPEX_MODE_FIRE_AND_FORGET, 1);
    tp_start(m, a, t, e, c, f);
    cpex_sink_spec spec;
    cpex_sink_spec_init(&spec);
    spec.name = "audit";
    spec.verdict = sink;
    assert_int_equal(cpex_manager_register_sink(m, &spec, NULL), CPEX_OK);
    cpex_cmf_message *msg = test_text_message("hello");
    cpex_payload pl = cpex_payload_cmf(msg);
    cpex_stats *st = NULL;
    int runs = 0;
    for (uint64_t n = 1; n < MAX_N; n++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        int before = atomic_load(&verdicts);
        cpex__alloc_fail_at(n);
        cpex_manager_invoke(m, HOOK, &pl, NULL, NULL, &res);
        int failed = cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        runs++;
        if (res.continue_processing) {
            bool lost = tp_find_record(&res, "", "internal") != NULL;
            assert_true(res.execution_count == 4 || lost);
            if (res.execution_count == 4 && !lost) {
                assert_string_equal(cpex_pipeline_result_execution(&res, 2)->plugin_name.ptr,
                                    "soft");
                /* the plugin's set_error may itself have run out of memory */
                const char *why = cpex_pipeline_result_execution(&res, 2)->reason.ptr;
                assert_true(strcmp(why, "it broke") == 0 ||
                            strcmp(why, "handler returned an error without a message") == 0);
            }
        } else {
            assert_non_null(res.violation); /* a deny that says why */
        }
        cpex_pipeline_result_cleanup(&res);
        assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
        if (atomic_load(&verdicts) == before) {
            /* not delivered: counted as dropped */
            assert_int_equal(cpex_manager_stats(m, &st), CPEX_OK);
            assert_true(st->audit_dropped >= 1);
            cpex_stats_free(st);
        }
        if (!failed)
            break;
    }
    assert_true(runs > 10 && runs < MAX_N - 1);
    /* Still works. */
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, HOOK, &pl, NULL, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(res.execution_count, 4);
    cpex_pipeline_result_cleanup(&res);
    cpex_error_record *recs = NULL;
    size_t nrec = cpex_manager_take_background_errors(m, &recs);
    cpex_error_records_free(recs, nrec);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_observed_invoke_under_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
