/* config.h - berth-registry's configuration: defaults, the JSON or YAML
 * file.
 *
 *   {
 *     "listen": "127.0.0.1:5000",
 *     "root": "/var/lib/berth-registry",
 *     "log_level": "info",
 *     "threads": 0,
 *     "limits": { "max_body_bytes": 34359738368,
 *                 "max_manifest_bytes": 4194304,
 *                 "max_header_bytes": 65536 },
 *     "uploads": { "expire_seconds": 3600 },
 *     "cache": { "max_bytes": 67108864 },
 *     "gc": { "delete_untagged": false, "grace_seconds": 600,
 *             "interval_seconds": 0 },
 *     "auth": { "anonymous_pull": false, "admins": ["USER"],
 *               "htpasswd": { "realm": "berth-registry", "path": "FILE" } },
 *     "proxy": [ { "prefix": "mirror/", "upstream": "http://HOST:PORT",
 *                  "strip_prefix": true, "ttl_seconds": 300,
 *                  "username": "USER", "password_file": "FILE" } ]
 *   }
 *
 * or, for the built-in token service (Docker's token spec),
 *
 *     "auth": { "token": { "realm": "http://HOST:PORT/token",
 *                          "service": "berth-registry",
 *                          "issuer": "berth-registry",
 *                          "key": "PEM private key (EC P-256 or RSA)",
 *                          "expiration_seconds": 300,
 *                          "users": "htpasswd FILE",
 *                          "acl": [ { "account": "alice", "type":
 *                                     "repository", "name": "PATTERN",
 *                                     "actions": ["pull", "push"] } ] } }
 *
 * Every key is optional; unknown keys are refused (a typo must not go
 * unnoticed).  docs/REGISTRY.md describes each.
 */
#ifndef BERTH_REGISTRY_CONFIG_H
#define BERTH_REGISTRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum registry_auth_kind
{
  REGISTRY_AUTH_NONE, /* anyone may read and write */
  REGISTRY_AUTH_HTPASSWD,
  REGISTRY_AUTH_TOKEN,
};

/* ACL actions, a bit mask. */
#define REGISTRY_ACL_PULL 1u
#define REGISTRY_ACL_PUSH 2u
#define REGISTRY_ACL_DELETE 4u
#define REGISTRY_ACL_ALL 7u /* "*" */

/* One rule of the token service: ACCOUNT ("*": anyone, anonymous too)
 * gets ACTIONS on the resources of TYPE ("repository" or "registry")
 * whose name matches the fnmatch(3) pattern NAME ('*' also matches
 * '/'). */
struct registry_acl_entry
{
  char *account;
  char *type;
  char *name;
  unsigned actions;
};

struct registry_auth_config
{
  enum registry_auth_kind kind;
  bool anonymous_pull; /* GET/HEAD of repositories without credentials */
  char *realm;         /* htpasswd: the Basic realm; token: the URL */
  char *htpasswd;      /* htpasswd.path or token.users */
  char *service;       /* token only, from here on */
  char *issuer;
  char *key;
  int64_t expiration_seconds;
  struct registry_acl_entry *acl;
  size_t n_acl;
  char **admins; /* users of the htpasswd file who may POST /admin/gc */
};

/* A pull-through cache (proxy.c): repositories whose name starts with
 * PREFIX are read-only mirrors of UPSTREAM (http:// or https://), under
 * the name without PREFIX when STRIP_PREFIX.  Tags fetched from upstream
 * are checked again after TTL_SECONDS (0: on every pull).  USERNAME and
 * PASSWORD (or the file PASSWORD_FILE, read at start) answer upstream's
 * Basic challenge or get its tokens; all NULL: anonymous. */
struct registry_proxy_config
{
  char *prefix;
  char *upstream;
  bool strip_prefix;
  int64_t ttl_seconds;
  char *username;
  char *password;
  char *password_file;
};

struct registry_config
{
  char *listen;
  char *root;
  char *log_level;         /* "debug", "info", "warn" or "error" */
  unsigned threads;        /* 0: the number of online CPUs */
  uint64_t max_body_bytes; /* 0: no limit */
  uint64_t max_manifest_bytes;
  uint64_t max_header_bytes;
  int64_t upload_expire_seconds;
  uint64_t cache_bytes; /* 0: no cache */
  struct registry_auth_config auth;
  /* "gc": garbage collection (gc.h) */
  bool gc_delete_untagged;     /* also delete manifests no tag reaches */
  int64_t gc_grace_seconds;    /* blobs younger than this stay; 600 */
  int64_t gc_interval_seconds; /* run every so often; 0: only on request */
  /* "tls": serve HTTPS with this PEM certificate (chain) and key. */
  char *tls_certificate;
  char *tls_key;
  /* "proxy": pull-through caches, the first matching prefix wins. */
  struct registry_proxy_config *proxies;
  size_t n_proxies;
};

/* The defaults. */
void registry_config_init (struct registry_config *cfg);
/* Overlay the settings of the file PATH: YAML when it is named *.yaml or
 * *.yml, JSON when *.json, else JSON if it starts with `{` (white space
 * aside) and YAML otherwise.  YAML goes through yaml_to_json (yaml.h), then
 * the same checks; errors name PATH:LINE:COLUMN for both. */
int registry_config_load (struct registry_config *cfg, const char *path,
                          berth_error_t *err);
/* Overlay the settings of a JSON document (for tests). */
int registry_config_parse (struct registry_config *cfg, const char *data,
                           size_t len, const char *source, berth_error_t *err);
/* Replace a string setting (*FIELD) with a copy of VALUE. */
void registry_config_set (char **field, const char *value);
/* Check values that only make sense together (log level names...). */
int registry_config_validate (const struct registry_config *cfg,
                              berth_error_t *err);
void registry_config_release (struct registry_config *cfg);

#endif
