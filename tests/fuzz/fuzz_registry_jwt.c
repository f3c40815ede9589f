/* fuzz_registry_jwt.c - libFuzzer target for the JSON Web Tokens that
 * clients send back to berth-registry's token service (registry/jwt.c).
 *
 * The first byte of the input says what the rest is (modulo 3):
 *
 *   0  a token, as an Authorization: Bearer header brings it (up to the
 *      first NUL), verified with jwt_verify and this target's own ES256
 *      key.  The seeds are tokens signed with that key, so mutations
 *      start from tokens that pass and explore the header, the algorithm
 *      check, base64url and the signature.
 *   1  a JSON text of claims: when it is an object, it is signed with
 *      jwt_sign and verified back (which must work and give the same
 *      claims), so the claims' parser and jwt_check_claims see any
 *      content under a valid signature.
 *   2  bytes for the base64 helpers: decoding and encoding must round
 *      trip.
 *
 * Whatever verifies is checked with jwt_check_claims at several times
 * around its exp and nbf, against an independent reading of the claims.
 * Besides the sanitizers, a failure must return a message and no claims;
 * any broken contract aborts.  */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/jwt.h"
#include "utils.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define ISSUER "berth-registry"
#define AUDIENCE "berth-registry"

/* This target's key (EC P-256), made for it and used nowhere else: the
 * seeds in corpus/registry_jwt/ are signed with it.  */
static const char key_pem[]
    = "-----BEGIN PRIVATE KEY-----\n"
      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXvK+mPcBxE+Sxa2+\n"
      "aMg479ylE8dc7yHHp+c3rDKVEeuhRANCAATiBfDkmJrNqUvdONIII2hlAKju4/jQ\n"
      "x3elryc+SyA5vgTfApY6RX2a5mFN+qSxZ6O2w1OwYFKcGsR9qt1mp0GM\n"
      "-----END PRIVATE KEY-----\n";

static struct jwt_key *key;

static void
check (int ok)
{
  if (!ok)
    abort ();
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  berth_error_t err = NULL;

  (void) argc;
  (void) argv;
  check (jwt_key_from_pem (key_pem, sizeof (key_pem) - 1, "fuzz", &key, &err)
         == 0);
  return 0;
}

static void
check_failure (int r, berth_error_t *err)
{
  check (r < 0);
  check (*err != NULL && (*err)->msg != NULL && (*err)->msg[0] != '\0');
  berth_error_release (err);
}

/* The registered claims as RFC 7519 and jwt.h describe them, read
 * independently of jwt_check_claims.  */
static bool
expect_valid (json_t *c, json_int_t now)
{
  json_t *iss = json_object_get (c, "iss"), *aud = json_object_get (c, "aud");
  json_t *exp = json_object_get (c, "exp"), *nbf = json_object_get (c, "nbf");
  bool aud_ok = false;
  size_t i;

  if (json_is_string (aud))
    aud_ok = strcmp (json_string_value (aud), AUDIENCE) == 0;
  for (i = 0; json_is_array (aud) && i < json_array_size (aud); i++)
    {
      json_t *x = json_array_get (aud, i);
      if (json_is_string (x) && strcmp (json_string_value (x), AUDIENCE) == 0)
        aud_ok = true;
    }
  return json_is_string (iss) && strcmp (json_string_value (iss), ISSUER) == 0
         && aud_ok && json_is_integer (exp) && json_integer_value (exp) > now
         && (nbf == NULL
             || (json_is_integer (nbf) && json_integer_value (nbf) <= now));
}

/* Times worth trying: far from the ends of the 64-bit range, so that
 * T - 1 cannot overflow.  */
#define TIME_LIMIT ((json_int_t) 1 << 62)

static void
check_claims_at (json_t *c, json_int_t now)
{
  berth_error_t err = NULL;
  int r;

  if (now < -TIME_LIMIT || now > TIME_LIMIT)
    return;
  r = jwt_check_claims (c, ISSUER, AUDIENCE, (time_t) now, &err);
  check ((r == 0) == expect_valid (c, now));
  if (r < 0)
    check_failure (r, &err);
  else
    check (err == NULL);
}

static void
check_claims (json_t *c)
{
  json_t *exp = json_object_get (c, "exp"), *nbf = json_object_get (c, "nbf");

  json_t *times[] = { exp, nbf };
  size_t i;

  check_claims_at (c, 1700000000);
  for (i = 0; i < 2; i++)
    {
      json_int_t t = json_integer_value (times[i]);
      if (!json_is_integer (times[i]) || t <= -TIME_LIMIT || t > TIME_LIMIT)
        continue;
      check_claims_at (c, t - 1);
      check_claims_at (c, t);
    }
}

static void
fuzz_token (const uint8_t *data, size_t size)
{
  cleanup_free char *token = xstrndup ((const char *) data, size);
  json_t *claims = (json_t *) 1;
  berth_error_t err = NULL;
  int r = jwt_verify (key, token, &claims, &err);

  if (r < 0)
    {
      check (claims == NULL);
      check (strncmp (err->msg, "token", 5) == 0);
      check_failure (r, &err);
      return;
    }
  check (r == 0 && err == NULL && json_is_object (claims));
  check_claims (claims);
  json_decref (claims);
}

static void
fuzz_claims (const uint8_t *data, size_t size)
{
  json_t *claims
      = json_loadb ((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
  cleanup_free char *token = NULL;
  json_t *back = NULL;
  berth_error_t err = NULL;

  if (!json_is_object (claims))
    {
      json_decref (claims);
      return;
    }
  /* Inputs are far below JWT_MAX_BYTES: signing works.  */
  check (jwt_sign (key, claims, &token, &err) == 0 && err == NULL);
  check (strlen (token) <= JWT_MAX_BYTES);
  check (jwt_verify (key, token, &back, &err) == 0 && err == NULL);
  check (json_equal (claims, back));
  check_claims (back);
  /* The same token, cut short, never verifies.  */
  token[strlen (token) - 1] = '\0';
  json_decref (back);
  back = (json_t *) 1;
  check_failure (jwt_verify (key, token, &back, &err), &err);
  check (back == NULL);
  json_decref (claims);
}

static void
fuzz_base64 (const uint8_t *data, size_t size)
{
  cleanup_free unsigned char *raw = NULL;
  cleanup_free unsigned char *again = NULL;
  cleanup_free unsigned char *orig = NULL;
  cleanup_free char *enc = NULL;
  cleanup_free char *enc2 = NULL;
  long n = jwt_base64_decode ((const char *) data, size, &raw);
  long m;

  if (n >= 0)
    {
      check ((size_t) n <= size);
      check (raw[n] == '\0');
      enc = jwt_base64url (raw, (size_t) n);
      m = jwt_base64_decode (enc, strlen (enc), &again);
      check (m == n && memcmp (again, raw, (size_t) n) == 0);
    }
  else
    check (raw == NULL);
  enc2 = jwt_base64url (data, size);
  check (strlen (enc2) == (size * 4 + 2) / 3);
  check (strcspn (enc2, "+/=") == strlen (enc2));
  m = jwt_base64_decode (enc2, strlen (enc2), &orig);
  check (m == (long) size && memcmp (orig, data, size) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  switch (data[0] % 3)
    {
    case 0:
      fuzz_token (data + 1, size - 1);
      break;
    case 1:
      fuzz_claims (data + 1, size - 1);
      break;
    default:
      fuzz_base64 (data + 1, size - 1);
      break;
    }
  return 0;
}
