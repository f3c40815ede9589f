/* test_seccomp.c - linux.seccomp parsing, compiling and installing.
 *
 * The install tests fork: the child sets no_new_privs, installs the filter
 * and reports what it saw as bits of its exit status, so a broken filter
 * never touches the test runner itself.  They are skipped where seccomp(2)
 * is unusable (e.g. an outer sandbox refusing it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "json.h"
#include "linux/seccomp-filter.h"
#include "utils.h"

static int
compile_text (const char *text, struct berth_seccomp **out, berth_error_t *err)
{
  json_error_t jerr;
  cleanup_json json_t *j = json_loads (text, 0, &jerr);

  assert_non_null (j);
  return berth_seccomp_compile (j, out, err);
}

/* Compile TEXT, which must fail with a message starting with PREFIX. */
static void
expect_error (const char *text, const char *prefix)
{
  struct berth_seccomp *s = NULL;
  berth_error_t err = NULL;
  int r = compile_text (text, &s, &err);
  bool match;

  assert_true (r < 0);
  assert_null (s);
  assert_non_null (err);
  match = strncmp (err->msg, prefix, strlen (prefix)) == 0;
  if (!match)
    print_error ("got \"%s\", want prefix \"%s\"\n", err->msg, prefix);
  berth_error_release (&err);
  assert_true (match);
}

static struct berth_seccomp *
compile_ok (const char *text)
{
  struct berth_seccomp *s = NULL;
  berth_error_t err = NULL;

  if (compile_text (text, &s, &err) < 0)
    fail_msg ("compile failed: %s", err->msg);
  assert_non_null (s);
  return s;
}

static bool
seccomp_usable (void)
{
  return syscall (SYS_seccomp, 1 /* SET_MODE_FILTER */, 0, NULL) < 0
         && errno == EFAULT;
}

