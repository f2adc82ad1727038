/*
 * test_gateway_plugins.c — the five example gateway plugins
 * (examples/plugins/{tool_allowlist,pii_redact,rate_limit,header_inject,
 * audit_log}), each loaded as a shared library from CPEX_PLUGIN_DIR through
 * YAML and driven through the real pipeline, as a host would.
 *
 * Leaks are covered by the sanitizer build (make test-asan).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cpex/cpex.h"
#include "e2e.h"
#include "test_support.h"

#define LIB(name) E2E_LIB(name)
#define PRE E2E_PRE
#define POST E2E_POST
#define SOURCE "gateway-test.yaml"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static cpex_manager *load(const char *yaml)
{
    cpex_manager *m = e2e_manager_new(NULL);
    e2e_load_ok(m, yaml, SOURCE);
    e2e_initialize_ok(m);
    return m;
}

/* Expect the YAML to fail to load; returns the messages (malloc'd). */
static char *load_fail(const char *yaml)
{
    cpex_manager *m = e2e_manager_new(NULL);
    char *text = e2e_load_refused(m, yaml, SOURCE, CPEX_OK, NULL);
    cpex_manager_free(m);
    return text;
}

/* A YAML document with one plugin; `extra` is indented YAML (mode, config, ...). */
static char *yaml1(const char *name, const char *lib, const char *hooks, const char *extra)
{
    char kind[1024];
    snprintf(kind, sizeof kind, "lib:%s", lib);
    return e2e_yaml1(name, kind, hooks, extra);
}

static cpex_manager *load1(const char *name, const char *lib, const char *hooks, const char *extra)
{
    char *y = yaml1(name, lib, hooks, extra);
    cpex_manager *m = load(y);
    free(y);
    return m;
}

/* The one-plugin YAML of load1 must fail to load; returns the messages (malloc'd). */
static char *load1_fail(const char *name, const char *lib, const char *hooks, const char *extra)
{
    char *y = yaml1(name, lib, hooks, extra);
    char *text = load_fail(y);
    free(y);
    return text;
}

/* Invoke with a CMF message; `ctx` is consumed. */
#define run e2e_invoke_cmf
#define call_msg e2e_tool_call_msg

static cpex_cmf_message *msg(const char *json) { return e2e_cmf_parse(json); }

/* Invoke `hook` with a message of one tool call (see call_msg). */
static void invoke_call(cpex_manager *m, const char *hook, const char *id, const char *tool,
                        const char *args, const cpex_extensions *ext, e2e_outcome *o)
{
    o->msg = call_msg(id, tool, args);
    run(m, hook, o->msg, ext, NULL, &o->r);
}

static cpex_cmf_message *result_msg(const char *id, const char *name, const char *content)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"role\":\"tool\",\"content\":[{\"content_type\":\"tool_result\",\"content\":"
             "{\"tool_call_id\":\"%s\",\"tool_name\":\"%s\",\"content\":%s}}]}",
             id, name, content);
    return msg(buf);
}

static cpex_extensions *subject(const char *id)
{
    cpex_extensions *e = cpex_extensions_new();
    assert_non_null(e);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, id), CPEX_OK);
    return e;
}

/* Allow or deny of one tool call through `m`. Returns the violation code or NULL. */
static char *decide(cpex_manager *m, const char *tool, const cpex_extensions *ext)
{
    e2e_outcome o = E2E_OUTCOME_INIT;
    invoke_call(m, PRE, "c1", tool, "{}", ext, &o);
    char *code = o.r.continue_processing ? NULL : strdup(o.r.violation->code);
    e2e_outcome_cleanup(&o);
    return code;
}

/* The final message serialized, for substring checks (malloc'd). */
static char *final_json(const cpex_pipeline_result *res, const cpex_cmf_message *orig)
{
    return cpex_cmf_dump(cpex_pipeline_result_cmf(res, orig));
}

static json_int_t metadata_count(const cpex_pipeline_result *res, const char *kind)
{
    const json_t *pii = res->metadata ? json_object_get(res->metadata, "pii_redactions") : NULL;
    const json_t *v = pii ? json_object_get(pii, kind) : NULL;
    return v ? json_integer_value(v) : 0;
}

/* ------------------------------------------------------------------ */
/* tool_allowlist                                                      */
/* ------------------------------------------------------------------ */

