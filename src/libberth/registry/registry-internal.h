/* registry-internal.h - what the registry's request handlers share: the
 * registry, the parsed request, the error answers. */
#ifndef BERTH_REGISTRY_INTERNAL_H
#define BERTH_REGISTRY_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "http/server.h"
#include "registry/config.h"
#include "registry/gc.h"
#include "registry/registry.h"
#include "registry/storage.h"

struct registry
{
  struct registry_storage *storage;
  struct http_server *server;
  registry_auth_fn auth;
  void *auth_data;
  struct registry_auth *own_auth; /* from the config's "auth", or NULL */
  uint64_t max_manifest;
  struct registry_gc_opts gc_opts;    /* the config's "gc" */
  struct registry_gc_timer *gc_timer; /* "gc.interval_seconds", or NULL */
  char *tls_cert_pem, *tls_key_pem;   /* "tls", read at start */
  /* "proxy": pull-through caches (proxy.c) */
  struct registry_proxy_config *proxies;
  size_t n_proxies;
  pthread_mutex_t proxy_lock;
  json_t *tag_times; /* "name:tag" -> when fetched from upstream */
  struct registry_proxy_state *proxy_state; /* proxy.c's, under proxy_lock */
};

/* A /v2/ request after routing: NAME is the validated repository (NULL
 * for /v2/ and the catalog), REF the last path segment (a reference, a
 * digest or an upload uuid; not validated). */
struct registry_req
{
  struct registry *reg;
  struct http_request *http;
  const char *name;
  const char *ref;
};

/* The OCI error codes (distribution-spec "Error Codes"). */
#define E_BLOB_UNKNOWN "BLOB_UNKNOWN"
#define E_BLOB_UPLOAD_INVALID "BLOB_UPLOAD_INVALID"
#define E_BLOB_UPLOAD_UNKNOWN "BLOB_UPLOAD_UNKNOWN"
#define E_DIGEST_INVALID "DIGEST_INVALID"
#define E_MANIFEST_BLOB_UNKNOWN "MANIFEST_BLOB_UNKNOWN"
#define E_MANIFEST_INVALID "MANIFEST_INVALID"
#define E_MANIFEST_UNKNOWN "MANIFEST_UNKNOWN"
#define E_NAME_INVALID "NAME_INVALID"
#define E_NAME_UNKNOWN "NAME_UNKNOWN"
#define E_SIZE_INVALID "SIZE_INVALID"
#define E_UNAUTHORIZED "UNAUTHORIZED"
#define E_DENIED "DENIED"
#define E_UNSUPPORTED "UNSUPPORTED"
#define E_TOOMANYREQUESTS "TOOMANYREQUESTS"

/* Answer {"errors":[{"code":CODE,"message":MESSAGE,"detail":DETAIL}]}.
 * DETAIL is taken over; NULL gives {}. */
void registry_error (struct http_request *req, unsigned status,
                     const char *code, const char *message, json_t *detail);
/* Answer with several errors: ERRORS is a JSON array of error objects,
 * taken over. */
void registry_errors (struct http_request *req, unsigned status,
                      json_t *errors);
/* One error object (for registry_errors). */
json_t *registry_error_object (const char *code, const char *message,
                               json_t *detail);
/* A digest from the client: 0, or answers 400 DIGEST_INVALID (also for an
 * unsupported algorithm) and returns a negative value. */
int registry_parse_digest (struct http_request *req, const char *s,
                           struct registry_digest *out);
/* A failure of the server itself: logged, answered 500 (507 when the disk
 * is full).  Releases *ERR. */
void registry_internal_error (struct registry *reg, struct http_request *req,
                              berth_error_t *err);
/* The auth hook for NAME (see registry.h): 0 to go on. */
int registry_authorize (struct registry *reg, struct http_request *req,
                        const char *name, enum registry_action action);

/* --- The pull-through cache (proxy.c) ---------------------------------
 * Fetches return 0 once the object is stored locally, -ENOENT when
 * upstream does not have it, -EBADMSG when upstream's bytes do not match
 * the digest (nothing stored), another negative errno when upstream could
 * not be asked. */
int registry_proxy_init (struct registry *reg,
                         const struct registry_config *cfg, berth_error_t *err);
void registry_proxy_release (struct registry *reg);
/* The proxy NAME belongs to, with its name upstream, or NULL. */
const struct registry_proxy_config *
registry_proxy_match (struct registry *reg, const char *name,
                      const char **upstream_name);
/* TAG of NAME was fetched less than the TTL ago. */
bool registry_proxy_tag_fresh (struct registry *reg,
                               const struct registry_proxy_config *p,
                               const char *name, const char *tag);
/* Ask upstream (HEAD) whether TAG still names HAVE: 0 (and fresh again),
 * 1 when not, negative when upstream could not be asked.  Concurrent
 * callers with the same question share one HEAD. */
int registry_proxy_revalidate (struct registry *reg,
                               const struct registry_proxy_config *p,
                               const char *name, const char *upstream_name,
                               const char *tag,
                               const struct registry_digest *have,
                               const char *accept, berth_error_t *err);
/* Fetch manifest REF (a tag, or the digest WANT) into NAME. */
int registry_proxy_fetch_manifest (struct registry *reg,
                                   const struct registry_proxy_config *p,
                                   const char *name, const char *upstream_name,
                                   const char *ref,
                                   const struct registry_digest *want,
                                   const char *accept, berth_error_t *err);
/* Fetch blob D into NAME. */
int registry_proxy_fetch_blob (struct registry *reg,
                               const struct registry_proxy_config *p,
                               const char *name, const char *upstream_name,
                               const struct registry_digest *d,
                               berth_error_t *err);
/* Answer a failed fetch (R, *ERR): 404 is left to the caller (returns
 * false), anything else is answered (true). */
bool registry_proxy_answer_failure (struct registry *reg,
                                    struct http_request *req, int r,
                                    berth_error_t *err);

/* The handlers, by area. */
void registry_handle_base (struct registry_req *rq);
void registry_handle_catalog (struct registry_req *rq);
void registry_handle_tags (struct registry_req *rq);
void registry_handle_referrers (struct registry_req *rq);
void registry_handle_blob (struct registry_req *rq);
void registry_handle_upload_start (struct registry_req *rq);
void registry_handle_upload (struct registry_req *rq);
void registry_handle_manifest (struct registry_req *rq);

#endif
