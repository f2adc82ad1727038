/*
 * pii_redact.c — redact e-mail addresses, phone numbers and card numbers.
 *
 *   - name: pii-redact
 *     kind: "lib:../build/plugins/libpii_redact.so"
 *     hooks: [cmf.tool_pre_invoke, cmf.tool_post_invoke]
 *     mode: transform
 *     config:
 *       kinds: [email, phone, card]   # what to redact (default: all three)
 *
 * Looks at the text of text and thinking parts and at every string value of
 * tool_call arguments and tool_result contents (recursively, through
 * objects and arrays; keys are left alone). Each finding is replaced by a placeholder: [EMAIL], [PHONE],
 * [CARD]. A card number is a run of 13 to 19 digits (single spaces or dashes
 * between groups allowed) that passes the Luhn check, so an order number or
 * a mistyped card is not touched. The modified message is built with the
 * host's cmf_* functions and handed back with set_payload_cmf; the counts go
 * into the result metadata under `pii_redactions`. (Tool results have no
 * in-place setter in the host table, so those go through the message's JSON
 * form: see rebuild_results.)
 *
 * The detectors are deliberately simple scanners (no regex engine): they
 * show the shape of a transform plugin, not a complete PII product.
 */
#include <stdlib.h>
#include <string.h>

#include <cpex/plugin.h>

enum { PII_EMAIL = 0, PII_PHONE = 1, PII_CARD = 2, PII_KINDS = 3 };

static const char *const kind_names[PII_KINDS] = {"email", "phone", "card"};
static const char *const placeholders[PII_KINDS] = {"[EMAIL]", "[PHONE]", "[CARD]"};

typedef struct redactor {
    const cpex_host_api *host;
    int enabled[PII_KINDS];
} redactor;

typedef struct counts {
    int64_t n[PII_KINDS];
} counts;

/* A growable output buffer; `failed` sticks after an allocation failure. */
typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void buf_put(buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* ASCII classes by hand: <ctype.h> depends on the locale and on the char
   being representable as unsigned char, and PII text is mostly UTF-8. */
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(char c) { return is_digit(c) || is_alpha(c); }
static int is_local_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static int is_domain_char(char c) { return is_alnum(c) || c == '-' || c == '.'; }

/*
 * An e-mail address around the '@' at `at`: local part to the left, domain
 * to the right with at least one dot and a final label of two or more
 * letters. Returns the length and writes the start, or 0.
 */
static size_t match_email(const char *s, size_t len, size_t at, size_t *start)
{
    size_t b = at, e = at + 1;
    while (b > 0 && is_local_char(s[b - 1]))
        b--;
    while (b < at && s[b] == '.') /* a local part does not start with a dot */
        b++;
    if (b == at)
        return 0;
    while (e < len && is_domain_char(s[e]))
        e++;
    while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) /* "mail me at a@b.com." */
        e--;
    size_t last_dot = 0;
    for (size_t i = at + 1; i < e; i++) {
        if (s[i] == '.')
            last_dot = i;
    }
    if (last_dot == 0 || last_dot == at + 1 || e - last_dot - 1 < 2)
        return 0;
    for (size_t i = last_dot + 1; i < e; i++) {
        if (!is_alpha(s[i]))
            return 0;
    }
    *start = b;
    return e - b;
}

