/* container.c - the OCI lifecycle: create, start, kill, delete, state. */
#include "container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "linux/cgroup.h"
#include "linux/idmap.h"
#include "linux/namespaces.h"
#include "linux/process.h"
#include "linux/seccomp-filter.h"
#include "linux/sync.h"
#include "linux/terminal.h"
#include "runtime/hooks.h"
#include "runtime/state.h"
#include "utils.h"

static void __attribute__ ((format (printf, 2, 3)))
debug (const struct berth_runtime *rt, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  if (rt->debug == NULL)
    return;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) >= 0)
    rt->debug (rt->debug_data, msg);
  va_end (ap);
  free (msg);
}

/* Everything create builds up, released on every path. */
struct create_ctx
{
  const struct berth_runtime *rt;
  const struct berth_create_opts *o;
  struct oci_config *cfg;
  struct berth_seccomp *seccomp;
  struct berth_cgroup *cg;
  char *state_dir;
  char *cgroup_rel;
  pid_t pid;
  int sync[2];
  int *idmap_userns; /* per mount, -1 when not idmapped */
  uint64_t t0;
};

/* The device rules the spec requires on top of the config's: the default
 * devices, the pty slaves and /dev/ptmx.  linux.devices entries get no
 * rule of their own: the config's linux.resources.devices decides. */
static json_t *
resources_with_devices (const struct oci_config *cfg)
{
  static const struct
  {
    const char *type;
    int64_t major, minor;
  } defaults[] = { { "c", 1, 3 }, { "c", 1, 5 }, { "c", 1, 7 },
                   { "c", 1, 8 }, { "c", 1, 9 }, { "c", 5, 0 },
                   { "c", 5, 1 }, { "c", 5, 2 }, { "c", 136, -1 } };
  json_t *res
      = cfg->resources ? json_deep_copy (cfg->resources) : json_object ();
  json_t *devs = json_object_get (res, "devices");
  size_t i;

  if (!json_is_array (devs))
    {
      devs = json_array ();
      json_array_append_new (
          devs, json_pack ("{s:b,s:s}", "allow", 0, "access", "rwm"));
      json_object_set_new (res, "devices", devs);
    }
  for (i = 0; i < ARRAY_SIZE (defaults); i++)
    json_array_append_new (
        devs,
        json_pack ("{s:b,s:s,s:I,s:I,s:s}", "allow", 1, "type",
                   defaults[i].type, "major", (json_int_t) defaults[i].major,
                   "minor", (json_int_t) defaults[i].minor, "access", "rwm"));
  return res;
}

static char *
state_json_string (const struct create_ctx *c, const char *status)
{
  struct berth_state st = { 0 };
  json_t *j;
  char *s;
  st.id = (char *) c->o->id;
  st.pid = c->pid;
  st.bundle = (char *) c->o->bundle;
  st.annotations = c->cfg->annotations;
  j = berth_state_to_json (c->rt->root, &st, status);
  s = bjson_dump (j, false);
  json_decref (j);
  return s;
}

static int
write_pid_file (const char *path, pid_t pid, berth_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof (buf), "%d", (int) pid);
  if (path == NULL)
    return 0;
  return write_file_replace (path, buf, (size_t) n, 0644, err);
}

static int
prepare_state_dir (struct create_ctx *c, berth_error_t *err)
{
  cleanup_free char *fifo = NULL, *cfgpath = NULL, *doc = NULL;
  cleanup_free char *dir = NULL;

  if (mkdir_p (c->rt->root, 0700, err) < 0)
    return -1;
  dir = berth_state_dir (c->rt->root, c->o->id);
  if (mkdir (dir, 0700) < 0)
    {
      if (errno == EEXIST)
        return berth_make_error (err, 0, "container with id exists: %s",
                                 c->o->id);
      return berth_make_error (err, errno, "mkdir `%s`", dir);
    }
  /* From here on a failed create removes the directory.  */
  c->state_dir = steal_pointer (&dir);
  xasprintf (&fifo, "%s/exec.fifo", c->state_dir);
  if (mkfifo (fifo, 0600) < 0)
    return berth_make_error (err, errno, "mkfifo `%s`", fifo);
  free (fifo);
  xasprintf (&fifo, "%s/result.fifo", c->state_dir);
  if (mkfifo (fifo, 0600) < 0)
    return berth_make_error (err, errno, "mkfifo `%s`", fifo);
  xasprintf (&cfgpath, "%s/config.json", c->state_dir);
  doc = bjson_dump (c->cfg->doc, false);
  return write_file_replace (cfgpath, doc, strlen (doc), 0600, err);
}

