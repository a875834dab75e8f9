/* runtime.c: runs deployed flow sets. Each project has a serialized executor: a FIFO of
 * tasks (message deliveries, timers, posted work, deploys) that at most one worker runs
 * at a time. A small shared pool of workers takes projects round-robin from a ready queue;
 * a worker runs one project for at most a time slice (FLOWS_SLICE_NS) and then puts it
 * back at the tail, so a flooding or slow project delays another by at most one slice
 * per busy worker. Timers live in one min-heap served by one thread, which turns due
 * timers into tasks.
 *
 * Deploy = Node-RED "full" deploy: a deploy task runs between two messages; it stops
 * every node of the old set (stop hooks, timers purged), swaps the set, then starts the
 * new one. Tasks still queued for the old set's nodes (messages in flight, fired timers)
 * are dropped when they come up. Entry points (flows_inject, flows_post) name the node by
 * id and are resolved when their task runs, so an external event is handled by exactly
 * one set: the one live when its turn comes. */
#include "flows/internal.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/prom.h"
#include "base/ulid.h"
#include "flows/props.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOWS_SLICE_NS  (2 * 1000 * 1000) /* 2 ms of one project per turn */
#define FLOWS_QUEUE_MAX 200000            /* tasks queued per project before dropping */
#define FLOWS_WORKERS   3

enum { T_MSG, T_FN, T_INJECT, T_POST, T_DEPLOY, T_TIMER, T_BARRIER };

/* /metrics (flows_metrics_render): process-wide, all projects together. */
static atomic_uint_fast64_t m_deploys, m_messages, m_errors, m_dropped;
static atomic_int_fast64_t m_queued;

/* A waiter for flows_runtime_sync: freed by whichever side lets go last. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    atomic_int refs;
} barrier_t;

static void barrier_unref(barrier_t *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        free(b);
    }
}

typedef struct timer timer_t_;

typedef struct task {
    struct task *next;
    int kind;
    flows_set_t *set; /* ref (T_MSG, T_FN, T_TIMER) */
    flows_node_t *node;
    char *node_id; /* T_INJECT, T_POST */
    json_t *msg;   /* T_MSG, T_INJECT; T_DEPLOY: the document */
    flows_task_fn fn;
    void *arg;
    void (*free_arg)(void *);
    timer_t_ *timer;
    flows_origin_t *origin; /* ref: the entry message this task is work for, or NULL */
    int ran;
} task_t;

struct flows_proj {
    char id[32];
    pthread_mutex_t mu;
    task_t *head, *tail;
    size_t qlen;
    int scheduled; /* in the ready queue or running */
    flows_set_t *set;
    struct flows_proj *next_ready;
    uint64_t dropped;
    atomic_int deploys_pending; /* queued T_DEPLOY tasks not yet run */
    char rev[32];               /* the revision last handed to the executor (under mu) */
};

struct timer {
    uint64_t id;
    int64_t due;
    int state; /* 0 pending in heap, 1 fired (task queued), 2 cancelled */
    flows_proj_t *proj;
    flows_set_t *set;
    flows_node_t *node;
    flows_task_fn fn;
    void *arg;
    void (*free_arg)(void *);
    flows_origin_t *origin; /* ref, as a task's */
    timer_t_ *hnext;        /* id hash chain */
};

#define TIMER_BUCKETS 1024

static struct {
    int running;
    store_t *store;
    uint8_t seal_key[32];
    pthread_mutex_t mu; /* ready queue, project map */
    pthread_cond_t cv;
    flows_proj_t *ready_head, *ready_tail;
    json_t *projects; /* id -> pointer (as integer) */
    pthread_t workers[FLOWS_WORKERS];
    int stopping;
    /* timers */
    pthread_mutex_t tmu;
    pthread_cond_t tcv;
    pthread_t tthread;
    timer_t_ **heap;
    size_t hn, hcap;
    timer_t_ *byid[TIMER_BUCKETS];
    uint64_t next_timer;
    uint64_t next_gen;
    pthread_t pthread; /* polls flows_deployed for deploys made by other processes */
    pthread_mutex_t pmu;
    pthread_cond_t pcv;
} rt = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
        .tmu = PTHREAD_MUTEX_INITIALIZER,
        .tcv = PTHREAD_COND_INITIALIZER,
        .pmu = PTHREAD_MUTEX_INITIALIZER,
        .pcv = PTHREAD_COND_INITIALIZER};

static __thread flows_proj_t *cur_proj; /* the project this worker runs now */

/* ---- origins ----
 * Every task, timer and hold made while a task runs inherits that task's origin, so the
 * origin's refs count the work an entry message still has queued or armed. */
struct flows_origin {
    atomic_int refs;
    atomic_int kept;    /* some of its work was dropped unrun at shutdown */
    atomic_int settled; /* its settle ran in a transaction that committed */
    const flows_origin_hooks_t *hooks;
    void *ud;
};

static __thread flows_origin_t *cur_origin; /* the origin of the task running now */

flows_origin_t *flows_origin_new(const flows_origin_hooks_t *hooks, void *ud)
{
    flows_origin_t *o = xcalloc(1, sizeof *o);
    atomic_init(&o->refs, 1);
    o->hooks = hooks;
    o->ud = ud;
    return o;
}

