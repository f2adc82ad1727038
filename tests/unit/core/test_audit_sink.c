/*
 * test_audit_sink.c — audit sinks: every verdict, allowed and denied, with
 * the violation, the final payload, the extensions a sink's capabilities
 * show and the execution records (fire-and-forget ones too), after the
 * decision and off the invoke's path; sinks from code and from YAML; the
 * queue's backpressure, drop mode and a stuck sink; containment of a sink
 * that fails, denies or overruns; shutdown delivering everything queued;
 * sinks from code surviving configuration loads. The reference's audit
 * seam tests are ported here (decision log, observing, containment,
 * attaching from configuration).
 */
#include "test_support.h"
#include "plugins.h"

#define HOOK "cmf.tool_pre_invoke"
#define POST "cmf.tool_post_invoke"

TP_FIXTURE;

/* ------------------------------------------------------------------ */
/* A recording sink                                                    */
/* ------------------------------------------------------------------ */

#define SINK_MAX 256

typedef struct seen_verdict {
    uint32_t decision;
    char hook[64];
    char code[64];
    char reason[128];
    char plugin[64];
    char text[128]; /* part 0 of the final payload, "" when none */
    uint32_t payload_modified;
    size_t record_count;
    char records[512]; /* "name:status:requested:effective,..." */
    char subject[64];  /* what ext_get showed, "-" when hidden */
    int trace_in_records;
    int64_t faf_duration_ns; /* the duration of the first fire-and-forget record, -1 none */
    int64_t time_unix_ns;
} seen_verdict;

typedef struct sink {
    pthread_mutex_t lock;
    size_t count;
    seen_verdict seen[SINK_MAX];
    int32_t decision; /* what the verdict handler returns */
    long sleep_ms;
    const char *try_header; /* tries to write a header (refused) */
    atomic_int destroyed;
    pthread_t thread;
} sink;

static void sink_init(sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->decision = CPEX_ALLOW;
}

