/* smpp.c: the SMPP client session. One thread per session runs a poll() loop over a
 * non-blocking TCP socket and a wake pipe; all protocol state lives on that thread, and
 * the only state shared with other threads is the submit queue (under one mutex). The
 * loop is a small state machine: IDLE (waiting to reconnect) -> CONNECTING -> BINDING ->
 * BOUND -> (stop) DRAINING -> UNBINDING. I/O errors never tear the connection down from
 * deep inside a handler: they record a pending failure which the loop applies at a safe
 * point (link_down), so handlers can always finish what they started. */
#define _GNU_SOURCE
#include "channels/smpp.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/ulid.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define ADDR_CAP 21 /* source_addr / destination_addr, NUL included */

enum {
    PART_UNSENT = 0,
    PART_OUTSTANDING,
    PART_DONE,
};

/* One queued outbound message and the progress of its parts. */
typedef struct msg {
    struct msg *next;
    char to[ADDR_CAP], from[ADDR_CAP];
    uint8_t src_ton, src_npi;
    char *ref;
    smpp_split_t split;
    uint8_t *pstate; /* per part: PART_* */
    char (*pid)[65]; /* per part: message_id from submit_sm_resp */
    size_t done, outstanding;
    int failed;
    uint32_t status; /* the first failing part's command_status */
} msg_t;

typedef struct {
    uint32_t seq;
    msg_t *m;
    size_t part;
    int64_t sent_at;
} inflight_t;

/* An inbound concatenated message being reassembled. */
typedef struct reasm {
    struct reasm *next;
    char from[ADDR_CAP], to[ADDR_CAP];
    uint16_t ref;
    uint8_t total, got;
    char **parts; /* total entries, NULL until received */
    int64_t first_at;
} reasm_t;

typedef enum {
    CS_IDLE = 0,
    CS_CONNECTING,
    CS_BINDING,
    CS_BOUND,
    CS_DRAINING,  /* stop requested: waiting for outstanding submit_sm_resp */
    CS_UNBINDING, /* unbind sent */
} conn_state_t;

#define MAX_REASM 256

struct smpp_session {
    smpp_config_t cfg; /* strings owned (copied) */
    smpp_callbacks_t cb;
    void *cls;
    pthread_t thread;
    int wake[2];

    pthread_mutex_t mu; /* guards the fields down to the blank line */
    msg_t *q_head, *q_tail;
    int count; /* messages accepted by smpp_submit and not yet reported */
    int stopping;
    uint8_t next_ref;

    /* session thread only */
    conn_state_t cs;
    int fd;
    char peer[300]; /* "host:port" */
    struct addrinfo *ai, *ai_cur;
    int64_t state_since;    /* when the current connect/bind/unbind step started */
    msg_t *a_head, *a_tail; /* taken from the queue, parts in progress */
    inflight_t *infl;
    int ninfl;
    uint8_t *rbuf;
    size_t rlen, rcap;
    buf_t wbuf;
    size_t woff;
    uint32_t seq;
    uint32_t enq_seq;
    int64_t last_rx, enq_sent_at, stop_deadline;
    int64_t next_send_ns, interval_ns;
    int throttled; /* the pump stopped for throughput: wake at next_send_ns */
    int64_t reconnect_at;
    int backoff_ms;
    reasm_t *reasm;
    int nreasm;
    uint64_t rng;
    int fail_pending;
    smpp_session_state_t fail_state;
    char fail_reason[256];
    int done; /* leave the loop */
};

/* ---- helpers ---- */

static void cfg_free(smpp_config_t *c)
{
    free((char *)c->host);
    free((char *)c->system_id);
    free((char *)c->password);
    free((char *)c->system_type);
    free((char *)c->source_addr);
}

static int field_ok(const char *v, size_t max, const char *name, err_t *e)
{
    if (v && strlen(v) > max)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: %s longer than %zu characters", name, max);
    return 0;
}