static flows_origin_t *origin_ref(flows_origin_t *o)
{
    if (o) atomic_fetch_add(&o->refs, 1);
    return o;
}

/* unrun: the work this ref stood for is dropped because the runtime stops. */
static void origin_unref(flows_origin_t *o, int unrun)
{
    if (!o) return;
    if (unrun) atomic_store(&o->kept, 1);
    if (atomic_fetch_sub(&o->refs, 1) == 1) {
        o->hooks->release(o->ud, atomic_load(&o->settled), atomic_load(&o->kept));
        free(o);
    }
}

static int runtime_stopping(void)
{
    return __atomic_load_n(&rt.stopping, __ATOMIC_ACQUIRE) ||
           !__atomic_load_n(&rt.running, __ATOMIC_ACQUIRE);
}

flows_origin_t *flows_origin_hold(void)
{
    return origin_ref(cur_origin);
}

void flows_origin_drop(flows_origin_t *o)
{
    origin_unref(o, runtime_stopping());
}

int flows_origin_settle(store_conn_t *c, err_t *e)
{
    flows_origin_t *o = cur_origin;
    if (!o || !o->hooks->settle || atomic_load(&o->settled)) return 0;
    return o->hooks->settle(o->ud, c, e) < 0 ? -1 : 1;
}

void flows_origin_settled(void)
{
    if (cur_origin) atomic_store(&cur_origin->settled, 1);
}

static void timer_free(timer_t_ *t, int unrun)
{
    if (t->free_arg && t->arg) t->free_arg(t->arg);
    flows_set_unref(t->set);
    origin_unref(t->origin, unrun);
    free(t);
}

store_t *flows_store(void)
{
    return rt.store;
}

const uint8_t *flows_seal_key(void)
{
    return rt.seal_key;
}

store_conn_t *flows_conn(err_t *e)
{
    if (!rt.store) {
        err_set(e, ERR_UNAVAILABLE, "flows runtime not started");
        return NULL;
    }
    return store_conn(rt.store, e);
}

/* ---- sets ---- */

static void set_ref(flows_set_t *s)
{
    if (s) atomic_fetch_add(&s->refs, 1);
}

void flows_set_unref(flows_set_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) flows_set_free(s);
}

/* ---- projects and the ready queue ---- */

static flows_proj_t *proj_get(const char *id, int create)
{
    pthread_mutex_lock(&rt.mu);
    flows_proj_t *p = NULL;
    json_t *v = rt.projects ? json_object_get(rt.projects, id) : NULL;
    if (v)
        p = (flows_proj_t *)(intptr_t)json_integer_value(v);
    else if (create && rt.projects && !rt.stopping) {
        p = xcalloc(1, sizeof *p);
        snprintf(p->id, sizeof p->id, "%s", id);
        pthread_mutex_init(&p->mu, NULL);
        json_object_set_new(rt.projects, id, json_integer((json_int_t)(intptr_t)p));
    }
    pthread_mutex_unlock(&rt.mu);
    return p;
}

static void task_free(task_t *t)
{
    if (t->kind == T_TIMER && t->timer) {
        timer_free(t->timer, !t->ran && runtime_stopping());
    } else if (t->kind == T_BARRIER) {
        barrier_t *b = t->arg;
        pthread_mutex_lock(&b->mu);
        b->done = 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        barrier_unref(b);
    } else if (t->free_arg && t->arg)
        t->free_arg(t->arg);
    json_decref(t->msg);
    free(t->node_id);
    flows_set_unref(t->set);
    origin_unref(t->origin, !t->ran && runtime_stopping());
    free(t);
}

