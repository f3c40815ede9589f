/* test_registry_reference.c - repository names, tags and digests as
 * berth-registry validates them (registry/reference.c), the digests it
 * computes (registry/digest.c) and its configuration file
 * (registry/config.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry/config.h"
#include "registry/digest.h"
#include "registry/reference.h"
#include "utils.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
expect_name (const char *name, bool valid)
{
  berth_error_t err = NULL;
  int r = registry_validate_name (name, &err);

  if ((r == 0) != valid)
    print_error ("name \"%.60s\": got %d (%s)\n", name ? name : "(null)", r,
                 err ? err->msg : "");
  assert_int_equal (r == 0, valid);
  assert_true (valid ? err == NULL : err != NULL && err->msg != NULL);
  berth_error_release (&err);
}

static void
test_names (void **state)
{
  char longest[300];

  expect_name ("a", true);
  expect_name ("busybox", true);
  expect_name ("library/busybox", true);
  expect_name ("a/b/c", true);
  expect_name ("a.b", true);
  expect_name ("a_b", true);
  expect_name ("a__b", true);
  expect_name ("a-b", true);
  expect_name ("a---b", true);
  expect_name ("0/1/2", true);
  expect_name ("my.registry_name-x/sub.component", true);
  expect_name ("x/blobs/uploads", true);
  expect_name ("x/manifests", true);

  expect_name (NULL, false);
  expect_name ("", false);
  expect_name ("A", false);
  expect_name ("library/Busybox", false);
  expect_name ("/a", false);
  expect_name ("a/", false);
  expect_name ("a//b", false);
  expect_name ("..", false);
  expect_name ("a/../b", false);
  expect_name ("a/./b", false);
  expect_name ("a..b", false);
  expect_name (".a", false);
  expect_name ("a.", false);
  expect_name ("-a", false);
  expect_name ("a-", false);
  expect_name ("_a", false);
  expect_name ("a___b", false);
  expect_name ("a._b", false);
  expect_name ("a-.b", false);
  expect_name ("a b", false);
  expect_name ("a:b", false);
  expect_name ("a\nb", false);
  expect_name ("a%2fb", false);
  expect_name ("_uploads", false);
  expect_name ("a/_manifests", false);
  expect_name ("caf\xc3\xa9", false);

  /* 255 characters at most, slashes included.  */
  memset (longest, 'a', 255);
  longest[255] = '\0';
  longest[100] = '/';
  expect_name (longest, true);
  longest[255] = 'a';
  longest[256] = '\0';
  expect_name (longest, false);
}

static void
expect_tag (const char *tag, bool valid)
{
  berth_error_t err = NULL;
  int r = registry_validate_tag (tag, &err);

  if ((r == 0) != valid)
    print_error ("tag \"%.60s\": got %d (%s)\n", tag ? tag : "(null)", r,
                 err ? err->msg : "");
  assert_int_equal (r == 0, valid);
  berth_error_release (&err);
}

static void
test_tags (void **state)
{
  char tag[140];

  expect_tag ("latest", true);
  expect_tag ("v1.2.3", true);
  expect_tag ("V1", true);
  expect_tag ("_private", true);
  expect_tag ("1", true);
  expect_tag ("a-b_c.d", true);
  expect_tag ("sha256-" HEX64, true);

  expect_tag (NULL, false);
  expect_tag ("", false);
  expect_tag (".hidden", false);
  expect_tag ("-x", false);
  expect_tag ("..", false);
  expect_tag ("a/b", false);
  expect_tag ("a:b", false);
  expect_tag ("a b", false);
  expect_tag ("a+b", false);
  expect_tag ("tag\n", false);

  memset (tag, 'x', 128);
  tag[128] = '\0';
  expect_tag (tag, true);
  tag[128] = 'x';
  tag[129] = '\0';
  expect_tag (tag, false);
}

