/* htpasswd.c - htpasswd files (see htpasswd.h). */
#include "registry/htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "utils.h"

struct htuser
{
  char *name;
  char *hash;
};

struct registry_htpasswd
{
  struct htuser *users;
  size_t n;
};

/* A bcrypt hash (htpasswd -nbB) that no password matches: unknown users
 * cost as much as known ones, so timing does not tell which exist.  */
static const char dummy_hash[]
    = "$2y$05$uava5CblkraHK8THzrnaR./MJAcXLfs/d4kq4bY8mfNyXuTcID4ti";

static bool
blank (const char *s, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t')
      return false;
  return true;
}

static bool
has_control (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s < ' ' || *s == 0x7f)
      return true;
  return false;
}

/* crypt_checksalt knows the methods crypt_r can verify: bcrypt ($2y$,
 * $2b$, as htpasswd -B writes), sha-crypt, yescrypt.  Apache's own MD5
 * ($apr1$), {SHA} and plain text are not among them.  A blank (a trailing
 * space pasted along) or a ':' would only make every password fail.  */
static bool
hash_ok (const char *hash)
{
  const char *p;
  int ok;

  if (hash[0] != '$')
    return false;
  for (p = hash; *p; p++)
    if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f || *p == ':')
      return false;
  ok = crypt_checksalt (hash);
  return ok == CRYPT_SALT_OK || ok == CRYPT_SALT_METHOD_LEGACY;
}

/* LINE is a NUL-terminated copy, modified.  */
static int
add_user (struct registry_htpasswd *h, char *line, size_t lineno,
          const char *source, berth_error_t *err)
{
  char *colon = strchr (line, ':');

  if (colon == NULL || colon == line)
    return berth_make_invalid (err, "%s:%zu: expected USER:HASH", source,
                               lineno);
  *colon = '\0';
  if (has_control (line))
    return berth_make_invalid (
        err, "%s:%zu: the user name holds a control character", source, lineno);
  if (!hash_ok (colon + 1))
    return berth_make_invalid (err,
                               "%s:%zu: user `%.64s`: not a bcrypt (or "
                               "other crypt(3)) hash; use htpasswd -B",
                               source, lineno, line);
  if (registry_htpasswd_has_user (h, line))
    return berth_make_invalid (err, "%s:%zu: user `%.64s` is defined twice",
                               source, lineno, line);
  h->users = xrealloc (h->users, (h->n + 1) * sizeof (*h->users));
  h->users[h->n].name = xstrdup (line);
  h->users[h->n].hash = xstrdup (colon + 1);
  h->n++;
  return 0;
}

/* The line number of DATA[POS].  */
static size_t
line_of (const char *data, size_t pos)
{
  size_t i, n = 1;

  for (i = 0; i < pos; i++)
    n += data[i] == '\n';
  return n;
}

static int
parse_lines (struct registry_htpasswd *h, const char *data, size_t len,
             const char *source, berth_error_t *err)
{
  const char *nul = memchr (data, '\0', len);
  size_t pos = 0, lineno = 0;

  if (nul)
    return berth_make_invalid (err, "%s:%zu: a NUL byte", source,
                               line_of (data, (size_t) (nul - data)));
  while (pos < len)
    {
      const char *s = data + pos, *nl = memchr (s, '\n', len - pos);
      size_t n = nl ? (size_t) (nl - s) : len - pos;
      char *line;
      int r;

      pos += n + (nl != NULL);
      lineno++;
      if (n > 0 && s[n - 1] == '\r')
        n--;
      if (n > REGISTRY_HTPASSWD_MAX_LINE)
        return berth_make_invalid (err, "%s:%zu: line longer than %d bytes",
                                   source, lineno, REGISTRY_HTPASSWD_MAX_LINE);
      if (blank (s, n) || s[0] == '#')
        continue;
      line = xstrndup (s, n);
      r = add_user (h, line, lineno, source, err);
      OPENSSL_cleanse (line, n);
      free (line);
      if (r < 0)
        return r;
    }
  return 0;
}

int
registry_htpasswd_parse (const char *data, size_t len, const char *source,
                         struct registry_htpasswd **out, berth_error_t *err)
{
  struct registry_htpasswd *h = xmalloc0 (sizeof (*h));
  int r = parse_lines (h, data, len, source, err);

  *out = NULL;
  if (r < 0)
    {
      registry_htpasswd_free (h);
      return r;
    }
  *out = h;
  return 0;
}

int
registry_htpasswd_load (const char *path, struct registry_htpasswd **out,
                        berth_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len = 0;
  int r;

  *out = NULL;
  if (read_file (path, REGISTRY_HTPASSWD_MAX_BYTES, &data, &len, err) < 0)
    return berth_error_code (*err);
  r = registry_htpasswd_parse (data, len, path, out, err);
  OPENSSL_cleanse (data, len);
  return r;
}

void
registry_htpasswd_free (struct registry_htpasswd *h)
{
  size_t i;

  if (h == NULL)
    return;
  for (i = 0; i < h->n; i++)
    {
      OPENSSL_cleanse (h->users[i].hash, strlen (h->users[i].hash));
      free (h->users[i].name);
      free (h->users[i].hash);
    }
  free (h->users);
  free (h);
}

size_t
registry_htpasswd_count (const struct registry_htpasswd *h)
{
  return h ? h->n : 0;
}

const char *
registry_htpasswd_user (const struct registry_htpasswd *h, size_t i)
{
  return h && i < h->n ? h->users[i].name : NULL;
}

static const char *
hash_of (const struct registry_htpasswd *h, const char *user)
{
  size_t i;

  for (i = 0; h && i < h->n; i++)
    if (strcmp (h->users[i].name, user) == 0)
      return h->users[i].hash;
  return NULL;
}

bool
registry_htpasswd_has_user (const struct registry_htpasswd *h, const char *user)
{
  return hash_of (h, user) != NULL;
}

static bool
password_ok (const char *hash, const char *password)
{
  struct crypt_data *cd = xmalloc0 (sizeof (*cd));
  const char *out = crypt_r (password, hash, cd);
  size_t n = strlen (hash);
  /* crypt_r answers a string starting with '*' on failure, never NULL
   * with libxcrypt; compared in constant time anyway.  */
  bool ok = out && out[0] != '*' && strlen (out) == n
            && CRYPTO_memcmp (out, hash, n) == 0;

  OPENSSL_cleanse (cd, sizeof (*cd));
  free (cd);
  return ok;
}

bool
registry_htpasswd_verify (const struct registry_htpasswd *h, const char *user,
                          const char *password)
{
  const char *hash = hash_of (h, user);

  if (hash)
    return password_ok (hash, password);
  (void) password_ok (dummy_hash, password);
  return false;
}
