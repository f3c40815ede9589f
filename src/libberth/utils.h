/* utils.h - memory, fd and file helpers shared by the whole library.
 *
 * Ownership: every resource gets a cleanup attribute at its declaration
 * (cleanup_free, cleanup_close, cleanup_file, cleanup_dir, cleanup_json) and
 * is handed off explicitly with steal_pointer() / move_fd().
 *
 * Out of memory: the x* wrappers are the single policy.  A runtime that
 * cannot allocate a few bytes cannot make progress or report anything
 * meaningful, so they print one line and abort; they are never used on a
 * size that comes from input without a bound.
 */
#ifndef BERTH_UTILS_H
#define BERTH_UTILS_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "error.h"

void *xmalloc (size_t size);
void *xmalloc0 (size_t size);
void *xrealloc (void *ptr, size_t size);
char *xstrdup (const char *s);
char *xstrndup (const char *s, size_t n);
int xasprintf (char **out, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

void cleanup_freep (void *p);
void cleanup_closep (int *fd);
void cleanup_filep (FILE **f);
void cleanup_dirp (DIR **d);
void cleanup_strvp (char ***v);

#define cleanup_free __attribute__ ((cleanup (cleanup_freep)))
#define cleanup_close __attribute__ ((cleanup (cleanup_closep)))
#define cleanup_file __attribute__ ((cleanup (cleanup_filep)))
#define cleanup_dir __attribute__ ((cleanup (cleanup_dirp)))
#define cleanup_strv __attribute__ ((cleanup (cleanup_strvp)))

static inline void *
steal_pointer_impl (void *pp)
{
  void **p = (void **) pp;
  void *r = *p;
  *p = NULL;
  return r;
}
#define steal_pointer(pp) steal_pointer_impl (pp)

static inline int
move_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

#define UNUSED __attribute__ ((unused))
#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

/* Retry on EINTR; write/read the whole buffer.  Return 0 / bytes or -errno. */
ssize_t safe_write_all (int fd, const void *buf, size_t len);
ssize_t safe_read_all (int fd, void *buf, size_t len);

/* Read the whole file at PATH (relative to DIRFD) into a NUL-terminated
 * buffer; *len may be NULL.  Refuses files larger than MAX bytes. */
int read_file_at (int dirfd, const char *path, size_t max, char **out,
                  size_t *len, berth_error_t *err);
static inline int
read_file (const char *path, size_t max, char **out, size_t *len,
           berth_error_t *err)
{
  return read_file_at (-100 /* AT_FDCWD */, path, max, out, len, err);
}

/* Write DATA to an existing file (cgroup, /proc): open, write, close. */
int write_file_at (int dirfd, const char *path, const void *data, size_t len,
                   berth_error_t *err);

/* Replace PATH atomically: write a temporary beside it, fsync, rename.
 * MODE is the new file's mode. */
int write_file_atomic (const char *path, const void *data, size_t len,
                       mode_t mode, berth_error_t *err);

/* Like write_file_atomic without the fsync: readers see the old or the
 * new content, never a mix, but a power loss may lose the update.  For
 * runtime state that lives on /run and is meaningless after a reboot. */
int write_file_replace (const char *path, const void *data, size_t len,
                        mode_t mode, berth_error_t *err);

/* mkdir -p with MODE for every created component. */
int mkdir_p (const char *path, mode_t mode, berth_error_t *err);

/* rm -rf PATH without following symlinks; missing is not an error. */
int remove_tree (const char *path, berth_error_t *err);

/* NULL-terminated string vectors. */
size_t strv_len (char *const *v);
void strv_free (char **v);
char **strv_dup (char *const *v);

/* True if PID exists (kill(pid, 0) succeeds or fails with EPERM). */
bool pid_alive (pid_t pid);

/* Start time of PID (field 22 of /proc/PID/stat), 0 when unknown. */
unsigned long long pid_start_time (pid_t pid);

/* Parse a decimal integer fully; returns -EINVAL on junk or overflow. */
int parse_int64 (const char *s, int64_t *out);

/* The value of hexadecimal digit C (either case), or -1.  */
int hex_digit_value (char c);

/* Monotonic clock in nanoseconds (for --debug timings). */
uint64_t now_ns (void);

#endif
