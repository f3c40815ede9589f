/* cgroup.c - layout detection, paths, directories and the write plan.
 *
 * The backends (cgroup-v1.c, cgroup-v2.c) decide what to write; this file
 * knows where things are and does the writing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup-internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "json.h"
#include "utils.h"

/* cgroupfs files are small; cgroup.procs of a big container is the
 * largest thing read here. */
#define CGROUP_READ_MAX (64u << 20)

/* How long destroy waits for the kernel to release a cgroup whose last
 * task just exited. */
#define CGROUP_RMDIR_WAIT_MS 2000

/* ------------------------------------------------------------------ */
/* Layout                                                               */

/* Mount options of a v1 cgroup mount that are not controllers. */
static bool
is_generic_option (const char *opt)
{
  static const char *const generic[] = {
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
    "nsdelegate",
    "memory_localevents",
    "memory_recursiveprot",
    "memory_hugetlb_accounting",
  };
  size_t i;

  if (strncmp (opt, "name=", 5) == 0)
    return false;
  if (strchr (opt, '=') != NULL)
    return true;
  for (i = 0; i < ARRAY_SIZE (generic); i++)
    if (strcmp (opt, generic[i]) == 0)
      return true;
  return false;
}

/* "rw,cpu,cpuacct" -> "cpu,cpuacct"; NULL when it names no controller. */
static char *
v1_controllers (const char *superopts)
{
  cleanup_free char *copy = xstrdup (superopts);
  char *save = NULL, *tok, *out = NULL;
  size_t len = 0;

  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    {
      size_t tl = strlen (tok);
      if (is_generic_option (tok))
        continue;
      out = xrealloc (out, len + tl + 2);
      if (len)
        out[len++] = ',';
      memcpy (out + len, tok, tl + 1);
      len += tl;
    }
  return out;
}

/* Mountinfo escapes blanks and backslashes as \ooo. */
static char *
mountinfo_unescape (const char *s)
{
  char *out = xmalloc (strlen (s) + 1), *o = out;

  while (*s)
    {
      if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0'
          && s[2] <= '7' && s[3] >= '0' && s[3] <= '7')
        {
          *o++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
          s += 4;
          continue;
        }
      *o++ = *s++;
    }
  *o = '\0';
  return out;
}

static void
layout_add (struct cgroup_layout *l, bool unified, char *controllers,
            const char *root, const char *mountpoint)
{
  struct cgroup_hierarchy *h = NULL;
  bool top = strcmp (root, "/") == 0;
  size_t i;

  for (i = 0; i < l->n; i++)
    {
      struct cgroup_hierarchy *e = &l->h[i];
      if (e->unified == unified
          && (unified || strcmp (e->controllers, controllers) == 0))
        {
          /* The same hierarchy mounted twice: prefer the mount of the
           * hierarchy root over a bind mount of a sub-cgroup.  */
          if (e->root_is_top || !top)
            {
              free (controllers);
              return;
            }
          h = e;
          free (h->mountpoint);
          free (h->controllers);
          break;
        }
    }
  if (h == NULL)
    {
      l->h = xrealloc (l->h, (l->n + 1) * sizeof (*l->h));
      h = &l->h[l->n++];
    }
  h->mountpoint = mountinfo_unescape (mountpoint);
  h->controllers = controllers;
  h->unified = unified;
  h->root_is_top = top;
}

/* Fields of one mountinfo line: 3 root, 4 mount point, then after "-":
 * fstype, source, super options. */
static void
layout_parse_line (struct cgroup_layout *l, char *line)
{
  char *fields[64];
  size_t n = 0, dash;
  char *save = NULL, *tok;

  for (tok = strtok_r (line, " ", &save); tok && n < ARRAY_SIZE (fields);
       tok = strtok_r (NULL, " ", &save))
    fields[n++] = tok;
  for (dash = 6; dash < n; dash++)
    if (strcmp (fields[dash], "-") == 0)
      break;
  if (n < 10 || dash + 3 >= n)
    return;
  if (strcmp (fields[dash + 1], "cgroup2") == 0)
    layout_add (l, true, NULL, fields[3], fields[4]);
  else if (strcmp (fields[dash + 1], "cgroup") == 0)
    {
      char *ctrl = v1_controllers (fields[dash + 3]);
      if (ctrl)
        layout_add (l, false, ctrl, fields[3], fields[4]);
    }
}

static bool
has_real_controller (const struct cgroup_hierarchy *h)
{
  cleanup_free char *copy = NULL;
  char *save = NULL, *tok;

  if (h->unified)
    return false;
  copy = xstrdup (h->controllers);
  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    if (strncmp (tok, "name=", 5) != 0)
      return true;
  return false;
}

