/* blobs.c - GET, HEAD and DELETE /v2/<name>/blobs/<digest>. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "registry/registry-internal.h"
#include "utils.h"

enum range_result
{
  RANGE_NONE,   /* no Range, or one this server ignores: the whole blob */
  RANGE_OK,     /* [*start, *end] */
  RANGE_REFUSE, /* malformed or unsatisfiable: 416 */
};

static bool
parse_u64 (const char **pp, uint64_t *out)
{
  const char *p = *pp;
  uint64_t v = 0;
  if (*p < '0' || *p > '9')
    return false;
  while (*p >= '0' && *p <= '9')
    {
      if (v > (UINT64_MAX - 9) / 10)
        return false;
      v = v * 10 + (uint64_t) (*p - '0');
      p++;
    }
  *pp = p;
  *out = v;
  return true;
}

/* A single "bytes=" range (RFC 9110 section 14.1.2) against SIZE.
 * Several ranges: the whole blob, as RFC 9110 allows.  */
static enum range_result
parse_range (const char *h, uint64_t size, uint64_t *start, uint64_t *end)
{
  const char *p = h;
  uint64_t a = 0, b = 0;

  if (h == NULL)
    return RANGE_NONE;
  while (*p == ' ')
    p++;
  if (strncasecmp (p, "bytes=", 6) != 0)
    return RANGE_REFUSE;
  p += 6;
  if (strchr (p, ','))
    return RANGE_NONE;
  while (*p == ' ')
    p++;
  if (*p == '-')
    {
      /* The last B bytes.  */
      p++;
      if (!parse_u64 (&p, &b) || b == 0 || size == 0)
        return RANGE_REFUSE;
      a = b >= size ? 0 : size - b;
      b = size - 1;
    }
  else
    {
      if (!parse_u64 (&p, &a) || *p++ != '-')
        return RANGE_REFUSE;
      if (*p >= '0' && *p <= '9')
        {
          if (!parse_u64 (&p, &b) || b < a)
            return RANGE_REFUSE;
        }
      else
        b = UINT64_MAX;
      if (a >= size)
        return RANGE_REFUSE;
      if (b >= size)
        b = size - 1;
    }
  while (*p == ' ')
    p++;
  if (*p != '\0')
    return RANGE_REFUSE;
  *start = a;
  *end = b;
  return RANGE_OK;
}

static void
blob_headers (struct http_request *req, const struct registry_digest *d)
{
  http_header (req, "Content-Type", "application/octet-stream");
  http_header (req, "Docker-Content-Digest", d->str);
  http_headerf (req, "ETag", "\"%s\"", d->str);
  http_header (req, "Accept-Ranges", "bytes");
  /* Content-addressed: it never changes.  */
  http_header (req, "Cache-Control", "max-age=31536000");
}

static void
blob_unknown (struct registry_req *rq, const struct registry_digest *d)
{
  registry_error (rq->http, 404, E_BLOB_UNKNOWN, "blob unknown to registry",
                  json_pack ("{s:s}", "digest", d->str));
}

static void
blob_get (struct registry_req *rq, const struct registry_digest *d)
{
  struct http_request *req = rq->http;
  berth_error_t err = NULL;
  uint64_t size = 0, start = 0, end = 0;
  enum range_result range;
  int fd = -1, r;

  r = registry_storage_blob_open (rq->reg->storage, rq->name, d, &fd, &size,
                                  &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      blob_unknown (rq, d);
      return;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return;
    }
  range = parse_range (http_request_header (req, "Range"), size, &start, &end);
  if (range == RANGE_REFUSE)
    {
      close (fd);
      http_respond_empty (req, 416);
      http_headerf (req, "Content-Range", "bytes */%llu",
                    (unsigned long long) size);
      return;
    }
  if (range == RANGE_OK)
    {
      http_respond_fd (req, 206, fd, start, end - start + 1);
      blob_headers (req, d);
      http_headerf (req, "Content-Range", "bytes %llu-%llu/%llu",
                    (unsigned long long) start, (unsigned long long) end,
                    (unsigned long long) size);
      return;
    }
  http_respond_fd (req, 200, fd, 0, size);
  blob_headers (req, d);
}

static void
blob_head (struct registry_req *rq, const struct registry_digest *d)
{
  berth_error_t err = NULL;
  uint64_t size = 0;
  int r;

  r = registry_storage_blob_stat (rq->reg->storage, rq->name, d, &size, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      blob_unknown (rq, d);
      return;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, rq->http, &err);
      return;
    }
  http_respond_head (rq->http, 200, size);
  blob_headers (rq->http, d);
}

static void
blob_delete (struct registry_req *rq, const struct registry_digest *d)
{
  berth_error_t err = NULL;
  int r;

  r = registry_storage_blob_delete (rq->reg->storage, rq->name, d, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      blob_unknown (rq, d);
      return;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, rq->http, &err);
      return;
    }
  http_respond_empty (rq->http, 202);
  http_header (rq->http, "Docker-Content-Digest", d->str);
}

/* A pull-through cache's repository (proxy.c): fetch a missing blob.
 * True when answered (upstream failed).  */
static bool
proxy_blob (struct registry_req *rq, const struct registry_digest *d)
{
  const struct registry_proxy_config *p;
  const char *up = NULL;
  berth_error_t err = NULL;
  uint64_t size;
  int r;

  p = registry_proxy_match (rq->reg, rq->name, &up);
  if (p == NULL)
    return false;
  r = registry_storage_blob_stat (rq->reg->storage, rq->name, d, &size, &err);
  berth_error_release (&err);
  if (r != -ENOENT)
    return false;
  r = registry_proxy_fetch_blob (rq->reg, p, rq->name, up, d, &err);
  if (r == 0)
    return false;
  return registry_proxy_answer_failure (rq->reg, rq->http, r, &err);
}

void
registry_handle_blob (struct registry_req *rq)
{
  const char *method = http_request_method (rq->http);
  struct registry_digest d;

  if (registry_parse_digest (rq->http, rq->ref, &d) < 0)
    return;
  if (rq->reg->n_proxies > 0 && strcmp (method, "DELETE") != 0
      && proxy_blob (rq, &d))
    return;
  if (strcmp (method, "GET") == 0)
    blob_get (rq, &d);
  else if (strcmp (method, "HEAD") == 0)
    blob_head (rq, &d);
  else
    blob_delete (rq, &d);
}