/* Queue a task; -1 (task freed) when the project is over its queue cap or stopping. */
static int enqueue(flows_proj_t *p, task_t *t)
{
    int wake = 0;
    pthread_mutex_lock(&p->mu);
    if (p->qlen >= FLOWS_QUEUE_MAX && t->kind != T_DEPLOY && t->kind != T_TIMER) {
        p->dropped++;
        pthread_mutex_unlock(&p->mu);
        atomic_fetch_add(&m_dropped, 1);
        task_free(t);
        return -1;
    }
    t->next = NULL;
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->qlen++;
    atomic_fetch_add(&m_queued, 1);
    if (!p->scheduled) {
        p->scheduled = 1;
        wake = 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (wake) {
        pthread_mutex_lock(&rt.mu);
        p->next_ready = NULL;
        if (rt.ready_tail)
            rt.ready_tail->next_ready = p;
        else
            rt.ready_head = p;
        rt.ready_tail = p;
        pthread_cond_signal(&rt.cv);
        pthread_mutex_unlock(&rt.mu);
    }
    return 0;
}

/* ---- timers ---- */

static int heap_less(size_t a, size_t b)
{
    return rt.heap[a]->due < rt.heap[b]->due ||
           (rt.heap[a]->due == rt.heap[b]->due && rt.heap[a]->id < rt.heap[b]->id);
}

static void heap_swap(size_t a, size_t b)
{
    timer_t_ *t = rt.heap[a];
    rt.heap[a] = rt.heap[b];
    rt.heap[b] = t;
}

static void heap_up(size_t i)
{
    while (i > 0 && heap_less(i, (i - 1) / 2)) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < rt.hn && heap_less(l, m)) m = l;
        if (r < rt.hn && heap_less(r, m)) m = r;
        if (m == i) return;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_remove_at(size_t i)
{
    rt.heap[i] = rt.heap[--rt.hn];
    if (i < rt.hn) {
        heap_up(i);
        heap_down(i);
    }
}

static void byid_remove(timer_t_ *t)
{
    timer_t_ **pp = &rt.byid[t->id % TIMER_BUCKETS];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp) *pp = t->hnext;
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rt.tmu);
    while (!rt.stopping) {
        int64_t now = clock_mono_ms();
        while (rt.hn && rt.heap[0]->due <= now) {
            timer_t_ *t = rt.heap[0];
            heap_remove_at(0);
            t->state = 1;
            task_t *task = xcalloc(1, sizeof *task);
            task->kind = T_TIMER;
            task->timer = t;
            pthread_mutex_unlock(&rt.tmu);
            enqueue(t->proj, task);
            pthread_mutex_lock(&rt.tmu);
        }
        if (rt.hn) {
            int64_t wait = rt.heap[0]->due - clock_mono_ms();
            if (wait > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t ns = ts.tv_nsec + (wait % 1000) * 1000000;
                ts.tv_sec += wait / 1000 + ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&rt.tcv, &rt.tmu, &ts);
            }
        } else
            pthread_cond_wait(&rt.tcv, &rt.tmu);
    }
    pthread_mutex_unlock(&rt.tmu);
    return NULL;
}

uint64_t flows_timer(flows_node_t *n, int64_t delay_ms, flows_task_fn fn, void *arg,
                     void (*free_arg)(void *))
{
    flows_proj_t *p = n->set->proj;
    if (!p || !rt.running) {
        if (free_arg && arg) free_arg(arg);
        return 0;
    }
    timer_t_ *t = xcalloc(1, sizeof *t);
    t->due = clock_mono_ms() + (delay_ms < 0 ? 0 : delay_ms);
    t->proj = p;
    t->set = n->set;
    set_ref(n->set);
    t->node = n;
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    t->origin = origin_ref(cur_origin);
    pthread_mutex_lock(&rt.tmu);
    t->id = ++rt.next_timer;
    if (rt.hn == rt.hcap) {
        rt.hcap = rt.hcap ? rt.hcap * 2 : 64;
        rt.heap = xrealloc(rt.heap, rt.hcap * sizeof *rt.heap);
    }
    rt.heap[rt.hn++] = t;
    heap_up(rt.hn - 1);
    t->hnext = rt.byid[t->id % TIMER_BUCKETS];
    rt.byid[t->id % TIMER_BUCKETS] = t;
    if (rt.heap[0] == t) pthread_cond_signal(&rt.tcv);
    uint64_t id = t->id;
    pthread_mutex_unlock(&rt.tmu);
    return id;
}

void flows_timer_cancel(flows_node_t *n, uint64_t id)
{
    (void)n;
    if (!id) return;
    timer_t_ *victim = NULL;
    pthread_mutex_lock(&rt.tmu);
    for (timer_t_ *t = rt.byid[id % TIMER_BUCKETS]; t; t = t->hnext) {
        if (t->id != id) continue;
        if (t->state == 0) {
            for (size_t i = 0; i < rt.hn; i++)
                if (rt.heap[i] == t) {
                    heap_remove_at(i);
                    break;
                }
            byid_remove(t);
            victim = t;
        } else if (t->state == 1)
            t->state = 2; /* its task is queued: it will free itself */
        break;
    }
    pthread_mutex_unlock(&rt.tmu);
    if (victim) timer_free(victim, runtime_stopping());
}

/* Drop every pending timer of a set (undeploy). */
static void timers_purge(flows_set_t *s)
{
    timer_t_ **victims = NULL;
    size_t nv = 0;
    pthread_mutex_lock(&rt.tmu);
    for (size_t i = 0; i < rt.hn;) {
        timer_t_ *t = rt.heap[i];
        if (t->set != s) {
            i++;
            continue;
        }
        heap_remove_at(i);
        byid_remove(t);
        victims = xrealloc(victims, (nv + 1) * sizeof *victims);
        victims[nv++] = t;
        i = 0; /* the heap moved: rescan (undeploy is rare) */
    }
    pthread_mutex_unlock(&rt.tmu);
    for (size_t i = 0; i < nv; i++)
        timer_free(victims[i], runtime_stopping());
    free(victims);
}

/* ---- running tasks ---- */

static void node_start(flows_node_t *n)
{
    if (!n->type || !n->type->start) {
        n->started = 1;
        return;
    }
    err_t e = {0};
    if (n->type->start(n, &e) < 0) {
        char text[600];
        snprintf(text, sizeof text, "node failed to start: %s", e.message);
        flows_debug_log(n, "error", text);
        return;
    }
    n->started = 1;
}

static void set_stop(flows_set_t *s)
{
    for (int i = s->nnodes - 1; i >= 0; i--) {
        flows_node_t *n = s->nodes[i];
        if (n->started && n->type && n->type->stop) n->type->stop(n);
        n->started = 0;
    }
    timers_purge(s);
}

