#include "unix_socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "utils.h"

int
unix_connect (const char *path, const char *what, berth_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  cleanup_close int s = -1;

  if (strlen (path) >= sizeof (addr.sun_path))
    return berth_make_error (err, ENAMETOOLONG, "%s `%s`", what, path);
  memcpy (addr.sun_path, path, strlen (path) + 1);
  s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return berth_make_error (err, errno, "socket");
  if (connect (s, (struct sockaddr *) &addr, sizeof (addr)) < 0)
    return berth_make_error (err, errno, "connect to %s `%s`", what, path);
  return move_fd (&s);
}

int
unix_send_with_fd (int sock, const void *buf, size_t len, int fd)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  const char *p = buf;
  ssize_t n;
  size_t done;

  memset (&control, 0, sizeof (control));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof (control.buf);
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &fd, sizeof (int));
  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  for (done = (size_t) n; done < len; done += (size_t) n)
    {
      n = send (sock, p + done, len - done, MSG_NOSIGNAL);
      if (n < 0 && errno != EINTR)
        return -errno;
      if (n < 0)
        n = 0;
    }
  return 0;
}
