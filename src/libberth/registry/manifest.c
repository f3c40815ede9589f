/* manifest.c - checking pushed manifests (see manifest.h). */
#include "registry/manifest.h"

#include <errno.h>
#include <string.h>

#include "json.h"
#include "utils.h"

static const char *const manifest_types[] = {
  REGISTRY_MT_OCI_MANIFEST,
  REGISTRY_MT_OCI_INDEX,
  REGISTRY_MT_DOCKER_MANIFEST,
  REGISTRY_MT_DOCKER_LIST,
};

/* The canonical copy of a known manifest type, or NULL.  */
static const char *
known_type (const char *mt)
{
  size_t i;
  if (mt == NULL)
    return NULL;
  for (i = 0; i < ARRAY_SIZE (manifest_types); i++)
    if (strcmp (mt, manifest_types[i]) == 0)
      return manifest_types[i];
  return NULL;
}

bool
registry_media_type_is_manifest (const char *media_type)
{
  return known_type (media_type) != NULL;
}

static bool
is_schema1 (const char *mt)
{
  return mt
         && strncmp (mt, "application/vnd.docker.distribution.manifest.v1",
                     strlen ("application/vnd.docker.distribution.manifest."
                             "v1"))
                == 0;
}

char *
registry_media_type_of (const char *content_type, char *buf, size_t size)
{
  size_t n = 0;
  const char *p = content_type;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (p == NULL)
    return buf;
  while (*p == ' ' || *p == '\t')
    p++;
  while (*p && *p != ';' && *p != ' ' && *p != '\t' && n + 1 < size)
    buf[n++] = *p++;
  buf[n] = '\0';
  return buf;
}

/* RFC 6838 section 4.2: restricted-name "/" restricted-name.  */
static bool
restricted_name (const char **pp)
{
  const char *p = *pp;
  size_t n = 0;
  if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
        || (*p >= '0' && *p <= '9')))
    return false;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
         || (*p >= '0' && *p <= '9') || (*p && strchr ("!#$&-^_.+", *p)))
    {
      p++;
      if (++n > 127)
        return false;
    }
  *pp = p;
  return true;
}

static bool
valid_media_type (const char *s)
{
  const char *p = s;
  if (!restricted_name (&p) || *p != '/')
    return false;
  p++;
  return restricted_name (&p) && *p == '\0';
}

static int
media_type_field (json_t *obj, const char *path, const char *key, bool required,
                  const char **out, berth_error_t *err)
{
  int r = bjson_string (obj, path, key, out, err);
  if (r < 0)
    return r;
  if (r == 0)
    {
      *out = NULL;
      if (required)
        return berth_make_invalid (err, "%s.%s: missing", path, key);
      return 0;
    }
  if (!valid_media_type (*out))
    return berth_make_invalid (err, "%s.%s: `%.200s` is not a media type", path,
                               key, *out);
  return 1;
}

static int
check_annotations (json_t *obj, const char *path, json_t **out,
                   berth_error_t *err)
{
  json_t *ann = NULL, *v;
  const char *k;
  int r = bjson_object (obj, path, "annotations", &ann, err);
  if (r < 0)
    return r;
  json_object_foreach (ann, k, v)
  {
    if (!json_is_string (v))
      return berth_make_invalid (err,
                                 "%s.annotations.%.100s: expected a "
                                 "string",
                                 path, k);
  }
  if (out)
    *out = ann;
  return 0;
}

/* Foreign (Docker) and non-distributable (OCI, deprecated) layers live
 * elsewhere: a registry does not hold them.  */
static bool
is_foreign (const struct registry_descriptor *d, bool has_urls)
{
  return has_urls || strstr (d->media_type, "foreign")
         || strstr (d->media_type, "nondistributable");
}

static int
parse_descriptor (json_t *obj, const char *path, bool layer,
                  struct registry_descriptor *d, berth_error_t *err)
{
  berth_error_t derr = NULL;
  json_t *urls = NULL, *u;
  const char *at = NULL;
  size_t i;
  int r;

