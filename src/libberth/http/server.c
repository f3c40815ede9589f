/* server.c - the HTTP server layer over libmicrohttpd (see server.h). */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "json.h"
#include "utils.h"

#define MAX_PARAMS 8
#define DEFAULT_MAX_HEADER (64 * 1024)
#define DEFAULT_TIMEOUT 300
/* What a connection's memory pool holds beside the headers: the read
 * buffer for bodies (they come in chunks of about this size), the
 * answer's headers.  Not much more: MHD zeroes the whole pool after every
 * request (0.9.75, memorypool.c), and an idle keep-alive connection keeps
 * it resident.  A request line or headers that do not fit get a 414 or
 * 431 from MHD, which then closes the connection without reading the
 * rest; what fits gets the server's own answer.  */
#define BODY_BUFFER (64 * 1024)
/* After a handler refused a body, that much more is read and dropped so
 * that the answer reaches the client; beyond it the connection is closed.  */
#define DISCARD_MAX (16 * 1024 * 1024)

struct http_server
{
  struct MHD_Daemon *daemon;
  struct http_route *routes;
  size_t n_routes;
  void *data;
  uint64_t max_body;
  size_t max_header;
  http_log_fn log;
  void *log_data;
  const char *const *headers;
  const char *tls_cert_pem; /* borrowed from the opts, see server.h */
  const char *tls_key_pem;
  char address[INET6_ADDRSTRLEN + 16];
};

struct param
{
  const char *name; /* points into the route's pattern */
  size_t name_len;
  char *value;
};

struct http_request
{
  struct http_server *server;
  struct MHD_Connection *conn;
  char *uri;         /* as sent, with the query: for the log */
  uintptr_t uri_end; /* where MHD's copy of it ends, see nul_in_target() */
  char method[16];
  const char *path;
  uint64_t start_ns;
  bool dispatched;
  bool completed;
  int64_t content_length;
  bool has_body;
  uint64_t body_received;
  uint64_t discarded;

  struct param params[MAX_PARAMS];
  size_t n_params;

  http_body_fn on_data;
  http_end_fn on_end;
  void *body_ctx;
  bool body_failed;

  http_finish_fn on_finish;
  void *finish_ctx;

  struct MHD_Response *resp;
  unsigned status;
  uint64_t resp_bytes;
};

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

static void
mhd_logger (void *cls, const char *fmt, va_list ap)
{
  struct http_server *s = cls;
  char buf[1024];
  size_t n;
  if (s->log == NULL)
    return;
  vsnprintf (buf, sizeof (buf), fmt, ap);
  n = strlen (buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  /* What MHD says about a request (malformed: a TLS hello on this plain
   * port, say; or cut short by its client) is the client's problem: debug
   * level.  The rest (accept failing...) is the server's.  */
  s->log (s->log_data,
          strcasestr (buf, "request") ? HTTP_LOG_DEBUG : HTTP_LOG_WARN, buf);
}

/* --- Responses --------------------------------------------------------- */

static void
set_response (struct http_request *req, unsigned status,
              struct MHD_Response *resp, uint64_t bytes)
{
  if (req->resp)
    MHD_destroy_response (req->resp);
  req->resp = resp;
  req->status = status;
  req->resp_bytes = bytes;
  if (resp == NULL)
    {
      /* MHD could not allocate: answer 500 if even that works.  */
      static const char msg[] = "internal error\n";
      req->resp = MHD_create_response_from_buffer (
          sizeof (msg) - 1, (void *) msg, MHD_RESPMEM_PERSISTENT);
      req->status = 500;
      req->resp_bytes = sizeof (msg) - 1;
    }
}

void
http_respond (struct http_request *req, unsigned status,
              const char *content_type, const void *body, size_t len)
{
  struct MHD_Response *r = MHD_create_response_from_buffer (
      len, (void *) (len ? body : ""), MHD_RESPMEM_MUST_COPY);
  set_response (req, status, r, len);
  if (r && content_type)
    MHD_add_response_header (r, "Content-Type", content_type);
}

void
http_respond_take (struct http_request *req, unsigned status,
                   const char *content_type, char *body, size_t len)
{
  struct MHD_Response *r
      = MHD_create_response_from_buffer (len, body, MHD_RESPMEM_MUST_FREE);
  if (r == NULL)
    free (body);
  set_response (req, status, r, len);
  if (r && content_type)
    MHD_add_response_header (r, "Content-Type", content_type);
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
  set_response (
      req, status,
      MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT),
      0);
}

