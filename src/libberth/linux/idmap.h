/* idmap.h - user namespaces that only carry an id mapping, for idmapped
 * mounts (mount_setattr MOUNT_ATTR_IDMAP). */
#ifndef BERTH_IDMAP_H
#define BERTH_IDMAP_H

#include <stddef.h>

#include "error.h"
#include "oci/config.h"

/* A new user namespace whose uid_map/gid_map are UIDS/GIDS ("containerID
 * hostID size" lines, as linux.uidMappings); returns an fd to it.  A short
 * lived child creates it and exits. */
int linux_idmap_userns (const struct oci_id_map *uids, size_t nuids,
                        const struct oci_id_map *gids, size_t ngids,
                        berth_error_t *err);

#endif