  memset (d, 0, sizeof (*d));
  if (!json_is_object (obj))
    return berth_make_invalid (err, "%s: expected a descriptor object", path);
  r = media_type_field (obj, path, "mediaType", true, &d->media_type, err);
  if (r < 0)
    return r;
  r = bjson_string (obj, path, "digest", &d->digest_str, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "%s.digest: missing", path);
  r = registry_digest_parse (d->digest_str, &d->digest, &derr);
  if (r == -EINVAL)
    {
      r = berth_make_invalid (err, "%s.digest: %s", path, derr->msg);
      berth_error_release (&derr);
      return r;
    }
  berth_error_release (&derr);
  d->supported = r == 0;
  r = bjson_int64 (obj, path, "size", &d->size, err);
  if (r < 0)
    return r;
  if (r == 0 || d->size < 0)
    return berth_make_invalid (err,
                               "%s.size: expected a non-negative "
                               "integer",
                               path);
  r = bjson_array (obj, path, "urls", &urls, err);
  if (r < 0)
    return r;
  json_array_foreach (urls, i, u)
  {
    if (!json_is_string (u))
      return berth_make_invalid (err, "%s.urls: expected strings", path);
  }
  r = media_type_field (obj, path, "artifactType", false, &at, err);
  if (r < 0)
    return r;
  r = check_annotations (obj, path, NULL, err);
  if (r < 0)
    return r;
  d->required = !(layer && is_foreign (d, urls && json_array_size (urls)));
  /* The empty descriptor's content is known ("{}"): artifacts that do not
   * push it are still complete.  */
  if (strcmp (d->digest_str, REGISTRY_EMPTY_DIGEST) == 0)
    d->required = false;
  return 0;
}

static int
parse_descriptor_array (struct registry_manifest *m, json_t *arr,
                        const char *key, bool layers, bool manifests,
                        berth_error_t *err)
{
  size_t i, n = json_array_size (arr);
  json_t *item;

  m->refs = xrealloc (m->refs, (m->n_refs + n) * sizeof (*m->refs));
  json_array_foreach (arr, i, item)
  {
    char path[64];
    struct registry_descriptor *d = &m->refs[m->n_refs];
    int r;
    snprintf (path, sizeof (path), "%s[%zu]", key, i);
    r = parse_descriptor (item, path, layers, d, err);
    if (r < 0)
      return r;
    d->is_manifest = manifests;
    m->n_refs++;
  }
  return 0;
}

/* Which manifest type the body is: its mediaType, else the Content-Type,
 * else its shape.  */
static int
decide_media_type (struct registry_manifest *m, const char *content_type,
                   berth_error_t *err)
{
  const char *body_mt = NULL;
  char ct[256];
  int r;

  r = bjson_string (m->doc, "", "mediaType", &body_mt, err);
  if (r < 0)
    return r;
  registry_media_type_of (content_type, ct, sizeof (ct));
  if (is_schema1 (body_mt) || (body_mt == NULL && is_schema1 (ct)))
    return berth_make_invalid (err, "Docker schema 1 manifests are not "
                                    "supported");
  if (body_mt)
    {
      m->media_type = known_type (body_mt);
      if (m->media_type == NULL)
        return berth_make_invalid (err,
                                   "mediaType: unsupported manifest media "
                                   "type `%.200s`",
                                   body_mt);
      if (known_type (ct) && strcmp (ct, body_mt) != 0)
        return berth_make_invalid (err,
                                   "mediaType `%s` does not match the "
                                   "Content-Type `%s`",
                                   body_mt, ct);
      return 0;
    }
  m->media_type = known_type (ct);
  if (m->media_type)
    return 0;
  if (json_object_get (m->doc, "manifests"))
    m->media_type = REGISTRY_MT_OCI_INDEX;
  else if (json_object_get (m->doc, "config"))
    m->media_type = REGISTRY_MT_OCI_MANIFEST;
  else
    return berth_make_invalid (err, "not a manifest: no mediaType, no "
                                    "manifest Content-Type, neither config "
                                    "nor manifests");
  return 0;
}

static int
parse_image (struct registry_manifest *m, berth_error_t *err)
{
  json_t *config = NULL, *layers = NULL;
  int r;

  /* A document that is both an image and an index could be read either
   * way by different clients (CVE-2021-41190).  */
  if (json_object_get (m->doc, "manifests"))
    return berth_make_invalid (err, "an image manifest has no `manifests`");
  r = bjson_object (m->doc, "", "config", &config, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "config: missing");
  r = bjson_array (m->doc, "", "layers", &layers, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "layers: missing");
  m->refs = xmalloc0 (sizeof (*m->refs));
  r = parse_descriptor (config, "config", false, &m->refs[0], err);
  if (r < 0)
    return r;
  m->n_refs = 1;
  m->config_media_type = m->refs[0].media_type;
  return parse_descriptor_array (m, layers, "layers", true, false, err);
}