/* Fork; the child installs S and returns CHECK's result as exit status. */
static int
run_filtered (const struct berth_seccomp *s, int (*check) (void))
{
  int status;
  pid_t pid = fork ();

  assert_true (pid >= 0);
  if (pid == 0)
    {
      int fd, r;

      prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      r = berth_seccomp_install (s, &fd);
      if (r < 0)
        _exit (200);
      _exit (check ());
    }
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

#define ALLOW_DEFAULT "{\"defaultAction\":\"SCMP_ACT_ALLOW\","

static void
test_null_profile (void **state UNUSED)
{
  struct berth_seccomp *s = (void *) 1;
  berth_error_t err = NULL;
  int fd = 7;

  assert_int_equal (berth_seccomp_compile (NULL, &s, &err), 0);
  assert_null (s);
  assert_int_equal (berth_seccomp_install (NULL, &fd), 0);
  assert_int_equal (fd, -1);
  assert_false (berth_seccomp_uses_notify (NULL));
  assert_null (berth_seccomp_listener_path (NULL));
  berth_seccomp_free (NULL);
}

static void
test_errors_name_the_field (void **state UNUSED)
{
  expect_error ("[]", "linux.seccomp: expected an object");
  expect_error ("{}", "linux.seccomp.defaultAction: required");
  expect_error (
      "{\"defaultAction\":\"SCMP_ACT_NOPE\"}",
      "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"");
  expect_error (ALLOW_DEFAULT
                "\"syscalls\":["
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\"},"
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\"},"
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ERRNO\"},"
                "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_FOO\"}]}",
                "linux.seccomp.syscalls[3].action: unknown action "
                "\"SCMP_ACT_FOO\"");
  expect_error (ALLOW_DEFAULT
                "\"syscalls\":[{\"names\":[\"read\"],"
                "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,"
                "\"value\":1,\"op\":\"SCMP_CMP_XX\"}]}]}",
                "linux.seccomp.syscalls[0].args[0].op: unknown operator "
                "\"SCMP_CMP_XX\"");
  expect_error (ALLOW_DEFAULT
                "\"syscalls\":[{\"names\":[\"read\"],"
                "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":6,"
                "\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
                "linux.seccomp.syscalls[0].args[0].index: 6 is out of range");
  expect_error (ALLOW_DEFAULT
                "\"syscalls\":[{\"names\":[\"read\"],"
                "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":1,"
                "\"op\":\"SCMP_CMP_EQ\"}]}]}",
                "linux.seccomp.syscalls[0].args[0].value: required");
  expect_error (ALLOW_DEFAULT
                "\"architectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_FOO\"]}",
                "linux.seccomp.architectures[1]: unknown architecture "
                "\"SCMP_ARCH_FOO\"");
  expect_error (ALLOW_DEFAULT "\"flags\":[\"SECCOMP_FILTER_FLAG_NOPE\"]}",
                "linux.seccomp.flags[0]: unknown flag "
                "\"SECCOMP_FILTER_FLAG_NOPE\"");
  expect_error (ALLOW_DEFAULT "\"syscalls\":[{\"names\":[],"
                              "\"action\":\"SCMP_ACT_ERRNO\"}]}",
                "linux.seccomp.syscalls[0].names: must contain at least one");
  expect_error (ALLOW_DEFAULT "\"syscalls\":[{\"names\":[\"read\",3],"
                              "\"action\":\"SCMP_ACT_ERRNO\"}]}",
                "linux.seccomp.syscalls[0].names[1]: expected a string");
  expect_error (ALLOW_DEFAULT "\"syscalls\":[7]}",
                "linux.seccomp.syscalls[0]: expected an object");
}

static void
test_errno_only_where_allowed (void **state UNUSED)
{
  expect_error ("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultErrnoRet\":1}",
                "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno");
  expect_error (ALLOW_DEFAULT "\"syscalls\":[{\"names\":[\"read\"],"
                              "\"action\":\"SCMP_ACT_KILL\",\"errnoRet\":3}]}",
                "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL takes no "
                "errno");
  expect_error (ALLOW_DEFAULT
                "\"syscalls\":[{\"names\":[\"read\"],"
                "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":-1}]}",
                "linux.seccomp.syscalls[0].errnoRet: -1 is out of range");
  berth_seccomp_free (compile_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\","
                                  "\"defaultErrnoRet\":38}"));
  berth_seccomp_free (compile_ok (ALLOW_DEFAULT
                                  "\"syscalls\":[{\"names\":"
                                  "[\"ptrace\"],\"action\":\"SCMP_ACT_TRACE\","
                                  "\"errnoRet\":5}]}"));
}

