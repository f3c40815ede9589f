/* storage-manifest.c - manifests, tags and referrers on disk, behind the
 * cache (see storage.h and cache.h). */
#include "registry/storage-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "utils.h"

/* A tag file holds a digest; a manifest link its media type.  */
#define SMALL_FILE_MAX 512

void
registry_manifest_data_release (struct registry_manifest_data *m)
{
  free (m->data);
  m->data = NULL;
}

static char *
tag_path (const char *name, const char *tag)
{
  char *p;
  xasprintf (&p, REPOS_DIR "/%s/_tags/%s", name, tag);
  return p;
}

static char *
referrer_path (const char *name, const struct registry_digest *subject,
               const struct registry_digest *d)
{
  char *p;
  xasprintf (&p, REPOS_DIR "/%s/_referrers/%s/%s/%s-%s", name,
             registry_digest_alg_name (subject->alg),
             registry_digest_hex (subject), registry_digest_alg_name (d->alg),
             registry_digest_hex (d));
  return p;
}

static void
trim (char *s)
{
  size_t n = strlen (s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
    s[--n] = '\0';
}

/* The digest a tag file holds.  -ENOENT when there is no such tag.  */
static int
read_tag (struct registry_storage *s, const char *name, const char *tag,
          struct registry_digest *out, berth_error_t *err)
{
  cleanup_free char *rel = tag_path (name, tag);
  cleanup_free char *buf = NULL;
  berth_error_t perr = NULL;
  int r;

  r = storage_read (s, rel, SMALL_FILE_MAX, &buf, NULL, err);
  if (r < 0)
    return r;
  trim (buf);
  if (registry_digest_parse (buf, out, &perr) < 0)
    {
      r = berth_make_error (err, EIO, "tag file `%s/%s`: %s", s->root, rel,
                            perr->msg);
      berth_error_release (&perr);
      return r;
    }
  return 0;
}

/* The media type to serve: what the link file says, else the body's.  */
static void
fix_media_type (struct registry_manifest_data *out)
{
  struct registry_manifest *m = NULL;
  berth_error_t err = NULL;

  if (registry_media_type_is_manifest (out->media_type))
    return;
  if (registry_manifest_parse (out->data, out->len, NULL, &m, &err) == 0)
    snprintf (out->media_type, sizeof (out->media_type), "%s", m->media_type);
  else
    snprintf (out->media_type, sizeof (out->media_type), "%s",
              REGISTRY_MT_OCI_MANIFEST);
  registry_manifest_free (m);
  berth_error_release (&err);
}

int
registry_storage_manifest_get (struct registry_storage *s, const char *name,
                               const char *tag,
                               const struct registry_digest *digest,
                               struct registry_manifest_data *out,
                               berth_error_t *err)
{
  struct registry_cached_manifest cm;
  cleanup_free char *link = NULL, *blob = NULL, *mt = NULL;
  struct registry_digest d;
  bool tag_from_disk = false;
  uint64_t gen;
  int r;

  memset (out, 0, sizeof (*out));
  if (registry_cache_get (s->cache, name, tag, digest, &cm))
    {
      out->digest = cm.digest;
      out->data = cm.data;
      out->len = cm.len;
      memcpy (out->media_type, cm.media_type, sizeof (out->media_type));
      return 0;
    }
  /* Read before the files: a write in between makes the fill a no-op.  */
  gen = registry_cache_generation (s->cache);
  if (tag)
    {
      if (!registry_cache_get_tag (s->cache, name, tag, &d))
        {
          r = read_tag (s, name, tag, &d, err);
          if (r < 0)
            return r;
          tag_from_disk = true;
        }
    }
  else
    d = *digest;

  link = storage_link_path (name, "_manifests", &d);
  r = storage_read (s, link, SMALL_FILE_MAX, &mt, NULL, err);
  if (r < 0)
    return r;
  trim (mt);
  blob = storage_blob_path (&d);
  r = storage_read (s, blob, s->max_manifest, &out->data, &out->len, err);
  if (r < 0)
    return r;
  out->digest = d;
  snprintf (out->media_type, sizeof (out->media_type), "%s", mt);
  fix_media_type (out);

  if (tag_from_disk)
    registry_cache_fill_tag (s->cache, gen, name, tag, &d);
  registry_cache_fill_manifest (s->cache, gen, name, &d, out->data, out->len,
                                out->media_type);
  return 0;
}

bool
registry_storage_manifest_exists (struct registry_storage *s, const char *name,
                                  const struct registry_digest *digest)
{
  cleanup_free char *link = storage_link_path (name, "_manifests", digest);
  return storage_exists (s, link);
}

int
registry_storage_manifest_put (struct registry_storage *s, const char *name,
                               const struct registry_digest *digest,
                               const char *data, size_t len,
                               const struct registry_manifest *m,
                               char *const *tags, berth_error_t *err)
{
  cleanup_free char *blob = storage_blob_path (digest);
  cleanup_free char *link = storage_link_path (name, "_manifests", digest);
  size_t i;
  int r;

  /* The bytes first, then what makes them visible: a crash in between
   * leaves an unreferenced blob, never a dangling link.  */
  if (!storage_exists (s, blob))
    {
      r = storage_write_atomic (s, blob, data, len, err);
      if (r < 0)
        return r;
    }
  if (!storage_exists (s, link))
    {
      r = storage_write_atomic (s, link, m->media_type, strlen (m->media_type),
                                err);
      if (r < 0)
        return r;
      registry_cache_invalidate_manifest (s->cache, name, digest);
    }
  if (m->has_subject)
    {
      cleanup_free char *ref = referrer_path (name, &m->subject.digest, digest);
      r = storage_touch (s, ref, err);
      if (r < 0)
        return r;
    }
  for (i = 0; tags && tags[i]; i++)
    {
      cleanup_free char *rel = tag_path (name, tags[i]);
      r = storage_write_atomic (s, rel, digest->str, strlen (digest->str), err);
      if (r < 0)
        return r;
      registry_cache_invalidate_tag (s->cache, name, tags[i]);
    }
  return 0;
}

/* Remove the tags of NAME that point at DIGEST.  */
static void
delete_tags_of (struct registry_storage *s, const char *name,
                const struct registry_digest *digest)
{
  cleanup_free char *dir = NULL;
  cleanup_dir DIR *d = NULL;
  struct dirent *de;

  xasprintf (&dir, REPOS_DIR "/%s/_tags", name);
  d = registry_storage_opendir (s, dir);
  if (d == NULL)
    return;
  while ((de = readdir (d)))
    {
      struct registry_digest td;
      berth_error_t e = NULL;
      if (de->d_name[0] == '.')
        continue;
      if (read_tag (s, name, de->d_name, &td, &e) == 0
          && strcmp (td.str, digest->str) == 0)
        {
          cleanup_free char *rel = tag_path (name, de->d_name);
          if (unlinkat (s->root_fd, rel, 0) == 0)
            registry_cache_invalidate_tag (s->cache, name, de->d_name);
        }
      berth_error_release (&e);
    }
}

int
registry_storage_manifest_delete (struct registry_storage *s, const char *name,
                                  const struct registry_digest *digest,
                                  berth_error_t *err)
{
  cleanup_free char *link = storage_link_path (name, "_manifests", digest);
  cleanup_free char *blob = storage_blob_path (digest);
  cleanup_free char *data = NULL;
  cleanup_manifest struct registry_manifest *m = NULL;
  berth_error_t perr = NULL;
  size_t len = 0;

  if (!storage_exists (s, link))
    return berth_make_error (err, ENOENT, "manifest `%s` in `%s`", digest->str,
                             name);
  /* Its subject, to drop the referrer entry.  */
  if (storage_read (s, blob, s->max_manifest, &data, &len, &perr) == 0)
    registry_manifest_parse (data, len, NULL, &m, &perr);
  berth_error_release (&perr);

  if (unlinkat (s->root_fd, link, 0) < 0)
    return berth_make_error (err, errno, "manifest `%s` in `%s`", digest->str,
                             name);
  registry_cache_invalidate_manifest (s->cache, name, digest);
  delete_tags_of (s, name, digest);
  if (m && m->has_subject)
    {
      cleanup_free char *ref = referrer_path (name, &m->subject.digest, digest);
      unlinkat (s->root_fd, ref, 0);
    }
  return storage_sync_parent (s, link, err);
}

int
registry_storage_tag_delete (struct registry_storage *s, const char *name,
                             const char *tag, berth_error_t *err)
{
  cleanup_free char *rel = tag_path (name, tag);
  if (unlinkat (s->root_fd, rel, 0) < 0)
    return berth_make_error (err, errno, "tag `%s` in `%s`", tag, name);
  registry_cache_invalidate_tag (s->cache, name, tag);
  return storage_sync_parent (s, rel, err);
}

/* The entries of directory REL, sorted; an empty vector when it is
 * missing.  */
static int
list_dir (struct registry_storage *s, const char *rel, char ***out,
          berth_error_t *err)
{
  struct storage_strv b = { 0 };
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  int fd;

  fd = openat (s->root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT)
    return berth_make_error (err, errno, "open `%s/%s`", s->root, rel);
  if (fd >= 0)
    {
      d = fdopendir (fd);
      if (d == NULL)
        {
          close (fd);
          return berth_make_error (err, errno, "opendir `%s/%s`", s->root, rel);
        }
      while ((de = readdir (d)))
        if (de->d_name[0] != '.')
          storage_strv_push (&b, xstrdup (de->d_name));
    }
  *out = storage_strv_finish (&b);
  return 0;
}

int
registry_storage_tags (struct registry_storage *s, const char *name,
                       char ***out, berth_error_t *err)
{
  cleanup_free char *dir = NULL;

  if (!registry_storage_repo_exists (s, name))
    return berth_make_error (err, ENOENT, "repository `%s`", name);
  xasprintf (&dir, REPOS_DIR "/%s/_tags", name);
  return list_dir (s, dir, out, err);
}

/* The referrer entry NAME ("sha256-<hex>") as a digest.  */
static bool
referrer_digest (const char *entry, struct registry_digest *out)
{
  char buf[REGISTRY_DIGEST_STRLEN];
  berth_error_t e = NULL;
  char *dash;
  bool ok;

  if (strlen (entry) >= sizeof (buf))
    return false;
  strcpy (buf, entry);
  dash = strchr (buf, '-');
  if (dash == NULL)
    return false;
  *dash = ':';
  ok = registry_digest_parse (buf, out, &e) == 0;
  berth_error_release (&e);
  return ok;
}

int
registry_storage_referrers (struct registry_storage *s, const char *name,
                            const struct registry_digest *subject,
                            const char *artifact_type, json_t **out,
                            berth_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_strv char **entries = NULL;
  json_t *list;
  size_t i;
  int r;

  xasprintf (&dir, REPOS_DIR "/%s/_referrers/%s/%s", name,
             registry_digest_alg_name (subject->alg),
             registry_digest_hex (subject));
  r = list_dir (s, dir, &entries, err);
  if (r < 0)
    return r;
  list = json_array ();
  for (i = 0; entries[i]; i++)
    {
      struct registry_manifest_data md;
      struct registry_manifest *m = NULL;
      struct registry_digest d;
      berth_error_t e = NULL;
      const char *at;

      if (!referrer_digest (entries[i], &d))
        continue;
      /* A manifest deleted since, or unreadable: not a referrer.  */
      if (registry_storage_manifest_get (s, name, NULL, &d, &md, &e) < 0)
        {
          berth_error_release (&e);
          continue;
        }
      if (registry_manifest_parse (md.data, md.len, md.media_type, &m, &e) == 0
          && m->has_subject
          && strcmp (m->subject.digest.str, subject->str) == 0)
        {
          at = registry_manifest_effective_artifact_type (m);
          if (artifact_type == NULL || (at && strcmp (at, artifact_type) == 0))
            json_array_append_new (
                list, registry_manifest_referrer (m, d.str, md.len));
        }
      registry_manifest_free (m);
      berth_error_release (&e);
      registry_manifest_data_release (&md);
    }
  *out = list;
  return 0;
}
