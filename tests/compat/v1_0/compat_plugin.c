/*
 * compat_plugin.c — a plugin built against the FROZEN headers of ABI 1.0
 * (tests/compat/v1_0/include), never against the current ones. When the
 * ABI grows (a new minor), this library must keep loading and working in
 * the newer host: that is the promise of DESIGN.md's versioning rule.
 * Do not edit the frozen headers; add tests/compat/v1_<n>/ for new minors.
 */
#include <cpex/plugin.h>

static const cpex_host_api *g_host;

/* Uses slots of 1.0 only: deny, set_metadata, ctx_set, json builders. */
static int32_t compat_pre(void *self, const cpex_call *call)
{
    (void)self;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    g_host->set_metadata(call, "compat_abi", g_host->json_new_string("1.0", 3));
    g_host->ctx_set(call, CPEX_CTX_LOCAL, "seen", g_host->json_new_bool(1));
    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_tool_call *tc = cpex_part_tool_call(&msg->parts[i]);
        if (tc && cpex_str_eq(tc->name, "forbidden")) {
            g_host->deny(call, "compat.denied", "tool 'forbidden' is denied", NULL, NULL);
            return CPEX_DENY;
        }
    }
    return CPEX_ALLOW;
}

static const cpex_handler_reg compat_handlers[] = {
    {"cmf.tool_pre_invoke", compat_pre, "cmf"},
};

static int32_t compat_create(const cpex_host_api *host, const cpex_plugin_config *config,
                             cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    (void)err;
    (void)err_cap;
    g_host = host;
    out->name = "compat-1.0";
    out->version = "1.0.0";
    out->handler_count = 1;
    out->handlers = compat_handlers;
    return CPEX_PLUGIN_OK;
}

CPEX_PLUGIN(compat_create, "compat-1.0", "1.0.0", "Built against the frozen ABI 1.0 headers",
            "cmf.tool_pre_invoke")
