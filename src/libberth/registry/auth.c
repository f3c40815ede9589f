/* auth.c - htpasswd Basic auth and the built-in token service (see
 * auth.h). */
#include "registry/auth.h"

#include <errno.h>
#include <fnmatch.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "json.h"
#include "registry/htpasswd.h"
#include "registry/jwt.h"
#include "registry/reference.h"
#include "registry/registry-internal.h"
#include "utils.h"

struct registry_auth
{
  enum registry_auth_kind kind;
  bool anonymous_pull;
  char *realm, *service, *issuer;
  int64_t expiration;
  struct registry_acl_entry *acl; /* copies, see copy_config */
  size_t n_acl;
  char **admins; /* users who may POST /admin/gc; NULL: none */
  struct registry_htpasswd *users;
  struct jwt_key *key;
};

/* --- Credentials -------------------------------------------------------- */

/* The token of an Authorization header using SCHEME, or NULL.  */
static const char *
authorization (struct http_request *req, const char *scheme)
{
  const char *h = http_request_header (req, "Authorization");
  size_t n = strlen (scheme);

  if (h == NULL || strncasecmp (h, scheme, n) != 0 || h[n] != ' ')
    return NULL;
  for (h += n; *h == ' '; h++)
    ;
  return h;
}

/* 1: Basic credentials in *USER and *PASS (malloc'd); 0: none (no header,
 * another scheme, or an empty user and password: what containers/image
 * sends when it has no credentials); -1: malformed.  */
static int
basic_credentials (struct http_request *req, char **user, char **pass)
{
  const char *b64 = authorization (req, "Basic");
  cleanup_free unsigned char *raw = NULL;
  char *colon;
  long n;

  if (b64 == NULL)
    return 0;
  n = jwt_base64_decode (b64, strlen (b64), &raw);
  if (n < 0 || memchr (raw, '\0', (size_t) n)
      || (colon = strchr ((char *) raw, ':')) == NULL)
    return -1;
  if (colon == (char *) raw)
    return colon[1] == '\0' ? 0 : -1;
  *user = xstrndup ((char *) raw, (size_t) (colon - (char *) raw));
  *pass = xstrdup (colon + 1);
  OPENSSL_cleanse (raw, (size_t) n);
  return 1;
}

/* 1 when REQ carries valid Basic credentials (*ACCOUNT set), 0 when none,
 * -1 when they are wrong or malformed.  */
static int
authenticate (const struct registry_auth *a, struct http_request *req,
              char **account)
{
  cleanup_free char *user = NULL;
  cleanup_free char *pass = NULL;
  int r = basic_credentials (req, &user, &pass);
  bool ok;

  if (r <= 0)
    return r;
  ok = registry_htpasswd_verify (a->users, user, pass);
  OPENSSL_cleanse (pass, strlen (pass));
  if (!ok)
    return -1;
  *account = steal_pointer (&user);
  return 1;
}

/* --- Challenges --------------------------------------------------------- */

/* What a token needs for the admin endpoints (POST /admin/gc), in the
 * form of Docker's registry:catalog:*.  */
#define ADMIN_SCOPE "registry:admin:*"

static void
challenge_basic (struct http_request *req, const char *realm)
{
  registry_error (req, 401, E_UNAUTHORIZED, "authentication required", NULL);
  http_headerf (req, "WWW-Authenticate", "Basic realm=\"%s\"", realm);
}

const char *
registry_auth_basic_realm (const struct registry_auth *a)
{
  /* In token mode the realm is the token URL; Basic logins there (the
   * token endpoint's) name the service.  */
  return a->kind == REGISTRY_AUTH_TOKEN ? a->service : a->realm;
}

/* The scope a request needs (malloc'd), or NULL for /v2/ itself.  */
static char *
scope_for (const char *name, enum registry_action action)
{
  static const char *const actions[] = {
    [REGISTRY_PULL] = "pull",
    [REGISTRY_PUSH] = "pull,push",
    [REGISTRY_DELETE] = "delete",
    [REGISTRY_CATALOG] = "*",
  };
  char *s = NULL;

  if (action == REGISTRY_CATALOG)
    return xstrdup ("registry:catalog:*");
  if (name == NULL)
    return NULL;
  xasprintf (&s, "repository:%s:%s", name, actions[action]);
  return s;
}

