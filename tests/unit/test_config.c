/* test_config.c - config.json parsing (oci/config.c).
 *
 * Documents are written with single quotes to stay readable in C; json_text()
 * turns them into JSON.  Error cases start from a small valid document and
 * change one member (set_at), so each case shows exactly what breaks it and
 * asserts that the message names that field.  */
#include <errno.h>
#include <linux/mount.h>
#include <setjmp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "json.h"
#include "oci/config.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "utils.h"

#define SOURCE "test.json"

/* TEXT with every ' turned into ", malloc'd. */
static char *
json_text (const char *text)
{
  char *s = xstrdup (text), *p;
  for (p = s; *p; p++)
    if (*p == '\'')
      *p = '"';
  return s;
}

static json_t *
load (const char *text)
{
  cleanup_free char *s = json_text (text);
  json_error_t jerr;
  json_t *j = json_loads (s, JSON_DECODE_ANY, &jerr);
  if (j == NULL)
    print_error ("bad test JSON (%d:%d %s): %s\n", jerr.line, jerr.column,
                 jerr.text, s);
  assert_non_null (j);
  return j;
}

/* The smallest document the parser accepts, the base of the error cases. */
static const char minimal_config[]
    = "{'ociVersion': '1.2.0',"
      " 'root': {'path': 'rootfs'},"
      " 'process': {'args': ['sh'], 'cwd': '/'},"
      " 'linux': {'namespaces': [{'type': 'pid'}, {'type': 'mount'}]}}";

/* minimal_config with the member at dotted PATH replaced by VALUE (JSON with
 * single quotes), or removed when VALUE is NULL.  Missing parent objects are
 * created.  Returns the serialized document (malloc'd). */
static char *
config_with (const char *path, const char *value)
{
  cleanup_json json_t *doc = load (minimal_config);
  cleanup_free char *copy = xstrdup (path);
  json_t *obj = doc;
  char *key = copy, *dot;

  while ((dot = strchr (key, '.')) != NULL)
    {
      json_t *next;
      *dot = '\0';
      next = json_object_get (obj, key);
      if (next == NULL || !json_is_object (next))
        {
          next = json_object ();
          json_object_set_new (obj, key, next);
        }
      obj = next;
      key = dot + 1;
    }
  if (value)
    json_object_set_new (obj, key, load (value));
  else
    json_object_del (obj, key);
  return bjson_dump (doc, false);
}

static struct oci_config *
parse_ok (const char *json)
{
  struct oci_config *cfg = NULL;
  berth_error_t err = NULL;
  int r = oci_config_parse (json, strlen (json), SOURCE, &cfg, &err);

  if (r < 0)
    print_error ("unexpected error: %s\n", err ? err->msg : "(none)");
  berth_error_release (&err);
  assert_int_equal (r, 0);
  assert_non_null (cfg);
  return cfg;
}

static struct oci_config *
parse_text_ok (const char *text)
{
  cleanup_free char *s = json_text (text);
  return parse_ok (s);
}

/* Parsing JSON must fail with EINVAL, leave *out alone, and the message must
 * start with the source name and contain WANT.  */
static void
expect_error (const char *json, size_t len, const char *want)
{
  struct oci_config *cfg = NULL;
  berth_error_t err = NULL;
  int r = oci_config_parse (json, len, SOURCE, &cfg, &err);
  bool ok;

  assert_true (r < 0);
  assert_null (cfg);
  assert_non_null (err);
  assert_int_equal (err->status, EINVAL);
  ok = strncmp (err->msg, SOURCE ":", strlen (SOURCE ":")) == 0
       && strstr (err->msg, want) != NULL;
  if (!ok)
    print_error ("document: %.*s\ngot \"%s\"\nwant \"%s\"\n", (int) len, json,
                 err->msg, want);
  berth_error_release (&err);
  assert_true (ok);
}

static void
expect_error_with (const char *path, const char *value, const char *want)
{
  cleanup_free char *doc = config_with (path, value);
  expect_error (doc, strlen (doc), want);
}

static struct oci_config *
parse_with_ok (const char *path, const char *value)
{
  cleanup_free char *doc = config_with (path, value);
  return parse_ok (doc);
}

static bool
strv_equal (char *const *v, const char *const *want)
{
  size_t i;
  if (v == NULL)
    return false;
  for (i = 0; want[i]; i++)
    if (v[i] == NULL || strcmp (v[i], want[i]) != 0)
      return false;
  return v[i] == NULL;
}

#define assert_strv(v, ...)                                                    \
  do                                                                           \
    {                                                                          \
      static const char *const want_[] = { __VA_ARGS__, NULL };                \
      assert_true (strv_equal ((v), want_));                                   \
    }                                                                          \
  while (0)

static uint64_t
cap_bit (const char *name)
{
  int c = oci_cap_from_name (name);
  assert_true (c >= 0);
  return 1ull << c;
}

/* ------------------------------------------------------------------------ */
/* Valid documents                                                          */

/* What `runc spec` writes (and scripts/mkimage-busybox.sh ships). */
static const char runc_spec[]
    = "{'ociVersion': '1.2.0',"
      " 'process': {'terminal': false, 'user': {'uid': 0, 'gid': 0},"
      "   'args': ['sh'],"
      "   'env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
      "/sbin:/bin', 'TERM=xterm'],"
      "   'cwd': '/',"
      "   'capabilities': {"
      "     'bounding': ['CAP_AUDIT_WRITE', 'CAP_KILL', "
      "'CAP_NET_BIND_SERVICE'],"
      "     'effective': ['CAP_AUDIT_WRITE', 'CAP_KILL', "
      "'CAP_NET_BIND_SERVICE'],"
      "     'permitted': ['CAP_AUDIT_WRITE', 'CAP_KILL', "
      "'CAP_NET_BIND_SERVICE']},"
      "   'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024}],"
      "   'noNewPrivileges': true},"
      " 'root': {'path': 'rootfs', 'readonly': true},"
      " 'hostname': 'runc',"
      " 'mounts': ["
      "   {'destination': '/proc', 'type': 'proc', 'source': 'proc'},"
      "   {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs',"
      "    'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},"
      "   {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',"
      "    'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666',"
      "                'mode=0620', 'gid=5']},"
      "   {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm',"
      "    'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', "
      "'size=65536k']},"
      "   {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue',"
      "    'options': ['nosuid', 'noexec', 'nodev']},"
      "   {'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs',"
      "    'options': ['nosuid', 'noexec', 'nodev', 'ro']},"
      "   {'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': "
      "'cgroup',"
      "    'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']}],"
      " 'linux': {"
      "   'resources': {'devices': [{'allow': false, 'access': 'rwm'}]},"
      "   'namespaces': [{'type': 'pid'}, {'type': 'network'}, {'type': "
      "'ipc'},"
      "                  {'type': 'uts'}, {'type': 'mount'}, {'type': "
      "'cgroup'}],"
      "   'maskedPaths': ['/proc/acpi', '/proc/asound', '/proc/kcore',"
      "                   '/proc/keys', '/proc/latency_stats', "
      "'/proc/timer_list',"
      "                   '/proc/timer_stats', '/proc/sched_debug', "
      "'/sys/firmware',"
      "                   '/proc/scsi'],"
      "   'readonlyPaths': ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys',"
      "                     '/proc/sysrq-trigger']}}";

