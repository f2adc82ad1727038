/*
 * route_resolve.c — which plugins a routed invoke runs (routing.h), by
 * CPEX's rules (reference §1.3, §1.4) and libcpex's decisions:
 *
 *   1. the `all` group's plugins, in list order;
 *   2. the plugins of global.defaults[<entity type>];
 *   3. if a route matches (the highest specificity; ties go to the earlier
 *      route): the groups its meta.tags, its groups: and the request's
 *      runtime tags name, in the order the groups are defined in the file
 *      (decision 2; CPEX's order is a hash set's), then the route's own
 *      plugins;
 *   4. de-duplicated by name, the last occurrence winning (its override
 *      and its position);
 *   5. mapped onto the hook's handlers — a name that does not serve the
 *      hook is dropped — and ordered by phase, then priority, then this
 *      resolution order (decision 1; CPEX keeps resolution order only).
 *
 * This runs on route-cache misses and for `cpex check`, never on a hit.
 */
#include "core/routing.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

static bool push(cpex__resolution *r, const char *name, cpex__plugin *instance, const char *from)
{
    cpex__resolved *n = cpex__grow(r->items, r->count, &r->cap, sizeof *n, 16);
    if (!n)
        return false;
    r->items = n;
    r->items[r->count].name = name;
    r->items[r->count].instance = instance;
    r->items[r->count].from = from;
    r->count++;
    return true;
}

static bool push_list(cpex__resolution *r, const cpex__rref_list *l, const char *from)
{
    for (size_t i = 0; i < l->count; i++)
        if (!push(r, l->items[i].name, l->items[i].instance, from))
            return false;
    return true;
}

static void note_group(cpex__resolution *r, const char *name)
{
    if (r->group_count < sizeof r->groups / sizeof r->groups[0])
        r->groups[r->group_count++] = name;
}

static bool str_is(cpex_str s, const char *text)
{
    return s.ptr && s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

/* The route for the key's entity (CPEX's find_matching_route), or -1. */
static int find_route(const cpex__policy *p, const cpex__route_key *key, int *score)
{
    int entity = -1;
    for (int e = 0; e < CPEX__ENT_COUNT; e++)
        if (str_is(key->type, cpex__entity_name(e)))
            entity = e;
    if (entity < 0)
        return -1; /* other entity types (http, ...): only `all` and defaults apply */
    int best = -1, best_score = -1;
    for (size_t i = 0; i < p->cfg->route_count; i++) {
        const cpex__rroute *rt = &p->cfg->routes[i];
        if (rt->entity != entity || rt->matchers != 1)
            continue;
        int s = rt->specificity;
        if (rt->scope) {
            if (!key->scope.ptr || !str_is(key->scope, rt->scope))
                continue;
            s += 100;
        }
        if (!cpex__rroute_matches(rt, key->name.ptr, key->name.len))
            continue;
        if (s > best_score) { /* strictly greater: ties go to the earlier route */
            best = (int)i;
            best_score = s;
        }
    }
    *score = best_score;
    return best;
}

/* Keep the last occurrence of each name, in order. */
static void dedupe_keep_last(cpex__resolution *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) {
        bool later = false;
        for (size_t j = i + 1; j < r->count && !later; j++)
            later = strcmp(r->items[j].name, r->items[i].name) == 0;
        if (!later)
            r->items[n++] = r->items[i];
    }
    r->count = n;
}

