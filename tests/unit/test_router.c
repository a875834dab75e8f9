/* test_router.c: http/http.h router: params, verbs, tails, 404/405, HEAD, bad paths, tables. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/arena.h"
#include "http/http.h"

#include <stdio.h>
#include <string.h>

static void h(http_req_t *r)
{
    (void)r;
}

enum {
    R_HEALTHZ,
    R_CONTACTS_LIST,
    R_CONTACTS_CREATE,
    R_CONTACT_GET,
    R_CONTACT_DELETE,
    R_CONTACT_MERGE,
    R_MESSAGES_SEND,
    R_MESSAGE_GET,
    R_FLOWS_HTTP,
    R_FILES,
};

static const http_route_t table[] = {
    [R_HEALTHZ] = {"GET", "/healthz", h, 0},
    [R_CONTACTS_LIST] = {"GET", "/v1/projects/{project_id}/contacts", h, 0},
    [R_CONTACTS_CREATE] = {"POST", "/v1/projects/{project_id}/contacts", h, 0},
    [R_CONTACT_GET] = {"GET", "/v1/projects/{project_id}/contacts/{contact_id}", h, 0},
    [R_CONTACT_DELETE] = {"DELETE", "/v1/projects/{project_id}/contacts/{contact_id}", h, 0},
    [R_CONTACT_MERGE] = {"POST", "/v1/projects/{project_id}/contacts/{contact_id}:merge", h, 0},
    [R_MESSAGES_SEND] = {"POST", "/v1/projects/{project_id}/messages:send", h, 0},
    [R_MESSAGE_GET] = {"GET", "/v1/projects/{project_id}/messages/{message_id}", h, 0},
    [R_FLOWS_HTTP] = {"POST", "/flows/{project_id}/{rest*}", h, 0},
    [R_FILES] = {"GET", "/files/{path*}", h, 0},
};
#define NTABLE (sizeof table / sizeof table[0])

typedef struct {
    http_router_t *r;
    arena_t *a;
    http_params_t params;
    char allow[128];
    int index;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    err_t e = {0};
    f->r = http_router_new(table, NTABLE, &e);
    if (!f->r) {
        fprintf(stderr, "router_new: %s\n", e.message);
        free(f);
        return -1;
    }
    f->a = arena_create(4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    http_router_free(f->r);
    arena_destroy(f->a);
    free(f);
    return 0;
}

static http_match_t match(fx_t *f, const char *method, const char *path)
{
    memset(&f->params, 0, sizeof f->params);
    memset(f->allow, 'x', sizeof f->allow); /* match must terminate it */
    f->index = -1;
    return http_router_match(f->r, method, path, f->a, &f->index, &f->params, f->allow,
                             sizeof f->allow);
}

static const char *param(const fx_t *f, const char *name)
{
    for (int i = 0; i < f->params.n; i++)
        if (strcmp(f->params.name[i], name) == 0) return f->params.value[i];
    return NULL;
}

static void test_literal_routes(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "GET", "/healthz"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_HEALTHZ);
    assert_int_equal(f->params.n, 0);
    assert_int_equal(match(f, "GET", "/healthzz"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/health"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/HEALTHZ"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/healthz/x"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/"), HTTP_MATCH_NOT_FOUND);
}

