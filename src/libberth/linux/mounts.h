/* mounts.h - the container's filesystem: rootfs, config mounts, /dev, pivot.
 *
 * Runs in the container's init child after clone() into a new mount
 * namespace (and maybe a user namespace), single-threaded, as uid 0 of its
 * user namespace.  Calling order:
 *
 *   linux_rootfs_prepare ()      mounts and devices, still on the host root
 *   createContainer hooks        (they see the prepared rootfs)
 *   linux_rootfs_finalize ()     pivot_root, masks, read-only bits
 *   linux_rootfs_bind_console () when process.terminal, once the pty exists
 *
 * Every path that comes from the config or the image is resolved inside the
 * rootfs with safe_open.h and mounted onto the fd it resolved to, so a
 * symlink in the image cannot redirect a mount to the host (CVE-2021-30465).
 * Only config sources (bind sources, the rootfs path itself) are host paths.
 * Relative bind sources are relative to the current directory, which the
 * caller sets to the bundle.
 */
#ifndef BERTH_LINUX_MOUNTS_H
#define BERTH_LINUX_MOUNTS_H

#include <stdbool.h>

#include "error.h"

struct oci_config;

struct linux_rootfs_opts
{
  const struct oci_config *cfg; /* cfg->root_path is absolute */
  bool no_pivot; /* --no-pivot: MS_MOVE + chroot instead of pivot_root */
  bool userns;   /* in a new user namespace: no mknod, locked flags */
  bool cgroupns; /* a new cgroup namespace was entered */
  const char *cgroup_rel_path; /* the container cgroup ("/berth/abc"), below
                                  each hierarchy's mount point; for binding
                                  it when there is no cgroup namespace */
  bool terminal;               /* process.terminal: prepare /dev/console */
  /* For each cfg->mounts entry with uid/gid mappings, an fd of a user
   * namespace carrying them (made by the runtime before clone, see
   * idmap.h), else -1.  NULL when no mount is idmapped. */
  const int *idmap_userns;
  /* Called once before the first cgroup mount, or after the last mount
   * when there is none: the runtime puts the process in its cgroup while
   * the mounts before it go on, and the cgroup namespace can only be
   * unshared after that.  May be NULL. */
  int (*before_cgroup) (void *data, berth_error_t *err);
  void *before_cgroup_data;
};

/* Before the createContainer hooks and the pivot.  Makes "/" rslave (or
 * linux.rootfsPropagation when set, as runc does), makes the mount holding
 * the rootfs private when it is shared (pivot_root refuses a shared parent),
 * binds the rootfs onto itself (rec), then performs cfg->mounts in order:
 *
 *  - bind/rbind: open_tree(OPEN_TREE_CLONE) + move_mount onto the checked
 *    target (mount(2) onto /proc/self/fd/N on kernels without open_tree),
 *    then MS_REMOUNT|MS_BIND with the options' flags.  The source's
 *    nosuid/nodev/noexec/ro are kept unless an option clears them ("suid",
 *    "dev", "exec", "rw"): in a user namespace they are locked and the
 *    remount would fail, and outside one a "ro" option should not silently
 *    drop a host nosuid.
 *  - recursive options (rro, rnosuid...) via mount_setattr(AT_RECURSIVE);
 *  - proc and sysfs only on a real directory (not through a symlink); sysfs
 *    in a user namespace without a network namespace is a recursive bind of
 *    the host /sys, like runc;
 *  - cgroup: cgroup2 on a unified host (a bind of the container's own
 *    cgroup when there is no cgroup namespace); on a v1/hybrid host a tmpfs
 *    with one directory per host hierarchy (a fresh mount of the same
 *    controllers under a cgroup namespace, else a bind of the container's
 *    cgroup), "unified" on hybrid hosts, and cpu -> cpu,cpuacct style
 *    symlinks; all read-only when the mount says "ro";
 *  - any other type (tmpfs, devpts, mqueue, overlay...) goes to mount(2)
 *    with the non-flag options as data;
 *  - then the mount's propagation option, if any.
 * Then /dev, unless /dev is a bind mount: the default devices (null, zero,
 * full, random, urandom, tty) and cfg->devices, with mknod, or in a user
 * namespace as binds of the host's nodes onto empty files; the /dev/fd,
 * stdin, stdout, stderr, ptmx (and core when /proc/kcore exists) symlinks;
 * /dev/console as an empty file when o->terminal.  Existing entries stay.
 * Errors name the destination and the type. */
int linux_rootfs_prepare (const struct linux_rootfs_opts *o,
                          berth_error_t *err);

/* After the createContainer hooks: pivot_root into the rootfs (or MS_MOVE +
 * chroot when o->no_pivot) and detach the old root; mask
 * linux.maskedPaths (/dev/null over files, an empty read-only tmpfs over
 * directories; missing paths are skipped); make linux.readonlyPaths
 * read-only (recursively); remount "/" read-only when root.readonly; apply
 * linux.rootfsPropagation to "/" when set.  The process is left in the new
 * "/" as its cwd. */
int linux_rootfs_finalize (const struct linux_rootfs_opts *o,
                           berth_error_t *err);

/* Bind the pty slave at SLAVE_PATH (a path inside the container, e.g.
 * "/dev/pts/0") onto /dev/console.  Call after linux_rootfs_finalize. */
int linux_rootfs_bind_console (const char *slave_path, berth_error_t *err);

#endif