static void allowlist_patterns(void **state)
{
    (void)state;
    cpex_manager *m = load1("allowlist", LIB("tool_allowlist"), PRE,
                            "    config:\n"
                            "      allow: [\"search_*\", \"get_weather\", \"*_report\", "
                            "\"db_*_read\"]\n");
    const char *allowed[] = {"search_docs", "search_",       "get_weather", "sales_report",
                             "_report",     "db_users_read", "db__read"};
    const char *denied[] = {"get_weather2",
                            "xget_weather",
                            "delete_repo",
                            "search",
                            "sales_reports",
                            "db_users_write",
                            "",
                            "Search_docs"};
    for (size_t i = 0; i < CPEX__COUNT(allowed); i++) {
        char *code = decide(m, allowed[i], NULL);
        if (code)
            print_error("'%s' should be allowed, got %s\n", allowed[i], code);
        assert_null(code);
    }
    for (size_t i = 0; i < CPEX__COUNT(denied); i++) {
        char *code = decide(m, denied[i], NULL);
        if (!code)
            print_error("'%s' should be denied\n", denied[i]);
        assert_non_null(code);
        assert_string_equal(code, "tool_not_allowed");
        free(code);
    }
    cpex_manager_free(m);
}

static void allowlist_violation_names_the_tool(void **state)
{
    (void)state;
    cpex_manager *m =
        load1("allowlist", LIB("tool_allowlist"), PRE, "    config: { allow: [\"search_*\"] }\n");
    /* Two calls: the first passes, the second names the culprit. */
    cpex_cmf_message *c = msg("{\"role\":\"assistant\",\"content\":["
                              "{\"content_type\":\"text\",\"text\":\"doing two things\"},"
                              "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"a\","
                              "\"name\":\"search_web\",\"arguments\":{}}},"
                              "{\"content_type\":\"tool_call\",\"content\":{\"tool_call_id\":\"b\","
                              "\"name\":\"rm_rf\",\"arguments\":{}}}]}");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, PRE, c, NULL, NULL, &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "tool_not_allowed");
    assert_contains(res.violation->reason, "rm_rf");
    assert_string_equal(res.violation->plugin_name, "allowlist");
    assert_string_equal(json_string_value(json_object_get(res.violation->details, "tool")),
                        "rm_rf");
    assert_string_equal(json_string_value(json_object_get(res.violation->details, "tool_call_id")),
                        "b");
    assert_true(json_is_array(json_object_get(res.violation->details, "allowed")));
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(c);

    /* A message without tool calls has nothing to refuse. */
    c = msg("{\"role\":\"user\",\"content\":[{\"content_type\":\"text\",\"text\":\"hi\"}]}");
    run(m, PRE, c, NULL, NULL, &res);
    assert_true(res.continue_processing);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(c);
    cpex_manager_free(m);
}

static void allowlist_verify_results_uses_context(void **state)
{
    (void)state;
    cpex_manager *m = load1("allowlist", LIB("tool_allowlist"), PRE ", " POST,
                            "    config: { allow: [\"get_*\"], verify_results: true }\n");
    cpex_cmf_message *pre = call_msg("call-1", "get_weather", "{\"city\":\"Oslo\"}");
    cpex_cmf_message *post = result_msg("call-1", "get_weather", "\"snow\"");
    cpex_cmf_message *stray = result_msg("call-2", "get_weather", "\"rain\"");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;

    /* Pre approves call-1; its context table carries that to the post hook. */
    run(m, PRE, pre, NULL, NULL, &res);
    assert_true(res.continue_processing);
    cpex_context_table *ctx = cpex_pipeline_result_take_context(&res);
    assert_non_null(ctx);
    assert_non_null(cpex_context_table_local(ctx, "allowlist", "approved_call_ids"));
    cpex_pipeline_result_cleanup(&res);

    run(m, POST, post, NULL, ctx, &res);
    assert_true(res.continue_processing);
    ctx = cpex_pipeline_result_take_context(&res);
    cpex_pipeline_result_cleanup(&res);

    /* A result for a call the pre hook never saw. */
    run(m, POST, stray, NULL, ctx, &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "tool_result_unapproved");
    assert_contains(res.violation->reason, "call-2");
    cpex_pipeline_result_cleanup(&res);

    /* Without the context table, nothing was approved. */
    run(m, POST, post, NULL, NULL, &res);
    assert_false(res.continue_processing);
    assert_string_equal(res.violation->code, "tool_result_unapproved");
    cpex_pipeline_result_cleanup(&res);

    cpex_cmf_free(pre);
    cpex_cmf_free(post);
    cpex_cmf_free(stray);
    cpex_manager_free(m);
}

