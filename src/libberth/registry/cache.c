/* cache.c - a hash table of tags and manifests under a rwlock (see
 * cache.h). */
#include "registry/cache.h"

#include <pthread.h>
#include <string.h>

#include "utils.h"

#define KEY_MAX 512
#define MIN_BUCKETS 64
/* What an entry costs beside its key and value: the struct, malloc's
 * header, the bucket pointer.  */
#define ENTRY_OVERHEAD 64

/* One allocation: the struct, then the key, the value and the media type,
 * each NUL-terminated.  */
struct entry
{
  struct entry *next;
  uint64_t hash;
  size_t key_len;
  size_t len;
  size_t cost;
  char *data;
  char *media_type;
  unsigned char hot;
  char key[];
};

struct registry_cache
{
  pthread_rwlock_t lock;
  struct entry **buckets;
  size_t n_buckets; /* a power of two */
  size_t n_entries;
  size_t bytes;
  size_t max_bytes;
  size_t hand; /* the clock hand: a bucket index */
  uint64_t generation;
};

static uint64_t
fnv1a (const char *s, size_t n)
{
  uint64_t h = 14695981039346656037ull;
  size_t i;
  for (i = 0; i < n; i++)
    {
      h ^= (unsigned char) s[i];
      h *= 1099511628211ull;
    }
  return h;
}

/* KIND ('T' tag, 'M' manifest) NAME '\n' REF.  Returns the length, 0 when
 * it does not fit (then nothing is cached).  */
static size_t
make_key (char *buf, char kind, const char *name, const char *ref)
{
  size_t nl = strlen (name), rl = strlen (ref);
  if (nl + rl + 3 > KEY_MAX)
    return 0;
  buf[0] = kind;
  memcpy (buf + 1, name, nl);
  buf[1 + nl] = '\n';
  memcpy (buf + 2 + nl, ref, rl + 1);
  return nl + rl + 2;
}

struct registry_cache *
registry_cache_new (size_t max_bytes)
{
  struct registry_cache *c = xmalloc0 (sizeof (*c));
  pthread_rwlock_init (&c->lock, NULL);
  c->n_buckets = MIN_BUCKETS;
  c->buckets = xmalloc0 (c->n_buckets * sizeof (*c->buckets));
  c->max_bytes = max_bytes;
  return c;
}

void
registry_cache_free (struct registry_cache *c)
{
  size_t i;
  if (c == NULL)
    return;
  for (i = 0; i < c->n_buckets; i++)
    {
      struct entry *e = c->buckets[i], *next;
      for (; e; e = next)
        {
          next = e->next;
          free (e);
        }
    }
  free (c->buckets);
  pthread_rwlock_destroy (&c->lock);
  free (c);
}

uint64_t
registry_cache_generation (struct registry_cache *c)
{
  return __atomic_load_n (&c->generation, __ATOMIC_ACQUIRE);
}

/* Under the lock (read or write).  */
static struct entry *
find (struct registry_cache *c, const char *key, size_t key_len, uint64_t h)
{
  struct entry *e = c->buckets[h & (c->n_buckets - 1)];
  for (; e; e = e->next)
    if (e->hash == h && e->key_len == key_len
        && memcmp (e->key, key, key_len) == 0)
      return e;
  return NULL;
}

static void
mark_hot (struct entry *e)
{
  /* Readers share the lock: a relaxed store, and only when needed, so
   * that hot entries do not bounce their cache line between CPUs.  */
  if (!__atomic_load_n (&e->hot, __ATOMIC_RELAXED))
    __atomic_store_n (&e->hot, 1, __ATOMIC_RELAXED);
}

/* Under the write lock.  */
static void
unlink_entry (struct registry_cache *c, const char *key, size_t key_len,
              uint64_t h)
{
  struct entry **pp = &c->buckets[h & (c->n_buckets - 1)];
  for (; *pp; pp = &(*pp)->next)
    {
      struct entry *e = *pp;
      if (e->hash == h && e->key_len == key_len
          && memcmp (e->key, key, key_len) == 0)
        {
          *pp = e->next;
          c->bytes -= e->cost;
          c->n_entries--;
          free (e);
          return;
        }
    }
}

static void
grow (struct registry_cache *c)
{
  size_t n = c->n_buckets * 2, i;
  struct entry **b = xmalloc0 (n * sizeof (*b));
  for (i = 0; i < c->n_buckets; i++)
    {
      struct entry *e = c->buckets[i], *next;
      for (; e; e = next)
        {
          next = e->next;
          e->next = b[e->hash & (n - 1)];
          b[e->hash & (n - 1)] = e;
        }
    }
  free (c->buckets);
  c->buckets = b;
  c->n_buckets = n;
  c->hand = 0;
}

/* The clock: sweep buckets from the hand, giving hot entries a second
 * chance, until the budget holds.  Under the write lock.  */
static void
evict (struct registry_cache *c)
{
  size_t steps = 0, limit = 2 * c->n_buckets + 1;
  while (c->bytes > c->max_bytes && c->n_entries > 0 && steps++ < limit)
    {
      struct entry **pp = &c->buckets[c->hand];
      while (*pp && c->bytes > c->max_bytes)
        {
          struct entry *e = *pp;
          if (e->hot)
            {
              e->hot = 0;
              pp = &e->next;
              continue;
            }
          *pp = e->next;
          c->bytes -= e->cost;
          c->n_entries--;
          free (e);
        }
      c->hand = (c->hand + 1) & (c->n_buckets - 1);
    }
}

