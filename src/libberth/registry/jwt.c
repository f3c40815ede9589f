/* jwt.c - ES256/RS256 JSON Web Tokens (see jwt.h). */
#include "registry/jwt.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "json.h"
#include "utils.h"

struct jwt_key
{
  EVP_PKEY *pkey;
  const char *alg;
  bool ec;
  char kid[64];
};

/* --- base64 ------------------------------------------------------------- */

char *
jwt_base64url (const unsigned char *data, size_t len)
{
  static const char tab[]
      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char *out = xmalloc (len / 3 * 4 + 5);
  size_t i, o = 0;

  for (i = 0; i + 2 < len; i += 3)
    {
      unsigned v = (unsigned) data[i] << 16 | (unsigned) data[i + 1] << 8
                   | data[i + 2];
      out[o++] = tab[v >> 18 & 63];
      out[o++] = tab[v >> 12 & 63];
      out[o++] = tab[v >> 6 & 63];
      out[o++] = tab[v & 63];
    }
  if (i < len)
    {
      unsigned v = (unsigned) data[i] << 16
                   | (i + 1 < len ? (unsigned) data[i + 1] << 8 : 0);
      out[o++] = tab[v >> 18 & 63];
      out[o++] = tab[v >> 12 & 63];
      if (i + 1 < len)
        out[o++] = tab[v >> 6 & 63];
    }
  out[o] = '\0';
  return out;
}

static int
b64_value (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

long
jwt_base64_decode (const char *s, size_t len, unsigned char **out)
{
  cleanup_free unsigned char *buf = NULL;
  unsigned acc = 0;
  size_t i, o = 0;
  int bits = 0;

  while (len > 0 && s[len - 1] == '=')
    len--;
  if (len % 4 == 1)
    return -1;
  buf = xmalloc (len / 4 * 3 + 4);
  for (i = 0; i < len; i++)
    {
      int v = b64_value (s[i]);
      if (v < 0)
        return -1;
      acc = (acc << 6) | (unsigned) v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          buf[o++] = (unsigned char) (acc >> bits);
        }
    }
  buf[o] = '\0';
  *out = steal_pointer (&buf);
  return (long) o;
}

/* --- Keys --------------------------------------------------------------- */

/* Docker's libtrust key id: SHA-256 of the DER public key, the first 240
 * bits in base32 (48 characters), in 12 groups of 4 joined by ':'.  */
static int
key_id (struct jwt_key *key, berth_error_t *err)
{
  static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  unsigned char *der = NULL, md[32];
  unsigned mdlen = 0, acc = 0;
  int len = i2d_PUBKEY (key->pkey, &der), bits = 0;
  size_t i, o = 0, n = 0;

  if (len <= 0)
    return berth_make_invalid (err, "cannot encode the public key");
  if (EVP_Digest (der, (size_t) len, md, &mdlen, EVP_sha256 (), NULL) != 1)
    {
      OPENSSL_free (der);
      return berth_make_invalid (err, "cannot hash the public key");
    }
  OPENSSL_free (der);
  for (i = 0; i < 30; i++)
    {
      acc = (acc << 8) | md[i];
      bits += 8;
      while (bits >= 5)
        {
          bits -= 5;
          if (n > 0 && n % 4 == 0)
            key->kid[o++] = ':';
          key->kid[o++] = b32[(acc >> bits) & 31];
          n++;
        }
    }
  key->kid[o] = '\0';
  return 0;
}

/* No passphrase: an encrypted key fails to load instead of OpenSSL's
 * default callback asking on the terminal.  */
static int
no_passphrase (char *buf UNUSED, int size UNUSED, int rwflag UNUSED,
               void *u UNUSED)
{
  return -1;
}

