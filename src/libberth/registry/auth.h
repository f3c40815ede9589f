/* auth.h - berth-registry's access control: htpasswd Basic auth, or a
 * built-in token service following Docker's token spec (Bearer JWTs the
 * registry issues at /token and verifies itself).  docs/REGISTRY.md
 * describes the configuration and the answers.
 *
 *   registry_auth_create (&cfg->auth, &auth, &err);  // reads the files
 *   registry_auth_check (auth, req, name, action);   // the registry.h hook
 *   registry_auth_token (auth, req);                 // GET /token
 *   registry_auth_admin (auth, req);                 // POST /admin/...
 *   registry_auth_gallery_user (auth, req, &user);   // the web pages
 *   registry_auth_free (auth);
 *
 * The htpasswd file is htpasswd.h's.  Admins ("auth.admins") are users of
 * it; with the token service they may also get tokens for the scope
 * registry:admin:*, which no ACL rule grants.
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

/* NULL in *OUT when CFG->kind is REGISTRY_AUTH_NONE.  CFG is copied.
 * Fails when an admin is not a user of the htpasswd file. */
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
/* GET /token?service=S&scope=T:NAME:ACTIONS... with optional Basic
 * credentials: answers the token, or 401/400. */
void registry_auth_token (struct registry_auth *auth, struct http_request *req);

/* The realm of Basic challenges: htpasswd.realm, or with the token
 * service the service (as the token endpoint's challenge). */
const char *registry_auth_basic_realm (const struct registry_auth *auth);
/* An admin endpoint: 0 when REQ comes from an admin, by Basic credentials
 * (both modes) or, with the token service, a Bearer token carrying
 * registry:admin:* whose subject is an admin.  Else it answers and
 * returns -1: 403 DENIED for a valid user or token that is not an
 * admin's, 401 with a challenge for no or wrong credentials (Basic, or
 * with the token service Bearer with scope="registry:admin:*" when there
 * were none, error="invalid_token" for a bad token). */
int registry_auth_admin (const struct registry_auth *auth,
                         struct http_request *req);

/* The web gallery (gallery.h), for browsers, which cannot do Bearer:
 * Basic credentials of the htpasswd users in both modes.  1: a valid
 * user, *ACCOUNT is the name (malloc'd); 0: no credentials and
 * anonymous_pull is on (*ACCOUNT NULL); -1: wrong credentials, or none
 * without anonymous_pull: the caller answers 401 with a Basic challenge
 * for registry_auth_basic_realm. */
int registry_auth_gallery_user (const struct registry_auth *auth,
                                struct http_request *req, char **account);
/* True when ACCOUNT (NULL: anonymous) may pull repository NAME: with
 * anonymous_pull anyone; with htpasswd any user; with the token service
 * whom the ACL grants pull. */
bool registry_auth_may_pull (const struct registry_auth *auth,
                             const char *account, const char *name);

#endif
