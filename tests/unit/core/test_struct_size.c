/*
 * test_struct_size.c — the structs a caller allocates and libcpex fills
 * (cpex_pipeline_result, cpex_plugin_info, cpex_error) carry struct_size:
 *
 *   - the initializers set it to the caller's sizeof (macro and inline
 *     function agree) and cleanup keeps it, so a struct is reusable;
 *   - a struct below the first layout (never initialized) is not written:
 *     invoke and plugin_info refuse it with CPEX_E_INVALID (invoke logs
 *     why and still takes the context), and an error object is treated as
 *     NULL, with a message that says it was not initialized;
 *   - a caller built against a later header (a larger struct) gets the
 *     fields this library knows filled and the rest left as it set them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "cpex/cpex.h"

#define PRE "test.struct_size" /* a hook bound to no payload type: NULL payloads pass */

static char logged[1024];

static void capture_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user, (void)plugin;
    if (level == CPEX_LOG_ERROR)
        snprintf(logged, sizeof logged, "%s", message);
}

static const cpex_host_api *host;

static int32_t tagger(void *instance, const cpex_call *call)
{
    (void)instance;
    host->set_metadata(call, "tagged", host->json_new_bool(1));
    return CPEX_ALLOW;
}

/* A manager with one initialized plugin, "tagger", on PRE. */
static cpex_manager *manager(void)
{
    static const cpex_handler_reg handlers[] = {CPEX_HANDLER(PRE, tagger, NULL)};
    host = cpex_host_api_get();
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = capture_log;
    cpex_manager *m = NULL;
    assert_int_equal(cpex_manager_new(&o, &m, NULL), CPEX_OK);
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "tagger";
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.handler_count = 1;
    reg.handlers = handlers;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, NULL), CPEX_OK);
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    return m;
}

static void test_initializers_agree(void **state)
{
    (void)state;
    cpex_pipeline_result a = CPEX_PIPELINE_RESULT_INIT, b;
    memset(&b, 0x5a, sizeof b);
    cpex_pipeline_result_init(&b);
    /* field by field: padding bytes of an initialized automatic are not zero */
    cpex_pipeline_result *both[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(both[i]->struct_size, sizeof a);
        assert_true(both[i]->continue_processing);
        assert_false(both[i]->payload_modified || both[i]->extensions_modified);
        assert_true(!both[i]->violation && !both[i]->modified_payload && !both[i]->extensions &&
                    !both[i]->metadata && !both[i]->errors && !both[i]->context);
        assert_int_equal(both[i]->error_count, 0);
        assert_int_equal(both[i]->execution_count, 0);
        assert_null(both[i]->executions);
        assert_int_equal(both[i]->execution_size, 0);
        assert_int_equal(both[i]->generation, 0);
    }
    assert_false(a.no_plugin_ran || b.no_plugin_ran);
    /* no_plugin_ran, the execution records, then generation (0.2): the last appended so far */
    assert_true(CPEX_PIPELINE_RESULT_SIZE_V1 < CPEX_PIPELINE_RESULT_SIZE_V2);
    assert_true(CPEX_PIPELINE_RESULT_SIZE_V2 < CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS);
    assert_true(CPEX_PIPELINE_RESULT_SIZE_EXECUTIONS < CPEX_PIPELINE_RESULT_SIZE_GENERATION);
    assert_int_equal(CPEX_PIPELINE_RESULT_SIZE_GENERATION, sizeof a);

    cpex_plugin_info i = CPEX_PLUGIN_INFO_INIT, j;
    memset(&j, 0x5a, sizeof j);
    cpex_plugin_info_init(&j);
    assert_int_equal(i.struct_size, sizeof i);
    assert_int_equal(j.struct_size, sizeof j);
    assert_null(j.name);
    assert_null(j.config);
    assert_false(j.audit_sink);
    assert_null(j.sink_hooks);
    /* `isolation`, then the audit-sink fields (0.2): the last appended so far */
    assert_int_equal(CPEX_PLUGIN_INFO_SIZE_V1, offsetof(cpex_plugin_info, isolation));
    assert_int_equal(CPEX_PLUGIN_INFO_SIZE_SINKS, sizeof i);

    cpex_error e = CPEX_ERROR_INIT, f;
    memset(&f, 0x5a, sizeof f);
    cpex_error_init(&f);
    cpex_error *errs[] = {&e, &f};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(errs[k]->struct_size, sizeof e);
        assert_int_equal(errs[k]->code, CPEX_OK);
        assert_int_equal(errs[k]->count, 0);
        assert_null(errs[k]->items);
        assert_null(errs[k]->text);
    }
    assert_int_equal(CPEX_ERROR_SIZE_V1, sizeof e);
}

