/*
 * test_ownership.c — one rule: a function that takes ownership takes it
 * whether it succeeds or fails.
 *
 * cpex_manager_register takes the registration's instance: every failure
 * (bad spec, bad registration, name taken, unknown payload type, hooks the
 * plugin does not serve, initialize failure, after shutdown, NULL manager,
 * out of memory at any allocation) destroys it exactly once, and a success
 * destroys it once at cpex_manager_free. The instances are malloc'd and
 * freed by destroy, so under ASan (make test-asan) a path that forgets
 * destroy leaks and one that calls it twice is a double free.
 * cpex_manager_register_factory / _scheme take the factory's data the same
 * way; cpex_manager_invoke takes the context table even without a result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "cpex/cpex.h"
#include "util/alloc.h"

#define PRE "cmf.tool_pre_invoke"

static void quiet_log(void *user, uint32_t level, const char *plugin, const char *message)
{
    (void)user, (void)level, (void)plugin, (void)message;
}

static cpex_manager *new_manager(void)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.log = quiet_log;
    cpex_manager *m = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_new(&o, &m, &err), CPEX_OK);
    cpex_error_cleanup(&err);
    return m;
}

/* ---- a plugin compiled into the host, with a heap instance ---- */

static int destroyed; /* destroy calls since the last reset */

typedef struct instance {
    int init_rc;
    char tag[16];
} instance;

static int32_t allow(void *self, const cpex_call *call)
{
    (void)self, (void)call;
    return CPEX_ALLOW;
}

static int32_t init(void *self, char *err, size_t cap)
{
    instance *in = self;
    if (in->init_rc)
        snprintf(err, cap, "initialize refuses");
    return in->init_rc;
}

static void destroy(void *self)
{
    destroyed++;
    free(self);
}

static cpex_handler_reg handlers[2];

/* A fresh spec named `name` and a registration over a new heap instance. */
static void make(const char *name, cpex_plugin_spec *spec, cpex_plugin_registration *reg)
{
    cpex_plugin_spec_init(spec);
    spec->name = name;
    handlers[0] = (cpex_handler_reg)CPEX_HANDLER(PRE, allow, "cmf");
    memset(reg, 0, sizeof *reg);
    reg->struct_size = (uint32_t)sizeof *reg;
    reg->abi_version = CPEX_ABI_VERSION;
    reg->instance = calloc(1, sizeof(instance));
    assert_non_null(reg->instance);
    reg->initialize = init;
    reg->destroy = destroy;
    reg->handler_count = 1;
    reg->handlers = handlers;
}

/* Register; expect `want` and exactly one destroy by the time it returns. */
static void expect_destroyed_once(cpex_manager *m, const cpex_plugin_spec *spec,
                                  const cpex_plugin_registration *reg, cpex_status want)
{
    destroyed = 0;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_status st = cpex_manager_register(m, spec, reg, &err);
    if (st != want)
        print_error("expected %s, got %s: %s\n", cpex_status_name(want), cpex_status_name(st),
                    cpex_error_message(&err));
    assert_int_equal(st, want);
    cpex_error_cleanup(&err);
    assert_int_equal(destroyed, 1);
}

static void test_register_failures_destroy_once(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;

    make("taken", &spec, &reg);
    destroyed = 0;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, NULL), CPEX_OK);
    assert_int_equal(destroyed, 0);

    /* duplicate name */
    make("taken", &spec, &reg);
    expect_destroyed_once(m, &spec, &reg, CPEX_E_EXISTS);
    /* bad registration: no handlers; a NULL function; too small a handler_size */
    make("bad", &spec, &reg);
    reg.handler_count = 0;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_LOAD);
    make("bad", &spec, &reg);
    handlers[0].fn = NULL;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_LOAD);
    make("bad", &spec, &reg);
    reg.handler_size = 4;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_LOAD);
    /* a payload type the manager does not know; one the hook does not carry */
    make("typed", &spec, &reg);
    handlers[0].payload_type = "no-such-type";
    expect_destroyed_once(m, &spec, &reg, CPEX_E_TYPE);
    make("typed", &spec, &reg);
    handlers[0].payload_type = "json";
    expect_destroyed_once(m, &spec, &reg, CPEX_E_TYPE);
    /* hooks: names a hook the plugin does not serve */
    make("listed", &spec, &reg);
    const char *other[] = {"cmf.llm_output"};
    spec.hooks = other;
    spec.hook_count = 1;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_CONFIG);
    /* a bad spec: mode, capability, no name */
    make("spec", &spec, &reg);
    spec.mode = 99;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_INVALID);
    make("spec", &spec, &reg);
    const char *caps[] = {"read_everything"};
    spec.capabilities = caps;
    spec.capability_count = 1;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_CONFIG);
    make("spec", &spec, &reg);
    spec.name = NULL;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_INVALID);
    /* no manager at all */
    make("orphan", &spec, &reg);
    expect_destroyed_once(NULL, &spec, &reg, CPEX_E_INVALID);

    /* initialize fails on an initialized manager: destroyed, never shut down */
    assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
    make("late", &spec, &reg);
    ((instance *)reg.instance)->init_rc = 1;
    expect_destroyed_once(m, &spec, &reg, CPEX_E_PLUGIN);
    /* after shutdown */
    cpex_manager_shutdown(m);
    make("after", &spec, &reg);
    expect_destroyed_once(m, &spec, &reg, CPEX_E_STATE);

    assert_int_equal(cpex_manager_plugin_count(m), 1);
    destroyed = 0;
    cpex_manager_free(m);
    assert_int_equal(destroyed, 1); /* the one registered */
}