/* SCOPE is the scope the request needs (NULL: none).  ERROR, when set,
 * is RFC 6750's: "invalid_token" (bad signature, expired, not ours) or
 * "insufficient_scope" (a valid token that does not cover the request).
 * STATUS is 401, or 403 DENIED when asking again cannot help.  */
static void
challenge_bearer (const struct registry_auth *a, struct http_request *req,
                  unsigned status, const char *scope, const char *error)
{
  cleanup_free char *scope_param = NULL;
  cleanup_free char *error_param = NULL;

  if (scope)
    xasprintf (&scope_param, ",scope=\"%s\"", scope);
  if (error)
    xasprintf (&error_param, ",error=\"%s\"", error);
  if (status == 403)
    registry_error (req, 403, E_DENIED, "access denied", NULL);
  else
    registry_error (req, 401, E_UNAUTHORIZED, "authentication required", NULL);
  http_headerf (req, "WWW-Authenticate",
                "Bearer realm=\"%s\",service=\"%s\"%s%s", a->realm, a->service,
                scope_param ? scope_param : "", error_param ? error_param : "");
}

/* --- Tokens ------------------------------------------------------------- */

static unsigned
action_bits (const char *s)
{
  if (strcmp (s, "pull") == 0)
    return REGISTRY_ACL_PULL;
  if (strcmp (s, "push") == 0)
    return REGISTRY_ACL_PUSH;
  if (strcmp (s, "delete") == 0)
    return REGISTRY_ACL_DELETE;
  if (strcmp (s, "*") == 0)
    return REGISTRY_ACL_ALL;
  return 0;
}

/* What the access claim of CLAIMS grants on TYPE:NAME.  */
static unsigned
granted_in (json_t *claims, const char *type, const char *name)
{
  json_t *access = json_object_get (claims, "access"), *e;
  unsigned bits = 0;
  size_t i, j;

  json_array_foreach (access, i, e)
  {
    json_t *t = json_object_get (e, "type"), *n = json_object_get (e, "name");
    json_t *acts = json_object_get (e, "actions"), *x;
    if (!json_is_string (t) || !json_is_string (n)
        || strcmp (json_string_value (t), type) != 0
        || strcmp (json_string_value (n), name) != 0)
      continue;
    json_array_foreach (acts, j, x)
    {
      if (json_is_string (x))
        bits |= action_bits (json_string_value (x));
    }
  }
  return bits;
}

/* The claims of a valid, current token of ours, or NULL.  */
static json_t *
valid_claims (const struct registry_auth *a, const char *token)
{
  json_t *claims = NULL;
  berth_error_t err = NULL;

  if (jwt_verify (a->key, token, &claims, &err) < 0
      || jwt_check_claims (claims, a->issuer, a->service, time (NULL), &err)
             < 0)
    {
      berth_error_release (&err);
      json_decref (claims);
      return NULL;
    }
  return claims;
}

static int
check_bearer (const struct registry_auth *a, struct http_request *req,
              const char *name, enum registry_action action)
{
  static const unsigned need[] = {
    [REGISTRY_PULL] = REGISTRY_ACL_PULL,
    [REGISTRY_PUSH] = REGISTRY_ACL_PUSH,
    [REGISTRY_DELETE] = REGISTRY_ACL_DELETE,
    [REGISTRY_CATALOG] = REGISTRY_ACL_ALL,
  };
  const char *token = authorization (req, "Bearer");
  cleanup_free char *scope = scope_for (name, action);
  cleanup_json json_t *claims = NULL;
  unsigned got;

  if (token == NULL)
    {
      if (a->anonymous_pull && action == REGISTRY_PULL && name)
        return 0;
      challenge_bearer (a, req, 401, scope, NULL);
      return -1;
    }
  claims = valid_claims (a, token);
  if (claims == NULL)
    {
      challenge_bearer (a, req, 401, scope, "invalid_token");
      return -1;
    }
  if (name == NULL && action == REGISTRY_PULL)
    return 0; /* GET /v2/: any token of ours */
  got = action == REGISTRY_CATALOG ? granted_in (claims, "registry", "catalog")
                                   : granted_in (claims, "repository", name);
  if ((got & need[action]) == need[action])
    return 0;
  challenge_bearer (a, req, 401, scope, "insufficient_scope");
  return -1;
}

int
registry_auth_check (void *data, struct http_request *req, const char *name,
                     enum registry_action action)
{
  const struct registry_auth *a = data;
  cleanup_free char *account = NULL;
  int r;

