/* test_flows_lua.c: flows/lua.h: the exact JSON round trip of messages, the sandbox (escapes
 * refused), the instruction budget, the memory cap, and a function node script run with a
 * fake host (send, log, status, context, env). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flows/lua.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" to contain \"%s\"", (hay), (needle));                        \
    } while (0)

static flows_lua_t *new_state(size_t mem)
{
    flows_lua_limits_t lim = {.mem_limit = mem, .instr_limit = 0};
    err_t e = {0};
    flows_lua_t *S = flows_lua_new(&lim, &e);
    if (!S) fail_msg("flows_lua_new: %s", e.message);
    return S;
}

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* eval code and compare the compact JSON of the result */
static void eval_is(flows_lua_t *S, const char *code, const char *want)
{
    err_t e = {0};
    json_t *v = flows_lua_eval(S, code, &e);
    if (e.code != ERR_OK) fail_msg("eval %s: %s", code, e.message);
    char *got = v ? dump(v) : strdup("nil");
    if (strcmp(got, want) != 0) fail_msg("eval %s: got %s want %s", code, got, want);
    free(got);
    json_decref(v);
}

/* eval code that must fail; the message must contain needle */
static void eval_fails(flows_lua_t *S, const char *code, err_code_t code_want, const char *needle)
{
    err_t e = {0};
    json_t *v = flows_lua_eval(S, code, &e);
    if (e.code == ERR_OK) {
        char *got = v ? dump(v) : strdup("nil");
        fail_msg("eval %s: expected an error, got %s", code, got);
    }
    assert_null(v);
    assert_int_equal(e.code, code_want);
    assert_contains(e.message, needle);
}

static void test_roundtrip_exact(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    const char *docs[] = {
        "{\"b\":1,\"a\":[],\"c\":{},\"d\":[1,2.5,null,\"x\\u0000y\",true,false,[]],"
        "\"e\":9007199254740993,\"f\":-0.5,\"g\":{\"z\":1,\"y\":2,\"x\":3},"
        "\"h\":\"\\u00e9\\u2028\\ud83d\\ude00\",\"i\":-9223372036854775808,\"j\":1e+300}",
        "[]",
        "[null,null]",
        "{\"_msgid\":\"abc\",\"payload\":{\"10\":1,\"2\":2,\"a\":[{},{\"k\":[]}]}}",
        "\"plain\"",
        "0.1",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t je;
        json_t *in = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!in) fail_msg("bad test json %s: %s", docs[i], je.text);
        err_t e = {0};
        json_t *out = flows_lua_roundtrip(S, in, &e);
        if (!out) fail_msg("roundtrip %s: %s", docs[i], e.message);
        char *a = dump(in), *b = dump(out);
        if (strcmp(a, b) != 0) fail_msg("roundtrip changed %s into %s", a, b);
        assert_true(json_equal(in, out));
        free(a);
        free(b);
        json_decref(in);
        json_decref(out);
    }
    flows_lua_free(S);
}

