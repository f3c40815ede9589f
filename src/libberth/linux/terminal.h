/* terminal.h - pseudo-terminals for process.terminal and --console-socket. */
#ifndef BERTH_TERMINAL_H
#define BERTH_TERMINAL_H

#include <stdint.h>

#include "error.h"

/* Open a new pty pair from /dev/ptmx (the container's devpts when called
 * after pivot_root).  *master is CLOEXEC; *slave_path is malloc'd. */
int linux_terminal_open (int *master, char **slave_path, berth_error_t *err);

/* In the process about to exec: new session, SLAVE_PATH as controlling
 * terminal and stdin/stdout/stderr, window size when given. */
int linux_terminal_attach (const char *slave_path, uint32_t width,
                           uint32_t height, berth_error_t *err);

/* Send MASTER over a unix socket connected to SOCKET_PATH (runc's
 * --console-socket protocol: SCM_RIGHTS with the name as payload). */
int berth_console_socket_send (const char *socket_path, int master,
                               berth_error_t *err);

/* Hand MASTER on: to SOCKET_PATH when given, else into *KEEP when KEEP is
 * not NULL (the caller proxies it), else close it.  MASTER is consumed. */
int berth_console_deliver (int master, const char *socket_path, int *keep,
                           berth_error_t *err);

/* Copy between our stdio and MASTER until the slave side closes or
 * STOP_FD (may be -1) becomes readable.  Puts our stdin in raw mode when
 * it is a terminal, restoring it after. */
int berth_terminal_proxy (int master, int stop_fd, berth_error_t *err);

#endif
