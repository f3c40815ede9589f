/* proxy.c - the pull-through cache: repositories whose name starts with a
 * configured prefix mirror an upstream registry (config.h "proxy").
 *
 * A miss fetches from upstream with libcurl (loaded at start: curl-dl.h;
 * http:// or https://, Basic or token credentials when upstream asks),
 * checks the digest, and stores what came as a push would, except that a
 * manifest's blobs are not required: they are fetched when pulled.  Tags
 * remember when they were fetched (in memory): after the TTL, a pull asks
 * upstream (HEAD) whether the tag still names the same manifest; an
 * unreachable upstream serves the local copy.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "curl-dl.h"
#include "json.h"
#include "registry/digest.h"
#include "registry/gc.h"
#include "registry/manifest.h"
#include "registry/registry-internal.h"
#include "utils.h"

#define UPSTREAM_TIMEOUT_S 30

/* --- Configuration ------------------------------------------------------ */

/* A token from an upstream's token service, for one scope. */
struct proxy_token
{
  struct proxy_token *next;
  size_t proxy; /* index in reg->proxies */
  char *scope;
  char *token;
  uint64_t expires_ns; /* CLOCK_MONOTONIC */
};

struct flight;

struct registry_proxy_state
{
  struct proxy_token *tokens;
  struct flight *flights; /* fetches in progress */
  /* Per proxy: upstream answered Basic credentials, so they go with every
   * request (an atomic flag).  */
  bool *basic;
};

static void
free_secret (char *s)
{
  if (s)
    explicit_bzero (s, strlen (s));
  free (s);
}

static void
token_free (struct proxy_token *t)
{
  free (t->scope);
  free_secret (t->token);
  free (t);
}

/* The password of proxy[I]: in the config, or its file's first line. */
static int
proxy_password (const struct registry_proxy_config *c, size_t i, char **out,
                berth_error_t *err)
{
  size_t len = 0;
  char *pw = NULL;

  if (c->password_file == NULL)
    {
      *out = c->password ? xstrdup (c->password) : NULL;
      return 0;
    }
  if (read_file (c->password_file, 64 << 10, &pw, &len, err) < 0)
    return berth_error_wrap (err, "proxy[%zu].password_file", i);
  while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
    pw[--len] = '\0';
  if (strlen (pw) != len || strpbrk (pw, "\r\n"))
    {
      free_secret (pw);
      return berth_make_invalid (err,
                                 "proxy[%zu].password_file: `%s`: one line "
                                 "of text expected",
                                 i, c->password_file);
    }
  *out = pw;
  return 0;
}

int
registry_proxy_init (struct registry *reg, const struct registry_config *cfg,
                     berth_error_t *err)
{
  size_t i;
  int r;

  /* Only a server with a pull-through cache maps libcurl and its
   * dependencies: the others keep their memory.  */
  if (cfg->n_proxies > 0 && berth_curl_load (err) < 0)
    return berth_error_wrap (err, "pull-through cache needs libcurl");
  pthread_mutex_init (&reg->proxy_lock, NULL);
  reg->tag_times = json_object ();
  reg->proxy_state = xmalloc0 (sizeof (*reg->proxy_state));
  reg->proxy_state->basic = xmalloc0 (cfg->n_proxies + 1);
  reg->n_proxies = cfg->n_proxies;
  reg->proxies = xmalloc0 ((cfg->n_proxies + 1) * sizeof (*reg->proxies));
  for (i = 0; i < cfg->n_proxies; i++)
    {
      struct registry_proxy_config *x = &reg->proxies[i];

      x->prefix = xstrdup (cfg->proxies[i].prefix);
      x->upstream = xstrdup (cfg->proxies[i].upstream);
      x->strip_prefix = cfg->proxies[i].strip_prefix;
      x->ttl_seconds = cfg->proxies[i].ttl_seconds;
      if (cfg->proxies[i].username)
        x->username = xstrdup (cfg->proxies[i].username);
      r = proxy_password (&cfg->proxies[i], i, &x->password, err);
      if (r < 0)
        {
          registry_proxy_release (reg);
          return r;
        }
    }
  return 0;
}

