/* test_registry_jwt.c - the JSON Web Tokens of berth-registry's token
 * service (registry/jwt.c): keys, base64url, signing and verifying with
 * ES256 and RS256, the registered claims, and the tokens that must be
 * refused (other algorithms, other keys, malformed, non-canonical,
 * oversized). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "json.h"
#include "registry/jwt.h"
#include "utils.h"

#define NOW ((time_t) 1700000000)

static EVP_PKEY *ec_pkey, *rsa_pkey;
static struct jwt_key *ec, *ec_other, *rsa;

/* PKEY as PEM text (malloc'd); encrypted with a passphrase when ENCRYPT. */
static char *
pem_of (EVP_PKEY *pkey, bool encrypt)
{
  BIO *bio = BIO_new (BIO_s_mem ());
  char *data = NULL, *out;
  long n;

  assert_non_null (bio);
  assert_int_equal (
      PEM_write_bio_PrivateKey (bio, pkey, encrypt ? EVP_aes_128_cbc () : NULL,
                                encrypt ? (unsigned char *) "pass" : NULL,
                                encrypt ? 4 : 0, NULL, NULL),
      1);
  n = BIO_get_mem_data (bio, &data);
  out = xstrndup (data, (size_t) n);
  BIO_free (bio);
  return out;
}

static struct jwt_key *
key_of (EVP_PKEY *pkey)
{
  cleanup_free char *pem = pem_of (pkey, false);
  struct jwt_key *key = NULL;
  berth_error_t err = NULL;

  assert_int_equal (jwt_key_from_pem (pem, strlen (pem), "key.pem", &key, &err),
                    0);
  assert_null (err);
  return key;
}

static int
setup (void **state)
{
  EVP_PKEY *other = EVP_EC_gen ("P-256");

  ec_pkey = EVP_EC_gen ("P-256");
  rsa_pkey = EVP_RSA_gen (2048);
  if (ec_pkey == NULL || rsa_pkey == NULL || other == NULL)
    return -1;
  ec = key_of (ec_pkey);
  rsa = key_of (rsa_pkey);
  ec_other = key_of (other);
  EVP_PKEY_free (other);
  return 0;
}

static int
teardown (void **state)
{
  jwt_key_free (ec);
  jwt_key_free (ec_other);
  jwt_key_free (rsa);
  EVP_PKEY_free (ec_pkey);
  EVP_PKEY_free (rsa_pkey);
  return 0;
}

/* base64url of a C string (malloc'd).  */
static char *
b64 (const char *s)
{
  return jwt_base64url ((const unsigned char *) s, strlen (s));
}

/* "HEADER.CLAIMS.SIG" of two JSON texts, signed with RS256 by the RSA
 * key whatever they say: tokens that pass the signature check.  */
static char *
rs256_token (const char *header, const char *claims)
{
  cleanup_free char *h = b64 (header);
  cleanup_free char *c = b64 (claims);
  cleanup_free char *input = NULL;
  cleanup_free char *s = NULL;
  unsigned char sig[512];
  size_t siglen = sizeof (sig);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  char *out = NULL;

  xasprintf (&input, "%s.%s", h, c);
  assert_int_equal (
      EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, rsa_pkey), 1);
  assert_int_equal (EVP_DigestSign (ctx, sig, &siglen, (unsigned char *) input,
                                    strlen (input)),
                    1);
  EVP_MD_CTX_free (ctx);
  s = jwt_base64url (sig, siglen);
  xasprintf (&out, "%s.%s", input, s);
  return out;
}

static json_t *
sample_claims (void)
{
  return json_pack ("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:[{s:s,s:s,s:[s]}]}", "iss",
                    "berth-registry", "sub", "alice", "aud", "berth-registry",
                    "exp", (json_int_t) NOW + 300, "nbf", (json_int_t) NOW,
                    "iat", (json_int_t) NOW, "jti", "0123", "access", "type",
                    "repository", "name", "alice/app", "actions", "pull");
}

