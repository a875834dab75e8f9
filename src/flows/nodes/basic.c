/* basic.c: the node types with no behaviour of their own: `comment` (documentation only)
 * and `junction` (a wire joint: passes every message on), and the `global-config` node
 * Node-RED 3+ writes for global env (accepted, its env is not read: see docs/flows.md). */
#include "flows/node.h"

static void junction_input(flows_node_t *n, json_t *msg)
{
    flows_send(n, 0, msg);
}

const flows_node_type_t flows_type_comment = {.type = "comment"};
const flows_node_type_t flows_type_junction = {.type = "junction", .input = junction_input};
const flows_node_type_t flows_type_global_config = {.type = "global-config", .config_only = 1};