/* Pick the algorithm of KEY->pkey and compute its id.  */
static int
key_setup (struct jwt_key *key, const char *source, berth_error_t *err)
{
  char group[64] = "";

  if (EVP_PKEY_is_a (key->pkey, "EC"))
    {
      if (!EVP_PKEY_get_utf8_string_param (key->pkey,
                                           OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof (group), NULL)
          || strcmp (group, "prime256v1") != 0)
        return berth_make_invalid (err, "`%s`: an EC key must be on P-256",
                                   source);
      key->alg = "ES256";
      key->ec = true;
    }
  else if (EVP_PKEY_is_a (key->pkey, "RSA")
           && EVP_PKEY_get_bits (key->pkey) >= 2048)
    key->alg = "RS256";
  else
    return berth_make_invalid (
        err, "`%s`: not an EC P-256 or RSA (2048 bits or more) key", source);
  if (key_id (key, err) < 0)
    return berth_error_wrap (err, "`%s`", source);
  return 0;
}

int
jwt_key_from_pem (const char *pem, size_t len, const char *source,
                  struct jwt_key **out, berth_error_t *err)
{
  BIO *bio = len <= INT_MAX ? BIO_new_mem_buf (pem, (int) len) : NULL;
  struct jwt_key *key;

  *out = NULL;
  if (bio == NULL)
    return berth_make_invalid (err, "`%s`: cannot read the key", source);
  key = xmalloc0 (sizeof (*key));
  key->pkey = PEM_read_bio_PrivateKey (bio, NULL, no_passphrase, NULL);
  BIO_free (bio);
  ERR_clear_error ();
  if (key->pkey == NULL)
    {
      free (key);
      return berth_make_invalid (
          err, "`%s`: not a PEM private key (or an encrypted one)", source);
    }
  if (key_setup (key, source, err) < 0)
    {
      jwt_key_free (key);
      return berth_error_code (*err);
    }
  *out = key;
  return 0;
}

int
jwt_key_load (const char *path, struct jwt_key **out, berth_error_t *err)
{
  cleanup_free char *pem = NULL;
  size_t len = 0;
  int r;

  *out = NULL;
  if (read_file (path, 1 << 20, &pem, &len, err) < 0)
    return berth_error_code (*err);
  r = jwt_key_from_pem (pem, len, path, out, err);
  OPENSSL_cleanse (pem, len);
  return r;
}

void
jwt_key_free (struct jwt_key *key)
{
  if (key == NULL)
    return;
  EVP_PKEY_free (key->pkey);
  free (key);
}

const char *
jwt_key_alg (const struct jwt_key *key)
{
  return key->alg;
}

const char *
jwt_key_id (const struct jwt_key *key)
{
  return key->kid;
}

/* --- Signing ------------------------------------------------------------ */

/* JWS wants ECDSA signatures as R || S, 32 bytes each; OpenSSL makes DER.  */
static int
ec_der_to_raw (const unsigned char *der, size_t len, unsigned char raw[64])
{
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG (NULL, &p, (long) len);
  const BIGNUM *r, *s;
  int ok;

  if (sig == NULL)
    return -1;
  ECDSA_SIG_get0 (sig, &r, &s);
  ok = BN_bn2binpad (r, raw, 32) == 32 && BN_bn2binpad (s, raw + 32, 32) == 32;
  ECDSA_SIG_free (sig);
  return ok ? 0 : -1;
}

static int
ec_raw_to_der (const unsigned char raw[64], unsigned char **der)
{
  ECDSA_SIG *sig = ECDSA_SIG_new ();
  BIGNUM *r = BN_bin2bn (raw, 32, NULL), *s = BN_bin2bn (raw + 32, 32, NULL);
  int len = -1;

  if (sig && r && s && ECDSA_SIG_set0 (sig, r, s) == 1)
    {
      r = s = NULL; /* owned by SIG now */
      len = i2d_ECDSA_SIG (sig, der);
    }
  BN_free (r);
  BN_free (s);
  ECDSA_SIG_free (sig);
  return len;
}

