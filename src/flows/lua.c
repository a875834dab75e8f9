/* lua.c: the Lua 5.4 sandbox of the `function` node: a counting allocator (memory cap per
 * project state), a count hook (instruction budget per call), the restricted environment,
 * and the exact JSON <-> Lua conversion of messages. Every use of the Lua API happens
 * inside one lua_pcall (see protected()), so a memory error or a Lua error can never
 * longjmp out into the runtime; JSON built while Lua may still raise is parked on a
 * pending list and freed if the call fails. */
#include "flows/lua.h"
#include "flows/jsjson.h"
#include "flows/lua_pattern.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_EVERY 1000 /* instructions between two budget checks */
#define MAX_DEPTH  200  /* nesting of messages (also catches cyclic tables) */

struct flows_lua {
    lua_State *L;
    size_t used, limit;
    int mem_hit;
    int64_t instr_limit, instr_used;
    int budget_hit;
    int busy;                     /* inside run_protected */
    const flows_lua_host_t *host; /* during a run */
    int env_ref;                  /* environment of the running chunk (load's default) */
    struct {
        void *p;
        int is_json;
    } * pend;
    size_t npend, cappend;
};

struct flows_lua_script {
    flows_lua_t *S;
    int env_ref;
    int ref[3]; /* compiled parts, LUA_NOREF when empty */
};

/* registry keys (addresses) and the null sentinel */
static char KEY_ARRAY_MT, KEY_ORDER, KEY_BASE, NULL_SENTINEL;
static const char *const PART_NAME[3] = {"func", "initialize", "finalize"};

static flows_lua_t *state_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* ---- memory cap ---- */

static void *lalloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    flows_lua_t *S = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        S->used -= old;
        return NULL;
    }
    if (nsize > old && S->used - old + nsize > S->limit) {
        S->mem_hit = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) return nsize <= old ? ptr : NULL; /* a failed shrink keeps the larger block */
    S->used = S->used - old + nsize;
    return p;
}

/* ---- instruction budget ---- */

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    flows_lua_t *S = state_of(L);
    S->instr_used += S->budget_hit ? 1 : HOOK_EVERY;
    if (S->budget_hit || S->instr_used > S->instr_limit) {
        if (!S->budget_hit) {
            S->budget_hit = 1;
            /* from now on every instruction fails, so pcall cannot swallow the error */
            lua_sethook(L, hook, LUA_MASKCOUNT, 1);
        }
        luaL_error(L, "instruction budget exceeded (%I instructions)", (lua_Integer)S->instr_limit);
    }
}

/* the pattern functions (lua_pattern.c) pay for their matching steps here */
void flows_lua_charge(lua_State *L, int64_t steps)
{
    flows_lua_t *S = state_of(L);
    S->instr_used += steps;
    if (S->budget_hit || S->instr_used > S->instr_limit) {
        if (!S->budget_hit) {
            S->budget_hit = 1;
            lua_sethook(L, hook, LUA_MASKCOUNT, 1);
        }
        luaL_error(L, "instruction budget exceeded (%I instructions)", (lua_Integer)S->instr_limit);
    }
}

/* ---- pending C memory (freed if a Lua error unwinds past it) ---- */

static void pend_add(flows_lua_t *S, void *p, int is_json)
{
    if (S->npend == S->cappend) {
        size_t cap = S->cappend ? S->cappend * 2 : 8;
        void *np = realloc(S->pend, cap * sizeof S->pend[0]);
        if (!np) abort(); /* cannot track: refuse to leak silently */
        S->pend = np;
        S->cappend = cap;
    }
    S->pend[S->npend].p = p;
    S->pend[S->npend].is_json = is_json;
    S->npend++;
}

static void pend_remove(flows_lua_t *S, void *p)
{
    for (size_t i = S->npend; i-- > 0;)
        if (S->pend[i].p == p) {
            S->pend[i] = S->pend[--S->npend];
            return;
        }
}

static void pend_clear(flows_lua_t *S)
{
    for (size_t i = 0; i < S->npend; i++) {
        if (S->pend[i].is_json)
            json_decref(S->pend[i].p);
        else
            free(S->pend[i].p);
    }
    S->npend = 0;
}

/* ---- JSON -> Lua ---- */

static void push_array_mt(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_ARRAY_MT);
}

