/* cgroup-internal.h - shared between cgroup.c and the v1 / v2 backends.
 *
 * Not part of the library API.  cgroup.c owns the layout detection, path
 * resolution, directory management and the "write plan" executor; each
 * backend turns OCI resources into a plan (a list of file writes, a pure
 * function of the JSON) and implements freeze and stats.  The pure parts
 * are exposed here so tests/unit/test_cgroup.c can reach them.
 *
 * Where things live: cgroup.c has the layout, paths, file helpers, the
 * plan executor and the stats helpers; cgroup-v1.c the v1 backend and the
 * plan helpers both backends share; cgroup-v2.c the v2 backend, the
 * device rules (parsed for both) with their eBPF compiler, and the v1 ->
 * v2 conversions.
 */
#ifndef BERTH_CGROUP_INTERNAL_H
#define BERTH_CGROUP_INTERNAL_H

#include <jansson.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup.h"
#include "error.h"

enum cgroup_mode
{
  CGROUP_MODE_NONE = 0,
  CGROUP_MODE_V1,
  CGROUP_MODE_V2,
  CGROUP_MODE_HYBRID,
};

/* One mounted hierarchy. */
struct cgroup_hierarchy
{
  char *mountpoint;  /* "/sys/fs/cgroup/cpu,cpuacct" */
  char *controllers; /* v1: "cpu,cpuacct" or "name=systemd"; v2: NULL */
  bool unified;      /* the cgroup2 hierarchy */
  bool root_is_top;  /* the mount shows the hierarchy root ("/") */
};

struct cgroup_layout
{
  enum cgroup_mode mode;
  size_t n;
  struct cgroup_hierarchy *h;
};

/* Parse the text of /proc/self/mountinfo into LAYOUT (released with
 * cgroup_layout_release).  Fails with ENOENT when no cgroup is mounted. */
int cgroup_layout_parse (const char *mountinfo, struct cgroup_layout *layout,
                         berth_error_t *err);
void cgroup_layout_release (struct cgroup_layout *layout);

struct cgroup_ops;

struct berth_cgroup
{
  const struct cgroup_layout *layout; /* the cached layout, borrowed */
  const struct cgroup_ops *ops;
  char *path;         /* normalized relative path, "/berth/abc" */
  char *prune_parent; /* default parent whose empty levels destroy removes */
  char **dirs;        /* dirs[i]: layout->h[i].mountpoint + path */
  bool *created;      /* which dirs[i] this object's create made */
};

/* Build an object for LAYOUT without touching the filesystem. */
struct berth_cgroup *cgroup_new (const struct cgroup_layout *layout,
                                 const char *rel_path,
                                 const char *prune_parent);

/* Directory of CG in the hierarchy holding v1 CONTROLLER ("memory",
 * "name=systemd"), or NULL when that controller is not mounted. */
const char *cgroup_v1_dir (struct berth_cgroup *cg, const char *controller);
/* Directory of CG in the unified hierarchy, or NULL on pure v1. */
const char *cgroup_unified_dir (struct berth_cgroup *cg);

/* Resolve the OCI cgroupsPath (see berth_cgroup_create) into a normalized
 * relative path "/a/b".  *OUT is allocated. */
int cgroup_resolve_path (const char *path, const char *parent, const char *id,
                         char **out, berth_error_t *err);
/* Normalize an absolute or relative path into "/a/b" (no "." / empty
 * components); ".." is refused; "" and "/" give "". */
int cgroup_normalize_path (const char *path, char **out, berth_error_t *err);

/* File helpers.  Errors name the whole path. */
int cgroup_read (const char *dir, const char *file, char **out,
                 berth_error_t *err);
/* Read a single number; "max" reads as UINT64_MAX. */
int cgroup_read_u64 (const char *dir, const char *file, uint64_t *out,
                     berth_error_t *err);
int cgroup_write (const char *dir, const char *file, const char *value,
                  berth_error_t *err);

/* A write plan: what apply writes, in order.  Each entry is one write(2)
 * of VALUE to FILE in the directory of CONTROLLER. */
