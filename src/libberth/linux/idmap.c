#include "idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "linux/namespaces.h"
#include "utils.h"

int
linux_idmap_userns (const struct oci_id_map *uids, size_t nuids,
                    const struct oci_id_map *gids, size_t ngids,
                    berth_error_t *err)
{
  int ready[2], hold[2];
  char c = 0, path[64];
  pid_t pid;
  int fd = -1;

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return berth_make_error (err, errno, "pipe");
  if (pipe2 (hold, O_CLOEXEC) < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return berth_make_error (err, errno, "pipe");
    }
  pid = fork ();
  if (pid == 0)
    {
      /* Create the namespace, say so, and stay until the parent has its
       * fd (it closes the hold pipe).  */
      close (ready[0]);
      close (hold[1]);
      if (unshare (CLONE_NEWUSER) < 0)
        _exit (1);
      (void) !write (ready[1], "1", 1);
      (void) !read (hold[0], &c, 1);
      _exit (0);
    }
  close (ready[1]);
  close (hold[0]);
  if (pid < 0)
    {
      berth_make_error (err, errno, "fork");
      goto out;
    }
  if (read (ready[0], &c, 1) != 1)
    {
      berth_make_error (err, EPERM,
                        "create a user namespace for an idmapped "
                        "mount");
      goto out;
    }
  if ((nuids && linux_ns_write_map (pid, "uid_map", uids, nuids, err) < 0)
      || (ngids && linux_ns_write_map (pid, "gid_map", gids, ngids, err) < 0))
    goto out;
  snprintf (path, sizeof (path), "/proc/%d/ns/user", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    berth_make_error (err, errno, "open `%s`", path);
out:
  close (ready[0]);
  close (hold[1]);
  if (pid > 0)
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
      ;
  return fd;
}
