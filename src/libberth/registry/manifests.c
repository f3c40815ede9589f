/* manifests.c - GET, HEAD, PUT and DELETE /v2/<name>/manifests/<ref>. */
#include <errno.h>
#include <string.h>

#include "registry/digest.h"
#include "registry/gc.h"
#include "registry/manifest.h"
#include "registry/registry-internal.h"
#include "utils.h"

/* At most this many ?tag= on one PUT (the spec asks for at least 10).  */
#define MAX_TAGS 100

/* The <ref> of the path: a digest, or a tag.  0, or answered (-1).  */
static int
parse_ref (struct registry_req *rq, bool *is_digest, struct registry_digest *d,
           bool for_put)
{
  berth_error_t err = NULL;

  *is_digest = registry_reference_is_digest (rq->ref);
  if (*is_digest)
    return registry_parse_digest (rq->http, rq->ref, d);
  if (registry_validate_tag (rq->ref, &err) == 0)
    return 0;
  /* Nothing can be stored under an invalid tag, nor found.  */
  if (for_put)
    registry_error (rq->http, 400, E_MANIFEST_INVALID, err->msg,
                    json_pack ("{s:s}", "tag", rq->ref));
  else
    registry_error (rq->http, 404, E_MANIFEST_UNKNOWN, err->msg,
                    json_pack ("{s:s}", "tag", rq->ref));
  berth_error_release (&err);
  return -1;
}

static void
manifest_unknown (struct registry_req *rq)
{
  if (!registry_storage_repo_exists (rq->reg->storage, rq->name))
    registry_error (rq->http, 404, E_NAME_UNKNOWN,
                    "repository name not known to registry",
                    json_pack ("{s:s}", "name", rq->name));
  else
    registry_error (rq->http, 404, E_MANIFEST_UNKNOWN,
                    "manifest unknown to registry",
                    json_pack ("{s:s}", "reference", rq->ref));
}

/* A pull-through cache's repository (proxy.c): fetch on a miss, check a
 * tag again after its TTL.  R and *MD are the local answer; returns the
 * new one, or 1 when answered.  */
static int
proxy_manifest (struct registry_req *rq, bool is_digest,
                const struct registry_digest *d, int r,
                struct registry_manifest_data *md, berth_error_t *err)
{
  const struct registry_proxy_config *p;
  const char *accept = http_request_header (rq->http, "Accept");
  const char *up = NULL;
  berth_error_t e2 = NULL;
  int fr;

  p = registry_proxy_match (rq->reg, rq->name, &up);
  if (p == NULL || (r < 0 && r != -ENOENT))
    return r;
  if (r == 0)
    {
      if (is_digest || registry_proxy_tag_fresh (rq->reg, p, rq->name, rq->ref))
        return 0;
      fr = registry_proxy_revalidate (rq->reg, p, rq->name, up, rq->ref,
                                      &md->digest, accept, &e2);
      if (fr == 1)
        fr = registry_proxy_fetch_manifest (rq->reg, p, rq->name, up, rq->ref,
                                            NULL, accept, &e2);
      else if (fr == 0)
        return 0;
      if (fr < 0)
        {
          /* Upstream unreachable or wrong: the local copy still serves. */
          http_server_log (rq->reg->server, HTTP_LOG_WARN,
                           "%s: revalidating %s:%s: %s", "proxy", rq->name,
                           rq->ref, e2 && e2->msg ? e2->msg : "failed");
          berth_error_release (&e2);
          return 0;
        }
      registry_manifest_data_release (md);
    }
  else
    {
      berth_error_release (err);
      fr = registry_proxy_fetch_manifest (rq->reg, p, rq->name, up, rq->ref,
                                          is_digest ? d : NULL, accept, &e2);
      if (fr < 0)
        {
          if (registry_proxy_answer_failure (rq->reg, rq->http, fr, &e2))
            return 1;
          return -ENOENT;
        }
    }
  return registry_storage_manifest_get (rq->reg->storage, rq->name,
                                        is_digest ? NULL : rq->ref, d, md, err);
}

