/* delay.c: the `delay` node (Node-RED 89-delay.js). pauseType: delay (timeout,
 * timeoutUnits), delayv (msg.delay ms, else timeout), random (randomFirst..randomLast,
 * randomUnits), rate (rate per nbRateUnits rateUnits, all messages: queue or drop, the
 * dropped ones to output 2 when outputs = 2), queue (per topic, the newest of each topic,
 * one topic per tick), timed (per topic, all topics each tick). msg.reset clears, msg.flush
 * sends now (all or msg.flush of them), msg.rate overrides the rate when allowrate is set,
 * msg.toFront queues at the front. Timers are the runtime's (flows_timer), so they die
 * with the node. */
#include "base/clock.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { P_DELAY, P_DELAYV, P_RANDOM, P_RATE, P_QUEUE, P_TIMED } pause_t;

typedef struct pending {
    struct pending *next;
    uint64_t tid;
    json_t *msg;
    flows_node_t *n;
} pending_t;

typedef struct {
    pause_t type;
    double timeout, rate, fixedrate, rfirst, rlast;
    int drop, allowrate, outputs;
    pending_t *list;   /* delay modes: messages waiting, oldest first */
    json_t *buffer;    /* rate modes: queued msgs */
    uint64_t interval; /* rate modes: the tick timer (0 = none) */
    int64_t last_sent; /* rate+drop */
    int has_sent;
} delay_t;

static double unit_ms(const char *u)
{
    if (!strcmp(u, "milliseconds")) return 1;
    if (!strcmp(u, "minutes")) return 60000;
    if (!strcmp(u, "hours")) return 3600000;
    if (!strcmp(u, "days")) return 86400000;
    return 1000;
}

static void delay_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *t = io_str(cfg, "pauseType", "delay");
    static const char *const types[] = {"delay", "delayv", "random", "rate",
                                        "queue", "timed",  NULL};
    int ok = 0;
    for (int i = 0; types[i]; i++)
        ok |= !strcmp(t, types[i]);
    if (!ok) flows_problem(p, id, "pauseType", "unknown pauseType \"%s\"", t);
    int good;
    if (!strcmp(t, "delay") || !strcmp(t, "delayv")) {
        double v = io_num(cfg, "timeout", 5, &good);
        if (!good || v < 0) flows_problem(p, id, "timeout", "timeout must be a number >= 0");
    } else if (!strcmp(t, "random")) {
        double a = io_num(cfg, "randomFirst", 1, &good), b;
        if (!good) flows_problem(p, id, "randomFirst", "randomFirst must be a number");
        b = io_num(cfg, "randomLast", 5, &good);
        if (!good || b < a) flows_problem(p, id, "randomLast", "randomLast must be >= randomFirst");
    } else if (ok) {
        double r = io_num(cfg, "rate", 1, &good);
        if (!good || r <= 0) flows_problem(p, id, "rate", "rate must be a number > 0");
    }
}

static int delay_start(flows_node_t *n, err_t *e)
{
    (void)e;
    json_t *cfg = flows_node_config(n);
    delay_t *s = calloc(1, sizeof *s);
    const char *t = io_str(cfg, "pauseType", "delay");
    s->type = !strcmp(t, "delayv")   ? P_DELAYV
              : !strcmp(t, "random") ? P_RANDOM
              : !strcmp(t, "rate")   ? P_RATE
              : !strcmp(t, "queue")  ? P_QUEUE
              : !strcmp(t, "timed")  ? P_TIMED
                                     : P_DELAY;
    s->timeout = io_num(cfg, "timeout", 5, NULL) * unit_ms(io_str(cfg, "timeoutUnits", "seconds"));
    const char *ru = io_str(cfg, "rateUnits", "second");
    double per = !strcmp(ru, "minute") ? 60000
                 : !strcmp(ru, "hour") ? 3600000
                 : !strcmp(ru, "day")  ? 86400000
                                       : 1000;
    double rate = io_num(cfg, "rate", 1, NULL);
    double nb = io_num(cfg, "nbRateUnits", 1, NULL);
    s->rate = per / (rate > 0 ? rate : 1) * (nb > 0 ? nb : 1);
    s->fixedrate = s->rate;
    double ru2 = unit_ms(io_str(cfg, "randomUnits", "seconds"));
    s->rfirst = io_num(cfg, "randomFirst", 1, NULL) * ru2;
    s->rlast = io_num(cfg, "randomLast", 5, NULL) * ru2;
    s->drop = io_bool(cfg, "drop", 0);
    s->allowrate = io_bool(cfg, "allowrate", 0);
    s->outputs = (int)io_num(cfg, "outputs", 1, NULL);
    s->buffer = json_array();
    flows_node_set_state(n, s);
    return 0;
}

static void status_count(flows_node_t *n, size_t k, const char *shape)
{
    char t[32];
    snprintf(t, sizeof t, "%zu", k);
    flows_status(n, "blue", shape, t);
}

/* ---- delay / delayv / random ---- */

