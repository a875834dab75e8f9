/* dispatch.c: the outbox worker's core (see dispatch.h): claiming due rows with a lease,
 * the libcurl multi loop, backoff, and metrics. What a job does lives with its kind:
 * callback.c (webhook callbacks) and deliver.c (messages to channels). The store is only
 * touched from this thread, between curl_multi_poll calls, on its own connection. */
#define _GNU_SOURCE
#include "dispatch/dispatch_internal.h"
#include "base/prom.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/nudge.h"
#include "base/sec.h"
#include "store/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_MS (10 * 60 * 1000)
#define BODY_CAP 65536 /* of an answer kept for adapters and logs */

atomic_uint_fast64_t dispatch_m_delivered, dispatch_m_failed, dispatch_m_gave_up,
    dispatch_m_inflight, dispatch_m_sent, dispatch_m_send_failed;

void dispatch_metrics_render(buf_t *out)
{
    prom_metric(out, "counter", "parley_callbacks_delivered_total",
                "Callbacks answered 2xx by their target.", atomic_load(&dispatch_m_delivered));
    prom_metric(out, "counter", "parley_callbacks_failed_total",
                "Callback attempts that failed (retried).", atomic_load(&dispatch_m_failed));
    prom_metric(out, "counter", "parley_callbacks_expired_total",
                "Callbacks given up after retrying.", atomic_load(&dispatch_m_gave_up));
    prom_metric(out, "counter", "parley_messages_sent_total",
                "Messages accepted by a channel provider.", atomic_load(&dispatch_m_sent));
    prom_metric(out, "counter", "parley_messages_failed_total",
                "Messages that failed on every channel.", atomic_load(&dispatch_m_send_failed));
    prom_metric(out, "gauge", "parley_dispatch_inflight",
                "Outbox jobs being worked on (deliveries, callbacks, checks).",
                atomic_load(&dispatch_m_inflight));
}

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    job_t *j = cls;
    size_t len = size * n;
    if (j->resp.len < BODY_CAP)
        buf_append(&j->resp, data, len < BODY_CAP - j->resp.len ? len : BODY_CAP - j->resp.len);
    return len;
}

static void job_free(job_t *j)
{
    if (!j) return;
    if (j->easy) curl_easy_cleanup(j->easy);
    free(j->payload);
    free(j->form);
    convo_webhook_target_free(&j->wh);
    curl_slist_free_all(j->headers);
    buf_free(&j->resp);
    json_decref(j->state);
    json_decref(j->message);
    json_decref(j->app);
    channel_http_free(&j->req);
    free(j);
}

convo_ctx_t dispatch_cx(dispatch_t *d, const job_t *j)
{
    err_t e;
    convo_ctx_t cx = {
        .conn = store_conn(d->store, &e), .project_id = j->project_id, .seal_key = d->seal_key};
    if (!cx.conn) log_kv(LOG_ERROR, "dispatch: no store connection", "error", e.message);
    return cx;
}

CURL *dispatch_easy(dispatch_t *d, job_t *j, const char *url)
{
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)d->o.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(d->o.timeout_ms < 5000 ? d->o.timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_PRIVATE, j);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "parley/" PARLEY_VERSION);
    buf_reset(&j->resp);
    return c;
}

int dispatch_http(dispatch_t *d, job_t *j, const channel_http_t *h)
{
    CURL *c = dispatch_easy(d, j, h->url);
    if (!c) return -1;
    curl_slist_free_all(j->headers);
    j->headers = NULL;
    for (int i = 0; i < CHANNEL_MAX_HEADERS && h->headers[i]; i++)
        j->headers = curl_slist_append(j->headers, h->headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->headers);
    if (strcmp(h->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body ? h->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)h->body_len);
    }
    j->easy = c;
    curl_multi_add_handle(d->multi, c);
    return 0;
}

