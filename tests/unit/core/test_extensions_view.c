/*
 * test_extensions_view.c — capability-filtered extension views and
 * capability-checked writes, end to end through the manager.
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"

TP_FIXTURE;

/* Extensions with every field set. */
static cpex_extensions *full_ext(void)
{
    cpex_extensions *e = cpex_extensions_new();
    assert_non_null(e);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_TYPE, "tool"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENTITY_NAME, "search"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "t1"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_TAGS, "t2"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_ID, "alice"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_SUBJECT_TYPE, "user"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "admin"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_ROLES, "dev"), CPEX_OK);
    assert_int_equal(cpex_extensions_add(e, CPEX_EXT_LABELS, "pii"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_CLASSIFICATION, "secret"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_REQUEST_ID, "req-1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_TRACE_ID, "trace-1"), CPEX_OK);
    assert_int_equal(cpex_extensions_set(e, CPEX_EXT_ENVIRONMENT, "prod"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_header(e, CPEX_HEADERS_REQUEST, "X-Req", "abc"), CPEX_OK);
    assert_int_equal(cpex_extensions_set_custom(e, "k", json_string("v")), CPEX_OK);
    return e;
}

#define META "etype=tool ename=search tags=t1|t2"

/* Invoke HOOK on "hello" with `ext` (may be NULL). */
static void invoke(cpex_manager *m, const cpex_extensions *ext, cpex_pipeline_result *res)
{
    tp_invoke_text(m, HOOK, "hello", ext, NULL, res);
}

/* Invoke HOOK on "hello" with a fresh full_ext(); returns it (the caller's, for checks). */
static cpex_extensions *invoke_full(cpex_manager *m, cpex_pipeline_result *res)
{
    cpex_extensions *ext = full_ext();
    invoke(m, ext, res);
    return ext;
}

/* Release the caller's extensions, the result and the manager. */
static void finish(cpex_manager *m, cpex_pipeline_result *res, cpex_extensions *ext)
{
    cpex_extensions_unref(ext);
    tp_finish(m, res);
}

/* The pipeline allowed; `plugin`'s write (status `rc`) was refused and recorded, and the
 * result carries no changed extensions. */
static void assert_write_refused(const cpex_pipeline_result *res, const char *plugin, int32_t rc)
{
    assert_allowed(res);
    assert_int_equal(rc, CPEX_HOST_EDENIED);
    assert_record(res, plugin, "denied_write");
    assert_false(res->extensions_modified);
}

/* A plugin with read_headers that reads request header `header` into seen_header. */
static tp_plugin *new_header_reader(const char *name, uint32_t mode, int32_t priority,
                                    const char *header)
{
    tp_plugin *p = tp_new_in(name, &trace, mode, priority);
    p->caps[0] = "read_headers";
    p->read_header = header;
    return p;
}

/* A plugin with `cap` that sets request header `header` to `value`. */
static tp_plugin *new_header_writer(const char *name, const char *cap, const char *header,
                                    const char *value)
{
    tp_plugin *p = tp_new(name, &trace);
    p->caps[0] = cap;
    p->set_header_name = header;
    p->set_header_value = value;
    return p;
}

static void test_each_plugin_sees_exactly_its_view(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *cap;
        const char *expected;
    } cases[] = {
        {"none", NULL,
         META " sid=- stype=- roles=- labels=- cls=- rid=- tid=- env=- hdr=0 x-req=- custom=-"},
        {"subject", "read_subject",
         META " sid=alice stype=user roles=- labels=- cls=- rid=- tid=- env=- hdr=0 x-req=- "
              "custom=-"},
        {"roles", "read_roles",
         META " sid=- stype=- roles=admin|dev labels=- cls=- rid=- tid=- env=- hdr=0 x-req=- "
              "custom=-"},
        {"labels", "read_labels",
         META " sid=- stype=- roles=- labels=pii cls=- rid=- tid=- env=- hdr=0 x-req=- custom=-"},
        {"classif", "read_classification",
         META " sid=- stype=- roles=- labels=- cls=secret rid=- tid=- env=- hdr=0 x-req=- "
              "custom=-"},
        {"request", "read_request",
         META " sid=- stype=- roles=- labels=- cls=- rid=req-1 tid=trace-1 env=prod hdr=0 "
              "x-req=- custom=-"},
        {"headers", "read_headers",
         META " sid=- stype=- roles=- labels=- cls=- rid=- tid=- env=- hdr=1 x-req=abc "
              "custom=-"},
        {"custom", "read_custom",
         META " sid=- stype=- roles=- labels=- cls=- rid=- tid=- env=- hdr=0 x-req=- custom=v"},
        /* Write capabilities never grant a read. */
        {"writer", "write_headers",
         META " sid=- stype=- roles=- labels=- cls=- rid=- tid=- env=- hdr=0 x-req=- custom=-"},
        {"appender", "append_labels",
         META " sid=- stype=- roles=- labels=- cls=- rid=- tid=- env=- hdr=0 x-req=- custom=-"},
    };
    const size_t n = CPEX__COUNT(cases);
    /* In each phase the view is the same. */
    const uint32_t modes[] = {CPEX_MODE_SEQUENTIAL, CPEX_MODE_TRANSFORM, CPEX_MODE_AUDIT,
                              CPEX_MODE_CONCURRENT, CPEX_MODE_FIRE_AND_FORGET};
    for (size_t mi = 0; mi < CPEX__COUNT(modes); mi++) {
        cpex_manager *m = tp_manager();
        tp_plugin *plugins[16];
        for (size_t i = 0; i < n; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s_%zu", cases[i].name, mi);
            plugins[i] = tp_new_in(name, &trace, modes[mi], TP_DEFAULT_PRIORITY);
            plugins[i]->caps[0] = cases[i].cap;
            tp_reg(m, plugins[i]);
        }
        /* All read capabilities at once. */
        tp_plugin *all = tp_new_in("all", &trace, modes[mi], TP_DEFAULT_PRIORITY);
        const char *every[] = {"read_subject", "read_roles",   "read_labels", "read_classification",
                               "read_request", "read_headers", "read_custom"};
        for (size_t k = 0; k < 7; k++)
            all->caps[k] = every[k];
        tp_reg(m, all);
        tp_init(m);

        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        cpex_extensions *ext = invoke_full(m, &res);
        assert_allowed(&res);
        assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(tp_calls(plugins[i]), 1);
            if (strcmp(plugins[i]->view, cases[i].expected) != 0)
                fail_msg("mode %u plugin %s (%s):\n  saw      %s\n  expected %s",
                         (unsigned)modes[mi], plugins[i]->name,
                         cases[i].cap ? cases[i].cap : "no capability", plugins[i]->view,
                         cases[i].expected);
        }
        assert_string_equal(all->view, META " sid=alice stype=user roles=admin|dev labels=pii "
                                            "cls=secret rid=req-1 tid=trace-1 env=prod hdr=1 "
                                            "x-req=abc custom=v");
        assert_false(res.extensions_modified);
        assert_null(res.extensions);
        finish(m, &res, ext);
        tp_free_all();
    }
}

