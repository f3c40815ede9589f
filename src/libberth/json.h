/* json.h - typed accessors over jansson for schema-defined JSON.
 *
 * Every accessor looks up KEY in the object OBJ.  It returns 0 when the key
 * is missing or null (OUT untouched), 1 when present and of the right type
 * (OUT set; strings and objects are borrowed from OBJ), and a negative value
 * with an error naming "PATH.KEY" when the value has the wrong type or range.
 * PATH is the dotted location of OBJ in the document ("linux.resources"),
 * used only for messages.  OBJ may be NULL (treated as empty).
 */
#ifndef BERTH_JSON_H
#define BERTH_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

void cleanup_jsonp (json_t **j);
#define cleanup_json __attribute__ ((cleanup (cleanup_jsonp)))

int bjson_string (json_t *obj, const char *path, const char *key,
                  const char **out, berth_error_t *err);
int bjson_bool (json_t *obj, const char *path, const char *key, bool *out,
                berth_error_t *err);
int bjson_int64 (json_t *obj, const char *path, const char *key, int64_t *out,
                 berth_error_t *err);
/* Rejects negative numbers. */
int bjson_uint64 (json_t *obj, const char *path, const char *key, uint64_t *out,
                  berth_error_t *err);
/* Rejects numbers outside [MIN, MAX]. */
int bjson_int_range (json_t *obj, const char *path, const char *key,
                     int64_t min, int64_t max, int64_t *out,
                     berth_error_t *err);
int bjson_object (json_t *obj, const char *path, const char *key, json_t **out,
                  berth_error_t *err);
int bjson_array (json_t *obj, const char *path, const char *key, json_t **out,
                 berth_error_t *err);
/* An array of strings, copied into a new NULL-terminated vector. */
int bjson_strv (json_t *obj, const char *path, const char *key, char ***out,
                berth_error_t *err);

/* Parse a whole document; the error names SOURCE, line and column. */
int bjson_parse (const char *data, size_t len, const char *source, json_t **out,
                 berth_error_t *err);

/* Serialize compactly; caller frees. */
char *bjson_dump (json_t *j, bool pretty);

#endif