static void allowlist_rejects_bad_config(void **state)
{
    (void)state;
    char *text = load1_fail("allowlist", LIB("tool_allowlist"), PRE, "");
    assert_contains(text, "allowlist");
    assert_contains(text, "config.allow is required");
    free(text);
    text =
        load1_fail("allowlist", LIB("tool_allowlist"), PRE, "    config: { allow: [\"ok\", 3] }\n");
    assert_contains(text, "config.allow[1]");
    free(text);
}

/* ------------------------------------------------------------------ */
/* pii_redact                                                          */
/* ------------------------------------------------------------------ */

static cpex_manager *pii(const char *config)
{
    return load1("pii", LIB("pii_redact"), PRE ", " POST, config);
}

/* Redact one text part; returns the final text (malloc'd) and the result's counts. */
static char *redact(cpex_manager *m, const char *text, json_int_t *email, json_int_t *phone,
                    json_int_t *card)
{
    json_t *j = json_pack("{s:s, s:[{s:s, s:s}]}", "role", "user", "content", "content_type",
                          "text", "text", text);
    cpex_error err = CPEX_ERROR_INIT;
    cpex_cmf_message *c = cpex_cmf_from_json(j, &err);
    json_decref(j);
    assert_non_null(c);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, PRE, c, NULL, NULL, &res);
    assert_true(res.continue_processing);
    assert_int_equal(res.error_count, 0);
    const cpex_cmf_message *f = cpex_pipeline_result_cmf(&res, c);
    char *out = strndup(f->parts[0].text.ptr, f->parts[0].text.len);
    *email = metadata_count(&res, "email");
    *phone = metadata_count(&res, "phone");
    *card = metadata_count(&res, "card");
    if (!res.payload_modified)
        assert_string_equal(out, text);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(c);
    return out;
}

static void expect_redaction(cpex_manager *m, const char *in, const char *want, int email,
                             int phone, int card)
{
    json_int_t e, p, c;
    char *out = redact(m, in, &e, &p, &c);
    if (strcmp(out, want) != 0 || e != email || p != phone || c != card)
        print_error("redact(\"%s\")\n  got  \"%s\" (email %d phone %d card %d)\n  want \"%s\" "
                    "(email %d phone %d card %d)\n",
                    in, out, (int)e, (int)p, (int)c, want, email, phone, card);
    assert_string_equal(out, want);
    assert_int_equal(e, email);
    assert_int_equal(p, phone);
    assert_int_equal(c, card);
    free(out);
}

static void pii_each_kind(void **state)
{
    (void)state;
    cpex_manager *m = pii("    mode: transform\n");
    /* e-mail */
    expect_redaction(m, "write to jane.doe+tag@mail.example.com today", "write to [EMAIL] today", 1,
                     0, 0);
    expect_redaction(m, "a@b.co, c_d@e-f.org.", "[EMAIL], [EMAIL].", 2, 0, 0);
    expect_redaction(m, "not an address: user@localhost or @example.com",
                     "not an address: user@localhost or @example.com", 0, 0, 0);
    /* phone */
    expect_redaction(m, "call +1 (555) 123-4567 now", "call [PHONE] now", 0, 1, 0);
    expect_redaction(m, "555-123-4567 or 555.987.6543", "[PHONE] or [PHONE]", 0, 2, 0);
    expect_redaction(m, "Paris: +33 1 42 68 53 00", "Paris: [PHONE]", 0, 1, 0);
    /* not phones: too short, a date, a version, a decimal, spaced digits */
    expect_redaction(m, "order 12345, on 2024-01-15, v1.2.3, pi 3.14159265358, 1 2 3 4 5 6 7 8 9 0",
                     "order 12345, on 2024-01-15, v1.2.3, pi 3.14159265358, 1 2 3 4 5 6 7 8 9 0", 0,
                     0, 0);
    /* cards: Luhn-valid ones only */
    expect_redaction(m, "card 4111111111111111 ok", "card [CARD] ok", 0, 0, 1);
    expect_redaction(m, "4111 1111 1111 1111 / 5500-0000-0000-0004", "[CARD] / [CARD]", 0, 0, 2);
    expect_redaction(m, "378282246310005 (amex)", "[CARD] (amex)", 0, 0, 1);
    expect_redaction(m, "mistyped 4111 1111 1111 1112 stays", "mistyped 4111 1111 1111 1112 stays",
                     0, 0, 0);
    expect_redaction(m, "4111111111111112", "4111111111111112", 0, 0, 0);
    /* a bit of everything */
    expect_redaction(m, "x@y.io 4111111111111111 +44 20 7946 0958", "[EMAIL] [CARD] [PHONE]", 1, 1,
                     1);
    cpex_manager_free(m);
}

