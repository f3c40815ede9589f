/* conn.c - one connection of the HTTP server, as a state machine driven
 * by its worker's epoll loop:
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
 * activity, so the timeout costs O(1) per event; lingering ones on a list
 * of their own, as their deadline is much nearer.  Each wake-up gives a
 * connection one read, a few requests and a few writes, then its worker
 * serves the others: what it still has buffered (pipelined requests,
 * data libssl holds) puts it on the worker's ready list, served before
 * the worker blocks in epoll again.  HTTPS goes through
 * OpenSSL's libssl on the same non-blocking sockets; files are then read
 * and written through TLS instead of sendfile().  */
#include "http/server-internal.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

#include "utils.h"

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
/* A connection's share of one wake-up of its worker: one read, this many
 * requests begun, this many writes; then the others get their turn.  */
#define REQUESTS_PER_WAKE 16
#define WRITES_PER_WAKE 16
/* The buffer of streamed and TLS file bodies.  */
#define STREAM_BUFFER (64 * 1024)

static void conn_update_events (struct conn *c);

static void
list_remove (struct conn_list *l, struct conn *c, enum conn_link_kind k)
{
  struct conn_link *lk = &c->links[k];
  if (lk->older)
    lk->older->links[k].newer = lk->newer;
  else
    l->oldest = lk->newer;
  if (lk->newer)
    lk->newer->links[k].older = lk->older;
  else
    l->newest = lk->older;
  lk->older = lk->newer = NULL;
}

static void
list_append (struct conn_list *l, struct conn *c, enum conn_link_kind k)
{
  struct conn_link *lk = &c->links[k];
  lk->older = l->newest;
  lk->newer = NULL;
  if (l->newest)
    l->newest->links[k].newer = c;
  else
    l->oldest = c;
  l->newest = c;
}

static void
conn_unlink (struct conn *c)
{
  if (c->list == NULL)
    return;
  list_remove (c->list, c, LINK_DEADLINE);
  c->list = NULL;
}

/* Move C to the end of list L with DEADLINE: every connection of a list
 * has the same delay, so appending keeps the list ordered.  */
static void
conn_append (struct conn *c, struct conn_list *l, uint64_t deadline)
{
  conn_unlink (c);
  list_append (l, c, LINK_DEADLINE);
  c->list = l;
  c->deadline_ns = deadline;
}

