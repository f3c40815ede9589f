/* start, state, kill, delete, pause, resume, checkpoint. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "utils.h"

/* Options for commands that take none but --help-like flags we ignore. */
static int
only_id (int argc, char **argv, const char *usage, const char *short_opts,
         const struct option *longopts, int (*on_opt) (int, void *), void *data,
         berth_error_t *err)
{
  int c;
  opterr = 0;
  while ((c = getopt_long_only (argc, argv, short_opts, longopts, NULL)) != -1)
    if (on_opt == NULL || on_opt (c, data) < 0)
      return berth_make_invalid (err, "unknown option `%s`", argv[optind - 1]);
  return cli_expect_args (argc, optind, 1, usage, err);
}

int
cmd_start (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  if (only_id (argc, argv, "start <container-id>", "+", NULL, NULL, NULL, err)
      < 0)
    return -1;
  return berth_container_start (&cli->rt, argv[optind], err);
}

int
cmd_state (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  cleanup_json json_t *j = NULL;
  cleanup_free char *s = NULL;
  if (only_id (argc, argv, "state <container-id>", "+", NULL, NULL, NULL, err)
          < 0
      || berth_container_state (&cli->rt, argv[optind], &j, err) < 0)
    return -1;
  s = bjson_dump (j, true);
  printf ("%s\n", s);
  return 0;
}

static int
kill_opt (int c, void *data)
{
  if (c != 'a')
    return -1;
  *(bool *) data = true;
  return 0;
}

int
cmd_kill (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const struct option opts[]
      = { { "all", no_argument, NULL, 'a' }, { NULL, 0, NULL, 0 } };
  bool all = false;
  int sig = SIGTERM, c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+a", opts, NULL)) != -1)
    if (kill_opt (c, &all) < 0)
      return berth_make_invalid (err, "unknown option `%s`", argv[optind - 1]);
  if (argc - optind < 1 || argc - optind > 2)
    return berth_make_invalid (err,
                               "usage: kill [--all] <container-id> [signal]");
  if (argc - optind == 2 && berth_parse_signal (argv[optind + 1], &sig) < 0)
    return berth_make_invalid (err, "invalid signal `%s`", argv[optind + 1]);
  return berth_container_kill (&cli->rt, argv[optind], sig, all, err);
}

int
cmd_delete (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  static const struct option opts[]
      = { { "force", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  bool force = false;
  int c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+f", opts, NULL)) != -1)
    if (kill_opt (c == 'f' ? 'a' : c, &force) < 0)
      return berth_make_invalid (err, "unknown option `%s`", argv[optind - 1]);
  if (cli_expect_args (argc, optind, 1, "delete [--force] <container-id>", err)
      < 0)
    return -1;
  if (berth_container_delete (&cli->rt, argv[optind], force, err) < 0)
    {
      /* runc: deleting a container that is already gone with --force is
       * not an error.  */
      if (force && (*err)->status == ENOENT)
        {
          berth_error_release (err);
          return 0;
        }
      return -1;
    }
  return 0;
}

int
cmd_pause (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  if (only_id (argc, argv, "pause <container-id>", "+", NULL, NULL, NULL, err)
      < 0)
    return -1;
  return berth_container_pause (&cli->rt, argv[optind], true, err);
}

int
cmd_resume (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  if (only_id (argc, argv, "resume <container-id>", "+", NULL, NULL, NULL, err)
      < 0)
    return -1;
  return berth_container_pause (&cli->rt, argv[optind], false, err);
}

int
cmd_checkpoint (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  return berth_make_error (
      err, EOPNOTSUPP, "%s: checkpoint/restore is not supported yet", argv[0]);
}
