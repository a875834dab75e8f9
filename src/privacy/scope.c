/* scope.c: which tables hold a project's data, derived from the schema so that tables
 * added by later migrations (flows, contact) are exported and purged without code
 * changes: "projects" itself, every table with a project_id column, and every table
 * that reaches one of those through a foreign key (app_credentials -> apps,
 * message_refs -> messages). A new table needs only one of the two to be in scope. */
#define _GNU_SOURCE
#include "privacy/privacy_internal.h"
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has_col(const store_table_t *t, const char *col)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->cols[i], col) == 0) return 1;
    return 0;
}

static int find(const privacy_scope_t *s, const char *name)
{
    for (int i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i].name, name) == 0) return i;
    return -1;
}

int privacy_scope_build(store_conn_t *c, privacy_scope_t *s, err_t *e)
{
    memset(s, 0, sizeof *s);
    s->tables = store_tables(c, &s->ntables, e);
    if (!s->tables) return -1;
    int nt = s->ntables;
    char **pred = xcalloc((size_t)nt, sizeof *pred); /* by table index; NULL = out */
    int root = find(s, "projects");
    if (root < 0) {
        free(pred);
        store_tables_free(s->tables, nt);
        return err_set(e, ERR_INTERNAL, "schema has no projects table");
    }
    pred[root] = xstrdup("id = $1");
    for (int i = 0; i < nt; i++)
        if (i != root && has_col(&s->tables[i], "project_id")) pred[i] = xstrdup("project_id = $1");
    for (int changed = 1; changed;) { /* children through foreign keys, to a fixpoint */
        changed = 0;
        for (int i = 0; i < nt; i++) {
            if (pred[i]) continue;
            const store_table_t *t = &s->tables[i];
            for (int k = 0; k < t->nfks; k++) {
                int p = find(s, t->fks[k].table);
                if (p < 0 || p == i || !pred[p]) continue;
                buf_t b;
                buf_init(&b);
                buf_printf(&b, "%s IN (SELECT %s FROM %s WHERE %s)", t->fks[k].from, t->fks[k].to,
                           s->tables[p].name, pred[p]);
                pred[i] = buf_steal(&b);
                changed = 1;
                break;
            }
        }
    }
    /* Order: a table after every in-scope table it references (parents first). */
    s->order = xcalloc((size_t)nt, sizeof *s->order);
    s->pred = xcalloc((size_t)nt, sizeof *s->pred);
    int *placed = xcalloc((size_t)nt, sizeof *placed);
    placed[root] = 1; /* "projects" first: purge stops before it, export starts with it */
    s->order[s->n] = root;
    s->pred[s->n++] = pred[root];
    for (int progress = 1; progress;) {
        progress = 0;
        for (int i = 0; i < nt; i++) {
            if (!pred[i] || placed[i]) continue;
            int ready = 1;
            for (int k = 0; k < s->tables[i].nfks && ready; k++) {
                int p = find(s, s->tables[i].fks[k].table);
                if (p >= 0 && p != i && pred[p] && !placed[p]) ready = 0;
            }
            if (!ready) continue;
            placed[i] = 1;
            s->order[s->n] = i;
            s->pred[s->n++] = pred[i];
            progress = 1;
        }
    }
    for (int i = 0; i < nt; i++) /* a reference cycle: place the rest as they come */
        if (pred[i] && !placed[i]) {
            s->order[s->n] = i;
            s->pred[s->n++] = pred[i];
        } else if (!pred[i]) {
            free(pred[i]);
        }
    free(placed);
    free(pred);
    return 0;
}

void privacy_scope_free(privacy_scope_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->pred[i]);
    free(s->pred);
    free(s->order);
    store_tables_free(s->tables, s->ntables);
    memset(s, 0, sizeof *s);
}
