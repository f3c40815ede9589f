/* server.h - Berth's HTTP/1.1 server, shared by the programs of Berth that
 * speak HTTP (berth-registry today, the engine's API later).  It is
 * written here, on epoll and sendfile(), with OpenSSL's libssl for HTTPS:
 * no other library, so that an idle server costs little memory.
 *
 * Threading model.  A pool of THREADS worker threads (default: the number
 * of online CPUs), each running an epoll loop over its share of the
 * connections.  A connection stays on one thread for its whole life, and
 * every callback of one request (the handler, the body callbacks, the
 * finish callback) runs on that thread, one after the other.  Different
 * requests run concurrently on different threads, so handlers must be
 * thread-safe: whatever they share (caches, tables of upload sessions)
 * needs its own locks.  A handler may block (file I/O, fsync); that
 * stalls the other connections of its thread only, which is why the pool
 * has several.
 *
 * The caller's main thread does nothing for the server: typically it
 * blocks SIGINT/SIGTERM before http_server_start() (so that the server's
 * threads inherit the mask), waits for them with sigwait() and then calls
 * http_server_stop().  The worker threads block SIGPIPE themselves: a
 * write to a connection its client closed fails with EPIPE.
 *
 * The protocol: HTTP/1.1 and 1.0, keep-alive and pipelining, request
 * bodies with a Content-Length or chunked (a request with both is refused:
 * that is how requests get smuggled), "Expect: 100-continue", responses
 * with a Content-Length or chunked when the size is unknown (closed at the
 * end for HTTP/1.0).  Paths and query values are percent-decoded, except
 * "%00", which stays as it is.  A malformed request gets a 4xx (505 for
 * another HTTP version) and the connection is closed after it.  A worker
 * that has been quiet for a second after some work gives the freed heap
 * back to the system (malloc_trim).
 *
 * A request goes through these steps:
 *
 *   1. Its headers arrive.  The server enforces the header and body
 *      limits (414, 431, 413: answered, then the connection is closed),
 *      matches the route table and calls the route's handler once, on the
 *      request's thread.
 *   2. The handler either answers at once (http_respond_*) or asks for
 *      the body with http_request_read_body(): the body then arrives as a
 *      stream of chunks (on_data), never buffered whole, and on_end runs
 *      after the last one; on_end answers.  A handler that answers at
 *      once while the request has a body makes the server drop that body:
 *      a small one (up to 16 MiB, no "Expect: 100-continue") is read and
 *      dropped, keeping the connection; otherwise the answer goes at once
 *      and the connection is closed after it.
 *   3. The finish callback, if any, runs (also when the client went away
 *      mid-body), then the answer is sent, the request is logged
 *      ("METHOD PATH STATUS BYTES DURATIONms", info level) and freed.
 *
 * Ownership: strings returned by the request accessors belong to the
 * request and stay valid until the handler, or on_end, has returned.
 */
#ifndef BERTH_HTTP_SERVER_H
#define BERTH_HTTP_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

struct http_server;
struct http_request;

enum http_log_level
{
  HTTP_LOG_DEBUG,
  HTTP_LOG_INFO,
  HTTP_LOG_WARN,
  HTTP_LOG_ERROR,
};

/* Receives every line the server logs (without a trailing newline).
 * Called from any of the server's threads. */
typedef void (*http_log_fn) (void *data, enum http_log_level level,
                             const char *msg);

/* A route handler; DATA is http_server_opts.data. */
typedef void (*http_handler_fn) (struct http_request *req, void *data);

/* One route.  METHOD is "GET", "PUT", ... or NULL for any method (the
 * handler then looks at http_request_method()).  PATTERN is matched
 * against the whole decoded path: literal text, "{NAME}" for one non-empty
 * path segment (read back with http_request_param (req, "NAME")), and a
 * final "*" for the rest of the path, possibly empty (param "*").
 * Examples: "/v2/", "/containers/{id}/json", and "/v2/" followed by "*"
 * for everything under /v2/.  The first route that matches wins; a path
 * no route matches gets a plain 404, a path that only matches routes of
 * other methods a 405. */
struct http_route
{
  const char *method;
  const char *pattern;
  http_handler_fn handler;
};

struct http_server_opts
{
  /* "HOST:PORT", "[V6ADDR]:PORT" or ":PORT" (every address, IPv6 and
   * IPv4 when the host allows it).  Port 0 picks a free port:
   * http_server_address() tells which. */
  const char *listen;
  const struct http_route *routes;
  size_t n_routes;
  void *data;
  unsigned threads;         /* 0: the number of online CPUs */
  uint64_t max_body_bytes;  /* 0: no limit; over it: 413 */
  size_t max_header_bytes;  /* 0: 64 KiB; over it: 431 */
  unsigned timeout_seconds; /* idle connections are closed; 0: 300 */
  /* HTTPS: the PEM certificate (chain) and private key, both or neither
   * (read at the start).  Bodies are then sent through TLS instead of
   * sendfile(). */
  const char *tls_cert_pem;
  const char *tls_key_pem;
  http_log_fn log; /* may be NULL */
  void *log_data;
  /* NULL-terminated name, value, name, value... added to every response
   * (not copied: must outlive the server).  May be NULL. */
  const char *const *headers;
};

/* Start listening and serving.  The route table is copied. */
int http_server_start (const struct http_server_opts *opts,
                       struct http_server **out, berth_error_t *err);

/* The address actually bound, as "127.0.0.1:5000" or "[::1]:5000". */
const char *http_server_address (struct http_server *server);