void
http_respond_fd (struct http_request *req, unsigned status, int fd,
                 uint64_t offset, uint64_t len)
{
  struct MHD_Response *r
      = MHD_create_response_from_fd_at_offset64 (len, fd, offset);
  if (r == NULL)
    close (fd);
  set_response (req, status, r, len);
}

static ssize_t
never_read (void *cls, uint64_t pos, char *buf, size_t max)
{
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

void
http_respond_head (struct http_request *req, unsigned status, uint64_t size)
{
  set_response (
      req, status,
      MHD_create_response_from_callback (size, 4096, never_read, NULL, NULL),
      0);
}

struct stream
{
  http_read_fn read;
  void *ctx;
  void (*free_ctx) (void *ctx);
};

static ssize_t
stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
  struct stream *st = cls;
  long n = st->read (st->ctx, pos, buf, max);
  if (n > 0)
    return n;
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_free (void *cls)
{
  struct stream *st = cls;
  if (st->free_ctx)
    st->free_ctx (st->ctx);
  free (st);
}

void
http_respond_stream (struct http_request *req, unsigned status, uint64_t size,
                     http_read_fn read, void *ctx, void (*free_ctx) (void *ctx))
{
  struct stream *st = xmalloc (sizeof (*st));
  struct MHD_Response *r;

  st->read = read;
  st->ctx = ctx;
  st->free_ctx = free_ctx;
  r = MHD_create_response_from_callback (
      size == HTTP_SIZE_UNKNOWN ? MHD_SIZE_UNKNOWN : size, 64 * 1024,
      stream_read, st, stream_free);
  if (r == NULL)
    stream_free (st);
  set_response (req, status, r, size == HTTP_SIZE_UNKNOWN ? 0 : size);
}

void
http_header (struct http_request *req, const char *name, const char *value)
{
  if (req->resp)
    MHD_add_response_header (req->resp, name, value);
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
  return req->resp ? req->status : 0;
}

static void
respond_text (struct http_request *req, unsigned status, const char *text)
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
  return MHD_lookup_connection_value (req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_each
{
  const char *key;
  int (*fn) (const char *value, void *data);
  void *data;
  int ret;
};

static enum MHD_Result
query_each_cb (void *cls, enum MHD_ValueKind kind, const char *key,
               const char *value)
{
  struct query_each *q = cls;
  if (strcmp (key, q->key) != 0)
    return MHD_YES;
  q->ret = q->fn (value ? value : "", q->data);
  return q->ret ? MHD_NO : MHD_YES;
}

int
http_request_query_each (struct http_request *req, const char *key,
                         int (*fn) (const char *value, void *data), void *data)
{
  struct query_each q = { key, fn, data, 0 };
  MHD_get_connection_values (req->conn, MHD_GET_ARGUMENT_KIND, query_each_cb,
                             &q);
  return q.ret;
}

const char *
http_request_header (struct http_request *req, const char *name)
{
  return MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, name);
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

static void
dispatch (struct http_request *req)
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
    respond_text (req, 405, "405 method not allowed\n");
  else
    respond_text (req, 404, "404 page not found\n");
}

struct header_sum
{
  size_t total;
};

static enum MHD_Result
header_sum_cb (void *cls, enum MHD_ValueKind kind, const char *key,
               const char *value)
{
  struct header_sum *h = cls;
  h->total += strlen (key) + (value ? strlen (value) : 0) + 4;
  return MHD_YES;
}

/* Step 1: the headers are in.  */
static void
begin_request (struct http_request *req)
{
  struct http_server *srv = req->server;
  struct header_sum hs = { 0 };
  const char *cl, *te;

  MHD_get_connection_values (req->conn, MHD_HEADER_KIND, header_sum_cb, &hs);
  cl = http_request_header (req, "Content-Length");
  te = http_request_header (req, "Transfer-Encoding");
  req->content_length = -1;
  if (cl)
    {
      int64_t v;
      if (parse_int64 (cl, &v) == 0 && v >= 0)
        req->content_length = v;
    }
  req->has_body = req->content_length > 0 || (te && strcasestr (te, "chunked"));

  if (hs.total > srv->max_header)
    {
      respond_text (req, 431, "431 request header fields too large\n");
      return;
    }
  if (srv->max_body && req->content_length > 0
      && (uint64_t) req->content_length > srv->max_body)
    {
      respond_text (req, 413, "413 request body too large\n");
      return;
    }
  dispatch (req);
}

/* Run the finish callback, once.  */
static void
finish (struct http_request *req, bool completed)
{
  http_finish_fn fn = req->on_finish;
  if (fn == NULL)
    return;
  req->on_finish = NULL;
  fn (req->finish_ctx, completed);
}

static enum MHD_Result
queue (struct http_request *req)
{
  const char *const *h;
  enum MHD_Result r;

  /* Before the answer leaves: a client that got it may send its next
   * request on another connection at once, and must find the state the
   * answer described (an upload session released, say).  */
  finish (req, req->completed);
  if (req->resp == NULL)
    {
      http_server_log (req->server, HTTP_LOG_ERROR,
                       "%s %s: the handler set no response", req->method,
                       req->uri);
      respond_text (req, 500, "internal error\n");
    }
  for (h = req->server->headers; h && h[0] && h[1]; h += 2)
    MHD_add_response_header (req->resp, h[0], h[1]);
  r = MHD_queue_response (req->conn, req->status, req->resp);
  MHD_destroy_response (req->resp);
  req->resp = NULL;
  return r;
}

/* A chunk of the body.  */
static enum MHD_Result
body_chunk (struct http_request *req, const char *data, size_t len)
{
  struct http_server *srv = req->server;

  req->body_received += len;
  if (srv->max_body && req->body_received > srv->max_body
      && http_response_status (req) != 413)
    {
      /* A chunked body over the limit: the answer can no longer be sent
       * before the body ends, so the connection is closed.  */
      if (!req->body_failed)
        respond_text (req, 413, "413 request body too large\n");
      req->body_failed = true;
      return MHD_NO;
    }
  if (req->on_data && !req->body_failed)
    {
      if (req->on_data (req, data, len, req->body_ctx) < 0)
        {
          req->body_failed = true;
          if (req->resp == NULL)
            respond_text (req, 500, "internal error\n");
        }
      return MHD_YES;
    }
  req->discarded += len;
  return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
}

/* An answer is ready before a body that nobody will read.  Without a body,
 * the answer waits for the next call: queued now, it would close the
 * connection (MHD 0.9.75), killing keep-alive.  With one, queueing it now
 * makes MHD drop the body and close the connection after the answer:
 * right for a client waiting for "100 Continue" (it has sent nothing
 * yet), and for a large body; but a client already sending a small body
 * would fail writing it before it reads the answer, so that body is read
 * and dropped first.  */
static bool
answer_early (struct http_request *req)
{
  const char *expect = http_request_header (req, "Expect");
  if (expect && strcasecmp (expect, "100-continue") == 0)
    return true;
  return req->content_length < 0 || req->content_length > DISCARD_MAX;
}

/* A NUL byte in the request target: MHD hands over the target as a C
 * string, so the server would see only what comes before the NUL
 * ("/v2/\0/tags/list" read as "/v2/").  In MHD's buffer the version
 * follows the target and its terminator; when it lies further, the target
 * had a NUL.  Only a version found just beyond counts, so another layout
 * of MHD's buffer never refuses a sound request.  */
static bool
nul_in_target (struct http_request *req, const char *version)
{
  uintptr_t v = (uintptr_t) version;
  return req->uri_end && v > req->uri_end + 1
         && v - req->uri_end < req->server->max_header + BODY_BUFFER;
}

static enum MHD_Result
access_cb (void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **con_cls)
{
  struct http_request *req = *con_cls;

  if (req == NULL)
    return MHD_NO; /* the URI callback always sets it */
  if (!req->dispatched)
    {
      req->dispatched = true;
      req->conn = conn;
      req->path = url;
      snprintf (req->method, sizeof (req->method), "%s", method);
      if (nul_in_target (req, version))
        respond_text (req, 400, "400 bad request target\n");
      else
        begin_request (req);
      if (req->resp && req->has_body && req->on_data == NULL
          && req->on_end == NULL && answer_early (req))
        return queue (req);
      return MHD_YES;
    }
  if (*upload_data_size > 0)
    {
      size_t n = *upload_data_size;
      *upload_data_size = 0;
      return body_chunk (req, upload_data, n);
    }
  /* The whole request is in.  */
  if (req->on_end && !req->body_failed)
    req->on_end (req, req->body_ctx);
  req->completed = !req->body_failed;
  return queue (req);
}

static void *
uri_cb (void *cls, const char *uri, struct MHD_Connection *conn)
{
  struct http_request *req = xmalloc0 (sizeof (*req));
  req->server = cls;
  req->conn = conn;
  req->uri = xstrdup (uri ? uri : "");
  req->uri_end = uri ? (uintptr_t) uri + strlen (uri) : 0;
  req->start_ns = now_ns ();
  req->content_length = -1;
  return req;
}

/* A client that sent its request and then shut its side down waits for
 * the server to close.  MHD 0.9.75's epoll loop (edge-triggered) misses
 * that end of file when it came with the request, and would keep the
 * connection until its timeout.  The answer is in the socket's buffer by
 * now: shutting the socket down sends it, then the end of file, and wakes
 * MHD up to close its side.  */
static void
close_if_half_closed (struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci
      = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  char c;
  if (ci && recv (ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
    shutdown (ci->connect_fd, SHUT_RDWR);
}

static void
completed_cb (void *cls, struct MHD_Connection *conn, void **con_cls,
              enum MHD_RequestTerminationCode toe)
{
  struct http_request *req = *con_cls;
  struct http_server *srv = cls;

  if (req == NULL)
    return;
  *con_cls = NULL;
  /* Abandoned before an answer was queued: the client went away, a limit
   * closed the connection, or the server is stopping.  */
  finish (req, false);
  if (srv->log)
    {
      uint64_t us = (now_ns () - req->start_ns) / 1000;
      http_server_log (
          srv, HTTP_LOG_INFO, "%s %s %u %llu %llu.%03llums",
          req->method[0] ? req->method : "-", req->uri, req->status,
          (unsigned long long) (http_request_is_head (req) ? 0
                                                           : req->resp_bytes),
          (unsigned long long) (us / 1000), (unsigned long long) (us % 1000));
    }
  if (req->resp)
    MHD_destroy_response (req->resp);
  if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
    close_if_half_closed (conn);
  clear_params (req);
  free (req->uri);
  free (req);
}

/* --- Listening --------------------------------------------------------- */

static int
parse_listen (const char *listen, struct sockaddr_storage *ss, socklen_t *len,
              bool *any, berth_error_t *err)
{
  cleanup_free char *host = NULL;
  const char *colon, *port;
  int64_t p;

  *any = false;
  if (listen == NULL || *listen == '\0')
    return berth_make_invalid (err, "listen: empty address");
  if (listen[0] == '[')
    {
      const char *close = strchr (listen, ']');
      if (close == NULL || close[1] != ':')
        return berth_make_invalid (err, "listen: `%s` is not [ADDRESS]:PORT",
                                   listen);
      host = xstrndup (listen + 1, close - listen - 1);
      port = close + 2;
    }
  else
    {
      colon = strrchr (listen, ':');
      if (colon == NULL)
        return berth_make_invalid (err, "listen: `%s` has no :PORT", listen);
      host = xstrndup (listen, colon - listen);
      port = colon + 1;
    }
  if (parse_int64 (port, &p) < 0 || p < 0 || p > 65535)
    return berth_make_invalid (err, "listen: bad port `%s`", port);

  memset (ss, 0, sizeof (*ss));
  if (*host == '\0')
    {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *) ss;
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;
      a->sin6_port = htons ((uint16_t) p);
      *len = sizeof (*a);
      *any = true;
      return 0;
    }
  {
    struct addrinfo hints = { 0 }, *res = NULL;
    int r;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r = getaddrinfo (host, NULL, &hints, &res);
    if (r != 0 || res == NULL)
      return berth_make_invalid (err, "listen: cannot resolve `%s`: %s", host,
                                 gai_strerror (r));
    memcpy (ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo (res);
  }
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *) ss)->sin_port = htons ((uint16_t) p);
  else if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *) ss)->sin6_port = htons ((uint16_t) p);
  else
    return berth_make_invalid (err, "listen: `%s` is not an IP address", host);
  return 0;
}