static void pii_tool_arguments_and_results(void **state)
{
    (void)state;
    cpex_manager *m = pii("    mode: transform\n");
    cpex_cmf_message *c =
        call_msg("c1", "send_email",
                 "{\"to\":\"jane@example.com\",\"n\":5,\"cc\":[\"bob@example.org\",{\"tel\":\"555-"
                 "123-4567\"}],"
                 "\"jane@example.com\":true,\"card\":\"4111 1111 1111 1111\",\"ok\":null}");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, PRE, c, NULL, NULL, &res);
    assert_true(res.continue_processing);
    assert_true(res.payload_modified);
    const cpex_cmf_message *f = cpex_pipeline_result_cmf(&res, c);
    const cpex_cmf_tool_call *tc = f->parts[0].body;
    const json_t *args = (const json_t *)tc->arguments;
    assert_string_equal(json_string_value(json_object_get(args, "to")), "[EMAIL]");
    assert_int_equal(json_integer_value(json_object_get(args, "n")), 5);
    const json_t *cc = json_object_get(args, "cc");
    assert_string_equal(json_string_value(json_array_get(cc, 0)), "[EMAIL]");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cc, 1), "tel")),
                        "[PHONE]");
    assert_true(json_is_true(json_object_get(args, "jane@example.com"))); /* keys stay */
    assert_string_equal(json_string_value(json_object_get(args, "card")), "[CARD]");
    assert_true(json_is_null(json_object_get(args, "ok")));
    assert_int_equal(metadata_count(&res, "email"), 2);
    assert_int_equal(metadata_count(&res, "phone"), 1);
    assert_int_equal(metadata_count(&res, "card"), 1);
    assert_int_equal(metadata_count(&res, "total"), 4);
    /* The caller's message is untouched: the plugin worked on a clone. */
    assert_string_equal(
        json_string_value(json_object_get(
            (const json_t *)((const cpex_cmf_tool_call *)c->parts[0].body)->arguments, "to")),
        "jane@example.com");
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(c);

    /* Tool results on the post hook. */
    c = result_msg("c1", "lookup", "{\"email\":\"a@b.io\",\"list\":[\"4111111111111111\"]}");
    run(m, POST, c, NULL, NULL, &res);
    assert_true(res.payload_modified);
    char *j = final_json(&res, c);
    assert_contains(j, "\"email\":\"[EMAIL]\"");
    assert_contains(j, "[\"[CARD]\"]");
    assert_contains(j, "\"tool_name\":\"lookup\"");
    free(j);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(c);

    /* Nothing to find: nothing modified, no metadata. */
    c = call_msg("c2", "search", "{\"q\":\"weather in Oslo\"}");
    run(m, PRE, c, NULL, NULL, &res);
    assert_false(res.payload_modified);
    assert_null(res.metadata);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(c);
    cpex_manager_free(m);
}

static void pii_kinds_config(void **state)
{
    (void)state;
    cpex_manager *m = pii("    mode: transform\n    config: { kinds: [email] }\n");
    expect_redaction(m, "a@b.io +1 555 123 4567 4111111111111111",
                     "[EMAIL] +1 555 123 4567 4111111111111111", 1, 0, 0);
    cpex_manager_free(m);
    char *text = load1_fail("pii", LIB("pii_redact"), PRE, "    config: { kinds: [email, ssn] }\n");
    assert_contains(text, "ssn");
    free(text);
}

/* ------------------------------------------------------------------ */
/* rate_limit                                                          */
/* ------------------------------------------------------------------ */

