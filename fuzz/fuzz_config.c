/*
 * fuzz_config.c — the YAML configuration loader (src/core/config_yaml.c),
 * from bytes: cpex__config_parse on the input, no file system.
 *
 * Checked on every input:
 *   - success: an output, no error item, and a well-formed configuration
 *     (each plugin has a name, a kind, at least one hook, NULL-terminated
 *     lists whose counts match, a valid mode and on_error, a config value);
 *   - failure: no output, at least one error item, each with a message,
 *     and the status is the first item's code;
 *   - then the same input again with one allocation made to fail (which
 *     one is derived from the input, among those the first parse made):
 *     the parse must end in CPEX_E_NOMEM, or succeed/fail exactly as the
 *     first time (the failed allocation was handled and retried or was
 *     not needed); never crash, leak, or succeed with a different result.
 *     (YAML is turned into JSON with json_object/json_string, not
 *     json_loadb, so jansson's lexer bug under allocation failure is not
 *     reached here; see docs/testing.md.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "util/alloc.h"
#include "fuzz_common.h"

static size_t strv_len(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static void check_config(const cpex__config *cfg)
{
    CHECK(cfg->source && strcmp(cfg->source, "fuzz.yaml") == 0);
    CHECK(cfg->plugin_count == 0 || cfg->plugins);
    CHECK(!cfg->has_plugin_timeout ||
          (cfg->plugin_timeout >= CPEX_TIMEOUT_MIN && cfg->plugin_timeout <= CPEX_TIMEOUT_MAX));
    CHECK(strv_len(cfg->warnings) == cfg->warning_count);
    for (size_t i = 0; i < cfg->plugin_count; i++) {
        const cpex__config_plugin *p = &cfg->plugins[i];
        CHECK(p->name && p->kind);
        CHECK(p->hook_count >= 1 && strv_len(p->hooks) == p->hook_count);
        for (size_t h = 0; h < p->hook_count; h++)
            CHECK(p->hooks[h][0] != '\0');
        CHECK(p->mode <= CPEX_MODE_DISABLED);
        CHECK((unsigned)p->on_error <= CPEX_ON_ERROR_DISABLE);
        CHECK(p->timeout == 0 ||
              (p->timeout >= CPEX_TIMEOUT_MIN && p->timeout <= CPEX_TIMEOUT_MAX));
        CHECK(p->capabilities && strv_len(p->capabilities) == p->capability_count);
        CHECK(p->tags && strv_len(p->tags) == p->tag_count);
        CHECK(p->config);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(cfg->plugins[j].name, p->name) != 0);
    }
}

static void check_error(cpex_status st, cpex_error *err)
{
    CHECK(err->count >= 1 && err->code == st);
    for (size_t i = 0; i < err->count; i++)
        CHECK(err->items[i].message && err->items[i].message[0]);
    CHECK(cpex_error_message(err)[0] != '\0');
}

/* The same outcome: status and, on success, the plugin names and kinds. */
static int same_config(const cpex__config *a, const cpex__config *b)
{
    if (a->plugin_count != b->plugin_count || a->warning_count != b->warning_count)
        return 0;
    for (size_t i = 0; i < a->plugin_count; i++)
        if (strcmp(a->plugins[i].name, b->plugins[i].name) != 0 ||
            strcmp(a->plugins[i].kind, b->plugins[i].kind) != 0 ||
            a->plugins[i].hook_count != b->plugins[i].hook_count ||
            a->plugins[i].capability_count != b->plugins[i].capability_count ||
            !json_equal(a->plugins[i].config, b->plugins[i].config))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cpex__config *cfg = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    cpex__alloc_count_reset();
    cpex_status st = cpex__config_parse((const char *)data, size, "fuzz.yaml", NULL, &cfg, &err);
    uint64_t allocs = cpex__alloc_count();
    if (st == CPEX_OK) {
        CHECK(cfg && err.count == 0);
        check_config(cfg);
    } else {
        CHECK(!cfg);
        CHECK(st == CPEX_E_CONFIG); /* no allocation failed: never NOMEM */
        check_error(st, &err);
    }
    cpex_error_cleanup(&err);

    /* Again, with one allocation failing. */
    if (allocs > 0) {
        uint64_t h = 1469598103934665603ull; /* FNV-1a of the input picks which one */
        for (size_t i = 0; i < size; i++)
            h = (h ^ data[i]) * 1099511628211ull;
        cpex__config *cfg2 = NULL;
        cpex_error err2 = CPEX_ERROR_INIT;
        cpex__alloc_fail_at(h % allocs + 1);
        cpex_status st2 =
            cpex__config_parse((const char *)data, size, "fuzz.yaml", NULL, &cfg2, &err2);
        int failed = cpex__alloc_failed();
        cpex__alloc_fail_at(0);
        if (st2 == CPEX_OK) {
            CHECK(cfg2 && err2.count == 0);
            check_config(cfg2);
            /* an allocation failure must never produce a different configuration */
            CHECK(st == CPEX_OK && same_config(cfg, cfg2));
        } else {
            CHECK(!cfg2);
            CHECK(err2.code != CPEX_OK); /* an item, or at least the code (item OOM) */
            /* out of memory says so; a valid file may not turn "invalid" */
            CHECK(st2 == CPEX_E_NOMEM || (st2 == CPEX_E_CONFIG && st == CPEX_E_CONFIG));
            CHECK(failed || st2 == st);
        }
        cpex_error_cleanup(&err2);
        cpex__config_free(cfg2);
    }
    cpex__config_free(cfg);
    return 0;
}
