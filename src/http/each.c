/* each.c: iterating over a request's headers and query pairs, and its raw URI: what a
 * generic endpoint (a flow's `http in` node) needs to hand the whole request on. */
#include "http/http_internal.h"

typedef struct {
    http_kv_fn fn;
    void *ud;
} each_t;

static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    each_t *e = cls;
    e->fn(e->ud, key, value ? value : "");
    return MHD_YES;
}

void http_header_each(http_req_t *r, http_kv_fn fn, void *ud)
{
    if (!r->conn) return;
    each_t e = {fn, ud};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, header_cb, &e);
}

void http_query_each(http_req_t *r, http_kv_fn fn, void *ud)
{
    if (!r->query) (void)http_query(r, ""); /* parses the pairs on first use */
    for (char **f = r->query; f && *f; f += 2)
        fn(ud, f[0], f[1]);
}

const char *http_raw_uri(http_req_t *r)
{
    return r->raw_uri ? r->raw_uri : r->path;
}
