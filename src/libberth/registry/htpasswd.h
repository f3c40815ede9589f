/* htpasswd.h - the users of an htpasswd file, as `htpasswd -B`
 * (apache2-utils) writes it, and the check of a password against them.
 * auth.c uses it for Basic credentials (both auth modes) and for the
 * token service's logins.
 *
 *   registry_htpasswd_load ("FILE", &users, &err);
 *   registry_htpasswd_verify (users, "alice", "secret");   // true, false
 *   registry_htpasswd_free (users);
 *
 * The format: one USER:HASH per line, LF or CRLF line ends.  Empty lines,
 * lines of blanks and lines whose first character is '#' are skipped.
 * Refused, with the line number: a line without ':' or with an empty
 * user, a hash that crypt_r(3) of libxcrypt cannot verify (it knows
 * bcrypt ($2y$, $2b$), sha-crypt and yescrypt; Apache's MD5 ($apr1$),
 * {SHA} and plain text are not hashes it knows), a hash holding a blank,
 * a control character or a ':', a user defined twice (which entry would
 * win is not obvious), a line longer than REGISTRY_HTPASSWD_MAX_LINE
 * bytes, and a NUL byte anywhere.
 *
 * The object is read-only once parsed: the lookups and verify may run
 * on several threads at once.
 */
#ifndef BERTH_REGISTRY_HTPASSWD_H
#define BERTH_REGISTRY_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Longest line, without its line end; a crypt(3) hash is under 400. */
#define REGISTRY_HTPASSWD_MAX_LINE 4096
/* Largest file. */
#define REGISTRY_HTPASSWD_MAX_BYTES (16u << 20)

struct registry_htpasswd;

/* Parse DATA (LEN bytes, not necessarily NUL-terminated); SOURCE names
 * it in errors ("SOURCE:LINE: ...").  An empty file has no users. */
int registry_htpasswd_parse (const char *data, size_t len, const char *source,
                             struct registry_htpasswd **out,
                             berth_error_t *err);
/* Read and parse the file PATH. */
int registry_htpasswd_load (const char *path, struct registry_htpasswd **out,
                            berth_error_t *err);
/* Safe on NULL; the hashes are wiped. */
void registry_htpasswd_free (struct registry_htpasswd *h);

/* The number of users, and the name of the Ith, in the file's order. */
size_t registry_htpasswd_count (const struct registry_htpasswd *h);
const char *registry_htpasswd_user (const struct registry_htpasswd *h,
                                    size_t i);
/* True when USER has a line. */
bool registry_htpasswd_has_user (const struct registry_htpasswd *h,
                                 const char *user);
/* True when PASSWORD matches USER's hash.  An unknown user costs a bcrypt
 * run too, so that timing does not tell which users exist.  H may be
 * NULL (no users). */
bool registry_htpasswd_verify (const struct registry_htpasswd *h,
                               const char *user, const char *password);

#endif
