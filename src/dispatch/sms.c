/* sms.c: SMPP sessions per app SMS credential and their callbacks (see sms.h). */
#define _GNU_SOURCE
#include "dispatch/sms.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/log.h"
#include "base/nudge.h"
#include "channels/smpp.h"
#include "convo/apps.h"
#include "convo/inbound.h"
#include "dispatch/dispatch_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sms_session {
    sms_t *m;
    char project_id[ULID_LEN + 1], app_id[ULID_LEN + 1];
    int ordinal;
    char *fingerprint; /* the settings it was started with */
    smpp_session_t *s;
    struct sms_session *next;
} sms_session_t;

struct sms {
    store_t *store;
    uint8_t seal_key[32];
    const config_t *cfg;
    pthread_mutex_t lock;
    sms_session_t *sessions;
};

/* Settings parsed from a credential; strings point into buf. */
typedef struct {
    smpp_config_t c;
    char buf[512];
} sms_settings_t;

static int hexv(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated); returns the next free byte. */
static char *take(char *out, const char *end_of_buf, const char *s, size_t n)
{
    for (size_t i = 0; i < n && out < end_of_buf - 1; i++) {
        if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            *out++ = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            *out++ = s[i];
        }
    }
    *out++ = '\0';
    return out;
}

/* smpp://id:pw@host:port?window=..&throughput=..&system_type=.. */
static int parse_url(const char *url, sms_settings_t *st, err_t *e)
{
    const char *p = url + 7, *at = strchr(p, '@'),
               *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (!at || !colon)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "SMS token must be smpp://SYSTEM_ID:PASSWORD@HOST:PORT");
    char *o = st->buf, *end = st->buf + sizeof st->buf;
    st->c.system_id = o;
    o = take(o, end, p, (size_t)(colon - p));
    st->c.password = o;
    o = take(o, end, colon + 1, (size_t)(at - colon - 1));
    const char *hp = at + 1, *q = strchr(hp, '?');
    size_t hplen = q ? (size_t)(q - hp) : strlen(hp);
    const char *pc = memrchr(hp, ':', hplen);
    st->c.host = o;
    o = take(o, end, hp, pc ? (size_t)(pc - hp) : hplen);
    st->c.port = pc ? atoi(pc + 1) : 2775;
    for (const char *k = q ? q + 1 : NULL; k && *k;) {
        const char *amp = strchr(k, '&'), *eq = strchr(k, '=');
        size_t len = amp ? (size_t)(amp - k) : strlen(k);
        if (eq && eq < k + len) {
            size_t kl = (size_t)(eq - k);
            if (kl == 6 && strncmp(k, "window", 6) == 0)
                st->c.window = atoi(eq + 1);
            else if (kl == 10 && strncmp(k, "throughput", 10) == 0)
                st->c.throughput = atof(eq + 1);
            else if (kl == 11 && strncmp(k, "system_type", 11) == 0) {
                st->c.system_type = o;
                o = take(o, end, eq + 1, len - kl - 1);
            }
        }
        k = amp ? amp + 1 : NULL;
    }
    return 0;
}

static int settings_of(sms_t *m, json_t *cred, sms_settings_t *st, err_t *e)
{
    memset(st, 0, sizeof *st);
    const char *token = json_string_value(json_object_get(cred, "token"));
    const char *sender = json_string_value(json_object_get(cred, "claimed_identity"));
    if (!token || !*token) return err_set(e, ERR_INVALID_ARGUMENT, "SMS credential has no token");
    if (strncmp(token, "smpp://", 7) == 0) {
        if (parse_url(token, st, e) < 0) return -1;
    } else {
        const config_smsc_t *c = NULL;
        for (int i = 0; i < m->cfg->nsmsc && !c; i++)
            if (strcmp(m->cfg->smsc[i].name, token) == 0) c = &m->cfg->smsc[i];
        if (!c) /* Never echo the token: it may be a secret mistyped as a name. */
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "the SMS credential's token is neither an smpp:// URL nor the name of "
                           "an [smsc.NAME] section of parley.conf");
        st->c.host = c->host;
        st->c.port = (int)c->port;
        st->c.system_id = c->system_id;
        st->c.password = c->password;
        st->c.system_type = c->system_type;
        st->c.source_addr = c->source_addr;
        st->c.window = (int)c->window;
        st->c.throughput = c->throughput;
    }
    if (sender && *sender) st->c.source_addr = sender;
    return smpp_config_check(&st->c, e);
}

