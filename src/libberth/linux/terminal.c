#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "linux/unix_socket.h"
#include "utils.h"

int
linux_terminal_open (int *master, char **slave_path, berth_error_t *err)
{
  cleanup_close int fd = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[64];

  if (fd < 0)
    return berth_make_error (err, errno, "open `/dev/ptmx`");
  if (unlockpt (fd) < 0)
    return berth_make_error (err, errno, "unlockpt");
  if (ptsname_r (fd, name, sizeof (name)) != 0)
    return berth_make_error (err, errno, "ptsname");
  *slave_path = xstrdup (name);
  *master = move_fd (&fd);
  return 0;
}

int
linux_terminal_attach (const char *slave_path, uint32_t width, uint32_t height,
                       berth_error_t *err)
{
  int fd;

  if (setsid () < 0 && errno != EPERM)
    return berth_make_error (err, errno, "setsid");
  fd = open (slave_path, O_RDWR | O_NOCTTY);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s`", slave_path);
  if (ioctl (fd, TIOCSCTTY, 0) < 0)
    {
      int e = errno;
      close (fd);
      return berth_make_error (err, e, "set `%s` as controlling terminal",
                               slave_path);
    }
  if (width && height)
    {
      struct winsize ws = { .ws_row = (unsigned short) height,
                            .ws_col = (unsigned short) width };
      ioctl (fd, TIOCSWINSZ, &ws);
    }
  if (dup2 (fd, 0) < 0 || dup2 (fd, 1) < 0 || dup2 (fd, 2) < 0)
    {
      int e = errno;
      close (fd);
      return berth_make_error (err, e, "dup2 terminal");
    }
  if (fd > 2)
    close (fd);
  return 0;
}

int
berth_console_socket_send (const char *socket_path, int master,
                           berth_error_t *err)
{
  /* runc's protocol: the name of the master as payload. */
  static const char name[] = "/dev/ptmx";
  cleanup_close int s = unix_connect (socket_path, "console socket", err);
  int r;

  if (s < 0)
    return -1;
  r = unix_send_with_fd (s, name, sizeof (name) - 1, master);
  if (r < 0)
    return berth_make_error (err, -r, "send terminal to `%s`", socket_path);
  return 0;
}

int
berth_console_deliver (int master, const char *socket_path, int *keep,
                       berth_error_t *err)
{
  int r = 0;
  if (socket_path)
    r = berth_console_socket_send (socket_path, master, err);
  else if (keep)
    {
      *keep = master;
      return 0;
    }
  close (master);
  return r;
}

static int
copy_once (int from, int to)
{
  char buf[8192];
  ssize_t n = read (from, buf, sizeof (buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return 0;
  if (n <= 0)
    return -1;
  if (safe_write_all (to, buf, (size_t) n) < 0)
    return -1;
  return 0;
}

int
berth_terminal_proxy (int master, int stop_fd, berth_error_t *err)
{
  struct termios saved, raw;
  bool restore = false;
  bool stdin_open = true;

  if (isatty (0) && tcgetattr (0, &saved) == 0)
    {
      struct winsize ws;
      raw = saved;
      cfmakeraw (&raw);
      if (tcsetattr (0, TCSANOW, &raw) == 0)
        restore = true;
      if (ioctl (0, TIOCGWINSZ, &ws) == 0)
        ioctl (master, TIOCSWINSZ, &ws);
    }
  for (;;)
    {
      struct pollfd p[3] = { { master, POLLIN, 0 },
                             { stdin_open ? 0 : -1, POLLIN, 0 },
                             { stop_fd, POLLIN, 0 } };
      if (poll (p, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        if (copy_once (master, 1) < 0)
          break;
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        if (copy_once (0, master) < 0)
          stdin_open = false;
      if (p[2].revents)
        {
          /* Drain what is left, then stop.  */
          while (poll (p, 1, 50) > 0 && copy_once (master, 1) == 0)
            ;
          break;
        }
    }
  if (restore)
    tcsetattr (0, TCSANOW, &saved);
  (void) err;
  return 0;
}