int smpp_config_check(const smpp_config_t *c, err_t *e)
{
    if (!c || !c->host || !c->host[0])
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: host is required");
    if (c->port <= 0 || c->port > 65535)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: port %d out of range", c->port);
    if (!c->system_id || !c->system_id[0])
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: system_id is required");
    if (field_ok(c->system_id, 15, "system_id", e) < 0 ||
        field_ok(c->password, 8, "password", e) < 0 ||
        field_ok(c->system_type, 12, "system_type", e) < 0 ||
        field_ok(c->source_addr, 20, "source_addr", e) < 0)
        return -1;
    if (c->window < 0 || c->queue_size < 0 || c->throughput < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: negative window/queue/throughput");
    return 0;
}

static uint64_t rng_next(smpp_session_t *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return x;
}

const char *smpp_session_state_name(smpp_session_state_t st)
{
    switch (st) {
    case SMPP_SESSION_CONNECTING:
        return "CONNECTING";
    case SMPP_SESSION_BOUND:
        return "BOUND";
    case SMPP_SESSION_DISCONNECTED:
        return "DISCONNECTED";
    case SMPP_SESSION_FAILED:
        return "FAILED";
    case SMPP_SESSION_STOPPED:
        return "STOPPED";
    }
    return "UNKNOWN";
}

static void report(smpp_session_t *s, smpp_session_state_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(smpp_session_t *s, smpp_session_state_t st, const char *fmt, ...)
{
    char desc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    log_kv(st == SMPP_SESSION_FAILED ? LOG_WARN : LOG_INFO, "smpp session", "state",
           smpp_session_state_name(st), "detail", desc, "smsc", s->peer);
    if (s->cb.on_state) s->cb.on_state(s->cls, st, desc);
}

/* Record a failure; the loop tears the link down at a safe point. The first one wins. */
static void fail(smpp_session_t *s, smpp_session_state_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(smpp_session_t *s, smpp_session_state_t st, const char *fmt, ...)
{
    if (s->fail_pending) return;
    s->fail_pending = 1;
    s->fail_state = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail_reason, sizeof s->fail_reason, fmt, ap);
    va_end(ap);
}

static void msg_free(msg_t *m)
{
    free(m->ref);
    smpp_split_free(&m->split);
    free(m->pstate);
    free(m->pid);
    free(m);
}

/* ---- output ---- */

static void flush(smpp_session_t *s)
{
    while (s->fd >= 0 && s->woff < s->wbuf.len) {
        ssize_t n = send(s->fd, s->wbuf.data + s->woff, s->wbuf.len - s->woff, MSG_NOSIGNAL);
        if (n > 0) {
            s->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            fail(s, SMPP_SESSION_DISCONNECTED, "write failed: %s",
                 n < 0 ? strerror(errno) : "short write");
            return;
        }
    }
    if (s->woff == s->wbuf.len) {
        buf_reset(&s->wbuf);
        s->woff = 0;
    }
}

static uint32_t next_seq(smpp_session_t *s)
{
    s->seq = s->seq >= 0x7FFFFFFFu ? 1 : s->seq + 1;
    return s->seq;
}

static int send_pdu(smpp_session_t *s, const smpp_pdu_t *p)
{
    err_t e;
    if (s->fd < 0 || s->fail_pending) return -1;
    if (smpp_pdu_encode(p, &s->wbuf, &e) < 0) {
        log_kv(LOG_ERROR, "smpp encode failed", "error", e.message);
        return -1;
    }
    flush(s);
    return s->fail_pending ? -1 : 0;
}

static void send_simple(smpp_session_t *s, uint32_t id, uint32_t seq, uint32_t status)
{
    smpp_pdu_t p;
    smpp_pdu_init(&p, id, seq);
    p.command_status = status;
    send_pdu(s, &p);
}

/* ---- outbound messages ---- */

static void complete_msg(smpp_session_t *s, msg_t *m, uint32_t status, const char *desc)
{
    /* unlink from the active list */
    msg_t **pp = &s->a_head, *prev = NULL;
    while (*pp && *pp != m) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = m->next;
        if (s->a_tail == m) s->a_tail = prev;
    }
    buf_t ids;
    buf_init(&ids);
    for (size_t i = 0; i < m->split.count; i++)
        if (m->pid[i][0]) {
            if (ids.len) buf_puts(&ids, ",");
            buf_puts(&ids, m->pid[i]);
        }
    if (s->cb.on_submitted)
        s->cb.on_submitted(s->cls, m->ref, ids.data ? ids.data : "", status, desc);
    buf_free(&ids);
    msg_free(m);
    pthread_mutex_lock(&s->mu);
    s->count--;
    pthread_mutex_unlock(&s->mu);
}

static void maybe_complete(smpp_session_t *s, msg_t *m)
{
    if (m->outstanding) return;
    if (m->failed) {
        char desc[64];
        snprintf(desc, sizeof desc, "%s", smpp_status_name(m->status));
        complete_msg(s, m, m->status, desc);
    } else if (m->done == m->split.count) {
        complete_msg(s, m, 0, "ESME_ROK");
    }
}

static inflight_t *inflight_find(smpp_session_t *s, uint32_t seq)
{
    for (int i = 0; i < s->ninfl; i++)
        if (s->infl[i].seq == seq) return &s->infl[i];
    return NULL;
}

static void inflight_remove(smpp_session_t *s, inflight_t *f)
{
    *f = s->infl[--s->ninfl];
}

static void on_submit_resp(smpp_session_t *s, const smpp_pdu_t *p)
{
    inflight_t *f = inflight_find(s, p->sequence);
    if (!f) {
        log_kv(LOG_WARN, "smpp response for an unknown sequence", "command",
               smpp_command_name(p->command_id));
        return;
    }
    msg_t *m = f->m;
    size_t part = f->part;
    inflight_remove(s, f);
    m->outstanding--;
    m->pstate[part] = PART_DONE;
    if (p->command_status == 0 && p->command_id == SMPP_SUBMIT_SM_RESP) {
        snprintf(m->pid[part], sizeof m->pid[part], "%s", p->message_id);
        m->done++;
    } else if (!m->failed) {
        m->failed = 1;
        m->status = p->command_status ? p->command_status : SMPP_ESME_RSYSERR;
    }
    maybe_complete(s, m);
}

static int addr_is_alnum(const char *a)
{
    if (*a == '+') a++;
    if (!*a) return 0;
    for (; *a; a++)
        if (*a < '0' || *a > '9') return 1;
    return 0;
}

static int send_part(smpp_session_t *s, msg_t *m, size_t part, int64_t now)
{
    smpp_pdu_t p;
    smpp_pdu_init(&p, SMPP_SUBMIT_SM, next_seq(s));
    /* service_type stays empty: the SMSC default */
    p.source_addr_ton = m->src_ton;
    p.source_addr_npi = m->src_npi;
    memcpy(p.source_addr, m->from, sizeof p.source_addr);
    p.dest_addr_ton = s->cfg.dest_ton;
    p.dest_addr_npi = s->cfg.dest_npi;
    memcpy(p.destination_addr, m->to, sizeof p.destination_addr);
    p.esm_class = m->split.esm_class;
    p.registered_delivery = s->cfg.no_receipts ? 0 : 1;
    p.data_coding = m->split.data_coding;
    p.sm_length = m->split.parts[part].len;
    memcpy(p.short_message, m->split.parts[part].data, p.sm_length);
    if (send_pdu(s, &p) < 0) return -1;
    inflight_t *f = &s->infl[s->ninfl++];
    f->seq = p.sequence;
    f->m = m;
    f->part = part;
    f->sent_at = now;
    m->pstate[part] = PART_OUTSTANDING;
    m->outstanding++;
    return 0;
}

/* Find the next unsent part, taking messages from the shared queue as needed. */
static int next_part(smpp_session_t *s, msg_t **mp, size_t *partp)
{
    for (;;) {
        for (msg_t *m = s->a_head; m; m = m->next) {
            if (m->failed) continue;
            for (size_t i = 0; i < m->split.count; i++)
                if (m->pstate[i] == PART_UNSENT) {
                    *mp = m;
                    *partp = i;
                    return 1;
                }
        }
        pthread_mutex_lock(&s->mu);
        msg_t *m = s->q_head;
        if (m) {
            s->q_head = m->next;
            if (!s->q_head) s->q_tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (!m) return 0;
        m->next = NULL;
        if (s->a_tail)
            s->a_tail->next = m;
        else
            s->a_head = m;
        s->a_tail = m;
    }
}

static void pump(smpp_session_t *s, int64_t now)
{
    s->throttled = 0;
    while (s->cs == CS_BOUND && !s->fail_pending && s->ninfl < s->cfg.window) {
        int64_t now_ns = clock_mono_ns();
        if (s->interval_ns && now_ns < s->next_send_ns) {
            msg_t *m;
            size_t part;
            s->throttled = next_part(s, &m, &part);
            return;
        }
        msg_t *m;
        size_t part;
        if (!next_part(s, &m, &part)) return;
        if (send_part(s, m, part, now) < 0) return;
        if (s->interval_ns)
            s->next_send_ns =
                (s->next_send_ns > now_ns ? s->next_send_ns : now_ns) + s->interval_ns;
    }
}

/* The link is gone: parts awaiting a response go back to unsent, to be sent again after
 * the reconnect (at least once: the SMSC may have accepted them). */
static void requeue_inflight(smpp_session_t *s)
{
    for (int i = 0; i < s->ninfl; i++) {
        msg_t *m = s->infl[i].m;
        m->pstate[s->infl[i].part] = PART_UNSENT;
        m->outstanding--;
    }
    s->ninfl = 0;
    /* a message whose failing part came back while others were in flight can finish now */
    msg_t *m = s->a_head;
    while (m) {
        msg_t *next = m->next;
        if (m->failed) maybe_complete(s, m);
        m = next;
    }
}

/* ---- inbound messages ---- */

static void reasm_free(reasm_t *r)
{
    for (int i = 0; i < r->total; i++)
        free(r->parts[i]);
    free(r->parts);
    free(r);
}

static void reasm_unlink(smpp_session_t *s, reasm_t *r)
{
    for (reasm_t **pp = &s->reasm; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            s->nreasm--;
            return;
        }
}

static char *reasm_join(const reasm_t *r)
{
    buf_t b;
    buf_init(&b);
    for (int i = 0; i < r->total; i++)
        if (r->parts[i]) buf_puts(&b, r->parts[i]);
    return buf_steal(&b);
}

static int deliver(smpp_session_t *s, const char *from, const char *to, const char *text)
{
    char id[ULID_LEN + 1];
    ulid_new(id);
    if (!s->cb.on_deliver) return 0;
    return s->cb.on_deliver(s->cls, from, to, text, id);
}

/* Give up waiting for the missing parts: deliver what arrived, in order. */
static void reasm_expire(smpp_session_t *s, reasm_t *r, const char *why)
{
    char missing[8];
    snprintf(missing, sizeof missing, "%d", r->total - r->got);
    log_kv(LOG_WARN, "smpp delivering an incomplete concatenated message", "from", r->from, "why",
           why, "#missing", missing);
    char *text = reasm_join(r);
    if (deliver(s, r->from, r->to, text) != 0)
        log_kv(LOG_ERROR, "smpp incomplete message refused by on_deliver; dropped", "from",
               r->from);
    free(text);
    reasm_unlink(s, r);
    reasm_free(r);
}

/* Add one part; returns the deliver_sm_resp status. */
static uint32_t reasm_add(smpp_session_t *s, const smpp_pdu_t *p, smpp_text_t *t, int64_t now)
{
    reasm_t *r = s->reasm;
    for (; r; r = r->next)
        if (r->ref == t->ref && r->total == t->total && !strcmp(r->from, p->source_addr) &&
            !strcmp(r->to, p->destination_addr))
            break;
    if (!r) {
        if (s->nreasm >= MAX_REASM) {
            reasm_t *oldest = s->reasm;
            for (reasm_t *x = s->reasm; x; x = x->next)
                if (x->first_at < oldest->first_at) oldest = x;
            reasm_expire(s, oldest, "too many pending concatenated messages");
        }
        r = xcalloc(1, sizeof *r);
        memcpy(r->from, p->source_addr, sizeof r->from);
        memcpy(r->to, p->destination_addr, sizeof r->to);
        r->ref = t->ref;
        r->total = t->total;
        r->parts = xcalloc(t->total, sizeof *r->parts);
        r->first_at = now;
        r->next = s->reasm;
        s->reasm = r;
        s->nreasm++;
    }
    int i = t->seq - 1;
    if (!r->parts[i]) r->got++;
    free(r->parts[i]);
    r->parts[i] = t->text; /* ownership moves */
    t->text = NULL;
    if (r->got < r->total) return SMPP_ESME_ROK;
    char *text = reasm_join(r);
    int rc = deliver(s, r->from, r->to, text);
    free(text);
    if (rc != 0) return SMPP_ESME_RX_T_APPN; /* keep the parts: the SMSC sends this one again */
    reasm_unlink(s, r);
    reasm_free(r);
    return SMPP_ESME_ROK;
}

static void on_deliver_sm(smpp_session_t *s, const smpp_pdu_t *p, int64_t now)
{
    uint32_t status = SMPP_ESME_ROK;
    err_t e;
    if (smpp_is_receipt(p)) {
        smpp_receipt_t r;
        if (smpp_receipt_parse(p, &r, &e) < 0) {
            log_kv(LOG_WARN, "smpp unreadable delivery receipt ignored", "error", e.message);
        } else if (s->cb.on_receipt &&
                   s->cb.on_receipt(s->cls, r.message_id, r.status, r.error_code) != 0) {
            status = SMPP_ESME_RX_T_APPN;
        }
    } else {
        smpp_text_t t;
        if (smpp_text_decode(p, &t, &e) < 0) {
            log_kv(LOG_WARN, "smpp undecodable deliver_sm refused", "error", e.message);
            status = SMPP_ESME_RX_P_APPN;
        } else {
            if (t.concat)
                status = reasm_add(s, p, &t, now);
            else if (deliver(s, p->source_addr, p->destination_addr, t.text) != 0)
                status = SMPP_ESME_RX_T_APPN;
            smpp_text_free(&t);
        }
    }
    /* the ack goes out only after the callback made the message durable */
    smpp_pdu_t resp;
    smpp_pdu_init(&resp, SMPP_DELIVER_SM_RESP, p->sequence);
    resp.command_status = status;
    send_pdu(s, &resp);
}

static void handle_pdu(smpp_session_t *s, const smpp_pdu_t *p, int64_t now)
{
    s->last_rx = now;
    switch (p->command_id) {
    case SMPP_BIND_TRANSCEIVER_RESP:
        if (s->cs != CS_BINDING) break;
        if (p->command_status != 0) {
            fail(s, SMPP_SESSION_FAILED, "bind refused: %s", smpp_status_name(p->command_status));
            break;
        }
        s->cs = CS_BOUND;
        s->backoff_ms = s->cfg.reconnect_min_ms;
        s->enq_sent_at = 0;
        report(s, SMPP_SESSION_BOUND, "bound to %s as %s (SMSC %s)", s->peer, s->cfg.system_id,
               p->system_id[0] ? p->system_id : "unnamed");
        break;
    case SMPP_GENERIC_NACK:
        if (s->cs == CS_BINDING) {
            fail(s, SMPP_SESSION_FAILED, "bind refused: generic_nack %s",
                 smpp_status_name(p->command_status));
        } else if (p->sequence == s->enq_seq && s->enq_sent_at) {
            s->enq_sent_at = 0; /* it answered, so the link is alive */
        } else {
            on_submit_resp(s, p);
        }
        break;
    case SMPP_SUBMIT_SM_RESP:
        on_submit_resp(s, p);
        break;
    case SMPP_DELIVER_SM:
        on_deliver_sm(s, p, now);
        break;
    case SMPP_ENQUIRE_LINK:
        send_simple(s, SMPP_ENQUIRE_LINK_RESP, p->sequence, 0);
        break;
    case SMPP_ENQUIRE_LINK_RESP:
        if (p->sequence == s->enq_seq) s->enq_sent_at = 0;
        break;
    case SMPP_UNBIND:
        send_simple(s, SMPP_UNBIND_RESP, p->sequence, 0);
        fail(s, SMPP_SESSION_DISCONNECTED, "unbound by the SMSC");
        break;
    case SMPP_UNBIND_RESP:
        if (s->cs == CS_UNBINDING) s->done = 1;
        break;
    default:
        if (!SMPP_IS_RESP(p->command_id))
            send_simple(s, SMPP_GENERIC_NACK, p->sequence, SMPP_ESME_RINVCMDID);
        break;
    }
}

static void on_readable(smpp_session_t *s, int64_t now)
{
    int eof = 0;
    for (;;) {
        if (s->rcap - s->rlen < 16384) {
            s->rcap = s->rcap ? s->rcap * 2 : 65536;
            s->rbuf = xrealloc(s->rbuf, s->rcap);
        }
        ssize_t n = recv(s->fd, s->rbuf + s->rlen, s->rcap - s->rlen, 0);
        if (n > 0) {
            s->rlen += (size_t)n;
            if (s->rlen >= 2 * SMPP_MAX_PDU_LEN) break; /* decode before reading more */
            continue;
        }
        if (n == 0)
            eof = 1;
        else if (errno == EINTR)
            continue;
        else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fail(s, SMPP_SESSION_DISCONNECTED, "read failed: %s", strerror(errno));
            eof = 1;
        }
        break;
    }
    size_t off = 0;
    while (!s->fail_pending && !s->done) {
        smpp_pdu_t p;
        size_t used;
        err_t e;
        smpp_decode_t rc = smpp_pdu_decode(s->rbuf + off, s->rlen - off, &p, &used, &e);
        if (rc == SMPP_DECODE_NEED_MORE) break;
        if (rc == SMPP_DECODE_ERROR) {
            if (!used) {
                fail(s, SMPP_SESSION_DISCONNECTED, "protocol error: %s", e.message);
                break;
            }
            log_kv(LOG_WARN, "smpp malformed PDU answered with generic_nack", "command",
                   smpp_command_name(p.command_id), "error", e.message);
            if (!SMPP_IS_RESP(p.command_id))
                send_simple(s, SMPP_GENERIC_NACK, p.sequence, SMPP_ESME_RINVCMDLEN);
            off += used;
            continue;
        }
        off += used;
        handle_pdu(s, &p, now);
        smpp_pdu_free(&p);
    }
    if (off) {
        memmove(s->rbuf, s->rbuf + off, s->rlen - off);
        s->rlen -= off;
    }
    if (eof && !s->done) {
        if (s->cs == CS_UNBINDING)
            s->done = 1;
        else
            fail(s, SMPP_SESSION_DISCONNECTED, "connection closed by the SMSC");
    }
}

/* ---- connection management ---- */

static void close_conn(smpp_session_t *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->rlen = 0;
    buf_reset(&s->wbuf);
    s->woff = 0;
    s->enq_sent_at = 0;
    requeue_inflight(s);
}

static void schedule_reconnect(smpp_session_t *s, int64_t now)
{
    int d = s->backoff_ms;
    /* +-25% jitter so that many sessions do not reconnect in lockstep */
    int64_t j = (int64_t)d / 2 > 0 ? (int64_t)(rng_next(s) % (uint64_t)(d / 2 + 1)) : 0;
    int64_t delay = d - d / 4 + j;
    s->reconnect_at = now + delay;
    s->backoff_ms = d >= s->cfg.reconnect_max_ms / 2 ? s->cfg.reconnect_max_ms : d * 2;
    s->cs = CS_IDLE;
}

static void link_down(smpp_session_t *s, int64_t now)
{
    smpp_session_state_t st = s->fail_state;
    char reason[256];
    memcpy(reason, s->fail_reason, sizeof reason);
    s->fail_pending = 0;
    close_conn(s);
    if (s->ai) {
        freeaddrinfo(s->ai);
        s->ai = s->ai_cur = NULL;
    }
    schedule_reconnect(s, now);
    report(s, st, "%s; reconnecting in %lld ms", reason, (long long)(s->reconnect_at - now));
}

static void send_bind(smpp_session_t *s, int64_t now)
{
    smpp_pdu_t p;
    smpp_pdu_init(&p, SMPP_BIND_TRANSCEIVER, next_seq(s));
    snprintf(p.system_id, sizeof p.system_id, "%s", s->cfg.system_id);
    snprintf(p.password, sizeof p.password, "%s", s->cfg.password ? s->cfg.password : "");
    snprintf(p.system_type, sizeof p.system_type, "%s",
             s->cfg.system_type ? s->cfg.system_type : "");
    p.interface_version = 0x34;
    s->cs = CS_BINDING;
    s->state_since = now;
    send_pdu(s, &p);
}

/* Try addresses from ai_cur on; 0 when a connect is in progress (or done), -1 when all
 * failed (the failure is recorded). */
static int try_connect(smpp_session_t *s, int64_t now, const char *last_error)
{
    char err[160];
    snprintf(err, sizeof err, "%s", last_error ? last_error : "no address");
    for (; s->ai_cur; s->ai_cur = s->ai_cur->ai_next) {
        struct addrinfo *a = s->ai_cur;
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            snprintf(err, sizeof err, "%s", strerror(errno));
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc == 0 || errno == EINPROGRESS) {
            s->fd = fd;
            s->state_since = now;
            s->cs = CS_CONNECTING;
            if (rc == 0) {
                s->ai_cur = s->ai_cur->ai_next;
                send_bind(s, now);
            }
            return 0;
        }
        snprintf(err, sizeof err, "%s", strerror(errno));
        close(fd);
    }
    fail(s, SMPP_SESSION_DISCONNECTED, "connect failed: %s", err);
    return -1;
}