static char *fingerprint(const smpp_config_t *c)
{
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s|%d|%s|%s|%s|%s|%d|%g", c->host, c->port, c->system_id, c->password,
               c->system_type ? c->system_type : "", c->source_addr ? c->source_addr : "",
               c->window, c->throughput);
    return buf_steal(&b);
}

static convo_ctx_t cx_of(sms_session_t *ss)
{
    err_t e;
    convo_ctx_t cx = {.conn = store_conn(ss->m->store, &e),
                      .project_id = ss->project_id,
                      .seal_key = ss->m->seal_key};
    return cx;
}

/* ---- session callbacks (session thread) ---- */

static void on_state(void *cls, smpp_session_state_t state, const char *description)
{
    sms_session_t *ss = cls;
    const char *status = state == SMPP_SESSION_BOUND ? "ACTIVE"
                         : state == SMPP_SESSION_FAILED || state == SMPP_SESSION_DISCONNECTED
                             ? "FAILING"
                             : NULL;
    log_kv(LOG_INFO, "smsc session", "app_id", ss->app_id, "state", smpp_session_state_name(state),
           "detail", description);
    if (!status) return;
    err_t e;
    convo_ctx_t cx = cx_of(ss);
    if (cx.conn)
        convo_app_set_credential_state(&cx, ss->app_id, "SMS", ss->ordinal, status,
                                       state == SMPP_SESSION_BOUND ? "" : description, &e);
}

/* The outbox job of ref (its payload, project, message) into o; 0 if gone. */
static int load_job(convo_ctx_t *cx, const char *job_id, deliver_outcome_t *o, char *app_id,
                    char *message_id, err_t *e)
{
    store_stmt_t *st = store_query(
        cx->conn, e, "SELECT app_id, target_id, payload FROM outbox WHERE id = $1", "s", job_id);
    if (!st) return -1;
    int rc = store_step(st, e);
    if (rc == 1) {
        snprintf(app_id, ULID_LEN + 1, "%s", store_col_text(st, 0));
        snprintf(message_id, ULID_LEN + 1, "%s", store_col_text(st, 1));
        o->state = json_loads(store_col_text(st, 2), 0, NULL);
    }
    store_done(st);
    return rc;
}

static void on_submitted(void *cls, const char *ref, const char *ids, uint32_t status,
                         const char *description)
{
    sms_session_t *ss = cls;
    err_t e;
    convo_ctx_t cx = cx_of(ss);
    if (!cx.conn) return;
    char app_id[ULID_LEN + 1] = "", message_id[ULID_LEN + 1] = "";
    deliver_outcome_t o = {.cx = cx, .app_id = app_id, .job_id = ref, .message_id = message_id};
    if (load_job(&cx, ref, &o, app_id, message_id, &e) != 1 || !o.state) return;
    if (status == 0) {
        o.app = convo_app_get_internal(&cx, app_id, &e);
        deliver_sent(&o, ids);
    } else if (status == SMPP_LOCAL_STOPPED || status == 0x58 /* ESME_RTHROTTLED */ ||
               status == 0x14 /* ESME_RMSGQFUL */) {
        /* Not the message's fault: let the dispatcher try again a little later. */
        store_exec(cx.conn, &e, "UPDATE outbox SET lease_until = 0, due_at = $1 WHERE id = $2",
                   "is", clock_now_ms() + (status == SMPP_LOCAL_STOPPED ? 0 : 2000), ref);
    } else {
        char why[160];
        snprintf(why, sizeof why, "SMSC refused the message: %s", description);
        deliver_fall_back(
            &o, status == 0x0B ? "RECIPIENT_INVALID_CHANNEL_IDENTITY" : "CHANNEL_FAILURE", why);
    }
    json_decref(o.state);
    json_decref(o.app);
    nudge_flush();
}