static void do_deploy(flows_proj_t *p, json_t *doc)
{
    atomic_fetch_add(&m_deploys, 1);
    flows_set_t *ns = flows_set_build(p->id, doc);
    ns->proj = p;
    ns->gen = ++rt.next_gen;
    flows_set_t *old = p->set;
    if (old) set_stop(old);
    pthread_mutex_lock(&p->mu);
    p->set = ns;
    pthread_mutex_unlock(&p->mu);
    flows_set_unref(old);
    /* config nodes first (others look them up in their start) */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ns->nnodes; i++) {
            flows_node_t *n = ns->nodes[i];
            int is_cfg = n->type && n->type->config_only;
            if ((pass == 0) == is_cfg) node_start(n);
        }
}

static void node_input(flows_node_t *n, json_t *msg)
{
    if (n->proxy == 1) {
        flows_send(n->proxy_instance, n->proxy_port, msg);
        return;
    }
    if (n->proxy == 2) {
        json_t *st = json_object_get(msg, "status");
        if (!json_is_object(st)) st = json_object_get(msg, "payload");
        if (json_is_object(st)) {
            flows_status(n->proxy_instance, json_string_value(json_object_get(st, "fill")),
                         json_string_value(json_object_get(st, "shape")),
                         json_string_value(json_object_get(st, "text")));
        } else if (st) {
            char *text = flows_js_string(st);
            flows_status(n->proxy_instance, NULL, NULL, text);
            free(text);
        }
        json_decref(msg);
        return;
    }
    if (n->inner) { /* subflow instance: into the subflow's input */
        for (int i = 0; i < n->sf_in.n; i++)
            flows_deliver(n->sf_in.to[i], i == n->sf_in.n - 1 ? msg : flows_msg_clone(msg));
        if (n->sf_in.n == 0) json_decref(msg);
        return;
    }
    if (!n->type || !n->type->input || !n->started) {
        json_decref(msg);
        return;
    }
    atomic_fetch_add(&m_messages, 1);
    json_t *copy = n->watched && !n->type->calls_done ? flows_msg_clone(msg) : NULL;
    n->type->input(n, msg);
    if (copy) {
        flows_done(n, copy);
        json_decref(copy);
    }
}

static void run_task(flows_proj_t *p, task_t *t)
{
    t->ran = 1;
    cur_origin = t->kind == T_TIMER ? t->timer->origin : t->origin;
    switch (t->kind) {
    case T_MSG:
        if (t->set == p->set) {
            json_t *m = t->msg;
            t->msg = NULL;
            node_input(t->node, m);
        }
        break;
    case T_FN:
        if (t->set == p->set && t->node->started) {
            t->fn(t->node, t->arg);
            t->arg = NULL;
        }
        break;
    case T_TIMER: {
        timer_t_ *tm = t->timer;
        pthread_mutex_lock(&rt.tmu);
        int live = tm->state == 1;
        byid_remove(tm);
        pthread_mutex_unlock(&rt.tmu);
        if (live && tm->set == p->set && tm->node->started) {
            tm->fn(tm->node, tm->arg);
            tm->arg = NULL;
        }
        break;
    }
    case T_INJECT: {
        flows_node_t *n = flows_set_find(p->set, t->node_id);
        if (n) {
            json_t *m = t->msg;
            t->msg = NULL;
            if (!json_object_get(m, "_msgid")) {
                char id[ULID_LEN + 1];
                ulid_new(id);
                json_object_set_new(m, "_msgid", json_string(id));
            }
            node_input(n, m);
        }
        break;
    }
    case T_POST: {
        flows_node_t *n = flows_set_find(p->set, t->node_id);
        if (n && n->started) {
            t->fn(n, t->arg);
            t->arg = NULL;
        }
        break;
    }
    case T_DEPLOY:
        do_deploy(p, t->msg);
        t->msg = NULL;
        atomic_fetch_sub(&p->deploys_pending, 1);
        break;
    case T_BARRIER: /* task_free wakes the waiter */
        break;
    }
    cur_origin = NULL;
    task_free(t);
}

static void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&rt.mu);
        while (!rt.ready_head && !rt.stopping)
            pthread_cond_wait(&rt.cv, &rt.mu);
        if (rt.stopping) {
            pthread_mutex_unlock(&rt.mu);
            return NULL;
        }
        flows_proj_t *p = rt.ready_head;
        rt.ready_head = p->next_ready;
        if (!rt.ready_head) rt.ready_tail = NULL;
        pthread_mutex_unlock(&rt.mu);

        cur_proj = p;
        int64_t start = clock_mono_ns();
        for (;;) {
            pthread_mutex_lock(&p->mu);
            task_t *t = p->head;
            if (!t) {
                p->scheduled = 0;
                pthread_mutex_unlock(&p->mu);
                break;
            }
            p->head = t->next;
            if (!p->head) p->tail = NULL;
            p->qlen--;
            pthread_mutex_unlock(&p->mu);
            atomic_fetch_sub(&m_queued, 1);
            run_task(p, t);
            if (clock_mono_ns() - start > FLOWS_SLICE_NS) {
                pthread_mutex_lock(&p->mu);
                if (!p->head) {
                    p->scheduled = 0;
                    pthread_mutex_unlock(&p->mu);
                } else { /* more to do: back of the line */
                    pthread_mutex_unlock(&p->mu);
                    pthread_mutex_lock(&rt.mu);
                    p->next_ready = NULL;
                    if (rt.ready_tail)
                        rt.ready_tail->next_ready = p;
                    else
                        rt.ready_head = p;
                    rt.ready_tail = p;
                    pthread_cond_signal(&rt.cv);
                    pthread_mutex_unlock(&rt.mu);
                }
                break;
            }
        }
        cur_proj = NULL;
    }
}