static void
format_address (struct http_server *s, const struct sockaddr_storage *ss,
                bool any, unsigned port)
{
  char host[INET6_ADDRSTRLEN] = "";
  if (ss->ss_family == AF_INET)
    {
      inet_ntop (AF_INET, &((const struct sockaddr_in *) ss)->sin_addr, host,
                 sizeof (host));
      snprintf (s->address, sizeof (s->address), "%s:%u", host, port);
    }
  else
    {
      inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) ss)->sin6_addr, host,
                 sizeof (host));
      snprintf (s->address, sizeof (s->address), "[%s]:%u", any ? "::" : host,
                port);
    }
}

static struct MHD_Daemon *
start_daemon (struct http_server *s, unsigned flags,
              const struct sockaddr_storage *ss, unsigned threads, size_t pool,
              unsigned timeout, bool sigpipe_ignored)
{
  /* HTTPS adds its options through an array, so that one call serves
   * both.  */
  struct MHD_OptionItem tls[] = {
    { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) s->tls_cert_pem },
    { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) s->tls_key_pem },
    { MHD_OPTION_END, 0, NULL },
  };
  if (s->tls_cert_pem == NULL)
    tls[0].option = MHD_OPTION_END;
  else
    flags |= MHD_USE_TLS;
  /* The logger first, so that MHD logs nothing its own way.  */
  return MHD_start_daemon (
      flags, 0, NULL, NULL, access_cb, s, MHD_OPTION_ARRAY, tls,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, MHD_OPTION_SOCK_ADDR, ss,
      MHD_OPTION_URI_LOG_CALLBACK, uri_cb, s, MHD_OPTION_NOTIFY_COMPLETED,
      completed_cb, s, MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_CONNECTION_TIMEOUT,
      timeout, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024,
      MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int) sigpipe_ignored, MHD_OPTION_END);
}

