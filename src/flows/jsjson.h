/* jsjson.h: JavaScript's JSON.stringify over jansson values, byte for byte: numbers in
 * JavaScript's shortest round-trip form (0.1, 1e+21, 1.5e-7; jansson would print
 * 0.10000000000000001), strings escaped as V8 does (only ", \, and control characters),
 * indentation as JSON.stringify(v, null, indent). Used by the json node, the Lua json
 * library and anything that must print what Node-RED prints. Owns nothing. */
#ifndef PARLEY_FLOWS_JSJSON_H
#define PARLEY_FLOWS_JSJSON_H

#include "base/buf.h"

#include <jansson.h>

/* Append the text of v to b; indent 0 = compact, else that many spaces per level. */
void flows_jsjson_append(buf_t *b, const json_t *v, int indent);
/* The text of v (malloc'd, caller frees). */
char *flows_jsjson_stringify(const json_t *v, int indent);
/* JavaScript's Number.prototype.toString() of d into out (cap >= 32). */
void flows_jsjson_number(double d, char *out, size_t cap);

#endif
