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

/* One header field, LINE up to END (without the line end), added to
 * REQ.  0, or the status to answer with.  */
static unsigned
parse_field (struct http_request *req, const char *line, const char *end)
{
  const char *colon, *v, *ve = end, *q;
  struct kv kv;

  if (*line == ' ' || *line == '\t')
    return 400; /* obsolete line folding */
  colon = memchr (line, ':', end - line);
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
  req->headers
      = xrealloc (req->headers, (req->n_headers + 1) * sizeof (*req->headers));
  req->headers[req->n_headers++] = kv;
  return 0;
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
      unsigned status;
      char *ve;
      eol = memchr (line, '\n', end - line);
      if (eol == NULL)
        break;
      ve = eol;
      if (ve > line && ve[-1] == '\r')
        ve--;
      if (ve == line)
        break; /* the empty line */
      status = parse_field (req, line, ve);
      if (status)
        return status;
    }
  return 0;
}

/* What the framing headers said, gathered over all of them.  */
struct framing
{
  const char *te;
  bool have_cl;
  unsigned hosts;
  bool conn_close, conn_keep_alive;
};

/* Whether TOKEN is an element of the comma-separated LIST (RFC 9110 5.6.1:
 * optional whitespace around elements, empty elements allowed), compared
 * case-insensitively.  */
static bool
list_has_token (const char *list, const char *token)
{
  size_t tlen = strlen (token);
  while (*list)
    {
      size_t n;
      while (*list == ' ' || *list == '\t' || *list == ',')
        list++;
      n = strcspn (list, ",");
      while (n > 0 && (list[n - 1] == ' ' || list[n - 1] == '\t'))
        n--;
      if (n == tlen && strncasecmp (list, token, n) == 0)
        return true;
      list += strcspn (list, ",");
    }
  return false;
}

/* One Content-Length field: digits only, and the same as any before.  */
static unsigned
framing_length (struct http_request *req, struct framing *f, const char *v)
{
  int64_t cl;
  const char *p;
  for (p = v; *p; p++)
    if (!isdigit ((unsigned char) *p))
      return 400;
  if (parse_int64 (v, &cl) < 0 || cl < 0)
    return 400;
  if (f->have_cl && cl != req->content_length)
    return 400;
  f->have_cl = true;
  req->content_length = cl;
  return 0;
}

/* One header field that matters to the framing.  0, or a status.  */
static unsigned
framing_field (struct http_request *req, struct framing *f, const char *name,
               const char *v)
{
  if (strcasecmp (name, "Content-Length") == 0)
    return framing_length (req, f, v);
  if (strcasecmp (name, "Transfer-Encoding") == 0)
    {
      if (f->te)
        return 400;
      f->te = v;
    }
  else if (strcasecmp (name, "Host") == 0)
    f->hosts++;
  else if (strcasecmp (name, "Connection") == 0)
    {
      f->conn_close |= list_has_token (v, "close");
      f->conn_keep_alive |= list_has_token (v, "keep-alive");
    }
  else if (strcasecmp (name, "Expect") == 0)
    {
      if (strcasecmp (v, "100-continue") != 0)
        return 417;
      req->expect_continue = req->minor >= 1;
    }
  return 0;
}

unsigned
http_check_framing (struct http_request *req)
{
  struct framing f = { 0 };
  size_t i;

  req->content_length = -1;
  for (i = 0; i < req->n_headers; i++)
    {
      unsigned status = framing_field (req, &f, req->headers[i].name,
                                       req->headers[i].value);
      if (status)
        return status;
    }
  if (f.te)
    {
      /* A body sent both ways is how requests get smuggled: refused.  */
      if (f.have_cl)
        return 400;
      if (strcasecmp (f.te, "chunked") != 0)
        return 501;
      req->chunked = true;
      req->content_length = -1;
    }
  /* Several Host fields: which one names the site is anybody's guess, and
   * a proxy in front may have picked another (RFC 9112 3.2).  */
  if (f.hosts > 1 || (req->minor >= 1 && f.hosts == 0))
    return 400;
  req->has_body = req->chunked || req->content_length > 0;
  req->body_left = req->content_length > 0 ? (uint64_t) req->content_length : 0;
  if (f.conn_close)
    req->keep_alive = false;
  else if (req->minor == 0)
    /* An HTTP/1.0 body chunked: HTTP/1.0 has no such framing, so where it
     * ends cannot be trusted; close after the answer (RFC 9112 6.1).  */
    req->keep_alive = f.conn_keep_alive && !req->chunked;
  else
    req->keep_alive = true;
  return 0;
}

int
http_parse_chunk_size (const char *line, size_t len, uint64_t *size)
{
  const char *q = line, *end = line + len;
  uint64_t v = 0;
  int d;

  /* A NUL would hide the rest of the line (an extension, or garbage).  */
  if (memchr (line, '\0', len))
    return -1;
  if (q == end || hex_digit_value (*q) < 0)
    return -1;
  for (; q < end && (d = hex_digit_value (*q)) >= 0; q++)
    {
      if (v >> 60)
        return -1;
      v = v << 4 | (uint64_t) d;
    }
  while (q < end && (*q == ' ' || *q == '\t'))
    q++;
  if (q != end && *q != ';')
    return -1;
  *size = v;
  return 0;
}

size_t
http_head_end (const char *buf, size_t len, size_t *scan)
{
  size_t i = *scan;
  while (i < len)
    {
      const char *nl = memchr (buf + i, '\n', len - i);
      if (nl == NULL)
        {
          i = len;
          break;
        }
      i = (size_t) (nl - buf);
      /* "\n\n" or "\n\r\n" ends the head; a line end too near the end
       * of BUF to tell is looked at again with more bytes.  */
      if (i + 1 >= len || (buf[i + 1] == '\r' && i + 2 >= len))
        break;
      if (buf[i + 1] == '\n')
        return i + 2;
      if (buf[i + 1] == '\r' && buf[i + 2] == '\n')
        return i + 3;
      i++;
    }
  *scan = i;
  return 0;
}
