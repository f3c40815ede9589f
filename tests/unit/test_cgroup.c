/* test_cgroup.c - the pure parts of the cgroup module: layout detection
 * from mountinfo text, path resolution, v1 -> v2 conversions, the write
 * plans built from linux.resources, device rules and their eBPF program,
 * the stats parsers, and the plan executor against a fake cgroupfs in a
 * temporary directory.  Needs no privileges and no real cgroup.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "linux/cgroup-internal.h"
#include "utils.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static json_t *
parse (const char *text)
{
  json_error_t jerr;
  json_t *j = json_loads (text, 0, &jerr);
  if (j == NULL)
    fail_msg ("bad test JSON: %s: %s", jerr.text, text);
  return j;
}

/* The Nth entry writing FILE, or NULL. */
static struct cgroup_write *
find (struct cgroup_plan *plan, const char *file, int nth)
{
  size_t i;

  for (i = 0; i < plan->n; i++)
    if (strcmp (plan->w[i].file, file) == 0 && nth-- == 0)
      return &plan->w[i];
  return NULL;
}

static const char *
value_of (struct cgroup_plan *plan, const char *file)
{
  struct cgroup_write *w = find (plan, file, 0);
  return w ? w->value : NULL;
}

typedef int (*plan_fn) (json_t *, struct cgroup_plan *, berth_error_t *);

/* Build a plan from TEXT; returns the result, the error message (if any)
 * in *MSG (caller frees). */
static int
build (plan_fn fn, const char *text, struct cgroup_plan *plan, char **msg)
{
  berth_error_t err = NULL;
  json_t *j = parse (text);
  int r = fn (j, plan, &err);

  if (msg)
    *msg = err ? strdup (err->msg) : NULL;
  berth_error_release (&err);
  json_decref (j);
  return r;
}

/* ------------------------------------------------------------------ */
/* Layout                                                               */

static const char hybrid_mountinfo[]
    = "22 1 0:21 / /sys rw - sysfs sysfs rw\n"
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "32 30 0:29 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n"
      "33 30 0:30 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
      "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "39 30 0:36 / /sys/fs/cgroup/systemd rw - cgroup cgroup "
      "rw,xattr,name=systemd\n"
      "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";

static void
test_layout_hybrid (void **state)
{
  struct cgroup_layout l;
  berth_error_t err = NULL;

  assert_int_equal (cgroup_layout_parse (hybrid_mountinfo, &l, &err), 0);
  assert_int_equal (l.mode, CGROUP_MODE_HYBRID);
  assert_int_equal (l.n, 6);
  assert_string_equal (l.h[0].mountpoint, "/sys/fs/cgroup/cpu");
  assert_string_equal (l.h[0].controllers, "cpu");
  assert_string_equal (l.h[4].controllers, "name=systemd");
  assert_true (l.h[5].unified);
  assert_string_equal (l.h[5].mountpoint, "/sys/fs/cgroup/unified");
  cgroup_layout_release (&l);
}

static void
test_layout_v2 (void **state)
{
  const char *mi = "25 20 0:23 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 "
                   "cgroup2 rw,nsdelegate,memory_recursiveprot\n"
                   /* A stray named v1 hierarchy does not make it hybrid. */
                   "26 25 0:40 / /run/x rw - cgroup cgroup rw,name=foo\n";
  struct cgroup_layout l;

  assert_int_equal (cgroup_layout_parse (mi, &l, NULL), 0);
  assert_int_equal (l.mode, CGROUP_MODE_V2);
  assert_int_equal (l.n, 1);
  assert_true (l.h[0].unified);
  assert_null (l.h[0].controllers);
  assert_string_equal (l.h[0].mountpoint, "/sys/fs/cgroup");
  cgroup_layout_release (&l);
}

