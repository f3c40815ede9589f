/* namespaces.h - create and join Linux namespaces. */
#ifndef BERTH_NAMESPACES_H
#define BERTH_NAMESPACES_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "oci/config.h"

/* clone flags for the namespaces CFG creates at clone time.  The cgroup
 * namespace is left out on purpose: it must be unshared after the child is
 * in its cgroup, or its root would be the runtime's cgroup.  Time is left
 * out too: its offsets must be written before any process enters it. */
int linux_ns_clone_flags (const struct oci_config *cfg);

/* fork()-like clone with FLAGS (clone3, falling back to clone). */
pid_t linux_clone (int flags);

/* In the child: join every namespace CFG gives a path for (the user
 * namespace first, pid excluded: the parent handles it). */
int linux_ns_join_paths (const struct oci_config *cfg, berth_error_t *err);

/* In the parent: set pid_for_children to the pid namespace at PATH before
 * cloning; *saved gets our own to restore with linux_ns_restore_pid. */
int linux_ns_enter_pid_for_children (const char *path, int *saved,
                                     berth_error_t *err);
int linux_ns_restore_pid (int saved, berth_error_t *err);

/* Write N mappings ("containerID hostID size" lines) to /proc/PID/FILE
 * (uid_map or gid_map), checking it is on procfs first. */
int linux_ns_write_map (pid_t pid, const char *file, const struct oci_id_map *m,
                        size_t n, berth_error_t *err);

/* In the parent: write uid_map and gid_map of PID. */
int linux_ns_write_id_maps (pid_t pid, const struct oci_config *cfg,
                            berth_error_t *err);

/* In the child: unshare the cgroup namespace, and the time namespace with
 * its offsets, as CFG asks. */
int linux_ns_unshare_late (const struct oci_config *cfg, berth_error_t *err);

#endif
