/* proxy.c - the pull-through cache: repositories whose name starts with a
 * configured prefix mirror an upstream registry (config.h "proxy").
 *
 * A miss fetches from upstream with libcurl (loaded at start: curl-dl.h;
 * http:// or https://, no auth), checks the digest, and stores what came as
 * a push would, except that a manifest's blobs are not required: they are
 * fetched when pulled.  Tags remember when they were fetched (in memory):
 * after the TTL, a pull asks upstream (HEAD) whether the tag still names the
 * same manifest; an unreachable upstream serves the local copy.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "curl-dl.h"
#include "registry/digest.h"
#include "registry/gc.h"
#include "registry/manifest.h"
#include "registry/registry-internal.h"
#include "utils.h"

#define UPSTREAM_TIMEOUT_S 30

/* --- Configuration ------------------------------------------------------ */

int
registry_proxy_init (struct registry *reg, const struct registry_config *cfg,
                     berth_error_t *err)
{
  size_t i;

  /* Only a server with a pull-through cache maps libcurl and its
   * dependencies: the others keep their memory.  */
  if (cfg->n_proxies > 0 && berth_curl_load (err) < 0)
    return berth_error_wrap (err, "pull-through cache needs libcurl");
  pthread_mutex_init (&reg->proxy_lock, NULL);
  reg->tag_times = json_object ();
  reg->n_proxies = cfg->n_proxies;
  reg->proxies = xmalloc0 ((cfg->n_proxies + 1) * sizeof (*reg->proxies));
  for (i = 0; i < cfg->n_proxies; i++)
    {
      reg->proxies[i] = cfg->proxies[i];
      reg->proxies[i].prefix = xstrdup (cfg->proxies[i].prefix);
      reg->proxies[i].upstream = xstrdup (cfg->proxies[i].upstream);
    }
  return 0;
}

void
registry_proxy_release (struct registry *reg)
{
  size_t i;

  for (i = 0; i < reg->n_proxies; i++)
    {
      free (reg->proxies[i].prefix);
      free (reg->proxies[i].upstream);
    }
  free (reg->proxies);
  json_decref (reg->tag_times);
  pthread_mutex_destroy (&reg->proxy_lock);
}

const struct registry_proxy_config *
registry_proxy_match (struct registry *reg, const char *name,
                      const char **upstream_name)
{
  size_t i;

  for (i = 0; i < reg->n_proxies; i++)
    {
      const struct registry_proxy_config *p = &reg->proxies[i];
      size_t n = strlen (p->prefix);

      if (strncmp (name, p->prefix, n) != 0)
        continue;
      if (p->strip_prefix && name[n] == '\0')
        continue;
      *upstream_name = p->strip_prefix ? name + n : name;
      return p;
    }
  return NULL;
}

/* --- The upstream client (libcurl) ------------------------------------- */

/* Loaded by registry_proxy_init (curl-dl.h), before any request.  */
static const struct berth_curl *const curl = &berth_curl;

struct upstream;
typedef int (*upstream_sink_fn) (struct upstream *u, const char *buf, size_t n,
                                 berth_error_t *err);

struct upstream
{
  unsigned status;                  /* of the last answer's status line */
  char ct[160];                     /* Content-Type, "" if none */
  char dcd[REGISTRY_DIGEST_STRLEN]; /* Docker-Content-Digest, "" if none */
  upstream_sink_fn sink; /* gets the body of a 200 answer; NULL: dropped */
  int sink_r;            /* < 0: the sink failed (sink_err) */
  berth_error_t sink_err;
  /* For upstream_body_sink: the whole body, at most max bytes. */
  char *body;
  size_t len, alloc;
  uint64_t max;
  /* For the blob sink. */
  struct registry *reg;
  const char *name;
  const struct registry_digest *digest;
  struct registry_upload *up;
};

/* Copy the value of header line LINE (LEN bytes) into BUF if it is NAME. */
static bool
header_value (const char *line, size_t len, const char *name, char *buf,
              size_t size)
{
  size_t n = strlen (name), vlen;
  const char *v;

  if (len <= n || strncasecmp (line, name, n) != 0 || line[n] != ':')
    return false;
  v = line + n + 1;
  vlen = len - n - 1;
  while (vlen > 0 && (*v == ' ' || *v == '\t'))
    v++, vlen--;
  while (vlen > 0
         && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || v[vlen - 1] == '\r'
             || v[vlen - 1] == '\n'))
    vlen--;
  if (vlen >= size)
    vlen = size - 1;
  memcpy (buf, v, vlen);
  buf[vlen] = '\0';
  return true;
}

