/* server.c - Berth's HTTP/1.1 server (see server.h).
 *
 * Each worker thread runs one epoll loop (level-triggered) over its
 * connections; the listening socket is in every worker's epoll set with
 * EPOLLEXCLUSIVE, so a new connection wakes one worker, which keeps it for
 * its whole life.  A connection goes through these states:
 *
 *   HEAD     reading the request line and headers into its input buffer;
 *   BODY     passing the body to the handler's reader (or dropping it),
 *            straight from the input buffer, decoding chunked bodies;
 *   SEND     writing the answer: the head from a buffer, then the body
 *            from memory (writev), a file (sendfile) or a stream callback;
 *   LINGER   the answer went out before a body that nobody reads: the
 *            socket is shut down for writing and what still comes is
 *            read and dropped for a while, so that the client sees the
 *            answer instead of a reset.
 *
 * Idle connections sit on a per-worker list ordered by their last
 * activity, so the timeout costs O(1) per event.  HTTPS goes through
 * OpenSSL's libssl on the same non-blocking sockets; files are then read
 * and written through TLS instead of sendfile().
 *
 * The worker threads block SIGPIPE: a write to a closed connection (send,
 * sendfile, or libssl's write) fails with EPIPE instead of killing the
 * process, whatever the program does with the signal.  */
#include "http/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "json.h"
#include "utils.h"

#define MAX_PARAMS 8
/* Header fields in one request: each costs two allocations.  */
#define MAX_HEADERS 256
#define DEFAULT_MAX_HEADER (64 * 1024)
#define DEFAULT_TIMEOUT 300
/* What the input buffer holds beyond the headers: bodies arrive in reads
 * of about this size.  */
#define BODY_BUFFER (128 * 1024)
/* The input buffer's first size: most heads fit.  */
#define HEAD_BUFFER (8 * 1024)
/* After a handler refused a body (or answered without reading it), that
 * much is still read and dropped so that the answer can be sent on a
 * connection that stays open; beyond it the connection is closed.  */
#define DISCARD_MAX (16 * 1024 * 1024)
/* How long and how much a closing connection keeps reading (LINGER).  */
#define LINGER_NS (2 * 1000000000ULL)
#define LINGER_MAX (64 * 1024 * 1024)
/* The buffer of streamed and TLS file bodies.  */
#define STREAM_BUFFER (64 * 1024)
/* Most connections one wake-up accepts, so that one busy listener does not
 * starve the connections of its worker.  */
#define ACCEPT_BATCH 32
/* A worker quiet for this long after some work trims the heap.  */
#define TRIM_AFTER_MS 1000

struct worker;
struct conn;

struct http_server
{
  int listen_fd;
  struct worker *workers;
  unsigned n_workers;
  struct http_route *routes;
  size_t n_routes;
  void *data;
  uint64_t max_body;
  size_t max_header;
  uint64_t timeout_ns;
  http_log_fn log;
  void *log_data;
  const char *const *headers;
  SSL_CTX *tls;
  char address[INET6_ADDRSTRLEN + 16];
};

struct worker
{
  struct http_server *server;
  pthread_t thread;
  bool started;
  int epfd;
  int wake_fd;  /* an eventfd: written by http_server_stop() */
  int spare_fd; /* kept open to be closed when accept() hits EMFILE */
  /* Connections by last activity, oldest first.  */
  struct conn *oldest, *newest;
  time_t date_second;
  char date[40];
  bool busy; /* events since the last heap trim */
};

struct param
{
  const char *name; /* points into the route's pattern */
  size_t name_len;
  char *value;
};

struct kv
{
  char *name;
  char *value; /* NULL for a query key without "=" */
};

enum body_kind
{
  BODY_NONE,
  BODY_MEM,
  BODY_FD,
  BODY_STREAM,
  BODY_HEAD, /* a Content-Length without a body */
};

enum chunk_state
{
  CHUNK_SIZE,
  CHUNK_DATA,
  CHUNK_DATA_END,
  CHUNK_TRAILER,
};

struct http_request
{
  struct http_server *server;
  struct conn *conn;
  char *target; /* as sent, with the query: for the log */
  char method[16];
  char *path;
  uint64_t start_ns;
  int minor; /* HTTP/1.MINOR */
  bool keep_alive;
  bool completed;

  struct kv *headers;
  size_t n_headers;
  struct kv *query;
  size_t n_query;

  int64_t content_length;
  bool chunked;
  bool has_body;
  bool expect_continue;
  /* Body decoding.  */
  uint64_t body_left; /* Content-Length bodies */
  enum chunk_state chunk_state;
  uint64_t chunk_left;
  uint64_t body_received;
  uint64_t discarded;
  bool body_done;

  struct param params[MAX_PARAMS];
  size_t n_params;

  http_body_fn on_data;
  http_end_fn on_end;
  void *body_ctx;
  bool body_failed;

  http_finish_fn on_finish;
  void *finish_ctx;

  /* The response.  */
  bool has_response;
  unsigned status;
  char *resp_headers; /* "Name: value\r\n"... */
  size_t resp_headers_len, resp_headers_cap;
  enum body_kind body_kind;
  char *mem;
  size_t mem_len;
  bool mem_owned;
  int fd;
  uint64_t fd_offset;
  uint64_t body_len; /* HTTP_SIZE_UNKNOWN for a stream of unknown size */
  http_read_fn stream_read;
  void *stream_ctx;
  void (*stream_free) (void *ctx);
  bool chunked_out;
  uint64_t body_sent;  /* bytes of the body (not framing) sent */
  uint64_t resp_bytes; /* for the log */
};

enum conn_state
{
  CONN_HEAD,
  CONN_BODY,
  CONN_SEND,
  CONN_LINGER,
};

struct conn
{
  struct worker *w;
  int fd;
  SSL *ssl;
  bool tls_want_write; /* libssl needs the socket writable to go on */
  bool tls_want_read;  /* a write waits for libssl to read first */
  enum conn_state state;
  struct conn *older, *newer;
  uint64_t deadline_ns;
  uint32_t events; /* registered with epoll */

  char *in;
  size_t in_len, in_cap;
  bool peer_eof;

  struct http_request *req;

