/* cgroup.h - the container's control groups (v1, v2 and hybrid layouts).
 *
 * A `struct berth_cgroup` names one container cgroup: a path relative to
 * every hierarchy root ("/berth/abc") plus the directory it has in each
 * mounted hierarchy.  The layout of the host (which hierarchies are mounted
 * where) is read once from /proc/self/mountinfo and cached read-only; nothing
 * else in this module keeps global state, so the API may be used from a
 * long-running process.
 *
 * Calling order: berth_cgroup_create() (or berth_cgroup_load() for a
 * container created earlier), then any of apply / pids / freeze / stats,
 * berth_cgroup_destroy() when the container is deleted, and always
 * berth_cgroup_free() (or the cleanup_cgroup attribute) to release the
 * object.  Only directories below the relative path (and, for the default
 * parent, the empty parent levels) are ever modified or removed.
 */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct berth_cgroup;

/* Create the container cgroup and move PID into it.
 *
 * PATH is the OCI linux.cgroupsPath.  An absolute path ("/default/abc") is
 * relative to each hierarchy root; a relative one ("abc/def") is placed
 * under PARENT; NULL means "PARENT/ID".  PARENT is the runtime's default
 * parent ("/berth"; NULL or "" means the hierarchy root).  Paths holding a
 * ".." component are refused.
 *
 * The directories are created with mkdir -p semantics in every mounted v1
 * hierarchy (named ones such as name=systemd included) and in the unified
 * hierarchy; on v1 every new cpuset level gets cpuset.cpus/mems copied from
 * its parent, on pure v2 the available controllers are enabled in the
 * parent levels' cgroup.subtree_control.  PID <= 0 creates the directories
 * without moving any process.  On failure, the directories this call
 * created are removed again.  *OUT is owned by the caller. */
int berth_cgroup_create (const char *path, const char *parent, const char *id,
                         pid_t pid, struct berth_cgroup **out,
                         berth_error_t *err);

/* Reopen the cgroup of an existing container from the relative path kept in
 * its state (as returned by berth_cgroup_path()).  Nothing is created and
 * the directories need not exist.  berth_cgroup_destroy() on the result
 * removes only the container's own directories. */
int berth_cgroup_load (const char *rel_path, struct berth_cgroup **out,
                       berth_error_t *err);

/* Like berth_cgroup_load(), and remember PARENT as the runtime's default
 * parent: when REL_PATH lies below it, berth_cgroup_destroy() also removes
 * the levels of PARENT that are left empty (as berth_cgroup_create() does
 * for containers it placed under the default parent). */
int berth_cgroup_load_with_parent (const char *rel_path, const char *parent,
                                   struct berth_cgroup **out,
                                   berth_error_t *err);

/* The normalized relative path ("/berth/abc"); owned by CG.  This is what
 * the runtime stores in state.json. */
const char *berth_cgroup_path (struct berth_cgroup *cg);

/* Apply OCI linux.resources (runtime-spec 1.2) to the cgroup, at create and
 * on `update`.  RESOURCES may be NULL (nothing to do).  Unset fields are
 * skipped; a set field whose controller is not available, or which the
 * kernel refuses, fails with a message naming the field, the file and the
 * value.  On v2 the v1-style values are converted as runc does (shares to
 * cpu.weight, blkio weight to io.weight, swap to memory.swap.max = swap -
 * limit, -1 to "max").  "unified" keys are written last, to the unified
 * hierarchy (v2 or hybrid); on pure v1 they are refused.  Devices: on v1
 * "a" is denied first and the list is then written in order; on v2 the
 * list is compiled into an eBPF BPF_CGROUP_DEVICE program that replaces
 * the one attached by a previous apply. */
int berth_cgroup_apply (struct berth_cgroup *cg, json_t *resources,
                        berth_error_t *err);

/* Every pid in the cgroup and its sub-cgroups.  *PIDS is allocated (caller
 * frees; NULL when *N is 0).  A cgroup whose directory is gone has no pids
 * and is not an error. */
int berth_cgroup_pids (struct berth_cgroup *cg, pid_t **pids, size_t *n,
                       berth_error_t *err);

/* Freeze (FROZEN) or thaw the cgroup and wait until the kernel reports the
 * new state.  Uses the v1 freezer when it is mounted, else cgroup.freeze of
 * the unified hierarchy. */
int berth_cgroup_freeze (struct berth_cgroup *cg, bool frozen,
                         berth_error_t *err);

/* Statistics in the shape of runc's `events --stats` "data" member:
 * {"cpu":{"usage":{...},"throttling":{...}},"memory":{...},"pids":{...},
 *  "blkio":{...},"hugetlb":{...}}; values the hierarchy lacks are left out.
 * Unlimited values ("max") are reported as INT64_MAX, an unlimited pids
 * limit as 0.  *OUT is a new reference owned by the caller. */
int berth_cgroup_stats (struct berth_cgroup *cg, json_t **out,
                        berth_error_t *err);

/* Remove the container's directories, sub-cgroups first, retrying for a
 * short while on EBUSY (the kernel releases a cgroup shortly after its last
 * task exits).  Missing directories are not an error.  When the cgroup was
 * placed under the default parent, empty levels of that parent are removed
 * too; a parent still holding other containers stays. */
int berth_cgroup_destroy (struct berth_cgroup *cg, berth_error_t *err);

/* How many processes of the cgroup the OOM killer has killed so far
 * (memory.oom_control on v1, memory.events on v2); 0 when the memory
 * controller is not there. */
int berth_cgroup_oom_kills (struct berth_cgroup *cg, uint64_t *n,
                            berth_error_t *err);

void berth_cgroup_free (struct berth_cgroup *cg);
void cleanup_cgroupp (struct berth_cgroup **cg);
#define cleanup_cgroup __attribute__ ((cleanup (cleanup_cgroupp)))

/* "v1", "v2", "hybrid", or "none" when no cgroup filesystem is mounted. */
const char *berth_cgroup_layout (void);

#endif
