/* fuzz_registry_htpasswd.c - libFuzzer target for the htpasswd files
 * berth-registry reads at start (registry/htpasswd.c): any bytes go to
 * registry_htpasswd_parse.
 *
 * Besides the sanitizers, the answer is compared with an independent
 * reading of the format of htpasswd.h: the lines (LF or CRLF) that are
 * not blank nor comments are users, in order, each named by what comes
 * before its first ':'.  An accepted file must give exactly those users,
 * with no name twice, empty or holding a control character, and no line
 * over REGISTRY_HTPASSWD_MAX_LINE nor a NUL byte; a file with a user
 * line lacking ':' must be refused; a refusal must be -EINVAL with a
 * "SOURCE:LINE: " message and no result.  Passwords are not checked
 * here: a crypt(3) run per input would only measure bcrypt's cost (the
 * unit tests check them).  */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/htpasswd.h"
#include "utils.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define SOURCE "fuzz"

static void
check (int ok)
{
  if (!ok)
    abort ();
}

static bool
skipped (const char *s, size_t n)
{
  size_t i;

  if (n > 0 && s[0] == '#')
    return true;
  for (i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t')
      return false;
  return true;
}

/* What the format says about DATA: the user lines' names (in *NAMES, a
 * strv), and whether some line is refused whatever its hash.  */
static bool
read_model (const char *data, size_t size, char ***names)
{
  size_t pos = 0, n_names = 0;
  bool bad = memchr (data, '\0', size) != NULL;

  *names = xmalloc0 (sizeof (char *));
  while (pos < size)
    {
      const char *s = data + pos, *nl = memchr (s, '\n', size - pos), *colon;
      size_t n = nl ? (size_t) (nl - s) : size - pos;

      pos += n + (nl != NULL);
      if (n > 0 && s[n - 1] == '\r')
        n--;
      if (n > REGISTRY_HTPASSWD_MAX_LINE)
        bad = true;
      if (skipped (s, n))
        continue;
      colon = memchr (s, ':', n);
      if (colon == NULL || colon == s)
        bad = true;
      *names = xrealloc (*names, (n_names + 2) * sizeof (char *));
      (*names)[n_names++] = xstrndup (s, colon ? (size_t) (colon - s) : n);
      (*names)[n_names] = NULL;
    }
  return bad;
}

static void
check_accepted (const struct registry_htpasswd *h, char **names)
{
  size_t i, j, n = strv_len (names);

  check (registry_htpasswd_count (h) == n);
  check (registry_htpasswd_user (h, n) == NULL);
  for (i = 0; i < n; i++)
    {
      const char *u = registry_htpasswd_user (h, i);
      cleanup_free char *other = NULL;

      check (u != NULL && strcmp (u, names[i]) == 0);
      check (u[0] != '\0' && strchr (u, ':') == NULL);
      for (j = 0; u[j]; j++)
        check ((unsigned char) u[j] >= ' ' && u[j] != 0x7f);
      for (j = 0; j < i; j++)
        check (strcmp (names[j], u) != 0);
      check (registry_htpasswd_has_user (h, u));
      xasprintf (&other, "%s:", u);
      check (!registry_htpasswd_has_user (h, other));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  struct registry_htpasswd *h = (struct registry_htpasswd *) 1;
  cleanup_strv char **names = NULL;
  berth_error_t err = NULL;
  bool bad = read_model (text, size, &names);
  int r = registry_htpasswd_parse (text, size, SOURCE, &h, &err);

  if (r == 0)
    {
      check (!bad && err == NULL && h != NULL);
      check_accepted (h, names);
      registry_htpasswd_free (h);
      return 0;
    }
  check (r == -EINVAL && h == NULL);
  check (err != NULL && err->msg != NULL);
  /* "fuzz:LINE: ..." with a line number that exists.  */
  check (strncmp (err->msg, SOURCE ":", sizeof (SOURCE)) == 0);
  {
    char *end = NULL;
    unsigned long line = strtoul (err->msg + sizeof (SOURCE), &end, 10);
    size_t lines = 1, i;

    for (i = 0; i < size; i++)
      lines += text[i] == '\n';
    check (end && *end == ':' && line >= 1 && line <= lines);
  }
  berth_error_release (&err);
  return 0;
}
