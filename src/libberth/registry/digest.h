/* digest.h - computing sha256/sha512 digests (OpenSSL's libcrypto).
 *
 * A registry_hasher accumulates bytes; registry_hasher_copy() snapshots it
 * (an upload keeps the state it had before a chunk, to undo the chunk if
 * the client goes away mid-way).  The x* policy applies: an allocation
 * failure aborts.
 */
#ifndef BERTH_REGISTRY_DIGEST_H
#define BERTH_REGISTRY_DIGEST_H

#include <stddef.h>

#include "error.h"
#include "registry/reference.h"

struct registry_hasher;

struct registry_hasher *registry_hasher_new (enum registry_digest_alg alg);
void registry_hasher_update (struct registry_hasher *h, const void *data,
                             size_t len);
/* A copy of H's current state. */
struct registry_hasher *registry_hasher_copy (struct registry_hasher *h);
/* The digest of everything given so far; H can go on being updated. */
void registry_hasher_digest (struct registry_hasher *h,
                             struct registry_digest *out);
enum registry_digest_alg registry_hasher_alg (struct registry_hasher *h);
void registry_hasher_free (struct registry_hasher *h);

/* The digest of a buffer. */
void registry_digest_buffer (enum registry_digest_alg alg, const void *data,
                             size_t len, struct registry_digest *out);

/* The digest of the file open at FD, read from offset 0. */
int registry_digest_fd (enum registry_digest_alg alg, int fd,
                        struct registry_digest *out, berth_error_t *err);

/* Rebuild a hasher from the first LEN bytes of FD. */
int registry_hasher_from_fd (enum registry_digest_alg alg, int fd,
                             unsigned long long len,
                             struct registry_hasher **out, berth_error_t *err);

#endif
