/* lua_pattern.c: a backtracking matcher for Lua 5.4 patterns whose work is metered (see
 * lua_pattern.h). Semantics are those of the Lua 5.4 reference manual, section 6.4.1:
 * classes (. %a %c %d %g %l %p %s %u %w %x and their negations, %x for punctuation, sets
 * [...] with ranges and [^...]), quantifiers * + - ?, anchors ^ $, captures (including
 * position captures ()), back references %1-%9, %bxy and the frontier %f[set]. */
#include "flows/lua_pattern.h"

#include <lauxlib.h>

#include <ctype.h>
#include <string.h>

#define MAX_CAPTURES 32   /* as Lua (LUA_MAXCAPTURES) */
#define MAX_DEPTH    200  /* recursion of the matcher (Lua's MAXCCALLS) */
#define CHARGE_EVERY 1024 /* steps between two charges to the budget */
#define CAP_UNCLOSED (-1)
#define CAP_POSITION (-2)
#define SPECIALS     "^$*+?.([%-"

typedef struct {
    lua_State *L;
    const char *src, *src_end; /* subject */
    const char *pat_end;
    int depth;
    int64_t steps;
    int ncap;
    struct {
        const char *start;
        ptrdiff_t len; /* or CAP_UNCLOSED / CAP_POSITION */
    } cap[MAX_CAPTURES];
} matcher_t;

static void step(matcher_t *m)
{
    if (++m->steps >= CHARGE_EVERY) {
        flows_lua_charge(m->L, m->steps);
        m->steps = 0;
    }
}

/* The end of the single-character class starting at p. */
static const char *class_end(matcher_t *m, const char *p)
{
    char c = *p++;
    if (c == '%') {
        if (p >= m->pat_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (p < m->pat_end && *p == '^') p++;
        do { /* the first character after [ or [^ may be ']' itself */
            if (p >= m->pat_end) luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == '%' && p < m->pat_end) p++;
        } while (p >= m->pat_end || *p != ']');
        return p + 1;
    }
    return p;
}

static int class_matches(int c, int cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a':
        r = isalpha(c);
        break;
    case 'c':
        r = iscntrl(c);
        break;
    case 'd':
        r = isdigit(c);
        break;
    case 'g':
        r = isgraph(c);
        break;
    case 'l':
        r = islower(c);
        break;
    case 'p':
        r = ispunct(c);
        break;
    case 's':
        r = isspace(c);
        break;
    case 'u':
        r = isupper(c);
        break;
    case 'w':
        r = isalnum(c);
        break;
    case 'x':
        r = isxdigit(c);
        break;
    default:
        return cl == c;
    }
    r = r != 0;
    return isupper(cl) ? !r : r;
}

/* p points at '[', last at the closing ']' */
static int set_matches(int c, const char *p, const char *last)
{
    int negate = 0;
    p++;
    if (*p == '^') {
        negate = 1;
        p++;
    }
    for (; p < last; p++) {
        if (*p == '%' && p + 1 < last) {
            p++;
            if (class_matches(c, (unsigned char)*p)) return !negate;
        } else if (p + 2 < last && p[1] == '-') {
            if ((unsigned char)*p <= c && c <= (unsigned char)p[2]) return !negate;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return !negate;
        }
    }
    return negate;
}

static int single_matches(matcher_t *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->src_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return 1;
    case '%':
        return class_matches(c, (unsigned char)p[1]);
    case '[':
        return set_matches(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

static const char *do_match(matcher_t *m, const char *s, const char *p);

static const char *greedy(matcher_t *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (single_matches(m, s + n, p, ep)) {
        n++;
        step(m);
    }
    for (; n >= 0; n--) { /* longest first, then give back one at a time */
        const char *r = do_match(m, s + n, ep + 1);
        if (r) return r;
    }
    return NULL;
}

static const char *lazy(matcher_t *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *r = do_match(m, s, ep + 1);
        if (r) return r;
        if (!single_matches(m, s, p, ep)) return NULL;
        s++;
        step(m);
    }
}

static const char *open_capture(matcher_t *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->ncap >= MAX_CAPTURES) luaL_error(m->L, "too many captures");
    m->cap[m->ncap].start = s;
    m->cap[m->ncap].len = what;
    m->ncap++;
    const char *r = do_match(m, s, p);
    if (!r) m->ncap--;
    return r;
}

static const char *close_capture(matcher_t *m, const char *s, const char *p)
{
    int l = m->ncap - 1;
    while (l >= 0 && m->cap[l].len != CAP_UNCLOSED)
        l--;
    if (l < 0) luaL_error(m->L, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].start;
    const char *r = do_match(m, s, p);
    if (!r) m->cap[l].len = CAP_UNCLOSED;
    return r;
}