enum
{
  /* A missing FILE is skipped (deprecated knobs). */
  CGW_OPTIONAL = 1 << 0,
  /* When the write fails with EINVAL, do the next entry first and then
   * retry this one (limits that constrain each other: memory and
   * memory+swap, cfs period and quota, rt period and runtime). */
  CGW_SWAP_ON_FAIL = 1 << 1,
  /* v2 cpu.max with only a period: keep the current quota. */
  CGW_KEEP_QUOTA = 1 << 2,
  /* A "unified" key: written to the unified hierarchy; the error for a
   * missing file names the key. */
  CGW_UNIFIED = 1 << 3,
  /* For cgroup_plan_int: a negative value is written as "max". */
  CGW_NEG_MAX = 1 << 4,
};

struct cgroup_write
{
  const char *controller; /* v1 hierarchy / v2 controller; NULL: none */
  char *field;            /* OCI field for messages, "memory.limit" */
  char *file;
  char *value;
  char *alt_file; /* tried when FILE does not exist */
  char *alt_value;
  /* memory.checkBeforeUpdate: refuse a limit below the current usage read
   * from this file. */
  const char *usage_file;
  unsigned flags;
};

struct cgroup_plan
{
  struct cgroup_write *w;
  size_t n, alloc;
};
#define CGROUP_PLAN_INIT                                                       \
  {                                                                            \
    NULL, 0, 0                                                                 \
  }

void cgroup_plan_release (struct cgroup_plan *plan);
/* Append an entry; VALUE from FMT.  Returns the entry for extra fields. */
struct cgroup_write *cgroup_plan_add (struct cgroup_plan *plan,
                                      const char *controller, const char *field,
                                      const char *file, unsigned flags,
                                      const char *fmt, ...)
    __attribute__ ((format (printf, 6, 7)));
/* Append the "unified" map of RESOURCES (keys are validated). */
int cgroup_plan_unified (json_t *resources, struct cgroup_plan *plan,
                         berth_error_t *err);
/* Append rdma.max entries (same format on v1 and v2). */
int cgroup_plan_rdma (json_t *resources, struct cgroup_plan *plan,
                      berth_error_t *err);
/* Append KEY of OBJ (the object at PATH) when set: an integer >= MIN, or
 * a string.  Return 1 when added, 0 when unset, negative on bad input. */
int cgroup_plan_int (json_t *obj, const char *path, const char *key,
                     int64_t min, struct cgroup_plan *plan,
                     const char *controller, const char *file, unsigned flags,
                     berth_error_t *err);
int cgroup_plan_string (json_t *obj, const char *path, const char *key,
                        struct cgroup_plan *plan, const char *controller,
                        const char *file, berth_error_t *err);
/* Append pids.limit (pids.max on v1 and v2; 0 and -1 mean "max"). */
int cgroup_plan_pids (json_t *resources, struct cgroup_plan *plan,
                      berth_error_t *err);
/* Append hugepageLimits as hugetlb.<size>.SUFFIX entries. */
int cgroup_plan_hugetlb (json_t *resources, struct cgroup_plan *plan,
                         const char *suffix, berth_error_t *err);
/* major/minor of a blockIO weightDevice / throttle entry ITEM at PATH. */
int cgroup_blkio_device (json_t *item, const char *path, int64_t *major,
                         int64_t *minor, berth_error_t *err);
/* Execute PLAN against CG (controller availability is checked first, so a
 * plan naming a missing controller writes nothing). */
int cgroup_plan_run (struct berth_cgroup *cg, struct cgroup_plan *plan,
                     berth_error_t *err);

/* The plans, pure functions of the JSON (the caller releases PLAN also on
 * failure). */
int cgroup_v1_plan (json_t *resources, struct cgroup_plan *plan,
                    berth_error_t *err);
int cgroup_v2_plan (json_t *resources, struct cgroup_plan *plan,
                    berth_error_t *err);

/* One linux.resources.devices entry.  MAJOR/MINOR -1 mean "*". */
struct cgroup_device_rule
{
  bool allow;
  char type; /* 'a', 'b' or 'c' */
  int64_t major;
  int64_t minor;
  unsigned access; /* CGROUP_DEV_* bits */
};
enum
{
  CGROUP_DEV_MKNOD = 1,
  CGROUP_DEV_READ = 2,
  CGROUP_DEV_WRITE = 4,
  CGROUP_DEV_ALL = 7,
};

