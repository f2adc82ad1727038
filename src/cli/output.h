/*
 * output.h — how `cpex run` writes a result: one JSON object per line
 * (--json) or a readable block for people. `cpex serve` answers with the
 * same JSON objects (without "line": a request there is no line of a file).
 */
#ifndef CPEX_CLI_OUTPUT_H
#define CPEX_CLI_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include <cpex/cpex.h>

#include "request.h"

/** How results are written. */
typedef struct cli_output_opts {
    bool json;    /* one JSON object per line */
    bool verbose; /* readable form: one line per plugin call too */
} cli_output_opts;

/** Write the result of the request on input line `line`. */
void cli_output_result(FILE *out, const cli_output_opts *opts, size_t line,
                       const cli_request *request, const cpex_pipeline_result *result);

/**
 * The metrics table `cpex run --stats` prints at the end: one row per
 * plugin and hook (calls, allows, denies, errors, timeouts, p50, p99), then
 * the hooks and the audit queue.
 */
void cli_output_stats(FILE *out, const cpex_stats *stats);

/**
 * Show the registry generation in the readable form too (`cpex run
 * --watch`: a reload changes it between lines). The JSON form always has it.
 */
void cli_output_show_generation(bool show);

/** Write the error line for a bad input line. */
void cli_output_line_error(FILE *out, bool json, size_t line, const char *message);

/**
 * The result object of `cpex run --json`: {"line","hook","context",
 * "decision","violation","payload_modified","payload","extensions",
 * "metadata","errors"}; "line" only when `line` is not 0. A new reference;
 * NULL on OOM.
 */
json_t *cli_result_json(size_t line, const cli_request *request,
                        const cpex_pipeline_result *result);

/** The error object for a bad request: {"line","error"}; "line" only when not 0. NULL on OOM. */
json_t *cli_error_json(size_t line, const char *message);

/** A violation as the result object shows it: {"code","reason","description","details","plugin"}. */
json_t *cli_violation_json(const cpex_violation *violation);

/**
 * The parts of `after` that differ from `before` (both JSON objects or
 * NULL): changed or added members (recursing into objects), and removed
 * ones as null. A new reference; an empty object when nothing differs.
 */
json_t *cli_json_diff(const json_t *before, const json_t *after);

#endif
