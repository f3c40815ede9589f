#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "linux/caps.h"
#include "linux/mounts.h"
#include "linux/namespaces.h"
#include "linux/safe_open.h"
#include "linux/sync.h"
#include "linux/terminal.h"
#include "runtime/hooks.h"
#include "json.h"
#include "utils.h"

#ifndef SYS_sched_setattr
#define SYS_sched_setattr 314
#endif
#ifndef SYS_ioprio_set
#define SYS_ioprio_set 251
#endif

struct sched_attr_compat
{
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

static int
apply_rlimits (const struct oci_process *p, berth_error_t *err)
{
  size_t i;
  for (i = 0; i < p->rlimits_len; i++)
    {
      struct rlimit rl
          = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
      if (setrlimit (p->rlimits[i].resource, &rl) < 0)
        return berth_make_error (
            err, errno, "process.rlimits: set %s to %llu/%llu",
            p->rlimits[i].name, (unsigned long long) rl.rlim_cur,
            (unsigned long long) rl.rlim_max);
    }
  return 0;
}

static int
apply_oom_score_adj (const struct oci_process *p, berth_error_t *err)
{
  char buf[16];
  int len;
  cleanup_close int fd = -1;

  if (!p->has_oom_score_adj)
    return 0;
  fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `/proc/self/oom_score_adj`");
  if (check_proc_fd (fd, "/proc/self/oom_score_adj", err) < 0)
    return -1;
  len = snprintf (buf, sizeof (buf), "%lld", (long long) p->oom_score_adj);
  if (write (fd, buf, (size_t) len) != len)
    return berth_make_error (err, errno, "process.oomScoreAdj: write %s", buf);
  return 0;
}

static int
apply_scheduler (const struct oci_process *p, berth_error_t *err)
{
  struct sched_attr_compat attr;

  if (!p->has_scheduler)
    return 0;
  memset (&attr, 0, sizeof (attr));
  attr.size = sizeof (attr);
  attr.sched_policy = (uint32_t) p->sched_policy;
  attr.sched_flags = p->sched_flags;
  attr.sched_nice = p->sched_nice;
  attr.sched_priority = (uint32_t) p->sched_priority;
  attr.sched_runtime = p->sched_runtime;
  attr.sched_deadline = p->sched_deadline;
  attr.sched_period = p->sched_period;
  if (syscall (SYS_sched_setattr, 0, &attr, 0) < 0)
    return berth_make_error (err, errno, "process.scheduler: sched_setattr");
  return 0;
}

static int
apply_io_priority (const struct oci_process *p, berth_error_t *err)
{
  if (!p->has_io_priority)
    return 0;
  /* IOPRIO_WHO_PROCESS = 1; class in the top bits (IOPRIO_CLASS_SHIFT). */
  if (syscall (SYS_ioprio_set, 1, 0, (p->io_class << 13) | p->io_priority) < 0)
    return berth_make_error (err, errno, "process.ioPriority: ioprio_set");
  return 0;
}

static int
apply_cpu_affinity (const char *list, berth_error_t *err)
{
  cpu_set_t set;
  cleanup_free char *copy = NULL;
  char *tok, *save = NULL;

  if (list == NULL)
    return 0;
  CPU_ZERO (&set);
  copy = xstrdup (list);
  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    {
      unsigned a, b;
      int n = sscanf (tok, "%u-%u", &a, &b);
      if (n == 1)
        b = a;
      if (n < 1 || a > b || b >= CPU_SETSIZE)
        return berth_make_invalid (
            err, "process.execCPUAffinity: invalid list `%s`", list);
      for (; a <= b; a++)
        CPU_SET (a, &set);
    }
  if (sched_setaffinity (0, sizeof (set), &set) < 0)
    return berth_make_error (err, errno,
                             "process.execCPUAffinity: sched_setaffinity");
  return 0;
}

int
linux_process_prepare (const struct oci_process *p,
                       const struct oci_config *cfg, berth_error_t *err)
{
  if (apply_rlimits (p, err) < 0 || apply_oom_score_adj (p, err) < 0
      || apply_scheduler (p, err) < 0 || apply_io_priority (p, err) < 0
      || apply_cpu_affinity (p->cpu_affinity_initial, err) < 0)
    return -1;
  if (cfg && cfg->has_personality && personality (cfg->personality) < 0)
    return berth_make_error (err, errno, "linux.personality");
  if (p->apparmor_profile && access ("/sys/kernel/security/apparmor", F_OK) < 0)
    return berth_make_error (err, EOPNOTSUPP,
                             "process.apparmorProfile: AppArmor is not "
                             "enabled on this host");
  if (p->selinux_label && access ("/sys/fs/selinux/enforce", F_OK) < 0)
    return berth_make_error (err, EOPNOTSUPP,
                             "process.selinuxLabel: SELinux is not enabled on "
                             "this host");
  if (p->umask >= 0)
    umask ((mode_t) p->umask);
  return 0;
}

int
linux_process_secure (const struct oci_process *p,
                      const struct berth_seccomp *sc, int *listener_fd,
                      berth_error_t *err)
{
  int r;

  *listener_fd = -1;
  /* Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it
   * while we still have it.  With no_new_privs, as late as possible so the
   * filter does not see our own setup syscalls.  */
  if (sc && !p->no_new_privileges)
    {
      r = berth_seccomp_install (sc, listener_fd);
      if (r < 0)
        return berth_make_error (err, -r, "linux.seccomp: install the filter");
    }
  if (linux_caps_apply_user (p, err) < 0)
    return -1;
  if (p->no_new_privileges && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return berth_make_error (err, errno, "process.noNewPrivileges");
  if (sc && p->no_new_privileges)
    {
      r = berth_seccomp_install (sc, listener_fd);
      if (r < 0)
        return berth_make_error (err, -r, "linux.seccomp: install the filter");
    }
  return 0;
}

static const char *
env_get (char **env, const char *name)
{
  size_t n = strlen (name);
  for (; env && *env; env++)
    if (strncmp (*env, name, n) == 0 && (*env)[n] == '=')
      return *env + n + 1;
  return NULL;
}

int
linux_process_lookup (const struct oci_process *p, char **path,
                      berth_error_t *err)
{
  const char *name = p->args[0];
  const char *search;
  cleanup_free char *copy = NULL;
  char *dir, *save = NULL;
  struct stat st;

  if (strchr (name, '/'))
    {
      if (stat (name, &st) < 0)
        return berth_make_error (err, errno, "exec: \"%s\"", name);
      *path = xstrdup (name);
      return 0;
    }
  search = env_get (p->env, "PATH");
  if (search == NULL)
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  copy = xstrdup (search);
  for (dir = strtok_r (copy, ":", &save); dir;
       dir = strtok_r (NULL, ":", &save))
    {
      cleanup_free char *cand = NULL;
      xasprintf (&cand, "%s/%s", *dir ? dir : ".", name);
      if (stat (cand, &st) == 0 && S_ISREG (st.st_mode)
          && access (cand, X_OK) == 0)
        {
          *path = steal_pointer (&cand);
          return 0;
        }
    }
  berth_make_error (err, 0, "exec: \"%s\": executable file not found in $PATH",
                    name);
  (*err)->status = ENOENT;
  return -ENOENT;
}

/* CVE-2024-21626: nothing of the runtime's may reach the container
 * process.  Everything from 3 + PRESERVE is marked close-on-exec (the sync
 * socket must stay usable until execve succeeds); the preserved ones are
 * made inheritable. */
void
linux_exec_close_fds (int preserve_fds)
{
  int fd;
  for (fd = 3; fd < 3 + preserve_fds; fd++)
    {
      int fl = fcntl (fd, F_GETFD);
      if (fl >= 0)
        fcntl (fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
  if (syscall (SYS_close_range, 3 + preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    {
      /* Before Linux 5.11: walk the possible fds.  */
      long max = sysconf (_SC_OPEN_MAX);
      for (fd = 3 + preserve_fds; fd < max && fd < 65536; fd++)
        fcntl (fd, F_SETFD, FD_CLOEXEC);
    }
}

/* Exec PATH with P's args and env; returns only on failure. */
static int
do_exec (const char *path, const struct oci_process *p, int preserve_fds,
         berth_error_t *err)
{
  linux_exec_close_fds (preserve_fds);
  if (p->cpu_affinity_final)
    apply_cpu_affinity (p->cpu_affinity_final, err);
  execve (path, p->args, p->env);
  return berth_make_error (err, errno, "exec `%s`", path);
}

/* The child's fatal path: report over the sync socket (during create) or
 * the result fifo that `start` reads (after it), then exit. */
static void __attribute__ ((noreturn))
child_fail (int sync_fd, int result_fd, berth_error_t *err)
{
  const char *msg = *err ? (*err)->msg : "unknown error";
  if (sync_fd >= 0)
    sync_send_error (sync_fd, *err);
  else
    {
      if (result_fd >= 0)
        safe_write_all (result_fd, msg, strlen (msg));
      dprintf (2, "berth-runtime: %s\n", msg);
    }
  _exit (127);
}

/* Open the exec fifo as reader (so `start` can open it for writing
 * without blocking) and as writer (so our read blocks instead of seeing
 * end of file until `start` writes). */
int
linux_open_exec_fifos (const char *state_dir, int *rfd, int *wfd, int *resfd,
                       berth_error_t *err)
{
  cleanup_free char *path = NULL;
  /* O_RDWR never blocks on a fifo: `start` opens the read side later.  */
  xasprintf (&path, "%s/result.fifo", state_dir);
  *resfd = open (path, O_RDWR | O_CLOEXEC);
  if (*resfd < 0)
    return berth_make_error (err, errno, "open `%s`", path);
  free (path);
  xasprintf (&path, "%s/exec.fifo", state_dir);
  *rfd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (*rfd < 0)
    return berth_make_error (err, errno, "open `%s`", path);
  *wfd = open (path, O_WRONLY | O_CLOEXEC);
  if (*wfd < 0)
    return berth_make_error (err, errno, "open `%s`", path);
  if (fcntl (*rfd, F_SETFL, 0) < 0)
    return berth_make_error (err, errno, "fcntl `%s`", path);
  return 0;
}

static int
wait_exec_fifo (int rfd, int wfd)
{
  char c;
  ssize_t r;
  do
    r = read (rfd, &c, 1);
  while (r < 0 && errno == EINTR);
  close (wfd);
  close (rfd);
  return r == 1 ? 0 : -EPIPE;
}

static int
set_hostnames (const struct oci_config *cfg, berth_error_t *err)
{
  if (cfg->hostname && sethostname (cfg->hostname, strlen (cfg->hostname)) < 0)
    return berth_make_error (err, errno, "hostname: sethostname `%s`",
                             cfg->hostname);
  if (cfg->domainname
      && setdomainname (cfg->domainname, strlen (cfg->domainname)) < 0)
    return berth_make_error (err, errno, "domainname: setdomainname `%s`",
                             cfg->domainname);
  return 0;
}

/* Only sysctls that belong to a namespace the container has of its own
 * may be set: anything else would change the host (runc refuses them
 * too). */
static int
check_sysctl (const struct oci_config *cfg, const char *key, berth_error_t *err)
{
  static const char *const ipc[]
      = { "kernel.msgmax", "kernel.msgmnb",         "kernel.msgmni",
          "kernel.sem",    "kernel.shmall",         "kernel.shmmax",
          "kernel.shmmni", "kernel.shm_rmid_forced" };
  bool own_ipc = cfg->ns[OCI_NS_IPC].present;
  bool own_net = cfg->ns[OCI_NS_NET].present;
  bool own_uts = cfg->ns[OCI_NS_UTS].present;
  size_t i;

  for (i = 0; i < ARRAY_SIZE (ipc); i++)
    if (strcmp (key, ipc[i]) == 0)
      {
        if (own_ipc)
          return 0;
        goto shared;
      }
  if (strncmp (key, "fs.mqueue.", 10) == 0)
    {
      if (own_ipc)
        return 0;
      goto shared;
    }
  if (strncmp (key, "net.", 4) == 0)
    {
      if (own_net)
        return 0;
      goto shared;
    }
  if (strcmp (key, "kernel.hostname") == 0
      || strcmp (key, "kernel.domainname") == 0)
    {
      if (own_uts)
        return 0;
      goto shared;
    }
  return berth_make_error (err, EPERM,
                           "linux.sysctl: `%s` is not namespaced: setting it "
                           "would change the host",
                           key);
shared:
  return berth_make_error (err, EPERM,
                           "linux.sysctl: `%s` needs a namespace of its own "
                           "that the container does not have",
                           key);
}

static int
apply_sysctl (const struct oci_config *cfg, berth_error_t *err)
{
  size_t i;
  for (i = 0; i < cfg->sysctl_len; i++)
    {
      if (check_sysctl (cfg, cfg->sysctl[i].key, err) < 0)
        return -1;
      cleanup_free char *path = NULL;
      cleanup_close int fd = -1;
      char *p;
      xasprintf (&path, "/proc/sys/%s", cfg->sysctl[i].key);
      for (p = path + strlen ("/proc/sys/"); *p; p++)
        if (*p == '.')
          *p = '/';
      fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0)
        return berth_make_error (err, errno, "linux.sysctl: `%s`",
                                 cfg->sysctl[i].key);
      if (check_proc_fd (fd, path, err) < 0)
        return -1;
      if (safe_write_all (fd, cfg->sysctl[i].value,
                          strlen (cfg->sysctl[i].value))
          < 0)
        return berth_make_error (err, errno, "linux.sysctl: write `%s` = `%s`",
                                 cfg->sysctl[i].key, cfg->sysctl[i].value);
    }
  return 0;
}

struct cgroup_wait
{
  const struct linux_init_args *a;
  int64_t host_pid; /* our pid as the runtime sees it */
};

/* Wait until the runtime has put us in our cgroup, then unshare the
 * namespaces that must start from there (cgroup) or that we must not be in
 * yet (time).  Called from the rootfs setup before the first cgroup mount. */
static int
join_cgroup (void *data, berth_error_t *err)
{
  struct cgroup_wait *w = data;
  struct sync_msg m;

  if (sync_expect (w->a->sync_fd, SYNC_CGROUP_READY, "cgroup", &m, NULL, err)
      < 0)
    return -1;
  w->host_pid = m.value;
  return linux_ns_unshare_late (w->a->cfg, err);
}

/* The OCI state as the in-container hooks see it; HOST_PID came from the
 * runtime, since in a new pid namespace we are 1. */
static char *
hook_state (const struct linux_init_args *a, int64_t host_pid,
            const char *status)
{
  json_t *j = json_object ();
  char *s;
  json_object_set_new (j, "ociVersion", json_string (a->cfg->oci_version));
  json_object_set_new (j, "id", json_string (a->id));
  json_object_set_new (j, "status", json_string (status));
  json_object_set_new (j, "pid", json_integer (host_pid));
  json_object_set_new (j, "bundle", json_string (a->bundle));
  if (a->cfg->annotations)
    json_object_set (j, "annotations", a->cfg->annotations);
  s = bjson_dump (j, false);
  json_decref (j);
  return s;
}

/* Everything from the namespaces to pivot_root. */
static int
init_rootfs (const struct linux_init_args *a, int64_t *host_pid,
             berth_error_t *err)
{
  struct cgroup_wait wait = { .a = a };
  const struct oci_config *cfg = a->cfg;
  struct linux_rootfs_opts ro = {
    .cfg = cfg,
    .no_pivot = a->no_pivot,
    .userns = cfg->ns[OCI_NS_USER].present,
    .cgroupns = cfg->ns[OCI_NS_CGROUP].present,
    .cgroup_rel_path = a->cgroup_rel_path,
    .terminal = cfg->process && cfg->process->terminal,
    .idmap_userns = a->idmap_userns,
    .before_cgroup = join_cgroup,
    .before_cgroup_data = &wait,
  };
  cleanup_free char *state = NULL;

  if (linux_rootfs_prepare (&ro, err) < 0)
    return -1;
  *host_pid = wait.host_pid;
  if (sync_send (a->sync_fd, SYNC_RUN_HOOKS, 0, 0, NULL) < 0
      || sync_expect (a->sync_fd, SYNC_HOOKS_DONE, "createRuntime hooks", NULL,
                      NULL, err)
             < 0)
    return -1;
  if (cfg->hooks[OCI_HOOK_CREATE_CONTAINER].len)
    {
      state = hook_state (a, *host_pid, "creating");
      if (berth_hooks_run (&cfg->hooks[OCI_HOOK_CREATE_CONTAINER],
                           "createContainer", state, err)
          < 0)
        return -1;
    }
  return linux_rootfs_finalize (&ro, err);
}

static int
init_terminal (const struct linux_init_args *a, berth_error_t *err)
{
  const struct oci_process *p = a->cfg->process;
  cleanup_close int master = -1;
  cleanup_free char *slave = NULL;

  if (!p->terminal)
    {
      if (setsid () < 0)
        return berth_make_error (err, errno, "setsid");
      return 0;
    }
  if (linux_terminal_open (&master, &slave, err) < 0
      || linux_rootfs_bind_console (slave, err) < 0)
    return -1;
  if (sync_send_fd (a->sync_fd, SYNC_CONSOLE, master) < 0)
    return berth_make_error (err, errno, "send the terminal to the runtime");
  return linux_terminal_attach (slave, p->console_width, p->console_height,
                                err);
}

/* Up to the namespaces: become root in a new user namespace, join the
 * ones given by path, hostname, session keyring.  The cgroup comes later
 * (join_cgroup), overlapped with the first mounts. */
static int
init_namespaces (const struct linux_init_args *a, berth_error_t *err)
{
  const struct oci_config *cfg = a->cfg;

  if (cfg->ns[OCI_NS_USER].present && !cfg->ns[OCI_NS_USER].path)
    {
      if (sync_expect (a->sync_fd, SYNC_USERNS_READY, "user namespace", NULL,
                       NULL, err)
          < 0)
        return -1;
      if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0)
        return berth_make_error (
            err, errno, "become root in the user namespace (is 0 mapped?)");
    }
  if (linux_ns_join_paths (cfg, err) < 0 || set_hostnames (cfg, err) < 0)
    return -1;
  if (!a->no_new_keyring
      && syscall (SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0
      && errno != ENOSYS && errno != EPERM)
    return berth_make_error (err, errno, "create a session keyring");
  return 0;
}

/* A seccomp listener must reach its agent during create, while the
 * runtime is still there to pass it on: secure before waiting.  Sets
 * *SECURED when it did. */
static int
init_seccomp_listener (const struct linux_init_args *a, bool *secured,
                       berth_error_t *err)
{
  int listener = -1;

  if (a->seccomp == NULL || !berth_seccomp_uses_notify (a->seccomp))
    return 0;
  if (linux_process_secure (a->cfg->process, a->seccomp, &listener, err) < 0)
    return -1;
  *secured = true;
  if (listener < 0)
    return 0;
  sync_send_fd (a->sync_fd, SYNC_SECCOMP_FD, listener);
  close (listener);
  return sync_expect (a->sync_fd, SYNC_SECCOMP_DONE, "seccomp listener", NULL,
                      NULL, err);
}

/* Everything `create` does in the container: on success the process is
 * ready to exec EXE and only waits for `start`. */
static int
init_create (const struct linux_init_args *a, int64_t *host_pid, char **exe,
             bool *secured, berth_error_t *err)
{
  const struct oci_process *p = a->cfg->process;

  /* Sysctls go in through the runtime's /proc while it is still there: the
   * container's /proc/sys is about to become read-only.  Only namespaced
   * keys are accepted, so this writes to the container's namespaces.  */
  if (init_namespaces (a, err) < 0 || apply_sysctl (a->cfg, err) < 0
      || init_rootfs (a, host_pid, err) < 0 || init_terminal (a, err) < 0)
    return -1;
  if (p->cwd && chdir (p->cwd) < 0)
    return berth_make_error (err, errno, "process.cwd: chdir to `%s`", p->cwd);
  if (linux_process_lookup (p, exe, err) < 0
      || linux_process_prepare (p, a->cfg, err) < 0)
    return -1;
  return init_seccomp_listener (a, secured, err);
}

void
linux_init_main (const struct linux_init_args *a)
{
  const struct oci_config *cfg = a->cfg;
  berth_error_t err = NULL;
  cleanup_free char *exe = NULL;
  int64_t host_pid = 0;
  bool secured = false;
  int listener = -1;

  if (init_create (a, &host_pid, &exe, &secured, &err) < 0)
    child_fail (a->sync_fd, -1, &err);
  sync_send (a->sync_fd, SYNC_READY, 0, 0, NULL);
  close (a->sync_fd);
  if (wait_exec_fifo (a->fifo_rfd, a->fifo_wfd) < 0)
    _exit (0); /* deleted before start */
  /* From here on, failures go to `start` through the result fifo.  */
  if (cfg->hooks[OCI_HOOK_START_CONTAINER].len)
    {
      cleanup_free char *state = hook_state (a, host_pid, "created");
      if (berth_hooks_run (&cfg->hooks[OCI_HOOK_START_CONTAINER],
                           "startContainer", state, &err)
          < 0)
        child_fail (-1, a->result_fd, &err);
    }
  if (!secured
      && linux_process_secure (cfg->process, a->seccomp, &listener, &err) < 0)
    child_fail (-1, a->result_fd, &err);
  do_exec (exe, cfg->process, a->preserve_fds, &err);
  child_fail (-1, a->result_fd, &err);
}
