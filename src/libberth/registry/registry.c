/* registry.c - the registry's life cycle, the /v2/ router and the error
 * answers (see registry.h, registry-internal.h). */
#include "registry/registry-internal.h"

#include <errno.h>
#include <string.h>

#include "json.h"
#include "registry/auth.h"
#include "registry/gallery.h"
#include "utils.h"

/* --- Answers ------------------------------------------------------------ */

json_t *
registry_error_object (const char *code, const char *message, json_t *detail)
{
  return json_pack ("{s:s,s:s,s:o}", "code", code, "message",
                    message ? message : "", "detail",
                    detail ? detail : json_object ());
}

void
registry_errors (struct http_request *req, unsigned status, json_t *errors)
{
  http_respond_json (req, status, "application/json",
                     json_pack ("{s:o}", "errors", errors));
}

void
registry_error (struct http_request *req, unsigned status, const char *code,
                const char *message, json_t *detail)
{
  registry_errors (
      req, status,
      json_pack ("[o]", registry_error_object (code, message, detail)));
}

int
registry_parse_digest (struct http_request *req, const char *s,
                       struct registry_digest *out)
{
  berth_error_t err = NULL;
  int r = registry_digest_parse (s, out, &err);
  /* An algorithm this registry does not support is an invalid digest for
   * it too, as docker-registry says (the message tells which).  */
  if (r < 0)
    registry_error (req, 400, E_DIGEST_INVALID, err->msg,
                    json_pack ("{s:s}", "digest", s));
  berth_error_release (&err);
  return r;
}

void
registry_internal_error (struct registry *reg, struct http_request *req,
                         berth_error_t *err)
{
  const char *msg = *err && (*err)->msg ? (*err)->msg : "unknown error";
  bool full = *err && (*err)->status == ENOSPC;

  http_server_log (reg->server, HTTP_LOG_ERROR, "%s %s: %s",
                   http_request_method (req), http_request_path (req), msg);
  /* The details (paths on this host) stay in the log.  */
  registry_error (req, full ? 507 : 500, "UNKNOWN",
                  full ? "storage full" : "internal error", NULL);
  berth_error_release (err);
}

int
registry_authorize (struct registry *reg, struct http_request *req,
                    const char *name, enum registry_action action)
{
  if (reg->auth == NULL)
    return 0;
  if (reg->auth (reg->auth_data, req, name, action) == 0)
    return 0;
  if (http_response_status (req) == 0)
    registry_error (req, 403, E_DENIED, "access denied", NULL);
  return -1;
}

/* --- Routing ------------------------------------------------------------ */

enum route_kind
{
  R_NONE,
  R_MANIFEST,
  R_BLOB,
  R_UPLOAD_START,
  R_UPLOAD,
  R_TAGS,
  R_REFERRERS,
};

static bool
ends_with (const char *s, size_t n, const char *suffix)
{
  size_t k = strlen (suffix);
  return n >= k && memcmp (s + n - k, suffix, k) == 0;
}

/* Split REST (the path after /v2/) from its end: repository names hold
 * slashes, and may even hold "blobs" or "manifests" as components, so
 * only the last segments say which endpoint it is.  NAME and REF point
 * into BUF (a copy of REST).  */
static enum route_kind
split_route (char *buf, const char *method, char **name, char **ref)
{
  size_t n = strlen (buf);
  char *last, *prev;

  *ref = NULL;
  if (ends_with (buf, n, "/blobs/uploads/")
      || (strcmp (method, "POST") == 0 && ends_with (buf, n, "/blobs/uploads")))
    {
      buf[n - (buf[n - 1] == '/' ? 15 : 14)] = '\0';
      *name = buf;
      return R_UPLOAD_START;
    }
  if (ends_with (buf, n, "/tags/list"))
    {
      buf[n - 10] = '\0';
      *name = buf;
      return R_TAGS;
    }
  last = strrchr (buf, '/');
  if (last == NULL || last[1] == '\0')
    return R_NONE;
  *last = '\0';
  *ref = last + 1;
  prev = strrchr (buf, '/');
  if (prev == NULL)
    return R_NONE;
  *prev = '\0';
  *name = buf;
  prev++;
  if (strcmp (prev, "manifests") == 0)
    return R_MANIFEST;
  if (strcmp (prev, "referrers") == 0)
    return R_REFERRERS;
  if (strcmp (prev, "blobs") == 0)
    return R_BLOB;
  if (strcmp (prev, "uploads") == 0)
    {
      size_t k = strlen (buf);
      if (ends_with (buf, k, "/blobs"))
        {
          buf[k - 6] = '\0';
          return R_UPLOAD;
        }
    }
  return R_NONE;
}