static void push_json(lua_State *L, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "message nested too deeply (more than %d levels)", MAX_DEPTH);
    luaL_checkstack(L, 6, "message nested too deeply");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        lua_createtable(L, 0, (int)(n > 1000000 ? 1000000 : n));
        int t = lua_gettop(L);
        int order = 0;
        if (n > 1) { /* remember the key order: ORDER[t] = {k1, k2, ...} */
            lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_ORDER);
            lua_pushvalue(L, t);
            lua_createtable(L, (int)(n > 1000000 ? 1000000 : n), 0);
            lua_pushvalue(L, -1);
            lua_insert(L, -4); /* t ... list ORDER t list */
            lua_rawset(L, -3);
            lua_pop(L, 1); /* t list */
            order = lua_gettop(L);
        }
        const char *k;
        size_t klen;
        json_t *x;
        lua_Integer i = 0;
        void *tmp;
        json_object_keylen_foreach_safe((json_t *)v, tmp, k, klen, x)
        {
            lua_pushlstring(L, k, klen);
            if (order) {
                lua_pushvalue(L, -1);
                lua_rawseti(L, order, ++i);
            }
            push_json(L, x, depth + 1);
            lua_rawset(L, t);
        }
        if (order) lua_pop(L, 1);
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, (int)(n > 1000000 ? 1000000 : n), 0);
        for (size_t i = 0; i < n; i++) {
            push_json(L, json_array_get(v, i), depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        push_array_mt(L);
        lua_setmetatable(L, -2);
        return;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        return;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        return;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return;
    default:
        lua_pushlightuserdata(L, &NULL_SENTINEL);
        return;
    }
}

/* Push a JSON value we own: parked while pushing (pushing may raise), then released. */
static void push_json_owned(lua_State *L, json_t *v)
{
    flows_lua_t *S = state_of(L);
    pend_add(S, v, 1);
    push_json(L, v, 0);
    pend_remove(S, v);
    json_decref(v);
}

/* ---- Lua -> JSON ---- */

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            min = 0x10000;
            c &= 0x07;
        } else
            return 0;
        if (i + len > n) return 0;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

static json_t *jcheck(lua_State *L, json_t *j)
{
    if (!j) luaL_error(L, "out of memory building a message");
    return j;
}

/* Array shape of the table at idx: 1 and *len when it is one (marked as array, or a
 * non-empty table whose keys are all positive integers, not too sparse), else 0. */
static int table_array_len(lua_State *L, int idx, lua_Integer *len)
{
    int marked = 0;
    if (lua_getmetatable(L, idx)) {
        push_array_mt(L);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_Integer max = 0, count = 0;
    int only_int = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k > max) max = k;
            count++;
        } else {
            only_int = 0;
        }
    }
    if (!marked && (!only_int || count == 0)) return 0;
    if (max > 2 * count + 1024) {
        if (!marked) return 0; /* a sparse integer-keyed table is an object */
        luaL_error(L, "array too sparse to convert (index %I with %I elements)", max, count);
    }
    *len = max;
    return 1;
}

typedef struct {
    const char *s;
    size_t len;
    int kind; /* 0 string key, 1 integer key, 2 float key */
    lua_Integer i;
    lua_Number d;
    char num[40];
} okey_t;

