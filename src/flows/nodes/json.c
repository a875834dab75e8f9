/* json.c: Node-RED's `json` node (70-JSON.js): converts msg[property] between a JSON
 * string and an object. action "" toggles by type, "str" always to text, "obj" always to an
 * object; pretty indents by 4 spaces as JSON.stringify(v, null, 4). Text is printed as
 * V8 prints it (flows/jsjson.h). Not supported: JSON schema validation via msg.schema
 * (the message is reported as an error, catch nodes get it). */
#include "flows/jsjson.h"
#include "flows/node.h"
#include "flows/props.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char action[4];
    int indent;
    char *property;
} jsonnode_t;

static void json_validate(const json_t *cfg, flows_problems_t *p)
{
    const char *id = flows_problems_node(p);
    const char *action = json_string_value(json_object_get(cfg, "action"));
    if (action && *action && strcmp(action, "str") && strcmp(action, "obj"))
        flows_problem(p, id, "action", "must be \"\", \"str\" or \"obj\"");
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    err_t e = {0};
    if (prop && *prop && flows_path_check(prop, &e) != 0)
        flows_problem(p, id, "property", "%s", e.message);
}

static int json_start(flows_node_t *n, err_t *e)
{
    json_t *cfg = flows_node_config(n);
    jsonnode_t *j = calloc(1, sizeof *j);
    if (!j) return err_set(e, ERR_INTERNAL, "out of memory");
    const char *action = json_string_value(json_object_get(cfg, "action"));
    if (action && strlen(action) < sizeof j->action) strcpy(j->action, action);
    j->indent = flows_js_truthy(json_object_get(cfg, "pretty")) ? 4 : 0;
    const char *prop = json_string_value(json_object_get(cfg, "property"));
    j->property = strdup(prop && *prop ? prop : "payload");
    flows_node_set_state(n, j);
    return 0;
}

static void json_input(flows_node_t *n, json_t *msg)
{
    jsonnode_t *j = flows_node_state(n);
    if (json_object_get(msg, "schema")) {
        flows_error(n, msg, "JSON schema validation (msg.schema) is not supported by Parley");
        return;
    }
    json_t *value = flows_prop_get(msg, j->property);
    if (!value) {
        flows_send(n, 0, msg);
        return;
    }
    err_t e = {0};
    if (json_is_string(value)) {
        if (strcmp(j->action, "str") == 0) {
            flows_send(n, 0, msg);
            return;
        }
        json_error_t je;
        json_t *parsed = json_loadb(json_string_value(value), json_string_length(value),
                                    JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!parsed) {
            flows_error(n, msg, "Unexpected JSON: %s at position %d", je.text, je.position);
            return;
        }
        if (flows_prop_set(msg, j->property, parsed, &e) != 0) {
            flows_error(n, msg, "%s", e.message);
            return;
        }
        flows_send(n, 0, msg);
        return;
    }
    /* object, array (also Buffers), number, boolean, null */
    if (strcmp(j->action, "obj") == 0) {
        flows_send(n, 0, msg);
        return;
    }
    char *text = flows_jsjson_stringify(value, j->indent);
    json_t *s = json_string(text);
    free(text);
    if (!s || flows_prop_set(msg, j->property, s, &e) != 0) {
        flows_error(n, msg, "Failed to convert to JSON: %s", s ? e.message : "invalid text");
        return;
    }
    flows_send(n, 0, msg);
}

static void json_stop(flows_node_t *n)
{
    jsonnode_t *j = flows_node_state(n);
    if (!j) return;
    free(j->property);
    free(j);
    flows_node_set_state(n, NULL);
}

const flows_node_type_t flows_type_json = {
    .type = "json",
    .validate = json_validate,
    .start = json_start,
    .input = json_input,
    .stop = json_stop,
};