static void
test_notify_rules (void **state UNUSED)
{
  struct berth_seccomp *s;

  /* Without seccomp(2) libseccomp reports no SCMP_ACT_NOTIFY support.  */
  if (!seccomp_usable ())
    skip ();
  expect_error ("{\"defaultAction\":\"SCMP_ACT_NOTIFY\","
                "\"listenerPath\":\"/x\"}",
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be");
  expect_error (ALLOW_DEFAULT "\"listenerPath\":\"/x\",\"syscalls\":["
                              "{\"names\":[\"mkdir\",\"write\"],"
                              "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot "
                "be used for \"write\"");
  expect_error (ALLOW_DEFAULT "\"syscalls\":[{\"names\":[\"mkdir\"],"
                              "\"action\":\"SCMP_ACT_NOTIFY\"}]}",
                "linux.seccomp.listenerPath: required");
  expect_error (ALLOW_DEFAULT "\"listenerMetadata\":\"m\"}",
                "linux.seccomp.listenerMetadata: set without listenerPath");

  /* listenerPath without notify is carried but unused.  */
  s = compile_ok (ALLOW_DEFAULT "\"listenerPath\":\"/run/agent\"}");
  assert_false (berth_seccomp_uses_notify (s));
  assert_string_equal (berth_seccomp_listener_path (s), "/run/agent");
  assert_null (berth_seccomp_listener_metadata (s));
  berth_seccomp_free (s);

  s = compile_ok (ALLOW_DEFAULT
                  "\"listenerPath\":\"/run/agent\","
                  "\"listenerMetadata\":\"hello\",\"syscalls\":["
                  "{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}");
  assert_true (berth_seccomp_uses_notify (s));
  assert_string_equal (berth_seccomp_listener_metadata (s), "hello");
  berth_seccomp_free (s);
}

static void
test_skips (void **state UNUSED)
{
  struct berth_seccomp *base, *s;

  base = compile_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
                     "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}]}");
  /* Unknown names, rules equal to the default (ERRNO with the default
   * EPERM), the native architecture and duplicates change nothing.  */
  s = compile_ok ("{\"defaultAction\":\"SCMP_ACT_ERRNO\","
                  "\"architectures\":[\"SCMP_ARCH_X86_64\","
                  "\"SCMP_ARCH_X86_64\"],\"syscalls\":["
                  "{\"names\":[\"read\",\"no_such_syscall\"],"
                  "\"action\":\"SCMP_ACT_ALLOW\"},"
                  "{\"names\":[\"write\"],\"action\":\"SCMP_ACT_ERRNO\","
                  "\"errnoRet\":1}]}");
#if defined(__x86_64__)
  assert_int_equal (berth_seccomp_program_length (s),
                    berth_seccomp_program_length (base));
#endif
  assert_true (berth_seccomp_program_length (s) > 0);
  berth_seccomp_free (s);
  berth_seccomp_free (base);

  /* WAIT_KILLABLE_RECV means nothing without a listener: ignored.  */
  berth_seccomp_free (compile_ok (
      ALLOW_DEFAULT "\"flags\":[\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\","
                    "\"SECCOMP_FILTER_FLAG_LOG\"]}"));
}

static int
check_errno_profile (void)
{
  int bad = 0;

  if (mkdir ("/nonexistent-berth-test/x", 0700) != -1 || errno != EPERM)
    bad |= 1;
  if (syscall (SYS_getppid, 12345) != -1 || errno != EACCES)
    bad |= 2;
  if (syscall (SYS_getppid, 0) != getppid ())
    bad |= 4;
  if (access ("/", F_OK) != 0 || getpid () <= 0)
    bad |= 8;
  return bad;
}

static void
test_install_errno (void **state UNUSED)
{
  struct berth_seccomp *s;

  if (!seccomp_usable ())
    skip ();
  s = compile_ok (ALLOW_DEFAULT
                  "\"syscalls\":["
                  "{\"names\":[\"mkdir\",\"mkdirat\"],"
                  "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1},"
                  "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\","
                  "\"errnoRet\":13,\"args\":[{\"index\":0,\"value\":12345,"
                  "\"op\":\"SCMP_CMP_EQ\"}]}]}");
  assert_int_equal (run_filtered (s, check_errno_profile), 0);
  berth_seccomp_free (s);
}

/* getppid ignores its arguments, which makes it a harmless probe.  */
static int
check_arg_semantics (void)
{
  int bad = 0;

  /* Same index twice: either condition matches (OR).  */
  if (syscall (SYS_getppid, 1, 0) != -1 || errno != EACCES)
    bad |= 1;
  if (syscall (SYS_getppid, 2, 0) != -1 || errno != EACCES)
    bad |= 2;
  if (syscall (SYS_getppid, 3, 0) < 0)
    bad |= 4;
  /* Different indexes: both must match (AND).  */
  if (syscall (SYS_getpgid, 0, 7) != -1 || errno != ENOENT)
    bad |= 8;
  if (syscall (SYS_getpgid, 0, 8) < 0)
    bad |= 16;
  /* MASKED_EQ: (arg & value) == valueTwo.  */
  if (syscall (SYS_getsid, 0x1f0) != -1 || errno != EBADF)
    bad |= 32;
  if (syscall (SYS_getsid, 0) < 0)
    bad |= 64;
  return bad;
}

