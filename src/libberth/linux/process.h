/* process.h - the processes the runtime starts inside a container.
 *
 * The container's first process (init) is cloned by the runtime parent
 * into its new namespaces, prepares the rootfs, reports ready over the sync
 * socket and blocks on the exec fifo until `start`; exec'd processes join
 * an existing container.  Both end in linux_process_exec(), which applies
 * the process settings in a fixed order and execs.
 */
#ifndef BERTH_PROCESS_H
#define BERTH_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "linux/seccomp-filter.h"
#include "oci/config.h"

struct linux_init_args
{
  const struct oci_config *cfg;
  const char *id;
  const char *bundle;
  const char *state_dir;       /* holds exec.fifo */
  const char *cgroup_rel_path; /* for the cgroup mount */
  const struct berth_seccomp *seccomp;
  bool no_pivot;
  bool no_new_keyring;
  int preserve_fds;
  int sync_fd; /* the child's end */
  /* exec.fifo read and write ends and result.fifo, opened by the runtime
   * before clone: in a new user namespace the child could not open them. */
  int fifo_rfd, fifo_wfd, result_fd;
  const int *idmap_userns; /* see linux_rootfs_opts */
  bool debug;
};

/* Open STATE_DIR/exec.fifo for reading and writing (the init blocks
 * reading it until `start` writes) and STATE_DIR/result.fifo (where the
 * init reports a failure after `start`). */
int linux_open_exec_fifos (const char *state_dir, int *rfd, int *wfd,
                           int *resfd, berth_error_t *err);

/* Runs in the cloned child; never returns. */
void linux_init_main (const struct linux_init_args *a)
    __attribute__ ((noreturn));

struct linux_exec_args
{
  const struct oci_config *cfg; /* the container's config */
  const struct oci_process *process;
  const struct berth_seccomp *seccomp;
  pid_t init_pid; /* whose namespaces to join */
  int preserve_fds;
  int sync_fd;
  bool detach;
};

/* Runs in a forked child: joins the container's namespaces, forks the
 * process that execs (reported with SYNC_PID) and exits; never returns. */
void linux_exec_main (const struct linux_exec_args *a)
    __attribute__ ((noreturn));

/* Settings that can fail early (rlimits, oomScoreAdj, scheduler, I/O
 * priority, personality, umask, cpu affinity). */
int linux_process_prepare (const struct oci_process *p,
                           const struct oci_config *cfg, berth_error_t *err);

/* User, capabilities, no_new_privs, seccomp (LISTENER_FD gets a notify fd
 * or -1). */
int linux_process_secure (const struct oci_process *p,
                          const struct berth_seccomp *sc, int *listener_fd,
                          berth_error_t *err);

/* CVE-2024-21626: mark every fd from 3 + PRESERVE_FDS close-on-exec and
 * make the preserved ones inheritable. */
void linux_exec_close_fds (int preserve_fds);

/* Resolve process.args[0] in the process's PATH; malloc'd result. */
int linux_process_lookup (const struct oci_process *p, char **path,
                          berth_error_t *err);

#endif
