/* curl-dl.h - libcurl, loaded when first needed instead of linked.
 *
 * Berth's daemons have an idle-memory budget, and libcurl serves only a
 * part of their work (berth-registry's pull-through cache, the engine's
 * image pulls).  Linked, libcurl and what it needs (GnuTLS, krb5, LDAP,
 * libssh2, nghttp2, ...) would be mapped at every start, about 1.5 MB
 * resident; loaded with dlopen, they cost nothing until used.
 *
 * berth_curl_load() opens libcurl.so.4 (RTLD_NOW | RTLD_LOCAL, so that no
 * other code binds to it by accident), looks up the functions below and
 * calls curl_global_init, once per process; later calls give the first
 * result.  The table's types come from curl.h (a compile-time dependency
 * only), so the compiler checks every call made through it:
 *
 *     if (berth_curl_load (err) < 0)
 *       return berth_error_wrap (err, "pull-through cache needs libcurl");
 *     CURL *c = berth_curl.easy_init ();
 *
 * The library is never unloaded.  To use another curl function, add it to
 * the table and to the list in curl-dl.c.
 */
#ifndef BERTH_CURL_DL_H
#define BERTH_CURL_DL_H

#include <curl/curl.h>

#include "error.h"

struct berth_curl
{
  __typeof__ (curl_global_init) *global_init;
  __typeof__ (curl_easy_init) *easy_init;
  __typeof__ (curl_easy_setopt) *easy_setopt;
  __typeof__ (curl_easy_perform) *easy_perform;
  __typeof__ (curl_easy_strerror) *easy_strerror;
  __typeof__ (curl_easy_cleanup) *easy_cleanup;
  __typeof__ (curl_slist_append) *slist_append;
  __typeof__ (curl_slist_free_all) *slist_free_all;
};

/* The functions; valid once berth_curl_load() has returned 0. */
extern struct berth_curl berth_curl;

/* Load libcurl (thread-safe, once).  On failure the message is dlerror's
 * ("libcurl.so.4: cannot open shared object file: ..."). */
int berth_curl_load (berth_error_t *err);

#endif