static size_t sink_count(sink *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void copy_str(char *dst, size_t cap, cpex_str s)
{
    snprintf(dst, cap, "%.*s", s.ptr ? (int)s.len : 0, s.ptr ? s.ptr : "");
}

static int32_t sink_verdict(void *instance, const cpex_call *call, const cpex_verdict *v)
{
    sink *s = instance;
    const cpex_host_api *h = cpex_host_api_get();
    seen_verdict sv;
    memset(&sv, 0, sizeof sv);
    sv.decision = v->decision;
    copy_str(sv.hook, sizeof sv.hook, v->hook);
    copy_str(sv.code, sizeof sv.code, v->violation_code);
    copy_str(sv.reason, sizeof sv.reason, v->violation_reason);
    copy_str(sv.plugin, sizeof sv.plugin, v->violation_plugin);
    assert_true(call->mode == CPEX_MODE_AUDIT);
    assert_ptr_equal(call->payload, v->payload);
    if (v->payload && v->payload->kind == CPEX_PAYLOAD_CMF)
        snprintf(sv.text, sizeof sv.text, "%s", tp_msg_text(v->payload->data));
    sv.payload_modified = v->payload_modified;
    sv.record_count = v->record_count;
    sv.faf_duration_ns = -1;
    size_t pos = 0;
    for (size_t i = 0; i < v->record_count; i++) {
        const cpex_execution_record *r = cpex_verdict_record(v, i);
        pos += (size_t)snprintf(sv.records + pos, sizeof sv.records - pos, "%s%.*s:%s:%d:%d",
                                i ? "," : "", (int)r->plugin_name.len, r->plugin_name.ptr,
                                cpex_exec_status_name(r->status), r->requested, (int)r->effective);
        if (r->trace_id.ptr)
            sv.trace_in_records = 1;
        if (r->mode == CPEX_MODE_FIRE_AND_FORGET && sv.faf_duration_ns < 0)
            sv.faf_duration_ns = r->duration_ns;
    }
    cpex_str subj = {NULL, 0};
    if (h->ext_get(call, CPEX_EXT_SUBJECT_ID, &subj) == CPEX_HOST_OK)
        copy_str(sv.subject, sizeof sv.subject, subj);
    else
        snprintf(sv.subject, sizeof sv.subject, "-");
    if (s->try_header)
        h->ext_set_header(call, CPEX_HEADERS_REQUEST, s->try_header, "v");
    sv.time_unix_ns = v->time_unix_ns;
    if (s->sleep_ms)
        tp_sleep_ms(s->sleep_ms);
    pthread_mutex_lock(&s->lock);
    s->thread = pthread_self();
    if (s->count < SINK_MAX)
        s->seen[s->count] = sv;
    s->count++;
    pthread_mutex_unlock(&s->lock);
    if (s->decision == CPEX_ERROR)
        h->set_error(call, "sink failed");
    return s->decision;
}

static void sink_destroy(void *instance) { atomic_fetch_add(&((sink *)instance)->destroyed, 1); }

/* Register `s` as a sink from code; hooks NULL: every hook. */
static cpex_status add_sink(cpex_manager *m, const char *name, sink *s, const char *const *hooks,
                            size_t nhooks, const char *cap, cpex_error *err)
{
    cpex_sink_spec spec;
    cpex_sink_spec_init(&spec);
    spec.name = name;
    spec.verdict = sink_verdict;
    spec.instance = s;
    spec.destroy = sink_destroy;
    spec.hooks = hooks;
    spec.hook_count = nhooks;
    const char *caps[1] = {cap};
    spec.capabilities = cap ? caps : NULL;
    spec.capability_count = cap ? 1 : 0;
    return cpex_manager_register_sink(m, &spec, err);
}

#define ADD_SINK(m, name, s, hooks, n, cap)                                                        \
    do {                                                                                           \
        cpex_error e_ = CPEX_ERROR_INIT;                                                           \
        cpex_status st_ = add_sink((m), (name), (s), (hooks), (n), (cap), &e_);                    \
        if (st_ != CPEX_OK)                                                                        \
            print_error("register_sink: %s\n", cpex_error_message(&e_));                           \
        cpex_error_cleanup(&e_);                                                                   \
        assert_int_equal(st_, CPEX_OK);                                                            \
    } while (0)

static void wait_idle(cpex_manager *m)
{
    assert_int_equal(cpex_manager_wait_background(m, 60), CPEX_OK);
}

/* ------------------------------------------------------------------ */
/* What a sink sees                                                    */
/* ------------------------------------------------------------------ */

/* Reference: test_audit_handler_observes_verdict / decision log. */
static void test_sink_sees_allow_and_deny(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    cpex_manager *m = tp_manager();
    tp_plugin *d = tp_denying(tp_new("guard", &trace), "denied", "no tools today");
    d->hooks[0] = POST;
    tp_plugin *t = tp_new_in("redact", &trace, CPEX_MODE_TRANSFORM, 1);
    t->append_text = "+r";
    tp_start(m, d, t);
    ADD_SINK(m, "audit", &s, NULL, 0, NULL);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    assert_int_equal(res.execution_count, 0); /* records for the sink, not the result */
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, POST, &res);
    assert_denied(&res, "denied", "guard");
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&s), 2);
    seen_verdict *a = &s.seen[0], *b = &s.seen[1];
    assert_int_equal(a->decision, CPEX_ALLOW);
    assert_string_equal(a->hook, HOOK);
    assert_string_equal(a->code, "");
    assert_string_equal(a->text, "hello+r"); /* the final payload */
    assert_int_equal(a->payload_modified, 1);
    assert_string_equal(a->records, "redact:completed:0:0");
    assert_true(a->time_unix_ns > 0);
    assert_int_equal(b->decision, CPEX_DENY);
    assert_string_equal(b->hook, POST);
    assert_string_equal(b->code, "denied");
    assert_string_equal(b->reason, "no tools today");
    assert_string_equal(b->plugin, "guard");
    assert_string_equal(b->records, "guard:completed:1:1");
    assert_false(pthread_equal(s.thread, pthread_self())); /* off the invoking thread */
    tp_finish(m, &res);
    assert_int_equal(atomic_load(&s.destroyed), 1);
}

