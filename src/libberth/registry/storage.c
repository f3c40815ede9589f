/* storage.c - the storage root, its helpers, repositories and blobs (see
 * storage.h).  Manifests and tags are in storage-manifest.c, upload
 * sessions in upload.c. */
#include "registry/storage-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry/gc.h"
#include "utils.h"

/* --- Helpers ------------------------------------------------------------ */

char *
storage_blob_path (const struct registry_digest *d)
{
  char *p;
  const char *hex = registry_digest_hex (d);
  xasprintf (&p, "blobs/%s/%.2s/%s", registry_digest_alg_name (d->alg), hex,
             hex);
  return p;
}

char *
storage_link_path (const char *name, const char *what,
                   const struct registry_digest *d)
{
  char *p;
  xasprintf (&p, REPOS_DIR "/%s/%s/%s/%s", name, what,
             registry_digest_alg_name (d->alg), registry_digest_hex (d));
  return p;
}

void
storage_random_hex (char *buf, size_t size)
{
  static const char digits[] = "0123456789abcdef";
  unsigned char r[16];
  size_t i, got = 0;

  while (got < sizeof (r))
    {
      ssize_t n = getrandom (r + got, sizeof (r) - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        abort (); /* no randomness: nothing sensible to do */
      got += n;
    }
  for (i = 0; i < sizeof (r) && 2 * i + 2 < size; i++)
    {
      buf[2 * i] = digits[r[i] >> 4];
      buf[2 * i + 1] = digits[r[i] & 15];
    }
  buf[2 * i] = '\0';
}

void
storage_tmp_name (char *buf, size_t size)
{
  char hex[33];
  storage_random_hex (hex, sizeof (hex));
  snprintf (buf, size, UPLOADS_DIR "/%s.tmp", hex);
}

bool
storage_exists (struct registry_storage *s, const char *rel)
{
  struct stat st;
  return fstatat (s->root_fd, rel, &st, 0) == 0;
}

int
storage_mkdirs (struct registry_storage *s, const char *rel, berth_error_t *err)
{
  cleanup_free char *p = NULL;
  char *c;
  struct stat st;

  if (fstatat (s->root_fd, rel, &st, 0) == 0 && S_ISDIR (st.st_mode))
    return 0;
  p = xstrdup (rel);
  for (c = p;; c++)
    {
      if (*c != '/' && *c != '\0')
        continue;
      {
        char saved = *c;
        *c = '\0';
        if (mkdirat (s->root_fd, p, 0755) < 0 && errno != EEXIST)
          return berth_make_error (err, errno, "mkdir `%s/%s`", s->root, p);
        *c = saved;
      }
      if (*c == '\0')
        return 0;
    }
}

int
storage_mkdirs_parent (struct registry_storage *s, const char *rel,
                       berth_error_t *err)
{
  cleanup_free char *dir = xstrdup (rel);
  char *slash = strrchr (dir, '/');
  if (slash == NULL)
    return 0;
  *slash = '\0';
  return storage_mkdirs (s, dir, err);
}

int
storage_sync_parent (struct registry_storage *s, const char *rel,
                     berth_error_t *err)
{
  cleanup_free char *dir = xstrdup (rel);
  cleanup_close int fd = -1;
  char *slash = strrchr (dir, '/');

  if (slash)
    *slash = '\0';
  fd = openat (s->root_fd, slash ? dir : ".",
               O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s/%s`", s->root, dir);
  if (fsync (fd) < 0)
    return berth_make_error (err, errno, "fsync `%s/%s`", s->root, dir);
  return 0;
}

int
storage_write_atomic (struct registry_storage *s, const char *rel,
                      const void *data, size_t len, berth_error_t *err)
{
  char tmp[64];
  cleanup_close int fd = -1;
  ssize_t w;

  storage_tmp_name (tmp, sizeof (tmp));
  fd = openat (s->root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return berth_make_error (err, errno, "create `%s/%s`", s->root, tmp);
  w = safe_write_all (fd, data, len);
  if (w < 0)
    {
      berth_make_error (err, (int) -w, "write `%s/%s`", s->root, tmp);
      goto fail;
    }
  if (fsync (fd) < 0)
    {
      berth_make_error (err, errno, "fsync `%s/%s`", s->root, tmp);
      goto fail;
    }
  if (storage_mkdirs_parent (s, rel, err) < 0)
    goto fail;
  if (renameat (s->root_fd, tmp, s->root_fd, rel) < 0)
    {
      berth_make_error (err, errno, "rename to `%s/%s`", s->root, rel);
      goto fail;
    }
  return storage_sync_parent (s, rel, err);

fail:
  unlinkat (s->root_fd, tmp, 0);
  return berth_error_code (*err);
}

int
storage_touch (struct registry_storage *s, const char *rel, berth_error_t *err)
{
  cleanup_close int fd = -1;

  if (storage_exists (s, rel))
    return 0;
  if (storage_mkdirs_parent (s, rel, err) < 0)
    return berth_error_code (*err);
  fd = openat (s->root_fd, rel, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return berth_make_error (err, errno, "create `%s/%s`", s->root, rel);
  return storage_sync_parent (s, rel, err);
}

int
storage_read (struct registry_storage *s, const char *rel, size_t max,
              char **out, size_t *len, berth_error_t *err)
{
  return read_file_at (s->root_fd, rel, max, out, len, err);
}

/* --- Open, close -------------------------------------------------------- */

int
registry_storage_open (const char *root,
                       const struct registry_storage_opts *opts,
                       struct registry_storage **out, berth_error_t *err)
{
  struct registry_storage *s;
  int r;

  r = mkdir_p (root, 0755, err);
  if (r < 0)
    return berth_error_wrap (err, "storage root");
  s = xmalloc0 (sizeof (*s));
  s->root = xstrdup (root);
  s->root_fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->root_fd < 0)
    {
      r = berth_make_error (err, errno, "open storage root `%s`", root);
      free (s->root);
      free (s);
      return r;
    }
  s->max_manifest
      = opts->max_manifest_bytes ? opts->max_manifest_bytes : 4 * 1024 * 1024;
  s->upload_expire
      = opts->upload_expire_seconds > 0 ? opts->upload_expire_seconds : 3600;
  pthread_mutex_init (&s->uploads_lock, NULL);
  registry_gc_storage_init (s);
  if (storage_mkdirs (s, "blobs", err) < 0
      || storage_mkdirs (s, REPOS_DIR, err) < 0
      || storage_mkdirs (s, UPLOADS_DIR, err) < 0)
    {
      r = berth_error_code (*err);
      registry_storage_free (s);
      return r;
    }
  s->cache = registry_cache_new (opts->cache_bytes);
  storage_uploads_sweep (s, true);
  *out = s;
  return 0;
}

void
registry_storage_free (struct registry_storage *s)
{
  if (s == NULL)
    return;
  storage_uploads_free (s);
  registry_cache_free (s->cache);
  pthread_mutex_destroy (&s->uploads_lock);
  registry_gc_storage_fini (s);
  if (s->root_fd >= 0)
    close (s->root_fd);
  free (s->root);
  free (s);
}

/* --- Repositories ------------------------------------------------------- */

static bool
repo_dir_is_repo (int dirfd)
{
  struct stat st;
  return fstatat (dirfd, "_manifests", &st, 0) == 0
         || fstatat (dirfd, "_layers", &st, 0) == 0;
}

bool
registry_storage_repo_exists (struct registry_storage *s, const char *name)
{
  cleanup_close int fd = -1;
  cleanup_free char *rel = NULL;

  xasprintf (&rel, REPOS_DIR "/%s", name);
  fd = openat (s->root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd >= 0 && repo_dir_is_repo (fd);
}

void
storage_strv_push (struct storage_strv *b, char *s)
{
  if (b->n + 2 > b->alloc)
    {
      b->alloc = b->alloc ? 2 * b->alloc : 16;
      b->v = xrealloc (b->v, b->alloc * sizeof (char *));
    }
  b->v[b->n++] = s;
  b->v[b->n] = NULL;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

char **
storage_strv_finish (struct storage_strv *b)
{
  if (b->v == NULL)
    b->v = xmalloc0 (sizeof (char *));
  qsort (b->v, b->n, sizeof (char *), cmp_str);
  return steal_pointer (&b->v);
}

/* Collect the repositories under DIRFD (named PREFIX).  Depth is bounded:
 * a name is at most REGISTRY_NAME_MAX characters.  */
static int
walk_repos (int dirfd, const char *prefix, struct storage_strv *b,
            berth_error_t *err)
{
  DIR *d;
  struct dirent *de;
  int fd = dup (dirfd);

  if (fd < 0)
    return berth_make_error (err, errno, "dup");
  d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return berth_make_error (err, errno, "opendir `%s`", prefix);
    }
  rewinddir (d);
  while ((de = readdir (d)))
    {
      cleanup_free char *name = NULL;
      cleanup_close int sub = -1;
      if (de->d_name[0] == '.' || de->d_name[0] == '_')
        continue;
      if (*prefix)
        xasprintf (&name, "%s/%s", prefix, de->d_name);
      else
        name = xstrdup (de->d_name);
      if (strlen (name) > REGISTRY_NAME_MAX)
        continue;
      sub = openat (dirfd, de->d_name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        continue;
      if (repo_dir_is_repo (sub))
        storage_strv_push (b, xstrdup (name));
      if (walk_repos (sub, name, b, err) < 0)
        {
          closedir (d);
          return berth_error_code (*err);
        }
    }
  closedir (d);
  return 0;
}

int
registry_storage_catalog (struct registry_storage *s, char ***out,
                          berth_error_t *err)
{
  struct storage_strv b = { 0 };
  cleanup_close int fd = -1;

  fd = openat (s->root_fd, REPOS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s/" REPOS_DIR "`", s->root);
  if (walk_repos (fd, "", &b, err) < 0)
    {
      strv_free (b.v);
      return berth_error_code (*err);
    }
  *out = storage_strv_finish (&b);
  return 0;
}

/* --- Blobs -------------------------------------------------------------- */

static bool
repo_holds (struct registry_storage *s, const char *name,
            const struct registry_digest *d)
{
  cleanup_free char *layer = storage_link_path (name, "_layers", d);
  cleanup_free char *manifest = NULL;
  if (storage_exists (s, layer))
    return true;
  manifest = storage_link_path (name, "_manifests", d);
  return storage_exists (s, manifest);
}

int
registry_storage_blob_stat (struct registry_storage *s, const char *name,
                            const struct registry_digest *digest,
                            uint64_t *size, berth_error_t *err)
{
  cleanup_free char *blob = NULL;
  struct stat st;

  if (!repo_holds (s, name, digest))
    return berth_make_error (err, ENOENT, "blob `%s` in `%s`", digest->str,
                             name);
  blob = storage_blob_path (digest);
  if (fstatat (s->root_fd, blob, &st, 0) < 0)
    return berth_make_error (err, errno, "blob `%s`", digest->str);
  *size = (uint64_t) st.st_size;
  return 0;
}

int
registry_storage_blob_open (struct registry_storage *s, const char *name,
                            const struct registry_digest *digest, int *fd,
                            uint64_t *size, berth_error_t *err)
{
  cleanup_free char *blob = NULL;
  cleanup_close int f = -1;
  struct stat st;

  if (!repo_holds (s, name, digest))
    return berth_make_error (err, ENOENT, "blob `%s` in `%s`", digest->str,
                             name);
  blob = storage_blob_path (digest);
  f = openat (s->root_fd, blob, O_RDONLY | O_CLOEXEC);
  if (f < 0 || fstat (f, &st) < 0)
    return berth_make_error (err, errno, "blob `%s`", digest->str);
  *size = (uint64_t) st.st_size;
  *fd = move_fd (&f);
  return 0;
}

int
registry_storage_blob_mount (struct registry_storage *s, const char *name,
                             const char *from,
                             const struct registry_digest *digest,
                             berth_error_t *err)
{
  cleanup_free char *src = storage_link_path (from, "_layers", digest);
  cleanup_free char *dst = NULL, *blob = NULL;
  int r;

  blob = storage_blob_path (digest);
  /* Under the GC read lock, noted: a collection cannot remove the blob
   * between the check and the link (gc.c).  */
  registry_gc_read_lock (s);
  if (!storage_exists (s, src) || !storage_exists (s, blob))
    {
      registry_gc_read_unlock (s);
      return berth_make_error (err, ENOENT, "blob `%s` in `%s`", digest->str,
                               from);
    }
  dst = storage_link_path (name, "_layers", digest);
  r = storage_touch (s, dst, err);
  registry_gc_note (s, digest);
  registry_gc_read_unlock (s);
  return r;
}

int
registry_storage_blob_delete (struct registry_storage *s, const char *name,
                              const struct registry_digest *digest,
                              berth_error_t *err)
{
  cleanup_free char *link = storage_link_path (name, "_layers", digest);
  if (unlinkat (s->root_fd, link, 0) < 0)
    return berth_make_error (err, errno, "blob `%s` in `%s`", digest->str,
                             name);
  return storage_sync_parent (s, link, err);
}

DIR *
registry_storage_opendir (struct registry_storage *s, const char *rel)
{
  DIR *d;
  int fd = openat (s->root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  d = fdopendir (fd);
  if (d == NULL)
    close (fd);
  return d;
}