static void
test_layout_v1_combined (void **state)
{
  const char *mi
      /* A bind mount of a sub-cgroup first, then the real root. */
      = "50 1 0:28 /docker/x /mnt/cg rw - cgroup cgroup rw,cpu,cpuacct\n"
        "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
        "rw,cpu,cpuacct\n"
        "32 30 0:29 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup "
        "rw,net_cls,net_prio\n"
        "33 30 0:30 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup "
        "rw,release_agent=/x,pids\n"
        "34 30 0:30 / /sys/fs/cgroup/pids2 rw - cgroup cgroup rw,pids\n";
  struct cgroup_layout l;

  assert_int_equal (cgroup_layout_parse (mi, &l, NULL), 0);
  assert_int_equal (l.mode, CGROUP_MODE_V1);
  assert_int_equal (l.n, 3);
  assert_string_equal (l.h[0].controllers, "cpu,cpuacct");
  assert_string_equal (l.h[0].mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
  assert_true (l.h[0].root_is_top);
  assert_string_equal (l.h[1].controllers, "net_cls,net_prio");
  assert_string_equal (l.h[2].controllers, "pids");
  assert_string_equal (l.h[2].mountpoint, "/sys/fs/cgroup/with space");
  cgroup_layout_release (&l);
}

static void
test_layout_none (void **state)
{
  struct cgroup_layout l;
  berth_error_t err = NULL;

  assert_int_equal (cgroup_layout_parse ("22 1 0:21 / /sys rw - sysfs "
                                         "sysfs rw\n",
                                         &l, &err),
                    -ENOENT);
  assert_non_null (err);
  berth_error_release (&err);
  assert_int_equal (cgroup_layout_parse ("", &l, NULL), -ENOENT);
}

static void
test_dirs (void **state)
{
  struct cgroup_layout l;
  struct berth_cgroup *cg;

  assert_int_equal (cgroup_layout_parse (hybrid_mountinfo, &l, NULL), 0);
  cg = cgroup_new (&l, "/berth/abc", NULL);
  assert_string_equal (berth_cgroup_path (cg), "/berth/abc");
  assert_string_equal (cgroup_v1_dir (cg, "memory"),
                       "/sys/fs/cgroup/memory/berth/abc");
  assert_string_equal (cgroup_v1_dir (cg, "name=systemd"),
                       "/sys/fs/cgroup/systemd/berth/abc");
  assert_null (cgroup_v1_dir (cg, "hugetlb"));
  assert_null (cgroup_v1_dir (cg, "cpu,cpuacct"));
  assert_string_equal (cgroup_unified_dir (cg),
                       "/sys/fs/cgroup/unified/berth/abc");
  berth_cgroup_free (cg);
  cgroup_layout_release (&l);
}

/* ------------------------------------------------------------------ */
/* Paths                                                                */

static void
expect_path (const char *path, const char *parent, const char *id,
             const char *want)
{
  berth_error_t err = NULL;
  char *out = NULL;
  int r = cgroup_resolve_path (path, parent, id, &out, &err);

  if (want == NULL)
    {
      assert_true (r < 0);
      assert_non_null (err);
      berth_error_release (&err);
      return;
    }
  if (r < 0)
    fail_msg ("%s: %s", path ? path : "(null)", err->msg);
  assert_string_equal (out, want);
  free (out);
}

static void
test_resolve_path (void **state)
{
  expect_path (NULL, "/berth", "abc", "/berth/abc");
  expect_path ("", "/berth/", "abc", "/berth/abc");
  expect_path (NULL, "berth", "abc", "/berth/abc");
  expect_path (NULL, NULL, "abc", "/abc");
  expect_path ("/default/abc", "/berth", "x", "/default/abc");
  expect_path ("//a//./b/", "/berth", "x", "/a/b");
  expect_path ("rel/c", "/berth", "x", "/berth/rel/c");
  expect_path ("/a/../../etc", "/berth", "x", NULL);
  expect_path ("..", "/berth", "x", NULL);
  expect_path ("/", "/berth", "x", NULL);
  expect_path (NULL, "/berth", "a/b", NULL);
  expect_path (NULL, "/berth", "..", NULL);
  expect_path (NULL, "/berth", "", NULL);
  expect_path (NULL, "/berth", NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Conversions                                                          */

static void
test_conversions (void **state)
{
  int64_t out = 0;
  berth_error_t err = NULL;

  assert_int_equal (cgroup_shares_to_weight (0), 0);
  assert_int_equal (cgroup_shares_to_weight (2), 1);
  assert_int_equal (cgroup_shares_to_weight (1024), 39);
  assert_int_equal (cgroup_shares_to_weight (262144), 10000);
  assert_int_equal (cgroup_shares_to_weight (1000000), 10000);
  assert_int_equal (cgroup_blkio_weight_to_io_weight (0), 0);
  assert_int_equal (cgroup_blkio_weight_to_io_weight (10), 1);
  assert_int_equal (cgroup_blkio_weight_to_io_weight (500), 4950);
  assert_int_equal (cgroup_blkio_weight_to_io_weight (1000), 10000);

  assert_int_equal (cgroup_swap_to_v2 (0, -1, &out, NULL), 0);
  assert_int_equal (out, -1);
  assert_int_equal (cgroup_swap_to_v2 (-1, 100, &out, NULL), 0);
  assert_int_equal (out, -1);
  assert_int_equal (cgroup_swap_to_v2 (0, 100, &out, NULL), 0);
  assert_int_equal (out, 0);
  assert_int_equal (cgroup_swap_to_v2 (300, 100, &out, NULL), 0);
  assert_int_equal (out, 200);
  assert_int_equal (cgroup_swap_to_v2 (100, 100, &out, NULL), 0);
  assert_int_equal (out, 0);
  assert_true (cgroup_swap_to_v2 (50, 100, &out, &err) < 0);
  assert_non_null (strstr (err->msg, "memory.swap"));
  berth_error_release (&err);
  assert_true (cgroup_swap_to_v2 (300, 0, &out, NULL) < 0);
  assert_true (cgroup_swap_to_v2 (300, -1, &out, NULL) < 0);

  assert_true (cgroup_valid_page_size ("2MB"));
  assert_true (cgroup_valid_page_size ("1GB"));
  assert_true (cgroup_valid_page_size ("64KB"));
  assert_false (cgroup_valid_page_size ("2M"));
  assert_false (cgroup_valid_page_size ("MB"));
  assert_false (cgroup_valid_page_size ("2MB/../x"));
  assert_false (cgroup_valid_page_size (""));
}

/* ------------------------------------------------------------------ */
/* v1 plans                                                             */

static void
test_v1_plan_basic (void **state)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  struct cgroup_write *w;

  assert_int_equal (
      build (cgroup_v1_plan,
             "{\"memory\":{\"limit\":67108864,\"swap\":134217728,"
             "\"reservation\":1000,\"kernel\":5,\"swappiness\":10,"
             "\"disableOOMKiller\":true,\"checkBeforeUpdate\":true},"
             "\"pids\":{\"limit\":50},"
             "\"cpu\":{\"shares\":512,\"quota\":50000,\"period\":100000,"
             "\"cpus\":\"0-1\",\"mems\":\"0\",\"idle\":1}}",
             &plan, NULL),
      0);
  w = find (&plan, "memory.limit_in_bytes", 0);
  assert_non_null (w);
  assert_string_equal (w->controller, "memory");
  assert_string_equal (w->field, "linux.resources.memory.limit");
  assert_string_equal (w->value, "67108864");
  assert_true (w->flags & CGW_SWAP_ON_FAIL);
  assert_string_equal (w->usage_file, "memory.usage_in_bytes");
  /* The swap write follows the limit, for the order swap.  */
  assert_string_equal (w[1].file, "memory.memsw.limit_in_bytes");
  assert_string_equal (w[1].value, "134217728");
  assert_string_equal (value_of (&plan, "memory.soft_limit_in_bytes"), "1000");
  assert_true (find (&plan, "memory.kmem.limit_in_bytes", 0)->flags
               & CGW_OPTIONAL);
  assert_string_equal (value_of (&plan, "memory.swappiness"), "10");
  assert_string_equal (value_of (&plan, "memory.oom_control"), "1");
  assert_string_equal (value_of (&plan, "pids.max"), "50");
  assert_string_equal (value_of (&plan, "cpu.shares"), "512");
  w = find (&plan, "cpu.cfs_period_us", 0);
  assert_string_equal (w->value, "100000");
  assert_true (w->flags & CGW_SWAP_ON_FAIL);
  assert_string_equal (w[1].file, "cpu.cfs_quota_us");
  assert_string_equal (w[1].value, "50000");
  w = find (&plan, "cpuset.cpus", 0);
  assert_string_equal (w->controller, "cpuset");
  assert_string_equal (w->value, "0-1");
  assert_string_equal (value_of (&plan, "cpuset.mems"), "0");
  assert_string_equal (value_of (&plan, "cpu.idle"), "1");
  assert_null (find (&plan, "cpu.rt_period_us", 0));
  cgroup_plan_release (&plan);
}

static void
test_v1_plan_misc (void **state)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  struct cgroup_write *w;

  assert_int_equal (
      build (cgroup_v1_plan,
             "{\"memory\":{\"limit\":-1},\"pids\":{\"limit\":-1},"
             "\"blockIO\":{\"weight\":500,\"weightDevice\":[{\"major\":8,"
             "\"minor\":0,\"weight\":300,\"leafWeight\":20}],"
             "\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,"
             "\"rate\":1048576}],\"throttleWriteIOPSDevice\":[{\"major\":8,"
             "\"minor\":16,\"rate\":10}]},"
             "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4096}],"
             "\"network\":{\"classID\":1048577,\"priorities\":[{\"name\":"
             "\"eth0\",\"priority\":5}]},"
             "\"rdma\":{\"mlx5_1\":{\"hcaHandles\":3,\"hcaObjects\":10000}},"
             "\"unified\":{\"memory.high\":\"1G\"}}",
             &plan, NULL),
      0);
  /* Unlimited memory lifts memsw too (optional: no swap accounting). */
  w = find (&plan, "memory.limit_in_bytes", 0);
  assert_string_equal (w->value, "-1");
  assert_true (w->flags & CGW_SWAP_ON_FAIL);
  assert_string_equal (w[1].file, "memory.memsw.limit_in_bytes");
  assert_string_equal (w[1].value, "-1");
  assert_true (w[1].flags & CGW_OPTIONAL);
  assert_string_equal (value_of (&plan, "pids.max"), "max");
  w = find (&plan, "blkio.weight", 0);
  assert_string_equal (w->value, "500");
  assert_string_equal (w->alt_file, "blkio.bfq.weight");
  assert_string_equal (value_of (&plan, "blkio.weight_device"), "8:0 300");
  assert_string_equal (value_of (&plan, "blkio.leaf_weight_device"), "8:0 20");
  assert_string_equal (value_of (&plan, "blkio.throttle.read_bps_device"),
                       "8:0 1048576");
  assert_string_equal (value_of (&plan, "blkio.throttle.write_iops_device"),
                       "8:16 10");
  w = find (&plan, "hugetlb.2MB.limit_in_bytes", 0);
  assert_string_equal (w->controller, "hugetlb");
  assert_string_equal (w->field, "linux.resources.hugepageLimits[0]");
  assert_string_equal (w->value, "4096");
  assert_string_equal (value_of (&plan, "net_cls.classid"), "1048577");
  assert_string_equal (value_of (&plan, "net_prio.ifpriomap"), "eth0 5");
  assert_string_equal (value_of (&plan, "rdma.max"),
                       "mlx5_1 hca_handle=3 hca_object=10000");
  w = find (&plan, "memory.high", 0);
  assert_true (w->flags & CGW_UNIFIED);
  assert_null (w->controller);
  /* "unified" is written last so it overrides converted values.  */
  assert_ptr_equal (w, &plan.w[plan.n - 1]);
  cgroup_plan_release (&plan);
}

static void
test_v1_plan_devices (void **state)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;

  assert_int_equal (
      build (cgroup_v1_plan,
             "{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},"
             "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,"
             "\"access\":\"mrw\"},{\"allow\":true,\"type\":\"c\","
             "\"major\":136,\"access\":\"rw\"},{\"allow\":true,"
             "\"type\":\"b\",\"minor\":0},{\"allow\":false,\"type\":\"c\","
             "\"major\":1,\"minor\":3,\"access\":\"w\"}]}",
             &plan, NULL),
      0);
  assert_int_equal (plan.n, 6);
  assert_string_equal (plan.w[0].file, "devices.deny");
  assert_string_equal (plan.w[0].value, "a");
  assert_string_equal (plan.w[1].file, "devices.deny");
  assert_string_equal (plan.w[1].value, "a");
  assert_string_equal (plan.w[2].file, "devices.allow");
  assert_string_equal (plan.w[2].value, "c 1:3 rwm");
  assert_string_equal (plan.w[3].value, "c 136:* rw");
  assert_string_equal (plan.w[4].value, "b *:0 rwm");
  assert_string_equal (plan.w[5].file, "devices.deny");
  assert_string_equal (plan.w[5].value, "c 1:3 w");
  assert_string_equal (plan.w[5].field, "linux.resources.devices[4]");
  cgroup_plan_release (&plan);

  /* No "devices" key: the policy is left alone.  */
  assert_int_equal (build (cgroup_v1_plan, "{}", &plan, NULL), 0);
  assert_int_equal (plan.n, 0);
  cgroup_plan_release (&plan);
}

