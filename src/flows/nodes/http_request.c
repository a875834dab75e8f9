/* http_request.c: the `http request` node (Node-RED 21-httprequest.js) over libcurl.
 * Fields: method (GET, POST, PUT, DELETE, PATCH, HEAD, or "use" = msg.method), url (or
 * msg.url; {{mustache}} over the msg), ret txt|bin|obj, paytoqs ignore|query|body,
 * headers [{keyType, keyValue, valueType, valueValue}] plus msg.headers, senderr, tls (a
 * tls-config node: verifyservercert), authType basic|bearer with credentials
 * {user, password} on the node. msg.requestTimeout (ms) overrides the default 120 s.
 *
 * Non-blocking: requests run on one process-wide libcurl multi thread (started with the
 * first http request node, stopped with the last); each result comes back to the node's
 * project executor through flows_post, so a slow server never holds an executor. */
#include "base/buf.h"
#include "flows/mustache.h"
#include "flows/node.h"
#include "flows/nodes/io_common.h"
#include "flows/props.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HREQ_TIMEOUT_MS 120000
#define HREQ_MAX_BODY   (64 * 1024 * 1024)

typedef struct hreq {
    struct hreq *next;
    CURL *easy;
    struct curl_slist *hdrs;
    char *project, *node_id, *url, *body;
    json_t *msg;
    buf_t resp;
    json_t *resp_headers;
    flows_origin_t *origin; /* held while the request is in flight */
    CURLcode code;
    long status;
    char errbuf[CURL_ERROR_SIZE];
} hreq_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static CURLM *multi;
static pthread_t thread;
static int users, stopping;
static hreq_t *queue;

static void hreq_free(void *arg)
{
    hreq_t *r = arg;
    if (!r) return;
    if (r->easy) curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->project);
    free(r->node_id);
    free(r->url);
    free(r->body);
    json_decref(r->msg);
    json_decref(r->resp_headers);
    buf_free(&r->resp);
    flows_origin_drop(r->origin);
    free(r);
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    hreq_t *r = ud;
    size_t n = sz * nm;
    if (r->resp.len + n > HREQ_MAX_BODY) return 0;
    buf_append(&r->resp, p, n);
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    hreq_t *r = ud;
    size_t n = sz * nm;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (redirect): start over */
        json_object_clear(r->resp_headers);
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon) return n;
    size_t kl = (size_t)(colon - p);
    char key[128];
    if (kl >= sizeof key) return n;
    for (size_t i = 0; i < kl; i++)
        key[i] = (char)tolower((unsigned char)p[i]);
    key[kl] = 0;
    const char *v = colon + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    json_t *val = json_stringn(v, (size_t)(end - v));
    if (!val) return n;
    json_t *old = json_object_get(r->resp_headers, key);
    if (!strcmp(key, "set-cookie")) { /* Node's http: set-cookie is always an array */
        if (!old)
            json_object_set_new(r->resp_headers, key, json_pack("[o]", val));
        else
            json_array_append_new(old, val);
    } else if (old && json_is_string(old)) {
        json_object_set_new(r->resp_headers, key,
                            json_sprintf("%s, %s", json_string_value(old), json_string_value(val)));
        json_decref(val);
    } else {
        json_object_set_new(r->resp_headers, key, val);
    }
    return n;
}

static void deliver(flows_node_t *n, void *arg);

static void *multi_main(void *arg)
{
    (void)arg;
    hreq_t *inflight = NULL; /* this thread's: requests inside the multi handle */
    for (;;) {
        pthread_mutex_lock(&mu);
        int stop = stopping;
        hreq_t *q = queue;
        queue = NULL;
        pthread_mutex_unlock(&mu);
        for (; q;) {
            hreq_t *next = q->next;
            curl_multi_add_handle(multi, q->easy);
            q->next = inflight;
            inflight = q;
            q = next;
        }
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            hreq_t *r = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            r->code = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
            char *eff = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_EFFECTIVE_URL, &eff);
            if (eff) {
                free(r->url);
                r->url = strdup(eff);
            }
            curl_multi_remove_handle(multi, r->easy);
            for (hreq_t **pp = &inflight; *pp; pp = &(*pp)->next)
                if (*pp == r) {
                    *pp = r->next;
                    break;
                }
            r->next = NULL;
            flows_post_from(r->origin, r->project, r->node_id, deliver, r, hreq_free);
        }
        if (stop) break;
        curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    /* shutdown: drop what is still in flight */
    while (inflight) {
        hreq_t *r = inflight;
        inflight = r->next;
        curl_multi_remove_handle(multi, r->easy);
        hreq_free(r);
    }
    return NULL;
}

