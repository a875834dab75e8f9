/* debug.c: the per-project debug stream. Debug nodes, runtime errors and node warnings
 * append entries to a ring of the last FLOWS_DEBUG_RING entries per project (memory only:
 * the debug sidebar of Node-RED is not persisted either). Readers: GET .../debug (a JSON
 * array) and SSE streams, which pull from the ring with their own cursor (entry id) so a
 * slow client never blocks a flow: it just misses entries that fell out of the ring.
 *
 * Entry: {"id","node_id","name","type","z","path","msg","property","format","timestamp",
 * "level","topic"?}; ids are increasing integers as strings (also the SSE event id). */
#include "flows/internal.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/jsonx.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOWS_DEBUG_RING      1000
#define FLOWS_DEBUG_ENTRY_MAX (256 * 1024) /* bytes of one entry's JSON */

typedef struct {
    int64_t seq[FLOWS_DEBUG_RING];
    char *text[FLOWS_DEBUG_RING];
    int start, count;
} ring_t;

static pthread_mutex_t dmu = PTHREAD_MUTEX_INITIALIZER;
static json_t *rings; /* project id -> ring pointer */
static int64_t last_seq;

static ring_t *ring_get(const char *project, int create)
{
    if (!rings) {
        if (!create) return NULL;
        rings = json_object();
    }
    json_t *v = json_object_get(rings, project);
    if (v) return (ring_t *)(intptr_t)json_integer_value(v);
    if (!create) return NULL;
    ring_t *r = xcalloc(1, sizeof *r);
    json_object_set_new(rings, project, json_integer((json_int_t)(intptr_t)r));
    return r;
}

void flows_debug_push(const char *project_id, json_t *entry)
{
    int64_t now = clock_now_ms();
    if (!json_object_get(entry, "timestamp"))
        json_object_set_new(entry, "timestamp", json_integer(now));
    pthread_mutex_lock(&dmu);
    int64_t seq = last_seq + 1;
    if (seq < now * 1000) seq = now * 1000; /* ids keep growing across restarts */
    last_seq = seq;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)seq);
    json_object_set_new(entry, "id", json_string(id));
    char *text = json_dumps(entry, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text && strlen(text) > FLOWS_DEBUG_ENTRY_MAX) { /* keep the ring's memory bounded */
        char note[96];
        snprintf(note, sizeof note, "(too large to show: %zu bytes)", strlen(text));
        free(text);
        json_object_set_new(entry, "msg", json_string(note));
        text = json_dumps(entry, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    json_decref(entry);
    if (!text) text = xstrdup("{}");
    ring_t *r = ring_get(project_id, 1);
    int slot;
    if (r->count == FLOWS_DEBUG_RING) {
        slot = r->start;
        free(r->text[slot]);
        r->start = (r->start + 1) % FLOWS_DEBUG_RING;
    } else
        slot = (r->start + r->count++) % FLOWS_DEBUG_RING;
    r->seq[slot] = seq;
    r->text[slot] = text;
    pthread_mutex_unlock(&dmu);
    http_sse_notify();
}

void flows_debug_log(flows_node_t *n, const char *level, const char *text)
{
    json_t *e =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "node_id", n->id, "name", flows_node_name(n),
                  "type", n->type_name, "z", n->flow ? n->flow->id : "", "path",
                  n->path ? n->path : n->id, "msg", text, "property", "", "level", level);
    char fmt[32];
    snprintf(fmt, sizeof fmt, "string[%zu]", strlen(text));
    json_object_set_new(e, "format", json_string(fmt));
    flows_debug_push(n->set->project_id, e);
}

json_t *flows_debug_list(const char *project_id, int64_t after, int limit)
{
    json_t *out = json_array();
    pthread_mutex_lock(&dmu);
    ring_t *r = ring_get(project_id, 0);
    for (int i = 0; r && i < r->count; i++) {
        int slot = (r->start + i) % FLOWS_DEBUG_RING;
        if (r->seq[slot] <= after) continue;
        json_t *e = json_loads(r->text[slot], 0, NULL);
        if (e) json_array_append_new(out, e);
        if (limit > 0 && (int)json_array_size(out) >= limit) break;
    }
    pthread_mutex_unlock(&dmu);
    return out;
}

typedef struct {
    char project[32];
    int64_t last;
} sse_t;

static int sse_poll(void *ud, buf_t *out)
{
    sse_t *s = ud;
    pthread_mutex_lock(&dmu);
    ring_t *r = ring_get(s->project, 0);
    int sent = 0;
    for (int i = 0; r && i < r->count && sent < 256; i++) {
        int slot = (r->start + i) % FLOWS_DEBUG_RING;
        if (r->seq[slot] <= s->last) continue;
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)r->seq[slot]);
        http_sse_format(out, id, "debug", r->text[slot]);
        s->last = r->seq[slot];
        sent++;
    }
    pthread_mutex_unlock(&dmu);
    return 0;
}

void flows_debug_sse(http_req_t *req, const char *project_id, const char *last_event_id)
{
    sse_t *s = xcalloc(1, sizeof *s);
    snprintf(s->project, sizeof s->project, "%s", project_id);
    if (last_event_id && *last_event_id)
        s->last = strtoll(last_event_id, NULL, 10);
    else {
        pthread_mutex_lock(&dmu);
        s->last = last_seq; /* only what comes next */
        pthread_mutex_unlock(&dmu);
    }
    http_sse_source_t src = {.poll = sse_poll, .free = free, .ud = s};
    http_reply_sse(req, &src);
}

void flows_debug_shutdown(void)
{
    pthread_mutex_lock(&dmu);
    const char *key;
    json_t *v;
    json_object_foreach(rings, key, v)
    {
        ring_t *r = (ring_t *)(intptr_t)json_integer_value(v);
        for (int i = 0; i < r->count; i++)
            free(r->text[(r->start + i) % FLOWS_DEBUG_RING]);
        free(r);
    }
    json_decref(rings);
    rings = NULL;
    pthread_mutex_unlock(&dmu);
}
