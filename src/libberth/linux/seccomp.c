/* seccomp.c - compile an OCI seccomp profile in the runtime parent, install
 * it in the container child with a single seccomp(2) call.
 *
 * libseccomp does the hard part (syscall tables for every architecture,
 * argument comparisons on 32/64-bit ABIs, BPF generation).  We never call
 * seccomp_load(): it would need the library's state in the child, and it
 * allocates.  Instead the program is exported once, before fork, and the
 * child hands the finished sock_fprog to the kernel itself.
 */
#include "linux/seccomp-filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "json.h"
#include "linux/unix_socket.h"
#include "utils.h"

/* Older kernel headers lack the newer flags; the values are kernel ABI. */
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

#define SECCOMP_PATH "linux.seccomp"

/* Compiled-program cache (berth_seccomp_compile_cached): bump FORMAT when
 * the file layout or what the program depends on changes. */
#define CACHE_MAGIC "BERTHBPF"
#define CACHE_FORMAT 1
#define CACHE_MAX (4 * 1024 * 1024)

/* Syscall arguments a filter can look at (struct seccomp_data.args). */
#define MAX_SYSCALL_ARGS 6

struct berth_seccomp
{
  struct sock_filter *filter; /* the BPF program, ready for sock_fprog */
  unsigned short len;         /* instructions in FILTER */
  unsigned int flags;         /* for seccomp(2), NEW_LISTENER included */
  bool notify;                /* some rule is SCMP_ACT_NOTIFY */
  char *listener_path;
  char *listener_metadata;
};

struct named
{
  const char *name;
  uint32_t value;
};

