/* fuzz_http.c: one libFuzzer target for Parley's input-facing pure code.
 *
 * The first byte of an input picks a mode ('0'..'6'; any other byte is taken modulo the
 * number of modes) and the remaining bytes are that mode's payload:
 *
 *   '0' router   "METHOD PATH" (split at the first space; no space: GET) matched against a
 *                realistic route table, once with params and allow, once without.
 *   '1' json     jsonx_parse on the bytes; for an object, every typed getter on a few
 *                well-known keys and on each of its own keys (and one level of nesting),
 *                then jsonx_dump and a parse-back round trip.
 *   '2' token    api_token_check on the bytes as a bearer token.
 *   '3' signed   the bytes as a token payload, correctly signed with the fixed key, so the
 *                checker's post-signature parsing is reached too.
 *   '4' issue    api_token_issue with ULIDs and an expiry drawn from the bytes, then
 *                api_token_check must accept it (and reject it once expired).
 *   '5' time     clock_parse_rfc3339 and ulid_valid, plus format/parse round trips.
 *   '6' patterns the bytes as newline-separated route patterns for http_router_new (the
 *                error path must free everything), then each pattern matched as a path.
 *
 * Invariant violations call abort() so libFuzzer records them like a crash. Every input
 * frees what it allocates (run with -detect_leaks=1). */
#include "api/api.h"
#include "base/arena.h"
#include "base/clock.h"
#include "base/jsonx.h"
#include "base/sec.h"
#include "base/ulid.h"
#include "http/http.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,      \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void dummy(http_req_t *req)
{
    (void)req;
}

