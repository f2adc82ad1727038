/* test_config.c — the YAML configuration: parsing, JSON conversion, every error class. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/routing_config.h"
#include "util/alloc.h"

#ifndef CPEX_SOURCE_DIR
#define CPEX_SOURCE_DIR "."
#endif
#define DATA_DIR CPEX_SOURCE_DIR "/tests/data/config"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Parse `yaml` named "plugins.yaml"; the error object is left in *err. */
static cpex_status parse(const char *yaml, cpex__config **out, cpex_error *err)
{
    cpex_error_init(err);
    return cpex__config_parse(yaml, strlen(yaml), "plugins.yaml", NULL, out, err);
}

/* Parse `yaml`, expect CPEX_E_CONFIG with `count` items (0: any), return the text (owned by err). */
static const char *expect_errors(const char *yaml, size_t count, cpex_error *err)
{
    cpex__config *cfg = (cpex__config *)0x1;
    cpex_status st = parse(yaml, &cfg, err);
    if (st != CPEX_E_CONFIG)
        print_error("status %d, messages:\n%s\n", st, cpex_error_message(err));
    assert_int_equal(st, CPEX_E_CONFIG);
    assert_null(cfg);
    assert_int_equal(err->code, CPEX_E_CONFIG);
    assert_true(err->count > 0);
    if (count && err->count != count)
        print_error("expected %zu errors, got %zu:\n%s\n", count, err->count,
                    cpex_error_message(err));
    if (count)
        assert_int_equal(err->count, count);
    return cpex_error_message(err);
}

/* Parse `yaml`, expect success. */
static cpex__config *expect_ok(const char *yaml)
{
    cpex_error err;
    cpex__config *cfg = NULL;
    cpex_status st = parse(yaml, &cfg, &err);
    if (st != CPEX_OK)
        print_error("status %d, messages:\n%s\n", st, cpex_error_message(&err));
    assert_int_equal(st, CPEX_OK);
    assert_int_equal(err.count, 0);
    assert_non_null(cfg);
    cpex_error_cleanup(&err);
    return cfg;
}

static int setup_all(void **state)
{
    (void)state;
    cpex__alloc_hook_jansson();
    return 0;
}

#define PLUGIN_HEAD "plugins:\n  - name: p\n    kind: k\n    hooks: [h]\n"

/* ------------------------------------------------------------------ */
/* Valid configurations                                                */
/* ------------------------------------------------------------------ */

static void check_full(const cpex__config *cfg)
{
    assert_true(cfg->has_plugin_timeout);
    assert_true(fabs(cfg->plugin_timeout - 2.5) < 1e-12);
    assert_true(cfg->has_short_circuit);
    assert_false(cfg->short_circuit_on_deny);
    assert_int_equal(cfg->warning_count, 0);
    assert_non_null(cfg->warnings);
    assert_null(cfg->warnings[0]);
    assert_int_equal(cfg->plugin_count, 2);

    const cpex__config_plugin *p = &cfg->plugins[0];
    assert_string_equal(p->name, "rate-limit");
    assert_string_equal(p->kind, "builtin/rate_limit");
    assert_string_equal(p->description, "Limits requests per subject");
    assert_string_equal(p->author, "Ops team");
    assert_string_equal(p->version, "1.0"); /* as written, not the float 1 */
    assert_int_equal(p->hook_count, 2);
    assert_string_equal(p->hooks[0], "tool_pre_invoke");
    assert_string_equal(p->hooks[1], "tool_post_invoke");
    assert_null(p->hooks[2]);
    assert_int_equal(p->mode, CPEX_MODE_CONCURRENT);
    assert_int_equal(p->priority, -5);
    assert_true(p->has_on_error);
    assert_int_equal(p->on_error, CPEX_ON_ERROR_IGNORE);
    assert_true(fabs(p->timeout - 3.0) < 1e-12);
    assert_int_equal(p->capability_count, 2);
    assert_string_equal(p->capabilities[0], "read_subject");
    assert_string_equal(p->capabilities[1], "read_headers");
    assert_null(p->capabilities[2]);
    assert_int_equal(p->caps, CPEX_CAP_READ_SUBJECT | CPEX_CAP_READ_HEADERS);
    assert_int_equal(p->tag_count, 2);
    assert_string_equal(p->tags[0], "security");
    assert_string_equal(p->tags[1], "rate");
    assert_null(p->tags[2]);
    assert_true(json_is_object(p->config));
    assert_int_equal(json_integer_value(json_object_get(p->config, "limit")), 10);
    /* Positions: the entry (its mapping), the kind value, the hooks value. */
    assert_int_equal(p->pos.line, 8);
    assert_int_equal(p->pos.column, 5);
    assert_int_equal(p->kind_pos.line, 9);
    assert_int_equal(p->kind_pos.column, 11);
    assert_int_equal(p->hooks_pos.line, 13);
    assert_int_equal(p->hooks_pos.column, 12);

    p = &cfg->plugins[1];
    assert_string_equal(p->name, "audit");
    assert_string_equal(p->kind, "lib:./libaudit.so");
    assert_int_equal(p->hook_count, 1);
    assert_string_equal(p->hooks[0], "cmf.tool_pre_invoke");
    assert_int_equal(p->hooks_pos.line, 30);
    assert_int_equal(p->hooks_pos.column, 7);

    /* global and routes are kept as JSON. */
    assert_non_null(cfg->global);
    json_t *all = json_object_get(json_object_get(cfg->global, "policies"), "all");
    assert_string_equal(json_string_value(json_array_get(json_object_get(all, "plugins"), 0)),
                        "rate-limit");
    assert_true(json_is_array(cfg->routes));
    assert_string_equal(json_string_value(json_object_get(json_array_get(cfg->routes, 0), "tool")),
                        "*");
    /* ... and parsed for routing (routing_config.h). */
    assert_non_null(cfg->routing);
    assert_true(cfg->routing->enabled);
    assert_int_equal(cfg->routing->cache_max, 500);
    assert_int_equal(cfg->routing->group_count, 1);
    assert_string_equal(cfg->routing->groups[0].where, "global.policies.all");
    assert_int_equal(cfg->routing->route_count, 1);
    assert_int_equal(cfg->routing->routes[0].kind, CPEX__MATCH_ANY);
    assert_string_equal(cfg->routing->routes[0].plugins.items[0].name, "audit");
}