static void
manifest_get (struct registry_req *rq)
{
  struct http_request *req = rq->http;
  struct registry_manifest_data md;
  struct registry_digest d;
  berth_error_t err = NULL;
  bool is_digest;
  int r;

  if (parse_ref (rq, &is_digest, &d, false) < 0)
    return;
  r = registry_storage_manifest_get (rq->reg->storage, rq->name,
                                     is_digest ? NULL : rq->ref, &d, &md, &err);
  if (rq->reg->n_proxies > 0)
    {
      r = proxy_manifest (rq, is_digest, &d, r, &md, &err);
      if (r == 1)
        return;
    }
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      manifest_unknown (rq);
      return;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return;
    }
  if (http_request_is_head (req))
    {
      http_respond_head (req, 200, md.len);
      registry_manifest_data_release (&md);
    }
  else
    http_respond_take (req, 200, NULL, steal_pointer (&md.data), md.len);
  http_header (req, "Content-Type", md.media_type);
  http_header (req, "Docker-Content-Digest", md.digest.str);
  http_headerf (req, "ETag", "\"%s\"", md.digest.str);
}

static void
manifest_delete (struct registry_req *rq)
{
  struct registry_digest d;
  berth_error_t err = NULL;
  bool is_digest;
  int r;

  if (parse_ref (rq, &is_digest, &d, false) < 0)
    return;
  if (is_digest)
    r = registry_storage_manifest_delete (rq->reg->storage, rq->name, &d, &err);
  else
    r = registry_storage_tag_delete (rq->reg->storage, rq->name, rq->ref, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      manifest_unknown (rq);
      return;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, rq->http, &err);
      return;
    }
  http_respond_empty (rq->http, 202);
}

/* --- PUT ---------------------------------------------------------------- */

struct manifest_put
{
  struct registry *reg;
  char *name;
  char *ref;
  bool is_digest;
  struct registry_digest ref_digest;
  char *content_type;
  char **tags; /* to point at the manifest */
  bool query_tags;
  char *body;
  size_t len, alloc;
};

static void
put_free (void *ctx, bool completed)
{
  struct manifest_put *p = ctx;
  free (p->name);
  free (p->ref);
  free (p->content_type);
  strv_free (p->tags);
  free (p->body);
  free (p);
}

static void
too_large (struct http_request *req, uint64_t max)
{
  char msg[96];
  snprintf (msg, sizeof (msg), "manifests are limited to %llu bytes",
            (unsigned long long) max);
  registry_error (req, 413, E_SIZE_INVALID, msg, NULL);
}

static int
put_data (struct http_request *req, const char *data, size_t len, void *ctx)
{
  struct manifest_put *p = ctx;

  if (p->len + len > p->reg->max_manifest)
    {
      too_large (req, p->reg->max_manifest);
      return -1;
    }
  if (p->len + len > p->alloc)
    {
      p->alloc = p->alloc ? p->alloc * 2 : 4096;
      while (p->alloc < p->len + len)
        p->alloc *= 2;
      p->body = xrealloc (p->body, p->alloc);
    }
  memcpy (p->body + p->len, data, len);
  p->len += len;
  return 0;
}

/* Answer MANIFEST_BLOB_UNKNOWN for each blob or manifest M references that
 * repository NAME does not hold.  True when some are missing.  */
static bool
check_references (struct manifest_put *p, struct http_request *req,
                  const struct registry_manifest *m)
{
  json_t *errors = json_array ();
  size_t i;

  for (i = 0; i < m->n_refs && json_array_size (errors) < 100; i++)
    {
      const struct registry_descriptor *d = &m->refs[i];
      berth_error_t err = NULL;
      uint64_t size;
      bool held;

      if (!d->required)
        continue;
      if (!d->supported)
        held = false;
      else if (d->is_manifest)
        held = registry_storage_manifest_exists (p->reg->storage, p->name,
                                                 &d->digest);
      else
        held = registry_storage_blob_stat (p->reg->storage, p->name, &d->digest,
                                           &size, &err)
               == 0;
      berth_error_release (&err);
      if (!held)
        json_array_append_new (
            errors,
            registry_error_object (
                E_MANIFEST_BLOB_UNKNOWN,
                d->is_manifest ? "manifest references a manifest unknown to "
                                 "the repository"
                               : "manifest references a blob unknown to the "
                                 "repository",
                json_pack ("{s:s}", "digest", d->digest_str)));
    }
  if (json_array_size (errors) == 0)
    {
      json_decref (errors);
      return false;
    }
  registry_errors (req, 400, errors);
  return true;
}