void flows_metrics_render(buf_t *out)
{
    int64_t queued = atomic_load(&m_queued);
    prom_metric(out, "counter", "parley_flows_deploys_total",
                "Flow sets started (deploys, and each project's set at start).",
                atomic_load(&m_deploys));
    prom_metric(out, "counter", "parley_flows_messages_total", "Messages handed to a node's input.",
                atomic_load(&m_messages));
    prom_metric(out, "counter", "parley_flows_errors_total",
                "Errors raised by nodes (node.error, a function node's failure), caught or not.",
                atomic_load(&m_errors));
    prom_metric(out, "counter", "parley_flows_dropped_total",
                "Tasks dropped because a project's queue was full.", atomic_load(&m_dropped));
    prom_metric(out, "gauge", "parley_flows_queued", "Tasks waiting in the projects' queues.",
                queued > 0 ? (uint64_t)queued : 0);
}

/* ---- public entry points ---- */

void flows_runtime_deploy(const char *project_id, const char *rev, json_t *flows)
{
    flows_proj_t *p = rt.running ? proj_get(project_id, 1) : NULL;
    if (!p) {
        json_decref(flows);
        return;
    }
    pthread_mutex_lock(&p->mu);
    snprintf(p->rev, sizeof p->rev, "%s", rev ? rev : "");
    pthread_mutex_unlock(&p->mu);
    if (!flows) return; /* only note the revision (a set that cannot run) */
    task_t *t = xcalloc(1, sizeof *t);
    t->kind = T_DEPLOY;
    t->msg = flows;
    atomic_fetch_add(&p->deploys_pending, 1);
    enqueue(p, t);
}

int flows_runtime_rev(const char *project_id, char out[32])
{
    out[0] = 0;
    flows_proj_t *p = rt.running ? proj_get(project_id, 0) : NULL;
    if (!p) return 0;
    pthread_mutex_lock(&p->mu);
    snprintf(out, 32, "%s", p->rev);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

static void *poll_main(void *arg)
{
    (void)arg;
    err_t e;
    pthread_mutex_lock(&rt.pmu);
    while (!rt.stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        pthread_cond_timedwait(&rt.pcv, &rt.pmu, &ts);
        if (rt.stopping) break;
        pthread_mutex_unlock(&rt.pmu);
        store_conn_t *c = store_conn(rt.store, &e);
        if (c && flows_deploy_sync(c, &e) < 0)
            log_kv(LOG_WARN, "flows: reading deployed sets failed", "error", e.message);
        pthread_mutex_lock(&rt.pmu);
    }
    pthread_mutex_unlock(&rt.pmu);
    return NULL;
}

int flows_runtime_sync(const char *project_id, int timeout_ms)
{
    flows_proj_t *p = rt.running ? proj_get(project_id, 0) : NULL;
    if (!p) return 0;
    barrier_t *b = xcalloc(1, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    atomic_init(&b->refs, 2);
    task_t *t = xcalloc(1, sizeof *t);
    t->kind = T_BARRIER;
    t->arg = b;
    enqueue(p, t);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (int64_t)(timeout_ms % 1000) * 1000000;
    ts.tv_sec += timeout_ms / 1000 + ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&b->mu);
    while (!b->done)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) != 0) break;
    int done = b->done;
    pthread_mutex_unlock(&b->mu);
    barrier_unref(b);
    return done ? 0 : -1;
}

void flows_deliver(flows_node_t *to, json_t *msg)
{
    flows_proj_t *p = to->set->proj;
    if (!p) {
        json_decref(msg);
        return;
    }
    task_t *t = xcalloc(1, sizeof *t);
    t->kind = T_MSG;
    t->set = to->set;
    set_ref(to->set);
    t->node = to;
    t->msg = msg;
    t->origin = origin_ref(cur_origin);
    if (enqueue(p, t) < 0 && p->dropped % 10000 == 1)
        log_kv(LOG_WARN, "flows queue full: messages dropped", "project", p->id);
}

