/* cgroup-v1.c - the cgroup v1 backend (also used for the hybrid layout,
 * where the controllers live in v1 hierarchies and the unified hierarchy
 * only tracks membership and takes "unified" keys).  The plan helpers
 * for the parts that read the same on v1 and v2 live here too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup-internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "utils.h"

#define RES "linux.resources"

/* How long freeze waits for the freezer to settle. */
#define FREEZE_WAIT_MS 5000

/* ------------------------------------------------------------------ */
/* Create                                                               */

static bool
blank (const char *s)
{
  while (*s && isspace ((unsigned char) *s))
    s++;
  return *s == '\0';
}

/* A new cpuset cgroup starts with empty cpus and mems, and a task cannot
 * join it until they are set: inherit them from the parent level.  */
static int
cpuset_inherit (const char *parent, const char *dir, const char *file,
                berth_error_t *err)
{
  cleanup_free char *mine = NULL;
  cleanup_free char *theirs = NULL;
  int r;

  r = cgroup_read (dir, file, &mine, err);
  if (r < 0)
    return r;
  if (!blank (mine))
    return 0;
  r = cgroup_read (parent, file, &theirs, err);
  if (r < 0)
    return r;
  theirs[strcspn (theirs, "\n")] = '\0';
  return cgroup_write (dir, file, theirs, err);
}

