/* test_config_state.c — plugin_settings.state and state_namespace in YAML, and
   which configuration may choose a manager's state backend. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "util/alloc.h"
#include "cpex/cpex.h"

static cpex_status parse(const char *yaml, cpex__config **out, cpex_error *err)
{
    cpex_error_init(err);
    return cpex__config_parse(yaml, strlen(yaml), "gw.yaml", NULL, out, err);
}

/* Parse; expect CPEX_E_CONFIG with `count` problems; the messages (owned by err). */
static const char *expect_errors(const char *yaml, size_t count, cpex_error *err)
{
    cpex__config *cfg = NULL;
    cpex_status st = parse(yaml, &cfg, err);
    if (st != CPEX_E_CONFIG || err->count != count)
        print_error("status %d, %zu problems:\n%s\n", st, err->count, cpex_error_message(err));
    assert_int_equal(st, CPEX_E_CONFIG);
    assert_null(cfg);
    assert_int_equal(err->count, count);
    return cpex_error_message(err);
}

static cpex__config *expect_ok(const char *yaml)
{
    cpex_error err;
    cpex__config *cfg = NULL;
    cpex_status st = parse(yaml, &cfg, &err);
    if (st != CPEX_OK)
        print_error("%s\n", cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    cpex_error_cleanup(&err);
    return cfg;
}

static void parses_both_backends(void **state)
{
    (void)state;
    cpex__config *cfg = expect_ok("plugins: []\n");
    assert_false(cfg->has_state);
    cpex__config_free(cfg);

    cfg = expect_ok("plugin_settings:\n"
                    "  state:\n"
                    "    backend: redis\n"
                    "    url: \"redis://user:pw@10.0.0.5:6380/2\"\n"
                    "    prefix: \"gw1:\"\n"
                    "    password: secret\n"
                    "    connect_timeout_ms: 250\n"
                    "    command_timeout_ms: 100\n"
                    "    pool_size: 16\n");
    assert_true(cfg->has_state);
    assert_int_equal(cfg->state_pos.line, 2);
    assert_int_equal(cfg->state.backend, CPEX_STATE_REDIS);
    assert_string_equal(cfg->state.url, "redis://user:pw@10.0.0.5:6380/2");
    assert_string_equal(cfg->state.prefix, "gw1:");
    assert_string_equal(cfg->state.password, "secret");
    assert_int_equal(cfg->state.connect_timeout_ms, 250);
    assert_int_equal(cfg->state.command_timeout_ms, 100);
    assert_int_equal(cfg->state.pool_size, 16);
    cpex__config_free(cfg);

    cfg = expect_ok("plugin_settings:\n  state: { max_keys: 50, max_bytes: 1048576 }\n"
                    "plugins:\n  - name: p\n    kind: k\n    hooks: [h]\n"
                    "    state_namespace: shared-limits\n");
    assert_int_equal(cfg->state.backend, CPEX_STATE_MEMORY);
    assert_int_equal(cfg->state.max_keys, 50);
    assert_int_equal(cfg->state.max_bytes, 1048576);
    assert_string_equal(cfg->plugins[0].state_namespace, "shared-limits");
    cpex__config_free(cfg);

    cfg = expect_ok(
        "plugin_settings:\n  state: { backend: redis, url: \"redis://[::1]\", prefix: \"\" }\n");
    assert_string_equal(cfg->state.prefix, "");
    cpex__config_free(cfg);
}

static void reports_every_problem_where_it_is(void **state)
{
    (void)state;
    cpex_error err;
    const char *m = expect_errors("plugin_settings:\n"
                                  "  state:\n"
                                  "    backend: reddis\n"
                                  "    comand_timeout_ms: 5\n",
                                  2, &err);
    assert_contains(m, "gw.yaml:3:14:");
    assert_contains(m, "unknown state backend 'reddis'; did you mean 'redis'?");
    assert_contains(m, "gw.yaml:4:5:");
    assert_contains(m, "unknown key 'comand_timeout_ms' in 'plugin_settings.state'; did you mean "
                       "'command_timeout_ms'?");
    cpex_error_cleanup(&err);

    m = expect_errors("plugin_settings:\n  state: { backend: redis }\n", 1, &err);
    assert_contains(m, "gw.yaml:2:3:");
    assert_contains(m, "needs a url; add url: \"redis://HOST:PORT/DB\"");
    cpex_error_cleanup(&err);

    m = expect_errors("plugin_settings:\n"
                      "  state:\n"
                      "    backend: redis\n"
                      "    url: \"http://x\"\n"
                      "    command_timeout_ms: 0\n"
                      "    connect_timeout_ms: \"5\"\n"
                      "    pool_size: 1000\n"
                      "    max_keys: 5\n"
                      "    prefix: \"a b\"\n"
                      "    pool_size: 2\n",
                      7, &err);
    assert_contains(m, "gw.yaml:4:10: 'plugin_settings.state.url' is not a usable redis URL: the "
                       "URL must start with redis://");
    assert_contains(
        m, "state.command_timeout_ms' must be an integer from 1 to 600000 (milliseconds), got 0");
    assert_contains(m, "state.connect_timeout_ms' must be an integer from 1 to 600000 "
                       "(milliseconds), got a string");
    assert_contains(m, "state.pool_size' must be an integer from 1 to 256 (connections), got 1000");
    assert_contains(m, "'plugin_settings.state.max_keys' applies to the memory backend, but this "
                       "state backend is redis; remove it");
    assert_contains(
        m,
        "'plugin_settings.state.prefix': the key prefix may not hold control bytes, spaces or DEL");
    assert_contains(m, "gw.yaml:10:5:");
    assert_contains(m, "duplicate key 'pool_size' (first at line 7)");
    cpex_error_cleanup(&err);

    m = expect_errors("plugin_settings:\n  state: { url: \"redis://h\" }\n", 1, &err);
    assert_contains(m, "'plugin_settings.state.url' applies to the redis backend, but this state "
                       "backend is memory (the "
                       "default); add backend: redis");
    cpex_error_cleanup(&err);

    const char *urls[] = {"redis://h:0", "redis://h:70000", "redis://h/x",
                          "redis://:",   "redis://u@h",     "redis://[::1"};
    const char *why[] = {"port must be a number from 1 to 65535",
                         "port must be",
                         "database after '/'",
                         "no host",
                         "needs a password",
                         "no closing ']'"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        char yaml[200];
        snprintf(yaml, sizeof yaml, "plugin_settings:\n  state: { backend: redis, url: \"%s\" }\n",
                 urls[i]);
        m = expect_errors(yaml, 1, &err);
        assert_contains(m, why[i]);
        cpex_error_cleanup(&err);
    }

    m = expect_errors("plugin_settings:\n  state: redis\n", 1, &err);
    assert_contains(m, "'plugin_settings.state' must be a mapping, e.g. { backend: memory }");
    cpex_error_cleanup(&err);

    m = expect_errors(
        "plugins:\n  - name: p\n    kind: k\n    hooks: [h]\n    state_namespace: a:b\n", 1, &err);
    assert_contains(m, "gw.yaml:5:22: plugin 'p'");
    assert_contains(m, "only letters, digits, '_', '.' and '-' (byte 2 is 0x3a)");
    cpex_error_cleanup(&err);
}

/* ------------------------------------------------------------------ */
/* Which configuration may choose the backend                          */
/* ------------------------------------------------------------------ */

static cpex_manager *manager(const cpex_state_options *so)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.state = so;
    o.log_level = CPEX_LOG_ERROR;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    return m;
}

