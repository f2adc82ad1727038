/*
 * io.c — whether what the command wrote reached standard output; see cli.h.
 *
 * stdio buffers: a write to a full disk or a broken device fails when the
 * buffer is flushed, and a file on some file systems (NFS) reports its error
 * only when it is closed. A command that does not look reports success
 * while its results are lost, so every command's output is checked at the
 * points where it must have arrived (after each result line of `run`, and
 * when the command ends), and a failure is an exit code of 1 and a message
 * on standard error naming what was lost.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"

static bool stdout_failed;      /* reported once; the command is then told to stop */
static const char *output_what; /* what the command wrote instead of its usual output */

void cli_output_is(const char *what) { output_what = what; }

/* Report a failure to write `what`, with errno `e` (0: unknown). */
static void report(const char *command, const char *what, int e)
{
    stdout_failed = true;
    fprintf(stderr, "%s: cannot write %s to standard output: %s\n", command, what,
            e ? strerror(e) : "write error");
}

bool cli_stdout_check(const char *command, const char *what)
{
    if (stdout_failed)
        return false;
    /* The caller zeroed errno before writing: a failed write in between left
       its reason there; fflush gives its own if it fails. */
    int e = errno;
    if (fflush(stdout) == EOF)
        e = errno;
    if (!ferror(stdout))
        return true;
    report(command, what, e);
    return false;
}

int cli_close_output(const char *command, const char *what, int rc)
{
    int fail_rc = rc == CLI_OK ? CLI_FAIL : rc;
    if (output_what)
        what = output_what;
    if (!stdout_failed) {
        /* A write that failed inside stdio left its reason in errno (the
           commands do little after their output); fflush gives its own. */
        int e = errno;
        bool bad = fflush(stdout) == EOF;
        if (bad)
            e = errno;
        bad = bad || ferror(stdout);
        /* close(2) is where some file systems report a failed write. */
        errno = 0;
        if (fclose(stdout) == EOF && !bad) {
            bad = true;
            e = errno;
        }
        if (bad)
            report(command, what, e);
    }
    if (stdout_failed)
        rc = fail_rc;
    /* Nothing can say that standard error failed, but the exit code can. */
    if (fflush(stderr) == EOF || ferror(stderr))
        rc = fail_rc;
    return rc;
}

bool cli_stdout_failed(void) { return stdout_failed; }
