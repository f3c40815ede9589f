/* exec.c - run another process in a running container. */
#include "container.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "linux/cgroup.h"
#include "linux/process.h"
#include "linux/seccomp-filter.h"
#include "linux/sync.h"
#include "linux/terminal.h"
#include "runtime/state.h"
#include "utils.h"

struct exec_ctx
{
  const struct berth_exec_opts *o;
  struct berth_state *st;
  struct oci_config *cfg;
  struct berth_seccomp *seccomp;
  int sync[2];
  pid_t helper, pid;
};

static int
join_cgroup (struct exec_ctx *c, berth_error_t *err)
{
  struct berth_cgroup *cg = NULL;
  int r;
  if (c->st->cgroup_path == NULL)
    return 0;
  r = berth_cgroup_create (c->st->cgroup_path, NULL, c->st->id, c->pid, &cg,
                           err);
  berth_cgroup_free (cg);
  return r < 0 ? berth_error_wrap (err, "join the container's cgroup") : 0;
}

/* Until the exec'd process closes its end on a successful execve. */
static int
serve_child (struct exec_ctx *c, berth_error_t *err)
{
  struct sync_msg m;
  int fd = -1;

  for (;;)
    {
      int r = sync_recv (c->sync[0], &m, &fd);
      if (r == -EPIPE)
        return 0;
      if (r < 0)
        return berth_make_error (err, -r, "read from the exec process");
      if (m.type == SYNC_ERROR)
        {
          berth_make_error (err, 0, "%s", m.msg);
          (*err)->status = m.status;
          return -1;
        }
      if (m.type != SYNC_CONSOLE)
        return berth_make_error (err, EPROTO, "unexpected message %d", m.type);
      if (berth_console_deliver (fd, c->o->console_socket, c->o->console_master,
                                 err)
          < 0)
        return -1;
    }
}

static int
spawn (struct exec_ctx *c, berth_error_t *err)
{
  struct linux_exec_args a = {
    .cfg = c->cfg,
    .process = c->o->process,
    .seccomp = c->seccomp,
    .init_pid = c->st->pid,
    .preserve_fds = c->o->preserve_fds,
    .detach = c->o->detach,
  };
  struct sync_msg m;
  int r;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->sync) < 0)
    return berth_make_error (err, errno, "socketpair");
  /* The exec'd process is our grandchild: become its reaper so the caller
   * can wait for it.  */
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return berth_make_error (err, errno, "prctl PR_SET_CHILD_SUBREAPER");
  c->helper = fork ();
  if (c->helper < 0)
    return berth_make_error (err, errno, "fork");
  if (c->helper == 0)
    {
      close (c->sync[0]);
      a.sync_fd = c->sync[1];
      linux_exec_main (&a);
    }
  close (c->sync[1]);
  c->sync[1] = -1;
  r = sync_expect (c->sync[0], SYNC_PID, "exec", &m, NULL, err);
  while (waitpid (c->helper, NULL, 0) < 0 && errno == EINTR)
    ;
  c->helper = 0;
  if (r < 0)
    return -1;
  c->pid = (pid_t) m.value;
  return 0;
}

static void
exec_cleanup (struct exec_ctx *c, bool failed)
{
  if (failed && c->pid > 0)
    {
      kill (c->pid, SIGKILL);
      waitpid (c->pid, NULL, 0);
    }
  if (c->helper > 0)
    {
      kill (c->helper, SIGKILL);
      waitpid (c->helper, NULL, 0);
    }
  if (c->sync[0] >= 0)
    close (c->sync[0]);
  if (c->sync[1] >= 0)
    close (c->sync[1]);
  berth_seccomp_free (c->seccomp);
  oci_config_free (c->cfg);
  berth_state_free (c->st);
}

int
berth_container_exec (const struct berth_runtime *rt, const char *id,
                      const struct berth_exec_opts *o, pid_t *pid,
                      berth_error_t *err)
{
  struct exec_ctx c = { .o = o, .sync = { -1, -1 } };
  const char *status;
  int r = -1;

  if (berth_state_read (rt->root, id, &c.st, err) < 0)
    goto out;
  status = berth_state_status (rt->root, c.st);
  if (strcmp (status, "stopped") == 0)
    {
      berth_make_error (err, 0, "cannot exec in a stopped container");
      goto out;
    }
  if (strcmp (status, "paused") == 0)
    {
      berth_make_error (err, 0, "cannot exec in a paused container");
      goto out;
    }
  if (o->process->terminal && !o->console_socket && !o->console_master)
    {
      berth_make_invalid (err, "cannot allocate tty if berth-runtime "
                               "will detach without setting console "
                               "socket");
      goto out;
    }
  if (berth_container_config (rt, id, &c.cfg, err) < 0
      || berth_runtime_compile_seccomp (rt, c.cfg->seccomp, &c.seccomp, err) < 0
      || spawn (&c, err) < 0 || join_cgroup (&c, err) < 0
      || sync_send (c.sync[0], SYNC_CGROUP_READY, 0, c.pid, NULL) < 0
      || serve_child (&c, err) < 0)
    goto out;
  if (o->pid_file)
    {
      char buf[32];
      int n = snprintf (buf, sizeof (buf), "%d", (int) c.pid);
      if (write_file_replace (o->pid_file, buf, (size_t) n, 0644, err) < 0)
        goto out;
    }
  *pid = c.pid;
  r = 0;
out:
  if (r < 0 && c.pid > 0)
    sync_prefer_child_error (c.sync[0], err);
  exec_cleanup (&c, r < 0);
  return r;
}
