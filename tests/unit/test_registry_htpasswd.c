/* test_registry_htpasswd.c - htpasswd files as berth-registry reads them
 * (registry/htpasswd.c: the format, what is refused, password checks)
 * and the "auth.admins" list that names their users (registry/config.c,
 * registry/auth.c). */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry/auth.h"
#include "registry/config.h"
#include "registry/htpasswd.h"
#include "utils.h"

/* A hash of PASSWORD made with crypt_r for the method PREFIX ("$2b$",
 * "$6$", "$y$"), at the lowest cost it allows.  */
static char *
hash_of (const char *prefix, const char *password)
{
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  struct crypt_data cd;
  const char *h;

  memset (&cd, 0, sizeof (cd));
  assert_non_null (crypt_gensalt_rn (prefix, 0, NULL, 0, salt, sizeof (salt)));
  h = crypt_r (password, salt, &cd);
  assert_non_null (h);
  assert_true (h[0] == '$');
  return xstrdup (h);
}

static char *alice_hash, *bob_hash;

static int
setup (void **state)
{
  alice_hash = hash_of ("$2b$", "secret");
  bob_hash = hash_of ("$2b$", "hunter2");
  return 0;
}

static int
teardown (void **state)
{
  free (alice_hash);
  free (bob_hash);
  return 0;
}

/* Parse DATA (a C string, or LEN bytes when LEN is not 0).  */
static struct registry_htpasswd *
parse_ok (const char *data, size_t len)
{
  struct registry_htpasswd *h = NULL;
  berth_error_t err = NULL;
  int r = registry_htpasswd_parse (data, len ? len : strlen (data), "FILE", &h,
                                   &err);

  if (r < 0)
    print_error ("unexpected error: %s\n", err->msg);
  assert_int_equal (r, 0);
  assert_null (err);
  assert_non_null (h);
  return h;
}

/* Parsing fails with a message starting with "FILE:LINE: " and holding
 * WHAT.  */
static void
parse_fails (const char *data, size_t len, unsigned line, const char *what)
{
  struct registry_htpasswd *h = (void *) 1;
  berth_error_t err = NULL;
  char prefix[32];
  int r = registry_htpasswd_parse (data, len ? len : strlen (data), "FILE", &h,
                                   &err);

  assert_int_equal (r, -EINVAL);
  assert_null (h);
  assert_non_null (err);
  snprintf (prefix, sizeof (prefix), "FILE:%u: ", line);
  if (strncmp (err->msg, prefix, strlen (prefix)) != 0
      || strstr (err->msg, what) == NULL)
    print_error ("got \"%s\", want \"%s...%s\"\n", err->msg, prefix, what);
  assert_memory_equal (err->msg, prefix, strlen (prefix));
  assert_non_null (strstr (err->msg, what));
  berth_error_release (&err);
}

static void
test_format (void **state)
{
  cleanup_free char *doc = NULL;
  struct registry_htpasswd *h;

  /* Comments, empty lines, lines of blanks, CRLF, no final newline.  */
  xasprintf (&doc,
             "# users of the registry\r\n"
             "\n"
             "alice:%s\r\n"
             "   \t \n"
             "#bob:%s\n"
             "\r\n"
             "bob:%s",
             alice_hash, alice_hash, bob_hash);
  h = parse_ok (doc, 0);
  assert_int_equal (registry_htpasswd_count (h), 2);
  assert_string_equal (registry_htpasswd_user (h, 0), "alice");
  assert_string_equal (registry_htpasswd_user (h, 1), "bob");
  assert_null (registry_htpasswd_user (h, 2));
  assert_true (registry_htpasswd_has_user (h, "alice"));
  assert_false (registry_htpasswd_has_user (h, "#bob"));
  assert_false (registry_htpasswd_has_user (h, "carol"));

  /* The \r is not part of the hash, the password is checked.  */
  assert_true (registry_htpasswd_verify (h, "alice", "secret"));
  assert_true (registry_htpasswd_verify (h, "bob", "hunter2"));
  assert_false (registry_htpasswd_verify (h, "alice", "hunter2"));
  assert_false (registry_htpasswd_verify (h, "alice", "secret\r"));
  assert_false (registry_htpasswd_verify (h, "alice", ""));
  assert_false (registry_htpasswd_verify (h, "carol", "secret"));
  assert_false (registry_htpasswd_verify (h, "", ""));
  registry_htpasswd_free (h);

  /* Empty, comments only: no users, nobody gets in.  */
  h = parse_ok ("", 0);
  assert_int_equal (registry_htpasswd_count (h), 0);
  registry_htpasswd_free (h);
  h = parse_ok ("# nobody\n\n\r\n", 0);
  assert_int_equal (registry_htpasswd_count (h), 0);
  assert_false (registry_htpasswd_verify (h, "alice", "secret"));
  registry_htpasswd_free (h);
  assert_false (registry_htpasswd_verify (NULL, "alice", "secret"));
  assert_int_equal (registry_htpasswd_count (NULL), 0);
  registry_htpasswd_free (NULL);
}

