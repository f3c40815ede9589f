/* reference.c - repository names, tags and digests (see reference.h). */
#include "registry/reference.h"

#include <errno.h>
#include <string.h>

/* Messages quote at most this much of what the client sent.  */
#define QUOTE_MAX 256

static bool
is_lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum (char c)
{
  return is_lower_alnum (c) || (c >= 'A' && c <= 'Z');
}

static bool
is_lower_hex (char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.  Returns its
 * length, or 0 when it does not match up to the next '/' or the end.  */
static size_t
name_component (const char *s)
{
  const char *p = s;

  if (!is_lower_alnum (*p))
    return 0;
  while (is_lower_alnum (*p))
    p++;
  while (*p && *p != '/')
    {
      if (*p == '.')
        p++;
      else if (*p == '_')
        p += p[1] == '_' ? 2 : 1;
      else if (*p == '-')
        while (*p == '-')
          p++;
      else
        return 0;
      if (!is_lower_alnum (*p))
        return 0;
      while (is_lower_alnum (*p))
        p++;
    }
  return p - s;
}

int
registry_validate_name (const char *name, berth_error_t *err)
{
  const char *p = name;
  size_t len;

  if (name == NULL || *name == '\0')
    return berth_make_invalid (err, "empty repository name");
  len = strlen (name);
  if (len > REGISTRY_NAME_MAX)
    return berth_make_invalid (err,
                               "repository name `%.*s...` is longer than %d "
                               "characters",
                               64, name, REGISTRY_NAME_MAX);
  for (;;)
    {
      size_t n = name_component (p);
      if (n == 0)
        return berth_make_invalid (
            err,
            "invalid repository name `%.*s`: each /-separated component "
            "must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*",
            QUOTE_MAX, name);
      p += n;
      if (*p == '\0')
        return 0;
      p++; /* the '/' */
    }
}

int
registry_validate_tag (const char *tag, berth_error_t *err)
{
  size_t i;

  if (tag == NULL || *tag == '\0')
    return berth_make_invalid (err, "empty tag");
  if (!(is_alnum (tag[0]) || tag[0] == '_'))
    return berth_make_invalid (err,
                               "invalid tag `%.*s`: it must start with a "
                               "letter, a digit or `_`",
                               QUOTE_MAX, tag);
  for (i = 1; tag[i]; i++)
    {
      char c = tag[i];
      if (i >= REGISTRY_TAG_MAX)
        return berth_make_invalid (err,
                                   "tag `%.*s...` is longer than %d "
                                   "characters",
                                   64, tag, REGISTRY_TAG_MAX);
      if (!(is_alnum (c) || c == '_' || c == '.' || c == '-'))
        return berth_make_invalid (err,
                                   "invalid tag `%.*s`: only letters, "
                                   "digits, `_`, `.` and `-` are allowed",
                                   QUOTE_MAX, tag);
    }
  return 0;
}

const char *
registry_digest_alg_name (enum registry_digest_alg alg)
{
  return alg == REGISTRY_SHA512 ? "sha512" : "sha256";
}

size_t
registry_digest_hex_len (enum registry_digest_alg alg)
{
  return alg == REGISTRY_SHA512 ? 128 : 64;
}

int
registry_digest_alg_parse (const char *name, enum registry_digest_alg *out,
                           berth_error_t *err)
{
  if (strcmp (name, "sha256") == 0)
    *out = REGISTRY_SHA256;
  else if (strcmp (name, "sha512") == 0)
    *out = REGISTRY_SHA512;
  else
    return berth_make_error (err, ENOTSUP, "digest algorithm `%.*s`", 64, name);
  return 0;
}

/* algorithm ::= component (separator component)*, component [a-z0-9]+,
 * separator [+._-].  Returns its length, 0 when it does not match.  */
static size_t
digest_algorithm (const char *s)
{
  const char *p = s;
  for (;;)
    {
      if (!is_lower_alnum (*p))
        return 0;
      while (is_lower_alnum (*p))
        p++;
      if (*p == '+' || *p == '.' || *p == '_' || *p == '-')
        p++;
      else
        return p - s;
    }
}

int
registry_digest_parse (const char *s, struct registry_digest *out,
                       berth_error_t *err)
{
  enum registry_digest_alg alg;
  size_t alen, i, want;
  const char *enc;
  char alg_name[16];

  if (s == NULL || *s == '\0')
    return berth_make_invalid (err, "empty digest");
  alen = digest_algorithm (s);
  if (alen == 0 || s[alen] != ':' || s[alen + 1] == '\0')
    return berth_make_invalid (err,
                               "invalid digest `%.*s`: not "
                               "ALGORITHM:ENCODED",
                               QUOTE_MAX, s);
  enc = s + alen + 1;
  for (i = 0; enc[i]; i++)
    if (!(is_alnum (enc[i]) || enc[i] == '=' || enc[i] == '_' || enc[i] == '-'))
      return berth_make_invalid (err,
                                 "invalid digest `%.*s`: bad character in "
                                 "the encoded part",
                                 QUOTE_MAX, s);
  if (alen >= sizeof (alg_name))
    return berth_make_error (err, ENOTSUP, "digest algorithm of `%.*s`",
                             QUOTE_MAX, s);
  memcpy (alg_name, s, alen);
  alg_name[alen] = '\0';
  if (registry_digest_alg_parse (alg_name, &alg, err) < 0)
    return -ENOTSUP;
  want = registry_digest_hex_len (alg);
  if (i != want)
    return berth_make_invalid (err,
                               "invalid digest `%.*s`: %s needs %zu hex "
                               "digits",
                               QUOTE_MAX, s, alg_name, want);
  for (i = 0; i < want; i++)
    if (!is_lower_hex (enc[i]))
      return berth_make_invalid (err,
                                 "invalid digest `%.*s`: the encoded part "
                                 "must be lower-case hex",
                                 QUOTE_MAX, s);
  registry_digest_set (out, alg, enc);
  return 0;
}

void
registry_digest_set (struct registry_digest *out, enum registry_digest_alg alg,
                     const char *hex)
{
  const char *name = registry_digest_alg_name (alg);
  size_t n = strlen (name), h = registry_digest_hex_len (alg);

  out->alg = alg;
  memcpy (out->str, name, n);
  out->str[n] = ':';
  memcpy (out->str + n + 1, hex, h);
  out->str[n + 1 + h] = '\0';
}

bool
registry_reference_is_digest (const char *s)
{
  return strchr (s, ':') != NULL;
}
