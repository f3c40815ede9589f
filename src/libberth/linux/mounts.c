/* mounts.c - see mounts.h.  */
#include "linux/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "linux/safe_open.h"
#include "oci/config.h"
#include "utils.h"

/* The new mount API is called through syscall(2): glibc only wraps it from
 * 2.36 on, and its constants come from the kernel ABI, not from libc.  */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef MOUNT_ATTR_NOEXEC
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef MOUNT_ATTR__ATIME
#define MOUNT_ATTR__ATIME 0x00000070
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_ROOT "/sys/fs/cgroup"

/* Same layout as the kernel's struct mount_attr (MOUNT_ATTR_SIZE_VER0).  */
struct berth_mount_attr
{
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static int
sys_open_tree (int dfd, const char *path, unsigned int flags)
{
  return (int) syscall (SYS_open_tree, dfd, path, flags);
}

static int
sys_move_mount (int from_dfd, const char *from, int to_dfd, const char *to,
                unsigned int flags)
{
  return (int) syscall (SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

static int
sys_mount_setattr (int dfd, const char *path, unsigned int flags,
                   struct berth_mount_attr *attr)
{
  return (int) syscall (SYS_mount_setattr, dfd, path, flags, attr,
                        sizeof (*attr));
}

/* What we need to know while working on one rootfs.  */
struct rootfs_ctx
{
  const struct linux_rootfs_opts *o;
  const struct oci_config *cfg;
  const char *root; /* for messages: the rootfs path, "/" after the pivot */
  int rootfd;       /* O_PATH on it */
  size_t index;     /* of the cfg->mounts entry being mounted */
};

/* Lexically clean an absolute container path: "//dev/./pts/" -> "/dev/pts",
 * ".." never above "/".  Used to compare destinations, never to open.  */
static char *
clean_path (const char *path)
{
  char *out = xmalloc (strlen (path) + 2);
  size_t len = 0;
  const char *p = path;

  while (*p)
    {
      const char *end;
      size_t n;

      while (*p == '/')
        p++;
      end = strchrnul (p, '/');
      n = (size_t) (end - p);
      if (n == 0 || (n == 1 && p[0] == '.'))
        ;
      else if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          while (len > 0 && out[len - 1] != '/')
            len--;
          if (len > 0)
            len--;
        }
      else
        {
          out[len++] = '/';
          memcpy (out + len, p, n);
          len += n;
        }
      p = end;
    }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  return out;
}

static int
do_mount (const char *source, const char *dest, const char *target,
          const char *type, unsigned long flags, const void *data,
          berth_error_t *err)
{
  if (mount (source, target, type, flags, data) < 0)
    return berth_make_error (err, errno, "mount `%s` on `%s` (type `%s`)",
                             source ? source : "none", dest,
                             type ? type : "bind");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* /proc/self/mountinfo                                                    */

struct mnt_entry
{
  int id, parent;
  bool shared;
  char *root, *target, *fstype, *source, *super_opts;
};

struct mountinfo
{
  char *buf;
  struct mnt_entry *v;
  size_t len;
};

static void
mountinfo_release (struct mountinfo *mi)
{
  free (mi->buf);
  free (mi->v);
  mi->buf = NULL;
  mi->v = NULL;
  mi->len = 0;
}

#define cleanup_mountinfo __attribute__ ((cleanup (mountinfo_release)))

/* The kernel escapes space, tab, newline and backslash as \ooo.  */
static void
unescape_octal (char *s)
{
  char *w = s;

  for (; *s; s++)
    {
      if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0'
          && s[2] <= '7' && s[3] >= '0' && s[3] <= '7')
        {
          *w++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3)
                         | (s[3] - '0'));
          s += 3;
        }
      else
        *w++ = *s;
    }
  *w = '\0';
}

static bool
parse_mountinfo_line (char *line, struct mnt_entry *e)
{
  char *save = NULL, *f[5], *tok;
  int i;

  for (i = 0; i < 5; i++)
    if ((f[i] = strtok_r (i ? NULL : line, " ", &save)) == NULL)
      return false;
  e->id = atoi (f[0]);
  e->parent = atoi (f[1]);
  e->root = f[3];
  e->target = f[4];
  e->shared = false;
  if (strtok_r (NULL, " ", &save) == NULL) /* per-mount options */
    return false;
  while ((tok = strtok_r (NULL, " ", &save)) && strcmp (tok, "-") != 0)
    if (strncmp (tok, "shared:", 7) == 0)
      e->shared = true;
  if (tok == NULL || (e->fstype = strtok_r (NULL, " ", &save)) == NULL
      || (e->source = strtok_r (NULL, " ", &save)) == NULL)
    return false;
  e->super_opts = strtok_r (NULL, " ", &save);
  if (e->super_opts == NULL)
    e->super_opts = (char *) "";
  unescape_octal (e->root);
  unescape_octal (e->target);
  unescape_octal (e->source);
  return true;
}