/* TOKEN is refused by KEY with a message holding WHAT.  */
static void
refused (const struct jwt_key *key, const char *token, const char *what)
{
  json_t *claims = (void *) 1;
  berth_error_t err = NULL;
  int r = jwt_verify (key, token, &claims, &err);

  if (r == 0 || err == NULL || strstr (err->msg, what) == NULL)
    print_error ("token \"%.80s\": got %d \"%s\", want \"%s\"\n", token, r,
                 err ? err->msg : "", what);
  assert_true (r < 0);
  assert_null (claims);
  assert_non_null (err);
  assert_non_null (strstr (err->msg, what));
  berth_error_release (&err);
}

static json_t *
verified (const struct jwt_key *key, const char *token)
{
  json_t *claims = NULL;
  berth_error_t err = NULL;
  int r = jwt_verify (key, token, &claims, &err);

  if (r < 0)
    print_error ("unexpected: %s\n", err->msg);
  assert_int_equal (r, 0);
  assert_null (err);
  assert_true (json_is_object (claims));
  return claims;
}

static void
test_base64 (void **state)
{
  unsigned char data[64];
  size_t n, i;

  for (i = 0; i < sizeof (data); i++)
    data[i] = (unsigned char) (i * 37 + 250);
  for (n = 0; n <= sizeof (data); n++)
    {
      cleanup_free char *s = jwt_base64url (data, n);
      cleanup_free unsigned char *back = NULL;

      assert_int_equal (strlen (s), (n * 4 + 2) / 3);
      assert_null (strpbrk (s, "+/="));
      assert_int_equal (jwt_base64_decode (s, strlen (s), &back), (long) n);
      assert_memory_equal (back, data, n);
    }
  {
    cleanup_free unsigned char *out = NULL;
    /* Standard base64, padded, as in Basic credentials.  */
    assert_int_equal (jwt_base64_decode ("YWxpY2U6c2VjcmV0", 16, &out), 12);
    assert_string_equal ((char *) out, "alice:secret");
  }
  {
    cleanup_free unsigned char *out = NULL;
    assert_int_equal (jwt_base64_decode ("Pz8/Pw==", 8, &out), 4);
    assert_memory_equal (out, "????", 4);
  }
  {
    unsigned char *out = NULL;
    assert_int_equal (jwt_base64_decode ("YW!j", 4, &out), -1);
    assert_int_equal (jwt_base64_decode ("YWxpY", 5, &out), -1);
    assert_int_equal (jwt_base64_decode ("YW=j", 4, &out), -1);
    assert_int_equal (jwt_base64_decode ("YW j", 4, &out), -1);
    assert_null (out);
  }
}

static void
test_keys (void **state)
{
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-384");
  EVP_PKEY *rsa1024 = EVP_RSA_gen (1024);
  cleanup_free char *pem384 = pem_of (p384, false);
  cleanup_free char *pem1024 = pem_of (rsa1024, false);
  cleanup_free char *encrypted = pem_of (ec_pkey, true);
  cleanup_free char *pem = pem_of (ec_pkey, false);
  char path[] = "/tmp/berth-jwt-key-XXXXXX";
  struct jwt_key *key = (void *) 1;
  berth_error_t err = NULL;
  const char *kid = jwt_key_id (ec);
  size_t i;
  int fd;

  assert_string_equal (jwt_key_alg (ec), "ES256");
  assert_string_equal (jwt_key_alg (rsa), "RS256");
  /* libtrust's form: 12 groups of 4 base32 characters.  */
  assert_int_equal (strlen (kid), 59);
  for (i = 0; i < 59; i++)
    assert_true ((i % 5 == 4)
                     ? kid[i] == ':'
                     : strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", kid[i])
                           != NULL);
  assert_string_not_equal (kid, jwt_key_id (ec_other));

  assert_true (jwt_key_from_pem (pem384, strlen (pem384), "k", &key, &err) < 0);
  assert_null (key);
  assert_non_null (strstr (err->msg, "P-256"));
  berth_error_release (&err);
  assert_true (jwt_key_from_pem (pem1024, strlen (pem1024), "k", &key, &err)
               < 0);
  assert_non_null (strstr (err->msg, "2048 bits"));
  berth_error_release (&err);
  /* An encrypted key fails instead of asking for a passphrase.  */
  assert_true (jwt_key_from_pem (encrypted, strlen (encrypted), "k", &key, &err)
               < 0);
  assert_non_null (strstr (err->msg, "`k`: not a PEM private key"));
  berth_error_release (&err);
  assert_true (jwt_key_from_pem ("garbage", 7, "k", &key, &err) < 0);
  berth_error_release (&err);
  assert_true (jwt_key_from_pem (pem, strlen (pem) / 2, "k", &key, &err) < 0);
  berth_error_release (&err);

  fd = mkstemp (path);
  assert_true (fd >= 0);
  assert_int_equal (safe_write_all (fd, pem, strlen (pem)), strlen (pem));
  close (fd);
  assert_int_equal (jwt_key_load (path, &key, &err), 0);
  assert_string_equal (jwt_key_id (key), kid);
  jwt_key_free (key);
  unlink (path);
  assert_int_equal (jwt_key_load (path, &key, &err), -ENOENT);
  assert_null (key);
  berth_error_release (&err);
  EVP_PKEY_free (p384);
  EVP_PKEY_free (rsa1024);
}

