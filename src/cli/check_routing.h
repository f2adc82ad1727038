/*
 * check_routing.h — the routing report of `cpex check` (--tool, --resource,
 * --prompt, --llm, --scope, --tag, --hook).
 */
#ifndef CPEX_CLI_CHECK_ROUTING_H
#define CPEX_CLI_CHECK_ROUTING_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

#define CLI_MAX_ROUTE_TAGS 32

/** The entity `check` is asked about (type NULL: no routing report). */
typedef struct cli_route_query {
    const char *type; /* "tool", "resource", "prompt", "llm" */
    const char *name;
    const char *scope; /* or NULL */
    const char *tags[CLI_MAX_ROUTE_TAGS];
    size_t tag_count;
    const char *hook; /* or NULL: every hook */
} cli_route_query;

/**
 * Whether argv[*i] is one of the routing options (consumed into `q`). On a
 * usage error *rc is CLI_USAGE (the message printed), else 0.
 */
bool cli_route_opt(int argc, char **argv, int *i, cli_route_query *q, int *rc);

/** After parsing: CLI_USAGE (printed) for --scope/--tag/--hook without an entity, else 0. */
int cli_route_query_check(const cli_route_query *q);

/**
 * The report for `q`: printed (readable form; returns NULL), or with `json`
 * returned as a document for the caller to place. NULL also on failure
 * (printed on stderr).
 */
json_t *cli_route_explain(cpex_manager *m, const cli_route_query *q, bool json);

#endif
