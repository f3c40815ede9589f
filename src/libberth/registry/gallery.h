/* gallery.h - berth-registry's web gallery: server-rendered HTML pages
 * (inline CSS, no JavaScript) over the registry's own storage, for every
 * path outside /v2/ (and /token when no token service runs).
 *
 *   /                      the repositories; ?q=SUBSTRING filters by name
 *   /r/<name>              the repository's tags
 *   /r/<name>/t/<tag>      the tag's manifest: per platform for an index,
 *                          layers, sizes, creation date, labels, and the
 *                          docker pull command (host from the Host header)
 *
 * Only GET and HEAD (405 otherwise); unknown repositories and tags get a
 * 404 page.  Everything from storage or the request is HTML-escaped.
 * Access: public when the registry has no auth.  With the config's auth
 * (auth.h), in both modes, browsers sign in with Basic credentials of the
 * htpasswd users (registry_auth_gallery_user): anonymous clients get a
 * 401 page with a Basic challenge unless anonymous pulls are on, and the
 * pages list and show only the repositories the user may pull (for the
 * token service, what the ACL grants); another repository's pages are
 * 404, as if it did not exist.  With an auth hook given by the caller,
 * the hook is asked for a pull (name NULL for the list of repositories),
 * as for the API.
 *
 * Ambiguity: a repository component may be "t", so /r/a/t/b is the tag
 * page of "a":"b" unless a repository "a/t/b" exists.
 */
#ifndef BERTH_REGISTRY_GALLERY_H
#define BERTH_REGISTRY_GALLERY_H

#include "http/server.h"

struct registry;

/* A route handler body: DATA is the struct registry. */
void registry_gallery_handle (struct registry *reg, struct http_request *req);

#endif