int flows_inject(const char *project_id, const char *node_id, json_t *msg)
{
    flows_proj_t *p = rt.running ? proj_get(project_id, 0) : NULL;
    if (!p || !msg) {
        json_decref(msg);
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    int has = flows_set_find(p->set, node_id) != NULL;
    pthread_mutex_unlock(&p->mu);
    if (!has && atomic_load(&p->deploys_pending) == 0) { /* a pending deploy may bring it */
        json_decref(msg);
        return -1;
    }
    task_t *t = xcalloc(1, sizeof *t);
    t->kind = T_INJECT;
    t->node_id = xstrdup(node_id);
    t->msg = msg;
    return enqueue(p, t);
}

void flows_post_from(flows_origin_t *o, const char *project_id, const char *node_id,
                     flows_task_fn fn, void *arg, void (*free_arg)(void *))
{
    flows_proj_t *p = rt.running ? proj_get(project_id, 0) : NULL;
    if (!p) {
        if (free_arg && arg) free_arg(arg);
        if (o && runtime_stopping()) atomic_store(&o->kept, 1);
        return;
    }
    task_t *t = xcalloc(1, sizeof *t);
    t->kind = T_POST;
    t->node_id = xstrdup(node_id);
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    t->origin = origin_ref(o);
    enqueue(p, t);
}

void flows_post(const char *project_id, const char *node_id, flows_task_fn fn, void *arg,
                void (*free_arg)(void *))
{
    flows_post_from(cur_origin, project_id, node_id, fn, arg, free_arg);
}

json_t *flows_nodes_of_type(const char *project_id, const char *type)
{
    json_t *out = json_array();
    flows_proj_t *p = rt.running ? proj_get(project_id, 0) : NULL;
    if (!p) return out;
    pthread_mutex_lock(&p->mu);
    flows_set_t *s = p->set;
    for (int i = 0; s && i < s->nnodes; i++)
        if (strcmp(s->nodes[i]->type_name, type) == 0)
            json_array_append_new(out, json_string(s->nodes[i]->id));
    pthread_mutex_unlock(&p->mu);
    return out;
}

/* ---- node services ---- */

const char *flows_node_id(const flows_node_t *n)
{
    return n->id;
}
const char *flows_node_orig_id(const flows_node_t *n)
{
    return n->orig_id;
}
const char *flows_node_type(const flows_node_t *n)
{
    return n->type_name;
}
const char *flows_node_name(const flows_node_t *n)
{
    const char *s = json_string_value(json_object_get(n->cfg, "name"));
    return s ? s : "";
}
const char *flows_node_tab(const flows_node_t *n)
{
    return n->flow ? n->flow->id : "";
}
const char *flows_node_project(const flows_node_t *n)
{
    return n->set->project_id;
}
json_t *flows_node_config(const flows_node_t *n)
{
    return n->cfg;
}
int flows_node_outputs(const flows_node_t *n)
{
    return n->nports;
}
void *flows_node_state(const flows_node_t *n)
{
    return n->state;
}
void flows_node_set_state(flows_node_t *n, void *state)
{
    n->state = state;
}

flows_node_t *flows_node_find(flows_node_t *n, const char *id)
{
    if (!id || !*id) return NULL;
    for (flows_flow_t *f = n->flow; f && f->instance; f = f->parent) {
        char full[256];
        snprintf(full, sizeof full, "%s-%s", f->id, id);
        flows_node_t *x = flows_set_find(n->set, full);
        if (x) return x;
    }
    return flows_set_find(n->set, id);
}

flows_node_t *flows_node_ref(flows_node_t *n, const char *field)
{
    return flows_node_find(n, json_string_value(json_object_get(n->cfg, field)));
}

json_t *flows_msg_new(void)
{
    char id[ULID_LEN + 1];
    ulid_new(id);
    return json_pack("{s:s}", "_msgid", id);
}

json_t *flows_msg_clone(const json_t *msg)
{
    return json_deep_copy(msg);
}

void flows_send(flows_node_t *n, int port, json_t *msg)
{
    if (!msg) return;
    if (port < 0 || port >= n->nports || n->ports[port].n == 0) {
        json_decref(msg);
        return;
    }
    flows_port_t *p = &n->ports[port];
    for (int i = 1; i < p->n; i++)
        flows_deliver(p->to[i], flows_msg_clone(msg));
    flows_deliver(p->to[0], msg);
}

void flows_send_ports(flows_node_t *n, json_t *per_port)
{
    if (json_is_object(per_port)) {
        flows_send(n, 0, per_port);
        return;
    }
    size_t i, j;
    json_t *v, *m;
    json_array_foreach(per_port, i, v)
    {
        if (json_is_object(v))
            flows_send(n, (int)i, json_incref(v));
        else if (json_is_array(v))
            json_array_foreach(v, j, m) if (json_is_object(m))
                flows_send(n, (int)i, json_incref(m));
    }
    json_decref(per_port);
}

void flows_done(flows_node_t *n, const json_t *msg)
{
    flows_flow_t *f = n->flow;
    if (!f || !n->watched || !msg) return;
    for (int i = 0; i < f->ncomplete; i++) {
        flows_node_t *c = f->completes[i];
        json_t *scope = json_object_get(c->cfg, "scope");
        size_t k;
        json_t *v;
        int hit = 0;
        json_array_foreach(scope, k, v) if (json_is_string(v) &&
                                            strcmp(json_string_value(v), n->orig_id) == 0) hit = 1;
        if (!hit) continue;
        json_t *m = flows_msg_clone(msg);
        json_object_set_new(m, "complete",
                            json_pack("{s:{s:s,s:s,s:s}}", "source", "id", n->id, "type",
                                      n->type_name, "name", flows_node_name(n)));
        flows_deliver(c, m);
    }
}

static int scope_has(json_t *scope, const char *orig_id)
{
    if (!json_is_array(scope)) return 1;
    size_t k;
    json_t *v;
    json_array_foreach(scope, k, v) if (json_is_string(v) &&
                                        strcmp(json_string_value(v), orig_id) == 0) return 1;
    return 0;
}

/* Node-RED's Flow.handleError, then the parent flow with the instance as reporter. */
static int handle_error(flows_flow_t *f, flows_node_t *n, flows_node_t *reporter, const char *text,
                        const json_t *msg, int count)
{
    int handled = 0;
    for (int pass = 0; pass < 2; pass++) /* scoped and "all" catches, then "uncaught" ones */
        for (int i = 0; i < f->ncatch; i++) {
            flows_node_t *c = f->catches[i];
            int uncaught = json_is_true(json_object_get(c->cfg, "uncaught"));
            if (uncaught != pass) continue;
            if (uncaught && handled) continue;
            if (!scope_has(json_object_get(c->cfg, "scope"), reporter->orig_id)) continue;
            json_t *m = msg ? flows_msg_clone(msg) : json_object();
            json_t *prev = json_object_get(m, "error");
            if (prev) json_object_set(m, "_error", prev);
            json_object_set_new(m, "error",
                                json_pack("{s:s,s:{s:s,s:s,s:s,s:i}}", "message", text, "source",
                                          "id", n->id, "type", n->type_name, "name",
                                          flows_node_name(n), "count", count));
            flows_deliver(c, m);
            handled = 1;
        }
    if (!handled && f->parent && f->instance)
        return handle_error(f->parent, n, f->instance, text, msg, count);
    return handled;
}

void flows_error(flows_node_t *n, json_t *msg, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&m_errors, 1);
    int handled = 0;
    if (msg && n->flow) {
        int count = 1;
        json_t *src = json_object_get(json_object_get(msg, "error"), "source");
        if (src && strcmp(json_string_value(json_object_get(src, "id")) ?: "", n->id) == 0) {
            count = (int)json_integer_value(json_object_get(src, "count")) + 1;
            if (count >= 10) {
                flows_debug_log(n, "warn", "Message exceeded maximum number of catches");
                json_decref(msg);
                return;
            }
        }
        handled = handle_error(n->flow, n, n, text, msg, count);
    }
    if (!handled) flows_debug_log(n, "error", text);
    json_decref(msg);
}