static void test_values_from_lua(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    /* integers stay integers, integral floats print as JavaScript would, NaN is null */
    eval_is(S, "return {a=1, b=1.5, c=4/2, d=0/0, e=math.huge, f=7//2}",
            "{\"a\":1,\"b\":1.5,\"c\":2,\"d\":null,\"e\":null,\"f\":3}");
    /* empty arrays need marking; an empty table is an object */
    eval_is(S, "return {x=json.array(), y={}, z={1,2,3}, w=json.array({})}",
            "{\"w\":[],\"x\":[],\"y\":{},\"z\":[1,2,3]}");
    eval_is(S, "return {a=null, b=json.null, c=tostring(null), d=(null == json.null)}",
            "{\"a\":null,\"b\":null,\"c\":\"null\",\"d\":true}");
    /* holes in lists become null */
    eval_is(S, "return {nil, 2}", "[null,2]");
    eval_is(S, "local t = {} t[3] = 'x' return t", "[null,null,\"x\"]");
    /* a sparse integer-keyed table is an object with string keys */
    eval_is(S, "return {[1]=1, [100000]=2}", "{\"1\":1,\"100000\":2}");
    /* strings are binary-safe: NUL kept, invalid UTF-8 becomes a byte array (Buffer) */
    eval_is(S, "return 'a\\0b'", "\"a\\u0000b\"");
    eval_is(S, "return '\\xff\\x00a'", "[255,0,97]");
    /* functions are dropped like JSON.stringify (null inside arrays) */
    eval_is(S, "return {f=print, a={print, 1}}", "{\"a\":[null,1]}");
    /* key order: decoded keys keep their order, new keys follow sorted; a key deleted and
     * set again keeps its first place (JavaScript would move it last; documented) */
    eval_is(S,
            "local t = json.decode('{\"z\":1,\"a\":2,\"m\":3}') t.a = nil t.q = 4 t.b = 5 "
            "t.a = 6 return t",
            "{\"z\":1,\"a\":6,\"m\":3,\"b\":5,\"q\":4}");
    /* json helpers */
    eval_is(S, "return json.encode({a={1,2}, b=json.array(), c=null})",
            "\"{\\\"a\\\":[1,2],\\\"b\\\":[],\\\"c\\\":null}\"");
    eval_is(S,
            "local v = json.decode('[1, 2.0, \"x\", null, []]') "
            "return {json.isarray(v), math.type(v[1]), math.type(v[2]), v[4] == null, "
            "json.isarray(v[5]), #v}",
            "[true,\"integer\",\"float\",true,true,5]");
    eval_fails(S, "return json.decode('{bad')", ERR_INVALID_ARGUMENT, "json.decode");
    /* json.encode prints exactly what JavaScript's JSON.stringify prints */
    eval_is(S,
            "return json.encode({a=0.1, b=1e21, c=1.5e-7, d=-0.0, e=123456789012, f=1/3, "
            "g=5e-324, h=1.7976931348623157e308, i=123e-20, j=0.000001, k=1e-7})",
            "\"{\\\"a\\\":0.1,\\\"b\\\":1e+21,\\\"c\\\":1.5e-7,\\\"d\\\":0,"
            "\\\"e\\\":123456789012,\\\"f\\\":0.3333333333333333,\\\"g\\\":5e-324,"
            "\\\"h\\\":1.7976931348623157e+308,\\\"i\\\":1.23e-18,\\\"j\\\":0.000001,"
            "\\\"k\\\":1e-7}\"");
    {
        err_t e = {0};
        json_t *v =
            flows_lua_eval(S,
                           "return json.encode('\\1\"\\\\/\\195\\169\\n\\226\\128\\168')"
                           " .. json.encode(json.decode('{\"a\":[1,{\"b\":[]}],\"c\":{}}'), true)",
                           &e);
        assert_non_null(v);
        assert_string_equal(
            json_string_value(v),
            "\"\\u0001\\\"\\\\/\xc3\xa9\\n\xe2\x80\xa8\"{\n    \"a\": [\n        1,\n"
            "        {\n            \"b\": []\n        }\n    ],\n    \"c\": {}\n}");
        json_decref(v);
    }
    /* cyclic tables are refused, not looped on */
    eval_fails(S, "local t = {} t.self = t return t", ERR_INVALID_ARGUMENT, "nested too deeply");
    flows_lua_free(S);
}

