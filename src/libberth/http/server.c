/* server.c - Berth's HTTP/1.1 server (see server.h): the public API of
 * requests and responses, routing, and the worker threads.
 *
 * Each worker thread runs one epoll loop (level-triggered) over its
 * connections; the listening socket is in every worker's epoll set with
 * EPOLLEXCLUSIVE, so a new connection wakes one worker, which keeps it for
 * its whole life.  The connection's state machine is in conn.c, the
 * parsing of what clients send in parse.c, the sockets and TLS context in
 * listen.c; server-internal.h holds what they share.
 *
 * The worker threads block SIGPIPE: a write to a closed connection (send,
 * sendfile, or libssl's write) fails with EPIPE instead of killing the
 * process, whatever the program does with the signal.  */
#include "http/server-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "json.h"
#include "utils.h"

#define DEFAULT_MAX_HEADER (64 * 1024)
#define DEFAULT_TIMEOUT 300
/* A worker quiet for this long after some work trims the heap.  */
#define TRIM_AFTER_MS 1000

/* --- Logging ----------------------------------------------------------- */

static void
vlog (struct http_server *s, enum http_log_level level, const char *fmt,
      va_list ap)
{
  char buf[1024];
  if (s == NULL || s->log == NULL)
    return;
  vsnprintf (buf, sizeof (buf), fmt, ap);
  s->log (s->log_data, level, buf);
}

void
http_server_log (struct http_server *server, enum http_log_level level,
                 const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vlog (server, level, fmt, ap);
  va_end (ap);
}

/* --- Small buffers ----------------------------------------------------- */

