/* test_http_server.c - the HTTP/1.1 server of http/server.c, spoken to
 * over loopback with raw bytes: framing, keep-alive and pipelining,
 * request bodies (lengths, chunked, 100-continue, limits), responses
 * (memory, files, streams, HEAD), malformed requests and timeouts.  */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/server-internal.h"
#include "http/server.h"
#include "utils.h"

/* --- The handlers ------------------------------------------------------ */

struct echo
{
  char *buf;
  size_t len;
};

static int finished_ok, finished_aborted;

static int
echo_data (struct http_request *req, const char *data, size_t len, void *ctx)
{
  struct echo *e = ctx;
  e->buf = xrealloc (e->buf, e->len + len + 1);
  memcpy (e->buf + e->len, data, len);
  e->len += len;
  return 0;
}

static void
echo_end (struct http_request *req, void *ctx)
{
  struct echo *e = ctx;
  http_respond (req, 200, "application/octet-stream", e->buf ? e->buf : "",
                e->len);
}

static void
echo_finish (void *ctx, bool completed)
{
  struct echo *e = ctx;
  __atomic_add_fetch (completed ? &finished_ok : &finished_aborted, 1,
                      __ATOMIC_SEQ_CST);
  free (e->buf);
  free (e);
}

/* POST /echo: the body back.  */
static void
h_echo (struct http_request *req, void *data)
{
  struct echo *e = xmalloc0 (sizeof (*e));
  http_request_read_body (req, echo_data, echo_end, e);
  http_request_on_finish (req, echo_finish, e);
}

/* GET /hello/{who}: "hello WHO" and the query's "x" values.  */
static int
collect (const char *value, void *data)
{
  char *buf = data;
  strcat (buf, "[");
  strcat (buf, value);
  strcat (buf, "]");
  return 0;
}

static void
h_hello (struct http_request *req, void *data)
{
  char buf[512];
  snprintf (buf, sizeof (buf), "hello %s ", http_request_param (req, "who"));
  http_request_query_each (req, "x", collect, buf);
  http_respond (req, 200, "text/plain", buf, strlen (buf));
  http_header (req, "X-Path", http_request_path (req));
  http_header (req, "X-Bad", "a\r\nInjected: yes");
}

/* PUT /refuse: 403 at once, without reading the body.  */
static void
h_refuse (struct http_request *req, void *data)
{
  http_respond (req, 403, "text/plain", "no\n", 3);
}

/* GET /file: bytes 10..29 of a file, through sendfile.  */
static char file_path[64];

static void
h_file (struct http_request *req, void *data)
{
  int fd = open (file_path, O_RDONLY | O_CLOEXEC);
  http_respond_fd (req, 200, fd, 10, 20);
}

/* GET /stream: "0123456789" three times, size unknown.  */
static long
stream_read (void *ctx, uint64_t pos, char *buf, size_t max)
{
  if (pos >= 30)
    return 0;
  buf[0] = (char) ('0' + pos % 10);
  return 1;
}

static void
h_stream (struct http_request *req, void *data)
{
  http_respond_stream (req, 200, HTTP_SIZE_UNKNOWN, stream_read, NULL, NULL);
}

/* GET /nothing: sets no response.  */
static void
h_nothing (struct http_request *req, void *data)
{
}

/* For the fairness test.  GET /gate blocks its worker until the test
 * writes a byte into gate_pipe; GET /count counts; PUT /sink counts the
 * bytes of its body; GET /progress tells both counts.  */
static int gate_pipe[2] = { -1, -1 };
static int counted;
static uint64_t sunk;

static void
h_gate (struct http_request *req, void *data)
{
  char c;
  assert_int_equal (read (gate_pipe[0], &c, 1), 1);
  http_respond_empty (req, 204);
}

static void
h_count (struct http_request *req, void *data)
{
  __atomic_add_fetch (&counted, 1, __ATOMIC_SEQ_CST);
  http_respond_empty (req, 204);
}

static int
sink_data (struct http_request *req, const char *data, size_t len, void *ctx)
{
  __atomic_add_fetch (&sunk, len, __ATOMIC_SEQ_CST);
  return 0;
}