static void test_full_config(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = test_read_file(DATA_DIR "/full.yaml", &len);
    assert_non_null(text);
    cpex_error err = CPEX_ERROR_INIT;
    cpex__config *cfg = NULL;
    assert_int_equal(cpex__config_parse(text, len, "full.yaml", "/etc/cpex", &cfg, &err), CPEX_OK);
    free(text);
    assert_string_equal(cfg->source, "full.yaml");
    assert_string_equal(cfg->base_dir, "/etc/cpex");
    check_full(cfg);
    cpex__config_free(cfg);
    cpex_error_cleanup(&err);
}

static void test_defaults(void **state)
{
    (void)state;
    cpex__config *cfg = expect_ok(PLUGIN_HEAD);
    assert_string_equal(cfg->source, "plugins.yaml");
    assert_null(cfg->base_dir);
    assert_false(cfg->has_plugin_timeout);
    assert_false(cfg->has_short_circuit);
    assert_null(cfg->global);
    assert_null(cfg->routes);
    assert_int_equal(cfg->plugin_count, 1);
    const cpex__config_plugin *p = &cfg->plugins[0];
    assert_string_equal(p->name, "p");
    assert_string_equal(p->kind, "k");
    assert_null(p->description);
    assert_null(p->author);
    assert_null(p->version);
    assert_int_equal(p->mode, CPEX_MODE_SEQUENTIAL);
    assert_int_equal(p->priority, 100);
    assert_false(p->has_on_error);
    assert_true(p->timeout == 0.0);
    assert_int_equal(p->capability_count, 0);
    assert_non_null(p->capabilities);
    assert_null(p->capabilities[0]);
    assert_int_equal(p->caps, 0);
    assert_int_equal(p->tag_count, 0);
    assert_non_null(p->tags);
    assert_null(p->tags[0]);
    assert_true(json_is_null(p->config));
    cpex__config_free(cfg);

    /* No plugins at all is a valid (empty) configuration. */
    cfg = expect_ok("plugins: []\n");
    assert_int_equal(cfg->plugin_count, 0);
    cpex__config_free(cfg);
    cfg = expect_ok("plugin_settings: {plugin_timeout: 1}\nplugins:\n");
    assert_int_equal(cfg->plugin_count, 0);
    assert_true(cfg->plugin_timeout == 1.0);
    cpex__config_free(cfg);
    cfg = expect_ok("global:\nroutes: []\nplugins: []\n");
    assert_true(json_is_null(cfg->global));
    assert_true(json_is_array(cfg->routes));
    cpex__config_free(cfg);
    /* NULL source names the text "<string>". */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex__config_parse("plugins: []", 11, NULL, NULL, &cfg, &err), CPEX_OK);
    assert_string_equal(cfg->source, "<string>");
    cpex__config_free(cfg);
    cpex__config_free(NULL);
}


static void test_settings(void **state)
{
    (void)state;
    cpex__config *cfg =
        expect_ok("plugin_settings:\n  plugin_timeout: 30\n  short_circuit_on_deny: true\n"
                  "plugins: []\n");
    assert_true(cfg->plugin_timeout == 30.0);
    assert_true(cfg->short_circuit_on_deny);
    cpex__config_free(cfg);
    /* Both ends of the documented range are accepted. */
    cfg = expect_ok("plugin_settings: {plugin_timeout: 86400}\nplugins:\n"
                    "  - {name: p, kind: k, hooks: [h], timeout: 0.001}\n"
                    "  - {name: q, kind: k, hooks: [h], timeout: 1}\n");
    assert_true(cfg->plugin_timeout == CPEX_TIMEOUT_MAX);
    assert_true(cfg->plugins[0].timeout == CPEX_TIMEOUT_MIN);
    assert_true(cfg->plugins[1].timeout == 1.0);
    cpex__config_free(cfg);
}