int
cgroup_layout_parse (const char *mountinfo, struct cgroup_layout *l,
                     berth_error_t *err)
{
  cleanup_free char *copy = xstrdup (mountinfo);
  char *save = NULL, *line;
  bool v1 = false, v2 = false;
  size_t i, j;

  memset (l, 0, sizeof (*l));
  for (line = strtok_r (copy, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    layout_parse_line (l, line);

  for (i = 0; i < l->n; i++)
    {
      v2 |= l->h[i].unified;
      v1 |= has_real_controller (&l->h[i]);
    }
  if (v1)
    l->mode = v2 ? CGROUP_MODE_HYBRID : CGROUP_MODE_V1;
  else if (v2)
    {
      /* Pure v2: a stray named v1 hierarchy plays no part.  */
      l->mode = CGROUP_MODE_V2;
      for (i = j = 0; i < l->n; i++)
        {
          if (l->h[i].unified)
            l->h[j++] = l->h[i];
          else
            {
              free (l->h[i].mountpoint);
              free (l->h[i].controllers);
            }
        }
      l->n = j;
    }
  else
    {
      cgroup_layout_release (l);
      return berth_make_error (err, ENOENT, "no cgroup filesystem is mounted");
    }
  return 0;
}

void
cgroup_layout_release (struct cgroup_layout *l)
{
  size_t i;

  for (i = 0; i < l->n; i++)
    {
      free (l->h[i].mountpoint);
      free (l->h[i].controllers);
    }
  free (l->h);
  memset (l, 0, sizeof (*l));
}

/* The host layout, detected once.  Read-only after layout_init() ran, so
 * it is safe to share between threads of a long-running process.  */
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;
static struct cgroup_layout layout_cache;
static int layout_status;
static char layout_msg[256];

static void
layout_init (void)
{
  berth_error_t err = NULL;
  cleanup_free char *text = NULL;

  if (read_file ("/proc/self/mountinfo", 16u << 20, &text, NULL, &err) == 0)
    cgroup_layout_parse (text, &layout_cache, &err);
  if (err)
    {
      layout_status = err->status ? err->status : EINVAL;
      snprintf (layout_msg, sizeof (layout_msg), "%s", err->msg);
      berth_error_release (&err);
    }
}

static int
layout_get (const struct cgroup_layout **out, berth_error_t *err)
{
  pthread_once (&layout_once, layout_init);
  if (layout_status)
    {
      /* The stored message already carries strerror: build the error
       * without it and set the status afterwards.  */
      if (err && *err == NULL)
        {
          berth_make_error (err, 0, "detect cgroup layout: %s", layout_msg);
          if (*err)
            (*err)->status = layout_status;
        }
      return -layout_status;
    }
  *out = &layout_cache;
  return 0;
}

const char *
berth_cgroup_layout (void)
{
  const struct cgroup_layout *l = NULL;

  if (layout_get (&l, NULL) < 0)
    return "none";
  switch (l->mode)
    {
    case CGROUP_MODE_V1:
      return "v1";
    case CGROUP_MODE_V2:
      return "v2";
    case CGROUP_MODE_HYBRID:
      return "hybrid";
    default:
      return "none";
    }
}

/* ------------------------------------------------------------------ */
/* Paths                                                                */

int
cgroup_normalize_path (const char *path, char **out, berth_error_t *err)
{
  cleanup_free char *copy = xstrdup (path);
  cleanup_free char *res = xmalloc (strlen (path) + 2);
  char *save = NULL, *tok;
  size_t len = 0;

  res[0] = '\0';
  for (tok = strtok_r (copy, "/", &save); tok;
       tok = strtok_r (NULL, "/", &save))
    {
      if (strcmp (tok, ".") == 0)
        continue;
      /* ".." would leave the hierarchy (or the parent) on the host.  */
      if (strcmp (tok, "..") == 0)
        return berth_make_invalid (
            err, "cgroup path `%s` must not contain `..`", path);
      res[len++] = '/';
      strcpy (res + len, tok);
      len += strlen (tok);
    }
  *out = steal_pointer (&res);
  return 0;
}

int
cgroup_resolve_path (const char *path, const char *parent, const char *id,
                     char **out, berth_error_t *err)
{
  cleanup_free char *joined = NULL;
  cleanup_free char *res = NULL;
  int r;

  if (parent == NULL)
    parent = "";
  if (path && *path == '/')
    joined = xstrdup (path);
  else if (path && *path)
    xasprintf (&joined, "%s/%s", parent, path);
  else
    {
      if (id == NULL || *id == '\0' || strchr (id, '/') || strcmp (id, ".") == 0
          || strcmp (id, "..") == 0)
        return berth_make_invalid (err,
                                   "invalid container id `%s` for a cgroup "
                                   "name",
                                   id ? id : "");
      xasprintf (&joined, "%s/%s", parent, id);
    }
  r = cgroup_normalize_path (joined, &res, err);
  if (r < 0)
    return r;
  if (*res == '\0')
    return berth_make_invalid (err, "cgroup path `%s` is the hierarchy root",
                               joined);
  *out = steal_pointer (&res);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The object                                                           */

struct berth_cgroup *
cgroup_new (const struct cgroup_layout *layout, const char *rel_path,
            const char *prune_parent)
{
  struct berth_cgroup *cg = xmalloc0 (sizeof (*cg));
  size_t i;

  cg->layout = layout;
  cg->ops = layout->mode == CGROUP_MODE_V2 ? &cgroup_v2_ops : &cgroup_v1_ops;
  cg->path = xstrdup (rel_path);
  cg->prune_parent = prune_parent ? xstrdup (prune_parent) : NULL;
  cg->dirs = xmalloc0 ((layout->n + 1) * sizeof (char *));
  cg->created = xmalloc0 ((layout->n + 1) * sizeof (bool));
  for (i = 0; i < layout->n; i++)
    xasprintf (&cg->dirs[i], "%s%s", layout->h[i].mountpoint, rel_path);
  return cg;
}

void
berth_cgroup_free (struct berth_cgroup *cg)
{
  if (cg == NULL)
    return;
  strv_free (cg->dirs);
  free (cg->created);
  free (cg->path);
  free (cg->prune_parent);
  free (cg);
}

void
cleanup_cgroupp (struct berth_cgroup **cg)
{
  berth_cgroup_free (*cg);
  *cg = NULL;
}

const char *
berth_cgroup_path (struct berth_cgroup *cg)
{
  return cg->path;
}

static bool
list_has (const char *list, const char *name, const char *sep)
{
  size_t nl = strlen (name);
  const char *p = list;

  while (p && *p)
    {
      size_t tl = strcspn (p, sep);
      if (tl == nl && strncmp (p, name, nl) == 0)
        return true;
      p += tl;
      p += strspn (p, sep);
    }
  return false;
}

const char *
cgroup_v1_dir (struct berth_cgroup *cg, const char *controller)
{
  size_t i;

  for (i = 0; i < cg->layout->n; i++)
    {
      const struct cgroup_hierarchy *h = &cg->layout->h[i];
      if (!h->unified && list_has (h->controllers, controller, ","))
        return cg->dirs[i];
    }
  return NULL;
}

const char *
cgroup_unified_dir (struct berth_cgroup *cg)
{
  size_t i;

  for (i = 0; i < cg->layout->n; i++)
    if (cg->layout->h[i].unified)
      return cg->dirs[i];
  return NULL;
}

/* The prune parent for REL when it lies below PARENT, else NULL. */
static char *
prune_parent_for (const char *rel, const char *parent)
{
  cleanup_free char *norm = NULL;
  size_t len;

  if (parent == NULL || cgroup_normalize_path (parent, &norm, NULL) < 0)
    return NULL;
  len = strlen (norm);
  if (len == 0 || strncmp (rel, norm, len) != 0 || rel[len] != '/')
    return NULL;
  return steal_pointer (&norm);
}

int
berth_cgroup_load_with_parent (const char *rel_path, const char *parent,
                               struct berth_cgroup **out, berth_error_t *err)
{
  const struct cgroup_layout *layout = NULL;
  cleanup_free char *norm = NULL;
  cleanup_free char *prune = NULL;
  int r;

  r = layout_get (&layout, err);
  if (r < 0)
    return r;
  if (rel_path == NULL || *rel_path != '/')
    return berth_make_invalid (err, "stored cgroup path `%s` is not absolute",
                               rel_path ? rel_path : "");
  r = cgroup_normalize_path (rel_path, &norm, err);
  if (r < 0)
    return r;
  if (*norm == '\0')
    return berth_make_invalid (
        err, "stored cgroup path `%s` is the hierarchy root", rel_path);
  prune = prune_parent_for (norm, parent);
  *out = cgroup_new (layout, norm, prune);
  return 0;
}

int
berth_cgroup_load (const char *rel_path, struct berth_cgroup **out,
                   berth_error_t *err)
{
  return berth_cgroup_load_with_parent (rel_path, NULL, out, err);
}

/* ------------------------------------------------------------------ */
/* Files                                                                */

void
cgroup_sleep_ms (unsigned ms)
{
  struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

int
cgroup_read (const char *dir, const char *file, char **out, berth_error_t *err)
{
  cleanup_free char *path = NULL;

  xasprintf (&path, "%s/%s", dir, file);
  return read_file (path, CGROUP_READ_MAX, out, NULL, err);
}

int
cgroup_read_u64 (const char *dir, const char *file, uint64_t *out,
                 berth_error_t *err)
{
  cleanup_free char *text = NULL;
  char *end;
  int r;

  r = cgroup_read (dir, file, &text, err);
  if (r < 0)
    return r;
  if (strncmp (text, "max", 3) == 0)
    {
      *out = UINT64_MAX;
      return 0;
    }
  errno = 0;
  *out = strtoull (text, &end, 10);
  if (errno || end == text || (*end && !isspace ((unsigned char) *end)))
    return berth_make_invalid (err, "`%s/%s` holds `%s`, not a number", dir,
                               file, text);
  return 0;
}

/* Open DIR/FILE for writing; -errno without filling an error.  O_TRUNC is
 * ignored by cgroupfs (as for `echo v > file`) and keeps the executor
 * usable on ordinary files in the unit tests.  */
static int
cgroup_open_write (const char *dir, const char *file)
{
  cleanup_free char *path = NULL;
  int fd;

  xasprintf (&path, "%s/%s", dir, file);
  fd = open (path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

/* One write(2): cgroupfs takes a value per write call. */
static int
cgroup_write_fd (int fd, const char *value)
{
  size_t len = strlen (value);
  ssize_t w;

  do
    w = write (fd, value, len);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    return -errno;
  return (size_t) w == len ? 0 : -EIO;
}

int
cgroup_write (const char *dir, const char *file, const char *value,
              berth_error_t *err)
{
  cleanup_close int fd = cgroup_open_write (dir, file);
  int r;

  if (fd < 0)
    return berth_make_error (err, -fd, "open `%s/%s`", dir, file);
  r = cgroup_write_fd (fd, value);
  if (r < 0)
    return berth_make_error (err, -r, "write `%s` to `%s/%s`", value, dir,
                             file);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Create                                                               */

static int
init_level (const struct berth_cgroup *cg, size_t i, const char *parent,
            const char *dir, berth_error_t *err)
{
  const struct cgroup_hierarchy *h = &cg->layout->h[i];

  if (!h->unified)
    return cgroup_v1_ops.init_level (h, parent, dir, err);
  /* On hybrid the unified hierarchy only tracks membership: leave its
   * controllers alone.  */
  if (cg->layout->mode == CGROUP_MODE_V2)
    return cgroup_v2_ops.init_level (h, parent, dir, err);
  return 0;
}

/* mkdir -p of the container's directory in hierarchy I, one level at a
 * time so each level can be initialised.  A concurrent destroy may remove
 * an empty parent level between our mkdirs (ENOENT): start over then. */
static int
make_dirs (struct berth_cgroup *cg, size_t i, berth_error_t *err)
{
  const char *root = cg->layout->h[i].mountpoint;
  int attempt;

  for (attempt = 0;; attempt++)
    {
      cleanup_free char *cur = xstrdup (root);
      const char *p = cg->path;
      bool retry = false;

      while (*p == '/')
        {
          size_t len = strcspn (p + 1, "/");
          cleanup_free char *next = NULL;
          bool last = p[1 + len] == '\0';
          int r;

          xasprintf (&next, "%s/%.*s", cur, (int) len, p + 1);
          if (mkdir (next, 0755) == 0)
            cg->created[i] = last;
          else if (errno == ENOENT && attempt < 3)
            {
              retry = true;
              break;
            }
          else if (errno != EEXIST)
            return berth_make_error (err, errno, "mkdir `%s`", next);
          r = init_level (cg, i, cur, next, err);
          if (r < 0)
            return r;
          free (cur);
          cur = steal_pointer (&next);
          p += 1 + len;
        }
      if (!retry)
        return 0;
    }
}

static void
rollback_dirs (struct berth_cgroup *cg)
{
  size_t i;

  for (i = 0; i < cg->layout->n; i++)
    if (cg->created[i])
      {
        rmdir (cg->dirs[i]);
        cg->created[i] = false;
      }
}

static int
enter (struct berth_cgroup *cg, pid_t pid, berth_error_t *err)
{
  char buf[32];
  size_t i;
  int r;

  snprintf (buf, sizeof (buf), "%d", (int) pid);
  for (i = 0; i < cg->layout->n; i++)
    {
      r = cgroup_write (cg->dirs[i], "cgroup.procs", buf, err);
      if (r < 0)
        return berth_error_wrap (err, "move pid %d into cgroup", (int) pid);
    }
  return 0;
}

/* For a cgroup placed under the default parent, remove the levels above
 * the container that are now empty (the parent itself and any levels of
 * a relative cgroupsPath), deepest first; the first level still in use
 * (EBUSY: it has other children) ends the walk.  A racing create of a
 * sibling retries its mkdir (see make_dirs).  */
static void
prune_parents (struct berth_cgroup *cg)
{
  size_t i;

  for (i = 0; i < cg->layout->n; i++)
    {
      size_t rootlen = strlen (cg->layout->h[i].mountpoint);
      cleanup_free char *p = xstrdup (cg->dirs[i]);
      char *slash;

      for (;;)
        {
          slash = strrchr (p, '/');
          if (slash == NULL || (size_t) (slash - p) <= rootlen)
            break;
          *slash = '\0';
          if (rmdir (p) < 0 && errno != ENOENT)
            break;
        }
    }
}

int
berth_cgroup_create (const char *path, const char *parent, const char *id,
                     pid_t pid, struct berth_cgroup **out, berth_error_t *err)
{
  const struct cgroup_layout *layout = NULL;
  cleanup_free char *rel = NULL;
  cleanup_free char *prune = NULL;
  cleanup_cgroup struct berth_cgroup *cg = NULL;
  size_t i;
  int r;

  r = layout_get (&layout, err);
  if (r < 0)
    return r;
  r = cgroup_resolve_path (path, parent, id, &rel, err);
  if (r < 0)
    return r;
  prune = prune_parent_for (rel, parent);
  cg = cgroup_new (layout, rel, prune);

  for (i = 0; i < layout->n; i++)
    {
      r = make_dirs (cg, i, err);
      if (r < 0)
        goto fail;
    }
  if (pid > 0)
    {
      r = enter (cg, pid, err);
      if (r < 0)
        goto fail;
    }
  *out = steal_pointer (&cg);
  return 0;

fail:
  rollback_dirs (cg);
  if (cg->prune_parent)
    prune_parents (cg);
  return berth_error_wrap (err, "create cgroup `%s`", rel);
}

/* ------------------------------------------------------------------ */
/* Destroy                                                              */

static int
rmdir_wait (const char *path, uint64_t deadline, berth_error_t *err)
{
  long us = 50;
  for (;;)
    {
      if (rmdir (path) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY || now_ns () >= deadline)
        return berth_make_error (err, errno, "rmdir `%s`", path);
      /* The kernel frees a cgroup a moment after its last task is reaped:
       * back off from 50 us so the common case costs little.  */
      nanosleep (&(struct timespec){ 0, us * 1000 }, NULL);
      if (us < 10000)
        us *= 2;
    }
}

/* Remove the cgroup at PATH and its sub-cgroups.  cgroupfs directories
 * hold only kernel files, which go away with rmdir; only subdirectories
 * need a walk.  */
static int
rmdir_tree (const char *path, uint64_t deadline, int depth, berth_error_t *err)
{
  cleanup_dir DIR *d = opendir (path);
  struct dirent *de;
  int r;

  if (d == NULL)
    return errno == ENOENT ? 0
                           : berth_make_error (err, errno, "open `%s`", path);
  if (depth > 64)
    return berth_make_error (err, ELOOP, "cgroup `%s` is nested too deep",
                             path);
  while ((de = readdir (d)))
    {
      cleanup_free char *sub = NULL;
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0
          || strcmp (de->d_name, "..") == 0)
        continue;
      xasprintf (&sub, "%s/%s", path, de->d_name);
      r = rmdir_tree (sub, deadline, depth + 1, err);
      if (r < 0)
        return r;
    }
  return rmdir_wait (path, deadline, err);
}

int
berth_cgroup_destroy (struct berth_cgroup *cg, berth_error_t *err)
{
  uint64_t deadline = now_ns () + CGROUP_RMDIR_WAIT_MS * 1000000ull;
  size_t i;
  int ret = 0;

  /* Every hierarchy is attempted; the first failure is reported.  */
  for (i = 0; i < cg->layout->n; i++)
    {
      int r = rmdir_tree (cg->dirs[i], deadline, 0, err);
      if (r < 0 && ret == 0)
        ret = r;
    }
  if (ret < 0)
    return berth_error_wrap (err, "remove cgroup `%s`", cg->path);
  if (cg->prune_parent)
    prune_parents (cg);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Pids, freeze, stats, apply                                           */

/* The directory whose cgroup.procs lists the container's processes: the
 * unified one on v2; on v1 one of the hierarchies every runtime joins. */
static const char *
procs_dir (struct berth_cgroup *cg)
{
  static const char *const prefer[]
      = { "freezer", "pids", "memory", "cpu", "devices" };
  const char *dir;
  size_t i;

  if (cg->layout->mode == CGROUP_MODE_V2)
    return cgroup_unified_dir (cg);
  for (i = 0; i < ARRAY_SIZE (prefer); i++)
    if ((dir = cgroup_v1_dir (cg, prefer[i])))
      return dir;
  dir = cgroup_unified_dir (cg);
  return dir ? dir : cg->dirs[0];
}

struct pid_list
{
  pid_t *v;
  size_t n, alloc;
};

static int
collect_pids (const char *dir, struct pid_list *l, int depth,
              berth_error_t *err)
{
  cleanup_free char *text = NULL;
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  char *p, *end;
  int r;

  if (depth > 64)
    return berth_make_error (err, ELOOP, "cgroup `%s` is nested too deep", dir);
  r = cgroup_read (dir, "cgroup.procs", &text, NULL);
  /* A sub-cgroup may be removed while we walk: it has no pids then.  */
  if (r == -ENOENT && depth > 0)
    return 0;
  if (r < 0)
    return berth_make_error (err, -r, "read `%s/cgroup.procs`", dir);
  for (p = text; *p; p = end)
    {
      long v = strtol (p, &end, 10);
      if (end == p)
        break;
      if (l->n == l->alloc)
        {
          l->alloc = l->alloc ? l->alloc * 2 : 32;
          l->v = xrealloc (l->v, l->alloc * sizeof (pid_t));
        }
      l->v[l->n++] = (pid_t) v;
    }
  d = opendir (dir);
  if (d == NULL && errno == ENOENT && depth > 0)
    return 0;
  if (d == NULL)
    return berth_make_error (err, errno, "open `%s`", dir);
  while ((de = readdir (d)))
    {
      cleanup_free char *sub = NULL;
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0
          || strcmp (de->d_name, "..") == 0)
        continue;
      xasprintf (&sub, "%s/%s", dir, de->d_name);
      r = collect_pids (sub, l, depth + 1, err);
      if (r < 0)
        return r;
    }
  return 0;
}

int
berth_cgroup_pids (struct berth_cgroup *cg, pid_t **pids, size_t *n,
                   berth_error_t *err)
{
  struct pid_list l = { NULL, 0, 0 };
  const char *dir = procs_dir (cg);
  int r;

  *pids = NULL;
  *n = 0;
  if (access (dir, F_OK) < 0 && errno == ENOENT)
    return 0;
  r = collect_pids (dir, &l, 0, err);
  if (r < 0)
    {
      free (l.v);
      return berth_error_wrap (err, "list pids of cgroup `%s`", cg->path);
    }
  *pids = l.v;
  *n = l.n;
  return 0;
}

int
berth_cgroup_freeze (struct berth_cgroup *cg, bool frozen, berth_error_t *err)
{
  int r = cg->ops->freeze (cg, frozen, err);

  if (r < 0)
    return berth_error_wrap (err, "%s cgroup `%s`", frozen ? "freeze" : "thaw",
                             cg->path);
  return 0;
}

int
berth_cgroup_stats (struct berth_cgroup *cg, json_t **out, berth_error_t *err)
{
  cleanup_json json_t *stats = json_object ();
  int r;

  r = cg->ops->stats (cg, stats, err);
  if (r < 0)
    return berth_error_wrap (err, "stats of cgroup `%s`", cg->path);
  *out = steal_pointer (&stats);
  return 0;
}

int
berth_cgroup_apply (struct berth_cgroup *cg, json_t *resources,
                    berth_error_t *err)
{
  int r;

  if (resources == NULL || json_is_null (resources))
    return 0;
  if (!json_is_object (resources))
    return berth_make_invalid (err, "linux.resources: expected an object");
  r = cg->ops->apply (cg, resources, err);
  if (r < 0)
    return berth_error_wrap (err, "apply resources to cgroup `%s`", cg->path);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The write plan                                                       */

void
cgroup_plan_release (struct cgroup_plan *plan)
{
  size_t i;

  for (i = 0; i < plan->n; i++)
    {
      free (plan->w[i].field);
      free (plan->w[i].file);
      free (plan->w[i].value);
      free (plan->w[i].alt_file);
      free (plan->w[i].alt_value);
    }
  free (plan->w);
  memset (plan, 0, sizeof (*plan));
}

struct cgroup_write *
cgroup_plan_add (struct cgroup_plan *plan, const char *controller,
                 const char *field, const char *file, unsigned flags,
                 const char *fmt, ...)
{
  struct cgroup_write *w;
  va_list ap;

  if (plan->n == plan->alloc)
    {
      plan->alloc = plan->alloc ? plan->alloc * 2 : 16;
      plan->w = xrealloc (plan->w, plan->alloc * sizeof (*plan->w));
    }
  w = &plan->w[plan->n++];
  memset (w, 0, sizeof (*w));
  w->controller = controller;
  w->field = xstrdup (field);
  w->file = xstrdup (file);
  w->flags = flags;
  va_start (ap, fmt);
  if (vasprintf (&w->value, fmt, ap) < 0)
    w->value = NULL;
  va_end (ap);
  if (w->value == NULL)
    w->value = xstrdup ("");
  return w;
}

static bool
valid_unified_key (const char *key)
{
  if (*key == '\0' || strchr (key, '/') || strcmp (key, ".") == 0
      || strcmp (key, "..") == 0)
    return false;
  /* Moving processes or killing them is not a resource setting.  */
  return strcmp (key, "cgroup.procs") != 0
         && strcmp (key, "cgroup.threads") != 0
         && strcmp (key, "cgroup.kill") != 0;
}

int
cgroup_plan_unified (json_t *resources, struct cgroup_plan *plan,
                     berth_error_t *err)
{
  json_t *unified = NULL, *value;
  const char *key;
  int r;

  r = bjson_object (resources, "linux.resources", "unified", &unified, err);
  if (r <= 0)
    return r;
  json_object_foreach (unified, key, value)
  {
    cleanup_free char *field = NULL;

    xasprintf (&field, "linux.resources.unified.%s", key);
    if (!valid_unified_key (key))
      return berth_make_invalid (err, "%s: not a cgroup file name", field);
    if (!json_is_string (value))
      return berth_make_invalid (err, "%s: expected a string", field);
    cgroup_plan_add (plan, NULL, field, key, CGW_UNIFIED, "%s",
                     json_string_value (value));
  }
  return 0;
}

/* Where entry W goes; fails when its controller is not available. */
static int
plan_dir (struct berth_cgroup *cg, const struct cgroup_write *w,
          const char *v2_controllers, const char **dir, berth_error_t *err)
{
  if (cg->layout->mode == CGROUP_MODE_V2 || (w->flags & CGW_UNIFIED))
    {
      *dir = cgroup_unified_dir (cg);
      if (*dir == NULL)
        return berth_make_error (err, EOPNOTSUPP,
                                 "%s is set but this host has no cgroup v2 "
                                 "(unified) hierarchy",
                                 w->field);
      if (w->controller && !list_has (v2_controllers, w->controller, " \n"))
        return berth_make_error (err, EOPNOTSUPP,
                                 "%s is set but the %s cgroup controller is "
                                 "not available in `%s`",
                                 w->field, w->controller, *dir);
      return 0;
    }
  *dir = w->controller ? cgroup_v1_dir (cg, w->controller) : NULL;
  if (*dir == NULL)
    return berth_make_error (err, EOPNOTSUPP,
                             "%s is set but the %s cgroup controller is not "
                             "mounted",
                             w->field, w->controller ? w->controller : "?");
  return 0;
}

/* memory.checkBeforeUpdate: a new limit below the usage would make the
 * kernel reclaim or OOM-kill right away; refuse it instead.  */
static int
check_usage (const char *dir, const struct cgroup_write *w, berth_error_t *err)
{
  uint64_t usage = 0;
  int64_t limit = 0;

  if (parse_int64 (w->value, &limit) < 0 || limit < 0)
    return 0;
  if (cgroup_read_u64 (dir, w->usage_file, &usage, NULL) < 0)
    return 0;
  if ((uint64_t) limit < usage)
    return berth_make_invalid (err,
                               "%s: the new limit %" PRId64 " is below the "
                               "current usage %" PRIu64,
                               w->field, limit, usage);
  return 0;
}

/* "QUOTA PERIOD" for cpu.max when only the period is given. */
static char *
keep_quota (const char *dir, const char *period)
{
  cleanup_free char *cur = NULL;
  char *r = NULL;
  size_t len;

  if (cgroup_read (dir, "cpu.max", &cur, NULL) < 0)
    len = 0;
  else
    len = strcspn (cur, " \n");
  xasprintf (&r, "%.*s %s", (int) (len ? len : 3), len ? cur : "max", period);
  return r;
}

static int
plan_write_one (const char *dir, const struct cgroup_write *w,
                berth_error_t *err)
{
  cleanup_close int fd = -1;
  cleanup_free char *quota_value = NULL;
  const char *file = w->file, *value = w->value;
  int r;

  /* Read what the write depends on before opening (and truncating).  */
  if (w->usage_file && (r = check_usage (dir, w, err)) < 0)
    return r;
  if (w->flags & CGW_KEEP_QUOTA)
    value = quota_value = keep_quota (dir, value);
  fd = cgroup_open_write (dir, file);
  if (fd == -ENOENT && w->alt_file)
    {
      file = w->alt_file;
      value = w->alt_value;
      fd = cgroup_open_write (dir, file);
    }
  if (fd == -ENOENT && (w->flags & CGW_OPTIONAL))
    return 0;
  if (fd == -ENOENT)
    return berth_make_error (err, ENOENT,
                             "%s is set but `%s/%s` does not exist (not "
                             "supported by this kernel)",
                             w->field, dir, file);
  if (fd < 0)
    return berth_make_error (err, -fd, "%s: open `%s/%s`", w->field, dir, file);
  r = cgroup_write_fd (fd, value);
  if (r < 0)
    return berth_make_error (err, -r, "%s: write `%s` to `%s/%s`", w->field,
                             value, dir, file);
  return 0;
}

int
cgroup_plan_run (struct berth_cgroup *cg, struct cgroup_plan *plan,
                 berth_error_t *err)
{
  cleanup_free const char **dirs = NULL;
  cleanup_free char *v2_controllers = NULL;
  const char *udir = cgroup_unified_dir (cg);
  size_t i;
  int r;

  if (plan->n == 0)
    return 0;
  if (udir
      && cgroup_read (udir, "cgroup.controllers", &v2_controllers, NULL) < 0)
    v2_controllers = xstrdup ("");
  dirs = xmalloc0 (plan->n * sizeof (*dirs));
  for (i = 0; i < plan->n; i++)
    {
      r = plan_dir (cg, &plan->w[i], v2_controllers, &dirs[i], err);
      if (r < 0)
        return r;
    }
  for (i = 0; i < plan->n; i++)
    {
      berth_error_t first = NULL;
      struct cgroup_write *w = &plan->w[i];

      r = plan_write_one (dirs[i], w, &first);
      if (r == -EINVAL && (w->flags & CGW_SWAP_ON_FAIL) && i + 1 < plan->n)
        {
          /* The pair constrains each other: write the other one first. */
          berth_error_release (&first);
          r = plan_write_one (dirs[i + 1], &plan->w[i + 1], err);
          if (r == 0)
            r = plan_write_one (dirs[i], w, err);
          i++;
        }
      else if (r < 0 && err && *err == NULL)
        *err = steal_pointer (&first);
      berth_error_release (&first);
      if (r < 0)
        return r;
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Stats helpers                                                        */

json_t *
cgroup_json_u64 (uint64_t v)
{
  return json_integer (v > (uint64_t) INT64_MAX ? INT64_MAX : (json_int_t) v);
}

void
cgroup_parse_flat_keyed (const char *text, json_t *obj)
{
  const char *p = text;

  while (*p)
    {
      size_t klen = strcspn (p, " \n");
      const char *nl = strchr (p, '\n');
      if (p[klen] == ' ' && klen > 0)
        {
          char *end;
          unsigned long long v;
          errno = 0;
          v = strtoull (p + klen + 1, &end, 10);
          if (errno == 0 && end != p + klen + 1 && (*end == '\n' || !*end))
            {
              cleanup_free char *key = xstrndup (p, klen);
              json_object_set_new (obj, key, cgroup_json_u64 (v));
            }
        }
      if (nl == NULL)
        break;
      p = nl + 1;
    }
}

json_t *
cgroup_parse_number_list (const char *text)
{
  json_t *arr = json_array ();
  const char *p = text;
  char *end;

  for (;;)
    {
      unsigned long long v;
      errno = 0;
      v = strtoull (p, &end, 10);
      if (end == p || errno)
        break;
      json_array_append_new (arr, cgroup_json_u64 (v));
      p = end;
    }
  return arr;
}

json_t *
cgroup_blkio_entry (unsigned long long major, unsigned long long minor,
                    const char *op, uint64_t value)
{
  json_t *e = json_object ();

  json_object_set_new (e, "major", cgroup_json_u64 (major));
  json_object_set_new (e, "minor", cgroup_json_u64 (minor));
  json_object_set_new (e, "op", json_string (op));
  json_object_set_new (e, "value", cgroup_json_u64 (value));
  return e;
}

void
cgroup_stat_u64 (json_t *obj, const char *key, const char *dir,
                 const char *file)
{
  uint64_t v;

  if (dir && cgroup_read_u64 (dir, file, &v, NULL) == 0)
    json_object_set_new (obj, key, cgroup_json_u64 (v));
}

void
cgroup_stat_hugetlb (json_t *obj, const char *dir, const char *suffix,
                     void (*fill) (json_t *entry, const char *dir,
                                   const char *size))
{
  cleanup_dir DIR *d = dir ? opendir (dir) : NULL;
  size_t slen = strlen (suffix);
  struct dirent *de;

  if (d == NULL)
    return;
  while ((de = readdir (d)))
    {
      const char *name = de->d_name, *dot;
      size_t len = strlen (name);
      cleanup_free char *size = NULL;
      json_t *entry;

      if (strncmp (name, "hugetlb.", 8) != 0 || len <= 8 + slen + 1
          || strcmp (name + len - slen, suffix) != 0
          || name[len - slen - 1] != '.')
        continue;
      dot = name + len - slen - 1;
      size = xstrndup (name + 8, dot - (name + 8));
      if (!cgroup_valid_page_size (size))
        continue;
      entry = json_object ();
      fill (entry, dir, size);
      json_object_set_new (obj, size, entry);
    }
}

/* "KEY N" lines: the value of KEY, or -1 when absent. */
static int64_t
keyed_value (const char *text, const char *key)
{
  size_t klen = strlen (key);
  const char *p = text;
  while (p && *p)
    {
      if (strncmp (p, key, klen) == 0 && p[klen] == ' ')
        return strtoll (p + klen + 1, NULL, 10);
      p = strchr (p, '\n');
      if (p)
        p++;
    }
  return -1;
}

int
berth_cgroup_oom_kills (struct berth_cgroup *cg, uint64_t *n,
                        berth_error_t *err)
{
  cleanup_free char *text = NULL;
  const char *dir = cgroup_v1_dir (cg, "memory");
  const char *file = "memory.oom_control";
  int64_t v;

  if (dir == NULL)
    {
      dir = cgroup_unified_dir (cg);
      file = "memory.events";
    }
  *n = 0;
  if (dir == NULL)
    return 0;
  if (cgroup_read (dir, file, &text, err) < 0)
    {
      /* No memory controller there: no OOM kills to report.  */
      if ((*err)->status == ENOENT)
        {
          berth_error_release (err);
          return 0;
        }
      return -1;
    }
  v = keyed_value (text, "oom_kill");
  *n = v > 0 ? (uint64_t) v : 0;
  return 0;
}