static void test_no_extensions_passed(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("reader", &trace);
    p->caps[0] = "read_subject";
    p->caps[1] = "read_headers";
    p->caps[2] = "read_custom";
    tp_start(m, p);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, NULL, &res);
    assert_allowed(&res);
    assert_string_equal(p->view, "etype=- ename=- tags=- sid=- stype=- roles=- labels=- cls=- "
                                 "rid=- tid=- env=- hdr=0 x-req=- custom=-");
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */
/* ------------------------------------------------------------------ */

static void test_set_header_without_capability_refused(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = new_header_writer("sneaky", "read_headers", "X-Injected", "1");
    tp_plugin *next = new_header_reader("next", CPEX_MODE_SEQUENTIAL, 200, "x-injected");
    tp_start(m, p, next);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_extensions *ext = invoke_full(m, &res);
    assert_write_refused(&res, "sneaky", p->rc_header);
    assert_contains(tp_find_record(&res, "sneaky", "denied_write")->message, "write_headers");
    assert_null(res.extensions);
    assert_string_equal(next->seen_header, "(none)");
    assert_null(cpex_extensions_header(ext, CPEX_HEADERS_REQUEST, "X-Injected"));
    finish(m, &res, ext);
}

static void test_set_header_with_capability_chains(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *w = new_header_writer("writer", "read_headers", "X-Tenant", "acme");
    w->caps[1] = "write_headers";
    tp_plugin *next = new_header_reader("next_seq", CPEX_MODE_SEQUENTIAL, 200, "x-tenant");
    tp_plugin *xf = new_header_reader("xf", CPEX_MODE_TRANSFORM, TP_DEFAULT_PRIORITY, "X-TENANT");
    xf->caps[1] = "write_headers";
    /* transform may write too: replaces the value set by the sequential one */
    tp_plugin *xf2 = new_header_writer("xf2", "read_headers", "x-req", "changed");
    xf2->mode = CPEX_MODE_TRANSFORM;
    xf2->priority = 200;
    xf2->caps[1] = "write_headers";
    tp_plugin *co = new_header_reader("co", CPEX_MODE_CONCURRENT, TP_DEFAULT_PRIORITY, "x-tenant");
    tp_plugin *ff =
        new_header_reader("ff", CPEX_MODE_FIRE_AND_FORGET, TP_DEFAULT_PRIORITY, "x-req");
    tp_plugin *blind = tp_new_in("blind", &trace, CPEX_MODE_SEQUENTIAL, 300); /* no read_headers */
    blind->read_header = "x-tenant";
    tp_start(m, w, next, xf, xf2, co, ff, blind);

    cpex_extensions *ext = full_ext();
    cpex_extensions *before = cpex_extensions_copy(ext);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, ext, &res);
    assert_allowed(&res);
    assert_int_equal(cpex_manager_wait_background(m, 5), CPEX_OK);
    assert_int_equal(w->rc_header, CPEX_HOST_OK);
    assert_int_equal(xf2->rc_header, CPEX_HOST_OK);
    assert_string_equal(next->seen_header, "acme");
    assert_string_equal(xf->seen_header, "acme");
    assert_string_equal(co->seen_header, "acme");
    assert_string_equal(ff->seen_header, "changed");
    assert_string_equal(blind->seen_header, "(none)");
    assert_true(res.extensions_modified);
    assert_non_null(res.extensions);
    assert_string_equal(cpex_extensions_header(res.extensions, CPEX_HEADERS_REQUEST, "x-tenant"),
                        "acme");
    assert_string_equal(cpex_extensions_header(res.extensions, CPEX_HEADERS_REQUEST, "X-Req"),
                        "changed");
    /* Everything else kept. */
    assert_string_equal(cpex_extensions_get(res.extensions, CPEX_EXT_SUBJECT_ID), "alice");
    assert_true(cpex_extensions_has_label(res.extensions, "pii"));
    assert_int_equal(res.error_count, 0);
    /* The caller's object is never modified. */
    assert_true(cpex_extensions_equal(ext, before));
    assert_null(cpex_extensions_header(ext, CPEX_HEADERS_REQUEST, "X-Tenant"));
    assert_string_equal(cpex_extensions_header(ext, CPEX_HEADERS_REQUEST, "X-Req"), "abc");
    cpex_extensions_unref(before);
    finish(m, &res, ext);
}

