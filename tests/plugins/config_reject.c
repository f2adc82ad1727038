/* config_reject.c — a plugin that validates its `config:` block and rejects
   it with its own message: `limit` must be a positive integer. */
#include "common_plugin.h"

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    int64_t limit = cpex_config_int(host, config, "limit", -1);
    if (limit <= 0) {
        cpex_plugin_errorf(err, err_cap,
                           "config.limit must be a positive integer (got %lld); "
                           "set e.g. `limit: 10`",
                           (long long)limit);
        return CPEX_CREATE_CONFIG_REJECTED;
    }
    return TEST_REGISTER(out, "config-reject", "1.0.0", allow_handlers);
}

CPEX_PLUGIN(create, "config-reject", "1.0.0", "rejects a config without a positive limit",
            "cmf.tool_pre_invoke")
