/* mustache.h: Mustache templates over JSON views, rendered as mustache.js 4 (the library
 * Node-RED's template node uses) renders them: `{{name}}` HTML-escaped, `{{{name}}}` and
 * `{{& name}}` raw, sections and inverted sections, dotted names looked up through the
 * context stack, `{{.}}`, comments, set-delimiter tags and the standalone-line rule.
 * Partials render as nothing (Node-RED gives none). Names not found in any view go to
 * an optional callback: that is how the template node resolves `{{flow.x}}`,
 * `{{global.x}}` and `{{env.X}}`.
 *
 * A template is compiled once (at deploy) and rendered many times; a compiled template
 * is immutable, so several threads may render it at once. The caller frees it with
 * flows_mustache_free. */
#ifndef PARLEY_FLOWS_MUSTACHE_H
#define PARLEY_FLOWS_MUSTACHE_H

#include "base/buf.h"
#include "base/err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct flows_mustache flows_mustache_t;

enum {
    /* Node-RED's template node with output "json": strings found at the top level (outside
     * any section that pushed a view) get \\ \n \t \r \f \b escaped. */
    FLOWS_MUSTACHE_JSON_NR = 1,
    /* Every string value is escaped as the inside of a JSON string (quotes, backslash,
     * control characters), at every depth: for JSON documents with {{variables}}. */
    FLOWS_MUSTACHE_JSON_FULL = 2,
};

typedef struct {
    /* Called for a name no view has (e.g. "flow.count", "env.HOME"); returns a new
     * reference or NULL (renders as nothing). May be NULL. */
    json_t *(*lookup)(void *ud, const char *name);
    void *ud;
    int json;    /* 0 or one of FLOWS_MUSTACHE_JSON_* */
    int no_html; /* 1: {{name}} is not HTML-escaped either */
} flows_mustache_opts_t;

/* NULL with e filled (INVALID_ARGUMENT, mustache.js's message: "Unclosed section \"x\" at
 * 12", "Unclosed tag at 5", "Unopened section ...", "Invalid tags ...") on a bad template. */
flows_mustache_t *flows_mustache_compile(const char *tpl, size_t len, err_t *e);
void flows_mustache_free(flows_mustache_t *m);

/* Appends the rendering to out. views[0] is the bottom of the context stack (the msg),
 * views[nviews-1] the top; views are borrowed. opts may be NULL. */
void flows_mustache_render(const flows_mustache_t *m, json_t *const *views, int nviews,
                           const flows_mustache_opts_t *opts, buf_t *out);

/* Compile + render in one go: a malloc'd string (caller frees) or NULL with e filled. */
char *flows_mustache_render_str(const char *tpl, json_t *view, const flows_mustache_opts_t *opts,
                                err_t *e);

/* JavaScript's String(number) for a double ("1", "0.1", "1e+21", "1.5e-7", "NaN"). */
void flows_mustache_num(double v, char *out, size_t cap);

/* JavaScript's String(value) for a JSON value: numbers as above, arrays joined with ",",
 * objects "[object Object]", null "" (as mustache.js prints them). Appends to out. */
void flows_mustache_str(const json_t *v, buf_t *out);

#endif