static int okey_cmp(const void *a, const void *b)
{
    const okey_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static json_t *tj_new(lua_State *L, int idx, int depth, int *is_container);
static void tj_fill(lua_State *L, int idx, json_t *c, int depth);

/* Convert and attach the value at the top of the stack; pops it. */
static void tj_attach_obj(lua_State *L, json_t *obj, const char *k, size_t klen, int depth)
{
    int cont = 0;
    json_t *x = tj_new(L, lua_gettop(L), depth, &cont);
    if (x) {
        if (json_object_setn_new(obj, k, klen, x) != 0)
            luaL_error(L, "object key is not valid UTF-8");
        if (cont) tj_fill(L, lua_gettop(L), x, depth);
    }
    lua_pop(L, 1);
}

static void tj_fill(lua_State *L, int idx, json_t *c, int depth)
{
    luaL_checkstack(L, 8, "message nested too deeply");
    if (json_is_array(c)) {
        lua_Integer n = 0;
        table_array_len(L, idx, &n);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            int cont = 0;
            json_t *x = tj_new(L, lua_gettop(L), depth + 1, &cont);
            if (!x) x = json_null(); /* functions become null in arrays, as JSON.stringify */
            json_array_append_new(c, x);
            if (cont) tj_fill(L, lua_gettop(L), x, depth + 1);
            lua_pop(L, 1);
        }
        return;
    }
    /* object: first the keys in their original order, then new keys sorted */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_ORDER);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (lua_istable(L, -1)) {
        int list = lua_gettop(L);
        for (lua_Integer i = 1;; i++) {
            if (lua_rawgeti(L, list, i) != LUA_TSTRING) {
                lua_pop(L, 1);
                break;
            }
            size_t klen;
            const char *k = lua_tolstring(L, -1, &klen);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, idx) == LUA_TNIL)
                lua_pop(L, 1);
            else
                tj_attach_obj(L, c, k, klen, depth + 1);
            lua_pop(L, 1); /* key */
        }
    }
    lua_pop(L, 1);
    /* count the other keys, then collect them in a GC-managed buffer and sort */
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    okey_t *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof(okey_t), 0);
    size_t m = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        okey_t *k = &keys[m];
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING) {
            k->s = lua_tolstring(L, -1, &k->len);
            if (json_object_getn(c, k->s, k->len)) continue;
            k->kind = 0;
        } else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
            k->kind = 1;
            k->i = lua_tointeger(L, -1);
            k->len = (size_t)snprintf(k->num, sizeof k->num, "%lld", (long long)k->i);
            k->s = k->num;
        } else if (t == LUA_TNUMBER) {
            k->kind = 2;
            k->d = lua_tonumber(L, -1);
            k->len = (size_t)snprintf(k->num, sizeof k->num, "%.17g", (double)k->d);
            k->s = k->num;
        } else {
            continue; /* booleans, tables... as keys: not representable */
        }
        m++;
    }
    qsort(keys, m, sizeof keys[0], okey_cmp);
    for (size_t i = 0; i < m; i++) {
        okey_t *k = &keys[i];
        if (k->kind == 0) {
            lua_pushlstring(L, k->s, k->len);
            lua_rawget(L, idx);
        } else if (k->kind == 1) {
            lua_rawgeti(L, idx, k->i);
        } else {
            lua_pushnumber(L, k->d);
            lua_rawget(L, idx);
        }
        if (lua_isnil(L, -1))
            lua_pop(L, 1);
        else
            tj_attach_obj(L, c, k->s, k->len, depth + 1);
    }
    lua_pop(L, 1); /* keys userdata */
}

/* A new JSON value for the Lua value at idx; containers are returned empty with
 * *is_container set (the caller attaches, then fills). NULL: not representable (skip). */
static json_t *tj_new(lua_State *L, int idx, int depth, int *is_container)
{
    *is_container = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? json_true() : json_false();
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return jcheck(L, json_integer((json_int_t)lua_tointeger(L, idx)));
        {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) return json_null();
            if (d == floor(d) && fabs(d) < 9007199254740992.0)
                return jcheck(L, json_integer((json_int_t)d));
            return jcheck(L, json_real(d));
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (utf8_valid((const unsigned char *)s, len)) return jcheck(L, json_stringn(s, len));
        /* not text: a Buffer, which Parley's messages carry as an array of bytes */
        json_t *a = jcheck(L, json_array());
        flows_lua_t *S = state_of(L);
        pend_add(S, a, 1);
        for (size_t i = 0; i < len; i++)
            json_array_append_new(a, json_integer((unsigned char)s[i]));
        pend_remove(S, a);
        return a;
    }
    case LUA_TLIGHTUSERDATA:
        return json_null();
    case LUA_TTABLE: {
        if (depth > MAX_DEPTH)
            luaL_error(L, "message nested too deeply or cyclic (more than %d levels)", MAX_DEPTH);
        lua_Integer n;
        *is_container = 1;
        return jcheck(L, table_array_len(L, idx, &n) ? json_array() : json_object());
    }
    default:
        return NULL; /* functions, coroutines: dropped like JSON.stringify does */
    }
}

/* Convert the value at idx into a JSON value owned by the caller (never NULL: functions
 * become null). May raise (memory, depth); nothing leaks when it does. */
static json_t *to_json(lua_State *L, int idx)
{
    flows_lua_t *S = state_of(L);
    idx = lua_absindex(L, idx);
    int cont = 0;
    json_t *v = tj_new(L, idx, 0, &cont);
    if (!v) return json_null();
    if (cont) {
        pend_add(S, v, 1);
        tj_fill(L, idx, v, 0);
        pend_remove(S, v);
    }
    return v;
}

/* ---- Lua-visible helpers ---- */

static const flows_lua_host_t *host_of(lua_State *L)
{
    return state_of(L)->host;
}

/* Text of the value at idx for logs: strings and numbers as tostring, others as JSON.
 * Pushes the text. */
static const char *push_text(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    int t = lua_type(L, idx);
    if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN || t == LUA_TNIL ||
        t == LUA_TLIGHTUSERDATA)
        return luaL_tolstring(L, idx, NULL);
    flows_lua_t *S = state_of(L);
    json_t *j = to_json(L, idx);
    pend_add(S, j, 1);
    char *s = flows_jsjson_stringify(j, 0);
    pend_remove(S, j);
    json_decref(j);
    pend_add(S, s, 0);
    lua_pushstring(L, s);
    pend_remove(S, s);
    free(s);
    return lua_tostring(L, -1);
}

