/* routes.c: every Parley endpoint in one table, grouped as in DESIGN.md's URL map. The
 * Conversation API resources define their own tables (api/<resource>.c); they are joined
 * here once, at start-up, before the server's threads exist. */
#include "api/api.h"

#include <string.h>

static const http_route_t api_core_routes[] = {
    {"GET", "/healthz", api_healthz, 0},
    {"GET", "/metrics", api_metrics, 0},
    {"POST", "/oauth2/token", api_oauth2_token, HTTP_FORM},
};

#define API_MAX_ROUTES 256

const http_route_t *api_routes(size_t *n)
{
    static http_route_t table[API_MAX_ROUTES];
    static size_t count;
    if (count == 0) {
        const struct {
            const http_route_t *routes;
            size_t n;
        } groups[] = {
            {api_core_routes, sizeof api_core_routes / sizeof api_core_routes[0]},
            {api_apps_routes, api_apps_nroutes},
            {api_contacts_routes, api_contacts_nroutes},
            {api_conversations_routes, api_conversations_nroutes},
            {api_messages_routes, api_messages_nroutes},
            {api_webhooks_routes, api_webhooks_nroutes},
            {api_inbound_routes, api_inbound_nroutes},
            {api_privacy_routes, api_privacy_nroutes},
            {api_flows_routes, api_flows_nroutes},           /* core */
            {api_flows_http_routes, api_flows_http_nroutes}, /* io */
            {api_contact_people_routes, api_contact_people_nroutes},
            {api_contact_gdpr_routes, api_contact_gdpr_nroutes},
            {api_contact_routing_routes, api_contact_routing_nroutes},
            {api_contact_workspace_routes, api_contact_workspace_nroutes},
        };
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
            for (size_t i = 0; i < groups[g].n && count < API_MAX_ROUTES; i++)
                table[count++] = groups[g].routes[i];
    }
    *n = count;
    return table;
}