static void
expect_plan_error (plan_fn fn, const char *text, const char *needle)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  char *msg = NULL;

  assert_true (build (fn, text, &plan, &msg) < 0);
  assert_non_null (msg);
  if (strstr (msg, needle) == NULL)
    fail_msg ("`%s` does not mention `%s`", msg, needle);
  free (msg);
  cgroup_plan_release (&plan);
}

static void
test_plan_errors (void **state)
{
  expect_plan_error (cgroup_v1_plan, "{\"memory\":{\"limit\":\"1G\"}}",
                     "linux.resources.memory.limit");
  expect_plan_error (cgroup_v1_plan, "{\"memory\":[]}", "memory");
  expect_plan_error (cgroup_v1_plan, "{\"cpu\":{\"shares\":-5}}",
                     "linux.resources.cpu.shares");
  expect_plan_error (cgroup_v1_plan, "{\"devices\":[{\"type\":\"c\"}]}",
                     "linux.resources.devices[0].allow");
  expect_plan_error (cgroup_v1_plan,
                     "{\"devices\":[{\"allow\":true,\"type\":\"x\"}]}",
                     "devices[0].type");
  expect_plan_error (cgroup_v1_plan,
                     "{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}",
                     "devices[0].access");
  expect_plan_error (cgroup_v1_plan,
                     "{\"devices\":[{\"allow\":true,\"major\":-2}]}",
                     "devices[0].major");
  expect_plan_error (cgroup_v1_plan,
                     "{\"hugepageLimits\":[{\"pageSize\":\"../x\","
                     "\"limit\":1}]}",
                     "hugepageLimits[0].pageSize");
  expect_plan_error (cgroup_v1_plan,
                     "{\"blockIO\":{\"throttleReadBpsDevice\":[{"
                     "\"major\":8,\"rate\":1}]}}",
                     "throttleReadBpsDevice[0].minor");
  expect_plan_error (cgroup_v1_plan, "{\"unified\":{\"../x\":\"1\"}}",
                     "unified.../x");
  expect_plan_error (cgroup_v1_plan, "{\"unified\":{\"cgroup.procs\":\"1\"}}",
                     "unified.cgroup.procs");
  expect_plan_error (cgroup_v1_plan, "{\"unified\":{\"memory.high\":5}}",
                     "unified.memory.high");
  expect_plan_error (cgroup_v1_plan, "{\"rdma\":{\"a b\":{}}}", "rdma.a b");
  expect_plan_error (cgroup_v2_plan, "{\"network\":{\"classID\":1}}",
                     "linux.resources.network");
  expect_plan_error (cgroup_v2_plan, "{\"cpu\":{\"realtimeRuntime\":100}}",
                     "realtime");
  expect_plan_error (cgroup_v2_plan, "{\"memory\":{\"swap\":1000}}",
                     "memory.swap");
  expect_plan_error (cgroup_v2_plan,
                     "{\"memory\":{\"limit\":1000,\"swap\":500}}",
                     "memory.swap");
}

