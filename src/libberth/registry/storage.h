/* storage.h - the registry's content on a filesystem, under one root.
 *
 *   ROOT/blobs/<alg>/<2 hex>/<hex>     content, shared by every repository
 *   ROOT/repositories/<name>/
 *       _layers/<alg>/<hex>            the repository holds this blob
 *       _manifests/<alg>/<hex>         ... this manifest (the file holds its
 *                                      media type; the bytes are a blob)
 *       _tags/<tag>                    the tag's digest
 *       _referrers/<alg>/<hex>/<alg>-<hex>
 *                                      a manifest of the repository whose
 *                                      subject is <alg>:<hex>
 *   ROOT/_uploads/<uuid>/{data,info.json}  upload sessions
 *   ROOT/_uploads/<random>.tmp         files being written
 *
 * Repository components never start with '_' (reference.h), so the
 * metadata directories cannot collide with a nested repository.
 *
 * Every write is atomic: a temporary under _uploads (same filesystem),
 * written, fsynced, checked (a blob is renamed into place only once its
 * digest matched) and renamed, then the directory fsynced.  A process
 * killed at any moment leaves no half-written object in view, only
 * temporaries, which registry_storage_open() removes.  Two uploads of one
 * blob may race: both rename identical content to the same name.
 *
 * Reads of manifests go through an in-memory cache (cache.h): one process
 * per root.
 *
 * Errors: functions return 0 or a negative errno and fill *err.  -ENOENT
 * means "unknown" (the registry answers 404 with the matching code).  All
 * names, tags and digests must have been validated (reference.h).  All
 * functions are thread-safe.
 */
#ifndef BERTH_REGISTRY_STORAGE_H
#define BERTH_REGISTRY_STORAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "registry/manifest.h"
#include "registry/reference.h"

struct registry_storage;

struct registry_storage_opts
{
  size_t cache_bytes;            /* the manifest cache; 0: none */
  int64_t upload_expire_seconds; /* idle sessions expire; 0: one hour */
  /* Manifests larger than this are not read back (they could not have
   * been pushed). */
  size_t max_manifest_bytes;
};

/* Create the layout if needed and remove what an earlier process left
 * (temporaries, expired upload sessions). */
int registry_storage_open (const char *root,
                           const struct registry_storage_opts *opts,
                           struct registry_storage **out, berth_error_t *err);
void registry_storage_free (struct registry_storage *s);

/* --- Repositories ---------------------------------------------------- */

/* A repository exists once it holds a blob or a manifest. */
bool registry_storage_repo_exists (struct registry_storage *s,
                                   const char *name);
/* Every repository name, sorted (strcmp). */
int registry_storage_catalog (struct registry_storage *s, char ***out,
                              berth_error_t *err);

/* --- Blobs ----------------------------------------------------------- */

/* Does repository NAME hold blob DIGEST (also true for its manifests)?
 * 0 with its size, -ENOENT. */
int registry_storage_blob_stat (struct registry_storage *s, const char *name,
                                const struct registry_digest *digest,
                                uint64_t *size, berth_error_t *err);
/* Like blob_stat, and open it (O_RDONLY | O_CLOEXEC). */
int registry_storage_blob_open (struct registry_storage *s, const char *name,
                                const struct registry_digest *digest, int *fd,
                                uint64_t *size, berth_error_t *err);
/* Link a blob that repository FROM holds into NAME.  -ENOENT. */
int registry_storage_blob_mount (struct registry_storage *s, const char *name,
                                 const char *from,
                                 const struct registry_digest *digest,
                                 berth_error_t *err);
/* Unlink a blob from NAME (the content stays for other repositories).
 * -ENOENT. */
int registry_storage_blob_delete (struct registry_storage *s, const char *name,
                                  const struct registry_digest *digest,
                                  berth_error_t *err);

/* --- Manifests, tags, referrers ---------------------------------------- */

struct registry_manifest_data
{
  struct registry_digest digest;
  char *data;
  size_t len;
  char media_type[128];
};
void registry_manifest_data_release (struct registry_manifest_data *m);

/* The manifest TAG (when not NULL) or DIGEST of NAME: its bytes, digest
 * and media type.  -ENOENT. */