static void test_invoke_refuses_an_uninitialized_result(void **state)
{
    (void)state;
    cpex_manager *m = manager();
    cpex_pipeline_result res;
    memset(&res, 0, sizeof res); /* not initialized: struct_size 0 */
    cpex_context_table *ctx = cpex_context_table_new();
    logged[0] = '\0';
    assert_int_equal(cpex_manager_invoke(m, PRE, NULL, NULL, ctx, &res), CPEX_E_INVALID);
    /* nothing written (a zeroed result reads as "do not continue") */
    assert_int_equal(res.struct_size, 0);
    assert_false(res.continue_processing);
    assert_null(res.metadata);
    assert_null(res.context); /* the context was freed, not handed back */
    assert_contains(logged, "initialize it with CPEX_PIPELINE_RESULT_INIT");
    /* one byte short of the first layout is refused as well */
    res.struct_size = (uint32_t)CPEX_PIPELINE_RESULT_SIZE_V1 - 1;
    assert_int_equal(cpex_manager_invoke(m, PRE, NULL, NULL, NULL, &res), CPEX_E_INVALID);
    assert_null(res.metadata);
    /* cleanup leaves it alone too */
    cpex_pipeline_result_cleanup(&res);
    assert_int_equal(res.struct_size, CPEX_PIPELINE_RESULT_SIZE_V1 - 1);
    assert_int_equal(cpex_manager_invoke(m, PRE, NULL, NULL, NULL, NULL), CPEX_E_INVALID);
    cpex_manager_free(m);
}

static void test_invoke_fills_and_cleanup_keeps_size(void **state)
{
    (void)state;
    cpex_manager *m = manager();
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(cpex_manager_invoke(m, PRE, NULL, NULL, NULL, &res), CPEX_OK);
        assert_true(res.continue_processing);
        assert_non_null(json_object_get(res.metadata, "tagged"));
        cpex_pipeline_result_cleanup(&res);
        assert_int_equal(res.struct_size, sizeof res); /* reusable */
        assert_true(res.continue_processing);
        assert_null(res.metadata);
    }
    /* a NULL manager still fills the result with a deny, and says so */
    assert_int_equal(cpex_manager_invoke(NULL, PRE, NULL, NULL, NULL, &res), CPEX_E_INVALID);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "invalid_argument");
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_free(m);
}

/* A caller built against a later header: its struct is larger. */
typedef struct newer_result {
    cpex_pipeline_result r;
    uint64_t appended[2];
} newer_result;

typedef struct newer_info {
    cpex_plugin_info i;
    uint64_t appended[2];
} newer_info;

typedef struct newer_error {
    cpex_error e;
    uint64_t appended[2];
} newer_error;

#define MARK 0xa5a5a5a5a5a5a5a5ull

