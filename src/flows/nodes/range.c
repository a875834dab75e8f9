/* range.c: Node-RED's `range` node (16-range.js): maps msg[property] linearly from
 * [minin, maxin] to [minout, maxout]; action scale (no limit), clamp, roll (wrap inside the
 * input range) or drop (out-of-range messages are dropped); round to the nearest integer.
 * A value that is not a number is logged and the message dropped; no property passes the
 * message on unchanged. */
#include "flows/node.h"
#include "flows/props.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char action[8];
    int round;
    double minin, maxin, minout, maxout;
    char *property;
} range_t;

/* Number(cfg[key]) as JavaScript: numbers, numeric strings ("" is 0); 0 when NaN */
static int cfg_num(const json_t *cfg, const char *key, double *out)
{
    json_t *v = json_object_get(cfg, key);
    if (!v) return 0;
    return flows_js_number(v, out);
}

static void range_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    static const char *const nums[] = {"minin", "maxin", "minout", "maxout"};
    for (int i = 0; i < 4; i++) {
        double d;
        if (!cfg_num(cfg, nums[i], &d)) flows_problem(p, id, nums[i], "must be a number");
    }
    const char *action = json_string_value(json_object_get(cfg, "action"));
    if (action && *action && strcmp(action, "scale") && strcmp(action, "clamp") &&
        strcmp(action, "roll") && strcmp(action, "drop"))
        flows_problem(p, id, "action", "must be scale, clamp, roll or drop");
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    err_t e = {0};
    if (prop && *prop && flows_path_check(prop, &e) != 0)
        flows_problem(p, id, "property", "%s", e.message);
}

static int range_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *cfg = flows_node_config(n);
    range_t *r = calloc(1, sizeof *r);
    if (!r) return err_set(e, ERR_INTERNAL, "out of memory");
    const char *action = json_string_value(json_object_get(cfg, "action"));
    snprintf(r->action, sizeof r->action, "%s", action ? action : "");
    r->round = flows_js_truthy(json_object_get(cfg, "round"));
    cfg_num(cfg, "minin", &r->minin);
    cfg_num(cfg, "maxin", &r->maxin);
    cfg_num(cfg, "minout", &r->minout);
    cfg_num(cfg, "maxout", &r->maxout);
    if (r->minin > r->maxin) {
        double t = r->minin;
        r->minin = r->maxin;
        r->maxin = t;
        t = r->minout;
        r->minout = r->maxout;
        r->maxout = t;
    }
    if (r->round) {
        r->maxout = floor(r->maxout);
        r->minout = ceil(r->minout);
    }
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    r->property = strdup(prop && *prop ? prop : "payload");
    flows_node_set_state(n, r);
    return 0;
}

static void range_input(flows_node_t *n, json_t *msg)
{
    range_t *r = flows_node_state(n);
    json_t *value = flows_prop_get(msg, r->property);
    if (!value) {
        flows_send(n, 0, msg);
        return;
    }
    double x;
    if (!flows_js_number(value, &x)) {
        char *s = flows_js_string(value);
        flows_log(n, "info", "Not a number: %s", s);
        free(s);
        json_decref(msg);
        return;
    }
    if (strcmp(r->action, "drop") == 0 && (x < r->minin || x > r->maxin)) {
        json_decref(msg);
        return;
    }
    if (strcmp(r->action, "clamp") == 0) {
        if (x < r->minin) x = r->minin;
        if (x > r->maxin) x = r->maxin;
    }
    if (strcmp(r->action, "roll") == 0) {
        double d = r->maxin - r->minin;
        x = fmod(fmod(x - r->minin, d) + d, d) + r->minin;
    }
    double v = ((x - r->minin) / (r->maxin - r->minin) * (r->maxout - r->minout)) + r->minout;
    if (r->round) v = floor(v + 0.5); /* Math.round */
    err_t e = {0};
    json_t *out = isfinite(v) ? flows_js_num(v) : json_null(); /* NaN prints as null */
    if (flows_prop_set(msg, r->property, out, &e) != 0) {
        flows_error(n, msg, "%s", e.message);
        return;
    }
    flows_send(n, 0, msg);
}

static void range_stop(flows_node_t *n)
{
    range_t *r = flows_node_state(n);
    if (!r) return;
    free(r->property);
    free(r);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_range = {
    .type = "range",
    .validate = range_validate,
    .start = range_start,
    .input = range_input,
    .stop = range_stop,
};
