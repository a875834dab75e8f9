/* test_jsonx.c: base/jsonx.h parse errors and the typed getters' error contract. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/jsonx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" to contain \"%s\"", (hay), (needle));                        \
    } while (0)

static json_t *parse_ok(const char *text)
{
    err_t e = {0};
    json_t *v = jsonx_parse(text, strlen(text), &e);
    if (!v) fail_msg("parse of %s failed: %s", text, e.message);
    return v;
}

static void test_parse_valid(void **state)
{
    (void)state;
    json_t *v = parse_ok("{\"a\": [1, 2.5, \"x\", true, null], \"b\": {\"c\": -7}}");
    assert_true(json_is_object(v));
    assert_int_equal(json_array_size(json_object_get(v, "a")), 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "b"), "c")), -7);
    json_decref(v);

    /* only len bytes are read: the text need not be NUL-terminated at len */
    const char text[] = "{\"k\":1}GARBAGE";
    err_t e = {0};
    v = jsonx_parse(text, 7, &e);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "k")), 1);
    json_decref(v);
}

static void test_parse_error_has_line_and_column(void **state)
{
    (void)state;
    const char text[] = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    err_t e = {0};
    json_t *v = jsonx_parse(text, strlen(text), &e);
    assert_null(v);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_contains(e.message, "invalid JSON");
    assert_contains(e.message, "line 3 column ");

    const char text2[] = "{\"a\": 1,}";
    v = jsonx_parse(text2, strlen(text2), &e);
    assert_null(v);
    assert_contains(e.message, "line 1 column ");

    /* trailing content after the document */
    const char text3[] = "{} {}";
    v = jsonx_parse(text3, strlen(text3), &e);
    assert_null(v);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
}