void flows_warn(flows_node_t *n, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    flows_debug_log(n, "warn", text);
}

void flows_log(flows_node_t *n, const char *level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (strcmp(level, "warn") == 0 || strcmp(level, "error") == 0)
        flows_debug_log(n, level, text);
    else
        log_kv(strcmp(level, "info") == 0 ? LOG_INFO : LOG_DEBUG, "flow node", "project",
               n->set->project_id, "node", n->id, "text", text);
}

void flows_status(flows_node_t *n, const char *fill, const char *shape, const char *text)
{
    flows_flow_t *f = n->flow;
    if (!f) return;
    for (int i = 0; i < f->nstatus; i++) {
        flows_node_t *s = f->statuses[i];
        if (s == n) continue;
        if (!scope_has(json_object_get(s->cfg, "scope"), n->orig_id)) continue;
        json_t *st = json_object();
        if (fill) json_object_set_new(st, "fill", json_string(fill));
        if (shape) json_object_set_new(st, "shape", json_string(shape));
        if (text) json_object_set_new(st, "text", json_string(text));
        json_object_set_new(st, "source",
                            json_pack("{s:s,s:s,s:s}", "id", n->id, "type", n->type_name, "name",
                                      flows_node_name(n)));
        json_t *m = flows_msg_new();
        json_object_set_new(m, "status", st);
        flows_deliver(s, m);
    }
}

/* ---- env ---- */

static json_t *env_entry_value(flows_node_t *n, flows_flow_t *f, json_t *ent, int depth);

static json_t *env_lookup(flows_node_t *n, flows_flow_t *f, const char *name, int depth)
{
    if (depth > 8) return NULL;
    for (; f; f = f->parent) {
        size_t i;
        json_t *ent;
        json_array_foreach(f->env, i, ent)
        {
            const char *en = json_string_value(json_object_get(ent, "name"));
            if (en && strcmp(en, name) == 0) return env_entry_value(n, f, ent, depth);
        }
        if (!f->parent && f->instance == NULL) break;
    }
    /* a subflow's tab: the outermost flow's tab env was covered by the walk */
    return NULL;
}

static json_t *env_entry_value(flows_node_t *n, flows_flow_t *f, json_t *ent, int depth)
{
    const char *type = json_string_value(json_object_get(ent, "type"));
    json_t *v = json_object_get(ent, "value");
    char *sv = v && !json_is_string(v) ? flows_js_string(v) : NULL;
    const char *s = sv ? sv : (json_string_value(v) ? json_string_value(v) : "");
    json_t *out = NULL;
    if (type && strcmp(type, "env") == 0)
        out = env_lookup(n, f->parent, s, depth + 1);
    else {
        err_t e;
        if (flows_typed_eval(NULL, NULL, type ? type : "str", s, &out, &e) < 0) out = NULL;
    }
    free(sv);
    return out;
}