static cpex_status load(cpex_manager *m, const char *yaml, const char *name, char **msg)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_load_string(m, yaml, strlen(yaml), name, NULL, &err);
    if (msg)
        *msg = strdup(cpex_error_message(&err));
    cpex_error_cleanup(&err);
    return st;
}

static char *origin(cpex_manager *m)
{
    cpex_state_status s;
    memset(&s, 0, sizeof s);
    s.struct_size = (uint32_t)sizeof s;
    assert_int_equal(cpex_manager_state_status(m, 0, &s), CPEX_OK);
    char *o = strdup(s.origin);
    cpex_state_status_cleanup(&s);
    return o;
}

#define REDIS_A "plugin_settings:\n  state: { backend: redis, url: \"redis://127.0.0.1:1\" }\n"
#define REDIS_B "plugin_settings:\n  state: { backend: redis, url: \"redis://127.0.0.1:2\" }\n"

/* Every allocation of a parse with a redis state section made to fail in
   turn: out of memory says so (CPEX_E_NOMEM), it never turns a valid file
   into an invalid one (the URL parser once called its own OOM a bad URL). */
static void out_of_memory_is_never_a_config_error(void **state)
{
    (void)state;
    static const char yaml[] = "plugin_settings:\n"
                               "  state:\n"
                               "    backend: redis\n"
                               "    url: \"redis://user:pw@[::1]:6380/2\"\n"
                               "    prefix: \"gw:\"\n"
                               "    connect_timeout_ms: 250\n"
                               "plugins: []\n";
    cpex__config *cfg = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex__alloc_count_reset();
    assert_int_equal(cpex__config_parse(yaml, sizeof yaml - 1, "s.yaml", NULL, &cfg, &err),
                     CPEX_OK);
    uint64_t allocs = cpex__alloc_count();
    cpex__config_free(cfg);
    assert_true(allocs > 0);
    for (uint64_t k = 1; k <= allocs; k++) {
        cpex__config *c2 = NULL;
        cpex_error e2 = CPEX_ERROR_INIT;
        cpex__alloc_fail_at(k);
        cpex_status st = cpex__config_parse(yaml, sizeof yaml - 1, "s.yaml", NULL, &c2, &e2);
        cpex__alloc_fail_at(0);
        if (st != CPEX_OK && st != CPEX_E_NOMEM)
            fail_msg("allocation %llu failing gave %s: %s", (unsigned long long)k,
                     cpex_status_name(st), cpex_error_message(&e2));
        cpex__config_free(c2);
        cpex_error_cleanup(&e2);
    }
}