static void
test_install_args (void **state UNUSED)
{
  struct berth_seccomp *s;

  if (!seccomp_usable ())
    skip ();
  s = compile_ok (ALLOW_DEFAULT
                  "\"syscalls\":["
                  "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\","
                  "\"errnoRet\":13,\"args\":["
                  "{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
                  "{\"index\":0,\"value\":2,\"op\":\"SCMP_CMP_EQ\"}]},"
                  "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\","
                  "\"errnoRet\":2,\"args\":["
                  "{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
                  "{\"index\":1,\"value\":7,\"op\":\"SCMP_CMP_EQ\"}]},"
                  "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_ERRNO\","
                  "\"errnoRet\":9,\"args\":[{\"index\":0,\"value\":240,"
                  "\"valueTwo\":240,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}]}");
  assert_int_equal (run_filtered (s, check_arg_semantics), 0);
  berth_seccomp_free (s);
}

static int
send_fd (int sock, int fd)
{
  char c = 'x';
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = { &c, 1 };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
  struct cmsghdr *cm;

  memset (&u, 0, sizeof (u));
  m.msg_control = u.buf;
  m.msg_controllen = sizeof (u.buf);
  cm = CMSG_FIRSTHDR (&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &fd, sizeof (int));
  return sendmsg (sock, &m, 0) == 1 ? 0 : -1;
}

/* Receive up to LEN bytes and at most one fd (or -1).  */
static int
recv_fd (int sock, char *data, size_t len, ssize_t *got)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = { data, len };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
  struct cmsghdr *cm;
  int fd = -1;

  m.msg_control = u.buf;
  m.msg_controllen = sizeof (u.buf);
  *got = recvmsg (sock, &m, MSG_CMSG_CLOEXEC);
  cm = *got >= 0 ? CMSG_FIRSTHDR (&m) : NULL;
  if (cm != NULL && cm->cmsg_type == SCM_RIGHTS)
    memcpy (&fd, CMSG_DATA (cm), sizeof (int));
  return fd;
}

/* Child side of the notify test: SOCK carries the listener to the parent,
 * whose agent answers mkdir with errno 42. */
static void
notify_child (const struct berth_seccomp *s, int sock)
{
  int fd = -1;

  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (berth_seccomp_install (s, &fd) < 0 || fd < 0)
    _exit (200);
  if (send_fd (sock, fd) < 0)
    _exit (201);
  close (fd);
  if (mkdir ("/nonexistent-berth-test/y", 0700) != -1 || errno != 42)
    _exit (202);
  _exit (0);
}

static void
answer_one (int listener, int error)
{
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;

  memset (&req, 0, sizeof (req));
  assert_int_equal (ioctl (listener, SECCOMP_IOCTL_NOTIF_RECV, &req), 0);
  assert_int_equal (req.data.nr, SYS_mkdir);
  memset (&resp, 0, sizeof (resp));
  resp.id = req.id;
  resp.error = -error;
  assert_int_equal (ioctl (listener, SECCOMP_IOCTL_NOTIF_SEND, &resp), 0);
}

static void
test_install_notify (void **state UNUSED)
{
  struct berth_seccomp *s;
  char buf[16];
  ssize_t got;
  int sp[2], fd, status;
  pid_t pid;

  if (!seccomp_usable ())
    skip ();
  s = compile_ok (ALLOW_DEFAULT
                  "\"listenerPath\":\"/unused\",\"syscalls\":["
                  "{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}");
  assert_int_equal (berth_seccomp_install (s, NULL), -EINVAL);
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    notify_child (s, sp[1]);
  close (sp[1]);
  fd = recv_fd (sp[0], buf, sizeof (buf), &got);
  assert_true (fd >= 0);
  answer_one (fd, 42);
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
  close (fd);
  close (sp[0]);
  berth_seccomp_free (s);
}

