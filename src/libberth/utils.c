#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <time.h>

static void
oom (void)
{
  static const char msg[] = "berth: out of memory\n";
  (void) !write (2, msg, sizeof (msg) - 1);
  abort ();
}

void *
xmalloc (size_t size)
{
  void *p = malloc (size ? size : 1);
  if (p == NULL)
    oom ();
  return p;
}

void *
xmalloc0 (size_t size)
{
  void *p = calloc (1, size ? size : 1);
  if (p == NULL)
    oom ();
  return p;
}

void *
xrealloc (void *ptr, size_t size)
{
  void *p = realloc (ptr, size ? size : 1);
  if (p == NULL)
    oom ();
  return p;
}

char *
xstrdup (const char *s)
{
  char *r;
  if (s == NULL)
    return NULL;
  r = strdup (s);
  if (r == NULL)
    oom ();
  return r;
}

char *
xstrndup (const char *s, size_t n)
{
  char *r = strndup (s, n);
  if (r == NULL)
    oom ();
  return r;
}

int
xasprintf (char **out, const char *fmt, ...)
{
  va_list ap;
  int r;
  va_start (ap, fmt);
  r = vasprintf (out, fmt, ap);
  va_end (ap);
  if (r < 0)
    oom ();
  return r;
}

void
cleanup_freep (void *p)
{
  void **pp = (void **) p;
  free (*pp);
  *pp = NULL;
}

void
cleanup_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
      *fd = -1;
    }
}

void
cleanup_filep (FILE **f)
{
  if (*f)
    fclose (*f);
  *f = NULL;
}

void
cleanup_dirp (DIR **d)
{
  if (*d)
    closedir (*d);
  *d = NULL;
}

void
cleanup_strvp (char ***v)
{
  strv_free (*v);
  *v = NULL;
}

ssize_t
safe_write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = write (fd, p + done, len - done);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return -errno;
        }
      done += r;
    }
  return (ssize_t) done;
}

ssize_t
safe_read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t done = 0;
  while (done < len)
    {
      ssize_t r = read (fd, p + done, len - done);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return -errno;
        }
      if (r == 0)
        break;
      done += r;
    }
  return (ssize_t) done;
}

int
read_file_at (int dirfd, const char *path, size_t max, char **out, size_t *len,
              berth_error_t *err)
{
  cleanup_close int fd = -1;
  cleanup_free char *buf = NULL;
  size_t used = 0, alloc = 4096;

  fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s`", path);
  buf = xmalloc (alloc + 1);
  for (;;)
    {
      ssize_t r;
      if (used == alloc)
        {
          if (alloc >= max)
            return berth_make_error (
                err, EFBIG, "`%s` is larger than %zu bytes", path, max);
          alloc *= 2;
          if (alloc > max)
            alloc = max;
          buf = xrealloc (buf, alloc + 1);
        }
      r = read (fd, buf + used, alloc - used);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return berth_make_error (err, errno, "read `%s`", path);
        }
      if (r == 0)
        break;
      used += r;
    }
  buf[used] = '\0';
  if (len)
    *len = used;
  *out = steal_pointer (&buf);
  return 0;
}

int
write_file_at (int dirfd, const char *path, const void *data, size_t len,
               berth_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CLOEXEC);
  ssize_t r;
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s`", path);
  r = safe_write_all (fd, data, len);
  if (r < 0)
    return berth_make_error (err, (int) -r, "write to `%s`", path);
  return 0;
}

static int
replace_file (const char *path, const void *data, size_t len, mode_t mode,
              bool durable, berth_error_t *err)
{
  cleanup_free char *tmp = NULL;
  cleanup_close int fd = -1;
  ssize_t r;

  xasprintf (&tmp, "%s.tmp.%d", path, (int) getpid ());
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return berth_make_error (err, errno, "create `%s`", tmp);
  r = safe_write_all (fd, data, len);
  if (r < 0)
    {
      unlink (tmp);
      return berth_make_error (err, (int) -r, "write `%s`", tmp);
    }
  if (durable && fsync (fd) < 0)
    {
      int e = errno;
      unlink (tmp);
      return berth_make_error (err, e, "fsync `%s`", tmp);
    }
  if (rename (tmp, path) < 0)
    {
      int e = errno;
      unlink (tmp);
      return berth_make_error (err, e, "rename `%s` to `%s`", tmp, path);
    }
  return 0;
}

