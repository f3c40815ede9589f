/* unix_socket.h - the unix socket calls shared by the sync channel, the
 * console socket and the seccomp listener. */
#ifndef BERTH_UNIX_SOCKET_H
#define BERTH_UNIX_SOCKET_H

#include <stddef.h>

#include "error.h"

/* Connect a SOCK_STREAM socket to PATH; WHAT names it in errors ("console
 * socket").  Returns the CLOEXEC fd. */
int unix_connect (const char *path, const char *what, berth_error_t *err);

/* Send all LEN bytes of BUF with FD attached (SCM_RIGHTS) to the first
 * sendmsg; on a stream socket the rest follows without it.  Returns 0 or
 * -errno.  Never raises SIGPIPE. */
int unix_send_with_fd (int sock, const void *buf, size_t len, int fd);

#endif