static size_t list_len(delay_t *s)
{
    size_t k = 0;
    for (pending_t *p = s->list; p; p = p->next)
        k++;
    return k;
}

static void list_unlink(delay_t *s, pending_t *x)
{
    for (pending_t **pp = &s->list; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            return;
        }
}

static void pending_free(void *arg)
{
    pending_t *p = arg;
    json_decref(p->msg);
    free(p);
}

static void pending_fire(flows_node_t *n, void *arg)
{
    pending_t *p = arg;
    delay_t *s = flows_node_state(n);
    list_unlink(s, p);
    json_t *msg = p->msg;
    free(p);
    if (s->type != P_DELAY || s->timeout > 1000) status_count(n, list_len(s), "dot");
    if (s->type == P_DELAYV && !s->list) flows_status(n, NULL, NULL, NULL);
    flows_send(n, 0, msg);
}

static void delay_clear(flows_node_t *n, delay_t *s)
{
    while (s->list) {
        pending_t *p = s->list;
        s->list = p->next;
        flows_timer_cancel(n, p->tid); /* frees p and its msg */
    }
}

static void delay_flush(flows_node_t *n, delay_t *s, json_t *flush)
{
    size_t len = list_len(s);
    if (json_is_number(flush)) {
        double f = floor(json_number_value(flush));
        if (f < (double)len) len = f < 0 ? 0 : (size_t)f;
    }
    for (size_t i = 0; i < len && s->list; i++) {
        pending_t *p = s->list;
        s->list = p->next;
        json_t *msg = p->msg;
        p->msg = NULL;
        flows_timer_cancel(n, p->tid); /* frees p only */
        flows_send(n, 0, msg);
    }
    status_count(n, list_len(s), "dot");
}

static void timed_input(flows_node_t *n, delay_t *s, json_t *msg)
{
    double wait = s->timeout;
    if (s->type == P_DELAYV) { /* Number(node.timeout) (ms), or msg.delay in ms */
        json_t *d = json_object_get(msg, "delay");
        if (json_is_number(d))
            wait = json_number_value(d);
        else if (json_is_string(d)) {
            char *end;
            double v = strtod(json_string_value(d), &end);
            if (end != json_string_value(d)) wait = v;
        }
        if (wait < 0) wait = 0;
    } else if (s->type == P_RANDOM) {
        wait = s->rfirst + (s->rlast - s->rfirst) * ((double)rand() / ((double)RAND_MAX + 1));
    }
    json_t *flushv = json_incref(json_object_get(msg, "flush"));
    int has_flush = flushv != NULL;
    int has_reset = json_object_get(msg, "reset") != NULL;
    int only_flush = has_flush && json_object_size(msg) == 2;
    if (!only_flush) {
        pending_t *p = calloc(1, sizeof *p);
        p->msg = msg;
        p->n = n;
        pending_t **tail = &s->list;
        while (*tail)
            tail = &(*tail)->next;
        *tail = p;
        p->tid = flows_timer(n, (int64_t)wait, pending_fire, p, pending_free);
    } else {
        json_decref(msg);
    }
    if (has_reset) {
        delay_clear(n, s);
        flows_status(n, "blue", "ring", "0");
    } else if (has_flush) {
        delay_flush(n, s, flushv);
    } else if (s->type != P_DELAY || s->timeout > 1000) {
        status_count(n, list_len(s), "dot");
    }
    json_decref(flushv);
}

/* ---- rate limiting ---- */

static void tick(flows_node_t *n, void *arg);

static void arm_tick(flows_node_t *n, delay_t *s)
{
    s->interval = flows_timer(n, (int64_t)s->rate, tick, NULL, NULL);
}

static void stop_tick(flows_node_t *n, delay_t *s)
{
    if (s->interval) flows_timer_cancel(n, s->interval);
    s->interval = 0;
}

static void tick(flows_node_t *n, void *arg)
{
    (void)arg;
    delay_t *s = flows_node_state(n);
    s->interval = 0;
    size_t len = json_array_size(s->buffer);
    if (len == 0) return; /* idle: stop ticking (rate: the next message goes at once) */
    if (s->type == P_TIMED) {
        json_t *all = s->buffer;
        s->buffer = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(all, i, m) flows_send(n, 0, json_incref(m));
        json_decref(all);
    } else {
        json_t *m = json_incref(json_array_get(s->buffer, 0));
        json_array_remove(s->buffer, 0);
        flows_send(n, 0, m);
    }
    status_count(n, json_array_size(s->buffer), "dot");
    arm_tick(n, s); /* one more tick, as setInterval: it stops when it finds nothing */
}

static void maybe_rate(delay_t *s, json_t *msg)
{
    json_t *r = json_object_get(msg, "rate");
    if (!s->allowrate || !r) return;
    double v = json_is_number(r)   ? json_number_value(r)
               : json_is_string(r) ? atof(json_string_value(r))
                                   : NAN;
    if (!isnan(v) && v > 0) s->rate = v;
}

