/* proxy.c - the pull-through cache: repositories whose name starts with a
 * configured prefix mirror an upstream registry (config.h "proxy").
 *
 * A miss fetches from upstream with a minimal HTTP/1.1 client over a plain
 * socket (http:// only, no auth, Content-Length bodies only: no libcurl
 * headers on the build machine), checks the digest, and stores what came
 * as a push would, except that a manifest's blobs are not required: they
 * are fetched when pulled.  Tags remember when they were fetched (in
 * memory): after the TTL, a pull asks upstream (HEAD) whether the tag still
 * names the same manifest; an unreachable upstream serves the local copy.
 */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "registry/digest.h"
#include "registry/gc.h"
#include "registry/manifest.h"
#include "registry/registry-internal.h"
#include "utils.h"

#define UPSTREAM_TIMEOUT_S 30
#define MAX_HEAD_BYTES (64 << 10)

/* --- Configuration ------------------------------------------------------ */

void
registry_proxy_init (struct registry *reg, const struct registry_config *cfg)
{
  size_t i;

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

/* --- A minimal HTTP/1.1 client ------------------------------------------ */

struct upstream
{
  int fd;
  unsigned status;
  char *head;             /* the status line and headers, NUL-terminated */
  int64_t content_length; /* -1: unknown */
  char *rest;             /* body bytes read with the headers */
  size_t rest_len, rest_off;
};

static void
upstream_close (struct upstream *u)
{
  if (u->fd >= 0)
    close (u->fd);
  free (u->head);
  memset (u, 0, sizeof (*u));
  u->fd = -1;
}

/* The value of header NAME of U (into BUF), or NULL. */
static const char *
upstream_header (struct upstream *u, const char *name, char *buf, size_t size)
{
  size_t n = strlen (name);
  const char *p = strstr (u->head, "\r\n");

  while (p && p[2] != '\0')
    {
      const char *line = p + 2, *end = strstr (line, "\r\n");
      if (end == NULL)
        break;
      if ((size_t) (end - line) > n && strncasecmp (line, name, n) == 0
          && line[n] == ':')
        {
          const char *v = line + n + 1;
          size_t len;
          while (*v == ' ' || *v == '\t')
            v++;
          len = (size_t) (end - v);
          while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
            len--;
          if (len >= size)
            len = size - 1;
          memcpy (buf, v, len);
          buf[len] = '\0';
          return buf;
        }
      p = end;
    }
  return NULL;
}

static int
upstream_connect (const char *hostport, int *out, berth_error_t *err)
{
  char host[256], *colon;
  const char *port = "80";
  struct addrinfo hints = { 0 }, *res = NULL, *ai;
  struct timeval tv = { UPSTREAM_TIMEOUT_S, 0 };
  int fd = -1, r;

  snprintf (host, sizeof (host), "%s", hostport);
  colon = strrchr (host, ':');
  if (colon && strchr (colon, ']') == NULL)
    {
      *colon = '\0';
      port = colon + 1;
    }
  if (host[0] == '[')
    {
      size_t n = strlen (host);
      memmove (host, host + 1, n);
      if (n >= 2 && host[n - 2] == ']')
        host[n - 2] = '\0';
    }
  hints.ai_socktype = SOCK_STREAM;
  r = getaddrinfo (host, port, &hints, &res);
  if (r != 0)
    return berth_make_error (err, EHOSTUNREACH, "upstream %s: %s", hostport,
                             gai_strerror (r));
  for (ai = res; ai; ai = ai->ai_next)
    {
      fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                   ai->ai_protocol);
      if (fd < 0)
        continue;
      setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
      setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof (tv));
      if (connect (fd, ai->ai_addr, ai->ai_addrlen) == 0)
        break;
      close (fd);
      fd = -1;
    }
  freeaddrinfo (res);
  if (fd < 0)
    return berth_make_error (err, ECONNREFUSED, "upstream %s", hostport);
  *out = fd;
  return 0;
}

