/* convo.h: the Conversation API domain (apps, contacts, conversations, messages,
 * webhooks) and the helpers its resources share: channels, paging, update masks, times,
 * sealed secrets. Domain functions take a convo_ctx_t (connection + project + keys) and
 * JSON in the Sinch v1 wire shape, validate it completely before writing anything, and
 * return new JSON (owned by the caller) or NULL with err filled. Each resource lives in
 * its own file: apps.c, contacts.c, conversations.c, messages.c, webhooks.c. */
#ifndef PARLEY_CONVO_H
#define PARLEY_CONVO_H

#include "base/err.h"
#include "base/ulid.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
    store_conn_t *conn;
    const char *project_id;
    const uint8_t *seal_key; /* 32 bytes: seals stored secrets */
    const char *actor; /* who acts, for the event stream: "key:ID", "user:ID"; NULL = system */
} convo_ctx_t;

/* ---- channels ---- */

typedef enum {
    CONVO_SMS = 0,
    CONVO_WHATSAPP,
    CONVO_MESSENGER,
    CONVO_INSTAGRAM,
    CONVO_VIBERBM,
    CONVO_TELEGRAM,
    CONVO_RCS,
    CONVO_CHANNEL_COUNT
} convo_channel_t;

/* Supported channel names, NULL-terminated, in enum order ("SMS", "WHATSAPP", ...). */
extern const char *const convo_channel_names[];
/* Parse a channel name. Known Sinch channels Parley does not carry (MMS, LINE, ...) get
 * "channel X is not supported by Parley"; anything else "unknown channel". field names
 * the JSON path in the message. -1 with e filled on error. */
int convo_channel_parse(const char *s, const char *field, err_t *e);
/* MESSENGER, INSTAGRAM and VIBERBM identities are scoped to an app. */
int convo_channel_app_scoped(convo_channel_t ch);

/* ---- values ---- */

/* RFC 3339 UTC string for a time in ms (new reference). */
json_t *convo_time_json(int64_t ms);
/* The first column of every row of st (from store_query; NULL gives NULL) as a JSON array
 * of strings, st finished. For "read the ids, then load each": loading runs other statements
 * on the connection, which must not interleave with st's rows. NULL with e set on error. */
json_t *convo_col_strings(store_stmt_t *st, err_t *e);
/* Optional string field with a length cap: 0 absent, 1 ok, -1 error. */
int convo_str_field(json_t *obj, const char *key, const char *name, size_t max_len,
                    const char **out, err_t *e);
/* A path or body id that must be a ULID: -1 with INVALID_ARGUMENT naming field. */
int convo_check_id(const char *id, const char *field, err_t *e);
/* ULIDs are case-insensitive and stored upper-case: check id and write its canonical form. */
int convo_norm_id(const char *id, const char *field, char out[ULID_LEN + 1], err_t *e);

/* ---- existence within the project ---- */

typedef enum { CONVO_KIND_APP, CONVO_KIND_CONTACT, CONVO_KIND_CONVERSATION } convo_kind_t;

/* 1 if the resource is in cx's project, 0 if not, -1 on a store error. */
int convo_exists(const convo_ctx_t *cx, convo_kind_t kind, const char *id, err_t *e);
/* 0 if it exists; else -1 with NOT_FOUND ("app 01.. not found") or the store error. */
int convo_require(const convo_ctx_t *cx, convo_kind_t kind, const char *id, err_t *e);

/* ---- paging: opaque, URL-safe tokens over keyset (id) order ---- */

typedef struct {
    int64_t size;             /* rows per page */
    char after[ULID_LEN + 1]; /* "" = from the start */
} convo_page_t;

/* page_size (NULL = def) must be 1..max; page_token must be one Parley issued. */
int convo_page_parse(const char *page_size, const char *page_token, int64_t def, int64_t max,
                     convo_page_t *out, err_t *e);
/* Token that continues after last_id (out: 64 bytes). */
void convo_page_token(const char *last_id, char out[64]);
/* Finish a list: arr holds up to size+1 items fetched in id order; if there are more
 * than size, the extra is dropped and next_page_token set, else next_page_token is "".
 * Returns {key: arr, next_page_token, total_size} (steals arr). id_key names each
 * item's id field ("id"). */
json_t *convo_page_result(json_t *arr, const char *key, const convo_page_t *page, int64_t total,
                          const char *id_key);

/* ---- update masks: ?update_mask=a,b (SDK) or repeated update_mask.paths=a (REST) ---- */

#define CONVO_MASK_MAX 32
typedef struct {
    int n; /* 0 = no mask: update every field present in the body */
    const char *path[CONVO_MASK_MAX];
} convo_mask_t;

/* Split comma-separated values from each of raw[0..nraw) (pointers into the input strings
 * are copied into the mask; the input must outlive it). Each path must be one of
 * allowed[] (NULL-terminated) else INVALID_ARGUMENT naming it. */
int convo_mask_parse(char *const raw[], int nraw, const char *const allowed[], convo_mask_t *m,
                     err_t *e);
/* Should field `path` be updated? With no mask: when body has the key. With a mask: when
 * listed (a listed field absent from the body is cleared to its default). */
int convo_mask_wants(const convo_mask_t *m, json_t *body, const char *path);

/* ---- secrets at rest ---- */

/* Seal a JSON value (serialised) -> malloc'd text, or NULL. */
char *convo_seal_json(const convo_ctx_t *cx, const json_t *v);
/* Open a sealed JSON value -> new reference, or NULL if tampered. */
json_t *convo_open_json(const convo_ctx_t *cx, const char *sealed);
/* "abcdef1234" -> "abc*******34": enough to recognise, never enough to use. */
char *convo_mask_secret(const char *secret);

#endif