/* Idmapped mounts need user namespaces carrying their mappings; make them
 * here, where /proc is the host's, and hand the fds to the child. */
static int
make_idmap_namespaces (struct create_ctx *c, berth_error_t *err)
{
  size_t i;
  bool any = false;

  for (i = 0; i < c->cfg->mounts_len; i++)
    any |= c->cfg->mounts[i].uid_map_len || c->cfg->mounts[i].gid_map_len;
  if (!any)
    return 0;
  c->idmap_userns = xmalloc (sizeof (int) * c->cfg->mounts_len);
  for (i = 0; i < c->cfg->mounts_len; i++)
    {
      const struct oci_mount *m = &c->cfg->mounts[i];
      c->idmap_userns[i] = -1;
      if (!m->uid_map_len && !m->gid_map_len)
        continue;
      c->idmap_userns[i] = linux_idmap_userns (m->uid_map, m->uid_map_len,
                                               m->gid_map, m->gid_map_len, err);
      if (c->idmap_userns[i] < 0)
        return berth_error_wrap (err, "mounts[%zu] (`%s`)", i, m->destination);
    }
  return 0;
}

static int
spawn_init (struct create_ctx *c, berth_error_t *err)
{
  int saved_pidns = -1;
  struct linux_init_args a = {
    .cfg = c->cfg,
    .id = c->o->id,
    .bundle = c->o->bundle,
    .state_dir = c->state_dir,
    .cgroup_rel_path = c->cgroup_rel,
    .seccomp = c->seccomp,
    .no_pivot = c->o->no_pivot,
    .no_new_keyring = c->o->no_new_keyring,
    .preserve_fds = c->o->preserve_fds,
    .fifo_rfd = -1,
    .fifo_wfd = -1,
    .result_fd = -1,
  };
  const char *pidns
      = c->cfg->ns[OCI_NS_PID].present ? c->cfg->ns[OCI_NS_PID].path : NULL;

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c->sync) < 0)
    return berth_make_error (err, errno, "socketpair");
  if (make_idmap_namespaces (c, err) < 0)
    return -1;
  a.idmap_userns = c->idmap_userns;
  if (linux_open_exec_fifos (c->state_dir, &a.fifo_rfd, &a.fifo_wfd,
                             &a.result_fd, err)
      < 0)
    return -1;
  if (pidns && linux_ns_enter_pid_for_children (pidns, &saved_pidns, err) < 0)
    return -1;
  c->pid = linux_clone (linux_ns_clone_flags (c->cfg));
  if (c->pid == 0)
    {
      close (c->sync[0]);
      a.sync_fd = c->sync[1];
      linux_init_main (&a);
    }
  if (c->pid < 0)
    {
      int e = errno;
      close (a.fifo_rfd);
      close (a.fifo_wfd);
      close (a.result_fd);
      linux_ns_restore_pid (saved_pidns, NULL);
      return berth_make_error (err, e, "clone the container process");
    }
  close (c->sync[1]);
  c->sync[1] = -1;
  close (a.fifo_rfd);
  close (a.fifo_wfd);
  close (a.result_fd);
  debug (c->rt, "cloned init %d at %.3f ms", (int) c->pid,
         (now_ns () - c->t0) / 1e6);
  return linux_ns_restore_pid (saved_pidns, err);
}

/* Limits go on once the rootfs is ready, as in runc: the device rules
 * would otherwise refuse the mknod of the config's own devices. */
static int
apply_resources (struct create_ctx *c, berth_error_t *err)
{
  cleanup_json json_t *res = resources_with_devices (c->cfg);
  if (berth_cgroup_apply (c->cg, res, err) < 0)
    return berth_error_wrap (err, "linux.resources");
  debug (c->rt, "cgroup limits applied at %.3f ms", (now_ns () - c->t0) / 1e6);
  return 0;
}

static int
setup_cgroup (struct create_ctx *c, berth_error_t *err)
{
  if (c->rt->systemd_cgroup)
    return berth_make_error (err, EOPNOTSUPP,
                             "--systemd-cgroup is not supported yet: use the "
                             "cgroupfs driver");
  if (berth_cgroup_create (c->cfg->cgroups_path, c->rt->cgroup_parent, c->o->id,
                           c->pid, &c->cg, err)
      < 0)
    return -1;
  debug (c->rt, "cgroup %s ready at %.3f ms", berth_cgroup_path (c->cg),
         (now_ns () - c->t0) / 1e6);
  return 0;
}

