#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "safe_open.h"
#include "utils.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int
linux_ns_clone_flags (const struct oci_config *cfg)
{
  int flags = 0, k;
  for (k = 0; k < OCI_NS_COUNT; k++)
    {
      if (!cfg->ns[k].present || cfg->ns[k].path)
        continue;
      if (k == OCI_NS_CGROUP || k == OCI_NS_TIME)
        continue;
      /* Joining a user namespace by path and creating the others: they
       * are unshared after the join so the new user namespace owns them. */
      if (cfg->ns[OCI_NS_USER].path && k != OCI_NS_PID)
        continue;
      flags |= oci_ns_clone_flag (k);
    }
  return flags;
}

pid_t
linux_clone (int flags)
{
  struct clone_args args;
  long r;

  memset (&args, 0, sizeof (args));
  args.flags = (uint64_t) flags;
  args.exit_signal = SIGCHLD;
  r = syscall (SYS_clone3, &args, sizeof (args));
  if (r >= 0 || errno != ENOSYS)
    return (pid_t) r;
  return (pid_t) syscall (SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

static int
join_one (const struct oci_config *cfg, int k, berth_error_t *err)
{
  cleanup_close int fd = -1;

  fd = open (cfg->ns[k].path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open %s namespace `%s`",
                             oci_ns_name (k), cfg->ns[k].path);
  if (setns (fd, oci_ns_clone_flag (k)) < 0)
    return berth_make_error (err, errno, "join %s namespace `%s`",
                             oci_ns_name (k), cfg->ns[k].path);
  return 0;
}

int
linux_ns_join_paths (const struct oci_config *cfg, berth_error_t *err)
{
  int k, late = 0;

  for (k = 0; k < OCI_NS_COUNT; k++)
    {
      if (k == OCI_NS_PID || !cfg->ns[k].present || !cfg->ns[k].path)
        continue;
      if (join_one (cfg, k, err) < 0)
        return -1;
    }
  if (cfg->ns[OCI_NS_USER].path)
    {
      for (k = 0; k < OCI_NS_COUNT; k++)
        if (k != OCI_NS_USER && k != OCI_NS_PID && k != OCI_NS_CGROUP
            && k != OCI_NS_TIME && cfg->ns[k].present && !cfg->ns[k].path)
          late |= oci_ns_clone_flag (k);
      if (late && unshare (late) < 0)
        return berth_make_error (err, errno, "unshare namespaces");
    }
  return 0;
}

int
linux_ns_enter_pid_for_children (const char *path, int *saved,
                                 berth_error_t *err)
{
  cleanup_close int self = open ("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  cleanup_close int fd = -1;

  if (self < 0)
    return berth_make_error (err, errno, "open `/proc/self/ns/pid`");
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open pid namespace `%s`", path);
  if (setns (fd, CLONE_NEWPID) < 0)
    return berth_make_error (err, errno, "join pid namespace `%s`", path);
  *saved = move_fd (&self);
  return 0;
}

int
linux_ns_restore_pid (int saved, berth_error_t *err)
{
  int r = 0;
  if (saved < 0)
    return 0;
  if (setns (saved, CLONE_NEWPID) < 0)
    r = berth_make_error (err, errno, "restore the runtime's pid namespace");
  close (saved);
  return r;
}

int
linux_ns_write_map (pid_t pid, const char *file, const struct oci_id_map *m,
                    size_t n, berth_error_t *err)
{
  char path[64];
  cleanup_free char *buf = xmalloc (n * 40 + 1);
  size_t i, len = 0;
  cleanup_close int fd = -1;

  for (i = 0; i < n; i++)
    len += (size_t) sprintf (buf + len, "%u %u %u\n", m[i].container_id,
                             m[i].host_id, m[i].size);
  snprintf (path, sizeof (path), "/proc/%d/%s", (int) pid, file);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s`", path);
  if (check_proc_fd (fd, path, err) < 0)
    return -1;
  if (write (fd, buf, len) != (ssize_t) len)
    return berth_make_error (err, errno, "write `%s`", path);
  return 0;
}

int
linux_ns_write_id_maps (pid_t pid, const struct oci_config *cfg,
                        berth_error_t *err)
{
  if (linux_ns_write_map (pid, "uid_map", cfg->uid_mappings,
                          cfg->uid_mappings_len, err)
          < 0
      || linux_ns_write_map (pid, "gid_map", cfg->gid_mappings,
                             cfg->gid_mappings_len, err)
             < 0)
    return berth_error_wrap (err, "user namespace mappings");
  return 0;
}

static int
write_time_offsets (const struct oci_config *cfg, berth_error_t *err)
{
  char buf[128];
  int len;
  cleanup_close int fd
      = open ("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `/proc/self/timens_offsets`");
  if (check_proc_fd (fd, "/proc/self/timens_offsets", err) < 0)
    return -1;
  len = snprintf (buf, sizeof (buf), "monotonic %lld %u\nboottime %lld %u\n",
                  (long long) cfg->monotonic_secs, cfg->monotonic_nanosecs,
                  (long long) cfg->boottime_secs, cfg->boottime_nanosecs);
  if (write (fd, buf, (size_t) len) != len)
    return berth_make_error (err, errno, "linux.timeOffsets: write offsets");
  return 0;
}

int
linux_ns_unshare_late (const struct oci_config *cfg, berth_error_t *err)
{
  if (cfg->ns[OCI_NS_CGROUP].present && !cfg->ns[OCI_NS_CGROUP].path
      && unshare (CLONE_NEWCGROUP) < 0)
    return berth_make_error (err, errno, "unshare the cgroup namespace");
  if (cfg->ns[OCI_NS_TIME].present && !cfg->ns[OCI_NS_TIME].path)
    {
      /* The new time namespace applies to our children and, since Linux
       * 5.8, to us after execve: the offsets go in before that.  */
      if (unshare (CLONE_NEWTIME) < 0)
        return berth_make_error (err, errno,
                                 "linux.namespaces: time namespace");
      if (cfg->has_time_offsets && write_time_offsets (cfg, err) < 0)
        return -1;
    }
  return 0;
}