/* ------------------------------------------------------------------ */
/* v2 plans                                                             */

static void
test_v2_plan_basic (void **state)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  struct cgroup_write *w;

  assert_int_equal (
      build (cgroup_v2_plan,
             "{\"memory\":{\"limit\":67108864,\"swap\":134217728,"
             "\"reservation\":-1,\"kernel\":1,\"kernelTCP\":1,"
             "\"swappiness\":10,\"disableOOMKiller\":true},"
             "\"pids\":{\"limit\":0},"
             "\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,"
             "\"burst\":1000,\"cpus\":\"0\"},"
             "\"hugepageLimits\":[{\"pageSize\":\"1GB\",\"limit\":0}],"
             "\"unified\":{\"memory.high\":\"max\"}}",
             &plan, NULL),
      0);
  assert_string_equal (value_of (&plan, "memory.max"), "67108864");
  assert_string_equal (find (&plan, "memory.max", 0)->controller, "memory");
  /* swap is memory+swap in OCI: 128M - 64M.  */
  assert_string_equal (value_of (&plan, "memory.swap.max"), "67108864");
  assert_string_equal (value_of (&plan, "memory.low"), "max");
  assert_null (find (&plan, "memory.swappiness", 0));
  assert_string_equal (value_of (&plan, "pids.max"), "max");
  w = find (&plan, "cpu.weight", 0);
  assert_string_equal (w->value, "39");
  assert_string_equal (w->field, "linux.resources.cpu.shares");
  assert_string_equal (value_of (&plan, "cpu.max"), "50000 100000");
  assert_string_equal (value_of (&plan, "cpu.max.burst"), "1000");
  assert_string_equal (value_of (&plan, "cpuset.cpus"), "0");
  assert_string_equal (value_of (&plan, "hugetlb.1GB.max"), "0");
  assert_string_equal (plan.w[plan.n - 1].file, "memory.high");
  cgroup_plan_release (&plan);

  /* Unlimited memory and no swap: swap unlimited too, where it exists. */
  assert_int_equal (
      build (cgroup_v2_plan, "{\"memory\":{\"limit\":-1}}", &plan, NULL), 0);
  assert_string_equal (value_of (&plan, "memory.max"), "max");
  w = find (&plan, "memory.swap.max", 0);
  assert_string_equal (w->value, "max");
  assert_true (w->flags & CGW_OPTIONAL);
  cgroup_plan_release (&plan);

  assert_int_equal (build (cgroup_v2_plan,
                           "{\"memory\":{\"limit\":100,\"swap\":-1}}", &plan,
                           NULL),
                    0);
  w = find (&plan, "memory.swap.max", 0);
  assert_string_equal (w->value, "max");
  assert_false (w->flags & CGW_OPTIONAL);
  cgroup_plan_release (&plan);
}