/* Start and stop are serialised (an executor may start a node while another stops one). */
static pthread_mutex_t life_mu = PTHREAD_MUTEX_INITIALIZER;

static void users_add(void)
{
    pthread_mutex_lock(&life_mu);
    pthread_mutex_lock(&mu);
    if (users++ == 0) {
        multi = curl_multi_init();
        stopping = 0;
        pthread_create(&thread, NULL, multi_main, NULL);
    }
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&life_mu);
}

static void users_drop(void)
{
    pthread_mutex_lock(&life_mu);
    pthread_mutex_lock(&mu);
    int last = --users == 0;
    if (last) stopping = 1;
    pthread_mutex_unlock(&mu);
    if (!last) {
        pthread_mutex_unlock(&life_mu);
        return;
    }
    curl_multi_wakeup(multi);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&mu);
    while (queue) {
        hreq_t *q = queue;
        queue = q->next;
        hreq_free(q);
    }
    curl_multi_cleanup(multi);
    multi = NULL;
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&life_mu);
}

/* ---- the node ---- */

static void hreq_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *m = io_str(cfg, "method", "GET");
    static const char *const ms[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "use", NULL};
    int ok = 0;
    for (int i = 0; ms[i]; i++)
        ok |= !strcasecmp(m, ms[i]);
    if (!ok) flows_problem(p, id, "method", "method \"%s\" is not supported", m);
    const char *ret = io_str(cfg, "ret", "txt");
    if (strcmp(ret, "txt") && strcmp(ret, "bin") && strcmp(ret, "obj"))
        flows_problem(p, id, "ret", "ret must be txt, bin or obj");
    const char *url = io_str(cfg, "url", "");
    err_t e = {0};
    flows_mustache_t *t = flows_mustache_compile(url, strlen(url), &e);
    if (!t) flows_problem(p, id, "url", "bad {{template}} in url: %s", e.message);
    flows_mustache_free(t);
    const char *at = io_str(cfg, "authType", "");
    if (*at && strcmp(at, "basic") && strcmp(at, "bearer"))
        flows_problem(p, id, "authType", "authType \"%s\" is not supported (basic, bearer)", at);
}

static int hreq_start(flows_node_t *n, err_t *e)
{
    (void)n;
    (void)e;
    users_add();
    return 0;
}

static void hreq_stop(flows_node_t *n)
{
    (void)n;
    users_drop();
}

/* querystring.stringify for a flat object */
static void qs_append(buf_t *b, json_t *obj)
{
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach(obj, k, v)
    {
        json_t *vals = json_is_array(v) ? v : NULL;
        size_t cnt = vals ? json_array_size(vals) : 1;
        for (size_t i = 0; i < cnt; i++) {
            json_t *x = vals ? json_array_get(vals, i) : v;
            if (!first) buf_puts(b, "&");
            first = 0;
            char *ek = curl_easy_escape(NULL, k, 0);
            buf_puts(b, ek);
            curl_free(ek);
            buf_puts(b, "=");
            buf_t s;
            buf_init(&s);
            if (json_is_string(x) || json_is_number(x) || json_is_boolean(x))
                flows_mustache_str(x, &s);
            char *ev = curl_easy_escape(NULL, s.data ? s.data : "", (int)s.len);
            buf_puts(b, ev);
            curl_free(ev);
            buf_free(&s);
        }
    }
}

static int has_hdr(json_t *h, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) if (!strcasecmp(k, name)) return 1;
    return 0;
}

static const char *hdr_get(json_t *h, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) if (!strcasecmp(k, name) &&
                                     json_is_string(v)) return json_string_value(v);
    return NULL;
}

