/* test_flows_core.c: the core of Flows: property paths, JavaScript-like helpers, regular
 * expressions, deploy-time validation problems, and switch/change rules run through the
 * real runtime on a temporary SQLite store (messages in via flows_inject, results read
 * from the debug ring). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "base/config.h"
#include "flows/flows.h"
#include "flows/internal.h"
#include "flows/node.h"
#include "flows/props.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- property paths ---- */

static void test_path_parse(void **state)
{
    (void)state;
    flows_path_t p;
    err_t e;
    assert_int_equal(flows_path_parse("payload.a[0][\"b c\"]['d'].e", &p, &e), 0);
    assert_int_equal(p.n, 6);
    assert_string_equal(p.seg[0].key, "payload");
    assert_string_equal(p.seg[1].key, "a");
    assert_true(p.seg[2].is_index);
    assert_int_equal(p.seg[2].idx, 0);
    assert_string_equal(p.seg[3].key, "b c");
    assert_string_equal(p.seg[4].key, "d");
    assert_string_equal(p.seg[5].key, "e");
    flows_path_free(&p);
    const char *bad[] = {"",   "a..b", "a.",  ".a",       "a[", "a[x]",
                         "a]", "a['x", "a b", "a[msg.b]", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(flows_path_parse(bad[i], &p, &e), -1);
        assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    }
    assert_int_equal(flows_path_check("a[msg.b]", &e), -1);
    assert_non_null(strstr(e.message, "nested message references"));
}

static void test_prop_get_set_delete(void **state)
{
    (void)state;
    err_t e;
    json_t *msg = json_loads("{\"payload\":{\"a\":[1,{\"b\":2}]},\"s\":\"str\"}", 0, NULL);
    assert_int_equal(json_integer_value(flows_prop_get(msg, "payload.a[1].b")), 2);
    assert_null(flows_prop_get(msg, "payload.a[5]"));
    assert_null(flows_prop_get(msg, "nope.deeper"));
    /* set creates objects, or arrays when the next segment is an index */
    assert_int_equal(flows_prop_set(msg, "x.y[2].z", json_integer(7), &e), 0);
    char *dump = json_dumps(json_object_get(msg, "x"), JSON_COMPACT);
    assert_string_equal(dump, "{\"y\":[null,null,{\"z\":7}]}");
    free(dump);
    /* cannot set below a string */
    assert_int_equal(flows_prop_set(msg, "s.t", json_integer(1), &e), -1);
    assert_non_null(strstr(e.message, "string"));
    /* delete */
    assert_int_equal(flows_prop_delete(msg, "payload.a[0]"), 1);
    assert_int_equal(json_array_size(flows_prop_get(msg, "payload.a")), 1);
    assert_int_equal(flows_prop_delete(msg, "payload.zzz"), 0);
    assert_int_equal(flows_prop_delete(msg, "s"), 1);
    assert_null(json_object_get(msg, "s"));
    json_decref(msg);
}

static void test_js_helpers(void **state)
{
    (void)state;
    json_t *v[] = {json_string(""), json_string("0"), json_integer(0), json_real(0.5),
                   json_null(),     json_true(),      json_array(),    json_object()};
    int truthy[] = {0, 1, 0, 1, 0, 1, 1, 1};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(flows_js_truthy(v[i]), truthy[i]);
        json_decref(v[i]);
    }
    assert_int_equal(flows_js_truthy(NULL), 0);
    json_t *r = json_real(0.1);
    char *s = flows_js_string(r);
    assert_string_equal(s, "0.1");
    free(s);
    json_decref(r);
    r = json_real(3.0);
    s = flows_js_string(r);
    assert_string_equal(s, "3");
    free(s);
    json_decref(r);
    s = flows_js_string(NULL);
    assert_string_equal(s, "undefined");
    free(s);
    double d;
    json_t *n = json_string(" 42 ");
    assert_int_equal(flows_js_number(n, &d), 1);
    assert_true(d == 42);
    json_decref(n);
    n = json_string("4x");
    assert_int_equal(flows_js_number(n, &d), 0);
    json_decref(n);
    n = json_string("");
    assert_int_equal(flows_js_number(n, &d), 1);
    assert_true(d == 0);
    json_decref(n);
}