static int store_events(sms_session_t *ss, channel_events_t *ev)
{
    err_t e;
    convo_ctx_t cx = cx_of(ss);
    int rc = cx.conn ? convo_inbound_store(&cx, ss->app_id, CONVO_SMS, ev, &e) : -1;
    if (rc < 0)
        log_kv(LOG_WARN, "SMS inbound not stored; the SMSC will retry", "app_id", ss->app_id);
    channel_events_free(ev);
    nudge_flush();
    return rc < 0 ? -1 : 0;
}

static int on_deliver(void *cls, const char *from, const char *to, const char *text,
                      const char *provider_id)
{
    (void)to;
    channel_events_t ev = {0};
    channel_event_t *x = channel_events_add(&ev);
    x->kind = CHANNEL_EVENT_MESSAGE;
    /* SMSCs send international numbers without '+'; Parley stores E.164 with it. */
    int digits = *from != '\0';
    for (const char *p = from; *p; p++)
        digits &= isdigit((unsigned char)*p) != 0;
    snprintf(x->identity, sizeof x->identity, "%s%s", digits ? "+" : "", from);
    snprintf(x->provider_id, sizeof x->provider_id, "%s", provider_id);
    x->contact_message = json_pack("{s:{s:s}}", "text_message", "text", text);
    return store_events(cls, &ev);
}

static int on_receipt(void *cls, const char *smsc_id, smpp_receipt_status_t status, int error_code)
{
    static const char *const names[] = {[SMPP_RECEIPT_UNKNOWN] = NULL,
                                        [SMPP_RECEIPT_DELIVERED] = "DELIVERED",
                                        [SMPP_RECEIPT_FAILED] = "FAILED",
                                        [SMPP_RECEIPT_QUEUED_ON_CHANNEL] = "QUEUED_ON_CHANNEL"};
    if (!names[status]) return 0;
    channel_events_t ev = {0};
    channel_event_t *x = channel_events_add(&ev);
    x->kind = CHANNEL_EVENT_RECEIPT;
    snprintf(x->provider_id, sizeof x->provider_id, "%s", smsc_id);
    snprintf(x->status, sizeof x->status, "%s", names[status]);
    if (status == SMPP_RECEIPT_FAILED)
        snprintf(x->reason_code, sizeof x->reason_code, "%s",
                 error_code ? "RECIPIENT_NOT_REACHABLE" : "CHANNEL_FAILURE");
    return store_events(cls, &ev);
}

static const smpp_callbacks_t callbacks = {on_state, on_submitted, on_deliver, on_receipt};

/* ---- the manager ---- */

int sms_ensure(sms_t *m, const char *project_id, const char *app_id, int ordinal,
               json_t *credential, err_t *e)
{
    sms_settings_t st;
    if (settings_of(m, credential, &st, e) < 0) return -1;
    char *fp = fingerprint(&st.c);
    pthread_mutex_lock(&m->lock);
    sms_session_t *ss = m->sessions, *stale = NULL;
    for (; ss; ss = ss->next)
        if (strcmp(ss->app_id, app_id) == 0) break;
    if (ss && strcmp(ss->fingerprint, fp) == 0) { /* already running as configured */
        pthread_mutex_unlock(&m->lock);
        free(fp);
        return 0;
    }
    if (ss) { /* settings changed: replace the session */
        for (sms_session_t **p = &m->sessions; *p; p = &(*p)->next)
            if (*p == ss) {
                *p = ss->next;
                break;
            }
        stale = ss;
    }
    ss = xcalloc(1, sizeof *ss);
    ss->m = m;
    snprintf(ss->project_id, sizeof ss->project_id, "%s", project_id);
    snprintf(ss->app_id, sizeof ss->app_id, "%s", app_id);
    ss->ordinal = ordinal;
    ss->fingerprint = fp;
    ss->s = smpp_session_start(&st.c, &callbacks, ss);
    if (ss->s) {
        ss->next = m->sessions;
        m->sessions = ss;
    }
    pthread_mutex_unlock(&m->lock);
    if (stale) {
        smpp_session_stop(stale->s);
        free(stale->fingerprint);
        free(stale);
    }
    if (!ss->s) {
        free(ss->fingerprint);
        free(ss);
        return err_set(e, ERR_INTERNAL, "cannot start the SMPP session");
    }
    return 0;
}