/* Some activity on C: its idle timeout starts again.  */
static void
conn_touch (struct conn *c, uint64_t deadline)
{
  conn_append (c, &c->w->idle, deadline);
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
  c->tls_read_blocked = false;
  r = SSL_read_ex (c->ssl, buf, n, &got);
  if (r == 1)
    return (ssize_t) got;
  e = SSL_get_error (c->ssl, r);
  switch (e)
    {
    case SSL_ERROR_WANT_READ:
      c->tls_read_blocked = true;
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

/* libssl holds decrypted input a read can take now, which epoll will not
 * report: not a partial record, which waits for the socket.  */
static bool
tls_readable (struct conn *c)
{
  return c->ssl && !c->tls_read_blocked && SSL_has_pending (c->ssl);
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

/* Before the head of the final answer goes into C's output buffer: a
 * "100 Continue" still there is dropped if none of it was sent, and what
 * is left of it is kept if some was (the client would read garbage
 * otherwise).  */
static void
keep_interim (struct conn *c)
{
  if (c->out_off == 0 || c->out_off == c->out_len)
    {
      c->out_len = c->out_off = 0;
      return;
    }
  memmove (c->out, c->out + c->out_off, c->out_len - c->out_off);
  c->out_len -= c->out_off;
  c->out_off = 0;
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
      http_respond_text (req, 500, "internal error\n");
      body = true;
    }
  /* After a half-close, the requests already received are answered
   * (pipelined ones too); the last one closes.  */
  if (!req->keep_alive || (c->peer_eof && c->in_off == c->in_len))
    c->close_after = true;
  if (req->body_kind == BODY_HEAD && !http_request_is_head (req) && body)
    c->close_after = true; /* a length without the body: nothing follows */

  keep_interim (c);
  http_buf_appendf (&c->out, &c->out_len, &c->out_cap,
                    "HTTP/1.%d %u %s\r\nDate: %s\r\n", req->minor, req->status,
                    reason_phrase (req->status), http_date (c->w));
  for (h = req->server->headers; h && h[0] && h[1]; h += 2)
    http_buf_appendf (&c->out, &c->out_len, &c->out_cap, "%s: %s\r\n", h[0],
                      h[1]);
  if (req->resp_headers_len)
    http_buf_append (&c->out, &c->out_len, &c->out_cap, req->resp_headers,
                     req->resp_headers_len);
  if (body)
    {
      if (req->body_len != HTTP_SIZE_UNKNOWN)
        http_buf_appendf (&c->out, &c->out_len, &c->out_cap,
                          "Content-Length: %llu\r\n",
                          (unsigned long long) req->body_len);
      else if (req->minor >= 1)
        {
          http_buf_append (&c->out, &c->out_len, &c->out_cap,
                           "Transfer-Encoding: chunked\r\n", 28);
          req->chunked_out = true;
        }
      else
        c->close_after = true; /* the end of the body is the close */
    }
  if (c->close_after)
    http_buf_append (&c->out, &c->out_len, &c->out_cap, "Connection: close\r\n",
                     19);
  else if (req->minor == 0)
    http_buf_append (&c->out, &c->out_len, &c->out_cap,
                     "Connection: keep-alive\r\n", 24);
  http_buf_append (&c->out, &c->out_len, &c->out_cap, "\r\n", 2);
  if (!body || http_request_is_head (req) || req->body_kind == BODY_HEAD)
    http_release_body (req);
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
  http_request_free (req);
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

/* What one step of sending did.  */
enum send_step
{
  SEND_BROKEN = -1, /* the connection is broken (errno says why) */
  SEND_WAIT = 0,    /* wait for the socket */
  SEND_DONE = 1,    /* the answer is out */
  SEND_MORE = 2,    /* some went: go on */
};

static enum send_step
send_failed (void)
{
  return errno == EAGAIN ? SEND_WAIT : SEND_BROKEN;
}

/* The head of the answer, with a memory body behind it in one writev().  */
static enum send_step
send_head (struct conn *c)
{
  struct http_request *req = c->req;
  size_t h = c->out_len - c->out_off;
  ssize_t k;

  if (req->body_kind == BODY_MEM && c->ssl == NULL
      && req->body_sent < req->mem_len)
    {
      struct iovec iov[2]
          = { { c->out + c->out_off, h },
              { req->mem + req->body_sent, req->mem_len - req->body_sent } };
      do
        k = writev (c->fd, iov, 2);
      while (k < 0 && errno == EINTR);
      if (k < 0)
        return send_failed ();
      if ((size_t) k <= h)
        c->out_off += (size_t) k;
      else
        {
          c->out_off = c->out_len;
          req->body_sent += (size_t) k - h;
        }
      return SEND_MORE;
    }
  k = conn_send (c, c->out + c->out_off, h,
                 req->body_kind == BODY_FD && req->body_len > 0);
  if (k < 0)
    return send_failed ();
  c->out_off += (size_t) k;
  return SEND_MORE;
}

/* BUF[*OFF..LEN) as far as the socket takes it.  */
static enum send_step
send_buf (struct conn *c, const char *buf, size_t len, size_t *off)
{
  ssize_t k = conn_send (c, buf + *off, len - *off, false);
  if (k < 0)
    return send_failed ();
  *off += (size_t) k;
  return SEND_MORE;
}

static enum send_step
send_mem (struct conn *c)
{
  struct http_request *req = c->req;
  size_t off = (size_t) req->body_sent;
  enum send_step r;
  if (off >= req->mem_len)
    return SEND_DONE;
  r = send_buf (c, req->mem, req->mem_len, &off);
  req->body_sent = off;
  return r;
}

/* A file body on a plain socket: sendfile(), at most 1 GiB a call.  */
static enum send_step
send_file (struct conn *c)
{
  struct http_request *req = c->req;
  uint64_t left = req->body_len - req->body_sent;
  off_t off = (off_t) (req->fd_offset + req->body_sent);
  ssize_t k;

  if (req->body_sent >= req->body_len)
    return SEND_DONE;
  do
    k = sendfile (c->fd, req->fd, &off,
                  left > (1 << 30) ? (size_t) 1 << 30 : (size_t) left);
  while (k < 0 && errno == EINTR);
  if (k < 0)
    return send_failed ();
  if (k == 0)
    {
      errno = EIO;
      return SEND_BROKEN; /* the file is shorter than announced */
    }
  req->body_sent += (uint64_t) k;
  req->resp_bytes = req->body_sent;
  return SEND_MORE;
}

/* A streamed body, or a file body through TLS, from the stream buffer.  */
static enum send_step
send_stream (struct conn *c)
{
  if (c->stream_off == c->stream_len)
    {
      if (c->stream_end)
        return SEND_DONE;
      if (!refill_stream (c))
        {
          errno = EIO;
          return SEND_BROKEN;
        }
      if (c->stream_len == 0)
        return SEND_DONE;
    }
  return send_buf (c, c->stream_buf, c->stream_len, &c->stream_off);
}

/* The interim answer queued in the BODY state, as far as it goes.  */
static enum send_step
send_interim (struct conn *c)
{
  enum send_step r;
  do
    r = send_buf (c, c->out, c->out_len, &c->out_off);
  while (r == SEND_MORE && c->out_off < c->out_len);
  if (c->out_off == c->out_len)
    c->out_len = c->out_off = 0;
  return r == SEND_MORE ? SEND_DONE : r;
}

/* Write what can be written.  */
static enum send_step
send_response (struct conn *c)
{
  struct http_request *req = c->req;
  enum send_step r;
  unsigned writes = 0;

  do
    {
      /* A fast reader of a large body does not keep the worker: epoll
       * reports the socket writable again at once.  */
      if (writes++ == WRITES_PER_WAKE)
        return SEND_WAIT;
      if (c->out_off < c->out_len)
        r = send_head (c);
      else if (req->body_kind == BODY_MEM)
        r = send_mem (c);
      else if (req->body_kind == BODY_FD && c->ssl == NULL)
        r = send_file (c);
      else if (req->body_kind == BODY_FD || req->body_kind == BODY_STREAM)
        r = send_stream (c);
      else
        r = SEND_DONE; /* no body, or BODY_HEAD */
    }
  while (r == SEND_MORE);
  return r;
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
  conn_append (c, &c->w->linger, now_ns () + LINGER_NS);
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
  http_respond_text (req, status, text);
  req->keep_alive = false;
  req->has_body = false;
  c->in_off = c->in_len = 0;
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

  status = http_parse_head (req, head, len);
  if (status == 0)
    status = http_check_framing (req);
  if (status)
    {
      head_fail (c, status);
      return;
    }
  if (srv->max_body && req->content_length > 0
      && (uint64_t) req->content_length > srv->max_body)
    {
      /* Not worth reading: the answer now, the close after it.  */
      http_respond_text (req, 413, "413 request body too large\n");
      c->close_after = true;
      queue_response (c);
      return;
    }
  http_dispatch (req);

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
      /* Queued like any output: the BODY state sends it whole (a short
       * or a TLS write that must wait goes on later) before it reads.  */
      c->out_len = c->out_off = 0;
      http_buf_append (&c->out, &c->out_len, &c->out_cap, cont,
                       sizeof (cont) - 1);
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
        http_respond_text (req, 413, "413 request body too large\n");
      req->body_failed = true;
      return false;
    }
  if (req->on_data && !req->body_failed)
    {
      if (req->on_data (req, data, len, req->body_ctx) < 0)
        {
          req->body_failed = true;
          if (!req->has_response)
            http_respond_text (req, 500, "internal error\n");
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

/* One line of a chunked body at P, a chunk size or a trailer field: the
 * bytes it takes with its end of line, 0 when it is not all there yet, -1
 * when it is malformed.  */
static ssize_t
chunk_line (struct http_request *req, const char *p, size_t avail)
{
  const char *eol = memchr (p, '\n', avail);
  size_t n_line;

  if (eol == NULL)
    return avail > 4096 ? -1 : 0;
  n_line = (size_t) (eol - p);
  if (n_line > 0 && p[n_line - 1] == '\r')
    n_line--;
  if (req->chunk_state == CHUNK_TRAILER)
    {
      /* A NUL would hide the rest of the line.  */
      if (memchr (p, '\0', n_line))
        return -1;
      if (n_line == 0)
        req->body_done = true;
    }
  else
    {
      if (http_parse_chunk_size (p, n_line, &req->chunk_left) < 0)
        return -1;
      req->chunk_state = req->chunk_left ? CHUNK_DATA : CHUNK_TRAILER;
    }
  return eol - p + 1;
}

/* The end of line after a chunk's data, as chunk_line answers.  */
static ssize_t
chunk_data_end (struct http_request *req, const char *p, size_t avail)
{
  ssize_t n;

  if (avail < 2 && p[0] == '\r')
    return 0;
  if (p[0] == '\n')
    n = 1;
  else if (p[0] == '\r' && p[1] == '\n')
    n = 2;
  else
    return -1;
  req->chunk_state = CHUNK_SIZE;
  return n;
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
      ssize_t k;

      if (!req->chunked || req->chunk_state == CHUNK_DATA)
        {
          uint64_t *left = req->chunked ? &req->chunk_left : &req->body_left;
          n = avail < *left ? avail : (size_t) *left;
          *left -= n;
          used += n;
          if (req->chunked && *left == 0)
            req->chunk_state = CHUNK_DATA_END;
          if (!body_data (c, p, n))
            *stop = true;
          if (!req->chunked && *left == 0)
            req->body_done = true;
          continue;
        }
      k = req->chunk_state == CHUNK_DATA_END ? chunk_data_end (req, p, avail)
                                             : chunk_line (req, p, avail);
      if (k == 0)
        return used;
      if (k < 0)
        {
          if (!req->has_response || !req->body_failed)
            http_respond_text (req, 400, "400 bad chunked body\n");
          req->body_failed = true;
          *stop = true;
          return len;
        }
      used += (size_t) k;
    }
  return used;
}

/* Consume N bytes of C's input: by offset, the bytes stay where they are
 * until the buffer is compacted (input_room) or emptied.  */
static void
in_consume (struct conn *c, size_t n)
{
  c->in_off += n;
  c->head_scan = 0;
  if (c->in_off == c->in_len)
    c->in_off = c->in_len = 0;
}

/* The HEAD state on what the input buffer holds.  false when the loop of
 * conn_process must stop (waiting for input, or C closed).  */
static bool
process_head (struct conn *c)
{
  struct http_server *srv = c->w->server;
  char *in = c->in + c->in_off;
  size_t avail = c->in_len - c->in_off, i, head_len;

  /* Blank lines before a request are allowed (RFC 9112 2.2).  */
  for (i = 0; i < avail && (in[i] == '\r' || in[i] == '\n'); i++)
    ;
  if (i)
    {
      in_consume (c, i);
      return process_head (c);
    }
  /* Resumed where the last look stopped: a head arriving a few bytes at
   * a time is not scanned again from its start on every read.  */
  head_len = http_head_end (in, avail, &c->head_scan);
  if (head_len == 0)
    {
      if (avail > srv->max_header)
        /* No head within the limit: answered, then closed.  */
        head_fail (c, memchr (in, '\n', avail) ? 431 : 414);
      else if (c->peer_eof)
        http_conn_close (c);
      return false;
    }
  if (head_len > srv->max_header)
    {
      head_fail (c, 431);
      return false;
    }
  if (c->budget == 0)
    {
      c->more = true; /* this wake-up's share is used up */
      return false;
    }
  c->budget--;
  /* Parsed in place: the bytes stay put until the next read, and the
   * request copies what it keeps.  */
  in_consume (c, head_len);
  begin_request (c, in, head_len);
  return true;
}

/* The BODY state on what the input buffer holds.  */
static void
process_body (struct conn *c)
{
  struct http_request *req = c->req;
  bool stop = false;
  size_t used = body_feed (c, c->in + c->in_off, c->in_len - c->in_off, &stop);

  in_consume (c, used);
  if (stop)
    {
      c->close_after = true;
      queue_response (c);
    }
  else if (req->body_done)
    {
      if (req->on_end && !req->body_failed)
        req->on_end (req, req->body_ctx);
      req->completed = !req->body_failed;
      queue_response (c);
    }
  else if (c->peer_eof)
    http_conn_close (c); /* cut short: finish (false) */
}

/* Process what the input buffer holds.  */
static void
conn_process (struct conn *c)
{
  while (c->fd >= 0 && c->state == CONN_HEAD)
    if (!process_head (c))
      return;
  if (c->fd >= 0 && c->state == CONN_BODY)
    process_body (c);
}

/* Make room in C's input buffer: a small one for heads, grown up to just
 * over the header limit (so that an overlong head is seen as such), and
 * room for a body read in the BODY state.  Consumed bytes at its start
 * are dropped only when the end is reached, so that each byte is moved
 * at most once.  false when it is full at the size the state allows.  */
static bool
input_room (struct conn *c)
{
  struct http_server *srv = c->w->server;
  size_t limit = c->state == CONN_BODY ? srv->max_header + BODY_BUFFER
                                       : srv->max_header + 1;
  size_t want;

  if (c->in && c->in_len < c->in_cap)
    return true;
  if (c->in_off > 0)
    {
      memmove (c->in, c->in + c->in_off, c->in_len - c->in_off);
      c->in_len -= c->in_off;
      c->in_off = 0;
      return true;
    }
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

/* Read once (one buffer: a worker that read on while a connection kept
 * sending would starve its other connections), then process what the
 * input buffer holds.  false when the connection is gone.  */
static bool
conn_read (struct conn *c)
{
  struct http_server *srv = c->w->server;
  ssize_t n;

  if (c->did_read || c->peer_eof
      || (c->state != CONN_HEAD && c->state != CONN_BODY))
    goto process;
  if (!input_room (c))
    {
      conn_process (c);
      if (c->fd < 0)
        return false;
      if ((c->state != CONN_HEAD && c->state != CONN_BODY) || !input_room (c))
        return true; /* a state that does not take input now */
    }
  c->did_read = true;
  n = conn_recv (c, c->in + c->in_len, c->in_cap - c->in_len);
  if (n > 0)
    {
      c->in_len += (size_t) n;
      conn_touch (c, now_ns () + srv->timeout_ns);
    }
  else if (n == 0)
    c->peer_eof = true;
  else if (errno != EAGAIN && errno != EWOULDBLOCK)
    {
      if (c->req)
        http_server_log (srv, HTTP_LOG_DEBUG, "%s %s: read: %s", c->req->method,
                         c->req->target, strerror (errno));
      http_conn_close (c);
      return false;
    }
process:
  conn_process (c);
  return c->fd >= 0;
}

void
http_conn_free (struct conn *c)
{
  free (c->in);
  free (c->out);
  free (c->stream_buf);
  free (c);
}

/* The worker's ready list: connections with work left that epoll will
 * not report again (requests already in the input buffer beyond this
 * wake-up's share, data libssl has buffered).  */
static void
ready_add (struct conn *c)
{
  if (c->ready)
    return;
  list_append (&c->w->ready, c, LINK_READY);
  c->ready = true;
}

static void
ready_remove (struct conn *c)
{
  if (!c->ready)
    return;
  list_remove (&c->w->ready, c, LINK_READY);
  c->ready = false;
}

void
http_conn_close (struct conn *c)
{
  end_request (c);
  ready_remove (c);
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
        http_conn_close (c);
      return;
    }
  c->state = CONN_HEAD;
  c->out_len = c->out_off = 0;
  free (c->stream_buf);
  c->stream_buf = NULL;
  if (c->in_off == c->in_len)
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
    case CONN_LINGER:
      ev = EPOLLIN;
      break;
    case CONN_BODY:
      /* An interim answer to send first, or the body to read.  */
      ev = c->out_off < c->out_len ? EPOLLOUT : EPOLLIN;
      break;
    case CONN_SEND:
      ev = EPOLLOUT;
      break;
    }
  if (c->ssl && c->tls_want_write)
    ev |= EPOLLOUT;
  /* A write that needs libssl to read first (a TLS 1.3 key update, say)
   * waits for the socket to be readable, not writable: it always is.  */
  if (c->ssl && c->tls_want_read
      && (c->state == CONN_SEND
          || (c->state == CONN_BODY && c->out_off < c->out_len)))
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
  int i;
  /* A few reads a wake-up: epoll reports the rest.  */
  for (i = 0; i < 8; i++)
    {
      ssize_t n = c->ssl ? conn_recv (c, buf, sizeof (buf))
                         : recv (c->fd, buf, sizeof (buf), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      if (n <= 0)
        break;
      c->linger_bytes += (uint64_t) n;
      if (c->linger_bytes > LINGER_MAX)
        break;
    }
  if (i == 8)
    return;
  http_conn_close (c);
}

/* The SEND state: write, then go on with the next request if the answer
 * is out.  true when the connection has more to do in this wake-up.  */
static bool
conn_step_send (struct conn *c)
{
  enum send_step r = send_response (c);
  if (r == SEND_BROKEN)
    {
      if (c->req)
        http_server_log (c->w->server, HTTP_LOG_DEBUG, "%s %s: write: %s",
                         c->req->method, c->req->target, strerror (errno));
      http_conn_close (c);
      return false;
    }
  conn_touch (c, now_ns () + c->w->server->timeout_ns);
  if (r == SEND_WAIT)
    return false;
  conn_sent (c);
  if (c->fd < 0)
    return false;
  /* Pipelined requests, or a new one already in the buffer.  */
  return !(c->state == CONN_HEAD && c->in_off == c->in_len
           && !tls_readable (c));
}

void
http_conn_event (struct conn *c)
{
  /* This wake-up's share: one read, a few requests.  */
  ready_remove (c);
  c->did_read = false;
  c->more = false;
  c->budget = REQUESTS_PER_WAKE;
  for (;;)
    {
      if (c->state == CONN_LINGER)
        {
          conn_linger (c);
          break;
        }
      if (c->state == CONN_BODY && c->out_off < c->out_len)
        {
          /* The "100 Continue" first: the client waits for it.  */
          enum send_step r = send_interim (c);
          if (r == SEND_BROKEN)
            {
              http_conn_close (c);
              return;
            }
          if (r == SEND_WAIT)
            break;
        }
      if ((c->state == CONN_HEAD || c->state == CONN_BODY) && !conn_read (c))
        return;
      if (c->state != CONN_SEND || !conn_step_send (c))
        break;
    }
  if (c->fd < 0)
    return;
  conn_update_events (c);
  /* Buffered work epoll will not report: back after the others' turn.  */
  if (c->more
      || ((c->state == CONN_HEAD || c->state == CONN_BODY)
          && c->out_off == c->out_len && tls_readable (c)))
    ready_add (c);
}

void
http_conn_run_ready (struct worker *w)
{
  /* Taken off first: a connection that still has work after its turn
   * goes back on for the next round, after the others.  */
  struct conn_list l = w->ready;
  struct conn *c;
  w->ready.oldest = w->ready.newest = NULL;
  while ((c = l.oldest) != NULL)
    {
      list_remove (&l, c, LINK_READY);
      c->ready = false;
      http_conn_event (c);
      if (c->fd < 0)
        http_conn_free (c);
    }
}

void
http_conn_open (struct worker *w, int fd_in)
{
  struct http_server *srv = w->server;
  cleanup_close int fd = fd_in;
  cleanup_free struct conn *c = xmalloc0 (sizeof (*c));
  struct epoll_event e;
  int one = 1;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
  c->w = w;
  c->state = CONN_HEAD;
  if (srv->tls)
    {
      c->ssl = SSL_new (srv->tls);
      if (c->ssl == NULL || SSL_set_fd (c->ssl, fd) != 1)
        {
          SSL_free (c->ssl);
          return;
        }
      SSL_set_accept_state (c->ssl);
    }
  c->events = EPOLLIN;
  e.events = c->events;
  e.data.ptr = c;
  if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
    {
      SSL_free (c->ssl);
      return;
    }
  c->fd = move_fd (&fd);
  conn_touch (c, now_ns () + srv->timeout_ns);
  /* Owned by the worker's list of connections from now on.  */
  c = NULL;
}
