#include "error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
berth_error_code (berth_error_t err)
{
  if (err == NULL || err->status == 0)
    return -1;
  return -err->status;
}

int
berth_make_error (berth_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  if (err == NULL)
    return status ? -status : -1;
  /* Keep the first error: a failure in cleanup must not hide its cause.  */
  if (*err != NULL)
    return status ? -status : -1;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);

  *err = calloc (1, sizeof (**err));
  if (*err == NULL)
    {
      free (msg);
      return status ? -status : -1;
    }
  (*err)->status = status;
  if (msg != NULL && status != 0)
    {
      char *full = NULL;
      if (asprintf (&full, "%s: %s", msg, strerror (status)) >= 0)
        {
          free (msg);
          msg = full;
        }
    }
  (*err)->msg = msg ? msg : strdup ("out of memory");
  return status ? -status : -1;
}

int
berth_make_invalid (berth_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  if (err == NULL || *err != NULL)
    return -EINVAL;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  *err = calloc (1, sizeof (**err));
  if (*err == NULL)
    {
      free (msg);
      return -EINVAL;
    }
  (*err)->status = EINVAL;
  (*err)->msg = msg ? msg : strdup ("out of memory");
  return -EINVAL;
}

int
berth_error_wrap (berth_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *ctx = NULL, *full = NULL;

  if (err == NULL || *err == NULL)
    return -1;
  va_start (ap, fmt);
  if (vasprintf (&ctx, fmt, ap) < 0)
    ctx = NULL;
  va_end (ap);
  if (ctx != NULL && asprintf (&full, "%s: %s", ctx, (*err)->msg) >= 0)
    {
      free ((*err)->msg);
      (*err)->msg = full;
    }
  free (ctx);
  return berth_error_code (*err);
}

void
berth_error_release (berth_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}

void
berth_error_print (FILE *stream, const char *prog, berth_error_t err)
{
  if (err == NULL)
    return;
  fprintf (stream, "%s: %s\n", prog, err->msg ? err->msg : "unknown error");
}