static void rate_limit_burst_then_deny(void **state)
{
    (void)state;
    /* A refill of one token per 1000 s: nothing refills during the test. */
    cpex_manager *m = load1("limiter", LIB("rate_limit"), PRE,
                            "    capabilities: [read_subject]\n"
                            "    config: { max_per_second: 0.001, burst: 3 }\n");
    cpex_extensions *alice = subject("alice"), *bob = subject("bob");
    for (int i = 0; i < 3; i++)
        assert_null(decide(m, "search", alice));
    e2e_outcome o = E2E_OUTCOME_INIT;
    invoke_call(m, PRE, "c4", "search", "{}", alice, &o);
    assert_false(o.r.continue_processing);
    assert_string_equal(o.r.violation->code, "rate_limited");
    assert_string_equal(o.r.violation->plugin_name, "limiter");
    assert_contains(o.r.violation->reason, "alice");
    const json_t *retry = json_object_get(o.r.violation->details, "retry_after_ms");
    assert_true(json_is_integer(retry));
    assert_true(json_integer_value(retry) > 0);
    assert_true(json_integer_value(retry) <= 3000000); /* the window: 3 calls / 0.001 per s */
    assert_string_equal(json_string_value(json_object_get(o.r.violation->details, "tool")),
                        "search");
    e2e_outcome_cleanup(&o);
    /* Per subject and per tool. */
    assert_null(decide(m, "search", bob));
    assert_null(decide(m, "other_tool", alice));
    cpex_extensions_unref(alice);
    cpex_extensions_unref(bob);
    cpex_manager_free(m);
}

static void rate_limit_refills(void **state)
{
    (void)state;
    cpex_manager *m =
        load1("limiter", LIB("rate_limit"), PRE, "    config: { max_per_second: 50, burst: 1 }\n");
    assert_null(decide(m, "t", NULL));
    char *code = decide(m, "t", NULL);
    assert_non_null(code);
    free(code);
    usleep(60 * 1000); /* 50/s: a token every 20 ms */
    assert_null(decide(m, "t", NULL));
    cpex_manager_free(m);
}

static void rate_limit_without_capability_is_anonymous(void **state)
{
    (void)state;
    /* No read_subject: the subject is hidden, every caller is "anonymous". */
    cpex_manager *m = load1("limiter", LIB("rate_limit"), PRE,
                            "    config: { max_per_second: 0.001, burst: 2 }\n");
    cpex_extensions *alice = subject("alice"), *bob = subject("bob");
    assert_null(decide(m, "t", alice));
    assert_null(decide(m, "t", bob));
    e2e_outcome o = E2E_OUTCOME_INIT;
    invoke_call(m, PRE, "c", "t", "{}", alice, &o);
    assert_false(o.r.continue_processing);
    assert_string_equal(json_string_value(json_object_get(o.r.violation->details, "subject")),
                        "anonymous");
    e2e_outcome_cleanup(&o);
    cpex_extensions_unref(alice);
    cpex_extensions_unref(bob);
    cpex_manager_free(m);
}

typedef struct hammer {
    cpex_manager *m;
    int allowed;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    cpex_cmf_message *c = call_msg("c", "shared_tool", "{}");
    for (int i = 0; i < 100; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        run(h->m, PRE, c, NULL, NULL, &res);
        if (res.continue_processing)
            h->allowed++;
        cpex_pipeline_result_cleanup(&res);
    }
    cpex_cmf_free(c);
    return NULL;
}

static void rate_limit_is_thread_safe(void **state)
{
    (void)state;
    /* 4 threads x 100 calls against one bucket of 150: exactly 150 pass. */
    cpex_manager *m = load1("limiter", LIB("rate_limit"), PRE,
                            "    config: { max_per_second: 0.0001, burst: 150 }\n");
    hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i].m = m;
        h[i].allowed = 0;
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += h[i].allowed;
    }
    assert_int_equal(total, 150);
    cpex_manager_free(m);
}

static void rate_limit_rejects_bad_config(void **state)
{
    (void)state;
    const char *bad[] = {"", "    config: { burst: 3 }\n", "    config: { max_per_second: 0 }\n",
                         "    config: { max_per_second: \"fast\" }\n",
                         "    config: { max_per_second: 1, burst: 0 }\n"};
    const char *want[] = {"max_per_second is required", "max_per_second is required", "above 0",
                          "must be a number", "burst must be at least 1"};
    for (size_t i = 0; i < CPEX__COUNT(bad); i++) {
        char *text = load1_fail("limiter", LIB("rate_limit"), PRE, bad[i]);
        assert_contains(text, want[i]);
        assert_contains(text, "limiter");
        free(text);
    }
}

