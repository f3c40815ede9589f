/* config.c - berth-registry's configuration (see config.h). */
#include "registry/config.h"

#include <errno.h>
#include <string.h>

#include "json.h"
#include "utils.h"
#include "yaml.h"

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
  cfg->gc_grace_seconds = 600;
}

void
registry_config_set (char **field, const char *value)
{
  free (*field);
  *field = xstrdup (value);
}

static void
auth_config_release (struct registry_auth_config *a)
{
  size_t i;

  for (i = 0; i < a->n_acl; i++)
    {
      free (a->acl[i].account);
      free (a->acl[i].type);
      free (a->acl[i].name);
    }
  free (a->acl);
  strv_free (a->admins);
  free (a->realm);
  free (a->htpasswd);
  free (a->service);
  free (a->issuer);
  free (a->key);
  memset (a, 0, sizeof (*a));
}

static void
proxies_release (struct registry_config *cfg)
{
  size_t i;

  for (i = 0; i < cfg->n_proxies; i++)
    {
      free (cfg->proxies[i].prefix);
      free (cfg->proxies[i].upstream);
      free (cfg->proxies[i].username);
      if (cfg->proxies[i].password)
        explicit_bzero (cfg->proxies[i].password,
                        strlen (cfg->proxies[i].password));
      free (cfg->proxies[i].password);
      free (cfg->proxies[i].password_file);
    }
  free (cfg->proxies);
  cfg->proxies = NULL;
  cfg->n_proxies = 0;
}