void dispatch_row_done(dispatch_t *d, job_t *j)
{
    err_t e;
    convo_ctx_t cx = dispatch_cx(d, j);
    if (cx.conn) store_exec(cx.conn, &e, "DELETE FROM outbox WHERE id = $1", "s", j->id);
}

int dispatch_row_backoff(dispatch_t *d, job_t *j, const char *why)
{
    int64_t delay = d->o.retry_base_ms;
    for (int64_t i = 1; i < j->attempts && delay < d->o.retry_max_ms; i++)
        delay *= 2;
    if (delay > d->o.retry_max_ms) delay = d->o.retry_max_ms;
    uint32_t r;
    sec_random(&r, sizeof r);
    delay = delay / 2 + (int64_t)(r % (uint32_t)(delay + 1)); /* jitter: 0.5x .. 1.5x */
    int64_t due = clock_now_ms() + delay;
    if (due > j->expires_at) return 0;
    err_t e;
    convo_ctx_t cx = dispatch_cx(d, j);
    if (cx.conn)
        store_exec(cx.conn, &e,
                   "UPDATE outbox SET due_at = $1, lease_until = 0, last_error = $2 WHERE id = $3",
                   "iss", due, why, j->id);
    return 1;
}

/* The job kinds, by the outbox's kind column. */
static const struct job_kind {
    const char *name;
    int (*start)(dispatch_t *d, job_t *j);
    int (*finish)(dispatch_t *d, job_t *j, CURLcode rc, long status);
} kinds[] = {
    {"callback", callback_start, callback_finish},
    {"deliver", deliver_start, deliver_finish},
    {"check", check_start, check_finish},
};

static int unknown_start(dispatch_t *d, job_t *j)
{
    log_kv(LOG_ERROR, "outbox row of unknown kind dropped", "outbox_id", j->id, "kind", j->kind);
    dispatch_row_done(d, j);
    return 0;
}

static const struct job_kind *kind_of(const job_t *j)
{
    static const struct job_kind unknown = {"?", unknown_start, NULL};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, j->kind) == 0) return &kinds[i];
    return &unknown;
}

