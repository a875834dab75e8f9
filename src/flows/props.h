/* props.h: msg property paths and Node-RED "typed inputs", shared by the nodes (switch,
 * change, inject, template, split, ...). A path is Node-RED's RED.util.normalisePropertyExpression
 * syntax: `payload`, `payload.a[0]["b c"]`, `a['x'].y`; nested message references
 * (`a[msg.b]`) are not supported (a deploy-time problem).
 *
 * JSON stands in for JavaScript values: "undefined" is a missing property (functions
 * return 0 / NULL), null is JSON null, a Buffer is an array of byte numbers, a Date is its
 * millisecond number (or ISO string). Owns nothing: results are new references. */
#ifndef PARLEY_FLOWS_PROPS_H
#define PARLEY_FLOWS_PROPS_H

#include "base/err.h"
#include "flows/node.h"

#include <jansson.h>

/* ---- paths ---- */
#define FLOWS_PATH_MAX 32 /* segments */
typedef struct {
    int n;
    struct {
        int is_index; /* 1: array index idx; 0: object key */
        long idx;
        char *key; /* malloc'd (is_index == 0) */
    } seg[FLOWS_PATH_MAX];
} flows_path_t;

/* Parse a property expression; -1 with a precise message ("unexpected ']' at 4"). */
int flows_path_parse(const char *expr, flows_path_t *out, err_t *e);
void flows_path_free(flows_path_t *p);
/* 0 if expr is a valid property expression, else -1 with e filled (for validate hooks). */
int flows_path_check(const char *expr, err_t *e);

/* The value at path in obj (borrowed), NULL when undefined. An invalid path is undefined. */
json_t *flows_prop_get(json_t *obj, const char *expr);
/* Set (steals v, also on error), creating intermediate objects (or arrays when the next
 * segment is an index) as Node-RED's setMessageProperty with createMissing. -1 with e. */
int flows_prop_set(json_t *obj, const char *expr, json_t *v, err_t *e);
/* Delete; 1 when something was removed, 0 when it did not exist. */
int flows_prop_delete(json_t *obj, const char *expr);

/* ---- typed inputs ----
 * Types: msg flow global str num bool json date env re bin jsonata node (and "" as str).
 * Parley evaluates all but jsonata and node, which are refused at deploy. */

/* Deploy-time check of a typed input: the type must be in `allowed` (NULL-terminated; NULL
 * = any type Parley supports), and the value must be valid for it (num parses, json
 * parses, re compiles, msg path parses...). Reports problems on `field` (value) and
 * `type_field`. Returns 0 if fine, -1 if a problem was reported. */
int flows_typed_check(flows_problems_t *p, const char *node_id, const char *field,
                      const char *type_field, const char *type, const char *value,
                      const char *const allowed[]);
/* Evaluate a typed input against msg (msg may be NULL for msg-less evaluation). Returns 1
 * with *out a new ref, 0 when undefined (*out = NULL), -1 with e filled on error (e.g.
 * "invalid JSON"). n gives flow/global context and env. */
int flows_typed_eval(flows_node_t *n, json_t *msg, const char *type, const char *value,
                     json_t **out, err_t *e);
/* Evaluate a config field pair: cfg[field] with type cfg[type_field] (default def_type). */
int flows_typed_eval_field(flows_node_t *n, json_t *msg, const char *field, const char *type_field,
                           const char *def_type, json_t **out, err_t *e);

/* Set a value where a typed *target* points: type msg|flow|global, path. Steals v. */
int flows_target_set(flows_node_t *n, json_t *msg, const char *type, const char *path, json_t *v,
                     err_t *e);
/* Delete at a typed target (msg|flow|global). */
int flows_target_delete(flows_node_t *n, json_t *msg, const char *type, const char *path);

/* Node-RED's `${VAR}` substitution in env-typed values (and typed input "env" values that
 * contain ${...}). Caller frees. */
char *flows_env_subst(flows_node_t *n, const char *s);

/* ---- JS-like helpers ---- */
/* JavaScript truthiness of a JSON value (NULL = undefined = false). */
int flows_js_truthy(const json_t *v);
/* JavaScript String(v) (objects as JSON text, undefined as "undefined"). Caller frees. */
char *flows_js_string(const json_t *v);
/* JavaScript Number(v): 1 with *out, 0 when NaN. */
int flows_js_number(const json_t *v, double *out);
/* A JSON number for d (integer when exact). New ref. */
json_t *flows_js_num(double d);

/* ---- regular expressions (PCRE2, JavaScript-compatible enough; see docs/flows.md) ---- */
typedef struct flows_re flows_re_t;
/* -1 with "bad regular expression: <reason> at offset N". */
flows_re_t *flows_re_new(const char *pattern, int ignore_case, err_t *e);
void flows_re_free(flows_re_t *re);
int flows_re_test(flows_re_t *re, const char *s);
/* Replace every match (global: all, else first) with repl, where repl may use $1..$9, $&
 * as JavaScript's String.replace. Caller frees. */
char *flows_re_replace(flows_re_t *re, const char *s, const char *repl, int global);

#endif