/* DATA is the container process state the listener received for ST.  */
static void
check_state_doc (const char *data, json_t *st)
{
  cleanup_json json_t *doc = json_loads (data, 0, NULL);
  json_t *fds;

  assert_non_null (doc);
  assert_string_equal (json_string_value (json_object_get (doc, "ociVersion")),
                       "1.2.0");
  assert_int_equal (json_integer_value (json_object_get (doc, "pid")), 42);
  assert_string_equal (json_string_value (json_object_get (doc, "metadata")),
                       "meta");
  fds = json_object_get (doc, "fds");
  assert_int_equal (json_array_size (fds), 1);
  assert_string_equal (json_string_value (json_array_get (fds, 0)),
                       "seccompFd");
  assert_true (json_equal (json_object_get (doc, "state"), st));
}

static void
test_send_listener (void **state UNUSED)
{
  char dir[] = "/tmp/berth-seccomp-XXXXXX", data[4096];
  cleanup_free char *path = NULL, *msg = NULL;
  cleanup_json json_t *st = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  berth_error_t err = NULL;
  int srv, conn, fds[2], fd;
  ssize_t got;

  assert_non_null (mkdtemp (dir));
  xasprintf (&path, "%s/agent.sock", dir);
  strcpy (addr.sun_path, path);
  srv = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal (bind (srv, (struct sockaddr *) &addr, sizeof (addr)), 0);
  assert_int_equal (listen (srv, 1), 0);
  assert_int_equal (pipe2 (fds, O_CLOEXEC), 0);

  st = json_pack ("{s:s,s:s,s:s,s:i}", "ociVersion", "1.2.0", "id", "c1",
                  "status", "creating", "pid", 42);
  msg = berth_seccomp_process_state ("1.2.0", 42, "meta", st);
  /* Connecting succeeds before accept: the backlog holds it.  */
  if (berth_seccomp_send_listener (path, msg, fds[0], &err) < 0)
    fail_msg ("send: %s", err->msg);
  conn = accept4 (srv, NULL, NULL, SOCK_CLOEXEC);
  assert_true (conn >= 0);
  fd = recv_fd (conn, data, sizeof (data) - 1, &got);
  assert_true (fd >= 0);
  assert_int_equal (got, (ssize_t) strlen (msg));
  data[got] = '\0';
  /* The fd received is the pipe we sent.  */
  assert_int_equal (write (fds[1], "z", 1), 1);
  assert_int_equal (read (fd, data + got + 1, 1), 1);

  check_state_doc (data, st);
  /* One state per connection: the runtime closed its end.  */
  assert_int_equal (read (conn, data, 1), 0);

  assert_true (berth_seccomp_send_listener (path, "", fds[0], &err) < 0);
  berth_error_release (&err);
  assert_true (berth_seccomp_send_listener ("/nonexistent-berth/x.sock", msg,
                                            fds[0], &err)
               < 0);
  assert_non_null (strstr (err->msg, "/nonexistent-berth/x.sock"));
  berth_error_release (&err);
  close (fd);
  close (conn);
  close (srv);
  close (fds[0]);
  close (fds[1]);
  unlink (path);
  rmdir (dir);
}

static void
test_features (void **state UNUSED)
{
  cleanup_json json_t *f = berth_seccomp_features ();
  json_t *v;

  assert_non_null (f);
  assert_true (json_is_true (json_object_get (f, "enabled")));
  assert_int_equal (json_array_size (json_object_get (f, "actions")), 9);
  assert_int_equal (json_array_size (json_object_get (f, "operators")), 7);
  assert_int_equal (json_array_size (json_object_get (f, "knownFlags")), 4);
  v = json_object_get (f, "archs");
  assert_true (json_array_size (v) >= 19);
  assert_string_equal (json_string_value (json_array_get (v, 1)),
                       "SCMP_ARCH_X86_64");
  assert_true (json_is_array (json_object_get (f, "supportedFlags")));
}

