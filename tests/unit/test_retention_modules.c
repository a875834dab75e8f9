/* test_retention_modules.c: the contact center's and Flows' retention steps on a real
 * store (src/contact/retention.c, src/flows/retention.c): small batches converge (the
 * sweeper calls a step until it answers 0), each project follows its own settings, only
 * closed conversations are touched, events keep stats, the settings patch merges and
 * refuses bad values without writing; Flows' msg stripping reaches every depth. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "contact/retention.h"
#include "flows/retention.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY (86400LL * 1000)
#define T0  (1900000000000LL) /* 2030-03-17 */

typedef struct {
    char dir[64];
    store_t *s;
    store_conn_t *c;
} fx_t;

static void exec(store_conn_t *c, const char *sql)
{
    err_t e = {0};
    if (store_exec_script(c, sql, &e) < 0) fail_msg("%s: %s", sql, e.message);
}

static char *text(store_conn_t *c, const char *sql)
{
    err_t e = {0};
    store_stmt_t *st = store_query(c, &e, sql, "");
    if (!st || store_step(st, &e) != 1) fail_msg("%s: %s", sql, e.message);
    char *t = strdup(store_col_text(st, 0));
    store_done(st);
    return t;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->dir, "retmod") < 0 || !(f->s = fx_store_open(f->dir, &f->c))) return -1;
    exec(f->c, "INSERT INTO projects (id, name, created_at) VALUES ('PA', 'a', 0), ('PB', 'b', 0)");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    int rc = fx_rmdir(f->dir);
    free(f);
    return rc;
}

/* Run a step with batches of `limit` until it answers 0; returns the total. */
static int64_t run(fx_t *f, int64_t (*step)(store_conn_t *, int64_t, int, err_t *), int64_t now,
                   int limit)
{
    err_t e = {0};
    int64_t total = 0, n;
    int calls = 0;
    while ((n = step(f->c, now, limit, &e)) > 0) {
        assert_true(n <= limit);
        total += n;
        assert_true(++calls < 1000);
    }
    if (n < 0) fail_msg("step: %s", e.message);
    return total;
}

static void conv(fx_t *f, const char *id, const char *project, const char *status,
                 int64_t closed_at, const char *wrap)
{
    char closed[32], wrap_sql[64], sql[1024];
    if (closed_at)
        snprintf(closed, sizeof closed, "%lld", (long long)closed_at);
    else
        snprintf(closed, sizeof closed, "NULL");
    if (wrap)
        snprintf(wrap_sql, sizeof wrap_sql, "'%s'", wrap);
    else
        snprintf(wrap_sql, sizeof wrap_sql, "NULL");
    snprintf(sql, sizeof sql,
             "INSERT INTO contact_conversations (id, project_id, conversation_id, contact_id, "
             "app_id, channel, category_id, source, status, agent_id, queued_at, closed_at, "
             "wrap_up, created_at) VALUES ('%s', '%s', 'CV%s', 'CT%s', 'APP', 'SMS', 'CAT', "
             "'inbound', '%s', 'AGENT', %lld, %s, %s, %lld);"
             "INSERT INTO contact_notes (id, project_id, conversation_id, author, text, "
             "created_at) VALUES ('N%s', '%s', '%s', 'user:AGENT', 'secret note', %lld);",
             id, project, id, id, status, (long long)(T0 - DAY), closed, wrap_sql,
             (long long)(T0 - DAY), id, project, id, (long long)T0);
    exec(f->c, sql);
}