/* Conversation API style table: literals, {params}, {param}:verb, name:verb, {rest*}. */
static const http_route_t fuzz_routes[] = {
    {"GET", "/healthz", dummy, 0},
    {"GET", "/metrics", dummy, 0},
    {"POST", "/oauth2/token", dummy, HTTP_FORM},
    {"GET", "/v1/projects/{project_id}/apps", dummy, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/apps", dummy, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/apps/{app_id}", dummy, HTTP_AUTH},
    {"PATCH", "/v1/projects/{project_id}/apps/{app_id}", dummy, HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}/apps/{app_id}", dummy, HTTP_AUTH},
    {"GET", "/v1/projects/{project_id}/apps/{app_id}/consents/identities/{identity}", dummy,
     HTTP_AUTH},
    {"GET", "/v1/projects/{project_id}/contacts", dummy, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/contacts", dummy, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/contacts/{contact_id}", dummy, HTTP_AUTH},
    {"PATCH", "/v1/projects/{project_id}/contacts/{contact_id}", dummy, HTTP_AUTH | HTTP_JSON},
    {"DELETE", "/v1/projects/{project_id}/contacts/{contact_id}", dummy, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/contacts/{contact_id}:merge", dummy, HTTP_AUTH | HTTP_JSON},
    {"POST", "/v1/projects/{project_id}/contacts:getChannelProfile", dummy, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/conversations", dummy, HTTP_AUTH},
    {"GET", "/v1/projects/{project_id}/conversations:recent", dummy, HTTP_AUTH},
    {"GET", "/v1/projects/{project_id}/conversations/{conversation_id}", dummy, HTTP_AUTH},
    {"PATCH", "/v1/projects/{project_id}/conversations/{conversation_id}", dummy,
     HTTP_AUTH | HTTP_JSON},
    {"POST", "/v1/projects/{project_id}/conversations/{conversation_id}:stop", dummy, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/messages:send", dummy, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/messages", dummy, HTTP_AUTH},
    {"GET", "/v1/projects/{project_id}/messages/{message_id}", dummy, HTTP_AUTH},
    {"DELETE", "/v1/projects/{project_id}/messages/{message_id}", dummy, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/events:send", dummy, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v1/projects/{project_id}/webhooks/{webhook_id}", dummy, HTTP_AUTH},
    {"POST", "/v1/projects/{project_id}/apps/{app_id}/webhooks", dummy, HTTP_AUTH | HTTP_JSON},
    {"GET", "/v2/projects/{project_id}/templates/{template_id}", dummy, HTTP_AUTH},
    {"PUT", "/v2/projects/{project_id}/templates/{template_id}", dummy, HTTP_AUTH | HTTP_JSON},
    {"POST", "/callbacks/{provider}/{app_id}", dummy, HTTP_RAW},
    {"GET", "/flows/{project_id}/{path*}", dummy, HTTP_AUTH},
    {"POST", "/flows/{project_id}/{path*}", dummy, HTTP_AUTH | HTTP_RAW},
};
#define NROUTES (sizeof fuzz_routes / sizeof fuzz_routes[0])

static http_router_t *router;
static const uint8_t token_key[32] = "parley-fuzz-token-key-0123456789";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (sec_init() < 0) abort();
    err_t e;
    router = http_router_new(fuzz_routes, NROUTES, &e);
    if (!router) {
        fprintf(stderr, "fuzz_http: route table rejected: %s\n", e.message);
        abort();
    }
    return 0;
}

/* A NUL-terminated malloc'd copy (stops early at an embedded NUL when read as a string). */
static char *cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int is_rest_param(const char *name)
{
    return strcmp(name, "path") == 0;
}

/* ---- '0' router ---- */

static void fuzz_router(const uint8_t *p, size_t n)
{
    char *in = cstr(p, n);
    char *sp = strchr(in, ' ');
    const char *method = "GET", *path = in;
    if (sp) {
        *sp = '\0';
        method = in;
        path = sp + 1;
    }
    arena_t *a = arena_create(1024);
    http_params_t params = {0};
    char allow[128];
    int index = -1;
    http_match_t m =
        http_router_match(router, method, path, a, &index, &params, allow, sizeof allow);
    CHECK(m == HTTP_MATCH_OK || m == HTTP_MATCH_NOT_FOUND || m == HTTP_MATCH_METHOD ||
          m == HTTP_MATCH_BAD_PATH);
    CHECK(strlen(allow) < sizeof allow);
    if (m == HTTP_MATCH_OK) {
        CHECK(index >= 0 && (size_t)index < NROUTES);
        const char *rm = fuzz_routes[index].method;
        CHECK(strcmp(rm, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(rm, "GET") == 0));
        CHECK(params.n >= 0 && params.n <= HTTP_MAX_PARAMS);
        for (int i = 0; i < params.n; i++) {
            CHECK(params.name[i] && params.value[i]);
            CHECK(params.value[i][0] != '\0'); /* an empty segment never binds a param */
            if (!is_rest_param(params.name[i])) {
                CHECK(!strchr(params.value[i], '/'));
                CHECK(!strchr(params.value[i], ':'));
                CHECK(strlen(params.value[i]) <= HTTP_MAX_SEGMENT_LEN);
            }
        }
    } else if (m == HTTP_MATCH_METHOD) {
        CHECK(allow[0] != '\0');
    }

    /* The same question without params and with a tiny allow buffer: same answer. */
    char small[8];
    int index2 = -1;
    http_match_t m2 =
        http_router_match(router, method, path, a, &index2, NULL, small, sizeof small);
    CHECK(m2 == m);
    CHECK(strlen(small) < sizeof small);
    if (m == HTTP_MATCH_OK) CHECK(index2 == index);
    int index3 = -1;
    http_match_t m3 = http_router_match(router, method, path, a, &index3, NULL, NULL, 0);
    CHECK(m3 == m);

    arena_destroy(a);
    free(in);
}

/* ---- '1' json ---- */

static const char *const enum_values[] = {"SMS", "WHATSAPP", "RCS", "MESSENGER", "VIBER", NULL};

static void check_getters(json_t *obj, const char *key, const char *name)
{
    err_t e;
    const char *s = NULL;
    int64_t i64 = 0;
    int b = 0, idx = -1, r;
    json_t *sub = NULL;

    r = jsonx_str(obj, key, name, &s, &e);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) CHECK(s && strlen(s) == json_string_length(json_object_get(obj, key)));
    if (r < 0) CHECK(e.message[0]);

    r = jsonx_int(obj, key, name, -1000, 1000, &i64, &e);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) CHECK(i64 >= -1000 && i64 <= 1000);
    r = jsonx_int(obj, key, name, INT64_MIN, INT64_MAX, &i64, &e);
    CHECK(r >= -1 && r <= 1);

    r = jsonx_bool(obj, key, name, &b, &e);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) CHECK(b == 0 || b == 1);

    r = jsonx_obj(obj, key, name, &sub, &e);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) CHECK(json_is_object(sub));

    r = jsonx_arr(obj, key, name, &sub, &e);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) CHECK(json_is_array(sub));

    r = jsonx_enum(obj, key, name, enum_values, &idx, &e);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) CHECK(idx >= 0 && idx < 5);

    r = jsonx_require(jsonx_str(obj, key, name, &s, &e), name, &e);
    CHECK(r == -1 || r == 1);
}