static size_t
upstream_header_cb (char *line, size_t size, size_t nitems, void *data)
{
  struct upstream *u = data;
  size_t len = size * nitems;

  if (len > 5 && strncmp (line, "HTTP/", 5) == 0)
    {
      /* A new answer (after a 1xx, say): forget the previous one. */
      const char *sp = memchr (line, ' ', len);
      u->status = sp ? (unsigned) strtoul (sp + 1, NULL, 10) : 0;
      u->ct[0] = '\0';
      u->dcd[0] = '\0';
      return len;
    }
  if (!header_value (line, len, "Content-Type", u->ct, sizeof (u->ct)))
    header_value (line, len, "Docker-Content-Digest", u->dcd, sizeof (u->dcd));
  return len;
}

static size_t
upstream_write_cb (char *buf, size_t size, size_t nmemb, void *data)
{
  struct upstream *u = data;
  size_t n = size * nmemb;

  if (u->status != 200 || u->sink == NULL)
    return n;
  u->sink_r = u->sink (u, buf, n, &u->sink_err);
  return u->sink_r < 0 ? 0 : n;
}

/* Keeps the whole body in U->body. */
static int
upstream_body_sink (struct upstream *u, const char *buf, size_t n,
                    berth_error_t *err)
{
  if ((uint64_t) (u->len + n) > u->max)
    return berth_make_error (err, EFBIG, "upstream: manifest too large");
  if (u->len + n > u->alloc)
    {
      while (u->len + n > u->alloc)
        u->alloc = u->alloc ? u->alloc * 2 : 4096;
      u->body = xrealloc (u->body, u->alloc);
    }
  memcpy (u->body + u->len, buf, n);
  u->len += n;
  return 0;
}

/* METHOD UPSTREAM-URL/v2/NAME/KIND/REF; a 200 answer's body goes to
 * U->sink.  Fails only when no complete answer came (or the sink failed). */
