/* update: change a running container's resource limits. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "utils.h"

enum
{
  O_RESOURCES = 'r',
  O_BLKIO_WEIGHT = 1000,
  O_CPU_PERIOD,
  O_CPU_QUOTA,
  O_CPU_SHARE,
  O_CPU_RT_PERIOD,
  O_CPU_RT_RUNTIME,
  O_CPUSET_CPUS,
  O_CPUSET_MEMS,
  O_MEMORY,
  O_MEMORY_RESERVATION,
  O_MEMORY_SWAP,
  O_PIDS_LIMIT,
  O_L3_CACHE,
  O_MEM_BW,
  O_KERNEL_MEMORY,
};

static const struct option update_opts[] = {
  { "resources", required_argument, NULL, O_RESOURCES },
  { "blkio-weight", required_argument, NULL, O_BLKIO_WEIGHT },
  { "cpu-period", required_argument, NULL, O_CPU_PERIOD },
  { "cpu-quota", required_argument, NULL, O_CPU_QUOTA },
  { "cpu-share", required_argument, NULL, O_CPU_SHARE },
  { "cpu-rt-period", required_argument, NULL, O_CPU_RT_PERIOD },
  { "cpu-rt-runtime", required_argument, NULL, O_CPU_RT_RUNTIME },
  { "cpuset-cpus", required_argument, NULL, O_CPUSET_CPUS },
  { "cpuset-mems", required_argument, NULL, O_CPUSET_MEMS },
  { "memory", required_argument, NULL, O_MEMORY },
  { "memory-reservation", required_argument, NULL, O_MEMORY_RESERVATION },
  { "memory-swap", required_argument, NULL, O_MEMORY_SWAP },
  { "pids-limit", required_argument, NULL, O_PIDS_LIMIT },
  { "l3-cache-schema", required_argument, NULL, O_L3_CACHE },
  { "mem-bw-schema", required_argument, NULL, O_MEM_BW },
  { "kernel-memory", required_argument, NULL, O_KERNEL_MEMORY },
  { NULL, 0, NULL, 0 },
};

/* Sizes accept k/m/g suffixes like runc ("512m"); -1 means unlimited. */
static int
parse_size (const char *opt, const char *s, int64_t *out, berth_error_t *err)
{
  char *end;
  long long v = strtoll (s, &end, 10);
  int64_t mult = 1;
  if (end == s)
    return berth_make_invalid (err, "%s: invalid value `%s`", opt, s);
  switch (*end)
    {
    case 'k':
    case 'K':
      mult = 1024;
      end++;
      break;
    case 'm':
    case 'M':
      mult = 1024 * 1024;
      end++;
      break;
    case 'g':
    case 'G':
      mult = 1024LL * 1024 * 1024;
      end++;
      break;
    default:
      break;
    }
  if (*end == 'b' || *end == 'B')
    end++;
  if (*end != '\0')
    return berth_make_invalid (err, "%s: invalid value `%s`", opt, s);
  *out = v < 0 ? v : v * mult;
  return 0;
}

static json_t *
section (json_t *res, const char *name)
{
  json_t *s = json_object_get (res, name);
  if (!s)
    json_object_set_new (res, name, s = json_object ());
  return s;
}

static int
set_flag (json_t *res, int c, const char *val, berth_error_t *err)
{
  static const struct
  {
    int opt;
    const char *sect, *key;
    bool size;
  } map[] = {
    { O_BLKIO_WEIGHT, "blockIO", "weight", false },
    { O_CPU_PERIOD, "cpu", "period", false },
    { O_CPU_QUOTA, "cpu", "quota", false },
    { O_CPU_SHARE, "cpu", "shares", false },
    { O_CPU_RT_PERIOD, "cpu", "realtimePeriod", false },
    { O_CPU_RT_RUNTIME, "cpu", "realtimeRuntime", false },
    { O_MEMORY, "memory", "limit", true },
    { O_MEMORY_RESERVATION, "memory", "reservation", true },
    { O_MEMORY_SWAP, "memory", "swap", true },
    { O_KERNEL_MEMORY, "memory", "kernel", true },
    { O_PIDS_LIMIT, "pids", "limit", false },
  };
  size_t i;
  int64_t v;

  if (c == O_CPUSET_CPUS || c == O_CPUSET_MEMS)
    {
      json_object_set_new (section (res, "cpu"),
                           c == O_CPUSET_CPUS ? "cpus" : "mems",
                           json_string (val));
      return 0;
    }
  if (c == O_L3_CACHE || c == O_MEM_BW)
    return berth_make_error (err, EOPNOTSUPP,
                             "Intel RDT is not supported on this host");
  for (i = 0; i < ARRAY_SIZE (map); i++)
    {
      if (map[i].opt != c)
        continue;
      if (map[i].size ? parse_size (map[i].key, val, &v, err) < 0
                      : cli_parse_int (map[i].key, val, &v, err) < 0)
        return -1;
      json_object_set_new (section (res, map[i].sect), map[i].key,
                           json_integer (v));
      return 0;
    }
  return berth_make_invalid (err, "unknown option");
}

static int
read_resources (const char *path, json_t **out, berth_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len = 0;
  if (strcmp (path, "-") == 0)
    {
      if (read_file ("/dev/stdin", 1 << 20, &data, &len, err) < 0)
        return -1;
    }
  else if (read_file (path, 1 << 20, &data, &len, err) < 0)
    return -1;
  if (bjson_parse (data, len, strcmp (path, "-") ? path : "stdin", out, err)
      < 0)
    return -1;
  if (!json_is_object (*out))
    return berth_make_invalid (err, "--resources: expected an object");
  return 0;
}

int
cmd_update (struct cli *cli, int argc, char **argv, berth_error_t *err)
{
  cleanup_json json_t *res = json_object ();
  const char *file = NULL;
  int c;

  opterr = 0;
  while ((c = getopt_long_only (argc, argv, "+r:", update_opts, NULL)) != -1)
    {
      if (c == '?')
        return berth_make_invalid (err, "unknown option `%s`",
                                   argv[optind - 1]);
      if (c == O_RESOURCES)
        file = optarg;
      else if (set_flag (res, c, optarg, err) < 0)
        return -1;
    }
  if (cli_expect_args (argc, optind, 1, "update [options] <container-id>", err)
      < 0)
    return -1;
  if (file)
    {
      json_t *from = NULL;
      if (read_resources (file, &from, err) < 0)
        return -1;
      /* Flags win over the file, as in runc.  */
      json_object_update_missing (res, from);
      json_decref (from);
    }
  return berth_container_update (&cli->rt, argv[optind], res, err);
}
