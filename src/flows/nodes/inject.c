/* inject.c: the `inject` node: a message from its props list (Node-RED 3+ `props`
 * [{p, v, vt}], or the legacy payload/payloadType/topic fields) once after deploy
 * (`once`, `onceDelay` seconds, default 0.1), every `repeat` seconds, or on a 5-field
 * `crontab` ("m h dom mon dow", server local time; lists, ranges, steps, `*`). A message
 * arriving on its input (the admin "inject" button: POST .../inject/{node_id}) gets the
 * same props set. Timers are runtime timers, so an undeploy cancels them. */
#include "flows/node.h"
#include "flows/props.h"

#include "base/buf.h"
#include "base/clock.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flows/internal.h"

typedef struct {
    int64_t repeat_ms;
    int has_cron;
    flows_cron_t cron;
} inject_t;

static const int cron_min[5] = {0, 0, 1, 1, 0}, cron_max[5] = {59, 23, 31, 12, 7};

/* One field: "*", "*\/n", "a", "a-b", "a-b/n", lists of those. -1 if malformed. */
static int cron_field(const char *s, int lo, int hi, uint64_t *mask)
{
    *mask = 0;
    while (*s) {
        int a = lo, b = hi, step = 1, single = 0;
        if (*s == '*')
            s++;
        else if (isdigit((unsigned char)*s)) {
            a = (int)strtol(s, (char **)&s, 10);
            b = a;
            single = 1;
            if (*s == '-') {
                single = 0;
                s++;
                if (!isdigit((unsigned char)*s)) return -1;
                b = (int)strtol(s, (char **)&s, 10);
            }
        } else
            return -1;
        if (*s == '/') {
            s++;
            if (!isdigit((unsigned char)*s)) return -1;
            step = (int)strtol(s, (char **)&s, 10);
            if (step <= 0) return -1;
            if (single) b = hi; /* "a/n": from a to the end */
        }
        if (a < lo || b > hi || a > b) return -1;
        for (int v = a; v <= b; v += step)
            *mask |= 1ULL << v;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return 0;
}

int flows_cron_parse(const char *spec, flows_cron_t *c)
{
    memset(c, 0, sizeof *c);
    char buf[128];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL, *tok = strtok_r(buf, " \t", &save);
    int i = 0;
    for (; tok && i < 5; i++, tok = strtok_r(NULL, " \t", &save)) {
        if (cron_field(tok, cron_min[i], cron_max[i], &c->fields[i]) < 0) return -1;
        if (i == 2) c->dom_star = strcmp(tok, "*") == 0;
        if (i == 4) c->dow_star = strcmp(tok, "*") == 0;
    }
    if (i != 5 || tok) return -1;
    if (c->fields[4] & (1ULL << 7)) c->fields[4] |= 1; /* 7 = Sunday */
    return 0;
}

/* Milliseconds from now to the next matching minute (within ~4 years), or -1. */
int64_t flows_cron_next(const flows_cron_t *c, int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    t = t - t % 60 + 60;
    for (int i = 0; i < 4 * 366 * 24 * 60; i++, t += 60) {
        struct tm tm;
        localtime_r(&t, &tm);
        if (!(c->fields[3] & (1ULL << (tm.tm_mon + 1)))) continue;
        if (!(c->fields[1] & (1ULL << tm.tm_hour))) continue;
        if (!(c->fields[0] & (1ULL << tm.tm_min))) continue;
        int dom = (c->fields[2] >> tm.tm_mday) & 1, dow = (c->fields[4] >> tm.tm_wday) & 1;
        int day = c->dom_star || c->dow_star ? (dom && dow) : (dom || dow);
        if (!day) continue;
        return (int64_t)t * 1000 - now_ms;
    }
    return -1;
}

/* The props list, legacy fields folded in (a new ref). */
static json_t *props_of(json_t *cfg)
{
    json_t *props = json_object_get(cfg, "props");
    json_t *payload = json_object_get(cfg, "payload");
    const char *ptype = json_string_value(json_object_get(cfg, "payloadType"));
    json_t *topic = json_object_get(cfg, "topic");
    if (!json_is_array(props)) {
        return json_pack("[{s:s,s:o,s:s},{s:s,s:o,s:s}]", "p", "payload", "v",
                         payload ? json_incref(payload) : json_string(""), "vt",
                         ptype ? ptype : "date", "p", "topic", "v",
                         topic ? json_incref(topic) : json_string(""), "vt", "str");
    }
    json_t *out = json_deep_copy(props);
    size_t i;
    json_t *p;
    json_array_foreach(out, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "p"));
        if (!name) continue;
        if (strcmp(name, "payload") == 0 && !json_object_get(p, "v")) {
            json_object_set_new(p, "v", payload ? json_incref(payload) : json_string(""));
            json_object_set_new(p, "vt", json_string(ptype ? ptype : "date"));
        } else if (strcmp(name, "topic") == 0 && !json_object_get(p, "v")) {
            json_object_set_new(p, "v", topic ? json_incref(topic) : json_string(""));
        }
    }
    return out;
}

