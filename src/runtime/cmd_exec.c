/* exec: run a new process inside a container. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "utils.h"

enum
{
  O_CONSOLE_SOCKET = 1000,
  O_CWD,
  O_PID_FILE,
  O_PROCESS_LABEL,
  O_APPARMOR,
  O_NO_NEW_PRIVS,
  O_PRESERVE_FDS,
  O_CGROUP,
  O_IGNORED,
};

static const struct option exec_opts[] = {
  { "console-socket", required_argument, NULL, O_CONSOLE_SOCKET },
  { "cwd", required_argument, NULL, O_CWD },
  { "env", required_argument, NULL, 'e' },
  { "tty", no_argument, NULL, 't' },
  { "user", required_argument, NULL, 'u' },
  { "additional-gids", required_argument, NULL, 'g' },
  { "process", required_argument, NULL, 'p' },
  { "detach", no_argument, NULL, 'd' },
  { "pid-file", required_argument, NULL, O_PID_FILE },
  { "process-label", required_argument, NULL, O_PROCESS_LABEL },
  { "apparmor", required_argument, NULL, O_APPARMOR },
  { "no-new-privs", no_argument, NULL, O_NO_NEW_PRIVS },
  { "cap", required_argument, NULL, 'c' },
  { "preserve-fds", required_argument, NULL, O_PRESERVE_FDS },
  { "cgroup", required_argument, NULL, O_CGROUP },
  { "ignore-paused", no_argument, NULL, O_IGNORED },
  { NULL, 0, NULL, 0 },
};

struct exec_args
{
  struct berth_exec_opts o;
  const char *process_file;
  const char *cwd, *user, *label, *apparmor;
  json_t *env, *caps, *gids;
  bool tty, no_new_privs;
};

static int
set_user (json_t *proc, const char *spec, json_t *gids, berth_error_t *err)
{
  json_t *user = json_object ();
  int64_t uid = 0, gid = 0;
  cleanup_free char *copy = xstrdup (spec ? spec : "0");
  char *colon = strchr (copy, ':');

  if (colon)
    *colon = '\0';
  if (parse_int64 (copy, &uid) < 0 || uid < 0
      || (colon && (parse_int64 (colon + 1, &gid) < 0 || gid < 0)))
    {
      json_decref (user);
      return berth_make_invalid (
          err, "--user: expected UID[:GID] numbers, got `%s`", spec);
    }
  json_object_set_new (user, "uid", json_integer (uid));
  json_object_set_new (user, "gid", json_integer (gid));
  if (gids && json_array_size (gids))
    json_object_set (user, "additionalGids", gids);
  json_object_set_new (proc, "user", user);
  return 0;
}

/* The process object from the container's config plus the flags. */
static json_t *
build_process (const struct oci_config *cfg, struct exec_args *a, int argc,
               char **argv, berth_error_t *err)
{
  json_t *base = json_object_get (cfg->doc, "process");
  json_t *p = base ? json_deep_copy (base) : json_object ();
  json_t *args = json_array (), *env;
  int i;

  for (i = 0; i < argc; i++)
    json_array_append_new (args, json_string (argv[i]));
  json_object_set_new (p, "args", args);
  json_object_set_new (p, "terminal", json_boolean (a->tty));
  json_object_del (p, "consoleSize");
  env = json_object_get (p, "env");
  if (!json_is_array (env))
    json_object_set_new (p, "env", env = json_array ());
  json_array_extend (env, a->env);
  if (a->cwd)
    json_object_set_new (p, "cwd", json_string (a->cwd));
  if ((a->user || json_array_size (a->gids))
      && set_user (p, a->user, a->gids, err) < 0)
    {
      json_decref (p);
      return NULL;
    }
  if (a->no_new_privs)
    json_object_set_new (p, "noNewPrivileges", json_true ());
  if (a->apparmor)
    json_object_set_new (p, "apparmorProfile", json_string (a->apparmor));
  if (a->label)
    json_object_set_new (p, "selinuxLabel", json_string (a->label));
  if (json_array_size (a->caps))
    {
      static const char *const sets[]
          = { "bounding", "effective", "permitted", "ambient" };
      json_t *caps = json_object_get (p, "capabilities");
      size_t k;
      if (!json_is_object (caps))
        json_object_set_new (p, "capabilities", caps = json_object ());
      for (k = 0; k < ARRAY_SIZE (sets); k++)
        {
          json_t *set = json_object_get (caps, sets[k]);
          if (!json_is_array (set))
            json_object_set_new (caps, sets[k], set = json_array ());
          json_array_extend (set, a->caps);
        }
    }
  return p;
}

