/*
 * request.h — one request line of `cpex run`, parsed.
 *
 *   {"hook":"cmf.tool_pre_invoke","payload":{...},"payload_type":"cmf",
 *    "extensions":{...},"context":"req-1"}
 */
#ifndef CPEX_CLI_REQUEST_H
#define CPEX_CLI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <cpex/cpex.h>

typedef struct cli_request {
    char *hook;       /* never NULL after a successful parse */
    char *context_id; /* NULL: no context threading */
    bool is_cmf;      /* which of the two payloads is set */
    cpex_cmf_message *cmf;
    json_t *json;
    cpex_extensions *extensions; /* NULL when the line has none */
} cli_request;

/**
 * Parse `len` bytes of `line`. `default_hook` (may be NULL) is used when
 * the line has no "hook". On success returns true and fills `out`
 * (release with cli_request_cleanup). On failure returns false and sets
 * *error to a malloc'd message naming the cause (caller frees).
 */
bool cli_request_parse(const char *line, size_t len, const char *default_hook, cli_request *out,
                       char **error);

void cli_request_cleanup(cli_request *request);

#endif
