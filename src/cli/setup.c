/* setup.c — the manager every command that loads a configuration uses. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *level_name(unsigned level)
{
    switch (level) {
    case CPEX_LOG_DEBUG: return "debug";
    case CPEX_LOG_INFO: return "info";
    case CPEX_LOG_WARN: return "warning";
    default: return "error";
    }
}

/* The manager's log sink. Called from any thread, hence the lock. */
static void log_sink(void *user, uint32_t level, const char *plugin, const char *message)
{
    cli_log *log = user;
    pthread_mutex_lock(&log->lock);
    if (log->capture) {
        cli_log_line *n = realloc(log->lines, (log->count + 1) * sizeof *n);
        if (n) {
            log->lines = n;
            n[log->count].level = level;
            n[log->count].plugin = plugin ? strdup(plugin) : NULL;
            n[log->count].message = strdup(message ? message : "");
            if (n[log->count].message)
                log->count++;
            else
                free(n[log->count].plugin);
        }
    } else if (level >= log->print_min) {
        /* One log message, one line: the plugin's name and words escaped. */
        if (plugin)
            cli_line(stderr, "cpex: %s: plugin '%s': %s", level_name(level), plugin,
                     message ? message : "");
        else
            cli_line(stderr, "cpex: %s: %s", level_name(level), message ? message : "");
    }
    pthread_mutex_unlock(&log->lock);
}

void cli_log_init(cli_log *log, bool capture, unsigned print_min)
{
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    log->capture = capture;
    log->print_min = print_min;
}

void cli_log_cleanup(cli_log *log)
{
    for (size_t i = 0; i < log->count; i++) {
        free(log->lines[i].plugin);
        free(log->lines[i].message);
    }
    free(log->lines);
    log->lines = NULL;
    log->count = 0;
    pthread_mutex_destroy(&log->lock);
}

cpex_manager *cli_manager_new(cli_log *log) { return cli_manager_new_observing(log, false, false); }

cpex_manager *cli_manager_new_observing(cli_log *log, bool records, bool metrics)
{
    cpex_manager_options opts;
    cpex_manager_options_init(&opts);
    opts.execution_records = records;
    opts.metrics = metrics;
    opts.log = log_sink;
    opts.log_user = log;
    /* Capture everything for check (it shows what each plugin reported);
       print what the user asked for otherwise. */
    opts.log_level = log->capture ? CPEX_LOG_DEBUG : log->print_min;
    cpex_error err = CPEX_ERROR_INIT;
    cpex_manager *m = NULL;
    if (cpex_manager_new(&opts, &m, &err) != CPEX_OK || cpex_loader_register(m, &err) != CPEX_OK) {
        fprintf(stderr, "cpex: cannot set up the plugin manager:\n");
        cli_print_problems(stderr, &err, "  ");
        cpex_error_cleanup(&err);
        cpex_manager_free(m);
        return NULL;
    }
    return m;
}

void cli_print_problems(FILE *out, const cpex_error *err, const char *indent)
{
    /* Detail lines line up with the text after "- ". */
    char sub[64];
    snprintf(sub, sizeof sub, "%s  ", indent);
    for (size_t i = 0; i < err->count; i++) {
        const cpex_error_item *it = &err->items[i];
        const char *quoted[3] = {NULL, NULL, NULL};
        size_t q = 0;
        if (it->plugin)
            quoted[q++] = it->plugin;
        if (it->file)
            quoted[q++] = it->file;
        fprintf(out, "%s- ", indent);
        cli_put_message(out, it->message ? it->message : cpex_status_name(it->code), sub, quoted);
        fputc('\n', out);
    }
}
