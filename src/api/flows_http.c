/* flows_http.c: the public HTTP entry points of deployed flows, /flows/{project_id}/...,
 * for every method an `http in` node can serve. No project key is asked, as Node-RED's
 * http-in endpoints ask none; the flow decides what to answer (flows/httpd.h). */
#include "api/api.h"
#include "flows/httpd.h"

#include <ctype.h>
#include <string.h>

static void flows_http(http_req_t *req)
{
    const char *p = http_param(req, "project_id");
    char project[64];
    size_t i = 0;
    for (; p && p[i] && i < sizeof project - 1; i++)
        project[i] = (char)toupper((unsigned char)p[i]); /* ULIDs are stored upper-case */
    project[i] = 0;
    flows_http_handle(req, project, http_param(req, "rest"));
}

const http_route_t api_flows_http_routes[] = {
    {"GET", "/flows/{project_id}/{rest*}", flows_http, HTTP_RAW},
    {"POST", "/flows/{project_id}/{rest*}", flows_http, HTTP_RAW},
    {"PUT", "/flows/{project_id}/{rest*}", flows_http, HTTP_RAW},
    {"DELETE", "/flows/{project_id}/{rest*}", flows_http, HTTP_RAW},
    {"PATCH", "/flows/{project_id}/{rest*}", flows_http, HTTP_RAW},
};
const size_t api_flows_http_nroutes =
    sizeof api_flows_http_routes / sizeof api_flows_http_routes[0];