static void test_write_without_extensions_creates_them(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *w = new_header_writer("writer", "write_headers", "X-New", "1");
    tp_start(m, w);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    invoke(m, NULL, &res);
    assert_allowed(&res);
    assert_int_equal(w->rc_header, CPEX_HOST_OK);
    assert_true(res.extensions_modified);
    assert_non_null(res.extensions);
    assert_string_equal(cpex_extensions_header(res.extensions, CPEX_HEADERS_REQUEST, "x-new"), "1");
    tp_finish(m, &res);
}

static void test_label_append_and_remove(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *a = tp_new("labeler", &trace);
    a->caps[0] = "read_labels";
    a->caps[1] = "append_labels";
    a->add_label = "confidential";
    a->remove_label = "pii"; /* always refused */
    tp_plugin *nolabel = tp_new_in("no_cap", &trace, CPEX_MODE_SEQUENTIAL, 150);
    nolabel->add_label = "sneaky";
    tp_plugin *reader = tp_new_in("reader", &trace, CPEX_MODE_SEQUENTIAL, 200);
    reader->caps[0] = "read_labels";
    tp_start(m, a, nolabel, reader);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_extensions *ext = invoke_full(m, &res);
    assert_allowed(&res);
    assert_int_equal(a->rc_label, CPEX_HOST_OK);
    assert_int_equal(a->rc_remove_label, CPEX_HOST_EDENIED);
    assert_int_equal(nolabel->rc_label, CPEX_HOST_EDENIED);
    assert_record(&res, "labeler", "denied_write");
    assert_record(&res, "no_cap", "denied_write");
    assert_contains(tp_find_record(&res, "no_cap", "denied_write")->message, "append_labels");
    /* The next plugin sees both labels, the old one still there. */
    assert_contains(reader->view, "labels=pii|confidential");
    assert_true(res.extensions_modified);
    assert_non_null(res.extensions);
    assert_true(cpex_extensions_has_label(res.extensions, "pii"));
    assert_true(cpex_extensions_has_label(res.extensions, "confidential"));
    assert_false(cpex_extensions_has_label(res.extensions, "sneaky"));
    assert_int_equal(cpex_extensions_count(res.extensions, CPEX_EXT_LABELS), 2);
    /* Caller's labels untouched. */
    assert_int_equal(cpex_extensions_count(ext, CPEX_EXT_LABELS), 1);
    finish(m, &res, ext);
}

