/* test_yaml.c - YAML documents as jansson trees (yaml.c): the core
 * schema, tags, anchors, aliases and merge keys, keys, documents, and the
 * position and wording of every kind of error.  */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "utils.h"
#include "yaml.h"

#define SOURCE "in.yaml"

static json_t *
parse_ok (const char *yaml)
{
  berth_error_t err = NULL;
  json_t *j = NULL;
  int r = yaml_to_json (yaml, strlen (yaml), SOURCE, &j, &err);

  if (r < 0)
    print_error ("YAML \"%s\": %s\n", yaml, err->msg);
  assert_int_equal (r, 0);
  assert_null (err);
  assert_non_null (j);
  return j;
}

/* YAML parses to the JSON text WANT (types included: 1 is not 1.0).  */
static void
expect_json (const char *yaml, const char *want)
{
  json_error_t jerr;
  json_t *w = json_loads (want, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  json_t *got = parse_ok (yaml);

  assert_non_null (w);
  if (!json_equal (got, w))
    {
      char *g = json_dumps (got, JSON_ENCODE_ANY | JSON_COMPACT);
      print_error ("YAML \"%s\": got %s, want %s\n", yaml, g, want);
      free (g);
    }
  assert_true (json_equal (got, w));
  json_decref (got);
  json_decref (w);
}

/* The LEN bytes at YAML are refused with the message WHERE ("LINE:COL")
 * followed by WHAT, after the source name: SOURCE:WHERE: WHAT.  */
static void
expect_error_n (const char *yaml, size_t len, const char *where,
                const char *what)
{
  berth_error_t err = NULL;
  json_t *sentinel = json_object (); /* not a singleton like true */
  json_t *j = sentinel;
  char *want = NULL;
  int r = yaml_to_json (yaml, len, SOURCE, &j, &err);

  xasprintf (&want, "%s:%s: %s", SOURCE, where, what);
  if (r >= 0 || err == NULL || strcmp (err->msg, want) != 0)
    print_error ("YAML \"%.*s\": got %d \"%s\", want \"%s\"\n", (int) len, yaml,
                 r, err ? err->msg : "(no error)", want);
  assert_int_equal (r, -EINVAL);
  assert_non_null (err);
  assert_string_equal (err->msg, want);
  /* The output is left alone on failure.  */
  assert_ptr_equal (j, sentinel);
  json_decref (sentinel);
  free (want);
  berth_error_release (&err);
}

static void
expect_error (const char *yaml, const char *where, const char *what)
{
  expect_error_n (yaml, strlen (yaml), where, what);
}

static void
test_null_and_bool (void **state)
{
  expect_json ("~", "null");
  expect_json ("null", "null");
  expect_json ("Null", "null");
  expect_json ("NULL", "null");
  expect_json ("a:", "{\"a\": null}");
  expect_json ("[~, null, !!null ]", "[null, null, null]");
  expect_json ("nUll", "\"nUll\"");
  expect_json ("true", "true");
  expect_json ("True", "true");
  expect_json ("TRUE", "true");
  expect_json ("false", "false");
  expect_json ("False", "false");
  expect_json ("FALSE", "false");
  expect_json ("tRUE", "\"tRUE\"");
  /* YAML 1.1's booleans are strings in the core schema, whatever %YAML
   * says.  */
  expect_json ("[yes, no, on, off, y, n]",
               "[\"yes\", \"no\", \"on\", \"off\", \"y\", \"n\"]");
  expect_json ("%YAML 1.1\n---\nyes", "\"yes\"");
}

static void
test_integers (void **state)
{
  expect_json ("0", "0");
  expect_json ("-0", "0");
  expect_json ("+12", "12");
  expect_json ("-12", "-12");
  expect_json ("007", "7");
  expect_json ("012", "12");
  expect_json ("0o17", "15");
  expect_json ("0x1F", "31");
  expect_json ("0xff", "255");
  expect_json ("9223372036854775807", "9223372036854775807");
  expect_json ("-9223372036854775808", "-9223372036854775808");
  expect_json ("0x7FFFFFFFFFFFFFFF", "9223372036854775807");
  /* Not integers: strings.  */
  expect_json ("[0o8, 0x, 0o, 0b101, 1_000, -0x10, +0o7, 0x1g, 1 2]",
               "[\"0o8\", \"0x\", \"0o\", \"0b101\", \"1_000\", \"-0x10\", "
               "\"+0o7\", \"0x1g\", \"1 2\"]");
  /* Beyond INT64_MAX: as bjson_parse keeps them.  */
  expect_json ("9223372036854775808", "\"\\u0001u64:9223372036854775808\"");
  expect_json ("18446744073709551615", "\"\\u0001u64:18446744073709551615\"");
  expect_json ("0xFFFFFFFFFFFFFFFF", "\"\\u0001u64:18446744073709551615\"");
  expect_json ("0o1777777777777777777777",
               "\"\\u0001u64:18446744073709551615\"");
  expect_error ("a: 18446744073709551616", "1:4",
                "integer `18446744073709551616` is out of range [-2^63, "
                "2^64-1]");
  expect_error ("a: 0x10000000000000000", "1:4",
                "integer `0x10000000000000000` is out of range [-2^63, "
                "2^64-1]");
  expect_error ("- -9223372036854775809", "1:3",
                "integer `-9223372036854775809` is out of range [-2^63, "
                "2^64-1]");
}

/* The marked strings above are what json.c's accessors expect.  */
static void
test_big_integers_as_json_reads_them (void **state)
{
  json_t *j = parse_ok ("a: 18446744073709551615\nb: 0x8000000000000000\n"
                        "c: 42\n");
  json_t *from_json = NULL;
  berth_error_t err = NULL;
  uint64_t u = 0;
  int64_t i = 0;
  const char *text = "{\"a\": 18446744073709551615, "
                     "\"b\": 9223372036854775808, \"c\": 42}";

  assert_int_equal (bjson_uint64 (j, "", "a", &u, &err), 1);
  assert_true (u == UINT64_MAX);
  assert_int_equal (bjson_uint64 (j, "", "b", &u, &err), 1);
  assert_true (u == 1ull << 63);
  assert_int_equal (bjson_uint64 (j, "", "c", &u, &err), 1);
  assert_true (u == 42);
  assert_true (bjson_int64 (j, "", "a", &i, &err) < 0);
  assert_string_equal (err->msg, "a: expected an integer");
  berth_error_release (&err);
  /* The same document as JSON gives the same tree.  */
  assert_int_equal (
      bjson_parse (text, strlen (text), "in.json", &from_json, &err), 0);
  assert_true (json_equal (j, from_json));
  json_decref (from_json);
  json_decref (j);
}

static void
test_floats (void **state)
{
  expect_json ("1.5", "1.5");
  expect_json (".5", "0.5");
  expect_json ("-.5", "-0.5");
  expect_json ("+1.5e+3", "1500.0");
  expect_json ("1.", "1.0");
  expect_json ("1e3", "1000.0");
  expect_json ("1E-2", "0.01");
  expect_json ("0.0", "0.0");
  expect_json ("[1e, e3, ., 1.2.3, '1.5', 1,5, 0x1p3, .e1, 1e+]",
               "[\"1e\", \"e3\", \".\", \"1.2.3\", \"1.5\", 1, 5, "
               "\"0x1p3\", \".e1\", \"1e+\"]");
  expect_json ("[inf, nan, -.nan, .InF]",
               "[\"inf\", \"nan\", \"-.nan\", \".InF\"]");
  expect_error ("a: .inf", "1:4", "`.inf`: JSON has no infinity or NaN");
  expect_error ("a: -.Inf", "1:4", "`-.Inf`: JSON has no infinity or NaN");
  expect_error ("a: +.INF", "1:4", "`+.INF`: JSON has no infinity or NaN");
  expect_error ("a: .nan", "1:4", "`.nan`: JSON has no infinity or NaN");
  expect_error ("a:\n  b: .NaN", "2:6", "`.NaN`: JSON has no infinity or NaN");
  expect_error ("a: 1e999", "1:4", "`1e999` is out of range for a double");
}

static void
test_strings (void **state)
{
  expect_json ("hello world", "\"hello world\"");
  expect_json ("'1'", "\"1\"");
  expect_json ("\"true\"", "\"true\"");
  expect_json ("'null'", "\"null\"");
  expect_json ("''", "\"\"");
  expect_json ("\"0x10\"", "\"0x10\"");
  expect_json ("a: |\n  12\n  x\n", "{\"a\": \"12\\nx\\n\"}");
  expect_json ("a: >-\n  true\n", "{\"a\": \"true\"}");
  expect_json ("a: \"\\u00e9\\t\\0b\"", "{\"a\": \"\\u00e9\\t\\u0000b\"}");
  expect_json ("a: it's, not [a] key:x #", "{\"a\": \"it's, not [a] key:x\"}");
  expect_json ("a: plain\n  folded\n", "{\"a\": \"plain folded\"}");
}

/* libfyaml 0.7.12 gets runs of escaped single quotes wrong ('a''''b' is
 * a''' there): yaml.c decodes those scalars itself.  */
static void
test_single_quote_runs (void **state)
{
  expect_json ("'a''''b'", "\"a''b\"");
  expect_json ("''''''", "\"''\"");
  expect_json ("'''''x'", "\"''x\"");
  expect_json ("'x'''''''", "\"x'''\"");
  expect_json ("['a''''b', 'c''d']", "[\"a''b\", \"c'd\"]");
  expect_json ("'''''': v", "{\"''\": \"v\"}");
  /* Folded as any flow scalar: white space around breaks goes, one break
   * is a space, N+1 are N newlines; CR LF and CR are breaks.  */
  expect_json ("'  a'''' \t\n   b  \n\n\n  c '''' \n'",
               "\"  a'' b\\n\\nc '' \"");
  expect_json ("'a''''\r\nb\r\rc'", "\"a'' b\\nc\"");
  expect_json ("'''''\n\n '", "\"''\\n\"");
  /* Every single-quoted scalar: one CR LF is one break (a space), and
   * many folded lines (libfyaml leaks a buffer for those).  */
  expect_json ("'a\r\n  b'", "\"a b\"");
  expect_json ("'a\r\n\r\n b'", "\"a\\nb\"");
  expect_json ("'1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11'",
               "\"1 2 3 4 5 6 7 8 9 10 11\"");
}

static void
test_tags (void **state)
{
  expect_json ("!!str 12", "\"12\"");
  expect_json ("!!str true", "\"true\"");
  expect_json ("[!!str , !!str ~]", "[\"\", \"~\"]");
  expect_json ("!!int '12'", "12");
  expect_json ("!!int 0x10", "16");
  expect_json ("!!float 1", "1.0");
  expect_json ("!!float '2.5'", "2.5");
  expect_json ("!!bool \"true\"", "true");
  expect_json ("!!null ''", "null");
  expect_json ("!!null", "null");
  expect_json ("!!map {a: 1}", "{\"a\": 1}");
  expect_json ("!!seq [1]", "[1]");
  expect_json ("!<tag:yaml.org,2002:str> 5", "\"5\"");
  /* A %TAG handle naming the core schema's prefix is the same tag.  */
  expect_json ("%TAG !y! tag:yaml.org,2002:\n---\n!y!int \"7\"", "7");

  expect_error ("a: !!int abc", "1:10", "`abc` is not a valid !!int");
  expect_error ("a: !!int", "1:4", "`` is not a valid !!int");
  expect_error ("a: !!float 0x10", "1:12", "`0x10` is not a valid !!float");
  expect_error ("a: !!bool yes", "1:11", "`yes` is not a valid !!bool");
  expect_error ("a: !!null x", "1:11", "`x` is not a valid !!null");
  expect_error ("a: !!map x", "1:4", "!!map on a scalar");
  expect_error ("a: !!seq x", "1:4", "!!seq on a scalar");
  expect_error ("a: !!map [1]", "1:4", "!!map on a sequence");
  expect_error ("a: !!seq {}", "1:4", "!!seq on a mapping");
  expect_error ("a: !!str [1]", "1:4", "!!str on a sequence");
  expect_error ("a: !!int {}", "1:4", "!!int on a mapping");
  expect_error ("a: !foo 1", "1:4",
                "unsupported tag `!foo` (only !!str, !!int, !!float, !!bool, "
                "!!null, !!map and !!seq)");
  expect_error ("a: ! 1", "1:4",
                "unsupported tag `!` (only !!str, !!int, !!float, !!bool, "
                "!!null, !!map and !!seq)");
  expect_error ("a: !!binary aGk=", "1:4",
                "unsupported tag `tag:yaml.org,2002:binary` (only !!str, "
                "!!int, !!float, !!bool, !!null, !!map and !!seq)");
  expect_error ("- !!merge x", "1:3",
                "unsupported tag `tag:yaml.org,2002:merge` (only !!str, "
                "!!int, !!float, !!bool, !!null, !!map and !!seq)");
  /* !! redefined: !!str is no longer the core schema's.  */
  expect_error ("%TAG !! tag:example.com,2000:\n---\na: !!str x", "3:4",
                "unsupported tag `tag:example.com,2000:str` (only !!str, "
                "!!int, !!float, !!bool, !!null, !!map and !!seq)");
  expect_error ("a: !!str\n  - 1\n", "1:4", "!!str on a sequence");
}

static void
test_aliases (void **state)
{
  json_t *j, *a;

  expect_json ("a: &x 1\nb: *x", "{\"a\": 1, \"b\": 1}");
  expect_json ("a: &x {k: [1, 2]}\nb: *x",
               "{\"a\": {\"k\": [1, 2]}, \"b\": {\"k\": [1, 2]}}");
  expect_json ("- &s '5'\n- *s", "[\"5\", \"5\"]");
  /* The latest anchor of a name wins.  */
  expect_json ("a: &x 1\nb: &x 2\nc: *x", "{\"a\": 1, \"b\": 2, \"c\": 2}");
  /* Aliases of aliases.  */
  expect_json ("a: &x [1]\nb: &y [*x, *x]\nc: *y",
               "{\"a\": [1], \"b\": [[1], [1]], \"c\": [[1], [1]]}");
  /* An anchored key, aliased as a value and as a key.  */
  expect_json ("&k 7: a\nb: *k", "{\"7\": \"a\", \"b\": 7}");
  expect_json ("a: &k name\n*k : 1", "{\"a\": \"name\", \"name\": 1}");

  /* An alias is a copy: changing one does not change the other.  */
  j = parse_ok ("a: &x {k: 1}\nb: *x");
  a = json_object_get (j, "a");
  assert_ptr_not_equal (a, json_object_get (j, "b"));
  json_object_set_new (a, "k", json_integer (2));
  assert_int_equal (
      json_integer_value (json_object_get (json_object_get (j, "b"), "k")), 1);
  json_decref (j);

  expect_error ("a: 1\nb: *nope", "2:4",
                "alias `*nope`: no such anchor "
                "before it");
  expect_error ("a: *x\nb: &x 1", "1:4",
                "alias `*x`: no such anchor "
                "before it");
  expect_error ("a: &x [1, *x]", "1:11",
                "alias `*x` is inside its own anchor's node (a recursive "
                "structure JSON cannot hold)");
  expect_error ("a: &x\n  b: {c: *x}", "2:10",
                "alias `*x` is inside its own anchor's node (a recursive "
                "structure JSON cannot hold)");
  expect_error ("a: &m [1]\n*m : 2", "2:1", "a mapping key must be a scalar");
}

static void
test_alias_bomb (void **state)
{
  /* Ten anchors, each ten aliases of the one before: 10^10 nodes.  */
  char *doc = xstrdup ("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
  char *next = NULL;
  int i;

  for (i = 1; i < 10; i++)
    {
      xasprintf (&next,
                 "%sa%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                 "*a%d, *a%d, *a%d]\n",
                 doc, i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                 i - 1, i - 1, i - 1);
      free (doc);
      doc = next;
    }
  /* a1 to a3 copy 12330 nodes; each alias of a3 in a4 copies 11111 more:
   * the eighth goes over 100000.  */
  expect_error (doc, "5:45",
                "aliases expand to more than 100000 nodes (an alias bomb?)");
  free (doc);

  /* Below the cap, the same shape is built.  */
  {
    json_t *j = parse_ok ("a: &a [x, x, x]\nb: &b [*a, *a, *a]\n"
                          "c: [*b, *b, *b]\n");
    json_t *c = json_object_get (j, "c");
    assert_int_equal (json_array_size (c), 3);
    assert_string_equal (json_string_value (json_array_get (
                             json_array_get (json_array_get (c, 2), 2), 2)),
                         "x");
    json_decref (j);
  }
}

/* PREFIX, N opening brackets, INNER, N closing ones, SUFFIX.  */
static char *
nested (const char *prefix, int n, const char *inner, const char *suffix)
{
  char *open = xmalloc0 (n + 1), *close = xmalloc0 (n + 1), *doc = NULL;

  memset (open, '[', n);
  memset (close, ']', n);
  xasprintf (&doc, "%s%s%s%s%s", prefix, open, inner, close, suffix);
  free (open);
  free (close);
  return doc;
}

/* Levels count as jansson's parser counts them, scalars included.  */
static void
expect_depth (int n, const char *inner, bool ok)
{
  char *doc = nested ("", n, inner, "");
  json_error_t jerr;
  json_t *from_json = json_loads (doc, 0, &jerr);

  assert_int_equal (from_json != NULL, ok);
  if (ok)
    {
      json_t *j = parse_ok (doc);
      assert_true (json_equal (j, from_json));
      json_decref (j);
    }
  else
    expect_error (doc, "1:2049", "nested deeper than 2048 levels");
  json_decref (from_json);
  free (doc);
}

static void
test_depth (void **state)
{
  char *doc;
  int i;

  assert_int_equal (YAML_MAX_DEPTH, 2048);
  expect_depth (2048, "", true);
  expect_depth (2047, "1", true);
  expect_depth (2049, "", false);
  expect_depth (2048, "1", false);

  /* In block style.  */
  doc = xmalloc0 (2 * YAML_MAX_DEPTH + 2);
  for (i = 0; i < YAML_MAX_DEPTH; i++)
    memcpy (doc + 2 * i, "- ", 2);
  doc[2 * YAML_MAX_DEPTH] = 'x';
  expect_error (doc, "1:4097", "nested deeper than 2048 levels");
  free (doc);

  /* Aliases count with the levels they bring.  */
  doc = nested ("a: &x ", YAML_MAX_DEPTH - 1, "", "\nb: *x");
  json_decref (parse_ok (doc));
  free (doc);
  doc = nested ("a: &x ", YAML_MAX_DEPTH - 1, "", "\nb: [*x]");
  expect_error (doc, "2:5", "nested deeper than 2048 levels");
  free (doc);
}

static void
test_merge_keys (void **state)
{
  expect_json ("base: &b {x: 1, y: 2}\nd: {<<: *b, y: 3}",
               "{\"base\": {\"x\": 1, \"y\": 2}, \"d\": {\"y\": 3, \"x\": 1}}");
  /* The mapping's own keys win wherever they are.  */
  expect_json ("b: &b {x: 1, y: 2}\nd:\n  y: 3\n  <<: *b\n  z: 4",
               "{\"b\": {\"x\": 1, \"y\": 2}, \"d\": {\"y\": 3, \"z\": 4, "
               "\"x\": 1}}");
  /* The earlier mappings of a sequence win.  */
  expect_json ("p: &p {a: 1, b: 1}\nq: &q {b: 2, c: 2}\n"
               "r: {<<: [*p, *q], c: 3}",
               "{\"p\": {\"a\": 1, \"b\": 1}, \"q\": {\"b\": 2, \"c\": 2}, "
               "\"r\": {\"c\": 3, \"a\": 1, \"b\": 1}}");
  /* Inline mappings, an empty sequence, an explicit null kept.  */
  expect_json ("<<: {a: 1, b: 2}\nb: null", "{\"b\": null, \"a\": 1}");
  expect_json ("<<: []\na: 1", "{\"a\": 1}");
  /* A quoted or tagged << is an ordinary key.  */
  expect_json ("'<<': 1", "{\"<<\": 1}");
  expect_json ("!!str <<: 2", "{\"<<\": 2}");
  expect_json ("\"<<\": {a: 1}", "{\"<<\": {\"a\": 1}}");
  /* Merged values are copies too.  */
  expect_json ("a: &a {k: &v [1]}\nb:\n  <<: *a\n  l: *v",
               "{\"a\": {\"k\": [1]}, \"b\": {\"l\": [1], \"k\": [1]}}");

  expect_error ("<<: 1", "1:5",
                "merge key `<<`: expected a mapping or a sequence of "
                "mappings");
  expect_error ("a: &a [1]\nb: {<<: *a}", "2:9",
                "merge key `<<`: expected a mapping or a sequence of "
                "mappings");
  expect_error ("a: &a {x: 1}\nb:\n  <<: [*a, 2]", "3:7",
                "merge key `<<`: expected a mapping or a sequence of "
                "mappings");
  expect_error ("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a", "4:3",
                "duplicate key `<<`");
}

static void
test_keys (void **state)
{
  expect_json ("1: a\nnull: b\n~: c\ntrue: d\n0x10: e\n1.5: f",
               "{\"1\": \"a\", \"null\": \"b\", \"~\": \"c\", \"true\": "
               "\"d\", \"0x10\": \"e\", \"1.5\": \"f\"}");
  expect_json ("? a\n: 1\n? |\n  b\n: 2", "{\"a\": 1, \"b\\n\": 2}");
  expect_json ("{a: 1, 'b c': 2, \"d\": 3}",
               "{\"a\": 1, \"b c\": 2, \"d\": 3}");
  expect_json (": 1", "{\"\": 1}");

  expect_error ("a: 1\nb: 2\na: 3", "3:1", "duplicate key `a`");
  expect_error ("x:\n  a: 1\n  'a': 2", "3:4", "duplicate key `a`");
  expect_error ("1: a\n\"1\": b", "2:2", "duplicate key `1`");
  expect_error ("{a: 1, a: 2}", "1:8", "duplicate key `a`");
  expect_error ("? [a]\n: 1", "1:3", "a mapping key must be a scalar");
  expect_error ("{[a]: 1}", "1:2", "a mapping key must be a scalar");
  expect_error ("? {a: 1}\n: 1", "1:3", "a mapping key must be a scalar");
  expect_error ("\"a\\0b\": 1", "1:2", "a mapping key holds a NUL character");
  expect_error ("a: &k \"x\\0y\"\n*k : 1", "2:1",
                "a mapping key holds a NUL character");
  expect_error ("!!int x: 1", "1:7", "`x` is not a valid !!int");
}

static void
test_documents (void **state)
{
  expect_json ("", "null");
  expect_json ("# nothing\n\n", "null");
  expect_json ("---\n", "null");
  expect_json ("--- 5\n...\n", "5");
  expect_json ("---\na: 1\n...\n# end\n", "{\"a\": 1}");
  expect_json ("\xef\xbb\xbf"
               "a: 1",
               "{\"a\": 1}");
  expect_error ("a: 1\n---\nb: 2\n", "2:1", "more than one YAML document");
  expect_error ("a: 1\n...\nb: 2\n", "3:1", "more than one YAML document");
  expect_error ("--- 1\n--- 2\n", "2:1", "more than one YAML document");
}

static void
test_syntax_errors (void **state)
{
  expect_error ("key: \"x\\q\"\n", "1:8",
                "invalid YAML: invalid escape 'q' in double-quoted string");
  expect_error ("a:\n\tb: c\n", "2:1",
                "invalid YAML: tab character may not be used as indentation");
  expect_error ("a: b\n- c\n", "2:1",
                "invalid YAML: did not find expected "
                "key");
  expect_error ("a: [1, 2\n", "2:1",
                "invalid YAML: flow sequence without a closing bracket");
  expect_error ("a: \"\\ud800\"\n", "1:5",
                "invalid YAML: double-quoted scalar has invalid UTF8 escape");
  /* A syntax error after the document is still an error.  */
  expect_error (
      "a: 1\n...\n]\n", "3:1",
      "invalid YAML: flow sequence with invalid extra closing bracket");
}

static void
test_encoding_errors (void **state)
{
  static const char nul[] = "a: 1\nb: \0\n";

  /* Columns count characters; lines end at \n, \r\n and \r.  */
  expect_error ("a: \xff", "1:4", "invalid YAML: not UTF-8");
  expect_error ("\xc3\xa9\xc3\xa9: \xc3\x28", "1:5", "invalid YAML: not UTF-8");
  expect_error ("a: 1\r\nb: \xc0\xaf", "2:4", "invalid YAML: not UTF-8");
  expect_error ("a: 1\rb: \xed\xa0\x80", "2:4", "invalid YAML: not UTF-8");
  expect_error ("a: \xf4\x90\x80\x80", "1:4", "invalid YAML: not UTF-8");
  expect_error ("a: \xe2\x82", "1:4", "invalid YAML: not UTF-8");
  expect_error_n (nul, sizeof (nul) - 1, "2:4",
                  "invalid YAML: a NUL "
                  "character");
  expect_json ("a: \xf0\x9f\x90\xb3 \xe2\x82\xac", "{\"a\": \"\\ud83d\\udc33 "
                                                   "\\u20ac\"}");
}

/* JSON is YAML: a config as JSON gives the same tree both ways.  */
static void
test_json_documents (void **state)
{
  static const char text[]
      = "{\n  \"listen\": \"127.0.0.1:5000\",\n  \"threads\": 0,\n"
        "  \"limits\": { \"max_body_bytes\": 34359738368 },\n"
        "  \"ratio\": 0.25,\n  \"on\": true, \"off\": null,\n"
        "  \"list\": [1, \"two\", [], {}],\n  \"u\": 18446744073709551615\n}";
  berth_error_t err = NULL;
  json_t *from_json = NULL;
  json_t *j = parse_ok (text);

  assert_int_equal (
      bjson_parse (text, strlen (text), "in.json", &from_json, &err), 0);
  assert_true (json_equal (j, from_json));
  json_decref (from_json);
  json_decref (j);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_null_and_bool),
    cmocka_unit_test (test_integers),
    cmocka_unit_test (test_big_integers_as_json_reads_them),
    cmocka_unit_test (test_floats),
    cmocka_unit_test (test_strings),
    cmocka_unit_test (test_single_quote_runs),
    cmocka_unit_test (test_tags),
    cmocka_unit_test (test_aliases),
    cmocka_unit_test (test_alias_bomb),
    cmocka_unit_test (test_depth),
    cmocka_unit_test (test_merge_keys),
    cmocka_unit_test (test_keys),
    cmocka_unit_test (test_documents),
    cmocka_unit_test (test_syntax_errors),
    cmocka_unit_test (test_encoding_errors),
    cmocka_unit_test (test_json_documents),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
