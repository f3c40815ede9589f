/* cgroup-v2.c - the cgroup v2 (unified) backend.
 *
 * OCI resources are written in their v1 form by most callers; they are
 * converted here the way runc does, so that a workload gets the same
 * limits from either runtime.  Devices have no files on v2: the rules are
 * compiled into an eBPF program attached to the container's cgroup.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "json.h"
#include "utils.h"

#define RES "linux.resources"

/* How long freeze waits for cgroup.events to report the new state. */
#define FREEZE_WAIT_MS 5000

/* ------------------------------------------------------------------ */
/* Device rules (shared with v1)                                        */

static int
parse_access (const char *s, unsigned *out)
{
  unsigned acc = 0;

  if (*s == '\0')
    return -EINVAL;
  for (; *s; s++)
    {
      switch (*s)
        {
        case 'r':
          acc |= CGROUP_DEV_READ;
          break;
        case 'w':
          acc |= CGROUP_DEV_WRITE;
          break;
        case 'm':
          acc |= CGROUP_DEV_MKNOD;
          break;
        default:
          return -EINVAL;
        }
    }
  *out = acc;
  return 0;
}

static int
parse_device_rule (json_t *item, const char *path,
                   struct cgroup_device_rule *rule, berth_error_t *err)
{
  const char *type = "a", *access = "rwm";
  int r;

  if (!json_is_object (item))
    return berth_make_invalid (err, "%s: expected an object", path);
  r = bjson_bool (item, path, "allow", &rule->allow, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "%s.allow: missing", path);
  if (bjson_string (item, path, "type", &type, err) < 0
      || bjson_string (item, path, "access", &access, err) < 0)
    return berth_error_code (*err);
  if (strlen (type) != 1 || strchr ("abc", *type) == NULL)
    return berth_make_invalid (err, "%s.type: `%s` is not a, b or c", path,
                               type);
  rule->type = *type;
  if (parse_access (access, &rule->access) < 0)
    return berth_make_invalid (err,
                               "%s.access: `%s` is not a combination of r, w "
                               "and m",
                               path, access);
  rule->major = rule->minor = -1;
  /* Majors and minors fit 32 bits; the BPF program compares immediates. */
  if (bjson_int_range (item, path, "major", -1, INT32_MAX, &rule->major, err)
          < 0
      || bjson_int_range (item, path, "minor", -1, INT32_MAX, &rule->minor, err)
             < 0)
    return berth_error_code (*err);
  return 0;
}

int
cgroup_parse_devices (json_t *resources, struct cgroup_device_rule **rules,
                      size_t *n, bool *present, berth_error_t *err)
{
  cleanup_free struct cgroup_device_rule *v = NULL;
  json_t *arr = NULL, *item;
  size_t i;
  int r;

  *rules = NULL;
  *n = 0;
  *present = false;
  r = bjson_array (resources, "linux.resources", "devices", &arr, err);
  if (r <= 0)
    return r;
  v = xmalloc0 ((json_array_size (arr) + 1) * sizeof (*v));
  json_array_foreach (arr, i, item)
  {
    cleanup_free char *path = NULL;

    xasprintf (&path, "linux.resources.devices[%zu]", i);
    r = parse_device_rule (item, path, &v[i], err);
    if (r < 0)
      return r;
  }
  *n = json_array_size (arr);
  *rules = steal_pointer (&v);
  *present = true;
  return 0;
}

void
cgroup_format_device_rule (const struct cgroup_device_rule *rule, char *buf,
                           size_t size)
{
  char major[24], minor[24], acc[4];
  size_t k = 0;

  if (rule->type == 'a')
    {
      snprintf (buf, size, "a");
      return;
    }
  if (rule->major < 0)
    strcpy (major, "*");
  else
    snprintf (major, sizeof (major), "%" PRId64, rule->major);
  if (rule->minor < 0)
    strcpy (minor, "*");
  else
    snprintf (minor, sizeof (minor), "%" PRId64, rule->minor);
  if (rule->access & CGROUP_DEV_READ)
    acc[k++] = 'r';
  if (rule->access & CGROUP_DEV_WRITE)
    acc[k++] = 'w';
  if (rule->access & CGROUP_DEV_MKNOD)
    acc[k++] = 'm';
  acc[k] = '\0';
  snprintf (buf, size, "%c %s:%s %s", rule->type, major, minor, acc);
}

/* ------------------------------------------------------------------ */
/* Conversions                                                          */