static void hreq_input(flows_node_t *n, json_t *msg)
{
    json_t *cfg = flows_node_config(n);
    const char *node_url = io_str(cfg, "url", "");
    buf_t url;
    buf_init(&url);
    if (*node_url) {
        if (strstr(node_url, "{{")) {
            err_t e = {0};
            char *u = flows_mustache_render_str(node_url, msg, NULL, &e);
            if (!u) {
                buf_free(&url);
                flows_error(n, msg, "%s", e.message);
                return;
            }
            buf_puts(&url, u);
            free(u);
        } else {
            buf_puts(&url, node_url);
        }
    } else if (json_is_string(json_object_get(msg, "url"))) {
        buf_puts(&url, json_string_value(json_object_get(msg, "url")));
    }
    if (!url.len) {
        buf_free(&url);
        flows_error(n, msg, "No url specified");
        return;
    }
    if (strstr(url.data, "://") && strncmp(url.data, "http", 4) != 0) {
        flows_warn(n, "Invalid transport requested");
        flows_status(n, "red", "ring", "Invalid transport requested");
        buf_free(&url);
        json_decref(msg);
        return;
    }
    if (strncmp(url.data, "http://", 7) && strncmp(url.data, "https://", 8)) {
        buf_t u2;
        buf_init(&u2);
        buf_puts(&u2, *io_str(cfg, "tls", "") ? "https://" : "http://");
        buf_puts(&u2, url.data);
        buf_free(&url);
        url = u2;
    }
    char method[16];
    snprintf(method, sizeof method, "%s", io_str(cfg, "method", "GET"));
    if (!strcmp(method, "use")) {
        const char *mm = io_str(msg, "method", "GET");
        snprintf(method, sizeof method, "%s", mm);
    }
    for (char *c = method; *c; c++)
        *c = (char)toupper((unsigned char)*c);

    /* headers: msg.headers, then the node's list */
    json_t *hdrs = json_object();
    json_t *mh = json_object_get(msg, "headers");
    if (json_is_object(mh)) {
        const char *k;
        json_t *v;
        json_object_foreach(mh, k, v) if (strcmp(k, "x-node-red-request-node") != 0)
            json_object_set(hdrs, k, v);
    }
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(cfg, "headers"), i, h)
    {
        const char *kt = io_str(h, "keyType", "other"), *kv = io_str(h, "keyValue", "");
        const char *vt = io_str(h, "valueType", "other"), *vv = io_str(h, "valueValue", "");
        const char *key = !strcmp(kt, "other") ? kv : kt;
        const char *val = !strcmp(vt, "other") ? vv : vt;
        if (*key) json_object_set_new(hdrs, key, json_string(val));
    }
    const char *auth = io_str(cfg, "authType", "");
    json_t *cred = json_object_get(cfg, "credentials");
    if (!strcmp(auth, "bearer"))
        json_object_set_new(hdrs, "Authorization",
                            json_sprintf("Bearer %s", io_str(cred, "password", "")));

    hreq_t *r = xcalloc(1, sizeof *r);
    buf_init(&r->resp);
    r->resp_headers = json_object();
    json_t *payload = json_object_get(msg, "payload");
    const char *paytoqs = io_str(cfg, "paytoqs", "ignore");
    if (json_is_true(json_object_get(cfg, "paytoqs"))) paytoqs = "query";
    buf_t body;
    buf_init(&body);
    int has_body = 0;
    if (strcmp(method, "GET") && strcmp(method, "HEAD") && payload) {
        has_body = 1;
        if (json_is_string(payload) || json_is_number(payload))
            flows_mustache_str(payload, &body);
        else {
            const char *ct = hdr_get(hdrs, "content-type");
            if (ct && !strcasecmp(ct, "application/x-www-form-urlencoded") &&
                json_is_object(payload))
                qs_append(&body, payload);
            else {
                char *j = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
                buf_puts(&body, j);
                free(j);
                if (!has_hdr(hdrs, "content-type"))
                    json_object_set_new(hdrs, "content-type", json_string("application/json"));
            }
        }
    } else if (!strcmp(method, "GET") && payload && !strcmp(paytoqs, "query")) {
        if (!json_is_object(payload)) {
            buf_free(&url);
            buf_free(&body);
            json_decref(hdrs);
            hreq_free(r);
            flows_error(n, msg, "Invalid payload");
            return;
        }
        buf_puts(&url, strchr(url.data, '?') ? (url.data[url.len - 1] == '?' ? "" : "&") : "?");
        qs_append(&url, payload);
    } else if (!strcmp(method, "GET") && payload && !strcmp(paytoqs, "body")) {
        has_body = 1;
        if (json_is_string(payload) || json_is_number(payload))
            flows_mustache_str(payload, &body);
        else {
            char *j = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
            buf_puts(&body, j);
            free(j);
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(hdrs, k, v)
    {
        buf_t line;
        buf_init(&line);
        buf_printf(&line, "%s: ", k);
        flows_mustache_str(v, &line);
        r->hdrs = curl_slist_append(r->hdrs, line.data);
        buf_free(&line);
    }
    /* libcurl would label a body form-urlencoded; Node-RED sends no type it was not given */
    if (has_body && !has_hdr(hdrs, "content-type"))
        r->hdrs = curl_slist_append(r->hdrs, "Content-Type:");
    json_decref(hdrs);
    r->hdrs = curl_slist_append(r->hdrs, "Expect:");

    int64_t timeout = HREQ_TIMEOUT_MS;
    json_t *rt = json_object_get(msg, "requestTimeout");
    if (rt) {
        double t = json_is_number(rt) ? json_number_value(rt) : -1;
        if (!json_is_number(rt))
            flows_warn(n, "Timeout value is not a valid number, ignoring");
        else if (t < 1)
            flows_warn(n, "Timeout value is negative, ignoring");
        else
            timeout = (int64_t)t;
    }

    r->project = strdup(flows_node_project(n));
    r->node_id = strdup(flows_node_id(n));
    r->origin = flows_origin_hold(); /* the reply is more work of the same entry message */
    r->url = buf_steal(&url);
    r->body = has_body ? buf_steal(&body) : NULL;
    size_t body_len = r->body ? strlen(r->body) : 0;
    buf_free(&body);
    r->msg = msg;
    CURL *c = r->easy = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 21L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") || has_body)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (has_body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (!strcmp(auth, "basic")) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, io_str(cred, "user", ""));
        curl_easy_setopt(c, CURLOPT_PASSWORD, io_str(cred, "password", ""));
    }
    flows_node_t *tls = flows_node_ref(n, "tls");
    if (tls && !io_bool(flows_node_config(tls), "verifyservercert", 1)) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    flows_status(n, "blue", "dot", "requesting");
    pthread_mutex_lock(&mu);
    r->next = queue;
    queue = r;
    CURLM *mm = multi;
    pthread_mutex_unlock(&mu);
    if (mm) curl_multi_wakeup(mm);
}