int
http_server_start (const struct http_server_opts *opts,
                   struct http_server **out, berth_error_t *err)
{
  struct http_server *s;
  struct sockaddr_storage ss;
  struct sigaction sa;
  socklen_t sslen;
  bool any, sigpipe_ignored;
  unsigned threads = opts->threads, flags, timeout;
  size_t pool;
  const union MHD_DaemonInfo *info;
  size_t i;
  int r;

  r = parse_listen (opts->listen, &ss, &sslen, &any, err);
  if (r < 0)
    return r;
  if (threads == 0)
    {
      long n = sysconf (_SC_NPROCESSORS_ONLN);
      threads = n > 0 ? (unsigned) n : 1;
    }

  s = xmalloc0 (sizeof (*s));
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
  if ((opts->tls_cert_pem == NULL) != (opts->tls_key_pem == NULL))
    {
      free (s->routes);
      free (s);
      return berth_make_invalid (err, "TLS needs both a certificate and a key");
    }
  s->tls_cert_pem = opts->tls_cert_pem;
  s->tls_key_pem = opts->tls_key_pem;
  timeout = opts->timeout_seconds ? opts->timeout_seconds : DEFAULT_TIMEOUT;
  /* MHD answers 431 itself when the headers overflow the pool.  */
  pool = s->max_header + BODY_BUFFER;

