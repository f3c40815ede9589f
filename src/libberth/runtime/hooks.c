#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utils.h"

const char *
berth_hook_kind_name (enum oci_hook_kind k)
{
  static const char *const names[OCI_HOOK_COUNT]
      = { "prestart",       "createRuntime", "createContainer",
          "startContainer", "poststart",     "poststop" };
  return names[k];
}

static int
wait_hook (pid_t pid, int timeout, int *status)
{
  cleanup_close int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  int r;

  if (pidfd >= 0 && timeout > 0)
    {
      struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
      do
        r = poll (&pfd, 1, timeout * 1000);
      while (r < 0 && errno == EINTR);
      if (r == 0)
        {
          kill (pid, SIGKILL);
          waitpid (pid, status, 0);
          return -ETIMEDOUT;
        }
    }
  while (waitpid (pid, status, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return 0;
}

/* A hook that exits without reading stdin must not kill us with SIGPIPE.
 * The caller owns the process's signal dispositions, so block SIGPIPE
 * around the write and drop a pending one, instead of ignoring it. */
static void
write_state (int fd, const char *state_json)
{
  sigset_t pipe_set, old;
  const struct timespec zero = { 0, 0 };

  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  sigprocmask (SIG_BLOCK, &pipe_set, &old);
  safe_write_all (fd, state_json, strlen (state_json));
  if (!sigismember (&old, SIGPIPE))
    {
      while (sigtimedwait (&pipe_set, NULL, &zero) > 0)
        ;
      sigprocmask (SIG_SETMASK, &old, NULL);
    }
}

static int
run_one (const struct oci_hook *h, const char *kind, size_t idx,
         const char *state_json, berth_error_t *err)
{
  int fds[2];
  pid_t pid;
  int status = 0, r;
  char *fallback_argv[2] = { h->path, NULL };
  char *empty_env[1] = { NULL };

  if (pipe2 (fds, O_CLOEXEC) < 0)
    return berth_make_error (err, errno, "pipe");
  pid = fork ();
  if (pid < 0)
    {
      close (fds[0]);
      close (fds[1]);
      return berth_make_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      /* The state goes on stdin; stdout and stderr are the runtime's.  */
      dup2 (fds[0], 0);
      execve (h->path, h->args && h->args[0] ? h->args : fallback_argv,
              h->env ? h->env : empty_env);
      _exit (127);
    }
  close (fds[0]);
  write_state (fds[1], state_json);
  close (fds[1]);
  r = wait_hook (pid, h->timeout, &status);
  if (r == -ETIMEDOUT)
    return berth_make_error (err, 0, "%s hook #%zu `%s` timed out after %d s",
                             kind, idx, h->path, h->timeout);
  if (r < 0)
    return berth_make_error (err, -r, "wait for %s hook `%s`", kind, h->path);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFEXITED (status))
    return berth_make_error (err, 0, "%s hook #%zu `%s` exited with status %d",
                             kind, idx, h->path, WEXITSTATUS (status));
  return berth_make_error (err, 0, "%s hook #%zu `%s` killed by signal %d",
                           kind, idx, h->path, WTERMSIG (status));
}

int
berth_hooks_run (const struct oci_hooks *hooks, const char *kind,
                 const char *state_json, berth_error_t *err)
{
  size_t i;
  for (i = 0; i < hooks->len; i++)
    if (run_one (&hooks->list[i], kind, i, state_json, err) < 0)
      return -1;
  return 0;
}

void
berth_hooks_run_all (const struct oci_hooks *hooks, const char *kind,
                     const char *state_json,
                     void (*warn) (void *, const char *), void *data)
{
  size_t i;
  for (i = 0; i < hooks->len; i++)
    {
      berth_error_t err = NULL;
      if (run_one (&hooks->list[i], kind, i, state_json, &err) < 0 && warn)
        warn (data, err->msg);
      berth_error_release (&err);
    }
}