bool cpex__resolve(const cpex__policy *p, const cpex__route_key *key, cpex__resolution *out)
{
    memset(out, 0, sizeof *out);
    out->route = -1;
    const cpex__rcfg *c = p->cfg;
    if (p->all_group >= 0) {
        note_group(out, c->groups[p->all_group].where);
        if (!push_list(out, &c->groups[p->all_group].plugins, c->groups[p->all_group].where))
            return false;
    }
    for (size_t i = 0; i < c->default_count; i++) {
        if (!str_is(key->type, c->defaults[i].name))
            continue;
        note_group(out, c->defaults[i].where);
        if (!push_list(out, &c->defaults[i].plugins, c->defaults[i].where))
            return false;
    }
    int score = -1;
    int route = find_route(p, key, &score);
    if (route >= 0) {
        out->route = route;
        out->score = score;
        /* The union of the route's groups and the request's, both ascending. */
        const uint32_t *a = p->route_groups[route], *b = key->groups;
        size_t na = p->route_group_count[route], nb = key->group_count, i = 0, j = 0;
        while (i < na || j < nb) {
            uint32_t g;
            if (j >= nb || (i < na && a[i] < b[j]))
                g = a[i++];
            else if (i >= na || b[j] < a[i])
                g = b[j++];
            else {
                g = a[i++];
                j++;
            }
            if ((int)g == p->all_group)
                continue; /* already applied */
            note_group(out, c->groups[g].where);
            if (!push_list(out, &c->groups[g].plugins, c->groups[g].where))
                return false;
        }
        if (!push_list(out, &c->routes[route].plugins, "route"))
            return false;
    }
    dedupe_keep_last(out);
    return true;
}

void cpex__resolution_free(cpex__resolution *r)
{
    cpex__free(r->items);
    memset(r, 0, sizeof *r);
}

/* A stable order: phase, then priority; equal ones keep resolution order. */
static bool before(const cpex__hook_entry *x, const cpex__hook_entry *y)
{
    if (x->plugin->mode != y->plugin->mode)
        return x->plugin->mode < y->plugin->mode;
    return x->plugin->priority < y->plugin->priority;
}

size_t cpex__resolution_entries(const cpex__resolution *r, const cpex__hook *h,
                                cpex__hook_entry *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) {
        const cpex__resolved *it = &r->items[i];
        /* The plugin named must serve this hook (an override only stands in
         * for a registered plugin: unregistering it stops its overrides). */
        const cpex__hook_entry *base = NULL;
        for (size_t k = 0; k < h->count && !base; k++)
            if (strcmp(h->entries[k].plugin->name, it->name) == 0)
                base = &h->entries[k];
        if (!base)
            continue;
        cpex__hook_entry e = *base;
        if (it->instance) {
            cpex__plugin *inst = it->instance;
            e.plugin = inst;
            e.fn = NULL;
            for (size_t k = 0; k < inst->handler_count && !e.fn; k++)
                if (inst->hook_ids[k] == h->id)
                    e.fn = inst->handlers[k].fn;
            if (!e.fn || inst->mode == CPEX_MODE_DISABLED)
                continue;
        }
        if (n < cap) {
            size_t at = n;
            while (at > 0 && before(&e, &out[at - 1])) {
                out[at] = out[at - 1];
                at--;
            }
            out[at] = e;
        }
        n++;
    }
    return n;
}

void cpex__plan_init(cpex__hook *plan, const cpex__hook *h, cpex__hook_entry *entries, size_t n,
                     uint32_t *metric_ids, bool ids_filled)
{
    *plan = *h; /* the hook's identity: name, id, payload type, its audit sinks */
    plan->entries = entries;
    plan->count = n;
    /* Its own execution-record template (made on first use) and metric ids
     * (entry by entry: an entry's is the one of the hook's entry of the
     * same plugin name, overrides included). */
    atomic_init(&plan->rec_template, NULL);
    plan->metric_ids = h->metric_ids ? metric_ids : NULL;
    for (size_t i = 0; plan->metric_ids && !ids_filled && i < n; i++) {
        metric_ids[i] = h->metric_ids[0];
        for (size_t k = 0; k < h->count; k++)
            if (h->entries[k].plugin == entries[i].plugin ||
                strcmp(h->entries[k].plugin->name, entries[i].plugin->name) == 0) {
                metric_ids[i] = h->metric_ids[k];
                break;
            }
    }
}

void cpex__plan_release(cpex__hook *plan)
{
    cpex__free((void *)(uintptr_t)atomic_load(&plan->rec_template));
    atomic_store(&plan->rec_template, NULL);
}

void cpex__plan_phases(cpex__hook *plan)
{
    size_t i = 0;
    for (uint32_t phase = 0; phase <= CPEX_PHASES; phase++) {
        plan->phase_start[phase] = i;
        while (i < plan->count && plan->entries[i].plugin->mode == phase)
            i++;
    }
}
