/* metrics.c: process-wide HTTP counters (requests by route and status, a latency
 * histogram) kept in relaxed atomics, rendered in Prometheus text format. Status codes are
 * counted in a dense 100..599 array per route: a few KiB per route buys lock-free counting. */
#include "http/http_internal.h"
#include "base/prom.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_MIN  100
#define STATUS_SPAN 500

static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct {
    atomic_uint_fast64_t status[STATUS_SPAN];
} route_counts_t;

static const http_route_t *m_routes;
static size_t m_nroutes;
static route_counts_t *m_counts; /* m_nroutes + 1: the last one is "unmatched" */
static atomic_uint_fast64_t m_buckets[NBUCKETS + 1];
static atomic_uint_fast64_t m_count;
static atomic_uint_fast64_t m_sum_us;

void http_metrics_init(const http_route_t *routes, size_t n)
{
    free(m_counts);
    m_routes = routes;
    m_nroutes = n;
    m_counts = xcalloc(n + 1, sizeof *m_counts);
}

void http_metrics_shutdown(void)
{
    free(m_counts);
    m_counts = NULL;
    m_nroutes = 0;
}

void http_metrics_record(int route, int status, int64_t ns)
{
    if (!m_counts) return;
    size_t ri = (route >= 0 && (size_t)route < m_nroutes) ? (size_t)route : m_nroutes;
    if (status >= STATUS_MIN && status < STATUS_MIN + STATUS_SPAN)
        atomic_fetch_add_explicit(&m_counts[ri].status[status - STATUS_MIN], 1,
                                  memory_order_relaxed);
    double secs = (double)ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && secs > lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_sum_us, (uint64_t)(ns / 1000), memory_order_relaxed);
}

void http_metrics_render(buf_t *out)
{
    prom_head(out, "counter", "parley_http_requests_total", "HTTP requests by route and status.");
    for (size_t r = 0; m_counts && r <= m_nroutes; r++)
        for (int s = 0; s < STATUS_SPAN; s++) {
            uint64_t v = atomic_load_explicit(&m_counts[r].status[s], memory_order_relaxed);
            if (!v) continue;
            if (r < m_nroutes)
                buf_printf(out, "parley_http_requests_total{route=\"%s %s\",status=\"%d\"} %llu\n",
                           m_routes[r].method, m_routes[r].pattern, s + STATUS_MIN,
                           (unsigned long long)v);
            else
                buf_printf(out,
                           "parley_http_requests_total{route=\"unmatched\",status=\"%d\"} %llu\n",
                           s + STATUS_MIN, (unsigned long long)v);
        }
    prom_head(out, "histogram", "parley_http_request_duration_seconds",
              "Time from first byte to reply.");
    uint64_t cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += atomic_load_explicit(&m_buckets[b], memory_order_relaxed);
        buf_printf(out, "parley_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                   lat_bounds[b], (unsigned long long)cum);
    }
    cum += atomic_load_explicit(&m_buckets[NBUCKETS], memory_order_relaxed);
    buf_printf(out, "parley_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
               (unsigned long long)cum);
    buf_printf(out, "parley_http_request_duration_seconds_sum %.6f\n",
               (double)atomic_load(&m_sum_us) / 1e6);
    buf_printf(out, "parley_http_request_duration_seconds_count %llu\n",
               (unsigned long long)atomic_load(&m_count));
}