static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = lua_toboolean(L, 2);
    flows_lua_t *S = state_of(L);
    json_t *j = to_json(L, 1);
    pend_add(S, j, 1);
    char *s = flows_jsjson_stringify(j, pretty ? 4 : 0);
    pend_remove(S, j);
    json_decref(j);
    pend_add(S, s, 0);
    lua_pushstring(L, s);
    pend_remove(S, s);
    free(s);
    return 1;
}

static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_error_t je;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        return luaL_error(L, "json.decode: %s at line %d column %d", je.text, je.line, je.column);
    push_json_owned(L, j);
    return 1;
}

static int l_json_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_json_object(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushnil(L);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_json_isarray(lua_State *L)
{
    int r = 0;
    if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
        push_array_mt(L);
        r = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, r);
    return 1;
}

static int l_null_tostring(lua_State *L)
{
    lua_pushliteral(L, "null");
    return 1;
}

/* node.* */
static const flows_lua_host_t *need_host(lua_State *L, int have, const char *what)
{
    const flows_lua_host_t *h = host_of(L);
    if (!h || !have) luaL_error(L, "%s is not available here", what);
    return h;
}

/* Convert a send/return value: nil -> NULL; a table -> object or array; else an error. */
static json_t *to_output(lua_State *L, int idx, const char *what)
{
    int t = lua_type(L, idx);
    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &NULL_SENTINEL))
        return NULL;
    if (t != LUA_TTABLE)
        luaL_error(L, "%s must be a message table, a list per output, or nil (got %s)", what,
                   luaL_typename(L, idx));
    return to_json(L, idx);
}

static int l_node_send(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    need_host(L, h && h->send, "node.send");
    json_t *v = to_output(L, 1, "node.send argument");
    if (v) h->send(h->ud, v);
    return 0;
}

static int l_node_done(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    need_host(L, h && h->done, "node.done");
    h->done(h->ud);
    return 0;
}

static int node_log_level(lua_State *L, const char *level)
{
    const flows_lua_host_t *h = host_of(L);
    need_host(L, h && h->log, "node.log");
    const char *text = push_text(L, 1);
    json_t *msg = NULL;
    if (lua_istable(L, 2)) msg = to_json(L, 2);
    if (msg) pend_add(state_of(L), msg, 1);
    h->log(h->ud, level, text, msg);
    if (msg) {
        pend_remove(state_of(L), msg);
        json_decref(msg);
    }
    return 0;
}

static int l_node_log(lua_State *L)
{
    return node_log_level(L, "info");
}
static int l_node_warn(lua_State *L)
{
    return node_log_level(L, "warn");
}
static int l_node_error(lua_State *L)
{
    return node_log_level(L, "error");
}
static int l_node_debug(lua_State *L)
{
    return node_log_level(L, "debug");
}

static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_insert(L, 1);
    lua_settop(L, 1);
    return node_log_level(L, "info");
}

static int l_node_status(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    need_host(L, h && h->status, "node.status");
    json_t *st;
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
        st = json_pack("{s:s}", "text", lua_tostring(L, 1));
        if (!st) return luaL_error(L, "node.status: text is not valid UTF-8");
    } else if (lua_isnoneornil(L, 1)) {
        st = json_object();
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        st = to_json(L, 1);
        if (!json_is_object(st)) {
            json_decref(st);
            return luaL_error(L, "node.status expects a table {fill=, shape=, text=}");
        }
    }
    h->status(h->ud, st);
    json_decref(st);
    return 0;
}

/* context / flow / global: upvalue 1 is the scope name */
static int l_ctx_get(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    const char *scope = lua_tostring(L, lua_upvalueindex(1));
    need_host(L, h && h->ctx_get, "context");
    const char *key = luaL_checkstring(L, 1);
    json_t *v = h->ctx_get(h->ud, scope, key);
    if (!v) {
        lua_pushnil(L);
        return 1;
    }
    push_json_owned(L, v);
    return 1;
}

static int l_ctx_set(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    const char *scope = lua_tostring(L, lua_upvalueindex(1));
    need_host(L, h && h->ctx_set, "context");
    const char *key = luaL_checkstring(L, 1);
    json_t *v = lua_isnoneornil(L, 2) ? NULL : to_json(L, 2);
    err_t e = {0};
    int rc = h->ctx_set(h->ud, scope, key, v, &e);
    json_decref(v);
    if (rc != 0) return luaL_error(L, "%s.set(%s): %s", scope, key, e.message);
    return 0;
}