static void
test_runc_spec (void **state)
{
  cleanup_oci_config struct oci_config *cfg = parse_text_ok (runc_spec);
  struct oci_process *p = cfg->process;
  uint64_t caps3 = cap_bit ("CAP_AUDIT_WRITE") | cap_bit ("CAP_KILL")
                   | cap_bit ("CAP_NET_BIND_SERVICE");
  int k;

  assert_string_equal (cfg->oci_version, "1.2.0");
  assert_string_equal (cfg->root_path, "rootfs");
  assert_true (cfg->root_readonly);
  assert_string_equal (cfg->hostname, "runc");
  assert_null (cfg->domainname);

  assert_non_null (p);
  assert_false (p->terminal);
  assert_int_equal (p->uid, 0);
  assert_int_equal (p->gid, 0);
  assert_int_equal (p->umask, -1);
  assert_int_equal (p->additional_gids_len, 0);
  assert_strv (p->args, "sh");
  assert_strv (p->env,
               "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
               "/bin",
               "TERM=xterm");
  assert_string_equal (p->cwd, "/");
  assert_true (p->caps.present);
  assert_int_equal (p->caps.bounding, caps3);
  assert_int_equal (p->caps.effective, caps3);
  assert_int_equal (p->caps.permitted, caps3);
  assert_int_equal (p->caps.inheritable, 0);
  assert_int_equal (p->caps.ambient, 0);
  assert_int_equal (p->rlimits_len, 1);
  assert_int_equal (p->rlimits[0].resource, RLIMIT_NOFILE);
  assert_string_equal (p->rlimits[0].name, "RLIMIT_NOFILE");
  assert_int_equal (p->rlimits[0].soft, 1024);
  assert_int_equal (p->rlimits[0].hard, 1024);
  assert_true (p->no_new_privileges);
  assert_false (p->has_oom_score_adj);
  assert_false (p->has_scheduler);
  assert_false (p->has_io_priority);
  assert_null (p->apparmor_profile);
  assert_null (p->selinux_label);

  assert_int_equal (cfg->mounts_len, 7);
  assert_string_equal (cfg->mounts[0].destination, "/proc");
  assert_string_equal (cfg->mounts[0].type, "proc");
  assert_string_equal (cfg->mounts[0].source, "proc");
  assert_int_equal (cfg->mounts[0].flags, 0);
  assert_null (cfg->mounts[0].data);
  assert_non_null (cfg->mounts[0].options);
  assert_null (cfg->mounts[0].options[0]);
  assert_int_equal (cfg->mounts[1].flags, MS_NOSUID | MS_STRICTATIME);
  assert_string_equal (cfg->mounts[1].data, "mode=755,size=65536k");
  assert_int_equal (cfg->mounts[2].flags, MS_NOSUID | MS_NOEXEC);
  assert_string_equal (cfg->mounts[2].data,
                       "newinstance,ptmxmode=0666,mode=0620,gid=5");
  assert_int_equal (cfg->mounts[4].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV);
  assert_null (cfg->mounts[4].data);
  assert_int_equal (cfg->mounts[5].flags,
                    MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY);
  assert_int_equal (cfg->mounts[6].flags,
                    MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY);
  assert_false (cfg->mounts[6].bind);

  for (k = 0; k < OCI_NS_COUNT; k++)
    assert_null (cfg->ns[k].path);
  assert_false (cfg->ns[OCI_NS_USER].present);
  assert_true (cfg->ns[OCI_NS_PID].present);
  assert_true (cfg->ns[OCI_NS_NET].present);
  assert_true (cfg->ns[OCI_NS_IPC].present);
  assert_true (cfg->ns[OCI_NS_UTS].present);
  assert_true (cfg->ns[OCI_NS_MOUNT].present);
  assert_true (cfg->ns[OCI_NS_CGROUP].present);
  assert_false (cfg->ns[OCI_NS_TIME].present);
  assert_int_equal (cfg->uid_mappings_len, 0);
  assert_int_equal (cfg->devices_len, 0);
  assert_int_equal (cfg->sysctl_len, 0);
  assert_null (cfg->cgroups_path);
  assert_null (cfg->seccomp);
  assert_non_null (cfg->resources);
  assert_ptr_equal (
      cfg->resources,
      json_object_get (json_object_get (cfg->doc, "linux"), "resources"));
  assert_int_equal (strv_len (cfg->masked_paths), 10);
  assert_string_equal (cfg->masked_paths[2], "/proc/kcore");
  assert_strv (cfg->readonly_paths, "/proc/bus", "/proc/fs", "/proc/irq",
               "/proc/sys", "/proc/sysrq-trigger");
  assert_int_equal (cfg->rootfs_propagation, 0);
  assert_false (cfg->has_personality);
  assert_false (cfg->has_time_offsets);
  assert_false (cfg->has_intel_rdt);
  for (k = 0; k < OCI_HOOK_COUNT; k++)
    assert_int_equal (cfg->hooks[k].len, 0);
}

/* Every member Berth knows, with non-default values. */
static const char full_config[]
    = "{'ociVersion': '1.2.0',"
      " 'process': {"
      "   'terminal': true,"
      "   'consoleSize': {'height': 24, 'width': 80},"
      "   'user': {'uid': 1000, 'gid': 1001, 'umask': 18,"
      "            'additionalGids': [5, 6, 4294967295], 'username': 'me'},"
      "   'args': ['/bin/sh', '-c', 'exit 0'],"
      "   'env': ['PATH=/bin', 'TERM=xterm'],"
      "   'cwd': '/work',"
      "   'capabilities': {"
      "     'bounding': ['CAP_CHOWN', 'CAP_SYS_ADMIN', "
      "'CAP_CHECKPOINT_RESTORE'],"
      "     'effective': ['CAP_KILL'],"
      "     'permitted': ['CAP_KILL', 'cap_net_raw'],"
      "     'inheritable': ['CAP_SETUID'],"
      "     'ambient': ['CAP_NET_BIND_SERVICE']},"
      "   'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1024, 'hard': 4096},"
      "               {'type': 'RLIMIT_CORE', 'soft': 0, 'hard': 0},"
      "               {'type': 'RLIMIT_AS', 'soft': 9223372036854775807,"
      "                'hard': 9223372036854775807}],"
      "   'noNewPrivileges': true,"
      "   'apparmorProfile': 'berth-default',"
      "   'selinuxLabel': 'system_u:system_r:container_t:s0',"
      "   'oomScoreAdj': -500,"
      "   'scheduler': {'policy': 'SCHED_DEADLINE', 'nice': -5, 'priority': "
      "0,"
      "                 'flags': ['SCHED_FLAG_RESET_ON_FORK', "
      "'SCHED_FLAG_RECLAIM'],"
      "                 'runtime': 10000000, 'deadline': 20000000,"
      "                 'period': 30000000},"
      "   'ioPriority': {'class': 'IOPRIO_CLASS_BE', 'priority': 4},"
      "   'execCPUAffinity': {'initial': '0', 'final': '0-1'}},"
      " 'root': {'path': '/var/lib/box/rootfs', 'readonly': false},"
      " 'hostname': 'box',"
      " 'domainname': 'example.org',"
      " 'mounts': ["
      "   {'destination': '/proc', 'type': 'proc', 'source': 'proc'},"
      "   {'destination': '/data', 'source': '/srv/data',"
      "    'options': ['rbind', 'ro', 'nosuid', 'nodev', 'noexec', "
      "'rprivate',"
      "                'rro', 'rnosuid']},"
      "   {'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs',"
      "    'options': ['nosuid', 'mode=1777', 'size=65536k']},"
      "   {'destination': '/idmapped', 'type': 'bind', 'source': '/srv/id',"
      "    'options': ['idmap'],"
      "    'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}],"
      "    'gidMappings': [{'containerID': 0, 'hostID': 2000, 'size': 2}]}],"
      " 'hooks': {"
      "   'prestart': [{'path': '/usr/bin/prestart', 'args': ['prestart', "
      "'x'],"
      "                 'env': ['A=1'], 'timeout': 5},"
      "                {'path': '/usr/bin/prestart2'}],"
      "   'createRuntime': [{'path': '/usr/bin/create-runtime'}],"
      "   'createContainer': [{'path': '/usr/bin/create-container'}],"
      "   'startContainer': [{'path': '/usr/bin/start-container'}],"
      "   'poststart': [{'path': '/usr/bin/poststart'}],"
      "   'poststop': [{'path': '/usr/bin/poststop', 'timeout': 30}]},"
      " 'annotations': {'org.example.key': 'value'},"
      " 'linux': {"
      "   'namespaces': [{'type': 'user'}, {'type': 'pid'},"
      "                  {'type': 'network', 'path': '/var/run/netns/box'},"
      "                  {'type': 'ipc', 'path': ''}, {'type': 'uts'},"
      "                  {'type': 'mount'}, {'type': 'cgroup'}, {'type': "
      "'time'}],"
      "   'uidMappings': [{'containerID': 0, 'hostID': 100000, 'size': "
      "65536}],"
      "   'gidMappings': [{'containerID': 0, 'hostID': 100000, 'size': "
      "65536},"
      "                   {'containerID': 65536, 'hostID': 300000, 'size': "
      "1}],"
      "   'devices': [{'path': '/dev/fuse', 'type': 'c', 'major': 10,"
      "                'minor': 229, 'fileMode': 438, 'uid': 0, 'gid': 5},"
      "               {'path': '/dev/loop9', 'type': 'b', 'major': 7, "
      "'minor': 9},"
      "               {'path': '/dev/fifo', 'type': 'p'}],"
      "   'sysctl': {'net.ipv4.ip_forward': '1', 'kernel.msgmax': '8192'},"
      "   'cgroupsPath': '/berth/box',"
      "   'resources': {'memory': {'limit': 536870912}, 'pids': {'limit': "
      "100}},"
      "   'seccomp': {'defaultAction': 'SCMP_ACT_ERRNO',"
      "               'syscalls': [{'names': ['read'], 'action': "
      "'SCMP_ACT_ALLOW'}]},"
      "   'maskedPaths': ['/proc/kcore'],"
      "   'readonlyPaths': ['/proc/sys'],"
      "   'rootfsPropagation': 'rslave',"
      "   'mountLabel': 'system_u:object_r:container_file_t:s0',"
      "   'personality': {'domain': 'LINUX32'},"
      "   'timeOffsets': {'boottime': {'secs': -3600, 'nanosecs': 5},"
      "                   'monotonic': {'secs': 86400, 'nanosecs': "
      "999999999}},"
      "   'intelRdt': {'closID': 'box'}}}";

