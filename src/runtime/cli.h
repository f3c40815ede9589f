/* cli.h - shared by berth-runtime's subcommands. */
#ifndef BERTH_RUNTIME_CLI_H
#define BERTH_RUNTIME_CLI_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "runtime/container.h"

struct cli
{
  struct berth_runtime rt;
  const char *log_path;
  bool log_json;
  bool debug;
  char **argv0; /* the original argv, for re-exec */
  char **envp;
};

struct cli_command
{
  const char *name;
  int (*run) (struct cli *cli, int argc, char **argv, berth_error_t *err);
  const char *summary;
  bool enters_container; /* re-exec from a sealed memfd first */
};

/* Report ERR the way runc does: to stderr, and to --log in its format. */
void cli_log_error (struct cli *cli, berth_error_t err);
void cli_log_debug (struct cli *cli, const char *msg);

/* Exactly N positional arguments after the options, or a usage error. */
int cli_expect_args (int argc, int optind_, int n, const char *usage,
                     berth_error_t *err);

/* Parse an integer option value; error names the option. */
int cli_parse_int (const char *opt, const char *val, int64_t *out,
                   berth_error_t *err);

/* Make BUNDLE absolute (default: the current directory). */
char *cli_abs_bundle (const char *bundle);

/* Wait for PID (our child or reaped grandchild), forwarding signals to it
 * and, when MASTER >= 0, copying between our stdio and the terminal.
 * Returns its exit code the shell way (128 + signal when killed). */
int cli_wait_forward (pid_t pid, int master);

/* Exit code set by a command that ran a container process in the
 * foreground (run, exec). */
extern int cli_exit_code;

int cmd_create (struct cli *, int, char **, berth_error_t *);
int cmd_start (struct cli *, int, char **, berth_error_t *);
int cmd_run (struct cli *, int, char **, berth_error_t *);
int cmd_state (struct cli *, int, char **, berth_error_t *);
int cmd_kill (struct cli *, int, char **, berth_error_t *);
int cmd_delete (struct cli *, int, char **, berth_error_t *);
int cmd_exec (struct cli *, int, char **, berth_error_t *);
int cmd_ps (struct cli *, int, char **, berth_error_t *);
int cmd_list (struct cli *, int, char **, berth_error_t *);
int cmd_pause (struct cli *, int, char **, berth_error_t *);
int cmd_resume (struct cli *, int, char **, berth_error_t *);
int cmd_update (struct cli *, int, char **, berth_error_t *);
int cmd_events (struct cli *, int, char **, berth_error_t *);
int cmd_features (struct cli *, int, char **, berth_error_t *);
int cmd_spec (struct cli *, int, char **, berth_error_t *);
int cmd_checkpoint (struct cli *, int, char **, berth_error_t *);

#endif