  if (a->kind == REGISTRY_AUTH_TOKEN)
    return check_bearer (a, req, name, action);
  r = authenticate (a, req, &account);
  if (r > 0)
    return 0;
  /* Anonymous pulls are for repositories: /v2/ still answers 401, so
   * that clients probing it learn that credentials are used here (and
   * send them when they have some).  */
  if (r == 0 && a->anonymous_pull && action == REGISTRY_PULL && name)
    return 0;
  challenge_basic (req, a->realm);
  return -1;
}

/* --- Admins ------------------------------------------------------------- */

static bool
is_admin (const struct registry_auth *a, const char *account)
{
  size_t i;

  for (i = 0; account && a->admins && a->admins[i]; i++)
    if (strcmp (a->admins[i], account) == 0)
      return true;
  return false;
}

/* A Bearer token on an admin endpoint: it must be ours, current, carry
 * registry:admin:* and name an admin (the list may have changed since it
 * was issued).  */
static int
check_admin_token (const struct registry_auth *a, struct http_request *req,
                   const char *token)
{
  cleanup_json json_t *claims = valid_claims (a, token);
  json_t *sub;

  if (claims == NULL)
    {
      challenge_bearer (a, req, 401, ADMIN_SCOPE, "invalid_token");
      return -1;
    }
  sub = json_object_get (claims, "sub");
  if (granted_in (claims, "registry", "admin") == REGISTRY_ACL_ALL
      && json_is_string (sub) && is_admin (a, json_string_value (sub)))
    return 0;
  challenge_bearer (a, req, 403, ADMIN_SCOPE, "insufficient_scope");
  return -1;
}

int
registry_auth_admin (const struct registry_auth *a, struct http_request *req)
{
  cleanup_free char *account = NULL;
  const char *token = authorization (req, "Bearer");
  const char *realm = registry_auth_basic_realm (a);
  int r;

  if (a->kind == REGISTRY_AUTH_TOKEN && token)
    return check_admin_token (a, req, token);
  r = authenticate (a, req, &account);
  if (r > 0 && is_admin (a, account))
    return 0;
  if (r > 0)
    registry_error (req, 403, E_DENIED, "not an admin",
                    json_pack ("{s:s}", "account", account));
  else if (r == 0 && a->kind == REGISTRY_AUTH_TOKEN)
    challenge_bearer (a, req, 401, ADMIN_SCOPE, NULL);
  else
    challenge_basic (req, realm);
  return -1;
}

/* --- The gallery -------------------------------------------------------- */

int
registry_auth_gallery_user (const struct registry_auth *a,
                            struct http_request *req, char **account)
{
  int r;

  *account = NULL;
  r = authenticate (a, req, account);
  if (r > 0)
    return 1;
  if (r == 0 && a->anonymous_pull)
    return 0;
  return -1;
}

/* --- The token service -------------------------------------------------- */

/* What the ACL lets ACCOUNT (NULL: anonymous) do on TYPE:NAME.  */
static unsigned
acl_allows (const struct registry_auth *a, const char *account,
            const char *type, const char *name)
{
  unsigned bits = 0;
  size_t i;

  for (i = 0; i < a->n_acl; i++)
    {
      const struct registry_acl_entry *e = &a->acl[i];
      if (strcmp (e->account, "*") != 0
          && (account == NULL || strcmp (e->account, account) != 0))
        continue;
      if (strcmp (e->type, type) == 0 && fnmatch (e->name, name, 0) == 0)
        bits |= e->actions;
    }
  return bits;
}

bool
registry_auth_may_pull (const struct registry_auth *a, const char *account,
                        const char *name)
{
  /* Anonymous pulls pass for every repository in both modes.  */
  if (a->anonymous_pull)
    return true;
  if (a->kind == REGISTRY_AUTH_HTPASSWD)
    return account != NULL;
  return (acl_allows (a, account, "repository", name) & REGISTRY_ACL_PULL) != 0;
}

/* What ACCOUNT may do on TYPE:NAME of a requested scope: the admin scope
 * (registry:admin) is the admins', everything else the ACL's.  */
static unsigned
grantable (const struct registry_auth *a, const char *account, const char *type,
           const char *name)
{
  if (strcmp (type, "registry") == 0 && strcmp (name, "admin") == 0)
    return is_admin (a, account) ? REGISTRY_ACL_ALL : 0;
  return acl_allows (a, account, type, name);
}

/* One requested scope "TYPE:NAME:ACTIONS" (NAME may hold a ':' for a
 * registry with a port), granted as far as the ACL (or the admins list)
 * allows; unknown types, invalid names and scopes nothing is granted for
 * add nothing.  */