void
registry_config_release (struct registry_config *cfg)
{
  auth_config_release (&cfg->auth);
  free (cfg->listen);
  free (cfg->root);
  free (cfg->log_level);
  free (cfg->tls_certificate);
  free (cfg->tls_key);
  proxies_release (cfg);
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
string_setting_at (json_t *obj, const char *path, const char *key, char **field,
                   berth_error_t *err)
{
  const char *s = NULL;
  int r = bjson_string (obj, path, key, &s, err);
  if (r > 0)
    registry_config_set (field, s);
  return r < 0 ? r : 0;
}

static int
string_setting (json_t *obj, const char *key, char **field, berth_error_t *err)
{
  return string_setting_at (obj, "", key, field, err);
}

/* A required string setting of OBJ (at PATH). */
static int
required_string (json_t *obj, const char *path, const char *key, char **field,
                 berth_error_t *err)
{
  const char *s = NULL;
  int r = bjson_string (obj, path, key, &s, err);
  if (r < 0)
    return r;
  if (r == 0 || *s == '\0')
    return berth_make_invalid (err, "%s.%s: required", path, key);
  registry_config_set (field, s);
  return 0;
}

static int
parse_actions (json_t *entry, const char *path, unsigned *out,
               berth_error_t *err)
{
  cleanup_strv char **actions = NULL;
  size_t i;
  int r = bjson_strv (entry, path, "actions", &actions, err);

  if (r < 0)
    return r;
  *out = 0;
  for (i = 0; actions && actions[i]; i++)
    {
      if (strcmp (actions[i], "pull") == 0)
        *out |= REGISTRY_ACL_PULL;
      else if (strcmp (actions[i], "push") == 0)
        *out |= REGISTRY_ACL_PUSH;
      else if (strcmp (actions[i], "delete") == 0)
        *out |= REGISTRY_ACL_DELETE;
      else if (strcmp (actions[i], "*") == 0)
        *out |= REGISTRY_ACL_ALL;
      else
        return berth_make_invalid (
            err, "%s.actions: `%.100s` is not pull, push, delete or *", path,
            actions[i]);
    }
  return 0;
}

static int
parse_acl (struct registry_auth_config *a, json_t *acl, berth_error_t *err)
{
  static const char *const keys[]
      = { "account", "type", "name", "actions", NULL };
  size_t i;
  json_t *e;

  a->acl = xmalloc0 ((json_array_size (acl) + 1) * sizeof (*a->acl));
  json_array_foreach (acl, i, e)
  {
    struct registry_acl_entry *x = &a->acl[a->n_acl++];
    char path[64];
    int r;

    snprintf (path, sizeof (path), "auth.token.acl[%zu]", i);
    if (!json_is_object (e))
      return berth_make_invalid (err, "%s: expected an object", path);
    x->type = xstrdup ("repository");
    if ((r = check_keys (e, path, keys, err)) < 0
        || (r = required_string (e, path, "account", &x->account, err)) < 0
        || (r = required_string (e, path, "name", &x->name, err)) < 0
        || (r = string_setting_at (e, path, "type", &x->type, err)) < 0
        || (r = parse_actions (e, path, &x->actions, err)) < 0)
      return r;
    if (strcmp (x->type, "repository") != 0
        && strcmp (x->type, "registry") != 0)
      return berth_make_invalid (err,
                                 "%s.type: `%.100s` is not repository "
                                 "or registry",
                                 path, x->type);
  }
  return 0;
}

static int
parse_token (struct registry_auth_config *a, json_t *t, berth_error_t *err)
{
  static const char *const keys[]
      = { "realm", "service", "issuer", "key", "users", "expiration_seconds",
          "acl",   NULL };
  const char *p = "auth.token";
  json_t *acl = NULL;
  int r;

  a->kind = REGISTRY_AUTH_TOKEN;
  a->expiration_seconds = 300;
  if ((r = check_keys (t, p, keys, err)) < 0
      || (r = required_string (t, p, "realm", &a->realm, err)) < 0
      || (r = required_string (t, p, "service", &a->service, err)) < 0
      || (r = required_string (t, p, "issuer", &a->issuer, err)) < 0
      || (r = required_string (t, p, "key", &a->key, err)) < 0
      || (r = string_setting_at (t, p, "users", &a->htpasswd, err)) < 0
      || (r = bjson_int_range (t, p, "expiration_seconds", 1, 86400 * 366,
                               &a->expiration_seconds, err))
             < 0
      || (r = bjson_array (t, p, "acl", &acl, err)) < 0)
    return r;
  return acl ? parse_acl (a, acl, err) : 0;
}

static int
parse_auth (struct registry_auth_config *a, json_t *auth, berth_error_t *err)
{
  static const char *const keys[]
      = { "htpasswd", "token", "anonymous_pull", "admins", NULL };
  static const char *const htpasswd_keys[] = { "realm", "path", NULL };
  json_t *htpasswd = NULL, *token = NULL;
  int r;

  auth_config_release (a);
  if ((r = check_keys (auth, "auth", keys, err)) < 0
      || (r = bjson_bool (auth, "auth", "anonymous_pull", &a->anonymous_pull,
                          err))
             < 0
      || (r = bjson_strv (auth, "auth", "admins", &a->admins, err)) < 0
      || (r = bjson_object (auth, "auth", "htpasswd", &htpasswd, err)) < 0
      || (r = bjson_object (auth, "auth", "token", &token, err)) < 0)
    return r;
  if (htpasswd && token)
    return berth_make_invalid (err, "auth: htpasswd and token are exclusive");
  /* Admins are users of the htpasswd file (checked when it is read).  */
  if (a->admins && htpasswd == NULL && token == NULL)
    return berth_make_invalid (err, "auth.admins: needs auth.htpasswd or "
                                    "auth.token");
  if (token)
    return parse_token (a, token, err);
  if (htpasswd == NULL)
    return 0;
  a->kind = REGISTRY_AUTH_HTPASSWD;
  a->realm = xstrdup ("berth-registry");
  if ((r = check_keys (htpasswd, "auth.htpasswd", htpasswd_keys, err)) < 0
      || (r = string_setting_at (htpasswd, "auth.htpasswd", "realm", &a->realm,
                                 err))
             < 0
      || (r = required_string (htpasswd, "auth.htpasswd", "path", &a->htpasswd,
                               err))
             < 0)
    return r;
  /* The realm goes inside a quoted header parameter.  */
  if (strpbrk (a->realm, "\"\\\r\n"))
    return berth_make_invalid (err, "auth.htpasswd.realm: no quotes, "
                                    "backslashes or line breaks");
  return 0;
}

/* "username" with "password" or "password_file" (read at start).  */
static int
parse_proxy_credentials (struct registry_proxy_config *x, json_t *e,
                         const char *path, berth_error_t *err)
{
  const char *authority = strstr (x->upstream, "://") + 3;
  int r;

  if ((r = string_setting_at (e, path, "username", &x->username, err)) < 0
      || (r = string_setting_at (e, path, "password", &x->password, err)) < 0
      || (r = string_setting_at (e, path, "password_file", &x->password_file,
                                 err))
             < 0)
    return r;
  if (memchr (authority, '@', strcspn (authority, "/")))
    return berth_make_invalid (err,
                               "%s.upstream: credentials go in username and "
                               "password, not in the URL",
                               path);
  if (x->password && x->password_file)
    return berth_make_invalid (
        err, "%s: password and password_file are exclusive", path);
  if (x->username == NULL && (x->password || x->password_file))
    return berth_make_invalid (err, "%s.username: required with a password",
                               path);
  if (x->username && x->password == NULL && x->password_file == NULL)
    return berth_make_invalid (
        err, "%s: username needs password or password_file", path);
  /* Basic credentials are "user:password" on one header line.  */
  if (x->username
      && (*x->username == '\0' || strpbrk (x->username, ":\r\n")
          || (x->password && strpbrk (x->password, "\r\n"))))
    return berth_make_invalid (err,
                               "%s: username must be non-empty without `:`, "
                               "and neither may hold a line break",
                               path);
  return 0;
}

static int
parse_proxies (struct registry_config *cfg, json_t *proxies, berth_error_t *err)
{
  static const char *const keys[]
      = { "prefix",   "upstream", "strip_prefix",  "ttl_seconds",
          "username", "password", "password_file", NULL };
  size_t i;
  json_t *e;

  proxies_release (cfg);
  cfg->proxies
      = xmalloc0 ((json_array_size (proxies) + 1) * sizeof (*cfg->proxies));
  json_array_foreach (proxies, i, e)
  {
    struct registry_proxy_config *x = &cfg->proxies[cfg->n_proxies++];
    char path[32];
    size_t n;
    int r;

    snprintf (path, sizeof (path), "proxy[%zu]", i);
    if (!json_is_object (e))
      return berth_make_invalid (err, "%s: expected an object", path);
    x->ttl_seconds = 300;
    if ((r = check_keys (e, path, keys, err)) < 0
        || (r = required_string (e, path, "prefix", &x->prefix, err)) < 0
        || (r = required_string (e, path, "upstream", &x->upstream, err)) < 0
        || (r = bjson_bool (e, path, "strip_prefix", &x->strip_prefix, err)) < 0
        || (r = bjson_int_range (e, path, "ttl_seconds", 0, INT32_MAX,
                                 &x->ttl_seconds, err))
               < 0)
      return r;
    if (strncmp (x->upstream, "http://", 7) != 0
        && strncmp (x->upstream, "https://", 8) != 0)
      return berth_make_invalid (
          err, "%s.upstream: only http:// or https:// URLs", path);
    n = strlen (x->upstream);
    while (n > 8 && x->upstream[n - 1] == '/')
      x->upstream[--n] = '\0';
    if (x->strip_prefix && x->prefix[strlen (x->prefix) - 1] != '/')
      return berth_make_invalid (
          err, "%s.prefix: must end with / to be stripped", path);
    if ((r = parse_proxy_credentials (x, e, path, err)) < 0)
      return r;
  }
  return 0;
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

/* The settings of the document J, read from SOURCE (JSON or YAML).  */
static int
config_from_json (struct registry_config *cfg, json_t *j, const char *source,
                  berth_error_t *err)
{
  static const char *const keys[]
      = { "listen", "root", "log_level", "threads", "limits", "uploads",
          "cache",  "auth", "gc",        "tls",     "proxy",  NULL };
  static const char *const tls_keys[] = { "certificate", "key", NULL };
  static const char *const gc_keys[]
      = { "delete_untagged", "grace_seconds", "interval_seconds", NULL };
  static const char *const upload_keys[] = { "expire_seconds", NULL };
  static const char *const cache_keys[] = { "max_bytes", NULL };
  json_t *limits = NULL, *uploads = NULL, *cache = NULL, *auth = NULL;
  json_t *gc = NULL, *tls = NULL, *proxy = NULL;
  int64_t threads = -1;
  int r;

  if (!json_is_object (j))
    return berth_make_invalid (err, "%s: expected a JSON object", source);
  if ((r = check_keys (j, "", keys, err)) < 0
      || (r = string_setting (j, "listen", &cfg->listen, err)) < 0
      || (r = string_setting (j, "root", &cfg->root, err)) < 0
      || (r = string_setting (j, "log_level", &cfg->log_level, err)) < 0
      || (r = bjson_int_range (j, "", "threads", 0, 1024, &threads, err)) < 0
      || (r = bjson_object (j, "", "limits", &limits, err)) < 0
      || (r = bjson_object (j, "", "uploads", &uploads, err)) < 0
      || (r = bjson_object (j, "", "cache", &cache, err)) < 0
      || (r = bjson_object (j, "", "auth", &auth, err)) < 0
      || (r = bjson_object (j, "", "gc", &gc, err)) < 0
      || (r = bjson_object (j, "", "tls", &tls, err)) < 0
      || (r = bjson_array (j, "", "proxy", &proxy, err)) < 0)
    goto fail;
  if (proxy && (r = parse_proxies (cfg, proxy, err)) < 0)
    goto fail;
  if (tls
      && ((r = check_keys (tls, "tls", tls_keys, err)) < 0
          || (r = required_string (tls, "tls", "certificate",
                                   &cfg->tls_certificate, err))
                 < 0
          || (r = required_string (tls, "tls", "key", &cfg->tls_key, err)) < 0))
    goto fail;
  if (gc
      && ((r = check_keys (gc, "gc", gc_keys, err)) < 0
          || (r = bjson_bool (gc, "gc", "delete_untagged",
                              &cfg->gc_delete_untagged, err))
                 < 0
          || (r = bjson_int_range (gc, "gc", "grace_seconds", 0, INT32_MAX,
                                   &cfg->gc_grace_seconds, err))
                 < 0
          || (r = bjson_int_range (gc, "gc", "interval_seconds", 0, INT32_MAX,
                                   &cfg->gc_interval_seconds, err))
                 < 0))
    goto fail;
  if (auth && (r = parse_auth (&cfg->auth, auth, err)) < 0)
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
registry_config_parse (struct registry_config *cfg, const char *data,
                       size_t len, const char *source, berth_error_t *err)
{
  cleanup_json json_t *j = NULL;
  int r = bjson_parse (data, len, source, &j, err);
  if (r < 0)
    return r;
  return config_from_json (cfg, j, source, err);
}

/* A file named *.yaml or *.yml is YAML, *.json JSON; any other is JSON
 * when its first character that is not white space is `{`.  */
static bool
config_is_yaml (const char *path, const char *data, size_t len)
{
  const char *name = strrchr (path, '/');
  const char *ext = strrchr (name ? name + 1 : path, '.');
  size_t i = 0;

  if (ext && (strcmp (ext, ".yaml") == 0 || strcmp (ext, ".yml") == 0))
    return true;
  if (ext && strcmp (ext, ".json") == 0)
    return false;
  while (i < len
         && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r'
             || data[i] == '\n'))
    i++;
  return i == len || data[i] != '{';
}

int
registry_config_load (struct registry_config *cfg, const char *path,
                      berth_error_t *err)
{
  cleanup_free char *data = NULL;
  cleanup_json json_t *j = NULL;
  size_t len = 0;
  int r = read_file (path, 1 << 20, &data, &len, err);
  if (r < 0)
    return berth_error_wrap (err, "config");
  if (!config_is_yaml (path, data, len))
    return registry_config_parse (cfg, data, len, path, err);
  if ((r = yaml_to_json (data, len, path, &j, err)) < 0)
    return r;
  return config_from_json (cfg, j, path, err);
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
