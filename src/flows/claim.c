/* claim.c: which apps' inbound messages the deployed flows take, and what Flows forgets
 * when a person is anonymized (see claim.h). The answer to "claims" is derived from the
 * deployed flows.json text and cached per project by revision, so a redeploy is seen at
 * once and a steady state costs one mutex and a string compare. */
#include "flows/claim.h"
#include "base/buf.h"
#include "base/log.h"
#include "flows/flows.h"
#include "flows/retention.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_CACHE 64

typedef struct {
    char project_id[32];
    char rev[32];
    int any;      /* an unbound received-message node: every app */
    json_t *apps; /* app ids bound by enabled received-message nodes */
} claim_entry_t;

static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER;
static claim_entry_t claim_cache[CLAIM_CACHE];
static unsigned claim_next;

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* Fill any/apps from a flows.json array. */
static void scan(const json_t *flows, int *any, json_t *apps)
{
    json_t *disabled_tabs = json_object(), *config_app = json_object();
    size_t i;
    json_t *n;
    json_array_foreach(flows, i, n)
    {
        if (strcmp(str(n, "type"), "tab") == 0 && json_is_true(json_object_get(n, "disabled")))
            json_object_set_new(disabled_tabs, str(n, "id"), json_true());
        if (strcmp(str(n, "type"), "sinch-convapi-configuration") == 0)
            json_object_set_new(config_app, str(n, "id"), json_string(str(n, "appId")));
    }
    json_array_foreach(flows, i, n)
    {
        if (strcmp(str(n, "type"), "sinch-received-message") != 0) continue;
        if (json_is_true(json_object_get(n, "d"))) continue;
        if (json_object_get(disabled_tabs, str(n, "z"))) continue;
        const char *app =
            json_string_value(json_object_get(config_app, str(n, "convapiConfiguration")));
        if (!app || !*app)
            *any = 1;
        else
            json_array_append_new(apps, json_string(app));
    }
    json_decref(disabled_tabs);
    json_decref(config_app);
}

static int answer(const claim_entry_t *c, const char *app_id)
{
    if (c->any) return 1;
    size_t i;
    json_t *a;
    json_array_foreach(c->apps, i, a) if (strcmp(json_string_value(a), app_id) == 0) return 1;
    return 0;
}

int flows_claims_inbound(const char *project_id, const char *app_id)
{
    char rev[32] = "";
    flows_runtime_rev(project_id, rev);
    pthread_mutex_lock(&claim_mu);
    for (int i = 0; i < CLAIM_CACHE; i++) {
        claim_entry_t *c = &claim_cache[i];
        if (rev[0] && strcmp(c->project_id, project_id) == 0 && strcmp(c->rev, rev) == 0) {
            int r = answer(c, app_id);
            pthread_mutex_unlock(&claim_mu);
            return r;
        }
    }
    pthread_mutex_unlock(&claim_mu);

    store_t *s = flows_store();
    err_t e;
    store_conn_t *conn = s ? store_conn(s, &e) : NULL;
    if (!conn) return 0;
    char *text = NULL;
    char deployed[32] = "";
    if (flows_export(conn, project_id, &text, deployed, &e) < 0) {
        log_kv(LOG_WARN, "flows claim: cannot read the deployed flows", "project", project_id,
               "error", e.message);
        return 0;
    }
    json_t *flows = json_loads(text, 0, NULL);
    free(text);
    claim_entry_t fresh = {.apps = json_array()};
    if (json_is_array(flows)) scan(flows, &fresh.any, fresh.apps);
    json_decref(flows);
    int r = answer(&fresh, app_id);
    if (!deployed[0]) {
        json_decref(fresh.apps);
        return r;
    }
    snprintf(fresh.project_id, sizeof fresh.project_id, "%s", project_id);
    snprintf(fresh.rev, sizeof fresh.rev, "%s", deployed);
    pthread_mutex_lock(&claim_mu);
    claim_entry_t *slot = NULL;
    for (int i = 0; i < CLAIM_CACHE && !slot; i++)
        if (strcmp(claim_cache[i].project_id, project_id) == 0) slot = &claim_cache[i];
    if (!slot) slot = &claim_cache[claim_next++ % CLAIM_CACHE];
    json_decref(slot->apps);
    *slot = fresh;
    pthread_mutex_unlock(&claim_mu);
    return r;
}

int flows_gdpr_anonymize(store_conn_t *c, const char *project_id, const char *contact_id, err_t *e)
{
    if (store_exec(c, e,
                   "DELETE FROM flows_context WHERE project_id = $1 AND (instr(key, $2) > 0 OR "
                   "instr(owner, $2) > 0 OR instr(value, $2) > 0)",
                   "ss", project_id, contact_id) < 0)
        return -1;
    /* Waiting conversations and queued inbound messages keep their place, stripped of the
     * person (the same rule as the 30-day retention step). */
    return flows_retention_forget_contact(c, project_id, contact_id, e);
}

void flows_claim_cleanup(void)
{
    pthread_mutex_lock(&claim_mu);
    for (int i = 0; i < CLAIM_CACHE; i++) {
        json_decref(claim_cache[i].apps);
        memset(&claim_cache[i], 0, sizeof claim_cache[i]);
    }
    pthread_mutex_unlock(&claim_mu);
}