static void
sink_end (struct http_request *req, void *ctx)
{
  http_respond_empty (req, 204);
}

static void
h_sink (struct http_request *req, void *data)
{
  http_request_read_body (req, sink_data, sink_end, NULL);
}

static void
h_progress (struct http_request *req, void *data)
{
  char buf[64];
  snprintf (buf, sizeof (buf), "%d %llu",
            __atomic_load_n (&counted, __ATOMIC_SEQ_CST),
            (unsigned long long) __atomic_load_n (&sunk, __ATOMIC_SEQ_CST));
  http_respond (req, 200, "text/plain", buf, strlen (buf));
}

static const struct http_route routes[] = {
  { "GET", "/gate", h_gate },     { "GET", "/count", h_count },
  { "PUT", "/sink", h_sink },     { "GET", "/progress", h_progress },
  { "POST", "/echo", h_echo },    { "GET", "/hello/{who}", h_hello },
  { "PUT", "/refuse", h_refuse }, { "GET", "/file", h_file },
  { "GET", "/stream", h_stream }, { "GET", "/nothing", h_nothing },
};

/* --- A short write, injected --------------------------------------------- */

/* This program's send() is the one the server calls too: when armed, the
 * next write of a "100 Continue" sends its first 5 bytes only, as a full
 * socket buffer would.  */
static int short_continue;

ssize_t
send (int fd, const void *buf, size_t n, int flags)
{
  static const char cont[] = "HTTP/1.1 100 Continue";
  if (n > 5 && n >= sizeof (cont) - 1
      && memcmp (buf, cont, sizeof (cont) - 1) == 0
      && __atomic_exchange_n (&short_continue, 0, __ATOMIC_SEQ_CST))
    n = 5;
  return syscall (SYS_sendto, fd, buf, n, flags, NULL, 0);
}

/* --- The client -------------------------------------------------------- */

static struct http_server *server;
static int port;

/* A server on a free port of 127.0.0.1 with the test's routes.  */
static struct http_server *
start_server (unsigned threads, unsigned timeout, uint64_t max_body,
              size_t max_header, int *port_out)
{
  struct http_server_opts o = { 0 };
  struct http_server *s = NULL;
  berth_error_t err = NULL;
  o.listen = "127.0.0.1:0";
  o.routes = routes;
  o.n_routes = sizeof (routes) / sizeof (routes[0]);
  o.threads = threads;
  o.timeout_seconds = timeout;
  o.max_body_bytes = max_body;
  o.max_header_bytes = max_header;
  if (http_server_start (&o, &s, &err) < 0)
    {
      print_error ("start: %s\n", err->msg);
      return NULL;
    }
  *port_out = atoi (strrchr (http_server_address (s), ':') + 1);
  return s;
}

static int
start (unsigned timeout, uint64_t max_body, size_t max_header)
{
  server = start_server (2, timeout, max_body, max_header, &port);
  return server ? 0 : -1;
}

static int
setup (void **state)
{
  int fd;
  snprintf (file_path, sizeof (file_path), "/tmp/berth-http-test-XXXXXX");
  fd = mkstemp (file_path);
  if (fd < 0
      || write (fd, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 52)
             != 52)
    return -1;
  close (fd);
  signal (SIGPIPE, SIG_IGN);
  return start (2, 1 << 20, 4096);
}

static int
teardown (void **state)
{
  http_server_stop (server);
  unlink (file_path);
  return 0;
}

static int
connect_port (int to)
{
  struct sockaddr_in a = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  a.sin_family = AF_INET;
  a.sin_port = htons ((uint16_t) to);
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  assert_true (fd >= 0);
  assert_int_equal (connect (fd, (struct sockaddr *) &a, sizeof (a)), 0);
  return fd;
}

static int
connect_server (void)
{
  return connect_port (port);
}

static void
send_all (int fd, const char *data, size_t len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
      assert_true (n > 0);
      data += n;
      len -= (size_t) n;
    }
}

