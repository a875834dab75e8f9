/* test_http_async.c: replies that outlive their handler on a real HTTP server read with
 * libcurl: Server-Sent Events (http_reply_sse) and deferred replies (http_defer). Both
 * must park the connection without holding a server thread, so each test runs the server
 * with one thread and shows another request answered meanwhile. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/buf.h"
#include "http/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- SSE ---- */

static atomic_int sse_available; /* events the source may send */
static atomic_int sse_freed;

typedef struct {
    int sent;
} src_t;

static int src_poll(void *ud, buf_t *out)
{
    src_t *s = ud;
    int avail = atomic_load(&sse_available);
    while (s->sent < avail) {
        char id[16], data[32];
        snprintf(id, sizeof id, "%d", s->sent + 1);
        snprintf(data, sizeof data, "{\"n\":%d}", s->sent + 1);
        http_sse_format(out, id, "tick", data);
        s->sent++;
    }
    return s->sent >= 3 ? -1 : 0; /* three events, then the stream ends */
}

static void src_free(void *ud)
{
    free(ud);
    atomic_fetch_add(&sse_freed, 1);
}

static void sse_handler(http_req_t *req)
{
    http_sse_source_t src = {src_poll, src_free, calloc(1, sizeof(src_t))};
    http_reply_sse(req, &src);
}

static void hello_handler(http_req_t *req)
{
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

/* A plain request to url is answered at once (the server thread is not held). */
static void assert_answers(const char *url)
{
    CURL *h = curl_easy_init();
    buf_t hb;
    buf_init(&hb);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &hb);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    assert_non_null(strstr(hb.data, "\"ok\""));
    curl_easy_cleanup(h);
    buf_free(&hb);
}

static void *producer(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 3; i++) {
        usleep(100000);
        atomic_store(&sse_available, i);
        http_sse_notify();
    }
    return NULL;
}

static void test_sse_streams_without_holding_a_thread(void **state)
{
    (void)state;
    http_route_t routes[] = {{"GET", "/events", sse_handler, 0},
                             {"GET", "/hello", hello_handler, 0}};
    http_server_opts_t o = {
        .listen = "127.0.0.1:0", .threads = 1, .max_body = 1024, .routes = routes, .nroutes = 2};
    err_t e = {0};
    http_server_t *srv = http_server_start(&o, &e);
    assert_non_null(srv);
    char url[64], hello[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/events", http_server_port(srv));
    snprintf(hello, sizeof hello, "http://127.0.0.1:%d/hello", http_server_port(srv));

    pthread_t prod;
    atomic_store(&sse_available, 0);
    /* The stream is parked while idle: with ONE server thread, another request still gets
     * answered while the stream waits. */
    CURLM *multi = curl_multi_init();
    CURL *ev = curl_easy_init();
    buf_t body;
    buf_init(&body);
    curl_easy_setopt(ev, CURLOPT_URL, url);
    curl_easy_setopt(ev, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(ev, CURLOPT_WRITEDATA, &body);
    curl_multi_add_handle(multi, ev);
    int running = 1;
    for (int i = 0; i < 20; i++) { /* let the stream open and park */
        curl_multi_perform(multi, &running);
        curl_multi_wait(multi, NULL, 0, 10, NULL);
    }
    assert_answers(hello);

    pthread_create(&prod, NULL, producer, NULL);
    for (int i = 0; i < 500 && running; i++) {
        curl_multi_perform(multi, &running);
        curl_multi_wait(multi, NULL, 0, 10, NULL);
    }
    pthread_join(prod, NULL);
    assert_int_equal(running, 0); /* the source ended the stream after three events */
    long code = 0;
    curl_easy_getinfo(ev, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body.data, "id: 1\nevent: tick\ndata: {\"n\":1}\n\n"));
    assert_non_null(strstr(body.data, "id: 3\nevent: tick\ndata: {\"n\":3}\n\n"));
    curl_multi_remove_handle(multi, ev);
    curl_easy_cleanup(ev);
    curl_multi_cleanup(multi);
    buf_free(&body);
    http_server_stop(srv, 2);
    assert_int_equal(atomic_load(&sse_freed), 1);
}

static void test_sse_format_splits_lines(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    http_sse_format(&b, NULL, NULL, "a\nb");
    assert_string_equal(b.data, "data: a\ndata: b\n\n");
    buf_free(&b);
}

/* ---- deferred replies ---- */

static http_req_t *parked_req;
static pthread_mutex_t parked_mu = PTHREAD_MUTEX_INITIALIZER;

static void defer_handler(http_req_t *req)
{
    http_defer(req);
    pthread_mutex_lock(&parked_mu);
    parked_req = req;
    pthread_mutex_unlock(&parked_mu);
}

static void *completer(void *arg)
{
    (void)arg;
    http_req_t *r = NULL;
    for (int i = 0; i < 300 && !r; i++) {
        usleep(10000);
        pthread_mutex_lock(&parked_mu);
        r = parked_req;
        pthread_mutex_unlock(&parked_mu);
    }
    if (!r) return NULL;
    usleep(200000); /* answer well after the handler returned */
    http_add_header(r, "X-Late", "yes");
    http_reply_raw(r, 201, "text/plain", "later", 5);
    http_complete(r);
    return NULL;
}

static void test_deferred_reply_from_another_thread(void **state)
{
    (void)state;
    http_route_t routes[] = {{"GET", "/slow", defer_handler, 0},
                             {"GET", "/hello", hello_handler, 0}};
    http_server_opts_t o = {
        .listen = "127.0.0.1:0", .threads = 1, .max_body = 1024, .routes = routes, .nroutes = 2};
    err_t e = {0};
    http_server_t *srv = http_server_start(&o, &e);
    assert_non_null(srv);
    char url[64], hello[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", http_server_port(srv));
    snprintf(hello, sizeof hello, "http://127.0.0.1:%d/hello", http_server_port(srv));
    parked_req = NULL;
    pthread_t t;
    pthread_create(&t, NULL, completer, NULL);

    CURLM *multi = curl_multi_init();
    CURL *slow = curl_easy_init();
    buf_t body, hdrs;
    buf_init(&body);
    buf_init(&hdrs);
    curl_easy_setopt(slow, CURLOPT_URL, url);
    curl_easy_setopt(slow, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(slow, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(slow, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(slow, CURLOPT_HEADERDATA, &hdrs);
    curl_multi_add_handle(multi, slow);
    int running = 1;
    for (int i = 0; i < 10; i++) {
        curl_multi_perform(multi, &running);
        curl_multi_wait(multi, NULL, 0, 10, NULL);
    }
    /* the single server thread is free while /slow waits */
    assert_answers(hello);
    assert_int_equal(running, 1);

    for (int i = 0; i < 500 && running; i++) {
        curl_multi_perform(multi, &running);
        curl_multi_wait(multi, NULL, 0, 10, NULL);
    }
    pthread_join(t, NULL);
    long code = 0;
    curl_easy_getinfo(slow, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 201);
    assert_string_equal(body.data, "later");
    assert_non_null(strstr(hdrs.data, "X-Late: yes"));
    curl_multi_remove_handle(multi, slow);
    curl_easy_cleanup(slow);
    curl_multi_cleanup(multi);
    buf_free(&body);
    buf_free(&hdrs);
    http_server_stop(srv, 2);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_streams_without_holding_a_thread),
        cmocka_unit_test(test_sse_format_splits_lines),
        cmocka_unit_test(test_deferred_reply_from_another_thread),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
