/* curl-dl.c - dlopen libcurl once and fill the table of its functions (see
 * curl-dl.h). */
#include "curl-dl.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define LIBCURL_SONAME "libcurl.so.4"

struct berth_curl berth_curl;

_Static_assert(sizeof (berth_curl.easy_init) == sizeof (void *),
               "function pointers are as large as data pointers");

#define SYMBOL(f)                                                              \
  {                                                                            \
    "curl_" #f, offsetof (struct berth_curl, f)                                \
  }

static const struct
{
  const char *name;
  size_t offset;
} symbols[] = {
  SYMBOL (global_init),  SYMBOL (easy_init),      SYMBOL (easy_setopt),
  SYMBOL (easy_perform), SYMBOL (easy_strerror),  SYMBOL (easy_cleanup),
  SYMBOL (slist_append), SYMBOL (slist_free_all),
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
/* The outcome of the one load: "" when it worked, else why not. */
static char load_error[512];

static void
fail (const char *what)
{
  snprintf (load_error, sizeof (load_error), "%s",
            what && *what ? what : "cannot load " LIBCURL_SONAME);
}

/* berth-registry is a static executable (src/registry/meson.build): its C
 * library is linked in, and libcurl brings the system's own copy as a
 * dependency.  Both run in one process, which glibc allows when they are
 * the same release; after an upgrade of the system's C library, the
 * binary has to be rebuilt before it can load libcurl.  In a dynamic
 * build the two are one library and the check always passes.  */
static int
same_libc (void *h)
{
  const char *(*theirs) (void);
  void *sym;

  sym = dlsym (h, "gnu_get_libc_version");
  if (sym == NULL)
    return 1; /* not glibc: nothing to compare */
  memcpy (&theirs, &sym, sizeof (sym));
  if (strcmp (theirs (), gnu_get_libc_version ()) == 0)
    return 1;
  snprintf (load_error, sizeof (load_error),
            LIBCURL_SONAME " uses the C library %s, but this binary was "
                           "linked with %s: rebuild it",
            theirs (), gnu_get_libc_version ());
  return 0;
}

static void
load (void)
{
  struct berth_curl t;
  CURLcode res;
  void *h;
  size_t i;

  h = dlopen (LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      fail (dlerror ());
      return;
    }
  if (!same_libc (h))
    {
      dlclose (h);
      return;
    }
  for (i = 0; i < sizeof (symbols) / sizeof (symbols[0]); i++)
    {
      void *sym;

      dlerror ();
      sym = dlsym (h, symbols[i].name);
      if (sym == NULL)
        {
          fail (dlerror ());
          dlclose (h);
          return;
        }
      /* POSIX: a function's address may travel through a void *.  */
      memcpy ((char *) &t + symbols[i].offset, &sym, sizeof (sym));
    }
  res = t.global_init (CURL_GLOBAL_DEFAULT);
  if (res != CURLE_OK)
    {
      snprintf (load_error, sizeof (load_error), "curl_global_init: %s",
                t.easy_strerror (res));
      return; /* half initialised: never unloaded */
    }
  berth_curl = t;
}

int
berth_curl_load (berth_error_t *err)
{
  pthread_once (&load_once, load);
  if (load_error[0])
    return berth_make_error (err, 0, "%s", load_error);
  return 0;
}
