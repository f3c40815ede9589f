/* upload.c - blob upload sessions (see storage.h).
 *
 * A session is a directory _uploads/<uuid>/ with `data` (the bytes so far)
 * and `info.json` (repository, algorithm, start time), and an entry in the
 * in-memory list with the running hash.  Sessions left by an earlier
 * process are loaded from disk when a client comes back to them; their
 * hash is then recomputed from `data`.
 */
#include "registry/storage-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "registry/digest.h"
#include "registry/gc.h"
#include "utils.h"

/* Start writeback of received data every so often, so that the fsync at
 * the end of a large upload has little left to do.  */
#define WRITEBACK_EVERY (8 * 1024 * 1024)
/* Bodies arrive in small chunks (the HTTP layer's read buffer): written
 * in larger ones.  */
#define WRITE_BUFFER (1024 * 1024)
/* How often (seconds) a new upload looks for expired sessions.  */
#define SWEEP_INTERVAL 60

struct registry_upload
{
  struct registry_upload *next;
  char uuid[37];
  char *name;
  enum registry_digest_alg alg;
  struct registry_hasher *hasher; /* NULL: recompute from data */
  uint64_t size;
  time_t touched;
  bool busy;
  bool removed;

  /* The current request's write.  */
  int fd;
  uint64_t mark_size;
  struct registry_hasher *mark_hasher;
  uint64_t writeback;
  char *buf; /* bytes received, not written yet: they end at size */
  size_t buf_len;
};

const char *
registry_upload_uuid (struct registry_upload *up)
{
  return up->uuid;
}

uint64_t
registry_upload_size (struct registry_upload *up)
{
  return up->size;
}

static bool
is_uuid (const char *s)
{
  size_t i;
  if (strlen (s) != 36)
    return false;
  for (i = 0; i < 36; i++)
    {
      bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash
              ? s[i] != '-'
              : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
        return false;
    }
  return true;
}

static void
new_uuid (char out[37])
{
  char hex[33];
  storage_random_hex (hex, sizeof (hex));
  hex[12] = '4';                         /* version 4 */
  hex[16] = "89ab"[(hex[16] - '0') & 3]; /* variant 10 */
  snprintf (out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
            hex + 16, hex + 20);
}

static char *
session_path (const char *uuid, const char *file)
{
  char *p;
  if (file)
    xasprintf (&p, UPLOADS_DIR "/%s/%s", uuid, file);
  else
    xasprintf (&p, UPLOADS_DIR "/%s", uuid);
  return p;
}

static void
upload_free (struct registry_upload *up)
{
  if (up == NULL)
    return;
  if (up->fd >= 0)
    close (up->fd);
  registry_hasher_free (up->hasher);
  registry_hasher_free (up->mark_hasher);
  free (up->buf);
  free (up->name);
  free (up);
}

static void
remove_session_dir (struct registry_storage *s, const char *uuid)
{
  cleanup_free char *data = session_path (uuid, "data");
  cleanup_free char *info = session_path (uuid, "info.json");
  cleanup_free char *dir = session_path (uuid, NULL);
  unlinkat (s->root_fd, data, 0);
  unlinkat (s->root_fd, info, 0);
  unlinkat (s->root_fd, dir, AT_REMOVEDIR);
}

/* Under uploads_lock: take UP out of the list and off the disk.  */
static void
remove_session (struct registry_storage *s, struct registry_upload *up)
{
  struct registry_upload **pp;
  for (pp = &s->uploads; *pp; pp = &(*pp)->next)
    if (*pp == up)
      {
        *pp = up->next;
        break;
      }
  remove_session_dir (s, up->uuid);
  up->removed = true;
}

static bool
expired (struct registry_storage *s, time_t touched, time_t now)
{
  return now - touched > s->upload_expire;
}

/* --- Start, acquire, release ------------------------------------------- */