static void
check_full_process (const struct oci_process *p)
{
  assert_true (p->terminal);
  assert_int_equal (p->console_height, 24);
  assert_int_equal (p->console_width, 80);
  assert_int_equal (p->uid, 1000);
  assert_int_equal (p->gid, 1001);
  assert_int_equal (p->umask, 18);
  assert_int_equal (p->additional_gids_len, 3);
  assert_int_equal (p->additional_gids[0], 5);
  assert_int_equal (p->additional_gids[1], 6);
  assert_int_equal (p->additional_gids[2], UINT32_MAX);
  assert_strv (p->args, "/bin/sh", "-c", "exit 0");
  assert_strv (p->env, "PATH=/bin", "TERM=xterm");
  assert_string_equal (p->cwd, "/work");
  assert_null (p->command_line);

  assert_true (p->caps.present);
  assert_int_equal (p->caps.bounding, cap_bit ("CAP_CHOWN")
                                          | cap_bit ("CAP_SYS_ADMIN")
                                          | cap_bit ("CAP_CHECKPOINT_RESTORE"));
  assert_int_equal (p->caps.effective, cap_bit ("CAP_KILL"));
  assert_int_equal (p->caps.permitted,
                    cap_bit ("CAP_KILL") | cap_bit ("CAP_NET_RAW"));
  assert_int_equal (p->caps.inheritable, cap_bit ("CAP_SETUID"));
  assert_int_equal (p->caps.ambient, cap_bit ("CAP_NET_BIND_SERVICE"));

  assert_int_equal (p->rlimits_len, 3);
  assert_int_equal (p->rlimits[0].resource, RLIMIT_NOFILE);
  assert_int_equal (p->rlimits[0].soft, 1024);
  assert_int_equal (p->rlimits[0].hard, 4096);
  assert_int_equal (p->rlimits[1].resource, RLIMIT_CORE);
  assert_string_equal (p->rlimits[1].name, "RLIMIT_CORE");
  assert_int_equal (p->rlimits[1].soft, 0);
  assert_int_equal (p->rlimits[2].resource, RLIMIT_AS);
  assert_int_equal (p->rlimits[2].hard, INT64_MAX);

  assert_true (p->no_new_privileges);
  assert_string_equal (p->apparmor_profile, "berth-default");
  assert_string_equal (p->selinux_label, "system_u:system_r:container_t:s0");
  assert_true (p->has_oom_score_adj);
  assert_int_equal (p->oom_score_adj, -500);

  assert_true (p->has_scheduler);
  assert_int_equal (p->sched_policy, 6 /* SCHED_DEADLINE */);
  assert_int_equal (p->sched_nice, -5);
  assert_int_equal (p->sched_priority, 0);
  assert_int_equal (p->sched_flags, 0x01 | 0x02);
  assert_int_equal (p->sched_runtime, 10000000);
  assert_int_equal (p->sched_deadline, 20000000);
  assert_int_equal (p->sched_period, 30000000);

  assert_true (p->has_io_priority);
  assert_int_equal (p->io_class, 2 /* IOPRIO_CLASS_BE */);
  assert_int_equal (p->io_priority, 4);
  assert_string_equal (p->cpu_affinity_initial, "0");
  assert_string_equal (p->cpu_affinity_final, "0-1");
}

