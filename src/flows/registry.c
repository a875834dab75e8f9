/* registry.c: the table of node types Flows supports. Each node file defines one
 * flows_node_type_t named flows_type_<name>; add ONE extern line and ONE table line per
 * type below (each helper adds its own, in its own block). Lookups are a linear scan over
 * a few dozen names at deploy time only (the runtime keeps the resolved pointer). */
#include "flows/node.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* core */
extern const flows_node_type_t flows_type_inject, flows_type_debug, flows_type_comment,
    flows_type_junction, flows_type_global_config, flows_type_switch, flows_type_change,
    flows_type_catch, flows_type_status, flows_type_complete, flows_type_link_in,
    flows_type_link_out, flows_type_link_call;
/* lua: add extern lines here */
extern const flows_node_type_t flows_type_function, flows_type_split, flows_type_join,
    flows_type_range, flows_type_json;
/* io: add extern lines here */
extern const flows_node_type_t flows_type_template, flows_type_http_in, flows_type_http_response,
    flows_type_sinch_config, flows_type_sinch_received, flows_type_sinch_events,
    flows_type_sinch_message, flows_type_sinch_start, flows_type_sinch_send,
    flows_type_contact_handover, flows_type_delay, flows_type_trigger, flows_type_http_request,
    flows_type_tls_config;

static const flows_node_type_t *const flows_types[] = {
    NULL, /* keeps the array non-empty; skipped */
    /* core */
    &flows_type_inject,
    &flows_type_debug,
    &flows_type_comment,
    &flows_type_junction,
    &flows_type_global_config,
    &flows_type_switch,
    &flows_type_change,
    &flows_type_catch,
    &flows_type_status,
    &flows_type_complete,
    &flows_type_link_in,
    &flows_type_link_out,
    &flows_type_link_call,
    /* lua: add table lines here */
    &flows_type_function,
    &flows_type_split,
    &flows_type_join,
    &flows_type_range,
    &flows_type_json,
    /* io: add table lines here */
    &flows_type_template,
    &flows_type_http_in,
    &flows_type_http_response,
    &flows_type_sinch_config,
    &flows_type_sinch_received,
    &flows_type_sinch_events,
    &flows_type_sinch_message,
    &flows_type_sinch_start,
    &flows_type_sinch_send,
    &flows_type_contact_handover,
    &flows_type_delay,
    &flows_type_trigger,
    &flows_type_http_request,
    &flows_type_tls_config,
};

#define NTYPES (sizeof flows_types / sizeof flows_types[0])

const flows_node_type_t *flows_type_find(const char *type)
{
    if (!type) return NULL;
    for (size_t i = 0; i < NTYPES; i++)
        if (flows_types[i] && strcmp(flows_types[i]->type, type) == 0) return flows_types[i];
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char type_list[2048];

static void build_list(void)
{
    const char *names[NTYPES + 1] = {0};
    size_t n = 0;
    for (size_t i = 0; i < NTYPES; i++)
        if (flows_types[i]) names[n++] = flows_types[i]->type;
    qsort(names, n, sizeof names[0], cmp_str);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (len + l + 3 >= sizeof type_list) break;
        if (i) {
            memcpy(type_list + len, ", ", 2);
            len += 2;
        }
        memcpy(type_list + len, names[i], l);
        len += l;
    }
    type_list[len] = 0;
}

const char *flows_type_list(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT; /* deploys validate on many threads */
    pthread_once(&once, build_list);
    return type_list;
}