static void test_regex(void **state)
{
    (void)state;
    err_t e;
    flows_re_t *re = flows_re_new("(\\d+)-(\\w+)", 0, &e);
    assert_non_null(re);
    assert_true(flows_re_test(re, "id 12-ab"));
    assert_false(flows_re_test(re, "nothing"));
    char *out = flows_re_replace(re, "a 1-x b 22-yy", "<$2:$1|$&>", 1);
    assert_string_equal(out, "a <x:1|1-x> b <yy:22|22-yy>");
    free(out);
    out = flows_re_replace(re, "1-a 2-b", "Z", 0);
    assert_string_equal(out, "Z 2-b");
    free(out);
    flows_re_free(re);
    re = flows_re_new("hello", 1, &e);
    assert_true(flows_re_test(re, "HeLLo there"));
    flows_re_free(re);
    assert_null(flows_re_new("([a-z", 0, &e));
    assert_non_null(strstr(e.message, "bad regular expression"));
}

/* ---- typed inputs without a node (no context or env) ---- */

static void test_typed_eval(void **state)
{
    (void)state;
    err_t e;
    json_t *v;
    assert_int_equal(flows_typed_eval(NULL, NULL, "num", "0x10", &v, &e), 1);
    assert_int_equal(json_integer_value(v), 16);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, NULL, "num", "2.5", &v, &e), 1);
    assert_true(json_real_value(v) == 2.5);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, NULL, "num", "abc", &v, &e), -1);
    assert_int_equal(flows_typed_eval(NULL, NULL, "bool", "true", &v, &e), 1);
    assert_true(json_is_true(v));
    assert_int_equal(flows_typed_eval(NULL, NULL, "bool", "yes", &v, &e), 1);
    assert_true(json_is_false(v));
    assert_int_equal(flows_typed_eval(NULL, NULL, "json", "{\"a\":[1]}", &v, &e), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(v, "a"), 0)), 1);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, NULL, "json", "{", &v, &e), -1);
    assert_non_null(strstr(e.message, "invalid JSON"));
    assert_int_equal(flows_typed_eval(NULL, NULL, "bin", "\"AB\"", &v, &e), 1);
    assert_int_equal(json_array_size(v), 2);
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 65);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, NULL, "date", "", &v, &e), 1);
    assert_true(json_integer_value(v) > 1700000000000LL);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, NULL, "date", "iso", &v, &e), 1);
    assert_int_equal(strlen(json_string_value(v)), 24);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, NULL, "string", "s", &v, &e), 1); /* old alias */
    assert_string_equal(json_string_value(v), "s");
    json_decref(v);
    json_t *msg = json_loads("{\"payload\":{\"x\":1}}", 0, NULL);
    assert_int_equal(flows_typed_eval(NULL, msg, "msg", "payload.x", &v, &e), 1);
    assert_int_equal(json_integer_value(v), 1);
    json_decref(v);
    assert_int_equal(flows_typed_eval(NULL, msg, "msg", "payload.y", &v, &e), 0);
    assert_null(v);
    json_decref(msg);
    assert_int_equal(flows_typed_eval(NULL, NULL, "jsonata", "1", &v, &e), -1);
}

/* ---- crontab ---- */

static void test_cron(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    const int64_t jan1 = 1767225600000LL; /* 2026-01-01T00:00:00Z, a Thursday */
    flows_cron_t c;
    assert_int_equal(flows_cron_parse("*/15 * * * *", &c), 0);
    assert_int_equal(flows_cron_next(&c, jan1 + 450000), 450000); /* 00:07:30 -> 00:15 */
    assert_int_equal(flows_cron_parse("0 9 * * 1", &c), 0);       /* Mondays 09:00 */
    assert_int_equal(flows_cron_next(&c, jan1), (4 * 24 + 9) * 3600000LL);
    assert_int_equal(flows_cron_parse("30 8 1 * *", &c), 0); /* 1st of the month 08:30 */
    assert_int_equal(flows_cron_next(&c, jan1 + 9 * 3600000LL),
                     31 * 24 * 3600000LL + 8 * 3600000LL + 30 * 60000LL - 9 * 3600000LL);
    assert_int_equal(flows_cron_parse("0 0 13 * 5", &c), 0); /* the 13th OR a Friday */
    assert_int_equal(flows_cron_next(&c, jan1 + 30000), 24 * 3600000LL - 30000);
    assert_int_equal(flows_cron_parse("0 12 * * 7", &c), 0); /* 7 = Sunday */
    assert_int_equal(flows_cron_next(&c, jan1), (3 * 24 + 12) * 3600000LL);
    assert_int_equal(flows_cron_parse("5/20 1-3 * 1,2 *", &c), 0);
    assert_int_equal(flows_cron_next(&c, jan1), 3600000LL + 5 * 60000LL);
    const char *bad[] = {"60 * * * *",  "* * *",      "a * * * *", "5-1 * * * *", "*/0 * * * *",
                         "* * * * * *", "* 24 * * *", "",          NULL};
    for (int i = 0; bad[i]; i++)
        if (flows_cron_parse(bad[i], &c) == 0) fail_msg("accepted crontab '%s'", bad[i]);
}