static void test_sandbox_refuses_escapes(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    eval_is(S,
            "return {type(io), type(package), type(debug), type(require), type(dofile), "
            "type(loadfile), type(os.execute), type(os.exit), type(os.getenv), type(os.remove), "
            "type(string.dump), type(os.time), type(os.date), type(os.clock)}",
            "[\"nil\",\"nil\",\"nil\",\"function\",\"function\",\"function\",\"nil\",\"nil\","
            "\"nil\",\"nil\",\"nil\",\"function\",\"function\",\"function\"]");
    eval_fails(S, "return io.open('/etc/passwd')", ERR_INVALID_ARGUMENT, "global 'io'");
    eval_fails(S, "os.execute('touch /tmp/pwned')", ERR_INVALID_ARGUMENT, "field 'execute'");
    eval_fails(S, "return require('os')", ERR_INVALID_ARGUMENT, "require is not available");
    eval_fails(S, "return dofile('/etc/passwd')", ERR_INVALID_ARGUMENT, "dofile is not available");
    eval_fails(S, "return loadfile('/etc/passwd')", ERR_INVALID_ARGUMENT, "loadfile is not");
    eval_fails(S, "return string.dump(print)", ERR_INVALID_ARGUMENT, "field 'dump'");
    eval_fails(S, "return ('x'):dump()", ERR_INVALID_ARGUMENT, "method 'dump'");
    /* binary chunks refused even when asked for */
    eval_is(S, "local f, m = load('\\27Lua\\84\\0', 'x', 'b') return {f == nil, m}",
            "[true,\"attempt to load a binary chunk (mode is 't')\"]");
    /* load defaults to the sandbox environment, not the real globals */
    eval_is(S, "return load('return type(io), type(node)')()", "\"nil\"");
    eval_is(S, "local e = {} load('x = 1', 'c', 't', e)() return e.x", "1");
    /* the string metatable and the environment's metatable are hidden */
    eval_is(S, "return {getmetatable(''), getmetatable(_G)}", "[false,false]");
    eval_fails(S, "getmetatable('').__index.upper = nil", ERR_INVALID_ARGUMENT, "index");
    eval_fails(S, "setmetatable({}, {__gc = function() end})", ERR_INVALID_ARGUMENT, "__gc");
    eval_fails(S, "collectgarbage('stop')", ERR_INVALID_ARGUMENT, "not allowed");
    eval_is(S, "return type(collectgarbage('count'))", "\"number\"");
    /* arrays' metatable is protected too */
    eval_is(S, "return getmetatable(json.array())", "\"json.array\"");
    eval_fails(S, "setmetatable(json.array(), {})", ERR_INVALID_ARGUMENT, "protected");
    /* globals of one eval do not leak into another environment */
    eval_is(S, "leak = 1 return leak", "1");
    eval_is(S, "return leak", "nil");
    flows_lua_free(S);
}

/* The metered pattern functions give what Lua's own string library gives: the same calls
 * run in a stock Lua state and in the sandbox, results serialised and compared. */
static const char *const PATTERN_CASES[] = {
    "('hello world'):find('o w')",
    "('hello'):find('l+')",
    "('hello'):find('l*', 1)",
    "('hello'):find('xyz')",
    "('a.b'):find('.', 1, true)",
    "('a.b'):find('%.')",
    "('abc'):find('^b')",
    "('abc'):find('c$')",
    "('abc'):find('$')",
    "(''):find('')",
    "('abc'):find('', 10)",
    "('abc'):find('', 4)",
    "('abc'):find('b', -1)",
    "('abc'):find('b', -10)",
    "('key = value'):find('(%w+)%s*=%s*(%w+)')",
    "('  trim me  '):match('^%s*(.-)%s*$')",
    "('THE (quick) fox'):match('%((%a+)%)')",
    "('f(a(b)c)d'):match('%b()')",
    "('THE (quick) fox'):find('%f[%a]%a+', 2)",
    "('hello hello'):match('(h%a+) %1')",
    "('abc'):match('()b()')",
    "('x=1, y_2=2'):match('[%w_]+', 4)",
    "('aaa'):match('a-b')",
    "('aaab'):match('a-b')",
    "('[]]'):match('[]]+')",
    "('a-b'):match('[a%-]+')",
    "('a^b'):match('[%^b]+')",
    "('2024-01-02'):match('(%d+)-(%d+)-(%d+)')",
    "('hello'):match('[^aeiou]+')",
    "('abc'):match('[a-]')",
    "('-'):match('[a-]')",
    "('Hello'):match('%u%l+')",
    "('tab\\there'):find('%c')",
    "('0x1F'):match('%x+', 3)",
    "('ab'):match('a?b')",
    "('b'):match('a?b')",
    "('aab'):match('a?b')",
    "('a.b-c'):match('%p')",
    "('caf\\195\\169'):match('[\\128-\\255]+')",
    "('ABC'):match('%U*')",
    "('a1 b2'):match('%S+$')",
    "('a,b,,c'):gsub(',', ';')",
    "('hello world'):gsub('(%w+)', '<%1>')",
    "('hello'):gsub('', '-')",
    "('abc'):gsub('%w', '%0%0')",
    "('hello world'):gsub('%w+', {hello = 'HI'})",
    "('hello world'):gsub('%w+', function(w) return w:upper() end)",
    "('hello world'):gsub('%w+', function(w) return nil end)",
    "('abc'):gsub('b', '%%')",
    "('abc'):gsub('^a', 'X')",
    "('aaa'):gsub('a', 'b', 2)",
    "('abc'):gsub('x*', '-')",
    "('hello'):gsub('l+', 5)",
    "('one two'):gsub('(%w+) (%w+)', '%2 %1')",
    "('x'):gsub('()', '%1')",
    "G('one two  three', '%a+')",
    "G('k1=v1, k2=v2', '(%w+)=(%w+)')",
    "G('abc', '')",
    "G('abc', '()')",
    "G('hello', 'l*')",
    "G('a1b22c333', '%d+', 4)",
    "G('^a^a', '^a')",
    "E(('abc'):find('[a'))",
    "E(('abc'):find('%'))",
    "E(('abc'):find('(a'))",
    "E(('abc'):find('a)'))",
    "E(('abc'):find('%b'))",
    "E(('abc'):find('%fx'))",
    "E(('abc'):find('%1'))",
    "E(('abc'):gsub('(b)', '%2'))",
    "E(('x'):gsub('x', '%'))",
    "E(('x'):gsub('x', {x = {}}))",
    "E(('abc'):gsub('b', true))",
    NULL,
};

