/* fuzz_config.c - libFuzzer target for config.json (oci/config.c).
 *
 * Every input goes through oci_config_parse() as a bundle's config.json
 * would; when it is a JSON object with a "process" member, that member also
 * goes through oci_process_parse() alone, as `exec --process` reads it, so
 * process parsing is reached even when the rest of the document is refused.
 *
 * Besides the sanitizers, the target checks the parser's contract and aborts
 * when it is broken: a failure fills the error (naming the source) and
 * leaves *out alone; a success leaves no error and returns a config whose
 * validated fields hold what the parser promises.  */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "oci/config.h"

#define SOURCE "fuzz.json"

/* Inputs beyond this say nothing new and only slow the fuzzer down. */
#define MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (int ok)
{
  if (!ok)
    abort ();
}

static void
check_process (const struct oci_process *p)
{
  size_t i;

  check (p->args != NULL && p->args[0] != NULL);
  check (p->env != NULL);
  check (p->cwd != NULL && p->cwd[0] == '/');
  check (p->command_line == NULL);
  check (p->umask >= -1 && p->umask <= 0777);
  for (i = 0; i < p->rlimits_len; i++)
    check (p->rlimits[i].name != NULL
           && p->rlimits[i].soft <= p->rlimits[i].hard);
}

static void
check_config (const struct oci_config *cfg)
{
  size_t i;

  check (cfg->doc != NULL && cfg->oci_version != NULL);
  check (cfg->root_path != NULL && cfg->root_path[0] != '\0');
  if (cfg->process)
    check_process (cfg->process);
  for (i = 0; i < cfg->mounts_len; i++)
    {
      const struct oci_mount *m = &cfg->mounts[i];
      check (m->destination[0] == '/' && m->type != NULL && m->options != NULL);
      check (!m->bind || m->source != NULL);
    }
  for (i = 0; i < cfg->devices_len; i++)
    check (cfg->devices[i].path[0] == '/');
  if ((cfg->hostname || cfg->domainname))
    check (cfg->ns[OCI_NS_UTS].present);
  if (cfg->ns[OCI_NS_USER].present && cfg->ns[OCI_NS_USER].path == NULL)
    check (cfg->uid_mappings_len > 0 && cfg->gid_mappings_len > 0);
}

static void
fuzz_config (const char *data, size_t size)
{
  struct oci_config *cfg = NULL;
  berth_error_t err = NULL;
  int r = oci_config_parse (data, size, SOURCE, &cfg, &err);

  if (r < 0)
    {
      check (cfg == NULL && err != NULL && err->msg != NULL);
      check (strncmp (err->msg, SOURCE, strlen (SOURCE)) == 0);
    }
  else
    {
      check (r == 0 && cfg != NULL && err == NULL);
      check_config (cfg);
    }
  berth_error_release (&err);
  oci_config_free (cfg);
}

static void
fuzz_process (const char *data, size_t size)
{
  json_error_t jerr;
  json_t *doc = json_loadb (data, size, 0, &jerr), *proc;
  struct oci_process *p = NULL;
  berth_error_t err = NULL;

  if (doc == NULL)
    return;
  proc = json_object_get (doc, "process");
  if (proc != NULL)
    {
      if (oci_process_parse (proc, "process", &p, &err) < 0)
        check (p == NULL && err != NULL && err->msg != NULL);
      else
        {
          check (p != NULL && err == NULL);
          check_process (p);
        }
    }
  berth_error_release (&err);
  oci_process_free (p);
  json_decref (doc);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size > MAX_INPUT)
    return 0;
  fuzz_config ((const char *) data, size);
  fuzz_process ((const char *) data, size);
  return 0;
}