static int
parse (int argc, char **argv, struct exec_args *a, berth_error_t *err)
{
  int c;
  int64_t n;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+e:tu:g:p:dc:", exec_opts, NULL))
         != -1)
    {
      switch (c)
        {
        case O_CONSOLE_SOCKET:
          a->o.console_socket = optarg;
          break;
        case O_CWD:
          a->cwd = optarg;
          break;
        case 'e':
          json_array_append_new (a->env, json_string (optarg));
          break;
        case 't':
          a->tty = true;
          break;
        case 'u':
          a->user = optarg;
          break;
        case 'g':
          if (cli_parse_int ("--additional-gids", optarg, &n, err) < 0)
            return -1;
          json_array_append_new (a->gids, json_integer (n));
          break;
        case 'p':
          a->process_file = optarg;
          break;
        case 'd':
          a->o.detach = true;
          break;
        case O_PID_FILE:
          a->o.pid_file = optarg;
          break;
        case O_PROCESS_LABEL:
          a->label = optarg;
          break;
        case O_APPARMOR:
          a->apparmor = optarg;
          break;
        case O_NO_NEW_PRIVS:
          a->no_new_privs = true;
          break;
        case 'c':
          json_array_append_new (a->caps, json_string (optarg));
          break;
        case O_PRESERVE_FDS:
          if (cli_parse_int ("--preserve-fds", optarg, &n, err) < 0)
            return -1;
          a->o.preserve_fds = (int) n;
          break;
        case O_CGROUP:
        case O_IGNORED:
          break;
        default:
          return berth_make_invalid (err, "unknown option `%s`",
                                     argv[optind - 1]);
        }
    }
  if (argc - optind < 1)
    return berth_make_invalid (err, "usage: exec [options] <container-id> "
                                    "<command> [args...]");
  if (a->process_file == NULL && argc - optind < 2)
    return berth_make_invalid (err,
                               "exec: a command is required unless --process "
                               "is given");
  return 0;
}

static int
load_process (struct cli *cli, struct exec_args *a, const char *id, int argc,
              char **argv, struct oci_process **out, berth_error_t *err)
{
  cleanup_oci_config struct oci_config *cfg = NULL;
  cleanup_json json_t *p = NULL;
  cleanup_free char *data = NULL;
  size_t len = 0;

  if (a->process_file)
    {
      if (read_file (a->process_file, 1 << 20, &data, &len, err) < 0
          || bjson_parse (data, len, a->process_file, &p, err) < 0)
        return -1;
    }
  else
    {
      if (berth_container_config (&cli->rt, id, &cfg, err) < 0)
        return -1;
      p = build_process (cfg, a, argc, argv, err);
      if (p == NULL)
        return -1;
    }
  return oci_process_parse (p, a->process_file ? a->process_file : "process",
                            out, err);
}

int
cmd_exec (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  struct exec_args a = { 0 };
  cleanup_oci_process struct oci_process *proc = NULL;
  const char *id;
  int master = -1, r = -1;
  pid_t pid = 0;

  a.env = json_array ();
  a.caps = json_array ();
  a.gids = json_array ();
  if (parse (argc, argv, &a, err) < 0)
    goto out;
  id = argv[optind];
  if (load_process (cli, &a, id, argc - optind - 1, argv + optind + 1, &proc,
                    err)
      < 0)
    goto out;
  a.o.process = proc;
  if (!a.o.detach)
    a.o.console_master = &master;
  if (berth_container_exec (&cli->rt, id, &a.o, &pid, err) < 0)
    goto out;
  if (!a.o.detach)
    cli_exit_code = cli_wait_forward (pid, master);
  r = 0;
out:
  json_decref (a.env);
  json_decref (a.caps);
  json_decref (a.gids);
  return r;
}