/* METHOD UPSTREAM-URL/v2/NAME/KIND/REF, and read the answer's head. */
static int
upstream_request (const struct registry_proxy_config *p, const char *method,
                  const char *name, const char *kind, const char *ref,
                  const char *accept, struct upstream *u, berth_error_t *err)
{
  const char *hostport = p->upstream + 7; /* after http:// */
  const char *base = strchr (hostport, '/');
  cleanup_free char *host = NULL, *request = NULL;
  size_t len = 0, alloc = 8192;
  char *end = NULL, cl[32];
  int r;

  memset (u, 0, sizeof (*u));
  u->fd = -1;
  host = base ? xstrndup (hostport, (size_t) (base - hostport))
              : xstrdup (hostport);
  xasprintf (&request,
             "%s %s/v2/%s/%s/%s HTTP/1.1\r\nHost: %s\r\n"
             "User-Agent: berth-registry\r\n%s%s%sConnection: close\r\n\r\n",
             method, base ? base : "", name, kind, ref, host,
             accept ? "Accept: " : "", accept ? accept : "",
             accept ? "\r\n" : "");
  if ((r = upstream_connect (host, &u->fd, err)) < 0)
    return r;
  if (safe_write_all (u->fd, request, strlen (request)) < 0)
    {
      r = berth_make_error (err, errno, "upstream %s: send", host);
      upstream_close (u);
      return r;
    }
  u->head = xmalloc (alloc + 1);
  while (end == NULL)
    {
      ssize_t n;
      if (len == alloc)
        {
          if (alloc >= MAX_HEAD_BYTES)
            {
              upstream_close (u);
              return berth_make_error (err, EPROTO,
                                       "upstream %s: headers too large", host);
            }
          alloc *= 2;
          u->head = xrealloc (u->head, alloc + 1);
        }
      n = read (u->fd, u->head + len, alloc - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          r = berth_make_error (err, n < 0 ? errno : EPROTO,
                                "upstream %s: no answer", host);
          upstream_close (u);
          return r;
        }
      len += (size_t) n;
      u->head[len] = '\0';
      end = strstr (u->head, "\r\n\r\n");
    }
  if (strncmp (u->head, "HTTP/1.", 7) != 0 || strlen (u->head) < 12)
    {
      upstream_close (u);
      return berth_make_error (err, EPROTO, "upstream %s: not HTTP", host);
    }
  u->status = (unsigned) strtoul (u->head + 9, NULL, 10);
  /* The body bytes that came with the head stay after it in the buffer. */
  end[2] = '\0';
  u->rest = end + 4;
  u->rest_len = (size_t) (u->head + len - u->rest);
  u->content_length = -1;
  if (upstream_header (u, "Transfer-Encoding", cl, sizeof (cl))
      && strcasecmp (cl, "identity") != 0)
    {
      upstream_close (u);
      return berth_make_error (err, EPROTO,
                               "upstream %s: chunked answers are not "
                               "supported",
                               host);
    }
  if (upstream_header (u, "Content-Length", cl, sizeof (cl))
      && parse_int64 (cl, &u->content_length) < 0)
    u->content_length = -1;
  return 0;
}

/* Up to SIZE body bytes; 0 at the end. */
static ssize_t
upstream_read (struct upstream *u, void *buf, size_t size)
{
  ssize_t n;

  if (u->rest_off < u->rest_len)
    {
      size_t k = u->rest_len - u->rest_off;
      if (k > size)
        k = size;
      memcpy (buf, u->rest + u->rest_off, k);
      u->rest_off += k;
      return (ssize_t) k;
    }
  do
    n = read (u->fd, buf, size);
  while (n < 0 && errno == EINTR);
  return n;
}

