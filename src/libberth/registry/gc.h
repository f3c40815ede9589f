/* gc.h - online garbage collection of the registry's storage.
 *
 * Mark: every manifest a tag reaches (every manifest, unless
 * delete_untagged), the child manifests of a live index and the
 * referrers of a live manifest (same repository) are live.  Sweep: with
 * delete_untagged, the manifests that are not live are deleted (as a
 * DELETE by digest would); then every blob that no remaining manifest
 * references (nor is a manifest's bytes), older than the grace period
 * (mtime), is removed with its _layers links.
 *
 * Pushes and pulls go on meanwhile; see the comment at the top of gc.c
 * for why no push is lost.  Writers that create references (manifest PUT,
 * blob mount, upload commit) call registry_gc_read_lock() around their
 * check-and-link and registry_gc_note() for each digest they reference.
 */
#ifndef BERTH_REGISTRY_GC_H
#define BERTH_REGISTRY_GC_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "http/server.h"
#include "registry/storage.h"

struct registry_gc_opts
{
  bool delete_untagged;
  int64_t grace_seconds;
};

struct registry_gc_stats
{
  uint64_t blobs_deleted;
  uint64_t bytes_freed;
  uint64_t manifests_deleted;
  uint64_t duration_ms;
};

/* One collection.  Collections are serialised (a second caller waits). */
int registry_gc_run (struct registry_storage *s,
                     const struct registry_gc_opts *opts,
                     struct registry_gc_stats *stats, berth_error_t *err);

/* For the writers (see above).  The note is only recorded while a
 * collection runs. */
void registry_gc_read_lock (struct registry_storage *s);
void registry_gc_read_unlock (struct registry_storage *s);
void registry_gc_note (struct registry_storage *s,
                       const struct registry_digest *d);

/* storage.c: set up and release the storage's GC state. */
void registry_gc_storage_init (struct registry_storage *s);
void registry_gc_storage_fini (struct registry_storage *s);

/* POST /admin/gc (DATA is the struct registry): runs a collection and
 * answers {"blobs_deleted","bytes_freed","manifests_deleted",
 * "duration_ms"}.  With auth configured, only for the admins
 * (registry_auth_admin in auth.h). */
void registry_gc_handler (struct http_request *req, void *data);

/* A background thread running a collection every INTERVAL seconds. */
struct registry_gc_timer;
struct registry_gc_timer *
registry_gc_timer_start (struct registry_storage *s,
                         const struct registry_gc_opts *opts,
                         int64_t interval_seconds);
void registry_gc_timer_stop (struct registry_gc_timer *t);

#endif
