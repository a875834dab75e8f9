/* test_flows_mustache.c: flows/mustache.h against mustache.js 4 (the expected outputs below
 * were produced by mustache.js 4.2.0, the version Node-RED 4 ships), plus the template
 * node's lookups (flow/global/env callback), its JSON-output escaping, the full JSON mode
 * and compile errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flows/mustache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *tpl, *view, *want;
} cases[] = {
    {"Hello {{name}}!", "{\"name\": \"World\"}", "Hello World!"},
    {"{{x}}|{{{x}}}|{{&x}}", "{\"x\": \"<a href='/'>&\\\"`=</a>\"}",
     "&lt;a href&#x3D;&#39;&#x2F;&#39;&gt;&amp;&quot;&#x60;&#x3D;&lt;&#x2F;a&gt;|<a "
     "href='/'>&\"`=</a>|<a href='/'>&\"`=</a>"},
    {"{{n}} {{f}} {{big}} {{small}} {{neg}} {{t}} {{fa}} {{nu}} {{missing}}",
     "{\"n\": 42, \"f\": 1.5, \"big\": 1e+21, \"small\": 1.5e-07, \"neg\": -0.25, \"t\": true, "
     "\"fa\": false, \"nu\": null}",
     "42 1.5 1e+21 1.5e-7 -0.25 true false  "},
    {"{{arr}} {{obj}} {{nested}}",
     "{\"arr\": [1, \"a\", null, [2, 3]], \"obj\": {\"a\": 1}, \"nested\": [{\"a\": 1}, \"<\"]}",
     "1,a,,2,3 [object Object] [object Object],&lt;"},
    {"{{a.b.c}} {{a.b}} {{a.x.y}}", "{\"a\": {\"b\": {\"c\": \"deep\"}}}", "deep [object Object] "},
    {"{{#items}}[{{name}}:{{top}}]{{/items}}",
     "{\"top\": \"T\", \"items\": [{\"name\": \"a\"}, {\"name\": \"b\", \"top\": \"own\"}]}",
     "[a:T][b:own]"},
    {"{{#items}}{{.}},{{/items}}", "{\"items\": [1, \"two\", 3.5]}", "1,two,3.5,"},
    {"{{#obj}}{{k}}{{/obj}}{{#flag}}yes{{/flag}}{{#zero}}no{{/zero}}{{#empty}}no{{/"
     "empty}}{{#str}}<{{.}}>{{/str}}",
     "{\"obj\": {\"k\": \"v\"}, \"flag\": true, \"zero\": 0, \"empty\": \"\", \"str\": \"s\"}",
     "vyes<s>"},
    {"{{^missing}}none{{/missing}}{{^list}}empty{{/list}}{{^full}}x{{/full}}{{^f}}F{{/f}}",
     "{\"list\": [], \"full\": [1], \"f\": false}", "noneemptyF"},
    {"a\n  {{#s}}\n  x\n  {{/s}}\nb\n", "{\"s\": true}", "a\n  x\nb\n"},
    {"a\n{{! comment }}\nb {{! inline }} c\n", "{}", "a\nb  c\n"},
    {"{{=<% %>=}}<% name %> {{name}} <%={{ }}=%>{{name}}", "{\"name\": \"N\"}", "N {{name}} N"},
    {"{{items.length}} {{s.length}} {{items.0}} {{s.1}}",
     "{\"items\": [\"p\", \"q\"], \"s\": \"héllo\"}", "2 5 p é"},
    {"{{#a}}{{#b}}{{c}}{{d}}{{/b}}{{/a}}",
     "{\"a\": {\"b\": {\"c\": 1}, \"d\": \"outer-d\"}, \"d\": \"root-d\"}", "1outer-d"},
    {"  {{#a}}\r\n  in\r\n  {{/a}}\r\nend", "{\"a\": [1, 2]}", "  in\r\n  in\r\nend"},
    {"{{ spaced }}{{{ sp }}}", "{\"spaced\": \"1\", \"sp\": \"2\"}", "12"},
    {"{{> part}}x", "{}", "x"},
    {"{{#a}}{{a.b}}{{/a}}", "{\"a\": {\"b\": \"ab\"}}", "ab"},
};

static char *render(const char *tpl, const char *view_json, const flows_mustache_opts_t *o)
{
    json_error_t je;
    json_t *view = json_loads(view_json, JSON_DECODE_ANY, &je);
    if (!view) fail_msg("bad view %s: %s", view_json, je.text);
    err_t e = {0};
    char *s = flows_mustache_render_str(tpl, view, o, &e);
    if (!s) fail_msg("compile %s: %s", tpl, e.message);
    json_decref(view);
    return s;
}

static void test_mustache_js_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = render(cases[i].tpl, cases[i].view, NULL);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu %s: got [%s] want [%s]", i, cases[i].tpl, got, cases[i].want);
        free(got);
    }
}

static json_t *ctx_lookup(void *ud, const char *name)
{
    int *calls = ud;
    (*calls)++;
    if (strcmp(name, "flow.count") == 0) return json_integer(7);
    if (strcmp(name, "global.user.name") == 0) return json_string("Ada");
    if (strcmp(name, "env.HOME") == 0) return json_string("/home/x");
    return NULL;
}

static void test_lookup_callback(void **state)
{
    (void)state;
    int calls = 0;
    flows_mustache_opts_t o = {.lookup = ctx_lookup, .ud = &calls};
    char *s = render("{{flow.count}} {{global.user.name}} {{env.HOME}} {{env.NOPE}} {{payload}}",
                     "{\"payload\":\"p\"}", &o);
    assert_string_equal(s, "7 Ada &#x2F;home&#x2F;x  p");
    assert_int_equal(calls, 4); /* payload was found in the msg: no callback */
    free(s);
    /* the msg wins over the callback, as in Node-RED */
    calls = 0;
    s = render("{{flow.count}}", "{\"flow\":{\"count\":1}}", &o);
    assert_string_equal(s, "1");
    assert_int_equal(calls, 0);
    free(s);
    /* sections over callback values */
    s = render("{{#flow.count}}n={{.}}{{/flow.count}}", "{}", &o);
    assert_string_equal(s, "n=7");
    free(s);
}