static void
test_v2_plan_cpu_max (void **state)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  struct cgroup_write *w;

  assert_int_equal (
      build (cgroup_v2_plan, "{\"cpu\":{\"quota\":-1}}", &plan, NULL), 0);
  assert_string_equal (value_of (&plan, "cpu.max"), "max");
  cgroup_plan_release (&plan);
  assert_int_equal (
      build (cgroup_v2_plan, "{\"cpu\":{\"quota\":20000}}", &plan, NULL), 0);
  assert_string_equal (value_of (&plan, "cpu.max"), "20000");
  cgroup_plan_release (&plan);
  assert_int_equal (
      build (cgroup_v2_plan, "{\"cpu\":{\"period\":50000}}", &plan, NULL), 0);
  w = find (&plan, "cpu.max", 0);
  assert_string_equal (w->value, "50000");
  assert_true (w->flags & CGW_KEEP_QUOTA);
  cgroup_plan_release (&plan);
  assert_int_equal (build (cgroup_v2_plan,
                           "{\"cpu\":{\"quota\":-1,\"period\":50000,"
                           "\"shares\":0}}",
                           &plan, NULL),
                    0);
  assert_string_equal (value_of (&plan, "cpu.max"), "max 50000");
  assert_null (find (&plan, "cpu.weight", 0));
  cgroup_plan_release (&plan);
}