/* Close the listening socket and every connection (requests in progress
 * are aborted: their finish callbacks run with completed = false), join
 * the threads and free the server.  Safe on NULL. */
void http_server_stop (struct http_server *server);

/* Log through the server's log function (printf-style). */
void http_server_log (struct http_server *server, enum http_log_level level,
                      const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* --- The request ------------------------------------------------------ */

const char *http_request_method (struct http_request *req);
/* The decoded path, without the query. */
const char *http_request_path (struct http_request *req);
/* The first value of query parameter KEY, or NULL. */
const char *http_request_query (struct http_request *req, const char *key);
/* Call FN for each value of query parameter KEY, in order; stops early
 * when FN returns non-zero and returns that value. */
int http_request_query_each (struct http_request *req, const char *key,
                             int (*fn) (const char *value, void *data),
                             void *data);
/* A request header (case-insensitive), or NULL. */
const char *http_request_header (struct http_request *req, const char *name);
/* A "{NAME}" or "*" capture of the matched route, or NULL. */
const char *http_request_param (struct http_request *req, const char *name);
/* The Content-Length, or -1 when absent (no body, or chunked). */
int64_t http_request_content_length (struct http_request *req);
/* True when the request has a body (a Content-Length above 0, or a
 * chunked body). */
bool http_request_has_body (struct http_request *req);
bool http_request_is_head (struct http_request *req);
struct http_server *http_request_server (struct http_request *req);

/* --- The body ---------------------------------------------------------- */

/* Called for each chunk of the body, in order.  Return 0 to go on, or a
 * negative value after setting the response (an error): the rest of the
 * body is then dropped and on_end is not called. */
typedef int (*http_body_fn) (struct http_request *req, const char *data,
                             size_t len, void *ctx);
/* Called once after the last chunk (also for an empty body); must set the
 * response. */
typedef void (*http_end_fn) (struct http_request *req, void *ctx);
/* Called once per request that set it, whatever happened: just before the
 * answer is queued (so a client that got the answer finds the state it
 * describes), or when the request is abandoned.  COMPLETED is true when
 * the whole request arrived and the handler answered normally (on_end
 * ran, if there was a reader); false when on_data refused the body, the
 * answer was sent before the body, the client went away, a limit was hit
 * or the server stopped mid-request, so that partial work can be undone.
 * Free CTX here, unless the response reads it: the finish callback runs
 * before the body of the answer is sent, so a context that a
 * http_respond_stream() READ also uses must be freed by that response's
 * FREE_CTX, never here (see http_respond_stream). */
typedef void (*http_finish_fn) (void *ctx, bool completed);

/* Only from the handler (step 1).  ON_END is required. */
void http_request_read_body (struct http_request *req, http_body_fn on_data,
                             http_end_fn on_end, void *ctx);
/* Only from the handler (step 1). */
void http_request_on_finish (struct http_request *req, http_finish_fn fn,
                             void *ctx);

/* --- The response ------------------------------------------------------ */

/* Each http_respond_* replaces the previous response of REQ, if any, with
 * a new one without headers; http_header() then adds headers to it.
 * Content-Length is computed by the server (and sent for HEAD too,
 * without the body). */

/* BODY is copied; CONTENT_TYPE may be NULL. */
void http_respond (struct http_request *req, unsigned status,
                   const char *content_type, const void *body, size_t len);
/* BODY (malloc'd) is taken over and freed by the server. */
void http_respond_take (struct http_request *req, unsigned status,
                        const char *content_type, char *body, size_t len);
/* DOC serialised compactly as application/json (or CONTENT_TYPE when not
 * NULL); DOC is taken over. */
void http_respond_json (struct http_request *req, unsigned status,
                        const char *content_type, json_t *doc);
void http_respond_empty (struct http_request *req, unsigned status);
/* LEN bytes of FD from OFFSET, sent with sendfile() when possible.  FD is
 * taken over (closed by the server, also on failure). */
void http_respond_fd (struct http_request *req, unsigned status, int fd,
                      uint64_t offset, uint64_t len);
/* A body of SIZE bytes that is never produced: for HEAD, which must carry
 * the Content-Length of the body a GET would return. */
void http_respond_head (struct http_request *req, unsigned status,
                        uint64_t size);

#define HTTP_SIZE_UNKNOWN UINT64_MAX
/* A streamed body: READ fills BUF with up to MAX bytes at position POS
 * and returns how many (> 0), 0 at the end, or -1 on error (the
 * connection is then closed).  SIZE may be HTTP_SIZE_UNKNOWN (chunked
 * encoding).  FREE_CTX, if not NULL, runs once when the response is done
 * with: after its last READ, when the client went away or the server
 * stopped, when another http_respond_* replaces this response, or at once
 * for HEAD and bodiless statuses.  READ runs after the request's finish
 * callback (which runs before the answer is queued), and FREE_CTX always
 * runs after it: so CTX, if the finish callback shares it, belongs to
 * FREE_CTX alone; the finish callback must not free it. */
typedef long (*http_read_fn) (void *ctx, uint64_t pos, char *buf, size_t max);
void http_respond_stream (struct http_request *req, unsigned status,
                          uint64_t size, http_read_fn read, void *ctx,
                          void (*free_ctx) (void *ctx));

void http_header (struct http_request *req, const char *name,
                  const char *value);
void http_headerf (struct http_request *req, const char *name, const char *fmt,
                   ...) __attribute__ ((format (printf, 3, 4)));

/* The status of the response set so far, 0 if none. */
unsigned http_response_status (struct http_request *req);

#endif