static void test_remove_label_refused_in_every_mode(void **state)
{
    (void)state;
    const uint32_t modes[] = {CPEX_MODE_SEQUENTIAL, CPEX_MODE_TRANSFORM, CPEX_MODE_AUDIT,
                              CPEX_MODE_CONCURRENT};
    for (size_t i = 0; i < 4; i++) {
        cpex_manager *m = tp_manager();
        tp_plugin *p = tp_new_in("remover", &trace, modes[i], TP_DEFAULT_PRIORITY);
        p->caps[0] = "read_labels";
        p->caps[1] = "append_labels";
        p->remove_label = "pii";
        tp_start(m, p);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        cpex_extensions *ext = invoke_full(m, &res);
        assert_write_refused(&res, "remover", p->rc_remove_label);
        assert_true(cpex_extensions_has_label(ext, "pii"));
        finish(m, &res, ext);
        tp_free_all();
    }
}

static void test_writes_refused_outside_serial_modes(void **state)
{
    (void)state;
    const uint32_t modes[] = {CPEX_MODE_AUDIT, CPEX_MODE_CONCURRENT};
    for (size_t i = 0; i < 2; i++) {
        cpex_manager *m = tp_manager();
        tp_plugin *p = new_header_writer("ro_writer", "read_headers", "X-Audit", "1");
        p->mode = modes[i];
        p->caps[1] = "write_headers";
        p->caps[2] = "read_labels";
        p->caps[3] = "append_labels";
        p->caps[4] = "write_custom";
        p->add_label = "seen";
        tp_start(m, p);
        cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
        cpex_extensions *ext = invoke_full(m, &res);
        assert_write_refused(&res, "ro_writer", p->rc_header);
        assert_int_equal(p->rc_label, CPEX_HOST_EDENIED);
        assert_null(res.extensions);
        assert_null(cpex_extensions_header(ext, CPEX_HEADERS_REQUEST, "X-Audit"));
        assert_false(cpex_extensions_has_label(ext, "seen"));
        finish(m, &res, ext);
        tp_free_all();
    }
}

static int32_t write_custom(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    p->rc_ctx_global = h->ext_set_custom(call, "score", h->json_new_integer(42));
    return CPEX_ALLOW;
}

static int32_t read_custom_score(tp_plugin *p, const cpex_call *call)
{
    const cpex_host_api *h = tp_host();
    const cpex_json *v = h->ext_custom(call, "score");
    snprintf(p->seen_global, sizeof p->seen_global, "%lld",
             v ? (long long)h->json_integer(v) : -1LL);
    return CPEX_ALLOW;
}

