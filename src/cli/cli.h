/*
 * cli.h — what the files of the `cpex` command share.
 *
 * The command is a client of the public API only (the headers in include/cpex): if it
 * needs something the API does not offer, the API is what is missing.
 */
#ifndef CPEX_CLI_H
#define CPEX_CLI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cpex/cpex.h>

/* Exit codes (docs/cli.md). */
enum {
    CLI_OK = 0,   /* the work succeeded */
    CLI_FAIL = 1, /* the work failed: a plugin did not load, a request was malformed, ... */
    CLI_USAGE = 2 /* the command line is wrong */
};

/* ---- subcommands (argv[0] is the subcommand's name) ---- */
int cli_cmd_run(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);

/* ---- help texts (help.c) ---- */
void cli_help_main(FILE *out);
void cli_help_run(FILE *out);
void cli_help_check(FILE *out);
void cli_help_inspect(FILE *out);
void cli_help_serve(FILE *out);
void cli_print_version(FILE *out);

/* ---- argument parsing (args.c) ---- */

/**
 * Whether argv[*i] is the option `name`, given as "--name VALUE" or
 * "--name=VALUE". On a match stores the value (NULL when it is missing,
 * which the caller reports as a usage error) and advances *i past a
 * separate value.
 */
bool cli_opt_value(int argc, char **argv, int *i, const char *name, const char **value);

/** A positive decimal count (no sign, no suffix); false otherwise. */
bool cli_parse_count(const char *text, size_t *out);

/** A positive number of seconds (decimals allowed: "0.5"), at most a year; false otherwise. */
bool cli_parse_seconds(const char *text, double *out);

/** Print "cpex COMMAND: MESSAGE" and a pointer to --help on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- a manager as the commands use it (setup.c) ---- */

/** Log lines captured while loading, so that `check` can list them. */
typedef struct cli_log_line {
    unsigned level;
    char *plugin; /* may be NULL */
    char *message;
} cli_log_line;

typedef struct cli_log {
    pthread_mutex_t lock; /* the manager logs from its worker threads too */
    bool capture;         /* keep lines (check) instead of printing them (run) */
    unsigned print_min;   /* lowest level printed when not capturing */
    size_t count;
    cli_log_line *lines;
} cli_log;

/** Prepare `log`: capture lines (check) or print those at `print_min` and above (run). */
void cli_log_init(cli_log *log, bool capture, unsigned print_min);

/**
 * A manager with the `lib:` loader registered, logging into `log` (which
 * must outlive the manager). On failure prints the reason to stderr and
 * returns NULL.
 */
cpex_manager *cli_manager_new(cli_log *log);

/** As cli_manager_new, with execution records and metrics switched as given. */
cpex_manager *cli_manager_new_observing(cli_log *log, bool records, bool metrics);

/**
 * Print every problem of `err`, one "INDENT- message" each, libcpex's
 * detail lines under it, text from elsewhere escaped (cli_put_message).
 */
void cli_print_problems(FILE *out, const cpex_error *err, const char *indent);

/** Free the captured lines (after the manager is freed). */
void cli_log_cleanup(cli_log *log);

/* ---- standard output that must arrive (io.c) ---- */

/**
 * Flush standard output and check that everything written so far arrived.
 * Zero errno before writing what is checked, so that the reason of a write
 * that failed inside stdio is kept. On the first failure prints
 * "COMMAND: cannot write WHAT to standard output: REASON" on stderr and
 * returns false; every later call returns false at once.
 */
bool cli_stdout_check(const char *command, const char *what);

/**
 * The end of a command: flush and close standard output (closing is where
 * some file systems report a failed write) and check standard error. Returns
 * `rc`, or CLI_FAIL instead of CLI_OK when output was lost; a failure not
 * reported yet is reported as for cli_stdout_check.
 */
int cli_close_output(const char *command, const char *what, int rc);

/** Name what the command writes instead of its usual output (its help text). */
void cli_output_is(const char *what);

/** Whether writing to standard output has failed. */
bool cli_stdout_failed(void);

/* ---- text from elsewhere, made safe to print (escape.c) ---- */

/*
 * Every string the command prints that did not come from libcpex or the
 * command itself (plugin names, kinds, paths, plugin messages, context ids,
 * hook names from the input, manifest strings) goes through one of these:
 * control characters become \n, \r, \t or \xNN, bytes that are not UTF-8
 * \xNN, and the C1 controls, line separators and bidirectional controls
 * \uNNNN, so that nothing can forge a line or steer the terminal.
 */

/** The escaped form of `text` (NULL: ""), one line. malloc'd; NULL on OOM. */
char *cli_escape(const char *text);

/** Print `text` escaped (one line). */
void cli_put(FILE *out, const char *text);

/**
 * Format like printf, escape the whole result (one line) and print it;
 * cli_line adds a newline. The command's own words hold no control
 * characters, so escaping all of it is escaping exactly what came from
 * elsewhere. Not for JSON (cli_print_json) nor for libcpex's messages.
 */
void cli_text(FILE *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cli_line(FILE *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/**
 * Print a message composed by libcpex (an error item) that quotes text
 * from elsewhere: its own detail lines, "\n  <detail>", stay lines, each
 * starting with `indent`; every other newline and control byte is escaped,
 * and so is every occurrence of the strings in `quoted` (NULL-terminated,
 * or NULL), known to come from elsewhere: the item's plugin name, a path.
 */
void cli_put_message(FILE *out, const char *text, const char *indent, const char *const *quoted);

/**
 * JSON text with what JSON leaves raw inside strings (DEL, the C1 controls,
 * line separators, bidirectional controls) as \uNNNN escapes: the same
 * document, safe on a terminal. malloc'd; NULL on OOM.
 */
char *cli_json_safe(const char *json);

/** Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one. */
size_t cli_utf8_len(const unsigned char *s);

/* ---- small helpers (util.c) ---- */

/** "a, b, c" of a NULL-terminated array (a malloc'd string; "" for none; NULL on OOM). */
char *cli_join(char **items, const char *sep);
/** A JSON string of `text`, with '?' for bytes that are not UTF-8 (NULL: JSON null). */
json_t *cli_json_str(const char *text);
/** Print JSON compactly on one line (no trailing newline), safe for a terminal. */
void cli_print_json(FILE *out, const json_t *value);
/** Seconds of CLOCK_MONOTONIC. */
double cli_now(void);

#endif