json_t *flows_env_value(flows_node_t *n, const char *name)
{
    if (strncmp(name, "NR_", 3) == 0) {
        flows_flow_t *tab = n->flow;
        while (tab && tab->parent)
            tab = tab->parent;
        flows_flow_t *sf = n->flow && n->flow->instance ? n->flow : NULL;
        if (strcmp(name, "NR_NODE_ID") == 0) return json_string(n->id);
        if (strcmp(name, "NR_NODE_NAME") == 0) return json_string(flows_node_name(n));
        if (strcmp(name, "NR_NODE_PATH") == 0) return json_string(n->path);
        if (strcmp(name, "NR_FLOW_ID") == 0 && tab) return json_string(tab->id);
        if (strcmp(name, "NR_FLOW_NAME") == 0 && tab) return json_string(tab->name);
        if (strcmp(name, "NR_SUBFLOW_ID") == 0 && sf) return json_string(sf->id);
        if (strcmp(name, "NR_SUBFLOW_NAME") == 0 && sf) return json_string(sf->subflow_name);
        if (strcmp(name, "NR_SUBFLOW_PATH") == 0 && sf) return json_string(sf->instance->path);
    }
    return env_lookup(n, n->flow, name, 0);
}

char *flows_env_get(flows_node_t *n, const char *name)
{
    json_t *v = flows_env_value(n, name);
    if (!v) return NULL;
    char *s = flows_js_string(v);
    json_decref(v);
    return s;
}

int flows_node_convo(flows_node_t *n, convo_ctx_t *cx, err_t *e)
{
    static __thread char actor[160];
    store_conn_t *c = flows_conn(e);
    if (!c) return -1;
    snprintf(actor, sizeof actor, "flow:%s", n->id);
    cx->conn = c;
    cx->project_id = n->set->project_id;
    cx->seal_key = rt.seal_key;
    cx->actor = actor;
    return 0;
}

/* ---- start / stop ---- */

int flows_start(store_t *store, const uint8_t seal_key[32], const config_t *cfg, err_t *e)
{
    (void)cfg;
    if (rt.running) return 0;
    rt.store = store;
    memcpy(rt.seal_key, seal_key, 32);
    rt.projects = json_object();
    rt.stopping = 0;
    flows_context_init();
    store_conn_t *c = store_conn(store, e);
    if (!c) return -1;
    rt.running = 1;
    for (int i = 0; i < FLOWS_WORKERS; i++)
        pthread_create(&rt.workers[i], NULL, worker_main, NULL);
    pthread_create(&rt.tthread, NULL, timer_main, NULL);
    /* every project's live revision, then whatever other processes deploy later */
    if (flows_deploy_sync(c, e) < 0)
        log_kv(LOG_WARN, "flows: loading deployed sets failed", "error", e->message);
    pthread_create(&rt.pthread, NULL, poll_main, NULL);
    err_clear(e);
    return 0;
}

void flows_stop(void)
{
    if (!rt.running) return;
    pthread_mutex_lock(&rt.pmu);
    rt.stopping = 1;
    pthread_cond_broadcast(&rt.pcv);
    pthread_mutex_unlock(&rt.pmu);
    pthread_join(rt.pthread, NULL);
    pthread_mutex_lock(&rt.mu);
    rt.stopping = 1;
    pthread_cond_broadcast(&rt.cv);
    pthread_mutex_unlock(&rt.mu);
    for (int i = 0; i < FLOWS_WORKERS; i++)
        pthread_join(rt.workers[i], NULL);
    pthread_mutex_lock(&rt.tmu);
    pthread_cond_broadcast(&rt.tcv);
    pthread_mutex_unlock(&rt.tmu);
    pthread_join(rt.tthread, NULL);
    rt.running = 0;
    const char *key;
    json_t *v;
    json_object_foreach(rt.projects, key, v)
    {
        flows_proj_t *p = (flows_proj_t *)(intptr_t)json_integer_value(v);
        task_t *t = p->head;
        while (t) {
            task_t *next = t->next;
            task_free(t);
            t = next;
        }
        p->head = p->tail = NULL;
        if (p->set) {
            cur_proj = p;
            set_stop(p->set);
            cur_proj = NULL;
            flows_set_unref(p->set);
            p->set = NULL;
        }
    }
    /* timers of sets still referenced (none after set_stop, but be safe) */
    pthread_mutex_lock(&rt.tmu);
    for (size_t i = 0; i < rt.hn; i++)
        timer_free(rt.heap[i], 1);
    rt.hn = 0;
    free(rt.heap);
    rt.heap = NULL;
    rt.hcap = 0;
    memset(rt.byid, 0, sizeof rt.byid);
    pthread_mutex_unlock(&rt.tmu);
    json_object_foreach(rt.projects, key, v)
    {
        flows_proj_t *p = (flows_proj_t *)(intptr_t)json_integer_value(v);
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
    json_decref(rt.projects);
    rt.projects = NULL;
    rt.ready_head = rt.ready_tail = NULL;
    flows_debug_shutdown();
    rt.store = NULL;
}
