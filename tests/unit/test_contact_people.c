/* test_contact_people.c: the contact center's people rules on a real SQLite store, with
 * time passed in: password policy, CSRF tokens, session idle/absolute expiry and logout,
 * login answers and failed-login limits, invitation expiry and single use, the CSV reader
 * and writer, and the audit consumer's diffing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "base/buf.h"
#include "base/sec.h"
#include "contact/audit.h"
#include "contact/gdpr.h"
#include "contact/people.h"
#include "store/store.h"
#include "tenant/tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char root[64];
    store_t *store;
    store_conn_t *c;
    tenant_init_t init;
} fx_t;

static const contact_login_opts_t OPTS = {
    .idle_ms = 60000, .max_ms = 600000, .failures = 5, .window_ms = 900000};
#define T0 1800000000000LL

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->root, "people") < 0 || sec_init() < 0 ||
        !(f->store = fx_store_open(f->root, &f->c)))
        return -1;
    err_t e = {0};
    if (tenant_init(f->c, &f->init, &e) != 1) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->store);
    int rc = fx_rmdir(f->root);
    free(f);
    return rc;
}

/* ---- passwords and CSRF (no store) ---- */

static void test_password_policy(void **state)
{
    (void)state;
    err_t e = {0};
    assert_int_equal(contact_password_check("123456789", &e), -1);
    assert_non_null(strstr(e.message, "too short: 9 characters, at least 10"));
    assert_int_equal(contact_password_check(NULL, &e), -1);
    assert_int_equal(contact_password_check("1234567890", &e), 0);
    /* Characters, not bytes: 9 two-byte characters are too short, 10 are enough. */
    assert_int_equal(contact_password_check("äöüäöüäöü", &e), -1);
    assert_int_equal(contact_password_check("äöüäöüäöüä", &e), 0);
    assert_int_equal(contact_password_check("aaaaaaaaaaaa", &e), -1);
    assert_non_null(strstr(e.message, "one character"));
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[0] = 'y';
    assert_int_equal(contact_password_check(big, &e), -1);
    assert_non_null(strstr(e.message, "too long"));
}

static void test_csrf_tokens(void **state)
{
    (void)state;
    char a[CONTACT_TOKEN_MAX], a2[CONTACT_TOKEN_MAX], b[CONTACT_TOKEN_MAX];
    contact_csrf_token("session-one", a);
    contact_csrf_token("session-one", a2);
    contact_csrf_token("session-two", b);
    assert_string_equal(a, a2);
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 43);
    assert_int_equal(contact_csrf_valid("session-one", a), 1);
    assert_int_equal(contact_csrf_valid("session-two", a), 0); /* stale: another session's */
    assert_int_equal(contact_csrf_valid("session-one", NULL), 0);
    assert_int_equal(contact_csrf_valid("session-one", ""), 0);
    a2[42] = a2[42] == 'A' ? 'B' : 'A';
    assert_int_equal(contact_csrf_valid("session-one", a2), 0);
    char longer[CONTACT_TOKEN_MAX + 2];
    snprintf(longer, sizeof longer, "%sx", a);
    assert_int_equal(contact_csrf_valid("session-one", longer), 0);
    /* A token far longer than Parley issues (a forged cookie) is handled, never valid twice. */
    char huge[300];
    memset(huge, 'z', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    contact_csrf_token(huge, b);
    assert_int_equal(strlen(b), 43);
    assert_int_equal(contact_csrf_valid(huge, a), 0);
}

/* ---- sessions ---- */

static void login_ok(fx_t *f, int64_t now, char token[CONTACT_TOKEN_MAX])
{
    err_t e = {0};
    contact_user_t u;
    int64_t retry = 0;
    assert_int_equal(contact_login(f->c, &OPTS, "Admin@Parley.Local", f->init.admin_password, NULL,
                                   "10.0.0.1", now, token, &u, &retry, &e),
                     0);
    assert_string_equal(u.role, "admin");
    assert_string_equal(u.project_id, f->init.project_id);
}