#define PATTERN_PRELUDE                                                                            \
    "local function ser(...) local t = table.pack(...) local o = {} "                              \
    "for i = 1, t.n do o[#o + 1] = type(t[i]) .. ':' .. tostring(t[i]) end "                       \
    "return table.concat(o, ',') end "                                                             \
    "local function G(s, p, i) local o = {} local n = 0 "                                          \
    "for a, b in s:gmatch(p, i) do n = n + 1 if n > 20 then break end o[#o + 1] = ser(a, b) end "  \
    "return table.concat(o, ';') end "                                                             \
    "local function E(...) return ... end "                                                        \
    "local ok, r = pcall(function() return ser(%s) end) "                                          \
    "return ok and r or 'ERR'"

static void test_patterns_match_stock_lua(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    lua_State *ref = luaL_newstate();
    luaL_openlibs(ref);
    for (int i = 0; PATTERN_CASES[i]; i++) {
        char code[2048];
        snprintf(code, sizeof code, PATTERN_PRELUDE, PATTERN_CASES[i]);
        if (luaL_dostring(ref, code) != LUA_OK) fail_msg("stock lua: %s", lua_tostring(ref, -1));
        const char *want = lua_tostring(ref, -1);
        err_t e = {0};
        json_t *got = flows_lua_eval(S, code, &e);
        if (!got) fail_msg("%s: %s", PATTERN_CASES[i], e.message);
        if (strcmp(json_string_value(got), want) != 0)
            fail_msg("%s: sandbox %s, Lua %s", PATTERN_CASES[i], json_string_value(got), want);
        json_decref(got);
        lua_settop(ref, 0);
    }
    lua_close(ref);
    flows_lua_free(S);
}

/* Random patterns over a small alphabet against random subjects: the sandbox's matcher and
 * Lua's agree on every result (errors compared as errors). Deterministic seed. */
static void test_patterns_random_vs_stock_lua(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        "a",    "b",      ".",  "%a", "%d", "%s", "[ab]", "[^a]", "[a-c]", "%%", "(", ")", "()",
        "%b()", "%f[%a]", "%1", "^",  "$",  "*",  "+",    "-",    "?",     "[]", "x", "1"};
    static const char subj_chars[] = "aab1 ()cx";
    flows_lua_t *S = new_state(0);
    lua_State *ref = luaL_newstate();
    luaL_openlibs(ref);
    unsigned seed = 12345;
