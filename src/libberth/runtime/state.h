/* state.h - the on-disk state of one container under the runtime root.
 *
 * ROOT/ID/state.json   the fields below, replaced atomically
 * ROOT/ID/config.json  the config the container was created with (exec
 *                      and update read it; the bundle may be gone)
 * ROOT/ID/exec.fifo    present from create until start
 *
 * Operations that change a container take an exclusive flock on ROOT/ID
 * (berth_state_lock) so two runtime processes cannot interleave.
 */
#ifndef BERTH_STATE_H
#define BERTH_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct berth_state
{
  char *id;
  pid_t pid;
  unsigned long long start_time; /* of pid, to detect pid reuse */
  char *bundle;
  char *rootfs;
  char *created; /* RFC 3339 UTC with nanoseconds */
  char *owner;
  char *cgroup_path; /* relative cgroup path, NULL when none */
  bool paused;
  bool creating; /* written early by create; cleared when it completes */
  bool has_userns;
  json_t *annotations; /* owned, may be NULL */
};

/* Container ids: [A-Za-z0-9_.+-]+, not "." or "..", at most 1024 bytes. */
int berth_state_validate_id (const char *id, berth_error_t *err);

/* ROOT/ID (malloc'd). */
char *berth_state_dir (const char *root, const char *id);

int berth_state_write (const char *root, const struct berth_state *st,
                       berth_error_t *err);
/* ENOENT in (*err)->status when the container does not exist. */
int berth_state_read (const char *root, const char *id,
                      struct berth_state **out, berth_error_t *err);
void berth_state_free (struct berth_state *st);
void cleanup_statep (struct berth_state **st);
#define cleanup_state __attribute__ ((cleanup (cleanup_statep)))

/* "creating", "created", "running", "paused" or "stopped". */
const char *berth_state_status (const char *root, const struct berth_state *st);

/* Exclusive lock on ROOT/ID; returns the lock fd (close to unlock). */
int berth_state_lock (const char *root, const char *id, berth_error_t *err);

/* The state as OCI runtime state JSON (for hooks and `state`). */
json_t *berth_state_to_json (const char *root, const struct berth_state *st,
                             const char *status);

/* Current time as RFC 3339 with nanoseconds, UTC. */
char *berth_now_rfc3339 (void);

#endif
