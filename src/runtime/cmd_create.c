/* create, run: make a container from a bundle. */
#include <errno.h>
#include <stdio.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "utils.h"

enum
{
  O_BUNDLE = 1000,
  O_PID_FILE,
  O_CONSOLE_SOCKET,
  O_PRESERVE_FDS,
  O_NO_PIVOT,
  O_NO_NEW_KEYRING,
  O_DETACH,
  O_IGNORED_ARG,
  O_IGNORED,
};

static const struct option create_opts[] = {
  { "bundle", required_argument, NULL, 'b' },
  { "pid-file", required_argument, NULL, O_PID_FILE },
  { "console-socket", required_argument, NULL, O_CONSOLE_SOCKET },
  { "preserve-fds", required_argument, NULL, O_PRESERVE_FDS },
  { "no-pivot", no_argument, NULL, O_NO_PIVOT },
  { "no-new-keyring", no_argument, NULL, O_NO_NEW_KEYRING },
  { "detach", no_argument, NULL, 'd' },
  { "keep", no_argument, NULL, O_IGNORED },
  { "no-subreaper", no_argument, NULL, O_IGNORED },
  { NULL, 0, NULL, 0 },
};

struct create_args
{
  struct berth_create_opts o;
  char *bundle;
  bool detach;
};

static int
parse (int argc, char **argv, bool is_run, struct create_args *a,
       berth_error_t *err)
{
  int c;
  int64_t n;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv,
                                is_run ? "+b:d" : "+b:", create_opts, NULL))
         != -1)
    {
      switch (c)
        {
        case 'b':
          a->o.bundle = optarg;
          break;
        case O_PID_FILE:
          a->o.pid_file = optarg;
          break;
        case O_CONSOLE_SOCKET:
          a->o.console_socket = optarg;
          break;
        case O_PRESERVE_FDS:
          if (cli_parse_int ("--preserve-fds", optarg, &n, err) < 0)
            return -1;
          if (n < 0 || n > 65536)
            return berth_make_invalid (err, "--preserve-fds: out of range");
          a->o.preserve_fds = (int) n;
          break;
        case O_NO_PIVOT:
          a->o.no_pivot = true;
          break;
        case O_NO_NEW_KEYRING:
          a->o.no_new_keyring = true;
          break;
        case 'd':
          if (!is_run)
            goto bad;
          a->detach = true;
          break;
        case O_IGNORED:
          break;
        default:
        bad:
          return berth_make_invalid (err, "unknown option `%s`",
                                     argv[optind - 1]);
        }
    }
  if (cli_expect_args (argc, optind, 1,
                       is_run ? "run [options] <container-id>"
                              : "create [options] <container-id>",
                       err)
      < 0)
    return -1;
  a->o.id = argv[optind];
  a->bundle = cli_abs_bundle (a->o.bundle);
  a->o.bundle = a->bundle;
  return 0;
}

int
cmd_create (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  struct create_args a = { 0 };
  int r;
  if (parse (argc, argv, false, &a, err) < 0)
    return -1;
  r = berth_container_create (&cli->rt, &a.o, NULL, err);
  free (a.bundle);
  return r;
}

static int
run_foreground (struct cli *cli, struct create_args *a, berth_error_t *err)
{
  int master = -1;
  pid_t pid = 0;
  berth_error_t derr = NULL;
  uint64_t t0;

  a->o.console_master = &master;
  if (berth_container_create (&cli->rt, &a->o, &pid, err) < 0)
    return -1;
  if (berth_container_start (&cli->rt, a->o.id, err) < 0)
    {
      berth_container_delete (&cli->rt, a->o.id, true, &derr);
      berth_error_release (&derr);
      return -1;
    }
  cli_exit_code = cli_wait_forward (pid, master);
  t0 = now_ns ();
  if (berth_container_delete (&cli->rt, a->o.id, true, &derr) < 0)
    {
      cli_log_error (cli, derr);
      berth_error_release (&derr);
    }
  if (cli->debug)
    {
      char msg[64];
      snprintf (msg, sizeof (msg), "deleted in %.3f ms",
                (now_ns () - t0) / 1e6);
      cli_log_debug (cli, msg);
    }
  return 0;
}

int
cmd_run (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  struct create_args a = { 0 };
  int r;

  if (parse (argc, argv, true, &a, err) < 0)
    return -1;
  if (a.detach)
    {
      r = berth_container_create (&cli->rt, &a.o, NULL, err);
      if (r == 0 && (r = berth_container_start (&cli->rt, a.o.id, err)) < 0)
        {
          berth_error_t derr = NULL;
          berth_container_delete (&cli->rt, a.o.id, true, &derr);
          berth_error_release (&derr);
        }
    }
  else
    r = run_foreground (cli, &a, err);
  free (a.bundle);
  return r;
}
