/*
 * compat_plugin.c — a plugin built against the FROZEN headers of ABI 1.1
 * (tests/compat/v1_1/include), never against the current ones. It uses what
 * 1.1 added: the SDK fills handler_size, the entries are written with
 * CPEX_HANDLER and the new names (CPEX_CREATE_OK, the `handler` alias),
 * two handlers make the host walk the array with the declared stride, and
 * the post handler uses a state slot (the last group 1.1 added).
 * Do not edit the frozen headers; add tests/compat/v1_<n>/ for new minors.
 */
#include <cpex/plugin.h>

static const cpex_host_api *g_host;

static int32_t compat_pre(void *self, const cpex_call *call)
{
    (void)self;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    g_host->set_metadata(call, "compat_abi", g_host->json_new_string("1.1", 3));
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

static int32_t compat_post(void *self, const cpex_call *call)
{
    (void)self;
    g_host->set_metadata(call, "compat_post", g_host->json_new_bool(1));
    /* A slot 1.1 added late (shared state): counted through the host. */
    int64_t posts = 0;
    if (CPEX_HOST_HAS(g_host, state_incr) &&
        g_host->state_incr(call, "posts", 1, 0, &posts, NULL) == CPEX_HOST_OK)
        g_host->set_metadata(call, "compat_posts", g_host->json_new_integer(posts));
    return CPEX_ALLOW;
}

static const cpex_handler_reg compat_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", compat_pre, "cmf"),
    {.hook = "cmf.tool_post_invoke", .handler = compat_post, .payload_type = "cmf"},
};

static int32_t compat_create(const cpex_host_api *host, const cpex_plugin_config *config,
                             cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    (void)err;
    (void)err_cap;
    g_host = host;
    out->name = "compat-1.1";
    out->version = "1.1.0";
    out->handler_count = 2;
    out->handlers = compat_handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(compat_create, "compat-1.1", "1.1.0", "Built against the frozen ABI 1.1 headers",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke")
