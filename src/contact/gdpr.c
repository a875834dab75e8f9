/* gdpr.c: DPO search and anonymize (gdpr.h), and the registry of anonymize hooks that
 * other modules with personal data join. */
#include "contact/gdpr.h"
#include "contact/audit.h"
#include "convo/anonymize.h"

#include <string.h>

#define HOOKS_MAX 16
static contact_anonymize_fn hooks[HOOKS_MAX];
static int nhooks;

void contact_anonymize_register(contact_anonymize_fn fn)
{
    for (int i = 0; i < nhooks; i++)
        if (hooks[i] == fn) return;
    if (nhooks < HOOKS_MAX) hooks[nhooks++] = fn;
}

json_t *contact_gdpr_search(const convo_ctx_t *cx, const char *field, const char *value, err_t *e)
{
    static const char *const names[] = {"phone", "email", "name", "identity", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(field, names[i]) == 0)
            return convo_person_find(cx, (convo_find_kind_t)i, value, e);
    err_set(e, ERR_INVALID_ARGUMENT,
            "unknown search field \"%.32s\": use phone, email, name or identity", field);
    return NULL;
}

json_t *contact_gdpr_anonymize(const convo_ctx_t *cx, const char *contact_id, err_t *e)
{
    if (store_begin(cx->conn, e) < 0) return NULL;
    json_t *r = convo_contact_anonymize(cx, contact_id, e);
    if (!r) goto fail;
    const char *id = json_string_value(json_object_get(r, "contact_id"));
    for (int i = 0; i < nhooks; i++)
        if (hooks[i](cx->conn, cx->project_id, id, e) < 0) goto fail;
    if (contact_audit_redact(cx->conn, cx->project_id, id, cx->actor ? cx->actor : "system", e) <
            0 ||
        contact_audit_write(cx->conn, cx->project_id, cx->actor, "anonymize", id, "*",
                            CONTACT_AUDIT_ANONYMIZED, e) < 0 ||
        store_commit(cx->conn, e) < 0)
        goto fail;
    return r;
fail:
    json_decref(r);
    store_rollback(cx->conn);
    return NULL;
}
