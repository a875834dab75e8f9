/* template.c: the `template` node (Node-RED 80-template.js). Fields: field (default
 * "payload"), fieldType msg|flow|global, syntax mustache|plain, template, output str|json
 * (yaml is refused at deploy), format (editor only). An empty template takes
 * msg.template. Mustache names not in the msg resolve env.X, flow.x, global.x (also
 * flow[store].x) through node context, as Node-RED's NodeContext does; with output json,
 * top-level strings are JSON-escaped before insertion, then the result is parsed. */
#include "flows/mustache.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"
#include "flows/props.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    flows_mustache_t *tpl; /* NULL: plain syntax, or an empty template (msg.template) */
    int mustache, json;
    const char *field, *field_type, *text;
} tpl_state_t;

static void template_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *syntax = io_str(cfg, "syntax", "mustache");
    const char *output = io_str(cfg, "output", "str");
    const char *ft = io_str(cfg, "fieldType", "msg");
    if (strcmp(syntax, "mustache") && strcmp(syntax, "plain"))
        flows_problem(p, id, "syntax", "syntax must be \"mustache\" or \"plain\", not \"%s\"",
                      syntax);
    if (strcmp(output, "yaml") == 0)
        flows_problem(p, id, "output",
                      "output \"yaml\" is not supported by Parley (use str or json)");
    else if (strcmp(output, "str") && strcmp(output, "json"))
        flows_problem(p, id, "output", "output must be \"str\" or \"json\", not \"%s\"", output);
    if (strcmp(ft, "msg") && strcmp(ft, "flow") && strcmp(ft, "global"))
        flows_problem(p, id, "fieldType", "fieldType must be msg, flow or global, not \"%s\"", ft);
    err_t e = {0};
    const char *field = io_str(cfg, "field", "payload");
    if (!strcmp(ft, "msg") && *field && flows_path_check(field, &e) < 0)
        flows_problem(p, id, "field", "%s", e.message);
    const char *text = io_str(cfg, "template", "");
    if (!strcmp(syntax, "mustache") && *text) {
        flows_mustache_t *m = flows_mustache_compile(text, strlen(text), &e);
        if (!m) flows_problem(p, id, "template", "bad mustache template: %s", e.message);
        flows_mustache_free(m);
    }
}

static int template_start(flows_node_t *n, err_t *e)
{
    json_t *cfg = flows_node_config(n);
    tpl_state_t *s = calloc(1, sizeof *s);
    s->mustache = strcmp(io_str(cfg, "syntax", "mustache"), "plain") != 0;
    s->json = strcmp(io_str(cfg, "output", "str"), "json") == 0;
    s->field = io_str(cfg, "field", "payload");
    if (!*s->field) s->field = "payload";
    s->field_type = io_str(cfg, "fieldType", "msg");
    s->text = io_str(cfg, "template", "");
    if (s->mustache && *s->text &&
        !(s->tpl = flows_mustache_compile(s->text, strlen(s->text), e))) {
        free(s);
        return -1;
    }
    flows_node_set_state(n, s);
    return 0;
}

static void template_stop(flows_node_t *n)
{
    tpl_state_t *s = flows_node_state(n);
    if (!s) return;
    flows_mustache_free(s->tpl);
    free(s);
    flows_node_set_state(n, NULL);
}

/* env.X, flow.x, global.x, flow[store].x, global[store].x */
static json_t *ctx_lookup(void *ud, const char *name)
{
    flows_node_t *n = ud;
    if (strncmp(name, "env.", 4) == 0 && name[4]) return flows_env_value(n, name + 4);
    const char *scope = NULL, *rest = NULL;
    if (strncmp(name, "flow", 4) == 0)
        scope = "flow", rest = name + 4;
    else if (strncmp(name, "global", 6) == 0)
        scope = "global", rest = name + 6;
    if (!scope) return NULL;
    if (*rest == '[') {
        const char *close = strchr(rest, ']');
        if (!close) return NULL;
        for (const char *c = rest + 1; c < close; c++)
            if (!(*c == '_' || isalnum((unsigned char)*c))) return NULL;
        rest = close + 1;
    }
    if (*rest != '.' || !rest[1]) return NULL;
    return flows_context_get(n, scope, rest + 1);
}

static void template_input(flows_node_t *n, json_t *msg)
{
    tpl_state_t *s = flows_node_state(n);
    const char *text = s->text;
    flows_mustache_t *own = NULL;
    const flows_mustache_t *tpl = s->tpl;
    if (!*text) { /* Node-RED: msg.template when the node's template is empty */
        json_t *t = json_object_get(msg, "template");
        if (json_is_string(t)) text = json_string_value(t);
        tpl = NULL;
        if (s->mustache && *text) {
            err_t e = {0};
            if (!(own = flows_mustache_compile(text, strlen(text), &e))) {
                flows_error(n, msg, "%s", e.message);
                return;
            }
            tpl = own;
        }
    }
    buf_t out;
    buf_init(&out);
    if (tpl) {
        flows_mustache_opts_t o = {
            .lookup = ctx_lookup, .ud = n, .json = s->json ? FLOWS_MUSTACHE_JSON_NR : 0};
        flows_mustache_render(tpl, &msg, 1, &o, &out);
    } else {
        buf_puts(&out, text);
    }
    flows_mustache_free(own);
    json_t *value;
    if (s->json) {
        json_error_t je;
        value = json_loadb(out.data ? out.data : "", out.len, JSON_DECODE_ANY, &je);
        if (!value) {
            flows_error(n, msg, "Unexpected token in JSON at position %d: %s", je.position,
                        je.text);
            buf_free(&out);
            return;
        }
    } else {
        value = json_stringn(out.data ? out.data : "", out.len);
        if (!value) value = json_string(""); /* invalid UTF-8 cannot happen from JSON input */
    }
    buf_free(&out);
    err_t e = {0};
    if (flows_target_set(n, msg, s->field_type, s->field, value, &e) < 0) {
        flows_error(n, msg, "%s", e.message);
        return;
    }
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_template = {
    .type = "template",
    .validate = template_validate,
    .start = template_start,
    .input = template_input,
    .stop = template_stop,
};