/* ------------------------------------------------------------------ */
/* header_inject                                                       */
/* ------------------------------------------------------------------ */

static const char *header_config = "    config:\n"
                                   "      response_headers: { x-cpex-gateway: \"test\" }\n"
                                   "      request_headers: { x-checked: \"yes\" }\n"
                                   "      labels: [\"checked\"]\n";

static void header_inject_with_capabilities(void **state)
{
    (void)state;
    char extra[512];
    snprintf(extra, sizeof extra, "    capabilities: [write_headers, append_labels]\n%s",
             header_config);
    cpex_manager *m = load1("hdr", LIB("header_inject"), PRE ", " POST, extra);
    cpex_extensions *in = cpex_extensions_new();
    assert_int_equal(cpex_extensions_add(in, CPEX_EXT_LABELS, "existing"), CPEX_OK);
    e2e_outcome o = E2E_OUTCOME_INIT;
    invoke_call(m, POST, "c", "t", "{}", in, &o);
    assert_true(o.r.continue_processing);
    assert_int_equal(o.r.error_count, 0);
    assert_true(o.r.extensions_modified);
    assert_string_equal(
        cpex_extensions_header(o.r.extensions, CPEX_HEADERS_RESPONSE, "X-CPEX-Gateway"), "test");
    assert_string_equal(cpex_extensions_header(o.r.extensions, CPEX_HEADERS_REQUEST, "x-checked"),
                        "yes");
    assert_true(cpex_extensions_has_label(o.r.extensions, "checked"));
    assert_true(cpex_extensions_has_label(o.r.extensions, "existing")); /* labels only grow */
    /* The caller's extensions are untouched. */
    assert_null(cpex_extensions_header(in, CPEX_HEADERS_RESPONSE, "x-cpex-gateway"));
    e2e_outcome_cleanup(&o);
    cpex_extensions_unref(in);
    cpex_manager_free(m);
}

static void header_inject_without_capabilities_is_refused(void **state)
{
    (void)state;
    cpex_manager *m = load1("hdr", LIB("header_inject"), PRE, header_config);
    e2e_outcome o = E2E_OUTCOME_INIT;
    invoke_call(m, PRE, "c", "t", "{}", NULL, &o);
    /* Refused writes are soft errors, not a failed request. */
    assert_true(o.r.continue_processing);
    assert_false(o.r.extensions_modified);
    assert_int_equal(o.r.error_count, 3);
    for (size_t i = 0; i < o.r.error_count; i++) {
        assert_string_equal(o.r.errors[i].plugin_name, "hdr");
        assert_string_equal(o.r.errors[i].code, "denied_write");
    }
    assert_contains(o.r.errors[0].message, "write_headers");
    assert_contains(o.r.errors[2].message, "append_labels");
    const json_t *md = json_object_get(o.r.metadata, "header_inject");
    assert_int_equal(json_integer_value(json_object_get(md, "refused")), 3);
    assert_int_equal(json_integer_value(json_object_get(md, "written")), 0);
    e2e_outcome_cleanup(&o);
    cpex_manager_free(m);

    /* Capability granted, but audit mode may not modify: refused as well. */
    char extra[512];
    snprintf(extra, sizeof extra,
             "    mode: audit\n    capabilities: [write_headers, append_labels]\n%s",
             header_config);
    m = load1("hdr", LIB("header_inject"), PRE, extra);
    invoke_call(m, PRE, "c", "t", "{}", NULL, &o);
    assert_true(o.r.continue_processing);
    assert_false(o.r.extensions_modified);
    assert_true(o.r.error_count >= 1);
    assert_contains(o.r.errors[0].message, "audit");
    e2e_outcome_cleanup(&o);
    cpex_manager_free(m);
}

