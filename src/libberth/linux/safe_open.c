/* safe_open.c - see safe_open.h.  */
#include "linux/safe_open.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "utils.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* procfs gives its root directory this inode number.  */
#define PROC_ROOT_INO 1

/* The kernel's own limit on symlinks followed in one lookup.  */
#define MAX_SYMLINKS 40

const char *
fd_path (int fd, char buf[static 32])
{
  snprintf (buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

int
check_proc_fd (int fd, const char *what, berth_error_t *err)
{
  struct statfs sfs;

  if (fstatfs (fd, &sfs) < 0)
    return berth_make_error (err, errno, "fstatfs `%s`", what);
  if (sfs.f_type != PROC_SUPER_MAGIC)
    return berth_make_error (err, EXDEV, "`%s` is not on procfs", what);
  return 0;
}

/* openat2 is usable: 1 yes, -1 no, 0 not probed yet.  The runtime child is
 * single-threaded, so a plain static is enough.  */
static int openat2_state;

static bool
openat2_usable (void)
{
  const char *env = getenv ("BERTH_TEST_NO_OPENAT2");

  if (env && strcmp (env, "1") == 0)
    return false;
  if (openat2_state == 0)
    {
      /* A size below OPEN_HOW_SIZE_VER0 is the first thing openat2 rejects
       * (EINVAL).  ENOSYS means an old kernel; EPERM is what seccomp
       * profiles written before openat2 existed (older Docker) return for
       * unknown syscalls.  Either way, walk in userspace.  */
      long r = syscall (SYS_openat2, -1, "", NULL, (size_t) 0);
      openat2_state = (r < 0 && (errno == ENOSYS || errno == EPERM)) ? -1 : 1;
    }
  return openat2_state > 0;
}

static int
openat2_in_root (int rootfd, const char *path, int flags, mode_t mode)
{
  struct open_how how = {
    .flags = (uint64_t) (flags | O_CLOEXEC),
    .mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int attempt;

  for (attempt = 0; attempt < 64; attempt++)
    {
      long fd = syscall (SYS_openat2, rootfd, path, &how, sizeof (how));
      if (fd >= 0)
        return (int) fd;
      /* RESOLVE_IN_ROOT returns EAGAIN when a rename or mount anywhere in
       * the system raced with a ".." step; the lookup is simply retried.  */
      if (errno != EAGAIN)
        return -errno;
    }
  return -EAGAIN;
}

/* The stack of directories walked so far.  dirs[0] is the root (borrowed);
 * ".." pops instead of opening "..", so a walk can never climb above the
 * root, whatever the directory tree does meanwhile.  */
struct walk
{
  int *dirs;
  size_t depth, alloc;
};

static void
walk_pop (struct walk *w)
{
  if (w->depth > 0)
    close (w->dirs[w->depth--]);
}

static void
walk_release (struct walk *w)
{
  while (w->depth > 0)
    walk_pop (w);
  free (w->dirs);
  w->dirs = NULL;
}

static void
walk_init (struct walk *w, int rootfd)
{
  w->alloc = 16;
  w->dirs = xmalloc (w->alloc * sizeof (int));
  w->dirs[0] = rootfd;
  w->depth = 0;
}

static void
walk_push (struct walk *w, int fd)
{
  if (w->depth + 1 >= w->alloc)
    {
      w->alloc *= 2;
      w->dirs = xrealloc (w->dirs, w->alloc * sizeof (int));
    }
  w->dirs[++w->depth] = fd;
}

static int
walk_top (const struct walk *w)
{
  return w->dirs[w->depth];
}

/* Read the symlink FD (an O_PATH|O_NOFOLLOW fd on it) into a new string.  */
static int
read_link_fd (int fd, char **out)
{
  char buf[PATH_MAX];
  ssize_t n = readlinkat (fd, "", buf, sizeof (buf));

  if (n < 0)
    return -errno;
  if ((size_t) n >= sizeof (buf))
    return -ENAMETOOLONG;
  if (n == 0)
    return -ENOENT;
  *out = xstrndup (buf, (size_t) n);
  return 0;
}

/* Replace the remaining path *BUF (REST points into it) with TARGET + "/" +
 * REST.  An absolute TARGET restarts from the root.  */
static void
walk_splice_link (struct walk *w, char **buf, const char **rest,
                  const char *target)
{
  char *next;

  if (target[0] == '/')
    while (w->depth > 0)
      walk_pop (w);
  xasprintf (&next, "%s/%s", target, *rest);
  free (*buf);
  *buf = next;
  *rest = next;
}

/* Take the next component off *REST into NAME; returns false at the end.  */
static bool
next_component (const char **rest, char name[static NAME_MAX + 1], int *ret)
{
  const char *p = *rest, *end;

  while (*p == '/')
    p++;
  if (*p == '\0')
    {
      *rest = p;
      return false;
    }
  end = strchrnul (p, '/');
  if ((size_t) (end - p) > NAME_MAX)
    {
      *ret = -ENAMETOOLONG;
      return false;
    }
  memcpy (name, p, (size_t) (end - p));
  name[end - p] = '\0';
  while (*end == '/')
    end++;
  *rest = end;
  return true;
}

/* Match RESOLVE_NO_MAGICLINKS: the symlinks procfs keeps in its root
 * directory (self, thread-self, mounts, net...) are ordinary; every other
 * procfs symlink (/proc/PID/root, fd/N, exe, ns/...) is a magic link.  */
static bool
is_magic_link (int dirfd, int linkfd)
{
  struct statfs sfs;
  struct stat st;

  if (fstatfs (linkfd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
    return false;
  return fstat (dirfd, &st) < 0 || st.st_ino != PROC_ROOT_INO;
}

/* Handle one normal component NAME of the walk.  Returns 1 when the walk
 * goes on (directory pushed or symlink spliced), else the final fd or a
 * negative errno.  */
static int
walk_step (struct walk *w, char **buf, const char **rest, const char *name,
           int flags, mode_t mode, int *links)
{
  bool last = **rest == '\0';
  bool follow_last = !(flags & O_NOFOLLOW)
                     && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
  cleanup_close int fd = -1;
  cleanup_free char *target = NULL;
  struct stat st;
  int r;

  fd = openat (walk_top (w), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT && last && (flags & O_CREAT))
        goto final;
      return -errno;
    }
  if (fstat (fd, &st) < 0)
    return -errno;
  if (S_ISLNK (st.st_mode) && (!last || follow_last))
    {
      if (++*links > MAX_SYMLINKS || is_magic_link (walk_top (w), fd))
        return -ELOOP;
      r = read_link_fd (fd, &target);
      if (r < 0)
        return r;
      walk_splice_link (w, buf, rest, target);
      return 1;
    }
  if (!last)
    {
      if (!S_ISDIR (st.st_mode))
        return -ENOTDIR;
      walk_push (w, move_fd (&fd));
      return 1;
    }
final:
  /* O_NOFOLLOW: if NAME was swapped for a symlink since the check above,
   * this fails with ELOOP instead of following it out of the root.  */
  r = openat (walk_top (w), name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  return r < 0 ? -errno : r;
}

/* True when FD is the process's own root: nothing can escape it.  */
static bool
is_process_root (int fd)
{
  struct stat a, b;

  return fstat (fd, &a) == 0 && stat ("/", &b) == 0 && a.st_dev == b.st_dev
         && a.st_ino == b.st_ino;
}

static int
fd_link (int fd, char buf[static PATH_MAX])
{
  char proc[32];
  ssize_t n = readlink (fd_path (fd, proc), buf, PATH_MAX);

  if (n < 0)
    return -errno;
  if (n >= PATH_MAX)
    return -ENAMETOOLONG;
  buf[n] = '\0';
  return 0;
}

/* The walk never follows a link in the kernel and never opens "..", but a
 * directory on the stack can be renamed out of the root while we hold it.
 * Check where FD really is.  */
static int
verify_in_root (int rootfd, int fd)
{
  char root[PATH_MAX], got[PATH_MAX];
  size_t len;
  int r;

  if (is_process_root (rootfd))
    return 0;
  r = fd_link (rootfd, root);
  if (r == 0)
    r = fd_link (fd, got);
  if (r < 0)
    return r;
  len = strlen (root);
  if (strcmp (root, "/") == 0
      || (strncmp (got, root, len) == 0
          && (got[len] == '\0' || got[len] == '/')))
    return 0;
  return -EXDEV;
}

static int
fallback_open (int rootfd, const char *path, int flags, mode_t mode)
{
  struct walk w;
  cleanup_free char *buf = xstrdup (path);
  const char *rest = buf;
  char name[NAME_MAX + 1];
  int links = 0, r = 0;

  walk_init (&w, rootfd);
  for (;;)
    {
      r = 0;
      if (!next_component (&rest, name, &r))
        {
          /* "", "/", "a/.." or a trailing "..": the directory we are in.  */
          if (r == 0)
            {
              r = openat (walk_top (&w), ".", flags | O_CLOEXEC, mode);
              if (r < 0)
                r = -errno;
            }
          break;
        }
      if (strcmp (name, ".") == 0)
        continue;
      if (strcmp (name, "..") == 0)
        {
          walk_pop (&w);
          continue;
        }
      r = walk_step (&w, &buf, &rest, name, flags, mode, &links);
      if (r != 1)
        break;
    }
  walk_release (&w);
  if (r >= 0)
    {
      int v = verify_in_root (rootfd, r);
      if (v < 0)
        {
          close (r);
          return v;
        }
    }
  return r;
}

/* Open PATH in the root; negative errno without an error object, so that
 * callers can react to ENOENT.  */
static int
open_in_root (int rootfd, const char *path, int flags, mode_t mode)
{
  if (*path == '\0')
    path = ".";
  if (openat2_usable ())
    return openat2_in_root (rootfd, path, flags, mode);
  return fallback_open (rootfd, path, flags, mode);
}

int
safe_openat (int rootfd, const char *root_path, const char *path, int flags,
             mode_t mode, berth_error_t *err)
{
  int fd = open_in_root (rootfd, path, flags, mode);

  if (fd == -EXDEV)
    return berth_make_error (err, EXDEV, "open `%s`: resolves outside `%s`",
                             path, root_path ? root_path : "the rootfs");
  if (fd < 0)
    return berth_make_error (err, -fd, "open `%s` in `%s`", path,
                             root_path ? root_path : "the rootfs");
  return fd;
}

/* The link NAME in DIRFD is dangling: rewrite *CUR (whose first PREFIX_LEN
 * bytes name DIRFD, and whose remainder after the link is REST) so that the
 * walk continues at the link's target, still inside the root.  */
static int
splice_dangling (int dirfd, const char *name, char **cur, size_t prefix_len,
                 const char *rest)
{
  char target[PATH_MAX];
  ssize_t n = readlinkat (dirfd, name, target, sizeof (target) - 1);
  char *next;

  if (n <= 0)
    return -ENOENT;
  target[n] = '\0';
  if (target[0] == '/')
    xasprintf (&next, "%s/%s", target, rest);
  else
    xasprintf (&next, "%.*s/%s/%s", (int) prefix_len, *cur, target, rest);
  free (*cur);
  *cur = next;
  return 0;
}

/* Create NAME in DIRFD: a directory, or an empty file when FILE.  */
static int
create_entry (int dirfd, const char *name, bool file, mode_t mode)
{
  if (file)
    {
      int fd
          = openat (dirfd, name,
                    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0)
        return errno == EEXIST ? 0 : -errno;
      close (fd);
      return 0;
    }
  if (mkdirat (dirfd, name, mode) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

/* Make every component of PATH exist inside the root, the last one as a
 * file when FILE; returns an O_PATH fd on it.  Each prefix is resolved from
 * the root again (O(n^2) opens, n is small), so a symlink anywhere is
 * followed inside the root; a missing entry is created in the fd of its
 * resolved parent, where a plain name cannot escape.  */
static int
create_in_root (int rootfd, const char *path, bool file, mode_t mode)
{
  cleanup_free char *cur = xstrdup (path);
  cleanup_close int parent = -1;
  int links = 0;

restart:
  {
    const char *rest = cur;
    char name[NAME_MAX + 1];
    int r = 0;

    if (parent >= 0)
      close (move_fd (&parent));
    parent = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0)
      return -errno;
    for (;;)
      {
        size_t start = (size_t) (rest - cur), end;
        cleanup_free char *prefix = NULL;
        bool last;
        int fd;

        while (cur[start] == '/')
          start++;
        if (!next_component (&rest, name, &r))
          return r < 0 ? r : move_fd (&parent);
        end = start + strlen (name);
        last = *rest == '\0';
        prefix = xstrndup (cur, end);
        fd = open_in_root (rootfd, prefix,
                           O_PATH | (last && file ? 0 : O_DIRECTORY), 0);
        if (fd == -ENOENT && strcmp (name, ".") != 0
            && strcmp (name, "..") != 0)
          {
            r = create_entry (parent, name, last && file, mode);
            if (r < 0)
              return r;
            fd = open_in_root (rootfd, prefix,
                               O_PATH | (last && file ? 0 : O_DIRECTORY), 0);
            if (fd == -ENOENT)
              {
                /* EEXIST but still missing: NAME is a dangling symlink.
                 * Create its target instead, as the image intended.  */
                if (++links > MAX_SYMLINKS)
                  return -ELOOP;
                if (splice_dangling (parent, name, &cur, start, rest) < 0)
                  return -ENOENT;
                goto restart;
              }
          }
        if (fd < 0)
          return fd;
        close (parent);
        parent = fd;
      }
  }
}

int
safe_mkdir_p (int rootfd, const char *root_path, const char *path, mode_t mode,
              berth_error_t *err)
{
  int fd = create_in_root (rootfd, path, false, mode);

  if (fd < 0)
    return berth_make_error (err, -fd, "mkdir `%s` in `%s`", path,
                             root_path ? root_path : "the rootfs");
  return fd;
}

int
safe_create_mount_target (int rootfd, const char *root_path, const char *path,
                          bool is_dir, berth_error_t *err)
{
  int fd = create_in_root (rootfd, path, !is_dir, 0755);

  if (fd < 0)
    return berth_make_error (err, -fd, "create mount target `%s` in `%s`", path,
                             root_path ? root_path : "the rootfs");
  return fd;
}
