/* ops.c: operations endpoints. /healthz is liveness only (it answers while the process
 * serves HTTP and touches nothing else, so it doubles as the HTTP baseline); /metrics is
 * Prometheus text. */
#include "api/api.h"
#include "base/buf.h"
#include "base/clock.h"
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
    buf_printf(&b,
               "# HELP parley_group_commits_total Group-commit transactions (store.group_commit).\n"
               "# TYPE parley_group_commits_total counter\n"
               "parley_group_commits_total %llu\n"
               "# HELP parley_group_commit_units_total Writes (sends) committed in group commits.\n"
               "# TYPE parley_group_commit_units_total counter\n"
               "parley_group_commit_units_total %llu\n"
               "# HELP parley_group_commit_failures_total Group commits that failed (each "
               "write answered with an error).\n"
               "# TYPE parley_group_commit_failures_total counter\n"
               "parley_group_commit_failures_total %llu\n",
               (unsigned long long)g.batches, (unsigned long long)g.units,
               (unsigned long long)g.failed_commits);
    uint64_t commits, frames, writes;
    store_wal_stats(&commits, &frames, &writes);
    buf_printf(&b,
               "# HELP parley_store_commits_total Commits that wrote to the store.\n"
               "# TYPE parley_store_commits_total counter\n"
               "parley_store_commits_total %llu\n"
               "# HELP parley_store_wal_frames_total Pages those commits wrote to the WAL.\n"
               "# TYPE parley_store_wal_frames_total counter\n"
               "parley_store_wal_frames_total %llu\n"
               "# HELP parley_store_wal_writes_total Write calls that carried those pages to "
               "the file system.\n"
               "# TYPE parley_store_wal_writes_total counter\n"
               "parley_store_wal_writes_total %llu\n",
               (unsigned long long)commits, (unsigned long long)frames, (unsigned long long)writes);
    buf_printf(&b,
               "# HELP parley_store_errors_total Store operations that failed.\n"
               "# TYPE parley_store_errors_total counter\n"
               "parley_store_errors_total %llu\n"
               "# HELP parley_uptime_seconds Seconds since start.\n"
               "# TYPE parley_uptime_seconds gauge\n"
               "parley_uptime_seconds %.3f\n"
               "# TYPE parley_build_info gauge\n"
               "parley_build_info{version=\"%s\"} 1\n",
               (unsigned long long)store_error_count(),
               (double)(clock_now_ms() - ctx->started_ms) / 1000.0, PARLEY_VERSION);
    http_reply_raw(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}
