/* auth.h - berth-registry's access control: htpasswd Basic auth, or a
 * built-in token service following Docker's token spec (Bearer JWTs the
 * registry issues at /token and verifies itself).  docs/REGISTRY.md
 * describes the configuration and the answers.
 *
 *   registry_auth_create (&cfg->auth, &auth, &err);  // reads the files
 *   registry_auth_check (auth, req, name, action);   // the registry.h hook
 *   registry_auth_token (auth, req);                 // GET /token
 *   registry_auth_free (auth);
 *
 * The htpasswd file and the key are read once, at creation.  The object
 * is read-only afterwards: the check and the token endpoint run on any of
 * the server's threads at once.
 */
#ifndef BERTH_REGISTRY_AUTH_H
#define BERTH_REGISTRY_AUTH_H

#include <stdbool.h>

#include "error.h"
#include "http/server.h"
#include "registry/config.h"
#include "registry/registry.h"

struct registry_auth;

/* NULL in *OUT when CFG->kind is REGISTRY_AUTH_NONE.  CFG is copied. */
int registry_auth_create (const struct registry_auth_config *cfg,
                          struct registry_auth **out, berth_error_t *err);
void registry_auth_free (struct registry_auth *auth);

/* A registry_auth_fn (DATA is the registry_auth): 0 when the request may
 * go on; else it answers 401 with the WWW-Authenticate challenge (or 403
 * DENIED) and returns -1. */
int registry_auth_check (void *data, struct http_request *req, const char *name,
                         enum registry_action action);

/* True when AUTH runs the token service (GET /token). */
bool registry_auth_has_token_service (const struct registry_auth *auth);
/* True when AUTH lets anonymous clients pull (the gallery is then
 * public). */
bool registry_auth_anonymous_pull (const struct registry_auth *auth);
/* GET /token?service=S&scope=T:NAME:ACTIONS... with optional Basic
 * credentials: answers the token, or 401/400. */
void registry_auth_token (struct registry_auth *auth, struct http_request *req);

#endif
