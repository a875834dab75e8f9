/* lua_pattern.h: Lua 5.4 pattern matching (string.find, match, gmatch, gsub) for the
 * function node sandbox, written so that every matching step is charged to the call's
 * instruction budget. Lua's own implementation runs in C without ever reaching the count
 * hook, so a backtracking pattern on a large string could hold a project's executor for
 * minutes; these replacements raise the budget error instead. Internal to flows/lua.c. */
#ifndef PARLEY_FLOWS_LUA_PATTERN_H
#define PARLEY_FLOWS_LUA_PATTERN_H

#include <lua.h>
#include <stdint.h>

/* Replace find, match, gmatch and gsub in the string table at index strtab. */
void flows_lua_patterns_open(lua_State *L, int strtab);

/* Defined by lua.c: add `steps` to the running call's instruction count; raises the
 * budget error (never returns) when the budget is exhausted. */
void flows_lua_charge(lua_State *L, int64_t steps);

#endif
