/* discovery.c - what lists content: GET /v2/, /v2/_catalog,
 * /v2/<name>/tags/list and /v2/<name>/referrers/<digest>. */
#include <errno.h>
#include <string.h>

#include "registry/manifest.h"
#include "registry/registry-internal.h"
#include "utils.h"

void
registry_handle_base (struct registry_req *rq)
{
  http_respond (rq->http, 200, "application/json", "{}", 2);
}

/* The n query parameter: -1 when absent, else 0..INT32_MAX; false (and
 * answered) when it is not a number.  */
static bool
parse_n (struct http_request *req, int64_t *n)
{
  const char *s = http_request_query (req, "n");

  *n = -1;
  if (s == NULL)
    return true;
  if (parse_int64 (s, n) < 0 || *n < 0)
    {
      registry_error (req, 400, E_UNSUPPORTED,
                      "the n query parameter must be a non-negative integer",
                      json_pack ("{s:s}", "n", s));
      return false;
    }
  if (*n > INT32_MAX)
    *n = INT32_MAX;
  return true;
}

/* Page through sorted ITEMS: those after LAST (when set), at most N (when
 * not -1).  Returns the JSON array; *MORE says whether some remain.  */
static json_t *
page (char **items, const char *last, int64_t n, bool (*keep) (const char *),
      bool *more)
{
  json_t *arr = json_array ();
  size_t i;

  *more = false;
  for (i = 0; items[i]; i++)
    {
      if (keep && !keep (items[i]))
        continue;
      if (last && strcmp (items[i], last) <= 0)
        continue;
      if (n >= 0 && (int64_t) json_array_size (arr) >= n)
        {
          *more = n > 0;
          break;
        }
      json_array_append_new (arr, json_string (items[i]));
    }
  return arr;
}

static void
link_next (struct http_request *req, const char *path, int64_t n, json_t *arr)
{
  const char *last
      = json_string_value (json_array_get (arr, json_array_size (arr) - 1));
  http_headerf (req, "Link", "<%s?n=%lld&last=%s>; rel=\"next\"", path,
                (long long) n, last ? last : "");
}

static bool
is_tag (const char *s)
{
  berth_error_t err = NULL;
  bool ok = registry_validate_tag (s, &err) == 0;
  berth_error_release (&err);
  return ok;
}

void
registry_handle_tags (struct registry_req *rq)
{
  struct http_request *req = rq->http;
  const char *last = http_request_query (req, "last");
  cleanup_strv char **tags = NULL;
  cleanup_free char *path = NULL;
  berth_error_t err = NULL;
  json_t *arr;
  bool more;
  int64_t n;
  int r;

  if (!parse_n (req, &n))
    return;
  r = registry_storage_tags (rq->reg->storage, rq->name, &tags, &err);
  if (r == -ENOENT)
    {
      berth_error_release (&err);
      registry_error (req, 404, E_NAME_UNKNOWN,
                      "repository name not known to registry",
                      json_pack ("{s:s}", "name", rq->name));
      return;
    }
  if (r < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return;
    }
  arr = page (tags, last, n, is_tag, &more);
  http_respond_json (req, 200, "application/json",
                     json_pack ("{s:s,s:O}", "name", rq->name, "tags", arr));
  if (more)
    {
      xasprintf (&path, "/v2/%s/tags/list", rq->name);
      link_next (req, path, n, arr);
    }
  json_decref (arr);
}

void
registry_handle_catalog (struct registry_req *rq)
{
  struct http_request *req = rq->http;
  const char *last = http_request_query (req, "last");
  cleanup_strv char **repos = NULL;
  berth_error_t err = NULL;
  json_t *arr;
  bool more;
  int64_t n;

  if (!parse_n (req, &n))
    return;
  if (registry_storage_catalog (rq->reg->storage, &repos, &err) < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return;
    }
  arr = page (repos, last, n, NULL, &more);
  http_respond_json (req, 200, "application/json",
                     json_pack ("{s:O}", "repositories", arr));
  if (more)
    link_next (req, "/v2/_catalog", n, arr);
  json_decref (arr);
}

void
registry_handle_referrers (struct registry_req *rq)
{
  struct http_request *req = rq->http;
  const char *at = http_request_query (req, "artifactType");
  struct registry_digest d;
  berth_error_t err = NULL;
  json_t *list = NULL;

  if (registry_parse_digest (req, rq->ref, &d) < 0)
    return;
  if (at && *at == '\0')
    at = NULL;
  /* An unknown repository has no referrers: an empty index, never a 404
   * (a 404 tells clients the registry lacks the referrers API).  */
  if (registry_storage_referrers (rq->reg->storage, rq->name, &d, at, &list,
                                  &err)
      < 0)
    {
      registry_internal_error (rq->reg, req, &err);
      return;
    }
  http_respond_json (req, 200, REGISTRY_MT_OCI_INDEX,
                     json_pack ("{s:i,s:s,s:o}", "schemaVersion", 2,
                                "mediaType", REGISTRY_MT_OCI_INDEX, "manifests",
                                list));
  if (at)
    http_header (req, "OCI-Filters-Applied", "artifactType");
}