static void test_json_nr_escaping(void **state)
{
    (void)state;
    flows_mustache_opts_t o = {.json = FLOWS_MUSTACHE_JSON_NR};
    /* top level: backslash and control characters escaped; quotes are not (as Node-RED) */
    char *s = render("{\"a\":\"{{{p}}}\"}", "{\"p\":\"l1\\nl2\\t\\\\\"}", &o);
    assert_string_equal(s, "{\"a\":\"l1\\nl2\\t\\\\\"}");
    free(s);
    /* inside a section that pushed a view, Node-RED does not escape */
    s = render("{{#o}}{{{p}}}{{/o}}", "{\"o\":{\"p\":\"a\\nb\"}}", &o);
    assert_string_equal(s, "a\nb");
    free(s);
}

static void test_json_full_escaping(void **state)
{
    (void)state;
    flows_mustache_opts_t o = {.json = FLOWS_MUSTACHE_JSON_FULL, .no_html = 1};
    char *s = render("{\"text\":\"Hi {{name}} {{#o}}{{q}}{{/o}}\"}",
                     "{\"name\":\"O'Brien \\\"<x>\\\"\\n\",\"o\":{\"q\":\"\\u0001\"}}", &o);
    assert_string_equal(s, "{\"text\":\"Hi O'Brien \\\"<x>\\\"\\n \\u0001\"}");
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    assert_non_null(j);
    json_decref(j);
    free(s);
}

static void test_views_stack(void **state)
{
    (void)state;
    json_t *msg = json_pack("{s:s,s:s}", "payload", "P", "name", "msg-name");
    json_t *vars = json_pack("{s:s}", "name", "Calle");
    json_t *views[2] = {msg, vars};
    err_t e = {0};
    const char *tpl = "{{name}}/{{payload}}";
    flows_mustache_t *m = flows_mustache_compile(tpl, strlen(tpl), &e);
    assert_non_null(m);
    buf_t b;
    buf_init(&b);
    flows_mustache_render(m, views, 2, NULL, &b);
    assert_string_equal(b.data, "Calle/P");
    buf_reset(&b);
    flows_mustache_render(m, views, 1, NULL, &b); /* same template, rendered again */
    assert_string_equal(b.data, "msg-name/P");
    buf_free(&b);
    flows_mustache_free(m);
    json_decref(msg);
    json_decref(vars);
}

static void test_compile_errors(void **state)
{
    (void)state;
    static const struct {
        const char *tpl, *msg;
    } bad[] = {
        {"{{#a}}x", "Unclosed section \"a\" at 7"},
        {"{{/a}}", "Unopened section \"a\" at 0"},
        {"{{#a}}{{/b}}", "Unclosed section \"a\" at 6"},
        {"{{x", "Unclosed tag at 3"},
        {"{{=a=}}", "Invalid tags: a"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_t e = {0};
        flows_mustache_t *m = flows_mustache_compile(bad[i].tpl, strlen(bad[i].tpl), &e);
        assert_null(m);
        assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
        assert_string_equal(e.message, bad[i].msg);
    }
    /* empty template renders empty */
    char *s = render("", "{}", NULL);
    assert_string_equal(s, "");
    free(s);
}

static void test_js_number(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *s;
    } nums[] = {{0.1, "0.1"},
                {1.0, "1"},
                {-2.5, "-2.5"},
                {1e21, "1e+21"},
                {1e20, "100000000000000000000"},
                {1.5e-7, "1.5e-7"},
                {0.000001, "0.000001"},
                {123456.789, "123456.789"},
                {0.1 + 0.2, "0.30000000000000004"},
                {1.7976931348623157e308, "1.7976931348623157e+308"}};
    char buf[40];
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        flows_mustache_num(nums[i].v, buf, sizeof buf);
        assert_string_equal(buf, nums[i].s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mustache_js_cases), cmocka_unit_test(test_lookup_callback),
        cmocka_unit_test(test_json_nr_escaping),  cmocka_unit_test(test_json_full_escaping),
        cmocka_unit_test(test_views_stack),       cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_js_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