static void start_connect(smpp_session_t *s, int64_t now)
{
    report(s, SMPP_SESSION_CONNECTING, "connecting to %s", s->peer);
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int rc = getaddrinfo(s->cfg.host, port, &hints, &s->ai);
    if (rc != 0) {
        s->ai = NULL;
        fail(s, SMPP_SESSION_DISCONNECTED, "cannot resolve %s: %s", s->cfg.host, gai_strerror(rc));
        return;
    }
    s->ai_cur = s->ai;
    try_connect(s, now, NULL);
}

static void on_connected(smpp_session_t *s, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0) {
        send_bind(s, now);
        return;
    }
    close(s->fd);
    s->fd = -1;
    s->ai_cur = s->ai_cur ? s->ai_cur->ai_next : NULL;
    try_connect(s, now, strerror(err));
}

/* ---- the loop ---- */

static void consider(int64_t *deadline, int64_t t)
{
    if (t < *deadline) *deadline = t;
}

static void expire_reassembly(smpp_session_t *s, int64_t now, int64_t *deadline)
{
    reasm_t *r = s->reasm;
    while (r) {
        reasm_t *next = r->next;
        int64_t at = r->first_at + s->cfg.reassembly_timeout_ms;
        if (now >= at)
            reasm_expire(s, r, "timed out");
        else
            consider(deadline, at);
        r = next;
    }
}