static void test_sink_extensions_filtered_and_read_only(void **state)
{
    (void)state;
    static sink blind, seeing;
    sink_init(&blind);
    sink_init(&seeing);
    seeing.try_header = "x-sink";
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    ADD_SINK(m, "blind", &blind, NULL, 0, NULL);
    ADD_SINK(m, "seeing", &seeing, NULL, 0, "read_subject");
    cpex_extensions *ext = cpex_extensions_new();
    cpex_extensions_set(ext, CPEX_EXT_SUBJECT_ID, "alice");
    cpex_extensions_set(ext, CPEX_EXT_TRACE_ID, "trace-1");
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_invoke_text(m, HOOK, "hello", ext, NULL, &res);
    assert_allowed(&res);
    assert_false(res.extensions_modified);
    cpex_pipeline_result_cleanup(&res);
    cpex_extensions_unref(ext); /* the sinks read their own view */
    wait_idle(m);
    assert_string_equal(blind.seen[0].subject, "-");
    assert_string_equal(seeing.seen[0].subject, "alice");
    assert_int_equal(seeing.seen[0].trace_in_records, 0); /* read_request decides, not records */
    /* its write was refused and recorded in the background log */
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_non_null(tp_find_record_in(recs, n, "seeing", "denied_write"));
    cpex_error_records_free(recs, n);
    tp_finish(m, &res);
}

static void test_sink_hook_filter_and_unhandled_hooks(void **state)
{
    (void)state;
    static sink all, post_only;
    sink_init(&all);
    sink_init(&post_only);
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    static const char *const hooks[] = {POST};
    ADD_SINK(m, "all", &all, NULL, 0, NULL);
    ADD_SINK(m, "post-only", &post_only, hooks, 1, NULL);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res); /* has a plugin */
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, POST, &res); /* no plugin: still a verdict */
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, "never.seen", &res); /* a name no one interned */
    cpex_pipeline_result_cleanup(&res);
    cpex_error err = CPEX_ERROR_INIT;
    const cpex_hook_handle *hh = cpex_manager_hook(m, "by.handle", &err);
    cpex_cmf_message *msg = test_text_message("x");
    cpex_payload pl = cpex_payload_cmf(msg);
    cpex_manager_invoke_hook(m, hh, &pl, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    /* a payload that does not fit its hook: a deny the sinks see */
    json_t *doc = json_object();
    cpex_payload wrong = cpex_payload_json(doc);
    cpex_manager_invoke(m, HOOK, &wrong, NULL, NULL, &res);
    assert_denied(&res, "payload_type_mismatch", NULL);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&all), 5);
    assert_string_equal(all.seen[1].hook, POST);
    assert_int_equal(all.seen[1].record_count, 0);
    assert_string_equal(all.seen[2].hook, "never.seen");
    assert_string_equal(all.seen[3].hook, "by.handle");
    assert_string_equal(all.seen[3].text, "x");
    assert_int_equal(all.seen[4].decision, CPEX_DENY);
    assert_string_equal(all.seen[4].code, "payload_type_mismatch");
    assert_int_equal(sink_count(&post_only), 1);
    assert_string_equal(post_only.seen[0].hook, POST);
    json_decref(doc);
    cpex_cmf_free(msg);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* An invoke of a hook with nothing to run is answered without entering
 * the registry while no sink exists (invoke.c); once a sink is registered
 * the same hook, by name and by a handle resolved earlier, is observed
 * again, and no longer once it is unregistered. */
