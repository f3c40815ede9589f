/* manifest.h - what a registry needs to know about a pushed manifest.
 *
 * registry_manifest_parse() checks a manifest body (OCI image manifest and
 * index, Docker schema 2 manifest and manifest list, OCI artifacts) and
 * lists what it references, so that the registry can refuse a manifest
 * whose blobs or child manifests it does not hold.  The bytes themselves
 * are never re-serialised: the registry stores them as they came.
 */
#ifndef BERTH_REGISTRY_MANIFEST_H
#define BERTH_REGISTRY_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "registry/reference.h"

#define REGISTRY_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define REGISTRY_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define REGISTRY_MT_DOCKER_MANIFEST                                            \
  "application/vnd.docker.distribution.manifest.v2+json"
#define REGISTRY_MT_DOCKER_LIST                                                \
  "application/vnd.docker.distribution.manifest.list.v2+json"
#define REGISTRY_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"
/* The digest of the OCI empty descriptor's content, the two bytes "{}". */
#define REGISTRY_EMPTY_DIGEST                                                  \
  "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

enum registry_manifest_kind
{
  REGISTRY_MANIFEST_IMAGE, /* config + layers */
  REGISTRY_MANIFEST_INDEX, /* a list of manifests */
};

struct registry_descriptor
{
  const char *media_type;        /* borrowed from the document */
  const char *digest_str;        /* as written, borrowed from the document */
  bool supported;                /* digest_str has a supported algorithm: */
  struct registry_digest digest; /* then this is it */
  int64_t size;
  /* The registry must hold it before accepting the manifest: false for
   * foreign / non-distributable layers (their media type says so, or they
   * have urls) and for the empty descriptor (its content is known). */
  bool required;
  bool is_manifest; /* an index entry: a manifest, not a blob */
};

struct registry_manifest
{
  json_t *doc;
  enum registry_manifest_kind kind;
  /* The media type: the body's mediaType, else the request's Content-Type,
   * else guessed from the body's shape.  One of the four REGISTRY_MT_*
   * manifest types, so safe to send back as Content-Type. */
  const char *media_type;
  const char *artifact_type;        /* NULL when absent */
  const char *config_media_type;    /* images only */
  struct registry_descriptor *refs; /* config + layers, or the manifests */
  size_t n_refs;
  bool has_subject;
  struct registry_descriptor subject;
  json_t *annotations; /* borrowed from doc; NULL when absent */
};

/* Parse and check a manifest body.  CONTENT_TYPE is the request's header
 * (parameters ignored), or NULL.  -EINVAL with a message saying what is
 * wrong (the registry answers MANIFEST_INVALID). */
int registry_manifest_parse (const char *data, size_t len,
                             const char *content_type,
                             struct registry_manifest **out,
                             berth_error_t *err);
void registry_manifest_free (struct registry_manifest *m);
void cleanup_manifestp (struct registry_manifest **m);
#define cleanup_manifest __attribute__ ((cleanup (cleanup_manifestp)))

/* The descriptor of M for the referrers API: mediaType, digest, size,
 * artifactType (the manifest's, else for an image its config's media
 * type), annotations.  Returns a new reference. */
json_t *registry_manifest_referrer (const struct registry_manifest *m,
                                    const char *digest, uint64_t size);

/* The artifactType reported for M (see registry_manifest_referrer), or
 * NULL. */
const char *
registry_manifest_effective_artifact_type (const struct registry_manifest *m);

/* One of the four manifest media types this registry serves? */
bool registry_media_type_is_manifest (const char *media_type);

/* Copy the media type of a Content-Type header without its parameters and
 * blanks into BUF (truncated to SIZE).  Returns BUF. */
char *registry_media_type_of (const char *content_type, char *buf, size_t size);

#endif