static void one_backend_per_manager(void **state)
{
    (void)state;
    char *msg = NULL, *o = NULL;
    cpex_manager *m = manager(NULL);
    assert_string_equal(o = origin(m), "default");
    free(o);
    assert_int_equal(load(m, "plugin_settings:\n  state: { backend: memory }\n", "same.yaml", NULL),
                     CPEX_OK); /* the same as the default: nothing changes */
    assert_string_equal(o = origin(m), "default");
    free(o);
    /* a load that fails changes nothing */
    assert_int_not_equal(
        load(m, REDIS_A "plugins:\n  - {name: p, kind: nope, hooks: [h]}\n", "bad.yaml", NULL),
        CPEX_OK);
    assert_string_equal(o = origin(m), "default");
    free(o);
    assert_int_equal(load(m, REDIS_A, "a.yaml", NULL), CPEX_OK);
    assert_string_equal(o = origin(m), "a.yaml");
    free(o);
    assert_int_equal(load(m, REDIS_A, "again.yaml", NULL), CPEX_OK); /* the same again: fine */
    assert_int_equal(load(m, REDIS_B, "b.yaml", &msg), CPEX_E_CONFIG);
    assert_contains(msg, "b.yaml:2:3:");
    assert_contains(msg, "already redis 127.0.0.1:1 db 0, prefix 'cpex:' (chosen by a.yaml)");
    free(msg);
    cpex_manager_free(m);

    cpex_state_options so;
    cpex_state_options_init(&so);
    m = manager(&so);
    assert_string_equal(o = origin(m), "host options");
    free(o);
    assert_int_equal(load(m, REDIS_A, "a.yaml", &msg), CPEX_E_CONFIG);
    assert_contains(msg, "(chosen by host options)");
    free(msg);
    cpex_manager_free(m);

    /* bad host options are refused with a reason */
    so.backend = CPEX_STATE_REDIS;
    so.url = "redis://h:99999";
    cpex_manager_options mo;
    cpex_manager_options_init(&mo);
    mo.state = &so;
    cpex_manager *bad = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&mo, &bad, &err), CPEX_E_INVALID);
    assert_null(bad);
    assert_contains(cpex_error_message(&err), "port must be a number from 1 to 65535");
    cpex_error_cleanup(&err);
}

static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

static void not_after_plugins(void **state)
{
    (void)state;
    cpex_manager *m = manager(NULL);
    static const cpex_handler_reg h[] = {CPEX_HANDLER("h", allow, NULL)};
    cpex_plugin_registration reg;
    memset(&reg, 0, sizeof reg);
    reg.struct_size = (uint32_t)sizeof reg;
    reg.abi_version = CPEX_ABI_VERSION;
    reg.handler_count = 1;
    reg.handlers = h;
    cpex_plugin_spec spec;
    cpex_plugin_spec_init(&spec);
    spec.name = "early";
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    char *msg = NULL;
    assert_int_equal(load(m, REDIS_A, "late.yaml", &msg), CPEX_E_CONFIG);
    assert_contains(msg, "would change the state backend of a manager that already has plugins");
    free(msg);
    /* a bad namespace from code is refused */
    spec.name = "other";
    spec.state_namespace = "no spaces";
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_E_INVALID);
    assert_contains(cpex_error_message(&err), "state_namespace 'no spaces'");
    cpex_error_cleanup(&err);
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_both_backends),
        cmocka_unit_test(reports_every_problem_where_it_is),
        cmocka_unit_test(out_of_memory_is_never_a_config_error),
        cmocka_unit_test(one_backend_per_manager),
        cmocka_unit_test(not_after_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
