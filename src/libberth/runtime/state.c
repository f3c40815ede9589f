#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "utils.h"

#define OCI_VERSION "1.2.0"

int
berth_state_validate_id (const char *id, berth_error_t *err)
{
  const char *p;
  if (id == NULL || *id == '\0')
    return berth_make_invalid (err, "container id cannot be empty");
  if (strlen (id) > 1024 || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return berth_make_invalid (err, "invalid container id `%s`", id);
  for (p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
          || (*p >= '0' && *p <= '9') || strchr ("_.+-", *p)))
      return berth_make_invalid (err,
                                 "invalid container id `%s`: only "
                                 "[A-Za-z0-9_.+-] are allowed",
                                 id);
  return 0;
}

char *
berth_state_dir (const char *root, const char *id)
{
  char *r;
  xasprintf (&r, "%s/%s", root, id);
  return r;
}

char *
berth_now_rfc3339 (void)
{
  struct timespec ts;
  struct tm tm;
  char buf[64], *r;
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (buf, sizeof (buf), "%Y-%m-%dT%H:%M:%S", &tm);
  xasprintf (&r, "%s.%09ldZ", buf, ts.tv_nsec);
  return r;
}

int
berth_state_write (const char *root, const struct berth_state *st,
                   berth_error_t *err)
{
  cleanup_json json_t *j = json_object ();
  cleanup_free char *dir = berth_state_dir (root, st->id);
  cleanup_free char *path = NULL, *data = NULL;

  json_object_set_new (j, "id", json_string (st->id));
  json_object_set_new (j, "pid", json_integer (st->pid));
  json_object_set_new (j, "start_time",
                       json_integer ((json_int_t) st->start_time));
  json_object_set_new (j, "bundle", json_string (st->bundle ? st->bundle : ""));
  json_object_set_new (j, "rootfs", json_string (st->rootfs ? st->rootfs : ""));
  json_object_set_new (j, "created",
                       json_string (st->created ? st->created : ""));
  json_object_set_new (j, "owner", json_string (st->owner ? st->owner : ""));
  if (st->cgroup_path)
    json_object_set_new (j, "cgroup_path", json_string (st->cgroup_path));
  json_object_set_new (j, "paused", json_boolean (st->paused));
  if (st->creating)
    json_object_set_new (j, "creating", json_true ());
  json_object_set_new (j, "userns", json_boolean (st->has_userns));
  if (st->annotations)
    json_object_set (j, "annotations", st->annotations);
  data = bjson_dump (j, false);
  xasprintf (&path, "%s/state.json", dir);
  return write_file_replace (path, data, strlen (data), 0600, err);
}

/* runc's wording; ENOENT is kept as the status so callers can tell. */
static int
not_exist (const char *id, berth_error_t *err)
{
  berth_make_error (err, 0, "container does not exist: %s", id);
  if (*err)
    (*err)->status = ENOENT;
  return -ENOENT;
}

static char *
dup_field (json_t *j, const char *key)
{
  const char *s = NULL;
  if (bjson_string (j, "", key, &s, NULL) == 1)
    return xstrdup (s);
  return NULL;
}

int
berth_state_read (const char *root, const char *id, struct berth_state **out,
                  berth_error_t *err)
{
  cleanup_free char *dir = NULL, *path = NULL, *data = NULL;
  cleanup_json json_t *j = NULL;
  struct berth_state *st;
  size_t len = 0;
  json_t *v;

  if (berth_state_validate_id (id, err) < 0)
    return -EINVAL;
  dir = berth_state_dir (root, id);
  xasprintf (&path, "%s/state.json", dir);
  if (access (path, F_OK) < 0 && errno == ENOENT)
    return not_exist (id, err);
  if (read_file (path, 1 << 20, &data, &len, err) < 0)
    return berth_error_wrap (err, "read state of `%s`", id);
  if (bjson_parse (data, len, path, &j, err) < 0)
    return -EINVAL;
  st = xmalloc0 (sizeof (*st));
  st->id = xstrdup (id);
  v = json_object_get (j, "pid");
  st->pid = json_is_integer (v) ? (pid_t) json_integer_value (v) : 0;
  v = json_object_get (j, "start_time");
  st->start_time
      = json_is_integer (v) ? (unsigned long long) json_integer_value (v) : 0;
  st->bundle = dup_field (j, "bundle");
  st->rootfs = dup_field (j, "rootfs");
  st->created = dup_field (j, "created");
  st->owner = dup_field (j, "owner");
  st->cgroup_path = dup_field (j, "cgroup_path");
  st->paused = json_is_true (json_object_get (j, "paused"));
  st->creating = json_is_true (json_object_get (j, "creating"));
  st->has_userns = json_is_true (json_object_get (j, "userns"));
  v = json_object_get (j, "annotations");
  if (json_is_object (v))
    st->annotations = json_incref (v);
  *out = st;
  return 0;
}

void
berth_state_free (struct berth_state *st)
{
  if (st == NULL)
    return;
  free (st->id);
  free (st->bundle);
  free (st->rootfs);
  free (st->created);
  free (st->owner);
  free (st->cgroup_path);
  if (st->annotations)
    json_decref (st->annotations);
  free (st);
}

void
cleanup_statep (struct berth_state **st)
{
  berth_state_free (*st);
  *st = NULL;
}

const char *
berth_state_status (const char *root, const struct berth_state *st)
{
  cleanup_free char *fifo = NULL;
  struct stat sb;

  if (st->pid <= 0 || !pid_alive (st->pid))
    return "stopped";
  /* A recycled pid is not our container.  */
  if (st->start_time && pid_start_time (st->pid) != st->start_time)
    return "stopped";
  {
    char path[64];
    char buf[512];
    cleanup_close int fd = -1;
    ssize_t n;
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) st->pid);
    fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && (n = read (fd, buf, sizeof (buf) - 1)) > 0)
      {
        char *p;
        buf[n] = '\0';
        p = strrchr (buf, ')');
        if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
          return "stopped";
      }
  }
  if (st->creating)
    return "creating";
  if (st->paused)
    return "paused";
  fifo = NULL;
  xasprintf (&fifo, "%s/%s/exec.fifo", root, st->id);
  if (stat (fifo, &sb) == 0)
    return "created";
  return "running";
}

int
berth_state_lock (const char *root, const char *id, berth_error_t *err)
{
  cleanup_free char *dir = berth_state_dir (root, id);
  cleanup_close int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return not_exist (id, err);
      return berth_make_error (err, errno, "open `%s`", dir);
    }
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      return berth_make_error (err, errno, "lock `%s`", dir);
  return move_fd (&fd);
}

json_t *
berth_state_to_json (const char *root, const struct berth_state *st,
                     const char *status)
{
  json_t *j = json_object ();
  if (status == NULL)
    status = berth_state_status (root, st);
  json_object_set_new (j, "ociVersion", json_string (OCI_VERSION));
  json_object_set_new (j, "id", json_string (st->id));
  json_object_set_new (
      j, "pid", json_integer (strcmp (status, "stopped") == 0 ? 0 : st->pid));
  json_object_set_new (j, "status", json_string (status));
  json_object_set_new (j, "bundle", json_string (st->bundle ? st->bundle : ""));
  json_object_set_new (j, "rootfs", json_string (st->rootfs ? st->rootfs : ""));
  json_object_set_new (j, "created",
                       json_string (st->created ? st->created : ""));
  json_object_set_new (j, "owner", json_string (st->owner ? st->owner : ""));
  if (st->annotations && json_object_size (st->annotations))
    json_object_set (j, "annotations", st->annotations);
  return j;
}
