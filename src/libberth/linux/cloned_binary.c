#include "cloned_binary.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "utils.h"

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static bool
is_sealed (int fd)
{
  int seals = fcntl (fd, F_GET_SEALS);
  return seals >= 0 && (seals & SEALS) == SEALS;
}

int
berth_ensure_cloned_binary (char **argv, char **envp, berth_error_t *err)
{
  cleanup_close int self = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  cleanup_close int mfd = -1;
  struct stat st;
  off_t off = 0;

  if (self < 0)
    return berth_make_error (err, errno, "open `/proc/self/exe`");
  if (is_sealed (self))
    return 0;
  if (fstat (self, &st) < 0)
    return berth_make_error (err, errno, "stat `/proc/self/exe`");
  mfd = memfd_create ("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0)
    return berth_make_error (err, errno, "memfd_create");
  while (off < st.st_size)
    {
      ssize_t n = sendfile (mfd, self, &off, (size_t) (st.st_size - off));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return berth_make_error (err, n < 0 ? errno : EIO,
                                 "copy `/proc/self/exe` to a memfd");
    }
  if (fcntl (mfd, F_ADD_SEALS, SEALS) < 0)
    return berth_make_error (err, errno, "seal the memfd");
  /* execveat with AT_EMPTY_PATH works on a CLOEXEC fd for an ELF binary,
   * so the memfd does not stay open in the new image.  */
  syscall (SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
  return berth_make_error (err, errno, "re-execute from the sealed memfd");
}