static void
test_other_crypt_methods (void **state)
{
  static const char *const prefixes[] = { "$2y$", "$6$", "$5$", "$y$" };
  size_t i;

  for (i = 0; i < ARRAY_SIZE (prefixes); i++)
    {
      cleanup_free char *hash = hash_of (prefixes[i], "pw");
      cleanup_free char *doc = NULL;
      struct registry_htpasswd *h;

      xasprintf (&doc, "u:%s\n", hash);
      h = parse_ok (doc, 0);
      assert_true (registry_htpasswd_verify (h, "u", "pw"));
      assert_false (registry_htpasswd_verify (h, "u", "px"));
      registry_htpasswd_free (h);
    }
}

static void
test_refused (void **state)
{
  /* Lines around alice's hash (%s).  */
  static const struct
  {
    const char *line, *what;
  } around_hash[] = {
    { ":%s\n", "expected USER:HASH" },
    /* A blank pasted along, a ':' in the hash, a control character.  */
    { "alice:%s \n", "htpasswd -B" },
    { "alice:%s:comment\n", "htpasswd -B" },
    { "al\033ice:%s\n", "control character" },
  };
  char *doc = NULL;
  char nul[] = "# x\nalice:$2y$05$abc\0def\n";
  size_t i;

  /* Not hashes crypt_r verifies: plain text, Apache MD5, {SHA}.  */
  parse_fails ("alice:secret\n", 0, 1, "htpasswd -B");
  parse_fails ("# c\n\nalice:$apr1$hmRkV/Ie$9VIXoBbYGPNu4n2o0v4Ha.\n", 0, 3,
               "user `alice`: not a bcrypt");
  parse_fails ("alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n", 0, 1,
               "htpasswd -B");
  parse_fails ("alice:\n", 0, 1, "htpasswd -B");
  parse_fails ("alice:$\n", 0, 1, "htpasswd -B");
  /* Not USER:HASH.  */
  parse_fails ("alice\n", 0, 1, "expected USER:HASH");
  for (i = 0; i < ARRAY_SIZE (around_hash); i++)
    {
      xasprintf (&doc, around_hash[i].line, alice_hash);
      parse_fails (doc, 0, 1, around_hash[i].what);
      free (doc);
    }
  /* A user twice: the second line is named.  */
  xasprintf (&doc, "alice:%s\nbob:%s\n\nalice:%s\n", alice_hash, bob_hash,
             bob_hash);
  parse_fails (doc, 0, 4, "user `alice` is defined twice");
  free (doc);
  /* A NUL byte, by its line.  */
  parse_fails (nul, sizeof (nul) - 1, 2, "NUL byte");
}

static void
test_long_lines (void **state)
{
  size_t hlen = strlen (alice_hash),
         name = REGISTRY_HTPASSWD_MAX_LINE - 1 - hlen;
  char *doc = xmalloc (REGISTRY_HTPASSWD_MAX_LINE + 64);
  struct registry_htpasswd *h;

  /* Exactly the limit (CRLF aside) is fine ...  */
  memset (doc, 'u', name);
  doc[name] = ':';
  memcpy (doc + name + 1, alice_hash, hlen);
  strcpy (doc + REGISTRY_HTPASSWD_MAX_LINE, "\r\n");
  h = parse_ok (doc, 0);
  assert_int_equal (registry_htpasswd_count (h), 1);
  assert_int_equal (strlen (registry_htpasswd_user (h, 0)), name);
  registry_htpasswd_free (h);

  /* ... one byte more is not, a comment neither.  */
  memmove (doc + 1, doc, REGISTRY_HTPASSWD_MAX_LINE + 3);
  doc[0] = 'u';
  parse_fails (doc, 0, 1, "line longer than 4096 bytes");
  memset (doc, '#', REGISTRY_HTPASSWD_MAX_LINE + 1);
  parse_fails (doc, 0, 1, "line longer than");
  free (doc);
}

