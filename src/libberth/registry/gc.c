/* gc.c - online garbage collection (see gc.h).
 *
 * Why a push racing with a collection loses nothing.
 *
 * The writers that make a blob or manifest referenced (manifest PUT: the
 * check that the repository holds each blob and child, then the store;
 * blob mount: the check of the source, then the link; upload commit: the
 * blob found or renamed in place, then the link) run their check and
 * their link under gc_lock held for reading, and before releasing it
 * they note every digest they referenced.  A collection:
 *
 *   1. takes gc_lock for writing, empties the noted set and starts
 *      noting, releases it;
 *   2. marks, without any lock, from what is on disk;
 *   3. deletes each candidate under gc_lock held for writing, after
 *      re-checking that it was not noted (nor, for a blob, touched within
 *      the grace period) since step 1.
 *
 * A writer's critical section either ended before step 1 (then its links
 * were on disk before the mark began, and the mark sees them), or it
 * overlaps steps 2-3 (then it noted its digests before releasing the read
 * lock, so a deletion after it sees the note and skips the candidate; a
 * deletion before it happened entirely before the writer's check, which
 * then finds the blob missing and answers MANIFEST_BLOB_UNKNOWN / writes
 * the manifest bytes again / renames its own copy into place).  A
 * candidate is deleted only when no manifest left on disk references it,
 * so a pull of a live image never sees a 404; deletes of manifests whose
 * deletion was skipped keep their blobs, since the blob marking counts
 * every manifest that remains.  Readers take no lock: an open blob stays
 * readable after the unlink.  Pushes and pulls are never blocked for
 * longer than one unlink.
 *
 * A blob uploaded but not yet referenced by a manifest is protected by the
 * grace period: commit sets its mtime to now.  Upload sessions' data lives
 * under _uploads/, which the collection does not touch.
 */
#include "registry/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry/auth.h"
#include "registry/registry-internal.h"
#include "registry/storage-internal.h"
#include "utils.h"

/* --- A string -> long map (open addressing) ------------------------------ */

struct gc_strset
{
  char **keys;
  long *vals;
  size_t cap, n;
};

static uint64_t
str_hash (const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char) *s) * 1099511628211ull;
  return h;
}

static struct gc_strset *
strset_new (void)
{
  struct gc_strset *m = xmalloc0 (sizeof (*m));
  m->cap = 64;
  m->keys = xmalloc0 (m->cap * sizeof (char *));
  m->vals = xmalloc0 (m->cap * sizeof (long));
  return m;
}

static void
strset_free (struct gc_strset *m)
{
  size_t i;
  if (m == NULL)
    return;
  for (i = 0; i < m->cap; i++)
    free (m->keys[i]);
  free (m->keys);
  free (m->vals);
  free (m);
}

static size_t
strset_slot (const struct gc_strset *m, const char *k)
{
  size_t i = str_hash (k) & (m->cap - 1);
  while (m->keys[i] && strcmp (m->keys[i], k) != 0)
    i = (i + 1) & (m->cap - 1);
  return i;
}

/* Insert K (copied) with VAL unless present.  True when inserted. */
static bool
strset_put (struct gc_strset *m, const char *k, long val)
{
  size_t i;

  if (2 * (m->n + 1) > m->cap)
    {
      struct gc_strset old = *m;
      m->cap *= 2;
      m->keys = xmalloc0 (m->cap * sizeof (char *));
      m->vals = xmalloc0 (m->cap * sizeof (long));
      for (i = 0; i < old.cap; i++)
        if (old.keys[i])
          {
            size_t j = strset_slot (m, old.keys[i]);
            m->keys[j] = old.keys[i];
            m->vals[j] = old.vals[i];
          }
      free (old.keys);
      free (old.vals);
    }
  i = strset_slot (m, k);
  if (m->keys[i])
    return false;
  m->keys[i] = xstrdup (k);
  m->vals[i] = val;
  m->n++;
  return true;
}

/* The value of K, or -1. */
static long
strset_get (const struct gc_strset *m, const char *k)
{
  size_t i = strset_slot (m, k);
  return m->keys[i] ? m->vals[i] : -1;
}

