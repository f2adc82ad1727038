/*
 * test_host_jansson.c — libcpex shares jansson with its host and must never
 * change jansson's process-wide state. This test is a host that installs
 * its own jansson allocator (every block tagged, every free checked), then
 * creates a manager, loads gateway plugins from shared libraries, invokes
 * hooks whose plugins build, dump, copy and free JSON through the host
 * table, and frees everything. Its allocator must still be installed at
 * the end, and every block it made must have come back to it, and nothing
 * else.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cpex/cpex.h"
#include "e2e.h"
#include "test_support.h"

#define TAG 0x686f73744a534f4eull /* "hostJSON" */

typedef struct block_head {
    uint64_t tag;
    uint64_t pad; /* keeps the block 16-byte aligned */
} block_head;

static atomic_long host_allocs, host_frees, foreign_frees;

static void *host_malloc(size_t size)
{
    block_head *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->tag = TAG;
    atomic_fetch_add(&host_allocs, 1);
    return h + 1;
}

static void host_free(void *p)
{
    if (!p)
        return;
    block_head *h = (block_head *)p - 1;
    if (h->tag != TAG) {
        /* Not ours: leak it rather than crash, and fail the test below. */
        atomic_fetch_add(&foreign_frees, 1);
        return;
    }
    h->tag = 0;
    atomic_fetch_add(&host_frees, 1);
    free(h);
}

static const char yaml[] =
    "plugins:\n"
    "  - name: allow\n"
    "    kind: \"lib:" E2E_LIB(
        "tool_allowlist") "\"\n"
                          "    hooks: [" E2E_PRE ", " E2E_POST "]\n"
                          "    config: { allow: [\"search_*\"], verify_results: true }\n"
                          "  - name: pii\n"
                          "    kind: \"lib:" E2E_LIB(
                              "pii_redact") "\"\n"
                                            "    hooks: [" E2E_PRE ", " E2E_POST "]\n"
                                            "    mode: transform\n"
                                            "  - name: headers\n"
                                            "    kind: \"lib:" E2E_LIB(
                                                "header_inject") "\"\n"
                                                                 "    hooks: [" E2E_PRE "]\n"
                                                                 "    capabilities: "
                                                                 "[write_headers, append_labels]\n"
                                                                 "    config: { response_headers: "
                                                                 "{ x-test: \"1\" }, labels: "
                                                                 "[checked] }\n";

static void run_request(cpex_manager *m, const char *hook, const char *json,
                        cpex_context_table **ctx)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *msg = cpex_cmf_parse(json, strlen(json), &err);
    assert_non_null(msg);
    cpex_extensions *ext = cpex_extensions_new();
    assert_non_null(ext);
    json_t *custom = json_pack("{s:s}", "tenant", "t1"); /* made by the host's allocator */
    assert_int_equal(cpex_extensions_set_custom(ext, "org", custom), CPEX_OK);
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(m, hook, &payload, ext, *ctx, &res);
    assert_true(res.continue_processing);
    json_t *doc = cpex_pipeline_result_to_json(&res);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT); /* the host's own jansson use */
    assert_non_null(text);
    host_free(text);
    json_decref(doc);
    *ctx = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);
    cpex_extensions_unref(ext);
    cpex_cmf_free(msg);
    cpex_error_cleanup(&err);
}

static void host_allocator_survives(void **state)
{
    (void)state;
    json_set_alloc_funcs(host_malloc, host_free);

    cpex_manager *m = e2e_manager_new(NULL);
    e2e_load_ok(m, yaml, "host-jansson.yaml");
    e2e_initialize_ok(m);
    cpex_context_table *ctx = NULL;
    for (int i = 0; i < 3; i++) {
        run_request(m, E2E_PRE,
                    "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\","
                    "\"content\":{\"tool_call_id\":\"c1\",\"name\":\"search_web\","
                    "\"arguments\":{\"q\":\"mail bob@example.com\"}}}]}",
                    &ctx);
        run_request(m, E2E_POST,
                    "{\"role\":\"tool\",\"content\":[{\"content_type\":\"tool_result\","
                    "\"content\":{\"tool_call_id\":\"c1\",\"tool_name\":\"search_web\","
                    "\"content\":\"call 555-123-4567\"}}]}",
                    &ctx);
    }
    cpex_context_table_free(ctx);
    cpex_manager_free(m);

    json_malloc_t got_malloc = NULL;
    json_free_t got_free = NULL;
    json_get_alloc_funcs(&got_malloc, &got_free);
    assert_ptr_equal(got_malloc, host_malloc);
    assert_ptr_equal(got_free, host_free);
    assert_int_equal(atomic_load(&foreign_frees), 0);
    assert_true(atomic_load(&host_allocs) > 0); /* libcpex's jansson values used it */
    assert_int_equal(atomic_load(&host_allocs), atomic_load(&host_frees));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_allocator_survives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