int registry_storage_manifest_get (struct registry_storage *s, const char *name,
                                   const char *tag,
                                   const struct registry_digest *digest,
                                   struct registry_manifest_data *out,
                                   berth_error_t *err);
bool registry_storage_manifest_exists (struct registry_storage *s,
                                       const char *name,
                                       const struct registry_digest *digest);
/* Store manifest DATA (already parsed into M and checked by the caller)
 * under DIGEST in NAME, record its subject, then point TAGS at it. */
int registry_storage_manifest_put (struct registry_storage *s, const char *name,
                                   const struct registry_digest *digest,
                                   const char *data, size_t len,
                                   const struct registry_manifest *m,
                                   char *const *tags, berth_error_t *err);
/* Remove manifest DIGEST from NAME, with the tags that point at it and its
 * referrer entry.  -ENOENT. */
int registry_storage_manifest_delete (struct registry_storage *s,
                                      const char *name,
                                      const struct registry_digest *digest,
                                      berth_error_t *err);
/* -ENOENT. */
int registry_storage_tag_delete (struct registry_storage *s, const char *name,
                                 const char *tag, berth_error_t *err);
/* The tags of NAME, sorted (strcmp).  -ENOENT when NAME does not exist. */
int registry_storage_tags (struct registry_storage *s, const char *name,
                           char ***out, berth_error_t *err);
/* The referrers API's descriptors (a new JSON array, sorted by digest) of
 * NAME's manifests whose subject is SUBJECT, only those of ARTIFACT_TYPE
 * when not NULL. */
int registry_storage_referrers (struct registry_storage *s, const char *name,
                                const struct registry_digest *subject,
                                const char *artifact_type, json_t **out,
                                berth_error_t *err);

/* --- Upload sessions (upload.c) ---------------------------------------- */

/* A session belongs to one repository.  A request works on it between
 * acquire (or start) and release; a second request on a session in use
 * is refused (-EBUSY), so that chunks never interleave.  Sessions idle for
 * longer than the expiry are removed (checked lazily). */
struct registry_upload;

/* A new session for NAME, hashing with ALG; returned acquired. */
int registry_upload_start (struct registry_storage *s, const char *name,
                           enum registry_digest_alg alg,
                           struct registry_upload **out, berth_error_t *err);
/* Session UUID of NAME.  -ENOENT (unknown, expired, or another
 * repository's), -EBUSY. */
int registry_upload_acquire (struct registry_storage *s, const char *name,
                             const char *uuid, struct registry_upload **out,
                             berth_error_t *err);
/* The bytes received by session UUID of NAME, also while a request is
 * using it.  -ENOENT. */
int registry_upload_status (struct registry_storage *s, const char *name,
                            const char *uuid, uint64_t *size,
                            berth_error_t *err);
/* Let others use the session again; frees it if it was committed or
 * cancelled.  Safe on NULL. */
void registry_upload_release (struct registry_storage *s,
                              struct registry_upload *up);

const char *registry_upload_uuid (struct registry_upload *up);
/* Bytes received so far. */
uint64_t registry_upload_size (struct registry_upload *up);

/* The writes of one request: begin opens the data and remembers where the
 * session was, so that rollback can undo a chunk the client did not
 * finish sending.  Writes are buffered: flush before end, unless rolling
 * back.  end closes. */
int registry_upload_begin (struct registry_storage *s,
                           struct registry_upload *up, berth_error_t *err);
int registry_upload_write (struct registry_upload *up, const void *data,
                           size_t len, berth_error_t *err);
int registry_upload_flush (struct registry_upload *up, berth_error_t *err);
void registry_upload_rollback (struct registry_upload *up);
void registry_upload_end (struct registry_upload *up);

/* Check the content against DIGEST and move it into place as a blob of
 * the session's repository; the session is gone afterwards.  -EBADMSG
 * when the digest does not match (the session is removed: nothing is
 * stored; *err says what the content's digest was). */
int registry_upload_commit (struct registry_storage *s,
                            struct registry_upload *up,
                            const struct registry_digest *digest,
                            berth_error_t *err);
/* Remove the session and its data. */
int registry_upload_cancel (struct registry_storage *s,
                            struct registry_upload *up, berth_error_t *err);

#endif
