/* check.c: the 'check' job kind: confirm a channel credential with its provider (Telegram
 * getMe, a WhatsApp phone-number lookup, ...) through the adapter's check, and record the
 * app channel's state: ACTIVE, or FAILING with the provider's words. No answer or a 5xx
 * keeps it PENDING and retries; the job gives up (FAILING) after a day. The payload is
 * {"channel": "TELEGRAM", "ordinal": 0}; target_id is the app. */
#define _GNU_SOURCE
#include "dispatch/dispatch_internal.h"
#include "base/log.h"
#include "convo/apps.h"

#include <stdio.h>
#include <string.h>

static void record(dispatch_t *d, job_t *j, const char *status, const char *description)
{
    err_t e;
    convo_ctx_t cx = dispatch_cx(d, j);
    json_t *ch = json_object_get(j->state, "channel");
    if (cx.conn && convo_app_set_credential_state(
                       &cx, j->app_id, json_string_value(ch),
                       (int)json_integer_value(json_object_get(j->state, "ordinal")), status,
                       description, &e) < 0)
        log_kv(LOG_INFO, "credential state not recorded", "app_id", j->app_id, "error", e.message);
    log_kv(LOG_INFO, "channel credential checked", "app_id", j->app_id, "channel",
           json_string_value(ch), "status", status, "detail", description);
    dispatch_row_done(d, j);
}

int check_start(dispatch_t *d, job_t *j)
{
    err_t e;
    convo_ctx_t cx = dispatch_cx(d, j);
    if (!cx.conn) return 0;
    j->state = json_loads(j->payload, 0, NULL);
    const char *chname = json_string_value(json_object_get(j->state, "channel"));
    json_int_t ordinal = json_integer_value(json_object_get(j->state, "ordinal"));
    int ch = chname ? convo_channel_parse(chname, "channel", NULL) : -1;
    j->app = ch >= 0 ? convo_app_get_internal(&cx, j->app_id, &e) : NULL;
    json_t *cred = NULL, *c = NULL;
    size_t i;
    json_array_foreach(j->app ? json_object_get(j->app, "channel_credentials") : NULL, i, c)
    {
        const char *n = json_string_value(json_object_get(c, "channel"));
        json_int_t o = json_integer_value(json_object_get(c, "credential_ordinal_number"));
        if (n && strcmp(n, chname) == 0 && o == ordinal) cred = c;
    }
    if (ch == CONVO_SMS && cred) { /* the SMPP bind is the check; sms.c records the state */
        if (!d->o.sms || sms_ensure(d->o.sms, j->project_id, j->app_id, (int)ordinal,
                                    json_object_get(cred, "static_bearer"), &e) < 0)
            record(d, j, "FAILING", d->o.sms ? e.message : "SMS is not available in this process");
        else
            dispatch_row_done(d, j);
        return 0;
    }
    j->adapter = ch >= 0 ? channel_get((convo_channel_t)ch) : NULL;
    if (!cred || !j->adapter || !j->adapter->check || !j->adapter->check_result) {
        dispatch_row_done(d, j); /* gone, or nothing to check with: the state stays */
        return 0;
    }
    const char *base =
        d->o.base_url[ch] && *d->o.base_url[ch] ? d->o.base_url[ch] : j->adapter->default_base_url;
    json_t *credential = json_deep_copy(json_object_get(cred, j->adapter->credential_key));
    if (!credential) credential = json_object();
    channel_send_t in = {.base_url = base, .credential = credential};
    int rc = j->adapter->check(&in, &j->req, &e);
    json_decref(credential);
    if (rc < 0) {
        record(d, j, "FAILING", e.message);
        return 0;
    }
    if (dispatch_http(d, j, &j->req) < 0) {
        dispatch_row_backoff(d, j, "cannot start the request");
        return 0;
    }
    return 1;
}

int check_finish(dispatch_t *d, job_t *j, CURLcode rc, long status)
{
    if (rc != CURLE_OK || status == 0 || status >= 500 || status == 429) {
        char why[300];
        snprintf(why, sizeof why, "provider unreachable: %s",
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "no or a temporary answer");
        if (!dispatch_row_backoff(d, j, why)) record(d, j, "FAILING", why);
        return 0;
    }
    char desc[256] = "";
    int ok = j->adapter->check_result(status, j->resp.data ? j->resp.data : "", j->resp.len, desc,
                                      sizeof desc) == 0;
    record(d, j, ok ? "ACTIVE" : "FAILING", ok ? "" : desc);
    return 0;
}
