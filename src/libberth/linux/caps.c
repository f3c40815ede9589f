#include "caps.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "utils.h"

uint64_t
linux_caps_available (void)
{
  uint64_t mask = 0;
  int c;
  for (c = 0; c <= oci_cap_last (); c++)
    if (prctl (PR_CAPBSET_READ, c, 0, 0, 0) == 1)
      mask |= 1ull << c;
  return mask;
}

static int
capset_sets (uint64_t eff, uint64_t perm, uint64_t inh)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];

  memset (data, 0, sizeof (data));
  data[0].effective = (uint32_t) eff;
  data[1].effective = (uint32_t) (eff >> 32);
  data[0].permitted = (uint32_t) perm;
  data[1].permitted = (uint32_t) (perm >> 32);
  data[0].inheritable = (uint32_t) inh;
  data[1].inheritable = (uint32_t) (inh >> 32);
  return (int) syscall (SYS_capset, &hdr, data);
}

static int
drop_bounding (uint64_t keep, berth_error_t *err)
{
  int c;
  for (c = 0; c <= oci_cap_last (); c++)
    {
      if (keep & (1ull << c))
        continue;
      if (prctl (PR_CAPBSET_READ, c, 0, 0, 0) != 1)
        continue;
      if (prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
        return berth_make_error (err, errno, "drop %s from the bounding set",
                                 oci_cap_name (c));
    }
  return 0;
}

static int
switch_user (const struct oci_process *p, berth_error_t *err)
{
  gid_t gids[256] = { 0 };
  size_t i, n = p->additional_gids_len;

  if (n > ARRAY_SIZE (gids))
    return berth_make_invalid (
        err, "process.user.additionalGids: more than %zu", ARRAY_SIZE (gids));
  for (i = 0; i < n; i++)
    gids[i] = p->additional_gids[i];
  /* setgroups is denied in a user namespace whose gid map was written with
   * setgroups "deny"; with no extra groups that is fine to ignore.  */
  if (setgroups (n, gids) < 0 && !(errno == EPERM && n == 0))
    return berth_make_error (err, errno, "setgroups");
  if (setresgid (p->gid, p->gid, p->gid) < 0)
    return berth_make_error (err, errno, "setgid %u", p->gid);
  if (setresuid (p->uid, p->uid, p->uid) < 0)
    return berth_make_error (err, errno, "setuid %u", p->uid);
  return 0;
}

int
linux_caps_apply_user (const struct oci_process *p, berth_error_t *err)
{
  uint64_t avail = linux_caps_available ();
  uint64_t bnd = 0, eff = 0, perm = 0, inh = 0, amb = 0;
  int c;

  if (p->caps.present)
    {
      bnd = p->caps.bounding & avail;
      eff = p->caps.effective & avail;
      perm = p->caps.permitted & avail;
      inh = p->caps.inheritable & avail;
      amb = p->caps.ambient & avail;
    }
  if (drop_bounding (bnd, err) < 0)
    return -1;
  /* Keep the permitted set across setuid so the sets can be set after.  */
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return berth_make_error (err, errno, "prctl PR_SET_KEEPCAPS");
  if (switch_user (p, err) < 0)
    return -1;
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return berth_make_error (err, errno, "prctl PR_SET_KEEPCAPS");
  /* Ambient capabilities must be in both permitted and inheritable.  */
  if (capset_sets (eff, perm | amb, inh | amb) < 0)
    return berth_make_error (err, errno, "capset");
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0
      && errno != EINVAL)
    return berth_make_error (err, errno, "clear ambient capabilities");
  for (c = 0; c <= oci_cap_last (); c++)
    if ((amb & (1ull << c))
        && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
      return berth_make_error (err, errno, "raise ambient %s",
                               oci_cap_name (c));
  return 0;
}