static void test_larger_caller_struct_keeps_its_tail(void **state)
{
    (void)state;
    cpex_manager *m = manager();
    newer_result nr;
    memset(&nr, 0, sizeof nr);
    nr.r.struct_size = (uint32_t)sizeof nr;
    nr.appended[0] = nr.appended[1] = MARK;
    assert_int_equal(cpex_manager_invoke(m, PRE, NULL, NULL, NULL, &nr.r), CPEX_OK);
    assert_true(nr.r.continue_processing);
    assert_non_null(nr.r.metadata);
    cpex_pipeline_result_cleanup(&nr.r);
    assert_int_equal(nr.r.struct_size, sizeof nr);
    assert_true(nr.appended[0] == MARK && nr.appended[1] == MARK);

    newer_info ni;
    memset(&ni, 0, sizeof ni);
    ni.i.struct_size = (uint32_t)sizeof ni;
    ni.appended[0] = ni.appended[1] = MARK;
    assert_int_equal(cpex_manager_plugin_info(m, "tagger", &ni.i), CPEX_OK);
    assert_string_equal(ni.i.name, "tagger");
    cpex_plugin_info_cleanup(&ni.i);
    assert_null(ni.i.name);
    assert_int_equal(ni.i.struct_size, sizeof ni);
    assert_true(ni.appended[0] == MARK && ni.appended[1] == MARK);

    newer_error ne;
    memset(&ne, 0, sizeof ne);
    ne.e.struct_size = (uint32_t)sizeof ne;
    ne.appended[0] = ne.appended[1] = MARK;
    assert_int_equal(cpex_manager_unregister(m, "nobody", &ne.e), CPEX_E_NOT_FOUND);
    assert_int_equal(ne.e.count, 1);
    assert_contains(cpex_error_message(&ne.e), "nobody");
    cpex_error_cleanup(&ne.e);
    assert_int_equal(ne.e.count, 0);
    assert_int_equal(ne.e.struct_size, sizeof ne);
    assert_true(ne.appended[0] == MARK && ne.appended[1] == MARK);
    cpex_manager_free(m);
}

static void test_plugin_info_refuses_uninitialized(void **state)
{
    (void)state;
    cpex_manager *m = manager();
    cpex_plugin_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(cpex_manager_plugin_info(m, "tagger", &info), CPEX_E_INVALID);
    assert_null(info.name);
    info.struct_size = (uint32_t)CPEX_PLUGIN_INFO_SIZE_V1 - 1;
    assert_int_equal(cpex_manager_plugin_info(m, "tagger", &info), CPEX_E_INVALID);
    assert_null(info.name);
    cpex_plugin_info_cleanup(&info); /* left alone */
    assert_int_equal(info.struct_size, CPEX_PLUGIN_INFO_SIZE_V1 - 1);
    /* initialized: filled; reusable after cleanup */
    cpex_plugin_info_init(&info);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(cpex_manager_plugin_info(m, "tagger", &info), CPEX_OK);
        assert_string_equal(info.name, "tagger");
        cpex_plugin_info_cleanup(&info);
        assert_int_equal(info.struct_size, sizeof info);
    }
    cpex_manager_free(m);
}

static void test_uninitialized_error_is_never_written(void **state)
{
    (void)state;
    cpex_manager *m = manager();
    cpex_error err;
    memset(&err, 0, sizeof err);
    /* the function still fails with its status; the error object is left alone */
    assert_int_equal(cpex_manager_unregister(m, "nobody", &err), CPEX_E_NOT_FOUND);
    assert_int_equal(err.count, 0);
    assert_null(err.items);
    assert_int_equal(err.code, CPEX_OK);
    assert_contains(cpex_error_message(&err), "was not initialized");
    assert_contains(cpex_error_message(&err), "CPEX_ERROR_INIT");
    cpex_error_cleanup(&err);
    assert_int_equal(err.struct_size, 0);
    /* one byte short of the first layout: the same */
    err.struct_size = (uint32_t)CPEX_ERROR_SIZE_V1 - 1;
    assert_int_equal(cpex_manager_unregister(m, "nobody", &err), CPEX_E_NOT_FOUND);
    assert_int_equal(err.count, 0);
    /* initialized: filled, and reusable after cleanup */
    cpex_error_init(&err);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(cpex_manager_unregister(m, "nobody", &err), CPEX_E_NOT_FOUND);
        assert_int_equal(err.count, 1);
        assert_int_equal(err.code, CPEX_E_NOT_FOUND);
        cpex_error_cleanup(&err);
        assert_int_equal(err.struct_size, sizeof err);
        assert_string_equal(cpex_error_message(&err), "");
    }
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initializers_agree),
        cmocka_unit_test(test_invoke_refuses_an_uninitialized_result),
        cmocka_unit_test(test_invoke_fills_and_cleanup_keeps_size),
        cmocka_unit_test(test_larger_caller_struct_keeps_its_tail),
        cmocka_unit_test(test_plugin_info_refuses_uninitialized),
        cmocka_unit_test(test_uninitialized_error_is_never_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