/* ERRNO and TRACE carry 16 bits of data; the table holds them with 0. */
static const struct named actions[] = {
  { "SCMP_ACT_KILL", SCMP_ACT_KILL },
  { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
  { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
  { "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
  { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO (0) },
  { "SCMP_ACT_TRACE", SCMP_ACT_TRACE (0) },
  { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
  { "SCMP_ACT_LOG", SCMP_ACT_LOG },
  { "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY },
};

static const struct named operators[] = {
  { "SCMP_CMP_NE", SCMP_CMP_NE },
  { "SCMP_CMP_LT", SCMP_CMP_LT },
  { "SCMP_CMP_LE", SCMP_CMP_LE },
  { "SCMP_CMP_EQ", SCMP_CMP_EQ },
  { "SCMP_CMP_GE", SCMP_CMP_GE },
  { "SCMP_CMP_GT", SCMP_CMP_GT },
  { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* Every architecture libseccomp 2.5 knows (the spec's list). */
static const struct named architectures[] = {
  { "SCMP_ARCH_X86", SCMP_ARCH_X86 },
  { "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 },
  { "SCMP_ARCH_X32", SCMP_ARCH_X32 },
  { "SCMP_ARCH_ARM", SCMP_ARCH_ARM },
  { "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
  { "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS },
  { "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64 },
  { "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32 },
  { "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL },
  { "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64 },
  { "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32 },
  { "SCMP_ARCH_PPC", SCMP_ARCH_PPC },
  { "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64 },
  { "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE },
  { "SCMP_ARCH_S390", SCMP_ARCH_S390 },
  { "SCMP_ARCH_S390X", SCMP_ARCH_S390X },
  { "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC },
  { "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64 },
  { "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64 },
};

static const struct named filter_flags[] = {
  { "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
  { "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
  { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
  { "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV },
};

/* Syscalls the child may need between installing a filter that uses
 * SCMP_ACT_NOTIFY and handing the listener fd out: notifying them would
 * block the child on a listener nobody holds yet.  See seccomp.h. */
static const char *const notify_forbidden[] = { "write", "sendmsg" };

/* One profile entry turned into libseccomp terms. */
struct rule
{
  uint32_t action;
  struct scmp_arg_cmp *conds;
  unsigned int n_conds;
  bool split; /* two conditions share an index: one rule per condition */
};

static void
cleanup_scmp_ctxp (scmp_filter_ctx *ctx)
{
  if (*ctx != NULL)
    seccomp_release (*ctx);
  *ctx = NULL;
}
#define cleanup_scmp_ctx __attribute__ ((cleanup (cleanup_scmp_ctxp)))

static const struct named *
lookup_named (const struct named *table, size_t n, const char *name)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp (table[i].name, name) == 0)
      return &table[i];
  return NULL;
}

static bool
action_takes_errno (uint32_t action)
{
  return action == SCMP_ACT_ERRNO (0) || action == SCMP_ACT_TRACE (0);
}

/* libseccomp refuses an action the kernel lacks with a bare EINVAL from
 * the rule; check its detected API level first to say so.  Level 3 brought
 * SCMP_ACT_LOG and SCMP_ACT_KILL_PROCESS, level 5 SCMP_ACT_NOTIFY. */
static bool
action_supported (uint32_t action)
{
  unsigned int api;

  if (action != SCMP_ACT_NOTIFY && action != SCMP_ACT_LOG
      && action != SCMP_ACT_KILL_PROCESS)
    return true;
  api = seccomp_api_get ();
  return api >= (action == SCMP_ACT_NOTIFY ? 5u : 3u);
}

/* Ask the kernel whether it accepts FLAGS for SECCOMP_SET_MODE_FILTER,
 * without installing anything.  The kernel validates the flags before it
 * reads the program, so a NULL program fails with EFAULT when the flags are
 * accepted and with EINVAL when they are not (libseccomp probes the same
 * way).  Returns 1, 0, or -errno when seccomp(2) itself is unusable (e.g.
 * blocked by an outer filter): then the answer is unknown. */
static int
probe_filter_flags (unsigned int flags)
{
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) == 0)
    return 1;
  if (errno == EFAULT)
    return 1;
  if (errno == EINVAL)
    return 0;
  return -errno;
}

/* Read the action named by OBJ[KEY] (required) and, for the actions that
 * carry data, the errno in OBJ[ERRNO_KEY] (EPERM when missing).  PATH is
 * where OBJ sits in config.json. */
static int
parse_action (json_t *obj, const char *path, const char *key,
              const char *errno_key, uint32_t *out, berth_error_t *err)
{
  const struct named *a;
  const char *name = NULL;
  int64_t errno_ret = EPERM;
  int r, has_errno;

  r = bjson_string (obj, path, key, &name, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "%s.%s: required", path, key);
  a = lookup_named (actions, ARRAY_SIZE (actions), name);
  if (a == NULL)
    return berth_make_invalid (err, "%s.%s: unknown action \"%s\"", path, key,
                               name);
  if (!action_supported (a->value))
    return berth_make_error (err, EOPNOTSUPP,
                             "%s.%s: %s is not supported by the running "
                             "kernel",
                             path, key, name);

  has_errno
      = bjson_int_range (obj, path, errno_key, 0, 0xffff, &errno_ret, err);
  if (has_errno < 0)
    return has_errno;
  if (!action_takes_errno (a->value))
    {
      /* The spec: an errno on an action without one MUST fail.  */
      if (has_errno)
        return berth_make_invalid (err, "%s.%s: %s takes no errno", path,
                                   errno_key, name);
      *out = a->value;
      return 0;
    }
  *out = a->value | (uint32_t) errno_ret;
  return 0;
}

static int
add_architectures (scmp_filter_ctx ctx, json_t *seccomp, berth_error_t *err)
{
  json_t *archs = NULL, *v;
  size_t i;
  int r;

  r = bjson_array (seccomp, SECCOMP_PATH, "architectures", &archs, err);
  if (r <= 0)
    return r;
  json_array_foreach (archs, i, v)
  {
    const char *name = json_string_value (v);
    const struct named *a;

    if (name == NULL)
      return berth_make_invalid (err,
                                 SECCOMP_PATH ".architectures[%zu]: "
                                              "expected a string",
                                 i);
    a = lookup_named (architectures, ARRAY_SIZE (architectures), name);
    if (a == NULL)
      return berth_make_invalid (err,
                                 SECCOMP_PATH ".architectures[%zu]: "
                                              "unknown architecture \"%s\"",
                                 i, name);
    if (ctx == NULL)
      continue;
    /* A new context already holds the native architecture, and a profile
     * may name one twice: both give EEXIST, which is fine.  */
    r = seccomp_arch_add (ctx, a->value);
    if (r < 0 && r != -EEXIST)
      return berth_make_error (err, -r, SECCOMP_PATH ".architectures[%zu]", i);
  }
  return 0;
}

/* One element of `args`.  For SCMP_CMP_MASKED_EQ, libseccomp wants the mask
 * first: OCI `value` is the mask and `valueTwo` the expected result. */
static int
parse_arg (json_t *arg, const char *path, struct scmp_arg_cmp *c,
           berth_error_t *err)
{
  const struct named *op;
  const char *op_name = NULL;
  int64_t index = 0;
  uint64_t value = 0, value_two = 0;
  int r;

  if (!json_is_object (arg))
    return berth_make_invalid (err, "%s: expected an object", path);
  r = bjson_int_range (arg, path, "index", 0, MAX_SYSCALL_ARGS - 1, &index,
                       err);
  if (r == 0)
    return berth_make_invalid (err, "%s.index: required", path);
  if (r > 0)
    r = bjson_uint64 (arg, path, "value", &value, err);
  if (r == 0)
    return berth_make_invalid (err, "%s.value: required", path);
  if (r > 0)
    r = bjson_uint64 (arg, path, "valueTwo", &value_two, err);
  if (r >= 0)
    r = bjson_string (arg, path, "op", &op_name, err);
  if (r < 0)
    return r;
  if (r == 0)
    return berth_make_invalid (err, "%s.op: required", path);
  op = lookup_named (operators, ARRAY_SIZE (operators), op_name);
  if (op == NULL)
    return berth_make_invalid (err, "%s.op: unknown operator \"%s\"", path,
                               op_name);

  c->arg = (unsigned int) index;
  c->op = (enum scmp_compare) op->value;
  c->datum_a = value;
  c->datum_b = op->value == SCMP_CMP_MASKED_EQ ? value_two : 0;
  return 0;
}

/* Fill RULE's conditions from ENTRY.args.  Conditions on different
 * arguments form one rule (all must hold).  libseccomp refuses two
 * comparisons of the same argument in one rule, so then, like runc, every
 * condition becomes a rule of its own (any may match). */
static int
parse_args (json_t *entry, const char *path, struct rule *rule,
            berth_error_t *err)
{
  json_t *args = NULL, *arg;
  unsigned int seen = 0;
  size_t i;
  int r;

  r = bjson_array (entry, path, "args", &args, err);
  if (r <= 0 || json_array_size (args) == 0)
    return r;
  /* Bounded by the size of a document that is already in memory.  */
  rule->conds = xmalloc0 (json_array_size (args) * sizeof (*rule->conds));
  json_array_foreach (args, i, arg)
  {
    char apath[96];
    struct scmp_arg_cmp *c = &rule->conds[i];

    snprintf (apath, sizeof (apath), "%s.args[%zu]", path, i);
    r = parse_arg (arg, apath, c, err);
    if (r < 0)
      return r;
    if (seen & (1u << c->arg))
      rule->split = true;
    seen |= 1u << c->arg;
    rule->n_conds++;
  }
  return 0;
}

static bool
notify_forbidden_name (const char *name)
{
  size_t i;

  for (i = 0; i < ARRAY_SIZE (notify_forbidden); i++)
    if (strcmp (notify_forbidden[i], name) == 0)
      return true;
  return false;
}

static int
add_rule (scmp_filter_ctx ctx, int nr, const struct rule *rule)
{
  unsigned int i;
  int r;

  if (!rule->split)
    return seccomp_rule_add_array (ctx, rule->action, nr, rule->n_conds,
                                   rule->conds);
  for (i = 0; i < rule->n_conds; i++)
    {
      r = seccomp_rule_add_array (ctx, rule->action, nr, 1, &rule->conds[i]);
      if (r < 0)
        return r;
    }
  return 0;
}

/* Add RULE for every name of ENTRY.names.  SKIP: validate only, because
 * the rule repeats the default action (libseccomp refuses those) or CTX is
 * NULL (the validation pass). */
static int
add_names (scmp_filter_ctx ctx, json_t *names, const char *path,
           const struct rule *rule, bool skip, berth_error_t *err)
{
  json_t *v;
  size_t i;
  int nr, r;

  json_array_foreach (names, i, v)
  {
    const char *name = json_string_value (v);

    if (name == NULL)
      return berth_make_invalid (err, "%s.names[%zu]: expected a string", path,
                                 i);
    if (rule->action == SCMP_ACT_NOTIFY && notify_forbidden_name (name))
      return berth_make_invalid (err,
                                 "%s.names[%zu]: SCMP_ACT_NOTIFY cannot be "
                                 "used for \"%s\", the runtime needs it to "
                                 "pass the listener on",
                                 path, i, name);
    if (skip)
      continue;
    /* Profiles list the syscalls of every architecture at once; a name
     * unknown here is not an error (runc skips them too).  */
    nr = seccomp_syscall_resolve_name (name);
    if (nr == __NR_SCMP_ERROR)
      continue;
    r = add_rule (ctx, nr, rule);
    if (r < 0)
      return berth_make_error (err, -r, "%s: add rule for \"%s\"", path, name);
  }
  return 0;
}

static int
add_syscall_entry (scmp_filter_ctx ctx, json_t *entry, size_t idx,
                   uint32_t default_action, bool *notify, berth_error_t *err)
{
  struct rule rule = { 0 };
  cleanup_free struct scmp_arg_cmp *conds = NULL;
  json_t *names = NULL;
  char path[64];
  int r;

  snprintf (path, sizeof (path), SECCOMP_PATH ".syscalls[%zu]", idx);
  if (!json_is_object (entry))
    return berth_make_invalid (err, "%s: expected an object", path);
  r = parse_action (entry, path, "action", "errnoRet", &rule.action, err);
  if (r < 0)
    return r;
  r = bjson_array (entry, path, "names", &names, err);
  if (r < 0)
    return r;
  if (r == 0 || json_array_size (names) == 0)
    return berth_make_invalid (err, "%s.names: must contain at least one entry",
                               path);
  r = parse_args (entry, path, &rule, err);
  conds = rule.conds;
  if (r < 0)
    return r;
  if (rule.action == SCMP_ACT_NOTIFY)
    *notify = true;
  return add_names (ctx, names, path, &rule,
                    ctx == NULL || rule.action == default_action, err);
}

static int
add_syscalls (scmp_filter_ctx ctx, json_t *seccomp, uint32_t default_action,
              bool *notify, berth_error_t *err)
{
  json_t *syscalls = NULL, *entry;
  size_t i;
  int r;

  r = bjson_array (seccomp, SECCOMP_PATH, "syscalls", &syscalls, err);
  if (r <= 0)
    return r;
  json_array_foreach (syscalls, i, entry)
  {
    r = add_syscall_entry (ctx, entry, i, default_action, notify, err);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Extra flags the kernel needs alongside FLAG for a profile that uses
 * notify: a listener is requested, and TSYNC together with a listener is
 * only accepted with TSYNC_ESRCH (Linux 5.7), since a TSYNC failure could
 * otherwise not be told apart from the listener fd in the return value. */
static unsigned int
notify_companions (unsigned int flag, bool notify)
{
  unsigned int extra = 0;

  if (notify)
    extra |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  if (notify && flag == SECCOMP_FILTER_FLAG_TSYNC)
    extra |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  return extra;
}

static int
parse_flags (json_t *seccomp, bool notify, unsigned int *out,
             berth_error_t *err)
{
  json_t *flags = NULL, *v;
  size_t i;
  int r;

  *out = notify_companions (0, notify);
  r = bjson_array (seccomp, SECCOMP_PATH, "flags", &flags, err);
  if (r <= 0)
    return r;
  json_array_foreach (flags, i, v)
  {
    const char *name = json_string_value (v);
    const struct named *f = NULL;
    unsigned int extra;

    if (name == NULL)
      return berth_make_invalid (
          err, SECCOMP_PATH ".flags[%zu]: expected a string", i);
    f = lookup_named (filter_flags, ARRAY_SIZE (filter_flags), name);
    if (f == NULL)
      return berth_make_invalid (
          err, SECCOMP_PATH ".flags[%zu]: unknown flag \"%s\"", i, name);
    /* Only meaningful for a listener, and the kernel refuses it without
     * one: a profile without SCMP_ACT_NOTIFY has nothing to apply it to. */
    if (f->value == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !notify)
      continue;
    extra = notify_companions (f->value, notify);
    if (probe_filter_flags (f->value | extra) == 0)
      return berth_make_invalid (
          err,
          SECCOMP_PATH ".flags[%zu]: %s is not "
                       "supported by the running kernel%s",
          i, name, extra ? " together with SCMP_ACT_NOTIFY" : "");
    *out |= f->value | extra;
  }
  return 0;
}

static int
parse_listener (json_t *seccomp, struct berth_seccomp *s, berth_error_t *err)
{
  const char *path = NULL, *metadata = NULL;
  int r;

  r = bjson_string (seccomp, SECCOMP_PATH, "listenerPath", &path, err);
  if (r >= 0)
    r = bjson_string (seccomp, SECCOMP_PATH, "listenerMetadata", &metadata,
                      err);
  if (r < 0)
    return r;
  if (path != NULL && path[0] == '\0')
    path = NULL;
  if (metadata != NULL && path == NULL)
    return berth_make_invalid (err,
                               SECCOMP_PATH ".listenerMetadata: set without "
                                            "listenerPath");
  if (s->notify && path == NULL)
    return berth_make_invalid (err, SECCOMP_PATH ".listenerPath: required when "
                                                 "SCMP_ACT_NOTIFY is used");
  s->listener_path = path ? xstrdup (path) : NULL;
  s->listener_metadata = metadata ? xstrdup (metadata) : NULL;
  return 0;
}

/* libseccomp 2.5 can write the program only to an fd (the in-memory export
 * is 2.6), so it goes through an anonymous memory file and is read back. */
static int
export_program (scmp_filter_ctx ctx, struct berth_seccomp *s,
                berth_error_t *err)
{
  cleanup_close int fd = -1;
  struct stat st;
  size_t size, count;
  ssize_t n;
  int r;

  fd = memfd_create ("berth-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0)
    return berth_make_error (err, errno, "memfd_create");
  r = seccomp_export_bpf (ctx, fd);
  if (r < 0)
    return berth_make_error (err, -r, "compile the seccomp profile");
  if (fstat (fd, &st) < 0)
    return berth_make_error (err, errno, "fstat the seccomp program");
  size = (size_t) st.st_size;
  count = size / sizeof (struct sock_filter);
  if (size == 0 || size % sizeof (struct sock_filter) != 0)
    return berth_make_error (err, EIO, "seccomp program of %zu bytes", size);
  if (count > BPF_MAXINSNS)
    return berth_make_error (err, E2BIG,
                             "the seccomp profile compiles to %zu BPF "
                             "instructions, the kernel accepts %d",
                             count, BPF_MAXINSNS);
  s->filter = xmalloc (size);
  if (lseek (fd, 0, SEEK_SET) < 0)
    return berth_make_error (err, errno, "seek the seccomp program");
  n = safe_read_all (fd, s->filter, size);
  if (n < 0)
    return berth_make_error (err, (int) -n, "read the seccomp program");
  if ((size_t) n != size)
    return berth_make_error (err, EIO, "short read of the seccomp program");
  s->len = (unsigned short) count;
  return 0;
}

/* The architectures and syscalls of the profile; with CTX NULL they are
 * only validated, so that a cache hit still reports a bad profile. */
static int
load_rules (scmp_filter_ctx ctx, json_t *seccomp, uint32_t default_action,
            bool *notify, berth_error_t *err)
{
  int r;

  r = add_architectures (ctx, seccomp, err);
  if (r < 0)
    return r;
  return add_syscalls (ctx, seccomp, default_action, notify, err);
}

static int
compile_program (json_t *seccomp, uint32_t default_action,
                 struct berth_seccomp *s, berth_error_t *err)
{
  cleanup_scmp_ctx scmp_filter_ctx ctx = NULL;
  bool notify = false;
  int r;

  ctx = seccomp_init (default_action);
  if (ctx == NULL)
    return berth_make_invalid (err,
                               SECCOMP_PATH ".defaultAction: refused by "
                                            "libseccomp (not supported by the "
                                            "kernel?)");
  r = load_rules (ctx, seccomp, default_action, &notify, err);
  if (r < 0)
    return r;
  return export_program (ctx, s, err);
}

/* Everything but the BPF program: validate the whole profile and read the
 * settings applied at install time. */
static int
parse_profile (json_t *seccomp, uint32_t *default_action,
               struct berth_seccomp *s, berth_error_t *err)
{
  int r;

  if (!json_is_object (seccomp))
    return berth_make_invalid (err, SECCOMP_PATH ": expected an object");
  r = parse_action (seccomp, SECCOMP_PATH, "defaultAction", "defaultErrnoRet",
                    default_action, err);
  if (r < 0)
    return r;
  /* The runtime's own syscalls after install would wait on a listener
   * that does not exist yet.  */
  if (*default_action == SCMP_ACT_NOTIFY)
    return berth_make_invalid (err,
                               SECCOMP_PATH ".defaultAction: SCMP_ACT_NOTIFY "
                                            "cannot be the default action");
  r = load_rules (NULL, seccomp, *default_action, &s->notify, err);
  if (r >= 0)
    r = parse_listener (seccomp, s, err);
  if (r >= 0)
    r = parse_flags (seccomp, s->notify, &s->flags, err);
  return r;
}

/* The cache key is everything the BPF program depends on, as canonical
 * JSON: the rule-bearing fields of the profile (not listenerMetadata, which
 * may differ per container), the libseccomp version, the API level it
 * detected on this kernel and the native architecture. */
static char *
cache_key (json_t *seccomp)
{
  const struct scmp_version *v = seccomp_version ();
  cleanup_json json_t *k = NULL;

  k = json_pack ("{s:i, s:[i,i,i], s:i, s:I, s:O?, s:O?, s:O?, s:O?}", "format",
                 CACHE_FORMAT, "libseccomp", (int) v->major, (int) v->minor,
                 (int) v->micro, "api", (int) seccomp_api_get (), "native",
                 (json_int_t) seccomp_arch_native (), "defaultAction",
                 json_object_get (seccomp, "defaultAction"), "defaultErrnoRet",
                 json_object_get (seccomp, "defaultErrnoRet"), "architectures",
                 json_object_get (seccomp, "architectures"), "syscalls",
                 json_object_get (seccomp, "syscalls"));
  /* NULL (out of memory) means: do without the cache.  */
  return k ? json_dumps (k, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

/* FNV-1a: only spreads keys over file names; the file holds the whole key,
 * which is compared in full, so a collision costs a recompile. */
static char *
cache_path (const char *dir, const char *key)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  const unsigned char *p;
  char *path = NULL;

  for (p = (const unsigned char *) key; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  xasprintf (&path, "%s/%016llx.bpf", dir, (unsigned long long) h);
  return path;
}

/* Cache file: header, key (no NUL), program. */
struct cache_header
{
  char magic[8];
  uint32_t key_len;
  uint32_t count;
};

/* True when DIR holds the program for KEY; it is then copied into S. */
static bool
cache_load (const char *dir, const char *key, struct berth_seccomp *s)
{
  cleanup_free char *path = cache_path (dir, key);
  cleanup_free char *data = NULL;
  berth_error_t ignored = NULL;
  struct cache_header h;
  size_t len, key_len = strlen (key), prog;

  if (read_file (path, CACHE_MAX, &data, &len, &ignored) < 0)
    {
      berth_error_release (&ignored);
      return false;
    }
  if (len < sizeof (h))
    return false;
  memcpy (&h, data, sizeof (h));
  if (memcmp (h.magic, CACHE_MAGIC, sizeof (h.magic)) != 0
      || h.key_len != key_len || len < sizeof (h) + key_len)
    return false;
  prog = len - sizeof (h) - key_len;
  if (memcmp (data + sizeof (h), key, key_len) != 0 || h.count == 0
      || h.count > BPF_MAXINSNS
      || prog != h.count * sizeof (struct sock_filter))
    return false;
  s->filter = xmalloc (prog);
  memcpy (s->filter, data + sizeof (h) + key_len, prog);
  s->len = (unsigned short) h.count;
  return true;
}

/* Best effort: a cache that cannot be written costs time, not
 * correctness, so failures are dropped. */
static void
cache_store (const char *dir, const char *key, const struct berth_seccomp *s)
{
  cleanup_free char *path = cache_path (dir, key);
  cleanup_free char *data = NULL;
  berth_error_t ignored = NULL;
  struct cache_header h = { .key_len = strlen (key), .count = s->len };
  size_t prog = s->len * sizeof (struct sock_filter);
  size_t len = sizeof (h) + h.key_len + prog;

  memcpy (h.magic, CACHE_MAGIC, sizeof (h.magic));
  data = xmalloc (len);
  memcpy (data, &h, sizeof (h));
  memcpy (data + sizeof (h), key, h.key_len);
  memcpy (data + sizeof (h) + h.key_len, s->filter, prog);
  if (mkdir_p (dir, 0700, &ignored) == 0)
    write_file_atomic (path, data, len, 0600, &ignored);
  berth_error_release (&ignored);
}

int
berth_seccomp_compile_cached (json_t *seccomp, const char *cache_dir,
                              struct berth_seccomp **out, berth_error_t *err)
{
  cleanup_seccomp struct berth_seccomp *s = NULL;
  cleanup_free char *key = NULL;
  uint32_t default_action = 0;
  int r;

  *out = NULL;
  if (seccomp == NULL || json_is_null (seccomp))
    return 0;
  s = xmalloc0 (sizeof (*s));
  r = parse_profile (seccomp, &default_action, s, err);
  if (r < 0)
    return r;
  if (cache_dir != NULL)
    key = cache_key (seccomp);
  if (key == NULL || !cache_load (cache_dir, key, s))
    {
      r = compile_program (seccomp, default_action, s, err);
      if (r < 0)
        return r;
      if (key != NULL)
        cache_store (cache_dir, key, s);
    }
  *out = steal_pointer (&s);
  return 0;
}

int
berth_seccomp_compile (json_t *seccomp, struct berth_seccomp **out,
                       berth_error_t *err)
{
  return berth_seccomp_compile_cached (seccomp, NULL, out, err);
}

int
berth_seccomp_install (const struct berth_seccomp *s, int *listener_fd)
{
  struct sock_fprog prog;
  long r;

  if (listener_fd != NULL)
    *listener_fd = -1;
  if (s == NULL)
    return 0;
  if (s->notify && listener_fd == NULL)
    return -EINVAL;
  prog.len = s->len;
  prog.filter = s->filter;
  r = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, s->flags, &prog);
  if (r < 0)
    return -errno;
  if (s->notify)
    *listener_fd = (int) r;
  else if (r != 0)
    /* Plain TSYNC reports the thread that could not be synced as a
     * positive tid; nothing was installed.  */
    return -ESRCH;
  return 0;
}

bool
berth_seccomp_uses_notify (const struct berth_seccomp *s)
{
  return s != NULL && s->notify;
}

const char *
berth_seccomp_listener_path (const struct berth_seccomp *s)
{
  return s ? s->listener_path : NULL;
}

const char *
berth_seccomp_listener_metadata (const struct berth_seccomp *s)
{
  return s ? s->listener_metadata : NULL;
}

unsigned int
berth_seccomp_program_length (const struct berth_seccomp *s)
{
  return s ? s->len : 0;
}

char *
berth_seccomp_process_state (const char *oci_version, pid_t pid,
                             const char *metadata, json_t *state)
{
  cleanup_json json_t *doc = json_object ();
  json_t *fds = json_array ();

  if (doc == NULL || fds == NULL)
    {
      if (fds != NULL)
        json_decref (fds);
      return xstrdup ("null");
    }
  json_array_append_new (fds, json_string ("seccompFd"));
  json_object_set_new (doc, "ociVersion", json_string (oci_version));
  json_object_set_new (doc, "fds", fds);
  json_object_set_new (doc, "pid", json_integer (pid));
  if (metadata != NULL)
    json_object_set_new (doc, "metadata", json_string (metadata));
  json_object_set (doc, "state", state ? state : json_null ());
  return bjson_dump (doc, false);
}

int
berth_seccomp_send_listener (const char *path, const char *state_json, int fd,
                             berth_error_t *err)
{
  cleanup_close int sock = -1;
  size_t len = state_json ? strlen (state_json) : 0;
  int r;

  /* A stream socket needs at least one byte to carry the descriptor.  */
  if (len == 0)
    return berth_make_invalid (err, "seccomp listener `%s`: no state", path);
  sock = unix_connect (path, "seccomp listener", err);
  if (sock < 0)
    return -1;
  r = unix_send_with_fd (sock, state_json, len, fd);
  if (r < 0)
    return berth_make_error (err, -r, "send to seccomp listener `%s`", path);
  /* One state per connection: closing (cleanup) ends it.  */
  return 0;
}

void
berth_seccomp_free (struct berth_seccomp *s)
{
  if (s == NULL)
    return;
  free (s->filter);
  free (s->listener_path);
  free (s->listener_metadata);
  free (s);
}

void
berth_seccomp_freep (struct berth_seccomp **s)
{
  berth_seccomp_free (*s);
  *s = NULL;
}

static json_t *
names_array (const struct named *table, size_t n)
{
  json_t *a = json_array ();
  size_t i;

  for (i = 0; a != NULL && i < n; i++)
    json_array_append_new (a, json_string (table[i].name));
  return a;
}

json_t *
berth_seccomp_features (void)
{
  cleanup_json json_t *f = json_object ();
  json_t *supported = json_array ();
  size_t i;

  if (f == NULL || supported == NULL)
    {
      if (supported != NULL)
        json_decref (supported);
      return NULL;
    }
  for (i = 0; i < ARRAY_SIZE (filter_flags); i++)
    {
      unsigned int flag = filter_flags[i].value;

      /* WAIT_KILLABLE_RECV is only accepted together with a listener.  */
      if (flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
        flag |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
      if (probe_filter_flags (flag) == 1)
        json_array_append_new (supported, json_string (filter_flags[i].name));
    }
  json_object_set_new (f, "enabled", json_true ());
  json_object_set_new (f, "actions",
                       names_array (actions, ARRAY_SIZE (actions)));
  json_object_set_new (f, "operators",
                       names_array (operators, ARRAY_SIZE (operators)));
  json_object_set_new (f, "archs",
                       names_array (architectures, ARRAY_SIZE (architectures)));
  json_object_set_new (f, "knownFlags",
                       names_array (filter_flags, ARRAY_SIZE (filter_flags)));
  json_object_set_new (f, "supportedFlags", supported);
  return steal_pointer (&f);
}