static int
mountinfo_read (struct mountinfo *mi, berth_error_t *err)
{
  char *line, *save = NULL;
  size_t alloc = 64;

  if (read_file ("/proc/self/mountinfo", 64 << 20, &mi->buf, NULL, err) < 0)
    return -1;
  mi->v = xmalloc (alloc * sizeof (*mi->v));
  for (line = strtok_r (mi->buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    {
      if (mi->len == alloc)
        mi->v = xrealloc (mi->v, (alloc *= 2) * sizeof (*mi->v));
      if (parse_mountinfo_line (line, &mi->v[mi->len]))
        mi->len++;
    }
  return 0;
}

/* True when PATH is DIR or below it.  */
static bool
path_has_prefix (const char *path, const char *dir)
{
  size_t n = strlen (dir);

  if (strcmp (dir, "/") == 0)
    return path[0] == '/';
  return strncmp (path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---------------------------------------------------------------------- */
/* Bind mounts and flags                                                   */

/* Flags a remount must keep from the mount it acts on: in a user namespace
 * the kernel locks them (clearing one is EPERM), and outside one an option
 * like "ro" must not quietly drop the source's nosuid.  An explicit "suid",
 * "dev", "exec" or "rw" (CLEAR) still wins.  atime needs nothing: a remount
 * without atime flags keeps the current setting.  */
static unsigned long
kept_flags (int mntfd, unsigned long clear)
{
  struct statvfs sv;
  unsigned long keep = 0;

  if (fstatvfs (mntfd, &sv) < 0)
    return 0;
  if (sv.f_flag & ST_RDONLY)
    keep |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID)
    keep |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV)
    keep |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC)
    keep |= MS_NOEXEC;
  return keep & ~clear;
}

/* Remount the bind mount whose root MNTFD is open with FLAGS.  */
static int
remount_bind (int mntfd, const char *dest, unsigned long flags,
              unsigned long clear, berth_error_t *err)
{
  char buf[32];

  flags &= ~(MS_BIND | MS_REC | MS_REMOUNT);
  flags |= kept_flags (mntfd, clear);
  if (mount (NULL, fd_path (mntfd, buf), NULL, MS_REMOUNT | MS_BIND | flags,
             NULL)
      < 0)
    return berth_make_error (err, errno, "remount `%s` with flags 0x%lx", dest,
                             flags);
  return 0;
}

/* Bind SRC (a host path, or SRCFD when >= 0) onto TARGETFD, which is DEST
 * inside ROOTFD.  Returns an O_PATH fd on the root of the new mount.  */
static int
bind_onto (int rootfd, const char *root, const char *src, int srcfd,
           int targetfd, const char *dest, bool rec, berth_error_t *err)
{
  cleanup_close int tree = -1;
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
  char sbuf[32], tbuf[32];

  if (rec)
    flags |= AT_RECURSIVE;
  if (srcfd >= 0)
    tree = sys_open_tree (srcfd, "", flags | AT_EMPTY_PATH);
  else
    tree = sys_open_tree (AT_FDCWD, src, flags);
  if (tree >= 0)
    {
      /* The detached copy goes exactly onto the fd we checked, with no
       * path lookup in between that a symlink could redirect.  */
      if (sys_move_mount (tree, "", targetfd, "",
                          MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
          < 0)
        return berth_make_error (err, errno, "move_mount `%s` onto `%s`", src,
                                 dest);
      return move_fd (&tree);
    }
  /* ENOSYS before Linux 5.2; EPERM from seccomp profiles that predate the
   * syscall.  mount(2) gives the definitive answer.  */
  if (errno != ENOSYS && errno != EPERM)
    return berth_make_error (err, errno, "open_tree `%s`", src);
  if (do_mount (srcfd >= 0 ? fd_path (srcfd, sbuf) : src, dest,
                fd_path (targetfd, tbuf), NULL, MS_BIND | (rec ? MS_REC : 0),
                NULL, err)
      < 0)
    return -1;
  return safe_openat (rootfd, root, dest, O_PATH, 0, err);
}

static int
set_rec_attrs (int mntfd, const struct oci_mount *m, berth_error_t *err)
{
  struct berth_mount_attr attr
      = { .attr_set = m->attr_set, .attr_clr = m->attr_clr };

  if (m->attr_set == 0 && m->attr_clr == 0)
    return 0;
  /* The atime modes are a field, not bits: setting one means clearing the
   * whole field first or the kernel says EINVAL.  */
  if (attr.attr_set & MOUNT_ATTR__ATIME)
    attr.attr_clr |= MOUNT_ATTR__ATIME;
  if (sys_mount_setattr (mntfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0)
    return berth_make_error (
        err, errno, "mount_setattr `%s` (recursive options)", m->destination);
  return 0;
}

static int
set_propagation (int mntfd, const char *dest, unsigned long prop,
                 berth_error_t *err)
{
  char buf[32];

  if (prop == 0)
    return 0;
  if (mount (NULL, fd_path (mntfd, buf), NULL, prop, NULL) < 0)
    return berth_make_error (err, errno, "set propagation of `%s`", dest);
  return 0;
}

/* The flags and attributes a mount entry asks for, after the mount.  */
static int
finish_mount (int mntfd, const struct oci_mount *m, bool remount,
              berth_error_t *err)
{
  if (remount && ((m->flags | m->clear) & ~(MS_BIND | MS_REC | MS_REMOUNT)) != 0
      && remount_bind (mntfd, m->destination, m->flags, m->clear, err) < 0)
    return -1;
  if (set_rec_attrs (mntfd, m, err) < 0)
    return -1;
  return set_propagation (mntfd, m->destination, m->propagation, err);
}

/* Open a bind's source once (the same object is stat'ed and bound) and
 * its target inside the rootfs, created as a directory or a file to match
 * the source. */
static int
open_bind_ends (struct rootfs_ctx *c, const struct oci_mount *m, int *srcfd,
                int *target, berth_error_t *err)
{
  struct stat st;

  *srcfd = open (m->source, O_PATH | O_CLOEXEC);
  if (*srcfd < 0 || fstat (*srcfd, &st) < 0)
    return berth_make_error (err, errno, "bind source `%s` for `%s`", m->source,
                             m->destination);
  *target = safe_create_mount_target (c->rootfd, c->root, m->destination,
                                      S_ISDIR (st.st_mode), err);
  return *target < 0 ? -1 : 0;
}

static int
mount_bind_entry (struct rootfs_ctx *c, const struct oci_mount *m,
                  berth_error_t *err)
{
  cleanup_close int srcfd = -1, target = -1, mnt = -1;

  if (open_bind_ends (c, m, &srcfd, &target, err) < 0)
    return -1;
  mnt = bind_onto (c->rootfd, c->root, m->source, srcfd, target, m->destination,
                   m->rec, err);
  if (mnt < 0)
    return -1;
  return finish_mount (mnt, m, true, err);
}

/* proc and sysfs must land on the directory the config names, not
 * wherever a symlink in the image points: a /proc symlinked elsewhere
 * would leave the real /proc path unmasked (CVE-2019-19921).  */
static int
check_no_symlink (struct rootfs_ctx *c, int targetfd, const char *dest,
                  berth_error_t *err)
{
  cleanup_free char *want = NULL, *clean = clean_path (dest);
  char rbuf[32], tbuf[32], root[PATH_MAX], got[PATH_MAX];
  ssize_t n;

  n = readlink (fd_path (c->rootfd, rbuf), root, sizeof (root) - 1);
  if (n < 0)
    return berth_make_error (err, errno, "readlink the rootfs");
  root[n] = '\0';
  n = readlink (fd_path (targetfd, tbuf), got, sizeof (got) - 1);
  if (n < 0)
    return berth_make_error (err, errno, "readlink `%s`", dest);
  got[n] = '\0';
  xasprintf (&want, "%s%s", strcmp (root, "/") == 0 ? "" : root,
             strcmp (clean, "/") == 0 && strcmp (root, "/") != 0 ? "" : clean);
  if (strcmp (want, got) != 0)
    return berth_make_error (err, ELOOP,
                             "`%s` must be a directory, not reached through "
                             "a symlink",
                             dest);
  return 0;
}

/* Filesystems a user namespace may be refused even as its root: sysfs
 * when it does not own the network namespace, mqueue when it does not own
 * the IPC namespace.  Like runc, bind the host's instance instead.  */
static const char *
host_fallback (const struct oci_mount *m)
{
  if (strcmp (m->type, "sysfs") == 0)
    return "/sys";
  if (strcmp (m->type, "mqueue") == 0)
    return "/dev/mqueue";
  return NULL;
}

static int
mount_host_bind (struct rootfs_ctx *c, const struct oci_mount *m,
                 const char *src, int target, berth_error_t *err)
{
  struct berth_mount_attr attr = { 0 };
  cleanup_close int mnt = -1;

  mnt = bind_onto (c->rootfd, c->root, src, -1, target, m->destination, true,
                   err);
  if (mnt < 0)
    return berth_error_wrap (err,
                             "mount `%s` (type `%s`) in a user namespace: "
                             "binding the host's `%s` instead",
                             m->destination, m->type, src);
  if (finish_mount (mnt, m, true, err) < 0)
    return -1;
  /* The host's submounts come along (/sys/fs/cgroup/...) and the container
   * could unmount whatever we put over them: make them as restricted as
   * the mount asked for the top.  */
  attr.attr_set = (m->flags & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0)
                  | (m->flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0)
                  | (m->flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0)
                  | (m->flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0);
  if (attr.attr_set
      && sys_mount_setattr (mnt, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) < 0
      && errno != ENOSYS)
    return berth_make_error (err, errno, "restrict the mounts below `%s`",
                             m->destination);
  return 0;
}

static int
mount_fs_entry (struct rootfs_ctx *c, const struct oci_mount *m,
                berth_error_t *err)
{
  cleanup_close int target = -1, mnt = -1;
  const char *fallback = c->o->userns ? host_fallback (m) : NULL;
  bool is_sys = strcmp (m->type, "sysfs") == 0;
  char buf[32];

  target = safe_create_mount_target (c->rootfd, c->root, m->destination, true,
                                     err);
  if (target < 0)
    return -1;
  if ((is_sys || strcmp (m->type, "proc") == 0)
      && check_no_symlink (c, target, m->destination, err) < 0)
    return -1;
  if (fallback && is_sys && !c->cfg->ns[OCI_NS_NET].present)
    return mount_host_bind (c, m, fallback, target, err);
  if (mount (m->source ? m->source : m->type, fd_path (target, buf), m->type,
             m->flags, m->data)
      < 0)
    {
      if (fallback && errno == EPERM)
        return mount_host_bind (c, m, fallback, target, err);
      return berth_make_error (err, errno, "mount `%s` on `%s` (type `%s`%s%s)",
                               m->source ? m->source : m->type, m->destination,
                               m->type, m->data ? ", options " : "",
                               m->data ? m->data : "");
    }
  mnt = safe_openat (c->rootfd, c->root, m->destination, O_PATH | O_DIRECTORY,
                     0, err);
  if (mnt < 0)
    return -1;
  return finish_mount (mnt, m, false, err);
}

/* ---------------------------------------------------------------------- */
/* cgroup                                                                  */

/* Options in a v1 hierarchy's super block options that are not the
 * hierarchy's identity.  release_agent is dropped on purpose: a container
 * must never set the host's release agent (CVE-2022-0492).  */
static bool
cgroup_opt_is_identity (const char *opt)
{
  static const char *const skip[] = { "rw",
                                      "ro",
                                      "noprefix",
                                      "xattr",
                                      "clone_children",
                                      "cpuset_v2_mode",
                                      "favordynmods",
                                      "nsdelegate",
                                      "memory_recursiveprot",
                                      "memory_localevents",
                                      "memory_hugetlb_accounting" };
  size_t i;

  if (strncmp (opt, "release_agent=", 14) == 0)
    return false;
  for (i = 0; i < ARRAY_SIZE (skip); i++)
    if (strcmp (opt, skip[i]) == 0)
      return false;
  return true;
}

/* The v1 super options to mount the same hierarchy again, minus
 * release_agent and rw/ro.  */
static char *
cgroup_mount_data (const char *super_opts)
{
  cleanup_free char *copy = xstrdup (super_opts);
  char *out = xmalloc0 (strlen (super_opts) + 1), *tok, *save = NULL;

  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    {
      if (strcmp (tok, "rw") == 0 || strcmp (tok, "ro") == 0
          || strncmp (tok, "release_agent=", 14) == 0)
        continue;
      if (*out)
        strcat (out, ",");
      strcat (out, tok);
    }
  return out;
}

/* True when the comma lists A and B hold the same items.  */
static bool
same_set (const char *a, const char *b)
{
  cleanup_free char *ca = xstrdup (a), *cb = xstrdup (b);
  char *tok, *save = NULL;
  size_t na = 0, nb = 0;

  for (tok = strtok_r (ca, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
    {
      size_t n = strlen (tok);
      const char *p = b;
      bool found = false;
      na++;
      while (!found && (p = strstr (p, tok)) != NULL)
        {
          found = (p == b || p[-1] == ',') && (p[n] == ',' || p[n] == '\0');
          p += n;
        }
      if (!found)
        return false;
    }
  for (tok = strtok_r (cb, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
    nb++;
  return na == nb;
}

/* Our own cgroup in the hierarchy E, relative to E's mount, from
 * /proc/self/cgroup.  */
static int
cgroup_self_path (const struct mnt_entry *e, char **out, berth_error_t *err)
{
  cleanup_free char *buf = NULL, *ids = NULL;
  char *line, *save = NULL;
  bool v2 = strcmp (e->fstype, "cgroup2") == 0;

  if (read_file ("/proc/self/cgroup", 1 << 20, &buf, NULL, err) < 0)
    return -1;
  if (!v2)
    {
      cleanup_free char *copy = xstrdup (e->super_opts);
      char *tok, *s2 = NULL;
      ids = xmalloc0 (strlen (e->super_opts) + 1);
      for (tok = strtok_r (copy, ",", &s2); tok;
           tok = strtok_r (NULL, ",", &s2))
        if (cgroup_opt_is_identity (tok))
          {
            if (*ids)
              strcat (ids, ",");
            strcat (ids, tok);
          }
    }
  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    {
      char *ctl = strchr (line, ':'), *path;
      if (ctl == NULL || (path = strchr (++ctl, ':')) == NULL)
        continue;
      *path++ = '\0';
      if (v2 ? *ctl != '\0' : !same_set (ctl, ids))
        continue;
      if (!path_has_prefix (path, e->root))
        break;
      *out = xstrdup (path
                      + (strcmp (e->root, "/") == 0 ? 0 : strlen (e->root)));
      return 0;
    }
  return berth_make_error (err, ENOENT, "no cgroup of ours under `%s`",
                           e->target);
}

/* Bind our own cgroup in the host hierarchy E onto TARGET.  */
static int
cgroup_bind (struct rootfs_ctx *c, const struct mnt_entry *e, int target,
             const char *dest, berth_error_t *err)
{
  cleanup_free char *src = NULL, *rel = NULL;

  if (c->o->cgroup_rel_path)
    {
      xasprintf (&src, "%s/%s", e->target, c->o->cgroup_rel_path);
      if (access (src, F_OK) < 0)
        {
          free (src);
          src = NULL;
        }
    }
  if (src == NULL)
    {
      if (cgroup_self_path (e, &rel, err) < 0)
        return -1;
      xasprintf (&src, "%s/%s", e->target, rel);
    }
  return bind_onto (c->rootfd, c->root, src, -1, target, dest, false, err);
}

/* One host hierarchy E onto TARGET (DEST): a fresh mount of the same
 * hierarchy under a cgroup namespace (its root is then our cgroup), else a
 * bind of our cgroup.  Returns an fd on the new mount.  */
static int
cgroup_mount_one (struct rootfs_ctx *c, const struct oci_mount *m,
                  const struct mnt_entry *e, int target, const char *dest,
                  berth_error_t *err)
{
  cleanup_free char *data = NULL;
  bool v2 = strcmp (e->fstype, "cgroup2") == 0;
  unsigned long flags = m->flags & ~(MS_RDONLY | MS_REMOUNT);
  char buf[32];

  if (c->o->cgroupns)
    {
      data = v2 ? NULL : cgroup_mount_data (e->super_opts);
      if (mount (v2 ? "cgroup2" : "cgroup", fd_path (target, buf), e->fstype,
                 flags, data)
          == 0)
        return safe_openat (c->rootfd, c->root, dest, O_PATH, 0, err);
      /* Without CAP_SYS_ADMIN over the hierarchy (rootless), fall back.  */
      if (errno != EPERM && errno != EBUSY)
        return berth_make_error (err, errno, "mount `%s` on `%s` (type `%s`)",
                                 e->fstype, dest, e->fstype);
    }
  return cgroup_bind (c, e, target, dest, err);
}

static int
mount_cgroup2 (struct rootfs_ctx *c, const struct oci_mount *m,
               const struct mountinfo *mi, berth_error_t *err)
{
  cleanup_close int target = -1, mnt = -1;
  const struct mnt_entry *host = NULL;
  size_t i;

  for (i = 0; i < mi->len; i++)
    if (strcmp (mi->v[i].target, CGROUP_ROOT) == 0
        && strcmp (mi->v[i].fstype, "cgroup2") == 0)
      host = &mi->v[i];
  if (host == NULL)
    return berth_make_error (err, ENOENT, "no cgroup2 mount at `%s`",
                             CGROUP_ROOT);
  target = safe_create_mount_target (c->rootfd, c->root, m->destination, true,
                                     err);
  if (target < 0)
    return -1;
  mnt = cgroup_mount_one (c, m, host, target, m->destination, err);
  if (mnt < 0)
    return -1;
  return finish_mount (mnt, m, true, err);
}

/* Each hierarchy's controllers as symlinks to its directory, as hosts have
 * them: cpu -> cpu,cpuacct.  */
static void
cgroup_v1_links (int dirfd, const char *name)
{
  cleanup_free char *copy = xstrdup (name);
  char *tok, *save = NULL;

  if (strchr (name, ',') == NULL)
    return;
  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    if (strcmp (tok, name) != 0 && strchr (tok, '=') == NULL)
      (void) symlinkat (name, dirfd, tok);
}

/* One v1 hierarchy (or "unified") as DIRFD/NAME below the tmpfs at DEST.  */
static int
cgroup_v1_sub (struct rootfs_ctx *c, const struct oci_mount *m,
               const struct mnt_entry *e, int dirfd, berth_error_t *err)
{
  const char *name = strrchr (e->target, '/') + 1;
  cleanup_free char *dest = NULL;
  cleanup_close int target = -1, mnt = -1;

  xasprintf (&dest, "%s/%s", m->destination, name);
  /* The tmpfs is ours and fresh: a plain name in it cannot be redirected.  */
  if (mkdirat (dirfd, name, 0755) < 0 && errno != EEXIST)
    return berth_make_error (err, errno, "mkdir `%s`", dest);
  target = openat (dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (target < 0)
    return berth_make_error (err, errno, "open `%s`", dest);
  mnt = cgroup_mount_one (c, m, e, target, dest, err);
  if (mnt < 0)
    return -1;
  if ((m->flags & MS_RDONLY)
      && remount_bind (mnt, dest, m->flags | MS_RDONLY, m->clear, err) < 0)
    return -1;
  cgroup_v1_links (dirfd, name);
  return 0;
}

static int
mount_cgroup_v1 (struct rootfs_ctx *c, const struct oci_mount *m,
                 const struct mountinfo *mi, berth_error_t *err)
{
  cleanup_close int target = -1, dirfd = -1;
  unsigned long flags = (m->flags & ~(MS_RDONLY | MS_REMOUNT)) | MS_NOSUID
                        | MS_NODEV | MS_NOEXEC;
  char buf[32];
  size_t i;

  target = safe_create_mount_target (c->rootfd, c->root, m->destination, true,
                                     err);
  if (target < 0)
    return -1;
  if (do_mount ("tmpfs", m->destination, fd_path (target, buf), "tmpfs", flags,
                "mode=755", err)
      < 0)
    return -1;
  dirfd = safe_openat (c->rootfd, c->root, m->destination, O_PATH | O_DIRECTORY,
                       0, err);
  if (dirfd < 0)
    return -1;
  for (i = 0; i < mi->len; i++)
    {
      const struct mnt_entry *e = &mi->v[i];
      const char *slash = strrchr (e->target, '/');
      if ((strcmp (e->fstype, "cgroup") != 0
           && strcmp (e->fstype, "cgroup2") != 0)
          || slash - e->target != (ptrdiff_t) strlen (CGROUP_ROOT)
          || strncmp (e->target, CGROUP_ROOT "/", strlen (CGROUP_ROOT) + 1)
                 != 0)
        continue;
      if (cgroup_v1_sub (c, m, e, dirfd, err) < 0)
        return -1;
    }
  /* Read-only last: the directories and links above live in the tmpfs.  */
  if ((m->flags & MS_RDONLY)
      && remount_bind (dirfd, m->destination, flags | MS_RDONLY, 0, err) < 0)
    return -1;
  return set_propagation (dirfd, m->destination, m->propagation, err);
}

static int
mount_cgroup_entry (struct rootfs_ctx *c, const struct oci_mount *m,
                    berth_error_t *err)
{
  cleanup_mountinfo struct mountinfo mi = { 0 };
  struct statfs sfs;

  if (statfs (CGROUP_ROOT, &sfs) < 0)
    return berth_make_error (err, errno, "statfs `%s`", CGROUP_ROOT);
  if (mountinfo_read (&mi, err) < 0)
    return -1;
  if (sfs.f_type == CGROUP2_SUPER_MAGIC)
    return mount_cgroup2 (c, m, &mi, err);
  return mount_cgroup_v1 (c, m, &mi, err);
}

/* An idmapped bind: a detached copy of the source gets the mapping of a
 * user namespace made for it, then goes onto the checked target. */
static int
mount_idmapped_entry (struct rootfs_ctx *c, const struct oci_mount *m,
                      berth_error_t *err)
{
  cleanup_close int srcfd = -1, target = -1, tree = -1;
  struct berth_mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };
  int userns = c->o->idmap_userns ? c->o->idmap_userns[c->index] : -1;
  unsigned int rec = m->rec ? AT_RECURSIVE : 0;

  if (!m->bind)
    return berth_make_invalid (err,
                               "mount `%s`: uidMappings/gidMappings need a "
                               "bind mount",
                               m->destination);
  if (open_bind_ends (c, m, &srcfd, &target, err) < 0)
    return -1;
  if (userns < 0)
    return berth_make_invalid (err, "mount `%s`: no idmap namespace",
                               m->destination);
  tree = sys_open_tree (
      srcfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec);
  if (tree < 0)
    return berth_make_error (err, errno, "open_tree `%s`", m->source);
  attr.userns_fd = (uint64_t) userns;
  if (sys_mount_setattr (tree, "", AT_EMPTY_PATH | rec, &attr) < 0)
    return berth_make_error (err, errno,
                             "mount `%s`: idmap `%s` (does its filesystem "
                             "support idmapped mounts?)",
                             m->destination, m->source);
  if (sys_move_mount (tree, "", target, "",
                      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
      < 0)
    return berth_make_error (err, errno, "move_mount `%s` onto `%s`", m->source,
                             m->destination);
  return finish_mount (tree, m, true, err);
}

static int
mount_entry (struct rootfs_ctx *c, const struct oci_mount *m,
             berth_error_t *err)
{
  if (m->uid_map_len || m->gid_map_len)
    return mount_idmapped_entry (c, m, err);
  if (m->bind)
    return mount_bind_entry (c, m, err);
  if (strcmp (m->type, "cgroup") == 0 || strcmp (m->type, "cgroup2") == 0)
    return mount_cgroup_entry (c, m, err);
  return mount_fs_entry (c, m, err);
}

/* ---------------------------------------------------------------------- */
/* /dev                                                                    */

struct dev_spec
{
  const char *path;
  char type;
  unsigned int major, minor;
  mode_t mode;
  uid_t uid;
  gid_t gid;
};

/* The devices the runtime spec says every container gets.  */
static const struct dev_spec default_devices[] = {
  { "/dev/null", 'c', 1, 3, 0666, 0, 0 },
  { "/dev/zero", 'c', 1, 5, 0666, 0, 0 },
  { "/dev/full", 'c', 1, 7, 0666, 0, 0 },
  { "/dev/random", 'c', 1, 8, 0666, 0, 0 },
  { "/dev/urandom", 'c', 1, 9, 0666, 0, 0 },
  { "/dev/tty", 'c', 5, 0, 0666, 0, 0 },
};

/* Split a device path into its parent directory fd and base name.  */
static int
open_parent (struct rootfs_ctx *c, const char *path, const char **base,
             berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  const char *slash = strrchr (path, '/');

  if (slash == NULL || slash[1] == '\0' || strcmp (slash + 1, "..") == 0
      || strcmp (slash + 1, ".") == 0)
    return berth_make_invalid (err, "bad device path `%s`", path);
  dir = xstrndup (path, (size_t) (slash - path));
  *base = slash + 1;
  return safe_mkdir_p (c->rootfd, c->root, *dir ? dir : "/", 0755, err);
}

/* In a user namespace mknod is not allowed: bind the host's node (same
 * path) onto an empty file.  */
static int
bind_device (struct rootfs_ctx *c, const struct dev_spec *d, berth_error_t *err)
{
  cleanup_close int target = -1, mnt = -1;

  target = safe_create_mount_target (c->rootfd, c->root, d->path, false, err);
  if (target < 0)
    return -1;
  mnt = bind_onto (c->rootfd, c->root, d->path, -1, target, d->path, false,
                   err);
  return mnt < 0 ? -1 : 0;
}

static int
make_device (struct rootfs_ctx *c, const struct dev_spec *d, berth_error_t *err)
{
  cleanup_close int parent = -1, fd = -1;
  const char *base = NULL;
  mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
  char buf[32];

  if (c->o->userns && type != S_IFIFO)
    return bind_device (c, d, err);
  parent = open_parent (c, d->path, &base, err);
  if (parent < 0)
    return -1;
  if (mknodat (parent, base, type | (d->mode & 07777),
               makedev (d->major, d->minor))
      < 0)
    {
      if (errno == EEXIST) /* an image or a mount put it there: keep it */
        return 0;
      return berth_make_error (err, errno, "mknod `%s`", d->path);
    }
  /* mknod's mode went through the umask; fix it on the node itself.  */
  fd = openat (parent, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s`", d->path);
  if (chmod (fd_path (fd, buf), d->mode & 07777) < 0)
    return berth_make_error (err, errno, "chmod `%s`", d->path);
  if (fchownat (fd, "", d->uid, d->gid, AT_EMPTY_PATH) < 0)
    return berth_make_error (err, errno, "chown `%s`", d->path);
  return 0;
}

static bool
config_has_device (const struct oci_config *cfg, const char *path)
{
  size_t i;

  for (i = 0; i < cfg->devices_len; i++)
    {
      cleanup_free char *p = clean_path (cfg->devices[i].path);
      if (strcmp (p, path) == 0)
        return true;
    }
  return false;
}

static int
create_devices (struct rootfs_ctx *c, berth_error_t *err)
{
  const struct oci_config *cfg = c->cfg;
  size_t i;

  for (i = 0; i < ARRAY_SIZE (default_devices); i++)
    if (!config_has_device (cfg, default_devices[i].path)
        && make_device (c, &default_devices[i], err) < 0)
      return -1;
  for (i = 0; i < cfg->devices_len; i++)
    {
      const struct oci_device *od = &cfg->devices[i];
      struct dev_spec d = {
        .path = od->path,
        .type = od->type,
        .major = (unsigned int) od->major,
        .minor = (unsigned int) od->minor,
        .mode = od->has_mode ? (mode_t) od->file_mode : 0666,
        .uid = od->has_uid ? od->uid : 0,
        .gid = od->has_gid ? od->gid : 0,
      };
      if (make_device (c, &d, err) < 0)
        return -1;
    }
  return 0;
}

static int
dev_symlinks (struct rootfs_ctx *c, berth_error_t *err)
{
  static const char *const links[][2] = {
    { "fd", "/proc/self/fd" },
    { "stdin", "/proc/self/fd/0" },
    { "stdout", "/proc/self/fd/1" },
    { "stderr", "/proc/self/fd/2" },
  };
  cleanup_close int dev = -1;
  size_t i;

  dev = safe_mkdir_p (c->rootfd, c->root, "/dev", 0755, err);
  if (dev < 0)
    return -1;
  for (i = 0; i < ARRAY_SIZE (links); i++)
    if (symlinkat (links[i][1], dev, links[i][0]) < 0 && errno != EEXIST)
      return berth_make_error (err, errno, "symlink `/dev/%s`", links[i][0]);
  if (access ("/proc/kcore", F_OK) == 0
      && symlinkat ("/proc/kcore", dev, "core") < 0 && errno != EEXIST)
    return berth_make_error (err, errno, "symlink `/dev/core`");
  /* /dev/ptmx must be the container's devpts instance, whatever the image
   * shipped: a host-style 5:2 node would reach the host's ptys.  */
  if (unlinkat (dev, "ptmx", 0) < 0 && errno != ENOENT)
    return berth_make_error (err, errno, "remove `/dev/ptmx`");
  if (symlinkat ("pts/ptmx", dev, "ptmx") < 0)
    return berth_make_error (err, errno, "symlink `/dev/ptmx`");
  return 0;
}

static bool
dev_is_bind_mounted (const struct oci_config *cfg)
{
  size_t i;

  for (i = 0; i < cfg->mounts_len; i++)
    {
      cleanup_free char *p = clean_path (cfg->mounts[i].destination);
      if (cfg->mounts[i].bind && strcmp (p, "/dev") == 0)
        return true;
    }
  return false;
}

static int
setup_dev (struct rootfs_ctx *c, berth_error_t *err)
{
  cleanup_close int console = -1;

  if (dev_is_bind_mounted (c->cfg))
    return 0;
  if (create_devices (c, err) < 0 || dev_symlinks (c, err) < 0)
    return -1;
  if (!c->o->terminal)
    return 0;
  /* Only a placeholder: the pty slave is bound onto it once it exists.  */
  console = safe_create_mount_target (c->rootfd, c->root, "/dev/console", false,
                                      err);
  return console < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* prepare                                                                 */

/* pivot_root refuses a new root whose parent mount is shared, and a shared
 * parent would also carry our rootfs bind back to the host.  Like runc, only
 * a shared parent is changed, so a slave keeps receiving host mounts.  */
static int
make_parent_private (const char *root, berth_error_t *err)
{
  cleanup_mountinfo struct mountinfo mi = { 0 };
  cleanup_free char *real = realpath (root, NULL);
  const struct mnt_entry *best = NULL;
  size_t i;

  if (real == NULL)
    return berth_make_error (err, errno, "realpath `%s`", root);
  if (mountinfo_read (&mi, err) < 0)
    return -1;
  /* The longest mount point above ROOT; for equal ones the last, which is
   * the one on top.  */
  for (i = 0; i < mi.len; i++)
    if (path_has_prefix (real, mi.v[i].target)
        && (best == NULL || strlen (mi.v[i].target) >= strlen (best->target)))
      best = &mi.v[i];
  if (best == NULL || !best->shared)
    return 0;
  if (mount (NULL, best->target, NULL, MS_PRIVATE, NULL) < 0)
    return berth_make_error (err, errno, "make `%s` private", best->target);
  return 0;
}

static int
prepare_root (const struct linux_rootfs_opts *o, berth_error_t *err)
{
  const char *root = o->cfg->root_path;
  unsigned long prop = o->cfg->rootfs_propagation;

  /* Our copy of the host's mounts must not send anything back: rslave by
   * default, as runc.  EINVAL when "/" is not a mount point (chroot).  */
  /* An unbindable "/" could not give us the rootfs bind below: that one
   * is applied after pivot_root (finalize).  */
  if (prop & MS_UNBINDABLE)
    prop = 0;
  if (mount (NULL, "/", NULL, prop ? prop : MS_SLAVE | MS_REC, NULL) < 0
      && errno != EINVAL)
    return berth_make_error (err, errno, "set propagation of `/`");
  if (make_parent_private (root, err) < 0)
    return -1;
  /* A mount point of its own, as pivot_root needs, and the root of every
   * path resolution below.  */
  return do_mount (root, root, root, NULL, MS_BIND | MS_REC, NULL, err);
}

int
linux_rootfs_prepare (const struct linux_rootfs_opts *o, berth_error_t *err)
{
  const struct oci_config *cfg = o->cfg;
  cleanup_close int rootfd = -1;
  struct rootfs_ctx c = { .o = o, .cfg = cfg, .root = cfg->root_path };
  bool called = false;
  size_t i;

  if (prepare_root (o, err) < 0)
    return -1;
  rootfd = open (cfg->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return berth_make_error (err, errno, "open rootfs `%s`", cfg->root_path);
  c.rootfd = rootfd;
  for (i = 0; i < cfg->mounts_len; i++)
    {
      const struct oci_mount *m = &cfg->mounts[i];
      if (!called
          && (strcmp (m->type, "cgroup") == 0
              || strcmp (m->type, "cgroup2") == 0))
        {
          called = true;
          if (o->before_cgroup
              && o->before_cgroup (o->before_cgroup_data, err) < 0)
            return -1;
        }
      if ((c.index = i, mount_entry (&c, m, err)) < 0)
        return -1;
    }
  if (!called && o->before_cgroup
      && o->before_cgroup (o->before_cgroup_data, err) < 0)
    return -1;
  return setup_dev (&c, err);
}

/* ---------------------------------------------------------------------- */
/* finalize                                                                */

static int
pivot (const char *root, berth_error_t *err)
{
  cleanup_close int oldroot = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (oldroot < 0)
    return berth_make_error (err, errno, "open `/`");
  if (chdir (root) < 0)
    return berth_make_error (err, errno, "chdir `%s`", root);
  /* pivot_root(".", ".") stacks the old root on top of the new one, so
   * there is no put_old directory to create inside the image.  */
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return berth_make_error (err, errno, "pivot_root `%s`", root);
  /* Step onto the old root itself: "." from the new root's directory would
   * name the new root mount, and the rslave below would then strip the
   * container's own shared mounts.  */
  if (fchdir (oldroot) < 0)
    return berth_make_error (err, errno, "fchdir to the old root");
  /* The old root must not pass its unmount on to the host's mounts.  */
  if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return berth_make_error (err, errno, "make the old root rslave");
  if (umount2 (".", MNT_DETACH) < 0)
    return berth_make_error (err, errno, "detach the old root");
  if (chdir ("/") < 0)
    return berth_make_error (err, errno, "chdir `/`");
  return 0;
}

/* --no-pivot, for roots pivot_root refuses (initramfs).  Weaker: the old
 * root stays reachable to a process that can chroot.  */
static int
move_root (const char *root, berth_error_t *err)
{
  if (chdir (root) < 0)
    return berth_make_error (err, errno, "chdir `%s`", root);
  if (mount (root, "/", NULL, MS_MOVE, NULL) < 0)
    return berth_make_error (err, errno, "move `%s` to `/`", root);
  if (chroot (".") < 0)
    return berth_make_error (err, errno, "chroot `%s`", root);
  if (chdir ("/") < 0)
    return berth_make_error (err, errno, "chdir `/`");
  return 0;
}

/* Open PATH under "/", 0 (and *FD = -1) when it does not exist.  */
static int
open_optional (struct rootfs_ctx *c, const char *path, int *fd,
               berth_error_t *err)
{
  berth_error_t tmp = NULL;
  int r = safe_openat (c->rootfd, c->root, path, O_PATH, 0, &tmp);

  *fd = -1;
  if (r == -ENOENT)
    {
      berth_error_release (&tmp);
      return 0;
    }
  if (r < 0)
    {
      if (*err == NULL)
        *err = steal_pointer (&tmp);
      berth_error_release (&tmp);
      return r;
    }
  *fd = r;
  return 0;
}

static int
mask_path (struct rootfs_ctx *c, const char *path, berth_error_t *err)
{
  cleanup_close int fd = -1;
  struct stat st;
  char buf[32];

  if (open_optional (c, path, &fd, err) < 0)
    return -1;
  if (fd < 0)
    return 0;
  if (fstat (fd, &st) < 0)
    return berth_make_error (err, errno, "stat `%s`", path);
  if (S_ISDIR (st.st_mode))
    return do_mount ("tmpfs", path, fd_path (fd, buf), "tmpfs",
                     MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err);
  return do_mount ("/dev/null", path, fd_path (fd, buf), NULL, MS_BIND, NULL,
                   err);
}

static int
readonly_path (struct rootfs_ctx *c, const char *path, berth_error_t *err)
{
  struct berth_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  cleanup_close int fd = -1, mnt = -1;

  if (open_optional (c, path, &fd, err) < 0)
    return -1;
  if (fd < 0)
    return 0;
  mnt = bind_onto (c->rootfd, c->root, path, fd, fd, path, true, err);
  if (mnt < 0)
    return -1;
  if (sys_mount_setattr (mnt, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr) == 0)
    return 0;
  if (errno != ENOSYS && errno != EPERM)
    return berth_make_error (err, errno, "make `%s` read-only", path);
  /* Before Linux 5.12: only the top mount can be made read-only.  */
  return remount_bind (mnt, path, MS_RDONLY, 0, err);
}

int
linux_rootfs_finalize (const struct linux_rootfs_opts *o, berth_error_t *err)
{
  const struct oci_config *cfg = o->cfg;
  cleanup_close int rootfd = -1;
  struct rootfs_ctx c = { .o = o, .cfg = cfg, .root = "/" };
  size_t i;

  if ((o->no_pivot ? move_root : pivot) (cfg->root_path, err) < 0)
    return -1;
  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return berth_make_error (err, errno, "open `/`");
  c.rootfd = rootfd;
  for (i = 0; cfg->masked_paths && cfg->masked_paths[i]; i++)
    if (mask_path (&c, cfg->masked_paths[i], err) < 0)
      return -1;
  for (i = 0; cfg->readonly_paths && cfg->readonly_paths[i]; i++)
    if (readonly_path (&c, cfg->readonly_paths[i], err) < 0)
      return -1;
  /* By name, not through /proc/self/fd: the config may not mount /proc.  */
  if (cfg->root_readonly
      && mount (NULL, "/", NULL,
                MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags (rootfd, 0), NULL)
             < 0)
    return berth_make_error (err, errno, "remount `/` read-only");
  if (cfg->rootfs_propagation
      && mount (NULL, "/", NULL, cfg->rootfs_propagation, NULL) < 0)
    return berth_make_error (err, errno, "set propagation of `/`");
  return 0;
}

int
linux_rootfs_bind_console (const char *slave_path, berth_error_t *err)
{
  cleanup_close int rootfd = -1, slave = -1, target = -1, mnt = -1;

  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return berth_make_error (err, errno, "open `/`");
  slave = safe_openat (rootfd, "/", slave_path, O_PATH, 0, err);
  if (slave < 0)
    return -1;
  target = safe_create_mount_target (rootfd, "/", "/dev/console", false, err);
  if (target < 0)
    return -1;
  mnt = bind_onto (rootfd, "/", slave_path, slave, target, "/dev/console",
                   false, err);
  return mnt < 0 ? -1 : 0;
}