/* ---- validation ---- */

static json_t *problems_of(const char *doc_text, err_t *e)
{
    json_t *doc = json_loads(doc_text, 0, NULL);
    assert_non_null(doc);
    json_t *p = flows_validate(doc, e);
    json_decref(doc);
    return p;
}

static int has_problem(json_t *list, const char *node, const char *field, const char *needle)
{
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "node_id")), node) == 0 &&
            strcmp(json_string_value(json_object_get(p, "field")), field) == 0 &&
            strstr(json_string_value(json_object_get(p, "message")), needle))
            return 1;
    }
    char *d = json_dumps(list, JSON_INDENT(1));
    fprintf(stderr, "missing problem %s %s %s in %s\n", node, field, needle, d);
    free(d);
    return 0;
}

static void test_validate(void **state)
{
    (void)state;
    err_t e;
    assert_null(problems_of("[{\"id\":\"t\",\"type\":\"tab\"},{\"id\":\"d\",\"type\":\"debug\","
                            "\"z\":\"t\",\"wires\":[]}]",
                            &e));
    json_t *p = problems_of(
        "[{\"id\":\"t\",\"type\":\"tab\"},"
        "{\"id\":\"u\",\"type\":\"nope\",\"z\":\"t\"},"
        "{\"id\":\"w\",\"type\":\"debug\",\"z\":\"t\",\"wires\":[[\"ghost\"]]},"
        "{\"id\":\"s\",\"type\":\"switch\",\"z\":\"t\",\"property\":\"payload\",\"rules\":"
        "[{\"t\":\"regex\",\"v\":\"(\"},{\"t\":\"jsonata_exp\",\"v\":\"1\"},{\"t\":\"eq\",\"v\":"
        "\"x\",\"vt\":\"jsonata\"},{\"t\":\"eq\",\"v\":\"{\",\"vt\":\"json\"}]},"
        "{\"id\":\"c\",\"type\":\"change\",\"z\":\"t\",\"rules\":[{\"t\":\"set\",\"p\":\"a..b\","
        "\"to\":\"1\",\"tot\":\"num\"},{\"t\":\"zap\"},{\"t\":\"set\",\"p\":\"x\",\"to\":\"x\","
        "\"tot\":\"num\"}]},"
        "{\"id\":\"sa\",\"type\":\"subflow\",\"in\":[],\"out\":[]},"
        "{\"id\":\"ia\",\"type\":\"subflow:sa\",\"z\":\"sa\"},"
        "{\"id\":\"im\",\"type\":\"subflow:missing\",\"z\":\"t\"}]",
        &e);
    assert_non_null(p);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_true(has_problem(p, "u", "type", "unknown node type 'nope'; Parley supports: "));
    assert_true(has_problem(p, "u", "type", "switch"));
    assert_true(has_problem(p, "w", "wires[0][0]", "wire to missing node 'ghost'"));
    assert_true(has_problem(p, "s", "rules[0].v", "bad regular expression"));
    assert_true(has_problem(p, "s", "rules[1].t", "JSONata"));
    assert_true(has_problem(p, "s", "rules[2].vt", "JSONata"));
    assert_true(has_problem(p, "s", "rules[3].v", "invalid JSON"));
    assert_true(has_problem(p, "c", "rules[0].p", "invalid property expression"));
    assert_true(has_problem(p, "c", "rules[1].t", "set, change, delete or move"));
    assert_true(has_problem(p, "c", "rules[2].to", "is not a number"));
    assert_true(has_problem(p, "sa", "", "recursive subflow: sa -> sa"));
    assert_true(has_problem(p, "im", "type", "subflow 'missing' is not defined"));
    json_decref(p);
    /* the shape */
    p = problems_of("{\"not\":\"array\"}", &e);
    assert_true(has_problem(p, "", "flows", "must be an array"));
    json_decref(p);
}