int sms_submit(sms_t *m, const char *app_id, const char *to, const char *text, const char *job_id,
               err_t *e)
{
    pthread_mutex_lock(&m->lock);
    sms_session_t *ss = m->sessions;
    while (ss && strcmp(ss->app_id, app_id) != 0)
        ss = ss->next;
    int rc = ss ? smpp_submit(ss->s, to, NULL, text, job_id, e)
                : err_set(e, ERR_FAILED_PRECONDITION, "no SMSC session for app %s", app_id);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

sms_t *sms_start(store_t *store, const uint8_t seal_key[32], const config_t *cfg, err_t *e)
{
    sms_t *m = xcalloc(1, sizeof *m);
    m->store = store;
    memcpy(m->seal_key, seal_key, 32);
    m->cfg = cfg;
    pthread_mutex_init(&m->lock, NULL);
    store_conn_t *c = store_conn(store, e);
    store_stmt_t *st = c ? store_query(c, e,
                                       "SELECT a.project_id, a.id FROM apps a WHERE EXISTS (SELECT "
                                       "1 FROM app_credentials k WHERE k.app_id = a.id AND "
                                       "k.channel = 'SMS')",
                                       "")
                         : NULL;
    json_t *apps = json_array();
    while (st && store_step(st, e) == 1)
        json_array_append_new(apps,
                              json_pack("[s,s]", store_col_text(st, 0), store_col_text(st, 1)));
    store_done(st);
    size_t i;
    json_t *a = NULL;
    json_array_foreach(apps, i, a)
    {
        const char *project = json_string_value(json_array_get(a, 0));
        const char *app_id = json_string_value(json_array_get(a, 1));
        convo_ctx_t cx = {.conn = c, .project_id = project, .seal_key = m->seal_key};
        err_t e2;
        json_t *app = convo_app_get_internal(&cx, app_id, &e2), *cred = NULL;
        size_t k;
        json_array_foreach(app ? json_object_get(app, "channel_credentials") : NULL, k, cred)
        {
            const char *ch = json_string_value(json_object_get(cred, "channel"));
            if (!ch || strcmp(ch, "SMS") != 0) continue;
            int ordinal =
                (int)json_integer_value(json_object_get(cred, "credential_ordinal_number"));
            if (sms_ensure(m, project, app_id, ordinal, json_object_get(cred, "static_bearer"),
                           &e2) < 0) {
                log_kv(LOG_WARN, "SMS credential not usable", "app_id", app_id, "error",
                       e2.message);
                convo_app_set_credential_state(&cx, app_id, "SMS", ordinal, "FAILING", e2.message,
                                               &e2);
            }
            break; /* one SMSC session per app */
        }
        json_decref(app);
    }
    json_decref(apps);
    return m;
}

void sms_stop(sms_t *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    sms_session_t *ss = m->sessions;
    m->sessions = NULL;
    pthread_mutex_unlock(&m->lock);
    while (ss) {
        sms_session_t *n = ss->next;
        smpp_session_stop(ss->s);
        free(ss->fingerprint);
        free(ss);
        ss = n;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}