static void test_sink_added_after_fast_empty_answers(void **state)
{
    (void)state;
    static sink all;
    sink_init(&all);
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    const cpex_hook_handle *hh = cpex_manager_hook(m, "quiet.hook", NULL);
    cpex_cmf_message *msg = test_text_message("x");
    cpex_payload pl = cpex_payload_cmf(msg);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    for (int i = 0; i < 3; i++) { /* the fast paths, warm */
        cpex_manager_invoke(m, "quiet.hook", &pl, NULL, NULL, &res);
        cpex_pipeline_result_cleanup(&res);
        cpex_manager_invoke_hook(m, hh, &pl, NULL, NULL, &res);
        cpex_pipeline_result_cleanup(&res);
    }
    ADD_SINK(m, "all", &all, NULL, 0, NULL);
    for (int i = 0; i < 2; i++) {
        cpex_manager_invoke(m, "quiet.hook", &pl, NULL, NULL, &res);
        assert_allowed(&res);
        assert_true(res.no_plugin_ran);
        cpex_pipeline_result_cleanup(&res);
        cpex_manager_invoke_hook(m, hh, &pl, NULL, NULL, &res);
        assert_allowed(&res);
        assert_true(res.no_plugin_ran);
        cpex_pipeline_result_cleanup(&res);
    }
    wait_idle(m);
    assert_int_equal(sink_count(&all), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(all.seen[i].hook, "quiet.hook");
    assert_int_equal(cpex_manager_unregister_sink(m, "all", NULL), CPEX_OK);
    cpex_manager_invoke_hook(m, hh, &pl, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    cpex_manager_invoke(m, "quiet.hook", &pl, NULL, NULL, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&all), 4);
    cpex_cmf_free(msg);
    tp_manager_free(m);
}

static void test_fire_and_forget_records_in_verdict(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    cpex_manager *m = tp_manager();
    tp_plugin *q = tp_new_in("seq", &trace, CPEX_MODE_SEQUENTIAL, 1);
    tp_plugin *f = tp_new_in("bg", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    f->sleep_ms = 30;
    tp_plugin *g = tp_failing(tp_new_in("bg-bad", &trace, CPEX_MODE_FIRE_AND_FORGET, 2),
                              CPEX_ON_ERROR_IGNORE, "bg broke");
    tp_start(m, q, f, g);
    ADD_SINK(m, "audit", &s, NULL, 0, NULL);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&s), 1);
    assert_string_equal(s.seen[0].records, "seq:completed:0:0,bg:completed:0:0,bg-bad:error:-1:0");
    assert_true(s.seen[0].faf_duration_ns >= 20000000); /* timed when it finished */
    tp_finish(m, &res);
}

static void test_fire_and_forget_timeout_in_verdict(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    cpex_manager *m = tp_manager();
    tp_plugin *f = tp_new_in("bg-slow", &trace, CPEX_MODE_FIRE_AND_FORGET, 1);
    f->timeout = 0.05;
    f->on_error = CPEX_ON_ERROR_IGNORE;
    f->sleep_ms = 800;
    tp_start(m, f);
    ADD_SINK(m, "audit", &s, NULL, 0, NULL);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    /* Delivered once the deadline and the grace passed, not when it ends. */
    for (int i = 0; i < 600 && sink_count(&s) == 0; i++)
        tp_sleep_ms(5);
    assert_int_equal(sink_count(&s), 1);
    assert_string_equal(s.seen[0].records, "bg-slow:timeout:-1:0");
    wait_idle(m);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* Containment                                                         */
/* ------------------------------------------------------------------ */

/* Reference: test_panicking_audit_handler_is_contained. */
static void test_failing_sink_is_contained(void **state)
{
    (void)state;
    static sink bad, denier, good;
    sink_init(&bad);
    sink_init(&denier);
    sink_init(&good);
    bad.decision = CPEX_ERROR;
    denier.decision = CPEX_DENY;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    ADD_SINK(m, "bad", &bad, NULL, 0, NULL);
    ADD_SINK(m, "denier", &denier, NULL, 0, NULL);
    ADD_SINK(m, "good", &good, NULL, 0, NULL);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_allowed(&res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&good), 1);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_non_null(tp_find_record_in(recs, n, "bad", "error"));
    assert_non_null(tp_find_record_in(recs, n, "denier", "dropped_deny"));
    cpex_error_records_free(recs, n);
    tp_finish(m, &res);
}