static void
test_v2_plan_io (void **state)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  struct cgroup_write *w;

  assert_int_equal (
      build (cgroup_v2_plan,
             "{\"blockIO\":{\"weight\":500,\"leafWeight\":10,"
             "\"weightDevice\":[{\"major\":8,\"minor\":0,\"weight\":1000}],"
             "\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,"
             "\"rate\":1048576}],\"throttleWriteBpsDevice\":[{\"major\":8,"
             "\"minor\":0,\"rate\":0}],\"throttleReadIOPSDevice\":[{"
             "\"major\":8,\"minor\":0,\"rate\":100}],"
             "\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":0,"
             "\"rate\":200}]}}",
             &plan, NULL),
      0);
  w = find (&plan, "io.bfq.weight", 0);
  assert_string_equal (w->controller, "io");
  assert_string_equal (w->value, "500");
  assert_string_equal (w->alt_file, "io.weight");
  assert_string_equal (w->alt_value, "default 4950");
  w = find (&plan, "io.bfq.weight", 1);
  assert_string_equal (w->value, "8:0 1000");
  assert_string_equal (w->alt_value, "8:0 10000");
  assert_string_equal (find (&plan, "io.max", 0)->value, "8:0 rbps=1048576");
  assert_string_equal (find (&plan, "io.max", 1)->value, "8:0 wbps=max");
  assert_string_equal (find (&plan, "io.max", 2)->value, "8:0 riops=100");
  assert_string_equal (find (&plan, "io.max", 3)->value, "8:0 wiops=200");
  assert_null (find (&plan, "io.max", 4));
  cgroup_plan_release (&plan);
}

/* ------------------------------------------------------------------ */
/* Devices                                                              */

static void
test_device_rules (void **state)
{
  json_t *j = parse ("{\"devices\":[{\"allow\":true,\"type\":\"a\","
                     "\"major\":1,\"access\":\"r\"},{\"allow\":false,"
                     "\"type\":\"c\",\"major\":10,\"minor\":200}]}");
  struct cgroup_device_rule *rules = NULL;
  bool present = false;
  size_t n = 0;
  char buf[64];

  assert_int_equal (cgroup_parse_devices (j, &rules, &n, &present, NULL), 0);
  assert_true (present);
  assert_int_equal (n, 2);
  assert_true (rules[0].allow);
  assert_int_equal (rules[0].type, 'a');
  assert_int_equal (rules[0].access, CGROUP_DEV_READ);
  cgroup_format_device_rule (&rules[0], buf, sizeof (buf));
  assert_string_equal (buf, "a");
  assert_false (rules[1].allow);
  assert_int_equal (rules[1].access, CGROUP_DEV_ALL);
  cgroup_format_device_rule (&rules[1], buf, sizeof (buf));
  assert_string_equal (buf, "c 10:200 rwm");
  free (rules);
  json_decref (j);

  j = parse ("{\"devices\":[]}");
  assert_int_equal (cgroup_parse_devices (j, &rules, &n, &present, NULL), 0);
  assert_true (present);
  assert_int_equal (n, 0);
  free (rules);
  json_decref (j);
}

static void
test_bpf_program (void **state)
{
  struct cgroup_device_rule rules[] = {
    { false, 'a', -1, -1, CGROUP_DEV_ALL },
    { true, 'c', 1, 3, CGROUP_DEV_ALL },
    { true, 'c', 136, -1, CGROUP_DEV_READ | CGROUP_DEV_WRITE },
    { false, 'b', -1, 0, CGROUP_DEV_WRITE },
  };
  struct bpf_insn *insns = NULL;
  size_t count = 0, i;

  cgroup_devices_bpf_build (rules, ARRAY_SIZE (rules), &insns, &count);
  /* prologue 6; rule 3 (b *:0 w deny): type, 3 access, minor, ret = 7;
   * rule 2 (c 136:* rw): type, 3 access, major, ret = 7; rule 1: type,
   * major, minor, ret = 5; rule 0 ("a" deny) unconditional: 2, and no
   * default return after it.  */
  assert_int_equal (count, 6 + 7 + 7 + 5 + 2);
  assert_int_equal (insns[0].code, BPF_LDX | BPF_MEM | BPF_W);
  /* Rule 3 first (the last one wins): block devices.  */
  assert_int_equal (insns[6].code, BPF_JMP | BPF_JNE | BPF_K);
  assert_int_equal (insns[6].imm, BPF_DEVCG_DEV_BLOCK);
  assert_int_equal (insns[6].off, 6);
  assert_int_equal (insns[9].code, BPF_JMP | BPF_JEQ | BPF_K);
  assert_int_equal (insns[12].code, BPF_JMP | BPF_EXIT);
  assert_int_equal (insns[11].imm, 0);
  /* Every jump lands inside the program.  */
  for (i = 0; i < count; i++)
    if (BPF_CLASS (insns[i].code) == BPF_JMP
        && BPF_OP (insns[i].code) != BPF_EXIT)
      assert_true (i + 1 + insns[i].off < count);
  assert_int_equal (insns[count - 1].code, BPF_JMP | BPF_EXIT);
  assert_int_equal (insns[count - 2].imm, 0);
  free (insns);

  /* No rules: deny everything.  */
  cgroup_devices_bpf_build (NULL, 0, &insns, &count);
  assert_int_equal (count, 8);
  assert_int_equal (insns[6].imm, 0);
  free (insns);

  /* A trailing allow-all makes everything before it unreachable.  */
  rules[3] = (struct cgroup_device_rule){ true, 'a', -1, -1, CGROUP_DEV_ALL };
  cgroup_devices_bpf_build (rules, ARRAY_SIZE (rules), &insns, &count);
  assert_int_equal (count, 8);
  assert_int_equal (insns[6].imm, 1);
  free (insns);
}

