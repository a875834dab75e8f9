/* smpp.h: an SMPP 3.4 client session (ESME side, bind_transceiver) for the SMS channel.
 * One session is one TCP connection to one SMSC, run by its own thread with a poll() loop:
 * it connects and binds, keeps a window of outstanding submit_sm, paces sends to a
 * throughput, answers the SMSC's enquire_link and unbind, probes an idle link with
 * enquire_link, detects a dead link, and reconnects with backoff. Outbound texts are
 * queued with smpp_submit (any thread) and split into parts by smpp_pdu.h; inbound
 * deliver_sm are reassembled and handed to callbacks.
 *
 * Threads: every callback runs on the session thread, never concurrently with another
 * callback of the same session, and may call smpp_submit but never smpp_session_stop.
 * Callbacks stop once smpp_session_stop returns. Strings passed to callbacks are borrowed for the
 * call. Memory: the session copies its config; smpp_session_stop frees everything. */
#ifndef PARLEY_CHANNELS_SMPP_H
#define PARLEY_CHANNELS_SMPP_H

#include "base/err.h"
#include "channels/smpp_pdu.h"

#include <stdint.h>

typedef struct smpp_session smpp_session_t;

typedef struct {
    const char *host;               /* SMSC host name or address */
    int port;                       /* usually 2775 */
    const char *system_id;          /* at most 15 characters */
    const char *password;           /* at most 8 characters */
    const char *system_type;        /* NULL or "" for none; at most 12 characters */
    const char *source_addr;        /* default sender, at most 20 characters */
    uint8_t source_ton, source_npi; /* for numeric senders (alphanumeric: always 5/0) */
    uint8_t dest_ton, dest_npi;     /* 0/0 means 1/1: international, E.164 */
    int no_receipts;                /* 1: registered_delivery 0; default asks for final
                                       delivery receipts (registered_delivery 1) */
    int window;                     /* outstanding submit_sm, 0 = 10 */
    double throughput;              /* submit_sm per second, 0 = unlimited */
    int queue_size;                 /* messages queued or in flight, 0 = 1000 */
    int enquire_link_interval_ms;   /* idle time before enquire_link, 0 = 30000 */
    int enquire_link_timeout_ms;    /* missing enquire_link_resp means dead, 0 = 10000 */
    int response_timeout_ms;        /* bind_resp / submit_sm_resp / unbind_resp, 0 = 30000 */
    int connect_timeout_ms;         /* TCP connect, 0 = 10000 */
    int reconnect_min_ms;           /* first backoff, 0 = 1000; doubles up to ... */
    int reconnect_max_ms;           /* ... this, 0 = 60000; each delay gets +-25% jitter */
    int reassembly_timeout_ms; /* wait for the missing parts of an inbound message, 0 = 60000 */
} smpp_config_t;

typedef enum {
    SMPP_SESSION_CONNECTING = 0, /* resolving, connecting, binding */
    SMPP_SESSION_BOUND,          /* bound_trx: submits flow */
    SMPP_SESSION_DISCONNECTED,   /* the link is down (connect failed, lost, unbound by the
                                    SMSC); a reconnect is scheduled */
    SMPP_SESSION_FAILED,         /* the SMSC refused the bind ("bind refused: ESME_RINVPASWD");
                                    a reconnect is still scheduled, with backoff */
    SMPP_SESSION_STOPPED,        /* smpp_session_stop: the last state reported */
} smpp_session_state_t;

typedef struct {
    /* A state change; description is human-readable ("bound to smsc:2775 as parley"). */
    void (*on_state)(void *cls, smpp_session_state_t state, const char *description);
    /* Every part of a message was answered (or the message was given up). command_status
     * is 0 on success, otherwise the first failing part's status (an ESME_* value) or
     * SMPP_LOCAL_STOPPED. smsc_message_id holds the ids of the accepted parts joined by
     * ',' (first part first; "" if none); description is "ESME_ROK" or the error. */
    void (*on_submitted)(void *cls, const char *ref, const char *smsc_message_id,
                         uint32_t command_status, const char *description);
    /* An inbound (MO) message, parts already reassembled. provider_id is a ULID minted by
     * Parley (SMPP gives MO messages no id). Return 0 once the message is durable, -1 to
     * make the SMSC retry later (deliver_sm_resp ESME_RX_T_APPN). */
    int (*on_deliver)(void *cls, const char *from, const char *to, const char *utf8_text,
                      const char *provider_id);
    /* A delivery receipt for a part Parley submitted. Same return contract as on_deliver. */
    int (*on_receipt)(void *cls, const char *smsc_message_id, smpp_receipt_status_t status,
                      int error_code);
} smpp_callbacks_t;

/* A pseudo command_status (outside the ESME range) for messages still queued when the
 * session stopped. */
#define SMPP_LOCAL_STOPPED 0x00010000u

/* Check and copy cfg, then start the session thread, which connects at once. NULL for a
 * bad config (missing host or system_id, port out of range, over-long fields: the reason
 * is logged, and smpp_config_check gives it as a value) or when the thread cannot start.
 * cb is copied (NULL members are allowed); cls is passed to every callback. */
smpp_session_t *smpp_session_start(const smpp_config_t *cfg, const smpp_callbacks_t *cb, void *cls);
/* The checks smpp_session_start makes, for callers that want the reason as a value. */
int smpp_config_check(const smpp_config_t *cfg, err_t *e);

/* Queue a text for `to` (digits, an optional leading '+' is dropped). from NULL means the
 * configured source_addr. ref is the caller's id, echoed by on_submitted. Thread-safe.
 * -1 with INVALID_ARGUMENT (bad address, invalid UTF-8, more than 255 parts),
 * RESOURCE_EXHAUSTED (queue full) or FAILED_PRECONDITION (stopping). */
int smpp_submit(smpp_session_t *s, const char *to, const char *from, const char *utf8_text,
                const char *ref, err_t *e);

/* Unbind gracefully (waits up to response_timeout_ms, at most 5 s, for unbind_resp), report
 * still-queued messages to on_submitted with SMPP_LOCAL_STOPPED, report STOPPED, join the
 * thread and free the session. NULL is a no-op. */
void smpp_session_stop(smpp_session_t *s);

const char *smpp_session_state_name(smpp_session_state_t state);

#endif