static void
put_end (struct http_request *req, void *ctx)
{
  struct manifest_put *p = ctx;
  cleanup_manifest struct registry_manifest *m = NULL;
  struct registry_digest d;
  berth_error_t err = NULL;
  size_t i;

  registry_digest_buffer (p->is_digest ? p->ref_digest.alg : REGISTRY_SHA256,
                          p->body ? p->body : "", p->len, &d);
  if (p->is_digest && strcmp (d.str, p->ref_digest.str) != 0)
    {
      registry_error (
          req, 400, E_DIGEST_INVALID,
          "the manifest's digest does not match the reference",
          json_pack ("{s:s,s:s}", "digest", d.str, "reference", p->ref));
      return;
    }
  if (registry_manifest_parse (p->body ? p->body : "", p->len, p->content_type,
                               &m, &err)
      < 0)
    {
      registry_error (req, 400, E_MANIFEST_INVALID, err->msg, NULL);
      berth_error_release (&err);
      return;
    }
  /* The check and the store under the GC read lock, every digest the
   * manifest references noted: a collection cannot remove a blob between
   * its check here and the link that makes it referenced (gc.c).  */
  registry_gc_read_lock (p->reg->storage);
  if (check_references (p, req, m))
    {
      registry_gc_read_unlock (p->reg->storage);
      return;
    }
  if (registry_storage_manifest_put (p->reg->storage, p->name, &d,
                                     p->body ? p->body : "", p->len, m, p->tags,
                                     &err)
      < 0)
    {
      registry_gc_read_unlock (p->reg->storage);
      registry_internal_error (p->reg, req, &err);
      return;
    }
  registry_gc_note (p->reg->storage, &d);
  for (i = 0; i < m->n_refs; i++)
    if (m->refs[i].supported)
      registry_gc_note (p->reg->storage, &m->refs[i].digest);
  if (m->has_subject && m->subject.supported)
    registry_gc_note (p->reg->storage, &m->subject.digest);
  registry_gc_read_unlock (p->reg->storage);
  http_respond_empty (req, 201);
  http_headerf (req, "Location", "/v2/%s/manifests/%s", p->name, d.str);
  http_header (req, "Docker-Content-Digest", d.str);
  if (m->has_subject)
    http_header (req, "OCI-Subject", m->subject.digest.str);
  for (i = 0; p->query_tags && p->tags && p->tags[i]; i++)
    http_header (req, "OCI-Tag", p->tags[i]);
}

struct tag_list
{
  char **v;
  size_t n;
  char *bad; /* the first invalid one */
  char *why;
};

static int
collect_tag (const char *value, void *data)
{
  struct tag_list *t = data;
  berth_error_t err = NULL;

  if (registry_validate_tag (value, &err) < 0)
    {
      t->bad = xstrdup (value);
      t->why = xstrdup (err->msg);
      berth_error_release (&err);
      return 1;
    }
  if (t->n >= MAX_TAGS)
    {
      t->bad = xstrdup (value);
      t->why = xstrdup ("too many tags");
      return 1;
    }
  t->v = xrealloc (t->v, (t->n + 2) * sizeof (char *));
  t->v[t->n++] = xstrdup (value);
  t->v[t->n] = NULL;
  return 0;
}

static void
manifest_put (struct registry_req *rq)
{
  struct http_request *req = rq->http;
  int64_t clen = http_request_content_length (req);
  const char *ct = http_request_header (req, "Content-Type");
  struct tag_list tags = { 0 };
  struct manifest_put *p;
  struct registry_digest d;
  bool is_digest;

  if (parse_ref (rq, &is_digest, &d, true) < 0)
    return;
  if (clen > 0 && (uint64_t) clen > rq->reg->max_manifest)
    {
      too_large (req, rq->reg->max_manifest);
      return;
    }
  if (is_digest)
    {
      http_request_query_each (req, "tag", collect_tag, &tags);
      if (tags.bad)
        {
          registry_error (req, tags.n >= MAX_TAGS ? 414 : 400,
                          E_MANIFEST_INVALID, tags.why,
                          json_pack ("{s:s}", "tag", tags.bad));
          strv_free (tags.v);
          free (tags.bad);
          free (tags.why);
          return;
        }
    }
  else
    collect_tag (rq->ref, &tags);

  p = xmalloc0 (sizeof (*p));
  p->reg = rq->reg;
  p->name = xstrdup (rq->name);
  p->ref = xstrdup (rq->ref);
  p->is_digest = is_digest;
  p->ref_digest = d;
  p->content_type = ct ? xstrdup (ct) : NULL;
  p->tags = tags.v;
  p->query_tags = is_digest;
  http_request_on_finish (req, put_free, p);
  http_request_read_body (req, put_data, put_end, p);
}

void
registry_handle_manifest (struct registry_req *rq)
{
  const char *method = http_request_method (rq->http);

  if (strcmp (method, "PUT") == 0)
    manifest_put (rq);
  else if (strcmp (method, "DELETE") == 0)
    manifest_delete (rq);
  else
    manifest_get (rq);
}
