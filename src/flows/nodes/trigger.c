/* trigger.c: the `trigger` node (Node-RED 89-trigger.js): send op1 (typed: str, num,
 * json, bool, date, env, flow, global, pay = the payload as is, nul = nothing, val),
 * then after duration (units ms|s|min|hr) send op2 (or payl = the latest msg), unless
 * reset (msg.reset, or a payload equal to `reset`). extend restarts the wait on each
 * message; a negative duration resends op1 every |duration| until reset; duration 0
 * waits for a reset forever; bytopic "topic" keeps one state per msg[topic]; outputs 2
 * sends the second message on output 2; overrideDelay takes msg.delay (ms). op1/op2 of
 * type str with {{...}} are mustache templates over the msg. */
#include "base/clock.h"
#include "flows/mustache.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"
#include "flows/props.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct topic {
    struct topic *next;
    char *name;
    uint64_t tid; /* 0 with active = 1: waiting for a reset (duration 0) */
    int active;
    json_t *m2;   /* the second payload */
    json_t *msg;  /* for the timer: the msg it clones */
    json_t *npay; /* op2type payl: the latest msg */
} topic_t;

typedef struct {
    const char *op1, *op2, *op1type, *op2type, *reset, *topic_prop, *extend_s;
    int loop, second, bytopic, extend, override;
    double duration;
    topic_t *topics;
} trig_t;

static void trigger_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    int ok;
    io_num(cfg, "duration", 250, &ok);
    if (!ok) flows_problem(p, id, "duration", "duration must be a number");
    static const char *const allowed[] = {"str",    "num", "json", "bool", "date", "env", "flow",
                                          "global", "pay", "payl", "nul",  "val",  "msg", NULL};
    const char *t1 = io_str(cfg, "op1type", "str"), *t2 = io_str(cfg, "op2type", "str");
    int g1 = 0, g2 = 0;
    for (int i = 0; allowed[i]; i++)
        g1 |= !strcmp(t1, allowed[i]), g2 |= !strcmp(t2, allowed[i]);
    if (!g1) flows_problem(p, id, "op1type", "op1type \"%s\" is not supported", t1);
    if (!g2) flows_problem(p, id, "op2type", "op2type \"%s\" is not supported", t2);
    static const char *const typed[] = {"str", "num",  "json",   "bool", "date",
                                        "env", "flow", "global", "msg",  NULL};
    if (g1 && strcmp(t1, "pay") && strcmp(t1, "payl") && strcmp(t1, "nul") && strcmp(t1, "val"))
        flows_typed_check(p, id, "op1", "op1type", t1, io_str(cfg, "op1", "1"), typed);
    if (g2 && strcmp(t2, "pay") && strcmp(t2, "payl") && strcmp(t2, "nul") && strcmp(t2, "val"))
        flows_typed_check(p, id, "op2", "op2type", t2, io_str(cfg, "op2", "0"), typed);
}

static int trigger_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *cfg = flows_node_config(n);
    trig_t *s = calloc(1, sizeof *s);
    s->op1 = io_str(cfg, "op1", "");
    if (!*s->op1) s->op1 = "1";
    s->op2 = io_str(cfg, "op2", "");
    if (!*s->op2) s->op2 = "0";
    s->op1type = io_str(cfg, "op1type", "");
    if (!*s->op1type) s->op1type = "str";
    s->op2type = io_str(cfg, "op2type", "");
    if (!*s->op2type) s->op2type = "str";
    if (!strcmp(s->op1type, "date") && !strcmp(s->op1, "1")) s->op1 = "";
    if (!strcmp(s->op2type, "date") && !strcmp(s->op2, "0")) s->op2 = "";
    if (!strcmp(s->op1type, "val"))
        s->op1type = (!strcmp(s->op1, "true") || !strcmp(s->op1, "false")) ? "bool"
                     : !strcmp(s->op1, "null")                             ? "null"
                                                                           : "str";
    if (!strcmp(s->op2type, "val"))
        s->op2type = (!strcmp(s->op2, "true") || !strcmp(s->op2, "false")) ? "bool"
                     : !strcmp(s->op2, "null")                             ? "null"
                                                                           : "str";
    s->second = io_num(cfg, "outputs", 1, NULL) == 2;
    s->topic_prop = io_str(cfg, "topic", "");
    if (!*s->topic_prop) s->topic_prop = "topic";
    s->bytopic = !strcmp(io_str(cfg, "bytopic", "all"), "topic");
    s->extend = io_bool(cfg, "extend", 0);
    s->override = io_bool(cfg, "overrideDelay", 0);
    s->reset = io_str(cfg, "reset", "");
    double d = io_num(cfg, "duration", 250, NULL);
    if (isnan(d)) d = 250;
    if (d < 0) s->loop = 1, d = -d, s->extend = 0;
    const char *u = io_str(cfg, "units", "ms");
    if (!strcmp(u, "s"))
        d *= 1000;
    else if (!strcmp(u, "min"))
        d *= 60000;
    else if (!strcmp(u, "hr"))
        d *= 3600000;
    s->duration = d;
    flows_node_set_state(n, s);
    return 0;
}

