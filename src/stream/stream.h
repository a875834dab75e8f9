/* stream.h: the event stream, the one way Parley's domains hear of each other. A producer
 * appends an event inside the write transaction that makes the change (so an event exists
 * exactly when its change does); each consumer reads events in commit order from its own
 * durable cursor. A consumer's handler runs inside the transaction that advances the
 * cursor, so whatever the handler writes is applied exactly once with respect to the
 * store: a crash before the commit replays the event, a crash after it does not. A handler
 * that defers work to memory (a queue, a thread) must persist it in that same transaction
 * to keep the promise.
 *
 * Kinds written by the Conversation API: every callback trigger (MESSAGE_INBOUND,
 * MESSAGE_DELIVERY, MESSAGE_SUBMIT, CONVERSATION_START, CONVERSATION_STOP,
 * CONVERSATION_DELETE, CONTACT_CREATE, CONTACT_UPDATE, CONTACT_DELETE, CONTACT_MERGE, ...),
 * whether or not any webhook listens, with the callback body as payload
 * ({"app_id","project_id","accepted_time","event_time", <notification key>: {...}}).
 * Contact events are appended once per project with app_id "". Other domains may append
 * their own kinds (e.g. Flows' CONTACT_HANDOVER); kinds are upper-case words. */
#ifndef PARLEY_STREAM_H
#define PARLEY_STREAM_H

#include "base/err.h"
#include "store/group.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>

/* Append one event; must run inside the caller's write transaction. payload is a JSON
 * object as text; actor may be NULL. Wakes consumers once the caller's transaction is
 * committed and nudge_flush runs (the HTTP layer flushes after every domain call). */
int stream_append(store_conn_t *c, const char *project_id, const char *app_id, const char *kind,
                  const char *payload, const char *actor, err_t *e);

typedef struct {
    int64_t seq;
    const char *project_id;
    const char *app_id; /* "" for project-wide events */
    const char *kind;
    const char *actor;        /* "" when the system caused it */
    const char *payload_text; /* the JSON object as stored */
    int64_t created_at;
    json_t *parsed; /* private: see stream_event_payload */
} stream_event_t;

/* The event's payload as JSON, parsed on first use (most consumers skip most kinds without
 * looking inside); borrowed for the handler's call. An unparsable payload reads as {}. */
json_t *stream_event_payload(const stream_event_t *ev);

/* A consumer's handler: runs inside a savepoint of the batch transaction. 0 = handled;
 * -1 = failed: its savepoint is rolled back, the failure is logged and the event is
 * skipped, unless e->code is ERR_UNAVAILABLE (store busy), which stops the batch so that
 * the event is retried. */
typedef int (*stream_handler_fn)(store_conn_t *c, const stream_event_t *ev, void *ud, err_t *e);

/* One batch for consumer `name`: read up to max events after its cursor, handle each,
 * advance the cursor, commit. Returns events handled (0 when caught up) or -1. */
int stream_consume(store_conn_t *c, const char *name, stream_handler_fn fn, void *ud, int max,
                   err_t *e);

/* Where consumers write: with a group-commit writer set (serve sets it before starting the
 * consumers, and clears it after stopping them), stream_consume_in runs each batch as a
 * unit of that writer, inside its batch transaction, so the store keeps one writing
 * connection (no lock hand-over, and the writer's page cache stays valid). Without one,
 * each batch is a transaction on the calling thread's own connection. */
void stream_use_writer(store_group_t *g);
/* stream_consume on the writer set above (waiting until its batch committed), else on s's
 * connection for this thread. Same result; -1 also when the batch's COMMIT failed. kinds
 * (NULL-terminated, static; NULL: all) are the kinds the handler takes: the cursor passes
 * over the others without calling it, copying their payload or opening a savepoint (they
 * still count in the result). */
int stream_consume_in(store_t *s, const char *name, const char *const *kinds, stream_handler_fn fn,
                      void *ud, int max, err_t *e);

/* The consumer's cursor (0 when it has never run). A new consumer that should not replay
 * history can set its cursor to stream_head first. */
int64_t stream_cursor(store_conn_t *c, const char *name, err_t *e);
int stream_set_cursor(store_conn_t *c, const char *name, int64_t seq, err_t *e);
/* Delete the cursors of consumers not in `known` (NULL-terminated): those of a consumer
 * an earlier version had and this one renamed or dropped, which would otherwise hold back
 * stream_trim for ever. Logs each. Returns how many went, or -1. */
int stream_cursors_prune(store_conn_t *c, const char *const known[], err_t *e);
/* The newest seq (0 when empty), -1 on error. */
int64_t stream_head(store_conn_t *c, err_t *e);

/* A thread that runs stream_consume_in for `name` (and its kinds) whenever new events are
 * committed (woken by nudge_flush; polls every poll_ms otherwise). */
typedef struct stream_consumer stream_consumer_t;
stream_consumer_t *stream_consumer_start(store_t *s, const char *name, const char *const *kinds,
                                         stream_handler_fn fn, void *ud, int poll_ms, err_t *e);
/* Finishes the batch in progress and joins the thread. Accepts NULL. */
void stream_consumer_stop(stream_consumer_t *sc);

/* Remove events every consumer has passed and that are older than before_ms (retention).
 * Returns rows removed or -1. */
int64_t stream_trim(store_conn_t *c, int64_t before_ms, int limit, err_t *e);

/* The retention step for the stream (a privacy_sweep_fn): events older than a week that
 * every consumer has passed. */
#define STREAM_KEEP_MS (7LL * 24 * 3600 * 1000)
int64_t stream_sweep(store_conn_t *c, int64_t now_ms, int limit, err_t *e);

#endif
