/* uploads.c - pushing blobs: POST /v2/<name>/blobs/uploads/ (a session, a
 * monolithic upload, a cross-repository mount) and GET, PATCH, PUT,
 * DELETE /v2/<name>/blobs/uploads/<uuid>. */
#include <errno.h>
#include <string.h>

#include "registry/registry-internal.h"
#include "utils.h"

/* One request writing to a session.  */
struct upload_write
{
  struct registry *reg;
  struct registry_upload *up;
  char *name;
  bool begun;
  bool commit;      /* PUT, POST ?digest=: verify and store at the end */
  bool own_session; /* POST ?digest=: the session exists for this request */
  bool done;        /* committed or cancelled */
  struct registry_digest digest;
  bool has_range;
  uint64_t range_len;
  uint64_t received;
};

static void
session_headers (struct http_request *req, const char *name, const char *uuid,
                 uint64_t size)
{
  http_headerf (req, "Location", "/v2/%s/blobs/uploads/%s", name, uuid);
  http_header (req, "Docker-Upload-UUID", uuid);
  /* The last byte received; "0-0" for none, as docker-registry says.  */
  http_headerf (req, "Range", "0-%llu",
                (unsigned long long) (size ? size - 1 : 0));
}

static void
blob_created (struct http_request *req, const char *name,
              const struct registry_digest *d)
{
  http_respond_empty (req, 201);
  http_headerf (req, "Location", "/v2/%s/blobs/%s", name, d->str);
  http_header (req, "Docker-Content-Digest", d->str);
}

static void
upload_unknown (struct http_request *req, const char *uuid)
{
  registry_error (req, 404, E_BLOB_UPLOAD_UNKNOWN,
                  "blob upload unknown to registry",
                  json_pack ("{s:s}", "uuid", uuid));
}

static void
write_free (struct upload_write *w)
{
  free (w->name);
  free (w);
}

static int
on_data (struct http_request *req, const char *data, size_t len, void *ctx)
{
  struct upload_write *w = ctx;
  berth_error_t err = NULL;

  w->received += len;
  if (w->has_range && w->received > w->range_len)
    {
      registry_error (req, 416, E_BLOB_UPLOAD_INVALID,
                      "the body is longer than its Content-Range", NULL);
      return -1;
    }
  if (registry_upload_write (w->up, data, len, &err) < 0)
    {
      registry_internal_error (w->reg, req, &err);
      return -1;
    }
  return 0;
}

static void
on_end (struct http_request *req, void *ctx)
{
  struct upload_write *w = ctx;
  struct registry_storage *s = w->reg->storage;
  berth_error_t err = NULL;
  int r;

  if (w->has_range && w->received != w->range_len)
    {
      registry_upload_rollback (w->up);
      registry_upload_end (w->up);
      registry_error (req, 416, E_BLOB_UPLOAD_INVALID,
                      "the body is shorter than its Content-Range", NULL);
      return;
    }
  if (registry_upload_flush (w->up, &err) < 0)
    {
      registry_upload_rollback (w->up);
      registry_upload_end (w->up);
      registry_internal_error (w->reg, req, &err);
      return;
    }
  registry_upload_end (w->up);
  if (!w->commit)
    {
      http_respond_empty (req, 202);
      session_headers (req, w->name, registry_upload_uuid (w->up),
                       registry_upload_size (w->up));
      return;
    }
  r = registry_upload_commit (s, w->up, &w->digest, &err);
  if (r == -EBADMSG)
    {
      w->done = true;
      registry_error (req, 400, E_DIGEST_INVALID, err->msg,
                      json_pack ("{s:s}", "digest", w->digest.str));
      berth_error_release (&err);
      return;
    }
  if (r < 0)
    {
      registry_internal_error (w->reg, req, &err);
      return;
    }
  w->done = true;
  blob_created (req, w->name, &w->digest);
}

