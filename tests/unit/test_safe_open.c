/* test_safe_open.c - safe_openat & co. against hostile trees.
 *
 * Every case runs twice: with openat2 and with the userspace walk
 * (BERTH_TEST_NO_OPENAT2=1).  No privileges needed: the tree lives in a
 * temporary directory and nothing is mounted.  */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "linux/safe_open.h"
#include "utils.h"

struct fixture
{
  char base[64]; /* BASE/root is the container root, BASE/outside the host */
  char root[96];
  int rootfd;
};

static void
touch (const char *dir, const char *name)
{
  char p[PATH_MAX];
  int fd;

  snprintf (p, sizeof (p), "%s/%s", dir, name);
  fd = open (p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  assert_true (fd >= 0);
  close (fd);
}

static void
mkdir_at (const char *dir, const char *name)
{
  char p[PATH_MAX];

  snprintf (p, sizeof (p), "%s/%s", dir, name);
  assert_int_equal (mkdir (p, 0755), 0);
}

static void
link_at (const char *dir, const char *name, const char *target)
{
  char p[PATH_MAX];

  snprintf (p, sizeof (p), "%s/%s", dir, name);
  assert_int_equal (symlink (target, p), 0);
}

static int
setup (void **state, bool fallback)
{
  struct fixture *f = calloc (1, sizeof (*f));

  if (fallback)
    setenv ("BERTH_TEST_NO_OPENAT2", "1", 1);
  else
    unsetenv ("BERTH_TEST_NO_OPENAT2");
  strcpy (f->base, "/tmp/berth-safe-open-XXXXXX");
  if (mkdtemp (f->base) == NULL)
    return -1;
  snprintf (f->root, sizeof (f->root), "%s/root", f->base);
  mkdir_at (f->base, "root");
  mkdir_at (f->base, "outside");
  touch (f->base, "outside/secret");
  mkdir_at (f->root, "etc");
  touch (f->root, "etc/passwd");
  mkdir_at (f->root, "dir");
  mkdir_at (f->root, "dir/sub");
  touch (f->root, "file");
  link_at (f->root, "abs", "/etc");
  link_at (f->root, "up", "../../../../../../..");
  link_at (f->root, "escape", "../outside");
  link_at (f->root, "dir/rel", "../etc/passwd");
  link_at (f->root, "loop1", "loop2");
  link_at (f->root, "loop2", "loop1");
  link_at (f->root, "dangling", "/made/by/link");
  link_at (f->root, "host-proc", "/proc/self/root");
  f->rootfd = open (f->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (f->rootfd < 0)
    return -1;
  *state = f;
  return 0;
}

static int
setup_openat2 (void **state)
{
  return setup (state, false);
}

static int
setup_fallback (void **state)
{
  return setup (state, true);
}

static int
teardown (void **state)
{
  struct fixture *f = *state;
  berth_error_t err = NULL;

  close (f->rootfd);
  remove_tree (f->base, &err);
  berth_error_release (&err);
  free (f);
  unsetenv ("BERTH_TEST_NO_OPENAT2");
  return 0;
}

/* Open PATH in the fixture's root and check it is BASE/WANT.  */
static void
assert_opens_as (struct fixture *f, const char *path, int flags,
                 const char *want)
{
  berth_error_t err = NULL;
  char p[PATH_MAX];
  struct stat a, b;
  int fd = safe_openat (f->rootfd, f->root, path, flags, 0, &err);

  if (fd < 0)
    fail_msg ("open %s: %s", path, err ? err->msg : "?");
  snprintf (p, sizeof (p), "%s/%s", f->base, want);
  assert_int_equal (fstat (fd, &a), 0);
  assert_int_equal (lstat (p, &b), 0);
  assert_true (a.st_dev == b.st_dev && a.st_ino == b.st_ino);
  close (fd);
}

static void
assert_open_fails (struct fixture *f, const char *path, int flags, int errnum)
{
  berth_error_t err = NULL;
  int fd = safe_openat (f->rootfd, f->root, path, flags, 0, &err);

  assert_int_equal (fd, -errnum);
  assert_non_null (err);
  assert_int_equal (err->status, errnum);
  assert_non_null (strstr (err->msg, path));
  berth_error_release (&err);
}

static void
test_plain (void **state)
{
  struct fixture *f = *state;

  assert_opens_as (f, "/etc/passwd", O_RDONLY, "root/etc/passwd");
  assert_opens_as (f, "etc/passwd", O_PATH, "root/etc/passwd");
  assert_opens_as (f, "/", O_PATH | O_DIRECTORY, "root");
  assert_opens_as (f, "", O_PATH | O_DIRECTORY, "root");
  assert_opens_as (f, "//dir/./sub//", O_PATH | O_DIRECTORY, "root/dir/sub");
  assert_opens_as (f, "dir/sub/..", O_PATH | O_DIRECTORY, "root/dir");
}

static void
test_dotdot_stays_inside (void **state)
{
  struct fixture *f = *state;

  assert_opens_as (f, "../../../etc/passwd", O_RDONLY, "root/etc/passwd");
  assert_opens_as (f, "dir/../../..", O_PATH, "root");
  assert_open_fails (f, "../outside/secret", O_RDONLY, ENOENT);
}

static void
test_symlinks_stay_inside (void **state)
{
  struct fixture *f = *state;

  /* An absolute link means the container's /etc, not the host's.  */
  assert_opens_as (f, "abs/passwd", O_RDONLY, "root/etc/passwd");
  assert_opens_as (f, "abs", O_PATH | O_DIRECTORY, "root/etc");
  assert_opens_as (f, "up/etc/passwd", O_RDONLY, "root/etc/passwd");
  assert_opens_as (f, "dir/rel", O_RDONLY, "root/etc/passwd");
  assert_open_fails (f, "escape/secret", O_RDONLY, ENOENT);
  /* O_NOFOLLOW|O_PATH gives the link itself.  */
  assert_opens_as (f, "abs", O_PATH | O_NOFOLLOW, "root/abs");
  assert_open_fails (f, "abs", O_RDONLY | O_NOFOLLOW, ELOOP);
}

static void
test_errors (void **state)
{
  struct fixture *f = *state;

  assert_open_fails (f, "loop1", O_RDONLY, ELOOP);
  assert_open_fails (f, "loop1/x", O_RDONLY, ELOOP);
  assert_open_fails (f, "file/x", O_RDONLY, ENOTDIR);
  assert_open_fails (f, "missing", O_RDONLY, ENOENT);
  assert_open_fails (f, "dangling", O_RDONLY, ENOENT);
}

static void
test_magic_links (void **state)
{
  struct fixture *f = *state;
  int hostfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  berth_error_t err = NULL;
  int fd;

  /* Inside the rootfs, /proc/self/root means ROOT/proc/..., absent here.  */
  assert_open_fails (f, "host-proc/etc", O_RDONLY, ENOENT);
  /* On a real procfs the magic link is refused, not followed.  */
  assert_true (hostfd >= 0);
  fd = safe_openat (hostfd, "/", "/proc/self/root/etc", O_PATH, 0, &err);
  assert_int_equal (fd, -ELOOP);
  berth_error_release (&err);
  /* ...while procfs's own "self" link is an ordinary one.  */
  fd = safe_openat (hostfd, "/", "/proc/self/status", O_RDONLY, 0, &err);
  assert_true (fd >= 0);
  assert_int_equal (check_proc_fd (fd, "/proc/self/status", &err), 0);
  close (fd);
  close (hostfd);
}

static void
test_create (void **state)
{
  struct fixture *f = *state;
  berth_error_t err = NULL;
  struct stat st;
  char p[PATH_MAX];
  int fd;

  fd = safe_openat (f->rootfd, f->root, "abs/new", O_CREAT | O_WRONLY, 0600,
                    &err);
  assert_true (fd >= 0);
  close (fd);
  snprintf (p, sizeof (p), "%s/etc/new", f->root);
  assert_int_equal (lstat (p, &st), 0);
  assert_true (S_ISREG (st.st_mode));
  /* O_EXCL does not follow a final symlink, as with open(2).  */
  assert_open_fails (f, "abs", O_CREAT | O_EXCL | O_WRONLY, EEXIST);
}

static void
test_mkdir_p (void **state)
{
  struct fixture *f = *state;
  berth_error_t err = NULL;
  int fd;

  fd = safe_mkdir_p (f->rootfd, f->root, "/a/b/../c/d", 0755, &err);
  assert_true (fd >= 0);
  close (fd);
  assert_opens_as (f, "a/c/d", O_PATH | O_DIRECTORY, "root/a/c/d");
  assert_opens_as (f, "a/b", O_PATH | O_DIRECTORY, "root/a/b");
  /* Through an absolute link: lands in ROOT/etc.  */
  fd = safe_mkdir_p (f->rootfd, f->root, "/abs/x/y", 0755, &err);
  assert_true (fd >= 0);
  close (fd);
  assert_opens_as (f, "etc/x/y", O_PATH | O_DIRECTORY, "root/etc/x/y");
  /* Escapes are clamped to the root.  */
  fd = safe_mkdir_p (f->rootfd, f->root, "escape/z", 0755, &err);
  assert_true (fd >= 0);
  close (fd);
  assert_opens_as (f, "outside/z", O_PATH | O_DIRECTORY, "root/outside/z");
  /* A dangling link gets its target created inside the root.  */
  fd = safe_mkdir_p (f->rootfd, f->root, "dangling/q", 0755, &err);
  if (fd < 0)
    fail_msg ("%s", err->msg);
  close (fd);
  assert_opens_as (f, "made/by/link/q", O_PATH | O_DIRECTORY,
                   "root/made/by/link/q");
  fd = safe_mkdir_p (f->rootfd, f->root, "file/x", 0755, &err);
  assert_int_equal (fd, -ENOTDIR);
  berth_error_release (&err);
  fd = safe_mkdir_p (f->rootfd, f->root, "loop1/x", 0755, &err);
  assert_int_equal (fd, -ELOOP);
  berth_error_release (&err);
}

static void
test_mount_target (void **state)
{
  struct fixture *f = *state;
  berth_error_t err = NULL;
  struct stat st;
  int fd;

  fd = safe_create_mount_target (f->rootfd, f->root, "/abs/resolv.conf", false,
                                 &err);
  assert_true (fd >= 0);
  assert_int_equal (fstat (fd, &st), 0);
  assert_true (S_ISREG (st.st_mode) && st.st_size == 0);
  close (fd);
  assert_opens_as (f, "etc/resolv.conf", O_PATH, "root/etc/resolv.conf");
  fd = safe_create_mount_target (f->rootfd, f->root, "/new/dir/mnt", true,
                                 &err);
  assert_true (fd >= 0);
  assert_int_equal (fstat (fd, &st), 0);
  assert_true (S_ISDIR (st.st_mode));
  close (fd);
  /* Existing entries are reused as they are.  */
  fd = safe_create_mount_target (f->rootfd, f->root, "/file", false, &err);
  assert_true (fd >= 0);
  close (fd);
  fd = safe_create_mount_target (f->rootfd, f->root, "/dir/rel", false, &err);
  assert_true (fd >= 0);
  close (fd);
}

static void
test_fd_path_and_proc (void **state)
{
  struct fixture *f = *state;
  berth_error_t err = NULL;
  char buf[32];
  int fd;

  assert_string_equal (fd_path (42, buf), "/proc/self/fd/42");
  fd = safe_openat (f->rootfd, f->root, "file", O_RDONLY, 0, &err);
  assert_true (fd >= 0);
  assert_int_equal (check_proc_fd (fd, "file", &err), -EXDEV);
  assert_non_null (strstr (err->msg, "not on procfs"));
  berth_error_release (&err);
  close (fd);
}

#define CASES(setup_fn)                                                        \
  cmocka_unit_test_setup_teardown (test_plain, setup_fn, teardown),            \
      cmocka_unit_test_setup_teardown (test_dotdot_stays_inside, setup_fn,     \
                                       teardown),                              \
      cmocka_unit_test_setup_teardown (test_symlinks_stay_inside, setup_fn,    \
                                       teardown),                              \
      cmocka_unit_test_setup_teardown (test_errors, setup_fn, teardown),       \
      cmocka_unit_test_setup_teardown (test_magic_links, setup_fn, teardown),  \
      cmocka_unit_test_setup_teardown (test_create, setup_fn, teardown),       \
      cmocka_unit_test_setup_teardown (test_mkdir_p, setup_fn, teardown),      \
      cmocka_unit_test_setup_teardown (test_mount_target, setup_fn, teardown), \
      cmocka_unit_test_setup_teardown (test_fd_path_and_proc, setup_fn,        \
                                       teardown)

int
main (void)
{
  const struct CMUnitTest openat2_tests[] = { CASES (setup_openat2) };
  const struct CMUnitTest fallback_tests[] = { CASES (setup_fallback) };
  int failed = 0;

  failed += cmocka_run_group_tests_name ("safe_open openat2", openat2_tests,
                                         NULL, NULL);
  failed += cmocka_run_group_tests_name ("safe_open fallback", fallback_tests,
                                         NULL, NULL);
  return failed ? 1 : 0;
}