static void
expect_digest (const char *s, int want)
{
  struct registry_digest d;
  berth_error_t err = NULL;
  int r = registry_digest_parse (s, &d, &err);

  if (r != want)
    print_error ("digest \"%.80s\": got %d (%s), want %d\n", s ? s : "(null)",
                 r, err ? err->msg : "", want);
  assert_int_equal (r, want);
  if (r == 0)
    {
      assert_string_equal (d.str, s);
      assert_string_equal (registry_digest_hex (&d), strchr (s, ':') + 1);
    }
  else
    assert_non_null (err);
  berth_error_release (&err);
}

static void
test_digests (void **state)
{
  char sha512[7 + 128 + 1];
  struct registry_digest d, copy;
  berth_error_t err = NULL;

  expect_digest ("sha256:" HEX64, 0);
  snprintf (sha512, sizeof (sha512), "sha512:%s%s", HEX64, HEX64);
  expect_digest (sha512, 0);

  /* The grammar, but an algorithm this registry does not support.  */
  expect_digest ("md5:d41d8cd98f00b204e9800998ecf8427e", -ENOTSUP);
  expect_digest ("sha384:" HEX64, -ENOTSUP);
  expect_digest (
      "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
      -ENOTSUP);
  expect_digest ("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
                 -ENOTSUP);

  /* Not the grammar, or sha256/sha512 with a bad encoded part.  */
  expect_digest (NULL, -EINVAL);
  expect_digest ("", -EINVAL);
  expect_digest ("sha256", -EINVAL);
  expect_digest ("sha256:", -EINVAL);
  expect_digest (":" HEX64, -EINVAL);
  expect_digest ("SHA256:" HEX64, -EINVAL);
  expect_digest ("sha256:" HEX64 "0", -EINVAL);
  expect_digest ("sha256:0123", -EINVAL);
  expect_digest (
      "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456"
      "789abcdef",
      -EINVAL);
  expect_digest (
      "sha256:g123456789abcdef0123456789abcdef0123456789abcdef0123456"
      "789abcdef",
      -EINVAL);
  expect_digest ("sha256:" HEX64 "/../x", -EINVAL);
  expect_digest ("sha256::" HEX64, -EINVAL);
  expect_digest ("sha512:" HEX64, -EINVAL);
  expect_digest ("sha-:" HEX64, -EINVAL);
  expect_digest ("+sha:" HEX64, -EINVAL);
  expect_digest ("sha256 :" HEX64, -EINVAL);

  /* A digest is a plain value.  */
  assert_int_equal (registry_digest_parse ("sha256:" HEX64, &d, &err), 0);
  copy = d;
  memset (&d, 0, sizeof (d));
  assert_string_equal (registry_digest_hex (&copy), HEX64);
  assert_int_equal (copy.alg, REGISTRY_SHA256);

  assert_true (registry_reference_is_digest ("sha256:" HEX64));
  assert_false (registry_reference_is_digest ("latest"));
}

static void
test_hashing (void **state)
{
  struct registry_digest d, e;
  struct registry_hasher *h, *snap;

  /* The empty descriptor's content, "{}".  */
  registry_digest_buffer (REGISTRY_SHA256, "{}", 2, &d);
  assert_string_equal (d.str, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc2"
                              "1fe77e8310c060f61caaff8a");
  registry_digest_buffer (REGISTRY_SHA256, "", 0, &d);
  assert_string_equal (d.str, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e"
                              "4649b934ca495991b7852b855");
  registry_digest_buffer (REGISTRY_SHA512, "abc", 3, &d);
  assert_string_equal (registry_digest_hex (&d),
                       "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9e"
                       "eee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423"
                       "643ce80e2a9ac94fa54ca49f");

  /* Incremental, and a snapshot that can be resumed.  */
  h = registry_hasher_new (REGISTRY_SHA256);
  registry_hasher_update (h, "{", 1);
  snap = registry_hasher_copy (h);
  registry_hasher_update (h, "}", 1);
  registry_hasher_digest (h, &e);
  registry_digest_buffer (REGISTRY_SHA256, "{}", 2, &d);
  assert_string_equal (e.str, d.str);
  registry_hasher_update (snap, "}", 1);
  registry_hasher_digest (snap, &e);
  assert_string_equal (e.str, d.str);
  /* digest() leaves the state usable.  */
  registry_hasher_update (h, "x", 1);
  registry_hasher_digest (h, &e);
  registry_digest_buffer (REGISTRY_SHA256, "{}x", 3, &d);
  assert_string_equal (e.str, d.str);
  registry_hasher_free (h);
  registry_hasher_free (snap);
}