int
jwt_sign (const struct jwt_key *key, json_t *claims, char **out,
          berth_error_t *err)
{
  cleanup_json json_t *hdr = json_pack ("{s:s,s:s,s:s}", "typ", "JWT", "alg",
                                        key->alg, "kid", key->kid);
  cleanup_free char *h = bjson_dump (hdr, false);
  cleanup_free char *c = bjson_dump (claims, false);
  cleanup_free char *h64 = jwt_base64url ((unsigned char *) h, strlen (h));
  cleanup_free char *c64 = jwt_base64url ((unsigned char *) c, strlen (c));
  cleanup_free char *input = NULL;
  cleanup_free unsigned char *sig = NULL;
  cleanup_free char *s64 = NULL;
  unsigned char raw[64];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  size_t siglen = 0;
  int ok;

  xasprintf (&input, "%s.%s", h64, c64);
  ok = ctx && EVP_DigestSignInit (ctx, NULL, EVP_sha256 (), NULL, key->pkey)
       && EVP_DigestSign (ctx, NULL, &siglen, (unsigned char *) input,
                          strlen (input));
  if (ok)
    {
      sig = xmalloc (siglen);
      ok = EVP_DigestSign (ctx, sig, &siglen, (unsigned char *) input,
                           strlen (input));
    }
  EVP_MD_CTX_free (ctx);
  if (!ok || (key->ec && ec_der_to_raw (sig, siglen, raw) < 0))
    {
      ERR_clear_error ();
      return berth_make_invalid (err, "cannot sign the token");
    }
  s64 = key->ec ? jwt_base64url (raw, 64) : jwt_base64url (sig, siglen);
  /* jwt_verify would refuse it.  */
  if (strlen (input) + 1 + strlen (s64) > JWT_MAX_BYTES)
    return berth_make_invalid (err, "token: longer than %u bytes",
                               JWT_MAX_BYTES);
  xasprintf (out, "%s.%s", input, s64);
  return 0;
}

/* A part of a compact JWS: base64url without padding (RFC 7515 section
 * 2), canonical (the unused bits of the last character are zero), so
 * that a token has one spelling.  Returns the length or -1.  */
static long
decode_b64url (const char *s, size_t len, unsigned char **out)
{
  cleanup_free unsigned char *raw = NULL;
  cleanup_free char *again = NULL;
  long n;

  if (memchr (s, '+', len) || memchr (s, '/', len) || memchr (s, '=', len))
    return -1;
  n = jwt_base64_decode (s, len, &raw);
  if (n < 0)
    return -1;
  again = jwt_base64url (raw, (size_t) n);
  if (strlen (again) != len || memcmp (again, s, len) != 0)
    return -1;
  *out = steal_pointer (&raw);
  return n;
}

/* The decoded, parsed JSON object of a part.  */
static int
decode_part (const char *s, size_t len, const char *what, json_t **out,
             berth_error_t *err)
{
  cleanup_free unsigned char *raw = NULL;
  long n = decode_b64url (s, len, &raw);
  json_error_t jerr;

  if (n < 0)
    return berth_make_invalid (err, "token %s: bad base64url", what);
  *out = json_loadb ((char *) raw, (size_t) n, JSON_REJECT_DUPLICATES, &jerr);
  if (*out == NULL)
    return berth_make_invalid (err, "token %s: invalid JSON: %s", what,
                               jerr.text);
  if (!json_is_object (*out))
    {
      json_decref (*out);
      *out = NULL;
      return berth_make_invalid (err, "token %s: not an object", what);
    }
  return 0;
}

