/*
 * config_conditions.c — read a plugin's `conditions:` (see
 * routing_config.h): a list of conditions, each a mapping of fields
 * (tools, user_patterns, ...) to lists of names. How they match at run
 * time is conditions.c's business.
 */
#include "core/config_routes_internal.h"

#include "core/yaml_scalar.h"
#include "core/yaml_typed.h"
#include "util/alloc.h"
#include "util/strv.h"

static const char *const cond_keys[CPEX__C_COUNT] = {
    "server_ids", "tenant_ids", "tools",         "prompts",
    "resources",  "agents",     "user_patterns", "content_types",
};

void cpex__conds_free(cpex__conds *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++)
        for (int f = 0; f < CPEX__C_COUNT; f++)
            cpex_strv_free(c->items[i].field[f]);
    cpex__free(c->items);
    c->items = NULL;
    c->count = 0;
}

void cpex__rcfg_conditions(cpex__ydiag *diag, cpex__config *cfg, cpex__conds *out,
                           const cpex__ynode *v)
{
    if (!cpex__rcfg_section(diag, cfg, v, CPEX__YN_SEQ, "conditions",
                            "a list of conditions (- tools: [...])"))
        return;
    out->items = cpex__calloc(v->count ? v->count : 1, sizeof *out->items);
    if (!out->items) {
        diag->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->count; i++) {
        const cpex__ynode *c = v->kids[i];
        if (!cpex__ybudget(diag, c, NULL))
            return;
        if (c->type != CPEX__YN_MAP) {
            cpex__yreport(diag, c, "conditions",
                          "each condition must be a mapping (tools:, user_patterns: ...), got %s",
                          cpex__ydescribe(c));
            continue;
        }
        cpex__cond *cond = &out->items[out->count++];
        int first[CPEX__C_COUNT] = {0};
        for (size_t j = 0; j + 1 < c->count; j += 2) {
            const cpex__ynode *k = c->kids[j], *cv = c->kids[j + 1];
            const char *key = cpex__ykey_text(diag, k, "of a condition");
            if (!key)
                continue;
            int idx = cpex__ykey_index(key, cond_keys, CPEX__C_COUNT);
            if (idx < 0) {
                cpex__yreport_unknown(diag, k, key, "condition field", key, cond_keys,
                                      CPEX__C_COUNT, "valid fields");
                continue;
            }
            if (cpex__yrepeated(diag, k, first, idx, key))
                continue;
            size_t n = 0;
            char **vals = cpex__ywant_string_list(diag, cv, key, &n, "a, b");
            if (!vals) {
                if (!cpex__yis_null(cv) || diag->nomem)
                    continue;
                /* An explicit null is an absent field. */
                continue;
            }
            cond->field[idx] = vals;
            if (idx == CPEX__C_SERVER_IDS || idx == CPEX__C_TENANT_IDS || idx == CPEX__C_AGENTS ||
                idx == CPEX__C_CONTENT_TYPES) {
                static const char *const custom_key[CPEX__C_COUNT] = {
                    [CPEX__C_SERVER_IDS] = "server_id",
                    [CPEX__C_TENANT_IDS] = "tenant_id",
                    [CPEX__C_AGENTS] = "agent_id",
                    [CPEX__C_CONTENT_TYPES] = "content_type"};
                cpex__config_warn(diag, k,
                                  "condition field '%s' reads the custom extension value '%s' "
                                  "(libcpex has no MCP, agent or claims slot for it); a request "
                                  "without that value does not match this condition",
                                  key, custom_key[idx]);
            }
        }
    }
}
