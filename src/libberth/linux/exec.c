/* exec.c - a new process in a running container (`exec`). */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linux/namespaces.h"
#include "linux/sync.h"
#include "linux/terminal.h"
#include "utils.h"

/* Join order: the user namespace first (it grants the rights for the
 * rest), the mount namespace last (it changes how the others' paths
 * resolve, though we hold them open already). */
static const struct
{
  const char *name;
  int flag;
} join_order[] = {
  { "user", CLONE_NEWUSER }, { "ipc", CLONE_NEWIPC },
  { "uts", CLONE_NEWUTS },   { "net", CLONE_NEWNET },
  { "pid", CLONE_NEWPID },   { "cgroup", CLONE_NEWCGROUP },
  { "time", 0x00000080 },    { "mnt", CLONE_NEWNS },
};

static bool
same_ns (pid_t pid, const char *name)
{
  char a[64], b[64];
  struct stat sa, sb;
  snprintf (a, sizeof (a), "/proc/%d/ns/%s", (int) pid, name);
  snprintf (b, sizeof (b), "/proc/self/ns/%s", name);
  if (stat (a, &sa) < 0 || stat (b, &sb) < 0)
    return true;
  return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static int
join_container (pid_t pid, berth_error_t *err)
{
  int fds[ARRAY_SIZE (join_order)];
  size_t i;
  int r = 0;

  /* Open them all first: once in the new mount namespace, /proc may be
   * another one.  */
  for (i = 0; i < ARRAY_SIZE (join_order); i++)
    {
      char path[64];
      fds[i] = -1;
      if (same_ns (pid, join_order[i].name))
        continue;
      snprintf (path, sizeof (path), "/proc/%d/ns/%s", (int) pid,
                join_order[i].name);
      fds[i] = open (path, O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0 && errno != ENOENT)
        r = berth_make_error (err, errno, "open `%s`", path);
    }
  for (i = 0; r == 0 && i < ARRAY_SIZE (join_order); i++)
    if (fds[i] >= 0 && setns (fds[i], join_order[i].flag) < 0)
      r = berth_make_error (err, errno, "join the container's %s namespace",
                            join_order[i].name);
  for (i = 0; i < ARRAY_SIZE (join_order); i++)
    if (fds[i] >= 0)
      close (fds[i]);
  return r;
}

static void __attribute__ ((noreturn))
exec_fail (int sync_fd, berth_error_t *err)
{
  sync_send_error (sync_fd, *err);
  _exit (127);
}

static void __attribute__ ((noreturn))
exec_process (const struct linux_exec_args *a)
{
  const struct oci_process *p = a->process;
  berth_error_t err = NULL;
  cleanup_free char *exe = NULL;
  int listener = -1;

  if (sync_expect (a->sync_fd, SYNC_CGROUP_READY, "cgroup", NULL, NULL, &err)
      < 0)
    exec_fail (a->sync_fd, &err);
  if (p->terminal)
    {
      cleanup_close int master = -1;
      cleanup_free char *slave = NULL;
      if (linux_terminal_open (&master, &slave, &err) < 0)
        exec_fail (a->sync_fd, &err);
      if (sync_send_fd (a->sync_fd, SYNC_CONSOLE, master) < 0)
        {
          berth_make_error (&err, errno, "send the terminal to the runtime");
          exec_fail (a->sync_fd, &err);
        }
      if (linux_terminal_attach (slave, p->console_width, p->console_height,
                                 &err)
          < 0)
        exec_fail (a->sync_fd, &err);
    }
  else if (a->detach)
    setsid ();
  if (chdir (p->cwd ? p->cwd : "/") < 0)
    {
      berth_make_error (&err, errno, "chdir to `%s`", p->cwd);
      exec_fail (a->sync_fd, &err);
    }
  if (linux_process_lookup (p, &exe, &err) < 0
      || linux_process_prepare (p, a->cfg, &err) < 0
      || linux_process_secure (p, a->seccomp, &listener, &err) < 0)
    exec_fail (a->sync_fd, &err);
  if (listener >= 0)
    close (listener);
  linux_exec_close_fds (a->preserve_fds);
  execve (exe, p->args, p->env);
  berth_make_error (&err, errno, "exec `%s`", exe);
  exec_fail (a->sync_fd, &err);
}

void
linux_exec_main (const struct linux_exec_args *a)
{
  berth_error_t err = NULL;
  pid_t pid;

  if (join_container (a->init_pid, &err) < 0)
    exec_fail (a->sync_fd, &err);
  /* setns(CLONE_NEWPID) only moves our children: fork the real one.  */
  pid = fork ();
  if (pid < 0)
    {
      berth_make_error (&err, errno, "fork");
      exec_fail (a->sync_fd, &err);
    }
  if (pid == 0)
    exec_process (a);
  sync_send (a->sync_fd, SYNC_PID, 0, pid, NULL);
  _exit (0);
}
