/*
 * output.h — how `cpex run` writes a result: one JSON object per line
 * (--json) or a readable block for people.
 */
#ifndef CPEX_CLI_OUTPUT_H
#define CPEX_CLI_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include <cpex/cpex.h>

#include "request.h"

/** Write the result of the request on input line `line`. */
void cli_output_result(FILE *out, bool json, size_t line, const cli_request *request,
                       const cpex_pipeline_result *result);

/** Write the error line for a bad input line. */
void cli_output_line_error(FILE *out, bool json, size_t line, const char *message);

/**
 * The parts of `after` that differ from `before` (both JSON objects or
 * NULL): changed or added members (recursing into objects), and removed
 * ones as null. A new reference; an empty object when nothing differs.
 */
json_t *cli_json_diff(const json_t *before, const json_t *after);

#endif
