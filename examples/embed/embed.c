/*
 * embed.c — the smallest useful host: a manager, one plugin compiled into
 * the host, a YAML configuration, and one invoke. Built and run by the
 * tests (tests/scripts/test_embed.sh); the README quotes it.
 */
#include <stdio.h>
#include <string.h>

#include <cpex/cpex.h>

/* A handler: deny tool calls named "rm_rf", allow the rest. */
static int32_t guard(void *instance, const cpex_call *call)
{
    (void)instance;
    const cpex_host_api *host = cpex_host_api_get();
    const cpex_cmf_message *msg = call->payload ? call->payload->data : NULL;
    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_part *part = &msg->parts[i];
        if (part->kind != CPEX_PART_TOOL_CALL)
            continue;
        const cpex_cmf_tool_call *tc = part->body;
        if (strcmp(tc->name.ptr, "rm_rf") == 0) {
            host->deny(call, "dangerous_tool", "rm_rf is never allowed", NULL, NULL);
            return CPEX_DENY;
        }
    }
    return CPEX_ALLOW;
}

static const cpex_handler_reg guard_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", guard, "cmf")};

/* A factory for kind "builtin/guard": how YAML names a compiled-in plugin. */
static cpex_status guard_factory(void *data, const cpex_factory_request *request,
                                 cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)request;
    (void)err;
    out->registration.name = "guard";
    out->registration.version = "1.0.0";
    out->registration.handler_count = 1;
    out->registration.handlers = guard_handlers;
    return CPEX_OK;
}

static const char config_yaml[] = "plugins:\n"
                                  "  - name: tool-guard\n"
                                  "    kind: builtin/guard\n"
                                  "    hooks: [cmf.tool_pre_invoke]\n"
                                  "    mode: sequential\n"
                                  "    priority: 10\n";

static int run(cpex_manager *mgr, const char *request_json)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *msg = cpex_cmf_parse(request_json, strlen(request_json), &err);
    if (!msg) {
        fprintf(stderr, "bad request: %s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        return 1;
    }
    cpex_payload payload = cpex_payload_cmf(msg);
    cpex_pipeline_result result = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_invoke(mgr, "cmf.tool_pre_invoke", &payload, NULL, NULL, &result);
    if (result.continue_processing)
        printf("allow\n");
    else
        printf("deny: [%s] %s (plugin %s)\n", result.violation->code, result.violation->reason,
               result.violation->plugin_name);
    cpex_pipeline_result_cleanup(&result);
    cpex_cmf_free(msg);
    return 0;
}

int main(void)
{
    cpex_error err = CPEX_ERROR_INIT;
    cpex_manager *mgr = NULL;
    cpex_factory factory = {sizeof factory, guard_factory, NULL, NULL};
    if (cpex_manager_new(NULL, &mgr, &err) != CPEX_OK ||
        cpex_loader_register(mgr, &err) != CPEX_OK || /* lets YAML name lib: plugins too */
        cpex_manager_register_factory(mgr, "builtin/guard", &factory, &err) != CPEX_OK ||
        cpex_manager_load_string(mgr, config_yaml, strlen(config_yaml), "embed.yaml", NULL, &err) !=
            CPEX_OK ||
        cpex_manager_initialize(mgr, &err) != CPEX_OK) {
        fprintf(stderr, "setup failed:\n%s\n", cpex_error_message(&err));
        cpex_error_cleanup(&err);
        cpex_manager_free(mgr);
        return 1;
    }
    int rc =
        run(mgr, "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\","
                 "\"content\":{\"tool_call_id\":\"1\",\"name\":\"search\",\"arguments\":{}}}]}");
    rc |= run(mgr, "{\"role\":\"assistant\",\"content\":[{\"content_type\":\"tool_call\","
                   "\"content\":{\"tool_call_id\":\"2\",\"name\":\"rm_rf\",\"arguments\":{}}}]}");
    cpex_manager_free(mgr); /* shuts down and destroys every plugin */
    return rc;
}