static void
on_finish (void *ctx, bool completed)
{
  struct upload_write *w = ctx;
  struct registry_storage *s = w->reg->storage;
  berth_error_t err = NULL;

  if (w->begun && !completed)
    {
      /* The client went away mid-chunk: as if it never sent it.  */
      registry_upload_rollback (w->up);
      registry_upload_end (w->up);
    }
  if (w->own_session && !w->done)
    registry_upload_cancel (s, w->up, &err);
  berth_error_release (&err);
  registry_upload_release (s, w->up);
  write_free (w);
}

/* Read the body into session W->up (acquired); the answer comes from
 * on_end.  Takes W over.  */
static void
stream_into (struct http_request *req, struct upload_write *w)
{
  berth_error_t err = NULL;

  http_request_on_finish (req, on_finish, w);
  if (registry_upload_begin (w->reg->storage, w->up, &err) < 0)
    {
      registry_internal_error (w->reg, req, &err);
      return;
    }
  w->begun = true;
  http_request_read_body (req, on_data, on_end, w);
}

/* POST ?mount=&from=: 0 when mounted (answered), 1 to go on with an
 * upload session, -1 when answered with an error.  */
static int
try_mount (struct registry_req *rq, const char *mount, const char *from)
{
  struct http_request *req = rq->http;
  struct registry_digest d;
  berth_error_t err = NULL;
  int r;

  if (registry_parse_digest (req, mount, &d) < 0)
    return -1;
  if (from == NULL)
    return 1;
  if (registry_validate_name (from, &err) < 0)
    {
      registry_error (req, 400, E_NAME_INVALID, err->msg, NULL);
      berth_error_release (&err);
      return -1;
    }
  /* A client that may not read FROM gets an ordinary session, as from
   * docker-registry: the session's answer replaces the denial (and its
   * headers).  */
  if (registry_authorize (rq->reg, req, from, REGISTRY_PULL) < 0)
    return 1;
  r = registry_storage_blob_mount (rq->reg->storage, rq->name, from, &d, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      return 1;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return -1;
    }
  blob_created (req, rq->name, &d);
  return 0;
}

void
registry_handle_upload_start (struct registry_req *rq)
{
  struct http_request *req = rq->http;
  const char *mount = http_request_query (req, "mount");
  const char *digest = http_request_query (req, "digest");
  const char *alg_name = http_request_query (req, "digest-algorithm");
  enum registry_digest_alg alg = REGISTRY_SHA256;
  struct registry_upload *up = NULL;
  struct registry_digest d;
  berth_error_t err = NULL;
  struct upload_write *w;

  if (mount && try_mount (rq, mount, http_request_query (req, "from")) <= 0)
    return;
  if (digest)
    {
      if (registry_parse_digest (req, digest, &d) < 0)
        return;
      alg = d.alg;
    }
  else if (alg_name && registry_digest_alg_parse (alg_name, &alg, &err) < 0)
    {
      registry_error (req, 400, E_UNSUPPORTED, err->msg, NULL);
      berth_error_release (&err);
      return;
    }
  if (registry_upload_start (rq->reg->storage, rq->name, alg, &up, &err) < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return;
    }
  if (digest == NULL)
    {
      /* A session for PATCH and PUT to come.  */
      http_respond_empty (req, 202);
      session_headers (req, rq->name, registry_upload_uuid (up), 0);
      registry_upload_release (rq->reg->storage, up);
      return;
    }
  /* Monolithic: the body is the blob.  */
  w = xmalloc0 (sizeof (*w));
  w->reg = rq->reg;
  w->up = up;
  w->name = xstrdup (rq->name);
  w->commit = true;
  w->own_session = true;
  w->digest = d;
  stream_into (req, w);
}

static bool
parse_u64 (const char **pp, uint64_t *out)
{
  const char *p = *pp;
  uint64_t v = 0;
  if (*p < '0' || *p > '9')
    return false;
  for (; *p >= '0' && *p <= '9'; p++)
    {
      if (v > (UINT64_MAX - 9) / 10)
        return false;
      v = v * 10 + (uint64_t) (*p - '0');
    }
  *pp = p;
  *out = v;
  return true;
}

