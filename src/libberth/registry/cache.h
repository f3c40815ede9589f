/* cache.h - the in-memory cache in front of the manifest files.
 *
 * GET /v2/<name>/manifests/<ref> is the hot path of a registry: with the
 * cache it is two hash lookups under a read lock instead of three file
 * reads.  Two kinds of entries, both scoped to a repository:
 *
 *   tag      (name, tag)    -> digest
 *   manifest (name, digest) -> body + media type (the repository holds it)
 *
 * Consistency: the files are the truth and the cache only ever holds what
 * they held.  A write (tag or manifest) first changes the files, then
 * invalidates the entries it touched and bumps the generation.  A reader
 * that missed reads the files and fills the cache only when the
 * generation is still the one it saw before reading
 * (registry_cache_generation()), so a fill racing with a write never
 * re-inserts the old value.  Only writes made through this process are
 * seen: one process per storage root.
 *
 * Memory: entries are accounted (keys, values, overhead) against
 * MAX_BYTES and evicted with the clock algorithm (an entry read since the
 * hand last passed gets a second chance).  All functions are thread-safe
 * (a rwlock).
 */
#ifndef BERTH_REGISTRY_CACHE_H
#define BERTH_REGISTRY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/reference.h"

struct registry_cache;

/* MAX_BYTES 0 disables the cache (every lookup misses). */
struct registry_cache *registry_cache_new (size_t max_bytes);
void registry_cache_free (struct registry_cache *c);

uint64_t registry_cache_generation (struct registry_cache *c);

/* A manifest found in the cache: DATA is a malloc'd copy. */
struct registry_cached_manifest
{
  struct registry_digest digest;
  char *data;
  size_t len;
  char media_type[128];
};

/* Look up TAG (tag != NULL) or DIGEST in repository NAME.  True on a hit
 * (OUT filled, OUT->data to free). */
bool registry_cache_get (struct registry_cache *c, const char *name,
                         const char *tag, const struct registry_digest *digest,
                         struct registry_cached_manifest *out);
/* Look up only the tag's digest. */
bool registry_cache_get_tag (struct registry_cache *c, const char *name,
                             const char *tag, struct registry_digest *out);

/* Fill after a miss, unless a write happened since GEN. */
void registry_cache_fill_tag (struct registry_cache *c, uint64_t gen,
                              const char *name, const char *tag,
                              const struct registry_digest *digest);
void registry_cache_fill_manifest (struct registry_cache *c, uint64_t gen,
                                   const char *name,
                                   const struct registry_digest *digest,
                                   const char *data, size_t len,
                                   const char *media_type);

/* After a write: drop the entry and bump the generation. */
void registry_cache_invalidate_tag (struct registry_cache *c, const char *name,
                                    const char *tag);
void registry_cache_invalidate_manifest (struct registry_cache *c,
                                         const char *name,
                                         const struct registry_digest *digest);

/* Entries and bytes in use (for tests and stats). */
void registry_cache_stats (struct registry_cache *c, size_t *entries,
                           size_t *bytes);

#endif