void
http_buf_append (char **buf, size_t *len, size_t *cap, const char *data,
                 size_t n)
{
  if (*len + n + 1 > *cap)
    {
      size_t c = *cap ? *cap : 256;
      while (c < *len + n + 1)
        c *= 2;
      *buf = xrealloc (*buf, c);
      *cap = c;
    }
  memcpy (*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

void
http_buf_appendf (char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
  char tmp[1024];
  va_list ap;
  int n;
  va_start (ap, fmt);
  n = vsnprintf (tmp, sizeof (tmp), fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  http_buf_append (buf, len, cap, tmp,
                   (size_t) n < sizeof (tmp) ? (size_t) n : sizeof (tmp) - 1);
}

/* --- Responses --------------------------------------------------------- */

void
http_release_body (struct http_request *req)
{
  if (req->mem_owned)
    free (req->mem);
  req->mem = NULL;
  req->mem_len = 0;
  req->mem_owned = false;
  if (req->fd >= 0)
    close (req->fd);
  req->fd = -1;
  if (req->stream_free)
    req->stream_free (req->stream_ctx);
  req->stream_free = NULL;
  req->stream_read = NULL;
  req->stream_ctx = NULL;
  req->body_kind = BODY_NONE;
}

/* Start a new response: the previous one, if any, is dropped.  */
static void
reset_response (struct http_request *req, unsigned status, enum body_kind kind,
                uint64_t len)
{
  http_release_body (req);
  req->resp_headers_len = 0;
  if (req->resp_headers)
    req->resp_headers[0] = '\0';
  req->has_response = true;
  req->status = status;
  req->body_kind = kind;
  req->body_len = len;
  req->resp_bytes = len == HTTP_SIZE_UNKNOWN ? 0 : len;
}

void
http_respond (struct http_request *req, unsigned status,
              const char *content_type, const void *body, size_t len)
{
  char *copy = xmalloc (len + 1);
  if (len)
    memcpy (copy, body, len);
  http_respond_take (req, status, content_type, copy, len);
}

void
http_respond_take (struct http_request *req, unsigned status,
                   const char *content_type, char *body, size_t len)
{
  reset_response (req, status, BODY_MEM, len);
  req->mem = body;
  req->mem_len = len;
  req->mem_owned = true;
  if (content_type)
    http_header (req, "Content-Type", content_type);
}

void
http_respond_json (struct http_request *req, unsigned status,
                   const char *content_type, json_t *doc)
{
  char *s = bjson_dump (doc, false);
  json_decref (doc);
  http_respond_take (req, status,
                     content_type ? content_type : "application/json", s,
                     strlen (s));
}

void
http_respond_empty (struct http_request *req, unsigned status)
{
  reset_response (req, status, BODY_MEM, 0);
}

void
http_respond_fd (struct http_request *req, unsigned status, int fd,
                 uint64_t offset, uint64_t len)
{
  reset_response (req, status, BODY_FD, len);
  req->fd = fd;
  req->fd_offset = offset;
}

void
http_respond_head (struct http_request *req, unsigned status, uint64_t size)
{
  reset_response (req, status, BODY_HEAD, size);
  req->resp_bytes = 0;
}

void
http_respond_stream (struct http_request *req, unsigned status, uint64_t size,
                     http_read_fn read, void *ctx, void (*free_ctx) (void *ctx))
{
  reset_response (req, status, BODY_STREAM, size);
  req->stream_read = read;
  req->stream_ctx = ctx;
  req->stream_free = free_ctx;
}

static bool
header_value_ok (const char *s)
{
  for (; *s; s++)
    if (*s == '\r' || *s == '\n')
      return false;
  return true;
}

void
http_header (struct http_request *req, const char *name, const char *value)
{
  if (!req->has_response)
    return;
  /* A line break would let a value smuggle headers (or a body) in.  */
  if (!header_value_ok (name) || !header_value_ok (value) || *name == '\0')
    {
      http_server_log (req->server, HTTP_LOG_ERROR,
                       "%s %s: header `%s` dropped: line break in it",
                       req->method, req->target, name);
      return;
    }
  http_buf_append (&req->resp_headers, &req->resp_headers_len,
                   &req->resp_headers_cap, name, strlen (name));
  http_buf_append (&req->resp_headers, &req->resp_headers_len,
                   &req->resp_headers_cap, ": ", 2);
  http_buf_append (&req->resp_headers, &req->resp_headers_len,
                   &req->resp_headers_cap, value, strlen (value));
  http_buf_append (&req->resp_headers, &req->resp_headers_len,
                   &req->resp_headers_cap, "\r\n", 2);
}

void
http_headerf (struct http_request *req, const char *name, const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof (buf), fmt, ap);
  va_end (ap);
  http_header (req, name, buf);
}

unsigned
http_response_status (struct http_request *req)
{
  return req->has_response ? req->status : 0;
}

void
http_respond_text (struct http_request *req, unsigned status, const char *text)
{
  http_respond (req, status, "text/plain; charset=utf-8", text, strlen (text));
}

/* --- The request ------------------------------------------------------- */

const char *
http_request_method (struct http_request *req)
{
  return req->method;
}

const char *
http_request_path (struct http_request *req)
{
  return req->path;
}

const char *
http_request_query (struct http_request *req, const char *key)
{
  size_t i;
  for (i = 0; i < req->n_query; i++)
    if (strcmp (req->query[i].name, key) == 0)
      return req->query[i].value;
  return NULL;
}

int
http_request_query_each (struct http_request *req, const char *key,
                         int (*fn) (const char *value, void *data), void *data)
{
  size_t i;
  for (i = 0; i < req->n_query; i++)
    if (strcmp (req->query[i].name, key) == 0)
      {
        int r = fn (req->query[i].value ? req->query[i].value : "", data);
        if (r)
          return r;
      }
  return 0;
}

const char *
http_request_header (struct http_request *req, const char *name)
{
  size_t i;
  for (i = 0; i < req->n_headers; i++)
    if (strcasecmp (req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}

const char *
http_request_param (struct http_request *req, const char *name)
{
  size_t i, n = strlen (name);
  for (i = 0; i < req->n_params; i++)
    if (req->params[i].name_len == n
        && memcmp (req->params[i].name, name, n) == 0)
      return req->params[i].value;
  return NULL;
}

int64_t
http_request_content_length (struct http_request *req)
{
  return req->content_length;
}

bool
http_request_has_body (struct http_request *req)
{
  return req->has_body;
}

bool
http_request_is_head (struct http_request *req)
{
  return strcmp (req->method, "HEAD") == 0;
}

struct http_server *
http_request_server (struct http_request *req)
{
  return req->server;
}

void
http_request_read_body (struct http_request *req, http_body_fn on_data,
                        http_end_fn on_end, void *ctx)
{
  req->on_data = on_data;
  req->on_end = on_end;
  req->body_ctx = ctx;
}

void
http_request_on_finish (struct http_request *req, http_finish_fn fn, void *ctx)
{
  req->on_finish = fn;
  req->finish_ctx = ctx;
}

/* --- Routing ----------------------------------------------------------- */

static void
clear_params (struct http_request *req)
{
  size_t i;
  for (i = 0; i < req->n_params; i++)
    free (req->params[i].value);
  req->n_params = 0;
}

static bool
add_param (struct http_request *req, const char *name, size_t name_len,
           const char *value, size_t value_len)
{
  if (req->n_params == MAX_PARAMS)
    return false;
  req->params[req->n_params].name = name;
  req->params[req->n_params].name_len = name_len;
  req->params[req->n_params].value = xstrndup (value, value_len);
  req->n_params++;
  return true;
}

/* Match PATH against PATTERN (see struct http_route), recording the
 * captures in REQ.  */
static bool
route_match (const char *pattern, const char *path, struct http_request *req)
{
  const char *p = pattern, *s = path;

  clear_params (req);
  while (*p)
    {
      if (p[0] == '*' && p[1] == '\0')
        return add_param (req, "*", 1, s, strlen (s));
      if (*p == '{')
        {
          const char *close = strchr (p, '}');
          size_t seg = strcspn (s, "/");
          if (close == NULL || seg == 0)
            return false;
          if (!add_param (req, p + 1, close - p - 1, s, seg))
            return false;
          p = close + 1;
          s += seg;
          continue;
        }
      if (*p != *s)
        return false;
      p++;
      s++;
    }
  return *s == '\0';
}

/* Add METHOD to the comma-separated list ALLOW, unless it is there.  */
static void
allow_add (char **allow, size_t *len, size_t *cap, const char *method)
{
  const char *p = *allow;
  size_t n = strlen (method);
  while (p && *p)
    {
      if (strncmp (p, method, n) == 0 && (p[n] == ',' || p[n] == '\0'))
        return;
      p = strchr (p, ',');
      p = p ? p + 2 : NULL;
    }
  if (*len)
    http_buf_append (allow, len, cap, ", ", 2);
  http_buf_append (allow, len, cap, method, n);
}

/* 405, with the Allow header listing the methods of the routes that take
 * the path (RFC 9110 15.5.6).  */
static void
respond_405 (struct http_request *req)
{
  struct http_server *srv = req->server;
  cleanup_free char *allow = NULL;
  size_t len = 0, cap = 0, i;

  for (i = 0; i < srv->n_routes; i++)
    {
      const struct http_route *r = &srv->routes[i];
      if (r->method == NULL || !route_match (r->pattern, req->path, req))
        continue;
      allow_add (&allow, &len, &cap, r->method);
      if (strcmp (r->method, "GET") == 0)
        allow_add (&allow, &len, &cap, "HEAD");
    }
  clear_params (req);
  http_respond_text (req, 405, "405 method not allowed\n");
  http_header (req, "Allow", allow ? allow : "");
}

void
http_dispatch (struct http_request *req)
{
  struct http_server *srv = req->server;
  bool path_matched = false;
  size_t i;

  for (i = 0; i < srv->n_routes; i++)
    {
      const struct http_route *r = &srv->routes[i];
      if (!route_match (r->pattern, req->path, req))
        continue;
      if (r->method && strcmp (r->method, req->method) != 0
          && !(strcmp (r->method, "GET") == 0 && http_request_is_head (req)))
        {
          path_matched = true;
          continue;
        }
      r->handler (req, srv->data);
      return;
    }
  clear_params (req);
  if (path_matched)
    respond_405 (req);
  else
    http_respond_text (req, 404, "404 page not found\n");
}

void
http_request_free (struct http_request *req)
{
  size_t i;
  if (req == NULL)
    return;
  http_release_body (req);
  clear_params (req);
  for (i = 0; i < req->n_headers; i++)
    {
      free (req->headers[i].name);
      free (req->headers[i].value);
    }
  for (i = 0; i < req->n_query; i++)
    {
      free (req->query[i].name);
      free (req->query[i].value);
    }
  free (req->headers);
  free (req->query);
  free (req->resp_headers);
  free (req->target);
  free (req->path);
  free (req);
}

/* --- Workers ----------------------------------------------------------- */

/* TIMEOUT (ms, -1 for none), shortened to reach DEADLINE (ns).  */
static int
timeout_until (int timeout, uint64_t deadline, uint64_t now)
{
  int t = deadline <= now ? 0 : (int) ((deadline - now) / 1000000 + 1);
  return timeout < 0 || t < timeout ? t : timeout;
}

/* The epoll timeout until the earliest deadline of W (-1: none), or until
 * the heap trim when W has been busy.  */
static int
next_timeout (struct worker *w)
{
  uint64_t now = now_ns ();
  int timeout = -1;

  if (w->ready.oldest)
    return 0; /* a look at the sockets, then the ready ones go on */
  if (w->idle.oldest)
    timeout = timeout_until (timeout, w->idle.oldest->deadline_ns, now);
  if (w->linger.oldest)
    timeout = timeout_until (timeout, w->linger.oldest->deadline_ns, now);
  if (w->listen_paused_until)
    timeout = timeout_until (timeout, w->listen_paused_until, now);
  if (w->busy && (timeout < 0 || timeout > TRIM_AFTER_MS))
    timeout = TRIM_AFTER_MS;
  return timeout;
}

/* Close the connections of L whose deadline is before NOW (all when NOW
 * is UINT64_MAX).  */
static void
expire (struct conn_list *l, uint64_t now)
{
  while (l->oldest && l->oldest->deadline_ns <= now)
    {
      struct conn *c = l->oldest;
      http_conn_close (c);
      http_conn_free (c);
    }
}

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  struct epoll_event events[64];
  sigset_t pipe_set;
  bool stopping = false;

  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);

  while (!stopping)
    {
      int n, i, timeout = next_timeout (w);
      n = epoll_wait (w->epfd, events, 64, timeout);
      if (n < 0 && errno != EINTR)
        break;
      if (n == 0 && w->busy)
        {
          /* Quiet for a while after some work: what the requests
           * allocated and freed goes back to the system, so that an idle
           * server is small again.  */
          malloc_trim (0);
          w->busy = false;
        }
      if (n > 0)
        w->busy = true;
      for (i = 0; i < n && !stopping; i++)
        {
          void *p = events[i].data.ptr;
          struct conn *c = p;
          if (p == &w->wake_fd)
            stopping = true;
          else if (p == &w->server->listen_fd)
            http_accept (w);
          else
            {
              /* A connection is in a batch once: if this event closes
               * it, no later one names it.  */
              http_conn_event (c);
              if (c->fd < 0)
                http_conn_free (c);
            }
        }
      http_conn_run_ready (w);
      if (w->listen_paused_until && w->listen_paused_until <= now_ns ())
        http_listen_watch (w);
      /* Idle and linger timeouts.  */
      expire (&w->idle, now_ns ());
      expire (&w->linger, now_ns ());
    }
  expire (&w->idle, UINT64_MAX);
  expire (&w->linger, UINT64_MAX);
  return NULL;
}

static void
server_free (struct http_server *s)
{
  unsigned i;
  for (i = 0; i < s->n_workers; i++)
    {
      struct worker *w = &s->workers[i];
      if (w->epfd >= 0)
        close (w->epfd);
      if (w->wake_fd >= 0)
        close (w->wake_fd);
      if (w->spare_fd >= 0)
        close (w->spare_fd);
    }
  free (s->workers);
  if (s->listen_fd >= 0)
    close (s->listen_fd);
  SSL_CTX_free (s->tls);
  free (s->routes);
  free (s);
}

/* A server with OPTS' settings, not yet listening.  */
static struct http_server *
server_new (const struct http_server_opts *opts)
{
  struct http_server *s = xmalloc0 (sizeof (*s));
  unsigned i;

  s->listen_fd = -1;
  s->routes = xmalloc0 ((opts->n_routes + 1) * sizeof (*s->routes));
  for (i = 0; i < opts->n_routes; i++)
    s->routes[i] = opts->routes[i];
  s->n_routes = opts->n_routes;
  s->data = opts->data;
  s->max_body = opts->max_body_bytes;
  s->max_header
      = opts->max_header_bytes ? opts->max_header_bytes : DEFAULT_MAX_HEADER;
  s->log = opts->log;
  s->log_data = opts->log_data;
  s->headers = opts->headers;
  s->timeout_ns = (uint64_t) (opts->timeout_seconds ? opts->timeout_seconds
                                                    : DEFAULT_TIMEOUT)
                  * 1000000000ULL;
  return s;
}

/* THREADS workers for S, each with its epoll set (its wake-up eventfd and
 * the listener in it), running: 0, or -1 with errno (what started is
 * left for http_server_stop).  */
static int
workers_start (struct http_server *s, unsigned threads)
{
  unsigned i;

  s->workers = xmalloc0 (threads * sizeof (*s->workers));
  s->n_workers = threads;
  for (i = 0; i < threads; i++)
    s->workers[i].epfd = s->workers[i].wake_fd = s->workers[i].spare_fd = -1;
  for (i = 0; i < threads; i++)
    {
      struct worker *w = &s->workers[i];
      struct epoll_event e;
      w->server = s;
      w->epfd = epoll_create1 (EPOLL_CLOEXEC);
      w->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      w->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      if (w->epfd < 0 || w->wake_fd < 0)
        return -1;
      e.events = EPOLLIN;
      e.data.ptr = &w->wake_fd;
      if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->wake_fd, &e) < 0)
        return -1;
      if (http_listen_watch (w) < 0)
        return -1;
    }
  for (i = 0; i < threads; i++)
    {
      struct worker *w = &s->workers[i];
      int e = pthread_create (&w->thread, NULL, worker_main, w);
      if (e != 0)
        {
          errno = e;
          return -1;
        }
      w->started = true;
    }
  return 0;
}

