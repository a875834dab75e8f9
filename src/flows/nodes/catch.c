/* catch.c: `catch`, `status` and `complete`. The runtime routes errors, status changes and
 * completions to them (runtime.c: scope null = every node of the tab or subflow, or a
 * list of node ids; catch `uncaught` only takes errors no other catch took); the nodes
 * only pass the prepared msg on. */
#include "flows/node.h"

#include <stdio.h>
#include <string.h>

static void pass_on(flows_node_t *n, json_t *msg)
{
    flows_send(n, 0, msg);
}

static void scope_validate(const json_t *cfgc, flows_problems_t *p, int list_required)
{
    json_t *cfg = (json_t *)cfgc;
    const char *id = flows_problems_node(p);
    json_t *scope = json_object_get(cfg, "scope");
    if (!scope || json_is_null(scope)) {
        if (list_required) flows_problem(p, id, "scope", "missing required list of nodes");
        return;
    }
    if (json_is_string(scope) && strcmp(json_string_value(scope), "group") == 0) {
        flows_problem(p, id, "scope", "scope 'group' is not supported by Parley (use a node list)");
        return;
    }
    if (!json_is_array(scope)) {
        flows_problem(p, id, "scope", "must be null or an array of node ids");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(scope, i, v)
    {
        char f[48];
        snprintf(f, sizeof f, "scope[%zu]", i);
        if (!json_is_string(v))
            flows_problem(p, id, f, "must be a node id");
        else if (!flows_problems_has_node(p, json_string_value(v), NULL))
            flows_problem(p, id, f, "scope names missing node '%s'", json_string_value(v));
    }
}

static void catch_validate(const json_t *cfg, flows_problems_t *p)
{
    scope_validate(cfg, p, 0);
}

static void complete_validate(const json_t *cfg, flows_problems_t *p)
{
    scope_validate(cfg, p, 0);
}

const flows_node_type_t flows_type_catch = {
    .type = "catch", .validate = catch_validate, .input = pass_on};
const flows_node_type_t flows_type_status = {
    .type = "status", .validate = catch_validate, .input = pass_on};
const flows_node_type_t flows_type_complete = {
    .type = "complete", .validate = complete_validate, .input = pass_on};