static bool
method_in (const char *method, const char *const *allowed)
{
  for (; *allowed; allowed++)
    if (strcmp (method, *allowed) == 0)
      return true;
  return false;
}

static enum registry_action
action_of (const char *method)
{
  if (strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0)
    return REGISTRY_PULL;
  if (strcmp (method, "DELETE") == 0)
    return REGISTRY_DELETE;
  return REGISTRY_PUSH;
}

static const char *const read_only[] = { "GET", "HEAD", NULL };
static const char *const manifest_methods[]
    = { "GET", "HEAD", "PUT", "DELETE", NULL };
static const char *const blob_methods[] = { "GET", "HEAD", "DELETE", NULL };
static const char *const upload_start_methods[] = { "POST", NULL };
static const char *const upload_methods[]
    = { "GET", "HEAD", "PATCH", "PUT", "DELETE", NULL };

static const struct
{
  const char *const *methods;
  void (*handler) (struct registry_req *rq);
} endpoints[] = {
  [R_MANIFEST] = { manifest_methods, registry_handle_manifest },
  [R_BLOB] = { blob_methods, registry_handle_blob },
  [R_UPLOAD_START] = { upload_start_methods, registry_handle_upload_start },
  [R_UPLOAD] = { upload_methods, registry_handle_upload },
  [R_TAGS] = { read_only, registry_handle_tags },
  [R_REFERRERS] = { read_only, registry_handle_referrers },
};

/* GET /v2/ and /v2/_catalog.  */
static void
v2_top (struct registry_req *rq, bool catalog)
{
  if (!method_in (http_request_method (rq->http), read_only))
    {
      registry_error (rq->http, 405, E_UNSUPPORTED, "method not allowed", NULL);
      return;
    }
  if (registry_authorize (rq->reg, rq->http, NULL,
                          catalog ? REGISTRY_CATALOG : REGISTRY_PULL)
      < 0)
    return;
  if (catalog)
    registry_handle_catalog (rq);
  else
    registry_handle_base (rq);
}

static void
v2_handler (struct http_request *req, void *data)
{
  struct registry_req rq = { data, req, NULL, NULL };
  const char *rest = http_request_param (req, "*");
  const char *method = http_request_method (req);
  cleanup_free char *buf = NULL;
  berth_error_t err = NULL;
  char *name = NULL, *ref = NULL;
  enum route_kind kind;

  if (rest == NULL || *rest == '\0' || strcmp (rest, "_catalog") == 0)
    {
      v2_top (&rq, rest && *rest);
      return;
    }
  buf = xstrdup (rest);
  kind = split_route (buf, method, &name, &ref);
  if (kind == R_NONE)
    {
      registry_error (req, 404, E_UNSUPPORTED, "no such endpoint", NULL);
      return;
    }
  if (registry_validate_name (name, &err) < 0)
    {
      registry_error (req, 400, E_NAME_INVALID, err->msg, NULL);
      berth_error_release (&err);
      return;
    }
  if (!method_in (method, endpoints[kind].methods))
    {
      registry_error (req, 405, E_UNSUPPORTED, "method not allowed", NULL);
      return;
    }
  if (registry_authorize (rq.reg, req, name, action_of (method)) < 0)
    return;
  if (action_of (method) == REGISTRY_PUSH && rq.reg->n_proxies > 0)
    {
      const char *up;
      if (registry_proxy_match (rq.reg, name, &up))
        {
          registry_error (req, 405, E_UNSUPPORTED,
                          "read-only mirror: pushes go to the upstream "
                          "registry",
                          json_pack ("{s:s}", "name", name));
          return;
        }
    }
  rq.name = name;
  rq.ref = ref;
  endpoints[kind].handler (&rq);
}

/* Everything outside /v2/: the web gallery (gallery.h).  */
static void
root_handler (struct http_request *req, void *data)
{
  registry_gallery_handle (data, req);
}