static void test_sink_disable_and_timeout(void **state)
{
    (void)state;
    static sink flaky, slow;
    sink_init(&flaky);
    sink_init(&slow);
    flaky.decision = CPEX_ERROR;
    slow.sleep_ms = 80;
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("a", &trace));
    cpex_sink_spec spec;
    cpex_sink_spec_init(&spec);
    spec.name = "flaky";
    spec.verdict = sink_verdict;
    spec.instance = &flaky;
    spec.on_error = CPEX_ON_ERROR_DISABLE;
    assert_int_equal(cpex_manager_register_sink(m, &spec, NULL), CPEX_OK);
    cpex_sink_spec_init(&spec);
    spec.name = "slow";
    spec.verdict = sink_verdict;
    spec.instance = &slow;
    spec.timeout = 0.02;
    assert_int_equal(cpex_manager_register_sink(m, &spec, NULL), CPEX_OK);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    for (int i = 0; i < 3; i++) {
        tp_run(m, HOOK, &res);
        cpex_pipeline_result_cleanup(&res);
    }
    wait_idle(m);
    assert_int_equal(sink_count(&flaky), 1); /* disabled after its first failure */
    assert_int_equal(sink_count(&slow), 3);
    cpex_error_record *recs = NULL;
    size_t n = cpex_manager_take_background_errors(m, &recs);
    assert_non_null(tp_find_record_in(recs, n, "slow", "timeout"));
    cpex_error_records_free(recs, n);
    tp_finish(m, &res);
}

/* ------------------------------------------------------------------ */
/* The queue                                                           */
/* ------------------------------------------------------------------ */

/* Invoke HOOK `n` times, cleaning each result up. */
static void run_n(cpex_manager *m, int n)
{
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    for (int i = 0; i < n; i++) {
        tp_run(m, HOOK, &res);
        cpex_pipeline_result_cleanup(&res);
    }
}

static cpex_manager *queue_manager(uint32_t size, uint32_t overflow, double max_wait)
{
    cpex_manager_options o;
    cpex_manager_options_init(&o);
    o.audit_queue_size = size;
    o.audit_overflow = overflow;
    o.audit_max_wait = max_wait;
    return tp_manager_with(&o);
}

/* A manager with one plugin and sink `s` ("audit") behind a queue of
 * `size` in `overflow` mode, invoked `n` times. */
static cpex_manager *queue_run(sink *s, uint32_t size, uint32_t overflow, double max_wait, int n)
{
    cpex_manager *m = queue_manager(size, overflow, max_wait);
    tp_start(m, tp_new("a", &trace));
    ADD_SINK(m, "audit", s, NULL, 0, NULL);
    run_n(m, n);
    return m;
}

static void test_backpressure_loses_nothing(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    s.sleep_ms = 10;
    cpex_manager *m = queue_run(&s, 2, CPEX_AUDIT_BLOCK, 30.0, 20);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    wait_idle(m);
    assert_int_equal(sink_count(&s), 20);
    cpex_stats *st = NULL;
    assert_int_equal(cpex_manager_stats(m, &st), CPEX_OK);
    assert_int_equal(st->audit_dropped, 0);
    assert_int_equal(st->audit_enqueued, 20);
    assert_int_equal(st->audit_delivered, 20);
    assert_int_equal(st->audit_capacity, 2);
    cpex_stats_free(st);
    tp_finish(m, &res);
}

static void test_drop_mode_counts_drops(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    s.sleep_ms = 50;
    cpex_manager *m = queue_run(&s, 1, CPEX_AUDIT_DROP, 1.0, 10);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    wait_idle(m);
    cpex_stats *st = NULL;
    assert_int_equal(cpex_manager_stats(m, &st), CPEX_OK);
    assert_true(st->audit_dropped >= 1);
    assert_int_equal(st->audit_delivered + st->audit_dropped, 10);
    assert_int_equal(sink_count(&s), st->audit_delivered);
    char *text = cpex_manager_metrics_text(m);
    assert_non_null(text);
    char line[96];
    snprintf(line, sizeof line, "cpex_audit_verdicts_dropped_total %llu\n",
             (unsigned long long)st->audit_dropped);
    assert_contains(text, line);
    free(text);
    cpex_stats_free(st);
    tp_finish(m, &res);
}