  /* The head of the answer (and small framing pieces), then the body.  */
  char *out;
  size_t out_len, out_off, out_cap;
  char *stream_buf;
  size_t stream_len, stream_off;
  bool stream_end;
  bool close_after;
  uint64_t linger_bytes;
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

/* --- Small buffers ----------------------------------------------------- */

static void
buf_append (char **buf, size_t *len, size_t *cap, const char *data, size_t n)
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

static void buf_appendf (char **buf, size_t *len, size_t *cap, const char *fmt,
                         ...) __attribute__ ((format (printf, 4, 5)));

static void
buf_appendf (char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
  char tmp[1024];
  va_list ap;
  int n;
  va_start (ap, fmt);
  n = vsnprintf (tmp, sizeof (tmp), fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  buf_append (buf, len, cap, tmp,
              (size_t) n < sizeof (tmp) ? (size_t) n : sizeof (tmp) - 1);
}

/* --- Responses --------------------------------------------------------- */

static void
release_body (struct http_request *req)
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
  release_body (req);
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
  buf_append (&req->resp_headers, &req->resp_headers_len,
              &req->resp_headers_cap, name, strlen (name));
  buf_append (&req->resp_headers, &req->resp_headers_len,
              &req->resp_headers_cap, ": ", 2);
  buf_append (&req->resp_headers, &req->resp_headers_len,
              &req->resp_headers_cap, value, strlen (value));
  buf_append (&req->resp_headers, &req->resp_headers_len,
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

/* --- Parsing the head -------------------------------------------------- */

/* Decode %XX escapes of S[0..N) (and '+' as a space when PLUS); a '%'
 * without two hex digits stays as it is, and so does "%00": a C string
 * cannot hold the NUL, and the handler refuses the three characters as it
 * refuses any other that does not belong.  */
static char *
percent_decode (const char *s, size_t n, bool plus)
{
  char *out = xmalloc (n + 1), *o = out;
  size_t i;
  for (i = 0; i < n; i++)
    {
      int hi, lo;
      if (s[i] == '%' && i + 2 < n && (hi = hex_digit_value (s[i + 1])) >= 0
          && (lo = hex_digit_value (s[i + 2])) >= 0)
        {
          if (hi == 0 && lo == 0)
            {
              *o++ = s[i];
              continue;
            }
          *o++ = (char) (hi << 4 | lo);
          i += 2;
        }
      else if (plus && s[i] == '+')
        *o++ = ' ';
      else
        *o++ = s[i];
    }
  *o = '\0';
  return out;
}

static void
parse_query (struct http_request *req, const char *q)
{
  while (*q)
    {
      size_t n = strcspn (q, "&");
      const char *eq = memchr (q, '=', n);
      if (n > 0)
        {
          struct kv kv = { NULL, NULL };
          kv.name = percent_decode (q, eq ? (size_t) (eq - q) : n, true);
          if (eq)
            kv.value = percent_decode (eq + 1, n - (eq + 1 - q), true);
          req->query = xrealloc (req->query,
                                 (req->n_query + 1) * sizeof (*req->query));
          req->query[req->n_query++] = kv;
        }
      q += n;
      if (*q == '&')
        q++;
    }
}

static bool
is_tchar (unsigned char c)
{
  return isalnum (c) || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

static void
free_request (struct http_request *req)
{
  size_t i;
  if (req == NULL)
    return;
  release_body (req);
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

/* Split the head (request line and headers, LEN bytes ending with an empty
 * line) into REQ.  0, or the status to answer with.  */
static unsigned
parse_head (struct http_request *req, char *head, size_t len)
{
  char *line = head, *end = head + len, *eol, *sp1, *sp2, *q;
  size_t n;

  /* A NUL byte would cut what follows it off every string below.  */
  if (memchr (head, '\0', len))
    return 400;
  /* The request line: METHOD SP TARGET SP HTTP/1.x.  */
  eol = memchr (line, '\n', end - line);
  *eol = '\0';
  if (eol > line && eol[-1] == '\r')
    eol[-1] = '\0';
  if (strchr (line, '\r'))
    return 400;
  sp1 = strchr (line, ' ');
  if (sp1 == NULL)
    return 400;
  sp2 = strchr (sp1 + 1, ' ');
  if (sp2 == NULL || strchr (sp2 + 1, ' '))
    return 400;
  n = sp1 - line;
  if (n == 0 || n >= sizeof (req->method))
    return n == 0 ? 400 : 501;
  for (q = line; q < sp1; q++)
    if (!is_tchar ((unsigned char) *q))
      return 400;
  memcpy (req->method, line, n);
  req->method[n] = '\0';
  *sp2 = '\0';
  req->target = xstrdup (sp1 + 1);
  if (strncmp (sp2 + 1, "HTTP/1.", 7) != 0 || !isdigit ((unsigned char) sp2[8])
      || sp2[9] != '\0')
    return strncmp (sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
  /* A later 1.x is answered as 1.1 (RFC 9110 2.5).  */
  req->minor = sp2[8] - '0' > 1 ? 1 : sp2[8] - '0';
  for (q = req->target; *q; q++)
    if ((unsigned char) *q <= ' ' || *q == 0x7f)
      return 400;
  if (req->target[0] != '/')
    return 400;
  q = strchr (req->target, '?');
  req->path = percent_decode (
      req->target, q ? (size_t) (q - req->target) : strlen (req->target),
      false);
  if (q)
    parse_query (req, q + 1);

  /* The headers.  */
  for (line = eol + 1; line < end; line = eol + 1)
    {
      char *colon, *v, *ve;
      struct kv kv;
      eol = memchr (line, '\n', end - line);
      if (eol == NULL)
        break;
      ve = eol;
      if (ve > line && ve[-1] == '\r')
        ve--;
      if (ve == line)
        break; /* the empty line */
      if (*line == ' ' || *line == '\t')
        return 400; /* obsolete line folding */
      colon = memchr (line, ':', ve - line);
      if (colon == NULL || colon == line)
        return 400;
      for (q = line; q < colon; q++)
        if (!is_tchar ((unsigned char) *q))
          return 400;
      for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
        ;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      for (q = v; q < ve; q++)
        if (*q == '\0' || *q == '\r')
          return 400;
      if (req->n_headers == MAX_HEADERS)
        return 431;
      kv.name = xstrndup (line, colon - line);
      kv.value = xstrndup (v, ve - v);
      req->headers = xrealloc (req->headers,
                               (req->n_headers + 1) * sizeof (*req->headers));
      req->headers[req->n_headers++] = kv;
    }
  return 0;
}

/* Framing and connection headers.  0, or the status to answer with.  */
static unsigned
check_framing (struct http_request *req)
{
  const char *te = NULL, *conn = NULL;
  size_t i;
  bool have_cl = false;

  req->content_length = -1;
  for (i = 0; i < req->n_headers; i++)
    {
      const char *name = req->headers[i].name, *v = req->headers[i].value;
      if (strcasecmp (name, "Content-Length") == 0)
        {
          int64_t cl;
          const char *p;
          for (p = v; *p; p++)
            if (!isdigit ((unsigned char) *p))
              return 400;
          if (parse_int64 (v, &cl) < 0 || cl < 0)
            return 400;
          if (have_cl && cl != req->content_length)
            return 400;
          have_cl = true;
          req->content_length = cl;
        }
      else if (strcasecmp (name, "Transfer-Encoding") == 0)
        {
          if (te)
            return 400;
          te = v;
        }
      else if (strcasecmp (name, "Connection") == 0)
        conn = v;
      else if (strcasecmp (name, "Expect") == 0)
        {
          if (strcasecmp (v, "100-continue") != 0)
            return 417;
          req->expect_continue = req->minor >= 1;
        }
    }
  if (te)
    {
      /* A body sent both ways is how requests get smuggled: refused.  */
      if (have_cl)
        return 400;
      if (strcasecmp (te, "chunked") != 0)
        return 501;
      req->chunked = true;
      req->content_length = -1;
    }
  if (req->minor >= 1 && http_request_header (req, "Host") == NULL)
    return 400;
  req->has_body = req->chunked || req->content_length > 0;
  req->body_left = req->content_length > 0 ? (uint64_t) req->content_length : 0;
  if (req->minor == 0)
    req->keep_alive = conn && strcasestr (conn, "keep-alive");
  else
    req->keep_alive = !(conn && strcasestr (conn, "close"));
  return 0;
}

/* --- Connections -------------------------------------------------------- */

static void conn_close (struct conn *c);
static void conn_update_events (struct conn *c);

static void
conn_touch (struct conn *c, uint64_t deadline)
{
  struct worker *w = c->w;
  /* Unlink, then append as the newest.  */
  if (c->older)
    c->older->newer = c->newer;
  else if (w->oldest == c)
    w->oldest = c->newer;
  if (c->newer)
    c->newer->older = c->older;
  else if (w->newest == c)
    w->newest = c->older;
  c->older = w->newest;
  c->newer = NULL;
  if (w->newest)
    w->newest->newer = c;
  else
    w->oldest = c;
  w->newest = c;
  c->deadline_ns = deadline;
}

static void
conn_unlink (struct conn *c)
{
  struct worker *w = c->w;
  if (c->older)
    c->older->newer = c->newer;
  else
    w->oldest = c->newer;
  if (c->newer)
    c->newer->older = c->older;
  else
    w->newest = c->older;
  c->older = c->newer = NULL;
}

/* Receive into BUF: > 0 bytes, 0 at the end of the stream, -1 with errno
 * (EAGAIN: try again when epoll says so).  */
static ssize_t
conn_recv (struct conn *c, void *buf, size_t n)
{
  size_t got = 0;
  int r, e;
  if (c->ssl == NULL)
    {
      ssize_t k;
      do
        k = recv (c->fd, buf, n, 0);
      while (k < 0 && errno == EINTR);
      return k;
    }
  ERR_clear_error ();
  c->tls_want_write = false;
  r = SSL_read_ex (c->ssl, buf, n, &got);
  if (r == 1)
    return (ssize_t) got;
  e = SSL_get_error (c->ssl, r);
  switch (e)
    {
    case SSL_ERROR_WANT_READ:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      c->tls_want_write = true;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      if (errno == 0)
        return 0; /* end of file without close_notify */
      return -1;
    default:
      errno = EPROTO;
      return -1;
    }
}

static ssize_t
conn_send (struct conn *c, const void *buf, size_t n, bool more)
{
  size_t put = 0;
  int r, e;
  if (c->ssl == NULL)
    {
      ssize_t k;
      do
        k = send (c->fd, buf, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
      while (k < 0 && errno == EINTR);
      return k;
    }
  ERR_clear_error ();
  c->tls_want_write = false;
  c->tls_want_read = false;
  r = SSL_write_ex (c->ssl, buf, n, &put);
  if (r == 1)
    return (ssize_t) put;
  e = SSL_get_error (c->ssl, r);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
    {
      c->tls_want_write = e == SSL_ERROR_WANT_WRITE;
      c->tls_want_read = e == SSL_ERROR_WANT_READ;
      errno = EAGAIN;
      return -1;
    }
  if (e != SSL_ERROR_SYSCALL || errno == 0)
    errno = EPIPE;
  return -1;
}

static const char *
reason_phrase (unsigned status)
{
  switch (status)
    {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
    }
}

static const char *
http_date (struct worker *w)
{
  time_t now = time (NULL);
  if (now != w->date_second)
    {
      struct tm tm;
      gmtime_r (&now, &tm);
      strftime (w->date, sizeof (w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
      w->date_second = now;
    }
  return w->date;
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

static void
log_request (struct http_request *req)
{
  uint64_t us;
  if (req->server->log == NULL)
    return;
  us = (now_ns () - req->start_ns) / 1000;
  http_server_log (
      req->server, HTTP_LOG_INFO, "%s %s %u %llu %llu.%03llums",
      req->method[0] ? req->method : "-", req->target ? req->target : "-",
      req->has_response ? req->status : 0,
      (unsigned long long) (http_request_is_head (req) ? 0 : req->resp_bytes),
      (unsigned long long) (us / 1000), (unsigned long long) (us % 1000));
}

static bool
status_has_body (unsigned status)
{
  return !(status < 200 || status == 204 || status == 304);
}

/* Step 3: the finish callback, then the head of the answer into the
 * output buffer; the connection then sends it.  */
static void
queue_response (struct conn *c)
{
  struct http_request *req = c->req;
  const char *const *h;
  bool body = status_has_body (req->status);

  /* Before the answer leaves: a client that got it may send its next
   * request on another connection at once, and must find the state the
   * answer described (an upload session released, say).  */
  finish (req, req->completed);
  if (!req->has_response)
    {
      http_server_log (req->server, HTTP_LOG_ERROR,
                       "%s %s: the handler set no response", req->method,
                       req->target);
      respond_text (req, 500, "internal error\n");
      body = true;
    }
  if (!req->keep_alive || c->peer_eof)
    c->close_after = true;
  if (req->body_kind == BODY_HEAD && !http_request_is_head (req) && body)
    c->close_after = true; /* a length without the body: nothing follows */

  c->out_len = c->out_off = 0;
  buf_appendf (&c->out, &c->out_len, &c->out_cap,
               "HTTP/1.%d %u %s\r\nDate: %s\r\n", req->minor, req->status,
               reason_phrase (req->status), http_date (c->w));
  for (h = req->server->headers; h && h[0] && h[1]; h += 2)
    buf_appendf (&c->out, &c->out_len, &c->out_cap, "%s: %s\r\n", h[0], h[1]);
  if (req->resp_headers_len)
    buf_append (&c->out, &c->out_len, &c->out_cap, req->resp_headers,
                req->resp_headers_len);
  if (body)
    {
      if (req->body_len != HTTP_SIZE_UNKNOWN)
        buf_appendf (&c->out, &c->out_len, &c->out_cap,
                     "Content-Length: %llu\r\n",
                     (unsigned long long) req->body_len);
      else if (req->minor >= 1)
        {
          buf_append (&c->out, &c->out_len, &c->out_cap,
                      "Transfer-Encoding: chunked\r\n", 28);
          req->chunked_out = true;
        }
      else
        c->close_after = true; /* the end of the body is the close */
    }
  if (c->close_after)
    buf_append (&c->out, &c->out_len, &c->out_cap, "Connection: close\r\n", 19);
  else if (req->minor == 0)
    buf_append (&c->out, &c->out_len, &c->out_cap, "Connection: keep-alive\r\n",
                24);
  buf_append (&c->out, &c->out_len, &c->out_cap, "\r\n", 2);
  if (!body || http_request_is_head (req) || req->body_kind == BODY_HEAD)
    release_body (req);
  c->stream_len = c->stream_off = 0;
  c->stream_end = false;
  c->state = CONN_SEND;
}

/* The request is over (the answer sent, or the connection dropped).  */
static void
end_request (struct conn *c)
{
  struct http_request *req = c->req;
  if (req == NULL)
    return;
  c->req = NULL;
  finish (req, false);
  if (req->method[0])
    log_request (req);
  free_request (req);
}

/* Fill the stream buffer of C with the next piece of a file body (over
 * TLS) or of a streamed body, chunk-framed when needed.  false on error.  */
static bool
refill_stream (struct conn *c)
{
  struct http_request *req = c->req;
  uint64_t left = req->body_len == HTTP_SIZE_UNKNOWN
                      ? UINT64_MAX
                      : req->body_len - req->body_sent;
  size_t max = STREAM_BUFFER, hdr = req->chunked_out ? 12 : 0;
  char *data;
  long n;

  if (c->stream_buf == NULL)
    c->stream_buf = xmalloc (STREAM_BUFFER + 16);
  data = c->stream_buf + hdr;
  if (left < max)
    max = (size_t) left;
  if (max == 0)
    n = 0;
  else if (req->body_kind == BODY_FD)
    {
      do
        n = pread (req->fd, data, max,
                   (off_t) (req->fd_offset + req->body_sent));
      while (n < 0 && errno == EINTR);
      if (n == 0)
        n = -1; /* the file is shorter than announced */
    }
  else
    n = req->stream_read (req->stream_ctx, req->body_sent, data, max);
  if (n < 0)
    return false;
  if (n == 0 && req->body_len != HTTP_SIZE_UNKNOWN
      && req->body_sent < req->body_len)
    return false;
  req->body_sent += (uint64_t) n;
  if (!req->chunked_out)
    {
      memmove (c->stream_buf, data, (size_t) n);
      c->stream_len = (size_t) n;
    }
  else if (n > 0)
    {
      /* "%08lx\r\n" then the data then "\r\n".  */
      char sz[16];
      int k = snprintf (sz, sizeof (sz), "%lx\r\n", (unsigned long) n);
      memcpy (data - k, sz, (size_t) k);
      memmove (c->stream_buf, data - k, (size_t) k + (size_t) n);
      memcpy (c->stream_buf + k + n, "\r\n", 2);
      c->stream_len = (size_t) k + (size_t) n + 2;
    }
  else
    {
      memcpy (c->stream_buf, "0\r\n\r\n", 5);
      c->stream_len = 5;
    }
  c->stream_off = 0;
  if (n == 0
      || (req->body_len != HTTP_SIZE_UNKNOWN && req->body_sent == req->body_len
          && !req->chunked_out))
    c->stream_end = true;
  req->resp_bytes = req->body_sent;
  return true;
}

/* Write what can be written.  1: the answer is out; 0: wait for the
 * socket; -1: the connection is broken.  */
static int
send_response (struct conn *c)
{
  struct http_request *req = c->req;
  ssize_t k;

  for (;;)
    {
      if (c->out_off < c->out_len)
        {
          /* The head, and a memory body with it.  */
          if (req->body_kind == BODY_MEM && c->ssl == NULL
              && req->body_sent < req->mem_len)
            {
              struct iovec iov[2]
                  = { { c->out + c->out_off, c->out_len - c->out_off },
                      { req->mem + req->body_sent,
                        req->mem_len - req->body_sent } };
              do
                k = writev (c->fd, iov, 2);
              while (k < 0 && errno == EINTR);
              if (k > 0)
                {
                  size_t h = c->out_len - c->out_off;
                  if ((size_t) k <= h)
                    c->out_off += (size_t) k;
                  else
                    {
                      c->out_off = c->out_len;
                      req->body_sent += (size_t) k - h;
                    }
                }
            }
          else
            {
              k = conn_send (c, c->out + c->out_off, c->out_len - c->out_off,
                             req->body_kind == BODY_FD && req->body_len > 0);
              if (k > 0)
                c->out_off += (size_t) k;
            }
          if (k < 0)
            return errno == EAGAIN ? 0 : -1;
          continue;
        }
      switch (req->body_kind)
        {
        case BODY_NONE:
        case BODY_HEAD:
          return 1;
        case BODY_MEM:
          if (req->body_sent >= req->mem_len)
            return 1;
          k = conn_send (c, req->mem + req->body_sent,
                         req->mem_len - req->body_sent, false);
          if (k < 0)
            return errno == EAGAIN ? 0 : -1;
          req->body_sent += (size_t) k;
          break;
        case BODY_FD:
          if (c->ssl == NULL)
            {
              off_t off;
              size_t chunk;
              if (req->body_sent >= req->body_len)
                return 1;
              off = (off_t) (req->fd_offset + req->body_sent);
              chunk = req->body_len - req->body_sent > (1 << 30)
                          ? (size_t) 1 << 30
                          : (size_t) (req->body_len - req->body_sent);
              do
                k = sendfile (c->fd, req->fd, &off, chunk);
              while (k < 0 && errno == EINTR);
              if (k < 0)
                return errno == EAGAIN ? 0 : -1;
              if (k == 0)
                return -1; /* the file is shorter than announced */
              req->body_sent += (uint64_t) k;
              req->resp_bytes = req->body_sent;
              break;
            }
          /* Through TLS: like a stream.  */
          __attribute__ ((fallthrough));
        case BODY_STREAM:
          if (c->stream_off == c->stream_len)
            {
              if (c->stream_end)
                return 1;
              if (!refill_stream (c))
                return -1;
              if (c->stream_len == 0)
                return 1;
            }
          k = conn_send (c, c->stream_buf + c->stream_off,
                         c->stream_len - c->stream_off, false);
          if (k < 0)
            return errno == EAGAIN ? 0 : -1;
          c->stream_off += (size_t) k;
          break;
        }
    }
}

static void
start_linger (struct conn *c)
{
  if (c->ssl == NULL)
    shutdown (c->fd, SHUT_WR);
  else
    SSL_shutdown (c->ssl);
  c->state = CONN_LINGER;
  c->linger_bytes = 0;
  conn_touch (c, now_ns () + LINGER_NS);
}

/* Whether a body nobody reads is dropped after an early answer (keeping
 * the connection), rather than the answer going at once and the
 * connection closing after it.  A client waiting for "100 Continue" has
 * sent nothing yet; a large or chunked body is not worth reading.  */
static bool
drop_body_first (struct http_request *req)
{
  return !req->expect_continue && req->content_length >= 0
         && req->content_length <= DISCARD_MAX;
}

static struct http_request *
new_request (struct conn *c)
{
  struct http_request *req = xmalloc0 (sizeof (*req));
  req->server = c->w->server;
  req->conn = c;
  req->fd = -1;
  req->start_ns = now_ns ();
  req->content_length = -1;
  req->minor = 1;
  c->req = req;
  c->close_after = false;
  return req;
}

/* Answer a request that cannot be understood with STATUS (as a text such
 * as "400 bad request") and close the connection after it.  */
static void
head_fail (struct conn *c, unsigned status)
{
  struct http_request *req = c->req ? c->req : new_request (c);
  char text[64];
  char *p;

  snprintf (text, sizeof (text), "%u %s\n", status, reason_phrase (status));
  for (p = text; *p; p++)
    *p = (char) tolower ((unsigned char) *p);
  if (req->method[0] == '\0')
    snprintf (req->method, sizeof (req->method), "-");
  respond_text (req, status, text);
  req->keep_alive = false;
  req->has_body = false;
  c->in_len = 0;
  c->close_after = true;
  queue_response (c);
}

/* Step 1 on a complete head: parse, check, dispatch.  */
static void
begin_request (struct conn *c, char *head, size_t len)
{
  struct http_server *srv = c->w->server;
  struct http_request *req = new_request (c);
  unsigned status;

  status = parse_head (req, head, len);
  if (status == 0)
    status = check_framing (req);
  if (status)
    {
      head_fail (c, status);
      return;
    }
  if (srv->max_body && req->content_length > 0
      && (uint64_t) req->content_length > srv->max_body)
    {
      /* Not worth reading: the answer now, the close after it.  */
      respond_text (req, 413, "413 request body too large\n");
      c->close_after = true;
      queue_response (c);
      return;
    }
  dispatch (req);

  if (!req->has_body)
    {
      req->body_done = true;
      if (req->on_end)
        req->on_end (req, req->body_ctx);
      req->completed = true;
      queue_response (c);
      return;
    }
  if (req->has_response && req->on_data == NULL && req->on_end == NULL)
    {
      if (!drop_body_first (req))
        {
          /* The answer now; the connection closes after it.  */
          c->close_after = true;
          queue_response (c);
          return;
        }
    }
  else if (req->expect_continue)
    {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      /* A tiny write to a fresh connection: it fits the socket buffer.
       * If it does not go at once, the client sends the body anyway
       * after its own timeout.  */
      (void) conn_send (c, cont, sizeof (cont) - 1, false);
    }
  c->state = CONN_BODY;
}

/* Hand DATA to the reader (or drop it).  false: stop reading, the
 * connection closes after the answer.  */
static bool
body_data (struct conn *c, const char *data, size_t len)
{
  struct http_request *req = c->req;
  struct http_server *srv = c->w->server;

  req->body_received += len;
  if (srv->max_body && req->body_received > srv->max_body)
    {
      /* A chunked body over the limit: the answer goes now.  */
      if (!req->body_failed)
        respond_text (req, 413, "413 request body too large\n");
      req->body_failed = true;
      return false;
    }
  if (req->on_data && !req->body_failed)
    {
      if (req->on_data (req, data, len, req->body_ctx) < 0)
        {
          req->body_failed = true;
          if (!req->has_response)
            respond_text (req, 500, "internal error\n");
          /* The rest is dropped, if it is not too much.  */
          if (req->content_length < 0
              || req->content_length - (int64_t) req->body_received
                     > DISCARD_MAX)
            return false;
        }
      return true;
    }
  req->discarded += len;
  return req->discarded <= DISCARD_MAX;
}

/* Step 2: decode the body in C's input buffer.  Returns the bytes used;
 * sets *STOP when the connection must answer and close.  */
static size_t
body_feed (struct conn *c, char *data, size_t len, bool *stop)
{
  struct http_request *req = c->req;
  size_t used = 0;

  while (used < len && !req->body_done && !*stop)
    {
      char *p = data + used;
      size_t avail = len - used, n;
      if (!req->chunked)
        {
          n = avail < req->body_left ? avail : (size_t) req->body_left;
          req->body_left -= n;
          used += n;
          if (!body_data (c, p, n))
            *stop = true;
          if (req->body_left == 0)
            req->body_done = true;
          continue;
        }
      switch (req->chunk_state)
        {
        case CHUNK_SIZE:
        case CHUNK_TRAILER:
          {
            char *eol = memchr (p, '\n', avail);
            if (eol == NULL)
              {
                if (avail > 4096)
                  goto bad;
                return used;
              }
            *eol = '\0';
            if (eol > p && eol[-1] == '\r')
              eol[-1] = '\0';
            used += (size_t) (eol - p) + 1;
            if (req->chunk_state == CHUNK_TRAILER)
              {
                if (*p == '\0')
                  req->body_done = true;
                continue;
              }
            {
              uint64_t size = 0;
              const char *q = p;
              int d;
              if (hex_digit_value (*q) < 0)
                goto bad;
              for (; (d = hex_digit_value (*q)) >= 0; q++)
                {
                  if (size >> 60)
                    goto bad;
                  size = size << 4 | (uint64_t) d;
                }
              while (*q == ' ' || *q == '\t')
                q++;
              if (*q != '\0' && *q != ';')
                goto bad;
              req->chunk_left = size;
              req->chunk_state = size ? CHUNK_DATA : CHUNK_TRAILER;
            }
            continue;
          }
        case CHUNK_DATA:
          n = avail < req->chunk_left ? avail : (size_t) req->chunk_left;
          req->chunk_left -= n;
          used += n;
          if (req->chunk_left == 0)
            req->chunk_state = CHUNK_DATA_END;
          if (!body_data (c, p, n))
            *stop = true;
          continue;
        case CHUNK_DATA_END:
          if (avail < 2 && p[0] == '\r')
            return used;
          if (p[0] == '\n')
            used += 1;
          else if (p[0] == '\r' && p[1] == '\n')
            used += 2;
          else
            goto bad;
          req->chunk_state = CHUNK_SIZE;
          continue;
        }
    }
  return used;

bad:
  if (!req->has_response || !req->body_failed)
    respond_text (req, 400, "400 bad chunked body\n");
  req->body_failed = true;
  *stop = true;
  return len;
}

/* Process what the input buffer holds.  */
static void
conn_process (struct conn *c)
{
  struct http_server *srv = c->w->server;

  while (c->state == CONN_HEAD || c->state == CONN_BODY)
    {
      if (c->state == CONN_HEAD)
        {
          char *end = NULL;
          size_t i, head_len;
          /* Blank lines before a request are allowed (RFC 9112 2.2).  */
          for (i = 0; i < c->in_len && (c->in[i] == '\r' || c->in[i] == '\n');
               i++)
            ;
          if (i)
            {
              memmove (c->in, c->in + i, c->in_len - i);
              c->in_len -= i;
            }
          for (i = 0; i + 1 < c->in_len; i++)
            if (c->in[i] == '\n'
                && (c->in[i + 1] == '\n'
                    || (c->in[i + 1] == '\r' && i + 2 < c->in_len
                        && c->in[i + 2] == '\n')))
              {
                end = c->in + i + (c->in[i + 1] == '\n' ? 2 : 3);
                break;
              }
          if (end == NULL)
            {
              if (c->in_len > srv->max_header)
                {
                  /* No head within the limit: answered, then closed.  */
                  head_fail (c, memchr (c->in, '\n', c->in_len) ? 431 : 414);
                  break;
                }
              if (c->peer_eof)
                {
                  conn_close (c);
                  return;
                }
              break;
            }
          head_len = (size_t) (end - c->in);
          if (head_len > srv->max_header)
            {
              head_fail (c, 431);
              break;
            }
          {
            char *head = xmalloc (head_len + 1);
            memcpy (head, c->in, head_len);
            head[head_len] = '\0';
            memmove (c->in, end, c->in_len - head_len);
            c->in_len -= head_len;
            begin_request (c, head, head_len);
            free (head);
          }
          continue;
        }
      /* CONN_BODY */
      {
        bool stop = false;
        size_t used = body_feed (c, c->in, c->in_len, &stop);
        struct http_request *req = c->req;
        memmove (c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        if (stop)
          {
            c->close_after = true;
            queue_response (c);
            break;
          }
        if (req->body_done)
          {
            if (req->on_end && !req->body_failed)
              req->on_end (req, req->body_ctx);
            req->completed = !req->body_failed;
            queue_response (c);
            break;
          }
        if (c->peer_eof)
          {
            conn_close (c); /* cut short: finish (false) */
            return;
          }
        break;
      }
    }
}

/* Make room in C's input buffer: a small one for heads, grown up to just
 * over the header limit (so that an overlong head is seen as such), and
 * room for a body read in the BODY state.  false when it is full at the
 * size the state allows.  */
static bool
input_room (struct conn *c)
{
  struct http_server *srv = c->w->server;
  size_t limit = c->state == CONN_BODY ? srv->max_header + BODY_BUFFER
                                       : srv->max_header + 1;
  size_t want;

  if (c->in && c->in_len < c->in_cap)
    return true;
  if (c->in_cap >= limit)
    return false;
  want = c->state == CONN_BODY ? limit
         : c->in_cap           ? c->in_cap * 2
                               : HEAD_BUFFER;
  if (want > limit)
    want = limit;
  c->in = xrealloc (c->in, want + 1);
  c->in_cap = want;
  return true;
}

/* Read what the socket has.  false when the connection is gone.  */
static bool
conn_read (struct conn *c)
{
  struct http_server *srv = c->w->server;

  while (!c->peer_eof && (c->state == CONN_HEAD || c->state == CONN_BODY))
    {
      ssize_t n;
      if (!input_room (c))
        {
          conn_process (c);
          if (c->fd < 0)
            return false;
          if (!input_room (c))
            break; /* a state that does not take input now */
          continue;
        }
      n = conn_recv (c, c->in + c->in_len, c->in_cap - c->in_len);
      if (n > 0)
        {
          c->in_len += (size_t) n;
          conn_touch (c, now_ns () + srv->timeout_ns);
          continue;
        }
      if (n == 0)
        {
          c->peer_eof = true;
          break;
        }
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      if (c->req)
        http_server_log (srv, HTTP_LOG_DEBUG, "%s %s: read: %s", c->req->method,
                         c->req->target, strerror (errno));
      conn_close (c);
      return false;
    }
  conn_process (c);
  return c->fd >= 0;
}

static void
conn_free (struct conn *c)
{
  free (c->in);
  free (c->out);
  free (c->stream_buf);
  free (c);
}

static void
conn_close (struct conn *c)
{
  end_request (c);
  conn_unlink (c);
  epoll_ctl (c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  if (c->ssl)
    SSL_free (c->ssl);
  c->ssl = NULL;
  close (c->fd);
  c->fd = -1;
  /* Freed by the event loop, which may still hold C.  */
}

/* The answer is out (or the connection broke).  */
static void
conn_sent (struct conn *c)
{
  struct http_server *srv = c->w->server;
  bool unread_body = c->req && c->req->has_body && !c->req->body_done;
  end_request (c);
  if (c->close_after || unread_body)
    {
      /* Closing at once while the client still sends (a body nobody
       * reads, the rest of an overlong head) would reset the connection,
       * and the client could lose the answer: the server reads on for a
       * while, unless the client has already finished.  */
      if (!c->peer_eof)
        start_linger (c);
      else
        conn_close (c);
      return;
    }
  c->state = CONN_HEAD;
  c->out_len = c->out_off = 0;
  free (c->stream_buf);
  c->stream_buf = NULL;
  if (c->in_len == 0)
    {
      /* Idle keep-alive connections hold no buffer.  */
      free (c->in);
      c->in = NULL;
      c->in_cap = 0;
    }
  conn_touch (c, now_ns () + srv->timeout_ns);
}

static void
conn_update_events (struct conn *c)
{
  uint32_t ev = 0;
  struct epoll_event e;
  if (c->fd < 0)
    return;
  switch (c->state)
    {
    case CONN_HEAD:
    case CONN_BODY:
    case CONN_LINGER:
      ev = EPOLLIN;
      break;
    case CONN_SEND:
      ev = EPOLLOUT;
      break;
    }
  if (c->ssl && c->tls_want_write)
    ev |= EPOLLOUT;
  /* A write that needs libssl to read first (a TLS 1.3 key update, say)
   * waits for the socket to be readable, not writable: it always is.  */
  if (c->ssl && c->state == CONN_SEND && c->tls_want_read)
    ev = EPOLLIN;
  if (ev == c->events)
    return;
  c->events = ev;
  e.events = ev;
  e.data.ptr = c;
  epoll_ctl (c->w->epfd, EPOLL_CTL_MOD, c->fd, &e);
}

static void
conn_linger (struct conn *c)
{
  char buf[16384];
  for (;;)
    {
      ssize_t n = c->ssl ? conn_recv (c, buf, sizeof (buf))
                         : recv (c->fd, buf, sizeof (buf), 0);
      if (n > 0)
        {
          c->linger_bytes += (uint64_t) n;
          if (c->linger_bytes > LINGER_MAX)
            break;
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      break;
    }
  conn_close (c);
}

static void
conn_event (struct conn *c)
{
  for (;;)
    {
      if (c->state == CONN_LINGER)
        {
          conn_linger (c);
          break;
        }
      if (c->state == CONN_HEAD || c->state == CONN_BODY)
        {
          if (!conn_read (c))
            return;
          if (c->state != CONN_SEND)
            break;
        }
      if (c->state == CONN_SEND)
        {
          int r = send_response (c);
          if (r < 0)
            {
              if (c->req)
                http_server_log (c->w->server, HTTP_LOG_DEBUG,
                                 "%s %s: write: %s", c->req->method,
                                 c->req->target, strerror (errno));
              conn_close (c);
              return;
            }
          conn_touch (c, now_ns () + c->w->server->timeout_ns);
          if (r == 0)
            break;
          conn_sent (c);
          if (c->fd < 0)
            return;
          /* Pipelined requests, or a new one already in the buffer.  */
          if (c->state == CONN_HEAD && c->in_len == 0
              && !(c->ssl && SSL_has_pending (c->ssl)))
            break;
          continue;
        }
      break;
    }
  if (c->fd >= 0)
    conn_update_events (c);
}

/* --- Workers ----------------------------------------------------------- */

static void
accept_some (struct worker *w)
{
  struct http_server *srv = w->server;
  int i;
  for (i = 0; i < ACCEPT_BATCH; i++)
    {
      struct epoll_event e;
      struct conn *c;
      int one = 1;
      int fd
          = accept4 (srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          if ((errno == EMFILE || errno == ENFILE) && w->spare_fd >= 0)
            {
              /* Out of descriptors: take the connection with the spare
               * one and close it, instead of waking up for it forever.  */
              close (w->spare_fd);
              fd = accept4 (srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
              if (fd >= 0)
                close (fd);
              w->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
              http_server_log (srv, HTTP_LOG_WARN,
                               "accept: out of file descriptors");
            }
          return;
        }
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
      c = xmalloc0 (sizeof (*c));
      c->w = w;
      c->fd = fd;
      c->state = CONN_HEAD;
      if (srv->tls)
        {
          c->ssl = SSL_new (srv->tls);
          if (c->ssl == NULL || SSL_set_fd (c->ssl, fd) != 1)
            {
              if (c->ssl)
                SSL_free (c->ssl);
              close (fd);
              free (c);
              continue;
            }
          SSL_set_accept_state (c->ssl);
        }
      c->events = EPOLLIN;
      e.events = c->events;
      e.data.ptr = c;
      if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
        {
          if (c->ssl)
            SSL_free (c->ssl);
          close (fd);
          free (c);
          continue;
        }
      conn_touch (c, now_ns () + srv->timeout_ns);
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
      int n, i, timeout = -1;
      uint64_t now;
      if (w->oldest)
        {
          now = now_ns ();
          timeout = w->oldest->deadline_ns <= now
                        ? 0
                        : (int) ((w->oldest->deadline_ns - now) / 1000000 + 1);
        }
      if (w->busy && (timeout < 0 || timeout > TRIM_AFTER_MS))
        timeout = TRIM_AFTER_MS;
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
            accept_some (w);
          else
            {
              /* A connection is in a batch once: if this event closes
               * it, no later one names it.  */
              conn_event (c);
              if (c->fd < 0)
                conn_free (c);
            }
        }
      /* Idle timeouts.  */
      now = now_ns ();
      while (w->oldest && w->oldest->deadline_ns <= now)
        {
          struct conn *c = w->oldest;
          conn_close (c);
          conn_free (c);
        }
    }
  while (w->oldest)
    {
      struct conn *c = w->oldest;
      conn_close (c);
      conn_free (c);
    }
  return NULL;
}

/* --- TLS ---------------------------------------------------------------- */

static int
tls_error (berth_error_t *err, const char *what)
{
  char buf[256];
  unsigned long e = ERR_get_error ();
  if (e)
    ERR_error_string_n (e, buf, sizeof (buf));
  else
    snprintf (buf, sizeof (buf), "unknown error");
  ERR_clear_error ();
  return berth_make_invalid (err, "TLS: %s: %s", what, buf);
}

static int
tls_setup (struct http_server *s, const char *cert_pem, const char *key_pem,
           berth_error_t *err)
{
  BIO *bio = NULL;
  X509 *cert = NULL;
  EVP_PKEY *key = NULL;
  SSL_CTX *ctx;
  int r = -1;

  ctx = SSL_CTX_new (TLS_server_method ());
  if (ctx == NULL)
    return tls_error (err, "cannot create a context");
  SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                             | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                             | SSL_MODE_RELEASE_BUFFERS);
  bio = BIO_new_mem_buf (cert_pem, -1);
  if (bio == NULL || (cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL)) == NULL)
    {
      r = tls_error (err, "the certificate is not PEM");
      goto out;
    }
  if (SSL_CTX_use_certificate (ctx, cert) != 1)
    {
      r = tls_error (err, "the certificate");
      goto out;
    }
  /* The rest of the chain, if any.  */
  for (;;)
    {
      X509 *extra = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
      if (extra == NULL)
        break;
      if (SSL_CTX_add0_chain_cert (ctx, extra) != 1)
        {
          X509_free (extra);
          r = tls_error (err, "the certificate chain");
          goto out;
        }
    }
  ERR_clear_error ();
  BIO_free (bio);
  bio = BIO_new_mem_buf (key_pem, -1);
  if (bio == NULL
      || (key = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL)) == NULL)
    {
      r = tls_error (err, "the key is not a PEM private key");
      goto out;
    }
  if (SSL_CTX_use_PrivateKey (ctx, key) != 1
      || SSL_CTX_check_private_key (ctx) != 1)
    {
      r = tls_error (err, "the key does not match the certificate");
      goto out;
    }
  s->tls = ctx;
  ctx = NULL;
  r = 0;
out:
  BIO_free (bio);
  X509_free (cert);
  EVP_PKEY_free (key);
  SSL_CTX_free (ctx);
  return r;
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

/* A listening socket on SS (every address of both families when ANY).  */
static int
open_listener (struct sockaddr_storage *ss, socklen_t len, bool *any)
{
  int fd, one = 1, zero = 0;

  fd = socket (ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && *any)
    goto ipv4;
  if (fd < 0)
    return -1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
  if (ss->ss_family == AF_INET6)
    setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, *any ? &zero : &one,
                sizeof (one));
  if (bind (fd, (struct sockaddr *) ss, len) == 0 && listen (fd, 1024) == 0)
    return fd;
  if (!*any || (errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT))
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  close (fd);
ipv4:
  /* No IPv6 on this host: every IPv4 address then.  */
  {
    struct sockaddr_in *a = (struct sockaddr_in *) ss;
    uint16_t port = ((struct sockaddr_in6 *) ss)->sin6_port;
    memset (ss, 0, sizeof (*ss));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl (INADDR_ANY);
    a->sin_port = port;
    *any = false;
    fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return -1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (bind (fd, (struct sockaddr *) ss, sizeof (*a)) == 0
        && listen (fd, 1024) == 0)
      return fd;
    {
      int e = errno;
      close (fd);
      errno = e;
    }
    return -1;
  }
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

int
http_server_start (const struct http_server_opts *opts,
                   struct http_server **out, berth_error_t *err)
{
  struct http_server *s;
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  bool any;
  unsigned threads = opts->threads, i;
  int r;

  r = parse_listen (opts->listen, &ss, &sslen, &any, err);
  if (r < 0)
    return r;
  if ((opts->tls_cert_pem == NULL) != (opts->tls_key_pem == NULL))
    return berth_make_invalid (err, "TLS needs both a certificate and a key");
  if (threads == 0)
    {
      long n = sysconf (_SC_NPROCESSORS_ONLN);
      threads = n > 0 ? (unsigned) n : 1;
    }

  s = xmalloc0 (sizeof (*s));
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
  if (opts->tls_cert_pem
      && (r = tls_setup (s, opts->tls_cert_pem, opts->tls_key_pem, err)) < 0)
    {
      server_free (s);
      return r;
    }

  s->listen_fd = open_listener (&ss, sslen, &any);
  if (s->listen_fd < 0)
    {
      r = berth_make_error (err, errno, "listen on `%s`", opts->listen);
      server_free (s);
      return r;
    }
  {
    struct sockaddr_storage bound;
    socklen_t blen = sizeof (bound);
    unsigned port = 0;
    if (getsockname (s->listen_fd, (struct sockaddr *) &bound, &blen) == 0)
      port = ntohs (bound.ss_family == AF_INET
                        ? ((struct sockaddr_in *) &bound)->sin_port
                        : ((struct sockaddr_in6 *) &bound)->sin6_port);
    format_address (s, &ss, any, port);
  }

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
        goto fail;
      e.events = EPOLLIN;
      e.data.ptr = &w->wake_fd;
      if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->wake_fd, &e) < 0)
        goto fail;
      e.events = EPOLLIN | EPOLLEXCLUSIVE;
      e.data.ptr = &s->listen_fd;
      if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, s->listen_fd, &e) < 0)
        goto fail;
    }
  for (i = 0; i < threads; i++)
    {
      struct worker *w = &s->workers[i];
      int e = pthread_create (&w->thread, NULL, worker_main, w);
      if (e != 0)
        {
          errno = e;
          goto fail;
        }
      w->started = true;
    }
  *out = s;
  return 0;

fail:
  r = berth_make_error (err, errno, "HTTP server: start");
  http_server_stop (s);
  return r;
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
