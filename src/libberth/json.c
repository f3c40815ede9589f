#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

#define BIG_MARK "\x01u64:"
/* The same, as it is written inside a JSON string.  */
#define BIG_MARK_JSON "\\u0001u64:"

void
cleanup_jsonp (json_t **j)
{
  if (*j)
    json_decref (*j);
  *j = NULL;
}

static json_t *
lookup (json_t *obj, const char *key)
{
  json_t *v;
  if (obj == NULL || !json_is_object (obj))
    return NULL;
  v = json_object_get (obj, key);
  if (v == NULL || json_is_null (v))
    return NULL;
  return v;
}

static int
type_error (const char *path, const char *key, const char *want,
            berth_error_t *err)
{
  if (path && *path)
    return berth_make_invalid (err, "%s.%s: expected %s", path, key, want);
  return berth_make_invalid (err, "%s: expected %s", key, want);
}

int
bjson_string (json_t *obj, const char *path, const char *key, const char **out,
              berth_error_t *err)
{
  json_t *v = lookup (obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_string (v))
    return type_error (path, key, "a string", err);
  *out = json_string_value (v);
  return 1;
}

int
bjson_bool (json_t *obj, const char *path, const char *key, bool *out,
            berth_error_t *err)
{
  json_t *v = lookup (obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_boolean (v))
    return type_error (path, key, "a boolean", err);
  *out = json_is_true (v);
  return 1;
}

int
bjson_int64 (json_t *obj, const char *path, const char *key, int64_t *out,
             berth_error_t *err)
{
  json_t *v = lookup (obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_integer (v))
    return type_error (path, key, "an integer", err);
  *out = json_integer_value (v);
  return 1;
}

int
bjson_uint64 (json_t *obj, const char *path, const char *key, uint64_t *out,
              berth_error_t *err)
{
  json_t *v = lookup (obj, key);
  if (v == NULL)
    return 0;
  if (json_is_string (v)
      && strncmp (json_string_value (v), BIG_MARK, strlen (BIG_MARK)) == 0)
    {
      /* An integer above INT64_MAX that bjson_parse kept as text.  */
      *out = strtoull (json_string_value (v) + strlen (BIG_MARK), NULL, 10);
      return 1;
    }
  if (json_is_real (v))
    {
      /* Accept an integral real below 2^64 (jansson refuses integer
       * literals above INT64_MAX, so 1.8e19 is how such values come).
       * The bound is 2^64 itself, exactly representable, with >=: a
       * literal 2^64-1 rounds up to 2^64, and converting 2^64 or more to
       * uint64_t is undefined behaviour (UBSan in tests/fuzz).  */
      double d = json_real_value (v);
      if (d < 0 || d >= 18446744073709551616.0 || d != (double) (uint64_t) d)
        return type_error (path, key, "a non-negative integer", err);
      *out = (uint64_t) d;
      return 1;
    }
  if (!json_is_integer (v) || json_integer_value (v) < 0)
    return type_error (path, key, "a non-negative integer", err);
  *out = (uint64_t) json_integer_value (v);
  return 1;
}

int
bjson_int_range (json_t *obj, const char *path, const char *key, int64_t min,
                 int64_t max, int64_t *out, berth_error_t *err)
{
  int64_t v = 0;
  int r = bjson_int64 (obj, path, key, &v, err);
  if (r <= 0)
    return r;
  if (v < min || v > max)
    {
      if (path && *path)
        return berth_make_invalid (
            err, "%s.%s: %lld is out of range [%lld, %lld]", path, key,
            (long long) v, (long long) min, (long long) max);
      return berth_make_invalid (err, "%s: %lld is out of range [%lld, %lld]",
                                 key, (long long) v, (long long) min,
                                 (long long) max);
    }
  *out = v;
  return 1;
}