#define RND(n) ((seed = seed * 1103515245u + 12345u) >> 16) % (n)
    for (int iter = 0; iter < 3000; iter++) {
        char pat[64] = "", subj[32] = "";
        int np = 1 + (int)RND(6);
        for (int i = 0; i < np; i++) {
            const char *a = atoms[RND(sizeof atoms / sizeof atoms[0])];
            if (strlen(pat) + strlen(a) < sizeof pat - 1) strcat(pat, a);
        }
        int ns = (int)RND(12);
        for (int i = 0; i < ns; i++)
            subj[i] = subj_chars[RND(sizeof subj_chars - 1)];
        subj[ns] = 0;
        const char *fn[] = {"find", "match", "gsub", "G"};
        const char *f = fn[RND(4)];
        char expr[256];
        /* long brackets of level 2: patterns may contain "]]" */
        if (strcmp(f, "G") == 0)
            snprintf(expr, sizeof expr, "G([==[%s]==], [==[%s]==])", subj, pat);
        else if (strcmp(f, "gsub") == 0)
            snprintf(expr, sizeof expr, "([==[%s]==]):gsub([==[%s]==], '<%%0>')", subj, pat);
        else
            snprintf(expr, sizeof expr, "([==[%s]==]):%s([==[%s]==])", subj, f, pat);
        char code[2048];
        snprintf(code, sizeof code, PATTERN_PRELUDE, expr);
        if (luaL_dostring(ref, code) != LUA_OK) fail_msg("stock lua: %s", lua_tostring(ref, -1));
        const char *want = lua_tostring(ref, -1);
        err_t e = {0};
        json_t *got = flows_lua_eval(S, code, &e);
        if (!got) fail_msg("%s: %s", expr, e.message);
        if (strcmp(json_string_value(got), want) != 0)
            fail_msg("%s: sandbox %s, Lua %s", expr, json_string_value(got), want);
        json_decref(got);
        lua_settop(ref, 0);
    }
#undef RND
    lua_close(ref);
    flows_lua_free(S);
}

/* Backtracking patterns are charged to the budget instead of holding the thread. */
static void test_patterns_are_metered(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    eval_fails(S, "return string.rep('a', 100000):find('.-.-.-.-b')", ERR_RESOURCE_EXHAUSTED,
               "instruction budget exceeded");
    eval_fails(S, "return (string.rep('a', 30) .. 'c'):match(string.rep('a*', 30) .. 'b')",
               ERR_RESOURCE_EXHAUSTED, "instruction budget exceeded");
    eval_fails(S, "local s = string.rep('x', 200000) for i = 1, 100000 do s:find('y', 1, true) end",
               ERR_RESOURCE_EXHAUSTED, "instruction budget exceeded");
    /* ordinary use on a big string is fine */
    eval_is(S,
            "local s = string.rep('ab=cd ', 20000) local n = 0 "
            "for k, v in s:gmatch('(%w+)=(%w+)') do n = n + 1 end return n",
            "20000");
    flows_lua_free(S);
}

static void test_instruction_budget(void **state)
{
    (void)state;
    flows_lua_limits_t lim = {.mem_limit = 0, .instr_limit = 200000};
    err_t e = {0};
    flows_lua_t *S = flows_lua_new(&lim, &e);
    assert_non_null(S);
    eval_fails(S, "while true do end", ERR_RESOURCE_EXHAUSTED, "instruction budget exceeded");
    /* pcall cannot swallow it */
    eval_fails(S, "while true do pcall(function() while true do end end) end",
               ERR_RESOURCE_EXHAUSTED, "instruction budget");
    eval_fails(S, "local ok = pcall(function() while true do end end) return ok",
               ERR_RESOURCE_EXHAUSTED, "instruction budget");
    eval_fails(S, "local co = coroutine.wrap(function() while true do end end) co()",
               ERR_RESOURCE_EXHAUSTED, "instruction budget");
    eval_fails(S, "local function f() return f() end return f()", ERR_RESOURCE_EXHAUSTED,
               "instruction budget");
    /* the budget is per call: the state keeps working */
    eval_is(S, "local s = 0 for i = 1, 1000 do s = s + i end return s", "500500");
    flows_lua_free(S);
}

static void test_memory_cap(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(8u * 1024 * 1024);
    size_t base = flows_lua_mem_used(S);
    eval_fails(S, "local t = {} for i = 1, 1e8 do t[i] = {i} end", ERR_RESOURCE_EXHAUSTED,
               "memory limit exceeded");
    eval_fails(S, "return string.rep('x', 1e9)", ERR_RESOURCE_EXHAUSTED, "memory limit");
    eval_fails(S, "local s = 'x' while true do s = s .. s end", ERR_RESOURCE_EXHAUSTED,
               "memory limit");
    /* pcall sees the memory error but the caller still gets a failure once it propagates */
    eval_is(S, "local ok, m = pcall(string.rep, 'x', 1e9) return {ok, m}",
            "[false,\"not enough memory\"]");
    /* the garbage was collected: the state is usable again */
    assert_true(flows_lua_mem_used(S) < base + 1024 * 1024);
    eval_is(S, "return #string.rep('x', 1000)", "1000");
    flows_lua_free(S);
}