static void
check_full_mounts (const struct oci_config *cfg)
{
  const struct oci_mount *m;

  assert_int_equal (cfg->mounts_len, 4);

  m = &cfg->mounts[1]; /* a bind mount given by the option alone */
  assert_string_equal (m->destination, "/data");
  assert_string_equal (m->type, "");
  assert_string_equal (m->source, "/srv/data");
  assert_true (m->bind);
  assert_true (m->rec);
  assert_int_equal (m->flags, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  assert_int_equal (m->clear, 0);
  assert_int_equal (m->propagation, MS_PRIVATE | MS_REC);
  assert_int_equal (m->attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  assert_int_equal (m->attr_clr, 0);
  assert_null (m->data);
  assert_int_equal (strv_len (m->options), 8);

  m = &cfg->mounts[2];
  assert_false (m->bind);
  assert_int_equal (m->flags, MS_NOSUID);
  assert_string_equal (m->data, "mode=1777,size=65536k");

  m = &cfg->mounts[3]; /* type "bind" implies a bind; idmap is no data */
  assert_true (m->bind);
  assert_false (m->rec);
  assert_null (m->data);
  assert_strv (m->options, "idmap");
  assert_int_equal (m->uid_map_len, 1);
  assert_int_equal (m->uid_map[0].container_id, 0);
  assert_int_equal (m->uid_map[0].host_id, 1000);
  assert_int_equal (m->uid_map[0].size, 1);
  assert_int_equal (m->gid_map_len, 1);
  assert_int_equal (m->gid_map[0].host_id, 2000);
  assert_int_equal (m->gid_map[0].size, 2);
}

static void
check_full_hooks (const struct oci_config *cfg)
{
  static const char *const paths[OCI_HOOK_COUNT] = {
    [OCI_HOOK_PRESTART] = "/usr/bin/prestart",
    [OCI_HOOK_CREATE_RUNTIME] = "/usr/bin/create-runtime",
    [OCI_HOOK_CREATE_CONTAINER] = "/usr/bin/create-container",
    [OCI_HOOK_START_CONTAINER] = "/usr/bin/start-container",
    [OCI_HOOK_POSTSTART] = "/usr/bin/poststart",
    [OCI_HOOK_POSTSTOP] = "/usr/bin/poststop",
  };
  const struct oci_hook *h;
  int k;

  for (k = 0; k < OCI_HOOK_COUNT; k++)
    {
      assert_int_equal (cfg->hooks[k].len, k == OCI_HOOK_PRESTART ? 2 : 1);
      assert_string_equal (cfg->hooks[k].list[0].path, paths[k]);
    }
  h = &cfg->hooks[OCI_HOOK_PRESTART].list[0];
  assert_strv (h->args, "prestart", "x");
  assert_strv (h->env, "A=1");
  assert_int_equal (h->timeout, 5);
  h = &cfg->hooks[OCI_HOOK_PRESTART].list[1];
  assert_string_equal (h->path, "/usr/bin/prestart2");
  assert_null (h->args);
  assert_null (h->env);
  assert_int_equal (h->timeout, 0);
  assert_int_equal (cfg->hooks[OCI_HOOK_POSTSTOP].list[0].timeout, 30);
}

static const char *
sysctl_get (const struct oci_config *cfg, const char *key)
{
  size_t i;
  for (i = 0; i < cfg->sysctl_len; i++)
    if (strcmp (cfg->sysctl[i].key, key) == 0)
      return cfg->sysctl[i].value;
  return NULL;
}

static void
check_full_linux (const struct oci_config *cfg)
{
  json_t *lx = json_object_get (cfg->doc, "linux");
  int k;

  for (k = 0; k < OCI_NS_COUNT; k++)
    assert_true (cfg->ns[k].present);
  assert_string_equal (cfg->ns[OCI_NS_NET].path, "/var/run/netns/box");
  assert_null (cfg->ns[OCI_NS_IPC].path); /* "" means create */
  assert_null (cfg->ns[OCI_NS_USER].path);

  assert_int_equal (cfg->uid_mappings_len, 1);
  assert_int_equal (cfg->uid_mappings[0].container_id, 0);
  assert_int_equal (cfg->uid_mappings[0].host_id, 100000);
  assert_int_equal (cfg->uid_mappings[0].size, 65536);
  assert_int_equal (cfg->gid_mappings_len, 2);
  assert_int_equal (cfg->gid_mappings[1].container_id, 65536);
  assert_int_equal (cfg->gid_mappings[1].host_id, 300000);
  assert_int_equal (cfg->gid_mappings[1].size, 1);

  assert_int_equal (cfg->devices_len, 3);
  assert_string_equal (cfg->devices[0].path, "/dev/fuse");
  assert_int_equal (cfg->devices[0].type, 'c');
  assert_int_equal (cfg->devices[0].major, 10);
  assert_int_equal (cfg->devices[0].minor, 229);
  assert_true (cfg->devices[0].has_mode);
  assert_int_equal (cfg->devices[0].file_mode, 0666);
  assert_true (cfg->devices[0].has_uid);
  assert_int_equal (cfg->devices[0].uid, 0);
  assert_true (cfg->devices[0].has_gid);
  assert_int_equal (cfg->devices[0].gid, 5);
  assert_int_equal (cfg->devices[1].type, 'b');
  assert_int_equal (cfg->devices[1].major, 7);
  assert_int_equal (cfg->devices[1].minor, 9);
  assert_false (cfg->devices[1].has_mode);
  assert_false (cfg->devices[1].has_uid);
  assert_false (cfg->devices[1].has_gid);
  assert_int_equal (cfg->devices[2].type, 'p');

  assert_int_equal (cfg->sysctl_len, 2);
  assert_string_equal (sysctl_get (cfg, "net.ipv4.ip_forward"), "1");
  assert_string_equal (sysctl_get (cfg, "kernel.msgmax"), "8192");

  assert_string_equal (cfg->cgroups_path, "/berth/box");
  /* Borrowed from the document, not copied. */
  assert_ptr_equal (cfg->resources, json_object_get (lx, "resources"));
  assert_ptr_equal (cfg->seccomp, json_object_get (lx, "seccomp"));
  assert_string_equal (
      json_string_value (json_object_get (cfg->seccomp, "defaultAction")),
      "SCMP_ACT_ERRNO");
  assert_ptr_equal (cfg->annotations,
                    json_object_get (cfg->doc, "annotations"));
  assert_strv (cfg->masked_paths, "/proc/kcore");
  assert_strv (cfg->readonly_paths, "/proc/sys");
  assert_int_equal (cfg->rootfs_propagation, MS_SLAVE | MS_REC);
  assert_string_equal (cfg->mount_label,
                       "system_u:object_r:container_file_t:s0");
  assert_true (cfg->has_personality);
  assert_int_equal (cfg->personality, PER_LINUX32);
  assert_true (cfg->has_time_offsets);
  assert_int_equal (cfg->boottime_secs, -3600);
  assert_int_equal (cfg->boottime_nanosecs, 5);
  assert_int_equal (cfg->monotonic_secs, 86400);
  assert_int_equal (cfg->monotonic_nanosecs, 999999999);
  assert_true (cfg->has_intel_rdt);
}

static void
test_full_config (void **state)
{
  cleanup_oci_config struct oci_config *cfg = parse_text_ok (full_config);

  assert_string_equal (cfg->oci_version, "1.2.0");
  assert_string_equal (cfg->root_path, "/var/lib/box/rootfs");
  assert_false (cfg->root_readonly);
  assert_string_equal (cfg->hostname, "box");
  assert_string_equal (cfg->domainname, "example.org");
  assert_non_null (cfg->process);
  check_full_process (cfg->process);
  check_full_mounts (cfg);
  check_full_hooks (cfg);
  check_full_linux (cfg);
}

static void
test_minimal_defaults (void **state)
{
  cleanup_oci_config struct oci_config *cfg = NULL;
  struct oci_process *p;
  int k;

  cfg = parse_text_ok (minimal_config);
  p = cfg->process;
  assert_non_null (p);
  assert_string_equal (p->cwd, "/");
  assert_non_null (p->env); /* always a vector, maybe empty */
  assert_null (p->env[0]);
  assert_int_equal (p->umask, -1);
  assert_false (p->caps.present);
  assert_false (p->terminal);
  assert_false (p->no_new_privileges);
  assert_int_equal (p->rlimits_len, 0);
  assert_false (cfg->root_readonly);
  assert_null (cfg->hostname);
  assert_int_equal (cfg->mounts_len, 0);
  assert_null (cfg->resources);
  assert_null (cfg->annotations);
  for (k = 0; k < OCI_HOOK_COUNT; k++)
    assert_int_equal (cfg->hooks[k].len, 0);
  oci_config_free (steal_pointer (&cfg));

  /* No process (valid for `create` of a config used only for its mounts)
   * and no linux section at all. */
  cfg = parse_text_ok ("{'ociVersion': '1.0.2', 'root': {'path': 'r'}}");
  assert_null (cfg->process);
  for (k = 0; k < OCI_NS_COUNT; k++)
    assert_false (cfg->ns[k].present);
}

static void
test_optional_members_null (void **state)
{
  cleanup_oci_config struct oci_config *cfg = NULL;

  /* null means absent everywhere; ids given as null are 0, not garbage. */
  cfg = parse_with_ok ("process.user",
                       "{'uid': null, 'gid': null, 'umask': null}");
  assert_int_equal (cfg->process->uid, 0);
  assert_int_equal (cfg->process->gid, 0);
  assert_int_equal (cfg->process->umask, -1);
  oci_config_free (steal_pointer (&cfg));

  cfg = parse_with_ok ("process.user", "{'uid': 7}");
  assert_int_equal (cfg->process->uid, 7);
  assert_int_equal (cfg->process->gid, 0);
  oci_config_free (steal_pointer (&cfg));

  cfg = parse_with_ok ("process.consoleSize", "{'height': 5, 'width': null}");
  assert_int_equal (cfg->process->console_height, 5);
  assert_int_equal (cfg->process->console_width, 0);
  oci_config_free (steal_pointer (&cfg));

  cfg = parse_with_ok ("process.oomScoreAdj", "null");
  assert_false (cfg->process->has_oom_score_adj);
  oci_config_free (steal_pointer (&cfg));

  cfg = parse_with_ok ("mounts", "null");
  assert_int_equal (cfg->mounts_len, 0);
  oci_config_free (steal_pointer (&cfg));

  cfg = parse_with_ok ("hooks", "{'prestart': null, 'poststop': []}");
  assert_int_equal (cfg->hooks[OCI_HOOK_PRESTART].len, 0);
  assert_int_equal (cfg->hooks[OCI_HOOK_POSTSTOP].len, 0);
}

static void
test_rlimit_above_int64 (void **state)
{
  /* jansson refuses integer literals above INT64_MAX; such limits come as
   * integral reals. */
  cleanup_oci_config struct oci_config *cfg = parse_with_ok (
      "process.rlimits", "[{'type': 'RLIMIT_AS', 'soft': 1e19, 'hard': "
                         "1.8446744073709550e19}]");

  assert_int_equal (cfg->process->rlimits[0].soft, 10000000000000000000ull);
  assert_int_equal (cfg->process->rlimits[0].hard, 18446744073709549568ull);
}

static void
test_integer_literals_above_int64 (void **state)
{
  /* Go writes RLIM_INFINITY as 18446744073709551615: accepted where an
   * unsigned 64-bit value is expected, a type error naming the field
   * elsewhere, and 2^64 stays invalid JSON.  */
  static const char *const ok
      = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"r\"},"
        " \"process\": {\"args\": [\"sh\"], \"rlimits\": [{\"type\":"
        " \"RLIMIT_CORE\", \"soft\": 18446744073709551615, \"hard\":"
        " 18446744073709551615}]}}";
  static const char *const bad_uid
      = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"r\"},"
        " \"process\": {\"args\": [\"sh\"], \"user\": {\"uid\":"
        " 18446744073709551615}}}";
  static const char *const too_big
      = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"r\"},"
        " \"process\": {\"args\": [\"sh\"], \"rlimits\": [{\"type\":"
        " \"RLIMIT_CORE\", \"soft\": 1, \"hard\":"
        " 18446744073709551616}]}}";
  struct oci_config *cfg = NULL;
  berth_error_t err = NULL;

  assert_int_equal (oci_config_parse (ok, strlen (ok), SOURCE, &cfg, &err), 0);
  assert_int_equal (cfg->process->rlimits[0].soft, UINT64_MAX);
  assert_int_equal (cfg->process->rlimits[0].hard, UINT64_MAX);
  oci_config_free (cfg);
  cfg = NULL;

  assert_true (oci_config_parse (bad_uid, strlen (bad_uid), SOURCE, &cfg, &err)
               < 0);
  assert_non_null (strstr (err->msg, "process.user.uid"));
  berth_error_release (&err);

  assert_true (oci_config_parse (too_big, strlen (too_big), SOURCE, &cfg, &err)
               < 0);
  assert_non_null (strstr (err->msg, "too big integer"));
  berth_error_release (&err);
}

static void
test_hostname (void **state)
{
  cleanup_oci_config struct oci_config *cfg = NULL;

  /* An empty name is "do not set", as in runc: no uts namespace needed. */
  cfg = parse_with_ok ("hostname", "''");
  assert_null (cfg->hostname);
  oci_config_free (steal_pointer (&cfg));
  cfg = parse_with_ok ("domainname", "''");
  assert_null (cfg->domainname);
  oci_config_free (steal_pointer (&cfg));

  expect_error_with ("hostname", "'box'",
                     "hostname/domainname need a new uts namespace");
  expect_error_with ("domainname", "'example.org'",
                     "hostname/domainname need a new uts namespace");
  /* Joining an existing uts namespace is allowed to set it. */
  cfg = parse_with_ok ("linux.namespaces",
                       "[{'type': 'uts', 'path': '/proc/1/ns/uts'}]");
  oci_config_free (steal_pointer (&cfg));
}

static void
test_rootfs_propagation (void **state)
{
  static const struct
  {
    const char *value;
    unsigned long flags;
  } cases[] = {
    { "'private'", MS_PRIVATE },       { "'rprivate'", MS_PRIVATE | MS_REC },
    { "'shared'", MS_SHARED },         { "'rshared'", MS_SHARED | MS_REC },
    { "'slave'", MS_SLAVE },           { "'rslave'", MS_SLAVE | MS_REC },
    { "'unbindable'", MS_UNBINDABLE }, { "''", 0 },
  };
  size_t i;

  for (i = 0; i < ARRAY_SIZE (cases); i++)
    {
      cleanup_oci_config struct oci_config *cfg
          = parse_with_ok ("linux.rootfsPropagation", cases[i].value);
      assert_int_equal (cfg->rootfs_propagation, cases[i].flags);
    }
  expect_error_with ("linux.rootfsPropagation", "'bogus'",
                     "linux.rootfsPropagation: unknown value `bogus`");
  expect_error_with ("linux.rootfsPropagation", "'rbind'",
                     "linux.rootfsPropagation: unknown value `rbind`");
}

static void
test_personality_and_user_ns (void **state)
{
  cleanup_oci_config struct oci_config *cfg = NULL;

  cfg = parse_with_ok ("linux.personality", "{'domain': 'LINUX'}");
  assert_true (cfg->has_personality);
  assert_int_equal (cfg->personality, PER_LINUX);
  oci_config_free (steal_pointer (&cfg));

  /* Joining a user namespace needs no mappings. */
  cfg = parse_with_ok ("linux.namespaces",
                       "[{'type': 'user', 'path': '/proc/1/ns/user'}]");
  assert_true (cfg->ns[OCI_NS_USER].present);
  assert_string_equal (cfg->ns[OCI_NS_USER].path, "/proc/1/ns/user");
  oci_config_free (steal_pointer (&cfg));

  /* A new time namespace without offsets is fine. */
  cfg = parse_with_ok ("linux.namespaces", "[{'type': 'time'}]");
  assert_true (cfg->ns[OCI_NS_TIME].present);
  assert_false (cfg->has_time_offsets);
}

/* ------------------------------------------------------------------------ */
/* Mount options                                                            */

static void
test_mount_apply_option (void **state)
{
  struct oci_mount m;

  memset (&m, 0, sizeof (m));
  assert_true (oci_mount_apply_option (&m, "ro"));
  assert_int_equal (m.flags, MS_RDONLY);
  assert_true (oci_mount_apply_option (&m, "rw"));
  assert_int_equal (m.flags, 0);
  assert_int_equal (m.clear, MS_RDONLY);
  assert_true (oci_mount_apply_option (&m, "ro"));
  assert_int_equal (m.flags, MS_RDONLY);
  assert_int_equal (m.clear, 0);

  memset (&m, 0, sizeof (m));
  assert_true (oci_mount_apply_option (&m, "nosuid"));
  assert_true (oci_mount_apply_option (&m, "nodev"));
  assert_true (oci_mount_apply_option (&m, "noexec"));
  assert_int_equal (m.flags, MS_NOSUID | MS_NODEV | MS_NOEXEC);
  assert_true (oci_mount_apply_option (&m, "suid"));
  assert_true (oci_mount_apply_option (&m, "exec"));
  assert_int_equal (m.flags, MS_NODEV);
  assert_int_equal (m.clear, MS_NOSUID | MS_NOEXEC);
  assert_true (oci_mount_apply_option (&m, "dev"));
  assert_int_equal (m.flags, 0);
  assert_true (oci_mount_apply_option (&m, "defaults"));
  assert_int_equal (m.flags, 0);
  assert_false (m.bind);

  memset (&m, 0, sizeof (m));
  assert_true (oci_mount_apply_option (&m, "bind"));
  assert_true (m.bind);
  assert_false (m.rec);
  assert_true (oci_mount_apply_option (&m, "rbind"));
  assert_true (m.bind);
  assert_true (m.rec);
  assert_int_equal (m.flags, 0);

  memset (&m, 0, sizeof (m));
  assert_true (oci_mount_apply_option (&m, "private"));
  assert_int_equal (m.propagation, MS_PRIVATE);
  assert_true (oci_mount_apply_option (&m, "rprivate"));
  assert_int_equal (m.propagation, MS_PRIVATE | MS_REC);
  assert_true (oci_mount_apply_option (&m, "rshared"));
  assert_int_equal (m.propagation, MS_SHARED | MS_REC);
  assert_true (oci_mount_apply_option (&m, "rslave"));
  assert_int_equal (m.propagation, MS_SLAVE | MS_REC);
  assert_true (oci_mount_apply_option (&m, "runbindable"));
  assert_int_equal (m.propagation, MS_UNBINDABLE | MS_REC);
  assert_int_equal (m.flags, 0);

  /* Recursive options go to mount_setattr, not to the MS_* flags; the later
   * of rro/rrw wins. */
  memset (&m, 0, sizeof (m));
  assert_true (oci_mount_apply_option (&m, "rro"));
  assert_true (oci_mount_apply_option (&m, "rnosuid"));
  assert_true (oci_mount_apply_option (&m, "rnodev"));
  assert_true (oci_mount_apply_option (&m, "rnoexec"));
  assert_int_equal (m.attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
                                    | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  assert_int_equal (m.attr_clr, 0);
  assert_int_equal (m.flags, 0);
  assert_true (oci_mount_apply_option (&m, "rrw"));
  assert_true (oci_mount_apply_option (&m, "rsuid"));
  assert_int_equal (m.attr_set, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  assert_int_equal (m.attr_clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  assert_true (oci_mount_apply_option (&m, "rro"));
  assert_int_equal (m.attr_set,
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  assert_int_equal (m.attr_clr, MOUNT_ATTR_NOSUID);

  memset (&m, 0, sizeof (m));
  assert_true (oci_mount_apply_option (&m, "rnoatime"));
  assert_true (oci_mount_apply_option (&m, "rnosymfollow"));
  assert_int_equal (m.attr_set, MOUNT_ATTR_NOATIME | MOUNT_ATTR_NOSYMFOLLOW);
  assert_true (oci_mount_apply_option (&m, "noatime"));
  assert_true (oci_mount_apply_option (&m, "nodiratime"));
  assert_true (oci_mount_apply_option (&m, "relatime"));
  assert_int_equal (m.flags, MS_NOATIME | MS_NODIRATIME | MS_RELATIME);

  /* Unknown options are filesystem data, not flags. */
  memset (&m, 0, sizeof (m));
  assert_false (oci_mount_apply_option (&m, "mode=755"));
  assert_false (oci_mount_apply_option (&m, "size=65536k"));
  assert_false (oci_mount_apply_option (&m, "RO"));
  assert_false (oci_mount_apply_option (&m, ""));
  assert_int_equal (m.flags, 0);
  assert_int_equal (m.clear, 0);
  assert_int_equal (m.propagation, 0);
  assert_int_equal (m.attr_set | m.attr_clr, 0);
}

static void
test_mount_options_in_config (void **state)
{
  cleanup_oci_config struct oci_config *cfg = parse_with_ok (
      "mounts", "[{'destination': '/a', 'type': 'tmpfs', 'source': 'tmpfs',"
                "  'options': ['ro', 'mode=755', 'nosuid', 'size=65536k', 'rw',"
                "              'uid=0', 'rshared', 'idmap', 'ridmap']},"
                " {'destination': '/b', 'type': 'none', 'source': '/host/b',"
                "  'options': ['rbind', 'rro', 'rnosuid', 'rslave']},"
                " {'destination': '/c', 'type': 'tmpfs', 'options': []},"
                " {'destination': '/d', 'type': 'tmpfs'}]");
  const struct oci_mount *m = cfg->mounts;

  assert_int_equal (cfg->mounts_len, 4);
  assert_int_equal (m[0].flags, MS_NOSUID);
  assert_int_equal (m[0].clear, MS_RDONLY);
  assert_int_equal (m[0].propagation, MS_SHARED | MS_REC);
  assert_string_equal (m[0].data, "mode=755,size=65536k,uid=0");
  assert_false (m[0].bind);
  assert_int_equal (strv_len (m[0].options), 9);

  assert_true (m[1].bind);
  assert_true (m[1].rec);
  assert_string_equal (m[1].type, "none");
  assert_int_equal (m[1].flags, 0);
  assert_int_equal (m[1].attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
  assert_int_equal (m[1].attr_clr, 0);
  assert_int_equal (m[1].propagation, MS_SLAVE | MS_REC);
  assert_null (m[1].data);

  assert_null (m[2].source);
  assert_null (m[2].data);
  assert_non_null (m[3].options);
  assert_null (m[3].options[0]);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

struct error_case
{
  const char *path;  /* member of minimal_config to change */
  const char *value; /* its new value (NULL: remove it) */
  const char *want;  /* a part of the message */
};

static void
run_error_cases (const struct error_case *cases, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    expect_error_with (cases[i].path, cases[i].value, cases[i].want);
}

static void
test_errors_top (void **state)
{
  static const struct error_case cases[] = {
    { "ociVersion", NULL, "ociVersion: missing" },
    { "ociVersion", "null", "ociVersion: missing" },
    { "ociVersion", "1", "ociVersion: expected a string" },
    { "ociVersion", "'2.0.0'", "ociVersion: unsupported version `2.0.0`" },
    { "ociVersion", "''", "ociVersion: unsupported version ``" },
    { "root", NULL, "root.path: missing" },
    { "root", "{}", "root.path: missing" },
    { "root", "'rootfs'", "root: expected an object" },
    { "root.path", "''", "root.path: missing" },
    { "root.path", "7", "root.path: expected a string" },
    { "root.readonly", "'yes'", "root.readonly: expected a boolean" },
    { "hostname", "5", "hostname: expected a string" },
    { "domainname", "[]", "domainname: expected a string" },
    { "annotations", "[]", "annotations: expected an object" },
    { "process", "'sh'", "process: expected an object" },
    { "mounts", "{}", "mounts: expected an array" },
    { "hooks", "[]", "hooks: expected an object" },
    { "linux", "true", "linux: expected an object" },
  };
  run_error_cases (cases, ARRAY_SIZE (cases));
}

static void
test_errors_process (void **state)
{
  static const struct error_case cases[] = {
    { "process.terminal", "'yes'", "process.terminal: expected a boolean" },
    { "process.terminal", "1", "process.terminal: expected a boolean" },
    { "process.consoleSize", "[]", "process.consoleSize: expected an object" },
    { "process.consoleSize.height", "-1",
      "process.consoleSize.height: -1 is out of range" },
    { "process.consoleSize.width", "65536",
      "process.consoleSize.width: 65536 is out of range" },
    { "process.args", NULL, "process.args: must not be empty" },
    { "process.args", "[]", "process.args: must not be empty" },
    { "process.args", "'sh'", "process.args: expected an array" },
    { "process.args", "['sh', 1]",
      "process.args: expected an array of strings" },
    { "process.env", "['A=1', null]",
      "process.env: expected an array of strings" },
    { "process.commandLine", "'cmd.exe /c dir'",
      "process.commandLine: only supported on Windows" },
    { "process.cwd", "'work'", "process.cwd: `work` is not an absolute path" },
    { "process.cwd", "''", "process.cwd: `` is not an absolute path" },
    { "process.cwd", "1", "process.cwd: expected a string" },
    { "process.user", "0", "process.user: expected an object" },
    { "process.user.uid", "-1", "process.user.uid: -1 is out of range" },
    { "process.user.uid", "4294967296",
      "process.user.uid: 4294967296 is out of range" },
    { "process.user.uid", "'0'", "process.user.uid: expected an integer" },
    { "process.user.gid", "1.5", "process.user.gid: expected an integer" },
    { "process.user.umask", "512", "process.user.umask: 512 is out of range" },
    { "process.user.username", "0",
      "process.user.username: expected a string" },
    { "process.user.additionalGids", "[1, -1]",
      "process.user.additionalGids[1]: expected a gid" },
    { "process.user.additionalGids", "['1']",
      "process.user.additionalGids[0]: expected a gid" },
    { "process.user.additionalGids", "{}",
      "process.user.additionalGids: expected an array" },
    { "process.noNewPrivileges", "'true'",
      "process.noNewPrivileges: expected a boolean" },
    { "process.oomScoreAdj", "1001",
      "process.oomScoreAdj: 1001 is out of range" },
    { "process.oomScoreAdj", "-1001",
      "process.oomScoreAdj: -1001 is out of range" },
    { "process.apparmorProfile", "[]",
      "process.apparmorProfile: expected a string" },
    { "process.selinuxLabel", "1", "process.selinuxLabel: expected a string" },
    { "process.execCPUAffinity", "'0'",
      "process.execCPUAffinity: expected an object" },
    { "process.execCPUAffinity.final", "1",
      "process.execCPUAffinity.final: expected a string" },
  };
  run_error_cases (cases, ARRAY_SIZE (cases));
}

static void
test_errors_capabilities (void **state)
{
  static const struct error_case cases[] = {
    { "process.capabilities", "['CAP_KILL']",
      "process.capabilities: expected an object" },
    { "process.capabilities.bounding", "['CAP_KILL', 'CAP_FOO']",
      "process.capabilities.bounding: unknown capability `CAP_FOO`" },
    { "process.capabilities.effective", "['KILL']",
      "process.capabilities.effective: unknown capability `KILL`" },
    { "process.capabilities.permitted", "['CAP_SYS_ADMINX']",
      "process.capabilities.permitted: unknown capability `CAP_SYS_ADMINX`" },
    { "process.capabilities.inheritable", "['']",
      "process.capabilities.inheritable: unknown capability ``" },
    { "process.capabilities.ambient", "['CAP_99']",
      "process.capabilities.ambient: unknown capability `CAP_99`" },
    { "process.capabilities.ambient", "'CAP_KILL'",
      "process.capabilities.ambient: expected an array" },
    { "process.capabilities.bounding", "[21]",
      "process.capabilities.bounding: expected an array of strings" },
  };
  run_error_cases (cases, ARRAY_SIZE (cases));
}

static void
test_errors_rlimits_scheduler (void **state)
{
  static const struct error_case cases[] = {
    { "process.rlimits", "{}", "process.rlimits: expected an array" },
    { "process.rlimits", "[{'type': 'RLIMIT_FOO', 'soft': 1, 'hard': 1}]",
      "process.rlimits[0].type: unknown rlimit `RLIMIT_FOO`" },
    { "process.rlimits",
      "[{'type': 'RLIMIT_CORE', 'soft': 1, 'hard': 1},"
      " {'type': 'nofile', 'soft': 1, 'hard': 1}]",
      "process.rlimits[1].type: unknown rlimit `nofile`" },
    { "process.rlimits", "[{'type': 'RLIMIT_NOFILE', 'soft': 10, 'hard': 5}]",
      "process.rlimits[0]: soft limit 10 exceeds hard limit 5" },
    { "process.rlimits", "[{'soft': 1, 'hard': 1}]",
      "process.rlimits[0].type: missing" },
    { "process.rlimits", "['RLIMIT_NOFILE']",
      "process.rlimits[0].type: missing" },
    { "process.rlimits", "[{'type': 'RLIMIT_NOFILE', 'soft': -1, 'hard': 1}]",
      "process.rlimits[0].soft: expected a non-negative integer" },
    { "process.rlimits", "[{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': '1'}]",
      "process.rlimits[0].hard: expected a non-negative integer" },
    /* 2^64 does not fit: converting it would be undefined behaviour. */
    { "process.rlimits",
      "[{'type': 'RLIMIT_AS', 'soft': 1, 'hard': 1.8446744073709552e19}]",
      "process.rlimits[0].hard: expected a non-negative integer" },
    { "process.rlimits", "[{'type': 'RLIMIT_AS', 'soft': 0.5, 'hard': 1}]",
      "process.rlimits[0].soft: expected a non-negative integer" },
    { "process.scheduler", "{}", "process.scheduler.policy: missing" },
    { "process.scheduler", "{'policy': 'SCHED_ISO'}",
      "process.scheduler.policy: unsupported policy `SCHED_ISO`" },
    { "process.scheduler", "{'policy': 'SCHED_FOO'}",
      "process.scheduler.policy: unsupported policy `SCHED_FOO`" },
    { "process.scheduler", "{'policy': 'SCHED_OTHER', 'nice': 20}",
      "process.scheduler.nice: 20 is out of range" },
    { "process.scheduler", "{'policy': 'SCHED_FIFO', 'priority': 100}",
      "process.scheduler.priority: 100 is out of range" },
    { "process.scheduler", "{'policy': 'SCHED_OTHER', 'flags': ['SCHED_X']}",
      "process.scheduler.flags: unknown flag `SCHED_X`" },
    { "process.scheduler", "{'policy': 'SCHED_DEADLINE', 'runtime': -1}",
      "process.scheduler.runtime: expected a non-negative integer" },
    { "process.ioPriority", "{'priority': 1}",
      "process.ioPriority.class: missing" },
    { "process.ioPriority", "{'class': 'IOPRIO_CLASS_NONE'}",
      "process.ioPriority.class: unknown class `IOPRIO_CLASS_NONE`" },
    { "process.ioPriority", "{'class': 'IOPRIO_CLASS_RT', 'priority': 8}",
      "process.ioPriority.priority: 8 is out of range" },
  };
  run_error_cases (cases, ARRAY_SIZE (cases));
}

static void
test_errors_mounts_hooks (void **state)
{
  static const struct error_case cases[] = {
    { "mounts", "['/proc']", "mounts[0]: expected an object" },
    { "mounts", "[{'type': 'proc'}]", "mounts[0].destination: missing" },
    { "mounts", "[{'destination': 'proc', 'type': 'proc'}]",
      "mounts[0].destination: `proc` is not an absolute path" },
    { "mounts",
      "[{'destination': '/proc', 'type': 'proc'},"
      " {'destination': 'dev/shm', 'type': 'tmpfs'}]",
      "mounts[1].destination: `dev/shm` is not an absolute path" },
    { "mounts", "[{'destination': '', 'type': 'proc'}]",
      "mounts[0].destination: `` is not an absolute path" },
    { "mounts", "[{'destination': '/x', 'type': 3}]",
      "mounts[0].type: expected a string" },
    { "mounts", "[{'destination': '/x', 'type': 'tmpfs', 'source': []}]",
      "mounts[0].source: expected a string" },
    { "mounts", "[{'destination': '/x', 'type': 'tmpfs', 'options': 'ro'}]",
      "mounts[0].options: expected an array" },
    { "mounts", "[{'destination': '/x', 'type': 'tmpfs', 'options': [true]}]",
      "mounts[0].options: expected an array of strings" },
    { "mounts", "[{'destination': '/x', 'options': ['rbind']}]",
      "mounts[0].source: missing for a bind mount" },
    { "mounts", "[{'destination': '/x', 'type': 'bind'}]",
      "mounts[0].source: missing for a bind mount" },
    { "mounts", "[{'destination': '/x', 'source': 'tmpfs'}]",
      "mounts[0].type: missing for a non-bind mount" },
    { "mounts",
      "[{'destination': '/x', 'type': 'bind', 'source': '/y',"
      "  'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 0}]}]",
      "mounts[0].uidMappings[0].size: 0 is out of range" },
    { "mounts",
      "[{'destination': '/x', 'type': 'bind', 'source': '/y',"
      "  'gidMappings': [{'containerID': 0, 'size': 1}]}]",
      "mounts[0].gidMappings[0].hostID: missing" },
    { "hooks.prestart", "{}", "hooks.prestart: expected an array" },
    { "hooks.prestart", "[{'args': ['x']}]",
      "hooks.prestart[0].path: missing" },
    { "hooks.createRuntime", "[{'path': 'bin/hook'}]",
      "hooks.createRuntime[0].path: `bin/hook` is not an absolute path" },
    { "hooks.createContainer", "[{'path': '/h'}, {'path': 5}]",
      "hooks.createContainer[1].path: expected a string" },
    { "hooks.startContainer", "[{'path': '/h', 'timeout': 0}]",
      "hooks.startContainer[0].timeout: 0 is out of range" },
    { "hooks.poststart", "[{'path': '/h', 'args': 'x'}]",
      "hooks.poststart[0].args: expected an array" },
    { "hooks.poststop", "[{'path': '/h', 'env': [1]}]",
      "hooks.poststop[0].env: expected an array of strings" },
  };
  run_error_cases (cases, ARRAY_SIZE (cases));
}

static void
test_errors_linux (void **state)
{
  static const struct error_case cases[] = {
    { "linux.namespaces", "{}", "linux.namespaces: expected an array" },
    { "linux.namespaces",
      "[{'type': 'pid'}, {'type': 'mount'}, {'type': "
      "'foo'}]",
      "linux.namespaces[2].type: unknown namespace `foo`" },
    { "linux.namespaces", "[{'type': 'net'}]",
      "linux.namespaces[0].type: unknown namespace `net`" },
    { "linux.namespaces", "[{'type': 'pid'}, {'type': 'pid', 'path': '/p'}]",
      "linux.namespaces[1].type: namespace `pid` listed twice" },
    { "linux.namespaces", "[{'path': '/proc/1/ns/pid'}]",
      "linux.namespaces[0].type: missing" },
    { "linux.namespaces", "[{'type': 'pid', 'path': 1}]",
      "linux.namespaces[0].path: expected a string" },
    { "linux.namespaces", "[{'type': 'user'}]",
      "linux.uidMappings/gidMappings: required for a new user namespace" },
    { "linux",
      "{'namespaces': [{'type': 'user'}],"
      " 'uidMappings': [{'containerID': 0, 'hostID': 1, 'size': 1}]}",
      "linux.uidMappings/gidMappings: required for a new user namespace" },
    { "linux.uidMappings", "{}", "linux.uidMappings: expected an array" },
    { "linux.uidMappings", "[{'containerID': 0, 'hostID': 1000, 'size': 0}]",
      "linux.uidMappings[0].size: 0 is out of range" },
    { "linux.gidMappings", "[{'containerID': 0, 'size': 1}]",
      "linux.gidMappings[0].hostID: missing" },
    { "linux.gidMappings", "[{'hostID': 0, 'size': 1}]",
      "linux.gidMappings[0].containerID: missing" },
    { "linux.uidMappings", "[{'containerID': -1, 'hostID': 0, 'size': 1}]",
      "linux.uidMappings[0].containerID: -1 is out of range" },
    { "linux.uidMappings", "[7]", "linux.uidMappings[0]: expected an object" },
    { "linux.devices", "[{'path': 'dev/null', 'type': 'c'}]",
      "linux.devices[0].path: `dev/null` is not an absolute path" },
    { "linux.devices", "[{'type': 'c', 'major': 1, 'minor': 3}]",
      "linux.devices[0].path: missing" },
    { "linux.devices", "[{'path': '/dev/x', 'major': 1, 'minor': 3}]",
      "linux.devices[0].type: missing" },
    { "linux.devices", "[{'path': '/dev/x', 'type': 'x'}]",
      "linux.devices[0].type: unknown type `x`" },
    { "linux.devices", "[{'path': '/dev/x', 'type': 'cb'}]",
      "linux.devices[0].type: unknown type `cb`" },
    { "linux.devices", "[{'path': '/dev/x', 'type': 'c', 'major': 1}]",
      "linux.devices[0]: major and minor are required for type c" },
    { "linux.devices",
      "[{'path': '/dev/x', 'type': 'c', 'major': 1, 'minor': 3,"
      "  'fileMode': 4096}]",
      "linux.devices[0].fileMode: 4096 is out of range" },
    { "linux.devices",
      "[{'path': '/dev/x', 'type': 'b', 'major': 1, 'minor': 3, 'uid': -1}]",
      "linux.devices[0].uid: -1 is out of range" },
    { "linux.devices",
      "[{'path': '/dev/x', 'type': 'b', 'major': 1, 'minor': '3'}]",
      "linux.devices[0].minor: expected an integer" },
    { "linux.sysctl", "[]", "linux.sysctl: expected an object" },
    { "linux.sysctl", "{'net.ipv4.ip_forward': 1}",
      "linux.sysctl.net.ipv4.ip_forward: expected a string" },
    { "linux.sysctl", "{'../../proc/x': '1'}",
      "linux.sysctl: invalid key `../../proc/x`" },
    { "linux.sysctl", "{'/proc/sys/x': '1'}",
      "linux.sysctl: invalid key `/proc/sys/x`" },
    { "linux.cgroupsPath", "1", "linux.cgroupsPath: expected a string" },
    { "linux.resources", "[]", "linux.resources: expected an object" },
    { "linux.seccomp", "'default'", "linux.seccomp: expected an object" },
    { "linux.maskedPaths", "'/proc/kcore'",
      "linux.maskedPaths: expected an array" },
    { "linux.readonlyPaths", "[1]",
      "linux.readonlyPaths: expected an array of strings" },
    { "linux.rootfsPropagation", "1",
      "linux.rootfsPropagation: expected a string" },
    { "linux.mountLabel", "{}", "linux.mountLabel: expected a string" },
    { "linux.intelRdt", "1", "linux.intelRdt: expected an object" },
    { "linux.personality", "{}", "linux.personality.domain: missing" },
    { "linux.personality", "{'domain': 'SVR4'}",
      "linux.personality.domain: unknown domain `SVR4`" },
    { "linux.timeOffsets", "{'boottime': {'secs': 1}}",
      "linux.timeOffsets need a new time namespace" },
    { "linux.timeOffsets", "[]", "linux.timeOffsets: expected an object" },
  };
  run_error_cases (cases, ARRAY_SIZE (cases));
}

static void
test_errors_time_offsets (void **state)
{
  static const char *const with_time_ns
      = "{'namespaces': [{'type': 'time'}], 'timeOffsets': %s}";
  static const struct
  {
    const char *offsets, *want;
  } cases[] = {
    { "{'boottime': {'secs': 1, 'nanosecs': 1000000000}}",
      "linux.timeOffsets.boottime.nanosecs: 1000000000 is out of range" },
    { "{'monotonic': {'nanosecs': -1}}",
      "linux.timeOffsets.monotonic.nanosecs: -1 is out of range" },
    { "{'monotonic': {'secs': 1.5}}",
      "linux.timeOffsets.monotonic.secs: expected an integer" },
    { "{'boottime': 5}", "linux.timeOffsets.boottime: expected an object" },
  };
  size_t i;

  for (i = 0; i < ARRAY_SIZE (cases); i++)
    {
      cleanup_free char *lx = NULL;
      xasprintf (&lx, with_time_ns, cases[i].offsets);
      expect_error_with ("linux", lx, cases[i].want);
    }
  /* Offsets only apply to a time namespace the runtime creates. */
  expect_error_with ("linux",
                     "{'namespaces': [{'type': 'time', 'path': '/proc/1/ns/"
                     "time'}], 'timeOffsets': {}}",
                     "linux.timeOffsets need a new time namespace");
}

static void
test_errors_json (void **state)
{
  static const char bad_syntax[] = "{\n  \"ociVersion\": \"1.2.0\",\n"
                                   "  \"root\": \n}";
  static const char duplicate[]
      = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"a\"},"
        " \"root\": {\"path\": \"b\"}}";
  static const char trailing[]
      = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"a\"}} x";
  static const char nul_inside[] = "{\"ociVersion\": \"1.2.0\", \"root\": "
                                   "{\"path\": \"a\\u0000b\"}}";
  static const char embedded_nul[] = "{\"ociVersion\": \"1.2.0\"}\0{}";
  cleanup_free char *whole = json_text (minimal_config);

  expect_error (bad_syntax, strlen (bad_syntax),
                SOURCE ":4:1: invalid JSON: unexpected token");
  expect_error (duplicate, strlen (duplicate),
                SOURCE ":1:53: invalid JSON: duplicate object key");
  expect_error (trailing, strlen (trailing), "invalid JSON: end of file");
  expect_error (nul_inside, strlen (nul_inside), "invalid JSON");
  expect_error (embedded_nul, sizeof (embedded_nul) - 1, "invalid JSON");
  expect_error ("", 0, SOURCE ":1:0: invalid JSON");
  expect_error ("[]", 2, "config: expected a JSON object");
  expect_error ("\"x\"", 3, "invalid JSON");
  /* Only LEN bytes are read: a valid document cut short is invalid. */
  expect_error (whole, strlen (whole) - 1, "invalid JSON");
}

/* ------------------------------------------------------------------------ */
/* oci_process_parse alone (exec --process)                                 */

static void
test_process_parse (void **state)
{
  cleanup_json json_t *doc = load (full_config);
  cleanup_oci_process struct oci_process *p = NULL;
  berth_error_t err = NULL;

  assert_int_equal (
      oci_process_parse (json_object_get (doc, "process"), "process", &p, &err),
      0);
  assert_null (err);
  assert_non_null (p);
  check_full_process (p);
}

static void
expect_process_error (const char *text, const char *path, const char *want)
{
  cleanup_json json_t *obj = load (text);
  struct oci_process *p = NULL;
  berth_error_t err = NULL;
  bool ok;

  assert_true (oci_process_parse (obj, path, &p, &err) < 0);
  assert_null (p);
  assert_non_null (err);
  ok = strstr (err->msg, want) != NULL;
  if (!ok)
    print_error ("got \"%s\", want \"%s\"\n", err->msg, want);
  berth_error_release (&err);
  assert_true (ok);
}

static void
test_process_parse_errors (void **state)
{
  cleanup_oci_process struct oci_process *p = NULL;
  cleanup_json json_t *ok = load ("{'args': ['true'], 'user': {'uid': 3}}");
  berth_error_t err = NULL;

  /* The path names the fields in messages. */
  expect_process_error ("[]", "exec.process",
                        "exec.process: expected an object");
  expect_process_error ("{'args': []}", "exec.process",
                        "exec.process.args: must not be empty");
  expect_process_error ("{'args': ['sh'], 'terminal': 'no'}", "process",
                        "process.terminal: expected a boolean");
  expect_process_error ("{'args': ['sh'], 'user': {'uid': 'root'}}",
                        "exec.process",
                        "exec.process.user.uid: expected an integer");
  expect_process_error (
      "{'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_X'}]}", "exec.process",
      "exec.process.rlimits[0].type: unknown rlimit `RLIMIT_X`");
  expect_process_error ("{'args': ['sh'], 'commandLine': 'sh'}", "process",
                        "process.commandLine: only supported on Windows");
  expect_process_error ("{'args': ['sh'], 'capabilities': {'ambient': ['X']}}",
                        "exec.process",
                        "exec.process.capabilities.ambient: unknown capability "
                        "`X`");
  expect_process_error ("{'args': ['sh'], 'consoleSize': {'width': -1}}",
                        "exec.process",
                        "exec.process.consoleSize.width: -1 is out of range");
  expect_process_error ("{'args': ['sh'], 'execCPUAffinity': {'initial': 0}}",
                        "exec.process",
                        "exec.process.execCPUAffinity.initial: expected a "
                        "string");

  assert_int_equal (oci_process_parse (ok, "process", &p, &err), 0);
  assert_int_equal (p->uid, 3);
  assert_int_equal (p->gid, 0);
  assert_strv (p->args, "true");
}

/* ------------------------------------------------------------------------ */
/* Capability and namespace tables                                          */

static void
test_cap_and_ns_names (void **state)
{
  int c;

  assert_int_equal (oci_cap_from_name ("CAP_CHOWN"), 0);
  assert_int_equal (oci_cap_from_name ("CAP_SYS_ADMIN"), 21);
  assert_int_equal (oci_cap_from_name ("cap_sys_admin"), 21);
  assert_int_equal (oci_cap_from_name ("CAP_CHECKPOINT_RESTORE"), 40);
  assert_int_equal (oci_cap_from_name ("SYS_ADMIN"), -1);
  assert_int_equal (oci_cap_from_name (""), -1);
  assert_true (oci_cap_last () >= 40);
  assert_true (oci_cap_last () < 64); /* fits the masks */
  for (c = 0; c <= oci_cap_last (); c++)
    assert_int_equal (oci_cap_from_name (oci_cap_name (c)), c);
  assert_null (oci_cap_name (-1));
  assert_null (oci_cap_name (oci_cap_last () + 1));

  assert_string_equal (oci_ns_name (OCI_NS_NET), "network");
  assert_string_equal (oci_ns_name (OCI_NS_MOUNT), "mount");
  assert_int_equal (oci_ns_clone_flag (OCI_NS_USER), CLONE_NEWUSER);
  assert_int_equal (oci_ns_clone_flag (OCI_NS_MOUNT), CLONE_NEWNS);
  assert_int_equal (oci_ns_clone_flag (OCI_NS_CGROUP), CLONE_NEWCGROUP);
}

/* ------------------------------------------------------------------------ */
/* Container ids and signals                                                */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_runc_spec),
    cmocka_unit_test (test_full_config),
    cmocka_unit_test (test_minimal_defaults),
    cmocka_unit_test (test_optional_members_null),
    cmocka_unit_test (test_rlimit_above_int64),
    cmocka_unit_test (test_integer_literals_above_int64),
    cmocka_unit_test (test_hostname),
    cmocka_unit_test (test_rootfs_propagation),
    cmocka_unit_test (test_personality_and_user_ns),
    cmocka_unit_test (test_mount_apply_option),
    cmocka_unit_test (test_mount_options_in_config),
    cmocka_unit_test (test_errors_top),
    cmocka_unit_test (test_errors_process),
    cmocka_unit_test (test_errors_capabilities),
    cmocka_unit_test (test_errors_rlimits_scheduler),
    cmocka_unit_test (test_errors_mounts_hooks),
    cmocka_unit_test (test_errors_linux),
    cmocka_unit_test (test_errors_time_offsets),
    cmocka_unit_test (test_errors_json),
    cmocka_unit_test (test_process_parse),
    cmocka_unit_test (test_process_parse_errors),
    cmocka_unit_test (test_cap_and_ns_names),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
