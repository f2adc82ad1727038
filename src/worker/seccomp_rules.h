/*
 * seccomp_rules.h — the worker's allow-list as libseccomp rules
 * (seccomp_rules.c), for the worker and for cpex_seccomp_gen.
 */
#ifndef CPEX_WORKER_SECCOMP_RULES_H
#define CPEX_WORKER_SECCOMP_RULES_H

#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>

/**
 * What cpex_seccomp_gen compiles in place of the worker's pid: a 31-bit
 * value no rule uses otherwise (system call numbers, CLONE_THREAD, the
 * ioctl requests, -1), patched to the pid when the filter is loaded.
 */
#define WK_SECCOMP_SELF_MARK 0x3fabcdefu

/** The rules (`net`: sockets allowed; `self`: the only pid kill/tgkill may name). */
int wk_seccomp_build(bool net, uint32_t self, scmp_filter_ctx *out);

#endif