/* Parse linux.resources.devices; *RULES is NULL when the key is absent
 * (*PRESENT false) and an empty array when it is [].  Caller frees. */
int cgroup_parse_devices (json_t *resources, struct cgroup_device_rule **rules,
                          size_t *n, bool *present, berth_error_t *err);
/* "c 1:3 rwm" (v1 devices.allow syntax); "a" for the all-devices rule.
 * BUF must hold at least 64 bytes. */
void cgroup_format_device_rule (const struct cgroup_device_rule *rule,
                                char *buf, size_t size);

/* Compile RULES (OCI order: later entries win, no match denies) into a
 * BPF_PROG_TYPE_CGROUP_DEVICE program.  *INSNS is allocated. */
void cgroup_devices_bpf_build (const struct cgroup_device_rule *rules, size_t n,
                               struct bpf_insn **insns, size_t *count);

/* Compile RULES, load the program and make it the only device filter
 * attached to the v2 cgroup DIR. */
int cgroup_v2_set_devices (const char *dir,
                           const struct cgroup_device_rule *rules, size_t n,
                           berth_error_t *err);

/* Conversions from v1-style values to v2, as runc does them. */
uint64_t cgroup_shares_to_weight (uint64_t shares);
uint64_t cgroup_blkio_weight_to_io_weight (uint64_t weight);
/* memory.swap.max from OCI swap (memory+swap) and limit, both 0 when unset.
 * *OUT: -1 "max", 0 "leave unset", else bytes of swap. */
int cgroup_swap_to_v2 (int64_t swap, int64_t limit, int64_t *out,
                       berth_error_t *err);
/* A hugepage size as in OCI pageSize ("2MB", "1GB", "64KB"). */
bool cgroup_valid_page_size (const char *s);

/* Stats helpers (pure parsers of cgroupfs file contents). */
/* "key value" lines into OBJ as integers. */
void cgroup_parse_flat_keyed (const char *text, json_t *obj);
/* Whitespace separated numbers into a new array. */
json_t *cgroup_parse_number_list (const char *text);
/* {"major","minor","op","value"} */
json_t *cgroup_blkio_entry (unsigned long long major, unsigned long long minor,
                            const char *op, uint64_t value);
/* v1 blkio "8:0 Read 10" lines into ARR as {major,minor,op,value}. */
void cgroup_parse_blkio_v1 (const char *text, json_t *arr);
/* v2 io.stat into BLKIO {"ioServiceBytesRecursive":[...],
 * "ioServicedRecursive":[...]}. */
void cgroup_parse_io_stat (const char *text, json_t *blkio);
/* A value to report: UINT64_MAX (and anything above INT64_MAX) becomes
 * INT64_MAX, since JSON integers here are 64-bit signed. */
json_t *cgroup_json_u64 (uint64_t v);
/* Set KEY in OBJ from the number in DIR/FILE; nothing when unreadable. */
void cgroup_stat_u64 (json_t *obj, const char *key, const char *dir,
                      const char *file);
/* For every "hugetlb.<size>.SUFFIX" file in DIR, set OBJ[size] to a new
 * object filled by FILL. */
void cgroup_stat_hugetlb (json_t *obj, const char *dir, const char *suffix,
                          void (*fill) (json_t *entry, const char *dir,
                                        const char *size));

/* A backend. */
struct cgroup_ops
{
  /* Called for every directory level create walks through (after mkdir,
   * also for levels that existed): H is the hierarchy, PARENT the level
   * above DIR. */
  int (*init_level) (const struct cgroup_hierarchy *h, const char *parent,
                     const char *dir, berth_error_t *err);
  int (*apply) (struct berth_cgroup *cg, json_t *resources, berth_error_t *err);
  int (*freeze) (struct berth_cgroup *cg, bool frozen, berth_error_t *err);
  int (*stats) (struct berth_cgroup *cg, json_t *out, berth_error_t *err);
};

/* v1 is also the backend of the hybrid layout. */
extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;

/* cgroup.freeze + cgroup.events in DIR (v2; also used on hybrid when the v1
 * freezer is not mounted). */
int cgroup_v2_freeze_dir (const char *dir, bool frozen, berth_error_t *err);

/* Sleep for MS milliseconds (EINTR-safe). */
void cgroup_sleep_ms (unsigned ms);

#endif