int
registry_upload_start (struct registry_storage *s, const char *name,
                       enum registry_digest_alg alg,
                       struct registry_upload **out, berth_error_t *err)
{
  struct registry_upload *up;
  cleanup_free char *dir = NULL, *info = NULL, *data = NULL;
  cleanup_free char *text = NULL;
  cleanup_close int fd = -1;
  json_t *j;
  time_t now = time (NULL);
  ssize_t w;

  /* Read without the lock: at worst two sweeps run back to back.  */
  if (now - __atomic_load_n (&s->last_sweep, __ATOMIC_RELAXED) > SWEEP_INTERVAL)
    storage_uploads_sweep (s, false);

  up = xmalloc0 (sizeof (*up));
  up->fd = -1;
  new_uuid (up->uuid);
  up->name = xstrdup (name);
  up->alg = alg;
  up->hasher = registry_hasher_new (alg);
  up->touched = now;
  up->busy = true;

  dir = session_path (up->uuid, NULL);
  if (mkdirat (s->root_fd, dir, 0700) < 0)
    {
      int r = berth_make_error (err, errno, "mkdir `%s/%s`", s->root, dir);
      upload_free (up);
      return r;
    }
  /* No fsync: a session lost in a crash is restarted by its client.  */
  j = json_pack ("{s:s,s:s,s:I}", "name", name, "algorithm",
                 registry_digest_alg_name (alg), "created", (json_int_t) now);
  text = bjson_dump (j, false);
  json_decref (j);
  info = session_path (up->uuid, "info.json");
  data = session_path (up->uuid, "data");
  fd = openat (s->root_fd, info, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  w = fd >= 0 ? safe_write_all (fd, text, strlen (text)) : -errno;
  if (w >= 0)
    {
      close (fd);
      /* The mode of the blob it becomes.  */
      fd = openat (s->root_fd, data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                   0644);
      w = fd >= 0 ? 0 : -errno;
    }
  if (w < 0)
    {
      int r = berth_make_error (err, (int) -w,
                                "create upload session in "
                                "`%s/" UPLOADS_DIR "`",
                                s->root);
      remove_session_dir (s, up->uuid);
      upload_free (up);
      return r;
    }

  pthread_mutex_lock (&s->uploads_lock);
  up->next = s->uploads;
  s->uploads = up;
  pthread_mutex_unlock (&s->uploads_lock);
  *out = up;
  return 0;
}

/* A session of an earlier process: read its info.json.  NULL when it is
 * not a readable session.  */
static struct registry_upload *
load_session (struct registry_storage *s, const char *uuid)
{
  cleanup_free char *info = session_path (uuid, "info.json");
  cleanup_free char *data = session_path (uuid, "data");
  cleanup_free char *text = NULL;
  cleanup_json json_t *j = NULL;
  berth_error_t e = NULL;
  const char *name = NULL, *alg = NULL;
  struct registry_upload *up;
  struct stat st;

  if (storage_read (s, info, 64 * 1024, &text, NULL, &e) < 0
      || bjson_parse (text, strlen (text), "info.json", &j, &e) < 0
      || bjson_string (j, "", "name", &name, &e) <= 0
      || bjson_string (j, "", "algorithm", &alg, &e) <= 0
      || registry_validate_name (name, &e) < 0
      || fstatat (s->root_fd, data, &st, 0) < 0)
    {
      berth_error_release (&e);
      return NULL;
    }
  up = xmalloc0 (sizeof (*up));
  up->fd = -1;
  snprintf (up->uuid, sizeof (up->uuid), "%s", uuid);
  up->name = xstrdup (name);
  if (registry_digest_alg_parse (alg, &up->alg, &e) < 0)
    up->alg = REGISTRY_SHA256;
  berth_error_release (&e);
  up->size = (uint64_t) st.st_size;
  up->touched = st.st_mtime;
  return up;
}

/* Under uploads_lock: session UUID of NAME, loaded from disk if an
 * earlier process started it; expired ones are removed.  -ENOENT.  */
static int
find_session (struct registry_storage *s, const char *name, const char *uuid,
              struct registry_upload **out, berth_error_t *err)
{
  struct registry_upload *up;