static void
send_str (int fd, const char *s)
{
  send_all (fd, s, strlen (s));
}

/* Read until the peer closes or nothing comes for TIMEOUT_MS, into a
 * malloc'd NUL-terminated buffer.  *CLOSED tells which.  */
static char *
read_for (int fd, int timeout_ms, size_t *len, bool *closed)
{
  size_t cap = 4096, n = 0;
  char *buf = xmalloc (cap);
  *closed = false;
  for (;;)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      ssize_t k;
      if (poll (&p, 1, timeout_ms) <= 0)
        break;
      if (n + 1024 > cap)
        buf = xrealloc (buf, cap *= 2);
      k = recv (fd, buf + n, cap - n - 1, 0);
      if (k <= 0)
        {
          *closed = true;
          break;
        }
      n += (size_t) k;
    }
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

/* The responses to what was sent: read until closed, or until no more
 * arrives within a short while.  */
static char *
exchange (int fd, const char *request, bool *closed)
{
  send_str (fd, request);
  return read_for (fd, 300, NULL, closed);
}

static int
count (const char *hay, const char *needle)
{
  int c = 0;
  const char *p = hay;
  while ((p = strstr (p, needle)))
    {
      c++;
      p += strlen (needle);
    }
  return c;
}

/* --- The tests --------------------------------------------------------- */