static void rate_input(flows_node_t *n, delay_t *s, json_t *msg)
{
    int has_reset = json_object_get(msg, "reset") != NULL;
    json_t *flush = json_incref(json_object_get(msg, "flush"));
    if (!s->drop) {
        json_t *m = json_deep_copy(msg);
        json_object_del(m, "flush");
        if (json_object_size(m) > 1) {
            if (s->interval) {
                double old = s->rate;
                maybe_rate(s, m);
                if (s->rate != old) {
                    stop_tick(n, s);
                    arm_tick(n, s);
                }
                if (json_is_true(json_object_get(msg, "toFront")))
                    json_array_insert_new(s->buffer, 0, m);
                else
                    json_array_append_new(s->buffer, m);
                m = NULL;
            } else {
                maybe_rate(s, m);
                if (has_reset) {
                    if (flush) {
                        json_array_append_new(s->buffer, m);
                        m = NULL;
                    }
                } else {
                    flows_send(n, 0, m);
                    m = NULL;
                }
                arm_tick(n, s);
            }
        }
        json_decref(m);
        if (flush) {
            size_t len = json_array_size(s->buffer);
            if (json_is_number(flush)) {
                double f = floor(json_number_value(flush));
                if (f < (double)len) len = f < 0 ? 0 : (size_t)f;
            }
            if (len == 0) {
                stop_tick(n, s);
            } else {
                for (size_t i = 0; i < len; i++) {
                    json_t *q = json_incref(json_array_get(s->buffer, 0));
                    json_array_remove(s->buffer, 0);
                    json_object_del(q, "flush");
                    json_object_del(q, "reset");
                    if (json_object_size(q) > 1)
                        flows_send(n, 0, q);
                    else
                        json_decref(q);
                }
                stop_tick(n, s);
                arm_tick(n, s);
            }
            status_count(n, json_array_size(s->buffer), "dot");
        }
    } else if (!has_reset) {
        maybe_rate(s, msg);
        int64_t now = clock_now_ms();
        if (!s->has_sent || (double)(now - s->last_sent) > s->rate) {
            s->has_sent = 1;
            s->last_sent = now;
            flows_send(n, 0, json_incref(msg));
        } else if (s->outputs == 2) {
            flows_send_ports(n, json_pack("[n,O]", msg));
        }
    }
    if (has_reset) {
        if (!flush) {
            stop_tick(n, s);
            s->has_sent = 0;
        }
        json_array_clear(s->buffer);
        s->rate = s->fixedrate;
        flows_status(n, "blue", "ring", "0");
    }
    json_decref(flush);
    json_decref(msg);
}

static void queue_input(flows_node_t *n, delay_t *s, json_t *msg)
{
    double old = s->rate;
    maybe_rate(s, msg);
    if (s->rate != old && s->interval) {
        stop_tick(n, s);
        arm_tick(n, s);
    }
    if (!json_object_get(msg, "topic")) json_object_set_new(msg, "topic", json_string("_none_"));
    json_t *topic = json_object_get(msg, "topic");
    int hit = 0;
    size_t i;
    json_t *q;
    json_array_foreach(s->buffer, i, q)
    {
        if (json_equal(json_object_get(q, "topic"), topic)) {
            if (s->outputs == 2) flows_send_ports(n, json_pack("[n,O]", q));
            json_array_set(s->buffer, i, msg);
            hit = 1;
            break;
        }
    }
    if (!hit) json_array_append(s->buffer, msg);
    if (!s->interval) arm_tick(n, s);
    if (json_object_get(msg, "flush")) {
        size_t len = json_array_size(s->buffer);
        json_t *f = json_object_get(msg, "flush");
        if (json_is_number(f) && floor(json_number_value(f)) < (double)len)
            len = (size_t)fmax(0, floor(json_number_value(f)));
        while (len-- > 0) {
            json_t *x = json_incref(json_array_get(s->buffer, 0));
            json_array_remove(s->buffer, 0);
            json_object_del(x, "flush");
            json_object_del(x, "reset");
            if (json_object_size(x) > 2)
                flows_send(n, 0, x);
            else
                json_decref(x);
        }
        flows_status(n, NULL, NULL, NULL);
    }
    if (json_object_get(msg, "reset")) {
        json_array_clear(s->buffer);
        s->rate = s->fixedrate;
        flows_status(n, NULL, NULL, "reset");
    }
    json_decref(msg);
}

static void delay_input(flows_node_t *n, json_t *msg)
{
    delay_t *s = flows_node_state(n);
    switch (s->type) {
    case P_DELAY:
    case P_DELAYV:
    case P_RANDOM:
        timed_input(n, s, msg);
        break;
    case P_RATE:
        rate_input(n, s, msg);
        break;
    default:
        queue_input(n, s, msg);
        break;
    }
}

static void delay_stop(flows_node_t *n)
{
    delay_t *s = flows_node_state(n);
    if (!s) return;
    /* the runtime cancels the timers (freeing the pending msgs) */
    s->list = NULL;
    json_decref(s->buffer);
    free(s);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_delay = {
    .type = "delay",
    .validate = delay_validate,
    .start = delay_start,
    .input = delay_input,
    .stop = delay_stop,
};