static void test_parse_empty_body(void **state)
{
    (void)state;
    err_t e = {0};
    assert_null(jsonx_parse("", 0, &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_contains(e.message, "empty");

    /* whitespace only is not a document either */
    err_clear(&e);
    assert_null(jsonx_parse("  \n ", 4, &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
}

static void test_parse_nul_in_body(void **state)
{
    (void)state;
    const char text[] = "{\"a\":\"x\0y\"}";
    err_t e = {0};
    assert_null(jsonx_parse(text, sizeof text - 1, &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_contains(e.message, "NUL");

    /* a NUL after a complete document is still rejected */
    const char text2[] = "{}\0";
    err_clear(&e);
    assert_null(jsonx_parse(text2, sizeof text2 - 1, &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);

    /* an escaped \u0000 inside a string is refused too */
    const char text3[] = "{\"a\":\"x\\u0000y\"}";
    err_clear(&e);
    assert_null(jsonx_parse(text3, sizeof text3 - 1, &e));
}

static void test_parse_duplicate_keys(void **state)
{
    (void)state;
    const char text[] = "{\"a\": 1, \"b\": 2, \"a\": 3}";
    err_t e = {0};
    assert_null(jsonx_parse(text, strlen(text), &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_contains(e.message, "duplicate");

    /* same key in different objects is fine */
    json_t *v = parse_ok("{\"a\": {\"a\": 1}}");
    json_decref(v);
}

static void test_str(void **state)
{
    (void)state;
    json_t *o = parse_ok("{\"display_name\": \"Shop\", \"n\": 7, \"nul\": null}");
    err_t e = {0};
    const char *s = "untouched";

    assert_int_equal(jsonx_str(o, "missing", "app.missing", &s, &e), 0);
    assert_string_equal(s, "untouched");
    assert_int_equal(jsonx_str(o, "nul", "app.nul", &s, &e), 0); /* null reads as absent */
    assert_string_equal(s, "untouched");
    assert_int_equal(jsonx_str(NULL, "x", "x", &s, &e), 0);

    assert_int_equal(jsonx_str(o, "display_name", "app.display_name", &s, &e), 1);
    assert_string_equal(s, "Shop");

    const char *s2 = "untouched";
    assert_int_equal(jsonx_str(o, "n", "app.display_name", &s2, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_string_equal(e.message, "field app.display_name must be a string, got integer");
    assert_string_equal(s2, "untouched");

    /* a string with an embedded NUL (built in code, not parsed) */
    json_object_set_new(o, "bin", json_stringn("a\0b", 3));
    assert_int_equal(jsonx_str(o, "bin", "app.bin", &s2, &e), -1);
    assert_contains(e.message, "app.bin");
    assert_contains(e.message, "NUL");
    json_decref(o);
}

static void test_int(void **state)
{
    (void)state;
    json_t *o = parse_ok("{\"n\": 42, \"s\": \"42\", \"neg\": \"-17\", \"big\": 11, \"r\": 4.5,"
                         " \"b\": true, \"bad\": \"4x\", \"empty\": \"\", \"arr\": [1]}");
    err_t e = {0};
    int64_t v = 999;

    assert_int_equal(jsonx_int(o, "missing", "x.missing", 0, 100, &v, &e), 0);
    assert_int_equal(v, 999);

    assert_int_equal(jsonx_int(o, "n", "x.n", 0, 100, &v, &e), 1);
    assert_int_equal(v, 42);
    v = 0;
    assert_int_equal(jsonx_int(o, "s", "x.s", 0, 100, &v, &e), 1); /* int64 as a string */
    assert_int_equal(v, 42);
    assert_int_equal(jsonx_int(o, "neg", "x.neg", -100, 100, &v, &e), 1);
    assert_int_equal(v, -17);

    /* bounds are inclusive */
    assert_int_equal(jsonx_int(o, "n", "x.n", 42, 42, &v, &e), 1);

    v = 999;
    assert_int_equal(jsonx_int(o, "big", "page_size", 1, 10, &v, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_string_equal(e.message, "field page_size must be between 1 and 10, got 11");
    assert_int_equal(v, 999);
    assert_int_equal(jsonx_int(o, "neg", "x.neg", 0, 100, &v, &e), -1);
    assert_contains(e.message, "got -17");
    assert_int_equal(jsonx_int(o, "s", "x.s", 43, 100, &v, &e), -1); /* string form range-checked */

    assert_int_equal(jsonx_int(o, "r", "x.r", 0, 100, &v, &e), -1);
    assert_string_equal(e.message, "field x.r must be an integer, got number");
    assert_int_equal(jsonx_int(o, "b", "x.b", 0, 100, &v, &e), -1);
    assert_string_equal(e.message, "field x.b must be an integer, got boolean");
    assert_int_equal(jsonx_int(o, "bad", "x.bad", 0, 100, &v, &e), -1);
    assert_string_equal(e.message, "field x.bad must be an integer, got string");
    assert_int_equal(jsonx_int(o, "empty", "x.empty", 0, 100, &v, &e), -1);
    assert_int_equal(jsonx_int(o, "arr", "x.arr", 0, 100, &v, &e), -1);
    assert_string_equal(e.message, "field x.arr must be an integer, got array");
    assert_int_equal(v, 999);
    json_decref(o);

    /* the extremes of int64 */
    o = parse_ok("{\"max\": 9223372036854775807, \"min\": \"-9223372036854775808\"}");
    assert_int_equal(jsonx_int(o, "max", "max", INT64_MIN, INT64_MAX, &v, &e), 1);
    assert_true(v == INT64_MAX);
    assert_int_equal(jsonx_int(o, "min", "min", INT64_MIN, INT64_MAX, &v, &e), 1);
    assert_true(v == INT64_MIN);
    json_decref(o);
}

/* BUG (src/base/jsonx.c:71): an integer given as a string is converted with strtoll without
 * checking errno, so "99999999999999999999" silently saturates to INT64_MAX (and the negative
 * one to INT64_MIN) and is accepted when the range is the full int64 range. It must be
 * rejected: set errno = 0 before strtoll and fail on ERANGE. */
static void test_bug_int_string_overflow_rejected(void **state)
{
    (void)state;
    json_t *o = parse_ok("{\"s\": \"99999999999999999999\", \"t\": \"-99999999999999999999\"}");
    err_t e = {0};
    int64_t v = 7;
    int rs = jsonx_int(o, "s", "x.s", INT64_MIN, INT64_MAX, &v, &e);
    int rt = jsonx_int(o, "t", "x.t", INT64_MIN, INT64_MAX, &v, &e);
    json_decref(o);
    assert_int_equal(rs, -1);
    assert_int_equal(rt, -1);
    assert_int_equal(v, 7);
}

static void test_bool(void **state)
{
    (void)state;
    json_t *o = parse_ok("{\"t\": true, \"f\": false, \"s\": \"true\", \"n\": 1}");
    err_t e = {0};
    int b = 5;
    assert_int_equal(jsonx_bool(o, "missing", "x", &b, &e), 0);
    assert_int_equal(b, 5);
    assert_int_equal(jsonx_bool(o, "t", "x.t", &b, &e), 1);
    assert_int_equal(b, 1);
    assert_int_equal(jsonx_bool(o, "f", "x.f", &b, &e), 1);
    assert_int_equal(b, 0);
    assert_int_equal(jsonx_bool(o, "s", "x.s", &b, &e), -1);
    assert_string_equal(e.message, "field x.s must be a boolean, got string");
    assert_int_equal(jsonx_bool(o, "n", "x.n", &b, &e), -1);
    assert_string_equal(e.message, "field x.n must be a boolean, got integer");
    json_decref(o);
}

static void test_obj_and_arr(void **state)
{
    (void)state;
    json_t *o = parse_ok("{\"o\": {\"k\": 1}, \"a\": [1, 2], \"s\": \"x\"}");
    err_t e = {0};
    json_t *out = NULL;

    assert_int_equal(jsonx_obj(o, "missing", "x", &out, &e), 0);
    assert_null(out);
    assert_int_equal(jsonx_obj(o, "o", "msg.o", &out, &e), 1);
    assert_ptr_equal(out, json_object_get(o, "o")); /* borrowed reference */
    assert_int_equal(jsonx_obj(o, "a", "msg.a", &out, &e), -1);
    assert_string_equal(e.message, "field msg.a must be an object, got array");

    out = NULL;
    assert_int_equal(jsonx_arr(o, "missing", "x", &out, &e), 0);
    assert_null(out);
    assert_int_equal(jsonx_arr(o, "a", "msg.a", &out, &e), 1);
    assert_int_equal(json_array_size(out), 2);
    assert_int_equal(jsonx_arr(o, "o", "msg.o", &out, &e), -1);
    assert_string_equal(e.message, "field msg.o must be an array, got object");
    assert_int_equal(jsonx_arr(o, "s", "msg.s", &out, &e), -1);
    assert_string_equal(e.message, "field msg.s must be an array, got string");
    json_decref(o);
}

static void test_enum(void **state)
{
    (void)state;
    static const char *const channels[] = {"SMS", "WHATSAPP", "RCS", NULL};
    json_t *o = parse_ok("{\"c\": \"WHATSAPP\", \"u\": \"TELEGRAM\", \"l\": \"sms\", \"n\": 3}");
    err_t e = {0};
    int idx = -9;

    assert_int_equal(jsonx_enum(o, "missing", "x", channels, &idx, &e), 0);
    assert_int_equal(idx, -9);
    assert_int_equal(jsonx_enum(o, "c", "msg.channel", channels, &idx, &e), 1);
    assert_int_equal(idx, 1);

    idx = -9;
    assert_int_equal(jsonx_enum(o, "u", "msg.channel", channels, &idx, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_contains(e.message, "msg.channel");
    assert_contains(e.message, "TELEGRAM");
    assert_contains(e.message, "SMS, WHATSAPP, RCS");
    assert_int_equal(idx, -9);

    /* case-sensitive */
    assert_int_equal(jsonx_enum(o, "l", "msg.channel", channels, &idx, &e), -1);
    assert_int_equal(jsonx_enum(o, "n", "msg.channel", channels, &idx, &e), -1);
    assert_string_equal(e.message, "field msg.channel must be a string, got integer");
    json_decref(o);
}

static void test_enum_long_list_is_bounded(void **state)
{
    (void)state;
    /* 40 values of 20 characters: more than the message can hold; must not overflow */
    static char storage[40][24];
    const char *values[41];
    for (int i = 0; i < 40; i++) {
        snprintf(storage[i], sizeof storage[i], "VALUE_%014d", i);
        values[i] = storage[i];
    }
    values[40] = NULL;
    json_t *o = parse_ok("{\"v\": \"NOPE\"}");
    err_t e = {0};
    int idx;
    assert_int_equal(jsonx_enum(o, "v", "f", values, &idx, &e), -1);
    assert_contains(e.message, "VALUE_00000000000000");
    assert_true(strlen(e.message) < sizeof e.message);
    json_decref(o);
}

static void test_require(void **state)
{
    (void)state;
    json_t *o = parse_ok("{\"display_name\": 5, \"ok\": \"x\"}");
    err_t e = {0};
    const char *s = NULL;

    assert_int_equal(jsonx_require(jsonx_str(o, "ok", "app.ok", &s, &e), "app.ok", &e), 1);
    assert_string_equal(s, "x");

    assert_int_equal(jsonx_require(jsonx_str(o, "absent", "app.absent", &s, &e), "app.absent", &e),
                     -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_string_equal(e.message, "missing required field app.absent");

    /* a type error from the getter is kept, not replaced by "missing" */
    assert_int_equal(jsonx_require(jsonx_str(o, "display_name", "app.display_name", &s, &e),
                                   "app.display_name", &e),
                     -1);
    assert_string_equal(e.message, "field app.display_name must be a string, got integer");
    json_decref(o);
}

static void test_dump(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:i, s:[b, n]}", "a", 1, "b", 1);
    char *s = jsonx_dump(o);
    assert_string_equal(s, "{\"a\":1,\"b\":[true,null]}");
    free(s);
    json_decref(o);

    json_t *n = json_integer(42);
    s = jsonx_dump(n);
    assert_string_equal(s, "42");
    free(s);
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_error_has_line_and_column),
        cmocka_unit_test(test_parse_empty_body),
        cmocka_unit_test(test_parse_nul_in_body),
        cmocka_unit_test(test_parse_duplicate_keys),
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_bug_int_string_overflow_rejected),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_obj_and_arr),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_enum_long_list_is_bounded),
        cmocka_unit_test(test_require),
        cmocka_unit_test(test_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