/* ------------------------------------------------------------------ */
/* Stats parsers                                                        */

static void
test_stats_parsers (void **state)
{
  json_t *obj = json_object (), *arr = json_array (), *blkio = json_object ();
  json_t *list, *e;

  cgroup_parse_flat_keyed ("cache 4096\nrss 8192\nbad x\n\nnr_periods 3", obj);
  assert_int_equal (json_integer_value (json_object_get (obj, "cache")), 4096);
  assert_int_equal (json_integer_value (json_object_get (obj, "nr_periods")),
                    3);
  assert_null (json_object_get (obj, "bad"));

  list = cgroup_parse_number_list ("10 20 30 \n");
  assert_int_equal (json_array_size (list), 3);
  assert_int_equal (json_integer_value (json_array_get (list, 2)), 30);
  json_decref (list);

  cgroup_parse_blkio_v1 ("8:0 Read 100\n8:0 Write 200\n8:0 Total 300\n"
                         "Total 300\n8:16 42\n",
                         arr);
  assert_int_equal (json_array_size (arr), 4);
  e = json_array_get (arr, 1);
  assert_int_equal (json_integer_value (json_object_get (e, "major")), 8);
  assert_string_equal (json_string_value (json_object_get (e, "op")), "Write");
  assert_int_equal (json_integer_value (json_object_get (e, "value")), 200);
  e = json_array_get (arr, 3);
  assert_int_equal (json_integer_value (json_object_get (e, "minor")), 16);

  cgroup_parse_io_stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 "
                        "dios=6\n254:0 rbytes=7 wbytes=8 rios=9 wios=10 "
                        "dbytes=0 dios=0\n",
                        blkio);
  list = json_object_get (blkio, "ioServiceBytesRecursive");
  assert_int_equal (json_array_size (list), 6);
  e = json_array_get (list, 3);
  assert_int_equal (json_integer_value (json_object_get (e, "major")), 254);
  assert_string_equal (json_string_value (json_object_get (e, "op")), "Read");
  assert_int_equal (json_integer_value (json_object_get (e, "value")), 7);
  list = json_object_get (blkio, "ioServicedRecursive");
  assert_int_equal (json_array_size (list), 6);

  e = cgroup_json_u64 (UINT64_MAX);
  assert_int_equal (json_integer_value (e), INT64_MAX);
  json_decref (e);
  json_decref (obj);
  json_decref (arr);
  json_decref (blkio);
}

/* ------------------------------------------------------------------ */
/* The executor against a fake v2 hierarchy                             */

struct fake
{
  char root[64];
  char *dir;
  struct cgroup_layout layout;
  struct berth_cgroup *cg;
};

static void
put (const char *dir, const char *file, const char *text)
{
  char *path = NULL;
  FILE *f;

  xasprintf (&path, "%s/%s", dir, file);
  f = fopen (path, "w");
  assert_non_null (f);
  fputs (text, f);
  fclose (f);
  free (path);
}

static char *
get (const char *dir, const char *file)
{
  char *text = NULL;

  if (cgroup_read (dir, file, &text, NULL) < 0)
    return NULL;
  return text;
}

static int
fake_setup (void **state)
{
  static const char *const files[]
      = { "memory.max", "memory.swap.max", "memory.low",
          "cpu.max",    "cpu.weight",      "pids.max",
          "io.weight",  "io.max",          "memory.high" };
  struct fake *f = calloc (1, sizeof (*f));
  char *mi = NULL;
  size_t i;

  strcpy (f->root, "/tmp/berth-test-cgroup-XXXXXX");
  assert_non_null (mkdtemp (f->root));
  xasprintf (&mi, "40 30 0:37 / %s rw - cgroup2 cgroup2 rw\n", f->root);
  assert_int_equal (cgroup_layout_parse (mi, &f->layout, NULL), 0);
  free (mi);
  assert_int_equal (f->layout.mode, CGROUP_MODE_V2);
  f->cg = cgroup_new (&f->layout, "/c", NULL);
  f->dir = strdup (cgroup_unified_dir (f->cg));
  assert_int_equal (mkdir (f->dir, 0755), 0);
  put (f->dir, "cgroup.controllers", "cpu io memory pids\n");
  for (i = 0; i < ARRAY_SIZE (files); i++)
    put (f->dir, files[i], "");
  put (f->dir, "cpu.max", "30000 100000\n");
  *state = f;
  return 0;
}

