/* dispatch.c: the outbox worker (see dispatch.h). A job moves through at most two HTTP
 * stages: TOKEN (client-credentials grant, cached per webhook until it expires) and POST
 * (the callback). All I/O is non-blocking inside one curl multi handle; the store is only
 * touched between curl_multi_poll calls, by this thread's own connection. */
#define _GNU_SOURCE
#include "dispatch/dispatch.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/nudge.h"
#include "base/sec.h"
#include "convo/events.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_MS (10 * 60 * 1000)
#define BODY_CAP 8192 /* of a target's answer kept for the log */

typedef enum { STAGE_TOKEN, STAGE_POST } stage_t;

typedef struct job {
    char id[ULID_LEN + 1], project_id[ULID_LEN + 1], target_id[ULID_LEN + 1];
    char *payload;
    int64_t attempts, expires_at;
    stage_t stage;
    convo_webhook_target_t wh;
    CURL *easy;
    struct curl_slist *headers;
    char *form; /* token request body */
    buf_t resp;
    struct job *next;
} job_t;

typedef struct token {
    char webhook_id[ULID_LEN + 1];
    char *value;
    int64_t expires_ms;
    struct token *next;
} token_t;

struct dispatch {
    store_t *store;
    uint8_t seal_key[32];
    dispatch_opts_t o;
    CURLM *multi;
    pthread_t thread;
    atomic_int stop;
    job_t *jobs; /* in flight */
    int inflight;
    token_t *tokens;
};

static atomic_uint_fast64_t m_delivered, m_failed, m_gave_up, m_inflight;

void dispatch_metrics_render(buf_t *out)
{
    buf_printf(
        out,
        "# HELP parley_callbacks_delivered_total Callbacks answered 2xx by their target.\n"
        "# TYPE parley_callbacks_delivered_total counter\n"
        "parley_callbacks_delivered_total %llu\n"
        "# HELP parley_callbacks_failed_total Callback attempts that failed (retried).\n"
        "# TYPE parley_callbacks_failed_total counter\n"
        "parley_callbacks_failed_total %llu\n"
        "# HELP parley_callbacks_expired_total Callbacks given up after retrying.\n"
        "# TYPE parley_callbacks_expired_total counter\n"
        "parley_callbacks_expired_total %llu\n"
        "# TYPE parley_callbacks_inflight gauge\n"
        "parley_callbacks_inflight %llu\n",
        (unsigned long long)atomic_load(&m_delivered), (unsigned long long)atomic_load(&m_failed),
        (unsigned long long)atomic_load(&m_gave_up), (unsigned long long)atomic_load(&m_inflight));
}

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    job_t *j = cls;
    size_t len = size * n;
    if (j->resp.len < BODY_CAP) buf_append(&j->resp, data, len < BODY_CAP ? len : BODY_CAP);
    return len;
}

static void job_free(job_t *j)
{
    if (!j) return;
    free(j->payload);
    free(j->form);
    convo_webhook_target_free(&j->wh);
    curl_slist_free_all(j->headers);
    buf_free(&j->resp);
    free(j);
}

static token_t *token_find(dispatch_t *d, const char *webhook_id)
{
    for (token_t *t = d->tokens; t; t = t->next)
        if (strcmp(t->webhook_id, webhook_id) == 0) return t;
    return NULL;
}

static void token_forget(dispatch_t *d, const char *webhook_id)
{
    for (token_t **p = &d->tokens; *p; p = &(*p)->next)
        if (strcmp((*p)->webhook_id, webhook_id) == 0) {
            token_t *t = *p;
            *p = t->next;
            free(t->value);
            free(t);
            return;
        }
}

static CURL *easy_new(dispatch_t *d, job_t *j, const char *url)
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
    return c;
}