  if (!is_uuid (uuid))
    return berth_make_error (err, ENOENT, "upload `%.64s`", uuid);
  for (up = s->uploads; up; up = up->next)
    if (strcmp (up->uuid, uuid) == 0)
      break;
  if (up == NULL)
    {
      up = load_session (s, uuid);
      if (up)
        {
          up->next = s->uploads;
          s->uploads = up;
        }
    }
  if (up == NULL || strcmp (up->name, name) != 0)
    return berth_make_error (err, ENOENT, "upload `%s`", uuid);
  if (!up->busy && expired (s, up->touched, time (NULL)))
    {
      remove_session (s, up);
      upload_free (up);
      return berth_make_error (err, ENOENT, "upload `%s` (expired)", uuid);
    }
  *out = up;
  return 0;
}

int
registry_upload_acquire (struct registry_storage *s, const char *name,
                         const char *uuid, struct registry_upload **out,
                         berth_error_t *err)
{
  struct registry_upload *up = NULL;
  int r;

  pthread_mutex_lock (&s->uploads_lock);
  r = find_session (s, name, uuid, &up, err);
  if (r == 0 && up->busy)
    r = berth_make_error (err, EBUSY, "upload `%s`", uuid);
  else if (r == 0)
    {
      up->busy = true;
      up->touched = time (NULL);
      *out = up;
    }
  pthread_mutex_unlock (&s->uploads_lock);
  return r;
}

int
registry_upload_status (struct registry_storage *s, const char *name,
                        const char *uuid, uint64_t *size, berth_error_t *err)
{
  struct registry_upload *up = NULL;
  int r;

  pthread_mutex_lock (&s->uploads_lock);
  r = find_session (s, name, uuid, &up, err);
  if (r == 0)
    *size = __atomic_load_n (&up->size, __ATOMIC_RELAXED);
  pthread_mutex_unlock (&s->uploads_lock);
  return r;
}

void
registry_upload_release (struct registry_storage *s, struct registry_upload *up)
{
  if (up == NULL)
    return;
  pthread_mutex_lock (&s->uploads_lock);
  up->busy = false;
  up->touched = time (NULL);
  if (up->removed)
    upload_free (up);
  pthread_mutex_unlock (&s->uploads_lock);
}

/* --- Writing ----------------------------------------------------------- */

static int
ensure_hasher (struct registry_storage *s, struct registry_upload *up, int fd,
               berth_error_t *err)
{
  if (up->hasher)
    return 0;
  return registry_hasher_from_fd (up->alg, fd, up->size, &up->hasher, err);
}

static int
open_data (struct registry_storage *s, struct registry_upload *up, int flags,
           berth_error_t *err)
{
  cleanup_free char *data = session_path (up->uuid, "data");
  int fd = openat (s->root_fd, data, flags | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s/%s`", s->root, data);
  return fd;
}

int
registry_upload_begin (struct registry_storage *s, struct registry_upload *up,
                       berth_error_t *err)
{
  int r;

  if (up->fd < 0)
    {
      r = open_data (s, up, O_RDWR, err);
      if (r < 0)
        return r;
      up->fd = r;
    }
  r = ensure_hasher (s, up, up->fd, err);
  if (r < 0)
    return r;
  up->mark_size = up->size;
  registry_hasher_free (up->mark_hasher);
  up->mark_hasher = registry_hasher_copy (up->hasher);
  up->writeback = up->size;
  up->buf_len = 0;
  if (up->buf == NULL)
    up->buf = xmalloc (WRITE_BUFFER);
  return 0;
}

/* Write the buffered bytes; they end at up->size.  */
static int
flush (struct registry_upload *up, berth_error_t *err)
{
  uint64_t off = up->size - up->buf_len;
  size_t done = 0;

  while (done < up->buf_len)
    {
      ssize_t w = pwrite (up->fd, up->buf + done, up->buf_len - done,
                          (off_t) (off + done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return berth_make_error (err, errno, "write upload `%s`", up->uuid);
      done += w;
    }
  up->buf_len = 0;
  if (up->size - up->writeback >= WRITEBACK_EVERY)
    {
      sync_file_range (up->fd, (off_t) up->writeback,
                       (off_t) (up->size - up->writeback),
                       SYNC_FILE_RANGE_WRITE);
      up->writeback = up->size;
    }
  return 0;
}

int
registry_upload_write (struct registry_upload *up, const void *data, size_t len,
                       berth_error_t *err)
{
  const char *p = data;

  registry_hasher_update (up->hasher, data, len);
  while (len > 0)
    {
      size_t n
          = WRITE_BUFFER - up->buf_len < len ? WRITE_BUFFER - up->buf_len : len;
      memcpy (up->buf + up->buf_len, p, n);
      up->buf_len += n;
      /* registry_upload_status() reads it without the session.  */
      __atomic_store_n (&up->size, up->size + n, __ATOMIC_RELAXED);
      p += n;
      len -= n;
      if (up->buf_len == WRITE_BUFFER && flush (up, err) < 0)
        return berth_error_code (*err);
    }
  return 0;
}

int
registry_upload_flush (struct registry_upload *up, berth_error_t *err)
{
  return flush (up, err);
}

void
registry_upload_rollback (struct registry_upload *up)
{
  if (up->mark_hasher == NULL)
    return;
  if (up->fd >= 0 && ftruncate (up->fd, (off_t) up->mark_size) < 0)
    {
      /* The bytes stay but the size does not count them: the next chunk
       * overwrites them with pwrite at the right offset.  */
    }
  up->buf_len = 0;
  __atomic_store_n (&up->size, up->mark_size, __ATOMIC_RELAXED);
  registry_hasher_free (up->hasher);
  up->hasher = steal_pointer (&up->mark_hasher);
}

void
registry_upload_end (struct registry_upload *up)
{
  registry_hasher_free (up->mark_hasher);
  up->mark_hasher = NULL;
  free (up->buf);
  up->buf = NULL;
  up->buf_len = 0;
  if (up->fd >= 0)
    close (up->fd);
  up->fd = -1;
}

/* --- Commit, cancel ----------------------------------------------------- */

int
registry_upload_commit (struct registry_storage *s, struct registry_upload *up,
                        const struct registry_digest *digest,
                        berth_error_t *err)
{
  cleanup_free char *data = session_path (up->uuid, "data");
  cleanup_free char *blob = storage_blob_path (digest);
  cleanup_free char *link = NULL;
  cleanup_close int fd = -1;
  struct registry_digest got;
  bool synced;
  int r;

  r = open_data (s, up, O_RDONLY, err);
  if (r < 0)
    return r;
  fd = r;
  if (digest->alg == up->alg)
    {
      r = ensure_hasher (s, up, fd, err);
      if (r < 0)
        return r;
      registry_hasher_digest (up->hasher, &got);
    }
  else
    {
      r = registry_digest_fd (digest->alg, fd, &got, err);
      if (r < 0)
        return r;
    }
  if (strcmp (got.str, digest->str) != 0)
    {
      pthread_mutex_lock (&s->uploads_lock);
      remove_session (s, up);
      pthread_mutex_unlock (&s->uploads_lock);
      berth_make_invalid (err, "the content's digest is %s, not %s", got.str,
                          digest->str);
      return -EBADMSG;
    }

  /* Only verified content becomes visible, and only once it is on disk.
   * When the blob is there already (the same layer pushed twice, or two
   * pushes racing), the identical bytes need not be written again.  */
  synced = !storage_exists (s, blob);
  if (synced && fsync (fd) < 0) /* outside the lock, usually */
    return berth_make_error (err, errno, "fsync `%s/%s`", s->root, data);
  /* Under the GC read lock, noted, and with a fresh mtime (the grace
   * period then protects the blob until its manifest comes): a
   * collection cannot remove the blob found in place before it is
   * linked (gc.c).  */
  registry_gc_read_lock (s);
  if (!storage_exists (s, blob))
    {
      if (!synced && fsync (fd) < 0)
        {
          r = berth_make_error (err, errno, "fsync `%s/%s`", s->root, data);
          goto unlock;
        }
      r = storage_mkdirs_parent (s, blob, err);
      if (r < 0)
        goto unlock;
      if (renameat (s->root_fd, data, s->root_fd, blob) < 0)
        {
          r = berth_make_error (err, errno, "rename to `%s/%s`", s->root, blob);
          goto unlock;
        }
      r = storage_sync_parent (s, blob, err);
      if (r < 0)
        goto unlock;
    }
  utimensat (s->root_fd, blob, NULL, 0);
  link = storage_link_path (up->name, "_layers", digest);
  r = storage_touch (s, link, err);
  registry_gc_note (s, digest);
unlock:
  registry_gc_read_unlock (s);
  if (r < 0)
    return r;
  pthread_mutex_lock (&s->uploads_lock);
  remove_session (s, up);
  pthread_mutex_unlock (&s->uploads_lock);
  return 0;
}

int
registry_upload_cancel (struct registry_storage *s, struct registry_upload *up,
                        berth_error_t *err)
{
  pthread_mutex_lock (&s->uploads_lock);
  remove_session (s, up);
  pthread_mutex_unlock (&s->uploads_lock);
  return 0;
}

/* --- Expiry ------------------------------------------------------------- */

static bool
in_list (struct registry_storage *s, const char *uuid)
{
  struct registry_upload *up;
  for (up = s->uploads; up; up = up->next)
    if (strcmp (up->uuid, uuid) == 0)
      return true;
  return false;
}

static void
sweep_disk (struct registry_storage *s, bool at_start, time_t now)
{
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  int fd;

  d = registry_storage_opendir (s, UPLOADS_DIR);
  if (d == NULL)
    return;
  fd = dirfd (d);
  while ((de = readdir (d)))
    {
      size_t n = strlen (de->d_name);
      struct stat st;

      if (de->d_name[0] == '.')
        continue;
      if (fstatat (fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (n > 4 && strcmp (de->d_name + n - 4, ".tmp") == 0)
        {
          /* At start nothing writes them; later only stale ones go.  */
          if (at_start || expired (s, st.st_mtime, now))
            unlinkat (fd, de->d_name, 0);
          continue;
        }
      if (!S_ISDIR (st.st_mode) || !is_uuid (de->d_name)
          || in_list (s, de->d_name))
        continue;
      {
        cleanup_free char *data = session_path (de->d_name, "data");
        struct stat ds;
        time_t t = fstatat (s->root_fd, data, &ds, 0) == 0 ? ds.st_mtime
                                                           : st.st_mtime;
        if (expired (s, t, now))
          remove_session_dir (s, de->d_name);
      }
    }
}

void
storage_uploads_sweep (struct registry_storage *s, bool at_start)
{
  struct registry_upload *up, *next;
  time_t now = time (NULL);

  pthread_mutex_lock (&s->uploads_lock);
  __atomic_store_n (&s->last_sweep, now, __ATOMIC_RELAXED);
  for (up = s->uploads; up; up = next)
    {
      next = up->next;
      if (!up->busy && expired (s, up->touched, now))
        {
          remove_session (s, up);
          upload_free (up);
        }
    }
  sweep_disk (s, at_start, now);
  pthread_mutex_unlock (&s->uploads_lock);
}

void
storage_uploads_free (struct registry_storage *s)
{
  struct registry_upload *up, *next;
  for (up = s->uploads; up; up = next)
    {
      next = up->next;
      upload_free (up);
    }
  s->uploads = NULL;
}
