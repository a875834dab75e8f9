/* routing_gdpr.c: routing's part of anonymizing a person (gdpr.h hook, registered by
 * contact_start): the internal notes and wrap-up notes of that contact's contact-center
 * conversations are replaced with a placeholder, and the customer messages copied into the
 * real-time event log are reduced to their ids. Rows, times and assignments stay, so the
 * statistics do not change. */
#include "contact/contact.h"
#include "contact/gdpr.h"

#include <jansson.h>
#include <stdio.h>

#define PLACEHOLDER "[anonymized]"

int contact_routing_anonymize(store_conn_t *c, const char *project_id, const char *contact_id,
                              err_t *e)
{
    json_t *ids = convo_col_strings(store_query(c, e,
                                                "SELECT id FROM contact_conversations WHERE "
                                                "project_id = $1 AND contact_id = $2",
                                                "ss", project_id, contact_id),
                                    e);
    if (!ids) return -1;
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (rc < 0) break;
        const char *id = json_string_value(v);
        char like[64], data[96];
        snprintf(like, sizeof like, "%%\"conversation_id\":\"%s\"%%", id);
        snprintf(data, sizeof data, "{\"conversation_id\":\"%s\",\"anonymized\":true}", id);
        if (store_exec(c, e,
                       "UPDATE contact_notes SET text = $1 WHERE conversation_id = $2 AND "
                       "project_id = $3",
                       "sss", PLACEHOLDER, id, project_id) < 0 ||
            store_exec(c, e,
                       "UPDATE contact_conversations SET wrap_up = $1 WHERE id = $2 AND wrap_up IS "
                       "NOT NULL",
                       "ss", PLACEHOLDER, id) < 0 ||
            store_exec(c, e,
                       "UPDATE contact_events SET data = $1 WHERE project_id = $2 AND kind = "
                       "'message' AND data LIKE $3",
                       "sss", data, project_id, like) < 0)
            rc = -1;
    }
    json_decref(ids);
    return rc < 0 ? -1 : 0;
}
