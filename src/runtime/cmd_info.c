/* ps, list, events: read-only views of containers. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "utils.h"

static int
format_opt (const char *val, bool *json, berth_error_t *err)
{
  if (strcmp (val, "json") == 0)
    *json = true;
  else if (strcmp (val, "table") == 0)
    *json = false;
  else
    return berth_make_invalid (err, "--format: unknown format `%s`", val);
  return 0;
}

static bool
has_pid (const pid_t *pids, size_t n, long pid)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (pids[i] == pid)
      return true;
  return false;
}

/* Run ps(1) with ARGS (default -ef), without a shell, and read its
 * output. */
static FILE *
spawn_ps (char **args, pid_t *child, berth_error_t *err)
{
  char *def[] = { (char *) "ps", (char *) "-ef", NULL };
  cleanup_free char **argv = NULL;
  size_t n = strv_len (args), i;
  int fds[2];
  FILE *f;

  argv = xmalloc0 ((n + 2) * sizeof (char *));
  argv[0] = (char *) "ps";
  for (i = 0; i < n; i++)
    argv[i + 1] = args[i];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return berth_make_error (err, errno, "pipe"), NULL;
  *child = fork ();
  if (*child < 0)
    {
      close (fds[0]);
      close (fds[1]);
      return berth_make_error (err, errno, "fork"), NULL;
    }
  if (*child == 0)
    {
      dup2 (fds[1], 1);
      execvp ("ps", n ? argv : def);
      _exit (127);
    }
  close (fds[1]);
  f = fdopen (fds[0], "r");
  if (f == NULL)
    close (fds[0]);
  return f;
}