/* The whole body (at most MAX bytes, and exactly Content-Length). */
static int
upstream_body (struct upstream *u, uint64_t max, char **out, size_t *out_len,
               berth_error_t *err)
{
  size_t len = 0, alloc = 4096;
  char *buf = xmalloc (alloc);

  for (;;)
    {
      ssize_t n;
      if (len == alloc)
        {
          alloc *= 2;
          buf = xrealloc (buf, alloc);
        }
      n = upstream_read (u, buf + len, alloc - len);
      if (n < 0)
        {
          free (buf);
          return berth_make_error (err, errno, "upstream: read");
        }
      if (n == 0)
        break;
      len += (size_t) n;
      if (len > max)
        {
          free (buf);
          return berth_make_error (err, EFBIG, "upstream: manifest too large");
        }
    }
  if (u->content_length >= 0 && (uint64_t) u->content_length != len)
    {
      free (buf);
      return berth_make_error (err, EPROTO, "upstream: truncated answer");
    }
  *out = buf;
  *out_len = len;
  return 0;
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
  struct upstream u;
  char dcd[REGISTRY_DIGEST_STRLEN];
  int r;

  r = upstream_request (p, "HEAD", upstream_name, "manifests", tag, accept, &u,
                        err);
  if (r < 0)
    return r;
  if (u.status == 200
      && upstream_header (&u, "Docker-Content-Digest", dcd, sizeof (dcd))
      && strcmp (dcd, have->str) == 0)
    {
      upstream_close (&u);
      tag_fetched (reg, name, tag);
      return 0;
    }
  upstream_close (&u);
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
  char dcd[REGISTRY_DIGEST_STRLEN], ct[160];
  struct registry_digest d, claimed;
  struct upstream u;
  char *tags[2] = { NULL, NULL };
  size_t len = 0, i;
  int r;

  r = upstream_request (p, "GET", upstream_name, "manifests", ref, accept, &u,
                        err);
  if (r < 0)
    return r;
  if (u.status == 404)
    {
      upstream_close (&u);
      return berth_make_error (err, ENOENT, "upstream: manifest unknown");
    }
  if (u.status != 200)
    {
      r = berth_make_error (err, EPROTO, "upstream: GET manifest %s: %u", ref,
                            u.status);
      upstream_close (&u);
      return r;
    }
  if (upstream_header (&u, "Content-Type", ct, sizeof (ct)) == NULL)
    ct[0] = '\0';
  if (upstream_header (&u, "Docker-Content-Digest", dcd, sizeof (dcd)) == NULL)
    dcd[0] = '\0';
  r = upstream_body (&u, reg->max_manifest, &body, &len, err);
  upstream_close (&u);
  if (r < 0)
    return r;
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

int
registry_proxy_fetch_blob (struct registry *reg,
                           const struct registry_proxy_config *p,
                           const char *name, const char *upstream_name,
                           const struct registry_digest *d, berth_error_t *err)
{
  struct registry_upload *up = NULL;
  struct upstream u;
  uint64_t got = 0;
  char buf[65536];
  int r;

  r = upstream_request (p, "GET", upstream_name, "blobs", d->str, NULL, &u,
                        err);
  if (r < 0)
    return r;
  if (u.status != 200)
    {
      r = u.status == 404
              ? berth_make_error (err, ENOENT, "upstream: blob unknown")
              : berth_make_error (err, EPROTO, "upstream: GET blob %s: %u",
                                  d->str, u.status);
      upstream_close (&u);
      return r;
    }
  r = registry_upload_start (reg->storage, name, d->alg, &up, err);
  if (r == 0)
    r = registry_upload_begin (reg->storage, up, err);
  if (r < 0)
    {
      registry_upload_release (reg->storage, up);
      upstream_close (&u);
      return r;
    }
  for (;;)
    {
      ssize_t n = upstream_read (&u, buf, sizeof (buf));
      if (n < 0)
        {
          r = berth_make_error (err, errno, "upstream: read");
          break;
        }
      if (n == 0)
        break;
      got += (uint64_t) n;
      if ((r = registry_upload_write (up, buf, (size_t) n, err)) < 0)
        break;
    }
  if (r == 0 && u.content_length >= 0 && got != (uint64_t) u.content_length)
    r = berth_make_error (err, EPROTO, "upstream: truncated blob");
  if (r == 0)
    r = registry_upload_flush (up, err);
  upstream_close (&u);
  if (r < 0)
    {
      registry_upload_rollback (up);
      registry_upload_end (up);
      registry_upload_cancel (reg->storage, up, NULL);
      registry_upload_release (reg->storage, up);
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