static void
sign_and_verify (const struct jwt_key *key)
{
  cleanup_json json_t *claims = sample_claims ();
  cleanup_json json_t *back = NULL;
  cleanup_json json_t *hdr = NULL;
  cleanup_free char *token = NULL;
  cleanup_free unsigned char *raw = NULL;
  berth_error_t err = NULL;
  long n;

  assert_int_equal (jwt_sign (key, claims, &token, &err), 0);
  back = verified (key, token);
  assert_true (json_equal (back, claims));
  n = jwt_base64_decode (token, (size_t) (strchr (token, '.') - token), &raw);
  assert_true (n > 0);
  hdr = json_loadb ((char *) raw, (size_t) n, 0, NULL);
  assert_string_equal (json_string_value (json_object_get (hdr, "alg")),
                       jwt_key_alg (key));
  assert_string_equal (json_string_value (json_object_get (hdr, "kid")),
                       jwt_key_id (key));
  assert_string_equal (json_string_value (json_object_get (hdr, "typ")), "JWT");
}

static void
test_sign_verify (void **state)
{
  cleanup_json json_t *claims = sample_claims ();
  cleanup_free char *token = NULL;
  berth_error_t err = NULL;

  sign_and_verify (ec);
  sign_and_verify (rsa);

  /* Another key of the same kind, another kind.  */
  assert_int_equal (jwt_sign (ec, claims, &token, &err), 0);
  refused (ec_other, token, "bad signature");
  refused (rsa, token, "algorithm is not RS256");
}

/* jwt_check_claims of the JSON text CLAIMS at NOW: 0, or the message
 * holds WHAT.  */
static void
check_claims (const char *claims, const char *what)
{
  cleanup_json json_t *c = json_loads (claims, 0, NULL);
  berth_error_t err = NULL;
  int r;

  assert_non_null (c);
  r = jwt_check_claims (c, "iss1", "aud1", NOW, &err);
  if ((what == NULL) != (r == 0) || (what && strstr (err->msg, what) == NULL))
    print_error ("%s: got %d \"%s\", want \"%s\"\n", claims, r,
                 err ? err->msg : "", what ? what : "");
  if (what == NULL)
    assert_int_equal (r, 0);
  else
    {
      assert_true (r < 0);
      assert_non_null (strstr (err->msg, what));
    }
  berth_error_release (&err);
}

static void
test_claims (void **state)
{
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":1700000001}", NULL);
  check_claims ("{\"iss\":\"iss1\",\"aud\":[\"x\",\"aud1\"],"
                "\"exp\":1700000300,\"nbf\":1700000000}",
                NULL);
  /* Expired: exp is the first second it is no longer valid.  */
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":1700000000}",
                "expired");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":1}", "expired");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":-5}", "expired");
  /* Not valid yet.  */
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":1700000300,"
                "\"nbf\":1700000001}",
                "not valid yet");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":1700000300,"
                "\"nbf\":\"0\"}",
                "not valid yet");
  /* exp required, an integer.  */
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\"}", "exp");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":1.8e9}", "exp");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1\",\"exp\":\"1800000000\"}",
                "exp");
  /* Issuer and audience.  */
  check_claims ("{\"iss\":\"iss2\",\"aud\":\"aud1\",\"exp\":1800000000}",
                "issuer");
  check_claims ("{\"aud\":\"aud1\",\"exp\":1800000000}", "issuer");
  check_claims ("{\"iss\":[\"iss1\"],\"aud\":\"aud1\",\"exp\":1800000000}",
                "issuer");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud2\",\"exp\":1800000000}",
                "audience");
  check_claims ("{\"iss\":\"iss1\",\"aud\":[\"aud2\",1],\"exp\":1800000000}",
                "audience");
  check_claims ("{\"iss\":\"iss1\",\"exp\":1800000000}", "audience");
  check_claims ("{\"iss\":\"iss1\",\"aud\":\"aud1x\",\"exp\":1800000000}",
                "audience");
}