static void header_inject_tool_filter(void **state)
{
    (void)state;
    cpex_manager *m =
        load1("hdr", LIB("header_inject"), PRE ", " POST,
              "    capabilities: [write_headers]\n"
              "    config: { tools: [\"send_*\"], response_headers: { x-a: \"1\" } }\n");
    cpex_cmf_message *other = call_msg("c", "search", "{}");
    cpex_cmf_message *send = call_msg("c", "send_email", "{}");
    cpex_cmf_message *result = result_msg("c", "send_sms", "\"ok\"");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, PRE, other, NULL, NULL, &res);
    assert_false(res.extensions_modified);
    cpex_pipeline_result_cleanup(&res);
    run(m, PRE, send, NULL, NULL, &res);
    assert_true(res.extensions_modified);
    cpex_pipeline_result_cleanup(&res);
    run(m, POST, result, NULL, NULL, &res);
    assert_true(res.extensions_modified);
    cpex_pipeline_result_cleanup(&res);
    cpex_cmf_free(other);
    cpex_cmf_free(send);
    cpex_cmf_free(result);
    cpex_manager_free(m);

    char *text =
        load1_fail("hdr", LIB("header_inject"), PRE,
                   "    config: { response_headers: { \"x-bad\": \"a\\r\\nSet-Cookie: x\" } }\n");
    assert_contains(text, "line breaks");
    free(text);
}

/* ------------------------------------------------------------------ */
/* audit_log                                                           */
/* ------------------------------------------------------------------ */

static char *temp_path(void)
{
    char *p = test_write_temp("audit", "");
    assert_non_null(p);
    return p;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

static void audit_log_mode(const char *mode)
{
    char *path = temp_path();
    char extra[1024];
    snprintf(extra, sizeof extra,
             "    mode: %s\n"
             "    capabilities: [read_subject]\n"
             "    config: { path: \"%s\" }\n",
             mode, path);
    cpex_manager *m = load1("audit", LIB("audit_log"), PRE ", " POST, extra);
    cpex_extensions *alice = subject("alice");
    cpex_cmf_message *pre = call_msg("c", "search_docs", "{}");
    cpex_cmf_message *post = result_msg("c", "search_docs", "\"found\"");
    for (int i = 0; i < 3; i++) {
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        run(m, i == 2 ? POST : PRE, i == 2 ? post : pre, i == 1 ? NULL : alice, NULL, &res);
        assert_true(res.continue_processing);
        assert_int_equal(res.error_count, 0);
        assert_false(res.payload_modified);
        cpex_pipeline_result_cleanup(&res);
    }
    /* The plugin's writer drains its queue at shutdown: all lines are there. */
    cpex_manager_free(m);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 3);
    /* Background handlers run on several workers: count, do not assume order. */
    char *save = NULL;
    int pre_lines = 0, post_lines = 0, with_subject = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *ev = json_loads(line, 0, &jerr);
        if (!ev)
            print_error("audit line is not JSON: %s\n", line);
        assert_non_null(ev);
        assert_string_equal(json_string_value(json_object_get(ev, "plugin")), "audit");
        assert_string_equal(json_string_value(json_object_get(ev, "mode")), mode);
        const char *hook = json_string_value(json_object_get(ev, "hook"));
        assert_non_null(hook);
        pre_lines += strcmp(hook, PRE) == 0;
        post_lines += strcmp(hook, POST) == 0;
        assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "tools"), 0)),
                            "search_docs");
        assert_non_null(json_object_get(ev, "time"));
        const json_t *subj = json_object_get(ev, "subject");
        if (subj) {
            assert_string_equal(json_string_value(subj), "alice");
            with_subject++;
        }
        json_decref(ev);
    }
    assert_int_equal(pre_lines, 2);
    assert_int_equal(post_lines, 1);
    assert_int_equal(with_subject, 2);
    free(text);
    cpex_cmf_free(pre);
    cpex_cmf_free(post);
    cpex_extensions_unref(alice);
    unlink(path);
    free(path);
}

static void audit_log_audit_mode(void **state)
{
    (void)state;
    audit_log_mode("audit");
}

static void audit_log_fire_and_forget(void **state)
{
    (void)state;
    audit_log_mode("fire_and_forget");
}