static int
fake_teardown (void **state)
{
  struct fake *f = *state;

  assert_int_equal (remove_tree (f->root, NULL), 0);
  berth_cgroup_free (f->cg);
  cgroup_layout_release (&f->layout);
  free (f->dir);
  free (f);
  return 0;
}

static int
run (struct fake *f, const char *text, char **msg)
{
  struct cgroup_plan plan = CGROUP_PLAN_INIT;
  berth_error_t err = NULL;
  int r = build (cgroup_v2_plan, text, &plan, NULL);

  if (r == 0)
    r = cgroup_plan_run (f->cg, &plan, &err);
  if (msg)
    *msg = err ? strdup (err->msg) : NULL;
  berth_error_release (&err);
  cgroup_plan_release (&plan);
  return r;
}

static void
expect_file (struct fake *f, const char *file, const char *want)
{
  char *text = get (f->dir, file);

  assert_non_null (text);
  assert_string_equal (text, want);
  free (text);
}

static void
test_run_fake_v2 (void **state)
{
  struct fake *f = *state;
  char *msg = NULL;

  assert_int_equal (run (f,
                         "{\"memory\":{\"limit\":1048576,\"swap\":2097152},"
                         "\"cpu\":{\"shares\":2,\"period\":50000},"
                         "\"pids\":{\"limit\":7},"
                         "\"blockIO\":{\"weight\":10},"
                         "\"unified\":{\"memory.high\":\"900000\"}}",
                         &msg),
                    0);
  expect_file (f, "memory.max", "1048576");
  expect_file (f, "memory.swap.max", "1048576");
  expect_file (f, "cpu.weight", "1");
  /* Only the period changed: the quota in place is kept.  */
  expect_file (f, "cpu.max", "30000 50000");
  expect_file (f, "pids.max", "7");
  /* No io.bfq.weight here: io.weight with the converted value.  */
  expect_file (f, "io.weight", "default 1");
  expect_file (f, "memory.high", "900000");

  /* A controller that is not enabled: an error naming field and
   * controller, and nothing written.  */
  put (f->dir, "pids.max", "");
  assert_true (run (f,
                    "{\"pids\":{\"limit\":9},"
                    "\"hugepageLimits\":[{\"pageSize\":\"2MB\","
                    "\"limit\":1}]}",
                    &msg)
               < 0);
  assert_non_null (strstr (msg, "hugepageLimits[0]"));
  assert_non_null (strstr (msg, "hugetlb"));
  free (msg);
  expect_file (f, "pids.max", "");

  /* A unified key whose file does not exist.  */
  assert_true (run (f, "{\"unified\":{\"memory.oom.group\":\"1\"}}", &msg) < 0);
  assert_non_null (strstr (msg, "unified.memory.oom.group"));
  assert_non_null (strstr (msg, "does not exist"));
  free (msg);

  /* checkBeforeUpdate: the limit is refused below the usage.  */
  put (f->dir, "memory.current", "5000\n");
  assert_true (run (f,
                    "{\"memory\":{\"limit\":4096,\"checkBeforeUpdate\":"
                    "true}}",
                    &msg)
               < 0);
  assert_non_null (strstr (msg, "below the current usage 5000"));
  free (msg);
  assert_int_equal (run (f,
                         "{\"memory\":{\"limit\":8192,\"checkBeforeUpdate\":"
                         "true}}",
                         NULL),
                    0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_layout_hybrid),
    cmocka_unit_test (test_layout_v2),
    cmocka_unit_test (test_layout_v1_combined),
    cmocka_unit_test (test_layout_none),
    cmocka_unit_test (test_dirs),
    cmocka_unit_test (test_resolve_path),
    cmocka_unit_test (test_conversions),
    cmocka_unit_test (test_v1_plan_basic),
    cmocka_unit_test (test_v1_plan_misc),
    cmocka_unit_test (test_v1_plan_devices),
    cmocka_unit_test (test_plan_errors),
    cmocka_unit_test (test_v2_plan_basic),
    cmocka_unit_test (test_v2_plan_cpu_max),
    cmocka_unit_test (test_v2_plan_io),
    cmocka_unit_test (test_device_rules),
    cmocka_unit_test (test_bpf_program),
    cmocka_unit_test (test_stats_parsers),
    cmocka_unit_test_setup_teardown (test_run_fake_v2, fake_setup,
                                     fake_teardown),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
