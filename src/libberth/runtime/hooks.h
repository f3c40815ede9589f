/* hooks.h - run OCI hooks with the container state on their stdin. */
#ifndef BERTH_HOOKS_H
#define BERTH_HOOKS_H

#include "error.h"
#include "oci/config.h"

/* Run every hook in HOOKS in order; KIND names them in errors.  Each gets
 * STATE_JSON on stdin; a non-zero exit, a signal or its timeout is an error
 * and the remaining hooks are not run. */
int berth_hooks_run (const struct oci_hooks *hooks, const char *kind,
                     const char *state_json, berth_error_t *err);

/* Run every hook in HOOKS even when some fail (poststart, poststop: the
 * spec makes their failures warnings); WARN gets each failure. */
void berth_hooks_run_all (const struct oci_hooks *hooks, const char *kind,
                          const char *state_json,
                          void (*warn) (void *, const char *), void *data);

const char *berth_hook_kind_name (enum oci_hook_kind k);

#endif