/* A sink stuck past its deadline does not make every invoke wait. */
static void test_stuck_sink_does_not_stall_invokes(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    s.sleep_ms = 1500;
    cpex_manager *m = queue_manager(1, CPEX_AUDIT_BLOCK, 20.0);
    tp_start(m, tp_new("a", &trace));
    cpex_sink_spec spec;
    cpex_sink_spec_init(&spec);
    spec.name = "stuck";
    spec.verdict = sink_verdict;
    spec.instance = &s;
    spec.timeout = 0.05;
    assert_int_equal(cpex_manager_register_sink(m, &spec, NULL), CPEX_OK);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res); /* the sink starts its long call */
    cpex_pipeline_result_cleanup(&res);
    tp_sleep_ms(200); /* past its 50 ms deadline */
    int64_t t0 = tp_now_ns();
    for (int i = 0; i < 5; i++) {
        tp_run(m, HOOK, &res);
        cpex_pipeline_result_cleanup(&res);
    }
    int64_t took = tp_now_ns() - t0;
    /* With backpressure and a 20 s wait, five invokes would take far
     * longer than this if they waited for the stuck sink. */
    assert_true(took < 5LL * 1000000000);
    wait_idle(m);
    cpex_stats *st = NULL;
    assert_int_equal(cpex_manager_stats(m, &st), CPEX_OK);
    assert_true(st->audit_dropped >= 3);
    cpex_stats_free(st);
    tp_finish(m, &res);
}

static void test_shutdown_delivers_everything_queued(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    s.sleep_ms = 5;
    cpex_manager *m = queue_run(&s, 1000, CPEX_AUDIT_BLOCK, 1.0, 40);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    cpex_manager_shutdown(m);
    assert_int_equal(sink_count(&s), 40);
    /* after shutdown: fail closed, and no verdict */
    tp_run(m, HOOK, &res);
    assert_false(res.continue_processing);
    cpex_pipeline_result_cleanup(&res);
    tp_finish(m, &res);
    assert_int_equal(sink_count(&s), 40);
}

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

static void test_sink_registration_errors(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    cpex_manager *m = tp_manager();
    tp_start(m, tp_new("taken", &trace));
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(add_sink(m, "taken", &s, NULL, 0, NULL, &err), CPEX_E_EXISTS);
    assert_contains(cpex_error_message(&err), "taken");
    assert_int_equal(atomic_load(&s.destroyed), 1); /* taken on failure too */
    cpex_error_cleanup(&err);
    assert_int_equal(add_sink(m, "x", &s, NULL, 0, "read_subjekt", &err), CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "read_subject");
    cpex_error_cleanup(&err);
    cpex_sink_spec spec;
    cpex_sink_spec_init(&spec);
    spec.name = "no-verdict";
    assert_int_equal(cpex_manager_register_sink(m, &spec, &err), CPEX_E_INVALID);
    cpex_error_cleanup(&err);
    ADD_SINK(m, "ok", &s, NULL, 0, NULL);
    assert_int_equal(add_sink(m, "ok", &s, NULL, 0, NULL, &err), CPEX_E_EXISTS);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_unregister_sink(m, "nope", &err), CPEX_E_NOT_FOUND);
    cpex_error_cleanup(&err);
    assert_int_equal(cpex_manager_unregister_sink(m, "ok", &err), CPEX_OK);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&s), 0);
    tp_finish(m, &res);
}

/* Sinks registered from code stay through configuration loads (each load
 * publishes a new snapshot) and unregistrations of plugins. */