/* ---- a function node script with a fake host ---- */

typedef struct {
    json_t *sent;   /* array of what send got */
    json_t *logs;   /* array of [level, text, msg|null] */
    json_t *status; /* last status */
    json_t *ctx;    /* {"node": {}, "flow": {}, "global": {}} */
    int done;
} fake_t;

static void f_send(void *ud, json_t *v)
{
    json_array_append_new(((fake_t *)ud)->sent, v);
}
static void f_done(void *ud)
{
    ((fake_t *)ud)->done++;
}
static void f_log(void *ud, const char *level, const char *text, json_t *msg)
{
    json_array_append_new(((fake_t *)ud)->logs,
                          json_pack("[s,s,O?]", level, text, msg ? msg : NULL));
}
static void f_status(void *ud, json_t *st)
{
    fake_t *f = ud;
    json_decref(f->status);
    f->status = json_deep_copy(st);
}
static json_t *f_ctx_get(void *ud, const char *scope, const char *key)
{
    json_t *v = json_object_get(json_object_get(((fake_t *)ud)->ctx, scope), key);
    return v ? json_deep_copy(v) : NULL;
}
static int f_ctx_set(void *ud, const char *scope, const char *key, json_t *v, err_t *e)
{
    (void)e;
    json_t *s = json_object_get(((fake_t *)ud)->ctx, scope);
    if (v)
        json_object_set(s, key, v);
    else
        json_object_del(s, key);
    return 0;
}
static json_t *f_env_get(void *ud, const char *name)
{
    (void)ud;
    return strcmp(name, "GREETING") == 0 ? json_string("hello") : NULL;
}

static json_t *f_ctx_keys(void *ud, const char *scope)
{
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(((fake_t *)ud)->ctx, scope), k, v)
        json_array_append_new(keys, json_string(k));
    return keys;
}

static void test_script_run_with_host(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    fake_t f = {json_array(), json_array(), NULL,
                json_pack("{s:{},s:{s:i},s:{}}", "node", "flow", "count", 41, "global"), 0};
    flows_lua_host_t h = {&f,        f_send,    f_done,    f_log,     f_status,
                          f_ctx_get, f_ctx_set, f_env_get, f_ctx_keys};
    err_t e = {0};
    const char *func = "local n = flow.get('count') + 1\n"
                       "flow.set('count', n)\n"
                       "context.set('seen', {n, env.get('GREETING'), flow.keys()})\n"
                       "node.warn('count is ' .. n)\n"
                       "node.status({fill='green', shape='dot', text='ok'})\n"
                       "node.send({payload = node.id .. '/' .. node.name})\n"
                       "started = started or 0\n"
                       "msg.payload = msg.payload * 2\n"
                       "msg.started = started\n"
                       "return {msg, {{payload = 'a'}, {payload = 'b'}}, nil}\n";
    flows_lua_script_t *s =
        flows_lua_script_new(S, "n1", "double", func, "started = 7", "node.log('bye')", &e);
    if (!s) fail_msg("script_new: %s", e.message);
    assert_true(flows_lua_script_has(s, FLOWS_LUA_INIT));
    json_t *out = NULL;
    assert_int_equal(flows_lua_script_run(s, &h, FLOWS_LUA_INIT, NULL, &out, &e), 0);
    assert_null(out);

    json_t *msg = json_pack("{s:s,s:i}", "_msgid", "m1", "payload", 21);
    if (flows_lua_script_run(s, &h, FLOWS_LUA_FUNC, msg, &out, &e) != 0)
        fail_msg("run: %s", e.message);
    char *got = dump(out);
    assert_string_equal(got, "[{\"_msgid\":\"m1\",\"payload\":42,\"started\":7},"
                             "[{\"payload\":\"a\"},{\"payload\":\"b\"}]]");
    free(got);
    json_decref(out);
    /* the input message is not modified (Lua works on its own copy) */
    assert_int_equal(json_integer_value(json_object_get(msg, "payload")), 21);

    got = dump(f.sent);
    assert_string_equal(got, "[{\"payload\":\"n1/double\"}]");
    free(got);
    got = dump(f.logs);
    assert_string_equal(got, "[[\"warn\",\"count is 42\",null]]");
    free(got);
    got = dump(f.status);
    assert_string_equal(got, "{\"fill\":\"green\",\"shape\":\"dot\",\"text\":\"ok\"}");
    free(got);
    got = dump(f.ctx);
    assert_string_equal(got,
                        "{\"node\":{\"seen\":[42,\"hello\",[\"count\"]]},\"flow\":{\"count\":42},"
                        "\"global\":{}}");
    free(got);

    /* errors are values with the field and line; the state keeps working */
    flows_lua_script_t *bad =
        flows_lua_script_new(S, "n2", "", "local x = 1\nerror('boom')", NULL, NULL, &e);
    assert_non_null(bad);
    assert_int_equal(flows_lua_script_run(bad, &h, FLOWS_LUA_FUNC, msg, &out, &e), -1);
    assert_contains(e.message, "func:2: boom");
    flows_lua_script_free(bad);
    bad = flows_lua_script_new(S, "n3", "", "return 'text'", NULL, NULL, &e);
    assert_int_equal(flows_lua_script_run(bad, &h, FLOWS_LUA_FUNC, msg, &out, &e), -1);
    assert_contains(e.message, "must be a message table");
    flows_lua_script_free(bad);
    /* returning nil sends nothing */
    bad = flows_lua_script_new(S, "n4", "", "msg.x = 1", NULL, NULL, &e);
    assert_int_equal(flows_lua_script_run(bad, &h, FLOWS_LUA_FUNC, msg, &out, &e), 0);
    assert_null(out);
    flows_lua_script_free(bad);

    assert_int_equal(flows_lua_script_run(s, &h, FLOWS_LUA_FINAL, NULL, &out, &e), 0);
    assert_string_equal(json_string_value(json_array_get(json_array_get(f.logs, 1), 1)), "bye");

    flows_lua_script_free(s);
    json_decref(msg);
    json_decref(f.sent);
    json_decref(f.logs);
    json_decref(f.status);
    json_decref(f.ctx);
    flows_lua_free(S);
}

