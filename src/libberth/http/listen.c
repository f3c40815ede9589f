/* listen.c - the listening side of the HTTP server: the address to
 * listen on, the socket (every address of both families for ":PORT"),
 * accept() with its descriptor shortage, and the TLS context.  */
#include "http/server-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "utils.h"

/* Most connections one wake-up accepts, so that one busy listener does not
 * starve the connections of its worker.  */
#define ACCEPT_BATCH 32
/* How long a worker that could not even keep a spare descriptor stops
 * watching the listener.  */
#define LISTEN_PAUSE_NS (100 * 1000000ULL)

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

int
http_tls_setup (struct http_server *s, const char *cert_pem,
                const char *key_pem, berth_error_t *err)
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

int
http_listen_open (struct http_server *s, const char *listen, berth_error_t *err)
{
  struct sockaddr_storage ss, bound;
  socklen_t sslen = 0, blen = sizeof (bound);
  unsigned port = 0;
  bool any;
  int r;

  r = parse_listen (listen, &ss, &sslen, &any, err);
  if (r < 0)
    return r;
  s->listen_fd = open_listener (&ss, sslen, &any);
  if (s->listen_fd < 0)
    return berth_make_error (err, errno, "listen on `%s`", listen);
  if (getsockname (s->listen_fd, (struct sockaddr *) &bound, &blen) == 0)
    port = ntohs (bound.ss_family == AF_INET
                      ? ((struct sockaddr_in *) &bound)->sin_port
                      : ((struct sockaddr_in6 *) &bound)->sin6_port);
  format_address (s, &ss, any, port);
  return 0;
}

/* --- Accepting ---------------------------------------------------------- */

/* Stop watching the listening socket for LISTEN_PAUSE_NS: with no
 * descriptor to take a connection with, the level-triggered listener
 * would wake the worker in a loop.  */
static void
pause_listener (struct worker *w)
{
  if (w->listen_paused_until)
    return;
  epoll_ctl (w->epfd, EPOLL_CTL_DEL, w->server->listen_fd, NULL);
  w->listen_paused_until = now_ns () + LISTEN_PAUSE_NS;
}

int
http_listen_watch (struct worker *w)
{
  struct epoll_event e;
  e.events = EPOLLIN | EPOLLEXCLUSIVE;
  e.data.ptr = &w->server->listen_fd;
  if (epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->server->listen_fd, &e) < 0)
    {
      w->listen_paused_until = now_ns () + LISTEN_PAUSE_NS; /* try again */
      return -1;
    }
  w->listen_paused_until = 0;
  return 0;
}

/* accept() found no descriptor.  The spare one makes room to take the
 * connection and close it, so that its client learns at once.  Several
 * workers share the process's descriptors: between the close of the
 * spare and the accept() another worker may take the number, and then
 * the spare cannot be opened again; it is tried again on the next
 * shortage, and while there is none the listener is paused instead.  */
static void
accept_shortage (struct worker *w)
{
  struct http_server *srv = w->server;
  if (w->spare_fd < 0)
    w->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (w->spare_fd >= 0)
    {
      int fd;
      close (w->spare_fd);
      fd = accept4 (srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0)
        close (fd);
      w->spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    }
  http_server_log (srv, HTTP_LOG_WARN, "accept: out of file descriptors");
  if (w->spare_fd < 0)
    pause_listener (w);
}

void
http_accept (struct worker *w)
{
  struct http_server *srv = w->server;
  int i;
  for (i = 0; i < ACCEPT_BATCH; i++)
    {
      int fd
          = accept4 (srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          if (errno == EMFILE || errno == ENFILE)
            accept_shortage (w);
          return;
        }
      http_conn_open (w, fd);
    }
}
