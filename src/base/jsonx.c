/* jsonx.c: typed field access with error messages that name the field. */
#include "base/jsonx.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

json_t *jsonx_parse(const char *text, size_t len, err_t *e)
{
    json_error_t je;
    if (len == 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "request body is empty; expected a JSON object");
        return NULL;
    }
    if (memchr(text, '\0', len)) {
        err_set(e, ERR_INVALID_ARGUMENT, "invalid JSON: NUL byte in body");
        return NULL;
    }
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        err_set(e, ERR_INVALID_ARGUMENT, "invalid JSON at line %d column %d: %s", je.line,
                je.column, je.text);
    return v;
}

const char *jsonx_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static json_t *field(json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return (v && !json_is_null(v)) ? v : NULL;
}

static int wrong_type(const char *name, const char *want, const json_t *v, err_t *e)
{
    return err_set(e, ERR_INVALID_ARGUMENT, "field %s must be %s, got %s", name, want,
                   jsonx_type_name(v));
}

int jsonx_str(json_t *obj, const char *key, const char *name, const char **out, err_t *e)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    if (!json_is_string(v)) return wrong_type(name, "a string", v, e);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s must not contain NUL characters", name);
    *out = json_string_value(v);
    return 1;
}

int jsonx_int(json_t *obj, const char *key, const char *name, int64_t min, int64_t max,
              int64_t *out, err_t *e)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    json_int_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v)) { /* protobuf JSON allows int64 as strings */
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (!*s || *end || isspace((unsigned char)*s) || *s == '+')
            return wrong_type(name, "an integer", v, e);
        if (errno == ERANGE)
            return err_set(e, ERR_INVALID_ARGUMENT, "field %s is out of the 64-bit integer range",
                           name);
        n = ll;
    } else {
        return wrong_type(name, "an integer", v, e);
    }
    if (n < min || n > max)
        return err_set(e, ERR_INVALID_ARGUMENT, "field %s must be between %lld and %lld, got %lld",
                       name, (long long)min, (long long)max, (long long)n);
    *out = n;
    return 1;
}

int jsonx_bool(json_t *obj, const char *key, const char *name, int *out, err_t *e)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return wrong_type(name, "a boolean", v, e);
    *out = json_is_true(v);
    return 1;
}

int jsonx_obj(json_t *obj, const char *key, const char *name, json_t **out, err_t *e)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    if (!json_is_object(v)) return wrong_type(name, "an object", v, e);
    *out = v;
    return 1;
}

int jsonx_arr(json_t *obj, const char *key, const char *name, json_t **out, err_t *e)
{
    json_t *v = field(obj, key);
    if (!v) return 0;
    if (!json_is_array(v)) return wrong_type(name, "an array", v, e);
    *out = v;
    return 1;
}

int jsonx_enum(json_t *obj, const char *key, const char *name, const char *const values[], int *idx,
               err_t *e)
{
    const char *s = NULL;
    int got = jsonx_str(obj, key, name, &s, e);
    if (got <= 0) return got;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0) {
            *idx = i;
            return 1;
        }
    char list[320] = "";
    size_t off = 0;
    for (int i = 0; values[i] && off < sizeof list - 2; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", values[i]);
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "field %s has unknown value \"%.64s\"; expected one of: %s", name, s, list);
}

int jsonx_require(int got, const char *name, err_t *e)
{
    if (got < 0) return -1;
    if (got == 0) return err_set(e, ERR_INVALID_ARGUMENT, "missing required field %s", name);
    return 1;
}

char *jsonx_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}
