/* caps.h - switch to the process user and capability sets. */
#ifndef BERTH_CAPS_H
#define BERTH_CAPS_H

#include <stdint.h>

#include "error.h"
#include "oci/config.h"

/* Capabilities this process may hand on: its bounding set.  A config that
 * asks for more (a privileged config lists every capability, but this host
 * may lack some, e.g. CAP_SYS_RESOURCE) gets the intersection instead of a
 * failure, as runc and crun do. */
uint64_t linux_caps_available (void);

/* Drop the bounding set to P's, change to P's uid/gid/additionalGids while
 * keeping capabilities across the uid change, then set the effective,
 * permitted, inheritable and ambient sets.  When P has no capabilities
 * object every capability is dropped (non-root semantics). */
int linux_caps_apply_user (const struct oci_process *p, berth_error_t *err);

#endif