void
registry_proxy_release (struct registry *reg)
{
  struct proxy_token *t, *next;
  size_t i;

  for (i = 0; i < reg->n_proxies; i++)
    {
      free (reg->proxies[i].prefix);
      free (reg->proxies[i].upstream);
      free (reg->proxies[i].username);
      free_secret (reg->proxies[i].password);
    }
  free (reg->proxies);
  for (t = reg->proxy_state->tokens; t; t = next)
    {
      next = t->next;
      token_free (t);
    }
  free (reg->proxy_state->basic);
  free (reg->proxy_state);
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
  char bearer[2048];     /* a Bearer challenge's parameters, "" if none */
  bool basic;            /* a Basic challenge came */
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

/* How a request authenticates: with a token, or with the Basic
 * credentials of a proxy, or not at all.  */
struct upstream_auth
{
  const char *bearer;
  const struct registry_proxy_config *basic;
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
  char v[sizeof (u->bearer) + 7]; /* "Bearer " and the parameters */

  if (len > 5 && strncmp (line, "HTTP/", 5) == 0)
    {
      /* A new answer (after a 1xx or a redirect): forget the previous
       * one.  */
      const char *sp = memchr (line, ' ', len);
      u->status = sp ? (unsigned) strtoul (sp + 1, NULL, 10) : 0;
      u->ct[0] = '\0';
      u->dcd[0] = '\0';
      u->bearer[0] = '\0';
      u->basic = false;
      return len;
    }
  if (header_value (line, len, "Content-Type", u->ct, sizeof (u->ct))
      || header_value (line, len, "Docker-Content-Digest", u->dcd,
                       sizeof (u->dcd))
      || !header_value (line, len, "WWW-Authenticate", v, sizeof (v)))
    return len;
  if (strncasecmp (v, "Bearer ", 7) == 0)
    snprintf (u->bearer, sizeof (u->bearer), "%s", v + 7);
  else if (strncasecmp (v, "Basic", 5) == 0 && (v[5] == ' ' || v[5] == '\0'))
    u->basic = true;
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
    return berth_make_error (err, EFBIG, "upstream: answer too large");
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

static int
curl_failure (CURLcode res, const char *what, const char *errbuf,
              berth_error_t *err)
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
    return berth_make_error (err, e, "%s: truncated answer", what);
  return berth_make_error (err, e, "%s: %s", what,
                           errbuf[0] ? errbuf : curl->easy_strerror (res));
}

/* One exchange: METHOD URL with AUTH; a 200 answer's body goes to
 * U->sink.  WHAT names the server in errors.  Fails only when no complete
 * answer came (or the sink failed).  */
static int
upstream_perform (const char *method, const char *url, const char *accept,
                  const struct upstream_auth *auth, const char *what,
                  struct upstream *u, berth_error_t *err)
{
  cleanup_free char *accept_h = NULL, *auth_h = NULL;
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  CURLcode res;
  CURL *c;
  int r = 0;

  u->status = 0;
  u->ct[0] = '\0';
  u->dcd[0] = '\0';
  u->bearer[0] = '\0';
  u->basic = false;
  u->sink_r = 0;
  u->sink_err = NULL;
  c = curl->easy_init ();
  if (c == NULL)
    return berth_make_error (err, ENOMEM, "upstream: curl_easy_init");
  if (accept)
    {
      xasprintf (&accept_h, "Accept: %s", accept);
      headers = curl->slist_append (headers, accept_h);
    }
  if (auth->bearer)
    {
      /* libcurl drops a custom Authorization on a redirect to another
       * host (blob storage), as it does its own credentials.  */
      xasprintf (&auth_h, "Authorization: Bearer %s", auth->bearer);
      headers = curl->slist_append (headers, auth_h);
    }
  else if (auth->basic)
    {
      curl->easy_setopt (c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      curl->easy_setopt (c, CURLOPT_USERNAME, auth->basic->username);
      curl->easy_setopt (c, CURLOPT_PASSWORD, auth->basic->password);
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
    r = curl_failure (res, what, errbuf, err);
  curl->easy_cleanup (c);
  curl->slist_free_all (headers);
  if (auth_h)
    explicit_bzero (auth_h, strlen (auth_h));
  return r;
}

/* --- Credentials: Basic, and Docker's token flow --------------------------
 * A request goes out with what worked last time: a cached token for its
 * scope, or Basic credentials once upstream asked for them, else nothing.
 * A 401 is answered once: a Bearer challenge gets a token from its realm
 * (with the Basic credentials if configured, anonymously otherwise), kept
 * per upstream and scope until its expires_in; a Basic challenge gets the
 * credentials.  Secrets never go into messages.  */

#define TOKEN_MAX_BYTES (64 << 10)
#define TOKEN_DEFAULT_SECONDS 60 /* the token spec's default expires_in */

/* A challenge's parameters (RFC 7235 auth-params). */
struct challenge
{
  char realm[1024];
  char service[256];
  char scope[512];
  char error[64];
};

/* Copies a token or quoted-string at *S into VAL (SIZE bytes); false when
 * malformed or too long.  */
static bool
challenge_value (const char **s, char *val, size_t size)
{
  const char *p = *s;
  size_t n = 0;
  bool quoted = *p == '"';

  if (quoted)
    p++;
  for (; *p && (quoted ? *p != '"' : *p != ',' && *p != ' '); p++)
    {
      if (quoted && *p == '\\' && p[1])
        p++;
      if (n + 1 >= size)
        return false;
      val[n++] = *p;
    }
  if (quoted && *p++ != '"')
    return false;
  val[n] = '\0';
  *s = p;
  return true;
}

/* Parses "realm=\"…\",service=\"…\",scope=\"…\"" (any order, unknown
 * parameters ignored); the realm is required.  */
static bool
parse_challenge (const char *s, struct challenge *ch)
{
  memset (ch, 0, sizeof (*ch));
  for (;;)
    {
      char key[32], val[sizeof (ch->realm)], *dst = NULL;
      size_t kn, size = 0;

      s += strspn (s, " \t,");
      if (*s == '\0')
        break;
      kn = strcspn (s, "= \t,");
      if (kn == 0 || kn >= sizeof (key))
        return false;
      memcpy (key, s, kn);
      key[kn] = '\0';
      s += kn;
      s += strspn (s, " \t");
      if (*s++ != '=')
        return false;
      s += strspn (s, " \t");
      if (!challenge_value (&s, val, sizeof (val)))
        return false;
      if (strcasecmp (key, "realm") == 0)
        dst = ch->realm, size = sizeof (ch->realm);
      else if (strcasecmp (key, "service") == 0)
        dst = ch->service, size = sizeof (ch->service);
      else if (strcasecmp (key, "scope") == 0)
        dst = ch->scope, size = sizeof (ch->scope);
      else if (strcasecmp (key, "error") == 0)
        dst = ch->error, size = sizeof (ch->error);
      if (dst && strlen (val) >= size)
        return false;
      if (dst)
        strcpy (dst, val);
    }
  return ch->realm[0] != '\0';
}

/* Appends "&KEY=VALUE" (the first time "?" when URL has none), VALUE
 * percent-encoded.  */
static void
url_add_param (char **url, const char *key, const char *value)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen (*url), i;
  char *out;

  out = xmalloc (n + strlen (key) + 3 * strlen (value) + 3);
  memcpy (out, *url, n);
  n += sprintf (out + n, "%c%s=", strchr (*url, '?') ? '&' : '?', key);
  for (i = 0; value[i]; i++)
    {
      unsigned char ch = (unsigned char) value[i];
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
          || (ch >= '0' && ch <= '9') || strchr ("-._~", ch))
        out[n++] = (char) ch;
      else
        {
          out[n++] = '%';
          out[n++] = hex[ch >> 4];
          out[n++] = hex[ch & 15];
        }
    }
  out[n] = '\0';
  free (*url);
  *url = out;
}

static size_t
proxy_index (struct registry *reg, const struct registry_proxy_config *p)
{
  return (size_t) (p - reg->proxies);
}

/* A copy of the cached token of proxy P for SCOPE, or NULL.  */
static char *
token_lookup (struct registry *reg, const struct registry_proxy_config *p,
              const char *scope)
{
  size_t idx = proxy_index (reg, p);
  uint64_t now = now_ns ();
  struct proxy_token *t;
  char *token = NULL;

  pthread_mutex_lock (&reg->proxy_lock);
  for (t = reg->proxy_state->tokens; t; t = t->next)
    if (t->proxy == idx && strcmp (t->scope, scope) == 0 && now < t->expires_ns)
      {
        token = xstrdup (t->token);
        break;
      }
  pthread_mutex_unlock (&reg->proxy_lock);
  return token;
}

/* Keeps TOKEN for SCOPE until SECONDS from now, replacing the old one and
 * dropping expired ones.  */
static void
token_store (struct registry *reg, const struct registry_proxy_config *p,
             const char *scope, const char *token, int64_t seconds)
{
  size_t idx = proxy_index (reg, p);
  uint64_t now = now_ns ();
  struct proxy_token **pp, *t = xmalloc0 (sizeof (*t));

  t->proxy = idx;
  t->scope = xstrdup (scope);
  t->token = xstrdup (token);
  t->expires_ns = now + (uint64_t) seconds * 1000000000ull;
  pthread_mutex_lock (&reg->proxy_lock);
  for (pp = &reg->proxy_state->tokens; *pp;)
    {
      struct proxy_token *o = *pp;
      if (now >= o->expires_ns
          || (o->proxy == idx && strcmp (o->scope, scope) == 0))
        {
          *pp = o->next;
          token_free (o);
        }
      else
        pp = &o->next;
    }
  t->next = reg->proxy_state->tokens;
  reg->proxy_state->tokens = t;
  pthread_mutex_unlock (&reg->proxy_lock);
}

/* The token out of a token service's answer: "token" (or OAuth2's
 * "access_token") and "expires_in".  */
static int
token_parse (const char *body, size_t len, const char *realm, char **token,
             int64_t *seconds, berth_error_t *err)
{
  cleanup_json json_t *j = json_loadb (body, len, 0, NULL);
  json_t *t = NULL, *e = NULL;
  const char *s;

  if (json_is_object (j))
    {
      t = json_object_get (j, "token");
      if (!json_is_string (t) || *json_string_value (t) == '\0')
        t = json_object_get (j, "access_token");
      e = json_object_get (j, "expires_in");
    }
  if (!json_is_string (t) || *json_string_value (t) == '\0')
    return berth_make_error (err, EPROTO, "token service %s: no token", realm);
  /* It goes into a header line.  */
  for (s = json_string_value (t); *s; s++)
    if (*s <= ' ' || *s == 0x7f)
      return berth_make_error (err, EPROTO, "token service %s: malformed token",
                               realm);
  *seconds = TOKEN_DEFAULT_SECONDS;
  if (json_is_integer (e) && json_integer_value (e) > 0)
    *seconds = json_integer_value (e) < INT32_MAX ? json_integer_value (e)
                                                  : INT32_MAX;
  *token = xstrdup (json_string_value (t));
  return 0;
}

/* Get a token for challenge CH from its realm, and cache it.  */
static int
token_fetch (struct registry *reg, const struct registry_proxy_config *p,
             const struct challenge *ch, char **token, berth_error_t *err)
{
  struct upstream_auth auth = { NULL, p->username ? p : NULL };
  cleanup_free char *url = xstrdup (ch->realm), *body = NULL;
  struct upstream u = { 0 };
  int64_t seconds = TOKEN_DEFAULT_SECONDS;
  int r;

  if (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0)
    return berth_make_error (err, EPROTO,
                             "upstream %s: the token realm is not an "
                             "http(s) URL",
                             p->upstream);
  if (ch->service[0])
    url_add_param (&url, "service", ch->service);
  if (ch->scope[0])
    url_add_param (&url, "scope", ch->scope);
  u.sink = upstream_body_sink;
  u.max = TOKEN_MAX_BYTES;
  r = upstream_perform ("GET", url, NULL, &auth, ch->realm, &u, err);
  body = u.body;
  if (r < 0)
    return berth_error_wrap (err, "token service");
  if ((u.status == 401 || u.status == 403) && p->username)
    return berth_make_error (err, EACCES,
                             "token service %s refused the credentials of "
                             "user `%s` (%u)",
                             ch->realm, p->username, u.status);
  if (u.status == 401 || u.status == 403)
    return berth_make_error (err, EACCES,
                             "token service %s refused an anonymous token "
                             "(%u); configure username and password",
                             ch->realm, u.status);
  if (u.status != 200)
    return berth_make_error (err, EPROTO, "token service %s: %u", ch->realm,
                             u.status);
  r = token_parse (body ? body : "", u.len, ch->realm, token, &seconds, err);
  if (r == 0)
    token_store (reg, p, ch->scope, *token, seconds);
  if (body)
    explicit_bzero (body, u.len);
  return r;
}

/* After a 401 (U): set AUTH up to answer its challenge; 1 to retry, 0
 * when there is no challenge to answer.  */
static int
answer_challenge (struct registry *reg, const struct registry_proxy_config *p,
                  const struct upstream *u, struct upstream_auth *auth,
                  char **token, berth_error_t *err)
{
  struct challenge ch;
  int r;

  if (u->bearer[0])
    {
      if (!parse_challenge (u->bearer, &ch))
        return berth_make_error (err, EPROTO,
                                 "upstream %s: malformed Bearer challenge",
                                 p->upstream);
      free_secret (*token);
      *token = NULL;
      r = token_fetch (reg, p, &ch, token, err);
      if (r < 0)
        return r;
      auth->bearer = *token;
      auth->basic = NULL;
      return 1;
    }
  if (!u->basic)
    return 0;
  if (p->username == NULL)
    return berth_make_error (err, EACCES,
                             "upstream %s asks for credentials; none are "
                             "configured",
                             p->upstream);
  if (auth->basic)
    return 0; /* they were sent and refused */
  auth->basic = p;
  auth->bearer = NULL;
  return 1;
}

/* The error for a 401 or 403 that the credentials did not get past.  */
static int
access_refused (const struct registry_proxy_config *p, const struct upstream *u,
                const struct upstream_auth *auth, const char *what,
                berth_error_t *err)
{
  struct challenge ch = { .error = "" };

  if (u->status == 403)
    return berth_make_error (err, EACCES, "upstream %s denied access to %s",
                             p->upstream, what);
  if (auth->basic)
    return berth_make_error (err, EACCES,
                             "upstream %s refused the credentials of user "
                             "`%s`",
                             p->upstream, p->username);
  if (u->bearer[0])
    parse_challenge (u->bearer, &ch);
  return berth_make_error (err, EACCES, "upstream %s refused access to %s%s%s",
                           p->upstream, what, ch.error[0] ? ": " : "",
                           ch.error);
}

/* METHOD UPSTREAM-URL/v2/NAME/KIND/REF, authenticated as upstream asks; a
 * 200 answer's body goes to U->sink.  Fails when no complete answer came
 * (or the sink failed), and with -EACCES when upstream refused access
 * (401, 403) with the credentials it got.  */
static int
upstream_request (struct registry *reg, const struct registry_proxy_config *p,
                  const char *method, const char *name, const char *kind,
                  const char *ref, const char *accept, struct upstream *u,
                  berth_error_t *err)
{
  cleanup_free char *url = NULL, *scope = NULL, *what = NULL;
  struct upstream_auth auth = { NULL, NULL };
  char *token;
  bool *basic = &reg->proxy_state->basic[proxy_index (reg, p)];
  int r;

  xasprintf (&url, "%s/v2/%s/%s/%s", p->upstream, name, kind, ref);
  xasprintf (&scope, "repository:%s:pull", name);
  xasprintf (&what, "%s %s/%s/%s", method, name, kind, ref);
  token = token_lookup (reg, p, scope);
  auth.bearer = token;
  if (token == NULL && p->username && __atomic_load_n (basic, __ATOMIC_RELAXED))
    auth.basic = p;
  r = upstream_perform (method, url, accept, &auth, p->upstream, u, err);
  if (r == 0 && u->status == 401)
    {
      r = answer_challenge (reg, p, u, &auth, &token, err);
      if (r > 0)
        r = upstream_perform (method, url, accept, &auth, p->upstream, u, err);
      if (r == 0 && auth.basic && u->status != 401)
        __atomic_store_n (basic, true, __ATOMIC_RELAXED);
    }
  if (r == 0 && (u->status == 401 || u->status == 403))
    r = access_refused (p, u, &auth, what, err);
  free_secret (token);
  return r;
}

/* --- One upstream fetch per object (single-flight) -----------------------
 * Concurrent misses of one object share one fetch: the first request
 * (the leader) fetches and stores it; the others wait on the flight's
 * condition and then serve what was stored, or answer the leader's error.
 * Blobs are keyed by upstream and digest, manifests by upstream,
 * repository and reference.  proxy_lock is held only to join, land or
 * wait (the wait releases it), never across network I/O.  A flight leaves
 * the table when it lands: a later miss finds the object stored (the
 * leader checks again before fetching) or fetches it anew.  */

struct flight
{
  struct flight *next;
  char *key;
  char *name;     /* the repository the leader stores into */
  unsigned users; /* the leader and its waiters */
  bool landed;
  int r; /* once landed: the leader's result, and its error */
  int err_status;
  char *err_msg;
  pthread_cond_t cond;
};

static void
flight_unref (struct flight *f)
{
  if (--f->users > 0)
    return;
  pthread_cond_destroy (&f->cond);
  free (f->key);
  free (f->name);
  free (f->err_msg);
  free (f);
}

/* Joins the flight of KEY, or starts it for repository NAME: true when
 * the caller leads it (then it must land it), false when it must wait.  */
static bool
flight_join (struct registry *reg, const char *key, const char *name,
             struct flight **out)
{
  struct registry_proxy_state *st = reg->proxy_state;
  struct flight *f;

  pthread_mutex_lock (&reg->proxy_lock);
  for (f = st->flights; f; f = f->next)
    if (strcmp (f->key, key) == 0)
      {
        f->users++;
        pthread_mutex_unlock (&reg->proxy_lock);
        *out = f;
        http_server_log (reg->server, HTTP_LOG_DEBUG,
                         "proxy: waiting for the fetch of %s", key);
        return false;
      }
  f = xmalloc0 (sizeof (*f));
  f->key = xstrdup (key);
  f->name = xstrdup (name);
  f->users = 1;
  pthread_cond_init (&f->cond, NULL);
  f->next = st->flights;
  st->flights = f;
  pthread_mutex_unlock (&reg->proxy_lock);
  *out = f;
  return true;
}

/* The leader's result R (and ERR): wakes the waiters.  */
static void
flight_land (struct registry *reg, struct flight *f, int r, berth_error_t err)
{
  struct flight **pp;

  pthread_mutex_lock (&reg->proxy_lock);
  for (pp = &reg->proxy_state->flights; *pp != f; pp = &(*pp)->next)
    ;
  *pp = f->next;
  f->landed = true;
  f->r = r;
  if (r < 0 && err)
    {
      f->err_status = err->status;
      f->err_msg = xstrdup (err->msg ? err->msg : "upstream failed");
    }
  pthread_cond_broadcast (&f->cond);
  flight_unref (f);
  pthread_mutex_unlock (&reg->proxy_lock);
}

/* A waiter: the leader's result, with a copy of its error.  When NAME is
 * not the repository the leader stored into, *OTHER gets that one (to
 * free) and the result only says whether it is stored there.  */
static int
flight_wait (struct registry *reg, struct flight *f, const char *name,
             char **other, berth_error_t *err)
{
  int r;

  pthread_mutex_lock (&reg->proxy_lock);
  while (!f->landed)
    pthread_cond_wait (&f->cond, &reg->proxy_lock);
  r = f->r;
  *other = strcmp (f->name, name) != 0 ? xstrdup (f->name) : NULL;
  if (r < 0 && err && *err == NULL && *other == NULL)
    {
      *err = xmalloc0 (sizeof (**err));
      (*err)->status = f->err_status;
      (*err)->msg = xstrdup (f->err_msg ? f->err_msg : "upstream failed");
    }
  flight_unref (f);
  pthread_mutex_unlock (&reg->proxy_lock);
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

static int
revalidate (struct registry *reg, const struct registry_proxy_config *p,
            const char *name, const char *upstream_name, const char *tag,
            const struct registry_digest *have, const char *accept,
            berth_error_t *err)
{
  struct upstream u = { 0 };
  int r;

  r = upstream_request (reg, p, "HEAD", upstream_name, "manifests", tag, accept,
                        &u, err);
  if (r < 0)
    return r;
  if (u.status == 200 && u.dcd[0] && strcmp (u.dcd, have->str) == 0)
    {
      tag_fetched (reg, name, tag);
      return 0;
    }
  return 1; /* changed, gone, or unknown: fetch it */
}

/* Concurrent requests for one stale tag share one HEAD upstream: a flight
 * keyed by the question asked (the tag, the digest held, the Accept
 * header), whose result they all take.  */
int
registry_proxy_revalidate (struct registry *reg,
                           const struct registry_proxy_config *p,
                           const char *name, const char *upstream_name,
                           const char *tag, const struct registry_digest *have,
                           const char *accept, berth_error_t *err)
{
  cleanup_free char *key = NULL, *other = NULL;
  struct flight *f;
  int r;

  xasprintf (&key, "manifest HEAD %s %s:%s %s %s", p->upstream, name, tag,
             have->str, accept ? accept : "");
  if (!flight_join (reg, key, name, &f))
    return flight_wait (reg, f, name, &other, err);
  /* A flight that landed just before this one may have checked it.  */
  r = registry_proxy_tag_fresh (reg, p, name, tag)
          ? 0
          : revalidate (reg, p, name, upstream_name, tag, have, accept, err);
  flight_land (reg, f, r, err ? *err : NULL);
  return r;
}

/* --- Manifests ---------------------------------------------------------- */

static int
fetch_manifest (struct registry *reg, const struct registry_proxy_config *p,
                const char *name, const char *upstream_name, const char *ref,
                const struct registry_digest *want, const char *accept,
                berth_error_t *err)
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
  r = upstream_request (reg, p, "GET", upstream_name, "manifests", ref, accept,
                        &u, err);
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

/* Did a flight that landed just before this one store manifest REF?  A
 * tag counts only when it was fetched within the TTL.  */
static bool
manifest_stored (struct registry *reg, const struct registry_proxy_config *p,
                 const char *name, const char *ref,
                 const struct registry_digest *want)
{
  struct registry_manifest_data md;
  berth_error_t e = NULL;

  if (want)
    return registry_storage_manifest_exists (reg->storage, name, want);
  if (!registry_proxy_tag_fresh (reg, p, name, ref)
      || registry_storage_manifest_get (reg->storage, name, ref, NULL, &md, &e)
             < 0)
    {
      berth_error_release (&e);
      return false;
    }
  registry_manifest_data_release (&md);
  return true;
}

int
registry_proxy_fetch_manifest (struct registry *reg,
                               const struct registry_proxy_config *p,
                               const char *name, const char *upstream_name,
                               const char *ref,
                               const struct registry_digest *want,
                               const char *accept, berth_error_t *err)
{
  cleanup_free char *key = NULL, *other = NULL;
  struct flight *f;
  int r;

  /* The repository names the upstream and its name there.  */
  xasprintf (&key, "manifest %s %s:%s", p->upstream, name, ref);
  if (!flight_join (reg, key, name, &f))
    return flight_wait (reg, f, name, &other, err);
  r = manifest_stored (reg, p, name, ref, want)
          ? 0
          : fetch_manifest (reg, p, name, upstream_name, ref, want, accept,
                            err);
  flight_land (reg, f, r, err ? *err : NULL);
  return r;
}

/* --- Blobs -------------------------------------------------------------- */

/* Upstream's answer U to METHOD of blob D was not a 200.  */
static int
blob_status_error (const struct upstream *u, const char *method,
                   const struct registry_digest *d, berth_error_t *err)
{
  if (u->status == 404)
    return berth_make_error (err, ENOENT, "upstream: blob unknown");
  return berth_make_error (err, EPROTO, "upstream: %s blob %s: %u", method,
                           d->str, u->status);
}

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

static int
fetch_blob (struct registry *reg, const struct registry_proxy_config *p,
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
  r = upstream_request (reg, p, "GET", upstream_name, "blobs", d->str, NULL, &u,
                        err);
  if (r == 0 && u.status != 200)
    r = blob_status_error (&u, "GET", d, err);
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

/* The flight of another repository (FROM) stored blob D: NAME gets it
 * too if upstream holds it under NAME's upstream name (a HEAD, no body).
 * -EAGAIN (*ERR untouched) when FROM no longer holds it.  */
static int
blob_share (struct registry *reg, const struct registry_proxy_config *p,
            const char *name, const char *upstream_name, const char *from,
            const struct registry_digest *d, berth_error_t *err)
{
  struct upstream u = { 0 };
  uint64_t size;
  int r;

  if (registry_storage_blob_stat (reg->storage, name, d, &size, NULL) == 0)
    return 0; /* another waiter of NAME linked it */
  r = upstream_request (reg, p, "HEAD", upstream_name, "blobs", d->str, NULL,
                        &u, err);
  if (r == 0 && u.status != 200)
    r = blob_status_error (&u, "HEAD", d, err);
  if (r < 0)
    return r;
  r = registry_storage_blob_mount (reg->storage, name, from, d, err);
  if (r == -ENOENT)
    {
      berth_error_release (err);
      return -EAGAIN;
    }
  return r;
}

int
registry_proxy_fetch_blob (struct registry *reg,
                           const struct registry_proxy_config *p,
                           const char *name, const char *upstream_name,
                           const struct registry_digest *d, berth_error_t *err)
{
  cleanup_free char *key = NULL;
  struct flight *f;
  uint64_t size;
  int r;

  xasprintf (&key, "blob %s %s", p->upstream, d->str);
  while (!flight_join (reg, key, name, &f))
    {
      cleanup_free char *other = NULL;

      r = flight_wait (reg, f, name, &other, err);
      if (other == NULL)
        return r;
      /* Another repository's fetch: its failure says nothing about this
       * one (upstream holds blobs per repository), so fetch again; its
       * success saves the body.  */
      if (r == 0
          && (r = blob_share (reg, p, name, upstream_name, other, d, err))
                 != -EAGAIN)
        return r;
    }
  /* A flight that landed just before this one may have stored it.  */
  r = registry_storage_blob_stat (reg->storage, name, d, &size, NULL);
  if (r < 0)
    r = fetch_blob (reg, p, name, upstream_name, d, err);
  flight_land (reg, f, r, err ? *err : NULL);
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
  else if (r == -EACCES)
    /* The mirror's own credentials: the client can do nothing about
     * them, so no 401 (it would make the client send its own).  */
    registry_error (req, 502, E_DENIED,
                    "upstream registry denied access to the mirror",
                    json_pack ("{s:s}", "upstream", msg));
  else
    registry_error (req, 502, "UNKNOWN", "upstream registry failed",
                    json_pack ("{s:s}", "upstream", msg));
  berth_error_release (err);
  return true;
}
