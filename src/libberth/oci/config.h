/* config.h - the OCI runtime configuration (config.json), spec 1.2, Linux.
 *
 * oci_config_parse() validates the whole document and fills a typed struct.
 * Subtrees that one module alone interprets (linux.resources for cgroups,
 * linux.seccomp) stay as borrowed json_t pointers into cfg->doc and are
 * parsed by that module with the json.h accessors.  The struct owns
 * everything; oci_config_free() releases it.
 */
#ifndef BERTH_OCI_CONFIG_H
#define BERTH_OCI_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Namespace kinds in the order they are joined. */
enum oci_ns_kind
{
  OCI_NS_USER,
  OCI_NS_PID,
  OCI_NS_NET,
  OCI_NS_IPC,
  OCI_NS_UTS,
  OCI_NS_MOUNT,
  OCI_NS_CGROUP,
  OCI_NS_TIME,
  OCI_NS_COUNT
};

struct oci_namespace
{
  bool present; /* listed in linux.namespaces */
  char *path;   /* join this one instead of creating (NULL: create) */
};

struct oci_id_map
{
  uint32_t container_id, host_id, size;
};

struct oci_mount
{
  char *destination;
  char *type;
  char *source;
  char **options;              /* the raw options, for types we pass through */
  unsigned long flags;         /* MS_* set by the options */
  unsigned long clear;         /* MS_* cleared by the options ("rw", "suid") */
  unsigned long propagation;   /* MS_SHARED... | MS_REC, 0 when none */
  uint64_t attr_set, attr_clr; /* MOUNT_ATTR_* for recursive options */
  char *data; /* the options that are not flags, comma-joined */
  bool bind;  /* bind or rbind */
  bool rec;   /* rbind */
  struct oci_id_map *uid_map, *gid_map; /* idmapped mounts */
  size_t uid_map_len, gid_map_len;
};

struct oci_device
{
  char *path;
  char type; /* 'c', 'b', 'u', 'p' */
  int64_t major, minor;
  uint32_t file_mode;
  bool has_mode;
  uint32_t uid, gid;
  bool has_uid, has_gid;
};

struct oci_rlimit
{
  int resource;
  char *name;
  uint64_t soft, hard;
};

struct oci_hook
{
  char *path;
  char **args;
  char **env;
  int timeout; /* seconds, 0 = none */
};

enum oci_hook_kind
{
  OCI_HOOK_PRESTART,
  OCI_HOOK_CREATE_RUNTIME,
  OCI_HOOK_CREATE_CONTAINER,
  OCI_HOOK_START_CONTAINER,
  OCI_HOOK_POSTSTART,
  OCI_HOOK_POSTSTOP,
  OCI_HOOK_COUNT
};

struct oci_hooks
{
  struct oci_hook *list;
  size_t len;
};

struct oci_sysctl
{
  char *key, *value;
};

struct oci_caps
{
  /* bit masks indexed by capability number */
  uint64_t bounding, effective, permitted, inheritable, ambient;
  bool present; /* process.capabilities was given */
};

struct oci_process
{
  bool terminal;
  uint32_t console_width, console_height;
  char *cwd;
  char **args;
  char *command_line; /* Windows only: refused on Linux */
  char **env;
  uint32_t uid, gid;
  int64_t umask; /* -1 when not set */
  uint32_t *additional_gids;
  size_t additional_gids_len;
  struct oci_caps caps;
  struct oci_rlimit *rlimits;
  size_t rlimits_len;
  bool no_new_privileges;
  char *apparmor_profile;
  char *selinux_label;
  int64_t oom_score_adj;
  bool has_oom_score_adj;
  /* scheduler */
  bool has_scheduler;
  int sched_policy;
  int sched_nice, sched_priority;
  uint64_t sched_flags;
  uint64_t sched_runtime, sched_deadline, sched_period;
  /* ioPriority */
  bool has_io_priority;
  int io_class, io_priority;
  /* execCPUAffinity */
  char *cpu_affinity_initial, *cpu_affinity_final;
};

struct oci_config
{
  json_t *doc; /* the parsed document; borrowed pointers below point in it */
  char *oci_version;
  char *root_path; /* absolute after oci_config_resolve_root */
  bool root_readonly;
  char *hostname, *domainname;
  struct oci_process *process;
  struct oci_mount *mounts;
  size_t mounts_len;
  struct oci_hooks hooks[OCI_HOOK_COUNT];
  json_t *annotations; /* borrowed */

  /* linux */
  struct oci_namespace ns[OCI_NS_COUNT];
  struct oci_id_map *uid_mappings, *gid_mappings;
  size_t uid_mappings_len, gid_mappings_len;
  struct oci_device *devices;
  size_t devices_len;
  char *cgroups_path;
  json_t *resources; /* borrowed: linux.resources */
  json_t *seccomp;   /* borrowed: linux.seccomp */
  struct oci_sysctl *sysctl;
  size_t sysctl_len;
  char **masked_paths, **readonly_paths;
  unsigned long rootfs_propagation; /* MS_* flags, 0 = default (rprivate) */
  char *mount_label;
  bool has_personality;
  unsigned long personality; /* PER_LINUX / PER_LINUX32 */
  bool has_time_offsets;
  int64_t boottime_secs, monotonic_secs;
  uint32_t boottime_nanosecs, monotonic_nanosecs;
  bool has_intel_rdt;
};

/* Parse DATA (LEN bytes) from SOURCE (for messages).  Validates types,
 * ranges and names; anything unknown to Linux or unsupported gets an error
 * naming the field. */
int oci_config_parse (const char *data, size_t len, const char *source,
                      struct oci_config **out, berth_error_t *err);

/* Read BUNDLE/config.json, parse it, and make root.path absolute. */
int oci_config_load_bundle (const char *bundle, struct oci_config **out,
                            berth_error_t *err);

/* Parse a process object alone (for `exec --process`). */
int oci_process_parse (json_t *obj, const char *path, struct oci_process **out,
                       berth_error_t *err);

void oci_config_free (struct oci_config *cfg);
void oci_process_free (struct oci_process *p);
void cleanup_oci_configp (struct oci_config **p);
#define cleanup_oci_config __attribute__ ((cleanup (cleanup_oci_configp)))
void cleanup_oci_processp (struct oci_process **p);
#define cleanup_oci_process __attribute__ ((cleanup (cleanup_oci_processp)))

/* Capability name ("CAP_SYS_ADMIN") to number, -1 when unknown. */
int oci_cap_from_name (const char *name);
const char *oci_cap_name (int cap);
/* Highest capability number this library knows. */
int oci_cap_last (void);

/* Parse one mount option into M; returns true if it was a known flag. */
bool oci_mount_apply_option (struct oci_mount *m, const char *opt);

/* Namespace type names as in the spec ("pid", "network", ...). */
const char *oci_ns_name (enum oci_ns_kind k);
int oci_ns_clone_flag (enum oci_ns_kind k);

#endif
