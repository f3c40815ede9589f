/* fuzz_registry_reference.c - libFuzzer target for the names a registry
 * client sends (registry/reference.c) and the Content-Type of a manifest
 * push (registry_media_type_of in registry/manifest.c).
 *
 * The input is split at NUL bytes into at most MAX_PIECES strings (a path
 * segment or header never holds a NUL); each goes through
 * registry_validate_name(), registry_validate_tag(), registry_digest_parse()
 * and the smaller helpers.  The router that splits a `/v2/...` path into
 * name and reference is static in registry/registry.c, so it is not fuzzed
 * here; the names and references it yields are.
 *
 * Besides the sanitizers, every answer is compared with an independent
 * implementation of the grammar (POSIX regular expressions of the
 * distribution and image specs), and what is accepted is checked to be
 * safe as a path below the storage root; any disagreement aborts.  */
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/manifest.h"
#include "registry/reference.h"

#define MAX_INPUT 4096
#define MAX_PIECES 8

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (int ok)
{
  if (!ok)
    abort ();
}

/* distribution-spec "Pulling manifests"; the length limit is separate. */
#define NAME_RE                                                                \
  "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$"
#define TAG_RE "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"
/* image-spec "Digests". */
#define DIGEST_RE "^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"

static regex_t name_re, tag_re, digest_re;

static void
compile (regex_t *re, const char *pattern)
{
  if (regcomp (re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
    abort ();
}

static bool
matches (regex_t *re, const char *s)
{
  return regexec (re, s, 0, NULL, 0) == 0;
}

static bool
all_lower_hex (const char *s, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return s[n] == '\0';
}

static void
check_failure (int r, int want, berth_error_t *err)
{
  check (r == want);
  check (*err != NULL && (*err)->msg != NULL && (*err)->msg[0] != '\0');
  berth_error_release (err);
}

static void
fuzz_name (const char *s, size_t len)
{
  berth_error_t err = NULL;
  bool want = len > 0 && len <= REGISTRY_NAME_MAX && matches (&name_re, s);
  int r = registry_validate_name (s, &err);

  if (!want)
    {
      check_failure (r, -EINVAL, &err);
      return;
    }
  check (r == 0 && err == NULL);
  /* It becomes a path below the storage root. */
  check (s[0] != '/' && s[len - 1] != '/' && s[0] != '.');
  check (strstr (s, "//") == NULL && strstr (s, "/.") == NULL
         && strstr (s, "..") == NULL);
  check (strspn (s, "abcdefghijklmnopqrstuvwxyz0123456789._-/") == len);
}

static void
fuzz_tag (const char *s, size_t len)
{
  berth_error_t err = NULL;
  bool want = matches (&tag_re, s);
  int r = registry_validate_tag (s, &err);

  if (!want)
    {
      check_failure (r, -EINVAL, &err);
      return;
    }
  check (r == 0 && err == NULL);
  /* It becomes a file name. */
  check (len >= 1 && len <= REGISTRY_TAG_MAX && s[0] != '.'
         && strchr (s, '/') == NULL);
}

static void
fuzz_digest (const char *s)
{
  struct registry_digest d, again;
  enum registry_digest_alg alg = REGISTRY_SHA256;
  berth_error_t err = NULL;
  const char *colon = strchr (s, ':');
  int want, r;

  memset (&d, 0xa5, sizeof (d));
  if (!matches (&digest_re, s))
    want = -EINVAL;
  else if (strncmp (s, "sha256:", 7) == 0)
    want = all_lower_hex (s + 7, 64) ? 0 : -EINVAL;
  else if (strncmp (s, "sha512:", 7) == 0)
    {
      alg = REGISTRY_SHA512;
      want = all_lower_hex (s + 7, 128) ? 0 : -EINVAL;
    }
  else
    want = -ENOTSUP;

  r = registry_digest_parse (s, &d, &err);
  if (want < 0)
    {
      check_failure (r, want, &err);
      return;
    }
  check (r == 0 && err == NULL);
  check (d.alg == alg && strcmp (d.str, s) == 0);
  check (strcmp (registry_digest_hex (&d), colon + 1) == 0);
  check (strlen (registry_digest_hex (&d)) == registry_digest_hex_len (alg));
  check (strncmp (d.str, registry_digest_alg_name (alg), 6) == 0);
  registry_digest_set (&again, alg, registry_digest_hex (&d));
  check (again.alg == d.alg && strcmp (again.str, d.str) == 0);
  check (registry_reference_is_digest (s));
}

static void
fuzz_alg (const char *s)
{
  enum registry_digest_alg alg;
  berth_error_t err = NULL;
  int r = registry_digest_alg_parse (s, &alg, &err);

  if (strcmp (s, "sha256") == 0 || strcmp (s, "sha512") == 0)
    {
      check (r == 0 && err == NULL);
      check (strcmp (registry_digest_alg_name (alg), s) == 0);
    }
  else
    check_failure (r, -ENOTSUP, &err);
}

static void
fuzz_media_type (const char *s)
{
  static const size_t sizes[] = { 1, 2, 16, 64, 256 };
  char buf[256 + 1];
  size_t i, n;

  check (registry_media_type_of (s, buf, 0) == buf);
  for (i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++)
    {
      buf[sizes[i]] = 'X';
      check (registry_media_type_of (s, buf, sizes[i]) == buf);
      n = strnlen (buf, sizes[i]);
      check (n < sizes[i] && buf[sizes[i]] == 'X');
      check (strcspn (buf, "; \t") == n);
      if (registry_media_type_is_manifest (buf))
        check (strstr (s, buf) != NULL);
    }
}

static void
fuzz_string (const char *s, size_t len)
{
  fuzz_name (s, len);
  fuzz_tag (s, len);
  fuzz_digest (s);
  fuzz_alg (s);
  fuzz_media_type (s);
  check (registry_reference_is_digest (s) == (strchr (s, ':') != NULL));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool init;
  char *copy, *p, *end;
  int pieces = 0;

  if (!init)
    {
      compile (&name_re, NAME_RE);
      compile (&tag_re, TAG_RE);
      compile (&digest_re, DIGEST_RE);
      init = true;
    }
  if (size > MAX_INPUT)
    return 0;
  copy = malloc (size + 1);
  if (copy == NULL)
    abort ();
  if (size)
    memcpy (copy, data, size);
  copy[size] = '\0';
  end = copy + size;
  for (p = copy; p <= end && pieces < MAX_PIECES; pieces++)
    {
      size_t len = strlen (p);
      fuzz_string (p, len);
      p += len + 1;
    }
  free (copy);
  return 0;
}
