/* digest.c - sha256/sha512 over OpenSSL's SHA-2 functions (see digest.h).
 *
 * These are OpenSSL's low-level SHA256_* and SHA512_* calls, deprecated
 * since 3.0 in favour of EVP, on purpose: the first EVP digest loads and
 * initialises the provider machinery, 2 MB of resident memory for the
 * rest of the process (measured with the static libcrypto), where the
 * low-level calls run the same assembly with no state but the context.
 * The registry's idle memory budget is 2.6 MB in all.  */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "registry/digest.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "utils.h"

struct registry_hasher
{
  enum registry_digest_alg alg;
  union
  {
    SHA256_CTX sha256;
    SHA512_CTX sha512;
  } ctx;
};

struct registry_hasher *
registry_hasher_new (enum registry_digest_alg alg)
{
  struct registry_hasher *h = xmalloc0 (sizeof (*h));
  h->alg = alg;
  if (alg == REGISTRY_SHA512)
    SHA512_Init (&h->ctx.sha512);
  else
    SHA256_Init (&h->ctx.sha256);
  return h;
}

void
registry_hasher_update (struct registry_hasher *h, const void *data, size_t len)
{
  if (len == 0)
    return;
  if (h->alg == REGISTRY_SHA512)
    SHA512_Update (&h->ctx.sha512, data, len);
  else
    SHA256_Update (&h->ctx.sha256, data, len);
}

struct registry_hasher *
registry_hasher_copy (struct registry_hasher *h)
{
  struct registry_hasher *c = xmalloc (sizeof (*c));
  memcpy (c, h, sizeof (*c));
  return c;
}

static void
to_hex (const unsigned char *md, unsigned int n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  unsigned int i;
  for (i = 0; i < n; i++)
    {
      out[2 * i] = digits[md[i] >> 4];
      out[2 * i + 1] = digits[md[i] & 15];
    }
  out[2 * n] = '\0';
}

void
registry_hasher_digest (struct registry_hasher *h, struct registry_digest *out)
{
  unsigned char md[SHA512_DIGEST_LENGTH];
  char hex[2 * SHA512_DIGEST_LENGTH + 1];
  /* Finalise a copy, so that H can still be updated.  */
  struct registry_hasher c = *h;

  if (c.alg == REGISTRY_SHA512)
    {
      SHA512_Final (md, &c.ctx.sha512);
      to_hex (md, SHA512_DIGEST_LENGTH, hex);
    }
  else
    {
      SHA256_Final (md, &c.ctx.sha256);
      to_hex (md, SHA256_DIGEST_LENGTH, hex);
    }
  registry_digest_set (out, h->alg, hex);
}

enum registry_digest_alg
registry_hasher_alg (struct registry_hasher *h)
{
  return h->alg;
}

void
registry_hasher_free (struct registry_hasher *h)
{
  free (h);
}

void
registry_digest_buffer (enum registry_digest_alg alg, const void *data,
                        size_t len, struct registry_digest *out)
{
  struct registry_hasher h = { .alg = alg };
  if (alg == REGISTRY_SHA512)
    SHA512_Init (&h.ctx.sha512);
  else
    SHA256_Init (&h.ctx.sha256);
  registry_hasher_update (&h, data, len);
  registry_hasher_digest (&h, out);
}

int
registry_hasher_from_fd (enum registry_digest_alg alg, int fd,
                         unsigned long long len, struct registry_hasher **out,
                         berth_error_t *err)
{
  struct registry_hasher *h = registry_hasher_new (alg);
  cleanup_free char *buf = xmalloc (1 << 20);
  unsigned long long done = 0;

  while (done < len)
    {
      size_t want = len - done < (1 << 20) ? len - done : (1 << 20);
      ssize_t r = pread (fd, buf, want, (off_t) done);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          int e = r < 0 ? errno : EIO;
          registry_hasher_free (h);
          return berth_make_error (err, e, "read to hash");
        }
      registry_hasher_update (h, buf, r);
      done += r;
    }
  *out = h;
  return 0;
}

int
registry_digest_fd (enum registry_digest_alg alg, int fd,
                    struct registry_digest *out, berth_error_t *err)
{
  struct registry_hasher *h = registry_hasher_new (alg);
  cleanup_free char *buf = xmalloc (1 << 20);
  off_t off = 0;

  for (;;)
    {
      ssize_t r = pread (fd, buf, 1 << 20, off);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int e = errno;
          registry_hasher_free (h);
          return berth_make_error (err, e, "read to hash");
        }
      if (r == 0)
        break;
      registry_hasher_update (h, buf, r);
      off += r;
    }
  registry_hasher_digest (h, out);
  registry_hasher_free (h);
  return 0;
}
