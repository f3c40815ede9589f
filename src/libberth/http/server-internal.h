/* server-internal.h - what the files of Berth's HTTP server share: the
 * server, its workers, the request and the connection, and the functions
 * one file offers the others.  Not part of the API (that is server.h).
 *
 *   parse.c   the request head, framing, percent-decoding and queries:
 *             pure functions of their input, callable from a fuzz target;
 *   conn.c    the connection state machine: read, body decoding, send;
 *   listen.c  the listening address and socket, accept(), the TLS context;
 *   server.c  the public API (requests, responses), routing, the workers.
 */
#ifndef BERTH_HTTP_SERVER_INTERNAL_H
#define BERTH_HTTP_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "http/server.h"

#define MAX_PARAMS 8
/* Header fields in one request: each costs two allocations.  */
#define MAX_HEADERS 256

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

/* A list of connections, in the order they were appended.  */
struct conn_list
{
  struct conn *oldest, *newest;
};

/* A connection's place in one list.  */
struct conn_link
{
  struct conn *older, *newer;
};

/* The lists a connection can be on: by deadline (its worker's idle or
 * linger list), and its worker's ready list.  */
enum conn_link_kind
{
  LINK_DEADLINE,
  LINK_READY,
};

struct worker
{
  struct http_server *server;
  pthread_t thread;
  bool started;
  int epfd;
  int wake_fd;  /* an eventfd: written by http_server_stop() */
  int spare_fd; /* kept open to be closed when accept() hits EMFILE */
  /* Not 0: the listener is out of the epoll set until then (ns).  */
  uint64_t listen_paused_until;
  /* Connections by last activity, oldest first: the idle timeout.  */
  struct conn_list idle;
  /* Lingering connections (LINGER), by deadline: a list of their own, as
   * their deadline is much nearer than the idle ones'.  */
  struct conn_list linger;
  /* Connections with work left after their share of a wake-up, that epoll
   * will not report again: served before the next epoll_wait() blocks.  */
  struct conn_list ready;
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
  /* The last SSL_read stopped for bytes from the socket: what libssl
   * holds (SSL_has_pending) is a partial record, and EPOLLIN, not the
   * ready list, brings the rest.  */
  bool tls_read_blocked;
  bool tls_want_read; /* a write waits for libssl to read first */
  enum conn_state state;
  struct conn_list *list;    /* which list by deadline holds it */
  struct conn_link links[2]; /* by enum conn_link_kind */
  bool ready;                /* on its worker's ready list */
  /* This wake-up's share: read once, begin BUDGET more requests; MORE
   * when the share ran out with work left.  */
  bool did_read, more;
  unsigned budget;
  uint64_t deadline_ns;
  uint32_t events; /* registered with epoll */

  /* Input: bytes [in_off, in_len) of IN are still to be processed;
   * HEAD_SCAN is how far past in_off the search for the end of the head
   * has looked.  */
  char *in;
  size_t in_off, in_len, in_cap;
  size_t head_scan;
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

/* --- server.c ----------------------------------------------------------- */

/* Append N bytes of DATA to the NUL-terminated buffer *BUF.  */
void http_buf_append (char **buf, size_t *len, size_t *cap, const char *data,
                      size_t n);
void http_buf_appendf (char **buf, size_t *len, size_t *cap, const char *fmt,
                       ...) __attribute__ ((format (printf, 4, 5)));
/* Drop the body of REQ's response (closing its file, freeing its
 * stream).  */
void http_release_body (struct http_request *req);
/* A text/plain response.  */
void http_respond_text (struct http_request *req, unsigned status,
                        const char *text);
/* Match the route table and call the handler, or answer 404/405.  */
void http_dispatch (struct http_request *req);
/* Free REQ and all it holds (safe on NULL).  */
void http_request_free (struct http_request *req);

/* --- parse.c ------------------------------------------------------------ */

/* Split the head (request line and headers, LEN bytes ending with an empty
 * line) into REQ.  0, or the status to answer with.  */
unsigned http_parse_head (struct http_request *req, char *head, size_t len);
/* Framing and connection headers of a parsed head.  0, or the status to
 * answer with.  */
unsigned http_check_framing (struct http_request *req);

/* The length of the head at the start of BUF (LEN bytes: up to and with
 * the empty line that ends it), or 0 when it is not complete yet.  *SCAN
 * is where the search resumes (0 the first time): what was looked at
 * before is not looked at again.  */
size_t http_head_end (const char *buf, size_t len, size_t *scan);

/* The size of a chunk from its size line (LEN bytes, without the line
 * end): hex digits, then optional whitespace and extensions after ';'.
 * 0, or -1 when the line is malformed (a NUL in it included).  */
int http_parse_chunk_size (const char *line, size_t len, uint64_t *size);

/* --- conn.c ------------------------------------------------------------- */

/* A new connection on W for the accepted socket FD (taken over, closed on
 * failure).  */
void http_conn_open (struct worker *w, int fd);
/* Epoll reported C ready: go on with what it is doing.  */
void http_conn_event (struct conn *c);
/* Give each connection of W's ready list its turn (conn.c frees those
 * that close).  */
void http_conn_run_ready (struct worker *w);
/* Close C's socket and abandon its request; C itself stays allocated
 * (c->fd is then -1) until http_conn_free().  */
void http_conn_close (struct conn *c);
void http_conn_free (struct conn *c);

/* --- listen.c ----------------------------------------------------------- */

/* The listening socket of S on LISTEN ("HOST:PORT"...), and s->address.  */
int http_listen_open (struct http_server *s, const char *listen,
                      berth_error_t *err);
/* The TLS context of S from PEM texts.  */
int http_tls_setup (struct http_server *s, const char *cert_pem,
                    const char *key_pem, berth_error_t *err);
/* Add the listening socket to W's epoll set (again, after a pause).  */
int http_listen_watch (struct worker *w);
/* Accept the connections waiting on the listening socket, a batch.  */
void http_accept (struct worker *w);

#endif
