/* test_input.c - the small parsers of user input beside the config:
 * container ids (runtime/state.c) and signal names (runtime/lifecycle.c). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/container.h"
#include "runtime/state.h"
#include "utils.h"

static void
expect_id (const char *id, bool valid)
{
  berth_error_t err = NULL;
  int r = berth_state_validate_id (id, &err);

  if ((r == 0) != valid)
    print_error ("id \"%.40s\": got %d (%s)\n", id ? id : "(null)", r,
                 err ? err->msg : "");
  assert_int_equal (r == 0, valid);
  assert_true (valid ? err == NULL : err != NULL && err->msg != NULL);
  berth_error_release (&err);
}

static void
test_validate_id (void **state)
{
  char longest[1026];

  expect_id ("a", true);
  expect_id ("box", true);
  expect_id ("My-Container_1.2+3", true);
  expect_id ("0123456789abcdef", true);
  expect_id ("...", true);
  expect_id (".hidden", true);

  expect_id ("", false);
  expect_id (NULL, false);
  expect_id (".", false);
  expect_id ("..", false);
  expect_id ("a/b", false);
  expect_id ("/abs", false);
  expect_id ("../x", false);
  expect_id ("a b", false);
  expect_id ("a\nb", false);
  expect_id ("a:b", false);
  expect_id ("caf\xc3\xa9", false);

  memset (longest, 'x', 1024);
  longest[1024] = '\0';
  expect_id (longest, true);
  longest[1024] = 'x';
  longest[1025] = '\0';
  expect_id (longest, false);
}

static void
expect_signal (const char *s, int want)
{
  int sig = -12345;
  int r = berth_parse_signal (s, &sig);

  if (want < 0)
    {
      if (r == 0)
        print_error ("signal \"%s\" parsed as %d\n", s, sig);
      assert_int_equal (r, -EINVAL);
      assert_int_equal (sig, -12345);
    }
  else
    {
      if (r != 0)
        print_error ("signal \"%s\" rejected\n", s);
      assert_int_equal (r, 0);
      assert_int_equal (sig, want);
    }
}

static void
test_parse_signal (void **state)
{
  expect_signal ("KILL", SIGKILL);
  expect_signal ("SIGKILL", SIGKILL);
  expect_signal ("9", SIGKILL);
  expect_signal ("sigterm", SIGTERM);
  expect_signal ("term", SIGTERM);
  expect_signal ("SIGHUP", SIGHUP);
  expect_signal ("WINCH", SIGWINCH);
  expect_signal ("SIGUSR1", SIGUSR1);
  expect_signal ("1", SIGHUP);
  expect_signal ("15", SIGTERM);
  expect_signal ("RTMIN+1", SIGRTMIN + 1);
  expect_signal ("SIGRTMIN+2", SIGRTMIN + 2);
  expect_signal ("rtmin+0", SIGRTMIN);
  expect_signal ("64", SIGRTMAX);
  expect_signal ("RTMAX", SIGRTMAX);
  expect_signal ("SIGRTMAX-2", SIGRTMAX - 2);
  expect_signal ("RTMIN", SIGRTMIN);

  expect_signal ("FOO", -1);
  expect_signal ("SIGFOO", -1);
  expect_signal ("0", -1);
  expect_signal ("-1", -1);
  expect_signal ("-9", -1);
  expect_signal ("65", -1);
  expect_signal ("", -1);
  expect_signal ("SIG", -1);
  expect_signal ("9x", -1);
  expect_signal ("KILLX", -1);
  expect_signal ("RTMIN+", -1);
  expect_signal ("RTMIN+x", -1);
  expect_signal ("RTMIN+-2", -1);
  expect_signal ("RTMAX+1", -1);
  expect_signal (" 9", -1);
  expect_signal ("+9", -1);
  expect_signal ("RTMIN+100", -1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_validate_id),
    cmocka_unit_test (test_parse_signal),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
