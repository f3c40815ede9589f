/* config.c - berth-registry's configuration (see config.h). */
#include "registry/config.h"

#include <errno.h>
#include <string.h>

#include "json.h"
#include "utils.h"

#define DEFAULT_LISTEN "127.0.0.1:5000"
#define DEFAULT_ROOT "/var/lib/berth-registry"

void
registry_config_init (struct registry_config *cfg)
{
  memset (cfg, 0, sizeof (*cfg));
  cfg->listen = xstrdup (DEFAULT_LISTEN);
  cfg->root = xstrdup (DEFAULT_ROOT);
  cfg->log_level = xstrdup ("info");
  cfg->max_body_bytes = 32ull << 30;
  cfg->max_manifest_bytes = 4 << 20;
  cfg->max_header_bytes = 64 << 10;
  cfg->upload_expire_seconds = 3600;
  cfg->cache_bytes = 64 << 20;
}

void
registry_config_set (char **field, const char *value)
{
  free (*field);
  *field = xstrdup (value);
}

void
registry_config_release (struct registry_config *cfg)
{
  free (cfg->listen);
  free (cfg->root);
  free (cfg->log_level);
  memset (cfg, 0, sizeof (*cfg));
}

static int
check_keys (json_t *obj, const char *path, const char *const *known,
            berth_error_t *err)
{
  const char *k;
  json_t *v;
  json_object_foreach (obj, k, v)
  {
    size_t i;
    bool ok = false;
    for (i = 0; known[i]; i++)
      if (strcmp (k, known[i]) == 0)
        ok = true;
    if (!ok)
      return berth_make_invalid (err, "%s%s%.100s: unknown setting", path,
                                 *path ? "." : "", k);
  }
  return 0;
}

static int
string_setting (json_t *obj, const char *key, char **field, berth_error_t *err)
{
  const char *s = NULL;
  int r = bjson_string (obj, "", key, &s, err);
  if (r > 0)
    registry_config_set (field, s);
  return r < 0 ? r : 0;
}

static int
parse_limits (struct registry_config *cfg, json_t *limits, berth_error_t *err)
{
  static const char *const keys[]
      = { "max_body_bytes", "max_manifest_bytes", "max_header_bytes", NULL };
  int r = check_keys (limits, "limits", keys, err);
  if (r < 0)
    return r;
  if ((r = bjson_uint64 (limits, "limits", "max_body_bytes",
                         &cfg->max_body_bytes, err))
          < 0
      || (r = bjson_uint64 (limits, "limits", "max_manifest_bytes",
                            &cfg->max_manifest_bytes, err))
             < 0
      || (r = bjson_uint64 (limits, "limits", "max_header_bytes",
                            &cfg->max_header_bytes, err))
             < 0)
    return r;
  return 0;
}

int
registry_config_parse (struct registry_config *cfg, const char *data,
                       size_t len, const char *source, berth_error_t *err)
{
  static const char *const keys[]
      = { "listen", "root",    "log_level", "threads",
          "limits", "uploads", "cache",     NULL };
  static const char *const upload_keys[] = { "expire_seconds", NULL };
  static const char *const cache_keys[] = { "max_bytes", NULL };
  cleanup_json json_t *j = NULL;
  json_t *limits = NULL, *uploads = NULL, *cache = NULL;
  int64_t threads = -1;
  int r;

  r = bjson_parse (data, len, source, &j, err);
  if (r < 0)
    return r;
  if (!json_is_object (j))
    return berth_make_invalid (err, "%s: expected a JSON object", source);
  if ((r = check_keys (j, "", keys, err)) < 0
      || (r = string_setting (j, "listen", &cfg->listen, err)) < 0
      || (r = string_setting (j, "root", &cfg->root, err)) < 0
      || (r = string_setting (j, "log_level", &cfg->log_level, err)) < 0
      || (r = bjson_int_range (j, "", "threads", 0, 1024, &threads, err)) < 0
      || (r = bjson_object (j, "", "limits", &limits, err)) < 0
      || (r = bjson_object (j, "", "uploads", &uploads, err)) < 0
      || (r = bjson_object (j, "", "cache", &cache, err)) < 0)
    goto fail;
  if (threads >= 0)
    cfg->threads = (unsigned) threads;
  if (limits && (r = parse_limits (cfg, limits, err)) < 0)
    goto fail;
  if (uploads
      && ((r = check_keys (uploads, "uploads", upload_keys, err)) < 0
          || (r = bjson_int_range (uploads, "uploads", "expire_seconds", 1,
                                   INT32_MAX, &cfg->upload_expire_seconds, err))
                 < 0))
    goto fail;
  if (cache
      && ((r = check_keys (cache, "cache", cache_keys, err)) < 0
          || (r = bjson_uint64 (cache, "cache", "max_bytes", &cfg->cache_bytes,
                                err))
                 < 0))
    goto fail;
  return registry_config_validate (cfg, err) < 0
             ? berth_error_wrap (err, "%s", source)
             : 0;
fail:
  return berth_error_wrap (err, "%s", source);
}

int
registry_config_load (struct registry_config *cfg, const char *path,
                      berth_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len = 0;
  int r = read_file (path, 1 << 20, &data, &len, err);
  if (r < 0)
    return berth_error_wrap (err, "config");
  return registry_config_parse (cfg, data, len, path, err);
}

int
registry_config_validate (const struct registry_config *cfg, berth_error_t *err)
{
  static const char *const levels[] = { "debug", "info", "warn", "error" };
  size_t i;
  bool ok = false;

  for (i = 0; i < ARRAY_SIZE (levels); i++)
    if (cfg->log_level && strcmp (cfg->log_level, levels[i]) == 0)
      ok = true;
  if (!ok)
    return berth_make_invalid (err,
                               "log_level: `%s` is not debug, info, warn or "
                               "error",
                               cfg->log_level ? cfg->log_level : "");
  if (cfg->root == NULL || cfg->root[0] == '\0')
    return berth_make_invalid (err, "root: empty");
  if (cfg->listen == NULL || *cfg->listen == '\0')
    return berth_make_invalid (err, "listen: empty");
  if (cfg->max_manifest_bytes == 0)
    return berth_make_invalid (err, "limits.max_manifest_bytes: must not be "
                                    "0");
  if (cfg->max_header_bytes < 1024)
    return berth_make_invalid (err, "limits.max_header_bytes: at least 1024");
  return 0;
}
