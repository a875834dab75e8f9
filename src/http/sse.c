/* sse.c: Server-Sent Events without a thread per client. An event stream is a libmicrohttpd
 * callback response: when its source has nothing to send, the connection is suspended
 * (MHD_suspend_connection, allowed from a content reader) and parked on one process-wide
 * list; http_sse_notify resumes every parked stream so each polls its source again. A
 * generation counter closes the race between "poll found nothing" and "suspend": a notify
 * in between makes the reader return 0 without suspending, and MHD calls it again. A small
 * ticker thread resumes parked streams every keepalive interval, so each writes a comment
 * line: that keeps proxies from timing out and reveals clients that went away (the write
 * fails and MHD ends the request, which frees the source). */
#define _GNU_SOURCE
#include "http/http_internal.h"
#include "base/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SSE_KEEPALIVE_MS 15000

typedef struct sse_stream {
    struct MHD_Connection *conn;
    http_sse_source_t src;
    buf_t pending;
    size_t off;
    int64_t last_write_ms;
    int parked;
    struct sse_stream *prev, *next; /* on the parked list while parked */
} sse_stream_t;

static pthread_mutex_t sse_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sse_cv = PTHREAD_COND_INITIALIZER;
static sse_stream_t *sse_parked;
static atomic_uint_fast64_t sse_gen;
static atomic_int sse_closing;
static atomic_int sse_open; /* streams alive */
static pthread_t sse_ticker;
static int sse_ticker_running;

static void park_unlink(sse_stream_t *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        sse_parked = st->next;
    if (st->next) st->next->prev = st->prev;
    st->prev = st->next = NULL;
    st->parked = 0;
}

/* Resume every parked stream. Called with sse_mu held. */
static void resume_all_locked(void)
{
    while (sse_parked) {
        sse_stream_t *st = sse_parked;
        park_unlink(st);
        MHD_resume_connection(st->conn);
    }
}

void http_sse_notify(void)
{
    atomic_fetch_add(&sse_gen, 1);
    pthread_mutex_lock(&sse_mu);
    resume_all_locked();
    pthread_mutex_unlock(&sse_mu);
}

static void *ticker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sse_mu);
    while (!atomic_load(&sse_closing)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += SSE_KEEPALIVE_MS / 1000;
        pthread_cond_timedwait(&sse_cv, &sse_mu, &ts);
        resume_all_locked(); /* each writes a keepalive if it has been quiet long enough */
    }
    pthread_mutex_unlock(&sse_mu);
    return NULL;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sse_stream_t *st = cls;
    if (atomic_load(&sse_closing)) return MHD_CONTENT_READER_END_OF_STREAM;
    if (st->off >= st->pending.len) {
        buf_reset(&st->pending);
        st->off = 0;
        uint64_t gen = atomic_load(&sse_gen);
        if (st->src.poll(st->src.ud, &st->pending) < 0 && st->pending.len == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (st->pending.len == 0) {
            int64_t now = clock_mono_ms();
            if (now - st->last_write_ms >= SSE_KEEPALIVE_MS) {
                buf_puts(&st->pending, ":\n\n");
            } else {
                pthread_mutex_lock(&sse_mu);
                if (atomic_load(&sse_gen) != gen || atomic_load(&sse_closing)) {
                    pthread_mutex_unlock(&sse_mu); /* news arrived meanwhile: poll again */
                    return 0;
                }
                st->parked = 1;
                st->next = sse_parked;
                if (sse_parked) sse_parked->prev = st;
                sse_parked = st;
                MHD_suspend_connection(st->conn);
                pthread_mutex_unlock(&sse_mu);
                return 0;
            }
        }
    }
    size_t n = st->pending.len - st->off;
    if (n > max) n = max;
    memcpy(out, st->pending.data + st->off, n);
    st->off += n;
    st->last_write_ms = clock_mono_ms();
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse_stream_t *st = cls;
    pthread_mutex_lock(&sse_mu);
    if (st->parked) park_unlink(st);
    pthread_mutex_unlock(&sse_mu);
    if (st->src.free) st->src.free(st->src.ud);
    buf_free(&st->pending);
    free(st);
    atomic_fetch_sub(&sse_open, 1);
}

void http_reply_sse(http_req_t *r, const http_sse_source_t *src)
{
    if (r->replied) return;
    r->replied = 1;
    r->status = 200;
    r->sse = xmalloc(sizeof *src);
    memcpy(r->sse, src, sizeof *src);
}

enum MHD_Result http_sse_queue(http_req_t *r)
{
    sse_stream_t *st = xcalloc(1, sizeof *st);
    st->conn = r->conn;
    st->src = *r->sse;
    free(r->sse);
    r->sse = NULL;
    buf_init(&st->pending);
    buf_puts(&st->pending, ": stream open\n\n"); /* flush headers at once */
    st->last_write_ms = clock_mono_ms();
    atomic_fetch_add(&sse_open, 1);
    pthread_mutex_lock(&sse_mu);
    if (!sse_ticker_running && pthread_create(&sse_ticker, NULL, ticker_main, NULL) == 0)
        sse_ticker_running = 1;
    pthread_mutex_unlock(&sse_mu);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, st, sse_free);
    if (!resp) {
        sse_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (http_header_kv_t *h = r->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

void http_sse_shutdown(void)
{
    atomic_store(&sse_closing, 1);
    pthread_mutex_lock(&sse_mu);
    resume_all_locked();
    pthread_cond_broadcast(&sse_cv);
    int join = sse_ticker_running;
    sse_ticker_running = 0;
    pthread_mutex_unlock(&sse_mu);
    if (join) pthread_join(sse_ticker, NULL);
}

void http_sse_reset(void)
{
    atomic_store(&sse_closing, 0);
}

int http_sse_open_count(void)
{
    return atomic_load(&sse_open);
}

void http_sse_format(buf_t *out, const char *id, const char *event, const char *data)
{
    if (id && *id) buf_printf(out, "id: %s\n", id);
    if (event && *event) buf_printf(out, "event: %s\n", event);
    /* Each line of data gets its own field; a JSON dump has none, text may. */
    const char *p = data ? data : "";
    do {
        size_t n = strcspn(p, "\r\n");
        buf_puts(out, "data: ");
        buf_append(out, p, n);
        buf_puts(out, "\n");
        p += n;
        if (*p == '\r' && p[1] == '\n') p++;
        if (*p)
            p++;
        else
            break;
    } while (1);
    buf_puts(out, "\n");
}