/* ---- switch and change through the runtime ---- */

typedef struct {
    char root[64];
    store_t *store;
    store_conn_t *c;
} fx_t;

static const char *PROJ = "01TESTPROJECT0000000000000";

static int rt_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->root, "flows") < 0 || !(f->store = fx_store_open(f->root, &f->c))) return -1;
    err_t e = {0};
    uint8_t key[32] = {0};
    config_t cfg;
    config_defaults(&cfg);
    if (flows_start(f->store, key, &cfg, &e) < 0) return -1;
    *state = f;
    return 0;
}

static int rt_teardown(void **state)
{
    fx_t *f = *state;
    flows_stop();
    store_close(f->store);
    int rc = fx_rmdir(f->root);
    free(f);
    return rc;
}

static void deploy(fx_t *f, const char *text)
{
    char rev[32];
    json_t *problems = NULL;
    err_t e;
    int rc = flows_deploy(f->c, PROJ, text, NULL, "test", "deploy", rev, &problems, &e);
    if (rc < 0) {
        char *d = problems ? json_dumps(problems, 0) : NULL;
        fprintf(stderr, "deploy failed: %s %s\n", e.message, d ? d : "");
        free(d);
    }
    assert_int_equal(rc, 0);
}

/* Wait until the ring has at least n entries after `after`; returns them (new ref). */
static json_t *wait_entries(int64_t after, size_t n)
{
    for (int i = 0; i < 500; i++) {
        json_t *l = flows_debug_list(PROJ, after, 0);
        if (json_array_size(l) >= n) return l;
        json_decref(l);
        usleep(10000);
    }
    fail_msg("timed out waiting for %zu debug entries", n);
    return NULL;
}

static int64_t last_id(void)
{
    json_t *l = flows_debug_list(PROJ, 0, 0);
    size_t n = json_array_size(l);
    int64_t id =
        n ? strtoll(json_string_value(json_object_get(json_array_get(l, n - 1), "id")), NULL, 10)
          : 0;
    json_decref(l);
    return id;
}

/* Inject a payload (JSON text) into node "in" and return the debug entry node ids. */
static char *route(const char *payload_json)
{
    int64_t after = last_id();
    json_t *msg = json_object();
    json_object_set_new(msg, "payload", json_loads(payload_json, JSON_DECODE_ANY, NULL));
    json_object_set_new(msg, "parts", json_pack("{s:i,s:i}", "index", 1, "count", 3));
    for (int i = 0; i < 200 && flows_inject(PROJ, "in", json_incref(msg)) < 0; i++)
        usleep(10000); /* the deploy is being swapped in */
    json_decref(msg);
    json_t *l = wait_entries(after, 1);
    usleep(30000); /* let any further outputs of the same message land */
    json_decref(l);
    l = flows_debug_list(PROJ, after, 0);
    char out[256] = "";
    size_t i;
    json_t *x;
    json_array_foreach(l, i, x)
    {
        strcat(out, json_string_value(json_object_get(x, "node_id")));
        strcat(out, " ");
    }
    json_decref(l);
    return strdup(out);
}

static void expect_route(const char *payload, const char *want)
{
    char *got = route(payload);
    if (strcmp(got, want) != 0) fail_msg("payload %s: got '%s', want '%s'", payload, got, want);
    free(got);
}

