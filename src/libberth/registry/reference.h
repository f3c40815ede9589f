/* reference.h - the names a registry client sends: repository names, tags
 * and digests, validated as the OCI Distribution Spec 1.1 says.
 *
 * Everything that later becomes part of a path on disk goes through these
 * functions first; what they accept cannot escape the storage root (no
 * "..", no leading "/", no empty component).
 */
#ifndef BERTH_REGISTRY_REFERENCE_H
#define BERTH_REGISTRY_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The longest <name> accepted, as docker-registry (the spec asks for
 * fewer than 256 characters, slashes included). */
#define REGISTRY_NAME_MAX 255
#define REGISTRY_TAG_MAX 128

enum registry_digest_alg
{
  REGISTRY_SHA256,
  REGISTRY_SHA512,
};

/* "sha512:" + 128 hex digits + NUL */
#define REGISTRY_DIGEST_STRLEN (7 + 128 + 1)

/* A validated digest of a supported algorithm.  A plain value: copy it
 * with `=`. */
struct registry_digest
{
  enum registry_digest_alg alg;
  char str[REGISTRY_DIGEST_STRLEN]; /* "sha256:<hex>" */
};

/* The hex part of D ("sha256:" and "sha512:" are both 7 characters). */
static inline const char *
registry_digest_hex (const struct registry_digest *d)
{
  return d->str + 7;
}

/* <name>:
 * `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*` and
 * at most REGISTRY_NAME_MAX characters.  0 or -EINVAL. */
int registry_validate_name (const char *name, berth_error_t *err);

/* <tag>: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.  0 or -EINVAL. */
int registry_validate_tag (const char *tag, berth_error_t *err);

/* Parse a digest.  It must match the OCI image spec's grammar
 * (algorithm ":" encoded, algorithm components [a-z0-9]+ joined by
 * [+._-], encoded [a-zA-Z0-9=_-]+), else -EINVAL; an algorithm other than
 * sha256 and sha512 gives -ENOTSUP; a sha256/sha512 digest whose encoded
 * part is not 64/128 lower-case hex digits gives -EINVAL. */
int registry_digest_parse (const char *s, struct registry_digest *out,
                           berth_error_t *err);

/* Fill OUT from ALG and HEX (lower-case hex of the right length, from a
 * hash function). */
void registry_digest_set (struct registry_digest *out,
                          enum registry_digest_alg alg, const char *hex);

const char *registry_digest_alg_name (enum registry_digest_alg alg);
/* Hex digits of ALG's digests (64 or 128). */
size_t registry_digest_hex_len (enum registry_digest_alg alg);
/* "sha256" -> REGISTRY_SHA256; -ENOTSUP for others. */
int registry_digest_alg_parse (const char *name, enum registry_digest_alg *out,
                               berth_error_t *err);

/* True when S looks like a digest (it has a colon) rather than a tag. */
bool registry_reference_is_digest (const char *s);

#endif
