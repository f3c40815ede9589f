/* digest.c - sha256/sha512 over OpenSSL's EVP interface (see digest.h). */
#include "registry/digest.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "utils.h"

struct registry_hasher
{
  enum registry_digest_alg alg;
  EVP_MD_CTX *ctx;
};

/* The x* policy of utils.h: libcrypto failing to allocate a context.  */
static void
oom (void)
{
  static const char msg[] = "berth: out of memory\n";
  (void) !write (2, msg, sizeof (msg) - 1);
  abort ();
}

static const EVP_MD *
md_of (enum registry_digest_alg alg)
{
  return alg == REGISTRY_SHA512 ? EVP_sha512 () : EVP_sha256 ();
}

struct registry_hasher *
registry_hasher_new (enum registry_digest_alg alg)
{
  struct registry_hasher *h = xmalloc0 (sizeof (*h));
  h->alg = alg;
  h->ctx = EVP_MD_CTX_new ();
  if (h->ctx == NULL || EVP_DigestInit_ex (h->ctx, md_of (alg), NULL) != 1)
    oom ();
  return h;
}

void
registry_hasher_update (struct registry_hasher *h, const void *data, size_t len)
{
  if (len)
    EVP_DigestUpdate (h->ctx, data, len);
}

struct registry_hasher *
registry_hasher_copy (struct registry_hasher *h)
{
  struct registry_hasher *c = xmalloc0 (sizeof (*c));
  c->alg = h->alg;
  c->ctx = EVP_MD_CTX_new ();
  if (c->ctx == NULL || EVP_MD_CTX_copy_ex (c->ctx, h->ctx) != 1)
    oom ();
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
  unsigned char md[EVP_MAX_MD_SIZE];
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  unsigned int n = 0;
  /* Finalise a copy, so that H can still be updated.  */
  struct registry_hasher *c = registry_hasher_copy (h);

  EVP_DigestFinal_ex (c->ctx, md, &n);
  registry_hasher_free (c);
  to_hex (md, n, hex);
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
  if (h == NULL)
    return;
  EVP_MD_CTX_free (h->ctx);
  free (h);
}

void
registry_digest_buffer (enum registry_digest_alg alg, const void *data,
                        size_t len, struct registry_digest *out)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  unsigned int n = 0;

  if (EVP_Digest (data, len, md, &n, md_of (alg), NULL) != 1)
    oom ();
  to_hex (md, n, hex);
  registry_digest_set (out, alg, hex);
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
