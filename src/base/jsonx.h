/* jsonx.h: jansson helpers for validating request bodies with precise, field-naming
 * errors. Getters return 0 when the field is absent (and *out is untouched) or valid,
 * 1 when present and valid, -1 with err filled when the type or value is wrong. */
#ifndef PARLEY_BASE_JSONX_H
#define PARLEY_BASE_JSONX_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a complete JSON document; the error names line, column and jansson's reason.
 * Rejects NUL bytes inside the document and nesting deeper than jansson's limit. */
json_t *jsonx_parse(const char *text, size_t len, err_t *e);

/* `name` is the field path used in messages ("app.display_name"). */
int jsonx_str(json_t *obj, const char *key, const char *name, const char **out, err_t *e);
int jsonx_int(json_t *obj, const char *key, const char *name, int64_t min, int64_t max,
              int64_t *out, err_t *e);
int jsonx_bool(json_t *obj, const char *key, const char *name, int *out, err_t *e);
int jsonx_obj(json_t *obj, const char *key, const char *name, json_t **out, err_t *e);
int jsonx_arr(json_t *obj, const char *key, const char *name, json_t **out, err_t *e);
/* String that must be one of values[] (NULL-terminated); *idx gets its index. */
int jsonx_enum(json_t *obj, const char *key, const char *name, const char *const values[], int *idx,
               err_t *e);
/* A required field: -1 with "missing required field NAME" when absent. */
int jsonx_require(int got, const char *name, err_t *e);

/* "object", "array", "string", "integer", "number", "boolean" or "null". */
const char *jsonx_type_name(const json_t *v);

/* Serialise compactly into a malloc'd string (caller frees). */
char *jsonx_dump(const json_t *v);

#endif