/* Every allocation of a register may fail: each run ends with exactly one
   destroy — at once on failure, at cpex_manager_free on success. */
static void test_register_out_of_memory_destroys_once(void **state)
{
    (void)state;
    int completed = 0;
    for (uint64_t n = 1; n < 2000 && !completed; n++) {
        cpex_manager *m = new_manager();
        assert_int_equal(cpex_manager_initialize(m, NULL), CPEX_OK);
        cpex_plugin_spec spec;
        cpex_plugin_registration reg;
        make("oom", &spec, &reg);
        destroyed = 0;
        cpex__alloc_fail_at(n);
        cpex_status st = cpex_manager_register(m, &spec, &reg, NULL);
        int failed = cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (st != CPEX_OK) {
            assert_true(failed);
            assert_int_equal(destroyed, 1);
        } else {
            assert_int_equal(destroyed, 0);
            completed = !failed;
        }
        cpex_manager_free(m);
        assert_int_equal(destroyed, 1);
    }
    assert_true(completed);
}

/* ---- factories ---- */

static int factory_destroyed;

static void factory_destroy(void *data)
{
    factory_destroyed++;
    free(data);
}

static cpex_status factory_create(void *data, const cpex_factory_request *req,
                                  cpex_factory_product *out, cpex_error *err)
{
    (void)data, (void)req, (void)out, (void)err;
    return CPEX_E_INVALID; /* never called: no configuration is loaded */
}

static cpex_factory factory(void)
{
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = factory_create;
    f.data = malloc(8);
    f.destroy = factory_destroy;
    return f;
}

static void test_factory_failures_destroy_data_once(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    cpex_factory f = factory();
    factory_destroyed = 0;
    assert_int_equal(cpex_manager_register_factory(m, "", &f, NULL), CPEX_E_INVALID);
    assert_int_equal(factory_destroyed, 1);
    f = factory();
    assert_int_equal(cpex_manager_register_scheme(m, "a:b", &f, NULL), CPEX_E_INVALID);
    assert_int_equal(factory_destroyed, 2);
    f = factory();
    f.create = NULL;
    assert_int_equal(cpex_manager_register_scheme(m, "ok", &f, NULL), CPEX_E_INVALID);
    assert_int_equal(factory_destroyed, 3);
    f = factory();
    assert_int_equal(cpex_manager_register_factory(NULL, "kind", &f, NULL), CPEX_E_INVALID);
    assert_int_equal(factory_destroyed, 4);
    /* out of memory while storing it */
    f = factory();
    cpex__alloc_fail_at(1);
    assert_int_equal(cpex_manager_register_scheme(m, "oom", &f, NULL), CPEX_E_NOMEM);
    cpex__alloc_fail_at(0);
    assert_int_equal(factory_destroyed, 5);
    /* a success is destroyed with the manager */
    f = factory();
    assert_int_equal(cpex_manager_register_scheme(m, "kept", &f, NULL), CPEX_OK);
    cpex_manager_free(m);
    assert_int_equal(factory_destroyed, 6);
}

/* ---- invoke ---- */

static void test_invoke_takes_context_without_result(void **state)
{
    (void)state;
    cpex_manager *m = new_manager();
    cpex_context_table *ctx = cpex_context_table_new();
    assert_non_null(ctx);
    /* no result to hand it back in: freed (ASan reports a leak otherwise) */
    cpex_manager_invoke(m, PRE, NULL, NULL, ctx, NULL);
    cpex_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_failures_destroy_once),
        cmocka_unit_test(test_register_out_of_memory_destroys_once),
        cmocka_unit_test(test_factory_failures_destroy_data_once),
        cmocka_unit_test(test_invoke_takes_context_without_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