static void fail_all(smpp_session_t *s)
{
    /* nothing is outstanding any more: the connection is closed */
    msg_t *m;
    while ((m = s->a_head) != NULL)
        complete_msg(s, m, SMPP_LOCAL_STOPPED, "session stopped before the message was sent");
    for (;;) {
        pthread_mutex_lock(&s->mu);
        m = s->q_head;
        if (m) {
            s->q_head = m->next;
            if (!s->q_head) s->q_tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        if (!m) break;
        m->next = NULL;
        s->a_head = s->a_tail = m;
        complete_msg(s, m, SMPP_LOCAL_STOPPED, "session stopped before the message was sent");
    }
}

static void *session_main(void *arg)
{
    smpp_session_t *s = arg;
    int stop_seen = 0;
    while (!s->done) {
        int64_t now = clock_mono_ms();
        int64_t deadline = now + 1000;

        if (!stop_seen) {
            pthread_mutex_lock(&s->mu);
            stop_seen = s->stopping;
            pthread_mutex_unlock(&s->mu);
            if (stop_seen) {
                int grace = s->cfg.response_timeout_ms < 5000 ? s->cfg.response_timeout_ms : 5000;
                s->stop_deadline = now + grace;
                if (s->cs == CS_BOUND && !s->fail_pending) {
                    s->cs = CS_DRAINING;
                } else {
                    break;
                }
            }
        }

        /* timers */
        switch (s->cs) {
        case CS_IDLE:
            if (now >= s->reconnect_at)
                start_connect(s, now);
            else
                consider(&deadline, s->reconnect_at);
            break;
        case CS_CONNECTING:
            if (now - s->state_since >= s->cfg.connect_timeout_ms) {
                close(s->fd);
                s->fd = -1;
                s->ai_cur = s->ai_cur ? s->ai_cur->ai_next : NULL;
                try_connect(s, now, "connect timed out");
            } else {
                consider(&deadline, s->state_since + s->cfg.connect_timeout_ms);
            }
            break;
        case CS_BINDING:
            if (now - s->state_since >= s->cfg.response_timeout_ms)
                fail(s, SMPP_SESSION_DISCONNECTED, "no bind_transceiver_resp within %d ms",
                     s->cfg.response_timeout_ms);
            else
                consider(&deadline, s->state_since + s->cfg.response_timeout_ms);
            break;
        case CS_BOUND:
        case CS_DRAINING:
            if (s->enq_sent_at) {
                if (now - s->enq_sent_at >= s->cfg.enquire_link_timeout_ms)
                    fail(s, SMPP_SESSION_DISCONNECTED,
                         "dead link: no enquire_link_resp within %d ms",
                         s->cfg.enquire_link_timeout_ms);
                else
                    consider(&deadline, s->enq_sent_at + s->cfg.enquire_link_timeout_ms);
            } else if (now - s->last_rx >= s->cfg.enquire_link_interval_ms) {
                smpp_pdu_t p;
                smpp_pdu_init(&p, SMPP_ENQUIRE_LINK, next_seq(s));
                s->enq_seq = p.sequence;
                s->enq_sent_at = now;
                send_pdu(s, &p);
                consider(&deadline, now + s->cfg.enquire_link_timeout_ms);
            } else {
                consider(&deadline, s->last_rx + s->cfg.enquire_link_interval_ms);
            }
            for (int i = 0; i < s->ninfl && !s->fail_pending; i++) {
                int64_t at = s->infl[i].sent_at + s->cfg.response_timeout_ms;
                if (now >= at)
                    fail(s, SMPP_SESSION_DISCONNECTED, "no submit_sm_resp within %d ms",
                         s->cfg.response_timeout_ms);
                else
                    consider(&deadline, at);
            }
            if (s->cs == CS_BOUND) {
                pump(s, now);
                if (s->throttled) {
                    int64_t wait = (s->next_send_ns - clock_mono_ns()) / 1000000 + 1;
                    consider(&deadline, now + (wait > 0 ? wait : 1));
                }
            } else if (s->ninfl == 0 || now >= s->stop_deadline) {
                smpp_pdu_t p;
                smpp_pdu_init(&p, SMPP_UNBIND, next_seq(s));
                s->cs = CS_UNBINDING;
                send_pdu(s, &p);
            } else {
                consider(&deadline, s->stop_deadline);
            }
            break;
        case CS_UNBINDING:
            if (now >= s->stop_deadline)
                s->done = 1;
            else
                consider(&deadline, s->stop_deadline);
            break;
        }
        expire_reassembly(s, now, &deadline);

        if (s->fail_pending) {
            if (stop_seen) break;
            link_down(s, now);
            continue;
        }
        if (s->done) break;

        struct pollfd pfd[2] = {{.fd = s->wake[0], .events = POLLIN}, {.fd = -1}};
        int nfds = 1;
        if (s->fd >= 0) {
            pfd[1].fd = s->fd;
            pfd[1].events = s->cs == CS_CONNECTING ? POLLOUT : POLLIN;
            if (s->cs != CS_CONNECTING && s->woff < s->wbuf.len) pfd[1].events |= POLLOUT;
            nfds = 2;
        }
        int64_t wait = deadline - clock_mono_ms();
        if (wait < 0) wait = 0;
        int n = poll(pfd, (nfds_t)nfds, (int)wait);
        if (n < 0 && errno != EINTR) {
            log_kv(LOG_ERROR, "smpp poll failed", "error", strerror(errno));
            break;
        }
        if (n <= 0) continue;
        now = clock_mono_ms();
        if (pfd[0].revents & POLLIN) {
            char drain[64];
            while (read(s->wake[0], drain, sizeof drain) > 0) {
            }
        }
        if (nfds == 2 && pfd[1].revents) {
            if (s->cs == CS_CONNECTING) {
                on_connected(s, now);
            } else {
                if (pfd[1].revents & POLLOUT) flush(s);
                if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) on_readable(s, now);
            }
        }
        if (s->fail_pending && !stop_seen)
            link_down(s, now);
        else if (s->fail_pending)
            break;
    }
    /* stop: close (the SMSC has answered the unbind, or the grace period ended) */
    s->fail_pending = 0;
    close_conn(s);
    fail_all(s);
    while (s->reasm)
        reasm_expire(s, s->reasm, "session stopped");
    report(s, SMPP_SESSION_STOPPED, "stopped");
    return NULL;
}