static void topic_free(topic_t *t)
{
    free(t->name);
    json_decref(t->m2);
    json_decref(t->msg);
    json_decref(t->npay);
    free(t);
}

static topic_t *topic_get(trig_t *s, const char *name, int create)
{
    for (topic_t *t = s->topics; t; t = t->next)
        if (!strcmp(t->name, name)) return t;
    if (!create) return NULL;
    topic_t *t = calloc(1, sizeof *t);
    t->name = strdup(name);
    t->next = s->topics;
    s->topics = t;
    return t;
}

static void topic_delete(flows_node_t *n, trig_t *s, topic_t *x)
{
    for (topic_t **pp = &s->topics; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    if (x->tid) flows_timer_cancel(n, x->tid);
    topic_free(x);
}

static void stat(flows_node_t *n, trig_t *s)
{
    int l = 0;
    for (topic_t *t = s->topics; t; t = t->next)
        l++;
    if (l == 0)
        flows_status(n, NULL, NULL, NULL);
    else if (l == 1)
        flows_status(n, "blue", "dot", NULL);
    else {
        char txt[16];
        snprintf(txt, sizeof txt, "%d", l);
        flows_status(n, "blue", "dot", txt);
    }
}

/* A typed operand: 1 with *out (new ref), 0 for nothing, -1 with e. */
static int operand(flows_node_t *n, json_t *msg, const char *type, const char *val, json_t **out,
                   err_t *e)
{
    *out = NULL;
    if (!strcmp(type, "nul")) return 0;
    if (!strcmp(type, "null")) {
        *out = json_null();
        return 1;
    }
    if (!strcmp(type, "pay")) {
        json_t *p = json_object_get(msg, "payload");
        *out = p ? json_deep_copy(p) : NULL;
        return *out ? 1 : 0;
    }
    if (!strcmp(type, "str") && strstr(val, "{{")) {
        char *r = flows_mustache_render_str(val, msg, NULL, e);
        if (!r) return -1;
        *out = json_string(r);
        free(r);
        if (!*out) *out = json_string("");
        return 1;
    }
    return flows_typed_eval(n, msg, type, val, out, e);
}

static void send_second(flows_node_t *n, trig_t *s, json_t *m)
{
    if (!m) return;
    if (s->second)
        flows_send_ports(n, json_pack("[n,o]", m));
    else
        flows_send(n, 0, m);
}

typedef struct {
    char *topic;
} targ_t;

static void targ_free(void *a)
{
    targ_t *t = a;
    free(t->topic);
    free(t);
}

static void fire(flows_node_t *n, void *arg)
{
    targ_t *a = arg;
    trig_t *s = flows_node_state(n);
    topic_t *t = topic_get(s, a->topic, 0);
    targ_free(a);
    if (!t) return;
    t->tid = 0;
    if (strcmp(s->op2type, "nul") != 0) {
        if (!strcmp(s->op2type, "payl")) {
            json_t *m = t->npay ? json_incref(t->npay) : NULL;
            topic_delete(n, s, t);
            send_second(n, s, m);
        } else {
            if (!strcmp(s->op2type, "flow") || !strcmp(s->op2type, "global") ||
                !strcmp(s->op2type, "date")) {
                err_t e = {0};
                json_t *v = NULL;
                if (operand(n, t->msg, s->op2type, s->op2, &v, &e) < 0) {
                    flows_error(n, NULL, "%s", e.message);
                } else {
                    json_decref(t->m2);
                    t->m2 = v;
                }
            }
            json_t *m2 = flows_msg_clone(t->msg);
            json_object_set(m2, "payload", t->m2 ? t->m2 : json_null());
            if (!t->m2) json_object_del(m2, "payload");
            topic_delete(n, s, t);
            send_second(n, s, m2);
        }
    } else {
        topic_delete(n, s, t);
    }
    stat(n, s);
}

static void loop_fire(flows_node_t *n, void *arg)
{
    targ_t *a = arg;
    trig_t *s = flows_node_state(n);
    topic_t *t = topic_get(s, a->topic, 0);
    if (!t) {
        targ_free(a);
        return;
    }
    json_t *m = flows_msg_clone(t->msg);
    if (!strcmp(s->op1type, "date"))
        json_object_set_new(m, "payload", json_integer(clock_now_ms()));
    t->tid = flows_timer(n, (int64_t)s->duration, loop_fire, a, targ_free);
    flows_send(n, 0, m);
}

static void trigger_input(flows_node_t *n, json_t *msg)
{
    trig_t *s = flows_node_state(n);
    char topic[512] = "_none";
    if (s->bytopic) {
        json_t *tv = flows_prop_get(msg, s->topic_prop);
        if (json_is_string(tv) && *json_string_value(tv))
            snprintf(topic, sizeof topic, "%s", json_string_value(tv));
        else if (json_is_number(tv) || json_is_true(tv)) {
            buf_t b;
            buf_init(&b);
            flows_mustache_str(tv, &b);
            snprintf(topic, sizeof topic, "%s", b.data);
            buf_free(&b);
        }
    }
    double delay = s->duration;
    json_t *dv = json_object_get(msg, "delay");
    if (s->override && dv) {
        double v = json_is_number(dv)   ? json_number_value(dv)
                   : json_is_string(dv) ? strtod(json_string_value(dv), NULL)
                                        : NAN;
        if (!isnan(v)) delay = v;
    }
    topic_t *t = topic_get(s, topic, 1);
    int is_reset = json_object_get(msg, "reset") != NULL;
    json_t *pl = json_object_get(msg, "payload");
    if (!is_reset && *s->reset && pl && !json_is_null(pl)) {
        buf_t b;
        buf_init(&b);
        if (json_is_object(pl))
            buf_puts(&b, "[object Object]");
        else
            flows_mustache_str(pl, &b);
        is_reset = b.data && !strcmp(b.data, s->reset);
        buf_free(&b);
    }
    err_t e = {0};
    if (is_reset) {
        topic_delete(n, s, t);
        stat(n, s);
        json_decref(msg);
        return;
    }
    if (!strcmp(s->op2type, "payl")) {
        json_decref(t->npay);
        t->npay = flows_msg_clone(msg);
    }
    if (!t->active || s->loop) {
        json_t *m2 = NULL;
        if (strcmp(s->op2type, "payl") != 0 && operand(n, msg, s->op2type, s->op2, &m2, &e) < 0) {
            topic_delete(n, s, t);
            flows_error(n, msg, "%s", e.message);
            return;
        }
        json_decref(t->m2);
        t->m2 = m2;
        json_t *p1 = NULL;
        int r1 = strcmp(s->op1type, "pay") ? operand(n, msg, s->op1type, s->op1, &p1, &e) : 0;
        if (r1 < 0) {
            topic_delete(n, s, t);
            flows_error(n, msg, "%s", e.message);
            return;
        }
        if (r1 == 1) json_object_set_new(msg, "payload", p1);
        t->active = 1;
        json_decref(t->msg);
        t->msg = flows_msg_clone(msg);
        if (delay == 0) {
            /* waits for a reset */
        } else if (s->loop) {
            if (t->tid) flows_timer_cancel(n, t->tid);
            t->tid = 0;
            if (strcmp(s->op1type, "nul") != 0) {
                targ_t *a = calloc(1, sizeof *a);
                a->topic = strdup(topic);
                t->tid = flows_timer(n, (int64_t)delay, loop_fire, a, targ_free);
            }
        } else if (!t->tid) {
            targ_t *a = calloc(1, sizeof *a);
            a->topic = strdup(topic);
            t->tid = flows_timer(n, (int64_t)delay, fire, a, targ_free);
        }
        stat(n, s);
        if (strcmp(s->op1type, "nul") != 0)
            flows_send(n, 0, msg);
        else
            json_decref(msg);
        return;
    }
    if (s->extend && delay > 0) {
        if (!strcmp(s->op2type, "payl")) {
            /* as Node-RED: the second message becomes the latest payload */
            json_decref(t->m2);
            json_t *p = json_object_get(msg, "payload");
            t->m2 = p ? json_deep_copy(p) : NULL;
        }
        if (t->tid) flows_timer_cancel(n, t->tid);
        json_decref(t->msg);
        t->msg = flows_msg_clone(msg);
        targ_t *a = calloc(1, sizeof *a);
        a->topic = strdup(topic);
        t->tid = flows_timer(n, (int64_t)delay, fire, a, targ_free);
    }
    json_decref(msg);
}

static void trigger_stop(flows_node_t *n)
{
    trig_t *s = flows_node_state(n);
    if (!s) return;
    while (s->topics) {
        topic_t *t = s->topics;
        s->topics = t->next;
        topic_free(t); /* timers: cancelled by the runtime */
    }
    free(s);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_trigger = {
    .type = "trigger",
    .validate = trigger_validate,
    .start = trigger_start,
    .input = trigger_input,
    .stop = trigger_stop,
};