static const char *back_reference(matcher_t *m, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= m->ncap || m->cap[l].len == CAP_UNCLOSED)
        luaL_error(m->L, "invalid capture index %%%d", l + 1);
    size_t len = (size_t)m->cap[l].len;
    if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].start, s, len) == 0) return s + len;
    return NULL;
}

static const char *do_match(matcher_t *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH) luaL_error(m->L, "pattern too complex");
    step(m);
    const char *r = NULL;
    for (;;) {
        if (p >= m->pat_end) {
            r = s;
            break;
        }
        if (*p == '(') {
            r = p + 1 < m->pat_end && p[1] == ')' ? open_capture(m, s, p + 2, CAP_POSITION)
                                                  : open_capture(m, s, p + 1, CAP_UNCLOSED);
            break;
        }
        if (*p == ')') {
            r = close_capture(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == m->pat_end) {
            r = s == m->src_end ? s : NULL;
            break;
        }
        if (*p == '%' && p + 1 < m->pat_end && p[1] == 'b') {
            if (p + 3 >= m->pat_end)
                luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
            if (s >= m->src_end || *s != p[2]) break;
            int open = 1;
            const char *t = s;
            while (++t < m->src_end) {
                step(m);
                if (*t == p[3]) {
                    if (--open == 0) break;
                } else if (*t == p[2]) {
                    open++;
                }
            }
            if (t >= m->src_end) break;
            s = t + 1;
            p += 4;
            continue;
        }
        if (*p == '%' && p + 1 < m->pat_end && p[1] == 'f') {
            p += 2;
            if (p >= m->pat_end || *p != '[')
                luaL_error(m->L, "missing '[' after '%%f' in pattern");
            const char *ep = class_end(m, p);
            int prev = s == m->src ? 0 : (unsigned char)s[-1];
            int cur = s < m->src_end ? (unsigned char)*s : 0;
            if (set_matches(prev, p, ep - 1) || !set_matches(cur, p, ep - 1)) break;
            p = ep;
            continue;
        }
        if (*p == '%' && p + 1 < m->pat_end && isdigit((unsigned char)p[1])) {
            s = back_reference(m, s, (unsigned char)p[1]);
            if (!s) break;
            p += 2;
            continue;
        }
        const char *ep = class_end(m, p);
        char q = ep < m->pat_end ? *ep : 0;
        if (!single_matches(m, s, p, ep)) {
            if (q == '*' || q == '?' || q == '-') { /* zero occurrences are fine */
                p = ep + 1;
                continue;
            }
            break;
        }
        if (q == '?') {
            r = do_match(m, s + 1, ep + 1);
            if (r) break;
            p = ep + 1;
            continue;
        }
        if (q == '+') {
            r = greedy(m, s + 1, p, ep);
            break;
        }
        if (q == '*') {
            r = greedy(m, s, p, ep);
            break;
        }
        if (q == '-') {
            r = lazy(m, s, p, ep);
            break;
        }
        s++;
        p = ep;
    }
    m->depth--;
    return r;
}

/* ---- captures to Lua values ---- */

static void push_capture(matcher_t *m, int i, const char *s, const char *e)
{
    if (i >= m->ncap) {
        if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s)); /* no captures: the whole match */
        return;
    }
    if (m->cap[i].len == CAP_UNCLOSED) luaL_error(m->L, "unfinished capture");
    if (m->cap[i].len == CAP_POSITION)
        lua_pushinteger(m->L, (lua_Integer)(m->cap[i].start - m->src) + 1);
    else
        lua_pushlstring(m->L, m->cap[i].start, (size_t)m->cap[i].len);
}

