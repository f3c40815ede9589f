/* fuzz_registry_manifest.c - libFuzzer target for pushed manifests
 * (registry/manifest.c).
 *
 * Every input is a manifest body as `PUT /v2/<name>/manifests/<ref>` hands
 * it to registry_manifest_parse(): once with no Content-Type, once with each
 * of the four manifest media types, and with a few other Content-Types a
 * client may send (parameters, Docker schema 1, a non-manifest type).  An
 * accepted manifest is then used as the registry uses it: its digest, its
 * referrers descriptor, and a second parse with the media type it was
 * stored under (as the referrers listing reads it back).
 *
 * Besides the sanitizers, the target checks the parser's contract and aborts
 * when it is broken: a failure returns -EINVAL, fills the error and leaves
 * *out alone; a success returns no error and a manifest whose fields hold
 * what registry/manifest.h promises, independent of the Content-Type except
 * for the media type the Content-Type may choose.  */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/digest.h"
#include "registry/manifest.h"
#include "registry/reference.h"

/* Inputs beyond this say nothing new and only slow the fuzzer down (the
 * registry's own limit, max_manifest_bytes, is 4 MiB by default). */
#define MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *const content_types[] = {
  REGISTRY_MT_OCI_MANIFEST,
  REGISTRY_MT_OCI_INDEX,
  REGISTRY_MT_DOCKER_MANIFEST,
  REGISTRY_MT_DOCKER_LIST,
  " " REGISTRY_MT_OCI_MANIFEST "; charset=utf-8",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/json",
};

static void
check (int ok)
{
  if (!ok)
    abort ();
}

/* KEY of OBJ as the parser reads optional members: null is absent. */
static json_t *
get (json_t *obj, const char *key)
{
  json_t *v = json_object_get (obj, key);
  return json_is_null (v) ? NULL : v;
}

/* The manifest type the Content-Type CT names, or NULL. */
static const char *
ct_type (const char *ct, char *buf, size_t size)
{
  if (ct == NULL)
    return NULL;
  registry_media_type_of (ct, buf, size);
  return registry_media_type_is_manifest (buf) ? buf : NULL;
}

static void
check_descriptor (const struct registry_descriptor *d)
{
  struct registry_digest again;
  berth_error_t err = NULL;
  int r;

  check (d->media_type != NULL && strchr (d->media_type, '/') != NULL);
  check (d->digest_str != NULL);
  check (d->size >= 0);
  r = registry_digest_parse (d->digest_str, &again, &err);
  berth_error_release (&err);
  if (d->supported)
    {
      check (r == 0);
      check (strcmp (d->digest.str, d->digest_str) == 0);
      check (d->digest.alg == again.alg);
      check (strlen (registry_digest_hex (&d->digest))
             == registry_digest_hex_len (d->digest.alg));
    }
  else
    check (r == -ENOTSUP);
  if (strcmp (d->digest_str, REGISTRY_EMPTY_DIGEST) == 0)
    check (!d->required);
}

static void
check_manifest (const struct registry_manifest *m, const char *ct)
{
  char ctbuf[256];
  const char *body_mt, *want;
  json_t *v, *ann;
  const char *k;
  size_t i;

  check (json_is_object (m->doc));
  check (registry_media_type_is_manifest (m->media_type));
  /* The body's mediaType, else the Content-Type's, else the shape's. */
  body_mt = json_string_value (get (m->doc, "mediaType"));
  if (body_mt)
    want = body_mt;
  else if ((want = ct_type (ct, ctbuf, sizeof (ctbuf))) == NULL)
    want = json_object_get (m->doc, "manifests") ? REGISTRY_MT_OCI_INDEX
                                                 : REGISTRY_MT_OCI_MANIFEST;
  check (strcmp (m->media_type, want) == 0);
  if (body_mt && ct_type (ct, ctbuf, sizeof (ctbuf)))
    check (strcmp (ctbuf, body_mt) == 0);
  check (m->kind
         == ((strcmp (m->media_type, REGISTRY_MT_OCI_INDEX) == 0
              || strcmp (m->media_type, REGISTRY_MT_DOCKER_LIST) == 0)
                 ? REGISTRY_MANIFEST_INDEX
                 : REGISTRY_MANIFEST_IMAGE));

  if (m->kind == REGISTRY_MANIFEST_IMAGE)
    {
      check (m->n_refs >= 1 && m->refs != NULL);
      check (!json_object_get (m->doc, "manifests"));
      check (m->config_media_type == m->refs[0].media_type);
      check (m->n_refs
             == 1 + json_array_size (json_object_get (m->doc, "layers")));
      /* The config is always needed, unless it is the empty one. */
      check (m->refs[0].required
             || strcmp (m->refs[0].digest_str, REGISTRY_EMPTY_DIGEST) == 0);
    }
  else
    {
      check (m->config_media_type == NULL);
      check (!json_object_get (m->doc, "config")
             && !json_object_get (m->doc, "layers"));
      check (m->n_refs
             == json_array_size (json_object_get (m->doc, "manifests")));
    }
  for (i = 0; i < m->n_refs; i++)
    {
      check_descriptor (&m->refs[i]);
      check (m->refs[i].is_manifest == (m->kind == REGISTRY_MANIFEST_INDEX));
      /* Only layers may live elsewhere. */
      if (m->kind == REGISTRY_MANIFEST_INDEX || i == 0)
        check (m->refs[i].required
               || strcmp (m->refs[i].digest_str, REGISTRY_EMPTY_DIGEST) == 0);
    }

  if (m->has_subject)
    {
      check_descriptor (&m->subject);
      check (m->subject.supported);
    }
  else
    check (get (m->doc, "subject") == NULL);

  if (m->artifact_type)
    check (strcmp (m->artifact_type,
                   json_string_value (get (m->doc, "artifactType")))
           == 0);
  else
    check (get (m->doc, "artifactType") == NULL);

  ann = get (m->doc, "annotations");
  check (m->annotations == ann);
  json_object_foreach (ann, k, v) check (json_is_string (v));
}