/* cpu.shares [2, 262144] onto cpu.weight [1, 10000], linearly, as runc
 * and crun do (so a workload gets the same weight under either). */
uint64_t
cgroup_shares_to_weight (uint64_t shares)
{
  if (shares == 0)
    return 0;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

/* blkio.weight [10, 1000] onto io.weight [1, 10000]. */
uint64_t
cgroup_blkio_weight_to_io_weight (uint64_t weight)
{
  if (weight == 0)
    return 0;
  if (weight < 10)
    weight = 10;
  if (weight > 1000)
    weight = 1000;
  return 1 + ((weight - 10) * 9999) / 990;
}

int
cgroup_swap_to_v2 (int64_t swap, int64_t limit, int64_t *out,
                   berth_error_t *err)
{
  /* Unlimited memory with no swap setting means unlimited swap too, the
   * way v1 memsw follows an unlimited memory limit.  */
  if (limit == -1 && swap == 0)
    {
      *out = -1;
      return 0;
    }
  if (swap == -1 || swap == 0)
    {
      *out = swap;
      return 0;
    }
  if (swap < -1)
    return berth_make_invalid (err,
                               "linux.resources.memory.swap: invalid value "
                               "%" PRId64,
                               swap);
  if (limit <= 0)
    return berth_make_invalid (err, "linux.resources.memory.swap: a swap limit "
                                    "needs a memory limit");
  if (swap < limit)
    return berth_make_invalid (err,
                               "linux.resources.memory.swap: %" PRId64
                               " is below memory.limit %" PRId64
                               " (swap is memory+swap)",
                               swap, limit);
  *out = swap - limit;
  return 0;
}

bool
cgroup_valid_page_size (const char *s)
{
  size_t digits = strspn (s, "0123456789");

  if (digits == 0 || digits > 10)
    return false;
  s += digits;
  return (s[0] == 'K' || s[0] == 'M' || s[0] == 'G') && s[1] == 'B'
         && s[2] == '\0';
}

/* ------------------------------------------------------------------ */
/* Stats parsers                                                        */

void
cgroup_parse_io_stat (const char *text, json_t *blkio)
{
  static const struct
  {
    const char *key, *member, *op;
  } map[] = {
    { "rbytes", "ioServiceBytesRecursive", "Read" },
    { "wbytes", "ioServiceBytesRecursive", "Write" },
    { "dbytes", "ioServiceBytesRecursive", "Discard" },
    { "rios", "ioServicedRecursive", "Read" },
    { "wios", "ioServicedRecursive", "Write" },
    { "dios", "ioServicedRecursive", "Discard" },
  };
  cleanup_free char *copy = xstrdup (text);
  char *save = NULL, *line;
  size_t i;

  for (i = 0; i < ARRAY_SIZE (map); i++)
    if (json_object_get (blkio, map[i].member) == NULL)
      json_object_set_new (blkio, map[i].member, json_array ());
  for (line = strtok_r (copy, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    {
      unsigned long long major, minor;
      char *save2 = NULL, *tok;
      if (sscanf (line, "%llu:%llu", &major, &minor) != 2)
        continue;
      strtok_r (line, " ", &save2);
      while ((tok = strtok_r (NULL, " ", &save2)))
        {
          char *eq = strchr (tok, '=');
          if (eq == NULL)
            continue;
          *eq = '\0';
          for (i = 0; i < ARRAY_SIZE (map); i++)
            if (strcmp (tok, map[i].key) == 0)
              json_array_append_new (
                  json_object_get (blkio, map[i].member),
                  cgroup_blkio_entry (major, minor, map[i].op,
                                      strtoull (eq + 1, NULL, 10)));
        }
    }
}

/* ------------------------------------------------------------------ */
/* Create                                                               */

/* Make the controllers of the hierarchy usable in DIR by enabling, in
 * its PARENT, those the parent has but does not yet hand down.  Failures
 * are not fatal here (a controller may be refused, e.g. cpu while a
 * realtime task sits in the parent): apply names the missing controller
 * when a resource needs it.  */
static int
v2_init_level (const struct cgroup_hierarchy *h, const char *parent,
               const char *dir, berth_error_t *err)
{
  cleanup_free char *avail = NULL;
  cleanup_free char *enabled = NULL;
  char *save = NULL, *tok;

  if (cgroup_read (parent, "cgroup.controllers", &avail, NULL) < 0
      || cgroup_read (parent, "cgroup.subtree_control", &enabled, NULL) < 0)
    return 0;
  for (tok = strtok_r (avail, " \n", &save); tok;
       tok = strtok_r (NULL, " \n", &save))
    {
      char buf[64];
      const char *p = enabled;
      bool on = false;

      while (*p && !on)
        {
          size_t len = strcspn (p, " \n");
          on = len == strlen (tok) && strncmp (p, tok, len) == 0;
          p += len;
          p += strspn (p, " \n");
        }
      if (on)
        continue;
      snprintf (buf, sizeof (buf), "+%s", tok);
      cgroup_write (parent, "cgroup.subtree_control", buf, NULL);
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* The plan                                                             */

static int
plan_memory (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  json_t *mem = NULL;
  int64_t limit = 0, swap = 0, swap_max = 0, ignored = 0;
  uint64_t swappiness = 0;
  bool check = false;
  int r, rl, rs;

  r = bjson_object (res, RES, "memory", &mem, err);
  if (r <= 0)
    return r;
  if ((rl = bjson_int64 (mem, RES ".memory", "limit", &limit, err)) < 0
      || (rs = bjson_int64 (mem, RES ".memory", "swap", &swap, err)) < 0
      || bjson_bool (mem, RES ".memory", "checkBeforeUpdate", &check, err) < 0
      /* No v2 equivalent; ignored as runc does, but still type-checked. */
      || bjson_int64 (mem, RES ".memory", "kernel", &ignored, err) < 0
      || bjson_int64 (mem, RES ".memory", "kernelTCP", &ignored, err) < 0
      || bjson_uint64 (mem, RES ".memory", "swappiness", &swappiness, err) < 0
      || cgroup_swap_to_v2 (rs ? swap : 0, rl ? limit : 0, &swap_max, err) < 0)
    return berth_error_code (*err);
  if (rl)
    {
      struct cgroup_write *w;
      if (limit < 0)
        w = cgroup_plan_add (plan, "memory", RES ".memory.limit", "memory.max",
                             0, "max");
      else
        w = cgroup_plan_add (plan, "memory", RES ".memory.limit", "memory.max",
                             0, "%" PRId64, limit);
      if (check)
        w->usage_file = "memory.current";
    }
  /* Without swap accounting there is no memory.swap.max: only an
   * explicit swap setting must find it.  */
  if (swap_max < 0)
    cgroup_plan_add (plan, "memory", RES ".memory.swap", "memory.swap.max",
                     rs ? 0 : CGW_OPTIONAL, "max");
  else if (swap_max > 0)
    cgroup_plan_add (plan, "memory", RES ".memory.swap", "memory.swap.max", 0,
                     "%" PRId64, swap_max);
  r = cgroup_plan_int (mem, RES ".memory", "reservation", INT64_MIN, plan,
                       "memory", "memory.low", CGW_NEG_MAX, err);
  return r < 0 ? r : 0;
}

static int
plan_cpu_max (json_t *cpu, struct cgroup_plan *plan, berth_error_t *err)
{
  const char *field = RES ".cpu.quota";
  char quota[24] = "max";
  int64_t q = 0;
  uint64_t period = 0;
  int rq, rp;

  if ((rq = bjson_int64 (cpu, RES ".cpu", "quota", &q, err)) < 0
      || (rp = bjson_uint64 (cpu, RES ".cpu", "period", &period, err)) < 0)
    return berth_error_code (*err);
  if (rq && q > 0)
    snprintf (quota, sizeof (quota), "%" PRId64, q);
  if (rq && rp)
    cgroup_plan_add (plan, "cpu", field, "cpu.max", 0, "%s %" PRIu64, quota,
                     period);
  else if (rq)
    cgroup_plan_add (plan, "cpu", field, "cpu.max", 0, "%s", quota);
  else if (rp)
    cgroup_plan_add (plan, "cpu", RES ".cpu.period", "cpu.max", CGW_KEEP_QUOTA,
                     "%" PRIu64, period);
  return 0;
}

static int
plan_cpu (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  json_t *cpu = NULL;
  int64_t rt_runtime = 0;
  uint64_t shares = 0, rt_period = 0;
  int r;

  r = bjson_object (res, RES, "cpu", &cpu, err);
  if (r <= 0)
    return r;
  if (bjson_uint64 (cpu, RES ".cpu", "shares", &shares, err) < 0
      || bjson_uint64 (cpu, RES ".cpu", "realtimePeriod", &rt_period, err) < 0
      || bjson_int64 (cpu, RES ".cpu", "realtimeRuntime", &rt_runtime, err) < 0)
    return berth_error_code (*err);
  if (rt_period || rt_runtime)
    return berth_make_error (err, EOPNOTSUPP,
                             RES ".cpu.realtimePeriod/realtimeRuntime: "
                                 "realtime limits are not supported on cgroup "
                                 "v2");
  if (shares)
    cgroup_plan_add (plan, "cpu", RES ".cpu.shares", "cpu.weight", 0,
                     "%" PRIu64, cgroup_shares_to_weight (shares));
  if (plan_cpu_max (cpu, plan, err) < 0
      || cgroup_plan_int (cpu, RES ".cpu", "burst", 0, plan, "cpu",
                          "cpu.max.burst", 0, err)
             < 0
      || cgroup_plan_int (cpu, RES ".cpu", "idle", INT64_MIN, plan, "cpu",
                          "cpu.idle", 0, err)
             < 0
      || cgroup_plan_string (cpu, RES ".cpu", "cpus", plan, "cpuset",
                             "cpuset.cpus", err)
             < 0
      || cgroup_plan_string (cpu, RES ".cpu", "mems", plan, "cpuset",
                             "cpuset.mems", err)
             < 0)
    return berth_error_code (*err);
  return 0;
}

/* BFQ takes the v1 weight scale as is; io.weight (iocost) has its own.
 * DEV is "" for the default weight or "MAJ:MIN ".  */
static void
plan_io_weight (struct cgroup_plan *plan, const char *field, const char *dev,
                int64_t weight)
{
  struct cgroup_write *w;

  w = cgroup_plan_add (plan, "io", field, "io.bfq.weight", 0, "%s%" PRId64, dev,
                       weight);
  w->alt_file = xstrdup ("io.weight");
  xasprintf (&w->alt_value, "%s%" PRIu64, *dev ? dev : "default ",
             cgroup_blkio_weight_to_io_weight ((uint64_t) weight));
}

/* One entry of weightDevice (KEY NULL) or of a throttle list (io.max
 * KEY=rate; a rate of 0 lifts the limit, as it does on v1).  */
static int
plan_io_device (json_t *item, const char *path, const char *key,
                struct cgroup_plan *plan, berth_error_t *err)
{
  int64_t major, minor, v = 0;
  char dev[48];
  int r;

  r = cgroup_blkio_device (item, path, &major, &minor, err);
  if (r < 0)
    return r;
  snprintf (dev, sizeof (dev), "%" PRId64 ":%" PRId64 " ", major, minor);
  if (key == NULL)
    {
      /* leafWeight has no v2 counterpart (ignored, as by runc).  */
      r = bjson_int_range (item, path, "weight", 0, UINT16_MAX, &v, err);
      if (r > 0)
        plan_io_weight (plan, path, dev, v);
      return r < 0 ? r : 0;
    }
  r = bjson_int_range (item, path, "rate", 0, INT64_MAX, &v, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "%s.rate: missing", path);
  if (v == 0)
    cgroup_plan_add (plan, "io", path, "io.max", 0, "%s%s=max", dev, key);
  else
    cgroup_plan_add (plan, "io", path, "io.max", 0, "%s%s=%" PRId64, dev, key,
                     v);
  return 0;
}

static int
plan_io_devices (json_t *blkio, struct cgroup_plan *plan, berth_error_t *err)
{
  static const char *const lists[][2] = {
    { "weightDevice", NULL },
    { "throttleReadBpsDevice", "rbps" },
    { "throttleWriteBpsDevice", "wbps" },
    { "throttleReadIOPSDevice", "riops" },
    { "throttleWriteIOPSDevice", "wiops" },
  };
  size_t t, i;

  for (t = 0; t < ARRAY_SIZE (lists); t++)
    {
      json_t *arr = NULL, *item;
      int r = bjson_array (blkio, RES ".blockIO", lists[t][0], &arr, err);
      if (r < 0)
        return r;
      json_array_foreach (arr, i, item)
      {
        cleanup_free char *path = NULL;

        xasprintf (&path, RES ".blockIO.%s[%zu]", lists[t][0], i);
        r = plan_io_device (item, path, lists[t][1], plan, err);
        if (r < 0)
          return r;
      }
    }
  return 0;
}

static int
plan_io (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  json_t *blkio = NULL;
  int64_t weight = 0, leaf = 0;
  int r;

  r = bjson_object (res, RES, "blockIO", &blkio, err);
  if (r <= 0)
    return r;
  r = bjson_int_range (blkio, RES ".blockIO", "weight", 0, UINT16_MAX, &weight,
                       err);
  if (r < 0)
    return r;
  if (r && weight)
    plan_io_weight (plan, RES ".blockIO.weight", "", weight);
  r = bjson_int_range (blkio, RES ".blockIO", "leafWeight", 0, UINT16_MAX,
                       &leaf, err);
  if (r < 0)
    return r;
  return plan_io_devices (blkio, plan, err);
}

static int
plan_network (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  json_t *net = NULL, *prio = NULL;
  int64_t classid = 0;
  int r, rc;

  r = bjson_object (res, RES, "network", &net, err);
  if (r <= 0)
    return r;
  if ((rc = bjson_int64 (net, RES ".network", "classID", &classid, err)) < 0
      || bjson_array (net, RES ".network", "priorities", &prio, err) < 0)
    return berth_error_code (*err);
  if (rc || json_array_size (prio) > 0)
    return berth_make_error (err, EOPNOTSUPP,
                             RES ".network is set but cgroup v2 has no "
                                 "net_cls / net_prio controller");
  return 0;
}

int
cgroup_v2_plan (json_t *res, struct cgroup_plan *plan, berth_error_t *err)
{
  int (*const steps[]) (json_t *, struct cgroup_plan *, berth_error_t *) = {
    plan_memory,  plan_cpu,         cgroup_plan_pids,    plan_io,
    plan_network, cgroup_plan_rdma, cgroup_plan_unified,
  };
  size_t i;
  int r;

  r = cgroup_plan_hugetlb (res, plan, "max", err);
  for (i = 0; r == 0 && i < ARRAY_SIZE (steps); i++)
    r = steps[i](res, plan, err);
  return r;
}

/* ------------------------------------------------------------------ */
/* Devices: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program                 */

/* Registers: r1 the context (struct bpf_cgroup_dev_ctx), r2 the device
 * type, r3 the requested access, r4 major, r5 minor, r6 scratch. */
#define INSN(c, d, s, o, i)                                                    \
  ((struct bpf_insn){                                                          \
      .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(d, s, o) INSN (BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV32_REG(d, s) INSN (BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define ALU32_IMM(op, d, i) INSN (BPF_ALU | (op) | BPF_K, d, 0, 0, i)
#define MOV64_IMM(d, i) INSN (BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define JMP_IMM(op, d, i, o) INSN (BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define EXIT_INSN() INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* A jump to the next rule, patched once the rule's length is known. */
#define JUMP_NEXT INT16_MIN

/* The block for one rule: on a match it returns the rule's verdict, else
 * it falls through to the next block.  Returns its length (<= 9); sets
 * *ALWAYS when the rule matches everything.  */
static size_t
rule_block (const struct cgroup_device_rule *rule, struct bpf_insn *b,
            bool *always)
{
  size_t n = 0, i;
  unsigned acc = rule->access & CGROUP_DEV_ALL;

  /* Type "a" means every device whatever the rest says, as in v1.  */
  if (rule->type != 'a')
    {
      int type = rule->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
      b[n++] = JMP_IMM (BPF_JNE, 2, type, JUMP_NEXT);
      if (acc != CGROUP_DEV_ALL && rule->allow)
        {
          /* Allow only when every requested bit is in the rule.  */
          b[n++] = MOV32_REG (6, 3);
          b[n++] = ALU32_IMM (BPF_AND, 6, (int32_t) (~acc & CGROUP_DEV_ALL));
          b[n++] = JMP_IMM (BPF_JNE, 6, 0, JUMP_NEXT);
        }
      else if (acc != CGROUP_DEV_ALL)
        {
          /* Deny as soon as one requested bit is in the rule.  */
          b[n++] = MOV32_REG (6, 3);
          b[n++] = ALU32_IMM (BPF_AND, 6, (int32_t) acc);
          b[n++] = JMP_IMM (BPF_JEQ, 6, 0, JUMP_NEXT);
        }
      if (rule->major >= 0)
        b[n++] = JMP_IMM (BPF_JNE, 4, (int32_t) rule->major, JUMP_NEXT);
      if (rule->minor >= 0)
        b[n++] = JMP_IMM (BPF_JNE, 5, (int32_t) rule->minor, JUMP_NEXT);
    }
  *always = n == 0;
  b[n++] = MOV64_IMM (0, rule->allow ? 1 : 0);
  b[n++] = EXIT_INSN ();
  for (i = 0; i < n; i++)
    if (b[i].off == JUMP_NEXT)
      b[i].off = (int16_t) (n - i - 1);
  return n;
}

void
cgroup_devices_bpf_build (const struct cgroup_device_rule *rules, size_t n,
                          struct bpf_insn **insns, size_t *count)
{
  struct bpf_insn *v = xmalloc ((8 + 9 * n) * sizeof (*v));
  size_t k = 0, i;
  bool always = false;

  v[k++] = LDX_W (2, 1, 0);
  v[k++] = MOV32_REG (3, 2);
  v[k++] = ALU32_IMM (BPF_AND, 2, 0xffff);
  v[k++] = ALU32_IMM (BPF_RSH, 3, 16);
  v[k++] = LDX_W (4, 1, 4);
  v[k++] = LDX_W (5, 1, 8);
  /* The last matching rule wins: test from the end, first match returns.
   * Rules before one that matches everything are unreachable, and the
   * verifier refuses unreachable code: stop there.  */
  for (i = n; i-- > 0 && !always;)
    k += rule_block (&rules[i], v + k, &always);
  if (!always)
    {
      v[k++] = MOV64_IMM (0, 0);
      v[k++] = EXIT_INSN ();
    }
  *insns = v;
  *count = k;
}

static int
sys_bpf (int cmd, union bpf_attr *attr)
{
  return (int) syscall (SYS_bpf, cmd, attr, sizeof (*attr));
}

static int
bpf_load (const struct bpf_insn *insns, size_t n, berth_error_t *err)
{
  static char license[] = "Apache-2.0";
  cleanup_free char *log = NULL;
  union bpf_attr attr;
  int fd, e;

  memset (&attr, 0, sizeof (attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t) (uintptr_t) insns;
  attr.insn_cnt = (uint32_t) n;
  attr.license = (uint64_t) (uintptr_t) license;
  fd = sys_bpf (BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  e = errno;
  if (e == EPERM || e == ENOSYS)
    return berth_make_error (err, e, "load the eBPF device filter");
  /* Load again with the verifier log, for the message.  */
  log = xmalloc0 (4096);
  attr.log_buf = (uint64_t) (uintptr_t) log;
  attr.log_size = 4096;
  attr.log_level = 1;
  fd = sys_bpf (BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  return berth_make_error (err, e, "load the eBPF device filter (%.300s)", log);
}

/* Programs attached to the cgroup by an earlier apply. */
static int
bpf_query (int cgfd, uint32_t *ids, uint32_t *n, berth_error_t *err)
{
  union bpf_attr attr;

  memset (&attr, 0, sizeof (attr));
  attr.query.target_fd = (uint32_t) cgfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t) (uintptr_t) ids;
  attr.query.prog_cnt = *n;
  if (sys_bpf (BPF_PROG_QUERY, &attr) < 0)
    return berth_make_error (err, errno, "query eBPF device filters");
  *n = attr.query.prog_cnt;
  return 0;
}

static int
bpf_detach_id (int cgfd, uint32_t id, berth_error_t *err)
{
  cleanup_close int fd = -1;
  union bpf_attr attr;

  memset (&attr, 0, sizeof (attr));
  attr.prog_id = id;
  fd = sys_bpf (BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0)
    return errno == ENOENT
               ? 0
               : berth_make_error (err, errno, "open eBPF program %u", id);
  memset (&attr, 0, sizeof (attr));
  attr.target_fd = (uint32_t) cgfd;
  attr.attach_bpf_fd = (uint32_t) fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  if (sys_bpf (BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
    return berth_make_error (err, errno, "detach eBPF program %u", id);
  return 0;
}

/* Attach the new filter next to the old ones (BPF_F_ALLOW_MULTI: while
 * both are attached a device needs both to agree, so the switch never
 * lets more through than either), then detach the old ones.  */
static int
bpf_replace (int cgfd, int prog, berth_error_t *err)
{
  uint32_t ids[64], n = ARRAY_SIZE (ids), i;
  union bpf_attr attr;
  int r;

  r = bpf_query (cgfd, ids, &n, err);
  if (r < 0)
    return r;
  memset (&attr, 0, sizeof (attr));
  attr.target_fd = (uint32_t) cgfd;
  attr.attach_bpf_fd = (uint32_t) prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf (BPF_PROG_ATTACH, &attr) < 0)
    return berth_make_error (err, errno, "attach the eBPF device filter");
  for (i = 0; i < n && i < ARRAY_SIZE (ids); i++)
    {
      r = bpf_detach_id (cgfd, ids[i], err);
      if (r < 0)
        return r;
    }
  return 0;
}

int
cgroup_v2_set_devices (const char *dir, const struct cgroup_device_rule *rules,
                       size_t n, berth_error_t *err)
{
  cleanup_free struct bpf_insn *insns = NULL;
  cleanup_close int cgfd = -1;
  cleanup_close int prog = -1;
  size_t count = 0;
  int r;

  cgroup_devices_bpf_build (rules, n, &insns, &count);
  prog = bpf_load (insns, count, err);
  if (prog < 0)
    return prog;
  cgfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0)
    return berth_make_error (err, errno, "open `%s`", dir);
  r = bpf_replace (cgfd, prog, err);
  if (r < 0)
    return berth_error_wrap (err, RES ".devices: `%s`", dir);
  return 0;
}

static int
v2_apply (struct berth_cgroup *cg, json_t *resources, berth_error_t *err)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  cleanup_free struct cgroup_device_rule *rules = NULL;
  bool present = false;
  size_t n = 0;
  int r;

  r = cgroup_parse_devices (resources, &rules, &n, &present, err);
  if (r == 0)
    r = cgroup_v2_plan (resources, &plan, err);
  if (r == 0)
    r = cgroup_plan_run (cg, &plan, err);
  cgroup_plan_release (&plan);
  if (r == 0 && present)
    r = cgroup_v2_set_devices (cgroup_unified_dir (cg), rules, n, err);
  return r;
}

/* ------------------------------------------------------------------ */
/* Freeze                                                               */

static int
frozen_state (const char *dir, berth_error_t *err)
{
  cleanup_json json_t *ev = json_object ();
  cleanup_free char *text = NULL;
  int r;

  r = cgroup_read (dir, "cgroup.events", &text, err);
  if (r < 0)
    return r;
  cgroup_parse_flat_keyed (text, ev);
  return json_integer_value (json_object_get (ev, "frozen")) ? 1 : 0;
}

int
cgroup_v2_freeze_dir (const char *dir, bool frozen, berth_error_t *err)
{
  uint64_t deadline = now_ns () + FREEZE_WAIT_MS * 1000000ull;
  unsigned i;
  int r;

  r = cgroup_write (dir, "cgroup.freeze", frozen ? "1" : "0", err);
  if (r < 0)
    return r;
  for (i = 0;; i++)
    {
      r = frozen_state (dir, err);
      if (r < 0)
        return r;
      if (r == (frozen ? 1 : 0))
        return 0;
      if (now_ns () >= deadline)
        break;
      cgroup_sleep_ms (i < 10 ? 1 : 10);
    }
  if (frozen)
    cgroup_write (dir, "cgroup.freeze", "0", NULL);
  return berth_make_error (err, ETIMEDOUT,
                           "`%s/cgroup.events` did not report frozen %d", dir,
                           frozen ? 1 : 0);
}

static int
v2_freeze (struct berth_cgroup *cg, bool frozen, berth_error_t *err)
{
  return cgroup_v2_freeze_dir (cgroup_unified_dir (cg), frozen, err);
}

/* ------------------------------------------------------------------ */
/* Stats                                                                */

static json_t *
read_keyed (const char *dir, const char *file)
{
  cleanup_free char *text = NULL;
  json_t *obj = json_object ();

  if (cgroup_read (dir, file, &text, NULL) == 0)
    cgroup_parse_flat_keyed (text, obj);
  return obj;
}

static uint64_t
keyed_u64 (json_t *obj, const char *key)
{
  json_t *v = json_object_get (obj, key);
  return v ? (uint64_t) json_integer_value (v) : 0;
}

static void
stats_cpu (const char *dir, json_t *out)
{
  cleanup_json json_t *st = read_keyed (dir, "cpu.stat");
  json_t *usage = json_object (), *thr = json_object ();

  /* v2 counts microseconds; the v1-shaped output is in nanoseconds.  */
  if (json_object_get (st, "usage_usec"))
    {
      json_object_set_new (
          usage, "total",
          cgroup_json_u64 (keyed_u64 (st, "usage_usec") * 1000));
      json_object_set_new (
          usage, "kernel",
          cgroup_json_u64 (keyed_u64 (st, "system_usec") * 1000));
      json_object_set_new (
          usage, "user", cgroup_json_u64 (keyed_u64 (st, "user_usec") * 1000));
    }
  if (json_object_get (st, "nr_periods"))
    {
      json_object_set (thr, "periods", json_object_get (st, "nr_periods"));
      json_object_set (thr, "throttledPeriods",
                       json_object_get (st, "nr_throttled"));
      json_object_set_new (
          thr, "throttledTime",
          cgroup_json_u64 (keyed_u64 (st, "throttled_usec") * 1000));
    }
  json_object_set_new (out, "usage", usage);
  json_object_set_new (out, "throttling", thr);
}

static uint64_t
sum_limits (uint64_t a, uint64_t b)
{
  return (a == UINT64_MAX || b == UINT64_MAX || a + b < a) ? UINT64_MAX : a + b;
}

static void
stats_memory (const char *dir, json_t *out)
{
  cleanup_json json_t *events = read_keyed (dir, "memory.events");
  json_t *usage = json_object (), *swap = json_object ();
  json_t *raw = read_keyed (dir, "memory.stat"), *v;
  uint64_t cur = 0, max = 0, scur = 0, smax = 0;

  cgroup_stat_u64 (usage, "usage", dir, "memory.current");
  cgroup_stat_u64 (usage, "limit", dir, "memory.max");
  cgroup_stat_u64 (usage, "max", dir, "memory.peak");
  if ((v = json_object_get (events, "max")))
    json_object_set (usage, "failcnt", v);
  /* runc reports swap as memory+swap, like v1 memsw.  */
  if (cgroup_read_u64 (dir, "memory.current", &cur, NULL) == 0
      && cgroup_read_u64 (dir, "memory.swap.current", &scur, NULL) == 0)
    json_object_set_new (swap, "usage", cgroup_json_u64 (cur + scur));
  if (cgroup_read_u64 (dir, "memory.max", &max, NULL) == 0
      && cgroup_read_u64 (dir, "memory.swap.max", &smax, NULL) == 0)
    json_object_set_new (swap, "limit",
                         cgroup_json_u64 (sum_limits (max, smax)));
  if ((v = json_object_get (raw, "file")))
    json_object_set (out, "cache", v);
  json_object_set_new (out, "usage", usage);
  json_object_set_new (out, "swap", swap);
  json_object_set_new (out, "raw", raw);
}

static void
hugetlb_fill (json_t *entry, const char *dir, const char *size)
{
  cleanup_free char *cur = NULL;
  cleanup_free char *events = NULL;
  cleanup_json json_t *ev = NULL;

  xasprintf (&cur, "hugetlb.%s.current", size);
  xasprintf (&events, "hugetlb.%s.events", size);
  cgroup_stat_u64 (entry, "usage", dir, cur);
  ev = read_keyed (dir, events);
  json_object_set_new (entry, "failcnt",
                       cgroup_json_u64 (keyed_u64 (ev, "max")));
}

static int
v2_stats (struct berth_cgroup *cg, json_t *out, berth_error_t *err)
{
  const char *dir = cgroup_unified_dir (cg);
  json_t *cpu = json_object (), *mem = json_object (), *pids = json_object ();
  json_t *blkio = json_object (), *huge = json_object ();
  cleanup_free char *io = NULL;
  uint64_t v;

  stats_cpu (dir, cpu);
  stats_memory (dir, mem);
  cgroup_stat_u64 (pids, "current", dir, "pids.current");
  if (cgroup_read_u64 (dir, "pids.max", &v, NULL) == 0)
    json_object_set_new (pids, "limit",
                         cgroup_json_u64 (v == UINT64_MAX ? 0 : v));
  if (cgroup_read (dir, "io.stat", &io, NULL) == 0)
    cgroup_parse_io_stat (io, blkio);
  cgroup_stat_hugetlb (huge, dir, "current", hugetlb_fill);
  json_object_set_new (out, "cpu", cpu);
  json_object_set_new (out, "memory", mem);
  json_object_set_new (out, "pids", pids);
  json_object_set_new (out, "blkio", blkio);
  json_object_set_new (out, "hugetlb", huge);
  return 0;
}

const struct cgroup_ops cgroup_v2_ops = {
  .init_level = v2_init_level,
  .apply = v2_apply,
  .freeze = v2_freeze,
  .stats = v2_stats,
};