/* Stage TOKEN: RFC 6749 client credentials, Basic (default) or FORM client auth. */
static int start_token(dispatch_t *d, job_t *j)
{
    json_t *cc = j->wh.client_credentials;
    const char *id = json_string_value(json_object_get(cc, "client_id"));
    const char *secret = json_string_value(json_object_get(cc, "client_secret"));
    const char *endpoint = json_string_value(json_object_get(cc, "endpoint"));
    const char *scope = json_string_value(json_object_get(cc, "scope"));
    const char *type = json_string_value(json_object_get(cc, "token_request_type"));
    if (!id || !secret || !endpoint) return -1;
    CURL *c = easy_new(d, j, endpoint);
    if (!c) return -1;
    char *eid = curl_easy_escape(c, id, 0), *esec = curl_easy_escape(c, secret, 0);
    char *escope = scope && *scope ? curl_easy_escape(c, scope, 0) : NULL;
    buf_t f;
    buf_init(&f);
    buf_puts(&f, "grant_type=client_credentials");
    if (escope) buf_printf(&f, "&scope=%s", escope);
    if (type && strcmp(type, "FORM") == 0) {
        buf_printf(&f, "&client_id=%s&client_secret=%s", eid, esec);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, id);
        curl_easy_setopt(c, CURLOPT_PASSWORD, secret);
    }
    curl_free(eid);
    curl_free(esec);
    curl_free(escope);
    j->form = buf_steal(&f);
    j->headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->form);
    j->stage = STAGE_TOKEN;
    j->easy = c;
    curl_multi_add_handle(d->multi, c);
    return 0;
}

/* Stage POST: the callback, signed when the webhook has a secret. */
static int start_post(dispatch_t *d, job_t *j, const char *bearer)
{
    CURL *c = easy_new(d, j, j->wh.target);
    if (!c) return -1;
    curl_slist_free_all(j->headers);
    j->headers = curl_slist_append(NULL, "Content-Type: application/json");
    char line[512];
    if (j->wh.secret) {
        char nonce[32], sig[64], ts[24];
        uint8_t mac[SEC_HMAC_LEN];
        sec_random_token(16, nonce, sizeof nonce);
        snprintf(ts, sizeof ts, "%lld", (long long)(clock_now_ms() / 1000));
        buf_t signed_data;
        buf_init(&signed_data);
        buf_printf(&signed_data, "%s.%s.%s", j->payload, nonce, ts);
        sec_hmac_sha256(j->wh.secret, strlen(j->wh.secret), signed_data.data, signed_data.len, mac);
        buf_free(&signed_data);
        sec_b64_encode(mac, sizeof mac, sig, sizeof sig);
        snprintf(line, sizeof line, "x-sinch-webhook-signature: %s", sig);
        j->headers = curl_slist_append(j->headers, line);
        snprintf(line, sizeof line, "x-sinch-webhook-signature-nonce: %s", nonce);
        j->headers = curl_slist_append(j->headers, line);
        snprintf(line, sizeof line, "x-sinch-webhook-signature-timestamp: %s", ts);
        j->headers = curl_slist_append(j->headers, line);
        j->headers =
            curl_slist_append(j->headers, "x-sinch-webhook-signature-algorithm: HmacSHA256");
    }
    if (bearer) {
        buf_t auth;
        buf_init(&auth);
        buf_printf(&auth, "Authorization: Bearer %s", bearer);
        j->headers = curl_slist_append(j->headers, auth.data);
        buf_free(&auth);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->payload);
    buf_reset(&j->resp);
    j->stage = STAGE_POST;
    j->easy = c;
    curl_multi_add_handle(d->multi, c);
    return 0;
}

static int start_job(dispatch_t *d, job_t *j)
{
    if (!j->wh.client_credentials) return start_post(d, j, NULL);
    token_t *t = token_find(d, j->target_id);
    if (t && t->expires_ms > clock_now_ms() + 5000) return start_post(d, j, t->value);
    return start_token(d, j);
}

static store_conn_t *conn(dispatch_t *d)
{
    err_t e;
    store_conn_t *c = store_conn(d->store, &e);
    if (!c) log_kv(LOG_ERROR, "dispatch: no store connection", "error", e.message);
    return c;
}

