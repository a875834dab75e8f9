/* channel.h: one interface for every channel adapter (one file per channel). Adapters are
 * pure translators between Parley's generic Conversation API shapes and a provider's own
 * wire format: they build the HTTP request to send, read the provider's answer, verify and
 * parse the provider's inbound webhooks, and transcode messages. They do no I/O: the
 * dispatcher (src/dispatch) performs requests and the HTTP layer receives webhooks, so
 * every adapter is unit-testable byte for byte.
 *
 * Memory: every json_t handed to an adapter is borrowed; everything an adapter returns is
 * owned by the caller and freed with the matching *_free function or json_decref. */
#ifndef PARLEY_CHANNEL_H
#define PARLEY_CHANNEL_H

#include "base/err.h"
#include "convo/convo.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- outbound ---- */

#define CHANNEL_MAX_HEADERS 8

/* A request for the dispatcher to perform. */
typedef struct {
    char method[8];                     /* "POST", "GET" */
    char *url;                          /* malloc'd, absolute */
    char *headers[CHANNEL_MAX_HEADERS]; /* malloc'd "Name: value" lines, NULL-terminated */
    char *body;                         /* malloc'd (may be NULL for GET) */
    size_t body_len;
} channel_http_t;

void channel_http_free(channel_http_t *h);
/* Helpers for adapters: set url/body (copied) and append a header line. */
void channel_http_set(channel_http_t *h, const char *method, const char *url, const char *ctype,
                      const char *body);