static int
send_seccomp_listener (struct create_ctx *c, int fd, berth_error_t *err)
{
  cleanup_free char *state = state_json_string (c, "creating");
  cleanup_json json_t *sj = json_loads (state, 0, NULL);
  cleanup_free char *payload = berth_seccomp_process_state (
      c->cfg->oci_version, c->pid, berth_seccomp_listener_metadata (c->seccomp),
      sj);
  int r = berth_seccomp_send_listener (berth_seccomp_listener_path (c->seccomp),
                                       payload, fd, err);
  close (fd);
  if (r < 0)
    return berth_error_wrap (err, "linux.seccomp.listenerPath");
  return sync_send (c->sync[0], SYNC_SECCOMP_DONE, 0, 0, NULL);
}

static int
run_create_hooks (struct create_ctx *c, berth_error_t *err)
{
  cleanup_free char *state = state_json_string (c, "creating");
  if (berth_hooks_run (&c->cfg->hooks[OCI_HOOK_PRESTART], "prestart", state,
                       err)
          < 0
      || berth_hooks_run (&c->cfg->hooks[OCI_HOOK_CREATE_RUNTIME],
                          "createRuntime", state, err)
             < 0)
    return -1;
  return sync_send (c->sync[0], SYNC_HOOKS_DONE, 0, 0, NULL);
}

/* Serve the child until it reports ready. */
static int
drive_child (struct create_ctx *c, berth_error_t *err)
{
  struct sync_msg m;
  int fd = -1;

  for (;;)
    {
      int r = sync_recv (c->sync[0], &m, &fd);
      if (r == -EPIPE)
        return berth_make_error (err, 0,
                                 "the container process exited during create");
      if (r < 0)
        return berth_make_error (err, -r, "read from the container process");
      switch (m.type)
        {
        case SYNC_ERROR:
          return berth_make_error (err, 0, "%s", m.msg);
        case SYNC_RUN_HOOKS:
          debug (c->rt, "child: namespaces joined, rootfs mounted at %.3f ms",
                 (now_ns () - c->t0) / 1e6);
          if (run_create_hooks (c, err) < 0)
            return -1;
          break;
        case SYNC_CONSOLE:
          if (berth_console_deliver (fd, c->o->console_socket,
                                     c->o->console_master, err)
              < 0)
            return -1;
          break;
        case SYNC_SECCOMP_FD:
          if (send_seccomp_listener (c, fd, err) < 0)
            return -1;
          break;
        case SYNC_READY:
          debug (c->rt, "child: pivoted, process prepared, ready at %.3f ms",
                 (now_ns () - c->t0) / 1e6);
          return apply_resources (c, err);
        default:
          return berth_make_error (err, EPROTO, "unexpected message %d",
                                   m.type);
        }
    }
}

static int
write_state_as (struct create_ctx *c, bool creating, berth_error_t *err)
{
  struct berth_state st = { 0 };
  cleanup_free char *created = berth_now_rfc3339 ();
  st.id = (char *) c->o->id;
  st.pid = c->pid;
  st.start_time = pid_start_time (c->pid);
  st.bundle = (char *) c->o->bundle;
  st.rootfs = c->cfg->root_path;
  st.created = created;
  st.owner = (char *) "";
  st.cgroup_path = (char *) (c->cg ? berth_cgroup_path (c->cg) : NULL);
  st.has_userns = c->cfg->ns[OCI_NS_USER].present;
  st.annotations = c->cfg->annotations;
  st.creating = creating;
  if (berth_state_write (c->rt->root, &st, err) < 0)
    return -1;
  return creating ? 0 : write_pid_file (c->o->pid_file, c->pid, err);
}

/* As soon as the child is in its cgroup, record both: if this process is
 * killed before create completes, `delete` finds what to clean up. */
static int
write_early_state (struct create_ctx *c, berth_error_t *err)
{
  return write_state_as (c, true, err);
}

static int
write_state (struct create_ctx *c, berth_error_t *err)
{
  return write_state_as (c, false, err);
}