/* Luhn check over the digits of s[0..n) (other characters skipped). */
static int luhn_ok(const char *s, size_t n)
{
    int sum = 0, dbl = 0;
    for (size_t i = n; i-- > 0;) {
        if (!is_digit(s[i]))
            continue;
        int d = s[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

/*
 * A run of digits starting at `i` (optionally after '+' or '('), with one
 * or two separators (space, '-', '.', '(', ')') between digit groups.
 * Classifies it as a card (13-19 digits, only spaces or dashes between
 * groups, Luhn-valid) or a phone number (10-15 digits, or 8-15 after a
 * '+'; at most one one-digit group, and only among the first two, as in
 * "+33 1 42 68 53 00", so "1 2 3 4 5 6 7 8 9 0" is not a phone; with dots
 * between groups, no group longer than 4, so 3.14159265358 is not either).
 * Returns the match's length and its kind, or 0; sets *run to the length
 * of the run it looked at in any case.
 */
static size_t match_number(const redactor *self, const char *s, size_t len, size_t i, int *kind,
                           size_t *run)
{
    size_t j = i, end = i;
    int plus = 0, digits = 0, group = 0, group_len = 0, short_groups = 0, short_late = 0;
    int other_sep = 0, dot_sep = 0, longest = 0;
    if (s[j] == '+' || s[j] == '(') {
        plus = s[j] == '+';
        j++;
    }
    if (j >= len || !is_digit(s[j]))
        return 0;
    for (;;) {
        while (j < len && is_digit(s[j])) {
            digits++;
            group_len++;
            j++;
        }
        end = j;
        if (group_len > longest)
            longest = group_len;
        /* One digit group ends here: note the short ones. */
        if (group_len == 1) {
            short_groups++;
            short_late = short_late || group > 1;
        }
        group++;
        group_len = 0;
        /* Up to two separators ("-", ") "), and the run goes on only if a
           digit follows them. */
        size_t k = j;
        int seps = 0, other = 0, dot = 0;
        while (k < len && seps < 2 &&
               (s[k] == ' ' || s[k] == '-' || s[k] == '.' || s[k] == '(' || s[k] == ')')) {
            other = other || (s[k] != ' ' && s[k] != '-');
            dot = dot || s[k] == '.';
            k++;
            seps++;
        }
        if (seps == 0 || k >= len || !is_digit(s[k]) || digits > 19)
            break;
        /* Only separators between two groups count: "4111... (amex)" ends
           before the " (". */
        other_sep = other_sep || other;
        dot_sep = dot_sep || dot;
        j = k;
    }
    /* Whatever the verdict, the caller skips the whole run: a tail of a
       rejected card number must not come back as a phone number. */
    *run = end - i;
    /* Not part of a longer word or number ("abc1234567890", "v2.0.1.12345"). */
    if (end < len && (is_alnum(s[end]) || (s[end] == '.' && end + 1 < len && is_digit(s[end + 1]))))
        return 0;
    if (self->enabled[PII_CARD] && digits >= 13 && digits <= 19 && !other_sep &&
        luhn_ok(s + i, end - i)) {
        *kind = PII_CARD;
        return end - i;
    }
    if (self->enabled[PII_PHONE] && digits <= 15 && digits >= (plus ? 8 : 10) &&
        short_groups <= 1 && !short_late && !(dot_sep && longest > 4)) {
        *kind = PII_PHONE;
        return end - i;
    }
    return 0;
}

/*
 * Redact `s` (len bytes). Returns a malloc'd copy with the findings
 * replaced, or NULL when there was nothing to redact (or memory ran out,
 * in which case *oom is set: the caller must not pass the text on as if
 * it were clean).
 */
static char *redact_text(const redactor *self, const char *s, size_t len, counts *c,
                         size_t *out_len, int *oom)
{
    buf b = {NULL, 0, 0, 0};
    size_t copied = 0, i = 0;
    int found = 0;
    while (i < len) {
        size_t start = i, n = 0, run = 1;
        int kind = -1;
        if (s[i] == '@' && self->enabled[PII_EMAIL]) {
            n = match_email(s, len, i, &start);
            kind = PII_EMAIL;
            if (n && start < copied) /* overlaps what is already emitted */
                n = 0;
        } else if ((is_digit(s[i]) || s[i] == '+' || s[i] == '(') &&
                   (i == 0 || (!is_alnum(s[i - 1]) && s[i - 1] != '+' && s[i - 1] != '.'))) {
            n = match_number(self, s, len, i, &kind, &run);
        }
        if (n == 0) {
            i += run ? run : 1;
            continue;
        }
        buf_put(&b, s + copied, start - copied);
        buf_put(&b, placeholders[kind], strlen(placeholders[kind]));
        c->n[kind]++;
        found = 1;
        copied = i = start + n;
    }
    if (!found) {
        free(b.p);
        return NULL;
    }
    buf_put(&b, s + copied, len - copied);
    if (b.failed) {
        free(b.p);
        *oom = 1;
        return NULL;
    }
    *out_len = b.len;
    return b.p;
}

/*
 * A redacted deep copy of a JSON value (host-built, so the host owns it),
 * or NULL on allocation failure. Strings are redacted; object keys, numbers
 * and the rest are copied as they are.
 */
static cpex_json *redact_json(const redactor *self, const cpex_json *v, counts *c, int depth,
                              int *oom)
{
    const cpex_host_api *host = self->host;
    /* JSON from a parser is bounded, but a deep value would cost stack. */
    if (depth > 64)
        return host->json_copy(v);
    switch (host->json_type(v)) {
    case CPEX_JSON_STRING: {
        size_t len = 0, rlen = 0;
        const char *s = host->json_string(v, &len);
        char *r = redact_text(self, s, len, c, &rlen, oom);
        if (!r)
            return *oom ? NULL : host->json_copy(v);
        cpex_json *out = host->json_new_string(r, rlen);
        free(r);
        return out;
    }
    case CPEX_JSON_ARRAY: {
        cpex_json *out = host->json_new_array();
        for (size_t i = 0, n = host->json_size(v); out && i < n; i++) {
            cpex_json *item = redact_json(self, host->json_array_get(v, i), c, depth + 1, oom);
            if (!item || host->json_array_append(out, item) != CPEX_HOST_OK) {
                host->json_free(out);
                return NULL;
            }
        }
        return out;
    }
    case CPEX_JSON_OBJECT: {
        cpex_json *out = host->json_new_object();
        for (size_t i = 0, n = host->json_size(v); out && i < n; i++) {
            const char *key = NULL;
            const cpex_json *member = host->json_object_at(v, i, &key);
            cpex_json *item = member ? redact_json(self, member, c, depth + 1, oom) : NULL;
            if (!item || host->json_object_set(out, key, item) != CPEX_HOST_OK) {
                host->json_free(out);
                return NULL;
            }
        }
        return out;
    }
    default: return host->json_copy(v);
    }
}

static int32_t fail(const redactor *self, const cpex_call *call, cpex_cmf_message *copy)
{
    if (copy)
        self->host->cmf_free(copy);
    self->host->set_error(call, "out of memory while redacting; the message was not passed on");
    return CPEX_ERROR;
}

/* A copy of object `obj` with member `key` set to `value` (taken over). */
static cpex_json *with_member(const cpex_host_api *host, const cpex_json *obj, const char *key,
                              cpex_json *value)
{
    cpex_json *out = host->json_new_object();
    for (size_t i = 0, n = out ? host->json_size(obj) : 0; i < n; i++) {
        const char *k = NULL;
        const cpex_json *v = host->json_object_at(obj, i, &k);
        if (k && strcmp(k, key) != 0)
            host->json_object_set(out, k, host->json_copy(v));
    }
    if (!out || host->json_object_set(out, key, value) != CPEX_HOST_OK) {
        host->json_free(out);
        return NULL;
    }
    return out;
}

/*
 * Replace the content of tool_result parts. The host table of ABI 1.0 has
 * no slot for that (only text and tool-call arguments can be set in
 * place), so the message goes through its JSON form: serialize, swap the
 * redacted contents in, parse back. `contents[i]` is the new content of
 * part i or NULL; all are taken over. Returns the new message or NULL.
 */
static cpex_cmf_message *rebuild_results(const cpex_host_api *host, const cpex_cmf_message *base,
                                         cpex_json **contents)
{
    char *text = host->cmf_to_json(base);
    cpex_json *doc = text ? host->json_parse(text, strlen(text)) : NULL;
    host->free(text);
    const cpex_json *parts = doc ? host->json_object_get(doc, "content") : NULL;
    cpex_json *new_parts = parts ? host->json_new_array() : NULL;
    for (size_t i = 0; new_parts && i < base->part_count; i++) {
        const cpex_json *part = host->json_array_get(parts, i);
        cpex_json *item = NULL;
        if (contents[i]) {
            const cpex_json *body = host->json_object_get(part, "content");
            cpex_json *new_body = body ? with_member(host, body, "content", contents[i]) : NULL;
            if (!body)
                host->json_free(contents[i]);
            contents[i] = NULL;
            item = new_body ? with_member(host, part, "content", new_body) : NULL;
        } else {
            item = host->json_copy(part);
        }
        if (!item || host->json_array_append(new_parts, item) != CPEX_HOST_OK) {
            host->json_free(new_parts);
            new_parts = NULL;
        }
    }
    cpex_json *new_doc = new_parts ? with_member(host, doc, "content", new_parts) : NULL;
    char *out_text = new_doc ? host->json_dump(new_doc) : NULL;
    cpex_cmf_message *out = out_text ? host->cmf_parse(out_text, strlen(out_text)) : NULL;
    host->free(out_text);
    host->json_free(new_doc);
    host->json_free(doc);
    for (size_t i = 0; i < base->part_count; i++) /* left over after a failure */
        if (contents[i])
            host->json_free(contents[i]);
    return out;
}

static int64_t total(const counts *c) { return c->n[0] + c->n[1] + c->n[2]; }

static int32_t on_message(void *instance, const cpex_call *call)
{
    redactor *self = instance;
    const cpex_host_api *host = self->host;
    const cpex_cmf_message *msg = cpex_call_cmf(call);
    cpex_cmf_message *copy = NULL; /* made on the first change only */
    cpex_json **results = NULL;    /* redacted tool_result contents, by part */
    counts c;
    memset(&c, 0, sizeof c);
    int oom = 0;

    for (size_t i = 0; msg && i < msg->part_count; i++) {
        const cpex_cmf_part *part = cpex_cmf_part_at(msg, i);
        cpex_str text = cpex_part_text(part);
        const cpex_cmf_tool_call *tc = cpex_part_tool_call(part);
        const cpex_cmf_tool_result *tr = cpex_part_tool_result(part);
        int64_t before = total(&c);
        if (text.ptr) {
            size_t rlen = 0;
            char *r = redact_text(self, text.ptr, text.len, &c, &rlen, &oom);
            if (oom)
                goto oom;
            if (!r)
                continue;
            if (!copy && !(copy = host->cmf_clone(msg))) {
                free(r);
                goto oom;
            }
            int32_t st = host->cmf_set_text(copy, i, r, rlen);
            free(r);
            if (st != CPEX_HOST_OK)
                goto oom;
        } else if ((tc && tc->arguments) || (tr && tr->content)) {
            cpex_json *v = redact_json(self, tc ? tc->arguments : tr->content, &c, 0, &oom);
            if (!v)
                goto oom;
            if (total(&c) == before) {
                host->json_free(v); /* nothing found: keep the original */
                continue;
            }
            if (tr) {
                if (!results && !(results = calloc(msg->part_count, sizeof *results))) {
                    host->json_free(v);
                    goto oom;
                }
                results[i] = v;
                continue;
            }
            if (!copy && !(copy = host->cmf_clone(msg))) {
                host->json_free(v);
                goto oom;
            }
            if (host->cmf_set_tool_arguments(copy, i, v) != CPEX_HOST_OK)
                goto oom;
        }
    }
    if (results) {
        cpex_cmf_message *rebuilt = rebuild_results(host, copy ? copy : msg, results);
        free(results);
        results = NULL;
        if (!rebuilt)
            goto oom;
        if (copy)
            host->cmf_free(copy);
        copy = rebuilt;
    }
    if (!copy)
        return CPEX_ALLOW;

    cpex_json *md = host->json_new_object();
    for (int k = 0; md && k < PII_KINDS; k++) {
        if (c.n[k])
            host->json_object_set(md, kind_names[k], host->json_new_integer(c.n[k]));
    }
    if (md) {
        host->json_object_set(md, "total", host->json_new_integer(total(&c)));
        host->set_metadata(call, "pii_redactions", md);
    }
    /* The host takes the copy, also when it refuses it (wrong mode). */
    host->set_payload_cmf(call, copy);
    return CPEX_ALLOW;

oom:
    for (size_t i = 0; results && i < msg->part_count; i++)
        if (results[i])
            host->json_free(results[i]);
    free(results);
    return fail(self, call, copy);
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", on_message, "cmf"),
    CPEX_HANDLER("cmf.tool_post_invoke", on_message, "cmf"),
    CPEX_HANDLER("cmf.llm_input", on_message, "cmf"),
    CPEX_HANDLER("cmf.llm_output", on_message, "cmf"),
};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    const cpex_json *kinds = cpex_config_get(host, config, "kinds");
    int enabled[PII_KINDS] = {1, 1, 1};
    if (kinds) {
        if (host->json_type(kinds) != CPEX_JSON_ARRAY || host->json_size(kinds) == 0) {
            cpex_plugin_errorf(err, err_cap,
                               "config.kinds must be a non-empty list of: email, phone, card");
            return CPEX_CREATE_CONFIG_REJECTED;
        }
        memset(enabled, 0, sizeof enabled);
        for (size_t i = 0, n = host->json_size(kinds); i < n; i++) {
            const char *s = host->json_string(host->json_array_get(kinds, i), NULL);
            int k = -1;
            for (int j = 0; s && j < PII_KINDS; j++) {
                if (strcmp(s, kind_names[j]) == 0)
                    k = j;
            }
            if (k < 0) {
                cpex_plugin_errorf(err, err_cap,
                                   "config.kinds[%zu] is '%.100s'; expected one of: email, "
                                   "phone, card",
                                   i, s ? s : "(not a string)");
                return CPEX_CREATE_CONFIG_REJECTED;
            }
            enabled[k] = 1;
        }
    }
    if (config->mode != CPEX_MODE_TRANSFORM && config->mode != CPEX_MODE_SEQUENTIAL)
        cpex_logf(host, NULL, CPEX_LOG_WARN,
                  "pii-redact '%.*s' runs in a mode that cannot modify the payload; nothing will "
                  "be redacted (use mode: transform)",
                  (int)config->name.len, config->name.ptr ? config->name.ptr : "");
    redactor *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    memcpy(self->enabled, enabled, sizeof enabled);
    out->name = "pii-redact";
    out->version = "1.0.0";
    out->instance = self;
    out->destroy = destroy;
    out->handler_count = sizeof handlers / sizeof handlers[0];
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "pii-redact", "1.0.0",
            "Redacts e-mail addresses, phone numbers and Luhn-valid card numbers in text parts "
            "and tool arguments",
            "cmf.tool_pre_invoke", "cmf.tool_post_invoke", "cmf.llm_input", "cmf.llm_output")