static bool
signature_ok (const struct jwt_key *key, const char *input, size_t len,
              const unsigned char *sig, size_t siglen)
{
  unsigned char *der = NULL;
  EVP_MD_CTX *ctx;
  bool ok;
  int n;

  if (key->ec)
    {
      if (siglen != 64 || (n = ec_raw_to_der (sig, &der)) <= 0)
        return false;
      sig = der;
      siglen = (size_t) n;
    }
  ctx = EVP_MD_CTX_new ();
  ok = ctx && EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, key->pkey)
       && EVP_DigestVerify (ctx, sig, siglen, (const unsigned char *) input,
                            len)
              == 1;
  EVP_MD_CTX_free (ctx);
  OPENSSL_free (der);
  ERR_clear_error ();
  return ok;
}

int
jwt_verify (const struct jwt_key *key, const char *token, json_t **claims,
            berth_error_t *err)
{
  size_t len = strnlen (token, JWT_MAX_BYTES + 1);
  const char *dot1 = memchr (token, '.', len), *dot2;
  cleanup_json json_t *hdr = NULL;
  cleanup_json json_t *body = NULL;
  cleanup_free unsigned char *sig = NULL;
  const char *alg = NULL;
  long siglen;

  *claims = NULL;
  if (len > JWT_MAX_BYTES)
    return berth_make_invalid (err, "token: longer than %u bytes",
                               JWT_MAX_BYTES);
  dot2 = dot1 ? strchr (dot1 + 1, '.') : NULL;
  if (dot2 == NULL || strchr (dot2 + 1, '.'))
    return berth_make_invalid (err, "token: not a JWS compact form");
  if (decode_part (token, (size_t) (dot1 - token), "header", &hdr, err) < 0)
    return -EINVAL;
  /* The algorithm is the key's, whatever the header asks for: a token
   * saying "none" or "HS256" is refused before any crypto.  */
  if (bjson_string (hdr, "header", "alg", &alg, err) <= 0
      || strcmp (alg, key->alg) != 0)
    {
      berth_error_release (err);
      return berth_make_invalid (err, "token: algorithm is not %s", key->alg);
    }
  /* Extensions that must be understood: none are (RFC 7515 4.1.11).  */
  if (json_object_get (hdr, "crit"))
    return berth_make_invalid (err, "token: unsupported \"crit\" header");
  siglen = decode_b64url (dot2 + 1, strlen (dot2 + 1), &sig);
  if (siglen < 0
      || !signature_ok (key, token, (size_t) (dot2 - token), sig,
                        (size_t) siglen))
    return berth_make_invalid (err, "token: bad signature");
  if (decode_part (dot1 + 1, (size_t) (dot2 - dot1 - 1), "claims", &body, err)
      < 0)
    return -EINVAL;
  *claims = steal_pointer (&body);
  return 0;
}

static bool
audience_ok (json_t *aud, const char *audience)
{
  size_t i;
  json_t *x;

  if (json_is_string (aud))
    return strcmp (json_string_value (aud), audience) == 0;
  json_array_foreach (aud, i, x)
  {
    if (json_is_string (x) && strcmp (json_string_value (x), audience) == 0)
      return true;
  }
  return false;
}

int
jwt_check_claims (json_t *claims, const char *issuer, const char *audience,
                  time_t now, berth_error_t *err)
{
  json_t *iss = json_object_get (claims, "iss");
  json_t *exp = json_object_get (claims, "exp");
  json_t *nbf = json_object_get (claims, "nbf");

  if (!json_is_string (iss) || strcmp (json_string_value (iss), issuer) != 0)
    return berth_make_invalid (err, "token: the issuer is not `%s`", issuer);
  if (!audience_ok (json_object_get (claims, "aud"), audience))
    return berth_make_invalid (err, "token: the audience is not `%s`",
                               audience);
  if (!json_is_integer (exp))
    return berth_make_invalid (err, "token: no integer \"exp\"");
  if (json_integer_value (exp) <= now)
    return berth_make_invalid (err, "token: expired");
  if (nbf && (!json_is_integer (nbf) || json_integer_value (nbf) > now))
    return berth_make_invalid (err, "token: not valid yet");
  return 0;
}