static void test_contact_conversations_per_project(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    /* PB: anonymize after 10 days, delete after 20. PA: the defaults (90, 365). */
    json_t *v = json_pack("{s:i, s:i}", "anonymize_after_days", 10, "delete_after_days", 20);
    assert_int_equal(contact_retention_settings_patch(f->c, "PB", v, &e), 0);
    json_decref(v);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "A%d", i);
        conv(f, id, "PA", "closed", T0, "wrap text");
        snprintf(id, sizeof id, "B%d", i);
        conv(f, id, "PB", "closed", T0, i % 2 ? NULL : "wrap text");
    }
    conv(f, "BOPEN", "PB", "active", 0, NULL);

    assert_int_equal(run(f, contact_retention_anonymize, T0 + 9 * DAY, 2), 0);
    assert_int_equal(run(f, contact_retention_anonymize, T0 + 11 * DAY, 2), 5);
    assert_int_equal(fx_count(f->c,
                              "SELECT count(*) FROM contact_conversations WHERE project_id = "
                              "'PB' AND conversation_id = '[anonymized]' AND contact_id = "
                              "'[anonymized]' AND agent_id = 'AGENT' AND closed_at IS NOT NULL"),
                     5);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_conversations WHERE wrap_up = "
                                    "'[anonymized]'"),
                     3);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_conversations WHERE project_id = "
                                    "'PB' AND wrap_up IS NULL"),
                     3); /* B1, B3 and the open one */
    assert_int_equal(
        fx_count(f->c, "SELECT count(*) FROM contact_notes WHERE text = 'secret note'"),
        6); /* PA's five and the open one's */
    assert_int_equal(run(f, contact_retention_anonymize, T0 + 11 * DAY, 2), 0);

    assert_int_equal(run(f, contact_retention_delete, T0 + 19 * DAY, 3), 0);
    assert_int_equal(run(f, contact_retention_delete, T0 + 21 * DAY, 3), 5);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_conversations WHERE project_id = "
                                    "'PB'"),
                     1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_notes WHERE project_id = 'PB'"),
                     1);
    /* PA on its defaults; the open one never. */
    assert_int_equal(run(f, contact_retention_anonymize, T0 + 89 * DAY, 500), 0);
    assert_int_equal(run(f, contact_retention_anonymize, T0 + 91 * DAY, 500), 5);
    assert_int_equal(run(f, contact_retention_delete, T0 + 364 * DAY, 500), 0);
    assert_int_equal(run(f, contact_retention_delete, T0 + 366 * DAY, 500), 5);
    assert_int_equal(run(f, contact_retention_delete, T0 + 5000 * DAY, 500), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_conversations"), 1);
}

static void test_contact_events_and_audit(void **state)
{
    fx_t *f = *state;
    char sql[512];
    for (int i = 0; i < 7; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO contact_events (project_id, user_id, kind, data, created_at) VALUES "
                 "('PA', 'U', '%s', '%s', %lld);"
                 "INSERT INTO contact_audit (id, project_id, at, actor, action, subject, "
                 "attribute, new_value) VALUES ('AU%d', 'PA', %lld, 'system', 'update', 'CT', "
                 "'display_name', 'Ada');",
                 i == 0   ? "stats"
                 : i == 1 ? "closed"
                          : "message",
                 i == 0   ? "{\"waiting\":3}"
                 : i == 1 ? "{\"conversation\":{\"id\":\"K1\",\"contact_id\":\"CT\"}}"
                          : "{\"conversation_id\":\"K1\",\"message\":{\"text\":\"hi\"}}",
                 (long long)T0, i, (long long)T0);
        exec(f->c, sql);
    }
    assert_int_equal(run(f, contact_retention_events, T0 + 89 * DAY, 2), 0);
    assert_int_equal(run(f, contact_retention_events, T0 + 91 * DAY, 2), 6);
    char *t = text(f->c, "SELECT data FROM contact_events WHERE kind = 'closed'");
    assert_string_equal(t, "{\"anonymized\":true,\"conversation_id\":\"K1\"}");
    free(t);
    t = text(f->c, "SELECT data FROM contact_events WHERE kind = 'stats'");
    assert_string_equal(t, "{\"waiting\":3}");
    free(t);
    assert_int_equal(run(f, contact_retention_events, T0 + 91 * DAY, 2), 0);
    assert_int_equal(run(f, contact_retention_events, T0 + 366 * DAY, 2), 7);

    assert_int_equal(run(f, contact_retention_audit, T0 + 364 * DAY, 3), 0);
    assert_int_equal(run(f, contact_retention_audit, T0 + 366 * DAY, 3), 7);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_audit"), 0);
}

static void test_contact_settings_patch(void **state)
{
    fx_t *f = *state;
    err_t e = {0};
    json_t *bad[] = {
        json_pack("{s:i}", "anonymize_after_days", 0),
        json_pack("{s:i}", "anonymize_after_days", 366),
        json_pack("{s:i}", "audit_keep_days", 3651),
        json_pack("{s:s}", "delete_after_days", "x"),
        json_pack("{s:i}", "other", 1),
        json_pack("[i]", 1),
    };
    const char *msgs[] = {"anonymize_after_days must be between 1 and 3650",
                          "(366) must not exceed delete_after_days (365)",
                          "audit_keep_days must be between 1 and 3650",
                          "contact_center_retention.delete_after_days",
                          "unknown field \"contact_center_retention.other\"",
                          "must be an object"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(contact_retention_settings_patch(f->c, "PA", bad[i], &e), -1);
        assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
        if (!strstr(e.message, msgs[i])) fail_msg("%zu: %s", i, e.message);
        json_decref(bad[i]);
    }
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM contact_retention_settings"), 0);
    json_t *v = json_pack("{s:i}", "audit_keep_days", 30);
    assert_int_equal(contact_retention_settings_patch(f->c, "PA", v, &e), 0);
    json_decref(v);
    v = json_pack("{s:i, s:i}", "delete_after_days", 40, "anonymize_after_days", 40);
    assert_int_equal(contact_retention_settings_patch(f->c, "PA", v, &e), 0);
    json_decref(v);
    json_t *got = contact_retention_settings_get(f->c, "PA", &e);
    char *s = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(
        s, "{\"anonymize_after_days\":40,\"audit_keep_days\":30,\"delete_after_days\":40}");
    free(s);
    json_decref(got);
}

