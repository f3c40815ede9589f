/* error.h - the error convention used end to end.
 *
 * A function that can fail takes a caller-owned `berth_error_t *err` as its
 * last argument, returns a negative value on failure and fills *err.
 * berth_make_error() returns that negative value, so a failure is one line:
 *
 *     return berth_make_error (err, errno, "open `%s`", path);
 *
 * Context is added as the error travels up with berth_error_wrap(); the first
 * error is never replaced by a later one (berth_make_error on an already set
 * error keeps the first and drops the new one).  The caller frees the error
 * with berth_error_release().  Nothing in the library prints or exits.
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include <stdarg.h>
#include <stdio.h>

struct berth_error_s
{
  int status; /* an errno value, or 0 when there is none */
  char *msg;  /* the whole message, context first */
};
typedef struct berth_error_s *berth_error_t;

/* Fill *err (if still empty) with a message built from FMT and, when STATUS
 * is not 0, ": strerror(STATUS)".  Returns -STATUS, or -1 when STATUS is 0. */
int berth_make_error (berth_error_t *err, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* An input error: status EINVAL, and no ": Invalid argument" suffix, since
 * the message itself says what is wrong ("process.cwd: `x` is not an
 * absolute path").  Returns -EINVAL. */
int berth_make_invalid (berth_error_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Prefix the message in *err with "CONTEXT: ".  Returns the negative value
 * matching the stored status so callers can `return berth_error_wrap (...)`. */
int berth_error_wrap (berth_error_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Free *err and set it to NULL.  Safe on NULL. */
void berth_error_release (berth_error_t *err);

/* The negative return value that corresponds to *err. */
int berth_error_code (berth_error_t err);

/* Write "PROG: MESSAGE\n" (or a JSON log line when as_json) to STREAM. */
void berth_error_print (FILE *stream, const char *prog, berth_error_t err);

#endif