static void fuzz_json(const uint8_t *p, size_t n)
{
    static const char *const keys[] = {"display_name", "id",       "page_size", "enabled",
                                       "metadata",     "channels", "channel",   "message",
                                       "app_id",       ""};
    err_t e;
    json_t *v = jsonx_parse((const char *)p, n, &e);
    if (!v) {
        CHECK(e.message[0]);
        return;
    }
    if (json_is_object(v)) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            check_getters(v, keys[k], keys[k]);
        const char *key;
        json_t *val;
        int budget = 64;
        json_object_foreach(v, key, val)
        {
            if (budget-- == 0) break;
            check_getters(v, key, key);
            if (json_is_object(val)) {
                const char *k2;
                json_t *v2;
                int budget2 = 16;
                json_object_foreach(val, k2, v2)
                {
                    if (budget2-- == 0) break;
                    char name[96];
                    snprintf(name, sizeof name, "%.40s.%.40s", key, k2);
                    check_getters(val, k2, name);
                }
            }
        }
    }
    /* Getters on a non-object are "absent", never a crash. */
    if (!json_is_object(v)) check_getters(v, "id", "id");

    char *out = jsonx_dump(v);
    CHECK(out);
    json_t *back = jsonx_parse(out, strlen(out), &e);
    CHECK(back && json_equal(v, back));
    json_decref(back);
    free(out);
    json_decref(v);
}

/* ---- '2' token, '3' signed payload, '4' issue round trip ---- */

static void fuzz_token(const uint8_t *p, size_t n)
{
    char *tok = cstr(p, n);
    char key_id[27], project_id[27];
    err_t e;
    int r = api_token_check(token_key, tok, 0, key_id, project_id, &e);
    CHECK(r == 0 || r == -1);
    if (r == 0) CHECK(strlen(key_id) == 26 && strlen(project_id) == 26);
    free(tok);
}

static void fuzz_signed(const uint8_t *p, size_t n)
{
    uint8_t mac[SEC_HMAC_LEN];
    sec_hmac_sha256(token_key, sizeof token_key, p, n, mac);
    size_t cap = 4 + (n * 4) / 3 + 4 + 1 + 64;
    char *tok = malloc(cap);
    if (!tok) abort();
    memcpy(tok, "pt1.", 4);
    int l1 = sec_b64url_encode(p, n, tok + 4, cap - 4);
    CHECK(l1 >= 0);
    tok[4 + l1] = '.';
    int l2 = sec_b64url_encode(mac, sizeof mac, tok + 5 + l1, cap - 5 - (size_t)l1);
    CHECK(l2 >= 0);

    char key_id[27], project_id[27];
    err_t e;
    int r = api_token_check(token_key, tok, 0, key_id, project_id, &e);
    CHECK(r == 0 || r == -1);
    if (r == 0) {
        CHECK(strlen(key_id) == 26 && strlen(project_id) == 26);
        CHECK(memcmp(key_id, p, 26) == 0 && memcmp(project_id, p + 27, 26) == 0);
    }
    free(tok);
}

static void take_ulid(const uint8_t *p, char out[ULID_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int i = 0; i < ULID_LEN; i++)
        out[i] = alphabet[p[i] & 31];
    out[0] = alphabet[p[0] & 7]; /* keep the 48-bit time in range */
    out[ULID_LEN] = '\0';
}

