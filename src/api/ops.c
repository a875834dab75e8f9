/* ops.c: operations endpoints. /healthz is liveness only (it answers while the process
 * serves HTTP and touches nothing else, so it doubles as the HTTP baseline); /metrics is
 * Prometheus text. */
#include "api/api.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/prom.h"
#include "dispatch/dispatch.h"
#include "flows/flows.h"
#include "privacy/privacy.h"

void api_healthz(http_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_reply_raw(req, 200, "application/json", body, sizeof body - 1);
}

void api_metrics(http_req_t *req)
{
    api_ctx_t *ctx = http_ctx(req);
    buf_t b;
    buf_init(&b);
    http_metrics_render(&b);
    dispatch_metrics_render(&b);
    flows_metrics_render(&b);
    privacy_metrics_render(&b);
    store_group_stats_t g;
    store_group_stats(&g);
    prom_metric(&b, "counter", "parley_group_commits_total",
                "Group-commit transactions (store.group_commit).", g.batches);
    prom_metric(&b, "counter", "parley_group_commit_units_total",
                "Writes (sends) committed in group commits.", g.units);
    prom_metric(&b, "counter", "parley_group_commit_failures_total",
                "Group commits that failed (each write answered with an error).", g.failed_commits);
    uint64_t commits, frames, writes;
    store_wal_stats(&commits, &frames, &writes);
    prom_metric(&b, "counter", "parley_store_commits_total", "Commits that wrote to the store.",
                commits);
    prom_metric(&b, "counter", "parley_store_wal_frames_total",
                "Pages those commits wrote to the WAL.", frames);
    prom_metric(&b, "counter", "parley_store_wal_writes_total",
                "Write calls that carried those pages to the file system.", writes);
    prom_metric(&b, "counter", "parley_store_errors_total", "Store operations that failed.",
                store_error_count());
    prom_head(&b, "gauge", "parley_uptime_seconds", "Seconds since start.");
    buf_printf(&b, "parley_uptime_seconds %.3f\n",
               (double)(clock_now_ms() - ctx->started_ms) / 1000.0);
    prom_head(&b, "gauge", "parley_build_info", "The running build (always 1).");
    buf_printf(&b, "parley_build_info{version=\"%s\"} 1\n", PARLEY_VERSION);
    http_reply_raw(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}