static void test_compile_errors(void **state)
{
    (void)state;
    char m[256];
    assert_int_equal(flows_lua_check("return msg", "func", m, sizeof m), 0);
    assert_int_equal(flows_lua_check("a = 1\nb = = 2", "func", m, sizeof m), -1);
    assert_contains(m, "func:2:");
    assert_int_equal(flows_lua_check("if x then", "initialize", m, sizeof m), -1);
    assert_contains(m, "initialize:1:");
    /* JavaScript is not Lua */
    assert_int_equal(
        flows_lua_check("msg.payload = msg.payload + 1;\nreturn msg;", "func", m, sizeof m), 0);
    assert_int_equal(flows_lua_check("var x = {a: 1};\nreturn msg;", "func", m, sizeof m), -1);

    flows_lua_t *S = new_state(0);
    err_t e = {0};
    assert_null(flows_lua_script_new(S, "n1", "", "return msg", NULL, "x = = 1", &e));
    assert_contains(e.message, "finalize");
    assert_contains(e.message, "finalize:1:");
    flows_lua_free(S);
}

/* Not an assertion: prints the memory a state and a script cost (docs/flows.md). */
static void test_measure_footprint(void **state)
{
    (void)state;
    flows_lua_t *S = new_state(0);
    size_t base = flows_lua_mem_used(S);
    flows_lua_script_t *s[100];
    err_t e = {0};
    for (int i = 0; i < 100; i++) {
        s[i] = flows_lua_script_new(S, "n", "", "msg.payload = msg.payload .. '!' return msg", NULL,
                                    NULL, &e);
        assert_non_null(s[i]);
    }
    size_t with = flows_lua_mem_used(S);
    print_message("lua state: %zu bytes; per function node script: %zu bytes\n", base,
                  (with - base) / 100);
    for (int i = 0; i < 100; i++)
        flows_lua_script_free(s[i]);
    flows_lua_free(S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_exact),
        cmocka_unit_test(test_values_from_lua),
        cmocka_unit_test(test_sandbox_refuses_escapes),
        cmocka_unit_test(test_instruction_budget),
        cmocka_unit_test(test_patterns_match_stock_lua),
        cmocka_unit_test(test_patterns_random_vs_stock_lua),
        cmocka_unit_test(test_patterns_are_metered),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_script_run_with_host),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_measure_footprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