static int l_ctx_keys(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    const char *scope = lua_tostring(L, lua_upvalueindex(1));
    need_host(L, h && h->ctx_keys, "context");
    json_t *v = h->ctx_keys(h->ud, scope);
    if (!v) v = json_array();
    push_json_owned(L, v);
    return 1;
}

static int l_env_get(lua_State *L)
{
    const flows_lua_host_t *h = host_of(L);
    need_host(L, h && h->env_get, "env.get");
    json_t *v = h->env_get(h->ud, luaL_checkstring(L, 1));
    if (v)
        push_json_owned(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* ---- sandboxed base functions ---- */

/* load(chunk [, name [, mode [, env]]]): text only; env defaults to the caller's */
static int l_load(lua_State *L)
{
    flows_lua_t *S = state_of(L);
    int has_env = lua_gettop(L) >= 4;
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the real load */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (has_env)
        lua_pushvalue(L, 4);
    else
        lua_rawgeti(L, LUA_REGISTRYINDEX, S->env_ref);
    lua_call(L, 4, 2);
    return 2;
}

static int l_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in the sandbox");
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the real setmetatable */
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int l_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    static const char *const ok[] = {"collect", "count", "step", "isrunning", NULL};
    for (int i = 0; ok[i]; i++)
        if (strcmp(opt, ok[i]) == 0) {
            int n = lua_gettop(L);
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_insert(L, 1);
            lua_call(L, n, LUA_MULTRET);
            return lua_gettop(L);
        }
    return luaL_error(L, "collectgarbage('%s') is not allowed in the sandbox", opt);
}

static int l_disabled(lua_State *L)
{
    return luaL_error(L, "%s is not available in the sandbox",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* Build the shared sandbox base table (registry KEY_BASE) from the opened libraries. */
static int build_base(lua_State *L)
{
    luaL_requiref(L, "_G", luaopen_base, 1);
    luaL_requiref(L, "string", luaopen_string, 0);
    luaL_requiref(L, "table", luaopen_table, 0);
    luaL_requiref(L, "math", luaopen_math, 0);
    luaL_requiref(L, "utf8", luaopen_utf8, 0);
    luaL_requiref(L, "coroutine", luaopen_coroutine, 0);
    luaL_requiref(L, "os", luaopen_os, 0);
    int G = 1, str = 2, tbl = 3, math = 4, utf = 5, co = 6, os = 7;
    (void)G;

    /* string.dump would hand out bytecode; strings index the real string table; pattern
     * matching is replaced by the metered matcher */
    lua_pushnil(L);
    lua_setfield(L, str, "dump");
    flows_lua_patterns_open(L, str);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);

    lua_newtable(L); /* base */
    int base = lua_gettop(L);
    static const char *const copy[] = {
        "assert",   "error",    "getmetatable", "ipairs", "next",     "pairs",
        "pcall",    "rawequal", "rawget",       "rawlen", "rawset",   "select",
        "tonumber", "tostring", "type",         "xpcall", "_VERSION", NULL};
    for (int i = 0; copy[i]; i++) {
        lua_getfield(L, G, copy[i]);
        lua_setfield(L, base, copy[i]);
    }
    lua_getfield(L, G, "load");
    lua_pushcclosure(L, l_load, 1);
    lua_setfield(L, base, "load");
    lua_getfield(L, G, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setfield(L, base, "setmetatable");
    lua_getfield(L, G, "collectgarbage");
    lua_pushcclosure(L, l_collectgarbage, 1);
    lua_setfield(L, base, "collectgarbage");
    lua_pushcfunction(L, l_print);
    lua_setfield(L, base, "print");
    static const char *const disabled[] = {"dofile", "loadfile", "require", NULL};
    for (int i = 0; disabled[i]; i++) {
        lua_pushstring(L, disabled[i]);
        lua_pushcclosure(L, l_disabled, 1);
        lua_setfield(L, base, disabled[i]);
    }
    lua_pushvalue(L, str);
    lua_setfield(L, base, "string");
    lua_pushvalue(L, tbl);
    lua_setfield(L, base, "table");
    lua_pushvalue(L, math);
    lua_setfield(L, base, "math");
    lua_pushvalue(L, utf);
    lua_setfield(L, base, "utf8");
    lua_pushvalue(L, co);
    lua_setfield(L, base, "coroutine");
    lua_newtable(L);
    static const char *const osf[] = {"time", "date", "clock", NULL};
    for (int i = 0; osf[i]; i++) {
        lua_getfield(L, os, osf[i]);
        lua_setfield(L, -2, osf[i]);
    }
    lua_setfield(L, base, "os");

    /* the array metatable and the null sentinel */
    lua_newtable(L);
    lua_pushliteral(L, "json.array");
    lua_setfield(L, -2, "__metatable");
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_ARRAY_MT);
    lua_pushlightuserdata(L, &NULL_SENTINEL);
    lua_newtable(L);
    lua_pushcfunction(L, l_null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2); /* the (single) metatable of light userdata */
    lua_setfield(L, base, "null");

    lua_newtable(L); /* json */
    lua_pushlightuserdata(L, &NULL_SENTINEL);
    lua_setfield(L, -2, "null");
    static const luaL_Reg jf[] = {{"encode", l_json_encode},   {"decode", l_json_decode},
                                  {"array", l_json_array},     {"object", l_json_object},
                                  {"isarray", l_json_isarray}, {NULL, NULL}};
    luaL_setfuncs(L, jf, 0);
    lua_setfield(L, base, "json");

    /* key order of objects that came from JSON: weak keys */
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_ORDER);

    lua_pushvalue(L, base);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_BASE);
    lua_settop(L, 0);
    return 0;
}