static int
parse_config (struct registry_config *cfg, const char *json, char **msg)
{
  berth_error_t err = NULL;
  int r;

  registry_config_init (cfg);
  r = registry_config_parse (cfg, json, strlen (json), "test.json", &err);
  *msg = err ? xstrdup (err->msg) : NULL;
  berth_error_release (&err);
  return r;
}

static void
test_config (void **state)
{
  struct registry_config cfg;
  char *msg = NULL;

  registry_config_init (&cfg);
  assert_string_equal (cfg.listen, "127.0.0.1:5000");
  assert_string_equal (cfg.root, "/var/lib/berth-registry");
  assert_string_equal (cfg.log_level, "info");
  assert_int_equal (cfg.max_manifest_bytes, 4 * 1024 * 1024);
  assert_int_equal (cfg.upload_expire_seconds, 3600);
  registry_config_release (&cfg);

  assert_int_equal (parse_config (&cfg,
                                  "{\"listen\":\":6000\",\"root\":\"/srv/r\","
                                  "\"log_level\":\"warn\",\"threads\":3,"
                                  "\"limits\":{\"max_body_bytes\":1000,"
                                  "\"max_manifest_bytes\":2000},"
                                  "\"uploads\":{\"expire_seconds\":60},"
                                  "\"cache\":{\"max_bytes\":0}}",
                                  &msg),
                    0);
  assert_string_equal (cfg.listen, ":6000");
  assert_string_equal (cfg.root, "/srv/r");
  assert_string_equal (cfg.log_level, "warn");
  assert_int_equal (cfg.threads, 3);
  assert_int_equal (cfg.max_body_bytes, 1000);
  assert_int_equal (cfg.max_manifest_bytes, 2000);
  assert_int_equal (cfg.upload_expire_seconds, 60);
  assert_int_equal (cfg.cache_bytes, 0);
  registry_config_release (&cfg);

  /* Each refusal names the setting.  */
  assert_true (parse_config (&cfg, "{\"listne\":\":1\"}", &msg) < 0);
  assert_non_null (strstr (msg, "listne"));
  free (msg);
  registry_config_release (&cfg);
  assert_true (parse_config (&cfg, "{\"limits\":{\"max\":1}}", &msg) < 0);
  assert_non_null (strstr (msg, "limits.max"));
  free (msg);
  registry_config_release (&cfg);
  assert_true (parse_config (&cfg, "{\"log_level\":\"loud\"}", &msg) < 0);
  assert_non_null (strstr (msg, "log_level"));
  free (msg);
  registry_config_release (&cfg);
  assert_true (
      parse_config (&cfg, "{\"uploads\":{\"expire_seconds\":-1}}", &msg) < 0);
  assert_non_null (strstr (msg, "uploads.expire_seconds"));
  free (msg);
  registry_config_release (&cfg);
  assert_true (parse_config (&cfg, "{\"listen\":5000}", &msg) < 0);
  free (msg);
  registry_config_release (&cfg);
  assert_true (parse_config (&cfg, "[]", &msg) < 0);
  free (msg);
  registry_config_release (&cfg);
  assert_true (parse_config (&cfg, "{", &msg) < 0);
  free (msg);
  registry_config_release (&cfg);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_names),   cmocka_unit_test (test_tags),
    cmocka_unit_test (test_digests), cmocka_unit_test (test_hashing),
    cmocka_unit_test (test_config),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
