/* parse.c - what an HTTP client sends, taken apart: the request line and
 * header fields, the framing headers (Content-Length, Transfer-Encoding,
 * Connection, Expect, Host), percent-decoding of the path and the query.
 * Pure functions of their input (no socket, no server state), so that a
 * fuzz target can call them directly.  */
#include "http/server-internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "utils.h"

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

unsigned
http_parse_head (struct http_request *req, char *head, size_t len)
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

unsigned
http_check_framing (struct http_request *req)
{
  const char *te = NULL, *conn = NULL;
  size_t i;
  bool have_cl = false, have_host = false;

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
      else if (strcasecmp (name, "Host") == 0)
        have_host = true;
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
  if (req->minor >= 1 && !have_host)
    return 400;
  req->has_body = req->chunked || req->content_length > 0;
  req->body_left = req->content_length > 0 ? (uint64_t) req->content_length : 0;
  if (req->minor == 0)
    req->keep_alive = conn && strcasestr (conn, "keep-alive");
  else
    req->keep_alive = !(conn && strcasestr (conn, "close"));
  return 0;
}
