/* storage-internal.h - what storage.c, storage-manifest.c and upload.c
 * share.  Paths are relative to root_fd and built from validated names
 * (reference.h), so they stay under the root. */
#ifndef BERTH_REGISTRY_STORAGE_INTERNAL_H
#define BERTH_REGISTRY_STORAGE_INTERNAL_H

#include <dirent.h>
#include <pthread.h>
#include <time.h>

#include "registry/cache.h"
#include "registry/storage.h"

#define UPLOADS_DIR "_uploads"
#define REPOS_DIR "repositories"

struct registry_storage
{
  char *root;
  int root_fd;
  struct registry_cache *cache;
  size_t max_manifest;
  int64_t upload_expire;

  pthread_mutex_t uploads_lock;
  struct registry_upload *uploads; /* a list: sessions are few */
  time_t last_sweep;

  /* Garbage collection (gc.c). */
  pthread_rwlock_t gc_lock;     /* writers that link: read; a delete: write */
  pthread_mutex_t gc_run_lock;  /* one collection at a time */
  pthread_mutex_t gc_note_lock; /* gc_noting, gc_noted */
  bool gc_noting;
  struct gc_strset *gc_noted; /* digests referenced since the mark began */
};

/* "blobs/sha256/ab/abcd..." (malloc'd). */
char *storage_blob_path (const struct registry_digest *d);
/* "repositories/NAME/WHAT/sha256/abcd..." (malloc'd). */
char *storage_link_path (const char *name, const char *what,
                         const struct registry_digest *d);

/* mkdir -p of REL (relative to the root). */
int storage_mkdirs (struct registry_storage *s, const char *rel,
                    berth_error_t *err);
/* mkdir -p of the directory that holds REL. */
int storage_mkdirs_parent (struct registry_storage *s, const char *rel,
                           berth_error_t *err);
/* fsync the directory that holds REL. */
int storage_sync_parent (struct registry_storage *s, const char *rel,
                         berth_error_t *err);
/* "_uploads/<random hex>.tmp" into BUF (at least 64 bytes). */
void storage_tmp_name (char *buf, size_t size);
/* 32 random hex digits into BUF (at least 33 bytes). */
void storage_random_hex (char *buf, size_t size);
/* Replace REL with DATA: temporary, fsync, rename, fsync the directory;
 * creates the parent directories. */
int storage_write_atomic (struct registry_storage *s, const char *rel,
                          const void *data, size_t len, berth_error_t *err);
/* Create the empty marker REL (and its parents) durably. */
int storage_touch (struct registry_storage *s, const char *rel,
                   berth_error_t *err);
/* Read REL whole (at most MAX bytes).  -ENOENT when missing. */
int storage_read (struct registry_storage *s, const char *rel, size_t max,
                  char **out, size_t *len, berth_error_t *err);
bool storage_exists (struct registry_storage *s, const char *rel);

/* A growing NULL-terminated vector of strings. */
struct storage_strv
{
  char **v;
  size_t n, alloc;
};
void storage_strv_push (struct storage_strv *b, char *s);
/* Sort (strcmp) and hand over the vector (never NULL). */
char **storage_strv_finish (struct storage_strv *b);

/* upload.c: remove expired sessions and leftovers under _uploads. */
void storage_uploads_sweep (struct registry_storage *s, bool at_start);
void storage_uploads_free (struct registry_storage *s);

/* opendir() of REL (relative to the storage root); NULL when it cannot be
 * opened (a missing directory is the common, harmless case). */
DIR *registry_storage_opendir (struct registry_storage *s, const char *rel);

#endif