int
http_server_start (const struct http_server_opts *opts,
                   struct http_server **out, berth_error_t *err)
{
  struct http_server *s;
  unsigned threads = opts->threads;
  int r;

  if ((opts->tls_cert_pem == NULL) != (opts->tls_key_pem == NULL))
    return berth_make_invalid (err, "TLS needs both a certificate and a key");
  if (threads == 0)
    {
      long n = sysconf (_SC_NPROCESSORS_ONLN);
      threads = n > 0 ? (unsigned) n : 1;
    }
  s = server_new (opts);
  if (opts->tls_cert_pem
      && (r = http_tls_setup (s, opts->tls_cert_pem, opts->tls_key_pem, err))
             < 0)
    {
      server_free (s);
      return r;
    }
  r = http_listen_open (s, opts->listen, err);
  if (r < 0)
    {
      server_free (s);
      return r;
    }
  if (workers_start (s, threads) < 0)
    {
      r = berth_make_error (err, errno, "HTTP server: start");
      http_server_stop (s);
      return r;
    }
  *out = s;
  return 0;
}

const char *
http_server_address (struct http_server *server)
{
  return server->address;
}

void
http_server_stop (struct http_server *server)
{
  unsigned i;
  if (server == NULL)
    return;
  for (i = 0; i < server->n_workers; i++)
    if (server->workers[i].started)
      {
        uint64_t one = 1;
        (void) !write (server->workers[i].wake_fd, &one, sizeof (one));
      }
  for (i = 0; i < server->n_workers; i++)
    if (server->workers[i].started)
      pthread_join (server->workers[i].thread, NULL);
  server_free (server);
}
