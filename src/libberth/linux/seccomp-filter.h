/* seccomp-filter.h - OCI `linux.seccomp` (runtime-spec 1.2) on libseccomp 2.5.
 *
 * The profile is parsed and compiled to a classic BPF program in the runtime
 * parent, before fork, so that every mistake in the profile is reported with
 * the JSON field that caused it and the container child only has to make one
 * seccomp(2) call.  Calling order:
 *
 *   parent:  berth_seccomp_compile ()          parse + compile, may fail
 *            fork / clone
 *   child:   ... setup ...
 *            berth_seccomp_install ()          seccomp(2); no allocation
 *            hand the listener fd to the parent (when uses_notify)
 *            execve ()
 *   parent:  berth_seccomp_process_state () + berth_seccomp_send_listener ()
 *            berth_seccomp_free ()
 *
 * Installing a filter requires either no_new_privs (prctl
 * PR_SET_NO_NEW_PRIVS) or CAP_SYS_ADMIN in the child's user namespace.  When
 * process.noNewPrivileges is false the child must install the filter while it
 * still holds CAP_SYS_ADMIN, i.e. before dropping capabilities, and then every
 * syscall it makes afterwards (capset, setresuid, execve, ...) goes through
 * the filter.  That ordering is the caller's job.
 *
 * SCMP_ACT_NOTIFY: the kernel returns a listener fd (O_CLOEXEC) from
 * seccomp(2).  Until that fd has left the child, a syscall sent to the
 * listener would block forever, because nobody can answer it.  For that
 * reason compile refuses SCMP_ACT_NOTIFY as defaultAction and for the
 * syscalls the child needs to pass the fd on: `write` and `sendmsg`.  After
 * install the child should use only those (plus close/execve) and the parent
 * must forward the fd to the listener *before* it waits for the child's
 * execve, because execve itself may be a notified syscall.
 */

#ifndef BERTH_LINUX_SECCOMP_H
#define BERTH_LINUX_SECCOMP_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "error.h"

/* A compiled filter plus the profile's listener settings.  Opaque. */
struct berth_seccomp;

/* Parse and compile SECCOMP, the `linux.seccomp` object of config.json
 * (borrowed).  SECCOMP may be NULL: then *OUT is NULL and 0 is returned.
 *
 * Syscall names that libseccomp does not know for the native architecture
 * are skipped, as runc does, since profiles list syscalls of every
 * architecture.  Rules whose action equals the default are skipped.  Unknown
 * actions, operators, architectures and flags are errors naming the field,
 * e.g. `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`.
 * Flags that the running kernel does not support are errors too.
 *
 * Arguments: when two conditions of one entry share an index, every
 * condition becomes its own rule (OR); otherwise all conditions form one
 * rule (AND).  This is runc's behaviour.
 *
 * On success *OUT owns the filter; free it with berth_seccomp_free(). */
int berth_seccomp_compile (json_t *seccomp, struct berth_seccomp **out,
                           berth_error_t *err);

/* Like berth_seccomp_compile(), but reuse the BPF program compiled earlier
 * for an identical profile from CACHE_DIR, and store it there after a miss.
 * Compiling a Docker-default-sized profile for three architectures costs
 * libseccomp several milliseconds; a hit costs a file read.  The profile is
 * still fully validated on a hit (errors are the same), and the key covers
 * the libseccomp version, the kernel API level it detected and the native
 * architecture, and is compared in full.  CACHE_DIR (created 0700 when
 * missing) must be writable by the runtime's user only: whoever can write
 * it can replace a container's filter.  NULL: no cache.  Failing to write
 * the cache is not an error. */
int berth_seccomp_compile_cached (json_t *seccomp, const char *cache_dir,
                                  struct berth_seccomp **out,
                                  berth_error_t *err);

/* Install S in the calling process with seccomp(SECCOMP_SET_MODE_FILTER),
 * using the profile's flags plus SECCOMP_FILTER_FLAG_NEW_LISTENER when the
 * profile uses SCMP_ACT_NOTIFY.  Meant for the container child right before
 * execve: it allocates nothing and calls nothing but seccomp(2).
 * S may be NULL (nothing to do).  *LISTENER_FD receives the listener fd
 * (O_CLOEXEC), or -1; LISTENER_FD may be NULL only when S does not use
 * notify (else -EINVAL).  Returns 0 or -errno: -EACCES without
 * no_new_privs/CAP_SYS_ADMIN, -ESRCH when TSYNC could not sync a thread. */
int berth_seccomp_install (const struct berth_seccomp *s, int *listener_fd);

/* True when the profile has at least one SCMP_ACT_NOTIFY rule.  S may be
 * NULL. */
bool berth_seccomp_uses_notify (const struct berth_seccomp *s);

/* `listenerPath` / `listenerMetadata` of the profile, borrowed from S, or
 * NULL.  A profile that uses SCMP_ACT_NOTIFY always has a listener path
 * (compile refuses one without). */
const char *berth_seccomp_listener_path (const struct berth_seccomp *s);
const char *berth_seccomp_listener_metadata (const struct berth_seccomp *s);

/* Number of BPF instructions in the compiled program (for --debug and
 * tests). */
unsigned int berth_seccomp_program_length (const struct berth_seccomp *s);

/* Build the "container process state" sent to the seccomp listener
 * (config-linux.md, "The Container Process State"):
 *   {"ociVersion", "fds": ["seccompFd"], "pid", "metadata"?, "state"}
 * STATE is the container's state object (runtime.md "State"), borrowed.
 * METADATA may be NULL.  Returns a newly allocated string. */
char *berth_seccomp_process_state (const char *oci_version, pid_t pid,
                                   const char *metadata, json_t *state);

/* Connect to the AF_UNIX SOCK_STREAM socket at PATH and send STATE_JSON as
 * the payload, with FD attached (SCM_RIGHTS) to the first sendmsg(2), then
 * close the connection.  One state per connection, as the spec requires.
 * FD stays owned by the caller. */
int berth_seccomp_send_listener (const char *path, const char *state_json,
                                 int fd, berth_error_t *err);

/* Free S.  Safe on NULL. */
void berth_seccomp_free (struct berth_seccomp *s);
void berth_seccomp_freep (struct berth_seccomp **s);
#define cleanup_seccomp __attribute__ ((cleanup (berth_seccomp_freep)))

/* The "seccomp" object of `berth features` (same shape as runc's):
 *   {"enabled": true, "actions": [...], "operators": [...], "archs": [...],
 *    "knownFlags": [...], "supportedFlags": [...]}
 * supportedFlags are the known flags the running kernel accepts.  Returns a
 * new reference, or NULL when out of memory. */
json_t *berth_seccomp_features (void);

#endif