static int
parse_index (struct registry_manifest *m, berth_error_t *err)
{
  json_t *manifests = NULL;
  int r;

  if (json_object_get (m->doc, "config") || json_object_get (m->doc, "layers"))
    return berth_make_invalid (err, "an index has no `config` nor `layers`");
  r = bjson_array (m->doc, "", "manifests", &manifests, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "manifests: missing");
  return parse_descriptor_array (m, manifests, "manifests", false, true, err);
}

int
registry_manifest_parse (const char *data, size_t len, const char *content_type,
                         struct registry_manifest **out, berth_error_t *err)
{
  cleanup_manifest struct registry_manifest *m = NULL;
  json_t *subject = NULL;
  json_error_t jerr;
  int64_t version = 0;
  int r;

  m = xmalloc0 (sizeof (*m));
  /* Not bjson_parse: it turns integers above INT64_MAX into strings, which
   * would then pass for annotation values or urls.  Nothing in a manifest
   * needs them.  */
  m->doc = json_loadb (data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (m->doc == NULL)
    return berth_make_invalid (err, "manifest:%d:%d: invalid JSON: %s",
                               jerr.line, jerr.column, jerr.text);
  if (!json_is_object (m->doc))
    return berth_make_invalid (err, "a manifest is a JSON object");
  r = bjson_int64 (m->doc, "", "schemaVersion", &version, err);
  if (r < 0)
    return r;
  if (r == 0 || version != 2)
    return berth_make_invalid (err, "schemaVersion: must be 2");
  r = decide_media_type (m, content_type, err);
  if (r < 0)
    return r;
  m->kind = (strcmp (m->media_type, REGISTRY_MT_OCI_INDEX) == 0
             || strcmp (m->media_type, REGISTRY_MT_DOCKER_LIST) == 0)
                ? REGISTRY_MANIFEST_INDEX
                : REGISTRY_MANIFEST_IMAGE;
  r = media_type_field (m->doc, "", "artifactType", false, &m->artifact_type,
                        err);
  if (r < 0)
    return r;
  r = m->kind == REGISTRY_MANIFEST_IMAGE ? parse_image (m, err)
                                         : parse_index (m, err);
  if (r < 0)
    return r;
  r = bjson_object (m->doc, "", "subject", &subject, err);
  if (r < 0)
    return r;
  if (r > 0)
    {
      r = parse_descriptor (subject, "subject", false, &m->subject, err);
      if (r < 0)
        return r;
      if (!m->subject.supported)
        return berth_make_invalid (err, "subject.digest: unsupported "
                                        "algorithm");
      m->has_subject = true;
    }
  r = check_annotations (m->doc, "", &m->annotations, err);
  if (r < 0)
    return r;
  *out = steal_pointer (&m);
  return 0;
}

void
registry_manifest_free (struct registry_manifest *m)
{
  if (m == NULL)
    return;
  if (m->doc)
    json_decref (m->doc);
  free (m->refs);
  free (m);
}

void
cleanup_manifestp (struct registry_manifest **m)
{
  registry_manifest_free (*m);
  *m = NULL;
}

const char *
registry_manifest_effective_artifact_type (const struct registry_manifest *m)
{
  if (m->artifact_type && *m->artifact_type)
    return m->artifact_type;
  if (m->kind == REGISTRY_MANIFEST_IMAGE)
    return m->config_media_type;
  return NULL;
}

json_t *
registry_manifest_referrer (const struct registry_manifest *m,
                            const char *digest, uint64_t size)
{
  const char *at = registry_manifest_effective_artifact_type (m);
  json_t *d = json_object ();

  json_object_set_new (d, "mediaType", json_string (m->media_type));
  json_object_set_new (d, "digest", json_string (digest));
  json_object_set_new (d, "size", json_integer ((json_int_t) size));
  if (at)
    json_object_set_new (d, "artifactType", json_string (at));
  if (m->annotations && json_object_size (m->annotations))
    json_object_set (d, "annotations", m->annotations);
  return d;
}