static void test_api_sinks_survive_loads(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    cpex_manager *m = tp_manager();
    ADD_SINK(m, "audit", &s, NULL, 0, NULL);
    tp_plugin *a = tp_new("a", &trace);
    tp_start(m, a);
    cpex_error err = CPEX_ERROR_INIT;
    static const char yaml[] = "plugin_settings:\n  plugin_timeout: 10\nplugins: []\n";
    assert_int_equal(cpex_manager_load_string(m, yaml, sizeof yaml - 1, NULL, NULL, &err), CPEX_OK);
    assert_int_equal(cpex_manager_unregister(m, "a", &err), CPEX_OK);
    tp_plugin *b = tp_new("b", &trace);
    tp_reg(m, b);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&s), 1);
    assert_string_equal(s.seen[0].records, "b:completed:0:0");
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* A plugin that is a sink: registered from code with a verdict handler. */
static void test_plugin_sink_from_code(void **state)
{
    (void)state;
    static sink s;
    sink_init(&s);
    cpex_manager *m = tp_manager();
    tp_plugin *p = tp_new_in("auditor", &trace, CPEX_MODE_AUDIT, 1);
    p->hooks[0] = POST; /* its handler; it observes the verdicts of that hook */
    cpex_plugin_spec spec;
    cpex_plugin_registration reg;
    tp_fill(p, &spec, &reg);
    reg.verdict = sink_verdict;
    reg.instance = &s; /* the handler and the verdict handler share the instance */
    reg.handlers = NULL;
    reg.handler_count = 0; /* a pure sink: no handler */
    static const char *const hooks[] = {POST};
    spec.hooks = hooks;
    spec.hook_count = 1;
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register(m, &spec, &reg, &err), CPEX_OK);
    tp_start(m, tp_new("a", &trace));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, POST, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&s), 1);
    assert_string_equal(s.seen[0].hook, POST);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* Reference: test_audit_plugin_auto_attaches_from_config. A factory for
 * kind "test/audit" makes a sink plugin: no handler, a verdict handler. */
static sink factory_sink;

static cpex_status audit_factory(void *data, const cpex_factory_request *req,
                                 cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)err;
    static const cpex_handler_reg handlers[] = {CPEX_HANDLER(HOOK, tp_handler, NULL)};
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.instance = &factory_sink;
    out->registration.verdict = sink_verdict;
    /* with hooks listed, it also has a handler for them (config "handler") */
    if (req->config->hook_count) {
        out->registration.handler_count = 1;
        out->registration.handlers = handlers;
    }
    return CPEX_OK;
}

static void test_hookless_audit_plugin_from_yaml(void **state)
{
    (void)state;
    sink_init(&factory_sink);
    cpex_manager *m = tp_manager();
    cpex_factory f = {sizeof f, audit_factory, NULL, NULL};
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register_factory(m, "test/audit", &f, &err), CPEX_OK);
    static const char yaml[] = "plugins:\n"
                               "  - name: audit\n"
                               "    kind: test/audit\n"
                               "    mode: audit\n";
    assert_int_equal(cpex_manager_load_string(m, yaml, sizeof yaml - 1, NULL, NULL, &err), CPEX_OK);
    tp_init(m);
    tp_start(m, tp_denying(tp_new("gate", &trace), "blocked", "by gate"));
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    assert_denied(&res, "blocked", "gate");
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&factory_sink), 1); /* fires once, and sees the deny */
    assert_string_equal(factory_sink.seen[0].code, "blocked");
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "audit", &info), CPEX_OK);
    assert_true(info.audit_sink);
    assert_null(info.sink_hooks);
    cpex_plugin_info_cleanup(&info);
    /* A sink from a configuration goes with its plugin. */
    assert_int_equal(cpex_manager_unregister(m, "audit", &err), CPEX_OK);
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&factory_sink), 1);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

/* With hooks listed, a sink observes those hooks only (a listed hook it
 * has no handler for is allowed: the sink observes its verdicts). */
