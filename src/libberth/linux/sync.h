/* sync.h - fixed-size messages between the runtime and the processes it
 * forks, over a SOCK_SEQPACKET socketpair created with SOCK_CLOEXEC.
 *
 * The child reports a failure as SYNC_ERROR carrying errno and a message,
 * then _exit()s; the parent turns it into a berth_error.  A successful
 * execve closes the child's end, which the parent sees as end of file.
 */
#ifndef BERTH_SYNC_H
#define BERTH_SYNC_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

enum sync_type
{
  SYNC_ERROR = 1,    /* child -> parent: status + message */
  SYNC_USERNS_READY, /* parent -> child: id maps written */
  SYNC_CGROUP_READY, /* parent -> child: in its cgroup, limits applied */
  SYNC_RUN_HOOKS,    /* child -> parent: run prestart/createRuntime */
  SYNC_HOOKS_DONE,   /* parent -> child */
  SYNC_CONSOLE,      /* child -> parent: pty master attached (SCM_RIGHTS) */
  SYNC_SECCOMP_FD,   /* child -> parent: seccomp listener (SCM_RIGHTS) */
  SYNC_SECCOMP_DONE, /* parent -> child */
  SYNC_READY,        /* child -> parent: waiting for start */
  SYNC_PID,          /* child -> parent: pid of a grandchild */
};

struct sync_msg
{
  int32_t type;
  int32_t status;
  int64_t value;
  char msg[1000];
};

/* Each returns 0 or -errno. */
int sync_send (int fd, int type, int status, int64_t value, const char *msg);
int sync_send_fd (int fd, int type, int passfd);
/* Receive one message; -EPIPE on end of file.  *passfd (may be NULL) gets
 * an fd passed along, else -1. */
int sync_recv (int fd, struct sync_msg *m, int *passfd);
/* Wait for a message of TYPE; a SYNC_ERROR or EOF becomes an error in ERR
 * prefixed with WHAT. */
int sync_expect (int fd, int type, const char *what, struct sync_msg *m,
                 int *passfd, berth_error_t *err);
/* After a failure talking to a child: if the child already reported an
 * error of its own (SYNC_ERROR waiting in FD), that is the real cause and
 * replaces *ERR; otherwise *ERR stays, or gets a generic message. */
void sync_prefer_child_error (int fd, berth_error_t *err);

/* In a child: send ERR as SYNC_ERROR (best effort). */
void sync_send_error (int fd, berth_error_t err);

#endif
