#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "linux/terminal.h"
#include "utils.h"

int
cli_expect_args (int argc, int optind_, int n, const char *usage,
                 berth_error_t *err)
{
  if (argc - optind_ != n)
    return berth_make_invalid (
        err, "%s requires exactly %d argument(s)\nusage: %s", usage, n, usage);
  return 0;
}

int
cli_parse_int (const char *opt, const char *val, int64_t *out,
               berth_error_t *err)
{
  if (parse_int64 (val, out) < 0)
    return berth_make_invalid (err, "%s: invalid number `%s`", opt, val);
  return 0;
}

char *
cli_abs_bundle (const char *bundle)
{
  char *cwd, *r;
  if (bundle && bundle[0] == '/')
    return xstrdup (bundle);
  cwd = getcwd (NULL, 0);
  if (cwd == NULL)
    return xstrdup (bundle ? bundle : ".");
  if (bundle == NULL || strcmp (bundle, ".") == 0 || *bundle == '\0')
    return cwd;
  xasprintf (&r, "%s/%s", cwd, bundle);
  free (cwd);
  return r;
}

static int
exit_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 255;
}

/* Reap PID (and, as a subreaper, whatever else ends up ours, but not
 * the terminal proxy); returns PID's exit code once reaped, -1 if not. */
static int
reap (pid_t pid, pid_t keep)
{
  int status;
  pid_t r;
  if (waitpid (pid, &status, WNOHANG) == pid)
    return exit_code (status);
  while ((r = waitpid (-1, &status, WNOHANG | __WALL)) > 0)
    {
      if (r == pid)
        return exit_code (status);
      if (r == keep)
        break;
    }
  return -1;
}

int
cli_wait_forward (pid_t pid, int master)
{
  sigset_t all, old;
  int sfd, code = -1;
  pid_t proxy = -1;

  sigfillset (&all);
  sigprocmask (SIG_BLOCK, &all, &old);
  sfd = signalfd (-1, &all, SFD_CLOEXEC);
  if (master >= 0)
    {
      /* The terminal proxy runs in a child so this loop stays simple. */
      proxy = fork ();
      if (proxy == 0)
        {
          sigprocmask (SIG_SETMASK, &old, NULL);
          berth_terminal_proxy (master, -1, NULL);
          _exit (0);
        }
      close (master);
    }
  for (;;)
    {
      struct signalfd_siginfo si;
      code = reap (pid, proxy);
      if (code >= 0)
        break;
      if (read (sfd, &si, sizeof (si)) != sizeof (si))
        {
          if (errno == EINTR)
            continue;
          /* No signalfd: fall back to a plain blocking wait.  */
          int status;
          if (waitpid (pid, &status, 0) == pid)
            code = exit_code (status);
          break;
        }
      if (si.ssi_signo == SIGCHLD)
        continue;
      if (si.ssi_signo == SIGWINCH)
        continue;
      kill (pid, (int) si.ssi_signo);
    }
  close (sfd);
  if (proxy > 0)
    {
      /* Let the proxy copy what the process wrote last: it ends by itself
       * once the terminal's last user is gone.  */
      int i;
      for (i = 0; i < 200 && waitpid (proxy, NULL, WNOHANG) == 0; i++)
        usleep (5000);
      if (i == 200)
        {
          kill (proxy, SIGKILL);
          waitpid (proxy, NULL, 0);
        }
    }
  sigprocmask (SIG_SETMASK, &old, NULL);
  return code;
}