static void test_switch_rules(void **state)
{
    fx_t *f = *state;
    /* 12 rules, one debug node per output, checkall */
    deploy(f,
           "[{\"id\":\"t\",\"type\":\"tab\"},"
           "{\"id\":\"in\",\"type\":\"link in\",\"z\":\"t\",\"wires\":[[\"sw\"]]},"
           "{\"id\":\"sw\",\"type\":\"switch\",\"z\":\"t\",\"property\":\"payload\","
           "\"checkall\":\"true\",\"rules\":["
           "{\"t\":\"eq\",\"v\":\"5\"},"                                                /* r0 */
           "{\"t\":\"neq\",\"v\":\"a\",\"vt\":\"str\"},"                                /* r1 */
           "{\"t\":\"lte\",\"v\":\"10\",\"vt\":\"num\"},"                               /* r2 */
           "{\"t\":\"btwn\",\"v\":\"10\",\"vt\":\"num\",\"v2\":\"1\",\"v2t\":\"num\"}," /* r3 */
           "{\"t\":\"cont\",\"v\":\"ell\",\"vt\":\"str\"},"                             /* r4 */
           "{\"t\":\"regex\",\"v\":\"^H.*O$\",\"vt\":\"str\",\"case\":true},"           /* r5 */
           "{\"t\":\"istype\",\"v\":\"number\",\"vt\":\"number\"},"                     /* r6 */
           "{\"t\":\"nempty\"},"                                                        /* r7 */
           "{\"t\":\"hask\",\"v\":\"k\",\"vt\":\"str\"},"                               /* r8 */
           "{\"t\":\"index\",\"v\":\"0\",\"vt\":\"num\",\"v2\":\"1\",\"v2t\":\"num\"}," /* r9 */
           "{\"t\":\"false\"},"                                                         /* r10 */
           "{\"t\":\"else\"}],\"outputs\":12,\"wires\":["
           "[\"r0\"],[\"r1\"],[\"r2\"],[\"r3\"],[\"r4\"],[\"r5\"],[\"r6\"],[\"r7\"],[\"r8\"],"
           "[\"r9\"],[\"r10\"],[\"r11\"]]},"
           "{\"id\":\"r0\",\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"r1\",\"type\":\"debug\","
           "\"z\":\"t\"},{\"id\":\"r2\",\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"r3\",\"type\":"
           "\"debug\",\"z\":\"t\"},{\"id\":\"r4\",\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"r5\","
           "\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"r6\",\"type\":\"debug\",\"z\":\"t\"},"
           "{\"id\":\"r7\",\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"r8\",\"type\":\"debug\","
           "\"z\":\"t\"},{\"id\":\"r9\",\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"r10\",\"type\":"
           "\"debug\",\"z\":\"t\"},{\"id\":\"r11\",\"type\":\"debug\",\"z\":\"t\"}]");
    /* parts.index is 1 for every message: r9 (index 0..1) always matches */
    expect_route("5", "r0 r1 r2 r3 r6 r9 ");
    expect_route("\"5\"", "r0 r1 r2 r3 r7 r9 ");
    expect_route("\"hello\"", "r1 r4 r5 r7 r9 ");
    expect_route("{\"k\":1}", "r1 r7 r8 r9 ");
    expect_route("false", "r1 r2 r9 r10 ");
    expect_route("\"a\"", "r7 r9 ");
    expect_route("42", "r1 r6 r9 ");
}

static void test_switch_else_and_first(void **state)
{
    fx_t *f = *state;
    deploy(f, "[{\"id\":\"t\",\"type\":\"tab\"},"
              "{\"id\":\"in\",\"type\":\"link in\",\"z\":\"t\",\"wires\":[[\"sw\"]]},"
              "{\"id\":\"sw\",\"type\":\"switch\",\"z\":\"t\",\"property\":\"payload\","
              "\"checkall\":\"false\",\"rules\":[{\"t\":\"gt\",\"v\":\"1\",\"vt\":\"num\"},"
              "{\"t\":\"gt\",\"v\":\"0\",\"vt\":\"num\"},{\"t\":\"else\"}],\"wires\":"
              "[[\"a\"],[\"b\"],[\"c\"]]},"
              "{\"id\":\"a\",\"type\":\"debug\",\"z\":\"t\"},{\"id\":\"b\",\"type\":\"debug\","
              "\"z\":\"t\"},{\"id\":\"c\",\"type\":\"debug\",\"z\":\"t\"}]");
    expect_route("2", "a ");
    expect_route("1", "b ");
    expect_route("-1", "c ");
    expect_route("\"abc\"", "c ");
}