static void
strset_clear (struct gc_strset *m)
{
  size_t i;
  for (i = 0; i < m->cap; i++)
    {
      free (m->keys[i]);
      m->keys[i] = NULL;
    }
  m->n = 0;
}

/* --- The writers' side --------------------------------------------------- */

void
registry_gc_storage_init (struct registry_storage *s)
{
  pthread_rwlockattr_t attr;

  /* Writer-preferring: a stream of pushes must not starve the deletes
   * (no reader ever takes the lock twice, so this cannot deadlock).  */
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init (&s->gc_lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  pthread_mutex_init (&s->gc_run_lock, NULL);
  pthread_mutex_init (&s->gc_note_lock, NULL);
  s->gc_noted = strset_new ();
}

void
registry_gc_storage_fini (struct registry_storage *s)
{
  strset_free (s->gc_noted);
  s->gc_noted = NULL;
  pthread_mutex_destroy (&s->gc_note_lock);
  pthread_mutex_destroy (&s->gc_run_lock);
  pthread_rwlock_destroy (&s->gc_lock);
}

void
registry_gc_read_lock (struct registry_storage *s)
{
  pthread_rwlock_rdlock (&s->gc_lock);
}

void
registry_gc_read_unlock (struct registry_storage *s)
{
  pthread_rwlock_unlock (&s->gc_lock);
}

void
registry_gc_note (struct registry_storage *s, const struct registry_digest *d)
{
  pthread_mutex_lock (&s->gc_note_lock);
  if (s->gc_noting)
    strset_put (s->gc_noted, d->str, 0);
  pthread_mutex_unlock (&s->gc_note_lock);
}

static bool
noted (struct registry_storage *s, const char *digest)
{
  bool r;
  pthread_mutex_lock (&s->gc_note_lock);
  r = strset_get (s->gc_noted, digest) >= 0;
  pthread_mutex_unlock (&s->gc_note_lock);
  return r;
}

static void
set_noting (struct registry_storage *s, bool on)
{
  pthread_mutex_lock (&s->gc_note_lock);
  strset_clear (s->gc_noted);
  s->gc_noting = on;
  pthread_mutex_unlock (&s->gc_note_lock);
}

/* --- The mark ------------------------------------------------------------ */

struct gc_manifest
{
  size_t repo;
  struct registry_digest digest;
  struct storage_strv refs; /* every digest it references */
  struct storage_strv children;
  char subject[REGISTRY_DIGEST_STRLEN]; /* "" when none */
  bool tagged, live, deleted;
};

struct gc_link
{
  size_t repo;
  long next; /* the next link of the same blob, or -1 */
};

struct gc_state
{
  struct registry_storage *s;
  char **repos;
  struct gc_manifest *m;
  size_t n_m, alloc_m;
  struct gc_strset *by_key; /* "repo\ndigest" -> index in m */
  struct gc_link *links;
  size_t n_links, alloc_links;
  struct gc_strset *link_head; /* digest -> first index in links */
  bool unsure; /* a manifest could not be parsed: delete no blob */
};

static void
state_release (struct gc_state *st)
{
  size_t i;
  for (i = 0; i < st->n_m; i++)
    {
      strv_free (st->m[i].refs.v);
      strv_free (st->m[i].children.v);
    }
  free (st->m);
  free (st->links);
  strv_free (st->repos);
  strset_free (st->by_key);
  strset_free (st->link_head);
}

static char *
manifest_key (const char *repo, const char *digest)
{
  char *k;
  xasprintf (&k, "%s\n%s", repo, digest);
  return k;
}

/* Call FN for each DIR/<alg>/<hex> entry that is a valid digest.  */
static void
each_digest (struct registry_storage *s, const char *dir,
             void (*fn) (struct gc_state *, size_t,
                         const struct registry_digest *),
             struct gc_state *st, size_t repo)
{
  static const char *const algs[] = { "sha256", "sha512", NULL };
  size_t a;

  for (a = 0; algs[a]; a++)
    {
      cleanup_free char *rel = NULL;
      cleanup_dir DIR *d = NULL;
      struct dirent *de;

      xasprintf (&rel, "%s/%s", dir, algs[a]);
      d = registry_storage_opendir (s, rel);
      if (d == NULL)
        continue;
      while ((de = readdir (d)))
        {
          char buf[300];
          struct registry_digest dg;
          berth_error_t e = NULL;

          if (de->d_name[0] == '.')
            continue;
          snprintf (buf, sizeof (buf), "%s:%s", algs[a], de->d_name);
          if (registry_digest_parse (buf, &dg, &e) == 0)
            fn (st, repo, &dg);
          berth_error_release (&e);
        }
    }
}

static void
add_manifest (struct gc_state *st, size_t repo, const struct registry_digest *d)
{
  struct registry_storage *s = st->s;
  cleanup_free char *key = manifest_key (st->repos[repo], d->str);
  cleanup_free char *link
      = storage_link_path (st->repos[repo], "_manifests", d);
  cleanup_free char *blob = storage_blob_path (d);
  cleanup_free char *mt = NULL, *data = NULL;
  struct registry_manifest *pm = NULL;
  struct gc_manifest *m;
  berth_error_t e = NULL;
  size_t len = 0, i;
  int r;

  if (st->n_m == st->alloc_m)
    {
      st->alloc_m = st->alloc_m ? 2 * st->alloc_m : 64;
      st->m = xrealloc (st->m, st->alloc_m * sizeof (*st->m));
    }
  m = &st->m[st->n_m];
  memset (m, 0, sizeof (*m));
  m->repo = repo;
  m->digest = *d;
  if (!strset_put (st->by_key, key, (long) st->n_m))
    return;
  st->n_m++;

  if (storage_read (s, link, 512, &mt, NULL, &e) < 0)
    {
      /* Deleted meanwhile: nothing to protect.  */
      berth_error_release (&e);
      return;
    }
  mt[strcspn (mt, "\r\n ")] = '\0';
  r = storage_read (s, blob, s->max_manifest, &data, &len, &e);
  if (r < 0)
    {
      if (r != -ENOENT)
        st->unsure = true;
      berth_error_release (&e);
      return;
    }
  if (registry_manifest_parse (
          data, len, registry_media_type_is_manifest (mt) ? mt : NULL, &pm, &e)
          < 0
      && registry_manifest_parse (data, len, NULL, &pm, &e) < 0)
    {
      st->unsure = true;
      berth_error_release (&e);
      return;
    }
  berth_error_release (&e);
  for (i = 0; i < pm->n_refs; i++)
    {
      if (!pm->refs[i].supported)
        continue;
      storage_strv_push (&m->refs, xstrdup (pm->refs[i].digest.str));
      if (pm->refs[i].is_manifest)
        storage_strv_push (&m->children, xstrdup (pm->refs[i].digest.str));
    }
  if (pm->has_subject && pm->subject.supported)
    snprintf (m->subject, sizeof (m->subject), "%s", pm->subject.digest.str);
  registry_manifest_free (pm);
}

static void
add_link (struct gc_state *st, size_t repo, const struct registry_digest *d)
{
  long head = strset_get (st->link_head, d->str);

  if (st->n_links == st->alloc_links)
    {
      st->alloc_links = st->alloc_links ? 2 * st->alloc_links : 64;
      st->links = xrealloc (st->links, st->alloc_links * sizeof (*st->links));
    }
  st->links[st->n_links].repo = repo;
  st->links[st->n_links].next = head;
  if (head >= 0)
    {
      /* Make the new link the head.  */
      size_t i = strset_slot (st->link_head, d->str);
      st->link_head->vals[i] = (long) st->n_links;
    }
  else
    strset_put (st->link_head, d->str, (long) st->n_links);
  st->n_links++;
}

/* Mark the tags of REPO.  */
static void
read_tags (struct gc_state *st, size_t repo)
{
  struct registry_storage *s = st->s;
  cleanup_strv char **tags = NULL;
  berth_error_t e = NULL;
  size_t i;

  if (registry_storage_tags (s, st->repos[repo], &tags, &e) < 0)
    {
      berth_error_release (&e);
      return;
    }
  for (i = 0; tags[i]; i++)
    {
      cleanup_free char *rel = NULL, *buf = NULL, *key = NULL;
      long idx;

      xasprintf (&rel, REPOS_DIR "/%s/_tags/%s", st->repos[repo], tags[i]);
      if (storage_read (s, rel, 512, &buf, NULL, &e) < 0)
        {
          berth_error_release (&e);
          continue;
        }
      buf[strcspn (buf, "\r\n ")] = '\0';
      key = manifest_key (st->repos[repo], buf);
      idx = strset_get (st->by_key, key);
      if (idx >= 0)
        st->m[idx].tagged = true;
    }
}

static bool
make_live (struct gc_state *st, size_t repo, const char *digest)
{
  cleanup_free char *key = manifest_key (st->repos[repo], digest);
  long idx = strset_get (st->by_key, key);
  if (idx < 0 || st->m[idx].live)
    return false;
  st->m[idx].live = true;
  return true;
}

static void
mark (struct gc_state *st, bool delete_untagged)
{
  bool changed = true;
  size_t i, j;

  for (i = 0; i < st->n_m; i++)
    st->m[i].live = !delete_untagged || st->m[i].tagged;
  /* Children of live indexes, referrers of live manifests: to a fixed
   * point (the graph is small; each pass is linear).  */
  while (changed)
    {
      changed = false;
      for (i = 0; i < st->n_m; i++)
        {
          struct gc_manifest *m = &st->m[i];
          if (m->live)
            {
              for (j = 0; j < m->children.n; j++)
                changed |= make_live (st, m->repo, m->children.v[j]);
            }
          else if (m->subject[0])
            {
              cleanup_free char *key
                  = manifest_key (st->repos[m->repo], m->subject);
              long idx = strset_get (st->by_key, key);
              if (idx >= 0 && st->m[idx].live)
                {
                  m->live = true;
                  changed = true;
                }
            }
        }
    }
}

/* --- The sweep ----------------------------------------------------------- */

static void
sweep_manifests (struct gc_state *st, struct registry_gc_stats *stats)
{
  struct registry_storage *s = st->s;
  size_t i;

  for (i = 0; i < st->n_m; i++)
    {
      struct gc_manifest *m = &st->m[i];
      berth_error_t e = NULL;

      if (m->live)
        continue;
      pthread_rwlock_wrlock (&s->gc_lock);
      if (!noted (s, m->digest.str)
          && registry_storage_manifest_delete (s, st->repos[m->repo],
                                               &m->digest, &e)
                 == 0)
        {
          m->deleted = true;
          stats->manifests_deleted++;
        }
      pthread_rwlock_unlock (&s->gc_lock);
      berth_error_release (&e);
    }
}

struct blob_sweep
{
  struct gc_state *st;
  struct gc_strset *live;
  struct registry_gc_stats *stats;
  int64_t grace;
  time_t now;
};

/* Now, in seconds, on the clock file timestamps come from.  time() can
 * lag a fresh mtime by up to a tick at a second's boundary (the kernel
 * stamps files from a finer clock): a blob committed just before the
 * collection would seem stamped a second in the future, and be kept even
 * with no grace period.  */
static time_t
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

static bool
too_young (struct registry_storage *s, const char *rel, int64_t grace,
           time_t now, off_t *size)
{
  struct stat sb;
  if (fstatat (s->root_fd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
    return true; /* gone, or unknown: leave it */
  *size = sb.st_size;
  return (int64_t) now - (int64_t) sb.st_mtime < grace;
}

static void
sweep_blob (struct blob_sweep *b, const struct registry_digest *d)
{
  struct registry_storage *s = b->st->s;
  cleanup_free char *rel = storage_blob_path (d);
  off_t size = 0;
  long l;

  if (strset_get (b->live, d->str) >= 0
      || too_young (s, rel, b->grace, b->now, &size))
    return;
  pthread_rwlock_wrlock (&s->gc_lock);
  /* Re-check: referenced or committed again since the mark began?  */
  if (noted (s, d->str) || too_young (s, rel, b->grace, now_seconds (), &size))
    {
      pthread_rwlock_unlock (&s->gc_lock);
      return;
    }
  if (unlinkat (s->root_fd, rel, 0) == 0)
    {
      b->stats->blobs_deleted++;
      b->stats->bytes_freed += (uint64_t) size;
    }
  for (l = strset_get (b->st->link_head, d->str); l >= 0;
       l = b->st->links[l].next)
    {
      cleanup_free char *link = storage_link_path (
          b->st->repos[b->st->links[l].repo], "_layers", d);
      unlinkat (s->root_fd, link, 0);
    }
  pthread_rwlock_unlock (&s->gc_lock);
}

static void
sweep_blobs (struct blob_sweep *b)
{
  static const char *const algs[] = { "sha256", "sha512", NULL };
  struct registry_storage *s = b->st->s;
  size_t a;

  for (a = 0; algs[a]; a++)
    {
      cleanup_free char *rel = NULL;
      cleanup_dir DIR *d = NULL;
      struct dirent *de;

      xasprintf (&rel, "blobs/%s", algs[a]);
      d = registry_storage_opendir (s, rel);
      if (d == NULL)
        continue;
      while ((de = readdir (d)))
        {
          cleanup_free char *sub = NULL;
          cleanup_dir DIR *d2 = NULL;
          struct dirent *de2;

          if (de->d_name[0] == '.')
            continue;
          xasprintf (&sub, "%s/%s", rel, de->d_name);
          d2 = registry_storage_opendir (s, sub);
          if (d2 == NULL)
            continue;
          while ((de2 = readdir (d2)))
            {
              char buf[300];
              struct registry_digest dg;
              berth_error_t e = NULL;

              if (de2->d_name[0] == '.')
                continue;
              snprintf (buf, sizeof (buf), "%s:%s", algs[a], de2->d_name);
              if (registry_digest_parse (buf, &dg, &e) == 0)
                sweep_blob (b, &dg);
              berth_error_release (&e);
            }
        }
    }
}

static uint64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int
registry_gc_run (struct registry_storage *s,
                 const struct registry_gc_opts *opts,
                 struct registry_gc_stats *stats, berth_error_t *err)
{
  struct gc_state st = { 0 };
  uint64_t start;
  size_t i, j;
  int r;

  memset (stats, 0, sizeof (*stats));
  pthread_mutex_lock (&s->gc_run_lock);
  start = now_ms ();
  st.s = s;
  st.by_key = strset_new ();
  st.link_head = strset_new ();

  /* 1. Start noting: from here on, every new reference is seen.  */
  pthread_rwlock_wrlock (&s->gc_lock);
  set_noting (s, true);
  pthread_rwlock_unlock (&s->gc_lock);

  /* 2. Mark.  */
  r = registry_storage_catalog (s, &st.repos, err);
  if (r < 0)
    goto out;
  for (i = 0; st.repos[i]; i++)
    {
      cleanup_free char *m = NULL, *l = NULL;
      xasprintf (&m, REPOS_DIR "/%s/_manifests", st.repos[i]);
      xasprintf (&l, REPOS_DIR "/%s/_layers", st.repos[i]);
      each_digest (s, m, add_manifest, &st, i);
      each_digest (s, l, add_link, &st, i);
    }
  for (i = 0; st.repos[i]; i++)
    read_tags (&st, i);
  mark (&st, opts->delete_untagged);

  /* 3. Sweep: manifests first, then the blobs no remaining manifest
   * references.  */
  sweep_manifests (&st, stats);
  if (!st.unsure)
    {
      struct blob_sweep b = { 0 };
      b.st = &st;
      b.live = strset_new ();
      b.stats = stats;
      b.grace = opts->grace_seconds;
      b.now = now_seconds ();
      for (i = 0; i < st.n_m; i++)
        {
          if (st.m[i].deleted)
            continue;
          strset_put (b.live, st.m[i].digest.str, 0);
          for (j = 0; j < st.m[i].refs.n; j++)
            strset_put (b.live, st.m[i].refs.v[j], 0);
        }
      sweep_blobs (&b);
      strset_free (b.live);
    }
  r = 0;

out:
  set_noting (s, false);
  state_release (&st);
  stats->duration_ms = now_ms () - start;
  pthread_mutex_unlock (&s->gc_run_lock);
  return r;
}

/* --- The schedule -------------------------------------------------------- */

struct registry_gc_timer
{
  struct registry_storage *s;
  struct registry_gc_opts opts;
  int64_t interval;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stop;
};

static void *
timer_main (void *data)
{
  struct registry_gc_timer *t = data;

  pthread_mutex_lock (&t->lock);
  for (;;)
    {
      struct timespec deadline;
      struct registry_gc_stats stats;
      berth_error_t e = NULL;

      clock_gettime (CLOCK_REALTIME, &deadline);
      deadline.tv_sec += t->interval;
      while (!t->stop
             && pthread_cond_timedwait (&t->cond, &t->lock, &deadline) == 0)
        ;
      if (t->stop)
        break;
      pthread_mutex_unlock (&t->lock);
      if (registry_gc_run (t->s, &t->opts, &stats, &e) < 0)
        {
          fprintf (stderr, "berth-registry: gc: %s\n", e->msg);
          berth_error_release (&e);
        }
      pthread_mutex_lock (&t->lock);
    }
  pthread_mutex_unlock (&t->lock);
  return NULL;
}

struct registry_gc_timer *
registry_gc_timer_start (struct registry_storage *s,
                         const struct registry_gc_opts *opts,
                         int64_t interval_seconds)
{
  struct registry_gc_timer *t;

  if (interval_seconds <= 0)
    return NULL;
  t = xmalloc0 (sizeof (*t));
  t->s = s;
  t->opts = *opts;
  t->interval = interval_seconds;
  pthread_mutex_init (&t->lock, NULL);
  pthread_cond_init (&t->cond, NULL);
  if (pthread_create (&t->thread, NULL, timer_main, t) != 0)
    {
      pthread_mutex_destroy (&t->lock);
      pthread_cond_destroy (&t->cond);
      free (t);
      return NULL;
    }
  return t;
}

void
registry_gc_timer_stop (struct registry_gc_timer *t)
{
  if (t == NULL)
    return;
  pthread_mutex_lock (&t->lock);
  t->stop = true;
  pthread_cond_signal (&t->cond);
  pthread_mutex_unlock (&t->lock);
  pthread_join (t->thread, NULL);
  pthread_mutex_destroy (&t->lock);
  pthread_cond_destroy (&t->cond);
  free (t);
}

/* --- POST /admin/gc ------------------------------------------------------ */

void
registry_gc_handler (struct http_request *req, void *data)
{
  struct registry *reg = data;
  struct registry_gc_stats stats;
  berth_error_t err = NULL;

  /* With access control on, only the config's admins ("auth.admins").  A
   * hook given by the caller knows no admins: the endpoint is closed
   * then (the schedule still runs).  */
  if (reg->auth != NULL && reg->auth != registry_auth_check)
    {
      registry_error (req, 403, E_DENIED,
                      "POST /admin/gc needs the config's auth and its admins",
                      NULL);
      return;
    }
  if (reg->auth != NULL && registry_auth_admin (reg->auth_data, req) < 0)
    return;
  if (registry_gc_run (reg->storage, &reg->gc_opts, &stats, &err) < 0)
    {
      registry_internal_error (reg, req, &err);
      return;
    }
  http_respond_json (req, 200, NULL,
                     json_pack ("{s:I,s:I,s:I,s:I}", "blobs_deleted",
                                (json_int_t) stats.blobs_deleted, "bytes_freed",
                                (json_int_t) stats.bytes_freed,
                                "manifests_deleted",
                                (json_int_t) stats.manifests_deleted,
                                "duration_ms", (json_int_t) stats.duration_ms));
}
