/* cloned_binary.h - run from a sealed in-memory copy of ourselves.
 *
 * CVE-2019-5736: a process in the container could open /proc/<runtime
 * pid>/exe while the runtime joins the container and overwrite the host
 * binary.  A program that enters containers therefore re-executes itself
 * from a memfd sealed against writes before it does anything else; a write
 * through /proc/pid/exe then hits the sealed copy and fails.
 */
#ifndef BERTH_CLONED_BINARY_H
#define BERTH_CLONED_BINARY_H

#include "error.h"

/* Returns 0 when already running from a sealed memfd.  Otherwise copies
 * /proc/self/exe into one, seals it and re-executes with ARGV and ENVP: on
 * success it does not return. */
int berth_ensure_cloned_binary (char **argv, char **envp, berth_error_t *err);

#endif