  /* MHD uses sendfile() only when it may ignore SIGPIPE.  */
  sigpipe_ignored
      = sigaction (SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;

  flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  s->daemon = start_daemon (s,
                            flags
                                | (any ? MHD_USE_DUAL_STACK
                                   : ss.ss_family == AF_INET6 ? MHD_USE_IPv6
                                                              : 0),
                            &ss, threads, pool, timeout, sigpipe_ignored);
  if (s->daemon == NULL && any)
    {
      /* No IPv6 on this host: every IPv4 address then.  */
      struct sockaddr_in *a = (struct sockaddr_in *) &ss;
      uint16_t port = ((struct sockaddr_in6 *) &ss)->sin6_port;
      memset (&ss, 0, sizeof (ss));
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl (INADDR_ANY);
      a->sin_port = port;
      any = false;
      s->daemon = start_daemon (s, flags, &ss, threads, pool, timeout,
                                sigpipe_ignored);
    }
  if (s->daemon == NULL)
    {
      int e = errno ? errno : EADDRINUSE;
      free (s->routes);
      free (s);
      return berth_make_error (err, e, "listen on `%s`", opts->listen);
    }
  info = MHD_get_daemon_info (s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  format_address (s, &ss, any, info ? info->port : 0);
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
  if (server == NULL)
    return;
  if (server->daemon)
    MHD_stop_daemon (server->daemon);
  free (server->routes);
  free (server);
}