static void test_param_extraction(void **state)
{
    fx_t *f = *state;
    char path[] = "/v1/projects/01HPROJECT/contacts/01HCONTACT";
    assert_int_equal(match(f, "GET", path), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACT_GET);
    assert_int_equal(f->params.n, 2);
    assert_string_equal(param(f, "project_id"), "01HPROJECT");
    assert_string_equal(param(f, "contact_id"), "01HCONTACT");
    /* values are copies in the arena, not pointers into the path */
    memset(path, 'z', sizeof path - 1);
    assert_string_equal(param(f, "project_id"), "01HPROJECT");
    assert_string_equal(param(f, "contact_id"), "01HCONTACT");

    assert_int_equal(match(f, "GET", "/v1/projects/p-1/contacts"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACTS_LIST);
    assert_int_equal(f->params.n, 1);
    assert_string_equal(param(f, "project_id"), "p-1");
    assert_int_equal(match(f, "POST", "/v1/projects/p-1/contacts"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACTS_CREATE);
    assert_int_equal(match(f, "DELETE", "/v1/projects/P/contacts/C"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACT_DELETE);
    /* an empty segment is not a parameter value */
    assert_int_equal(match(f, "GET", "/v1/projects//contacts"), HTTP_MATCH_NOT_FOUND);
}

static void test_custom_verb_on_param(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "POST", "/v1/projects/P1/contacts/C1:merge"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACT_MERGE);
    assert_int_equal(f->params.n, 2);
    assert_string_equal(param(f, "project_id"), "P1");
    assert_string_equal(param(f, "contact_id"), "C1"); /* the verb is not part of the value */

    /* the plain resource is still the plain route */
    assert_int_equal(match(f, "GET", "/v1/projects/P1/contacts/C1"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACT_GET);
    assert_string_equal(param(f, "contact_id"), "C1");

    /* GET on the verb path: only POST exists there */
    assert_int_equal(match(f, "GET", "/v1/projects/P1/contacts/C1:merge"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "POST");

    /* an empty value before the verb, an unknown verb, a ':' inside the value */
    assert_int_equal(match(f, "POST", "/v1/projects/P1/contacts/:merge"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/v1/projects/P1/contacts/C1:unmerge"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/v1/projects/P1/contacts/a:b:merge"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/v1/projects/P1/contacts/C1:merge/x"), HTTP_MATCH_NOT_FOUND);
}

static void test_literal_verb(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "POST", "/v1/projects/P1/messages:send"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_MESSAGES_SEND);
    assert_int_equal(f->params.n, 1);
    assert_string_equal(param(f, "project_id"), "P1");

    assert_int_equal(match(f, "GET", "/v1/projects/P1/messages:send"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "POST");
    assert_int_equal(match(f, "POST", "/v1/projects/P1/messages:sendx"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/v1/projects/P1/messages:"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/v1/projects/P1/messages"), HTTP_MATCH_NOT_FOUND);

    assert_int_equal(match(f, "GET", "/v1/projects/P1/messages/M9"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_MESSAGE_GET);
    assert_string_equal(param(f, "message_id"), "M9");
}

static void test_bare_param_rejects_colon(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "GET", "/v1/projects/P1:x/contacts"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/v1/projects/P1/contacts/C1:x"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "/v1/projects/P1/messages/M:1"), HTTP_MATCH_NOT_FOUND);
}

static void test_rest_tail(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "POST", "/flows/P1/hooks/in/orders"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_FLOWS_HTTP);
    assert_int_equal(f->params.n, 2);
    assert_string_equal(param(f, "project_id"), "P1");
    assert_string_equal(param(f, "rest"), "hooks/in/orders");

    assert_int_equal(match(f, "POST", "/flows/P1/one"), HTTP_MATCH_OK);
    assert_string_equal(param(f, "rest"), "one");

    /* the tail takes at least one segment */
    assert_int_equal(match(f, "POST", "/flows/P1"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "POST", "/flows/P1/"), HTTP_MATCH_NOT_FOUND);

    /* ':' is allowed inside a tail */
    assert_int_equal(match(f, "GET", "/files/a/b:c/d.txt"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_FILES);
    assert_string_equal(param(f, "path"), "a/b:c/d.txt");
    assert_int_equal(match(f, "DELETE", "/files/a"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "GET");
}

static void test_404_vs_405_allow(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "GET", "/nope"), HTTP_MATCH_NOT_FOUND);
    assert_string_equal(f->allow, "");
    assert_int_equal(f->index, -1);

    assert_int_equal(match(f, "POST", "/v1/projects/P/contacts/C"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "GET, DELETE");
    assert_int_equal(f->index, -1);

    assert_int_equal(match(f, "PUT", "/v1/projects/P/contacts"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "GET, POST");

    assert_int_equal(match(f, "DELETE", "/healthz"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "GET");

    /* a method is compared exactly */
    assert_int_equal(match(f, "get", "/healthz"), HTTP_MATCH_METHOD);
}

static void test_allow_buffer_small_or_absent(void **state)
{
    fx_t *f = *state;
    char small[8];
    memset(small, 'x', sizeof small);
    int idx = -1;
    http_match_t m = http_router_match(f->r, "POST", "/v1/projects/P/contacts/C", f->a, &idx, NULL,
                                       small, sizeof small);
    assert_int_equal(m, HTTP_MATCH_METHOD);
    assert_non_null(memchr(small, '\0', sizeof small)); /* terminated within the cap */
    assert_string_equal(small, "GET");                  /* DELETE did not fit: left out whole */

    /* no allow buffer and no params at all */
    assert_int_equal(
        http_router_match(f->r, "POST", "/v1/projects/P/contacts/C", f->a, &idx, NULL, NULL, 0),
        HTTP_MATCH_METHOD);
    assert_int_equal(
        http_router_match(f->r, "GET", "/v1/projects/P/contacts/C", f->a, &idx, NULL, NULL, 0),
        HTTP_MATCH_OK);
    assert_int_equal(idx, R_CONTACT_GET);
}

static void test_head_matches_get(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "HEAD", "/healthz"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_HEALTHZ);
    assert_int_equal(match(f, "HEAD", "/v1/projects/P/contacts/C"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACT_GET);
    assert_string_equal(param(f, "contact_id"), "C");
    /* HEAD where there is no GET */
    assert_int_equal(match(f, "HEAD", "/v1/projects/P/messages:send"), HTTP_MATCH_METHOD);
    assert_string_equal(f->allow, "POST");
}

static void test_trailing_slash(void **state)
{
    fx_t *f = *state;
    assert_int_equal(match(f, "GET", "/healthz/"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_HEALTHZ);
    assert_int_equal(match(f, "GET", "/v1/projects/P/contacts/"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACTS_LIST);
    assert_string_equal(param(f, "project_id"), "P");
    assert_int_equal(match(f, "GET", "/v1/projects/P/contacts/C/"), HTTP_MATCH_OK);
    assert_int_equal(f->index, R_CONTACT_GET);
    assert_string_equal(param(f, "contact_id"), "C");
    /* only one */
    assert_int_equal(match(f, "GET", "/healthz//"), HTTP_MATCH_NOT_FOUND);
    assert_int_equal(match(f, "GET", "//healthz"), HTTP_MATCH_NOT_FOUND);
}

static void test_bad_paths(void **state)
{
    fx_t *f = *state;
    const char *bad[] = {
        "/v1/projects/./contacts",
        "/v1/../healthz",
        "/healthz/.",
        "/healthz/..",
        "/..",
        "/.",
        "/healthz\x01",
        "/a\x7f",
        "/v1/projects/P\tX/contacts",
        "/flows/P/a/../b",
        "/flows/P/a\nb",
        "healthz",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (match(f, "GET", bad[i]) != HTTP_MATCH_BAD_PATH)
            fail_msg("path #%zu (%s) not rejected as bad", i, bad[i]);
    }
    /* dots that are not dot segments are ordinary text */
    assert_int_equal(match(f, "GET", "/v1/projects/.../contacts"), HTTP_MATCH_OK);
    assert_string_equal(param(f, "project_id"), "...");
    assert_int_equal(match(f, "GET", "/v1/projects/.hidden/contacts"), HTTP_MATCH_OK);
    assert_int_equal(match(f, "GET", "/files/a.b/..c"), HTTP_MATCH_OK);
    assert_string_equal(param(f, "path"), "a.b/..c");
}

static void test_segment_length_limit(void **state)
{
    fx_t *f = *state;
    char path[600];
    char id[HTTP_MAX_SEGMENT_LEN + 2];
    memset(id, 'c', HTTP_MAX_SEGMENT_LEN);
    id[HTTP_MAX_SEGMENT_LEN] = '\0';
    snprintf(path, sizeof path, "/v1/projects/P/contacts/%s", id);
    assert_int_equal(match(f, "GET", path), HTTP_MATCH_OK);
    assert_int_equal(strlen(param(f, "contact_id")), HTTP_MAX_SEGMENT_LEN);

    id[HTTP_MAX_SEGMENT_LEN] = 'c';
    id[HTTP_MAX_SEGMENT_LEN + 1] = '\0';
    snprintf(path, sizeof path, "/v1/projects/P/contacts/%s", id);
    assert_int_equal(match(f, "GET", path), HTTP_MATCH_BAD_PATH);
    /* also when no route could match it */
    snprintf(path, sizeof path, "/%s", id);
    assert_int_equal(match(f, "GET", path), HTTP_MATCH_BAD_PATH);
}

static void test_too_many_segments(void **state)
{
    fx_t *f = *state;
    char path[4 * (HTTP_MAX_SEGMENTS + 10)] = "/v1";
    for (int i = 0; i < HTTP_MAX_SEGMENTS + 5; i++)
        strcat(path, "/s");
    /* no route has that many segments: a plain 404, not a crash or an overflow */
    assert_int_equal(match(f, "GET", path), HTTP_MATCH_NOT_FOUND);
}

static void test_malformed_tables(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "healthz",       /* missing leading '/' */
        "/a/{x*}/b",     /* rest not last */
        "/a/{}",         /* empty name */
        "/a/{x",         /* unclosed */
        "/a//b",         /* empty segment */
        "/a/{x}merge",   /* only :verb may follow a param */
        "/a/{x*}:verb",  /* no verb after a rest tail */
        "/a/{x*}suffix", /* nor anything else */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_route_t rt[] = {{"GET", "/ok/{id}", h, 0}, {"GET", bad[i], h, 0}};
        err_t e = {0};
        http_router_t *r = http_router_new(rt, 2, &e);
        if (r) {
            http_router_free(r);
            fail_msg("pattern %s accepted", bad[i]);
        }
        assert_int_not_equal(e.code, ERR_OK);
        if (!strstr(e.message, bad[i]))
            fail_msg("error for %s does not name it: %s", bad[i], e.message);
    }

    /* more segments than HTTP_MAX_SEGMENTS */
    char longpat[4 * (HTTP_MAX_SEGMENTS + 2)] = "";
    for (int i = 0; i <= HTTP_MAX_SEGMENTS; i++)
        strcat(longpat, "/s");
    http_route_t rt[] = {{"GET", longpat, h, 0}};
    err_t e = {0};
    http_router_t *r = http_router_new(rt, 1, &e);
    if (r) http_router_free(r);
    assert_null(r);
    assert_int_not_equal(e.code, ERR_OK);
}

static void test_first_route_wins_and_empty_table(void **state)
{
    (void)state;
    http_route_t rt[] = {
        {"GET", "/v1/things/special", h, 0},
        {"GET", "/v1/things/{id}", h, 0},
    };
    err_t e = {0};
    http_router_t *r = http_router_new(rt, 2, &e);
    assert_non_null(r);
    arena_t *a = arena_create(1024);
    http_params_t p = {0};
    int idx = -1;
    assert_int_equal(http_router_match(r, "GET", "/v1/things/special", a, &idx, &p, NULL, 0),
                     HTTP_MATCH_OK);
    assert_int_equal(idx, 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(http_router_match(r, "GET", "/v1/things/other", a, &idx, &p, NULL, 0),
                     HTTP_MATCH_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.name[0], "id");
    assert_string_equal(p.value[0], "other");
    http_router_free(r);

    r = http_router_new(rt, 0, &e);
    assert_non_null(r);
    assert_int_equal(http_router_match(r, "GET", "/v1/things/x", a, &idx, &p, NULL, 0),
                     HTTP_MATCH_NOT_FOUND);
    http_router_free(r);
    http_router_free(NULL);
    arena_destroy(a);
}

/* BUG (src/http/router.c:155 and :134): a route for "/" compiles to zero segments, but the
 * path "/" is split into one empty segment (the trailing-slash rule needs nsegs > 0), so the
 * root route can never match and GET / answers 404. */
static void test_bug_root_route_matches_root_path(void **state)
{
    (void)state;
    http_route_t rt[] = {{"GET", "/", h, 0}};
    err_t e = {0};
    http_router_t *r = http_router_new(rt, 1, &e);
    assert_non_null(r);
    arena_t *a = arena_create(1024);
    int idx = -1;
    http_match_t m = http_router_match(r, "GET", "/", a, &idx, NULL, NULL, 0);
    http_router_free(r);
    arena_destroy(a);
    assert_int_equal(m, HTTP_MATCH_OK);
    assert_int_equal(idx, 0);
}

/* BUG (src/http/router.c:57 / :112): a pattern with more than HTTP_MAX_PARAMS parameters is
 * accepted by http_router_new, and at match time the extra values are silently dropped, so
 * the handler's http_param() returns NULL for them. The table should be rejected. */
static void test_bug_too_many_params_rejected(void **state)
{
    (void)state;
    char pat[256] = "";
    for (int i = 0; i <= HTTP_MAX_PARAMS; i++) {
        char seg[16];
        snprintf(seg, sizeof seg, "/{p%d}", i);
        strcat(pat, seg);
    }
    http_route_t rt[] = {{"GET", pat, h, 0}};
    err_t e = {0};
    http_router_t *r = http_router_new(rt, 1, &e);
    if (r) http_router_free(r);
    assert_null(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literal_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_param_extraction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_verb_on_param, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literal_verb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_param_rejects_colon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_vs_405_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_buffer_small_or_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_matches_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_length_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
        cmocka_unit_test(test_malformed_tables),
        cmocka_unit_test(test_first_route_wins_and_empty_table),
        cmocka_unit_test(test_bug_root_route_matches_root_path),
        cmocka_unit_test(test_bug_too_many_params_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
