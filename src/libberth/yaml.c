/* yaml.c - one YAML document as a jansson tree (see yaml.h).
 *
 * libfyaml's event parser drives a builder: the collections being built
 * sit on an explicit stack (no recursion, however deep the nesting), each
 * anchor keeps its finished node, and an alias is a deep copy whose size
 * is checked against YAML_MAX_ALIAS_NODES before it is made.  libfyaml's
 * document API resolves aliases and merge keys itself, but by expanding
 * them in memory first, which is all an alias bomb needs.
 */
#include "yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utils.h"

/* json.c's mark for an integer above INT64_MAX (bjson_parse writes it,
 * bjson_uint64 reads it); test_yaml.c checks that the two agree. */
#define BIG_MARK "\x01u64:"

#define CORE_TAG "tag:yaml.org,2002:"

/* Longest piece of a scalar quoted in a message. */
#define QUOTE_MAX 60

enum tag
{
  TAG_NONE,
  TAG_STR,
  TAG_INT,
  TAG_FLOAT,
  TAG_BOOL,
  TAG_NULL,
  TAG_MAP,
  TAG_SEQ,
};

static const char *const tag_names[] = {
  [TAG_STR] = "str",   [TAG_INT] = "int",   [TAG_FLOAT] = "float",
  [TAG_BOOL] = "bool", [TAG_NULL] = "null", [TAG_MAP] = "map",
  [TAG_SEQ] = "seq",
};

struct anchor
{
  json_t *value; /* NULL while its node is being built */
  char *text;    /* a scalar's text (a key, when aliased as one) */
  size_t text_len;
  size_t nodes;    /* the nodes of VALUE */
  unsigned height; /* its levels: 1 for a scalar */
};

struct frame
{
  json_t *value;       /* the object or array being built */
  struct fy_mark mark; /* where it starts */
  long anchor;         /* its index in anchors[], or -1 */
  size_t nodes_start;  /* builder.nodes before it */
  unsigned height;     /* levels of its deepest child so far */
  /* Mappings only: the key whose value comes next (NULL: a key comes
   * next), and the mappings that merge keys bring, in order.  */
  char *key;
  bool merge;
  json_t *merges;
};

struct builder
{
  const char *source;
  const char *data; /* the input, LEN bytes */
  size_t len;
  berth_error_t *err;
  json_t *root;
  struct frame *stack;
  size_t depth, stack_size;
  struct anchor *anchors;
  size_t n_anchors, anchors_size;
  json_t *anchor_index; /* name -> index in anchors[] (the latest wins) */
  size_t nodes;         /* nodes built so far, copies included */
  size_t alias_nodes;   /* of which copies made for aliases */
  unsigned documents;
  /* A second document started without `---`: reported where its first
   * node is.  */
  bool second_document;
  struct fy_mark last; /* the last position known */
};