/* Run a change node on a payload; returns the resulting msg JSON (caller frees). */
static json_t *change_once(const char *msg_json)
{
    int64_t after = last_id();
    json_t *msg = json_loads(msg_json, 0, NULL);
    for (int i = 0; i < 200 && flows_inject(PROJ, "in", json_incref(msg)) < 0; i++)
        usleep(10000);
    json_decref(msg);
    json_t *l = wait_entries(after, 1);
    json_t *m = json_incref(json_object_get(json_array_get(l, 0), "msg"));
    json_decref(l);
    json_object_del(m, "_msgid");
    return m;
}

static void test_change_rules(void **state)
{
    fx_t *f = *state;
    deploy(f,
           "[{\"id\":\"t\",\"type\":\"tab\",\"env\":[{\"name\":\"WHO\",\"type\":\"str\","
           "\"value\":\"world\"}]},"
           "{\"id\":\"in\",\"type\":\"link in\",\"z\":\"t\",\"wires\":[[\"ch\"]]},"
           "{\"id\":\"ch\",\"type\":\"change\",\"z\":\"t\",\"rules\":["
           "{\"t\":\"change\",\"p\":\"payload\",\"pt\":\"msg\",\"from\":\"a.b\",\"fromt\":"
           "\"str\",\"to\":\"X\",\"tot\":\"str\"},"
           "{\"t\":\"change\",\"p\":\"text\",\"pt\":\"msg\",\"from\":\"(\\\\d+)\",\"fromt\":"
           "\"re\",\"to\":\"<$1>\",\"tot\":\"str\"},"
           "{\"t\":\"change\",\"p\":\"n\",\"pt\":\"msg\",\"from\":\"5\",\"fromt\":\"num\","
           "\"to\":\"6\",\"tot\":\"num\"},"
           "{\"t\":\"set\",\"p\":\"who\",\"pt\":\"msg\",\"to\":\"WHO\",\"tot\":\"env\"},"
           "{\"t\":\"set\",\"p\":\"flag\",\"pt\":\"msg\",\"to\":\"true\",\"tot\":\"bool\"},"
           "{\"t\":\"set\",\"p\":\"copy\",\"pt\":\"msg\",\"to\":\"obj\",\"tot\":\"msg\"},"
           "{\"t\":\"set\",\"p\":\"obj.inner\",\"pt\":\"msg\",\"to\":\"changed\",\"tot\":\"str\"},"
           "{\"t\":\"set\",\"p\":\"count\",\"pt\":\"flow\",\"to\":\"n\",\"tot\":\"msg\"},"
           "{\"t\":\"set\",\"p\":\"fromflow\",\"pt\":\"msg\",\"to\":\"count\",\"tot\":\"flow\"},"
           "{\"t\":\"move\",\"p\":\"tmp\",\"pt\":\"msg\",\"to\":\"moved.here\",\"tot\":\"msg\"},"
           "{\"t\":\"delete\",\"p\":\"gone\",\"pt\":\"msg\"},"
           "{\"t\":\"set\",\"p\":\"missing\",\"pt\":\"msg\",\"to\":\"nothere\",\"tot\":\"msg\"}"
           "],\"wires\":[[\"d\"]]},"
           "{\"id\":\"d\",\"type\":\"debug\",\"z\":\"t\",\"complete\":\"true\"}]");
    json_t *m = change_once("{\"payload\":\"a.b axb a.b\",\"text\":\"x12y3\",\"n\":5,"
                            "\"obj\":{\"inner\":\"orig\"},\"tmp\":[1],\"gone\":1,\"missing\":2}");
    char *got = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got,
                        "{\"copy\":{\"inner\":\"orig\"},\"flag\":true,\"fromflow\":6,\"moved\":"
                        "{\"here\":[1]},\"n\":6,\"obj\":{\"inner\":\"changed\"},\"payload\":"
                        "\"X axb X\",\"text\":\"x<12>y<3>\",\"who\":\"world\"}");
    free(got);
    json_decref(m);
}

/* ---- origins: an entry message's work, and what its release is told ---- */

typedef struct {
    int released, settled, kept, settle_calls;
} origin_log_t;