static void
grant_scope (const struct registry_auth *a, const char *account,
             const char *scope, json_t *access)
{
  cleanup_free char *buf = xstrdup (scope);
  char *type = buf, *name, *acts, *paren, *tok, *save = NULL;
  berth_error_t err = NULL;
  unsigned want = 0, got;
  json_t *list;

  name = strchr (buf, ':');
  acts = strrchr (buf, ':');
  if (name == NULL || acts == name)
    return;
  *name++ = '\0';
  *acts++ = '\0';
  if ((paren = strchr (type, '(')))
    *paren = '\0'; /* "repository(plugin)" */
  if (strcmp (type, "repository") == 0)
    {
      if (registry_validate_name (name, &err) < 0)
        {
          berth_error_release (&err);
          return;
        }
    }
  else if (strcmp (type, "registry") != 0
           || (strcmp (name, "catalog") != 0 && strcmp (name, "admin") != 0))
    return;
  for (tok = strtok_r (acts, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    want |= action_bits (tok);
  got = want & grantable (a, account, type, name);
  if (got == 0)
    return;
  list = json_array ();
  if (got == REGISTRY_ACL_ALL && strstr (scope, ":*") != NULL)
    json_array_append_new (list, json_string ("*"));
  else
    {
      if (got & REGISTRY_ACL_PULL)
        json_array_append_new (list, json_string ("pull"));
      if (got & REGISTRY_ACL_PUSH)
        json_array_append_new (list, json_string ("push"));
      if (got & REGISTRY_ACL_DELETE)
        json_array_append_new (list, json_string ("delete"));
    }
  json_array_append_new (access, json_pack ("{s:s,s:s,s:o}", "type", type,
                                            "name", name, "actions", list));
}

/* The scope parameter may repeat, and each may hold several scopes
 * separated by spaces.  */
struct grant_ctx
{
  const struct registry_auth *a;
  const char *account;
  json_t *access;
};

static int
grant_param (const char *value, void *data)
{
  struct grant_ctx *g = data;
  cleanup_free char *buf = xstrdup (value);
  char *tok, *save = NULL;

  for (tok = strtok_r (buf, " ", &save); tok; tok = strtok_r (NULL, " ", &save))
    grant_scope (g->a, g->account, tok, g->access);
  return 0;
}

bool
registry_auth_has_token_service (const struct registry_auth *auth)
{
  return auth && auth->kind == REGISTRY_AUTH_TOKEN;
}

static json_t *
token_claims (const struct registry_auth *a, const char *account,
              json_t *access, time_t now)
{
  unsigned char rnd[16];
  char jti[33];
  size_t i;

  if (RAND_bytes (rnd, sizeof (rnd)) != 1)
    return NULL;
  for (i = 0; i < sizeof (rnd); i++)
    snprintf (jti + 2 * i, 3, "%02x", rnd[i]);
  return json_pack ("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:o}", "iss", a->issuer,
                    "sub", account ? account : "", "aud", a->service, "exp",
                    (json_int_t) (now + a->expiration), "nbf", (json_int_t) now,
                    "iat", (json_int_t) now, "jti", jti, "access", access);
}

void
registry_auth_token (struct registry_auth *a, struct http_request *req)
{
  const char *service = http_request_query (req, "service");
  cleanup_free char *account = NULL;
  cleanup_free char *token = NULL;
  cleanup_json json_t *claims = NULL;
  struct grant_ctx g = { a, NULL, json_array () };
  berth_error_t err = NULL;
  time_t now = time (NULL);
  char issued[32];
  struct tm tm;

  if (service && strcmp (service, a->service) != 0)
    {
      json_decref (g.access);
      registry_error (req, 400, E_UNSUPPORTED, "unknown service", NULL);
      return;
    }
  if (authenticate (a, req, &account) < 0)
    {
      json_decref (g.access);
      challenge_basic (req, a->service);
      return;
    }
  g.account = account;
  http_request_query_each (req, "scope", grant_param, &g);
  claims = token_claims (a, account, g.access, now);
  if (claims == NULL || jwt_sign (a->key, claims, &token, &err) < 0)
    {
      if (err == NULL)
        berth_make_invalid (&err, "no random bytes for the token id");
      http_server_log (http_request_server (req), HTTP_LOG_ERROR, "token: %s",
                       err->msg);
      berth_error_release (&err);
      registry_error (req, 500, "UNKNOWN", "internal error", NULL);
      return;
    }
  gmtime_r (&now, &tm);
  strftime (issued, sizeof (issued), "%Y-%m-%dT%H:%M:%SZ", &tm);
  http_respond_json (req, 200, "application/json",
                     json_pack ("{s:s,s:s,s:I,s:s}", "token", token,
                                "access_token", token, "expires_in",
                                (json_int_t) a->expiration, "issued_at",
                                issued));
  http_header (req, "Cache-Control", "no-store");
}

/* --- Life cycle --------------------------------------------------------- */

static int
copy_config (struct registry_auth *a, const struct registry_auth_config *cfg,
             berth_error_t *err)
{
  size_t i;

  a->kind = cfg->kind;
  a->anonymous_pull = cfg->anonymous_pull;
  a->realm = xstrdup (cfg->realm ? cfg->realm : "berth-registry");
  a->service = xstrdup (cfg->service ? cfg->service : "");
  a->issuer = xstrdup (cfg->issuer ? cfg->issuer : "");
  a->expiration = cfg->expiration_seconds;
  a->acl = xmalloc0 ((cfg->n_acl + 1) * sizeof (*a->acl));
  for (i = 0; i < cfg->n_acl; i++)
    {
      a->acl[i].account = xstrdup (cfg->acl[i].account);
      a->acl[i].type = xstrdup (cfg->acl[i].type);
      a->acl[i].name = xstrdup (cfg->acl[i].name);
      a->acl[i].actions = cfg->acl[i].actions;
    }
  a->n_acl = cfg->n_acl;
  a->admins = cfg->admins ? strv_dup (cfg->admins) : NULL;
  /* Both go inside quoted parameters of WWW-Authenticate.  */
  if (strpbrk (a->realm, "\"\\\r\n") || strpbrk (a->service, "\"\\\r\n"))
    return berth_make_invalid (err, "auth.token: no quotes, backslashes or "
                                    "line breaks in realm and service");
  return 0;
}

/* Every admin must be a user of the htpasswd file: a typo would leave
 * the endpoint closed without a word.  */
static int
check_admins (const struct registry_auth_config *cfg,
              const struct registry_auth *a, berth_error_t *err)
{
  size_t i;

  for (i = 0; a->admins && a->admins[i]; i++)
    {
      if (cfg->htpasswd == NULL)
        return berth_make_invalid (err,
                                   "auth.admins: `%.64s` is not a user: "
                                   "auth.token.users is not set",
                                   a->admins[i]);
      if (!registry_htpasswd_has_user (a->users, a->admins[i]))
        return berth_make_invalid (err,
                                   "auth.admins: `%.64s` is not a user of "
                                   "`%s`",
                                   a->admins[i], cfg->htpasswd);
    }
  return 0;
}

int
registry_auth_create (const struct registry_auth_config *cfg,
                      struct registry_auth **out, berth_error_t *err)
{
  struct registry_auth *a;

  *out = NULL;
  if (cfg->kind == REGISTRY_AUTH_NONE)
    return 0;
  a = xmalloc0 (sizeof (*a));
  if (copy_config (a, cfg, err) < 0)
    goto fail;
  if (cfg->htpasswd
      && registry_htpasswd_load (cfg->htpasswd, &a->users, err) < 0)
    {
      berth_error_wrap (err, cfg->kind == REGISTRY_AUTH_TOKEN
                                 ? "auth.token.users"
                                 : "auth.htpasswd.path");
      goto fail;
    }
  if (check_admins (cfg, a, err) < 0)
    goto fail;
  if (cfg->kind == REGISTRY_AUTH_TOKEN
      && jwt_key_load (cfg->key, &a->key, err) < 0)
    {
      berth_error_wrap (err, "auth.token.key");
      goto fail;
    }
  *out = a;
  return 0;
fail:
  registry_auth_free (a);
  return berth_error_code (*err);
}

void
registry_auth_free (struct registry_auth *a)
{
  size_t i;

  if (a == NULL)
    return;
  for (i = 0; i < a->n_acl; i++)
    {
      free (a->acl[i].account);
      free (a->acl[i].type);
      free (a->acl[i].name);
    }
  registry_htpasswd_free (a->users);
  strv_free (a->admins);
  free (a->acl);
  free (a->realm);
  free (a->service);
  free (a->issuer);
  jwt_key_free (a->key);
  free (a);
}