/* A and B, parsed from the same bytes, must agree on what they reference. */
static void
check_same_refs (const struct registry_manifest *a,
                 const struct registry_manifest *b)
{
  size_t i;

  check (a->kind == b->kind && a->n_refs == b->n_refs);
  for (i = 0; i < a->n_refs; i++)
    {
      check (strcmp (a->refs[i].digest_str, b->refs[i].digest_str) == 0);
      check (a->refs[i].required == b->refs[i].required);
      check (a->refs[i].size == b->refs[i].size);
    }
  check (a->has_subject == b->has_subject);
  if (a->has_subject)
    check (strcmp (a->subject.digest.str, b->subject.digest.str) == 0);
}

/* What the registry does with an accepted manifest: the referrers
 * descriptor, and reading it back with the media type it was stored
 * under. */
static void
use_manifest (const struct registry_manifest *m, const char *data, size_t len,
              const struct registry_digest *digest)
{
  struct registry_manifest *again = NULL;
  berth_error_t err = NULL;
  const char *at;
  json_t *desc;

  at = registry_manifest_effective_artifact_type (m);
  desc = registry_manifest_referrer (m, digest->str, len);
  check (desc != NULL);
  check (strcmp (json_string_value (json_object_get (desc, "mediaType")),
                 m->media_type)
         == 0);
  check (
      strcmp (json_string_value (json_object_get (desc, "digest")), digest->str)
      == 0);
  if (at)
    check (
        strcmp (json_string_value (json_object_get (desc, "artifactType")), at)
        == 0);
  json_decref (desc);

  if (registry_manifest_parse (data, len, m->media_type, &again, &err) != 0)
    abort ();
  check (again != NULL && err == NULL);
  check (again->media_type == m->media_type
         || strcmp (again->media_type, m->media_type) == 0);
  check_same_refs (m, again);
  registry_manifest_free (again);
}

/* Parse DATA as a PUT with Content-Type CT would.  Returns the manifest
 * (checked) or NULL. */
static struct registry_manifest *
parse (const char *data, size_t len, const char *ct)
{
  struct registry_manifest *m = NULL;
  berth_error_t err = NULL;
  json_t *raw;
  int r = registry_manifest_parse (data, len, ct, &m, &err);

  if (r < 0)
    {
      check (r == -EINVAL);
      check (m == NULL && err != NULL && err->msg != NULL
             && err->msg[0] != '\0');
      berth_error_release (&err);
      return NULL;
    }
  check (r == 0 && m != NULL && err == NULL);
  check_manifest (m, ct);
  /* What was checked is what the client sent: JSON as any reader sees it
   * (no integer made a string, which would pass for an annotation). */
  raw = json_loadb (data, len, JSON_REJECT_DUPLICATES, NULL);
  check (raw != NULL && json_equal (raw, m->doc));
  json_decref (raw);
  return m;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *body = (const char *) data;
  struct registry_manifest *plain, *m;
  struct registry_digest digest;
  size_t i;

  if (size > MAX_INPUT)
    return 0;
  /* The handler passes "" for an empty body (data may be NULL then). */
  if (size == 0)
    body = "";

  plain = parse (body, size, NULL);
  if (plain)
    {
      registry_digest_buffer (REGISTRY_SHA256, body, size, &digest);
      use_manifest (plain, body, size, &digest);
    }
  for (i = 0; i < sizeof (content_types) / sizeof (content_types[0]); i++)
    {
      m = parse (body, size, content_types[i]);
      if (m == NULL)
        continue;
      /* A Content-Type only chooses among the types; it never makes the
       * registry accept bytes it would refuse without one, nor changes
       * what they reference (a DELETE reads the stored bytes back without
       * one to find the subject). */
      check (plain != NULL);
      check_same_refs (plain, m);
      registry_digest_buffer (REGISTRY_SHA256, body, size, &digest);
      use_manifest (m, body, size, &digest);
      registry_manifest_free (m);
    }
  registry_manifest_free (plain);
  return 0;
}