static int
upstream_request (const struct registry_proxy_config *p, const char *method,
                  const char *name, const char *kind, const char *ref,
                  const char *accept, struct upstream *u, berth_error_t *err)
{
  cleanup_free char *url = NULL, *accept_h = NULL;
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  CURLcode res;
  CURL *c;
  int r = 0;

  u->status = 0;
  u->ct[0] = '\0';
  u->dcd[0] = '\0';
  u->sink_r = 0;
  u->sink_err = NULL;
  xasprintf (&url, "%s/v2/%s/%s/%s", p->upstream, name, kind, ref);
  c = curl->easy_init ();
  if (c == NULL)
    return berth_make_error (err, ENOMEM, "upstream: curl_easy_init");
  if (accept)
    {
      xasprintf (&accept_h, "Accept: %s", accept);
      headers = curl->slist_append (headers, accept_h);
    }
  curl->easy_setopt (c, CURLOPT_URL, url);
  curl->easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
  /* Registries commonly redirect blob GETs to their storage; the digest
   * check makes wherever the bytes come from safe.  */
  curl->easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  curl->easy_setopt (c, CURLOPT_MAXREDIRS, 5L);
  curl->easy_setopt (c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl->easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl->easy_setopt (c, CURLOPT_USERAGENT, "berth-registry");
  curl->easy_setopt (c, CURLOPT_ERRORBUFFER, errbuf);
  curl->easy_setopt (c, CURLOPT_CONNECTTIMEOUT, (long) UPSTREAM_TIMEOUT_S);
  curl->easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl->easy_setopt (c, CURLOPT_LOW_SPEED_TIME, (long) UPSTREAM_TIMEOUT_S);
  curl->easy_setopt (c, CURLOPT_HEADERFUNCTION, upstream_header_cb);
  curl->easy_setopt (c, CURLOPT_HEADERDATA, u);
  curl->easy_setopt (c, CURLOPT_WRITEFUNCTION, upstream_write_cb);
  curl->easy_setopt (c, CURLOPT_WRITEDATA, u);
  if (headers)
    curl->easy_setopt (c, CURLOPT_HTTPHEADER, headers);
  if (strcmp (method, "HEAD") == 0)
    curl->easy_setopt (c, CURLOPT_NOBODY, 1L);
  res = curl->easy_perform (c);
  if (u->sink_r < 0)
    {
      r = u->sink_r;
      if (err)
        *err = u->sink_err;
      else
        berth_error_release (&u->sink_err);
      u->sink_err = NULL;
    }
  else if (res != CURLE_OK)
    {
      int e;
      switch (res)
        {
        case CURLE_COULDNT_RESOLVE_HOST:
          e = EHOSTUNREACH;
          break;
        case CURLE_COULDNT_CONNECT:
          e = ECONNREFUSED;
          break;
        case CURLE_OPERATION_TIMEDOUT:
          e = ETIMEDOUT;
          break;
        default:
          e = EPROTO;
          break;
        }
      if (res == CURLE_PARTIAL_FILE)
        r = berth_make_error (err, e, "upstream: truncated answer");
      else
        r = berth_make_error (err, e, "upstream %s: %s", p->upstream,
                              errbuf[0] ? errbuf : curl->easy_strerror (res));
    }
  curl->easy_cleanup (c);
  curl->slist_free_all (headers);
  return r;
}

/* --- Tags' freshness ---------------------------------------------------- */

static char *
tag_key (const char *name, const char *tag)
{
  char *k;
  xasprintf (&k, "%s:%s", name, tag);
  return k;
}

static void
tag_fetched (struct registry *reg, const char *name, const char *tag)
{
  cleanup_free char *k = tag_key (name, tag);

  pthread_mutex_lock (&reg->proxy_lock);
  json_object_set_new (reg->tag_times, k, json_integer (time (NULL)));
  pthread_mutex_unlock (&reg->proxy_lock);
}

bool
registry_proxy_tag_fresh (struct registry *reg,
                          const struct registry_proxy_config *p,
                          const char *name, const char *tag)
{
  cleanup_free char *k = tag_key (name, tag);
  json_int_t t = -1;
  json_t *v;

  pthread_mutex_lock (&reg->proxy_lock);
  v = json_object_get (reg->tag_times, k);
  if (v)
    t = json_integer_value (v);
  pthread_mutex_unlock (&reg->proxy_lock);
  return t >= 0 && p->ttl_seconds > 0 && time (NULL) - t < p->ttl_seconds;
}

int
registry_proxy_revalidate (struct registry *reg,
                           const struct registry_proxy_config *p,
                           const char *name, const char *upstream_name,
                           const char *tag, const struct registry_digest *have,
                           const char *accept, berth_error_t *err)
{
  struct upstream u = { 0 };
  int r;

  r = upstream_request (p, "HEAD", upstream_name, "manifests", tag, accept, &u,
                        err);
  if (r < 0)
    return r;
  if (u.status == 200 && u.dcd[0] && strcmp (u.dcd, have->str) == 0)
    {
      tag_fetched (reg, name, tag);
      return 0;
    }
  return 1; /* changed, gone, or unknown: fetch it */
}

/* --- Manifests ---------------------------------------------------------- */

int
registry_proxy_fetch_manifest (struct registry *reg,
                               const struct registry_proxy_config *p,
                               const char *name, const char *upstream_name,
                               const char *ref,
                               const struct registry_digest *want,
                               const char *accept, berth_error_t *err)
{
  cleanup_manifest struct registry_manifest *m = NULL;
  cleanup_free char *body = NULL;
  const char *ct, *dcd;
  struct registry_digest d, claimed;
  struct upstream u = { 0 };
  char *tags[2] = { NULL, NULL };
  size_t len = 0, i;
  int r;

  u.sink = upstream_body_sink;
  u.max = reg->max_manifest;
  r = upstream_request (p, "GET", upstream_name, "manifests", ref, accept, &u,
                        err);
  body = u.body;
  len = u.len;
  if (r < 0)
    return r;
  if (u.status == 404)
    return berth_make_error (err, ENOENT, "upstream: manifest unknown");
  if (u.status != 200)
    return berth_make_error (err, EPROTO, "upstream: GET manifest %s: %u", ref,
                             u.status);
  if (body == NULL)
    body = xmalloc (1);
  ct = u.ct;
  dcd = u.dcd;
  registry_digest_buffer (want ? want->alg : REGISTRY_SHA256, body, len, &d);
  if (want && strcmp (d.str, want->str) != 0)
    return berth_make_error (err, EBADMSG, "upstream sent manifest %s for %s",
                             d.str, want->str);
  if (dcd[0])
    {
      berth_error_t e2 = NULL;
      struct registry_digest h;
      if (registry_digest_parse (dcd, &claimed, &e2) < 0)
        {
          r = berth_make_error (
              err, EBADMSG, "upstream's Docker-Content-Digest: %s", e2->msg);
          berth_error_release (&e2);
          return r;
        }
      registry_digest_buffer (claimed.alg, body, len, &h);
      if (strcmp (h.str, claimed.str) != 0)
        return berth_make_error (err, EBADMSG,
                                 "upstream said %s, its manifest is %s",
                                 claimed.str, h.str);
    }
  if (registry_manifest_parse (body, len, ct[0] ? ct : NULL, &m, err) < 0)
    return berth_error_wrap (err, "upstream manifest");
  if (!want)
    tags[0] = (char *) ref;
  registry_gc_read_lock (reg->storage);
  r = registry_storage_manifest_put (reg->storage, name, &d, body, len, m, tags,
                                     err);
  if (r == 0)
    {
      registry_gc_note (reg->storage, &d);
      for (i = 0; i < m->n_refs; i++)
        if (m->refs[i].supported)
          registry_gc_note (reg->storage, &m->refs[i].digest);
    }
  registry_gc_read_unlock (reg->storage);
  if (r == 0 && !want)
    tag_fetched (reg, name, ref);
  return r;
}

/* --- Blobs -------------------------------------------------------------- */

/* Starts the upload session of U's blob. */
static int
blob_upload_open (struct upstream *u, berth_error_t *err)
{
  int r;

  r = registry_upload_start (u->reg->storage, u->name, u->digest->alg, &u->up,
                             err);
  if (r == 0)
    r = registry_upload_begin (u->reg->storage, u->up, err);
  if (r < 0)
    {
      registry_upload_release (u->reg->storage, u->up);
      u->up = NULL;
    }
  return r;
}

/* Streams a blob's body into its upload session (hashed as written). */
static int
upstream_blob_sink (struct upstream *u, const char *buf, size_t n,
                    berth_error_t *err)
{
  int r;

  if (u->up == NULL && (r = blob_upload_open (u, err)) < 0)
    return r;
  return registry_upload_write (u->up, buf, n, err);
}

int
registry_proxy_fetch_blob (struct registry *reg,
                           const struct registry_proxy_config *p,
                           const char *name, const char *upstream_name,
                           const struct registry_digest *d, berth_error_t *err)
{
  struct registry_upload *up;
  struct upstream u = { 0 };
  bool opened = false;
  int r;

  u.sink = upstream_blob_sink;
  u.reg = reg;
  u.name = name;
  u.digest = d;
  r = upstream_request (p, "GET", upstream_name, "blobs", d->str, NULL, &u,
                        err);
  if (r == 0 && u.status != 200)
    r = u.status == 404
            ? berth_make_error (err, ENOENT, "upstream: blob unknown")
            : berth_make_error (err, EPROTO, "upstream: GET blob %s: %u",
                                d->str, u.status);
  opened = u.up != NULL;
  if (r == 0 && !opened)
    {
      /* An empty body: no write came. */
      if ((r = blob_upload_open (&u, err)) < 0)
        return r;
      opened = true;
    }
  up = u.up;
  if (r == 0)
    r = registry_upload_flush (up, err);
  if (r < 0)
    {
      if (opened)
        {
          registry_upload_rollback (up);
          registry_upload_end (up);
          registry_upload_cancel (reg->storage, up, NULL);
          registry_upload_release (reg->storage, up);
        }
      return r;
    }
  registry_upload_end (up);
  r = registry_upload_commit (reg->storage, up, d, err);
  registry_upload_release (reg->storage, up);
  return r;
}

bool
registry_proxy_answer_failure (struct registry *reg, struct http_request *req,
                               int r, berth_error_t *err)
{
  const char *msg = *err && (*err)->msg ? (*err)->msg : "upstream failed";

  if (r == -ENOENT)
    {
      berth_error_release (err);
      return false;
    }
  http_server_log (reg->server, HTTP_LOG_WARN, "%s %s: %s",
                   http_request_method (req), http_request_path (req), msg);
  if (r == -EBADMSG)
    registry_error (req, 502, E_DIGEST_INVALID,
                    "upstream's content does not match its digest",
                    json_pack ("{s:s}", "upstream", msg));
  else
    registry_error (req, 502, "UNKNOWN", "upstream registry failed",
                    json_pack ("{s:s}", "upstream", msg));
  berth_error_release (err);
  return true;
}
