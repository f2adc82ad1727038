/*
 * test_large_config.c — a large real configuration loads: 20,000 plugins,
 * each with the keys an operator writes and a config block, through a
 * factory the test registers. It once failed at about 20,000 with "the
 * configuration expands to more than 100000 values (through aliases?)"
 * though it has no alias: the value budget counted every key of every
 * plugin. The time is printed (a figure for docs, never asserted);
 * CPEX_LARGE_PLUGINS=<n> changes the count for a measurement. And the
 * limits that remain each say what they are, with their number.
 */
#include "test_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpex/cpex.h"

#define PRE "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER(PRE, allow, "cmf"),
    CPEX_HANDLER(POST, allow, "cmf"),
};

static cpex_status large_create(void *data, const cpex_factory_request *req,
                                cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)req;
    (void)err;
    out->registration.struct_size = (uint32_t)sizeof out->registration;
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.name = "large";
    out->registration.version = "1.0";
    out->registration.handler_count = CPEX__COUNT(handlers);
    out->registration.handlers = handlers;
    return CPEX_OK;
}

static cpex_manager *manager_with_factory(void)
{
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(NULL, &m, &err), CPEX_OK);
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = large_create;
    assert_int_equal(cpex_manager_register_factory(m, "test/large", &f, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

/* A growing text buffer. */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n + 1;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `n` plugins, each with every key an operator commonly writes. */
static char *real_config(size_t n)
{
    static const char *const modes[] = {"sequential", "transform", "audit", "concurrent"};
    text t = {malloc(4096), 0, 4096};
    assert_non_null(t.s);
    add(&t, "plugin_settings:\n  plugin_timeout: 5\nplugins:\n");
    for (size_t i = 0; i < n; i++)
        add(&t,
            "  - name: plugin-%06zu\n"
            "    kind: test/large\n"
            "    description: plugin number %zu\n"
            "    hooks: [" PRE ", " POST "]\n"
            "    mode: %s\n"
            "    priority: %zu\n"
            "    on_error: ignore\n"
            "    timeout: 2\n"
            "    tags: [generated, large]\n"
            "    capabilities: [read_subject]\n"
            "    config:\n"
            "      limit: %zu\n"
            "      labels: [a, b]\n"
            "      nested: {x: 1, y: text}\n",
            i, i, modes[i % 4], i % 1000, i);
    return t.s;
}

static void test_twenty_thousand_plugins_load(void **state)
{
    (void)state;
    const char *env = getenv("CPEX_LARGE_PLUGINS");
    size_t n = env ? (size_t)strtoul(env, NULL, 10) : 20000;
    char *yaml = real_config(n);
    cpex_manager *m = manager_with_factory();
    cpex_error err = CPEX_ERROR_INIT;
    double t0 = now_s();
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), "large.yaml", NULL, &err);
    double t1 = now_s();
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(cpex_manager_plugin_count(m), n);
    print_message("%zu plugins (%zu bytes of YAML) loaded in %.3f s\n", n, strlen(yaml), t1 - t0);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "plugin-000007", &info), CPEX_OK);
    assert_int_equal(info.mode, CPEX_MODE_CONCURRENT);
    assert_true(info.timeout == 2.0);
    assert_int_equal(json_integer_value(json_object_get(info.config, "limit")), 7);
    cpex_plugin_info_cleanup(&info);
    double t2 = now_s();
    cpex_manager_free(m);
    print_message("freed in %.3f s\n", now_s() - t2);
    cpex_error_cleanup(&err);
    free(yaml);
}

/* 100,000 minimal entries: within the node limit, so they load; the
 * limits that remain have their own messages (test_config.c). Under a
 * sanitizer 20,000: the registry grows each hook's entries one at a time,
 * which a sanitizer's realloc copies every time (two minutes for 100,000). */
