/* berth-registry: an OCI Distribution Spec 1.1 registry.  A thin front end:
 * flags and the config file, logging, signals; the registry itself is
 * src/libberth/registry. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "registry/config.h"
#include "registry/registry.h"
#include "utils.h"

static enum http_log_level log_threshold = HTTP_LOG_INFO;

static enum http_log_level
level_of (const char *name)
{
  if (strcmp (name, "debug") == 0)
    return HTTP_LOG_DEBUG;
  if (strcmp (name, "warn") == 0)
    return HTTP_LOG_WARN;
  if (strcmp (name, "error") == 0)
    return HTTP_LOG_ERROR;
  return HTTP_LOG_INFO;
}

/* Request lines go out as they are; the rest is prefixed.  One write per
 * line, so that lines from different threads do not mix.  */
static void
log_line (void *data, enum http_log_level level, const char *msg)
{
  static const char *const prefix[] = {
    [HTTP_LOG_DEBUG] = "berth-registry: debug: ",
    [HTTP_LOG_INFO] = "",
    [HTTP_LOG_WARN] = "berth-registry: warning: ",
    [HTTP_LOG_ERROR] = "berth-registry: error: ",
  };
  char buf[2048];
  int n;

  if (level < log_threshold)
    return;
  n = snprintf (buf, sizeof (buf), "%s%s\n", prefix[level], msg);
  if (n < 0)
    return;
  if ((size_t) n >= sizeof (buf))
    {
      n = sizeof (buf) - 1;
      buf[n - 1] = '\n';
    }
  (void) !write (STDERR_FILENO, buf, (size_t) n);
}

static void
usage (FILE *out)
{
  fprintf (
      out,
      "usage: berth-registry [--config FILE] [--listen ADDR:PORT] "
      "[--root DIR]\n"
      "                      [--log-level debug|info|warn|error]\n"
      "\n"
      "  --config FILE      YAML or JSON configuration (docs/REGISTRY.md)\n"
      "  --listen ADDR:PORT address to serve (default 127.0.0.1:5000;\n"
      "                     [::1]:5000, :5000 for every address)\n"
      "  --root DIR         storage root (default "
      "/var/lib/berth-registry)\n"
      "  --log-level LEVEL  info logs every request (default info)\n"
      "  --version, --help\n");
}

enum
{
  OPT_CONFIG = 1000,
  OPT_LISTEN,
  OPT_ROOT,
  OPT_LOG_LEVEL,
  OPT_VERSION,
  OPT_HELP,
};

static const struct option opts[] = {
  { "config", required_argument, NULL, OPT_CONFIG },
  { "listen", required_argument, NULL, OPT_LISTEN },
  { "root", required_argument, NULL, OPT_ROOT },
  { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
  { "version", no_argument, NULL, OPT_VERSION },
  { "help", no_argument, NULL, OPT_HELP },
  { NULL, 0, NULL, 0 },
};

/* The configuration: defaults, then the file, then the flags.  Returns 0,
 * 1 when the program should exit successfully (--help), or -1.  */
static int
configure (int argc, char **argv, struct registry_config *cfg,
           berth_error_t *err)
{
  const char *config = NULL, *listen = NULL, *root = NULL, *level = NULL;
  int c;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case OPT_CONFIG:
        config = optarg;
        break;
      case OPT_LISTEN:
        listen = optarg;
        break;
      case OPT_ROOT:
        root = optarg;
        break;
      case OPT_LOG_LEVEL:
        level = optarg;
        break;
      case OPT_VERSION:
        printf ("berth-registry version %s\n", BERTH_VERSION);
        return 1;
      case 'h':
      case OPT_HELP:
        usage (stdout);
        return 1;
      default:
        return berth_make_invalid (err, "unknown or incomplete option `%s`",
                                   argv[optind - 1]);
      }
  if (optind < argc)
    return berth_make_invalid (err, "unexpected argument `%s`", argv[optind]);
  if (config && registry_config_load (cfg, config, err) < 0)
    return -1;
  if (listen)
    registry_config_set (&cfg->listen, listen);
  if (root)
    registry_config_set (&cfg->root, root);
  if (level)
    registry_config_set (&cfg->log_level, level);
  return registry_config_validate (cfg, err);
}

int
main (int argc, char **argv)
{
  struct registry_config cfg;
  struct registry_opts ropts = { 0 };
  struct registry *reg = NULL;
  berth_error_t err = NULL;
  sigset_t stop;
  int r, sig = 0;

  registry_config_init (&cfg);
  r = configure (argc, argv, &cfg, &err);
  if (r != 0)
    {
      if (r < 0)
        {
          berth_error_print (stderr, "berth-registry", err);
          if (err && err->msg && strstr (err->msg, "option"))
            usage (stderr);
        }
      berth_error_release (&err);
      registry_config_release (&cfg);
      return r < 0 ? 2 : 0;
    }
  log_threshold = level_of (cfg.log_level);

  /* Signals only wake this thread: blocked before the server's threads
   * start (they inherit the mask), taken with sigwait.  SIGPIPE is
   * ignored, so that a client closing early is a failed write, not a
   * dead server (and so that the server may use sendfile).  */
  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&stop);
  sigaddset (&stop, SIGINT);
  sigaddset (&stop, SIGTERM);
  pthread_sigmask (SIG_BLOCK, &stop, NULL);

  ropts.config = &cfg;
  ropts.log = log_line;
  if (registry_create (&ropts, &reg, &err) < 0)
    {
      berth_error_print (stderr, "berth-registry", err);
      berth_error_release (&err);
      registry_config_release (&cfg);
      return 1;
    }
  fprintf (stderr, "berth-registry listening on %s\n", registry_address (reg));
  fflush (stderr);

  while (sigwait (&stop, &sig) != 0)
    ;
  if (log_threshold <= HTTP_LOG_INFO)
    fprintf (stderr, "berth-registry: %s, stopping\n", strsignal (sig));
  registry_free (reg);
  registry_config_release (&cfg);
  return 0;
}
