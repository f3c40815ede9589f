#include "json.h"

#include <errno.h>
#include <string.h>

#include "utils.h"

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
    return berth_make_error (err, EINVAL, "%s.%s: expected %s", path, key,
                             want);
  return berth_make_error (err, EINVAL, "%s: expected %s", key, want);
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
        return berth_make_error (
            err, EINVAL, "%s.%s: %lld is out of range [%lld, %lld]", path, key,
            (long long) v, (long long) min, (long long) max);
      return berth_make_error (err, EINVAL,
                               "%s: %lld is out of range [%lld, %lld]", key,
                               (long long) v, (long long) min, (long long) max);
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

int
bjson_parse (const char *data, size_t len, const char *source, json_t **out,
             berth_error_t *err)
{
  json_error_t jerr;
  json_t *j = json_loadb (data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return berth_make_error (err, EINVAL, "%s:%d:%d: invalid JSON: %s", source,
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