/* A repeated capability is kept once. */
static void test_capability_kept_once(void **state)
{
    (void)state;
    cpex__config *cfg = expect_ok(PLUGIN_HEAD "    capabilities: [read_roles, read_roles, "
                                              "write_custom]\n");
    assert_int_equal(cfg->plugins[0].capability_count, 2);
    assert_string_equal(cfg->plugins[0].capabilities[0], "read_roles");
    assert_string_equal(cfg->plugins[0].capabilities[1], "write_custom");
    assert_null(cfg->plugins[0].capabilities[2]);
    assert_int_equal(cfg->plugins[0].caps, CPEX_CAP_READ_ROLES | CPEX_CAP_WRITE_CUSTOM);
    cpex__config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* The config block as JSON: YAML in, the JSON a plugin gets out      */
/* ------------------------------------------------------------------ */

typedef struct block_case {
    const char *name;
    const char *yaml;     /* a configuration of one plugin, p */
    const char *expected; /* p's config block, as JSON text (integers and reals differ) */
} block_case;

static const block_case block_cases[] = {
    {"every kind of scalar, list, mapping and alias",
     PLUGIN_HEAD "    config:\n"
                 "      i: 42\n"
                 "      neg: -7\n"
                 "      hex: 0x1F\n"
                 "      oct: 0o17\n"
                 "      big: 9223372036854775807\n"
                 "      f: 1.5\n"
                 "      e: 2e3\n"
                 "      dot: .5\n"
                 "      t: true\n"
                 "      F: False\n"
                 "      n1: null\n"
                 "      n2: ~\n"
                 "      n3:\n"
                 "      s: hello world\n"
                 "      qtrue: \"true\"\n"
                 "      q42: '42'\n"
                 "      qnull: \"null\"\n"
                 "      yes: yes\n" /* YAML 1.2: a string */
                 "      ver: 1.2.3\n"
                 "      block: |\n"
                 "        line one\n"
                 "        line two\n"
                 "      list: [1, a, 2.0, [], {}]\n"
                 "      nested: {a: {b: {c: [x]}}}\n"
                 "      1: numeric key\n"
                 "      anchor: &A {k: v}\n"
                 "      alias: *A\n",
     "{\"i\": 42, \"neg\": -7, \"hex\": 31, \"oct\": 15, \"big\": 9223372036854775807,"
     " \"f\": 1.5, \"e\": 2000.0, \"dot\": 0.5, \"t\": true, \"F\": false,"
     " \"n1\": null, \"n2\": null, \"n3\": null, \"s\": \"hello world\","
     " \"qtrue\": \"true\", \"q42\": \"42\", \"qnull\": \"null\", \"yes\": \"yes\","
     " \"ver\": \"1.2.3\", \"block\": \"line one\\nline two\\n\","
     " \"list\": [1, \"a\", 2.0, [], {}], \"nested\": {\"a\": {\"b\": {\"c\": [\"x\"]}}},"
     " \"1\": \"numeric key\", \"anchor\": {\"k\": \"v\"}, \"alias\": {\"k\": \"v\"}}"},
    {"a list", PLUGIN_HEAD "    config: [1, 2]\n", "[1, 2]"},
    {"a scalar", PLUGIN_HEAD "    config: 3.25\n", "3.25"},
    {"nothing", PLUGIN_HEAD "    config:\n", "null"},
};

static void test_config_block(void **state)
{
    const block_case *c = *state;
    cpex__config *cfg = expect_ok(c->yaml);
    json_error_t jerr;
    json_t *expected = json_loads(c->expected, JSON_DECODE_ANY, &jerr);
    if (!expected)
        fail_msg("bad expected JSON in case '%s': %s", c->name, jerr.text);
    json_t *got = cfg->plugins[0].config;
    if (!json_equal(got, expected)) {
        char *text = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        print_error("config block:\n  got:      %s\n  expected: %s\n", text ? text : "(null)",
                    c->expected);
        free(text);
        fail();
    }
    json_decref(expected);
    cpex__config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* Errors: YAML in, the messages and the first item's fields out      */
/* ------------------------------------------------------------------ */

#define NO_PLUGIN "(none)" /* error_case.plugin: the first item names no plugin */

typedef struct error_case {
    const char *name;
    const char *yaml;    /* parsed as "plugins.yaml" */
    size_t count;        /* how many errors; 0: any number */
    const char *message; /* the whole message, when given */
    const char *has[6];  /* text the message contains */
    const char *key;     /* the first item's key, when given */
    const char *plugin;  /* the first item's plugin, when given (NO_PLUGIN: NULL) */
    int line, column;    /* the first item's position (file plugins.yaml), when given */
} error_case;

static const error_case error_cases[] = {
    /* numbers */
    {"numbers JSON cannot hold",
     PLUGIN_HEAD "    config:\n      a: .inf\n      b: 99999999999999999999\n"
                 "      c: 1e999\n      d: '.inf'\n",
     3,
     .has = {"plugins.yaml:6:10: plugin 'p': in 'config': the number '.inf' cannot be held in "
             "JSON",
             "quote it to keep it as text", "plugins.yaml:7:10:", "plugins.yaml:8:10:"}},

    /* plugin_settings */
    {"settings: bad timeout, bad bool, misspelt key",
     "plugin_settings:\n  plugin_timeout: 0\n  short_circuit_on_deny: \"yes\"\n"
     "  plugin_timout: 3\n",
     3,
     .has = {"plugins.yaml:2:19: 'plugin_settings.plugin_timeout' must be a number of seconds "
             "from 0.001 to 86400, got 0",
             "plugins.yaml:3:26: 'plugin_settings.short_circuit_on_deny' must be true or false, "
             "got a string",
             "plugins.yaml:4:3: unknown plugin_settings key 'plugin_timout'; did you mean "
             "'plugin_timeout'?"}},
    {"settings: not a mapping", "plugin_settings: [1]\n", 1,
     .has = {"plugins.yaml:1:18: 'plugin_settings' must be a mapping, got a list"}},
    {"settings: quoted values",
     "plugin_settings: {short_circuit_on_deny: \"true\", plugin_timeout: \"5\"}\n", 2,
     .has = {"got a string; write it without quotes"},
     .key = "plugin_settings.short_circuit_on_deny"},

    /* names */
    {"duplicate plugin name",
     "plugins:\n  - name: x\n    kind: k\n    hooks: [h]\n"
     "  - name: x\n    kind: k\n    hooks: [h]\n",
     1,
     .message = "plugins.yaml:5:11: plugin 'x': duplicate plugin name 'x' (first defined at "
                "line 2); plugin names must be unique",
     .key = "name", .plugin = "x", .line = 5, .column = 11},
    {"missing name",
     "plugins:\n  - name: ok\n    kind: k\n    hooks: [h]\n  - kind: k\n    hooks: [h]\n", 1,
     .has = {"plugins.yaml:5:5: plugin #2: missing required key 'name'"}, .key = "name",
     .plugin = NO_PLUGIN},
    {"empty name", "plugins:\n  - name:\n    kind: k\n    hooks: [h]\n", 1,
     .has = {"plugins.yaml:2:10: plugin #1: 'name' must be a non-empty string"}},

    /* mode and on_error */
    {"mode misspelt", PLUGIN_HEAD "    mode: sequental\n", 1,
     .message = "plugins.yaml:5:11: plugin 'p': unknown mode 'sequental'; did you mean "
                "'sequential'?",
     .key = "mode"},
    {"mode unknown", PLUGIN_HEAD "    mode: parallel\n", 1,
     .message = "plugins.yaml:5:11: plugin 'p': unknown mode 'parallel'; valid modes: "
                "sequential, transform, audit, concurrent, fire_and_forget, disabled"},
    {"mode a list", PLUGIN_HEAD "    mode: [audit]\n", 1,
     .has = {"plugins.yaml:5:11: plugin 'p': 'mode' must be one of sequential, transform, "
             "audit, concurrent, fire_and_forget, disabled; got a list"}},
    {"on_error misspelt", PLUGIN_HEAD "    on_error: ignor\n", 1,
     .message = "plugins.yaml:5:15: plugin 'p': unknown on_error value 'ignor'; did you mean "
                "'ignore'?",
     .key = "on_error"},
    {"on_error unknown", PLUGIN_HEAD "    on_error: retry\n", 1,
     .message = "plugins.yaml:5:15: plugin 'p': unknown on_error value 'retry'; valid values: "
                "fail, ignore, disable"},

    /* kind */
    {"missing kind", "plugins:\n  - name: p\n    hooks: [h]\n", 1,
     .has = {"plugins.yaml:2:5: plugin 'p': missing required key 'kind'"}, .key = "kind"},
    {"empty kind", "plugins:\n  - name: p\n    kind: \"\"\n    hooks: [h]\n", 1,
     .has = {"plugins.yaml:3:11: plugin 'p': 'kind' must be a non-empty string, got an empty "
             "value"}},

    /* hooks */
    {"missing hooks", "plugins:\n  - name: p\n    kind: k\n", 1,
     .has = {"plugins.yaml:2:5: plugin 'p': missing required key 'hooks'; list the hooks it "
             "serves, e.g. hooks: [tool_pre_invoke]"}},
    {"hooks empty list", "plugins:\n  - name: p\n    kind: k\n    hooks: []\n", 1,
     .has = {"plugins.yaml:4:12: plugin 'p': 'hooks' is empty; list at least one hook"}},
    {"hooks without value", "plugins:\n  - name: p\n    kind: k\n    hooks:\n", 1,
     .has = {"plugin 'p': 'hooks' is empty"}},
    {"hooks repeated, empty, nested",
     "plugins:\n  - name: p\n    kind: k\n    hooks: [a, b, a, '', [x]]\n", 3,
     .has = {"plugins.yaml:4:19: plugin 'p': hook 'a' is listed twice (first at line 4)",
             "plugins.yaml:4:22: plugin 'p': each entry of 'hooks' must be a non-empty string, "
             "got an empty value",
             "plugins.yaml:4:26: plugin 'p': each entry of 'hooks' must be a non-empty string, "
             "got a list"}},
    {"hooks a string", "plugins:\n  - name: p\n    kind: k\n    hooks: tool_pre_invoke\n", 1,
     .message = "plugins.yaml:4:12: plugin 'p': 'hooks' must be a list of hook names, got a "
                "string; write hooks: [tool_pre_invoke]"},
    {"hooks a mapping", "plugins:\n  - name: p\n    kind: k\n    hooks: {a: 1}\n", 1,
     .has = {"'hooks' must be a list of hook names, got a mapping"}},

    /* values of the wrong type */
    {"priority a word", PLUGIN_HEAD "    priority: high\n", 1,
     .message = "plugins.yaml:5:15: plugin 'p': 'priority' must be an integer, got a string",
     .key = "priority"},
    {"priority quoted", PLUGIN_HEAD "    priority: \"10\"\n", 1,
     .has = {"'priority' must be an integer, got a string; write it without quotes"}},
    {"priority a float", PLUGIN_HEAD "    priority: 1.5\n", 1,
     .has = {"'priority' must be an integer, got a float"}},
    {"priority out of range", PLUGIN_HEAD "    priority: 2147483648\n", 1,
     .has = {"plugins.yaml:5:15: plugin 'p': 'priority' 2147483648 is out of range "
             "(-2147483648 to 2147483647)"}},
    {"capabilities a string", PLUGIN_HEAD "    capabilities: read_subject\n", 1,
     .message = "plugins.yaml:5:19: plugin 'p': 'capabilities' must be a list, got a string; "
                "write capabilities: [read_subject]",
     .key = "capabilities"},
    {"tags a mapping", PLUGIN_HEAD "    tags: {a: b}\n", 1,
     .has = {"'tags' must be a list, got a mapping"}},
    {"timeout negative", PLUGIN_HEAD "    timeout: -1\n", 1,
     .has = {"plugins.yaml:5:14: plugin 'p': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got -1"}},
    {"timeout a word", PLUGIN_HEAD "    timeout: fast\n", 1,
     .has = {"'timeout' must be a number of seconds from 0.001 to 86400, got a string"}},
    /* Durations out of range: each was accepted once and turned into nonsense
     * at invoke time ("timed out after -9223372036854ms"), or into 0 ns. */
    {"timeout 1e12", PLUGIN_HEAD "    timeout: 1e12\n", 1,
     .message = "plugins.yaml:5:14: plugin 'p': 'timeout' must be a number of seconds from "
                "0.001 to 86400, got 1e12",
     .key = "timeout", .line = 5, .column = 14},
    {"timeout rounds to 0 ns", PLUGIN_HEAD "    timeout: 1e-12\n", 1,
     .has = {"plugins.yaml:5:14: plugin 'p': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got 1e-12 (below the shortest timeout libcpex can keep)"}},
    {"timeout .inf, -.inf, .nan, huge integer",
     "plugins:\n"
     "  - {name: a, kind: k, hooks: [h], timeout: .inf}\n"
     "  - {name: b, kind: k, hooks: [h], timeout: -.inf}\n"
     "  - {name: c, kind: k, hooks: [h], timeout: .nan}\n"
     "  - {name: d, kind: k, hooks: [h], timeout: 99999999999999999999}\n"
     "  - {name: e, kind: k, hooks: [h], timeout: 9223372036854775807}\n"
     "  - {name: f, kind: k, hooks: [h], timeout: 0}\n",
     6,
     .has = {"plugins.yaml:2:45: plugin 'a': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got .inf (out of range or not finite)",
             "plugins.yaml:3:45: plugin 'b': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got -.inf (out of range or not finite)",
             "plugins.yaml:4:45: plugin 'c': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got .nan (out of range or not finite)",
             "plugins.yaml:5:45: plugin 'd': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got 99999999999999999999 (out of range or not finite)",
             "plugins.yaml:6:45: plugin 'e': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got 9223372036854775807",
             "plugins.yaml:7:45: plugin 'f': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got 0"}},
    {"plugin_timeout 9.3e9", "plugin_settings:\n  plugin_timeout: 9.3e9\nplugins: []\n", 1,
     .message = "plugins.yaml:2:19: 'plugin_settings.plugin_timeout' must be a number of seconds "
                "from 0.001 to 86400, got 9.3e9",
     .key = "plugin_settings.plugin_timeout", .line = 2, .column = 19},
    {"plugin_timeout .inf and a day and a second",
     "plugin_settings: {plugin_timeout: .inf}\nplugins:\n"
     "  - {name: p, kind: k, hooks: [h], timeout: 86401}\n",
     2,
     .has = {"plugins.yaml:1:35: 'plugin_settings.plugin_timeout' must be a number of seconds "
             "from 0.001 to 86400, got .inf",
             "plugins.yaml:3:45: plugin 'p': 'timeout' must be a number of seconds from 0.001 "
             "to 86400, got 86401"}},
    {"description and author not strings", PLUGIN_HEAD "    description: [a]\n    author: {x: 1}\n",
     2,
     .has = {"'description' must be a string, got a list",
             "'author' must be a string, got a mapping"}},
    {"plugins a mapping", "plugins: {name: p}\n", 1,
     .has = {"plugins.yaml:1:10: 'plugins' must be a list of plugin entries"}},
    {"plugin entry a string", "plugins:\n  - just a string\n", 1,
     .has = {"plugins.yaml:2:5: plugin #1: each entry of 'plugins' must be a mapping"}},

    /* top-level keys */
    {"top-level key misspelt", "plugin:\n  - name: p\n", 1,
     .message = "plugins.yaml:1:1: unknown top-level key 'plugin'; did you mean 'plugins'?",
     .key = "plugin"},
    {"top-level key unknown", "plugins: []\nextras: 1\n", 1,
     .has = {"plugins.yaml:2:1: unknown top-level key 'extras'; valid keys: plugin_settings, "
             "plugins, global, routes"}},
    {"top-level key twice", "plugins: []\nplugins: []\n", 1,
     .has = {"plugins.yaml:2:1: duplicate key 'plugins' (first at line 1); keep one"}},
    {"top-level key a list", "plugins: []\n[a]: 1\n", 1,
     .has = {"plugins.yaml:2:1: keys at the top level must be plain names, got a list"}},

    /* plugin keys */
    {"plugin key misspelt",
     "# rate limiting\nplugins:\n  - name: rate-limit\n    kind: builtin/rate_limit\n"
     "    hooks: [tool_pre_invoke]\n    mode: sequential\n    prority: 5\n",
     1,
     .message = "plugins.yaml:7:5: plugin 'rate-limit': unknown key 'prority'; did you mean "
                "'priority'?",
     .key = "prority", .plugin = "rate-limit"},
    {"plugin key misspelt before the name",
     "plugins:\n  - kinds: k\n    name: late\n    kind: k\n    hooks: [h]\n", 1,
     .message = "plugins.yaml:2:5: plugin 'late': unknown key 'kinds'; did you mean 'kind'?"},
    {"plugin key unknown", PLUGIN_HEAD "    zzzzzzzz: 1\n", 1,
     .has = {"unknown key 'zzzzzzzz'; valid keys: name, kind, description, author, version, "
             "hooks, mode, priority, on_error, timeout, capabilities, tags, config"}},
    {"plugin key twice", PLUGIN_HEAD "    priority: 1\n    priority: 2\n", 1,
     .has = {"plugins.yaml:6:5: plugin 'p': duplicate key 'priority' (first at line 5)"}},
    {"config key twice", PLUGIN_HEAD "    config: {a: 1, a: 2}\n", 1,
     .has = {"plugins.yaml:5:20: plugin 'p': in 'config': duplicate key 'a' (first at line 5)"}},

    /* capabilities */
    {"capability misspelt", PLUGIN_HEAD "    capabilities: [read_subject, read_subjet]\n", 1,
     .message = "plugins.yaml:5:34: plugin 'p': unknown capability 'read_subjet'; did you mean "
                "'read_subject'?",
     .key = "capabilities"},
    {"capability unknown", PLUGIN_HEAD "    capabilities: [everything]\n", 1,
     .has = {"unknown capability 'everything'; valid capabilities: read_subject, read_roles"}},

    /* YAML syntax */
    {"syntax: mapping in a value", "plugins:\n  - name: p\n    kind: k: v\n", 1,
     .has = {"plugins.yaml:3:12: YAML syntax error: mapping values are not allowed in this "
             "context"},
     .line = 3, .column = 12},
    {"syntax: unterminated quote", "plugins:\n  - name: \"unterminated\n", 1,
     .has = {"YAML syntax error: found unexpected end of stream (while scanning a quoted scalar "
             "at line 2, column 11)"}},
    {"syntax: unterminated list", "plugins: [a, b\n", 1,
     .has = {"plugins.yaml:2:1: YAML syntax error:"}},
    {"syntax: invalid UTF-8", /* libyaml's reader error, located from the byte offset */
     "plugins: []\nx: \xff\n", 1,
     .has = {"plugins.yaml:2:4: YAML syntax error: invalid leading UTF-8 octet (byte 0xFF at "
             "offset 15)"}},
    /* A "character" problem carries the code point, not a byte: U+D800 was
     * reported as "byte 0x00". The bytes shown are the input's own. */
    {"syntax: UTF-8 surrogate", "plugins: []\nx: \xed\xa0\x80\n", 1,
     .message = "plugins.yaml:2:4: YAML syntax error: invalid Unicode character (U+D800, bytes "
                "0xED 0xA0 0x80 at offset 15)",
     .line = 2, .column = 4},
    {"syntax: past U+10FFFF, after a multi-byte character",
     "plugins: []\n\xc3\xa9: \xf4\x90\x80\x80\n", 1,
     .message = "plugins.yaml:2:4: YAML syntax error: invalid Unicode character (U+110000, bytes "
                "0xF4 0x90 0x80 0x80 at offset 16)"},
    {"syntax: control character", "plugins: []\nx: a\x01\n", 1,
     .message = "plugins.yaml:2:5: YAML syntax error: control characters are not allowed "
                "(U+0001, byte 0x01 at offset 16)"},
    {"syntax: invalid trailing octet", "plugins: []\nx: \xc3\x28\n", 1,
     .message = "plugins.yaml:2:5: YAML syntax error: invalid trailing UTF-8 octet (byte 0x28 "
                "at offset 16)"},
    {"syntax: two documents", "plugins: []\n---\nplugins: []\n", 1,
     .has = {"plugins.yaml:2:1: more than one YAML document"}},
    {"syntax: alias without anchor", "plugins: *nowhere\n", 1,
     .has = {"plugins.yaml:1:10: YAML alias '*nowhere' refers to no anchor defined before it"}},

/* empty documents */
#define EMPTY(name_, yaml_)                                                                        \
    {                                                                                              \
        "empty: " name_, yaml_, 1, .has = {                                                        \
            "plugins.yaml: the configuration is empty; expected a mapping with at least "          \
            "'plugins:'"                                                                           \
        }                                                                                          \
    }
    EMPTY("no text", ""),
    EMPTY("blank lines", "\n\n"),
    EMPTY("a comment", "# only a comment\n"),
    EMPTY("a document start", "---\n"),
    EMPTY("a null", "~\n"),
    EMPTY("a document start and end", "---\n...\n"),
#undef EMPTY

    /* not a mapping */
    {"top level a list", "- name: p\n  kind: k\n", 1,
     .message = "plugins.yaml:1:1: the top level must be a mapping (plugin_settings, plugins, "
                "global, routes), got a list"},
    {"top level a string", "just text\n", 1,
     .has = {"the top level must be a mapping (plugin_settings, plugins, global, routes), got a "
             "string"}},
    {"top level an integer", "42", 1, .has = {"got an integer"}},

    /* aliases */
    {"alias bomb (a billion laughs)",
     "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
     "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
     "plugins:\n  - name: p\n    kind: k\n    hooks: [h]\n    config: *i\n"
     "global: *i\n",
     0,
     .has = {"plugins.yaml:14:5: plugin 'p': in 'config': the 82 aliases of the configuration "
             "expand it by more than 100000 values (the limit for what aliases add); use fewer "
             "aliases, or anchor smaller values",
             "unknown top-level key 'a'"}},
    {"recursive alias", PLUGIN_HEAD "    config: &r {self: *r}\n", 1,
     .has = {"plugins.yaml:5:5: plugin 'p': in 'config': nesting deeper than 64 levels (a "
             "recursive alias?)"}},
    {"recursive plugins list", "plugins: &p [*p]\n", 1,
     .has = {"each entry of 'plugins' must be a mapping"}},
    {"aliases to a whole plugin", /* checked like copies */
     "x: &x {name: p, kind: k, hooks: [h]}\nplugins: [*x, *x]\n", 0,
     .has = {"duplicate plugin name 'p'"}},
};

static void test_error_case(void **state)
{
    const error_case *c = *state;
    cpex_error err;
    const char *m = expect_errors(c->yaml, c->count, &err);
    if (c->message)
        assert_string_equal(m, c->message);
    for (size_t i = 0; i < CPEX__COUNT(c->has) && c->has[i]; i++)
        assert_contains(m, c->has[i]);
    const cpex_error_item *first = &err.items[0];
    if (c->key) {
        assert_non_null(first->key);
        assert_string_equal(first->key, c->key);
    }
    if (c->plugin && strcmp(c->plugin, NO_PLUGIN) == 0) {
        assert_null(first->plugin);
    } else if (c->plugin) {
        assert_non_null(first->plugin);
        assert_string_equal(first->plugin, c->plugin);
    }
    if (c->line) {
        assert_string_equal(first->file, "plugins.yaml");
        assert_int_equal(first->line, c->line);
        assert_int_equal(first->column, c->column);
    }
    cpex_error_cleanup(&err);
}

/* NULL text: empty when its length is 0, else an invalid argument. */
static void test_error_null_text(void **state)
{
    (void)state;
    cpex_error err = CPEX_ERROR_INIT;
    cpex__config *cfg = NULL;
    assert_int_equal(cpex__config_parse(NULL, 0, NULL, NULL, &cfg, &err), CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "<string>: the configuration is empty");
    cpex_error_cleanup(&err);
    assert_int_equal(cpex__config_parse(NULL, 3, NULL, NULL, &cfg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex__config_parse("x", 1, NULL, NULL, NULL, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = test_read_file(DATA_DIR "/errors.yaml", &len);
    assert_non_null(text);
    cpex_error err = CPEX_ERROR_INIT;
    cpex__config *cfg = NULL;
    assert_int_equal(cpex__config_parse(text, len, "errors.yaml", NULL, &cfg, &err), CPEX_E_CONFIG);
    free(text);
    assert_null(cfg);
    const char *m = cpex_error_message(&err);
    static const char *const expected[] = {
        "errors.yaml:3:19: 'plugin_settings.plugin_timeout' must be a number of seconds from "
        "0.001 to 86400, got a string",
        "errors.yaml:8:11: plugin 'a': unknown mode 'sequental'; did you mean 'sequential'?",
        "errors.yaml:9:11: plugin 'a': duplicate plugin name 'a' (first defined at line 5)",
        "errors.yaml:10:12: plugin 'a': 'hooks' must be a list of hook names, got a string",
        "errors.yaml:11:15: plugin 'a': unknown on_error value 'retry'; valid values: fail, "
        "ignore, disable",
        "errors.yaml:12:5: plugin 'a': unknown key 'prority'; did you mean 'priority'?",
        "errors.yaml:9:5: plugin 'a': missing required key 'kind'",
        "errors.yaml:14:12: plugin #3: 'hooks' is empty",
        "errors.yaml:15:15: plugin #3: 'priority' must be an integer, got a string; write it "
        "without quotes",
        "errors.yaml:16:19: plugin #3: 'capabilities' must be a list, got a string",
        "errors.yaml:13:5: plugin #3: missing required key 'name'",
        "errors.yaml:17:1: unknown top-level key 'plugin'; did you mean 'plugins'?",
    };
    size_t n = CPEX__COUNT(expected);
    if (err.count != n)
        print_error("got %zu errors:\n%s\n", err.count, m);
    assert_int_equal(err.count, n);
    for (size_t i = 0; i < n; i++)
        assert_contains(err.items[i].message, expected[i]);
    cpex_error_cleanup(&err);
}


static void test_warnings_not_implemented(void **state)
{
    (void)state;
    cpex__config *cfg = expect_ok("plugin_settings:\n"
                                  "  routing_enabled: true\n"
                                  "  parallel_execution_within_band: false\n"
                                  "  fail_on_plugin_error: false\n"
                                  "  route_cache_max_entries: 10\n"
                                  "  capture_timings: true\n"
                                  "plugin_dirs: [/opt/plugins]\n"
                                  "plugins:\n"
                                  "  - name: p\n"
                                  "    kind: k\n"
                                  "    hooks: [h]\n"
                                  "    conditions: [{tools: [a]}]\n"
                                  "    capabilities: [read_claims, read_subject]\n");
    /* routing_enabled and route_cache_max_entries are implemented now
     * (routing_config.h); with routing on, conditions are ignored. */
    assert_int_equal(cfg->warning_count, 6);
    assert_null(cfg->warnings[6]);
    assert_contains(cfg->warnings[0],
                    "plugins.yaml:3:3: 'plugin_settings.parallel_execution_within_band'");
    assert_contains(cfg->warnings[1], "'plugin_settings.fail_on_plugin_error'");
    assert_contains(cfg->warnings[2], "'plugin_settings.capture_timings'");
    assert_contains(cfg->warnings[3], "plugins.yaml:7:1: 'plugin_dirs' is accepted");
    assert_contains(cfg->warnings[4], "plugins.yaml:13:20: plugin 'p': capability 'read_claims' is "
                                      "a CPEX capability libcpex does not implement yet");
    assert_contains(cfg->warnings[5], "plugins.yaml:12:5: plugin 'p': 'conditions' are ignored "
                                      "because routing_enabled is true");
    assert_true(cfg->routing->enabled);
    assert_int_equal(cfg->routing->cache_max, 10);
    assert_int_equal(cfg->plugins[0].caps, CPEX_CAP_READ_SUBJECT);
    assert_int_equal(cfg->plugins[0].capability_count, 2);
    cpex__config_free(cfg);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static void test_parse_file(void **state)
{
    (void)state;
    cpex_error err = CPEX_ERROR_INIT;
    cpex__config *cfg = (cpex__config *)0x1;
    assert_int_equal(cpex__config_parse_file("/nonexistent/dir/plugins.yaml", &cfg, &err),
                     CPEX_E_IO);
    assert_null(cfg);
    assert_int_equal(err.count, 1);
    assert_int_equal(err.items[0].code, CPEX_E_IO);
    assert_string_equal(cpex_error_message(&err), "/nonexistent/dir/plugins.yaml: cannot read the "
                                                  "configuration file: No such file or directory");
    cpex_error_cleanup(&err);

    /* A directory is not readable as a file. */
    assert_int_equal(cpex__config_parse_file("/tmp", &cfg, &err), CPEX_E_IO);
    assert_contains(cpex_error_message(&err),
                    "/tmp: cannot read the configuration file: Is a directory");
    cpex_error_cleanup(&err);

    /* The fixture: source is the path as given, base_dir its absolute directory. */
    assert_int_equal(cpex__config_parse_file(DATA_DIR "/full.yaml", &cfg, &err), CPEX_OK);
    assert_string_equal(cfg->source, DATA_DIR "/full.yaml");
    char *real = realpath(DATA_DIR, NULL);
    assert_non_null(real);
    assert_string_equal(cfg->base_dir, real);
    free(real);
    check_full(cfg);
    cpex__config_free(cfg);

    /* A relative path gets an absolute base_dir; errors name the path. */
    char *path = test_write_temp("config", PLUGIN_HEAD "    mode: fast\n");
    assert_non_null(path);
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir("/tmp"), 0);
    const char *rel = path + strlen("/tmp/");
    assert_int_equal(cpex__config_parse_file(rel, &cfg, &err), CPEX_E_CONFIG);
    char expect[512];
    snprintf(expect, sizeof expect, "%s:5:11: plugin 'p': unknown mode 'fast'", rel);
    assert_contains(cpex_error_message(&err), expect);
    cpex_error_cleanup(&err);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(PLUGIN_HEAD, f);
    fclose(f);
    assert_int_equal(cpex__config_parse_file(rel, &cfg, &err), CPEX_OK);
    real = realpath("/tmp", NULL);
    assert_string_equal(cfg->base_dir, real);
    free(real);
    cpex__config_free(cfg);
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
    unlink(path);
    free(path);

    assert_int_equal(cpex__config_parse_file(NULL, &cfg, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
}

/* ------------------------------------------------------------------ */
/* Hostile input                                                       */
/* ------------------------------------------------------------------ */

static void test_deep_nesting(void **state)
{
    (void)state;
    /* 200 000 '[': refused at depth 64, quickly (libyaml alone is quadratic here). */
    size_t n = 200000;
    char *text = malloc(2 * n + 32);
    strcpy(text, "plugins: ");
    memset(text + 9, '[', n);
    memset(text + 9 + n, ']', n);
    text[9 + 2 * n] = '\0';
    cpex_error err;
    const char *m = expect_errors(text, 1, &err);
    assert_contains(m, "nesting deeper than 64 levels");
    cpex_error_cleanup(&err);
    free(text);

    /* Block style nesting too. */
    char *deep = malloc(64 * 200);
    char *p = deep;
    p += sprintf(p, PLUGIN_HEAD "    config:\n");
    for (int i = 0; i < 70; i++)
        p += sprintf(p, "%*sk%d:\n", 6 + 2 * i, "", i);
    m = expect_errors(deep, 1, &err);
    assert_contains(m, "nesting deeper than 64 levels");
    cpex_error_cleanup(&err);
    free(deep);

    /* 60 levels inside config are fine. */
    char ok[512] = PLUGIN_HEAD "    config: ";
    for (int i = 0; i < 58; i++)
        strcat(ok, "[");
    for (int i = 0; i < 58; i++)
        strcat(ok, "]");
    cpex__config *cfg = expect_ok(ok);
    cpex__config_free(cfg);
}


static void test_too_many_errors(void **state)
{
    (void)state;
    char *text = malloc(300 * 16 + 64);
    char *p = text;
    p += sprintf(p, "plugins: []\n");
    for (int i = 0; i < 300; i++)
        p += sprintf(p, "bad%d: 1\n", i);
    cpex_error err;
    const char *m = expect_errors(text, 101, &err);
    assert_contains(m, "too many errors; only the first 100 are shown");
    cpex_error_cleanup(&err);
    free(text);
}

static void test_garbage_never_crashes(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "\0\0\0",
        "{",
        "}",
        "[[[[",
        "key: [}",
        ": :",
        "? [a]\n: b\n",
        "plugins:\n  - ? {a: b}\n    : c\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], config: {? [a] : b}}\n",
        "plugins:\n  - {name: \"a\\0b\", kind: k, hooks: [h]}\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], config: {\"a\\0b\": 1}}\n",
        "!!map {plugins: !!seq []}",
        "%YAML 1.1\n---\nplugins: []\n",
        "%FOO bar\n--- plugins",
        "&a &b x",
        "plugins: !custom [1]",
        "\xef\xbb\xbfplugins: []\n",
        "\xff\xfe\x70\x00",
        "plugins:\n\t- name: tab\n",
        "plugin_settings: {plugin_timeout: .inf, short_circuit_on_deny: ~}\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], priority: -9223372036854775809}\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], timeout: 1e400}\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], config: 0x}\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], config: [+.inf, -.INF, .NaN, 1e-400, 0o]}\n",
        "plugins:\n  - {name: p, kind: k, hooks: [h], mode: \"a\\0b\"}\n",
    };
    size_t lens[CPEX__COUNT(inputs)];
    for (size_t i = 0; i < CPEX__COUNT(inputs); i++)
        lens[i] = i == 0 ? 3 : i == 17 ? 4 : strlen(inputs[i]);
    for (size_t i = 0; i < CPEX__COUNT(inputs); i++) {
        cpex_error err = CPEX_ERROR_INIT;
        cpex__config *cfg = NULL;
        cpex_status st = cpex__config_parse(inputs[i], lens[i], "fuzz.yaml", NULL, &cfg, &err);
        assert_true(st == CPEX_OK || st == CPEX_E_CONFIG);
        if (st == CPEX_OK) {
            assert_non_null(cfg);
            assert_int_equal(err.count, 0);
        } else {
            assert_null(cfg);
            assert_true(err.count > 0);
            assert_contains(cpex_error_message(&err), "fuzz.yaml");
        }
        cpex__config_free(cfg);
        cpex_error_cleanup(&err);
    }
    /* Random bytes from a fixed seed. */
    unsigned seed = 12345;
    static const char alphabet[] = "abc:-[]{},&*!|>'\"#?%@ \n\t0123456789.~\\";
    for (int round = 0; round < 2000; round++) {
        char buf[128];
        size_t len = (size_t)(round % 120) + 1;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        cpex_error err = CPEX_ERROR_INIT;
        cpex__config *cfg = NULL;
        cpex_status st = cpex__config_parse(buf, len, NULL, NULL, &cfg, &err);
        assert_true(st == CPEX_OK || st == CPEX_E_CONFIG);
        assert_true((st == CPEX_OK) == (cfg != NULL));
        cpex__config_free(cfg);
        cpex_error_cleanup(&err);
    }
}

static void test_allocation_failures(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = test_read_file(DATA_DIR "/errors.yaml", &len);
    char *full = test_read_file(DATA_DIR "/full.yaml", NULL);
    assert_non_null(text);
    assert_non_null(full);
    const char *texts[] = {full, text, PLUGIN_HEAD "    capabilities: [read_claims]\n"};
    for (size_t t = 0; t < 3; t++) {
        for (uint64_t n = 1;; n++) {
            cpex_error err = CPEX_ERROR_INIT;
            cpex__config *cfg = NULL;
            cpex__alloc_fail_at(n);
            cpex_status st =
                cpex__config_parse(texts[t], strlen(texts[t]), "a.yaml", "/d", &cfg, &err);
            int failed = cpex__alloc_failed();
            cpex__alloc_fail_at(0);
            if (!failed) {
                assert_int_equal(st, t == 1 ? CPEX_E_CONFIG : CPEX_OK);
                cpex__config_free(cfg);
                cpex_error_cleanup(&err);
                break;
            }
            /* Any outcome but a crash or a leak; success only if nothing was lost. */
            assert_true(st == CPEX_E_NOMEM || st == CPEX_E_CONFIG || st == CPEX_OK);
            assert_true((st == CPEX_OK) == (cfg != NULL));
            if (t != 1 && st != CPEX_OK)
                assert_int_equal(st, CPEX_E_NOMEM);
            cpex__config_free(cfg);
            cpex_error_cleanup(&err);
        }
    }
    free(text);
    free(full);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    static const char *const modes[] = {"sequential", "transform",       "audit",
                                        "concurrent", "fire_and_forget", "disabled"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(cpex__mode_from_name(modes[i]), i);
        assert_string_equal(cpex_mode_name((uint32_t)i), modes[i]);
    }
    assert_int_equal(cpex__mode_from_name("Sequential"), -1);
    assert_int_equal(cpex__mode_from_name(NULL), -1);
    assert_string_equal(cpex_mode_name(6), "unknown");
    assert_int_equal(cpex__on_error_from_name("fail"), CPEX_ON_ERROR_FAIL);
    assert_int_equal(cpex__on_error_from_name("ignore"), CPEX_ON_ERROR_IGNORE);
    assert_int_equal(cpex__on_error_from_name("disable"), CPEX_ON_ERROR_DISABLE);
    assert_int_equal(cpex__on_error_from_name("disabled"), -1);
    assert_int_equal(cpex__on_error_from_name(NULL), -1);
    assert_string_equal(cpex_on_error_name(CPEX_ON_ERROR_FAIL), "fail");
    assert_string_equal(cpex_on_error_name(CPEX_ON_ERROR_IGNORE), "ignore");
    assert_string_equal(cpex_on_error_name(CPEX_ON_ERROR_DISABLE), "disable");
    assert_string_equal(cpex_on_error_name((cpex_on_error)7), "unknown");
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_capability_kept_once),
        cmocka_unit_test(test_error_null_text),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_warnings_not_implemented),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_too_many_errors),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_names),
    };
    enum {
        FIXED = CPEX__COUNT(fixed),
        BLOCKS = CPEX__COUNT(block_cases),
        ERRORS = CPEX__COUNT(error_cases),
    };
    /* One named test per row of the tables. */
    static char names[BLOCKS + ERRORS][128];
    struct CMUnitTest tests[FIXED + BLOCKS + ERRORS];
    size_t n = 0;
    for (size_t i = 0; i < FIXED; i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < BLOCKS; i++) {
        snprintf(names[n - FIXED], sizeof names[0], "config block: %s", block_cases[i].name);
        tests[n] = (struct CMUnitTest){names[n - FIXED], test_config_block, NULL, NULL,
                                       (void *)&block_cases[i]};
        n++;
    }
    for (size_t i = 0; i < ERRORS; i++) {
        snprintf(names[n - FIXED], sizeof names[0], "error: %s", error_cases[i].name);
        tests[n] = (struct CMUnitTest){names[n - FIXED], test_error_case, NULL, NULL,
                                       (void *)&error_cases[i]};
        n++;
    }
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