static void
test_algorithms_refused (void **state)
{
  static const char claims[]
      = "{\"iss\":\"berth-registry\",\"aud\":\"berth-registry\","
        "\"exp\":4000000000}";
  cleanup_free char *c64 = b64 (claims);
  cleanup_free char *none = NULL;
  cleanup_free char *hs = NULL;
  cleanup_free char *input = NULL;
  cleanup_free char *mac64 = NULL;
  cleanup_free char *es_on_rsa = NULL;
  cleanup_free char *no_alg = NULL;
  cleanup_free char *alg_num = NULL;
  cleanup_free char *crit = NULL;
  cleanup_free char *good = NULL;
  cleanup_json json_t *back = NULL;
  unsigned char *der = NULL, mac[32];
  unsigned maclen = sizeof (mac);
  int derlen;

  /* "none" with an empty signature.  */
  {
    cleanup_free char *h = b64 ("{\"alg\":\"none\",\"typ\":\"JWT\"}");
    xasprintf (&none, "%s.%s.", h, c64);
  }
  refused (ec, none, "algorithm is not ES256");
  refused (rsa, none, "algorithm is not RS256");

  /* HS256 keyed with the public key (the classic confusion).  */
  {
    cleanup_free char *h = b64 ("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    xasprintf (&input, "%s.%s", h, c64);
  }
  derlen = i2d_PUBKEY (ec_pkey, &der);
  assert_true (derlen > 0);
  assert_non_null (HMAC (EVP_sha256 (), der, derlen, (unsigned char *) input,
                         strlen (input), mac, &maclen));
  OPENSSL_free (der);
  mac64 = jwt_base64url (mac, maclen);
  xasprintf (&hs, "%s.%s", input, mac64);
  refused (ec, hs, "algorithm is not ES256");

  /* Signed right, but the header names another algorithm, or none.  */
  es_on_rsa = rs256_token ("{\"alg\":\"ES256\"}", claims);
  refused (rsa, es_on_rsa, "algorithm is not RS256");
  no_alg = rs256_token ("{\"typ\":\"JWT\"}", claims);
  refused (rsa, no_alg, "algorithm is not RS256");
  alg_num = rs256_token ("{\"alg\":256}", claims);
  refused (rsa, alg_num, "algorithm is not RS256");
  /* Extensions that must be understood.  */
  crit = rs256_token ("{\"alg\":\"RS256\",\"crit\":[\"exp\"]}", claims);
  refused (rsa, crit, "crit");
  /* The same, plain: accepted (the helper signs right).  */
  good = rs256_token ("{\"alg\":\"RS256\"}", claims);
  back = verified (rsa, good);
  assert_int_equal (json_integer_value (json_object_get (back, "exp")),
                    4000000000);
}

static void
test_malformed (void **state)
{
  static const char claims[] = "{\"iss\":\"berth-registry\"}";
  cleanup_json json_t *c = sample_claims ();
  cleanup_free char *token = NULL;
  cleanup_free char *bad = NULL;
  berth_error_t err = NULL;
  size_t n, len;
  char *dot1, *dot2;

  refused (ec, "", "not a JWS compact form");
  refused (ec, "garbage", "not a JWS compact form");
  refused (ec, "a.b", "not a JWS compact form");
  refused (ec, "a.b.c.d", "not a JWS compact form");
  refused (ec, "..", "header");
  refused (ec, "!!!.e30.", "header: bad base64url");

  assert_int_equal (jwt_sign (ec, c, &token, &err), 0);
  len = strlen (token);
  dot1 = strchr (token, '.');
  dot2 = strrchr (token, '.');

  /* Truncated anywhere: never accepted.  */
  for (n = 0; n < len; n += (n < 8 || len - n < 8) ? 1 : 7)
    {
      json_t *out = (void *) 1;
      cleanup_free char *cut = xstrndup (token, n);
      assert_true (jwt_verify (ec, cut, &out, &err) < 0);
      assert_null (out);
      assert_non_null (err);
      berth_error_release (&err);
    }

  /* base64url only, unpadded, canonical.  */
  xasprintf (&bad, "%s=", token);
  refused (ec, bad, "bad signature");
  free (bad);
  bad = xstrdup (token);
  bad[dot2 - token + 1] = bad[dot2 - token + 1] == 'A' ? '+' : '/';
  refused (ec, bad, "bad signature");
  free (bad);
  bad = xstrdup (token);
  bad[1] = '+';
  refused (ec, bad, "header: bad base64url");
  free (bad);
  /* The signature of ES256 is 64 bytes: 86 characters whose last holds 4
   * unused bits; setting one spells the same bytes otherwise.  */
  assert_int_equal (len - (size_t) (dot2 - token) - 1, 86);
  bad = xstrdup (token);
  {
    static const char tab[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t v = (size_t) (strchr (tab, bad[len - 1]) - tab);
    bad[len - 1] = tab[v ^ 1];
  }
  refused (ec, bad, "bad signature");
  free (bad);
  /* Claims swapped under the signature.  */
  {
    cleanup_free char *c64 = b64 (claims);
    xasprintf (&bad, "%.*s.%s%s", (int) (dot1 - token), token, c64, dot2);
  }
  refused (ec, bad, "bad signature");
  free (bad);
  bad = NULL;

  /* Well signed, but not JSON objects, or with duplicate keys.  */
  {
    static const char *const cases[][3] = {
      { "[\"RS256\"]", "{}", "header: not an object" },
      { "{\"alg\":\"RS256\"", "{}", "header: invalid JSON" },
      { "{\"alg\":\"RS256\",\"alg\":\"RS256\"}", "{}", "header: invalid JSON" },
      { "{\"alg\":\"RS256\"}", "[1]", "claims: not an object" },
      { "{\"alg\":\"RS256\"}", "{\"exp\":1", "claims: invalid JSON" },
      { "{\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"sub\":\"admin\"}",
        "claims: invalid JSON" },
      { "{\"alg\":\"RS256\"}", "", "claims: invalid JSON" },
    };
    size_t i;
    for (i = 0; i < ARRAY_SIZE (cases); i++)
      {
        cleanup_free char *t = rs256_token (cases[i][0], cases[i][1]);
        refused (rsa, t, cases[i][2]);
      }
  }
}

static void
test_huge (void **state)
{
  size_t n = JWT_MAX_BYTES + 1;
  char *big = xmalloc (n + 1);
  cleanup_json json_t *claims = NULL;
  char *token = NULL;
  berth_error_t err = NULL;

  memset (big, 'A', n);
  big[10] = '.';
  big[20] = '.';
  big[n] = '\0';
  refused (ec, big, "longer than 1048576 bytes");
  /* At the limit it is read (and refused for what it is).  */
  big[n - 1] = '\0';
  refused (ec, big, "header");

  /* What would be refused is not signed either.  */
  memset (big, 'x', n);
  big[JWT_MAX_BYTES - JWT_MAX_BYTES / 4] = '\0';
  claims = json_pack ("{s:s}", "pad", big);
  assert_true (jwt_sign (ec, claims, &token, &err) < 0);
  assert_null (token);
  assert_non_null (strstr (err->msg, "longer than"));
  berth_error_release (&err);
  free (big);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_base64),
    cmocka_unit_test (test_keys),
    cmocka_unit_test (test_sign_verify),
    cmocka_unit_test (test_claims),
    cmocka_unit_test (test_algorithms_refused),
    cmocka_unit_test (test_malformed),
    cmocka_unit_test (test_huge),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
