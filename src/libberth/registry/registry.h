/* registry.h - berth-registry: an OCI Distribution Spec 1.1 registry,
 * the HTTP layer (http/server.h) in front of the filesystem storage
 * (storage.h).
 *
 *   struct registry_opts opts = { .config = &cfg, .log = my_log };
 *   registry_create (&opts, &reg, &err);   // listening once it returns
 *   ... wait for SIGTERM ...
 *   registry_free (reg);                   // stops and frees
 *
 * Requests are served on the HTTP layer's threads (see server.h).
 *
 * Access control is a hook: every /v2/ request calls AUTH (when set) with
 * the repository and the action before any work; the hook either returns
 * 0 (go on) or answers the request itself (401 with WWW-Authenticate,
 * 403) and returns a negative value.  Without a hook, the config's
 * "auth" (auth.h: htpasswd or the token service) is the hook; without
 * either, everyone may read and write.  GET /token is the token service
 * when the config runs one; the other paths outside /v2/ are the
 * gallery (gallery.h).
 */
#ifndef BERTH_REGISTRY_REGISTRY_H
#define BERTH_REGISTRY_REGISTRY_H

#include "error.h"
#include "http/server.h"
#include "registry/config.h"

struct registry;

enum registry_action
{
  REGISTRY_PULL,    /* GET, HEAD */
  REGISTRY_PUSH,    /* POST, PATCH, PUT */
  REGISTRY_DELETE,  /* DELETE */
  REGISTRY_CATALOG, /* GET /v2/_catalog (NAME is NULL) */
};

/* NAME is NULL for /v2/ itself and the catalog. */
typedef int (*registry_auth_fn) (void *data, struct http_request *req,
                                 const char *name, enum registry_action action);

struct registry_opts
{
  const struct registry_config *config; /* copied */
  http_log_fn log;                      /* may be NULL */
  void *log_data;
  registry_auth_fn auth; /* NULL: anonymous read-write */
  void *auth_data;
};

/* Open the storage and start serving. */
int registry_create (const struct registry_opts *opts, struct registry **out,
                     berth_error_t *err);
/* The address served, with the actual port ("127.0.0.1:5000"). */
const char *registry_address (struct registry *reg);
/* Stop serving and free.  Safe on NULL. */
void registry_free (struct registry *reg);

#endif
