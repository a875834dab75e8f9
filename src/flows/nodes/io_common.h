/* io_common.h: small config readers shared by the io helper's node files (template, http,
 * delay, trigger, sinch). Node-RED's editor stores numbers sometimes as numbers and
 * sometimes as strings, and booleans as true or "true": these accept both. */
#ifndef PARLEY_FLOWS_NODES_IO_COMMON_H
#define PARLEY_FLOWS_NODES_IO_COMMON_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The string at cfg[k], or def when absent, null or not a string. */
static inline const char *io_str(const json_t *cfg, const char *k, const char *def)
{
    const json_t *v = json_object_get(cfg, k);
    return json_is_string(v) ? json_string_value(v) : def;
}

/* cfg[k] as a number (a JSON number or a numeric string); def when absent/empty/bad.
 * *ok (may be NULL) is 0 when the field is present but not numeric. */
static inline double io_num(const json_t *cfg, const char *k, double def, int *ok)
{
    const json_t *v = json_object_get(cfg, k);
    if (ok) *ok = 1;
    if (json_is_number(v)) return json_number_value(v);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s == ' ')
            s++;
        if (!*s) return def;
        char *end;
        double d = strtod(s, &end);
        while (*end == ' ')
            end++;
        if (*end == 0) return d;
        if (ok) *ok = 0;
    }
    return def;
}

/* cfg[k] as a boolean: true, "true", 1. */
static inline int io_bool(const json_t *cfg, const char *k, int def)
{
    const json_t *v = json_object_get(cfg, k);
    if (!v || json_is_null(v)) return def;
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_string(v)) return strcmp(json_string_value(v), "true") == 0;
    if (json_is_number(v)) return json_number_value(v) != 0;
    return def;
}

#endif