static void test_flows_strip(void **state)
{
    (void)state;
    json_t *m = json_loads(
        "{\"payload\":\"hi\",\"contact\":{\"contactId\":\"C\",\"channelIdentities\":[{"
        "\"channel\":\"SMS\",\"identity\":\"+46\"}]},\"lastResponse\":{\"message\":{"
        "\"contact_id\":\"C\",\"conversation_id\":\"V\",\"channel_identity\":{\"identity\":"
        "\"+46\"}},\"list\":[{\"conversationId\":\"V\",\"keep\":1}]},\"topic\":\"t\"}",
        0, NULL);
    assert_non_null(m);
    assert_int_equal(flows_retention_strip(m), 6);
    char *s = json_dumps(m, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(s, "{\"contact\":{},\"lastResponse\":{\"list\":[{\"keep\":1}],\"message\":{"
                           "}},\"payload\":\"hi\",\"topic\":\"t\"}");
    free(s);
    json_decref(m);
}

static void test_flows_steps(void **state)
{
    fx_t *f = *state;
    char sql[768];
    for (int i = 0; i < 3; i++) {
        snprintf(
            sql, sizeof sql,
            "INSERT INTO flows_waits (id, project_id, app_id, contact_id, conversation_id, "
            "node_id, msg, expires_at, created_at) VALUES ('W%d', 'PA', 'APP', 'CT%d', 'CV%d', "
            "'n1', '{\"payload\":\"x\",\"contact\":{\"contactId\":\"CT%d\"}}', %lld, %lld);"
            "INSERT INTO flows_inbox (id, project_id, kind, node_id, msg, created_at) VALUES "
            "('I%d', 'PB', 'inbound', '', '{\"lastResponse\":{\"conversationId\":\"CV\"}}', "
            "%lld);"
            "INSERT INTO flows_handovers (project_id, conversation_id, created_at) VALUES "
            "('PA', 'CV%d', %lld);",
            i, i, i, i, (long long)(T0 + DAY), (long long)T0, i, (long long)T0, i, (long long)T0);
        exec(f->c, sql);
    }
    assert_int_equal(run(f, flows_retention_anonymize, T0 + 29 * DAY, 2), 0);
    /* The DPO hook: one contact's wait at once, no one else's. */
    err_t e = {0};
    assert_int_equal(flows_retention_forget_contact(f->c, "PA", "CT1", &e), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM flows_waits WHERE contact_id = "
                                    "'[anonymized]:W1' AND instr(msg, 'CT1') = 0"),
                     1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM flows_waits WHERE contact_id LIKE 'CT%'"),
                     2);
    assert_int_equal(run(f, flows_retention_anonymize, T0 + 31 * DAY, 2), 5);
    assert_int_equal(
        fx_count(f->c, "SELECT count(*) FROM flows_waits WHERE contact_id = "
                       "'[anonymized]:' || id AND conversation_id = '' AND instr(msg, 'CT') = 0 "
                       "AND msg LIKE '%\"_anonymized\":true%'"),
        3);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM flows_inbox WHERE instr(msg, 'CV') > 0"),
                     0);
    assert_int_equal(run(f, flows_retention_anonymize, T0 + 200 * DAY, 2), 0);
    assert_int_equal(run(f, flows_retention_delete, T0 + 364 * DAY, 2), 0);
    assert_int_equal(run(f, flows_retention_delete, T0 + 366 * DAY, 2), 9);
    assert_int_equal(fx_count(f->c, "SELECT (SELECT count(*) FROM flows_waits) + (SELECT count(*) "
                                    "FROM flows_inbox) + (SELECT count(*) FROM flows_handovers)"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_contact_conversations_per_project, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_events_and_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_settings_patch, setup, teardown),
        cmocka_unit_test(test_flows_strip),
        cmocka_unit_test_setup_teardown(test_flows_steps, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
