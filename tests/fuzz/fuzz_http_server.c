/* fuzz_http_server.c - libFuzzer target for the HTTP/1.1 server
 * (http/server.c): each input is what one client sends on one connection
 * before it shuts its side down.  The server runs in the same process, on
 * loopback, with a few routes that read bodies, answer from memory and
 * stream; the input must end in the server closing the connection (a
 * server that never answers or never closes is a hang, reported as a
 * crash).  */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/server.h"
#include "utils.h"

static struct http_server *server;
static struct sockaddr_in address;

static int
sink (struct http_request *req, const char *data, size_t len, void *ctx)
{
  size_t *total = ctx;
  *total += len;
  /* Refuse some bodies midway, as a handler that finds them wrong.  */
  return len > 0 && data[0] == '!' ? -1 : 0;
}

static void
sink_end (struct http_request *req, void *ctx)
{
  size_t *total = ctx;
  http_respond_json (req, 201, NULL,
                     json_pack ("{sI}", "n", (json_int_t) *total));
}

static void
sink_finish (void *ctx, bool completed)
{
  free (ctx);
}

static void
h_body (struct http_request *req, void *data)
{
  if (http_request_query (req, "refuse"))
    {
      http_respond (req, 400, "text/plain", "no\n", 3);
      return;
    }
  {
    size_t *total = xmalloc0 (sizeof (*total));
    http_request_read_body (req, sink, sink_end, total);
    http_request_on_finish (req, sink_finish, total);
  }
}

static void
h_param (struct http_request *req, void *data)
{
  const char *v = http_request_param (req, "p");
  const char *q = http_request_query (req, "q");
  const char *h = http_request_header (req, "X-Echo");
  http_respond (req, 200, "text/plain", v, strlen (v));
  if (q)
    http_header (req, "X-Q", q);
  if (h)
    http_header (req, "X-Echo", h);
}

static long
numbers (void *ctx, uint64_t pos, char *buf, size_t max)
{
  if (pos >= 1000)
    return 0;
  buf[0] = (char) ('0' + pos % 10);
  return 1;
}

static void
h_stream (struct http_request *req, void *data)
{
  http_respond_stream (
      req, 200, http_request_query (req, "sized") ? 1000 : HTTP_SIZE_UNKNOWN,
      numbers, NULL, NULL);
}

static void
h_head (struct http_request *req, void *data)
{
  http_respond_head (req, 200, 12345);
}

static const struct http_route routes[] = {
  { "PUT", "/body", h_body },         { "POST", "/body/*", h_body },
  { "GET", "/param/{p}/x", h_param }, { NULL, "/stream", h_stream },
  { "HEAD", "/head", h_head },
};

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  struct http_server_opts o = { 0 };
  berth_error_t err = NULL;
  const char *addr;

  signal (SIGPIPE, SIG_IGN);
  o.listen = "127.0.0.1:0";
  o.routes = routes;
  o.n_routes = sizeof (routes) / sizeof (routes[0]);
  o.threads = 1;
  o.max_body_bytes = 1 << 20;
  o.max_header_bytes = 2048;
  o.timeout_seconds = 5;
  if (http_server_start (&o, &server, &err) < 0)
    {
      fprintf (stderr, "start: %s\n", err->msg);
      abort ();
    }
  addr = http_server_address (server);
  address.sin_family = AF_INET;
  address.sin_port = htons ((uint16_t) atoi (strrchr (addr, ':') + 1));
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* No TIME_WAIT on the client side: a reset at the close, so that a
   * long run does not use up the ephemeral ports.  */
  struct linger lg = { 1, 0 };
  char buf[65536];
  size_t off = 0;
  bool answered = false;
  int fd = -1, tries;

  /* Loopback's ephemeral ports can run short for a moment when other
   * programs connect fast too, and libFuzzer's SIGALRM can interrupt the
   * connect: neither is the server's fault, so a new socket tries again.  */
  for (tries = 0; tries < 1000; tries++)
    {
      int saved;

      fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0
          && connect (fd, (struct sockaddr *) &address, sizeof (address)) == 0)
        break;
      saved = errno;
      if (fd >= 0)
        close (fd);
      fd = -1;
      errno = saved;
      if (errno != EADDRNOTAVAIL && errno != EAGAIN && errno != EINTR)
        break;
      if (errno != EINTR)
        usleep (1000);
    }
  if (fd < 0)
    {
      fprintf (stderr, "connect: %s\n", strerror (errno));
      abort ();
    }
  setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof (lg));
  /* Send what the server takes, reading its answers meanwhile: a server
   * that answers and closes early makes the rest fail, which is fine.  */
  for (;;)
    {
      struct pollfd p = { fd, POLLIN | (off < size ? POLLOUT : 0), 0 };
      if (off == size)
        {
          shutdown (fd, SHUT_WR);
          off = size + 1;
        }
      int r;
      /* libFuzzer's -timeout checks with SIGALRM every second: poll is
       * interrupted, and goes on.  */
      do
        r = poll (&p, 1, 10000);
      while (r < 0 && errno == EINTR);
      if (r <= 0)
        {
          fprintf (stderr, "the server neither answered nor closed\n");
          abort ();
        }
      if (p.revents & POLLIN)
        {
          ssize_t n = recv (fd, buf, sizeof (buf), 0);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            break;
          if (!answered && n >= 7 && memcmp (buf, "HTTP/1.", 7) != 0)
            {
              fprintf (stderr, "an answer that is not HTTP: %.40s\n", buf);
              abort ();
            }
          answered = true;
        }
      else if (p.revents & POLLOUT)
        {
          ssize_t n = send (fd, data + off, size - off, MSG_NOSIGNAL);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            off = size;
          else
            off += (size_t) n;
        }
      else if (p.revents & (POLLHUP | POLLERR))
        break;
    }
  close (fd);
  return 0;
}