static void test_custom_write_needs_write_custom(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *nocap = tp_new("nocap", &trace);
    nocap->custom = write_custom;
    tp_plugin *w = tp_new_in("w", &trace, CPEX_MODE_SEQUENTIAL, 150);
    w->caps[0] = "write_custom";
    w->custom = write_custom;
    tp_plugin *r = tp_new_in("r", &trace, CPEX_MODE_SEQUENTIAL, 200);
    r->caps[0] = "read_custom";
    r->custom = read_custom_score;
    tp_start(m, nocap, w, r);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_extensions *ext = invoke_full(m, &res);
    assert_allowed(&res);
    assert_int_equal(nocap->rc_ctx_global, CPEX_HOST_EDENIED);
    assert_record(&res, "nocap", "denied_write");
    assert_int_equal(w->rc_ctx_global, CPEX_HOST_OK);
    assert_string_equal(r->seen_global, "42");
    assert_true(res.extensions_modified);
    assert_int_equal(json_integer_value(cpex_extensions_custom(res.extensions, "score")), 42);
    assert_null(cpex_extensions_custom(ext, "score"));
    finish(m, &res, ext);
}

static void test_denied_pipeline_extension_writes(void **state)
{
    (void)state;
    /* Writes accepted before a deny; the caller's object still untouched. */
    cpex_manager *m = tp_manager();
    tp_plugin *w = new_header_writer("writer", "write_headers", "X-A", "1");
    tp_plugin *d = tp_new_in("denier", &trace, CPEX_MODE_SEQUENTIAL, 200);
    tp_start(m, w, tp_denying(d, NULL, NULL));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_extensions *ext = invoke_full(m, &res);
    assert_denied(&res, "plugin_deny", "denier");
    assert_null(cpex_extensions_header(ext, CPEX_HEADERS_REQUEST, "X-A"));
    finish(m, &res, ext);
}

static void test_erroring_plugin_writes_discarded(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *w = new_header_writer("bad_writer", "write_headers", "X-Bad", "1");
    tp_failing(w, CPEX_ON_ERROR_IGNORE, NULL);
    tp_plugin *r = new_header_reader("reader", CPEX_MODE_SEQUENTIAL, 200, "x-bad");
    tp_start(m, w, r);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_extensions *ext = invoke_full(m, &res);
    assert_allowed(&res);
    assert_record(&res, "bad_writer", "error");
    assert_string_equal(r->seen_header, "(none)");
    assert_false(res.extensions_modified);
    finish(m, &res, ext);
}

static void test_unknown_capability_refused(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new("typo", &trace);
    p->caps[0] = "read_header"; /* missing s */
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(tp_reg_err(m, p, &err), CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "read_header");
    assert_contains(cpex_error_message(&err), "read_headers"); /* did you mean */
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_plugin_count(m), 0);
    /* A CPEX capability libcpex does not implement is accepted. */
    tp_plugin *q = tp_new("cpex_cap", &trace);
    q->caps[0] = "read_delegation";
    tp_reg(m, q);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "cpex_cap", &info), CPEX_OK);
    assert_string_equal(info.capabilities[0], "read_delegation");
    assert_null(info.capabilities[1]);
    cpex_plugin_info_cleanup(&info);
    tp_manager_free(m);
    assert_int_equal(atomic_load(&p->destroy_calls), 1); /* refused: destroyed, once */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_each_plugin_sees_exactly_its_view),
        TP_TEST(test_no_extensions_passed),
        TP_TEST(test_set_header_without_capability_refused),
        TP_TEST(test_set_header_with_capability_chains),
        TP_TEST(test_write_without_extensions_creates_them),
        TP_TEST(test_label_append_and_remove),
        TP_TEST(test_remove_label_refused_in_every_mode),
        TP_TEST(test_writes_refused_outside_serial_modes),
        TP_TEST(test_custom_write_needs_write_custom),
        TP_TEST(test_denied_pipeline_extension_writes),
        TP_TEST(test_erroring_plugin_writes_discarded),
        TP_TEST(test_unknown_capability_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
