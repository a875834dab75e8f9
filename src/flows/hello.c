/* hello.c: the default flow set of a new project, deployed when the project is created
 * (tenant_project_hook): GET /flows/{project_id}/hello answers "Hello world!", and an
 * inbound message on any app of the project is answered "Hello world!" by one
 * sinch-received-message without an app restriction -> sinch-message -> sinch-send (which
 * replies on the inbound message's app). It is an ordinary deployed set: the user's first
 * deploy replaces it, and it stays in the revision history. */
#include "flows/hello.h"
#include "flows/flows.h"

#include <jansson.h>

static const char hello_flows[] =
    "[{\"id\":\"hello0000000tab\",\"type\":\"tab\",\"label\":\"Hello world\",\"disabled\":false,"
    "\"info\":\"Parley's default flow: GET /flows/{project}/hello answers Hello world!, and every "
    "inbound message on any app of the project is answered Hello world!. Deploy your own flows "
    "to replace it.\",\"env\":[]},"
    "{\"id\":\"hello00000httpin\",\"type\":\"http in\",\"z\":\"hello0000000tab\",\"name\":"
    "\"GET /hello\",\"url\":\"/hello\",\"method\":\"get\",\"upload\":false,\"swaggerDoc\":\"\","
    "\"x\":140,\"y\":80,\"wires\":[[\"hello000httptmpl\"]]},"
    "{\"id\":\"hello000httptmpl\",\"type\":\"template\",\"z\":\"hello0000000tab\",\"name\":"
    "\"Hello world!\",\"field\":\"payload\",\"fieldType\":\"msg\",\"format\":\"text\",\"syntax\":"
    "\"plain\",\"template\":\"Hello world!\",\"output\":\"str\",\"x\":340,\"y\":80,\"wires\":"
    "[[\"hello0000httpres\"]]},"
    "{\"id\":\"hello0000httpres\",\"type\":\"http response\",\"z\":\"hello0000000tab\",\"name\":"
    "\"\",\"statusCode\":\"\",\"headers\":{\"content-type\":\"text/plain; charset=utf-8\"},"
    "\"x\":530,\"y\":80,\"wires\":[]},"
    "{\"id\":\"hello000received\",\"type\":\"sinch-received-message\",\"z\":\"hello0000000tab\","
    "\"name\":\"Any app\",\"convapiConfiguration\":\"\",\"inputs\":0,\"x\":150,\"y\":180,"
    "\"wires\":[[\"hello0000message\"]]},"
    "{\"id\":\"hello0000message\",\"type\":\"sinch-message\",\"z\":\"hello0000000tab\",\"name\":"
    "\"Hello world!\",\"message\":\"{\\\"text_message\\\":{\\\"text\\\":\\\"Hello world!\\\"}}\","
    "\"x\":360,\"y\":180,\"wires\":[[\"hello00000000send\"]]},"
    "{\"id\":\"hello00000000send\",\"type\":\"sinch-send\",\"z\":\"hello0000000tab\",\"name\":"
    "\"Reply\",\"convapiConfiguration\":\"\",\"receive\":false,\"x\":550,\"y\":180,\"wires\":"
    "[[],[]]}]";

const char *flows_hello_flows(void)
{
    return hello_flows;
}

int flows_hello_deploy(store_conn_t *c, const char *project_id, err_t *e)
{
    char rev[32];
    json_t *problems = NULL;
    int rc = flows_deploy(c, project_id, hello_flows, NULL, "", "hello world", rev, &problems, e);
    json_decref(problems);
    return rc;
}
