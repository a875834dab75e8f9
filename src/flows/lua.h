/* lua.h: the Lua 5.4 sandbox that runs `function` node code. One flows_lua_t per project
 * (one lua_State, one memory cap shared by all the project's function nodes), used only on
 * that project's executor thread. A flows_lua_script_t is one function node's compiled code
 * (func, On Start, On Stop) with its own global environment inside the project's state.
 *
 * Messages cross the boundary as JSON (jansson): objects become Lua tables, arrays become
 * tables marked as arrays (so `[]` stays `[]`), JSON null is the sentinel `null` (also
 * `json.null`), integers stay Lua integers and reals Lua floats. Back to JSON: a Lua float
 * with an integral value becomes a JSON integer (as JavaScript prints it), NaN/inf become
 * null, strings that are not valid UTF-8 become Buffers (an array of byte numbers, as props.h),
 * object keys that came in keep their order and keys added in Lua follow, sorted bytewise.
 *
 * Sandbox: base functions without dofile/loadfile/require/collectgarbage(except count,
 * collect, step); load() is text-only and defaults to the caller's environment; string
 * (no string.dump; find/match/gmatch/gsub metered, see lua_pattern.h), table, math, utf8,
 * coroutine; os.time/os.date/os.clock only; no io, package, debug. Each call gets an
 * instruction budget (count hook) and the project's state a memory cap (counting
 * allocator); exceeding either is a Lua error the caller reports as a node error. Nothing in
 * here aborts the process on bad code.
 *
 * Ownership: flows_lua_free frees the state and must be called after every script of the
 * state was freed. JSON passed in is borrowed; JSON handed out (results, send callbacks)
 * belongs to the receiver. */
#ifndef PARLEY_FLOWS_LUA_H
#define PARLEY_FLOWS_LUA_H

#include "base/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define FLOWS_LUA_MEM_DEFAULT   (64u * 1024 * 1024) /* bytes per project state */
#define FLOWS_LUA_INSTR_DEFAULT 10000000            /* VM instructions per call */

typedef struct flows_lua flows_lua_t;
typedef struct flows_lua_script flows_lua_script_t;

typedef struct {
    size_t mem_limit;    /* bytes for the whole state; 0 = FLOWS_LUA_MEM_DEFAULT */
    int64_t instr_limit; /* per top-level call; 0 = FLOWS_LUA_INSTR_DEFAULT */
} flows_lua_limits_t;

/* What Lua code can reach outside the sandbox during one call. Every callback is optional
 * (NULL: the Lua function raises "not available"). Strings are borrowed for the call. */
typedef struct {
    void *ud;
    /* node.send(x) and multiple returns: v is an object (one message for output 1) or an
     * array with one entry per output (message | array of messages | null). Steals v. */
    void (*send)(void *ud, json_t *v);
    void (*done)(void *ud);
    /* node.log/warn/error and print(): level "info", "warn" or "error". msg is the message
     * passed as second argument to node.error (borrowed, may be NULL). */
    void (*log)(void *ud, const char *level, const char *text, json_t *msg);
    void (*status)(void *ud, json_t *status); /* borrowed: {fill, shape, text} or {} */
    /* scope "node" | "flow" | "global"; get returns a new reference or NULL (undefined);
     * set with v NULL deletes; returns 0 or -1 with *e filled */
    json_t *(*ctx_get)(void *ud, const char *scope, const char *key);
    int (*ctx_set)(void *ud, const char *scope, const char *key, json_t *v, err_t *e);
    json_t *(*env_get)(void *ud, const char *name);   /* new ref (typed) or NULL when unset */
    json_t *(*ctx_keys)(void *ud, const char *scope); /* new ref: array of key strings */
} flows_lua_host_t;

/* What a script run is: the message handler, On Start or On Stop. */
typedef enum { FLOWS_LUA_FUNC, FLOWS_LUA_INIT, FLOWS_LUA_FINAL } flows_lua_part_t;

flows_lua_t *flows_lua_new(const flows_lua_limits_t *lim, err_t *e);
void flows_lua_free(flows_lua_t *S);
/* Bytes currently allocated by the state (for metrics and tests). */
size_t flows_lua_mem_used(const flows_lua_t *S);

/* Compile-only check for deploy validation (no state needed): 0 when `code` compiles as the
 * function node field `field` ("func", "initialize", "finalize"), else -1 with msg filled
 * with Lua's message, e.g. "func:3: '=' expected near 'x'" (3 is the line in the field). */
int flows_lua_check(const char *code, const char *field, char *msg, size_t msg_size);

/* Compile a function node's code into S. Any of the three may be NULL or empty. On error
 * e names the field ("func", "initialize", "finalize") and the Lua message. node_id and
 * name are exposed as node.id and node.name. */
flows_lua_script_t *flows_lua_script_new(flows_lua_t *S, const char *node_id, const char *name,
                                         const char *func, const char *init, const char *fin,
                                         err_t *e);
void flows_lua_script_free(flows_lua_script_t *s);
/* Does the part have code? */
int flows_lua_script_has(const flows_lua_script_t *s, flows_lua_part_t part);

/* Run one part. msg (borrowed, FUNC only) is the input message. On success returns 0 and
 * *out gets the converted return value (NULL for nil): an object (one message) or an array
 * (one entry per output). On a Lua error, the budget or the memory cap, returns -1 with e
 * filled (ERR_RESOURCE_EXHAUSTED for the two limits) and *out NULL. */
int flows_lua_script_run(flows_lua_script_t *s, const flows_lua_host_t *host, flows_lua_part_t part,
                         json_t *msg, json_t **out, err_t *e);

/* Round trip helpers for tests and tools: JSON -> Lua -> JSON through the sandbox state. */
json_t *flows_lua_roundtrip(flows_lua_t *S, json_t *v, err_t *e);
/* Run a standalone chunk in a fresh environment of S (tests): returns the first result as
 * JSON (NULL for nil) or NULL with e filled on error (check e->code). */
json_t *flows_lua_eval(flows_lua_t *S, const char *code, err_t *e);

#endif
