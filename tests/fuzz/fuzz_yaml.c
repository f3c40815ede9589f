/* fuzz_yaml.c - libFuzzer target for YAML documents (yaml.c).
 *
 * Every input goes through yaml_to_json().  Besides the sanitizers, the
 * target aborts when yaml.h's contract is broken:
 *
 * - a failure returns -EINVAL, leaves *out alone and fills the error with
 *   "fuzz.yaml:LINE:COLUMN: what", LINE and COLUMN counted from 1;
 * - a success leaves no error and gives a tree that nests at most
 *   YAML_MAX_DEPTH levels, holds at most the nodes its text can write
 *   plus YAML_MAX_ALIAS_NODES copied by aliases, shares no node between
 *   two places (an alias is a copy), and that jansson writes and reads
 *   back equal;
 * - JSON is YAML: when bjson_parse() accepts the input, yaml_to_json()
 *   accepts it too and builds the same tree.  Except for a NUL byte,
 *   which YAML refuses and jansson takes after a literal ("[null\0]").
 *
 * libfyaml itself is the system's library, not instrumented: coverage
 * guides the fuzzer through yaml.c only.  */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "yaml.h"

#define SOURCE "fuzz.yaml"

/* Inputs beyond this say nothing new and only slow the fuzzer down. */
#define MAX_INPUT (256 * 1024)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (int ok)
{
  if (!ok)
    abort ();
}

/* "SOURCE:LINE:COLUMN: " then a message.  */
static void
check_message (const char *msg)
{
  char *end;
  long line, column;

  check (msg != NULL && strncmp (msg, SOURCE ":", strlen (SOURCE ":")) == 0);
  msg += strlen (SOURCE ":");
  line = strtol (msg, &end, 10);
  check (end != msg && line >= 1 && *end == ':');
  msg = end + 1;
  column = strtol (msg, &end, 10);
  check (end != msg && column >= 1 && strncmp (end, ": ", 2) == 0);
  check (end[2] != '\0');
}

/* The levels and nodes of J, checking that each node has one owner (the
 * singletons true, false and null excepted).  */
static void
walk (json_t *j, size_t level, size_t *levels, size_t *nodes)
{
  const char *k;
  json_t *v;
  size_t i;

  if (level > *levels)
    *levels = level;
  ++*nodes;
  if (!json_is_true (j) && !json_is_false (j) && !json_is_null (j))
    check (j->refcount == 1);
  if (json_is_object (j))
    json_object_foreach (j, k, v) walk (v, level + 1, levels, nodes);
  else if (json_is_array (j))
    json_array_foreach (j, i, v) walk (v, level + 1, levels, nodes);
}

static void
check_tree (json_t *j, size_t size)
{
  size_t levels = 0, nodes = 0;
  json_error_t jerr;
  char *text;
  json_t *back;

  walk (j, 1, &levels, &nodes);
  check (levels <= YAML_MAX_DEPTH);
  /* Two nodes per byte is more than YAML can write ("[:]" is three).  */
  check (nodes <= 2 * size + 2 + YAML_MAX_ALIAS_NODES);
  text = json_dumps (j, JSON_ENCODE_ANY | JSON_COMPACT);
  check (text != NULL);
  back = json_loads (text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  check (back != NULL && json_equal (back, j));
  json_decref (back);
  free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  berth_error_t err = NULL, jerr = NULL;
  /* A node of its own: true, false and null are singletons.  */
  json_t *sentinel = json_object ();
  json_t *j = sentinel, *from_json = NULL;
  int r;

  if (size > MAX_INPUT)
    return 0;
  r = yaml_to_json (text, size, SOURCE, &j, &err);
  if (r < 0)
    {
      check (r == -EINVAL && err != NULL);
      check_message (err->msg);
      check (j == sentinel);
      berth_error_release (&err);
    }
  else
    {
      check (r == 0 && err == NULL && j != NULL && j != sentinel);
      check_tree (j, size);
    }

  if (memchr (text, '\0', size) == NULL
      && bjson_parse (text, size, "fuzz.json", &from_json, &jerr) == 0)
    {
      check (r == 0 && json_equal (j, from_json));
      json_decref (from_json);
    }
  berth_error_release (&jerr);
  if (r == 0)
    json_decref (j);
  json_decref (sentinel);
  return 0;
}