/* Push a new environment: globals fall back to the base; node/context/flow/global/env. */
static void push_env(lua_State *L, const char *node_id, const char *name)
{
    lua_newtable(L);
    int env = lua_gettop(L);
    lua_newtable(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_BASE);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, env);
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");

    lua_newtable(L); /* node */
    lua_pushstring(L, node_id ? node_id : "");
    lua_setfield(L, -2, "id");
    lua_pushstring(L, name ? name : "");
    lua_setfield(L, -2, "name");
    static const luaL_Reg nf[] = {
        {"send", l_node_send},   {"done", l_node_done},     {"log", l_node_log},
        {"warn", l_node_warn},   {"error", l_node_error},   {"debug", l_node_debug},
        {"trace", l_node_debug}, {"status", l_node_status}, {NULL, NULL}};
    luaL_setfuncs(L, nf, 0);
    lua_setfield(L, env, "node");

    static const char *const scopes[][2] = {
        {"context", "node"}, {"flow", "flow"}, {"global", "global"}};
    for (int i = 0; i < 3; i++) {
        lua_newtable(L);
        lua_pushstring(L, scopes[i][1]);
        lua_pushcclosure(L, l_ctx_get, 1);
        lua_setfield(L, -2, "get");
        lua_pushstring(L, scopes[i][1]);
        lua_pushcclosure(L, l_ctx_set, 1);
        lua_setfield(L, -2, "set");
        lua_pushstring(L, scopes[i][1]);
        lua_pushcclosure(L, l_ctx_keys, 1);
        lua_setfield(L, -2, "keys");
        lua_setfield(L, env, scopes[i][0]);
    }
    lua_newtable(L);
    lua_pushcfunction(L, l_env_get);
    lua_setfield(L, -2, "get");
    lua_setfield(L, env, "env");
}

/* ---- protected calls ---- */

typedef enum { OP_INIT, OP_SCRIPT_NEW, OP_RUN, OP_ROUNDTRIP, OP_EVAL, OP_SCRIPT_FREE } op_t;

typedef struct {
    op_t op;
    flows_lua_script_t *script;
    const char *node_id, *name, *code[3];
    flows_lua_part_t part;
    json_t *in;
    json_t *out;
    char cerr[400]; /* compile error (OP_SCRIPT_NEW) */
    int cerr_part;
} call_t;

static int compile(lua_State *L, const char *code, int part, int env)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (part == FLOWS_LUA_FUNC) luaL_addstring(&b, "local msg = ...; ");
    luaL_addstring(&b, code);
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    char chunkname[32];
    snprintf(chunkname, sizeof chunkname, "=%s", PART_NAME[part]);
    int rc = luaL_loadbufferx(L, text, len, chunkname, "t");
    lua_remove(L, -2);
    if (rc != LUA_OK) return -1;
    lua_pushvalue(L, env);
    lua_setupvalue(L, -2, 1); /* _ENV */
    return 0;
}