/* Push the captures (or the whole match when there is none and s is given). */
static int push_captures(matcher_t *m, const char *s, const char *e)
{
    int n = m->ncap == 0 && s ? 1 : m->ncap;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static void matcher_init(matcher_t *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    m->L = L;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->depth = 0;
    m->steps = 0;
    m->ncap = 0;
}

static void matcher_reset(matcher_t *m)
{
    m->ncap = 0;
    m->depth = 0;
}

static void matcher_done(matcher_t *m)
{
    if (m->steps) flows_lua_charge(m->L, m->steps);
    m->steps = 0;
}

/* string.find / string.match: 1-based init, negative from the end */
static size_t start_index(lua_Integer pos, size_t len)
{
    if (pos > 0) return (size_t)pos;
    if (pos == 0) return 1;
    if (pos < -(lua_Integer)len) return 1;
    return len + (size_t)pos + 1;
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (strchr(SPECIALS, p[i])) return 1;
    return 0;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        /* plain search: memmem-like, charged by the bytes scanned */
        const char *hit = NULL;
        if (lp == 0) {
            hit = s + init;
        } else if (lp <= ls - init) {
            const char *t = s + init, *end = s + ls - lp + 1;
            for (; t < end; t++) {
                t = memchr(t, p[0], (size_t)(end - t));
                if (!t) break;
                if (memcmp(t, p, lp) == 0) {
                    hit = t;
                    break;
                }
            }
        }
        flows_lua_charge(L, (int64_t)((ls - init) / 64 + 1));
        if (!hit) {
            luaL_pushfail(L);
            return 1;
        }
        lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
        lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
        return 2;
    }
    matcher_t m;
    matcher_init(&m, L, s, ls, p, lp);
    int anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    const char *s1 = s + init;
    do {
        matcher_reset(&m);
        const char *e = do_match(&m, s1, p);
        if (e) {
            matcher_done(&m);
            if (find) {
                lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
                lua_pushinteger(L, (lua_Integer)(e - s));
                return push_captures(&m, NULL, NULL) + 2;
            }
            return push_captures(&m, s1, e);
        }
    } while (s1++ < m.src_end && !anchor);
    matcher_done(&m);
    luaL_pushfail(L);
    return 1;
}

static int l_find(lua_State *L)
{
    return find_or_match(L, 1);
}

static int l_match(lua_State *L)
{
    return find_or_match(L, 0);
}

/* gmatch iterator: upvalues subject, pattern, next position (0-based), last match end */
static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
    lua_Integer last = lua_tointeger(L, lua_upvalueindex(4));
    matcher_t m;
    matcher_init(&m, L, s, ls, p, lp);
    for (lua_Integer i = pos; i <= (lua_Integer)ls; i++) {
        const char *src = s + i;
        matcher_reset(&m);
        const char *e = do_match(&m, src, p);
        if (e && (e - s) != last) {
            matcher_done(&m);
            lua_pushinteger(L, (lua_Integer)(e - s));
            lua_replace(L, lua_upvalueindex(3));
            lua_pushinteger(L, (lua_Integer)(e - s));
            lua_replace(L, lua_upvalueindex(4));
            return push_captures(&m, src, e);
        }
    }
    matcher_done(&m);
    lua_pushinteger(L, (lua_Integer)ls + 1);
    lua_replace(L, lua_upvalueindex(3));
    return 0;
}

static int l_gmatch(lua_State *L)
{
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init > ls) init = ls + 1; /* no matches */
    lua_settop(L, 2);
    lua_pushinteger(L, (lua_Integer)init);
    lua_pushinteger(L, -1);
    lua_pushcclosure(L, gmatch_next, 4);
    return 1;
}

/* Add the replacement for the match s..e to b (gsub). */
static void add_replacement(matcher_t *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
    lua_State *L = m->L;
    if (tr == LUA_TSTRING || tr == LUA_TNUMBER) {
        size_t l;
        const char *r = lua_tolstring(L, 3, &l);
        for (size_t i = 0; i < l; i++) {
            if (r[i] != '%') {
                luaL_addchar(b, r[i]);
                continue;
            }
            i++;
            if (i >= l) luaL_error(L, "invalid use of '%%' in replacement string");
            if (r[i] == '%') {
                luaL_addchar(b, '%');
            } else if (r[i] == '0') {
                luaL_addlstring(b, s, (size_t)(e - s));
            } else if (isdigit((unsigned char)r[i])) {
                push_capture(m, r[i] - '1', s, e);
                luaL_tolstring(L, -1, NULL);
                lua_remove(L, -2);
                luaL_addvalue(b);
            } else {
                luaL_error(L, "invalid use of '%%' in replacement string");
            }
        }
        return;
    }
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else { /* table */
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
        return;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
}

static int l_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(
        L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
        "string/function/table");
    int anchor = lp > 0 && *p == '^';
    if (anchor) {
        p++;
        lp--;
    }
    matcher_t m;
    matcher_init(&m, L, s, ls, p, lp);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *src = s, *last = NULL;
    lua_Integer n = 0;
    while (n < max) {
        matcher_reset(&m);
        const char *e = do_match(&m, src, p);
        if (e && e != last) {
            n++;
            add_replacement(&m, &b, src, e, tr);
            src = last = e;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor) break;
    }
    matcher_done(&m);
    luaL_addlstring(&b, src, (size_t)(m.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

void flows_lua_patterns_open(lua_State *L, int strtab)
{
    static const luaL_Reg f[] = {
        {"find", l_find}, {"match", l_match}, {"gmatch", l_gmatch}, {"gsub", l_gsub}, {NULL, NULL}};
    lua_pushvalue(L, strtab);
    luaL_setfuncs(L, f, 0);
    lua_pop(L, 1);
}
