/* config.c - parse and validate an OCI runtime config.json. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>

#include "json.h"
#include "utils.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Capability names in number order (linux/capability.h). */
static const char *const cap_names[] = {
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
};

int
oci_cap_last (void)
{
  return (int) ARRAY_SIZE (cap_names) - 1;
}

int
oci_cap_from_name (const char *name)
{
  size_t i;
  for (i = 0; i < ARRAY_SIZE (cap_names); i++)
    if (strcasecmp (name, cap_names[i]) == 0)
      return (int) i;
  return -1;
}

const char *
oci_cap_name (int cap)
{
  if (cap < 0 || cap > oci_cap_last ())
    return NULL;
  return cap_names[cap];
}

static const struct
{
  const char *name;
  int resource;
} rlimit_names[] = {
  { "RLIMIT_AS", RLIMIT_AS },
  { "RLIMIT_CORE", RLIMIT_CORE },
  { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },
  { "RLIMIT_FSIZE", RLIMIT_FSIZE },
  { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
  { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
  { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },
  { "RLIMIT_NPROC", RLIMIT_NPROC },
  { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
  { "RLIMIT_RTTIME", RLIMIT_RTTIME },
  { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

static const char *const ns_names[OCI_NS_COUNT] = {
  [OCI_NS_USER] = "user",     [OCI_NS_PID] = "pid",   [OCI_NS_NET] = "network",
  [OCI_NS_IPC] = "ipc",       [OCI_NS_UTS] = "uts",   [OCI_NS_MOUNT] = "mount",
  [OCI_NS_CGROUP] = "cgroup", [OCI_NS_TIME] = "time",
};

static const int ns_flags[OCI_NS_COUNT] = {
  [OCI_NS_USER] = CLONE_NEWUSER,     [OCI_NS_PID] = CLONE_NEWPID,
  [OCI_NS_NET] = CLONE_NEWNET,       [OCI_NS_IPC] = CLONE_NEWIPC,
  [OCI_NS_UTS] = CLONE_NEWUTS,       [OCI_NS_MOUNT] = CLONE_NEWNS,
  [OCI_NS_CGROUP] = CLONE_NEWCGROUP, [OCI_NS_TIME] = CLONE_NEWTIME,
};

const char *
oci_ns_name (enum oci_ns_kind k)
{
  return ns_names[k];
}

int
oci_ns_clone_flag (enum oci_ns_kind k)
{
  return ns_flags[k];
}

/* Mount options.  FLAG set or cleared in flags; ATTR for the recursive
 * r* variants applied with mount_setattr(AT_RECURSIVE).  */
struct mount_opt
{
  const char *name;
  bool clear;
  unsigned long flag;
  uint64_t attr;
  bool attr_clear;
};

static const struct mount_opt mount_opts[] = {
  { "defaults", false, 0, 0, false },
  { "ro", false, MS_RDONLY, 0, false },
  { "rw", true, MS_RDONLY, 0, false },
  { "suid", true, MS_NOSUID, 0, false },
  { "nosuid", false, MS_NOSUID, 0, false },
  { "dev", true, MS_NODEV, 0, false },
  { "nodev", false, MS_NODEV, 0, false },
  { "exec", true, MS_NOEXEC, 0, false },
  { "noexec", false, MS_NOEXEC, 0, false },
  { "sync", false, MS_SYNCHRONOUS, 0, false },
  { "async", true, MS_SYNCHRONOUS, 0, false },
  { "dirsync", false, MS_DIRSYNC, 0, false },
  { "remount", false, MS_REMOUNT, 0, false },
  { "mand", false, MS_MANDLOCK, 0, false },
  { "nomand", true, MS_MANDLOCK, 0, false },
  { "atime", true, MS_NOATIME, 0, false },
  { "noatime", false, MS_NOATIME, 0, false },
  { "diratime", true, MS_NODIRATIME, 0, false },
  { "nodiratime", false, MS_NODIRATIME, 0, false },
  { "relatime", false, MS_RELATIME, 0, false },
  { "norelatime", true, MS_RELATIME, 0, false },
  { "strictatime", false, MS_STRICTATIME, 0, false },
  { "nostrictatime", true, MS_STRICTATIME, 0, false },
  { "nosymfollow", false, MS_NOSYMFOLLOW, 0, false },
  { "symfollow", true, MS_NOSYMFOLLOW, 0, false },
  { "lazytime", false, MS_LAZYTIME, 0, false },
  { "nolazytime", true, MS_LAZYTIME, 0, false },
  { "silent", false, MS_SILENT, 0, false },
  { "loud", true, MS_SILENT, 0, false },
  { "rro", false, 0, MOUNT_ATTR_RDONLY, false },
  { "rrw", false, 0, MOUNT_ATTR_RDONLY, true },
  { "rnosuid", false, 0, MOUNT_ATTR_NOSUID, false },
  { "rsuid", false, 0, MOUNT_ATTR_NOSUID, true },
  { "rnodev", false, 0, MOUNT_ATTR_NODEV, false },
  { "rdev", false, 0, MOUNT_ATTR_NODEV, true },
  { "rnoexec", false, 0, MOUNT_ATTR_NOEXEC, false },
  { "rexec", false, 0, MOUNT_ATTR_NOEXEC, true },
  { "rnodiratime", false, 0, MOUNT_ATTR_NODIRATIME, false },
  { "rdiratime", false, 0, MOUNT_ATTR_NODIRATIME, true },
  { "rnoatime", false, 0, MOUNT_ATTR_NOATIME, false },
  { "ratime", false, 0, MOUNT_ATTR__ATIME, true },
  { "rrelatime", false, 0, MOUNT_ATTR_RELATIME, false },
  { "rnorelatime", false, 0, MOUNT_ATTR_RELATIME, true },
  { "rstrictatime", false, 0, MOUNT_ATTR_STRICTATIME, false },
  { "rnosymfollow", false, 0, MOUNT_ATTR_NOSYMFOLLOW, false },
  { "rsymfollow", false, 0, MOUNT_ATTR_NOSYMFOLLOW, true },
};

static const struct
{
  const char *name;
  unsigned long flags;
} propagation_opts[] = {
  { "private", MS_PRIVATE },       { "rprivate", MS_PRIVATE | MS_REC },
  { "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
  { "slave", MS_SLAVE },           { "rslave", MS_SLAVE | MS_REC },
  { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

bool
oci_mount_apply_option (struct oci_mount *m, const char *opt)
{
  size_t i;

  if (strcmp (opt, "bind") == 0 || strcmp (opt, "rbind") == 0)
    {
      m->bind = true;
      m->rec = opt[0] == 'r';
      return true;
    }
  for (i = 0; i < ARRAY_SIZE (propagation_opts); i++)
    if (strcmp (opt, propagation_opts[i].name) == 0)
      {
        m->propagation = propagation_opts[i].flags;
        return true;
      }
  for (i = 0; i < ARRAY_SIZE (mount_opts); i++)
    {
      const struct mount_opt *o = &mount_opts[i];
      if (strcmp (opt, o->name) != 0)
        continue;
      if (o->attr)
        {
          if (o->attr_clear)
            {
              m->attr_clr |= o->attr;
              m->attr_set &= ~o->attr;
            }
          else
            {
              m->attr_set |= o->attr;
              m->attr_clr &= ~o->attr;
            }
        }
      else if (o->clear)
        {
          m->flags &= ~o->flag;
          m->clear |= o->flag;
        }
      else
        {
          m->flags |= o->flag;
          m->clear &= ~o->flag;
        }
      return true;
    }
  return false;
}

static int
parse_id_maps (json_t *arr, const char *path, struct oci_id_map **out,
               size_t *out_len, berth_error_t *err)
{
  size_t i;
  json_t *item;

  if (arr == NULL)
    return 0;
  *out = xmalloc0 (sizeof (**out) * (json_array_size (arr) + 1));
  *out_len = json_array_size (arr);
  json_array_foreach (arr, i, item)
  {
    char where[64];
    int64_t v;
    struct oci_id_map *m = &(*out)[i];
    snprintf (where, sizeof (where), "%s[%zu]", path, i);
    if (!json_is_object (item))
      return berth_make_invalid (err, "%s: expected an object", where);
    if (bjson_int_range (item, where, "containerID", 0, UINT32_MAX, &v, err)
        != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.containerID: missing", where);
    m->container_id = (uint32_t) v;
    if (bjson_int_range (item, where, "hostID", 0, UINT32_MAX, &v, err) != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.hostID: missing", where);
    m->host_id = (uint32_t) v;
    if (bjson_int_range (item, where, "size", 1, UINT32_MAX, &v, err) != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.size: missing", where);
    m->size = (uint32_t) v;
  }
  return 0;
}

static int
parse_mount (json_t *item, const char *where, struct oci_mount *m,
             berth_error_t *err)
{
  const char *s = NULL;
  char **opts = NULL;
  size_t i, dlen = 0;
  json_t *maps = NULL;
  char mpath[64];

  if (!json_is_object (item))
    return berth_make_invalid (err, "%s: expected an object", where);
  if (bjson_string (item, where, "destination", &s, err) != 1)
    return *err ? -EINVAL
                : berth_make_invalid (err, "%s.destination: missing", where);
  if (s[0] != '/')
    return berth_make_invalid (
        err, "%s.destination: `%s` is not an absolute path", where, s);
  m->destination = xstrdup (s);
  s = NULL;
  if (bjson_string (item, where, "type", &s, err) < 0)
    return -EINVAL;
  m->type = xstrdup (s ? s : "");
  s = NULL;
  if (bjson_string (item, where, "source", &s, err) < 0)
    return -EINVAL;
  m->source = s ? xstrdup (s) : NULL;
  if (bjson_strv (item, where, "options", &opts, err) < 0)
    return -EINVAL;
  m->options = opts ? opts : xmalloc0 (sizeof (char *));
  for (i = 0; m->options[i]; i++)
    {
      const char *o = m->options[i];
      if (strcmp (o, "idmap") == 0 || strcmp (o, "ridmap") == 0)
        continue;
      if (oci_mount_apply_option (m, o))
        continue;
      /* Not a flag: goes to the filesystem as data.  */
      m->data = xrealloc (m->data, dlen + strlen (o) + 2);
      if (dlen)
        m->data[dlen++] = ',';
      strcpy (m->data + dlen, o);
      dlen += strlen (o);
    }
  if (strcmp (m->type, "bind") == 0)
    m->bind = true;
  if (m->bind && m->source == NULL)
    return berth_make_invalid (err, "%s.source: missing for a bind mount",
                               where);
  snprintf (mpath, sizeof (mpath), "%s.uidMappings", where);
  if (bjson_array (item, where, "uidMappings", &maps, err) < 0
      || parse_id_maps (maps, mpath, &m->uid_map, &m->uid_map_len, err) < 0)
    return -EINVAL;
  maps = NULL;
  snprintf (mpath, sizeof (mpath), "%s.gidMappings", where);
  if (bjson_array (item, where, "gidMappings", &maps, err) < 0
      || parse_id_maps (maps, mpath, &m->gid_map, &m->gid_map_len, err) < 0)
    return -EINVAL;
  if (!m->bind && m->type[0] == '\0')
    return berth_make_invalid (err, "%s.type: missing for a non-bind mount",
                               where);
  return 0;
}

static int
parse_mounts (struct oci_config *cfg, berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;

  if (bjson_array (cfg->doc, "", "mounts", &arr, err) < 0)
    return -EINVAL;
  if (arr == NULL)
    return 0;
  cfg->mounts = xmalloc0 (sizeof (*cfg->mounts) * (json_array_size (arr) + 1));
  json_array_foreach (arr, i, item)
  {
    char where[32];
    snprintf (where, sizeof (where), "mounts[%zu]", i);
    cfg->mounts_len = i + 1;
    if (parse_mount (item, where, &cfg->mounts[i], err) < 0)
      return -EINVAL;
  }
  return 0;
}

static int
parse_cap_set (json_t *caps, const char *where, const char *key, uint64_t *mask,
               berth_error_t *err)
{
  cleanup_strv char **names = NULL;
  size_t i;

  if (bjson_strv (caps, where, key, &names, err) < 0)
    return -EINVAL;
  for (i = 0; names && names[i]; i++)
    {
      int c = oci_cap_from_name (names[i]);
      if (c < 0)
        return berth_make_invalid (err, "%s.%s: unknown capability `%s`", where,
                                   key, names[i]);
      *mask |= 1ull << c;
    }
  return 0;
}

static int
parse_caps (json_t *proc, const char *path, struct oci_caps *caps,
            berth_error_t *err)
{
  json_t *obj = NULL;
  char where[64];
  int r = bjson_object (proc, path, "capabilities", &obj, err);
  if (r <= 0)
    return r;
  snprintf (where, sizeof (where), "%s.capabilities", path);
  caps->present = true;
  if (parse_cap_set (obj, where, "bounding", &caps->bounding, err) < 0
      || parse_cap_set (obj, where, "effective", &caps->effective, err) < 0
      || parse_cap_set (obj, where, "permitted", &caps->permitted, err) < 0
      || parse_cap_set (obj, where, "inheritable", &caps->inheritable, err) < 0
      || parse_cap_set (obj, where, "ambient", &caps->ambient, err) < 0)
    return -EINVAL;
  return 0;
}

static int
parse_rlimits (json_t *proc, const char *path, struct oci_process *p,
               berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i, j;

  if (bjson_array (proc, path, "rlimits", &arr, err) <= 0)
    return *err ? -EINVAL : 0;
  p->rlimits = xmalloc0 (sizeof (*p->rlimits) * (json_array_size (arr) + 1));
  json_array_foreach (arr, i, item)
  {
    char where[64];
    const char *type = NULL;
    struct oci_rlimit *rl = &p->rlimits[i];
    snprintf (where, sizeof (where), "%s.rlimits[%zu]", path, i);
    p->rlimits_len = i + 1;
    if (bjson_string (item, where, "type", &type, err) != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.type: missing", where);
    rl->resource = -1;
    for (j = 0; j < ARRAY_SIZE (rlimit_names); j++)
      if (strcmp (type, rlimit_names[j].name) == 0)
        rl->resource = rlimit_names[j].resource;
    if (rl->resource < 0)
      return berth_make_invalid (err, "%s.type: unknown rlimit `%s`", where,
                                 type);
    rl->name = xstrdup (type);
    if (bjson_uint64 (item, where, "soft", &rl->soft, err) < 0
        || bjson_uint64 (item, where, "hard", &rl->hard, err) < 0)
      return -EINVAL;
    if (rl->soft > rl->hard)
      return berth_make_invalid (
          err, "%s: soft limit %llu exceeds hard limit %llu", where,
          (unsigned long long) rl->soft, (unsigned long long) rl->hard);
  }
  return 0;
}

static const struct
{
  const char *name;
  int value;
} sched_policies[] = {
  { "SCHED_OTHER", 0 },    { "SCHED_FIFO", 1 }, { "SCHED_RR", 2 },
  { "SCHED_BATCH", 3 },    { "SCHED_ISO", 4 },  { "SCHED_IDLE", 5 },
  { "SCHED_DEADLINE", 6 },
};

static const struct
{
  const char *name;
  uint64_t value;
} sched_flag_names[] = {
  { "SCHED_FLAG_RESET_ON_FORK", 0x01 },  { "SCHED_FLAG_RECLAIM", 0x02 },
  { "SCHED_FLAG_DL_OVERRUN", 0x04 },     { "SCHED_FLAG_KEEP_POLICY", 0x08 },
  { "SCHED_FLAG_KEEP_PARAMS", 0x10 },    { "SCHED_FLAG_UTIL_CLAMP_MIN", 0x20 },
  { "SCHED_FLAG_UTIL_CLAMP_MAX", 0x40 },
};

static int
parse_scheduler (json_t *proc, const char *path, struct oci_process *p,
                 berth_error_t *err)
{
  json_t *s = NULL;
  const char *policy = NULL;
  cleanup_strv char **flags = NULL;
  char where[64];
  int64_t v;
  size_t i, j;
  bool found = false;

  if (bjson_object (proc, path, "scheduler", &s, err) <= 0)
    return *err ? -EINVAL : 0;
  snprintf (where, sizeof (where), "%s.scheduler", path);
  p->has_scheduler = true;
  if (bjson_string (s, where, "policy", &policy, err) != 1)
    return *err ? -EINVAL
                : berth_make_invalid (err, "%s.policy: missing", where);
  for (i = 0; i < ARRAY_SIZE (sched_policies); i++)
    if (strcmp (policy, sched_policies[i].name) == 0)
      {
        p->sched_policy = sched_policies[i].value;
        found = true;
      }
  if (!found || p->sched_policy == 4)
    return berth_make_invalid (err, "%s.policy: unsupported policy `%s`", where,
                               policy);
  v = 0;
  if (bjson_int_range (s, where, "nice", -20, 19, &v, err) < 0)
    return -EINVAL;
  p->sched_nice = (int) v;
  v = 0;
  if (bjson_int_range (s, where, "priority", 0, 99, &v, err) < 0)
    return -EINVAL;
  p->sched_priority = (int) v;
  if (bjson_uint64 (s, where, "runtime", &p->sched_runtime, err) < 0
      || bjson_uint64 (s, where, "deadline", &p->sched_deadline, err) < 0
      || bjson_uint64 (s, where, "period", &p->sched_period, err) < 0
      || bjson_strv (s, where, "flags", &flags, err) < 0)
    return -EINVAL;
  for (i = 0; flags && flags[i]; i++)
    {
      found = false;
      for (j = 0; j < ARRAY_SIZE (sched_flag_names); j++)
        if (strcmp (flags[i], sched_flag_names[j].name) == 0)
          {
            p->sched_flags |= sched_flag_names[j].value;
            found = true;
          }
      if (!found)
        return berth_make_invalid (err, "%s.flags: unknown flag `%s`", where,
                                   flags[i]);
    }
  return 0;
}

static int
parse_io_priority (json_t *proc, const char *path, struct oci_process *p,
                   berth_error_t *err)
{
  json_t *o = NULL;
  const char *cls = NULL;
  char where[64];
  int64_t v = 0;

  if (bjson_object (proc, path, "ioPriority", &o, err) <= 0)
    return *err ? -EINVAL : 0;
  snprintf (where, sizeof (where), "%s.ioPriority", path);
  if (bjson_string (o, where, "class", &cls, err) != 1)
    return *err ? -EINVAL
                : berth_make_invalid (err, "%s.class: missing", where);
  if (strcmp (cls, "IOPRIO_CLASS_RT") == 0)
    p->io_class = 1;
  else if (strcmp (cls, "IOPRIO_CLASS_BE") == 0)
    p->io_class = 2;
  else if (strcmp (cls, "IOPRIO_CLASS_IDLE") == 0)
    p->io_class = 3;
  else
    return berth_make_invalid (err, "%s.class: unknown class `%s`", where, cls);
  if (bjson_int_range (o, where, "priority", 0, 7, &v, err) < 0)
    return -EINVAL;
  p->io_priority = (int) v;
  p->has_io_priority = true;
  return 0;
}

static int
parse_user (json_t *proc, const char *path, struct oci_process *p,
            berth_error_t *err)
{
  json_t *user = NULL, *gids = NULL, *item;
  char where[64];
  int64_t v;
  size_t i;

  snprintf (where, sizeof (where), "%s.user", path);
  if (bjson_object (proc, path, "user", &user, err) < 0)
    return -EINVAL;
  p->umask = -1;
  if (user == NULL)
    return 0;
  v = 0;
  if (bjson_int_range (user, where, "uid", 0, UINT32_MAX, &v, err) < 0)
    return -EINVAL;
  p->uid = (uint32_t) v;
  v = 0;
  if (bjson_int_range (user, where, "gid", 0, UINT32_MAX, &v, err) < 0)
    return -EINVAL;
  p->gid = (uint32_t) v;
  if (bjson_int_range (user, where, "umask", 0, 0777, &p->umask, err) < 0)
    return -EINVAL;
  if (bjson_string (user, where, "username", &(const char *){ NULL }, err) < 0)
    return -EINVAL;
  if (bjson_array (user, where, "additionalGids", &gids, err) < 0)
    return -EINVAL;
  if (gids == NULL)
    return 0;
  p->additional_gids
      = xmalloc0 (sizeof (uint32_t) * (json_array_size (gids) + 1));
  json_array_foreach (gids, i, item)
  {
    if (!json_is_integer (item) || json_integer_value (item) < 0
        || json_integer_value (item) > UINT32_MAX)
      return berth_make_invalid (err, "%s.additionalGids[%zu]: expected a gid",
                                 where, i);
    p->additional_gids[i] = (uint32_t) json_integer_value (item);
  }
  p->additional_gids_len = json_array_size (gids);
  return 0;
}

static int
parse_process_strings (json_t *obj, const char *path, struct oci_process *p,
                       berth_error_t *err)
{
  const char *s = NULL;
  json_t *box = NULL;
  char where[64];
  int64_t v;

  if (bjson_bool (obj, path, "terminal", &p->terminal, err) < 0)
    return -EINVAL;
  if (bjson_object (obj, path, "consoleSize", &box, err) < 0)
    return -EINVAL;
  if (box)
    {
      snprintf (where, sizeof (where), "%s.consoleSize", path);
      v = 0;
      if (bjson_int_range (box, where, "height", 0, 65535, &v, err) < 0)
        return -EINVAL;
      p->console_height = (uint32_t) v;
      v = 0;
      if (bjson_int_range (box, where, "width", 0, 65535, &v, err) < 0)
        return -EINVAL;
      p->console_width = (uint32_t) v;
    }
  if (bjson_string (obj, path, "cwd", &s, err) < 0)
    return -EINVAL;
  if (s && s[0] != '/')
    return berth_make_invalid (err, "%s.cwd: `%s` is not an absolute path",
                               path, s);
  p->cwd = xstrdup (s ? s : "/");
  if (bjson_strv (obj, path, "args", &p->args, err) < 0
      || bjson_strv (obj, path, "env", &p->env, err) < 0)
    return -EINVAL;
  s = NULL;
  if (bjson_string (obj, path, "commandLine", &s, err) < 0)
    return -EINVAL;
  if (s)
    return berth_make_invalid (err, "%s.commandLine: only supported on Windows",
                               path);
  if (p->args == NULL || p->args[0] == NULL)
    return berth_make_invalid (err, "%s.args: must not be empty", path);
  if (p->env == NULL)
    p->env = xmalloc0 (sizeof (char *));
  s = NULL;
  if (bjson_string (obj, path, "apparmorProfile", &s, err) < 0)
    return -EINVAL;
  p->apparmor_profile = s && *s ? xstrdup (s) : NULL;
  s = NULL;
  if (bjson_string (obj, path, "selinuxLabel", &s, err) < 0)
    return -EINVAL;
  p->selinux_label = s && *s ? xstrdup (s) : NULL;
  return 0;
}

static int
parse_cpu_affinity (json_t *obj, const char *path, struct oci_process *p,
                    berth_error_t *err)
{
  json_t *a = NULL;
  const char *s = NULL;
  char where[64];
  if (bjson_object (obj, path, "execCPUAffinity", &a, err) <= 0)
    return *err ? -EINVAL : 0;
  snprintf (where, sizeof (where), "%s.execCPUAffinity", path);
  if (bjson_string (a, where, "initial", &s, err) < 0)
    return -EINVAL;
  p->cpu_affinity_initial = s ? xstrdup (s) : NULL;
  s = NULL;
  if (bjson_string (a, where, "final", &s, err) < 0)
    return -EINVAL;
  p->cpu_affinity_final = s ? xstrdup (s) : NULL;
  return 0;
}

int
oci_process_parse (json_t *obj, const char *path, struct oci_process **out,
                   berth_error_t *err)
{
  cleanup_oci_process struct oci_process *p = xmalloc0 (sizeof (*p));
  int64_t v = 0;

  if (!json_is_object (obj))
    return berth_make_invalid (err, "%s: expected an object", path);
  if (parse_process_strings (obj, path, p, err) < 0
      || parse_user (obj, path, p, err) < 0
      || parse_caps (obj, path, &p->caps, err) < 0
      || parse_rlimits (obj, path, p, err) < 0
      || parse_scheduler (obj, path, p, err) < 0
      || parse_io_priority (obj, path, p, err) < 0
      || parse_cpu_affinity (obj, path, p, err) < 0
      || bjson_bool (obj, path, "noNewPrivileges", &p->no_new_privileges, err)
             < 0)
    return -EINVAL;
  if (bjson_int_range (obj, path, "oomScoreAdj", -1000, 1000, &v, err) < 0)
    return -EINVAL;
  if (json_object_get (obj, "oomScoreAdj")
      && !json_is_null (json_object_get (obj, "oomScoreAdj")))
    {
      p->has_oom_score_adj = true;
      p->oom_score_adj = v;
    }
  *out = steal_pointer (&p);
  return 0;
}

static int
parse_hooks (struct oci_config *cfg, berth_error_t *err)
{
  static const char *const names[OCI_HOOK_COUNT]
      = { "prestart",       "createRuntime", "createContainer",
          "startContainer", "poststart",     "poststop" };
  json_t *hooks = NULL, *arr, *item;
  size_t k, i;

  if (bjson_object (cfg->doc, "", "hooks", &hooks, err) <= 0)
    return *err ? -EINVAL : 0;
  for (k = 0; k < OCI_HOOK_COUNT; k++)
    {
      arr = NULL;
      if (bjson_array (hooks, "hooks", names[k], &arr, err) < 0)
        return -EINVAL;
      if (arr == NULL)
        continue;
      cfg->hooks[k].list
          = xmalloc0 (sizeof (struct oci_hook) * (json_array_size (arr) + 1));
      json_array_foreach (arr, i, item)
      {
        char where[64];
        const char *p = NULL;
        int64_t t = 0;
        struct oci_hook *h = &cfg->hooks[k].list[i];
        snprintf (where, sizeof (where), "hooks.%s[%zu]", names[k], i);
        cfg->hooks[k].len = i + 1;
        if (bjson_string (item, where, "path", &p, err) != 1)
          return *err ? -EINVAL
                      : berth_make_invalid (err, "%s.path: missing", where);
        if (p[0] != '/')
          return berth_make_invalid (
              err, "%s.path: `%s` is not an absolute path", where, p);
        h->path = xstrdup (p);
        if (bjson_strv (item, where, "args", &h->args, err) < 0
            || bjson_strv (item, where, "env", &h->env, err) < 0
            || bjson_int_range (item, where, "timeout", 1, INT_MAX, &t, err)
                   < 0)
          return -EINVAL;
        h->timeout = (int) t;
      }
    }
  return 0;
}

static int
parse_namespaces (struct oci_config *cfg, json_t *linux_obj, berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;
  int k;

  if (bjson_array (linux_obj, "linux", "namespaces", &arr, err) <= 0)
    return *err ? -EINVAL : 0;
  json_array_foreach (arr, i, item)
  {
    char where[48];
    const char *type = NULL, *path = NULL;
    snprintf (where, sizeof (where), "linux.namespaces[%zu]", i);
    if (bjson_string (item, where, "type", &type, err) != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.type: missing", where);
    for (k = 0; k < OCI_NS_COUNT; k++)
      if (strcmp (type, ns_names[k]) == 0)
        break;
    if (k == OCI_NS_COUNT)
      return berth_make_invalid (err, "%s.type: unknown namespace `%s`", where,
                                 type);
    if (cfg->ns[k].present)
      return berth_make_invalid (err, "%s.type: namespace `%s` listed twice",
                                 where, type);
    if (bjson_string (item, where, "path", &path, err) < 0)
      return -EINVAL;
    cfg->ns[k].present = true;
    cfg->ns[k].path = path && *path ? xstrdup (path) : NULL;
  }
  return 0;
}

static int
parse_devices (struct oci_config *cfg, json_t *linux_obj, berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;

  if (bjson_array (linux_obj, "linux", "devices", &arr, err) <= 0)
    return *err ? -EINVAL : 0;
  cfg->devices
      = xmalloc0 (sizeof (*cfg->devices) * (json_array_size (arr) + 1));
  json_array_foreach (arr, i, item)
  {
    char where[48];
    const char *s = NULL;
    int64_t v = 0;
    struct oci_device *d = &cfg->devices[i];
    snprintf (where, sizeof (where), "linux.devices[%zu]", i);
    cfg->devices_len = i + 1;
    if (bjson_string (item, where, "path", &s, err) != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.path: missing", where);
    if (s[0] != '/')
      return berth_make_invalid (err, "%s.path: `%s` is not an absolute path",
                                 where, s);
    d->path = xstrdup (s);
    s = NULL;
    if (bjson_string (item, where, "type", &s, err) != 1)
      return *err ? -EINVAL
                  : berth_make_invalid (err, "%s.type: missing", where);
    if (strlen (s) != 1 || strchr ("cbup", s[0]) == NULL)
      return berth_make_invalid (err, "%s.type: unknown type `%s`", where, s);
    d->type = s[0];
    {
      int has_major = bjson_int64 (item, where, "major", &d->major, err);
      int has_minor = bjson_int64 (item, where, "minor", &d->minor, err);
      if (has_major < 0 || has_minor < 0)
        return -EINVAL;
      /* A null counts as missing, like an absent key.  */
      if (d->type != 'p' && (has_major == 0 || has_minor == 0))
        return berth_make_invalid (err,
                                   "%s: major and minor are required for type "
                                   "%c",
                                   where, d->type);
    }
    if ((d->has_mode
         = bjson_int_range (item, where, "fileMode", 0, 07777, &v, err) == 1))
      d->file_mode = (uint32_t) v;
    if (*err)
      return -EINVAL;
    if ((d->has_uid
         = bjson_int_range (item, where, "uid", 0, UINT32_MAX, &v, err) == 1))
      d->uid = (uint32_t) v;
    if ((d->has_gid
         = bjson_int_range (item, where, "gid", 0, UINT32_MAX, &v, err) == 1))
      d->gid = (uint32_t) v;
    if (*err)
      return -EINVAL;
  }
  return 0;
}

static int
parse_sysctl (struct oci_config *cfg, json_t *linux_obj, berth_error_t *err)
{
  json_t *obj = NULL, *v;
  const char *key;
  size_t i = 0;

  if (bjson_object (linux_obj, "linux", "sysctl", &obj, err) <= 0)
    return *err ? -EINVAL : 0;
  cfg->sysctl = xmalloc0 (sizeof (*cfg->sysctl) * (json_object_size (obj) + 1));
  json_object_foreach (obj, key, v)
  {
    if (!json_is_string (v))
      return berth_make_invalid (err, "linux.sysctl.%s: expected a string",
                                 key);
    if (strstr (key, "..") || key[0] == '/' || key[0] == '.' || key[0] == '\0')
      return berth_make_invalid (err, "linux.sysctl: invalid key `%s`", key);
    cfg->sysctl[i].key = xstrdup (key);
    cfg->sysctl[i].value = xstrdup (json_string_value (v));
    cfg->sysctl_len = ++i;
  }
  return 0;
}

static int
parse_time_and_personality (struct oci_config *cfg, json_t *linux_obj,
                            berth_error_t *err)
{
  json_t *obj = NULL, *sub;
  const char *dom = NULL;
  int64_t v;

  if (bjson_object (linux_obj, "linux", "personality", &obj, err) < 0)
    return -EINVAL;
  if (obj)
    {
      if (bjson_string (obj, "linux.personality", "domain", &dom, err) != 1)
        return *err ? -EINVAL
                    : berth_make_invalid (err,
                                          "linux.personality.domain: missing");
      if (strcmp (dom, "LINUX") == 0)
        cfg->personality = PER_LINUX;
      else if (strcmp (dom, "LINUX32") == 0)
        cfg->personality = PER_LINUX32;
      else
        return berth_make_invalid (
            err, "linux.personality.domain: unknown domain `%s`", dom);
      cfg->has_personality = true;
    }
  obj = NULL;
  if (bjson_object (linux_obj, "linux", "timeOffsets", &obj, err) <= 0)
    return *err ? -EINVAL : 0;
  cfg->has_time_offsets = true;
  sub = NULL;
  if (bjson_object (obj, "linux.timeOffsets", "boottime", &sub, err) < 0)
    return -EINVAL;
  if (sub)
    {
      v = 0;
      if (bjson_int64 (sub, "linux.timeOffsets.boottime", "secs",
                       &cfg->boottime_secs, err)
              < 0
          || bjson_int_range (sub, "linux.timeOffsets.boottime", "nanosecs", 0,
                              999999999, &v, err)
                 < 0)
        return -EINVAL;
      cfg->boottime_nanosecs = (uint32_t) v;
    }
  sub = NULL;
  if (bjson_object (obj, "linux.timeOffsets", "monotonic", &sub, err) < 0)
    return -EINVAL;
  if (sub)
    {
      v = 0;
      if (bjson_int64 (sub, "linux.timeOffsets.monotonic", "secs",
                       &cfg->monotonic_secs, err)
              < 0
          || bjson_int_range (sub, "linux.timeOffsets.monotonic", "nanosecs", 0,
                              999999999, &v, err)
                 < 0)
        return -EINVAL;
      cfg->monotonic_nanosecs = (uint32_t) v;
    }
  return 0;
}

static int
parse_linux (struct oci_config *cfg, berth_error_t *err)
{
  json_t *lx = NULL, *maps = NULL, *tmp = NULL;
  const char *s = NULL;
  size_t i;

  if (bjson_object (cfg->doc, "", "linux", &lx, err) < 0)
    return -EINVAL;
  if (lx == NULL)
    return 0;
  if (parse_namespaces (cfg, lx, err) < 0)
    return -EINVAL;
  if (bjson_array (lx, "linux", "uidMappings", &maps, err) < 0
      || parse_id_maps (maps, "linux.uidMappings", &cfg->uid_mappings,
                        &cfg->uid_mappings_len, err)
             < 0)
    return -EINVAL;
  maps = NULL;
  if (bjson_array (lx, "linux", "gidMappings", &maps, err) < 0
      || parse_id_maps (maps, "linux.gidMappings", &cfg->gid_mappings,
                        &cfg->gid_mappings_len, err)
             < 0)
    return -EINVAL;
  if (parse_devices (cfg, lx, err) < 0 || parse_sysctl (cfg, lx, err) < 0
      || parse_time_and_personality (cfg, lx, err) < 0)
    return -EINVAL;
  if (bjson_string (lx, "linux", "cgroupsPath", &s, err) < 0)
    return -EINVAL;
  cfg->cgroups_path = s && *s ? xstrdup (s) : NULL;
  if (bjson_object (lx, "linux", "resources", &cfg->resources, err) < 0
      || bjson_object (lx, "linux", "seccomp", &cfg->seccomp, err) < 0
      || bjson_strv (lx, "linux", "maskedPaths", &cfg->masked_paths, err) < 0
      || bjson_strv (lx, "linux", "readonlyPaths", &cfg->readonly_paths, err)
             < 0)
    return -EINVAL;
  s = NULL;
  if (bjson_string (lx, "linux", "rootfsPropagation", &s, err) < 0)
    return -EINVAL;
  if (s && *s)
    {
      for (i = 0; i < ARRAY_SIZE (propagation_opts); i++)
        if (strcmp (s, propagation_opts[i].name) == 0)
          cfg->rootfs_propagation = propagation_opts[i].flags;
      if (cfg->rootfs_propagation == 0)
        return berth_make_invalid (
            err, "linux.rootfsPropagation: unknown value `%s`", s);
    }
  s = NULL;
  if (bjson_string (lx, "linux", "mountLabel", &s, err) < 0)
    return -EINVAL;
  cfg->mount_label = s && *s ? xstrdup (s) : NULL;
  if (bjson_object (lx, "linux", "intelRdt", &tmp, err) < 0)
    return -EINVAL;
  cfg->has_intel_rdt = tmp != NULL;
  if (cfg->ns[OCI_NS_USER].present && !cfg->ns[OCI_NS_USER].path
      && (cfg->uid_mappings_len == 0 || cfg->gid_mappings_len == 0))
    return berth_make_invalid (
        err, "linux.uidMappings/gidMappings: required for a new "
             "user namespace");
  return 0;
}

static int
parse_top (struct oci_config *cfg, berth_error_t *err)
{
  json_t *root = NULL, *proc = NULL;
  const char *s = NULL;

  if (!json_is_object (cfg->doc))
    return berth_make_invalid (err, "config: expected a JSON object");
  if (bjson_string (cfg->doc, "", "ociVersion", &s, err) != 1)
    return *err ? -EINVAL : berth_make_invalid (err, "ociVersion: missing");
  if (strncmp (s, "1.", 2) != 0)
    return berth_make_invalid (err, "ociVersion: unsupported version `%s`", s);
  cfg->oci_version = xstrdup (s);
  if (bjson_object (cfg->doc, "", "root", &root, err) < 0)
    return -EINVAL;
  s = NULL;
  if (root && bjson_string (root, "root", "path", &s, err) < 0)
    return -EINVAL;
  if (root == NULL || s == NULL || *s == '\0')
    return berth_make_invalid (err, "root.path: missing");
  cfg->root_path = xstrdup (s);
  if (bjson_bool (root, "root", "readonly", &cfg->root_readonly, err) < 0)
    return -EINVAL;
  s = NULL;
  if (bjson_string (cfg->doc, "", "hostname", &s, err) < 0)
    return -EINVAL;
  /* An empty name means "leave it alone", as in runc: it needs no uts
   * namespace and must never reach sethostname().  */
  cfg->hostname = s && *s ? xstrdup (s) : NULL;
  s = NULL;
  if (bjson_string (cfg->doc, "", "domainname", &s, err) < 0)
    return -EINVAL;
  cfg->domainname = s && *s ? xstrdup (s) : NULL;
  if (bjson_object (cfg->doc, "", "annotations", &cfg->annotations, err) < 0)
    return -EINVAL;
  if (bjson_object (cfg->doc, "", "process", &proc, err) < 0)
    return -EINVAL;
  if (proc && oci_process_parse (proc, "process", &cfg->process, err) < 0)
    return -EINVAL;
  return 0;
}

int
oci_config_parse (const char *data, size_t len, const char *source,
                  struct oci_config **out, berth_error_t *err)
{
  cleanup_oci_config struct oci_config *cfg = xmalloc0 (sizeof (*cfg));

  if (bjson_parse (data, len, source, &cfg->doc, err) < 0)
    return -EINVAL;
  if (parse_top (cfg, err) < 0 || parse_mounts (cfg, err) < 0
      || parse_hooks (cfg, err) < 0 || parse_linux (cfg, err) < 0)
    return berth_error_wrap (err, "%s", source);
  if ((cfg->hostname || cfg->domainname) && !cfg->ns[OCI_NS_UTS].present)
    return berth_make_invalid (
        err, "%s: hostname/domainname need a new uts namespace", source);
  if (cfg->has_time_offsets
      && (!cfg->ns[OCI_NS_TIME].present || cfg->ns[OCI_NS_TIME].path))
    return berth_make_invalid (
        err, "%s: linux.timeOffsets need a new time namespace", source);
  *out = steal_pointer (&cfg);
  return 0;
}

int
oci_config_load_bundle (const char *bundle, struct oci_config **out,
                        berth_error_t *err)
{
  cleanup_free char *path = NULL, *data = NULL;
  size_t len = 0;
  struct oci_config *cfg = NULL;

  xasprintf (&path, "%s/config.json", bundle);
  if (read_file (path, 16 << 20, &data, &len, err) < 0)
    return -EINVAL;
  if (oci_config_parse (data, len, path, &cfg, err) < 0)
    return -EINVAL;
  if (cfg->root_path[0] != '/')
    {
      char *abs = NULL;
      xasprintf (&abs, "%s/%s", bundle, cfg->root_path);
      free (cfg->root_path);
      cfg->root_path = abs;
    }
  *out = cfg;
  return 0;
}

void
oci_process_free (struct oci_process *p)
{
  size_t i;
  if (p == NULL)
    return;
  free (p->cwd);
  strv_free (p->args);
  strv_free (p->env);
  free (p->additional_gids);
  for (i = 0; i < p->rlimits_len; i++)
    free (p->rlimits[i].name);
  free (p->rlimits);
  free (p->apparmor_profile);
  free (p->selinux_label);
  free (p->cpu_affinity_initial);
  free (p->cpu_affinity_final);
  free (p);
}

static void
free_mount (struct oci_mount *m)
{
  free (m->destination);
  free (m->type);
  free (m->source);
  strv_free (m->options);
  free (m->data);
  free (m->uid_map);
  free (m->gid_map);
}

void
oci_config_free (struct oci_config *cfg)
{
  size_t i, k;
  if (cfg == NULL)
    return;
  free (cfg->oci_version);
  free (cfg->root_path);
  free (cfg->hostname);
  free (cfg->domainname);
  oci_process_free (cfg->process);
  for (i = 0; i < cfg->mounts_len; i++)
    free_mount (&cfg->mounts[i]);
  free (cfg->mounts);
  for (k = 0; k < OCI_HOOK_COUNT; k++)
    {
      for (i = 0; i < cfg->hooks[k].len; i++)
        {
          free (cfg->hooks[k].list[i].path);
          strv_free (cfg->hooks[k].list[i].args);
          strv_free (cfg->hooks[k].list[i].env);
        }
      free (cfg->hooks[k].list);
    }
  for (k = 0; k < OCI_NS_COUNT; k++)
    free (cfg->ns[k].path);
  free (cfg->uid_mappings);
  free (cfg->gid_mappings);
  for (i = 0; i < cfg->devices_len; i++)
    free (cfg->devices[i].path);
  free (cfg->devices);
  free (cfg->cgroups_path);
  for (i = 0; i < cfg->sysctl_len; i++)
    {
      free (cfg->sysctl[i].key);
      free (cfg->sysctl[i].value);
    }
  free (cfg->sysctl);
  strv_free (cfg->masked_paths);
  strv_free (cfg->readonly_paths);
  free (cfg->mount_label);
  if (cfg->doc)
    json_decref (cfg->doc);
  free (cfg);
}

void
cleanup_oci_configp (struct oci_config **p)
{
  oci_config_free (*p);
  *p = NULL;
}

void
cleanup_oci_processp (struct oci_process **p)
{
  oci_process_free (*p);
  *p = NULL;
}