int
write_file_atomic (const char *path, const void *data, size_t len, mode_t mode,
                   berth_error_t *err)
{
  return replace_file (path, data, len, mode, true, err);
}

int
write_file_replace (const char *path, const void *data, size_t len, mode_t mode,
                    berth_error_t *err)
{
  return replace_file (path, data, len, mode, false, err);
}

int
mkdir_p (const char *path, mode_t mode, berth_error_t *err)
{
  cleanup_free char *p = xstrdup (path);
  char *s;

  for (s = p + 1; *s; s++)
    {
      if (*s != '/')
        continue;
      *s = '\0';
      if (mkdir (p, mode) < 0 && errno != EEXIST)
        return berth_make_error (err, errno, "mkdir `%s`", p);
      *s = '/';
    }
  if (mkdir (p, mode) < 0 && errno != EEXIST)
    return berth_make_error (err, errno, "mkdir `%s`", p);
  return 0;
}

static int
remove_tree_at (int parentfd, const char *name, berth_error_t *err)
{
  cleanup_close int fd = -1;
  DIR *d;
  struct dirent *de;

  if (unlinkat (parentfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return berth_make_error (err, errno, "unlink `%s`", name);
  fd = openat (parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "open `%s`", name);
  d = fdopendir (fd);
  if (d == NULL)
    return berth_make_error (err, errno, "opendir `%s`", name);
  fd = -1;
  while ((de = readdir (d)))
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (remove_tree_at (dirfd (d), de->d_name, err) < 0)
        {
          closedir (d);
          return berth_error_code (*err);
        }
    }
  closedir (d);
  if (unlinkat (parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return berth_make_error (err, errno, "rmdir `%s`", name);
  return 0;
}

int
remove_tree (const char *path, berth_error_t *err)
{
  return remove_tree_at (AT_FDCWD, path, err);
}

size_t
strv_len (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void
strv_free (char **v)
{
  size_t i;
  if (v == NULL)
    return;
  for (i = 0; v[i]; i++)
    free (v[i]);
  free (v);
}

char **
strv_dup (char *const *v)
{
  size_t i, n = strv_len (v);
  char **r = xmalloc0 ((n + 1) * sizeof (char *));
  for (i = 0; i < n; i++)
    r[i] = xstrdup (v[i]);
  return r;
}

bool
pid_alive (pid_t pid)
{
  if (pid <= 0)
    return false;
  return kill (pid, 0) == 0 || errno == EPERM;
}

unsigned long long
pid_start_time (pid_t pid)
{
  char path[64], buf[1024];
  cleanup_close int fd = -1;
  ssize_t n;
  char *p;
  int field;
  unsigned long long v = 0;

  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = safe_read_all (fd, buf, sizeof (buf) - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* The command name may hold spaces and parens: skip to the last ')'.  */
  p = strrchr (buf, ')');
  if (p == NULL)
    return 0;
  p++;
  for (field = 3; field < 22 && p; field++)
    p = strchr (p + 1, ' ');
  if (p == NULL)
    return 0;
  v = strtoull (p + 1, NULL, 10);
  return v;
}

int
hex_digit_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int
parse_int64 (const char *s, int64_t *out)
{
  char *end;
  long long v;
  /* strtoll skips leading blanks and takes a sign: be strict.  */
  if (s == NULL || !(*s == '-' || (*s >= '0' && *s <= '9')))
    return -EINVAL;
  errno = 0;
  v = strtoll (s, &end, 10);
  if (errno || *end != '\0')
    return -EINVAL;
  *out = v;
  return 0;
}

uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