static void test_hundred_thousand_minimal_entries(void **state)
{
    (void)state;
    size_t n = TEST_UNDER_SANITIZER ? 20000 : 100000;
    text t = {malloc(4096), 0, 4096};
    assert_non_null(t.s);
    add(&t, "plugins:\n");
    for (size_t i = 0; i < n; i++)
        add(&t, "  - {name: p%zu, kind: test/large, hooks: [" PRE "]}\n", i);
    cpex_manager *m = manager_with_factory();
    cpex_error err = CPEX_ERROR_INIT;
    double t0 = now_s();
    cpex_status st = cpex_manager_load_string(m, t.s, t.len, "many.yaml", NULL, &err);
    double t1 = now_s();
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(cpex_manager_plugin_count(m), n);
    print_message("%zu minimal plugins loaded in %.3f s\n", n, t1 - t0);
    cpex_manager_free(m);
    cpex_error_cleanup(&err);
    free(t.s);
}

/* A factory that serves exactly the hooks it is configured with. */
static size_t mirror_seen;

static void mirror_destroy(void *instance)
{
    cpex_handler_reg *h = instance;
    for (size_t i = 0; h[i].hook; i++)
        free((char *)h[i].hook);
    free(h);
}

static cpex_status mirror_create(void *data, const cpex_factory_request *req,
                                 cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)err;
    size_t n = req->config->hook_count;
    mirror_seen = n;
    cpex_handler_reg *h = calloc(n + 1, sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) {
        h[i].hook = strndup(req->config->hooks[i].ptr, req->config->hooks[i].len);
        h[i].fn = allow;
    }
    out->registration.struct_size = (uint32_t)sizeof out->registration;
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.name = "mirror";
    out->registration.instance = h;
    out->registration.destroy = mirror_destroy;
    out->registration.handler_count = n;
    out->registration.handlers = h;
    return CPEX_OK;
}

/* A plugin listing 100 hooks gets all 100: a fixed array once handed the
 * factory the first 64 only, and the load failed on the 65th. */
static void test_hundred_hooks_reach_the_factory(void **state)
{
    (void)state;
    cpex_manager *m = manager_with_factory();
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = mirror_create;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register_factory(m, "test/mirror", &f, &err), CPEX_OK);
    text t = {malloc(4096), 0, 4096};
    assert_non_null(t.s);
    add(&t, "plugins:\n  - name: wide\n    kind: test/mirror\n    hooks: [");
    for (int i = 0; i < 100; i++)
        add(&t, "%shost.hook_%03d", i ? ", " : "", i);
    add(&t, "]\n");
    cpex_status st = cpex_manager_load_string(m, t.s, t.len, "wide.yaml", NULL, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(mirror_seen, 100);
    assert_true(cpex_manager_has_hooks_for(m, "host.hook_099"));
    cpex_manager_free(m);
    cpex_error_cleanup(&err);
    free(t.s);
}

/* The node limit has its own message with its number. */
static void test_node_limit_names_itself(void **state)
{
    (void)state;
    text t = {malloc(4096), 0, 4096};
    assert_non_null(t.s);
    add(&t, "plugins:\n  - name: p\n    kind: test/large\n    hooks: [" PRE "]\n"
            "    config: [");
    for (int i = 0; i < 1000000; i++)
        add(&t, "0,");
    add(&t, "0]\n");
    cpex_manager *m = manager_with_factory();
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_load_string(m, t.s, t.len, "nodes.yaml", NULL, &err),
                     CPEX_E_CONFIG);
    assert_int_equal(err.count, 1);
    assert_contains(cpex_error_message(&err), "nodes.yaml:5:");
    assert_contains(cpex_error_message(&err),
                    ": the document has more than 1000000 nodes (keys, values, lists and "
                    "mappings, the limit of one configuration); split it, or make it smaller");
    cpex_manager_free(m);
    cpex_error_cleanup(&err);
    free(t.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twenty_thousand_plugins_load),
        cmocka_unit_test(test_hundred_thousand_minimal_entries),
        cmocka_unit_test(test_hundred_hooks_reach_the_factory),
        cmocka_unit_test(test_node_limit_names_itself),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
