/* jwt.h - JSON Web Tokens signed with ES256 (EC P-256) or RS256 (RSA), as
 * the registry's token service issues them (Docker's token spec), over
 * OpenSSL's EVP API.
 *
 *   jwt_key_load ("key.pem", &key, &err);
 *   jwt_sign (key, claims, &token, &err);        // "HEADER.CLAIMS.SIG"
 *   jwt_verify (key, token, &claims, &err);      // form and signature
 *   jwt_check_claims (claims, iss, aud, now, &err);  // iss, aud, exp, nbf
 *   jwt_key_free (key);
 *
 * The header names the algorithm and a "kid" in Docker's libtrust form
 * (the SHA-256 of the public key's DER SubjectPublicKeyInfo, 240 bits in
 * base32, in groups of four separated by ':').  jwt_verify accepts only
 * the key's own algorithm (never "none", never HS256 with the public key
 * as a secret), parts in canonical base64url without padding, JSON
 * objects without duplicate keys, no "crit" header, and tokens of at most
 * JWT_MAX_BYTES; it checks nothing in the claims.  jwt_check_claims
 * checks the registered claims; the access list is the caller's.  A key
 * is read-only once loaded and may be used from several threads at once.
 */
#ifndef BERTH_REGISTRY_JWT_H
#define BERTH_REGISTRY_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "error.h"

/* The longest token signed or accepted. */
#define JWT_MAX_BYTES (1u << 20)

struct jwt_key;

/* Read a PEM private key (PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1; not
 * encrypted). */
int jwt_key_load (const char *path, struct jwt_key **out, berth_error_t *err);
/* The same from LEN bytes of PEM text; SOURCE names it in errors. */
int jwt_key_from_pem (const char *pem, size_t len, const char *source,
                      struct jwt_key **out, berth_error_t *err);
void jwt_key_free (struct jwt_key *key);
/* "ES256" or "RS256". */
const char *jwt_key_alg (const struct jwt_key *key);
/* The libtrust key id. */
const char *jwt_key_id (const struct jwt_key *key);

/* Sign CLAIMS (not taken over); *OUT is malloc'd. */
int jwt_sign (const struct jwt_key *key, json_t *claims, char **out,
              berth_error_t *err);
/* Check TOKEN's form, algorithm and signature; *CLAIMS is the payload
 * (a JSON object, owned by the caller). */
int jwt_verify (const struct jwt_key *key, const char *token, json_t **claims,
                berth_error_t *err);
/* Check the registered claims of CLAIMS at NOW, without leeway (issuer
 * and checker share the clock): "iss" is ISSUER, "aud" (a string, or an
 * array holding one) is AUDIENCE, "exp" (required, an integer) is after
 * NOW, "nbf" (optional, an integer) is not after NOW. */
int jwt_check_claims (json_t *claims, const char *issuer, const char *audience,
                      time_t now, berth_error_t *err);

/* base64url without padding (RFC 4648 section 5); *OUT is malloc'd and
 * NUL-terminated. */
char *jwt_base64url (const unsigned char *data, size_t len);
/* Decode standard base64 or base64url, padded or not.  Returns the length,
 * or -1 on a bad character; *OUT is malloc'd (NUL-terminated too). */
long jwt_base64_decode (const char *s, size_t len, unsigned char **out);

#endif