/* Keep ps's header and the lines of the container's processes. */
static int
ps_table (char **args, const pid_t *pids, size_t n, berth_error_t *err)
{
  cleanup_file FILE *f = NULL;
  cleanup_free char *line = NULL;
  size_t cap = 0;
  int pid_col = -1, status = 0;
  bool header = true;
  pid_t child = -1;

  f = spawn_ps (args, &child, err);
  if (f == NULL)
    return -1;
  while (getline (&line, &cap, f) > 0)
    {
      cleanup_free char *copy = xstrdup (line);
      char *save = NULL, *tok;
      int col = 0;
      long pid = -1;
      for (tok = strtok_r (copy, " \t\n", &save); tok;
           tok = strtok_r (NULL, " \t\n", &save), col++)
        {
          if (header && strcmp (tok, "PID") == 0)
            pid_col = col;
          else if (!header && col == pid_col)
            pid = strtol (tok, NULL, 10);
        }
      if (header)
        {
          if (pid_col < 0)
            break;
          fputs (line, stdout);
          header = false;
        }
      else if (has_pid (pids, n, pid))
        fputs (line, stdout);
    }
  fclose (steal_pointer (&f));
  while (waitpid (child, &status, 0) < 0 && errno == EINTR)
    ;
  if (pid_col < 0)
    return berth_make_invalid (err, "ps: no PID column in the output");
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return berth_make_error (err, 0, "ps failed (status %d)",
                             WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  return 0;
}

int
cmd_ps (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const struct option opts[]
      = { { "format", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  cleanup_free pid_t *pids = NULL;
  bool json = false;
  size_t n = 0, i;
  int c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+f:", opts, NULL)) != -1)
    {
      if (c != 'f')
        return berth_make_invalid (err, "unknown option `%s`",
                                   argv[optind - 1]);
      if (format_opt (optarg, &json, err) < 0)
        return -1;
    }
  if (argc - optind < 1)
    return berth_make_invalid (err,
                               "usage: ps [--format table|json] <container-id> "
                               "[ps options]");
  if (berth_container_pids (&cli->rt, argv[optind], &pids, &n, err) < 0)
    return -1;
  if (!json)
    return ps_table (argv + optind + 1, pids, n, err);
  printf ("[");
  for (i = 0; i < n; i++)
    printf ("%s%d", i ? "," : "", (int) pids[i]);
  printf ("]\n");
  return 0;
}

/* The name of UID from /etc/passwd, read directly: the binary is static
 * and glibc's NSS does not work there. */
static char *
user_name (uid_t uid)
{
  cleanup_file FILE *f = fopen ("/etc/passwd", "re");
  cleanup_free char *line = NULL;
  size_t cap = 0;
  char *r;

  while (f && getline (&line, &cap, f) > 0)
    {
      char *name = line, *p = strchr (line, ':'), *end;
      if (p == NULL || (p = strchr (p + 1, ':')) == NULL)
        continue;
      if (strtoul (p + 1, &end, 10) == uid && *end == ':')
        return xstrndup (name, (size_t) (strchr (line, ':') - line));
    }
  xasprintf (&r, "#%u", (unsigned) uid);
  return r;
}

/* runc shows the user owning the container's state directory. */
static char *
owner_name (const char *root, const char *id)
{
  cleanup_free char *dir = NULL;
  struct stat st;
  xasprintf (&dir, "%s/%s", root, id);
  if (stat (dir, &st) < 0)
    return xstrdup ("");
  return user_name (st.st_uid);
}

static void
list_table (const char *root, json_t *arr, bool quiet)
{
  size_t i;
  json_t *c;

  if (!quiet)
    printf ("%-12s%-12s%-12s%-40s%-32s%s\n", "ID", "PID", "STATUS", "BUNDLE",
            "CREATED", "OWNER");
  json_array_foreach (arr, i, c)
  {
    const char *id = json_string_value (json_object_get (c, "id"));
    if (quiet)
      {
        printf ("%s\n", id);
        continue;
      }
    {
      cleanup_free char *owner = owner_name (root, id);
      printf ("%-11s %-11lld %-11s %-39s %-31s %s\n", id,
              (long long) json_integer_value (json_object_get (c, "pid")),
              json_string_value (json_object_get (c, "status")),
              json_string_value (json_object_get (c, "bundle")),
              json_string_value (json_object_get (c, "created")), owner);
    }
  }
}

int
cmd_list (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const struct option opts[]
      = { { "format", required_argument, NULL, 'f' },
          { "quiet", no_argument, NULL, 'q' },
          { NULL, 0, NULL, 0 } };
  cleanup_json json_t *arr = NULL;
  bool json = false, quiet = false;
  int c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+f:q", opts, NULL)) != -1)
    {
      if (c == 'q')
        quiet = true;
      else if (c != 'f' || format_opt (optarg, &json, err) < 0)
        return *err ? -1
                    : berth_make_invalid (err, "unknown option `%s`",
                                          argv[optind - 1]);
    }
  if (berth_container_list (&cli->rt, &arr, err) < 0)
    return -1;
  if (json)
    {
      cleanup_free char *s = bjson_dump (arr, false);
      printf ("%s\n", s);
    }
  else
    list_table (cli->rt.root, arr, quiet);
  return 0;
}

/* "5s", "100ms", "1m" or plain seconds. */
static int
parse_interval (const char *s, long *ms, berth_error_t *err)
{
  char *end;
  double v = strtod (s, &end);
  if (end == s || v < 0)
    return berth_make_invalid (err, "--interval: invalid `%s`", s);
  if (strcmp (end, "ms") == 0)
    *ms = (long) v;
  else if (strcmp (end, "s") == 0 || *end == '\0')
    *ms = (long) (v * 1000);
  else if (strcmp (end, "m") == 0)
    *ms = (long) (v * 60000);
  else
    return berth_make_invalid (err, "--interval: invalid unit in `%s`", s);
  if (*ms <= 0)
    return berth_make_invalid (err, "--interval: must be positive");
  return 0;
}

static int
print_stats (struct cli *cli, const char *id, berth_error_t *err)
{
  cleanup_json json_t *data = NULL, *ev = NULL;
  cleanup_free char *s = NULL;
  if (berth_container_stats (&cli->rt, id, &data, err) < 0)
    return -1;
  ev = json_pack ("{s:s,s:s,s:O}", "type", "stats", "id", id, "data", data);
  s = bjson_dump (ev, false);
  printf ("%s\n", s);
  fflush (stdout);
  return 0;
}

int
cmd_events (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const struct option opts[]
      = { { "stats", no_argument, NULL, 's' },
          { "interval", required_argument, NULL, 'i' },
          { NULL, 0, NULL, 0 } };
  bool once = false;
  long ms = 5000;
  uint64_t ooms = 0;
  int c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+", opts, NULL)) != -1)
    {
      if (c == 's')
        once = true;
      else if (c != 'i' || parse_interval (optarg, &ms, err) < 0)
        return *err ? -1
                    : berth_make_invalid (err, "unknown option `%s`",
                                          argv[optind - 1]);
    }
  if (cli_expect_args (argc, optind, 1, "events [--stats] <container-id>", err)
      < 0)
    return -1;
  if (once)
    return print_stats (cli, argv[optind], err);
  if (berth_container_oom_kills (&cli->rt, argv[optind], &ooms, err) < 0)
    return -1;
  for (;;)
    {
      struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
      uint64_t now = ooms;
      /* runc's "oom" event, once per new OOM kill seen.  */
      if (berth_container_oom_kills (&cli->rt, argv[optind], &now, err) == 0)
        for (; ooms < now; ooms++)
          {
            printf ("{\"type\":\"oom\",\"id\":\"%s\"}\n", argv[optind]);
            fflush (stdout);
          }
      berth_error_release (err);
      if (print_stats (cli, argv[optind], err) < 0)
        {
          /* The container went away: the stream ends.  */
          if (strstr ((*err)->msg, "not running") || (*err)->status == ENOENT)
            {
              berth_error_release (err);
              return 0;
            }
          return -1;
        }
      nanosleep (&ts, NULL);
    }
}
