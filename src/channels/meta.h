/* meta.h: what the three Meta adapters (WHATSAPP in whatsapp.c, MESSENGER in messenger.c,
 * INSTAGRAM in instagram.c) share, because Meta builds all three on the Graph API:
 *
 *   - X-Hub-Signature-256 webhook verification ("sha256=" + hex HMAC-SHA256 of the raw
 *     body keyed with the Meta app secret, which Parley keeps as the credential's
 *     callback_secret);
 *   - the GET hub.mode / hub.verify_token / hub.challenge subscription handshake;
 *   - Graph API error bodies {"error":{"message","type","code","error_subcode",...}} and
 *     their mapping to Sinch Reason codes and retry/fail outcomes;
 *   - the Messenger Platform message shapes that Messenger and Instagram both speak
 *     (quick replies, button and generic templates, attachments) and their webhook
 *     "messaging" events;
 *   - small string helpers (UTF-8 aware lengths and truncation, URL building, JSON output).
 *
 * Everything here is pure: no I/O. Memory: json_t arguments are borrowed; returned json_t
 * values and malloc'd strings belong to the caller. */
#ifndef PARLEY_CHANNEL_META_H
#define PARLEY_CHANNEL_META_H

#include "base/err.h"
#include "channels/channel.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The Graph API version Parley speaks by default (every adapter's default_base_url). */
#define CHANNEL_META_BASE_URL "https://graph.facebook.com/v19.0"

/* ---- inbound: signature and handshake ---- */

/* Check X-Hub-Signature-256 against HMAC-SHA256(callback_secret, raw body), in constant
 * time. 0 if authentic; -1 with ERR_UNAUTHENTICATED (missing, malformed or wrong
 * signature) or ERR_PERMISSION_DENIED (no app secret configured). */
int channel_meta_verify(const channel_inbound_t *in, const char *callback_secret, err_t *e);
/* Answer GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C: 200 with body C when
 * T equals callback_secret; otherwise -1 with ERR_PERMISSION_DENIED (reply->status 403),
 * or ERR_INVALID_ARGUMENT when the challenge is missing or too long. */
int channel_meta_handshake(const channel_inbound_t *in, const char *callback_secret,
                           channel_reply_t *reply, err_t *e);

/* ---- Graph API errors ---- */

typedef struct {
    int found;         /* 1 if the body was a Graph error object */
    long code;         /* error.code (0 if absent) */
    long subcode;      /* error.error_subcode (0 if absent) */
    int transient;     /* error.is_transient */
    char message[256]; /* error.message, plus " (error_data.details)" when present */
} channel_meta_error_t;

/* Parse a Graph error body; out->found is 0 when the body is not one. */
void channel_meta_error_parse(const char *body, size_t len, channel_meta_error_t *out);
/* The Sinch Reason.code for a Graph/WhatsApp error code, or NULL if Parley has no mapping;
 * *retry is set to 1 for transient codes (rate limits, temporary outages). */
const char *channel_meta_reason(long code, long subcode, int *retry);
/* Fill out (outcome, reason_code, description) for an answer that is not a success:
 * 429/5xx/0 and transient codes RETRY, everything else FAILED. */
void channel_meta_failure(long status, const char *body, size_t len, channel_result_t *out);
/* check_result shared by all three: 2xx is 0 (ACTIVE); else -1 with the Graph message. */
int channel_meta_check_result(long status, const char *body, size_t len, char *description,
                              size_t cap);

/* ---- credentials and requests ---- */

/* The string field of an unsealed credential. Accepts the credential object itself
 * ({"token":..}) or its wrapper ({"static_bearer":{"token":..}}, key = wrapper name).
 * NULL when absent, not a string, empty, or holding control characters (which could
 * split an HTTP header). */
const char *channel_meta_cred(json_t *credential, const char *key, const char *field);
/* in->base_url without trailing slashes, or CHANNEL_META_BASE_URL when unset (malloc'd). */
char *channel_meta_base(const char *base_url);
/* Append s percent-encoded (RFC 3986 unreserved characters stay) to a malloc'd string. */
char *channel_meta_pct(const char *s);
/* Compact JSON with coordinates printed as written (15 significant digits). */
char *channel_meta_dump(const json_t *v);

/* ---- text ---- */

/* Unicode code points in a UTF-8 string (Meta's limits count characters). */
size_t channel_meta_chars(const char *s);
/* Media kind from a URL's (or file name's) extension: "image", "video", "audio" or
 * "document" (anything unknown). */
const char *channel_meta_media_kind(const char *url, const char *filename);

/* ---- webhook parsing ---- */

/* Parse state: events go to a local list first, so a malformed payload adds nothing to
 * the caller's list. Finish with channel_meta_parse_done (success: moves the events to
 * out) or channel_events_free(&p.ev) (failure). */
typedef struct {
    channel_events_t ev;
    err_t *e;
} channel_meta_parse_t;

/* Typed field access on provider payloads; errors are INVALID_ARGUMENT naming path.key.
 * opt_*: 0 absent (or null), 1 present, -1 wrong type. need_string: -1 when absent/empty. */
int channel_meta_opt_string(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                            const char **out);
int channel_meta_opt_type(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                          json_type t, const char *tname, json_t **out);
int channel_meta_need_string(channel_meta_parse_t *p, json_t *o, const char *key, const char *path,
                             const char **out);
/* Append a MESSAGE (takes cm) or RECEIPT event; NULL with p->e when an id does not fit. */
channel_event_t *channel_meta_add_message(channel_meta_parse_t *p, const char *identity,
                                          const char *pid, int64_t ms, json_t *cm);
channel_event_t *channel_meta_add_receipt(channel_meta_parse_t *p, const char *identity,
                                          const char *pid, const char *status, int64_t ms);
void channel_meta_parse_done(channel_meta_parse_t *p, channel_events_t *out);
/* ContactMessages: {"fallback_message":{raw_message: raw as JSON, reason}} for what Parley
 * does not map, and {"choice_response_message":{message_id, postback_data}}. */
json_t *channel_meta_fallback_message(json_t *raw, const char *why);
json_t *channel_meta_choice_response(const char *message_id, const char *postback);

/* ---- Messenger Platform (Messenger and Instagram) ---- */

typedef struct {
    const char *channel; /* "Messenger" / "Instagram", for error messages */
    size_t text_max;     /* message text limit */
    int text_in_bytes;   /* 1: text_max counts UTF-8 bytes (Instagram), 0: characters */
    int button_template; /* the button template is available (Messenger) */
    int phone_buttons;   /* phone_number buttons are available (Messenger) */
} channel_meta_msgr_t;

/* The Send API "message" object for an AppMessage, or NULL with e (INVALID_ARGUMENT naming
 * the limit, or the type that has no form on the channel). */
json_t *channel_meta_msgr_message(json_t *app_message, const channel_meta_msgr_t *o, err_t *e);
/* send_result for the Send API: 2xx {"recipient_id","message_id"} is SENT. */
void channel_meta_msgr_result(long status, const char *body, size_t len, channel_result_t *out);
/* Parse {"object":object,"entry":[{"messaging":[...]}]} (Instagram also delivers the same
 * events as entry[].changes[] with field "messages"). Other objects give 0 events. */
int channel_meta_msgr_parse(const channel_inbound_t *in, const char *object, int changes,
                            channel_events_t *out, err_t *e);

#endif
