/* callback.c: the 'callback' job kind: POST a Conversation API callback to a webhook,
 * signed as the Sinch SDK's validateWebhookSignature checks (base64 HMAC-SHA256 of
 * body.nonce.timestamp keyed with the webhook secret), with an OAuth2 bearer token when
 * the webhook has client_credentials. Stages: TOKEN (client-credentials grant; tokens are
 * cached per webhook until they expire) and POST. */
#define _GNU_SOURCE
#include "dispatch/dispatch_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/sec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STAGE_TOKEN = 1, STAGE_POST };

struct token {
    char webhook_id[ULID_LEN + 1];
    char *value;
    int64_t expires_ms;
    struct token *next;
};

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

void callback_tokens_free(dispatch_t *d)
{
    while (d->tokens) {
        token_t *t = d->tokens;
        d->tokens = t->next;
        free(t->value);
        free(t);
    }
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
    CURL *c = dispatch_easy(d, j, endpoint);
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
    free(j->form);
    j->form = buf_steal(&f);
    curl_slist_free_all(j->headers);
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
    CURL *c = dispatch_easy(d, j, j->wh.target);
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
    j->stage = STAGE_POST;
    j->easy = c;
    curl_multi_add_handle(d->multi, c);
    return 0;
}

static void retry(dispatch_t *d, job_t *j, const char *why)
{
    atomic_fetch_add(&dispatch_m_failed, 1);
    if (dispatch_row_backoff(d, j, why)) {
        log_kv(LOG_INFO, "callback failed, will retry", "outbox_id", j->id, "webhook_id",
               j->target_id, "error", why);
        return;
    }
    atomic_fetch_add(&dispatch_m_gave_up, 1);
    log_kv(LOG_WARN, "callback given up", "outbox_id", j->id, "webhook_id", j->target_id, "error",
           why);
    dispatch_row_done(d, j);
}

int callback_start(dispatch_t *d, job_t *j)
{
    err_t e;
    convo_ctx_t cx = dispatch_cx(d, j);
    if (!cx.conn) return 0;
    if (convo_webhook_target(&cx, j->target_id, &j->wh, &e) < 0) {
        /* The webhook was deleted (or its secret cannot be opened): nothing to send to. */
        log_kv(LOG_INFO, "callback dropped", "outbox_id", j->id, "reason", e.message);
        dispatch_row_done(d, j);
        return 0;
    }
    int rc;
    if (!j->wh.client_credentials) {
        rc = start_post(d, j, NULL);
    } else {
        token_t *t = token_find(d, j->target_id);
        if (t && t->expires_ms > clock_now_ms() + 5000) {
            rc = start_post(d, j, t->value);
        } else {
            /* One token request per webhook at a time: the others wait for its answer. */
            for (job_t *o = d->jobs; o; o = o->next)
                if (o != j && o->stage == STAGE_TOKEN && strcmp(o->target_id, j->target_id) == 0) {
                    store_exec(cx.conn, &e,
                               "UPDATE outbox SET due_at = $1, lease_until = 0, attempts = "
                               "attempts - 1 WHERE id = $2",
                               "is", clock_now_ms() + 50, j->id);
                    return 0;
                }
            rc = start_token(d, j);
        }
    }
    if (rc < 0) {
        retry(d, j, "cannot build the request");
        return 0;
    }
    return 1;
}

int callback_finish(dispatch_t *d, job_t *j, CURLcode rc, long status)
{
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
            if (start_post(d, j, t->value) == 0) return 1; /* same job, next stage */
        } else {
            json_decref(tok);
        }
        char w2[340];
        snprintf(w2, sizeof w2, "token endpoint: %s", ok ? "no access_token in answer" : why);
        retry(d, j, w2);
    } else if (ok) {
        atomic_fetch_add(&dispatch_m_delivered, 1);
        dispatch_row_done(d, j);
    } else {
        if (status == 401 && j->wh.client_credentials) token_forget(d, j->target_id);
        retry(d, j, why);
    }
    return 0;
}