/* GET /token: the token service, when the config runs one.  */
static void
token_handler (struct http_request *req, void *data)
{
  struct registry *reg = data;

  if (registry_auth_has_token_service (reg->own_auth))
    registry_auth_token (reg->own_auth, req);
  else
    root_handler (req, data);
}

static const struct http_route routes[] = {
  { NULL, "/v2/*", v2_handler },
  { NULL, "/v2", v2_handler },
  { "GET", "/token", token_handler },
  { "POST", "/admin/gc", registry_gc_handler },
  { NULL, "/*", root_handler },
};

static const char *const default_headers[] = {
  "Docker-Distribution-API-Version",
  "registry/2.0",
  NULL,
};

/* --- Life cycle --------------------------------------------------------- */

int
registry_create (const struct registry_opts *opts, struct registry **out,
                 berth_error_t *err)
{
  const struct registry_config *cfg = opts->config;
  struct registry_storage_opts so = { 0 };
  struct http_server_opts ho = { 0 };
  struct registry *reg;
  int r;

  reg = xmalloc0 (sizeof (*reg));
  reg->auth = opts->auth;
  reg->auth_data = opts->auth_data;
  /* A hook given by the caller wins over the config's "auth".  */
  if (reg->auth == NULL)
    {
      r = registry_auth_create (&cfg->auth, &reg->own_auth, err);
      if (r < 0)
        {
          free (reg);
          return r;
        }
      if (reg->own_auth)
        {
          reg->auth = registry_auth_check;
          reg->auth_data = reg->own_auth;
        }
    }
  reg->max_manifest = cfg->max_manifest_bytes;
  r = registry_proxy_init (reg, cfg, err);
  if (r < 0)
    {
      registry_auth_free (reg->own_auth);
      free (reg);
      return r;
    }
  reg->gc_opts.delete_untagged = cfg->gc_delete_untagged;
  reg->gc_opts.grace_seconds = cfg->gc_grace_seconds;
  so.cache_bytes = cfg->cache_bytes;
  so.upload_expire_seconds = cfg->upload_expire_seconds;
  so.max_manifest_bytes = cfg->max_manifest_bytes;
  r = registry_storage_open (cfg->root, &so, &reg->storage, err);
  if (r < 0)
    {
      registry_auth_free (reg->own_auth);
      registry_proxy_release (reg);
      free (reg);
      return r;
    }
  ho.listen = cfg->listen;
  ho.routes = routes;
  ho.n_routes = ARRAY_SIZE (routes);
  ho.data = reg;
  ho.threads = cfg->threads;
  ho.max_body_bytes = cfg->max_body_bytes;
  ho.max_header_bytes = cfg->max_header_bytes;
  ho.log = opts->log;
  ho.log_data = opts->log_data;
  ho.headers = default_headers;
  if (cfg->tls_certificate
      && ((r = read_file (cfg->tls_certificate, 1 << 20, &reg->tls_cert_pem,
                          NULL, err))
              < 0
          || (r
              = read_file (cfg->tls_key, 1 << 20, &reg->tls_key_pem, NULL, err))
                 < 0))
    r = berth_error_wrap (err, "tls");
  else
    {
      ho.tls_cert_pem = reg->tls_cert_pem;
      ho.tls_key_pem = reg->tls_key_pem;
      r = http_server_start (&ho, &reg->server, err);
    }
  if (r < 0)
    {
      registry_storage_free (reg->storage);
      registry_auth_free (reg->own_auth);
      free (reg->tls_cert_pem);
      free (reg->tls_key_pem);
      registry_proxy_release (reg);
      free (reg);
      return r;
    }
  reg->gc_timer = registry_gc_timer_start (reg->storage, &reg->gc_opts,
                                           cfg->gc_interval_seconds);
  *out = reg;
  return 0;
}

const char *
registry_address (struct registry *reg)
{
  return http_server_address (reg->server);
}

void
registry_free (struct registry *reg)
{
  if (reg == NULL)
    return;
  /* The server first: its threads use the storage until they are
   * joined.  */
  registry_gc_timer_stop (reg->gc_timer);
  http_server_stop (reg->server);
  registry_storage_free (reg->storage);
  registry_auth_free (reg->own_auth);
  free (reg->tls_cert_pem);
  free (reg->tls_key_pem);
  registry_proxy_release (reg);
  free (reg);
}