static void
test_load (void **state)
{
  char path[] = "/tmp/berth-htpasswd-XXXXXX";
  cleanup_free char *doc = NULL;
  struct registry_htpasswd *h = NULL;
  berth_error_t err = NULL;
  int fd = mkstemp (path);

  assert_true (fd >= 0);
  xasprintf (&doc, "alice:%s\n", alice_hash);
  assert_int_equal (safe_write_all (fd, doc, strlen (doc)), strlen (doc));
  close (fd);
  assert_int_equal (registry_htpasswd_load (path, &h, &err), 0);
  assert_true (registry_htpasswd_verify (h, "alice", "secret"));
  registry_htpasswd_free (h);

  /* Errors name the file.  */
  fd = open (path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  assert_true (fd >= 0);
  assert_int_equal (safe_write_all (fd, "x:y\n", 4), 4);
  close (fd);
  assert_true (registry_htpasswd_load (path, &h, &err) < 0);
  assert_null (h);
  assert_memory_equal (err->msg, path, strlen (path));
  berth_error_release (&err);
  unlink (path);
  assert_int_equal (registry_htpasswd_load (path, &h, &err), -ENOENT);
  assert_null (h);
  berth_error_release (&err);
}

/* --- auth.admins -------------------------------------------------------- */

/* JSON parsed as the config into *CFG (initialised here): NULL, or the
 * error's message (malloc'd).  */
static char *
config_error (struct registry_config *cfg, const char *json)
{
  berth_error_t err = NULL;
  char *msg = NULL;

  registry_config_init (cfg);
  if (registry_config_parse (cfg, json, strlen (json), "cfg.json", &err) < 0)
    msg = xstrdup (err->msg);
  berth_error_release (&err);
  return msg;
}

static void
config_fails (const char *json, const char *what)
{
  struct registry_config cfg;
  char *msg = config_error (&cfg, json);

  if (msg == NULL || strstr (msg, what) == NULL)
    print_error ("got \"%s\", want \"%s\"\n", msg ? msg : "", what);
  assert_non_null (msg);
  assert_non_null (strstr (msg, what));
  free (msg);
  registry_config_release (&cfg);
}

/* registry_auth_create with admins ADMINS (a JSON array) over an htpasswd
 * file of alice and bob: NULL when it works, else the message.  */
static char *
create_auth (const char *admins)
{
  char path[] = "/tmp/berth-htpasswd-XXXXXX";
  cleanup_free char *doc = NULL;
  cleanup_free char *json = NULL;
  struct registry_config cfg;
  struct registry_auth *auth = NULL;
  berth_error_t err = NULL;
  char *msg = NULL;
  int fd = mkstemp (path);

  assert_true (fd >= 0);
  xasprintf (&doc, "alice:%s\nbob:%s\n", alice_hash, bob_hash);
  assert_int_equal (safe_write_all (fd, doc, strlen (doc)), strlen (doc));
  close (fd);
  xasprintf (&json, "{\"auth\":{\"admins\":%s,\"htpasswd\":{\"path\":\"%s\"}}}",
             admins, path);
  assert_null (config_error (&cfg, json));
  if (registry_auth_create (&cfg.auth, &auth, &err) < 0)
    {
      assert_null (auth);
      msg = xstrdup (err->msg);
      berth_error_release (&err);
    }
  else
    assert_non_null (auth);
  registry_auth_free (auth);
  registry_config_release (&cfg);
  unlink (path);
  return msg;
}

static void
test_admins (void **state)
{
  struct registry_config cfg;
  char *msg = NULL;

  assert_null (config_error (&cfg, "{\"auth\":{\"admins\":[\"alice\"],"
                                   "\"htpasswd\":{\"path\":\"/x\"}}}"));
  assert_non_null (cfg.auth.admins);
  assert_string_equal (cfg.auth.admins[0], "alice");
  assert_null (cfg.auth.admins[1]);
  registry_config_release (&cfg);

  config_fails ("{\"auth\":{\"admins\":\"alice\","
                "\"htpasswd\":{\"path\":\"/x\"}}}",
                "auth.admins: expected an array");
  config_fails ("{\"auth\":{\"admins\":[\"alice\",1],"
                "\"htpasswd\":{\"path\":\"/x\"}}}",
                "auth.admins: expected an array of strings");
  config_fails ("{\"auth\":{\"admins\":[\"alice\"]}}",
                "auth.admins: needs auth.htpasswd or auth.token");

  assert_null (create_auth ("[]"));
  assert_null (create_auth ("[\"alice\",\"bob\"]"));
  msg = create_auth ("[\"alice\",\"carol\"]");
  assert_non_null (msg);
  assert_non_null (strstr (msg, "auth.admins: `carol` is not a user of"));
  free (msg);
  msg = create_auth ("[\"\"]");
  assert_non_null (msg);
  assert_non_null (strstr (msg, "auth.admins: `` is not a user"));
  free (msg);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_format),
    cmocka_unit_test (test_other_crypt_methods),
    cmocka_unit_test (test_refused),
    cmocka_unit_test (test_long_lines),
    cmocka_unit_test (test_load),
    cmocka_unit_test (test_admins),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