static void deliver(flows_node_t *n, void *arg)
{
    hreq_t *r = arg;
    json_t *cfg = flows_node_config(n);
    json_t *msg = r->msg;
    r->msg = NULL;
    if (r->code != CURLE_OK) {
        const char *code = r->code == CURLE_OPERATION_TIMEDOUT     ? "ETIMEDOUT"
                           : r->code == CURLE_COULDNT_CONNECT      ? "ECONNREFUSED"
                           : r->code == CURLE_COULDNT_RESOLVE_HOST ? "ENOTFOUND"
                                                                   : "EPROTO";
        const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->code);
        if (r->code == CURLE_OPERATION_TIMEDOUT) {
            flows_error(n, flows_msg_clone(msg), "No response object");
            flows_status(n, "red", "ring", "No response object");
        } else {
            flows_error(n, flows_msg_clone(msg), "RequestError: %s", why);
            flows_status(n, "red", "ring", code);
        }
        json_object_set_new(msg, "payload", json_sprintf("RequestError: %s : %s", why, r->url));
        json_object_set_new(msg, "statusCode", json_string(code));
        hreq_free(r);
        if (!io_bool(cfg, "senderr", 0))
            flows_send(n, 0, msg);
        else
            json_decref(msg);
        return;
    }
    json_object_set_new(msg, "statusCode", json_integer(r->status));
    json_object_set(msg, "headers", r->resp_headers);
    json_object_set_new(msg, "responseUrl", json_string(r->url));
    json_object_set_new(msg, "redirectList", json_array());
    json_object_set_new(msg, "retry", json_integer(0));
    const char *ret = io_str(cfg, "ret", "txt");
    json_t *payload;
    if (!strcmp(ret, "bin")) {
        payload = json_array();
        for (size_t i = 0; i < r->resp.len; i++)
            json_array_append_new(payload, json_integer((unsigned char)r->resp.data[i]));
    } else {
        const char *text = r->resp.data ? r->resp.data : "";
        size_t len = r->resp.len;
        if (!strcmp(ret, "obj") && r->status == 204) text = "{}", len = 2;
        payload = NULL;
        if (!strcmp(ret, "obj")) {
            payload = json_loadb(text, len, JSON_DECODE_ANY, NULL);
            if (!payload) flows_warn(n, "JSON parse error");
        }
        if (!payload) payload = json_stringn(text, len);
        if (!payload) payload = json_string("");
    }
    json_object_set_new(msg, "payload", payload);
    hreq_free(r);
    flows_status(n, NULL, NULL, NULL);
    flows_send(n, 0, msg);
}

/* tls-config (Node-RED 05-tls.js): only verifyservercert is used (certificate files on
 * the Node-RED host do not exist here). */
const flows_node_type_t flows_type_tls_config = {
    .type = "tls-config",
    .config_only = 1,
};

const flows_node_type_t flows_type_http_request = {
    .type = "http request",
    .validate = hreq_validate,
    .start = hreq_start,
    .input = hreq_input,
    .stop = hreq_stop,
};
