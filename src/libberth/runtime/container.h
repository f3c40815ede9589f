/* container.h - the runtime library's API: the OCI lifecycle of containers
 * kept under one state root.
 *
 * The berth-runtime program is a thin front end over these calls; the
 * engine's per-container monitor calls them in-process.  There is no global
 * state: everything lives in struct berth_runtime and the state root.  No
 * call prints or exits; failures return negative and fill *err.
 *
 * Calling order for one container: create, start, (exec | kill | pause |
 * resume | update | state | ps | stats)*, delete.  run = create + start.
 *
 * Process-wide effects, documented because the caller owns the process:
 * create and exec fork children; exec marks the caller a child subreaper so
 * the exec'd process (a grandchild) can be waited for.
 */
#ifndef BERTH_CONTAINER_H
#define BERTH_CONTAINER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "oci/config.h"

struct berth_runtime
{
  const char *root;          /* state root, e.g. /run/berth-runtime */
  const char *cgroup_parent; /* parent of containers without cgroupsPath */
  bool systemd_cgroup;       /* --systemd-cgroup: refused for now */
  /* Optional debug sink (--debug): timings and decisions. */
  void (*debug) (void *data, const char *msg);
  void *debug_data;
  /* Optional warning sink: failures the spec says must not fail the
   * operation (poststart and poststop hooks). */
  void (*warn) (void *data, const char *msg);
  void *warn_data;
};

struct berth_create_opts
{
  const char *id;
  const char *bundle;         /* absolute */
  const char *pid_file;       /* may be NULL */
  const char *console_socket; /* may be NULL */
  int preserve_fds;
  bool no_pivot;
  bool no_new_keyring;
  /* run in the foreground with a terminal and no console socket: the pty
   * master is handed back here instead. */
  int *console_master;
};

int berth_container_create (const struct berth_runtime *rt,
                            const struct berth_create_opts *o, pid_t *pid,
                            berth_error_t *err);
/* Let a created container run its process; runs the poststart hooks. */
int berth_container_start (const struct berth_runtime *rt, const char *id,
                           berth_error_t *err);
/* The OCI state (status created/running/paused/stopped). */
int berth_container_state (const struct berth_runtime *rt, const char *id,
                           json_t **out, berth_error_t *err);
/* Every container under the root, as an array of state objects. */
int berth_container_list (const struct berth_runtime *rt, json_t **out,
                          berth_error_t *err);
/* Signal the init process, or with ALL every process in the container. */
int berth_container_kill (const struct berth_runtime *rt, const char *id,
                          int sig, bool all, berth_error_t *err);
/* Remove a stopped (or, with FORCE, any) container; poststop hooks. */
int berth_container_delete (const struct berth_runtime *rt, const char *id,
                            bool force, berth_error_t *err);
int berth_container_pause (const struct berth_runtime *rt, const char *id,
                           bool pause, berth_error_t *err);
int berth_container_pids (const struct berth_runtime *rt, const char *id,
                          pid_t **pids, size_t *n, berth_error_t *err);
/* Apply RESOURCES (OCI linux.resources) and remember them. */
int berth_container_update (const struct berth_runtime *rt, const char *id,
                            json_t *resources, berth_error_t *err);
/* runc's stats "data" object. */
int berth_container_stats (const struct berth_runtime *rt, const char *id,
                           json_t **out, berth_error_t *err);
/* OOM kills in the container so far (for `events`). */
int berth_container_oom_kills (const struct berth_runtime *rt, const char *id,
                               uint64_t *n, berth_error_t *err);

/* The config the container was created with (owned by the caller). */
int berth_container_config (const struct berth_runtime *rt, const char *id,
                            struct oci_config **out, berth_error_t *err);

struct berth_exec_opts
{
  const struct oci_process *process;
  const char *console_socket;
  const char *pid_file;
  int preserve_fds;
  bool detach;
  int *console_master; /* as in create */
};

/* Start PROCESS in the container; *pid is its host pid, a child of the
 * caller (subreaper) to wait for. */
int berth_container_exec (const struct berth_runtime *rt, const char *id,
                          const struct berth_exec_opts *o, pid_t *pid,
                          berth_error_t *err);

/* Run the poststop hooks of the container whose config is CFG (state
 * STATE_JSON); failures go to rt->warn. */
void berth_run_poststop_hooks (const struct berth_runtime *rt,
                               const struct oci_config *cfg,
                               const char *state_json);

/* Compile SECCOMP (may be NULL) through the cache under the state root:
 * a Docker-sized profile costs libseccomp several milliseconds, a cached
 * program a file read.  The cache lives in ROOT/.seccomp-cache, as
 * private as the state itself. */
struct berth_seccomp;
int berth_runtime_compile_seccomp (const struct berth_runtime *rt,
                                   json_t *seccomp, struct berth_seccomp **out,
                                   berth_error_t *err);

/* Signal name or number ("KILL", "SIGKILL", "9") to a number. */
int berth_parse_signal (const char *s, int *sig);

#endif