/* ---- public API ---- */

static char *dup_or_empty(const char *v)
{
    return xstrdup(v ? v : "");
}

smpp_session_t *smpp_session_start(const smpp_config_t *cfg, const smpp_callbacks_t *cb, void *cls)
{
    err_t e;
    if (smpp_config_check(cfg, &e) < 0) {
        log_kv(LOG_ERROR, "smpp session not started", "error", e.message);
        return NULL;
    }
    smpp_session_t *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->cfg.host = xstrdup(cfg->host);
    s->cfg.system_id = xstrdup(cfg->system_id);
    s->cfg.password = dup_or_empty(cfg->password);
    s->cfg.system_type = dup_or_empty(cfg->system_type);
    s->cfg.source_addr = dup_or_empty(cfg->source_addr);
    smpp_config_t *c = &s->cfg;
    if (!c->dest_ton && !c->dest_npi) c->dest_ton = c->dest_npi = 1;
    if (!c->window) c->window = 10;
    if (!c->queue_size) c->queue_size = 1000;
    if (c->enquire_link_interval_ms <= 0) c->enquire_link_interval_ms = 30000;
    if (c->enquire_link_timeout_ms <= 0) c->enquire_link_timeout_ms = 10000;
    if (c->response_timeout_ms <= 0) c->response_timeout_ms = 30000;
    if (c->connect_timeout_ms <= 0) c->connect_timeout_ms = 10000;
    if (c->reconnect_min_ms <= 0) c->reconnect_min_ms = 1000;
    if (c->reconnect_max_ms <= 0) c->reconnect_max_ms = 60000;
    if (c->reconnect_max_ms < c->reconnect_min_ms) c->reconnect_max_ms = c->reconnect_min_ms;
    if (c->reassembly_timeout_ms <= 0) c->reassembly_timeout_ms = 60000;
    if (cb) s->cb = *cb;
    s->cls = cls;
    s->fd = -1;
    s->backoff_ms = c->reconnect_min_ms;
    s->interval_ns = c->throughput > 0 ? (int64_t)(1e9 / c->throughput) : 0;
    s->infl = xcalloc((size_t)c->window, sizeof *s->infl);
    s->rng = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)s ^ ((uint64_t)getpid() << 32);
    if (!s->rng) s->rng = 0x9E3779B97F4A7C15ull;
    s->next_ref = (uint8_t)rng_next(s);
    buf_init(&s->wbuf);
    int n = snprintf(s->peer, sizeof s->peer, "%s:%d", c->host, c->port);
    if (n < 0 || (size_t)n >= sizeof s->peer) snprintf(s->peer, sizeof s->peer, "smsc");
    pthread_mutex_init(&s->mu, NULL);
    if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        log_kv(LOG_ERROR, "smpp session not started", "error", strerror(errno));
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, session_main, s) != 0) {
        log_kv(LOG_ERROR, "smpp session not started", "error", "pthread_create failed");
        close(s->wake[0]);
        close(s->wake[1]);
        goto fail;
    }
    return s;