/* "START-END", inclusive: exactly ^[0-9]+-[0-9]+$, as the spec says.  */
static bool
parse_content_range (const char *h, uint64_t *start, uint64_t *end)
{
  return parse_u64 (&h, start) && *h++ == '-' && parse_u64 (&h, end)
         && *h == '\0' && *end >= *start;
}

static void
range_refused (struct registry_req *rq, struct registry_upload *up,
               const char *why)
{
  registry_error (rq->http, 416, E_BLOB_UPLOAD_INVALID, why, NULL);
  session_headers (rq->http, rq->name, registry_upload_uuid (up),
                   registry_upload_size (up));
}

/* PATCH, and PUT ?digest= (with or without a last chunk).  */
static void
upload_write (struct registry_req *rq, bool commit)
{
  struct http_request *req = rq->http;
  struct registry_storage *s = rq->reg->storage;
  const char *crange = http_request_header (req, "Content-Range");
  int64_t clen = http_request_content_length (req);
  struct registry_upload *up = NULL;
  struct registry_digest d;
  berth_error_t err = NULL;
  struct upload_write *w;
  uint64_t start = 0, end = 0;
  int r;

  if (commit)
    {
      const char *digest = http_request_query (req, "digest");
      if (digest == NULL)
        {
          registry_error (req, 400, E_DIGEST_INVALID,
                          "the digest query parameter is missing", NULL);
          return;
        }
      if (registry_parse_digest (req, digest, &d) < 0)
        return;
    }
  r = registry_upload_acquire (s, rq->name, rq->ref, &up, &err);
  if (r == -EBUSY)
    {
      registry_error (req, 416, E_BLOB_UPLOAD_INVALID,
                      "another request is writing to this upload", NULL);
      berth_error_release (&err);
      return;
    }
  if (r < 0)
    {
      berth_error_release (&err);
      upload_unknown (req, rq->ref);
      return;
    }
  /* Chunks must come in order: the first byte of each is the next one
   * the session expects.  A repeated or skipped chunk is refused.  */
  if (crange
      && (!parse_content_range (crange, &start, &end)
          || start != registry_upload_size (up)
          || (clen >= 0 && (uint64_t) clen != end - start + 1)))
    {
      range_refused (rq, up, "Content-Range does not continue the upload");
      registry_upload_release (s, up);
      return;
    }
  w = xmalloc0 (sizeof (*w));
  w->reg = rq->reg;
  w->up = up;
  w->name = xstrdup (rq->name);
  w->commit = commit;
  w->digest = d;
  w->has_range = crange != NULL;
  w->range_len = end - start + 1;
  stream_into (req, w);
}

static void
upload_status (struct registry_req *rq)
{
  berth_error_t err = NULL;
  uint64_t size = 0;

  if (registry_upload_status (rq->reg->storage, rq->name, rq->ref, &size, &err)
      < 0)
    {
      berth_error_release (&err);
      upload_unknown (rq->http, rq->ref);
      return;
    }
  http_respond_empty (rq->http, 204);
  session_headers (rq->http, rq->name, rq->ref, size);
}

static void
upload_delete (struct registry_req *rq)
{
  struct registry_storage *s = rq->reg->storage;
  struct registry_upload *up = NULL;
  berth_error_t err = NULL;
  int r;

  r = registry_upload_acquire (s, rq->name, rq->ref, &up, &err);
  berth_error_release (&err);
  if (r == -EBUSY)
    {
      registry_error (rq->http, 416, E_BLOB_UPLOAD_INVALID,
                      "another request is writing to this upload", NULL);
      return;
    }
  if (r < 0)
    {
      upload_unknown (rq->http, rq->ref);
      return;
    }
  registry_upload_cancel (s, up, &err);
  berth_error_release (&err);
  registry_upload_release (s, up);
  http_respond_empty (rq->http, 204);
}

void
registry_handle_upload (struct registry_req *rq)
{
  const char *method = http_request_method (rq->http);

  if (strcmp (method, "PATCH") == 0)
    upload_write (rq, false);
  else if (strcmp (method, "PUT") == 0)
    upload_write (rq, true);
  else if (strcmp (method, "DELETE") == 0)
    upload_delete (rq);
  else
    upload_status (rq);
}
