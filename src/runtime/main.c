/* berth-runtime: an OCI runtime with runc's command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "json.h"
#include "linux/cloned_binary.h"
#include "runtime/state.h"
#include "utils.h"

int cli_exit_code = 0;

static const struct cli_command commands[] = {
  { "create", cmd_create, "create a container", true },
  { "start", cmd_start, "start a created container", false },
  { "run", cmd_run, "create and start a container", true },
  { "state", cmd_state, "output the state of a container", false },
  { "kill", cmd_kill, "send a signal to the container's init process", false },
  { "delete", cmd_delete, "delete a container", false },
  { "exec", cmd_exec, "run a new process inside a container", true },
  { "ps", cmd_ps, "list the processes running in a container", false },
  { "list", cmd_list, "list the containers", false },
  { "pause", cmd_pause, "suspend every process in a container", false },
  { "resume", cmd_resume, "resume every process in a container", false },
  { "update", cmd_update, "update a container's resource limits", false },
  { "events", cmd_events, "show container events and statistics", false },
  { "features", cmd_features, "show the enabled features", false },
  { "spec", cmd_spec, "create a new specification file", false },
  { "checkpoint", cmd_checkpoint, "checkpoint a container (unsupported)",
    false },
  { "restore", cmd_checkpoint, "restore a container (unsupported)", false },
};

static void
log_line (struct cli *cli, const char *level, const char *msg)
{
  cleanup_close int fd = -1;
  cleanup_free char *line = NULL;
  char *t;

  if (cli->log_path == NULL)
    return;
  fd = open (cli->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  t = berth_now_rfc3339 ();
  if (cli->log_json)
    {
      json_t *j
          = json_pack ("{s:s,s:s,s:s}", "level", level, "msg", msg, "time", t);
      char *s = bjson_dump (j, false);
      xasprintf (&line, "%s\n", s);
      free (s);
      json_decref (j);
    }
  else
    xasprintf (&line, "time=\"%s\" level=%s msg=\"%s\"\n", t, level, msg);
  free (t);
  safe_write_all (fd, line, strlen (line));
}

void
cli_log_error (struct cli *cli, berth_error_t err)
{
  const char *msg = err && err->msg ? err->msg : "unknown error";
  log_line (cli, "error", msg);
  fprintf (stderr, "berth-runtime: %s\n", msg);
}

void
cli_log_debug (struct cli *cli, const char *msg)
{
  if (!cli->debug)
    return;
  log_line (cli, "debug", msg);
  if (cli->log_path == NULL)
    fprintf (stderr, "berth-runtime: debug: %s\n", msg);
}

static void
debug_sink (void *data, const char *msg)
{
  cli_log_debug (data, msg);
}

static void
warn_sink (void *data, const char *msg)
{
  log_line (data, "warning", msg);
  fprintf (stderr, "berth-runtime: warning: %s\n", msg);
}

static void
usage (FILE *out)
{
  size_t i;
  fprintf (out, "usage: berth-runtime [global options] COMMAND [options] "
                "[arguments]\n\nCommands:\n");
  for (i = 0; i < ARRAY_SIZE (commands); i++)
    fprintf (out, "  %-11s %s\n", commands[i].name, commands[i].summary);
  fprintf (out,
           "\nGlobal options:\n"
           "  --root DIR            state directory (default %s)\n"
           "  --log FILE            log file (default: stderr)\n"
           "  --log-format FORMAT   text or json\n"
           "  --debug               log debug information\n"
           "  --systemd-cgroup      use systemd for cgroups (unsupported)\n"
           "  --version, --help\n",
           BERTH_RUNTIME_ROOT);
}

enum
{
  OPT_ROOT = 1000,
  OPT_LOG,
  OPT_LOG_FORMAT,
  OPT_DEBUG,
  OPT_SYSTEMD,
  OPT_CRIU,
  OPT_ROOTLESS,
  OPT_VERSION,
  OPT_HELP,
};

static const struct option global_opts[] = {
  { "root", required_argument, NULL, OPT_ROOT },
  { "log", required_argument, NULL, OPT_LOG },
  { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
  { "debug", no_argument, NULL, OPT_DEBUG },
  { "systemd-cgroup", no_argument, NULL, OPT_SYSTEMD },
  { "criu", required_argument, NULL, OPT_CRIU },
  { "rootless", required_argument, NULL, OPT_ROOTLESS },
  { "version", no_argument, NULL, OPT_VERSION },
  { "help", no_argument, NULL, OPT_HELP },
  { NULL, 0, NULL, 0 },
};

static int
parse_global (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  int c;
  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+hv", global_opts, NULL)) != -1)
    {
      switch (c)
        {
        case OPT_ROOT:
          cli->rt.root = optarg;
          break;
        case OPT_LOG:
          cli->log_path = optarg;
          break;
        case OPT_LOG_FORMAT:
          if (strcmp (optarg, "json") != 0 && strcmp (optarg, "text") != 0)
            return berth_make_invalid (err, "--log-format: unknown format `%s`",
                                       optarg);
          cli->log_json = strcmp (optarg, "json") == 0;
          break;
        case OPT_DEBUG:
          cli->debug = true;
          break;
        case OPT_SYSTEMD:
          cli->rt.systemd_cgroup = true;
          break;
        case OPT_CRIU:
        case OPT_ROOTLESS:
          break;
        case 'v':
        case OPT_VERSION:
          printf ("berth-runtime version %s\nspec: 1.2.0\n", BERTH_VERSION);
          exit (0);
        case 'h':
        case OPT_HELP:
          usage (stdout);
          exit (0);
        default:
          return berth_make_invalid (err, "unknown global option `%s`",
                                     argv[optind - 1]);
        }
    }
  return optind;
}

int
main (int argc, char **argv, char **envp)
{
  struct cli cli = { 0 };
  berth_error_t err = NULL;
  const struct cli_command *cmd = NULL;
  int first;
  size_t i;

  cli.rt.root = BERTH_RUNTIME_ROOT;
  cli.rt.cgroup_parent = BERTH_CGROUP_PARENT;
  cli.rt.warn = warn_sink;
  cli.rt.warn_data = &cli;
  cli.argv0 = argv;
  cli.envp = envp;
  first = parse_global (&cli, argc, argv, &err);
  if (first < 0)
    goto fail;
  if (cli.log_path)
    {
      /* Like runc: --log names a file that exists after the call. */
      int fd = open (cli.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                     0600);
      if (fd >= 0)
        close (fd);
    }
  if (cli.debug)
    {
      cli.rt.debug = debug_sink;
      cli.rt.debug_data = &cli;
    }
  if (first >= argc)
    {
      usage (stderr);
      return 1;
    }
  for (i = 0; i < ARRAY_SIZE (commands); i++)
    if (strcmp (argv[first], commands[i].name) == 0)
      cmd = &commands[i];
  if (cmd == NULL)
    {
      berth_make_error (&err, 0, "unknown command `%s` (see --help)",
                        argv[first]);
      goto fail;
    }
  if (cmd->enters_container
      && berth_ensure_cloned_binary (argv, envp, &err) < 0)
    goto fail;
  optind = 1;
  if (cmd->run (&cli, argc - first, argv + first, &err) < 0)
    goto fail;
  fflush (stdout);
  return cli_exit_code;
fail:
  cli_log_error (&cli, err);
  berth_error_release (&err);
  return 1;
}