static void test_session_idle_and_absolute_expiry(void **state)
{
    fx_t *f = *state;
    char tok[CONTACT_TOKEN_MAX];
    contact_user_t u;
    err_t e = {0};
    login_ok(f, T0, tok);
    /* Each use within the idle window refreshes it... */
    int64_t t = T0;
    for (int i = 0; i < 5; i++) {
        t += OPTS.idle_ms - 1;
        assert_int_equal(contact_session_resolve(f->c, &OPTS, tok, t, &u, &e), 0);
        assert_string_equal(u.email, "admin@parley.local");
    }
    /* ...until the absolute lifetime ends it, however busy. */
    assert_int_equal(contact_session_resolve(f->c, &OPTS, tok, T0 + OPTS.max_ms, &u, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_non_null(strstr(e.message, "sessions last at most 600 s"));

    /* A session not used for idle_ms is over. */
    login_ok(f, T0, tok);
    assert_int_equal(contact_session_resolve(f->c, &OPTS, tok, T0 + OPTS.idle_ms, &u, &e), -1);
    assert_non_null(strstr(e.message, "after 60 s without use"));

    /* Logout ends it; a forged token is unknown. */
    login_ok(f, T0, tok);
    assert_int_equal(contact_session_end(f->c, tok, T0 + 10, &e), 0);
    assert_int_equal(contact_session_resolve(f->c, &OPTS, tok, T0 + 20, &u, &e), -1);
    assert_non_null(strstr(e.message, "has ended"));
    assert_int_equal(contact_session_resolve(f->c, &OPTS, "forged", T0 + 20, &u, &e), -1);
    assert_non_null(strstr(e.message, "unknown session token"));
}

static void test_login_answers_and_rate_limit(void **state)
{
    fx_t *f = *state;
    char tok[CONTACT_TOKEN_MAX], unknown_msg[480];
    contact_user_t u;
    err_t e = {0};
    int64_t retry = 0;
    assert_int_equal(contact_login(f->c, &OPTS, "nobody@x.y", "some password", NULL, "10.0.0.2", T0,
                                   tok, &u, &retry, &e),
                     -1);
    snprintf(unknown_msg, sizeof unknown_msg, "%s", e.message);
    assert_int_equal(contact_login(f->c, &OPTS, "admin@parley.local", "bad password", NULL,
                                   "10.0.0.3", T0, tok, &u, &retry, &e),
                     -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_string_equal(e.message, unknown_msg); /* no oracle */
    /* Four more for the email (from other addresses): the fifth trips the limit. */
    for (int i = 0; i < 4; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.0.1.%d", i);
        assert_int_equal(contact_login(f->c, &OPTS, "admin@parley.local", "bad password", NULL, ip,
                                       T0 + 1000 * (i + 1), tok, &u, &retry, &e),
                         -1);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    }
    assert_int_equal(contact_login(f->c, &OPTS, "admin@parley.local", f->init.admin_password, NULL,
                                   "10.0.9.9", T0 + 10000, tok, &u, &retry, &e),
                     -1);
    assert_int_equal(e.code, ERR_RESOURCE_EXHAUSTED);
    assert_int_equal(retry, 890); /* the oldest failure (T0) leaves the window at T0 + 900 s */
    /* Once the window has passed, the right password works again. */
    login_ok(f, T0 + 1000 * 1000, tok);

    /* Deactivated users get the same answer as a wrong password. */
    err_t e2 = {0};
    char uid[ULID_LEN + 1];
    assert_int_equal(tenant_user_create(f->c, f->init.project_id, "agent@x.y", "agent password",
                                        "agent", uid, &e2),
                     0);
    json_t *body = json_pack("{s:b}", "active", 0);
    json_t *r = contact_user_update(f->c, f->init.project_id, uid, body, T0, &e2);
    assert_non_null(r);
    json_decref(r);
    json_decref(body);
    assert_int_equal(contact_login(f->c, &OPTS, "agent@x.y", "agent password", NULL, "10.0.5.5",
                                   T0 + 2000 * 1000, tok, &u, &retry, &e2),
                     -1);
    assert_string_equal(e2.message, unknown_msg);
}

static void test_invitation_expiry_and_single_use(void **state)
{
    fx_t *f = *state;
    char tok[CONTACT_TOKEN_MAX], tok2[CONTACT_TOKEN_MAX];
    err_t e = {0};
    contact_user_t u;
    json_t *inv = contact_invitation_create(f->c, f->init.project_id, "New@Agent.io", "agent",
                                            "key:K", 60000, T0, tok, &e);
    assert_non_null(inv);
    assert_string_equal(json_string_value(json_object_get(inv, "email")), "new@agent.io");
    json_decref(inv);
    /* Expired at T0 + ttl. */
    assert_int_equal(contact_invitation_accept(f->c, tok, "good password 1", T0 + 60000, &u, &e),
                     -1);
    assert_int_equal(e.code, ERR_FAILED_PRECONDITION);
    assert_non_null(strstr(e.message, "expired"));
    /* Bad password: nothing used up. */
    assert_int_equal(contact_invitation_accept(f->c, tok, "short", T0 + 1, &u, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_int_equal(contact_invitation_accept(f->c, tok, "good password 1", T0 + 59999, &u, &e),
                     0);
    assert_string_equal(u.role, "agent");
    assert_int_equal(contact_invitation_accept(f->c, tok, "good password 1", T0 + 2, &u, &e), -1);
    assert_int_equal(e.code, ERR_NOT_FOUND);
    /* The new user's email cannot be invited again; bad roles are refused. */
    assert_null(contact_invitation_create(f->c, f->init.project_id, "new@agent.io", "dpo", "key:K",
                                          60000, T0, tok2, &e));
    assert_int_equal(e.code, ERR_ALREADY_EXISTS);
    assert_null(contact_invitation_create(f->c, f->init.project_id, "x@agent.io", "root", "key:K",
                                          60000, T0, tok2, &e));
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_null(contact_invitation_create(f->c, f->init.project_id, "x y@agent.io", "agent",
                                          "key:K", 60000, T0, tok2, &e));
}

/* ---- CSV ---- */

static void test_csv_parse(void **state)
{
    (void)state;
    const char *s = "\xEF\xBB\xBF"
                    "a,b,c\r\n"
                    "1,\"x, \"\"y\"\"\",\r\n"
                    "\n"
                    "\"multi\nline\",,z\n"
                    "last,row,\"\"";
    contact_csv_t t;
    err_t e = {0};
    assert_int_equal(contact_csv_parse(s, strlen(s), &t, &e), 0);
    assert_int_equal(t.nrows, 4);
    assert_int_equal(t.nfields[0], 3);
    assert_string_equal(t.rows[0][0], "a");
    assert_string_equal(t.rows[1][1], "x, \"y\"");
    assert_string_equal(t.rows[1][2], "");
    assert_string_equal(t.rows[2][0], "multi\nline");
    assert_string_equal(t.rows[2][2], "z");
    assert_int_equal(t.line[2], 4);
    assert_int_equal(t.line[3], 6);
    assert_string_equal(t.rows[3][2], "");
    contact_csv_free(&t);

    const char *unterminated = "a,b\n1,\"open\n2,3\n";
    assert_int_equal(contact_csv_parse(unterminated, strlen(unterminated), &t, &e), -1);
    assert_non_null(strstr(e.message, "line 2: quoted field never closed"));
    const char *after = "a\n\"x\"y\n";
    assert_int_equal(contact_csv_parse(after, strlen(after), &t, &e), -1);
    assert_non_null(strstr(e.message, "line 2: unexpected text after a closing quote"));
    const char *inner = "a\nx\"y\n";
    assert_int_equal(contact_csv_parse(inner, strlen(inner), &t, &e), -1);
    assert_non_null(strstr(e.message, "a quote inside an unquoted field"));
    assert_int_equal(contact_csv_parse("", 0, &t, &e), 0);
    assert_int_equal(t.nrows, 0);
    contact_csv_free(&t);
}

static void test_csv_write_and_identities(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    contact_csv_field(&b, "plain");
    buf_puts(&b, "|");
    contact_csv_field(&b, "a,\"b\"\nc");
    buf_puts(&b, "|");
    contact_csv_field(&b, " lead");
    buf_puts(&b, "|");
    contact_csv_field(&b, NULL);
    assert_string_equal(b.data, "plain|\"a,\"\"b\"\"\nc\"|\" lead\"|");
    /* What the writer writes, the reader reads back. */
    contact_csv_t t;
    err_t e = {0};
    buf_reset(&b);
    contact_csv_field(&b, "a,\"b\"\nc");
    buf_puts(&b, ",x\n");
    assert_int_equal(contact_csv_parse(b.data, b.len, &t, &e), 0);
    assert_string_equal(t.rows[0][0], "a,\"b\"\nc");
    contact_csv_free(&t);
    buf_free(&b);

    json_t *ids = contact_csv_identities("SMS:+4670;MESSENGER@01APP:psid\\;1;TELEGRAM:a\\\\b", &e);
    assert_non_null(ids);
    assert_int_equal(json_array_size(ids), 3);
    json_t *m = json_array_get(ids, 1);
    assert_string_equal(json_string_value(json_object_get(m, "channel")), "MESSENGER");
    assert_string_equal(json_string_value(json_object_get(m, "app_id")), "01APP");
    assert_string_equal(json_string_value(json_object_get(m, "identity")), "psid;1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ids, 2), "identity")),
                        "a\\b");
    json_decref(ids);
    ids = contact_csv_identities("", &e);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);
    assert_null(contact_csv_identities("SMS:+4670;nocolon", &e));
    assert_non_null(strstr(e.message, "identity 2 \"nocolon\""));
    assert_null(contact_csv_identities(":x", &e));
    assert_null(contact_csv_identities("SMS:", &e));
}

/* ---- the audit consumer ---- */

static int64_t audit_count(fx_t *f, const char *attr, const char *value)
{
    err_t e = {0};
    store_stmt_t *st = store_query(
        f->c, &e, "SELECT COUNT(*) FROM contact_audit WHERE attribute = $1 AND new_value = $2",
        "ss", attr, value);
    assert_non_null(st);
    assert_int_equal(store_step(st, &e), 1);
    int64_t n = store_col_int(st, 0);
    store_done(st);
    return n;
}

static void feed(fx_t *f, const char *kind, const char *payload, int64_t at)
{
    err_t e = {0};
    stream_event_t ev = {.seq = 1,
                         .project_id = "P1",
                         .app_id = "",
                         .kind = kind,
                         .actor = "key:K1",
                         .payload_text = payload,
                         .created_at = at};
    assert_non_null(json_object_size(stream_event_payload(&ev)) ? ev.parsed : NULL);
    assert_int_equal(contact_audit_handle(f->c, &ev, NULL, &e), 0);
    json_decref(ev.parsed);
}

/* Events from long ago: before any anonymization made now. */
#define AT 1000000LL

static void test_audit_diffs(void **state)
{
    fx_t *f = *state;
    feed(f, "CONTACT_CREATE",
         "{\"contact_create_notification\":{\"contact\":{\"id\":\"C1\",\"display_name\":\"Ann\","
         "\"email\":\"ann@x.y\",\"language\":\"UNSPECIFIED\",\"metadata\":\"\","
         "\"channel_identities\":[{\"channel\":\"SMS\",\"identity\":\"+461\"}]}}}",
         AT);
    assert_int_equal(audit_count(f, "display_name", "Ann"), 1);
    assert_int_equal(audit_count(f, "channel_identities", "SMS:+461"), 1);
    assert_int_equal(audit_count(f, "language", ""), 0); /* UNSPECIFIED = empty: not logged */
    feed(f, "CONTACT_UPDATE",
         "{\"contact_update_notification\":{\"contact\":{\"id\":\"C1\",\"display_name\":\"Ann\","
         "\"email\":\"ann@new.y\",\"channel_identities\":[{\"channel\":\"SMS\",\"identity\":\"+"
         "461\"}]}}}",
         AT + 1);
    assert_int_equal(audit_count(f, "email", "ann@new.y"), 1);
    assert_int_equal(audit_count(f, "display_name", "Ann"), 1); /* unchanged: no new row */
    feed(f, "MESSAGE_INBOUND", "{\"message\":{\"id\":\"M1\",\"contact_id\":\"C1\"}}", AT + 2);
    assert_int_equal(audit_count(f, "transcript", "inbound message M1"), 1);

    /* Redact: past values blanked; events from before the anonymization stay blank. */
    err_t e = {0};
    assert_int_equal(contact_audit_redact(f->c, "P1", "C1", "user:D", &e), 0);
    assert_int_equal(audit_count(f, "display_name", "Ann"), 0);
    assert_int_equal(audit_count(f, "email", "ann@new.y"), 0);
    assert_int_equal(audit_count(f, "transcript", "inbound message M1"), 1);
    feed(f, "CONTACT_UPDATE",
         "{\"contact_update_notification\":{\"contact\":{\"id\":\"C1\",\"display_name\":\"Ann "
         "Late\"}}}",
         AT + 3);
    assert_int_equal(audit_count(f, "display_name", "Ann Late"), 0);
    assert_int_equal(audit_count(f, "display_name", CONTACT_AUDIT_ANONYMIZED) >= 1, 1);

    feed(f, "CONTACT_DELETE", "{\"contact_delete_notification\":{\"contact\":{\"id\":\"C1\"}}}",
         AT + 4);
    assert_int_equal(audit_count(f, "*", CONTACT_AUDIT_DELETED), 1);

    /* Search: newest first, filters, paging. */
    contact_audit_query_t q = {.subject = "C1", .page_size = "2"};
    json_t *r = contact_audit_search(f->c, "P1", &q, &e);
    assert_non_null(r);
    json_t *entries = json_object_get(r, "entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "attribute")),
                        "*");
    assert_string_not_equal(json_string_value(json_object_get(r, "next_page_token")), "");
    json_decref(r);
    q.page_size = "0";
    assert_null(contact_audit_search(f->c, "P1", &q, &e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_policy),
        cmocka_unit_test(test_csrf_tokens),
        cmocka_unit_test_setup_teardown(test_session_idle_and_absolute_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_answers_and_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invitation_expiry_and_single_use, setup, teardown),
        cmocka_unit_test(test_csv_parse),
        cmocka_unit_test(test_csv_write_and_identities),
        cmocka_unit_test_setup_teardown(test_audit_diffs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
