/* serve_listen.h — the listening socket of `cpex serve`; see serve_listen.c. */
#ifndef CPEX_CLI_SERVE_LISTEN_H
#define CPEX_CLI_SERVE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct serve_listener {
    int fd;                /* -1 when not open (or handed to the HTTP daemon) */
    bool loopback;         /* reachable from this machine only */
    const char *unix_path; /* removed at cleanup; NULL for TCP */
    char address[160];     /* "http://127.0.0.1:8787", "unix:/run/cpex.sock" */
} serve_listener;

/**
 * Split "ADDR:PORT" or "[ADDR]:PORT" (IPv6) into host and port, copied
 * into the buffers. False when `spec` is not of that form.
 */
bool serve_listen_split(const char *spec, char *host, size_t host_cap, char *port, size_t port_cap);

/**
 * Listen on `unix_path` when given, else on `tcp` ("ADDR:PORT"). 0 on
 * success; -1 with the reason in `why`.
 */
int serve_listen_open(const char *tcp, const char *unix_path, serve_listener *out, char *why,
                      size_t cap);

/** Close the socket if still ours, and remove a Unix socket's file. */
void serve_listen_cleanup(serve_listener *listener);

#endif