int
bjson_object (json_t *obj, const char *path, const char *key, json_t **out,
              berth_error_t *err)
{
  json_t *v = lookup (obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_object (v))
    return type_error (path, key, "an object", err);
  *out = v;
  return 1;
}

int
bjson_array (json_t *obj, const char *path, const char *key, json_t **out,
             berth_error_t *err)
{
  json_t *v = lookup (obj, key);
  if (v == NULL)
    return 0;
  if (!json_is_array (v))
    return type_error (path, key, "an array", err);
  *out = v;
  return 1;
}

int
bjson_strv (json_t *obj, const char *path, const char *key, char ***out,
            berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;
  char **v;
  int r = bjson_array (obj, path, key, &arr, err);
  if (r <= 0)
    return r;
  json_array_foreach (arr, i, item)
  {
    if (!json_is_string (item))
      return type_error (path, key, "an array of strings", err);
  }
  v = xmalloc0 ((json_array_size (arr) + 1) * sizeof (char *));
  json_array_foreach (arr, i, item) v[i] = xstrdup (json_string_value (item));
  *out = v;
  return 1;
}

/* jansson refuses integers above INT64_MAX, but Go programs write
 * RLIM_INFINITY and friends as 18446744073709551615.  When that is the
 * problem, the number (up to UINT64_MAX) is rewritten as the string
 * BIG_MARK + digits, which bjson_uint64 accepts; every other accessor then
 * reports a type error naming the field.  Returns a new buffer or NULL. */
static char *
quote_big_integer (const char *data, size_t len, size_t pos, size_t *newlen)
{
  size_t start = pos < len ? pos : len, end, n;
  char digits[32], *endp, *r;

  /* jansson reports a position at or just past the number: step back to
   * its last digit, then to its first.  */
  while (start > 0 && start + 2 > pos
         && !(data[start - 1] >= '0' && data[start - 1] <= '9'))
    start--;
  while (start > 0 && data[start - 1] >= '0' && data[start - 1] <= '9')
    start--;
  end = start;
  while (end < len && data[end] >= '0' && data[end] <= '9')
    end++;
  n = end - start;
  if (n == 0 || n >= sizeof (digits) || (start > 0 && data[start - 1] == '-'))
    return NULL;
  memcpy (digits, data + start, n);
  digits[n] = '\0';
  errno = 0;
  (void) strtoull (digits, &endp, 10);
  if (errno || *endp)
    return NULL;
  *newlen = len + strlen (BIG_MARK_JSON) + 2;
  r = xmalloc (*newlen + 1);
  memcpy (r, data, start);
  sprintf (r + start, "\"%s%s\"", BIG_MARK_JSON, digits);
  memcpy (r + start + strlen (BIG_MARK_JSON) + 2 + n, data + end, len - end);
  r[*newlen] = '\0';
  return r;
}

int
bjson_parse (const char *data, size_t len, const char *source, json_t **out,
             berth_error_t *err)
{
  json_error_t jerr;
  json_t *j;
  char *copy = NULL;
  int rounds = 0;

  for (;;)
    {
      size_t newlen = 0;
      char *next;
      j = json_loadb (data, len, JSON_REJECT_DUPLICATES, &jerr);
      if (j != NULL || rounds++ >= 64
          || strstr (jerr.text, "too big integer") == NULL)
        break;
      next = quote_big_integer (data, len, (size_t) jerr.position, &newlen);
      if (next == NULL)
        break;
      free (copy);
      data = copy = next;
      len = newlen;
    }
  free (copy);
  if (j == NULL)
    return berth_make_invalid (err, "%s:%d:%d: invalid JSON: %s", source,
                               jerr.line, jerr.column, jerr.text);
  *out = j;
  return 0;
}

char *
bjson_dump (json_t *j, bool pretty)
{
  char *s = json_dumps (j, pretty ? JSON_INDENT (2) : JSON_COMPACT);
  if (s == NULL)
    s = xstrdup ("null");
  return s;
}
