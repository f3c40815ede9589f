/* safe_open.h - resolve container-controlled paths without leaving the root.
 *
 * Every path that comes from a container image or a config.json
 * (mount destinations, device paths, masked and read-only paths) is
 * resolved with these functions relative to an fd on the container's root,
 * never as a string on the host: a symlink `/mnt -> /etc` inside the rootfs
 * must end up at ROOT/etc, not at the host's /etc (CVE-2021-30465 and the
 * older runc symlink-exchange bugs).  Callers then work on the returned fd,
 * typically by mounting onto fd_path(fd).
 *
 * Resolution uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).  When
 * openat2 is unavailable (ENOSYS before Linux 5.6, or EPERM from a seccomp
 * profile older than the syscall; probed once) or the environment has
 * BERTH_TEST_NO_OPENAT2=1 (fault injection for the test suite), a userspace
 * walk does the same job: one component at a time with
 * O_PATH|O_NOFOLLOW, symlinks read and re-resolved relative to the root (at
 * most 40 of them, like the kernel), ".." never above the root, and the
 * result checked through /proc/self/fd against the root's own path, which
 * catches a directory renamed out of the root during the walk.  As with
 * RESOLVE_NO_MAGICLINKS, a procfs magic link (/proc/PID/root, fd/N, exe...)
 * fails with ELOOP in both modes; procfs's ordinary links (self) work.
 *
 * ROOT_PATH is used for messages only; the prefix check uses the kernel's
 * view of ROOTFD.  All returned fds are O_CLOEXEC and owned by the caller.
 */
#ifndef BERTH_LINUX_SAFE_OPEN_H
#define BERTH_LINUX_SAFE_OPEN_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* Open PATH (absolute or relative, both taken relative to ROOTFD) with
 * FLAGS (O_CLOEXEC is added) and MODE.  Returns an fd, or a negative errno
 * value with *err filled.  O_NOFOLLOW in FLAGS applies to the last component
 * only, as with open(2). */
int safe_openat (int rootfd, const char *root_path, const char *path, int flags,
                 mode_t mode, berth_error_t *err);

/* mkdir -p PATH inside ROOTFD, MODE for every created directory.  A
 * dangling symlink on the way is followed (inside the root) and its target
 * created.  Returns an O_PATH|O_DIRECTORY fd on the last directory. */
int safe_mkdir_p (int rootfd, const char *root_path, const char *path,
                  mode_t mode, berth_error_t *err);

/* Make sure a mount target exists at PATH inside ROOTFD: a directory when
 * IS_DIR, else an empty regular file (mode 0644, missing parents 0755).
 * Existing entries are used as they are.  Returns an O_PATH fd on it. */
int safe_create_mount_target (int rootfd, const char *root_path,
                              const char *path, bool is_dir,
                              berth_error_t *err);

/* Format "/proc/self/fd/FD" into BUF and return BUF, for mount(2) and other
 * calls that take a path but should act on an fd we checked. */
const char *fd_path (int fd, char buf[static 32]);

/* Fail unless FD is on procfs (fstatfs == PROC_SUPER_MAGIC); call before
 * writing to anything under /proc so a bind mount over it cannot redirect
 * the write (CVE-2019-16884, CVE-2019-19921).  WHAT names it in the error. */
int check_proc_fd (int fd, const char *what, berth_error_t *err);

#endif