static void
insert (struct registry_cache *c, uint64_t gen, const char *key, size_t key_len,
        const char *data, size_t len, const char *mt)
{
  size_t mt_len = mt ? strlen (mt) : 0;
  size_t size = sizeof (struct entry) + key_len + 1 + len + 1 + mt_len + 1;
  uint64_t h = fnv1a (key, key_len);
  struct entry *e;

  if (size + ENTRY_OVERHEAD > c->max_bytes / 4)
    return; /* too large to be worth it (or the cache is off) */
  e = xmalloc (size);
  e->hash = h;
  e->key_len = key_len;
  e->len = len;
  e->cost = size + ENTRY_OVERHEAD;
  e->hot = 0;
  memcpy (e->key, key, key_len + 1);
  e->data = e->key + key_len + 1;
  memcpy (e->data, data, len);
  e->data[len] = '\0';
  e->media_type = e->data + len + 1;
  memcpy (e->media_type, mt ? mt : "", mt_len + 1);

  pthread_rwlock_wrlock (&c->lock);
  if (c->generation != gen)
    {
      pthread_rwlock_unlock (&c->lock);
      free (e);
      return;
    }
  unlink_entry (c, key, key_len, h);
  if (c->n_entries >= c->n_buckets)
    grow (c);
  e->next = c->buckets[h & (c->n_buckets - 1)];
  c->buckets[h & (c->n_buckets - 1)] = e;
  c->n_entries++;
  c->bytes += e->cost;
  evict (c);
  pthread_rwlock_unlock (&c->lock);
}

static void
invalidate (struct registry_cache *c, const char *key, size_t key_len)
{
  pthread_rwlock_wrlock (&c->lock);
  if (key_len)
    unlink_entry (c, key, key_len, fnv1a (key, key_len));
  __atomic_store_n (&c->generation, c->generation + 1, __ATOMIC_RELEASE);
  pthread_rwlock_unlock (&c->lock);
}

/* Under the read lock: the tag's digest string, or NULL.  */
static const char *
lookup_tag (struct registry_cache *c, const char *name, const char *tag)
{
  char key[KEY_MAX];
  size_t n = make_key (key, 'T', name, tag);
  struct entry *e;
  if (n == 0)
    return NULL;
  e = find (c, key, n, fnv1a (key, n));
  if (e == NULL)
    return NULL;
  mark_hot (e);
  return e->data;
}

static bool
digest_from_cached (const char *s, struct registry_digest *out)
{
  /* Only digests that parsed are stored: this cannot fail.  */
  enum registry_digest_alg alg
      = strncmp (s, "sha512:", 7) == 0 ? REGISTRY_SHA512 : REGISTRY_SHA256;
  registry_digest_set (out, alg, s + 7);
  return true;
}

bool
registry_cache_get_tag (struct registry_cache *c, const char *name,
                        const char *tag, struct registry_digest *out)
{
  const char *d;
  bool hit = false;
  if (c->max_bytes == 0)
    return false;
  pthread_rwlock_rdlock (&c->lock);
  d = lookup_tag (c, name, tag);
  if (d)
    hit = digest_from_cached (d, out);
  pthread_rwlock_unlock (&c->lock);
  return hit;
}

bool
registry_cache_get (struct registry_cache *c, const char *name, const char *tag,
                    const struct registry_digest *digest,
                    struct registry_cached_manifest *out)
{
  char key[KEY_MAX];
  struct registry_digest d;
  struct entry *e;
  size_t n;
  bool hit = false;

  if (c->max_bytes == 0)
    return false;
  pthread_rwlock_rdlock (&c->lock);
  if (tag)
    {
      const char *s = lookup_tag (c, name, tag);
      if (s == NULL)
        goto out;
      digest_from_cached (s, &d);
    }
  else
    d = *digest;
  n = make_key (key, 'M', name, d.str);
  e = n ? find (c, key, n, fnv1a (key, n)) : NULL;
  if (e == NULL)
    goto out;
  mark_hot (e);
  out->digest = d;
  out->data = xmalloc (e->len + 1);
  memcpy (out->data, e->data, e->len + 1);
  out->len = e->len;
  snprintf (out->media_type, sizeof (out->media_type), "%s", e->media_type);
  hit = true;
out:
  pthread_rwlock_unlock (&c->lock);
  return hit;
}

void
registry_cache_fill_tag (struct registry_cache *c, uint64_t gen,
                         const char *name, const char *tag,
                         const struct registry_digest *digest)
{
  char key[KEY_MAX];
  size_t n = make_key (key, 'T', name, tag);
  if (n)
    insert (c, gen, key, n, digest->str, strlen (digest->str), NULL);
}

void
registry_cache_fill_manifest (struct registry_cache *c, uint64_t gen,
                              const char *name,
                              const struct registry_digest *digest,
                              const char *data, size_t len,
                              const char *media_type)
{
  char key[KEY_MAX];
  size_t n = make_key (key, 'M', name, digest->str);
  if (n)
    insert (c, gen, key, n, data, len, media_type);
}

void
registry_cache_invalidate_tag (struct registry_cache *c, const char *name,
                               const char *tag)
{
  char key[KEY_MAX];
  invalidate (c, key, make_key (key, 'T', name, tag));
}

void
registry_cache_invalidate_manifest (struct registry_cache *c, const char *name,
                                    const struct registry_digest *digest)
{
  char key[KEY_MAX];
  invalidate (c, key, make_key (key, 'M', name, digest->str));
}

void
registry_cache_stats (struct registry_cache *c, size_t *entries, size_t *bytes)
{
  pthread_rwlock_rdlock (&c->lock);
  *entries = c->n_entries;
  *bytes = c->bytes;
  pthread_rwlock_unlock (&c->lock);
}