static void audit_log_appends_and_reports_bad_path(void **state)
{
    (void)state;
    char *path = test_write_temp("audit", "{\"earlier\":true}\n");
    assert_non_null(path);
    char extra[1024];
    snprintf(extra, sizeof extra,
             "    mode: audit\n    config: { path: \"%s\", include_payload: true }\n", path);
    cpex_manager *m = load1("audit", LIB("audit_log"), PRE, extra);
    cpex_cmf_message *c = call_msg("c", "t", "{\"q\":1}");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    run(m, PRE, c, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_free(m);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 2);
    assert_contains(text, "{\"earlier\":true}\n{"); /* appended, not truncated */
    assert_contains(text, "\"payload\":{");
    free(text);
    cpex_cmf_free(c);
    unlink(path);
    free(path);

    text = load1_fail("audit", LIB("audit_log"), PRE,
                      "    mode: audit\n    config: { path: /nonexistent-dir/x/audit.jsonl }\n");
    assert_contains(text, "cannot open audit file");
    assert_contains(text, "/nonexistent-dir/x/audit.jsonl");
    free(text);
    text = load1_fail("audit", LIB("audit_log"), PRE, "    mode: audit\n");
    assert_contains(text, "config.path is required");
    free(text);
}

/* ------------------------------------------------------------------ */
/* All five together, as in examples/gateway.yaml                      */
/* ------------------------------------------------------------------ */

static void gateway_example_config_loads(void **state)
{
    (void)state;
    /* The shipped configuration, with its library paths pointed at this build. */
    char *text = test_read_file(CPEX_SOURCE_DIR "/examples/gateway.yaml", NULL);
    assert_non_null(text);
    char *audit = temp_path();
    size_t cap = strlen(text) * 2 + 4096, o = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    for (const char *p = text; *p;) {
        const char *from = "../build/plugins", *afrom = "/tmp/cpex-gateway-audit.jsonl";
        if (strncmp(p, from, strlen(from)) == 0) {
            o += (size_t)snprintf(yaml + o, cap - o, "%s", CPEX_PLUGIN_DIR);
            p += strlen(from);
        } else if (strncmp(p, afrom, strlen(afrom)) == 0) {
            o += (size_t)snprintf(yaml + o, cap - o, "%s", audit);
            p += strlen(afrom);
        } else {
            yaml[o++] = *p++;
        }
    }
    yaml[o] = '\0';
    cpex_manager *m = load(yaml);
    assert_int_equal(cpex_manager_plugin_count(m), 6);
    cpex_extensions *alice = subject("alice");
    e2e_outcome out = E2E_OUTCOME_INIT;
    invoke_call(m, PRE, "c", "send_email", "{\"to\":\"x@example.com\"}", alice, &out);
    assert_true(out.r.continue_processing);
    assert_true(out.r.payload_modified);
    assert_int_equal(metadata_count(&out.r, "email"), 1);
    assert_string_equal(
        cpex_extensions_header(out.r.extensions, CPEX_HEADERS_RESPONSE, "x-cpex-gateway"),
        "example/1.0");
    assert_null(cpex_extensions_header(out.r.extensions, CPEX_HEADERS_RESPONSE, "x-unprivileged"));
    assert_int_equal(out.r.error_count, 2); /* the unprivileged instance's two refusals */
    e2e_outcome_cleanup(&out);
    cpex_extensions_unref(alice);
    cpex_manager_free(m);
    unlink(audit);
    free(audit);
    free(yaml);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allowlist_patterns),
        cmocka_unit_test(allowlist_violation_names_the_tool),
        cmocka_unit_test(allowlist_verify_results_uses_context),
        cmocka_unit_test(allowlist_rejects_bad_config),
        cmocka_unit_test(pii_each_kind),
        cmocka_unit_test(pii_tool_arguments_and_results),
        cmocka_unit_test(pii_kinds_config),
        cmocka_unit_test(rate_limit_burst_then_deny),
        cmocka_unit_test(rate_limit_refills),
        cmocka_unit_test(rate_limit_without_capability_is_anonymous),
        cmocka_unit_test(rate_limit_is_thread_safe),
        cmocka_unit_test(rate_limit_rejects_bad_config),
        cmocka_unit_test(header_inject_with_capabilities),
        cmocka_unit_test(header_inject_without_capabilities_is_refused),
        cmocka_unit_test(header_inject_tool_filter),
        cmocka_unit_test(audit_log_audit_mode),
        cmocka_unit_test(audit_log_fire_and_forget),
        cmocka_unit_test(audit_log_appends_and_reports_bad_path),
        cmocka_unit_test(gateway_example_config_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