static int
v1_init_level (const struct cgroup_hierarchy *h, const char *parent,
               const char *dir, berth_error_t *err)
{
  cleanup_free char *copy = xstrdup (h->controllers);
  char *save = NULL, *tok;
  int r;

  for (tok = strtok_r (copy, ",", &save); tok;
       tok = strtok_r (NULL, ",", &save))
    {
      if (strcmp (tok, "cpuset") != 0)
        continue;
      r = cpuset_inherit (parent, dir, "cpuset.cpus", err);
      if (r == 0)
        r = cpuset_inherit (parent, dir, "cpuset.mems", err);
      return r;
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Plan helpers, shared with the v2 backend                             */

int
cgroup_blkio_device (json_t *item, const char *path, int64_t *major,
                     int64_t *minor, berth_error_t *err)
{
  int r;

  if (!json_is_object (item))
    return berth_make_invalid (err, "%s: expected an object", path);
  r = bjson_int_range (item, path, "major", 0, INT32_MAX, major, err);
  if (r == 0)
    return berth_make_invalid (err, "%s.major: missing", path);
  if (r < 0)
    return r;
  r = bjson_int_range (item, path, "minor", 0, INT32_MAX, minor, err);
  if (r == 0)
    return berth_make_invalid (err, "%s.minor: missing", path);
  return r < 0 ? r : 0;
}

int
cgroup_plan_int (json_t *obj, const char *path, const char *key, int64_t min,
                 struct cgroup_plan *plan, const char *controller,
                 const char *file, unsigned flags, berth_error_t *err)
{
  cleanup_free char *field = NULL;
  int64_t v = 0;
  int r;

  r = bjson_int_range (obj, path, key, min, INT64_MAX, &v, err);
  if (r <= 0)
    return r;
  xasprintf (&field, "%s.%s", path, key);
  if ((flags & CGW_NEG_MAX) && v < 0)
    cgroup_plan_add (plan, controller, field, file, flags, "max");
  else
    cgroup_plan_add (plan, controller, field, file, flags, "%" PRId64, v);
  return 1;
}

int
cgroup_plan_string (json_t *obj, const char *path, const char *key,
                    struct cgroup_plan *plan, const char *controller,
                    const char *file, berth_error_t *err)
{
  cleanup_free char *field = NULL;
  const char *v = NULL;
  int r;

  r = bjson_string (obj, path, key, &v, err);
  if (r <= 0)
    return r;
  xasprintf (&field, "%s.%s", path, key);
  cgroup_plan_add (plan, controller, field, file, 0, "%s", v);
  return 1;
}

int
cgroup_plan_hugetlb (json_t *resources, struct cgroup_plan *plan,
                     const char *suffix, berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;
  int r;

  r = bjson_array (resources, "linux.resources", "hugepageLimits", &arr, err);
  if (r <= 0)
    return r;
  json_array_foreach (arr, i, item)
  {
    cleanup_free char *path = NULL;
    cleanup_free char *file = NULL;
    const char *size = NULL;
    uint64_t limit = 0;

    xasprintf (&path, "linux.resources.hugepageLimits[%zu]", i);
    if (!json_is_object (item))
      return berth_make_invalid (err, "%s: expected an object", path);
    r = bjson_string (item, path, "pageSize", &size, err);
    if (r == 0)
      return berth_make_invalid (err, "%s.pageSize: missing", path);
    if (r < 0)
      return r;
    if (!cgroup_valid_page_size (size))
      return berth_make_invalid (
          err, "%s.pageSize: `%s` is not a size like 2MB", path, size);
    r = bjson_uint64 (item, path, "limit", &limit, err);
    if (r == 0)
      return berth_make_invalid (err, "%s.limit: missing", path);
    if (r < 0)
      return r;
    xasprintf (&file, "hugetlb.%s.%s", size, suffix);
    cgroup_plan_add (plan, "hugetlb", path, file, 0, "%" PRIu64, limit);
  }
  return 0;
}

static int
rdma_entry (const char *dev, json_t *limits, struct cgroup_plan *plan,
            berth_error_t *err)
{
  cleanup_free char *path = NULL;
  int64_t handles = 0, objects = 0;
  int rh, ro;

  xasprintf (&path, "linux.resources.rdma.%s", dev);
  if (*dev == '\0' || dev[strcspn (dev, " \t\n=")] != '\0')
    return berth_make_invalid (err, "%s: invalid device name", path);
  if (!json_is_object (limits))
    return berth_make_invalid (err, "%s: expected an object", path);
  rh = bjson_int_range (limits, path, "hcaHandles", 0, UINT32_MAX, &handles,
                        err);
  if (rh < 0)
    return rh;
  ro = bjson_int_range (limits, path, "hcaObjects", 0, UINT32_MAX, &objects,
                        err);
  if (ro < 0)
    return ro;
  if (rh && ro)
    cgroup_plan_add (plan, "rdma", path, "rdma.max", 0,
                     "%s hca_handle=%" PRId64 " hca_object=%" PRId64, dev,
                     handles, objects);
  else if (rh)
    cgroup_plan_add (plan, "rdma", path, "rdma.max", 0,
                     "%s hca_handle=%" PRId64, dev, handles);
  else if (ro)
    cgroup_plan_add (plan, "rdma", path, "rdma.max", 0,
                     "%s hca_object=%" PRId64, dev, objects);
  return 0;
}

int
cgroup_plan_rdma (json_t *resources, struct cgroup_plan *plan,
                  berth_error_t *err)
{
  json_t *rdma = NULL, *limits;
  const char *dev;
  int r;

  r = bjson_object (resources, "linux.resources", "rdma", &rdma, err);
  if (r <= 0)
    return r;
  json_object_foreach (rdma, dev, limits)
  {
    r = rdma_entry (dev, limits, plan, err);
    if (r < 0)
      return r;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* The plan                                                             */

static int
plan_memory_limits (json_t *mem, struct cgroup_plan *plan, berth_error_t *err)
{
  const char *P = RES ".memory";
  int64_t limit = 0, swap = 0;
  bool check = false, lift;
  struct cgroup_write *w;
  int rl, rs;

  if ((rl = bjson_int64 (mem, P, "limit", &limit, err)) < 0
      || (rs = bjson_int64 (mem, P, "swap", &swap, err)) < 0
      || bjson_bool (mem, P, "checkBeforeUpdate", &check, err) < 0)
    return berth_error_code (*err);
  /* Lifting the memory limit without a swap setting lifts memory+swap
   * too (as runc does): memsw may never be below the memory limit.  */
  lift = rl && limit == -1 && !rs;
  if (rl)
    {
      /* memsw must stay >= the limit: when the new limit is above the
       * current memsw the kernel says EINVAL, and memsw goes first.  */
      w = cgroup_plan_add (
          plan, "memory", RES ".memory.limit", "memory.limit_in_bytes",
          (rs || lift) ? CGW_SWAP_ON_FAIL : 0, "%" PRId64, limit);
      if (check)
        w->usage_file = "memory.usage_in_bytes";
    }
  if (lift)
    cgroup_plan_add (plan, "memory", RES ".memory.limit",
                     "memory.memsw.limit_in_bytes", CGW_OPTIONAL, "-1");
  if (rs)
    cgroup_plan_add (plan, "memory", RES ".memory.swap",
                     "memory.memsw.limit_in_bytes", 0, "%" PRId64, swap);
  return 0;
}

static int
plan_memory (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  const char *P = RES ".memory";
  json_t *mem = NULL;
  bool b = false;
  int r;

  r = bjson_object (res, RES, "memory", &mem, err);
  if (r <= 0)
    return r;
  if (plan_memory_limits (mem, plan, err) < 0
      || cgroup_plan_int (mem, P, "reservation", INT64_MIN, plan, "memory",
                          "memory.soft_limit_in_bytes", 0, err)
             < 0
      /* Kernel memory limits are deprecated (runtime-spec 1.2) and gone
       * from recent kernels: set them only where the file exists.  */
      || cgroup_plan_int (mem, P, "kernel", INT64_MIN, plan, "memory",
                          "memory.kmem.limit_in_bytes", CGW_OPTIONAL, err)
             < 0
      || cgroup_plan_int (mem, P, "kernelTCP", INT64_MIN, plan, "memory",
                          "memory.kmem.tcp.limit_in_bytes", 0, err)
             < 0
      || cgroup_plan_int (mem, P, "swappiness", 0, plan, "memory",
                          "memory.swappiness", 0, err)
             < 0)
    return berth_error_code (*err);
  r = bjson_bool (mem, P, "disableOOMKiller", &b, err);
  if (r < 0)
    return r;
  if (r)
    cgroup_plan_add (plan, "memory", RES ".memory.disableOOMKiller",
                     "memory.oom_control", 0, "%d", b ? 1 : 0);
  /* Hierarchical accounting is the only mode of current kernels, which
   * refuse 0: only "true" is passed on.  */
  r = bjson_bool (mem, P, "useHierarchy", &b, err);
  if (r < 0)
    return r;
  if (r && b)
    cgroup_plan_add (plan, "memory", RES ".memory.useHierarchy",
                     "memory.use_hierarchy", CGW_OPTIONAL, "1");
  return 0;
}

/* Two values of the same controller that bound each other: the first is
 * written first, or second when the kernel refuses it in that order. */
static int
plan_pair (json_t *obj, const char *path, const char *k1, const char *f1,
           const char *k2, const char *f2, struct cgroup_plan *plan,
           berth_error_t *err)
{
  size_t at = plan->n;
  int r1, r2;

  r1 = cgroup_plan_int (obj, path, k1, INT64_MIN, plan, "cpu", f1, 0, err);
  if (r1 < 0)
    return r1;
  r2 = cgroup_plan_int (obj, path, k2, INT64_MIN, plan, "cpu", f2, 0, err);
  if (r2 < 0)
    return r2;
  if (r1 > 0 && r2 > 0)
    plan->w[at].flags |= CGW_SWAP_ON_FAIL;
  return 0;
}

static int
plan_cpu (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  const char *P = RES ".cpu";
  json_t *cpu = NULL;
  int r;

  r = bjson_object (res, RES, "cpu", &cpu, err);
  if (r <= 0)
    return r;
  if (cgroup_plan_string (cpu, P, "cpus", plan, "cpuset", "cpuset.cpus", err)
          < 0
      || cgroup_plan_string (cpu, P, "mems", plan, "cpuset", "cpuset.mems", err)
             < 0
      || cgroup_plan_int (cpu, P, "shares", 0, plan, "cpu", "cpu.shares", 0,
                          err)
             < 0
      || plan_pair (cpu, P, "period", "cpu.cfs_period_us", "quota",
                    "cpu.cfs_quota_us", plan, err)
             < 0
      || cgroup_plan_int (cpu, P, "burst", 0, plan, "cpu", "cpu.cfs_burst_us",
                          0, err)
             < 0
      || plan_pair (cpu, P, "realtimePeriod", "cpu.rt_period_us",
                    "realtimeRuntime", "cpu.rt_runtime_us", plan, err)
             < 0
      || cgroup_plan_int (cpu, P, "idle", INT64_MIN, plan, "cpu", "cpu.idle", 0,
                          err)
             < 0)
    return berth_error_code (*err);
  return 0;
}

int
cgroup_plan_pids (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  json_t *pids = NULL;
  int64_t limit = 0;
  int r;

  r = bjson_object (res, RES, "pids", &pids, err);
  if (r <= 0)
    return r;
  r = bjson_int64 (pids, RES ".pids", "limit", &limit, err);
  if (r <= 0)
    return r;
  /* 0 and -1 both mean "no limit" (0 is how runc reads an unset one). */
  if (limit > 0)
    cgroup_plan_add (plan, "pids", RES ".pids.limit", "pids.max", 0, "%" PRId64,
                     limit);
  else
    cgroup_plan_add (plan, "pids", RES ".pids.limit", "pids.max", 0, "max");
  return 0;
}

static int
plan_weight_devices (json_t *blkio, struct cgroup_plan *plan,
                     berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;
  int r;

  r = bjson_array (blkio, RES ".blockIO", "weightDevice", &arr, err);
  if (r <= 0)
    return r;
  json_array_foreach (arr, i, item)
  {
    cleanup_free char *path = NULL;
    int64_t major, minor, weight, leaf;
    struct cgroup_write *w;
    int rw, rl;

    xasprintf (&path, RES ".blockIO.weightDevice[%zu]", i);
    r = cgroup_blkio_device (item, path, &major, &minor, err);
    if (r < 0)
      return r;
    if ((rw
         = bjson_int_range (item, path, "weight", 0, UINT16_MAX, &weight, err))
            < 0
        || (rl = bjson_int_range (item, path, "leafWeight", 0, UINT16_MAX,
                                  &leaf, err))
               < 0)
      return berth_error_code (*err);
    if (rw)
      {
        w = cgroup_plan_add (plan, "blkio", path, "blkio.weight_device", 0,
                             "%" PRId64 ":%" PRId64 " %" PRId64, major, minor,
                             weight);
        w->alt_file = xstrdup ("blkio.bfq.weight_device");
        w->alt_value = xstrdup (w->value);
      }
    if (rl)
      cgroup_plan_add (plan, "blkio", path, "blkio.leaf_weight_device", 0,
                       "%" PRId64 ":%" PRId64 " %" PRId64, major, minor, leaf);
  }
  return 0;
}

static int
plan_throttle (json_t *blkio, const char *key, const char *file,
               struct cgroup_plan *plan, berth_error_t *err)
{
  json_t *arr = NULL, *item;
  size_t i;
  int r;

  r = bjson_array (blkio, RES ".blockIO", key, &arr, err);
  if (r <= 0)
    return r;
  json_array_foreach (arr, i, item)
  {
    cleanup_free char *path = NULL;
    int64_t major, minor;
    uint64_t rate = 0;

    xasprintf (&path, RES ".blockIO.%s[%zu]", key, i);
    r = cgroup_blkio_device (item, path, &major, &minor, err);
    if (r < 0)
      return r;
    r = bjson_uint64 (item, path, "rate", &rate, err);
    if (r < 0)
      return r;
    if (r == 0)
      return berth_make_invalid (err, "%s.rate: missing", path);
    cgroup_plan_add (plan, "blkio", path, file, 0,
                     "%" PRId64 ":%" PRId64 " %" PRIu64, major, minor, rate);
  }
  return 0;
}

static int
plan_blkio (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  static const char *const throttles[][2] = {
    { "throttleReadBpsDevice", "blkio.throttle.read_bps_device" },
    { "throttleWriteBpsDevice", "blkio.throttle.write_bps_device" },
    { "throttleReadIOPSDevice", "blkio.throttle.read_iops_device" },
    { "throttleWriteIOPSDevice", "blkio.throttle.write_iops_device" },
  };
  const char *P = RES ".blockIO";
  json_t *blkio = NULL;
  int64_t weight = 0;
  size_t i;
  int r;

  r = bjson_object (res, RES, "blockIO", &blkio, err);
  if (r <= 0)
    return r;
  r = bjson_int_range (blkio, P, "weight", 0, UINT16_MAX, &weight, err);
  if (r < 0)
    return r;
  if (r)
    {
      /* Without CFQ the weight is BFQ's, in its own file.  */
      struct cgroup_write *w
          = cgroup_plan_add (plan, "blkio", RES ".blockIO.weight",
                             "blkio.weight", 0, "%" PRId64, weight);
      w->alt_file = xstrdup ("blkio.bfq.weight");
      w->alt_value = xstrdup (w->value);
    }
  if (cgroup_plan_int (blkio, P, "leafWeight", 0, plan, "blkio",
                       "blkio.leaf_weight", 0, err)
          < 0
      || plan_weight_devices (blkio, plan, err) < 0)
    return berth_error_code (*err);
  for (i = 0; i < ARRAY_SIZE (throttles); i++)
    {
      r = plan_throttle (blkio, throttles[i][0], throttles[i][1], plan, err);
      if (r < 0)
        return r;
    }
  return 0;
}

static int
plan_network (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  const char *P = RES ".network";
  json_t *net = NULL, *arr = NULL, *item;
  size_t i;
  int r;

  r = bjson_object (res, RES, "network", &net, err);
  if (r <= 0)
    return r;
  r = cgroup_plan_int (net, P, "classID", 0, plan, "net_cls", "net_cls.classid",
                       0, err);
  if (r < 0)
    return r;
  r = bjson_array (net, P, "priorities", &arr, err);
  if (r <= 0)
    return r;
  json_array_foreach (arr, i, item)
  {
    cleanup_free char *path = NULL;
    const char *name = NULL;
    int64_t prio = 0;

    xasprintf (&path, RES ".network.priorities[%zu]", i);
    if (!json_is_object (item))
      return berth_make_invalid (err, "%s: expected an object", path);
    if (bjson_string (item, path, "name", &name, err) < 0
        || bjson_int_range (item, path, "priority", 0, UINT32_MAX, &prio, err)
               < 0)
      return berth_error_code (*err);
    if (name == NULL || *name == '\0' || name[strcspn (name, " \n")])
      return berth_make_invalid (err, "%s.name: invalid interface", path);
    cgroup_plan_add (plan, "net_prio", path, "net_prio.ifpriomap", 0,
                     "%s %" PRId64, name, prio);
  }
  return 0;
}

static int
plan_devices (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  cleanup_free struct cgroup_device_rule *rules = NULL;
  bool present = false;
  size_t i, n = 0;
  int r;

  r = cgroup_parse_devices (res, &rules, &n, &present, err);
  if (r < 0 || !present)
    return r;
  /* Start from nothing: the list (the runtime's defaults included) is
   * the whole policy.  */
  cgroup_plan_add (plan, "devices", RES ".devices", "devices.deny", 0, "a");
  for (i = 0; i < n; i++)
    {
      cleanup_free char *field = NULL;
      char buf[64];

      cgroup_format_device_rule (&rules[i], buf, sizeof (buf));
      xasprintf (&field, RES ".devices[%zu]", i);
      cgroup_plan_add (plan, "devices", field,
                       rules[i].allow ? "devices.allow" : "devices.deny", 0,
                       "%s", buf);
    }
  return 0;
}

int
cgroup_v1_plan (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  int (*const steps[]) (json_t *, struct cgroup_plan *, berth_error_t *) = {
    plan_memory,  plan_cpu,     cgroup_plan_pids, plan_blkio,
    plan_network, plan_devices, cgroup_plan_rdma, cgroup_plan_unified,
  };
  size_t i;
  int r;

  r = cgroup_plan_hugetlb (res, plan, "limit_in_bytes", err);
  for (i = 0; r == 0 && i < ARRAY_SIZE (steps); i++)
    r = steps[i](res, plan, err);
  return r;
}

static int
v1_apply (struct berth_cgroup *cg, json_t *resources, berth_error_t *err)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  int r;

  r = cgroup_v1_plan (resources, &plan, err);
  if (r == 0)
    r = cgroup_plan_run (cg, &plan, err);
  cgroup_plan_release (&plan);
  return r;
}

/* ------------------------------------------------------------------ */
/* Freeze                                                               */

static int
v1_freeze (struct berth_cgroup *cg, bool frozen, berth_error_t *err)
{
  const char *dir = cgroup_v1_dir (cg, "freezer");
  const char *want = frozen ? "FROZEN" : "THAWED";
  uint64_t deadline = now_ns () + FREEZE_WAIT_MS * 1000000ull;
  unsigned i;
  int r;

  if (dir == NULL)
    {
      const char *udir = cgroup_unified_dir (cg);
      if (udir)
        return cgroup_v2_freeze_dir (udir, frozen, err);
      return berth_make_error (err, EOPNOTSUPP,
                               "the freezer cgroup controller is not "
                               "mounted");
    }
  for (i = 0;; i++)
    {
      cleanup_free char *state = NULL;

      /* A task forked while the cgroup was FREEZING can leave it stuck
       * there: writing the state again makes the kernel retry.  */
      if (i % 10 == 0)
        {
          r = cgroup_write (dir, "freezer.state", want, err);
          if (r < 0)
            return r;
        }
      r = cgroup_read (dir, "freezer.state", &state, err);
      if (r < 0)
        return r;
      if (strncmp (state, want, strlen (want)) == 0)
        return 0;
      if (now_ns () >= deadline)
        break;
      cgroup_sleep_ms (i < 10 ? 1 : 10);
    }
  if (frozen)
    cgroup_write (dir, "freezer.state", "THAWED", NULL);
  return berth_make_error (err, ETIMEDOUT,
                           "`%s/freezer.state` did not "
                           "become %s",
                           dir, want);
}

/* ------------------------------------------------------------------ */
/* Stats                                                                */

void
cgroup_parse_blkio_v1 (const char *text, json_t *arr)
{
  cleanup_free char *copy = xstrdup (text);
  char *save = NULL, *line;

  for (line = strtok_r (copy, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    {
      unsigned long long major, minor, value;
      char op[32];

      if (sscanf (line, "%llu:%llu %31s %llu", &major, &minor, op, &value) == 4)
        json_array_append_new (arr,
                               cgroup_blkio_entry (major, minor, op, value));
      else if (sscanf (line, "%llu:%llu %llu", &major, &minor, &value) == 3)
        json_array_append_new (arr,
                               cgroup_blkio_entry (major, minor, "", value));
    }
}

static json_t *
read_list (const char *dir, const char *file)
{
  cleanup_free char *text = NULL;

  if (dir == NULL || cgroup_read (dir, file, &text, NULL) < 0)
    return NULL;
  return cgroup_parse_number_list (text);
}

/* cpuacct.stat holds clock ticks; older kernels have nothing else. */
static void
usage_from_ticks (const char *acct, json_t *usage)
{
  cleanup_json json_t *st = json_object ();
  cleanup_free char *text = NULL;
  long hz = sysconf (_SC_CLK_TCK);
  json_t *v;

  if (hz <= 0 || cgroup_read (acct, "cpuacct.stat", &text, NULL) < 0)
    return;
  cgroup_parse_flat_keyed (text, st);
  if ((v = json_object_get (st, "user")))
    json_object_set_new (
        usage, "user",
        json_integer (json_integer_value (v) * (1000000000 / hz)));
  if ((v = json_object_get (st, "system")))
    json_object_set_new (
        usage, "kernel",
        json_integer (json_integer_value (v) * (1000000000 / hz)));
}

static json_t *
cpu_usage (const char *acct)
{
  json_t *usage = json_object (), *list;

  if (acct == NULL)
    return usage;
  cgroup_stat_u64 (usage, "total", acct, "cpuacct.usage");
  if ((list = read_list (acct, "cpuacct.usage_percpu")))
    json_object_set_new (usage, "percpu", list);
  if ((list = read_list (acct, "cpuacct.usage_percpu_sys")))
    json_object_set_new (usage, "percpu_kernel", list);
  if ((list = read_list (acct, "cpuacct.usage_percpu_user")))
    json_object_set_new (usage, "percpu_user", list);
  cgroup_stat_u64 (usage, "kernel", acct, "cpuacct.usage_sys");
  cgroup_stat_u64 (usage, "user", acct, "cpuacct.usage_user");
  if (json_object_get (usage, "user") == NULL)
    usage_from_ticks (acct, usage);
  return usage;
}

static json_t *
cpu_throttling (const char *cpu)
{
  cleanup_json json_t *st = json_object ();
  cleanup_free char *text = NULL;
  json_t *thr = json_object ();

  if (cpu == NULL || cgroup_read (cpu, "cpu.stat", &text, NULL) < 0)
    return thr;
  cgroup_parse_flat_keyed (text, st);
  json_object_set (thr, "periods", json_object_get (st, "nr_periods"));
  json_object_set (thr, "throttledPeriods",
                   json_object_get (st, "nr_throttled"));
  json_object_set (thr, "throttledTime",
                   json_object_get (st, "throttled_time"));
  return thr;
}

static void
stats_cpu (struct berth_cgroup *cg, json_t *out)
{
  json_object_set_new (out, "usage", cpu_usage (cgroup_v1_dir (cg, "cpuacct")));
  json_object_set_new (out, "throttling",
                       cpu_throttling (cgroup_v1_dir (cg, "cpu")));
}

static json_t *
memory_entry (const char *dir, const char *prefix)
{
  static const char *const keys[][2] = {
    { "limit", "limit_in_bytes" },
    { "usage", "usage_in_bytes" },
    { "max", "max_usage_in_bytes" },
    { "failcnt", "failcnt" },
  };
  json_t *e = json_object ();
  size_t i;

  for (i = 0; i < ARRAY_SIZE (keys); i++)
    {
      cleanup_free char *file = NULL;
      xasprintf (&file, "%s%s", prefix, keys[i][1]);
      cgroup_stat_u64 (e, keys[i][0], dir, file);
    }
  return e;
}

static void
stats_memory (struct berth_cgroup *cg, json_t *out)
{
  const char *dir = cgroup_v1_dir (cg, "memory");
  cleanup_free char *text = NULL;
  json_t *raw, *cache;

  if (dir == NULL)
    return;
  json_object_set_new (out, "usage", memory_entry (dir, "memory."));
  json_object_set_new (out, "swap", memory_entry (dir, "memory.memsw."));
  json_object_set_new (out, "kernel", memory_entry (dir, "memory.kmem."));
  json_object_set_new (out, "kernelTCP",
                       memory_entry (dir, "memory.kmem.tcp."));
  raw = json_object ();
  if (cgroup_read (dir, "memory.stat", &text, NULL) == 0)
    cgroup_parse_flat_keyed (text, raw);
  if ((cache = json_object_get (raw, "cache")))
    json_object_set (out, "cache", cache);
  json_object_set_new (out, "raw", raw);
}

static void
stats_blkio (struct berth_cgroup *cg, json_t *out)
{
  /* CFQ files first, then BFQ's, then the throttle counters, which every
   * kernel has (the order runc uses).  */
  static const char *const members[][2] = {
    { "ioServiceBytesRecursive", "io_service_bytes_recursive" },
    { "ioServicedRecursive", "io_serviced_recursive" },
    { "ioQueuedRecursive", "io_queued_recursive" },
    { "ioServiceTimeRecursive", "io_service_time_recursive" },
    { "ioWaitTimeRecursive", "io_wait_time_recursive" },
    { "ioMergedRecursive", "io_merged_recursive" },
    { "ioTimeRecursive", "time_recursive" },
    { "sectorsRecursive", "sectors_recursive" },
  };
  static const char *const prefixes[]
      = { "blkio.", "blkio.bfq.", "blkio.throttle." };
  const char *dir = cgroup_v1_dir (cg, "blkio");
  size_t i, k;

  if (dir == NULL)
    return;
  for (i = 0; i < ARRAY_SIZE (members); i++)
    for (k = 0; k < ARRAY_SIZE (prefixes); k++)
      {
        cleanup_free char *file = NULL;
        cleanup_free char *text = NULL;
        json_t *arr;

        xasprintf (&file, "%s%s", prefixes[k], members[i][1]);
        if (cgroup_read (dir, file, &text, NULL) < 0)
          continue;
        arr = json_array ();
        cgroup_parse_blkio_v1 (text, arr);
        json_object_set_new (out, members[i][0], arr);
        if (json_array_size (arr) > 0)
          break;
      }
}

static void
hugetlb_fill (json_t *entry, const char *dir, const char *size)
{
  static const char *const keys[][2] = {
    { "usage", "usage_in_bytes" },
    { "max", "max_usage_in_bytes" },
    { "failcnt", "failcnt" },
  };
  size_t i;

  for (i = 0; i < ARRAY_SIZE (keys); i++)
    {
      cleanup_free char *file = NULL;
      xasprintf (&file, "hugetlb.%s.%s", size, keys[i][1]);
      cgroup_stat_u64 (entry, keys[i][0], dir, file);
    }
}

static int
v1_stats (struct berth_cgroup *cg, json_t *out, berth_error_t *err)
{
  json_t *cpu = json_object (), *mem = json_object (), *pids = json_object ();
  json_t *blkio = json_object (), *huge = json_object ();
  const char *pdir = cgroup_v1_dir (cg, "pids");
  uint64_t v;

  stats_cpu (cg, cpu);
  stats_memory (cg, mem);
  cgroup_stat_u64 (pids, "current", pdir, "pids.current");
  /* runc reports an unlimited pids.max as 0.  */
  if (pdir && cgroup_read_u64 (pdir, "pids.max", &v, NULL) == 0)
    json_object_set_new (pids, "limit",
                         cgroup_json_u64 (v == UINT64_MAX ? 0 : v));
  stats_blkio (cg, blkio);
  cgroup_stat_hugetlb (huge, cgroup_v1_dir (cg, "hugetlb"), "usage_in_bytes",
                       hugetlb_fill);
  json_object_set_new (out, "cpu", cpu);
  json_object_set_new (out, "memory", mem);
  json_object_set_new (out, "pids", pids);
  json_object_set_new (out, "blkio", blkio);
  json_object_set_new (out, "hugetlb", huge);
  return 0;
}

const struct cgroup_ops cgroup_v1_ops = {
  .init_level = v1_init_level,
  .apply = v1_apply,
  .freeze = v1_freeze,
  .stats = v1_stats,
};