/* The only *.bpf file in DIR other than NOT (may be NULL); caller frees. */
static char *
cache_file (const char *dir, const char * not )
{
  cleanup_dir DIR *d = opendir (dir);
  struct dirent *e;
  char *path = NULL;

  assert_non_null (d);
  while ((e = readdir (d)) != NULL)
    {
      if (strstr (e->d_name, ".bpf") == NULL)
        continue;
      free (path);
      xasprintf (&path, "%s/%s", dir, e->d_name);
      if (not == NULL || strcmp (path, not ) != 0)
        return path;
    }
  fail_msg ("no cache file in %s", dir);
  return NULL;
}

/* A file that holds another profile's program (as after a name collision)
 * is not used: the key inside is compared in full.  */
static void
check_cache_collision (const char *cache, json_t *j,
                       const struct berth_seccomp *ref)
{
  cleanup_json json_t *other
      = json_pack ("{s:s}", "defaultAction", "SCMP_ACT_ALLOW");
  cleanup_free char *mine = cache_file (cache, NULL);
  cleanup_free char *theirs = NULL;
  struct berth_seccomp *s = NULL;
  berth_error_t err = NULL;

  assert_int_equal (berth_seccomp_compile_cached (other, cache, &s, &err), 0);
  assert_int_not_equal (berth_seccomp_program_length (s),
                        berth_seccomp_program_length (ref));
  berth_seccomp_free (s);
  theirs = cache_file (cache, mine);
  assert_int_equal (rename (theirs, mine), 0);
  assert_int_equal (berth_seccomp_compile_cached (j, cache, &s, &err), 0);
  assert_int_equal (berth_seccomp_program_length (s),
                    berth_seccomp_program_length (ref));
  berth_seccomp_free (s);
}

static void
test_cache (void **state UNUSED)
{
  const char *text = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                     "{\"names\":[\"mkdir\",\"mkdirat\"],"
                     "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1},"
                     "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\","
                     "\"errnoRet\":13,\"args\":[{\"index\":0,\"value\":12345,"
                     "\"op\":\"SCMP_CMP_EQ\"}]}]}";
  char dir[] = "/tmp/berth-seccomp-cache-XXXXXX";
  cleanup_free char *cache = NULL;
  cleanup_json json_t *j = json_loads (text, 0, NULL);
  cleanup_json json_t *bad = NULL;
  struct berth_seccomp *ref = NULL, *miss = NULL, *hit = NULL, *s = NULL;
  berth_error_t err = NULL;

  assert_non_null (mkdtemp (dir));
  xasprintf (&cache, "%s/sub/cache", dir);
  assert_int_equal (berth_seccomp_compile (j, &ref, &err), 0);
  assert_int_equal (berth_seccomp_compile_cached (j, cache, &miss, &err), 0);
  assert_int_equal (berth_seccomp_compile_cached (j, cache, &hit, &err), 0);
  assert_int_equal (berth_seccomp_program_length (hit),
                    berth_seccomp_program_length (ref));
  assert_int_equal (berth_seccomp_program_length (miss),
                    berth_seccomp_program_length (ref));
  if (seccomp_usable ())
    assert_int_equal (run_filtered (hit, check_errno_profile), 0);
  check_cache_collision (cache, j, ref);

  /* A hit still validates the profile.  */
  bad = json_deep_copy (j);
  json_object_set_new (bad, "flags", json_pack ("[s]", "NOPE"));
  assert_true (berth_seccomp_compile_cached (bad, cache, &s, &err) < 0);
  assert_null (s);
  berth_error_release (&err);

  berth_seccomp_free (ref);
  berth_seccomp_free (miss);
  berth_seccomp_free (hit);
  assert_int_equal (remove_tree (dir, &err), 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_null_profile),
    cmocka_unit_test (test_errors_name_the_field),
    cmocka_unit_test (test_errno_only_where_allowed),
    cmocka_unit_test (test_notify_rules),
    cmocka_unit_test (test_skips),
    cmocka_unit_test (test_install_errno),
    cmocka_unit_test (test_install_args),
    cmocka_unit_test (test_install_notify),
    cmocka_unit_test (test_send_listener),
    cmocka_unit_test (test_features),
    cmocka_unit_test (test_cache),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