static void row_done(dispatch_t *d, job_t *j)
{
    err_t e;
    store_conn_t *c = conn(d);
    if (c) store_exec(c, &e, "DELETE FROM outbox WHERE id = $1", "s", j->id);
}

static void row_retry(dispatch_t *d, job_t *j, const char *why)
{
    err_t e;
    store_conn_t *c = conn(d);
    if (!c) return;
    int64_t delay = d->o.retry_base_ms;
    for (int64_t i = 1; i < j->attempts && delay < d->o.retry_max_ms; i++)
        delay *= 2;
    if (delay > d->o.retry_max_ms) delay = d->o.retry_max_ms;
    uint32_t r;
    sec_random(&r, sizeof r);
    delay = delay / 2 + (int64_t)(r % (uint32_t)(delay + 1)); /* jitter: 0.5x .. 1.5x */
    int64_t due = clock_now_ms() + delay;
    atomic_fetch_add(&m_failed, 1);
    if (due > j->expires_at) {
        atomic_fetch_add(&m_gave_up, 1);
        log_kv(LOG_WARN, "callback given up", "outbox_id", j->id, "webhook_id", j->target_id,
               "error", why);
        store_exec(c, &e, "DELETE FROM outbox WHERE id = $1", "s", j->id);
        return;
    }
    log_kv(LOG_INFO, "callback failed, will retry", "outbox_id", j->id, "webhook_id", j->target_id,
           "error", why);
    store_exec(c, &e,
               "UPDATE outbox SET due_at = $1, lease_until = 0, last_error = $2 WHERE id = $3",
               "iss", due, why, j->id);
}