static void fuzz_issue(const uint8_t *p, size_t n)
{
    if (n < 2 * ULID_LEN + 8) return;
    char kid[ULID_LEN + 1], pid[ULID_LEN + 1];
    take_ulid(p, kid);
    take_ulid(p + ULID_LEN, pid);
    CHECK(ulid_valid(kid) && ulid_valid(pid));
    uint64_t raw = 0;
    for (int i = 0; i < 8; i++)
        raw = raw << 8 | p[2 * ULID_LEN + i];
    int64_t expires = (int64_t)(raw >> 10); /* 0 .. 2^54: any realistic expiry and more */

    char tok[512];
    CHECK(api_token_issue(token_key, kid, pid, expires, tok, sizeof tok) == 0);
    char key_id[27], project_id[27];
    err_t e;
    CHECK(api_token_check(token_key, tok, expires - 1, key_id, project_id, &e) == 0);
    CHECK(strcmp(key_id, kid) == 0 && strcmp(project_id, pid) == 0);
    CHECK(api_token_check(token_key, tok, expires, key_id, project_id, &e) == -1);
    /* Any other key rejects it. */
    uint8_t other[32];
    memcpy(other, token_key, sizeof other);
    other[p[n - 1] & 31] ^= (uint8_t)(1u << (p[n - 1] >> 5));
    CHECK(api_token_check(other, tok, 0, key_id, project_id, &e) == -1);
}

/* ---- '5' time and ULIDs ---- */

static void fuzz_time(const uint8_t *p, size_t n)
{
    char *s = cstr(p, n);
    int64_t ms = 0;
    if (clock_parse_rfc3339(s, &ms) == 0) {
        char out[64];
        clock_format_rfc3339(ms, out, sizeof out);
        int64_t again = 0;
        /* Years outside 0000..9999 do not format as RFC 3339; the rest must round-trip. */
        if (clock_parse_rfc3339(out, &again) == 0) CHECK(again == ms);
    }

    if (ulid_valid(s)) {
        CHECK(strlen(s) == ULID_LEN);
        int64_t t = ulid_time_ms(s);
        CHECK(t >= 0 && t < ((int64_t)1 << 48));
        char u[ULID_LEN + 1];
        ulid_at(t, u);
        CHECK(ulid_valid(u) && ulid_time_ms(u) == t);
    }
    if (n >= ULID_LEN) {
        char *u = cstr(p, ULID_LEN);
        if (ulid_valid(u)) CHECK(ulid_time_ms(u) >= 0);
        free(u);
    }
    free(s);
}

/* ---- '6' route patterns ---- */

#define MAX_PATTERNS 8

static void fuzz_patterns(const uint8_t *p, size_t n)
{
    static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE"};
    char *in = cstr(p, n);
    http_route_t routes[MAX_PATTERNS];
    size_t nr = 0;
    for (char *line = in; line && nr < MAX_PATTERNS;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        routes[nr] = (http_route_t){methods[nr % 4], line, dummy, 0};
        nr++;
        line = nl ? nl + 1 : NULL;
    }
    err_t e;
    http_router_t *r = http_router_new(routes, nr, &e);
    if (!r) {
        CHECK(e.message[0]);
    } else {
        arena_t *a = arena_create(0);
        for (size_t i = 0; i < nr; i++) {
            http_params_t params;
            char allow[64];
            int index = -1;
            http_match_t m = http_router_match(r, routes[i].method, routes[i].pattern, a, &index,
                                               &params, allow, sizeof allow);
            if (m == HTTP_MATCH_OK) CHECK(index >= 0 && (size_t)index < nr);
            http_router_match(router, "GET", routes[i].pattern, a, &index, &params, allow,
                              sizeof allow);
        }
        arena_destroy(a);
        http_router_free(r);
    }
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch ((uint8_t)(data[0] - '0') % 7) {
    case 0:
        fuzz_router(p, n);
        break;
    case 1:
        fuzz_json(p, n);
        break;
    case 2:
        fuzz_token(p, n);
        break;
    case 3:
        fuzz_signed(p, n);
        break;
    case 4:
        fuzz_issue(p, n);
        break;
    case 5:
        fuzz_time(p, n);
        break;
    default:
        fuzz_patterns(p, n);
        break;
    }
    return 0;
}
