/* privacy_internal.h: what the privacy module's files share. The project scope: every
 * table that holds a project's data, found from the schema (a project_id column, or a
 * foreign key to a table in scope), with the SQL predicate selecting the project's rows
 * ($1 = project id) and an order where parents come before children. */
#ifndef PARLEY_PRIVACY_INTERNAL_H
#define PARLEY_PRIVACY_INTERNAL_H

#include "privacy/privacy.h"

typedef struct {
    store_table_t *tables; /* the whole schema */
    int ntables;
    int *order;  /* indexes into tables, parents first ("projects" first) */
    char **pred; /* per ordered entry: WHERE clause over the table's own columns */
    int n;
} privacy_scope_t;

int privacy_scope_build(store_conn_t *c, privacy_scope_t *s, err_t *e);
void privacy_scope_free(privacy_scope_t *s);
/* Remove messages by id with what hangs on them (refs, inbound_seen, pending deliveries
 * and, unless keep_callbacks, pending callbacks that name them), inside the caller's
 * transaction. Returns how many messages were removed. */
int64_t privacy_delete_messages(store_conn_t *c, const char *project_id, char (*ids)[32], int n,
                                int keep_callbacks, err_t *e);

#define PRIVACY_DAY_MS (86400LL * 1000)

#endif