static void finish(dispatch_t *d, job_t *j, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(d->multi, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    char why[300];
    if (rc != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
    else
        snprintf(why, sizeof why, "HTTP %ld: %.200s", status, j->resp.data ? j->resp.data : "");
    int ok = rc == CURLE_OK && status >= 200 && status < 300;
    if (j->stage == STAGE_TOKEN) {
        json_t *tok = ok ? json_loads(j->resp.data ? j->resp.data : "", 0, NULL) : NULL;
        const char *access = json_string_value(json_object_get(tok, "access_token"));
        if (access) {
            json_int_t ttl = json_integer_value(json_object_get(tok, "expires_in"));
            token_forget(d, j->target_id);
            token_t *t = xcalloc(1, sizeof *t);
            memcpy(t->webhook_id, j->target_id, sizeof t->webhook_id);
            t->value = xstrdup(access);
            t->expires_ms = clock_now_ms() + (ttl > 0 ? ttl : 300) * 1000;
            t->next = d->tokens;
            d->tokens = t;
            json_decref(tok);
            if (start_post(d, j, t->value) == 0) return; /* same job, next stage */
        } else {
            json_decref(tok);
        }
        char w2[340];
        snprintf(w2, sizeof w2, "token endpoint: %s", ok ? "no access_token in answer" : why);
        row_retry(d, j, w2);
    } else if (ok) {
        atomic_fetch_add(&m_delivered, 1);
        row_done(d, j);
    } else {
        if (status == 401 && j->wh.client_credentials) token_forget(d, j->target_id);
        row_retry(d, j, why);
    }
    /* unlink and free */
    for (job_t **p = &d->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    d->inflight--;
    atomic_fetch_sub(&m_inflight, 1);
    job_free(j);
}

static int target_busy(dispatch_t *d, const char *target_id)
{
    int n = 0;
    for (job_t *j = d->jobs; j; j = j->next)
        n += strcmp(j->target_id, target_id) == 0;
    return n;
}

/* Claim up to the free slots: oldest due rows first, at most per_target per webhook
 * (counting what is already in flight). */
static void claim(dispatch_t *d)
{
    int free_slots = d->o.max_inflight - d->inflight;
    if (free_slots <= 0) return;
    store_conn_t *c = conn(d);
    if (!c) return;
    err_t e;
    int64_t now = clock_now_ms();
    if (store_begin(c, &e) < 0) return;
    store_stmt_t *st = store_query(
        c, &e,
        "SELECT id, project_id, target_id, payload, attempts, expires_at FROM ("
        "  SELECT o.*, ROW_NUMBER() OVER (PARTITION BY target_id ORDER BY due_at, id) AS rn"
        "  FROM outbox o WHERE due_at <= $1 AND lease_until < $1) AS ready "
        "WHERE rn <= $2 ORDER BY due_at, id LIMIT $3",
        "iii", now, (int64_t)d->o.per_target, (int64_t)free_slots * 2);
    job_t *claimed = NULL;
    int rc;
    while (st && (rc = store_step(st, &e)) == 1 && free_slots > 0) {
        const char *target = store_col_text(st, 2);
        int busy = target_busy(d, target);
        for (job_t *k = claimed; k; k = k->next)
            busy += strcmp(k->target_id, target) == 0;
        if (busy >= d->o.per_target) continue;
        job_t *j = xcalloc(1, sizeof *j);
        snprintf(j->id, sizeof j->id, "%s", store_col_text(st, 0));
        snprintf(j->project_id, sizeof j->project_id, "%s", store_col_text(st, 1));
        snprintf(j->target_id, sizeof j->target_id, "%s", target);
        j->payload = xstrdup(store_col_text(st, 3));
        j->attempts = store_col_int(st, 4) + 1;
        j->expires_at = store_col_int(st, 5);
        buf_init(&j->resp);
        j->next = claimed;
        claimed = j;
        free_slots--;
    }
    store_done(st);
    for (job_t *j = claimed; j; j = j->next)
        store_exec(c, &e, "UPDATE outbox SET lease_until = $1, attempts = $2 WHERE id = $3", "iis",
                   now + LEASE_MS, j->attempts, j->id);
    if (store_commit(c, &e) < 0) {
        while (claimed) {
            job_t *n = claimed->next;
            job_free(claimed);
            claimed = n;
        }
        return;
    }
    while (claimed) {
        job_t *j = claimed;
        claimed = j->next;
        convo_ctx_t cx = {.conn = c, .project_id = j->project_id, .seal_key = d->seal_key};
        if (convo_webhook_target(&cx, j->target_id, &j->wh, &e) < 0) {
            /* The webhook was deleted (or its secret cannot be opened): nothing to send to. */
            log_kv(LOG_INFO, "callback dropped", "outbox_id", j->id, "reason", e.message);
            row_done(d, j);
            job_free(j);
            continue;
        }
        j->next = d->jobs;
        d->jobs = j;
        d->inflight++;
        atomic_fetch_add(&m_inflight, 1);
        if (start_job(d, j) < 0) finish(d, j, CURLE_FAILED_INIT);
    }
}

static void *run(void *arg)
{
    dispatch_t *d = arg;
    int64_t next_claim = 0;
    while (!atomic_load(&d->stop)) {
        int64_t now = clock_mono_ms();
        if (now >= next_claim) {
            claim(d);
            next_claim = now + d->o.poll_ms;
        }
        int running = 0;
        curl_multi_perform(d->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(d->multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                job_t *j = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
                finish(d, j, msg->data.result);
            }
        struct curl_waitfd wfd = {.fd = nudge_fd(), .events = CURL_WAIT_POLLIN};
        int nfds = 0;
        int64_t wait = next_claim - clock_mono_ms();
        if (wait < 0) wait = 0;
        curl_multi_poll(d->multi, &wfd, nudge_fd() >= 0 ? 1 : 0, (int)wait, &nfds);
        if (wfd.revents) {
            nudge_drain();
            next_claim = 0; /* new work was committed: look now */
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
        if (j->easy) {
            curl_multi_remove_handle(d->multi, j->easy);
            curl_easy_cleanup(j->easy);
        }
        job_free(j);
        atomic_fetch_sub(&m_inflight, 1);
    }
    while (d->tokens) {
        token_t *t = d->tokens;
        d->tokens = t->next;
        free(t->value);
        free(t);
    }
    curl_multi_cleanup(d->multi);
    free(d);
}