static int
check_create_opts (const struct oci_config *cfg,
                   const struct berth_create_opts *o, berth_error_t *err)
{
  if (cfg->process == NULL)
    return berth_make_invalid (err, "config.json: process is missing");
  /* "slice:prefix:name" is the systemd driver's form (podman's default on
   * systemd hosts); as a cgroupfs path it would make a strange directory. */
  if (cfg->cgroups_path && cfg->cgroups_path[0] != '/'
      && strchr (cfg->cgroups_path, ':'))
    return berth_make_error (err, EOPNOTSUPP,
                             "linux.cgroupsPath: `%s` is a systemd cgroup "
                             "path, and the systemd cgroup driver is not "
                             "supported yet: use the cgroupfs driver",
                             cfg->cgroups_path);
  if (cfg->process->terminal && !o->console_socket && !o->console_master)
    return berth_make_invalid (
        err, "cannot allocate tty if berth-runtime will detach "
             "without setting console socket");
  if (!cfg->process->terminal && o->console_socket)
    return berth_make_invalid (
        err, "cannot use console socket if berth-runtime will "
             "not detach or allocate tty");
  if (cfg->has_intel_rdt)
    return berth_make_error (err, EOPNOTSUPP,
                             "linux.intelRdt: Intel RDT is not supported on "
                             "this host");
  if (cfg->ns[OCI_NS_TIME].present && access ("/proc/self/ns/time", F_OK) < 0)
    return berth_make_error (err, EOPNOTSUPP,
                             "linux.namespaces: time namespaces are not "
                             "supported by this kernel");
  return 0;
}

static void
create_cleanup (struct create_ctx *c, bool failed)
{
  if (failed && c->pid > 0)
    {
      kill (c->pid, SIGKILL);
      waitpid (c->pid, NULL, 0);
    }
  /* The spec's lifecycle: a failure after the runtime environment exists
   * (a failing prestart, createRuntime or createContainer hook among them)
   * continues with destroy and the poststop hooks.  */
  if (failed && c->pid > 0 && c->cfg->hooks[OCI_HOOK_POSTSTOP].len)
    {
      cleanup_free char *state = state_json_string (c, "stopped");
      berth_run_poststop_hooks (c->rt, c->cfg, state);
    }
  if (failed && c->cg)
    {
      berth_error_t e = NULL;
      berth_cgroup_destroy (c->cg, &e);
      berth_error_release (&e);
    }
  if (failed && c->state_dir)
    {
      berth_error_t e = NULL;
      remove_tree (c->state_dir, &e);
      berth_error_release (&e);
    }
  if (c->sync[0] >= 0)
    close (c->sync[0]);
  if (c->sync[1] >= 0)
    close (c->sync[1]);
  if (c->idmap_userns)
    {
      size_t i;
      for (i = 0; i < c->cfg->mounts_len; i++)
        if (c->idmap_userns[i] >= 0)
          close (c->idmap_userns[i]);
      free (c->idmap_userns);
    }
  berth_cgroup_free (c->cg);
  berth_seccomp_free (c->seccomp);
  oci_config_free (c->cfg);
  free (c->state_dir);
  free (c->cgroup_rel);
}

int
berth_container_create (const struct berth_runtime *rt,
                        const struct berth_create_opts *o, pid_t *pid,
                        berth_error_t *err)
{
  struct create_ctx c = { .rt = rt, .o = o, .sync = { -1, -1 } };
  int r = -1;

  c.t0 = now_ns ();
  if (berth_state_validate_id (o->id, err) < 0
      || oci_config_load_bundle (o->bundle, &c.cfg, err) < 0
      || check_create_opts (c.cfg, o, err) < 0
      || berth_runtime_compile_seccomp (rt, c.cfg->seccomp, &c.seccomp, err)
             < 0)
    goto out;
  debug (rt, "config parsed, seccomp compiled (%u instructions) at %.3f ms",
         c.seccomp ? berth_seccomp_program_length (c.seccomp) : 0,
         (now_ns () - c.t0) / 1e6);
  if (prepare_state_dir (&c, err) < 0 || spawn_init (&c, err) < 0)
    goto out;
  if (c.cfg->ns[OCI_NS_USER].present && !c.cfg->ns[OCI_NS_USER].path)
    {
      if (linux_ns_write_id_maps (c.pid, c.cfg, err) < 0
          || sync_send (c.sync[0], SYNC_USERNS_READY, 0, 0, NULL) < 0)
        goto out;
    }
  if (setup_cgroup (&c, err) < 0 || write_early_state (&c, err) < 0
      || sync_send (c.sync[0], SYNC_CGROUP_READY, 0, c.pid, NULL) < 0
      || drive_child (&c, err) < 0 || write_state (&c, err) < 0)
    goto out;
  debug (rt, "created at %.3f ms", (now_ns () - c.t0) / 1e6);
  if (pid)
    *pid = c.pid;
  r = 0;
out:
  if (r < 0 && c.pid > 0)
    sync_prefer_child_error (c.sync[0], err);
  create_cleanup (&c, r < 0);
  return r;
}