static origin_log_t olog;
static pthread_mutex_t olog_mu = PTHREAD_MUTEX_INITIALIZER;

static int olog_settle(void *ud, store_conn_t *c, err_t *e)
{
    (void)ud, (void)c, (void)e;
    pthread_mutex_lock(&olog_mu);
    olog.settle_calls++;
    pthread_mutex_unlock(&olog_mu);
    return 0;
}

static void olog_release(void *ud, int settled, int kept)
{
    (void)ud;
    pthread_mutex_lock(&olog_mu);
    olog.released++;
    olog.settled = settled;
    olog.kept = kept;
    pthread_mutex_unlock(&olog_mu);
}

static const flows_origin_hooks_t olog_hooks = {.settle = olog_settle, .release = olog_release};

static origin_log_t olog_get(void)
{
    pthread_mutex_lock(&olog_mu);
    origin_log_t l = olog;
    pthread_mutex_unlock(&olog_mu);
    return l;
}

static void entry_task(flows_node_t *n, void *arg)
{
    int settle = arg != NULL;
    if (settle) { /* as a sinch-send's transaction: settle, commit, settled */
        err_t e;
        assert_int_equal(flows_origin_settle(NULL, &e), 1);
        flows_origin_settled();
        assert_int_equal(flows_origin_settle(NULL, &e), 0); /* once */
    }
    flows_send(n, 0, flows_msg_new());
}

static void post_entry(int settle)
{
    pthread_mutex_lock(&olog_mu);
    memset(&olog, 0, sizeof olog);
    pthread_mutex_unlock(&olog_mu);
    flows_origin_t *o = flows_origin_new(&olog_hooks, NULL);
    assert_int_equal(flows_runtime_sync(PROJ, 5000), 0); /* the deploy is in */
    flows_post_from(o, PROJ, "in", entry_task, settle ? (void *)1 : NULL, NULL);
    flows_origin_drop(o);
}

static void test_origin_lives_while_its_work_is_armed(void **state)
{
    fx_t *f = *state;
    deploy(f, "[{\"id\":\"t\",\"type\":\"tab\"},"
              "{\"id\":\"in\",\"type\":\"link in\",\"z\":\"t\",\"wires\":[[\"dl\"]]},"
              "{\"id\":\"dl\",\"type\":\"delay\",\"z\":\"t\",\"pauseType\":\"delay\","
              "\"timeout\":\"400\",\"timeoutUnits\":\"milliseconds\",\"wires\":[[\"d\"]]},"
              "{\"id\":\"d\",\"type\":\"debug\",\"z\":\"t\"}]");
    int64_t after = last_id();
    post_entry(0);
    usleep(150000); /* the entry ran long ago; the delay still holds the message */
    assert_int_equal(olog_get().released, 0);
    json_decref(wait_entries(after, 1));
    for (int i = 0; i < 100 && !olog_get().released; i++)
        usleep(10000);
    origin_log_t l = olog_get();
    assert_int_equal(l.released, 1);
    assert_int_equal(l.settled, 0);
    assert_int_equal(l.kept, 0);
    assert_int_equal(l.settle_calls, 0);

    /* settled by a node: release is told so (the record went with the node's write) */
    post_entry(1);
    for (int i = 0; i < 200 && !olog_get().released; i++)
        usleep(10000);
    l = olog_get();
    assert_int_equal(l.released, 1);
    assert_int_equal(l.settle_calls, 1);
    assert_int_equal(l.settled, 1);

    /* a stop that drops the armed delay keeps the record for the next start */
    post_entry(0);
    usleep(150000);
    assert_int_equal(olog_get().released, 0);
    flows_stop();
    l = olog_get();
    assert_int_equal(l.released, 1);
    assert_int_equal(l.kept, 1);
    assert_int_equal(l.settled, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_parse),
        cmocka_unit_test(test_prop_get_set_delete),
        cmocka_unit_test(test_js_helpers),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_cron),
        cmocka_unit_test(test_typed_eval),
        cmocka_unit_test(test_validate),
        cmocka_unit_test_setup_teardown(test_switch_rules, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_switch_else_and_first, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_change_rules, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_origin_lives_while_its_work_is_armed, rt_setup,
                                        rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