static void
test_keep_alive_and_pipelining (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r;

  r = exchange (fd, "GET /hello/a HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_false (closed);
  assert_true (strncmp (r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null (strstr (r, "\r\nContent-Length: 8\r\n"));
  assert_non_null (strstr (r, "\r\nDate: "));
  assert_non_null (strstr (r, "\r\n\r\nhello a "));
  free (r);
  /* Three at once, answered in order on the same connection.  */
  r = exchange (fd,
                "GET /hello/b HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /hello/c HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
                "ping",
                &closed);
  assert_false (closed);
  assert_int_equal (count (r, "HTTP/1.1 200 OK"), 3);
  assert_true (strstr (r, "hello b") < strstr (r, "hello c"));
  assert_true (strstr (r, "hello c") < strstr (r, "\r\n\r\nping"));
  free (r);
  close (fd);
}

static void
test_http10 (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r = exchange (fd, "GET /hello/a HTTP/1.0\r\n\r\n", &closed);
  assert_true (closed);
  assert_true (strncmp (r, "HTTP/1.0 200 OK\r\n", 17) == 0);
  assert_non_null (strstr (r, "Connection: close\r\n"));
  free (r);
  close (fd);

  fd = connect_server ();
  r = exchange (fd, "GET /hello/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                &closed);
  assert_false (closed);
  assert_non_null (strstr (r, "Connection: keep-alive\r\n"));
  free (r);
  /* A stream of unknown size ends with the connection.  */
  r = exchange (fd, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                &closed);
  assert_true (closed);
  assert_null (strstr (r, "Transfer-Encoding"));
  assert_non_null (strstr (r, "\r\n\r\n012345678901234567890123456789"));
  free (r);
  close (fd);
}

static void
test_paths_and_queries (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r = exchange (fd,
                      "GET /hello/a%2Fb?x=1+2&y=3&x=%41%00&x HTTP/1.1\r\n"
                      "Host: x\r\n\r\n",
                      &closed);
  /* %2F decoded (so the route's one segment fails: 404); the rest is
   * checked on a path that matches.  */
  assert_true (strncmp (r, "HTTP/1.1 404 ", 13) == 0);
  free (r);
  r = exchange (fd,
                "GET /hello/a%20b?x=1+2&y=3&x=%41%00&x HTTP/1.1\r\n"
                "Host: x\r\n\r\n",
                &closed);
  assert_true (strncmp (r, "HTTP/1.1 200 ", 13) == 0);
  /* "%00" is not decoded: a C string cannot hold it.  */
  assert_non_null (strstr (r, "hello a b [1 2][A%00][]"));
  assert_non_null (strstr (r, "X-Path: /hello/a b\r\n"));
  /* A header value with a line break is dropped, never sent.  */
  assert_null (strstr (r, "Injected"));
  free (r);
  r = exchange (fd, "DELETE /hello/a HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_true (strncmp (r, "HTTP/1.1 405 ", 13) == 0);
  /* The methods the path's routes take (a GET route takes HEAD too).  */
  assert_non_null (strstr (r, "\r\nAllow: GET, HEAD\r\n"));
  free (r);
  close (fd);
}

static void
test_chunked_request_and_response (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r = exchange (fd,
                      "POST /echo HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n"
                      "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n"
                      "Trailer: x\r\n\r\n",
                      &closed);
  assert_false (closed);
  assert_non_null (strstr (r, "Content-Length: 11\r\n\r\nhello world"));
  free (r);
  r = exchange (fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_false (closed);
  assert_non_null (strstr (r, "Transfer-Encoding: chunked\r\n"));
  assert_int_equal (count (r, "\r\n1\r\n"), 30);
  assert_non_null (strstr (r, "\r\n0\r\n\r\n"));
  free (r);
  close (fd);
}

static void
test_files_and_head (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r = exchange (fd, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_non_null (
      strstr (r, "Content-Length: 20\r\n\r\nklmnopqrstuvwxyzABCD"));
  assert_int_equal (strlen (strstr (r, "\r\n\r\n")), 24);
  free (r);
  r = exchange (fd, "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_non_null (strstr (r, "Content-Length: 20\r\n"));
  assert_int_equal (strlen (strstr (r, "\r\n\r\n")), 4);
  free (r);
  r = exchange (fd, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_true (strncmp (r, "HTTP/1.1 500 ", 13) == 0);
  free (r);
  close (fd);
}

/* "Expect: 100-continue": the interim answer, whole, then the body is
 * read and answered.  With SHORT_WRITE, the server's first write of the
 * "100 Continue" is cut short: the rest must go on later, before the
 * answer, never cut in two by it.  */
static void
continue_then_echo (bool short_write)
{
  int fd = connect_server ();
  bool closed;
  char *r;
  __atomic_store_n (&short_continue, short_write, __ATOMIC_SEQ_CST);
  r = exchange (fd,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Expect: 100-continue\r\n\r\n",
                &closed);
  assert_int_equal (__atomic_load_n (&short_continue, __ATOMIC_SEQ_CST), 0);
  assert_string_equal (r, "HTTP/1.1 100 Continue\r\n\r\n");
  free (r);
  r = exchange (fd, "abc", &closed);
  assert_true (strncmp (r, "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null (strstr (r, "\r\n\r\nabc"));
  free (r);
  close (fd);
}

static void
test_expect_continue (void **state)
{
  int fd;
  bool closed;
  char *r;

  continue_then_echo (false);
  continue_then_echo (true);

  /* Refused before the body: the final answer only, then the close.  */
  fd = connect_server ();
  r = exchange (fd,
                "PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                "Expect: 100-continue\r\n\r\n",
                &closed);
  assert_true (strncmp (r, "HTTP/1.1 403 ", 13) == 0);
  assert_null (strstr (r, "100 Continue"));
  assert_non_null (strstr (r, "Connection: close"));
  free (r);
  close (fd);
}

static void
test_unread_bodies (void **state)
{
  int fd = connect_server ();
  bool closed;
  /* A small body nobody reads is dropped; the connection stays.  */
  char *r = exchange (fd,
                      "PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      "\r\nabcde"
                      "GET /hello/z HTTP/1.1\r\nHost: x\r\n\r\n",
                      &closed);
  assert_false (closed);
  assert_int_equal (count (r, "HTTP/1.1 "), 2);
  assert_non_null (strstr (r, "hello z"));
  free (r);
  close (fd);
}

static void
test_limits (void **state)
{
  int fd = connect_server ();
  bool closed;
  char big[6000];
  char *r;

  r = exchange (fd,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
                "\r\n",
                &closed);
  assert_true (strncmp (r, "HTTP/1.1 413 ", 13) == 0);
  free (r);
  close (fd);

  /* Chunked over the limit: 413, then the close.  */
  fd = connect_server ();
  send_str (fd, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
  {
    char *chunk = xmalloc (65536 + 16);
    int i;
    memcpy (chunk, "10000\r\n", 7);
    memset (chunk + 7, 'a', 65536);
    memcpy (chunk + 7 + 65536, "\r\n", 2);
    for (i = 0; i < 17; i++)
      {
        ssize_t n = send (fd, chunk, 65536 + 9, MSG_NOSIGNAL);
        if (n <= 0)
          break;
      }
    free (chunk);
  }
  r = read_for (fd, 2000, NULL, &closed);
  assert_true (strncmp (r, "HTTP/1.1 413 ", 13) == 0);
  assert_true (closed);
  free (r);
  close (fd);

  /* Headers over the limit (4096 here): 431; a request line: 414.  */
  memset (big, 'a', sizeof (big) - 1);
  big[sizeof (big) - 1] = '\0';
  fd = connect_server ();
  send_str (fd, "GET /hello/a HTTP/1.1\r\nHost: x\r\nX-Big: ");
  r = exchange (fd, big, &closed);
  assert_true (strncmp (r, "HTTP/1.1 431 ", 13) == 0);
  assert_true (closed);
  free (r);
  close (fd);
  fd = connect_server ();
  send_str (fd, "GET /");
  r = exchange (fd, big, &closed);
  assert_true (strncmp (r, "HTTP/1.1 414 ", 13) == 0);
  free (r);
  close (fd);
}

/* LEN bytes of REQUEST (NUL bytes and all) get STATUS, then the close.  */
static void
expect_refused_n (const char *request, size_t len, unsigned status)
{
  int fd = connect_server ();
  bool closed;
  char *r;
  char want[32];
  send_all (fd, request, len);
  r = read_for (fd, 300, NULL, &closed);
  snprintf (want, sizeof (want), "HTTP/1.1 %u ", status);
  if (strncmp (r, want, strlen (want)) != 0)
    print_error ("%s -> %.40s\n", request, r);
  assert_true (strncmp (r, want, strlen (want)) == 0);
  assert_true (closed);
  free (r);
  close (fd);
}

static void
expect_refused (const char *request, unsigned status)
{
  expect_refused_n (request, strlen (request), status);
}

static void
test_malformed (void **state)
{
  expect_refused ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  400);
  expect_refused ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                  "Content-Length: 4\r\n\r\nabcd",
                  400);
  expect_refused ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n"
                  "\r\nabc",
                  400);
  expect_refused ("POST /echo HTTP/1.1\r\nHost: x\r\n"
                  "Transfer-Encoding: gzip\r\n\r\n",
                  501);
  expect_refused ("POST /echo HTTP/1.1\r\nHost: x\r\n"
                  "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                  400);
  expect_refused ("GET /hello/a HTTP/1.1\r\n\r\n", 400); /* no Host */
  expect_refused ("GET /hello/a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400);
  expect_refused ("GET /hello/a HTTP/1.1\r\nHo st: x\r\n\r\n", 400);
  expect_refused ("GET /hello/a HTTP/2.0\r\nHost: x\r\n\r\n", 505);
  {
    /* More header fields than the server keeps: 431.  */
    char many[4096] = "GET /hello/a HTTP/1.1\r\nHost: x\r\n";
    int i;
    for (i = 0; i < 300; i++)
      strcat (many, "a:\r\n");
    strcat (many, "\r\n");
    expect_refused (many, 431);
  }
  expect_refused ("GET hello HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  expect_refused ("GET /hello/a HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n",
                  417);
  {
    static const char nul[] = "GET /hello/a\0b HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_refused_n (nul, sizeof (nul) - 1, 400);
  }
  /* Two Host fields: which one names the site is anybody's guess.  */
  expect_refused ("GET /hello/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
  {
    /* A NUL in a chunk-size line (or a trailer) would hide what follows
     * it from the parser.  */
    static const char size_nul[]
        = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
          "\r\n3\0zz\r\nabc\r\n0\r\n\r\n";
    static const char trailer_nul[]
        = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
          "\r\n3\r\nabc\r\n0\r\n\0X: y\r\n\r\n";
    expect_refused_n (size_nul, sizeof (size_nul) - 1, 400);
    expect_refused_n (trailer_nul, sizeof (trailer_nul) - 1, 400);
  }
}

static void
test_client_gone_mid_body (void **state)
{
  int before = __atomic_load_n (&finished_aborted, __ATOMIC_SEQ_CST);
  int fd = connect_server ();
  int i;
  send_str (fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                "only part");
  usleep (50000);
  close (fd);
  for (i = 0; i < 500; i++)
    {
      if (__atomic_load_n (&finished_aborted, __ATOMIC_SEQ_CST) > before)
        break;
      usleep (10000);
    }
  assert_true (__atomic_load_n (&finished_aborted, __ATOMIC_SEQ_CST) > before);
}

static void
test_half_close (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r;
  send_str (fd, "GET /hello/h HTTP/1.1\r\nHost: x\r\n\r\n");
  shutdown (fd, SHUT_WR);
  r = read_for (fd, 5000, NULL, &closed);
  assert_true (closed);
  assert_non_null (strstr (r, "hello h"));
  free (r);
  close (fd);
}

/* Requests pipelined before a half-close are all answered, then the
 * connection closes.  The requests are corked so that they leave in one
 * segment with the FIN: the server then reads the end of the stream
 * before it answers the first.  */
static void
test_half_close_pipelined (void **state)
{
  int fd = connect_server ();
  int one = 1;
  bool closed;
  char *r;
  assert_int_equal (setsockopt (fd, IPPROTO_TCP, TCP_CORK, &one, sizeof (one)),
                    0);
  send_str (fd, "GET /hello/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /hello/p2 HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
                "p3p3");
  shutdown (fd, SHUT_WR);
  r = read_for (fd, 5000, NULL, &closed);
  assert_true (closed);
  assert_int_equal (count (r, "HTTP/1.1 200 OK"), 3);
  assert_non_null (strstr (r, "hello p1"));
  assert_non_null (strstr (r, "hello p2"));
  assert_non_null (strstr (r, "\r\n\r\np3p3"));
  free (r);
  close (fd);
}

/* Whether the connection is closed after answering REQUEST.  */
static bool
closed_after (const char *request)
{
  int fd = connect_server ();
  bool closed;
  char *r = exchange (fd, request, &closed);
  assert_true (strncmp (r, "HTTP/1.", 7) == 0);
  free (r);
  close (fd);
  return closed;
}

static void
test_connection_header (void **state)
{
  /* A token list, case-insensitive, over every Connection field.  */
  assert_true (closed_after ("GET /hello/a HTTP/1.1\r\nHost: x\r\n"
                             "Connection: te, CLOSE\r\n\r\n"));
  assert_true (closed_after ("GET /hello/a HTTP/1.1\r\nHost: x\r\n"
                             "Connection: close\r\nConnection: te\r\n\r\n"));
  assert_false (closed_after ("GET /hello/a HTTP/1.1\r\nHost: x\r\n"
                              "Connection: x-close-later\r\n\r\n"));
  assert_false (closed_after ("GET /hello/a HTTP/1.0\r\n"
                              "Connection: Keep-Alive\r\n\r\n"));
  assert_true (closed_after ("GET /hello/a HTTP/1.0\r\n"
                             "Connection: keep-alive-not\r\n\r\n"));
  assert_true (
      closed_after ("GET /hello/a HTTP/1.0\r\n"
                    "Connection: keep-alive\r\nConnection: close\r\n\r\n"));
  /* HTTP/1.0 has no chunked encoding: the framing cannot be trusted to
   * end where the next request starts (RFC 9112 6.1), so the connection
   * closes after the answer.  */
  assert_true (closed_after ("POST /echo HTTP/1.0\r\nConnection: keep-alive\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n"));
}

/* Whether the server has closed FD: nothing readable, or the end.  */
static bool
peer_closed (int fd)
{
  struct pollfd p = { fd, POLLIN, 0 };
  char c;
  return poll (&p, 1, 0) == 1 && recv (fd, &c, 1, MSG_DONTWAIT) <= 0;
}

/* A lingering connection closes after its own short delay (2 s), not
 * behind the idle connections that came before it (their timeout is
 * 300 s here).  */
static void
test_linger_own_list (void **state)
{
  int p2, idle, fd, i;
  struct http_server *s2 = start_server (1, 300, 0, 0, &p2);
  bool closed;
  char *r;

  assert_non_null (s2);
  /* An idle keep-alive connection, older than the lingering one.  */
  idle = connect_port (p2);
  r = exchange (idle, "GET /hello/i HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_non_null (strstr (r, "hello i"));
  free (r);
  /* Answered before a body too large to drop: the answer, the server's
   * FIN, then it lingers, reading what still comes.  */
  fd = connect_port (p2);
  send_str (fd, "PUT /refuse HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 100000000\r\n\r\n");
  r = read_for (fd, 20000, NULL, &closed);
  assert_true (strncmp (r, "HTTP/1.1 403 ", 13) == 0);
  assert_true (closed);
  free (r);
  /* Once the server has closed the socket, a byte sent gets a reset, and
   * the next send fails.  Up to 20 s: a slow machine.  */
  for (i = 0; i < 200; i++)
    {
      if (send (fd, "x", 1, MSG_NOSIGNAL) < 0)
        break;
      usleep (100000);
    }
  assert_true (i < 200);
  assert_false (peer_closed (idle));
  close (fd);
  close (idle);
  http_server_stop (s2);
}

/* The fairness test: on a server with one worker, connection A is held
 * in /gate while WORK (pipelined requests, or a body) piles up on it and
 * connection B's /progress waits; then the gate opens.  B must be
 * answered while A's work is still in progress: its answer tells how
 * much of A's work was done before it.  Returns B's answer.  */
static char *
progress_behind (int p2, int a, const char *work, size_t work_len, size_t *sent)
{
  int b = connect_port (p2);
  bool closed;
  char *r;

  /* B is accepted (answered once) before the gate closes on the worker. */
  r = exchange (b, "GET /progress HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
  assert_non_null (strstr (r, "200 OK"));
  free (r);
  send_str (a, "GET /gate HTTP/1.1\r\nHost: x\r\n\r\n");
  /* As much of WORK as the sockets take while the worker is held.  */
  *sent = 0;
  while (*sent < work_len)
    {
      ssize_t n = send (a, work + *sent, work_len - *sent,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0)
        break;
      *sent += (size_t) n;
    }
  send_str (b, "GET /progress HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal (write (gate_pipe[1], "x", 1), 1);
  r = read_for (b, 5000, NULL, &closed);
  close (b);
  return r;
}

static void
test_fairness (void **state)
{
  enum
  {
    N = 400
  };
  static const char one[] = "GET /count HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t one_len = sizeof (one) - 1, sent, big = 64 << 20, i;
  int p2, a, done;
  unsigned long long bytes;
  struct http_server *s2 = start_server (1, 300, 0, 4096, &p2);
  char *work, *r, *body;

  assert_non_null (s2);
  assert_int_equal (pipe2 (gate_pipe, O_CLOEXEC), 0);

  /* Pipelined requests: B is answered before A's last one.  */
  work = xmalloc (N * one_len);
  for (i = 0; i < N; i++)
    memcpy (work + i * one_len, one, one_len);
  a = connect_port (p2);
  __atomic_store_n (&counted, 0, __ATOMIC_SEQ_CST);
  r = progress_behind (p2, a, work, N * one_len, &sent);
  assert_int_equal (sent, N * one_len);
  body = strstr (r, "\r\n\r\n");
  assert_non_null (body);
  assert_int_equal (sscanf (body + 4, "%d", &done), 1);
  assert_true (done < N);
  free (r);
  free (work);
  close (a);

  /* A large body: B is answered while it streams in, before the server
   * has read what was already sent.  */
  {
    static const char head[] = "PUT /sink HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 1000000000\r\n\r\n";
    work = xmalloc0 (big);
    memcpy (work, head, sizeof (head) - 1);
    a = connect_port (p2);
    __atomic_store_n (&sunk, 0, __ATOMIC_SEQ_CST);
    r = progress_behind (p2, a, work, big, &sent);
    body = strstr (r, "\r\n\r\n");
    assert_non_null (body);
    assert_int_equal (sscanf (body + 4, "%*d %llu", &bytes), 1);
    print_message ("body: %llu of %zu bytes read before B\n", bytes, sent);
    assert_true (bytes < sent - (sizeof (head) - 1));
    free (r);
    free (work);
    close (a);
  }

  http_server_stop (s2);
  close (gate_pipe[0]);
  close (gate_pipe[1]);
  gate_pipe[0] = gate_pipe[1] = -1;
}

static void
test_idle_timeout (void **state)
{
  int fd = connect_server ();
  bool closed;
  char *r;
  /* The server closes an idle connection after its timeout (2 s here);
   * waiting up to 20 s leaves room for a slow machine.  */
  send_str (fd, "GET /hel");
  r = read_for (fd, 20000, NULL, &closed);
  assert_true (closed);
  assert_string_equal (r, "");
  free (r);
  close (fd);
}

static void
test_many_connections (void **state)
{
  enum
  {
    N = 200
  };
  int fds[N], i;
  for (i = 0; i < N; i++)
    {
      fds[i] = connect_server ();
      send_str (fds[i], "GET /hello/m HTTP/1.1\r\nHost: x\r\n"
                        "Connection: close\r\n\r\n");
    }
  for (i = 0; i < N; i++)
    {
      bool closed;
      char *r = read_for (fds[i], 5000, NULL, &closed);
      assert_non_null (strstr (r, "hello m"));
      free (r);
      close (fds[i]);
    }
}

/* The search for the end of a head resumes where it stopped: fed a byte
 * at a time, it looks at each byte a bounded number of times (a rescan
 * from the start on each read made slow heads quadratic).  */
static void
test_head_scan_resumes (void **state)
{
  static const char head[]
      = "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\nbody after the head";
  size_t head_len = strstr (head, "\n\r\n") + 3 - head;
  size_t scan = 0, looked = 0, len, end = 0;

  for (len = 1; len <= sizeof (head) - 1 && end == 0; len++)
    {
      size_t before = scan;
      end = http_head_end (head, len, &scan);
      assert_true (scan <= len);
      looked += len - before;
      /* Nothing before the last two bytes is looked at again.  */
      if (end == 0)
        assert_true (scan + 2 >= len);
    }
  assert_int_equal (end, head_len);
  assert_true (looked <= 3 * head_len);
  /* The other line ends, and nothing yet.  */
  scan = 0;
  assert_int_equal (http_head_end ("GET / HTTP/1.0\n\nx", 18, &scan), 16);
  scan = 0;
  assert_int_equal (http_head_end ("GET / HTTP/1.0\r\n", 16, &scan), 0);
  assert_int_equal (http_head_end ("GET / HTTP/1.0\r\n\r", 17, &scan), 0);
  assert_int_equal (http_head_end ("GET / HTTP/1.0\r\n\r\n", 18, &scan), 18);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_keep_alive_and_pipelining),
    cmocka_unit_test (test_http10),
    cmocka_unit_test (test_paths_and_queries),
    cmocka_unit_test (test_chunked_request_and_response),
    cmocka_unit_test (test_files_and_head),
    cmocka_unit_test (test_expect_continue),
    cmocka_unit_test (test_unread_bodies),
    cmocka_unit_test (test_limits),
    cmocka_unit_test (test_malformed),
    cmocka_unit_test (test_client_gone_mid_body),
    cmocka_unit_test (test_half_close),
    cmocka_unit_test (test_half_close_pipelined),
    cmocka_unit_test (test_connection_header),
    cmocka_unit_test (test_linger_own_list),
    cmocka_unit_test (test_fairness),
    cmocka_unit_test (test_idle_timeout),
    cmocka_unit_test (test_many_connections),
    cmocka_unit_test (test_head_scan_resumes),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
