/* lifecycle.c - operations on an existing container. */
#include "container.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "linux/cgroup.h"
#include "linux/seccomp-filter.h"
#include "runtime/hooks.h"
#include "runtime/state.h"
#include "utils.h"

static const struct
{
  const char *name;
  int sig;
} signals[] = {
  { "HUP", SIGHUP },   { "INT", SIGINT },       { "QUIT", SIGQUIT },
  { "ILL", SIGILL },   { "TRAP", SIGTRAP },     { "ABRT", SIGABRT },
  { "IOT", SIGIOT },   { "BUS", SIGBUS },       { "FPE", SIGFPE },
  { "KILL", SIGKILL }, { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
  { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },
  { "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },
  { "CONT", SIGCONT }, { "STOP", SIGSTOP },     { "TSTP", SIGTSTP },
  { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },
  { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM },
  { "PROF", SIGPROF }, { "WINCH", SIGWINCH },   { "IO", SIGIO },
  { "POLL", SIGPOLL }, { "PWR", SIGPWR },       { "SYS", SIGSYS },
};

int
berth_parse_signal (const char *s, int *sig)
{
  int64_t n;
  size_t i;
  if (parse_int64 (s, &n) == 0)
    {
      if (n <= 0 || n > SIGRTMAX)
        return -EINVAL;
      *sig = (int) n;
      return 0;
    }
  if (strncasecmp (s, "SIG", 3) == 0)
    s += 3;
  for (i = 0; i < ARRAY_SIZE (signals); i++)
    if (strcasecmp (s, signals[i].name) == 0)
      {
        *sig = signals[i].sig;
        return 0;
      }
  if (strncasecmp (s, "RTMIN", 5) == 0 || strncasecmp (s, "RTMAX", 5) == 0)
    {
      bool max = toupper ((unsigned char) s[3]) == 'A';
      int base = max ? SIGRTMAX : SIGRTMIN;
      n = 0;
      if (s[5] != '\0')
        {
          /* RTMIN+n and RTMAX-n, n >= 0, staying in the range.  */
          if (s[5] != (max ? '-' : '+') || s[6] < '0' || s[6] > '9'
              || parse_int64 (s + 6, &n) < 0)
            return -EINVAL;
        }
      n = max ? base - n : base + n;
      if (n < SIGRTMIN || n > SIGRTMAX)
        return -EINVAL;
      *sig = (int) n;
      return 0;
    }
  return -EINVAL;
}

int
berth_container_config (const struct berth_runtime *rt, const char *id,
                        struct oci_config **out, berth_error_t *err)
{
  cleanup_free char *dir = berth_state_dir (rt->root, id);
  cleanup_free char *path = NULL, *data = NULL;
  size_t len = 0;
  xasprintf (&path, "%s/config.json", dir);
  if (read_file (path, 16 << 20, &data, &len, err) < 0)
    return -1;
  return oci_config_parse (data, len, path, out, err);
}

static int
load_cgroup (const struct berth_runtime *rt, const struct berth_state *st,
             struct berth_cgroup **cg, berth_error_t *err)
{
  if (st->cgroup_path == NULL)
    return berth_make_error (err, ENOENT, "container %s has no cgroup", st->id);
  return berth_cgroup_load_with_parent (st->cgroup_path, rt->cgroup_parent, cg,
                                        err);
}

/* The init keeps result.fifo open for writing until its execve (the fd is
 * close-on-exec); it writes a message there when something after `start`
 * fails (startContainer hooks, user switch, seccomp, execve).  End of file
 * with nothing read means the process is running. */
static int
read_start_result (int fd, berth_error_t *err)
{
  char buf[1024];
  size_t used = 0;
  int fl = fcntl (fd, F_GETFL);

  if (fl >= 0)
    fcntl (fd, F_SETFL, fl & ~O_NONBLOCK);
  for (;;)
    {
      ssize_t n = read (fd, buf + used, sizeof (buf) - 1 - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      used += (size_t) n;
      if (used == sizeof (buf) - 1)
        break;
    }
  buf[used] = '\0';
  if (used == 0)
    return 0;
  return berth_make_error (err, 0, "the container process failed to start: %s",
                           buf);
}

int
berth_container_start (const struct berth_runtime *rt, const char *id,
                       berth_error_t *err)
{
  cleanup_close int lock = -1, fifo = -1, result = -1;
  cleanup_state struct berth_state *st = NULL;
  cleanup_oci_config struct oci_config *cfg = NULL;
  cleanup_free char *path = NULL, *rpath = NULL, *state = NULL;
  const char *status;
  json_t *j;

  if ((lock = berth_state_lock (rt->root, id, err)) < 0
      || berth_state_read (rt->root, id, &st, err) < 0)
    return -1;
  status = berth_state_status (rt->root, st);
  if (strcmp (status, "stopped") == 0)
    return berth_make_error (err, 0,
                             "cannot start a container that has "
                             "stopped");
  if (strcmp (status, "created") != 0)
    return berth_make_error (err, 0,
                             "cannot start an already running "
                             "container");
  /* Open the result fifo first: once the init execs, its writer is gone
   * and a blocking open would wait forever.  */
  xasprintf (&rpath, "%s/%s/result.fifo", rt->root, id);
  result = open (rpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (result < 0)
    return berth_make_error (err, errno, "open `%s`", rpath);
  xasprintf (&path, "%s/%s/exec.fifo", rt->root, id);
  fifo = open (path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0)
    return berth_make_error (
        err, errno, "open `%s` (is the container process gone?)", path);
  if (write (fifo, "0", 1) != 1)
    return berth_make_error (err, errno, "write `%s`", path);
  unlink (path);
  unlink (rpath);
  if (read_start_result (result, err) < 0)
    return -1;
  if (berth_container_config (rt, id, &cfg, err) < 0)
    return -1;
  if (cfg->hooks[OCI_HOOK_POSTSTART].len)
    {
      j = berth_state_to_json (rt->root, st, "running");
      state = bjson_dump (j, false);
      json_decref (j);
      /* The spec: a failing poststart hook is a warning, not a failure.  */
      berth_hooks_run_all (&cfg->hooks[OCI_HOOK_POSTSTART], "poststart", state,
                           rt->warn, rt->warn_data);
    }
  return 0;
}

int
berth_container_state (const struct berth_runtime *rt, const char *id,
                       json_t **out, berth_error_t *err)
{
  cleanup_state struct berth_state *st = NULL;
  if (berth_state_read (rt->root, id, &st, err) < 0)
    return -1;
  *out = berth_state_to_json (rt->root, st, NULL);
  return 0;
}

int
berth_container_list (const struct berth_runtime *rt, json_t **out,
                      berth_error_t *err)
{
  cleanup_dir DIR *d = opendir (rt->root);
  struct dirent *de;
  json_t *arr = json_array ();

  if (d == NULL)
    {
      if (errno == ENOENT)
        {
          *out = arr;
          return 0;
        }
      json_decref (arr);
      return berth_make_error (err, errno, "open `%s`", rt->root);
    }
  while ((de = readdir (d)))
    {
      struct berth_state *st = NULL;
      berth_error_t e = NULL;
      if (de->d_name[0] == '.')
        continue;
      if (berth_state_read (rt->root, de->d_name, &st, &e) < 0)
        {
          /* A create in progress has no state yet: skip it.  */
          berth_error_release (&e);
          continue;
        }
      json_array_append_new (arr, berth_state_to_json (rt->root, st, NULL));
      berth_state_free (st);
    }
  *out = arr;
  return 0;
}

static int
signal_all (const struct berth_runtime *rt, const struct berth_state *st,
            int sig, berth_error_t *err)
{
  cleanup_free pid_t *pids = NULL;
  struct berth_cgroup *cg = NULL;
  size_t n = 0, i;
  int r;

  if (load_cgroup (rt, st, &cg, err) < 0)
    return -1;
  r = berth_cgroup_pids (cg, &pids, &n, err);
  berth_cgroup_free (cg);
  if (r < 0)
    return -1;
  for (i = 0; i < n; i++)
    if (kill (pids[i], sig) < 0 && errno != ESRCH)
      return berth_make_error (err, errno, "kill %d", (int) pids[i]);
  return 0;
}

int
berth_container_kill (const struct berth_runtime *rt, const char *id, int sig,
                      bool all, berth_error_t *err)
{
  cleanup_state struct berth_state *st = NULL;
  const char *status;

  if (berth_state_read (rt->root, id, &st, err) < 0)
    return -1;
  status = berth_state_status (rt->root, st);
  if (strcmp (status, "stopped") == 0)
    return berth_make_error (err, 0, "container not running");
  if (all)
    return signal_all (rt, st, sig, err);
  if (kill (st->pid, sig) < 0)
    return berth_make_error (err, errno, "kill container %s", id);
  return 0;
}

/* Wait up to about 5 s for PID to be gone (reaping it if it is ours). */
static void
wait_gone (pid_t pid)
{
  int i;
  for (i = 0; i < 500; i++)
    {
      if (waitpid (pid, NULL, WNOHANG) == pid || !pid_alive (pid))
        return;
      {
        char path[64], buf[512];
        int fd;
        ssize_t n;
        snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
        fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
          {
            n = read (fd, buf, sizeof (buf) - 1);
            close (fd);
            if (n > 0)
              {
                char *p;
                buf[n] = '\0';
                p = strrchr (buf, ')');
                if (p && p[1] == ' ' && p[2] == 'Z')
                  return;
              }
          }
      }
      nanosleep (&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    }
}

static int
force_stop (const struct berth_runtime *rt, const struct berth_state *st,
            berth_error_t *err)
{
  struct berth_cgroup *cg = NULL;
  if (st->cgroup_path)
    {
      berth_error_t e = NULL;
      if (load_cgroup (rt, st, &cg, &e) == 0)
        {
          cleanup_free pid_t *pids = NULL;
          size_t n = 0, i;
          if (berth_cgroup_pids (cg, &pids, &n, &e) == 0)
            for (i = 0; i < n; i++)
              kill (pids[i], SIGKILL);
          /* A frozen task cannot die: thaw after the signal.  */
          if (st->paused)
            berth_cgroup_freeze (cg, false, &e);
        }
      berth_error_release (&e);
      berth_cgroup_free (cg);
    }
  if (kill (st->pid, SIGKILL) < 0 && errno != ESRCH)
    return berth_make_error (err, errno, "kill container %s", st->id);
  wait_gone (st->pid);
  return 0;
}

void
berth_run_poststop_hooks (const struct berth_runtime *rt,
                          const struct oci_config *cfg, const char *state)
{
  /* The spec: a failing poststop hook is a warning.  */
  berth_hooks_run_all (&cfg->hooks[OCI_HOOK_POSTSTOP], "poststop", state,
                       rt->warn, rt->warn_data);
}

static void
run_poststop (const struct berth_runtime *rt, const struct berth_state *st)
{
  cleanup_oci_config struct oci_config *cfg = NULL;
  cleanup_free char *state = NULL;
  berth_error_t e = NULL;
  json_t *j;

  if (berth_container_config (rt, st->id, &cfg, &e) < 0
      || cfg->hooks[OCI_HOOK_POSTSTOP].len == 0)
    {
      berth_error_release (&e);
      return;
    }
  j = berth_state_to_json (rt->root, st, "stopped");
  state = bjson_dump (j, false);
  json_decref (j);
  berth_run_poststop_hooks (rt, cfg, state);
}

int
berth_container_delete (const struct berth_runtime *rt, const char *id,
                        bool force, berth_error_t *err)
{
  cleanup_close int lock = -1;
  cleanup_state struct berth_state *st = NULL;
  cleanup_free char *dir = NULL;
  const char *status;

  if ((lock = berth_state_lock (rt->root, id, err)) < 0)
    return -1;
  dir = berth_state_dir (rt->root, id);
  if (berth_state_read (rt->root, id, &st, err) < 0)
    {
      /* A create that died before writing its state: just clean up.  */
      if ((*err)->status == ENOENT && access (dir, F_OK) == 0)
        {
          berth_error_release (err);
          return remove_tree (dir, err);
        }
      return -1;
    }
  status = berth_state_status (rt->root, st);
  if (strcmp (status, "stopped") != 0)
    {
      if (!force && strcmp (status, "created") != 0)
        return berth_make_error (err, 0,
                                 "cannot delete container %s that is not "
                                 "stopped: %s",
                                 id, status);
      if (force_stop (rt, st, err) < 0)
        return -1;
    }
  else
    waitpid (st->pid, NULL, WNOHANG);
  if (st->cgroup_path)
    {
      struct berth_cgroup *cg = NULL;
      int r = load_cgroup (rt, st, &cg, err);
      if (r == 0)
        r = berth_cgroup_destroy (cg, err);
      berth_cgroup_free (cg);
      if (r < 0)
        return -1;
    }
  run_poststop (rt, st);
  return remove_tree (dir, err);
}

int
berth_container_pause (const struct berth_runtime *rt, const char *id,
                       bool pause, berth_error_t *err)
{
  cleanup_close int lock = -1;
  cleanup_state struct berth_state *st = NULL;
  struct berth_cgroup *cg = NULL;
  const char *status;
  int r;

  if ((lock = berth_state_lock (rt->root, id, err)) < 0
      || berth_state_read (rt->root, id, &st, err) < 0)
    return -1;
  status = berth_state_status (rt->root, st);
  if (pause && strcmp (status, "running") != 0)
    return berth_make_error (err, 0, "container not running");
  if (!pause && strcmp (status, "paused") != 0)
    return berth_make_error (err, 0, "container not paused");
  if (load_cgroup (rt, st, &cg, err) < 0)
    return -1;
  r = berth_cgroup_freeze (cg, pause, err);
  berth_cgroup_free (cg);
  if (r < 0)
    return -1;
  st->paused = pause;
  return berth_state_write (rt->root, st, err);
}

int
berth_container_pids (const struct berth_runtime *rt, const char *id,
                      pid_t **pids, size_t *n, berth_error_t *err)
{
  cleanup_state struct berth_state *st = NULL;
  struct berth_cgroup *cg = NULL;
  int r;

  if (berth_state_read (rt->root, id, &st, err) < 0
      || load_cgroup (rt, st, &cg, err) < 0)
    return -1;
  r = berth_cgroup_pids (cg, pids, n, err);
  berth_cgroup_free (cg);
  return r;
}

static void
merge_resources (json_t *dst, json_t *src)
{
  const char *key;
  json_t *v;
  json_object_foreach (src, key, v)
  {
    json_t *cur = json_object_get (dst, key);
    if (json_is_object (v) && json_is_object (cur))
      merge_resources (cur, v);
    else
      json_object_set (dst, key, v);
  }
}

int
berth_container_update (const struct berth_runtime *rt, const char *id,
                        json_t *resources, berth_error_t *err)
{
  cleanup_close int lock = -1;
  cleanup_state struct berth_state *st = NULL;
  cleanup_free char *path = NULL, *doc = NULL, *data = NULL;
  cleanup_json json_t *cfg = NULL;
  struct berth_cgroup *cg = NULL;
  json_t *lx, *res;
  size_t len = 0;
  int r;

  if (!json_is_object (resources))
    return berth_make_invalid (err, "resources: expected an object");
  if ((lock = berth_state_lock (rt->root, id, err)) < 0
      || berth_state_read (rt->root, id, &st, err) < 0)
    return -1;
  if (strcmp (berth_state_status (rt->root, st), "stopped") == 0)
    return berth_make_error (err, 0, "container not running");
  if (load_cgroup (rt, st, &cg, err) < 0)
    return -1;
  r = berth_cgroup_apply (cg, resources, err);
  berth_cgroup_free (cg);
  if (r < 0)
    return -1;
  /* Remember the new values so `state`, `exec` and stats see them.  */
  xasprintf (&path, "%s/%s/config.json", rt->root, id);
  if (read_file (path, 16 << 20, &data, &len, err) < 0
      || bjson_parse (data, len, path, &cfg, err) < 0)
    return -1;
  lx = json_object_get (cfg, "linux");
  if (!json_is_object (lx))
    json_object_set_new (cfg, "linux", lx = json_object ());
  res = json_object_get (lx, "resources");
  if (!json_is_object (res))
    json_object_set_new (lx, "resources", res = json_object ());
  merge_resources (res, resources);
  doc = bjson_dump (cfg, false);
  return write_file_replace (path, doc, strlen (doc), 0600, err);
}

int
berth_container_stats (const struct berth_runtime *rt, const char *id,
                       json_t **out, berth_error_t *err)
{
  cleanup_state struct berth_state *st = NULL;
  struct berth_cgroup *cg = NULL;
  int r;

  if (berth_state_read (rt->root, id, &st, err) < 0)
    return -1;
  if (strcmp (berth_state_status (rt->root, st), "stopped") == 0)
    return berth_make_error (err, 0, "container not running");
  if (load_cgroup (rt, st, &cg, err) < 0)
    return -1;
  r = berth_cgroup_stats (cg, out, err);
  berth_cgroup_free (cg);
  return r;
}

int
berth_runtime_compile_seccomp (const struct berth_runtime *rt, json_t *seccomp,
                               struct berth_seccomp **out, berth_error_t *err)
{
  cleanup_free char *cache = NULL;
  if (seccomp == NULL)
    {
      *out = NULL;
      return 0;
    }
  if (mkdir_p (rt->root, 0700, err) < 0)
    return -1;
  xasprintf (&cache, "%s/.seccomp-cache", rt->root);
  return berth_seccomp_compile_cached (seccomp, cache, out, err);
}

int
berth_container_oom_kills (const struct berth_runtime *rt, const char *id,
                           uint64_t *n, berth_error_t *err)
{
  cleanup_state struct berth_state *st = NULL;
  struct berth_cgroup *cg = NULL;
  int r;

  if (berth_state_read (rt->root, id, &st, err) < 0
      || load_cgroup (rt, st, &cg, err) < 0)
    return -1;
  r = berth_cgroup_oom_kills (cg, n, err);
  berth_cgroup_free (cg);
  return r;
}
