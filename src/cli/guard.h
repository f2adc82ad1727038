/*
 * guard.h — noticing that a plugin ended the process.
 *
 * A plugin is code in our process: it can call exit(0) in the middle of a
 * run, and the command would end with the exit code the plugin chose and a
 * truncated result stream that looks complete. While a command is armed, an
 * atexit handler turns any exit into a failure: it says on standard error
 * what the command was doing (which line, which hook), which plugin was
 * running (found from the library on the exiting thread's stack, or else the
 * plugins wired for the hook), and ends the process with exit code 1.
 *
 * _exit(), a signal or a crash bypass atexit: those the caller sees as a
 * missing summary (run) or a signal status.
 */
#ifndef CPEX_CLI_GUARD_H
#define CPEX_CLI_GUARD_H

#include <stddef.h>

#include <cpex/cpex.h>

/** Arm the guard for `command` ("cpex run"; a string that lives forever). */
void cli_guard_arm(const char *command);

/**
 * What the command is doing now, as the end of "… while <doing>", e.g.
 * "processing line 3 (hook cmf.tool_pre_invoke)". printf-style; kept in a
 * fixed buffer.
 */
void cli_guard_doing(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/**
 * What the exit costs, printed after the rest, e.g. "the results of line 3
 * and later are missing"; NULL for nothing. printf-style.
 */
void cli_guard_lost(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/** Remember the plugins of `manager` (names, libraries, hooks, modes) for the message. */
void cli_guard_plugins(cpex_manager *manager);

/** The in-flight hook (for the plugins wired to it); NULL for none. */
void cli_guard_hook(const char *hook);

/** The command ends normally: an exit from now on is its own. */
void cli_guard_disarm(void);

#endif
