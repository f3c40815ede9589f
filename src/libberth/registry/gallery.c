/* gallery.c - the web gallery (see gallery.h). */
#include "registry/gallery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "registry/auth.h"
#include "registry/manifest.h"
#include "registry/registry-internal.h"
#include "utils.h"

/* A config blob larger than this is not shown. */
#define MAX_CONFIG_BYTES (4u << 20)

/* --- HTML output -------------------------------------------------------- */

struct page
{
  FILE *f;
  char *buf;
  size_t len;
};

static void
page_init (struct page *p)
{
  p->buf = NULL;
  p->len = 0;
  p->f = open_memstream (&p->buf, &p->len);
  if (p->f == NULL)
    abort ();
}

static void
out (struct page *p, const char *s)
{
  fputs (s, p->f);
}

static void outf (struct page *p, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
outf (struct page *p, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vfprintf (p->f, fmt, ap);
  va_end (ap);
}

/* S, HTML-escaped (text and attribute values). */
static void
esc (struct page *p, const char *s)
{
  for (; s && *s; s++)
    switch (*s)
      {
      case '&':
        fputs ("&amp;", p->f);
        break;
      case '<':
        fputs ("&lt;", p->f);
        break;
      case '>':
        fputs ("&gt;", p->f);
        break;
      case '"':
        fputs ("&quot;", p->f);
        break;
      case '\'':
        fputs ("&#39;", p->f);
        break;
      default:
        fputc (*s, p->f);
      }
}

static const char style[]
    = "*{box-sizing:border-box}"
      "body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,"
      "Roboto,sans-serif;color:#1d2430;background:#f5f7fa}"
      "header{background:#17324d;color:#fff;padding:.8em 1em}"
      "header a{color:#fff;text-decoration:none;font-weight:600}"
      "main{max-width:60em;margin:0 auto;padding:1em}"
      "a{color:#0b5cad}"
      "h1{font-size:1.4em;word-break:break-all}"
      "h2{font-size:1.15em;margin:0 0 .5em}"
      "ul.list{list-style:none;padding:0;margin:0}"
      "ul.list li{background:#fff;border:1px solid #dde3ea;border-radius:6px;"
      "margin:.4em 0;padding:.6em .8em;word-break:break-all}"
      "section{background:#fff;border:1px solid #dde3ea;border-radius:6px;"
      "padding:1em;margin:1em 0;overflow-x:auto}"
      "form{display:flex;gap:.5em;margin:0 0 1em}"
      "input[type=search]{flex:1;min-width:0;padding:.5em;font-size:1em;"
      "border:1px solid #b8c2cc;border-radius:4px}"
      "button{padding:.5em 1em;font-size:1em}"
      "table{border-collapse:collapse;width:100%}"
      "td,th{text-align:left;padding:.3em .5em;border-bottom:1px solid #eee;"
      "vertical-align:top;word-break:break-all}"
      "code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;"
      "font-size:.9em}"
      "pre{background:#0f1b26;color:#e8eef4;padding:.6em .8em;"
      "border-radius:4px;overflow-x:auto;white-space:pre-wrap;"
      "word-break:break-all}"
      ".tag{display:inline-block;background:#e3edf7;border-radius:3px;"
      "padding:0 .4em;font-size:.85em}"
      ".foreign{background:#fde8c8}"
      ".muted{color:#5b6775}";

static void
page_head (struct page *p, const char *title)
{
  out (p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, "
          "initial-scale=1\"><title>");
  esc (p, title);
  out (p, " - berth-registry</title><style>");
  out (p, style);
  out (p, "</style></head><body><header><a href=\"/\">berth-registry</a>"
          "</header><main>\n");
}

static void
page_send (struct page *p, struct http_request *req, unsigned status)
{
  out (p, "</main></body></html>\n");
  fclose (p->f);
  p->f = NULL;
  http_respond_take (req, status, "text/html; charset=utf-8", p->buf, p->len);
  http_header (req, "Cache-Control", "no-cache");
  http_header (req, "X-Content-Type-Options", "nosniff");
  http_header (req, "Content-Security-Policy",
               "default-src 'none'; style-src 'unsafe-inline'");
}

static void
not_found (struct http_request *req, const char *what)
{
  struct page p;

  page_init (&p);
  page_head (&p, "Not found");
  out (&p, "<h1>Not found</h1><p>");
  esc (&p, what);
  out (&p, "</p><p><a href=\"/\">All repositories</a></p>");
  page_send (&p, req, 404);
}

static void
human_size (struct page *p, uint64_t n)
{
  static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = (double) n;
  size_t u = 0;

  while (v >= 1024 && u + 1 < ARRAY_SIZE (units))
    {
      v /= 1024;
      u++;
    }
  if (u == 0)
    outf (p, "%" PRIu64 " B", n);
  else
    outf (p, "%.1f %s", v, units[u]);
}

/* "sha256:0123456789ab" from a digest string. */
static void
short_digest (struct page *p, const char *d)
{
  const char *colon = d ? strchr (d, ':') : NULL;

  if (colon == NULL)
    {
      esc (p, d);
      return;
    }
  outf (p, "<code title=\"");
  esc (p, d);
  outf (p, "\">");
  cleanup_free char *s = xstrndup (d, (size_t) (colon - d) + 1 + 12);
  esc (p, s);
  out (p, "</code>");
}

/* --- Access ------------------------------------------------------------- */

/* Who may see the gallery.  With the config's auth, browsers sign in
 * with Basic credentials in both modes (they cannot do Bearer) and see
 * only what they may pull; a hook given by the caller is asked for a
 * pull, as for the API.  */
struct viewer
{
  const struct registry_auth *auth; /* NULL: no filter */
  char *account;                    /* NULL: anonymous */
};

static void
viewer_release (struct viewer *v)
{
  free (v->account);
}
#define cleanup_viewer __attribute__ ((cleanup (viewer_release)))

static bool
may_see (const struct viewer *v, const char *name)
{
  return v->auth == NULL || registry_auth_may_pull (v->auth, v->account, name);
}

/* --- Pages -------------------------------------------------------------- */

static void
repo_list (struct registry *reg, struct http_request *req,
           const struct viewer *v)
{
  const char *q = http_request_query (req, "q");
  cleanup_strv char **repos = NULL;
  berth_error_t err = NULL;
  struct page p;
  size_t shown = 0;

  if (registry_storage_catalog (reg->storage, &repos, &err) < 0)
    {
      registry_internal_error (reg, req, &err);
      return;
    }
  page_init (&p);
  page_head (&p, "Repositories");
  out (&p, "<h1>Repositories</h1><form method=\"get\" action=\"/\" "
           "role=\"search\"><input type=\"search\" name=\"q\" "
           "placeholder=\"Filter by name\" aria-label=\"Filter by name\" "
           "value=\"");
  esc (&p, q);
  out (&p, "\"><button type=\"submit\">Search</button></form>\n"
           "<ul class=\"list\">\n");
  for (size_t i = 0; repos && repos[i]; i++)
    {
      if ((q && *q && strstr (repos[i], q) == NULL) || !may_see (v, repos[i]))
        continue;
      out (&p, "<li><a href=\"/r/");
      esc (&p, repos[i]);
      out (&p, "\">");
      esc (&p, repos[i]);
      out (&p, "</a></li>\n");
      shown++;
    }
  out (&p, "</ul>\n");
  if (shown == 0)
    out (&p, "<p class=\"muted\">No repositories.</p>");
  page_send (&p, req, 200);
}

static void
tag_list (struct registry *reg, struct http_request *req, const char *name)
{
  cleanup_strv char **tags = NULL;
  berth_error_t err = NULL;
  struct page p;
  int r;

  r = registry_storage_tags (reg->storage, name, &tags, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      not_found (req, "No such repository.");
      return;
    }
  if (r < 0)
    {
      registry_internal_error (reg, req, &err);
      return;
    }
  page_init (&p);
  page_head (&p, name);
  out (&p, "<h1>");
  esc (&p, name);
  out (&p, "</h1><h2>Tags</h2><ul class=\"list\">\n");
  for (size_t i = 0; tags && tags[i]; i++)
    {
      out (&p, "<li><a href=\"/r/");
      esc (&p, name);
      out (&p, "/t/");
      esc (&p, tags[i]);
      out (&p, "\">");
      esc (&p, tags[i]);
      out (&p, "</a></li>\n");
    }
  out (&p, "</ul>\n");
  if (tags == NULL || tags[0] == NULL)
    out (&p, "<p class=\"muted\">No tags.</p>");
  page_send (&p, req, 200);
}

/* The config blob of an image, parsed, or NULL. */
static json_t *
read_config (struct registry *reg, const char *name, const char *digest_str)
{
  struct registry_digest d;
  berth_error_t err = NULL;
  cleanup_close int fd = -1;
  cleanup_free char *buf = NULL;
  uint64_t size;

  if (digest_str == NULL || registry_digest_parse (digest_str, &d, &err) < 0
      || registry_storage_blob_open (reg->storage, name, &d, &fd, &size, &err)
             < 0)
    {
      berth_error_release (&err);
      return NULL;
    }
  if (size > MAX_CONFIG_BYTES)
    return NULL;
  buf = xmalloc (size + 1);
  if (safe_read_all (fd, buf, size) != (ssize_t) size)
    return NULL;
  return json_loadb (buf, size, 0, NULL);
}

static bool
is_foreign (json_t *layer)
{
  const char *mt = json_string_value (json_object_get (layer, "mediaType"));

  if (json_array_size (json_object_get (layer, "urls")) > 0)
    return true;
  return mt
         && (strstr (mt, "foreign") != NULL
             || strstr (mt, "nondistributable") != NULL);
}

static void
platform_line (struct page *p, const char *os, const char *arch,
               const char *variant, const char *os_version)
{
  bool windows = os && strcmp (os, "windows") == 0;

  out (p, "<span class=\"platform\">");
  if (windows)
    out (p, "Windows");
  else
    esc (p, os ? os : "unknown");
  out (p, "/");
  esc (p, arch ? arch : "unknown");
  if (variant && *variant)
    {
      out (p, "/");
      esc (p, variant);
    }
  if (os_version && *os_version)
    {
      out (p, " (");
      if (windows)
        out (p, "Windows ");
      out (p, "version ");
      esc (p, os_version);
      out (p, ")");
    }
  out (p, "</span>");
}

/* One image manifest DOC: sizes, layers, config. */
static void
image_body (struct registry *reg, struct page *p, const char *name, json_t *doc,
            bool with_platform)
{
  json_t *layers = json_object_get (doc, "layers");
  json_t *cdesc = json_object_get (doc, "config");
  cleanup_json json_t *config = NULL;
  uint64_t total = 0;
  size_t i;
  json_t *l;

  config = read_config (reg, name,
                        json_string_value (json_object_get (cdesc, "digest")));
  json_array_foreach (layers, i, l)
  {
    json_int_t s = json_integer_value (json_object_get (l, "size"));
    if (s > 0)
      total += (uint64_t) s;
  }
  out (p, "<table>");
  if (with_platform && config)
    {
      out (p, "<tr><th>Platform</th><td>");
      platform_line (
          p, json_string_value (json_object_get (config, "os")),
          json_string_value (json_object_get (config, "architecture")),
          json_string_value (json_object_get (config, "variant")),
          json_string_value (json_object_get (config, "os.version")));
      out (p, "</td></tr>");
    }
  out (p, "<tr><th>Compressed size</th><td class=\"size\">");
  human_size (p, total);
  outf (p, " <span class=\"muted\">(%" PRIu64 " bytes)</span></td></tr>",
        total);
  if (config)
    {
      const char *created
          = json_string_value (json_object_get (config, "created"));
      out (p, "<tr><th>Created</th><td class=\"created\">");
      esc (p, created ? created : "unknown");
      out (p, "</td></tr>");
    }
  out (p, "</table>\n");

  outf (p,
        "<h3>Layers (%zu)</h3><table><tr><th>Digest</th><th>Size</th>"
        "<th></th></tr>\n",
        json_array_size (layers));
  json_array_foreach (layers, i, l)
  {
    json_int_t s = json_integer_value (json_object_get (l, "size"));
    out (p, "<tr class=\"layer\"><td>");
    short_digest (p, json_string_value (json_object_get (l, "digest")));
    out (p, "</td><td>");
    human_size (p, s > 0 ? (uint64_t) s : 0);
    out (p, "</td><td>");
    if (is_foreign (l))
      out (p, "<span class=\"tag foreign\">foreign</span>");
    out (p, "</td></tr>\n");
  }
  out (p, "</table>\n");

  if (config)
    {
      json_t *labels
          = json_object_get (json_object_get (config, "config"), "Labels");
      const char *k;
      json_t *v;

      if (json_object_size (labels) > 0)
        {
          out (p, "<h3>Labels</h3><table class=\"labels\">\n");
          json_object_foreach (labels, k, v)
          {
            out (p, "<tr><th>");
            esc (p, k);
            out (p, "</th><td>");
            esc (p, json_is_string (v) ? json_string_value (v) : "");
            out (p, "</td></tr>\n");
          }
          out (p, "</table>\n");
        }
    }
  else
    out (p, "<p class=\"muted\">No image configuration.</p>");
}

/* An index entry: its child manifest, read by digest. */
static void
index_entry (struct registry *reg, struct page *p, const char *name,
             json_t *entry)
{
  json_t *plat = json_object_get (entry, "platform");
  const char *ds = json_string_value (json_object_get (entry, "digest"));
  struct registry_manifest_data md = { 0 };
  cleanup_json json_t *doc = NULL;
  struct registry_digest d;
  berth_error_t err = NULL;

  out (p, "<section class=\"platform-section\"><h2>");
  if (plat)
    platform_line (p, json_string_value (json_object_get (plat, "os")),
                   json_string_value (json_object_get (plat, "architecture")),
                   json_string_value (json_object_get (plat, "variant")),
                   json_string_value (json_object_get (plat, "os.version")));
  else
    out (p, "Unknown platform");
  out (p, "</h2><p class=\"muted\">Manifest ");
  short_digest (p, ds);
  out (p, "</p>\n");
  if (ds && registry_digest_parse (ds, &d, &err) == 0
      && registry_storage_manifest_get (reg->storage, name, NULL, &d, &md, &err)
             == 0)
    doc = json_loadb (md.data, md.len, 0, NULL);
  berth_error_release (&err);
  registry_manifest_data_release (&md);
  if (doc && json_is_array (json_object_get (doc, "layers")))
    image_body (reg, p, name, doc, false);
  else
    out (p, "<p class=\"muted\">Not an image, or not in this "
            "repository.</p>");
  out (p, "</section>\n");
}

static void
tag_page (struct registry *reg, struct http_request *req, const char *name,
          const char *tag)
{
  struct registry_manifest_data md = { 0 };
  cleanup_json json_t *doc = NULL;
  const char *host = http_request_header (req, "Host");
  berth_error_t err = NULL;
  struct page p;
  json_t *entries;
  int r;

  r = registry_storage_manifest_get (reg->storage, name, tag, NULL, &md, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      not_found (req, registry_storage_repo_exists (reg->storage, name)
                          ? "No such tag."
                          : "No such repository.");
      return;
    }
  if (r < 0)
    {
      registry_internal_error (reg, req, &err);
      return;
    }
  doc = json_loadb (md.data, md.len, 0, NULL);

  page_init (&p);
  {
    cleanup_free char *title = NULL;
    xasprintf (&title, "%s:%s", name, tag);
    page_head (&p, title);
  }
  out (&p, "<h1><a href=\"/r/");
  esc (&p, name);
  out (&p, "\">");
  esc (&p, name);
  out (&p, "</a>:");
  esc (&p, tag);
  out (&p, "</h1>\n<section><h2>Pull</h2><pre class=\"pull\">docker pull ");
  esc (&p, host && *host ? host : "localhost");
  out (&p, "/");
  esc (&p, name);
  out (&p, ":");
  esc (&p, tag);
  out (&p, "</pre><table><tr><th>Digest</th><td><code>");
  outf (&p, "%s:%s", registry_digest_alg_name (md.digest.alg),
        registry_digest_hex (&md.digest));
  out (&p, "</code></td></tr><tr><th>Media type</th><td>");
  esc (&p, md.media_type);
  out (&p, "</td></tr></table></section>\n");

  entries = json_object_get (doc, "manifests");
  if (json_is_array (entries))
    {
      size_t i;
      json_t *e;
      outf (&p, "<p>An index of %zu manifests.</p>\n",
            json_array_size (entries));
      json_array_foreach (entries, i, e) index_entry (reg, &p, name, e);
    }
  else if (doc && json_is_array (json_object_get (doc, "layers")))
    {
      out (&p, "<section class=\"platform-section\"><h2>Image</h2>");
      image_body (reg, &p, name, doc, true);
      out (&p, "</section>\n");
    }
  else
    out (&p, "<p class=\"muted\">Unrecognised manifest.</p>");
  registry_manifest_data_release (&md);
  page_send (&p, req, 200);
}

/* --- Dispatch ----------------------------------------------------------- */

/* The 401 page: browsers ask for a user and password and come back with
 * Basic credentials.  */
static void
login_page (struct registry *reg, struct http_request *req)
{
  struct page p;

  page_init (&p);
  page_head (&p, "Sign in");
  out (&p, "<h1>Sign in</h1><p>This registry's pages are for its users: "
           "sign in with your registry user name and password.</p>");
  page_send (&p, req, 401);
  http_headerf (req, "WWW-Authenticate", "Basic realm=\"%s\"",
                registry_auth_basic_realm (reg->auth_data));
}

/* 0 when the client may see the page of NAME (NULL: the list; *V says
 * what it may see), else answers (401, or 404 for a repository it may
 * not pull: its existence is not told) and returns -1.  */
static int
gallery_authorize (struct registry *reg, struct http_request *req,
                   const char *name, struct viewer *v)
{
  v->auth = NULL;
  v->account = NULL;
  if (reg->auth == NULL)
    return 0;
  if (reg->auth != registry_auth_check)
    return registry_authorize (reg, req, name, REGISTRY_PULL);
  v->auth = reg->auth_data;
  if (registry_auth_gallery_user (v->auth, req, &v->account) < 0)
    {
      login_page (reg, req);
      return -1;
    }
  if (name && !may_see (v, name))
    {
      not_found (req, "No such repository.");
      return -1;
    }
  return 0;
}

static bool
valid_name (const char *name)
{
  berth_error_t err = NULL;
  int r = registry_validate_name (name, &err);

  berth_error_release (&err);
  return r == 0;
}

static bool
valid_tag (const char *tag)
{
  berth_error_t err = NULL;
  int r = registry_validate_tag (tag, &err);

  berth_error_release (&err);
  return r == 0;
}

void
registry_gallery_handle (struct registry *reg, struct http_request *req)
{
  const char *method = http_request_method (req);
  const char *path = http_request_path (req);
  cleanup_free char *rest = NULL;
  cleanup_viewer struct viewer v = { NULL, NULL };
  char *sep;
  size_t n;

  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
    {
      static const char msg[] = "405 method not allowed\n";
      http_respond (req, 405, "text/plain; charset=utf-8", msg,
                    sizeof (msg) - 1);
      http_header (req, "Allow", "GET, HEAD");
      return;
    }
  if (strcmp (path, "/") == 0)
    {
      if (gallery_authorize (reg, req, NULL, &v) == 0)
        repo_list (reg, req, &v);
      return;
    }
  if (strncmp (path, "/r/", 3) != 0)
    {
      not_found (req, "No such page.");
      return;
    }
  rest = xstrdup (path + 3);
  n = strlen (rest);
  while (n > 0 && rest[n - 1] == '/')
    rest[--n] = '\0';

  /* The repository itself, unless it does not exist and ends with
   * /t/<tag>.  */
  sep = NULL;
  if (!(valid_name (rest) && registry_storage_repo_exists (reg->storage, rest)))
    for (char *s = strstr (rest, "/t/"); s; s = strstr (s + 1, "/t/"))
      sep = s;
  if (sep)
    {
      const char *tag = sep + 3;
      *sep = '\0';
      if (!valid_name (rest) || !valid_tag (tag))
        {
          not_found (req, "No such tag.");
          return;
        }
      if (gallery_authorize (reg, req, rest, &v) == 0)
        tag_page (reg, req, rest, tag);
      return;
    }
  if (!valid_name (rest))
    {
      not_found (req, "No such repository.");
      return;
    }
  if (gallery_authorize (reg, req, rest, &v) == 0)
    tag_list (reg, req, rest);
}
