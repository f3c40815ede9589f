/* yaml.h - one YAML document as a jansson tree.
 *
 * yaml_to_json() parses a YAML document with libfyaml and builds the JSON
 * value it stands for, so that code written against json.h reads YAML
 * unchanged (berth-registry's config file; compose files later).
 *
 * Plain scalars follow the YAML 1.2 core schema, whatever %YAML says:
 *
 *   null, Null, NULL, ~, the empty scalar          null
 *   true, True, TRUE, false, False, FALSE          true, false
 *   [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+          integer
 *   [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?     real
 *   anything else                                  string
 *
 * An integer above INT64_MAX (up to UINT64_MAX) becomes the marked string
 * bjson_parse() makes of it: bjson_uint64() reads it, every other accessor
 * refuses it.  An integer outside [INT64_MIN, UINT64_MAX] is an error.
 * .inf, .nan (any case, and signs for .inf) are core-schema floats that
 * JSON cannot hold (jansson refuses them): an error, as is a real that
 * overflows a double.  Quoted and block scalars are strings.
 *
 * Tags: !!str, !!int, !!float, !!bool and !!null on scalars, whose text
 * must then have that type's form (!!str makes any scalar a string,
 * !!float also takes decimal integers), !!map on mappings and !!seq on
 * sequences.  Any other tag (`!`, local tags, %TAG handles that name other
 * tags) is an error.
 *
 * An alias is a copy of its anchor's node; an alias of an unknown anchor,
 * or of the node it is inside of, is an error.  The copies may add at most
 * YAML_MAX_ALIAS_NODES nodes in all, checked before each copy is made (an
 * alias bomb is refused, not built), and the result may nest at most
 * YAML_MAX_DEPTH levels (scalars included), as jansson reads JSON.  A plain,
 * untagged `<<` key is a merge key: its value, a mapping or a sequence of
 * mappings, adds the keys the mapping does not have itself, from the earlier
 * mappings of a sequence first.
 *
 * Mapping keys must be scalars (or aliases of scalars).  They become
 * strings, as written (`0x10: a` has the key "0x10"); a key written twice
 * is an error, and so is a key holding a NUL.
 *
 * The input is UTF-8 and holds at most one document: a second one is an
 * error.  No document at all (empty input, only comments) is null, as an
 * empty document (`---`) is: the caller decides whether null will do.
 *
 * Every error in the input is berth_make_invalid() (-EINVAL) with
 * "SOURCE:LINE:COLUMN: what is wrong", line and column counted from 1,
 * columns in characters; libfyaml out of memory is -ENOMEM.
 */
#ifndef BERTH_YAML_H
#define BERTH_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* Nodes that aliases may add to a document (merge keys included). */
#define YAML_MAX_ALIAS_NODES 100000
/* Levels of nesting, scalars included, counted after aliases are expanded:
 * jansson's parser's limit (its free, copy and dump functions recurse). */
#define YAML_MAX_DEPTH 2048

/* Parse DATA (LEN bytes, no terminating NUL needed) into *OUT, a new
 * reference the caller owns.  SOURCE names the input in messages.  On
 * failure *OUT is left untouched and a negative errno value returned. */
int yaml_to_json (const char *data, size_t len, const char *source,
                  json_t **out, berth_error_t *err);

#endif