static int protected(lua_State *L)
{
    call_t *c = lua_touserdata(L, 1);
    flows_lua_t *S = state_of(L);
    switch (c->op) {
    case OP_INIT:
        lua_settop(L, 0);
        return build_base(L);
    case OP_SCRIPT_NEW: {
        flows_lua_script_t *s = c->script;
        push_env(L, c->node_id, c->name);
        int env = lua_gettop(L);
        for (int p = 0; p < 3; p++) {
            if (!c->code[p] || !c->code[p][0]) continue;
            if (compile(L, c->code[p], p, env) != 0) {
                snprintf(c->cerr, sizeof c->cerr, "%s", lua_tostring(L, -1));
                c->cerr_part = p;
                return 0;
            }
            s->ref[p] = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        lua_pushvalue(L, env);
        s->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return 0;
    }
    case OP_SCRIPT_FREE: {
        flows_lua_script_t *s = c->script;
        for (int p = 0; p < 3; p++)
            luaL_unref(L, LUA_REGISTRYINDEX, s->ref[p]);
        luaL_unref(L, LUA_REGISTRYINDEX, s->env_ref);
        return 0;
    }
    case OP_RUN: {
        flows_lua_script_t *s = c->script;
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref[c->part]);
        int nargs = 0;
        if (c->part == FLOWS_LUA_FUNC && c->in) {
            push_json(L, c->in, 0);
            nargs = 1;
        }
        lua_call(L, nargs, 1);
        if (c->part == FLOWS_LUA_FUNC) c->out = to_output(L, -1, "the returned value");
        return 0;
    }
    case OP_ROUNDTRIP:
        push_json(L, c->in, 0);
        c->out = to_json(L, -1);
        return 0;
    case OP_EVAL: {
        push_env(L, "", "");
        int env = lua_gettop(L);
        lua_pushvalue(L, env);
        S->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        int rc = luaL_loadbufferx(L, c->code[0], strlen(c->code[0]), "=eval", "t");
        if (rc != LUA_OK) return lua_error(L);
        lua_pushvalue(L, env);
        lua_setupvalue(L, -2, 1);
        lua_call(L, 0, 1);
        c->out = lua_isnil(L, -1) ? NULL : to_json(L, -1);
        return 0;
    }
    }
    return 0;
}

static int run_protected(flows_lua_t *S, call_t *c, err_t *e)
{
    lua_State *L = S->L;
    if (S->busy) /* a host callback must not run Lua on the same state (messages are queued) */
        return err_set(e, ERR_INTERNAL, "re-entrant use of the project's Lua state");
    S->busy = 1;
    S->mem_hit = 0;
    S->budget_hit = 0;
    S->instr_used = 0;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_settop(L, 0);
    lua_pushcfunction(L, protected);
    lua_pushlightuserdata(L, c);
    int rc = lua_pcall(L, 1, 0, 0);
    int ret = 0;
    if (rc != LUA_OK) {
        if (c->out) { /* never handed out on failure */
            json_decref(c->out);
            c->out = NULL;
        }
        if (S->budget_hit) {
            err_set(e, ERR_RESOURCE_EXHAUSTED, "instruction budget exceeded (%lld instructions)",
                    (long long)S->instr_limit);
        } else if (S->mem_hit || rc == LUA_ERRMEM) {
            err_set(e, ERR_RESOURCE_EXHAUSTED, "Lua memory limit exceeded (%zu bytes)", S->limit);
        } else {
            const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            if (m)
                err_set(e, ERR_INVALID_ARGUMENT, "%s", m);
            else
                err_set(e, ERR_INVALID_ARGUMENT, "error object is a %s value",
                        luaL_typename(L, -1));
        }
        ret = -1;
    }
    lua_settop(L, 0);
    pend_clear(S);
    if (rc != LUA_OK && (S->mem_hit || rc == LUA_ERRMEM)) lua_gc(L, LUA_GCCOLLECT);
    lua_sethook(L, NULL, 0, 0);
    S->busy = 0;
    return ret;
}

static int panic(lua_State *L)
{
    fprintf(stderr, "flows/lua: unprotected Lua error: %s\n", lua_tostring(L, -1));
    abort();
}

/* ---- public API ---- */

flows_lua_t *flows_lua_new(const flows_lua_limits_t *lim, err_t *e)
{
    flows_lua_t *S = calloc(1, sizeof *S);
    if (!S) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    S->limit = lim && lim->mem_limit ? lim->mem_limit : FLOWS_LUA_MEM_DEFAULT;
    S->instr_limit = lim && lim->instr_limit > 0 ? lim->instr_limit : FLOWS_LUA_INSTR_DEFAULT;
    S->env_ref = LUA_NOREF;
    S->L = lua_newstate(lalloc, S);
    if (!S->L) {
        free(S);
        err_set(e, ERR_RESOURCE_EXHAUSTED, "cannot create a Lua state within the memory limit");
        return NULL;
    }
    lua_atpanic(S->L, panic);
    lua_setwarnf(S->L, NULL, NULL);
    call_t c = {.op = OP_INIT};
    if (run_protected(S, &c, e) != 0) {
        flows_lua_free(S);
        return NULL;
    }
    return S;
}