static double num_field(json_t *cfg, const char *k, double def)
{
    json_t *v = json_object_get(cfg, k);
    double d;
    if (!v || (json_is_string(v) && !json_string_length(v))) return def;
    return flows_js_number(v, &d) ? d : def;
}

static void inject_validate(const json_t *cfgc, flows_problems_t *p)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    json_t *props = props_of(cfg);
    size_t i;
    json_t *pr;
    json_array_foreach(props, i, pr)
    {
        char f[48], tf[48];
        snprintf(f, sizeof f, "props[%zu].v", i);
        snprintf(tf, sizeof tf, "props[%zu].vt", i);
        const char *name = json_string_value(json_object_get(pr, "p"));
        json_t *v = json_object_get(pr, "v");
        char *sv = v && !json_is_string(v) ? flows_js_string(v) : NULL;
        if (name && *name) {
            err_t e;
            char pf[48];
            snprintf(pf, sizeof pf, "props[%zu].p", i);
            if (flows_path_check(name, &e) < 0) flows_problem(p, id, pf, "%s", e.message);
            flows_typed_check(p, id, json_is_array(json_object_get(cfg, "props")) ? f : "payload",
                              json_is_array(json_object_get(cfg, "props")) ? tf : "payloadType",
                              json_string_value(json_object_get(pr, "vt")),
                              sv ? sv : json_string_value(v), NULL);
        }
        free(sv);
    }
    json_decref(props);
    double repeat = num_field(cfg, "repeat", 0);
    if (repeat < 0 || repeat > 2147483)
        flows_problem(p, id, "repeat", "repeat must be between 0 and 2147483 seconds");
    const char *cron = json_string_value(json_object_get(cfg, "crontab"));
    flows_cron_t c;
    if (cron && *cron && flows_cron_parse(cron, &c) < 0)
        flows_problem(p, id, "crontab", "invalid crontab '%s' (5 fields: m h dom mon dow)", cron);
}

static void fire(flows_node_t *n, void *arg);

static void schedule_next(flows_node_t *n)
{
    inject_t *st = flows_node_state(n);
    if (st->repeat_ms > 0)
        flows_timer(n, st->repeat_ms, fire, NULL, NULL);
    else if (st->has_cron) {
        int64_t d = flows_cron_next(&st->cron, clock_now_ms());
        if (d >= 0) flows_timer(n, d, fire, NULL, NULL);
    }
}

static void inject_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    json_t *user = json_object_get(msg, "__user_inject_props__"); /* editor's "inject now" */
    json_t *props = json_is_array(user) ? json_incref(user) : props_of(cfg);
    json_object_del(msg, "__user_inject_props__");
    size_t i;
    json_t *pr;
    buf_t errs = {0};
    json_array_foreach(props, i, pr)
    {
        const char *name = json_string_value(json_object_get(pr, "p"));
        if (!name || !*name) continue;
        json_t *v = json_object_get(pr, "v");
        char *sv = v && !json_is_string(v) ? flows_js_string(v) : NULL;
        json_t *val = NULL;
        err_t e;
        const char *vt = json_string_value(json_object_get(pr, "vt"));
        int rc =
            flows_typed_eval(n, msg, vt ? vt : "str", sv ? sv : json_string_value(v), &val, &e);
        free(sv);
        if (rc < 0)
            buf_printf(&errs, "%s%s", errs.len ? "; " : "", e.message);
        else if (flows_prop_set(msg, name, val ? val : json_null(), &e) < 0)
            buf_printf(&errs, "%s%s", errs.len ? "; " : "", e.message);
    }
    json_decref(props);
    if (errs.len)
        flows_error(n, msg, "%s", errs.data);
    else
        flows_send(n, 0, msg);
    buf_free(&errs);
}

static void fire(flows_node_t *n, void *arg)
{
    (void)arg;
    inject_input(n, flows_msg_new());
    schedule_next(n);
}

static void fire_once(flows_node_t *n, void *arg)
{
    (void)arg;
    inject_input(n, flows_msg_new());
    schedule_next(n);
}

static int inject_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *cfg = flows_node_config(n);
    inject_t *st = calloc(1, sizeof *st);
    flows_node_set_state(n, st);
    double repeat = num_field(cfg, "repeat", 0);
    if (repeat > 0) st->repeat_ms = (int64_t)(repeat * 1000);
    const char *cron = json_string_value(json_object_get(cfg, "crontab"));
    if (!st->repeat_ms && cron && *cron && flows_cron_parse(cron, &st->cron) == 0) st->has_cron = 1;
    if (json_is_true(json_object_get(cfg, "once"))) {
        double d = num_field(cfg, "onceDelay", 0.1);
        if (d <= 0) d = 0.1;
        flows_timer(n, (int64_t)(d * 1000), fire_once, NULL, NULL);
    } else
        schedule_next(n);
    return 0;
}

static void inject_stop(flows_node_t *n)
{
    free(flows_node_state(n));
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_inject = {
    .type = "inject",
    .validate = inject_validate,
    .start = inject_start,
    .input = inject_input,
    .stop = inject_stop,
};
