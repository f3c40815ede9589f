/* features, spec: what this runtime supports, and a starting config. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "linux/cgroup.h"
#include "linux/seccomp-filter.h"
#include "oci/config.h"
#include "utils.h"

static json_t *
strings (const char *const *v, size_t n)
{
  json_t *a = json_array ();
  size_t i;
  for (i = 0; i < n; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static json_t *
cap_names (void)
{
  json_t *a = json_array ();
  int c;
  for (c = 0; c <= oci_cap_last (); c++)
    json_array_append_new (a, json_string (oci_cap_name (c)));
  return a;
}

int
cmd_features (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const char *const hooks[]
      = { "prestart",       "createRuntime", "createContainer",
          "startContainer", "poststart",     "poststop" };
  static const char *const ns[]
      = { "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts" };
  static const char *const mount_opts[] = {
    "async",       "atime",        "bind",        "defaults",
    "dev",         "diratime",     "dirsync",     "exec",
    "idmap",       "lazytime",     "loud",        "mand",
    "noatime",     "nodev",        "nodiratime",  "noexec",
    "nolazytime",  "nomand",       "norelatime",  "nostrictatime",
    "nosuid",      "nosymfollow",  "private",     "ratime",
    "rbind",       "rdev",         "rdiratime",   "relatime",
    "remount",     "rexec",        "rnoatime",    "rnodev",
    "rnodiratime", "rnoexec",      "rnorelatime", "rnostrictatime",
    "rnosuid",     "rnosymfollow", "ro",          "rprivate",
    "rrelatime",   "rro",          "rrw",         "rshared",
    "rslave",      "rstrictatime", "rsuid",       "rsymfollow",
    "runbindable", "rw",           "shared",      "silent",
    "slave",       "strictatime",  "suid",        "symfollow",
    "sync",        "unbindable",
  };
  const char *layout = berth_cgroup_layout ();
  cleanup_json json_t *f = NULL;
  cleanup_free char *s = NULL;
  json_t *seccomp = berth_seccomp_features ();

  if (argc > 1)
    return berth_make_invalid (err, "usage: features");
  f = json_pack (
      "{s:s,s:s,s:o,s:o,s:{s:o,s:o,s:{s:b,s:b,s:b,s:b},s:o,s:{s:b},s:{s:b},"
      "s:{s:b},s:{s:{s:b}}},s:{s:s,s:s}}",
      "ociVersionMin", "1.0.0", "ociVersionMax", "1.2.0", "hooks",
      strings (hooks, ARRAY_SIZE (hooks)), "mountOptions",
      strings (mount_opts, ARRAY_SIZE (mount_opts)), "linux", "namespaces",
      strings (ns, ARRAY_SIZE (ns)), "capabilities", cap_names (), "cgroup",
      "v1", strcmp (layout, "v2") != 0, "v2",
      strcmp (layout, "v2") == 0 || strcmp (layout, "hybrid") == 0, "systemd",
      0, "systemdUser", 0, "seccomp", seccomp ? seccomp : json_object (),
      "apparmor", "enabled",
      access ("/sys/kernel/security/apparmor", F_OK) == 0, "selinux", "enabled",
      access ("/sys/fs/selinux/enforce", F_OK) == 0, "intelRdt", "enabled", 0,
      "mountExtensions", "idmap", "enabled", 1, "annotations",
      "org.opencontainers.runtime-spec.features", "1.2.0",
      "io.berth.runtime.version", "berth-runtime");
  if (f == NULL)
    return berth_make_error (err, ENOMEM, "build the features document");
  s = bjson_dump (f, true);
  printf ("%s\n", s);
  return 0;
}

static json_t *
mount_entry (const char *dest, const char *type, const char *src,
             const char *opts)
{
  json_t *m = json_pack ("{s:s,s:s,s:s}", "destination", dest, "type", type,
                         "source", src);
  json_t *o = json_array ();
  cleanup_free char *copy = xstrdup (opts);
  char *tok, *save = NULL;
  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    json_array_append_new (o, json_string (tok));
  json_object_set_new (m, "options", o);
  return m;
}

static json_t *
default_spec (bool rootless)
{
  static const char *const caps[]
      = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" };
  static const char *const masked[]
      = { "/proc/acpi",        "/proc/asound",        "/proc/kcore",
          "/proc/keys",        "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug",   "/sys/firmware",
          "/proc/scsi" };
  static const char *const ro[] = { "/proc/bus", "/proc/fs", "/proc/irq",
                                    "/proc/sys", "/proc/sysrq-trigger" };
  json_t *mounts = json_array (), *ns = json_array (), *lx;
  json_t *spec;

  json_array_append_new (mounts, mount_entry ("/proc", "proc", "proc", ""));
  json_array_append_new (mounts, mount_entry ("/dev", "tmpfs", "tmpfs",
                                              "nosuid,strictatime,mode=755,"
                                              "size=65536k"));
  json_array_append_new (
      mounts, mount_entry ("/dev/pts", "devpts", "devpts",
                           rootless ? "nosuid,noexec,newinstance,ptmxmode=0666,"
                                      "mode=0620"
                                    : "nosuid,noexec,newinstance,ptmxmode=0666,"
                                      "mode=0620,gid=5"));
  json_array_append_new (mounts, mount_entry ("/dev/shm", "tmpfs", "shm",
                                              "nosuid,noexec,nodev,mode=1777,"
                                              "size=65536k"));
  json_array_append_new (mounts, mount_entry ("/dev/mqueue", "mqueue", "mqueue",
                                              "nosuid,noexec,nodev"));
  if (rootless)
    json_array_append_new (mounts, mount_entry ("/sys", "none", "/sys",
                                                "rbind,nosuid,noexec,nodev,"
                                                "ro"));
  else
    json_array_append_new (mounts, mount_entry ("/sys", "sysfs", "sysfs",
                                                "nosuid,noexec,nodev,ro"));
  json_array_append_new (mounts,
                         mount_entry ("/sys/fs/cgroup", "cgroup", "cgroup",
                                      "nosuid,noexec,nodev,relatime,"
                                      "ro"));
  json_array_append_new (ns, json_pack ("{s:s}", "type", "pid"));
  if (!rootless)
    json_array_append_new (ns, json_pack ("{s:s}", "type", "network"));
  json_array_append_new (ns, json_pack ("{s:s}", "type", "ipc"));
  json_array_append_new (ns, json_pack ("{s:s}", "type", "uts"));
  json_array_append_new (ns, json_pack ("{s:s}", "type", "mount"));
  json_array_append_new (ns, json_pack ("{s:s}", "type", "cgroup"));
  if (rootless)
    json_array_append_new (ns, json_pack ("{s:s}", "type", "user"));
  lx = json_pack ("{s:o,s:o,s:o}", "namespaces", ns, "maskedPaths",
                  strings (masked, ARRAY_SIZE (masked)), "readonlyPaths",
                  strings (ro, ARRAY_SIZE (ro)));
  if (rootless)
    {
      json_object_set_new (lx, "uidMappings",
                           json_pack ("[{s:i,s:i,s:i}]", "containerID", 0,
                                      "hostID", (int) getuid (), "size", 1));
      json_object_set_new (lx, "gidMappings",
                           json_pack ("[{s:i,s:i,s:i}]", "containerID", 0,
                                      "hostID", (int) getgid (), "size", 1));
    }
  else
    json_object_set_new (
        lx, "resources",
        json_pack ("{s:[{s:b,s:s}]}", "devices", "allow", 0, "access", "rwm"));
  spec = json_pack (
      "{s:s,s:{s:b,s:{s:i,s:i},s:[s],s:[s,s],s:s,s:{s:o,s:o,s:o},"
      "s:[{s:s,s:i,s:i}],s:b},s:{s:s,s:b},s:s,s:o,s:o}",
      "ociVersion", "1.2.0", "process", "terminal", 1, "user", "uid", 0, "gid",
      0, "args", "sh", "env",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm", "cwd", "/", "capabilities", "bounding", strings (caps, 3),
      "effective", strings (caps, 3), "permitted", strings (caps, 3), "rlimits",
      "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024, "noNewPrivileges", 1,
      "root", "path", "rootfs", "readonly", 1, "hostname", "berth", "mounts",
      mounts, "linux", lx);
  return spec;
}

int
cmd_spec (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const struct option opts[]
      = { { "bundle", required_argument, NULL, 'b' },
          { "rootless", no_argument, NULL, 'r' },
          { NULL, 0, NULL, 0 } };
  cleanup_json json_t *spec = NULL;
  cleanup_free char *path = NULL, *data = NULL;
  cleanup_close int fd = -1;
  const char *bundle = ".";
  bool rootless = false;
  int c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+b:", opts, NULL)) != -1)
    {
      if (c == 'b')
        bundle = optarg;
      else if (c == 'r')
        rootless = true;
      else
        return berth_make_invalid (err, "unknown option `%s`",
                                   argv[optind - 1]);
    }
  spec = default_spec (rootless);
  data = bjson_dump (spec, true);
  xasprintf (&path, "%s/config.json", bundle);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      if (errno == EEXIST)
        return berth_make_error (err, 0, "File %s exists. Remove it first",
                                 path);
      return berth_make_error (err, errno, "create `%s`", path);
    }
  if (safe_write_all (fd, data, strlen (data)) < 0
      || safe_write_all (fd, "\n", 1) < 0)
    return berth_make_error (err, errno, "write `%s`", path);
  return 0;
}