static void job_end(dispatch_t *d, job_t *j)
{
    for (job_t **p = &d->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    d->inflight--;
    atomic_fetch_sub(&dispatch_m_inflight, 1);
    job_free(j);
}

static void finish(dispatch_t *d, job_t *j, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(d->multi, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    int more = kind_of(j)->finish(d, j, rc, status);
    nudge_flush(); /* the step may have queued callbacks or re-queued this job */
    if (!more) job_end(d, j);
}

/* Jobs in flight (and just claimed) for a target, and for an app. */
static void busy(dispatch_t *d, const job_t *list, const char *target_id, const char *app_id,
                 int *per_target, int *per_app)
{
    *per_target = *per_app = 0;
    for (int pass = 0; pass < 2; pass++)
        for (const job_t *j = pass ? list : d->jobs; j; j = j->next) {
            *per_target += strcmp(j->target_id, target_id) == 0;
            *per_app += strcmp(j->app_id, app_id) == 0;
        }
}

/* The outbox's lane of a row (migration 010_outbox_lanes, index outbox_lane). */
#define LANE "(CASE WHEN kind = 'deliver' THEN app_id ELSE target_id END)"

typedef struct {
    job_t **v;
    size_t n, cap;
} cands_t;

static int cand_cmp(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *)a, *y = *(job_t *const *)b;
    if (x->due_at != y->due_at) return x->due_at < y->due_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* A lane's oldest due, unleased rows: as many as one lane can use at once. Rows over the
 * per-target/per-app limits (counting what is in flight) are not read. */
static int lane_rows(dispatch_t *d, store_conn_t *c, const char *lane, int64_t now, cands_t *out,
                     err_t *e)
{
    int cap = d->o.per_app > d->o.per_target ? d->o.per_app : d->o.per_target;
    store_stmt_t *st = store_query(
        c, e,
        "SELECT id, project_id, app_id, kind, target_id, payload, attempts, expires_at, due_at "
        "FROM outbox WHERE " LANE " = $1 AND due_at <= $2 AND lease_until < $2 "
        "ORDER BY due_at, id LIMIT $3",
        "sii", lane, now, (int64_t)cap);
    if (!st) return -1;
    int rc;
    while ((rc = store_step(st, e)) == 1) {
        int bt, ba;
        busy(d, NULL, store_col_text(st, 4), store_col_text(st, 2), &bt, &ba);
        if (ba >= d->o.per_app) break; /* one lane, one app */
        if (bt >= d->o.per_target) continue;
        job_t *j = xcalloc(1, sizeof *j);
        snprintf(j->id, sizeof j->id, "%s", store_col_text(st, 0));
        snprintf(j->project_id, sizeof j->project_id, "%s", store_col_text(st, 1));
        snprintf(j->app_id, sizeof j->app_id, "%s", store_col_text(st, 2));
        snprintf(j->kind, sizeof j->kind, "%s", store_col_text(st, 3));
        snprintf(j->target_id, sizeof j->target_id, "%s", store_col_text(st, 4));
        j->payload = xstrdup(store_col_text(st, 5));
        j->attempts = store_col_int(st, 6) + 1;
        j->expires_at = store_col_int(st, 7);
        j->due_at = store_col_int(st, 8);
        buf_init(&j->resp);
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 64;
            out->v = xrealloc(out->v, out->cap * sizeof *out->v);
        }
        out->v[out->n++] = j;
    }
    store_done(st);
    return rc < 0 ? -1 : 0;
}

/* Claim up to the free slots: each lane's oldest due rows (a skip scan over the lanes, then
 * one indexed read per lane: the cost follows the number of lanes, not the backlog), taken
 * oldest first across lanes with at most per_target per target and per_app per app,
 * counting what is already in flight, so a lane with a backlog never hides another's work.
 * Runs inside the turn's transaction (see run()) and writes the leases; answers the
 * claimed jobs, oldest first, to start once that transaction is committed. */
static job_t *claim(dispatch_t *d, store_conn_t *c)
{
    int free_slots = d->o.max_inflight - d->inflight;
    if (free_slots <= 0) return NULL;
    err_t e;
    int64_t now = clock_now_ms();
    size_t nlanes = 0, caplanes = 0;
    char **lanes = NULL;
    store_stmt_t *st =
        store_query(c, &e,
                    "WITH RECURSIVE lanes(l) AS (SELECT MIN(" LANE ") FROM outbox UNION ALL "
                    "SELECT (SELECT MIN(" LANE ") FROM outbox WHERE " LANE " > l) FROM lanes "
                    "WHERE l IS NOT NULL) SELECT l FROM lanes WHERE l IS NOT NULL",
                    "");
    while (st && store_step(st, &e) == 1) {
        if (nlanes == caplanes) {
            caplanes = caplanes ? caplanes * 2 : 16;
            lanes = xrealloc(lanes, caplanes * sizeof *lanes);
        }
        lanes[nlanes++] = xstrdup(store_col_text(st, 0));
    }
    store_done(st);
    cands_t cands = {0};
    for (size_t i = 0; i < nlanes; i++) {
        if (lane_rows(d, c, lanes[i], now, &cands, &e) < 0) break;
    }
    for (size_t i = 0; i < nlanes; i++)
        free(lanes[i]);
    free(lanes);
    if (cands.n > 1) qsort(cands.v, cands.n, sizeof *cands.v, cand_cmp);
    job_t *claimed = NULL;
    for (size_t i = 0; i < cands.n; i++) {
        job_t *j = cands.v[i];
        int bt, ba;
        busy(d, claimed, j->target_id, j->app_id, &bt, &ba);
        if (free_slots <= 0 || bt >= d->o.per_target || ba >= d->o.per_app) {
            job_free(j);
            continue;
        }
        j->next = claimed;
        claimed = j;
        free_slots--;
    }
    free(cands.v);
    int ok = 1;
    for (job_t *j = claimed; ok && j; j = j->next)
        ok = store_exec(c, &e, "UPDATE outbox SET lease_until = $1, attempts = $2 WHERE id = $3",
                        "iis", now + LEASE_MS, j->attempts, j->id) >= 0;
    /* Oldest first: the list was built newest first. */
    job_t *rev = NULL;
    while (claimed) {
        job_t *n = claimed->next;
        if (ok) {
            claimed->next = rev;
            rev = claimed;
        } else {
            job_free(claimed); /* the turn's transaction will not commit these leases */
        }
        claimed = n;
    }
    return rev;
}

static void free_jobs(job_t *j)
{
    while (j) {
        job_t *n = j->next;
        job_free(j);
        j = n;
    }
}

/* Start claimed jobs, their leases committed. */
static void start_claimed(dispatch_t *d, job_t *rev)
{
    while (rev) {
        job_t *j = rev;
        rev = j->next;
        j->next = d->jobs;
        d->jobs = j;
        d->inflight++;
        atomic_fetch_add(&dispatch_m_inflight, 1);
        int more = kind_of(j)->start(d, j);
        nudge_flush();
        if (!more) job_end(d, j);
    }
}

/* One turn's store work: the outcomes of the requests that completed, then a claim if one is
 * due. Runs inside a transaction (the dispatcher's own, or a unit of the group-commit
 * writer's batch, on the writer's thread while the dispatcher thread waits). */
typedef struct {
    store_unit_t unit;
    dispatch_t *d;
    struct {
        CURL *easy;
        CURLcode result;
    } done[64];
    int ndone;
    int do_claim;
    job_t *claimed;
} turn_t;

static int turn_run(store_conn_t *c, store_unit_t *u, err_t *e)
{
    (void)e;
    turn_t *t = u->arg;
    for (int i = 0; i < t->ndone; i++) {
        job_t *j = NULL;
        curl_easy_getinfo(t->done[i].easy, CURLINFO_PRIVATE, (char **)&j);
        finish(t->d, j, t->done[i].result);
    }
    if (t->do_claim) {
        t->claimed = claim(t->d, c);
        deliver_preload(t->d, t->claimed);
    }
    return 0;
}

/* Run the turn's store work and commit it; 0 when committed. */
static int turn_commit(dispatch_t *d, store_conn_t *c, turn_t *t)
{
    err_t e;
    t->unit.arg = t;
    int rc = 1;
    if (d->o.writer) { /* 1: the writer is stopping, commit on this thread's connection */
        t->unit.run = turn_run;
        t->unit.urgent = 1;
        rc = store_group_call(d->o.writer, &t->unit, &e);
    }
    if (rc > 0) {
        if (!c || store_begin(c, &e) < 0) return -1;
        turn_run(c, &t->unit, &e);
        rc = store_commit(c, &e);
    }
    if (rc < 0)
        log_kv(LOG_ERROR, "dispatch: a turn was not committed; its jobs will run again", "error",
               e.message);
    return rc < 0 ? -1 : 0;
}

static void *run(void *arg)
{
    dispatch_t *d = arg;
    pthread_setname_np(pthread_self(), "parley-dispatch");
    int64_t next_claim = 0, last_claim = 0;
    err_t e;
    store_conn_t *c = store_conn(d->store, &e);
    turn_t t;
    memset(&t, 0, sizeof t);
    t.d = d;
    while (!atomic_load(&d->stop)) {
        /* The store work of one turn (outcomes: statuses, callbacks queued, rows done; then
         * the claim's leases) commits once (turn_commit): each step's own begin/commit
         * nests inside (store.h). The transaction spans neither the wait below nor the
         * claimed jobs' starts (they run after the commit). */
        int running = 0;
        curl_multi_perform(d->multi, &running);
        CURLMsg *msg;
        int left, more_done = 1;
        while (more_done) {
            t.ndone = 0;
            t.claimed = NULL;
            while (t.ndone < (int)(sizeof t.done / sizeof t.done[0]) &&
                   (msg = curl_multi_info_read(d->multi, &left)))
                if (msg->msg == CURLMSG_DONE) {
                    t.done[t.ndone].easy = msg->easy_handle;
                    t.done[t.ndone++].result = msg->data.result;
                }
            more_done = t.ndone == (int)(sizeof t.done / sizeof t.done[0]);
            int64_t now = clock_mono_ms();
            t.do_claim = !more_done && now >= next_claim;
            if (t.do_claim) {
                last_claim = now;
                next_claim = now + d->o.poll_ms;
            }
            if (!t.ndone && !t.do_claim) break;
            if (turn_commit(d, c, &t) < 0) {
                free_jobs(t.claimed); /* their leases were not written */
                t.claimed = NULL;
            }
            start_claimed(d, t.claimed);
        }
        struct curl_waitfd wfd = {.fd = nudge_fd(), .events = CURL_WAIT_POLLIN};
        int nfds = 0;
        int64_t wait = next_claim - clock_mono_ms();
        if (wait < 0) wait = 0;
        curl_multi_poll(d->multi, &wfd, nudge_fd() >= 0 ? 1 : 0, (int)wait, &nfds);
        if (wfd.revents) {
            nudge_drain();
            /* New work was committed: look now, but at most every 2 ms, so that under load
             * one claim (a write transaction) picks up many rows. */
            if (next_claim > last_claim + 2) next_claim = last_claim + 2;
        }
    }
    return NULL;
}

dispatch_t *dispatch_start(store_t *store, const uint8_t seal_key[32], const dispatch_opts_t *o,
                           err_t *e)
{
    if (e) err_clear(e);
    dispatch_t *d = xcalloc(1, sizeof *d);
    d->store = store;
    memcpy(d->seal_key, seal_key, 32);
    d->o = *o;
    if (d->o.max_inflight <= 0) d->o.max_inflight = 64;
    if (d->o.per_target <= 0) d->o.per_target = 4;
    if (d->o.per_app <= 0) d->o.per_app = d->o.max_inflight / 4 > 0 ? d->o.max_inflight / 4 : 1;
    if (d->o.timeout_ms <= 0) d->o.timeout_ms = 10000;
    if (d->o.retry_base_ms <= 0) d->o.retry_base_ms = 1000;
    if (d->o.retry_max_ms <= 0) d->o.retry_max_ms = 3600000;
    if (d->o.poll_ms <= 0) d->o.poll_ms = 200;
    d->multi = curl_multi_init();
    store_conn_t *c = store_conn(store, e);
    /* One process owns a data dir: leases left by a crashed predecessor are void. */
    if (!d->multi || !c ||
        store_exec(c, e, "UPDATE outbox SET lease_until = 0 WHERE lease_until > 0", "") < 0 ||
        pthread_create(&d->thread, NULL, run, d) != 0) {
        if (d->multi) curl_multi_cleanup(d->multi);
        free(d);
        if (e && e->code == ERR_OK) err_set(e, ERR_INTERNAL, "cannot start the dispatcher");
        return NULL;
    }
    return d;
}

void dispatch_stop(dispatch_t *d)
{
    if (!d) return;
    atomic_store(&d->stop, 1);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    err_t e;
    store_conn_t *c = store_conn(d->store, &e);
    while (d->jobs) {
        job_t *j = d->jobs;
        d->jobs = j->next;
        if (c) store_exec(c, &e, "UPDATE outbox SET lease_until = 0 WHERE id = $1", "s", j->id);
        if (j->easy) curl_multi_remove_handle(d->multi, j->easy);
        job_free(j);
        atomic_fetch_sub(&dispatch_m_inflight, 1);
    }
    callback_tokens_free(d);
    curl_multi_cleanup(d->multi);
    free(d);
}