static int error_at (struct builder *b, const struct fy_mark *m,
                     const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
error_at (struct builder *b, const struct fy_mark *m, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;
  int r;

  if (m == NULL)
    m = &b->last;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  r = berth_make_invalid (b->err, "%s:%d:%d: %s", b->source, m->line + 1,
                          m->column + 1, msg ? msg : "out of memory");
  free (msg);
  return r;
}

/* The position of event E, or of its tag or anchor when it has none (an
 * empty scalar), else the last one known.  */
static struct fy_mark
event_mark (struct builder *b, struct fy_event *e)
{
  const struct fy_mark *m = fy_event_start_mark (e);
  struct fy_token *t;

  if (m == NULL && (t = fy_event_get_tag_token (e)) != NULL)
    m = fy_token_start_mark (t);
  if (m == NULL && (t = fy_event_get_anchor_token (e)) != NULL)
    m = fy_token_start_mark (t);
  if (m != NULL)
    b->last = *m;
  return b->last;
}

/* Input checks ------------------------------------------------------- */

/* The length of the UTF-8 character at S, 0 when it is not one (overlong
 * forms, surrogates and code points above U+10FFFF are not).  */
static size_t
utf8_char (const unsigned char *s, size_t len)
{
  uint32_t cp;
  size_t n, i;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2, cp = s[0] & 0x1f;
  else if ((s[0] & 0xf0) == 0xe0)
    n = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    n = 4, cp = s[0] & 0x07;
  else
    return 0;
  if (len < n)
    return 0;
  for (i = 1; i < n; i++)
    {
      if ((s[i] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i] & 0x3f);
    }
  if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
    return 0;
  if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
    return 0;
  return n;
}

/* libfyaml (0.7.12) silently drops bytes that are not UTF-8 from a
 * scalar, so the input is checked first; a YAML stream holds no NUL
 * either.  Lines end at \n, \r\n or \r, as libfyaml counts them.  */
static int
check_text (struct builder *b, const char *data, size_t len)
{
  const unsigned char *s = (const unsigned char *) data;
  struct fy_mark m = { 0, 0, 0 };
  size_t i = 0;

  while (i < len)
    {
      size_t n = utf8_char (s + i, len - i);

      if (s[i] == '\0' || n == 0)
        return error_at (b, &m, "invalid YAML: %s",
                         n ? "a NUL character" : "not UTF-8");
      if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n')))
        {
          m.line++;
          m.column = 0;
        }
      else if (s[i] != '\r')
        m.column++;
      i += n;
    }
  return 0;
}

/* Scalars ------------------------------------------------------------ */

static bool
text_is (const char *s, size_t len, const char *const *words)
{
  for (; *words; words++)
    if (strlen (*words) == len && memcmp (s, *words, len) == 0)
      return true;
  return false;
}

static bool
is_null (const char *s, size_t len)
{
  static const char *const words[] = { "", "~", "null", "Null", "NULL", NULL };
  return text_is (s, len, words);
}

/* 1 for true, 0 for false, -1 when S is neither. */
static int
bool_value (const char *s, size_t len)
{
  static const char *const yes[] = { "true", "True", "TRUE", NULL };
  static const char *const no[] = { "false", "False", "FALSE", NULL };
  if (text_is (s, len, yes))
    return 1;
  return text_is (s, len, no) ? 0 : -1;
}

/* A digit's value; 99 (over every base) for anything else.  */
static int
digit_value (char c)
{
  int v = hex_digit_value (c);
  return v < 0 ? 99 : v;
}

/* The core schema's integers.  Returns 1 with *OUT set, 0 when S is not
 * an integer, -ERANGE when it is one outside [INT64_MIN, UINT64_MAX]. */
static int
int_value (const char *s, size_t len, json_t **out)
{
  unsigned base = 10;
  bool neg = false, overflow = false;
  uint64_t v = 0;
  size_t i = 0;

  if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x'))
    base = s[1] == 'o' ? 8 : 16, i = 2;
  else if (len > 0 && (s[0] == '-' || s[0] == '+'))
    neg = s[0] == '-', i = 1;
  if (i == len)
    return 0;
  for (; i < len; i++)
    {
      unsigned d = (unsigned) digit_value (s[i]);
      if (d >= base)
        return 0;
      if (v > (UINT64_MAX - d) / base)
        overflow = true;
      else
        v = v * base + d;
    }
  if (overflow || (neg && v > (uint64_t) INT64_MAX + 1))
    return -ERANGE;
  if (neg)
    *out = json_integer (v > (uint64_t) INT64_MAX ? INT64_MIN : -(int64_t) v);
  else if (v <= (uint64_t) INT64_MAX)
    *out = json_integer ((json_int_t) v);
  else
    {
      char buf[32];
      snprintf (buf, sizeof (buf), BIG_MARK "%" PRIu64, v);
      *out = json_string (buf);
    }
  return 1;
}

static size_t
skip_digits (const char *s, size_t len, size_t i)
{
  while (i < len && s[i] >= '0' && s[i] <= '9')
    i++;
  return i;
}

/* The core schema's floats (decimal integers included).  Returns 1 with
 * *OUT set, 0 when S is not a float, -EDOM for infinities and NaN, and
 * -ERANGE when it overflows a double.  */
static int
float_value (const char *s, size_t len, double *out)
{
  static const char *const inf[] = { ".inf", ".Inf", ".INF", NULL };
  static const char *const nan[] = { ".nan", ".NaN", ".NAN", NULL };
  cleanup_free char *copy = NULL;
  size_t i = 0, j;
  bool digits;

  if (text_is (s, len, nan))
    return -EDOM;
  if (len > 0 && (s[0] == '-' || s[0] == '+'))
    i = 1;
  if (text_is (s + i, len - i, inf))
    return -EDOM;
  j = skip_digits (s, len, i);
  digits = j > i;
  if (j < len && s[j] == '.')
    {
      i = j + 1;
      j = skip_digits (s, len, i);
      digits = digits || j > i;
    }
  if (!digits)
    return 0;
  if (j < len && (s[j] == 'e' || s[j] == 'E'))
    {
      i = j + 1;
      if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
      j = skip_digits (s, len, i);
      if (j == i)
        return 0;
    }
  if (j != len)
    return 0;
  copy = xstrndup (s, len);
  *out = strtod (copy, NULL);
  return isfinite (*out) ? 1 : -ERANGE;
}

/* The tag of event E (TAG_NONE without one).  A tag that is not the core
 * schema's, or is for another kind of node, is an error at the tag.  */
static int
event_tag (struct builder *b, struct fy_event *e, enum tag *out)
{
  struct fy_token *t = fy_event_get_tag_token (e);
  size_t len = 0, n = strlen (CORE_TAG), i;
  const char *s, *kind = "scalar";
  enum tag want = TAG_NONE;

  *out = TAG_NONE;
  if (t == NULL)
    return 0;
  s = fy_token_get_text (t, &len);
  if (s == NULL)
    s = "", len = 0;
  if (len > n && memcmp (s, CORE_TAG, n) == 0)
    for (i = TAG_STR; i < ARRAY_SIZE (tag_names); i++)
      if (strlen (tag_names[i]) == len - n
          && memcmp (s + n, tag_names[i], len - n) == 0)
        *out = (enum tag) i;
  if (*out == TAG_NONE)
    return error_at (b, fy_token_start_mark (t),
                     "unsupported tag `%.*s` (only !!str, !!int, !!float, "
                     "!!bool, !!null, !!map and !!seq)",
                     (int) (len < QUOTE_MAX ? len : QUOTE_MAX), s);
  if (e->type == FYET_MAPPING_START)
    kind = "mapping", want = TAG_MAP;
  else if (e->type == FYET_SEQUENCE_START)
    kind = "sequence", want = TAG_SEQ;
  if (want == TAG_NONE ? *out == TAG_MAP || *out == TAG_SEQ : *out != want)
    return error_at (b, fy_token_start_mark (t), "!!%s on a %s",
                     tag_names[*out], kind);
  return 0;
}

/* The JSON value of scalar event E, whose text is S.  */
static int
scalar_value (struct builder *b, struct fy_event *e, const char *s, size_t len,
              json_t **out)
{
  struct fy_mark m = event_mark (b, e);
  int q = (int) (len < QUOTE_MAX ? len : QUOTE_MAX);
  bool plain = fy_token_scalar_style (e->scalar.value) == FYSS_PLAIN;
  enum tag tag;
  double d = 0;
  int r, bv;

  if ((r = event_tag (b, e, &tag)) < 0)
    return r;
  *out = NULL;
  if (tag == TAG_STR || (tag == TAG_NONE && !plain))
    {
      /* The input is UTF-8, and so is what libfyaml makes of escapes
       * (it refuses escaped surrogates): json_stringn only fails on
       * memory.  */
      *out = json_stringn (s, len);
      if (*out == NULL)
        return error_at (b, &m, "string `%.*s`: out of memory", q, s);
      return 0;
    }
  if ((tag == TAG_NONE || tag == TAG_NULL) && is_null (s, len))
    *out = json_null ();
  else if ((tag == TAG_NONE || tag == TAG_BOOL)
           && (bv = bool_value (s, len)) >= 0)
    *out = json_boolean (bv);
  else if ((tag == TAG_NONE || tag == TAG_INT)
           && (r = int_value (s, len, out)) != 0)
    {
      if (r < 0)
        return error_at (
            b, &m, "integer `%.*s` is out of range [-2^63, 2^64-1]", q, s);
    }
  else if ((tag == TAG_NONE || tag == TAG_FLOAT)
           && (r = float_value (s, len, &d)) != 0)
    {
      if (r == -EDOM)
        return error_at (b, &m, "`%.*s`: JSON has no infinity or NaN", q, s);
      if (r < 0)
        return error_at (b, &m, "`%.*s` is out of range for a double", q, s);
      *out = json_real (d);
    }
  else if (tag != TAG_NONE)
    return error_at (b, &m, "`%.*s` is not a valid !!%s", q, s, tag_names[tag]);
  else
    *out = json_stringn (s, len);
  if (*out == NULL)
    return error_at (b, &m, "`%.*s`: out of memory", q, s);
  return 0;
}

static bool
is_white (char c)
{
  return c == ' ' || c == '\t';
}

/* The text of a single-quoted scalar whose source (between the quotes) is
 * S: '' is ', and lines fold as in every flow scalar: the white space
 * around a line break goes, one break is a space, N+1 breaks (N empty
 * lines) are N newlines.  */
static char *
single_quoted_text (const char *s, size_t len, size_t *out_len)
{
  char *out = xmalloc (len + 1);
  size_t i = 0, o = 0, breaks = 0;
  bool first = true;

  for (;;)
    {
      size_t a = i, z = i, end;
      bool last;

      while (z < len && s[z] != '\n' && s[z] != '\r')
        z++;
      end = z;
      last = end == len;
      while (!first && a < z && is_white (s[a]))
        a++;
      while (!last && z > a && is_white (s[z - 1]))
        z--;
      if (!first && a == z && !last)
        breaks++;
      else
        {
          if (!first && breaks == 0)
            out[o++] = ' ';
          for (; breaks > 0; breaks--)
            out[o++] = '\n';
          for (; a < z; a++)
            {
              out[o++] = s[a];
              if (s[a] == '\'' && a + 1 < z && s[a + 1] == '\'')
                a++;
            }
        }
      if (last)
        break;
      i = end + (s[end] == '\r' && end + 1 < len && s[end + 1] == '\n' ? 2 : 1);
      first = false;
    }
  out[o] = '\0';
  *out_len = o;
  return out;
}

/* The text of scalar event E.  Single-quoted scalars are decoded here
 * from their source, into *OWN.  libfyaml 0.7.12 writes a run of escaped
 * single quotes ('a''''b') with one quote too many and cuts the text to
 * the length it expected (a''' for a''b); it leaks a buffer for a
 * scalar made of more than a few pieces (escaped quotes, folded lines);
 * and it folds a CR LF break as two.  Fixed upstream after 0.7.12.  */
static const char *
scalar_text (struct builder *b, struct fy_event *e, size_t *len, char **own)
{
  struct fy_token *t = e->scalar.value;
  const struct fy_mark *a = fy_token_start_mark (t);
  const struct fy_mark *z = fy_token_end_mark (t);
  const char *s;

  if (fy_token_scalar_style (t) == FYSS_SINGLE_QUOTED && a && z
      && a->input_pos <= z->input_pos && z->input_pos <= b->len)
    return *own = single_quoted_text (b->data + a->input_pos,
                                      z->input_pos - a->input_pos, len);
  s = fy_token_get_text (t, len);
  if (s == NULL)
    s = "", *len = 0;
  return s;
}

/* Anchors ------------------------------------------------------------ */

/* Register the anchor of event E, if it has one: its node is being
 * built.  Returns its index, -1 without an anchor.  */
static long
anchor_start (struct builder *b, struct fy_event *e)
{
  struct fy_token *t = fy_event_get_anchor_token (e);
  cleanup_free char *name = NULL;
  const char *s;
  size_t len = 0;

  if (t == NULL || (s = fy_token_get_text (t, &len)) == NULL)
    return -1;
  if (b->n_anchors == b->anchors_size)
    {
      b->anchors_size = b->anchors_size ? 2 * b->anchors_size : 16;
      b->anchors
          = xrealloc (b->anchors, b->anchors_size * sizeof (*b->anchors));
    }
  memset (&b->anchors[b->n_anchors], 0, sizeof (*b->anchors));
  name = xstrndup (s, len);
  json_object_set_new (b->anchor_index, name,
                       json_integer ((json_int_t) b->n_anchors));
  return (long) b->n_anchors++;
}

/* Anchor I's node is VALUE, of NODES nodes and HEIGHT levels.  */
static void
anchor_finish (struct builder *b, long i, json_t *value, size_t nodes,
               unsigned height)
{
  if (i < 0)
    return;
  b->anchors[i].value = json_incref (value);
  b->anchors[i].nodes = nodes;
  b->anchors[i].height = height;
}

/* The anchor that alias event E, at M, names.  */
static int
alias_anchor (struct builder *b, struct fy_event *e, const struct fy_mark *m,
              struct anchor **out)
{
  cleanup_free char *name = NULL;
  size_t len = 0;
  const char *s = fy_token_get_text (e->alias.anchor, &len);
  json_t *i;

  name = s ? xstrndup (s, len) : xstrdup ("");
  i = json_object_get (b->anchor_index, name);
  if (i == NULL)
    return error_at (b, m, "alias `*%.*s`: no such anchor before it", QUOTE_MAX,
                     name);
  *out = &b->anchors[json_integer_value (i)];
  if ((*out)->value == NULL)
    return error_at (b, m,
                     "alias `*%.*s` is inside its own anchor's node "
                     "(a recursive structure JSON cannot hold)",
                     QUOTE_MAX, name);
  return 0;
}

/* Building ------------------------------------------------------------ */

static struct frame *
top (struct builder *b)
{
  return b->depth ? &b->stack[b->depth - 1] : NULL;
}

/* Whether the next node is a key of the mapping being built.  */
static bool
expects_key (struct builder *b)
{
  struct frame *f = top (b);
  return f && json_is_object (f->value) && f->key == NULL;
}

/* The next node is the key S (a scalar's text); MERGE: it is `<<`.  */
static int
take_key (struct builder *b, const char *s, size_t len, bool merge,
          const struct fy_mark *m)
{
  struct frame *f = top (b);
  int q = (int) (len < QUOTE_MAX ? len : QUOTE_MAX);

  if (memchr (s, '\0', len))
    return error_at (b, m, "a mapping key holds a NUL character");
  if (merge ? f->merges != NULL : json_object_getn (f->value, s, len) != NULL)
    return error_at (b, m, "duplicate key `%.*s`", q, s);
  f->key = xstrndup (s, len);
  f->merge = merge;
  if (merge)
    f->merges = json_array ();
  return 0;
}

/* The value of a merge key: a mapping or a sequence of mappings, noted to
 * be merged when the mapping ends.  Takes V.  */
static int
take_merge (struct builder *b, struct frame *f, json_t *v,
            const struct fy_mark *m)
{
  bool ok = json_is_object (v);
  json_t *item;
  size_t i;
  int r = 0;

  if (json_is_array (v))
    {
      ok = true;
      json_array_foreach (v, i, item) ok = ok && json_is_object (item);
    }
  if (ok)
    r = json_is_object (v) ? json_array_append (f->merges, v)
                           : json_array_extend (f->merges, v);
  json_decref (v);
  if (!ok)
    return error_at (b, m,
                     "merge key `<<`: expected a mapping or a sequence of "
                     "mappings");
  return r < 0 ? error_at (b, m, "merge: out of memory") : 0;
}

/* Put V (taken), a node of HEIGHT levels starting at M, where the
 * document is: the root, the next item of a sequence, or the value of
 * the key a mapping holds.  */
static int
put_value (struct builder *b, json_t *v, unsigned height,
           const struct fy_mark *m)
{
  struct frame *f = top (b);
  cleanup_free char *key = NULL;

  if (f == NULL)
    {
      b->root = v;
      return 0;
    }
  if (f->height < height)
    f->height = height;
  if (json_is_array (f->value))
    return json_array_append_new (f->value, v) < 0
               ? error_at (b, m, "out of memory")
               : 0;
  key = steal_pointer (&f->key);
  if (f->merge)
    {
      f->merge = false;
      return take_merge (b, f, v, m);
    }
  return json_object_set_new (f->value, key, v) < 0
             ? error_at (b, m, "out of memory")
             : 0;
}

/* The keys the merge keys brought that the mapping does not have: the
 * mapping's own win, then the earlier mappings.  */
static int
apply_merges (struct builder *b, struct frame *f)
{
  json_t *from, *v;
  const char *k;
  size_t i;

  json_array_foreach (f->merges, i, from)
  {
    json_object_foreach (from, k, v)
    {
      if (json_object_get (f->value, k) == NULL
          && json_object_set (f->value, k, v) < 0)
        return error_at (b, &f->mark, "merge: out of memory");
    }
  }
  return 0;
}

static int
on_scalar (struct builder *b, struct fy_event *e)
{
  struct fy_mark m = event_mark (b, e);
  cleanup_json json_t *v = NULL;
  cleanup_free char *own = NULL;
  size_t len = 0;
  const char *s = scalar_text (b, e, &len, &own);
  bool key = expects_key (b);
  long a;
  int r;

  if (b->depth + 1 > YAML_MAX_DEPTH)
    return error_at (b, &m, "nested deeper than %d levels", YAML_MAX_DEPTH);
  /* A key's value only matters to check its tag, and for an alias that
   * uses it as a value.  */
  if ((!key || fy_event_get_tag_token (e) || fy_event_get_anchor_token (e))
      && (r = scalar_value (b, e, s, len, &v)) < 0)
    return r;
  b->nodes++;
  if ((a = anchor_start (b, e)) >= 0)
    {
      anchor_finish (b, a, v, 1, 1);
      b->anchors[a].text = xstrndup (s, len);
      b->anchors[a].text_len = len;
    }
  if (key)
    return take_key (b, s, len,
                     fy_token_scalar_style (e->scalar.value) == FYSS_PLAIN
                         && fy_event_get_tag_token (e) == NULL && len == 2
                         && memcmp (s, "<<", 2) == 0,
                     &m);
  return put_value (b, steal_pointer (&v), 1, &m);
}

static int
on_alias (struct builder *b, struct fy_event *e)
{
  struct fy_mark m = event_mark (b, e);
  struct anchor *a = NULL;
  json_t *copy;
  int r;

  /* The alias token's position is its name's, after the `*`.  */
  if (m.column > 0)
    m.column--;
  if ((r = alias_anchor (b, e, &m, &a)) < 0)
    return r;
  if (expects_key (b))
    {
      if (a->text == NULL)
        return error_at (b, &m, "a mapping key must be a scalar");
      return take_key (b, a->text, a->text_len, false, &m);
    }
  if (a->nodes > YAML_MAX_ALIAS_NODES - b->alias_nodes)
    return error_at (b, &m,
                     "aliases expand to more than %d nodes (an alias "
                     "bomb?)",
                     YAML_MAX_ALIAS_NODES);
  if (b->depth + a->height > YAML_MAX_DEPTH)
    return error_at (b, &m, "nested deeper than %d levels", YAML_MAX_DEPTH);
  copy = json_deep_copy (a->value);
  if (copy == NULL)
    return error_at (b, &m, "alias: out of memory");
  b->alias_nodes += a->nodes;
  b->nodes += a->nodes;
  return put_value (b, copy, a->height, &m);
}

static int
on_collection_start (struct builder *b, struct fy_event *e)
{
  struct fy_mark m = event_mark (b, e);
  bool map = e->type == FYET_MAPPING_START;
  struct frame *f;
  enum tag tag;
  int r;

  if (expects_key (b))
    return error_at (b, &m, "a mapping key must be a scalar");
  if ((r = event_tag (b, e, &tag)) < 0)
    return r;
  if (b->depth + 1 > YAML_MAX_DEPTH)
    return error_at (b, &m, "nested deeper than %d levels", YAML_MAX_DEPTH);
  if (b->depth == b->stack_size)
    {
      b->stack_size = b->stack_size ? 2 * b->stack_size : 16;
      b->stack = xrealloc (b->stack, b->stack_size * sizeof (*b->stack));
    }
  f = &b->stack[b->depth++];
  memset (f, 0, sizeof (*f));
  f->value = map ? json_object () : json_array ();
  f->mark = m;
  f->nodes_start = b->nodes++;
  f->anchor = anchor_start (b, e);
  if (f->value == NULL)
    return error_at (b, &m, "out of memory");
  return 0;
}

static void
frame_release (struct frame *f)
{
  json_decref (f->value);
  json_decref (f->merges);
  free (f->key);
  memset (f, 0, sizeof (*f));
}

static int
on_collection_end (struct builder *b, struct fy_event *e)
{
  struct frame f = b->stack[--b->depth];
  int r = 0;

  event_mark (b, e);
  if (f.merges)
    r = apply_merges (b, &f);
  if (r == 0)
    {
      anchor_finish (b, f.anchor, f.value, b->nodes - f.nodes_start,
                     f.height + 1);
      r = put_value (b, steal_pointer (&f.value), f.height + 1, &f.mark);
    }
  frame_release (&f);
  return r;
}

static int
on_event (struct builder *b, struct fy_event *e)
{
  struct fy_mark m;

  if (b->second_document)
    {
      m = event_mark (b, e);
      return error_at (b, &m, "more than one YAML document");
    }
  switch (e->type)
    {
    case FYET_DOCUMENT_START:
      if (b->documents++ == 0)
        return 0;
      if (fy_event_start_mark (e) == NULL)
        {
          b->second_document = true;
          return 0;
        }
      m = event_mark (b, e);
      return error_at (b, &m, "more than one YAML document");
    case FYET_SCALAR:
      return on_scalar (b, e);
    case FYET_ALIAS:
      return on_alias (b, e);
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START:
      return on_collection_start (b, e);
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
      return on_collection_end (b, e);
    default:
      event_mark (b, e);
      return 0;
    }
}

/* libfyaml's diagnostics: errors are collected (parse_error reads them),
 * the rest goes nowhere: the library never prints.  */
static void
discard_output (struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

static int
parse_error (struct builder *b, struct fy_diag *diag)
{
  struct fy_diag_error *de;
  void *iter = NULL;

  while ((de = fy_diag_errors_iterate (diag, &iter)) != NULL)
    if (de->type >= FYET_ERROR && de->line > 0 && de->column > 0)
      return berth_make_invalid (b->err, "%s:%d:%d: invalid YAML: %s",
                                 b->source, de->line, de->column,
                                 de->msg ? de->msg : "syntax error");
  return error_at (b, NULL, "invalid YAML");
}

static void
builder_release (struct builder *b)
{
  size_t i;

  while (b->depth > 0)
    frame_release (&b->stack[--b->depth]);
  free (b->stack);
  for (i = 0; i < b->n_anchors; i++)
    {
      json_decref (b->anchors[i].value);
      free (b->anchors[i].text);
    }
  free (b->anchors);
  json_decref (b->anchor_index);
  json_decref (b->root);
}

static int
build (struct builder *b, const char *data, size_t len)
{
  struct fy_diag_cfg dcfg;
  struct fy_parse_cfg pcfg;
  struct fy_diag *diag;
  struct fy_parser *p = NULL;
  struct fy_event *e;
  int r = 0;

  fy_diag_cfg_default (&dcfg);
  dcfg.fp = NULL;
  dcfg.output_fn = discard_output;
  dcfg.level = FYET_ERROR;
  dcfg.colorize = false;
  diag = fy_diag_create (&dcfg);
  if (diag == NULL)
    return berth_make_error (b->err, ENOMEM, "%s: YAML parser", b->source);
  fy_diag_set_collect_errors (diag, true);
  memset (&pcfg, 0, sizeof (pcfg));
  pcfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2;
  pcfg.diag = diag;
  p = fy_parser_create (&pcfg);
  if (p == NULL || fy_parser_set_string (p, data, len) != 0)
    r = berth_make_error (b->err, ENOMEM, "%s: YAML parser", b->source);
  while (r == 0 && (e = fy_parser_parse (p)) != NULL)
    {
      r = on_event (b, e);
      fy_parser_event_free (p, e);
    }
  if (r == 0 && fy_parser_get_stream_error (p))
    r = parse_error (b, diag);
  if (r == 0 && b->second_document)
    r = error_at (b, NULL, "more than one YAML document");
  if (p)
    fy_parser_destroy (p);
  fy_diag_destroy (diag);
  return r;
}

int
yaml_to_json (const char *data, size_t len, const char *source, json_t **out,
              berth_error_t *err)
{
  struct builder b;
  int r;

  memset (&b, 0, sizeof (b));
  b.source = source;
  b.data = data;
  b.len = len;
  b.err = err;
  if ((r = check_text (&b, data, len)) < 0)
    return r;
  b.anchor_index = json_object ();
  if (b.anchor_index == NULL)
    return berth_make_error (err, ENOMEM, "%s: YAML parser", source);
  r = build (&b, data, len);
  if (r == 0)
    *out = b.root ? steal_pointer (&b.root) : json_null ();
  builder_release (&b);
  return r;
}