void flows_lua_free(flows_lua_t *S)
{
    if (!S) return;
    if (S->L) lua_close(S->L);
    pend_clear(S);
    free(S->pend);
    free(S);
}

size_t flows_lua_mem_used(const flows_lua_t *S)
{
    return S ? S->used : 0;
}

static void *check_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    size_t *budget = ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (!ptr || nsize > osize) { /* growing (never refuse a shrink: Lua relies on it) */
        if (nsize > *budget) return NULL;
        *budget -= nsize; /* rough: compiling one body is bounded */
    }
    return realloc(ptr, nsize);
}

int flows_lua_check(const char *code, const char *field, char *msg, size_t msg_size)
{
    size_t budget = 64u * 1024 * 1024;
    lua_State *L = lua_newstate(check_alloc, &budget);
    if (!L) {
        snprintf(msg, msg_size, "cannot create a Lua state");
        return -1;
    }
    lua_atpanic(L, panic);
    int is_func = field && strcmp(field, "func") == 0;
    size_t clen = strlen(code);
    char *text = malloc(clen + 32);
    if (!text) {
        lua_close(L);
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    int off = is_func ? snprintf(text, 32, "local msg = ...; ") : 0;
    memcpy(text + off, code, clen + 1);
    char chunkname[40];
    snprintf(chunkname, sizeof chunkname, "=%s", field ? field : "func");
    int rc = luaL_loadbufferx(L, text, (size_t)off + clen, chunkname, "t");
    if (rc != LUA_OK)
        snprintf(msg, msg_size, "%s",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "does not compile");
    free(text);
    lua_close(L);
    return rc == LUA_OK ? 0 : -1;
}

flows_lua_script_t *flows_lua_script_new(flows_lua_t *S, const char *node_id, const char *name,
                                         const char *func, const char *init, const char *fin,
                                         err_t *e)
{
    flows_lua_script_t *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->S = S;
    s->env_ref = LUA_NOREF;
    for (int p = 0; p < 3; p++)
        s->ref[p] = LUA_NOREF;
    call_t c = {.op = OP_SCRIPT_NEW,
                .script = s,
                .node_id = node_id,
                .name = name,
                .code = {func, init, fin},
                .cerr_part = -1};
    int rc = run_protected(S, &c, e);
    if (rc == 0 && c.cerr_part >= 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s: Lua does not compile: %s", PART_NAME[c.cerr_part],
                c.cerr);
        rc = -1;
    }
    if (rc != 0) {
        flows_lua_script_free(s);
        return NULL;
    }
    return s;
}

void flows_lua_script_free(flows_lua_script_t *s)
{
    if (!s) return;
    call_t c = {.op = OP_SCRIPT_FREE, .script = s};
    err_t e = {0};
    run_protected(s->S, &c, &e);
    free(s);
}

int flows_lua_script_has(const flows_lua_script_t *s, flows_lua_part_t part)
{
    return s && part >= 0 && part <= 2 && s->ref[part] != LUA_NOREF && s->ref[part] != LUA_REFNIL;
}

int flows_lua_script_run(flows_lua_script_t *s, const flows_lua_host_t *host, flows_lua_part_t part,
                         json_t *msg, json_t **out, err_t *e)
{
    *out = NULL;
    if (!flows_lua_script_has(s, part)) return 0;
    flows_lua_t *S = s->S;
    call_t c = {.op = OP_RUN, .script = s, .part = part, .in = msg};
    const flows_lua_host_t *prev_host = S->host;
    int prev_env = S->env_ref;
    S->host = host;
    S->env_ref = s->env_ref;
    int rc = run_protected(S, &c, e);
    S->host = prev_host;
    S->env_ref = prev_env;
    if (rc == 0) *out = c.out;
    return rc;
}

json_t *flows_lua_roundtrip(flows_lua_t *S, json_t *v, err_t *e)
{
    call_t c = {.op = OP_ROUNDTRIP, .in = v};
    if (run_protected(S, &c, e) != 0) return NULL;
    return c.out;
}

json_t *flows_lua_eval(flows_lua_t *S, const char *code, err_t *e)
{
    call_t c = {.op = OP_EVAL, .code = {code}};
    err_clear(e);
    int prev_env = S->env_ref;
    int rc = run_protected(S, &c, e);
    /* drop the eval environment (unref outside the call cannot raise) */
    if (S->env_ref != prev_env && S->env_ref != LUA_NOREF) {
        luaL_unref(S->L, LUA_REGISTRYINDEX, S->env_ref);
    }
    S->env_ref = prev_env;
    return rc == 0 ? c.out : NULL;
}
