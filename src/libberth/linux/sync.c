#include "sync.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linux/unix_socket.h"
#include "utils.h"

int
sync_send (int fd, int type, int status, int64_t value, const char *msg)
{
  struct sync_msg m;
  memset (&m, 0, sizeof (m));
  m.type = type;
  m.status = status;
  m.value = value;
  if (msg)
    snprintf (m.msg, sizeof (m.msg), "%s", msg);
  for (;;)
    {
      ssize_t r = send (fd, &m, sizeof (m), MSG_NOSIGNAL);
      if (r >= 0)
        return 0;
      if (errno != EINTR)
        return -errno;
    }
}

int
sync_send_fd (int fd, int type, int passfd)
{
  struct sync_msg m;
  memset (&m, 0, sizeof (m));
  m.type = type;
  return unix_send_with_fd (fd, &m, sizeof (m), passfd);
}

int
sync_recv (int fd, struct sync_msg *m, int *passfd)
{
  struct msghdr mh;
  struct iovec iov;
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct cmsghdr *c;
  ssize_t r;

  if (passfd)
    *passfd = -1;
  memset (m, 0, sizeof (*m));
  memset (&mh, 0, sizeof (mh));
  iov.iov_base = m;
  iov.iov_len = sizeof (*m);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof (u.buf);
  do
    r = recvmsg (fd, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -errno;
  if (r == 0)
    return -EPIPE;
  for (c = CMSG_FIRSTHDR (&mh); c; c = CMSG_NXTHDR (&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        int got;
        memcpy (&got, CMSG_DATA (c), sizeof (int));
        if (passfd)
          *passfd = got;
        else
          close (got);
      }
  m->msg[sizeof (m->msg) - 1] = '\0';
  return 0;
}

int
sync_expect (int fd, int type, const char *what, struct sync_msg *m,
             int *passfd, berth_error_t *err)
{
  struct sync_msg local;
  int r;

  if (m == NULL)
    m = &local;
  r = sync_recv (fd, m, passfd);
  if (r == -EPIPE)
    return berth_make_error (err, 0,
                             "%s: the container process exited "
                             "unexpectedly",
                             what);
  if (r < 0)
    return berth_make_error (err, -r, "%s: read from the container process",
                             what);
  if (m->type == SYNC_ERROR)
    {
      /* The child's message already names what failed.  */
      errno = m->status;
      return berth_make_error (err, 0, "%s", m->msg);
    }
  if (m->type != type)
    return berth_make_error (err, EPROTO,
                             "%s: unexpected message %d (expected %d)", what,
                             m->type, type);
  return 0;
}

void
sync_send_error (int fd, berth_error_t err)
{
  if (err == NULL)
    sync_send (fd, SYNC_ERROR, EIO, 0, "unknown error");
  else
    sync_send (fd, SYNC_ERROR, err->status, 0, err->msg);
}

void
sync_prefer_child_error (int fd, berth_error_t *err)
{
  struct sync_msg m;
  ssize_t r;

  if (fd < 0)
    return;
  /* A child that reported an error exits right after: by the time our
   * send failed or its pid vanished, the message is queued.  */
  r = recv (fd, &m, sizeof (m), MSG_DONTWAIT);
  if (r == (ssize_t) sizeof (m) && m.type == SYNC_ERROR)
    {
      m.msg[sizeof (m.msg) - 1] = '\0';
      berth_error_release (err);
      berth_make_error (err, 0, "%s", m.msg);
      return;
    }
  if (*err == NULL)
    berth_make_error (err, 0, "the container process exited unexpectedly");
}