void channel_http_header(channel_http_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What to send, and with which credential. */
typedef struct {
    const char *base_url;       /* provider API base, e.g. "https://graph.facebook.com/v19.0";
                                   configurable so tests point adapters at local fakes */
    json_t *credential;         /* the app's unsealed credential object for this channel,
                                   e.g. {"claimed_identity":"...","token":"..."} */
    const char *recipient;      /* the contact's identity on this channel */
    json_t *app_message;        /* a validated AppMessage (convo_message_check_app) */
    json_t *channel_properties; /* SendMessageRequest.channel_properties, may be NULL */
    const char *message_id;     /* Parley's message id (for idempotency keys, references) */
} channel_send_t;

typedef enum {
    CHANNEL_SENT = 0, /* accepted by the provider */
    CHANNEL_RETRY,    /* transient (5xx, 429, timeout): try the same channel again later */
    CHANNEL_FAILED,   /* permanent for this channel: fall back to the next one */
} channel_outcome_t;

typedef struct {
    channel_outcome_t outcome;
    char provider_id[160]; /* the provider's id of the sent message (for receipts) */
    char reason_code[64];  /* on failure: a Sinch Reason.code, e.g. RECIPIENT_NOT_REACHABLE */
    char description[256]; /* on failure: the provider's own words */
} channel_result_t;

/* ---- inbound ---- */

/* An inbound webhook request as the HTTP layer received it. */
typedef struct {
    const char *method; /* "POST" or "GET" (verify handshakes) */
    const char *body;
    size_t body_len;
    const char *(*header)(void *cls, const char *name); /* case-insensitive lookup */
    const char *(*query)(void *cls, const char *name);
    void *cls;
} channel_inbound_t;

typedef enum {
    CHANNEL_EVENT_MESSAGE = 0, /* a contact wrote: contact_message is set */
    CHANNEL_EVENT_RECEIPT,     /* a delivery/read report for a message Parley sent */
} channel_event_kind_t;

typedef struct {
    channel_event_kind_t kind;
    char identity[256];      /* the contact's identity on this channel (sender/recipient) */
    char provider_id[160];   /* MESSAGE: the provider's message id (for de-duplication);
                                RECEIPT: the provider id of the message it reports on */
    json_t *contact_message; /* MESSAGE: a Sinch ContactMessage, e.g. {"text_message":{..}} */
    char status[24];         /* RECEIPT: QUEUED_ON_CHANNEL, DELIVERED, READ or FAILED */
    char reason_code[64];    /* RECEIPT FAILED: a Sinch Reason.code */
    char display_name[128];  /* MESSAGE: the sender's profile name, when the payload has one */
    int64_t time_ms;         /* when the provider says it happened (0 = unknown) */
} channel_event_t;

typedef struct {
    channel_event_t *items;
    size_t n, cap;
} channel_events_t;

void channel_events_free(channel_events_t *ev);
/* Append a zeroed event for an adapter to fill. */
channel_event_t *channel_events_add(channel_events_t *ev);

/* The HTTP answer an inbound handler gives the provider (handshakes echo a challenge). */
typedef struct {
    int status;
    char body[512];
} channel_reply_t;

/* ---- the adapter ---- */

typedef struct {
    convo_channel_t channel;
    const char *name;           /* "WHATSAPP" */
    const char *credential_key; /* "static_bearer", "static_token", "telegram_credentials", ... */
    const char *default_base_url;
    int handshake_on_post;

    /* Build the provider request that sends in->app_message to in->recipient. A message the
     * channel cannot carry (too long, unsupported type) is INVALID_ARGUMENT naming why. */
    int (*send)(const channel_send_t *in, channel_http_t *out, err_t *e);
    /* Read the provider's answer to that request (status 0 = no answer / timeout). */
    void (*send_result)(long status, const char *body, size_t len, channel_result_t *out);

    /* Verify an inbound webhook's signature (or secret token) with the app's credential
     * and callback_secret. 0 if authentic; -1 with ERR_UNAUTHENTICATED (provider gets 401)
     * or ERR_PERMISSION_DENIED (403). callback_secret may be NULL. */
    int (*verify)(const channel_inbound_t *in, json_t *credential, const char *callback_secret,
                  err_t *e);
    /* Parse an authentic inbound payload into events (messages, receipts). Payloads with
     * nothing Parley handles give 0 events and 0 (the provider still gets 200). Malformed
     * ones are -1 with ERR_INVALID_ARGUMENT (400). */
    int (*parse)(const channel_inbound_t *in, channel_events_t *out, err_t *e);
    /* Optional (NULL if the channel has none): answer a verification handshake, a GET
     * (WhatsApp/Messenger/Instagram hub.challenge), or with handshake_on_post a POST (RBM's
     * {clientToken, secret}). 0 with reply filled, -1 to refuse, and for a POST 1 when the
     * request is not a handshake (it is then verified and parsed as usual). */
    int (*handshake)(const channel_inbound_t *in, json_t *credential, const char *callback_secret,
                     channel_reply_t *reply, err_t *e);

    /* Build the request that checks the credential with the provider (Telegram getMe,
     * WhatsApp phone number lookup, ...), and read its answer: 0 = ACTIVE, -1 = FAILING
     * with a description. */
    int (*check)(const channel_send_t *in, channel_http_t *out, err_t *e);
    int (*check_result)(long status, const char *body, size_t len, char *description, size_t cap);

    /* What the channel would receive for app_message (messages:transcode), as the provider's
     * JSON message object (SMS: {"text": "..."}). NULL with e on a message it cannot carry. */
    json_t *(*transcode)(json_t *app_message, err_t *e);
} channel_t;

/* ---- small helpers every adapter uses ---- */

/* o[key] as a string, or NULL (channel_str) / "" (channel_str_or). */
const char *channel_str(json_t *o, const char *key);
const char *channel_str_or(json_t *o, const char *key);
/* Compact JSON with 15 significant digits for reals (coordinates); malloc'd. */
char *channel_dump(const json_t *v);
/* INVALID_ARGUMENT "<CHANNEL> <what> is limited to <max> <unit>, got <have>"; returns -1. */
int channel_too_long(err_t *e, const char *channel, const char *what, size_t have, size_t max,
                     const char *unit);

/* Fill a send result: outcome, Sinch Reason.code, and the provider's words (cut to fit). */
void channel_result_set(channel_result_t *r, channel_outcome_t outcome, const char *code,
                        const char *description);
/* A provider id given as a JSON integer or non-empty string, as text; -1 otherwise. */
int channel_id_text(json_t *v, char *out, size_t cap);

/* The adapter of a channel (NULL for SMS, which speaks SMPP: see channels/smpp.h). */
const channel_t *channel_get(convo_channel_t ch);

#endif