static void test_audit_plugin_with_hooks_from_yaml(void **state)
{
    (void)state;
    sink_init(&factory_sink);
    cpex_manager *m = tp_manager();
    cpex_factory f = {sizeof f, audit_factory, NULL, NULL};
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register_factory(m, "test/audit", &f, &err), CPEX_OK);
    static const char yaml[] = "plugins:\n"
                               "  - name: audit\n"
                               "    kind: test/audit\n"
                               "    mode: audit\n"
                               "    hooks: [" POST "]\n";
    if (cpex_manager_load_string(m, yaml, sizeof yaml - 1, NULL, NULL, &err) != CPEX_OK)
        fail_msg("%s", cpex_error_message(&err));
    tp_init(m);
    cpex_pipeline_result res = CPEX_PIPELINE_RESULT_INIT;
    tp_run(m, HOOK, &res);
    cpex_pipeline_result_cleanup(&res);
    tp_run(m, POST, &res);
    cpex_pipeline_result_cleanup(&res);
    wait_idle(m);
    assert_int_equal(sink_count(&factory_sink), 1);
    assert_string_equal(factory_sink.seen[0].hook, POST);
    cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
    assert_int_equal(cpex_manager_plugin_info(m, "audit", &info), CPEX_OK);
    assert_true(info.audit_sink);
    assert_non_null(info.sink_hooks);
    assert_string_equal(info.sink_hooks[0], POST);
    assert_null(info.sink_hooks[1]);
    cpex_plugin_info_cleanup(&info);
    cpex_error_cleanup(&err);
    tp_finish(m, &res);
}

static cpex_status plain_factory(void *data, const cpex_factory_request *req,
                                 cpex_factory_product *out, cpex_error *err)
{
    (void)data;
    (void)req;
    (void)err;
    static const cpex_handler_reg handlers[] = {CPEX_HANDLER(HOOK, tp_handler, NULL)};
    static tp_plugin *dummy;
    if (!dummy)
        dummy = tp_new("dummy", NULL);
    out->registration.abi_version = CPEX_ABI_VERSION;
    out->registration.instance = dummy;
    out->registration.handler_count = 1;
    out->registration.handlers = handlers;
    return CPEX_OK;
}

static void test_hookless_audit_plugin_needs_a_verdict_handler(void **state)
{
    (void)state;
    cpex_manager *m = tp_manager();
    cpex_factory f = {sizeof f, plain_factory, NULL, NULL};
    cpex_error err = CPEX_ERROR_INIT;
    assert_int_equal(cpex_manager_register_factory(m, "test/plain", &f, &err), CPEX_OK);
    static const char yaml[] = "plugins:\n"
                               "  - name: watcher\n"
                               "    kind: test/plain\n"
                               "    mode: audit\n";
    assert_int_equal(cpex_manager_load_string(m, yaml, sizeof yaml - 1, "cfg.yaml", NULL, &err),
                     CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "watcher");
    assert_contains(cpex_error_message(&err), "verdict handler");
    cpex_error_cleanup(&err);
    /* and a sequential plugin still needs hooks: */
    static const char seq[] = "plugins:\n  - name: s\n    kind: test/plain\n";
    assert_int_equal(cpex_manager_load_string(m, seq, sizeof seq - 1, "cfg.yaml", NULL, &err),
                     CPEX_E_CONFIG);
    assert_contains(cpex_error_message(&err), "missing required key 'hooks'");
    cpex_error_cleanup(&err);
    tp_manager_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TP_TEST(test_sink_sees_allow_and_deny),
        TP_TEST(test_sink_extensions_filtered_and_read_only),
        TP_TEST(test_sink_hook_filter_and_unhandled_hooks),
        TP_TEST(test_sink_added_after_fast_empty_answers),
        TP_TEST(test_fire_and_forget_records_in_verdict),
        TP_TEST(test_fire_and_forget_timeout_in_verdict),
        TP_TEST(test_failing_sink_is_contained),
        TP_TEST(test_sink_disable_and_timeout),
        TP_TEST(test_backpressure_loses_nothing),
        TP_TEST(test_drop_mode_counts_drops),
        TP_TEST(test_stuck_sink_does_not_stall_invokes),
        TP_TEST(test_shutdown_delivers_everything_queued),
        TP_TEST(test_sink_registration_errors),
        TP_TEST(test_api_sinks_survive_loads),
        TP_TEST(test_plugin_sink_from_code),
        TP_TEST(test_hookless_audit_plugin_from_yaml),
        TP_TEST(test_audit_plugin_with_hooks_from_yaml),
        TP_TEST(test_hookless_audit_plugin_needs_a_verdict_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