fail:
    pthread_mutex_destroy(&s->mu);
    free(s->infl);
    cfg_free(&s->cfg);
    free(s);
    return NULL;
}

static void wake(smpp_session_t *s)
{
    char c = 1;
    ssize_t n = write(s->wake[1], &c, 1);
    (void)n; /* a full pipe already guarantees a wake-up */
}

int smpp_submit(smpp_session_t *s, const char *to, const char *from, const char *utf8_text,
                const char *ref, err_t *e)
{
    if (!s || !to || !utf8_text) return err_set(e, ERR_INVALID_ARGUMENT, "smpp: missing argument");
    if (*to == '+') to++;
    size_t tl = strlen(to);
    if (tl == 0 || tl >= ADDR_CAP)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: recipient must be 1 to 20 digits");
    for (const char *c = to; *c; c++)
        if (*c < '0' || *c > '9')
            return err_set(e, ERR_INVALID_ARGUMENT, "smpp: recipient must be digits");
    if (!from) from = s->cfg.source_addr;
    if (strlen(from) >= ADDR_CAP)
        return err_set(e, ERR_INVALID_ARGUMENT, "smpp: sender longer than 20 characters");

    msg_t *m = xcalloc(1, sizeof *m);
    if (smpp_split(utf8_text, strlen(utf8_text), 0, &m->split, e) < 0) {
        free(m);
        return -1;
    }
    memcpy(m->to, to, tl + 1);
    int alnum = addr_is_alnum(from);
    if (*from == '+' && !alnum) from++;
    snprintf(m->from, sizeof m->from, "%s", from);
    m->src_ton = alnum ? 5 : s->cfg.source_ton; /* 5/0: alphanumeric sender */
    m->src_npi = alnum ? 0 : s->cfg.source_npi;
    m->ref = xstrdup(ref ? ref : "");
    m->pstate = xcalloc(m->split.count, 1);
    m->pid = xcalloc(m->split.count, sizeof *m->pid);

    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) {
        rc = err_set(e, ERR_FAILED_PRECONDITION, "smpp: session is stopping");
    } else if (s->count >= s->cfg.queue_size) {
        rc =
            err_set(e, ERR_RESOURCE_EXHAUSTED, "smpp: queue full (%d messages)", s->cfg.queue_size);
    } else {
        if (m->split.count > 1) {
            /* the UDH reference: one per concatenated message, per session */
            uint8_t r = s->next_ref++;
            for (size_t i = 0; i < m->split.count; i++)
                m->split.parts[i].data[3] = r;
        }
        s->count++;
        if (s->q_tail)
            s->q_tail->next = m;
        else
            s->q_head = m;
        s->q_tail = m;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) {
        msg_free(m);
        return -1;
    }
    wake(s);
    return 0;
}

void smpp_session_stop(smpp_session_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    wake(s);
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->wake[1]);
    if (s->ai) freeaddrinfo(s->ai);
    free(s->rbuf);
    buf_free(&s->wbuf);
    free(s->infl);
    pthread_mutex_destroy(&s->mu);
    cfg_free(&s->cfg);
    free(s);
}
