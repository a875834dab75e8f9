/* test_auth.c: bearer tokens (issue/check) and tenant access keys on a real SQLite store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "api/api.h"
#include "base/clock.h"
#include "base/sec.h"
#include "base/ulid.h"
#include "store/store.h"
#include "tenant/tenant.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle)))                                                              \
            fail_msg("expected \"%s\" to contain \"%s\"", (hay), (needle));                        \
    } while (0)

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- tokens ---- */

typedef struct {
    uint8_t key[32];
    char key_id[ULID_LEN + 1], project_id[ULID_LEN + 1];
    int64_t now;
    char token[512];
} tok_fx_t;

static int tok_setup(void **state)
{
    tok_fx_t *f = calloc(1, sizeof *f);
    sec_random(f->key, sizeof f->key);
    ulid_new(f->key_id);
    ulid_new(f->project_id);
    f->now = clock_now_ms();
    if (api_token_issue(f->key, f->key_id, f->project_id, f->now + 3600 * 1000, f->token,
                        sizeof f->token) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int tok_teardown(void **state)
{
    free(*state);
    return 0;
}

static int check(const tok_fx_t *f, const uint8_t key[32], const char *token, int64_t now, err_t *e)
{
    (void)f;
    char kid[27] = "", pid[27] = "";
    return api_token_check(key, token, now, kid, pid, e);
}

static void test_token_round_trip(void **state)
{
    tok_fx_t *f = *state;
    assert_memory_equal(f->token, "pt1.", 4);
    char kid[27] = "", pid[27] = "";
    err_t e = {0};
    assert_int_equal(api_token_check(f->key, f->token, f->now, kid, pid, &e), 0);
    assert_string_equal(kid, f->key_id);
    assert_string_equal(pid, f->project_id);
    /* still valid one ms before expiry */
    assert_int_equal(check(f, f->key, f->token, f->now + 3600 * 1000 - 1, &e), 0);

    /* two tokens for different keys differ and each carries its own ids */
    char other_kid[27], tok2[512];
    ulid_new(other_kid);
    assert_int_equal(
        api_token_issue(f->key, other_kid, f->project_id, f->now + 1000, tok2, sizeof tok2), 0);
    assert_string_not_equal(tok2, f->token);
    assert_int_equal(api_token_check(f->key, tok2, f->now, kid, pid, &e), 0);
    assert_string_equal(kid, other_kid);
}

static void test_token_issue_small_buffer(void **state)
{
    tok_fx_t *f = *state;
    char small[16];
    assert_int_equal(
        api_token_issue(f->key, f->key_id, f->project_id, f->now + 1000, small, sizeof small), -1);
}

static void test_token_expired(void **state)
{
    tok_fx_t *f = *state;
    err_t e = {0};
    char tok[512];
    assert_int_equal(api_token_issue(f->key, f->key_id, f->project_id, f->now - 1, tok, sizeof tok),
                     0);
    assert_int_equal(check(f, f->key, tok, f->now, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_contains(e.message, "expired");

    /* the expiry instant itself is expired */
    err_clear(&e);
    assert_int_equal(check(f, f->key, f->token, f->now + 3600 * 1000, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_contains(e.message, "expired");
}

static void test_token_tampered_anywhere(void **state)
{
    tok_fx_t *f = *state;
    size_t len = strlen(f->token);
    char tok[sizeof f->token + 8];
    for (size_t i = 0; i < len; i++) {
        strcpy(tok, f->token);
        tok[i] = tok[i] == 'A' ? 'B' : 'A';
        err_t e = {0};
        if (check(f, f->key, tok, f->now, &e) != -1)
            fail_msg("token altered at %zu accepted: %s", i, tok);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
        assert_null(strstr(e.message, "expired"));
    }
    /* every other character at the last position of the mac (its low bits are padding) */
    for (const char *c = b64url_alphabet; *c; c++) {
        strcpy(tok, f->token);
        if (tok[len - 1] == *c) continue;
        tok[len - 1] = *c;
        err_t e = {0};
        if (check(f, f->key, tok, f->now, &e) != -1) fail_msg("mac tail %c accepted", *c);
    }
    /* truncated or extended */
    strcpy(tok, f->token);
    tok[len - 1] = '\0';
    assert_int_equal(check(f, f->key, tok, f->now, NULL), -1);
    strcpy(tok, f->token);
    strcat(tok, "A");
    assert_int_equal(check(f, f->key, tok, f->now, NULL), -1);
    strcpy(tok, f->token);
    strcat(tok, ".x");
    assert_int_equal(check(f, f->key, tok, f->now, NULL), -1);
}

static void test_token_forged_payload(void **state)
{
    tok_fx_t *f = *state;
    /* keep the genuine mac, swap in a payload with a later expiry */
    const char *mac = strrchr(f->token, '.');
    char payload[128], p64[192], tok[512];
    int n = snprintf(payload, sizeof payload, "%s:%s:%lld", f->key_id, f->project_id,
                     (long long)(f->now + 86400000LL * 365));
    assert_true(sec_b64url_encode(payload, (size_t)n, p64, sizeof p64) > 0);
    snprintf(tok, sizeof tok, "pt1.%s%s", p64, mac);
    err_t e = {0};
    assert_int_equal(check(f, f->key, tok, f->now, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_contains(e.message, "invalid");
}

static void test_token_wrong_key(void **state)
{
    tok_fx_t *f = *state;
    uint8_t other[32];
    memcpy(other, f->key, sizeof other);
    other[31] ^= 1;
    err_t e = {0};
    assert_int_equal(check(f, other, f->token, f->now, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_contains(e.message, "invalid");
}

/* A token whose MAC is right (made with the key) but whose payload is not
 * key_id:project_id:expiry must be refused, not crash or be misread. */
static void test_token_well_signed_bad_payload(void **state)
{
    tok_fx_t *f = *state;
    char pay_short_kid[128];
    snprintf(pay_short_kid, sizeof pay_short_kid, "%.25s:%s:%lld", f->key_id, f->project_id,
             (long long)(f->now + 100000));
    const char *payloads[] = {pay_short_kid, "no colons at all", "::", "a:b:c:d", "x"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        uint8_t mac[SEC_HMAC_LEN];
        char p64[192], m64[64], tok[512];
        sec_hmac_sha256(f->key, 32, payloads[i], strlen(payloads[i]), mac);
        sec_b64url_encode(payloads[i], strlen(payloads[i]), p64, sizeof p64);
        sec_b64url_encode(mac, sizeof mac, m64, sizeof m64);
        snprintf(tok, sizeof tok, "pt1.%s.%s", p64, m64);
        err_t e = {0};
        if (check(f, f->key, tok, f->now, &e) != -1) fail_msg("payload %s accepted", payloads[i]);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    }
}

static void test_token_garbage(void **state)
{
    tok_fx_t *f = *state;
    static char huge[20000];
    memset(huge, 'A', sizeof huge - 1);
    memcpy(huge, "pt1.", 4);
    huge[10000] = '.';
    char prefixed[600], other_version[600];
    snprintf(prefixed, sizeof prefixed, " %s", f->token);
    snprintf(other_version, sizeof other_version, "pt2%s", f->token + 3);
    const char *bad[] = {
        "",        "pt1.",      "pt1.x.y", "Bearer",      "Bearer pt1.x.y",
        "pt1..",   "pt1...",    "pt1.abc", "pt1.%%%.%%%", "pt1.=.=",
        "PT1.x.y", "pt1.\n.\n", huge,      prefixed,      other_version,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_t e = {0};
        if (check(f, f->key, bad[i], f->now, &e) != -1) fail_msg("garbage #%zu accepted", i);
        assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    }
}

/* Run fn in a child process so that a sanitizer abort fails this one test, not the binary. */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int issue_with_long_key_id(void)
{
    uint8_t key[32] = {1};
    char kid[200], tok[1024];
    memset(kid, 'K', sizeof kid - 1);
    kid[sizeof kid - 1] = '\0';
    /* must refuse (the payload does not fit), never read past its own buffer */
    return api_token_issue(key, kid, "01HZZZZZZZZZZZZZZZZZZZZZZZ", 1, tok, sizeof tok) == -1 ? 0
                                                                                             : 1;
}

/* BUG (src/api/auth.c:50-52): api_token_issue formats the payload into char[128] with
 * snprintf and then HMACs and base64-encodes `n` bytes, n being the *untruncated* length;
 * with a key_id or project_id longer than ~100 bytes it reads past the stack buffer (inside
 * libsodium, which ASan does not instrument, so only the wrong return value shows) and
 * returns 0 with stack bytes in the token. Fix: `if (n < 0 || (size_t)n >= sizeof payload)
 * return -1;`. Runs in a child process so that a sanitizer abort fails only this test. */
static void test_bug_token_issue_long_ids_no_overread(void **state)
{
    (void)state;
    assert_int_equal(in_child(issue_with_long_key_id), 0);
}

/* ---- tenant on a real store ---- */

typedef struct {
    char dir[64];
    store_t *store;
    store_conn_t *c;
} db_fx_t;

static int db_setup(void **state)
{
    db_fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->dir, "auth") < 0 || !(f->store = fx_store_open(f->dir, &f->c))) return -1;
    *state = f;
    return 0;
}

static int db_teardown(void **state)
{
    db_fx_t *f = *state;
    store_close(f->store);
    int rc = fx_rmdir(f->dir);
    free(f);
    return rc;
}

static void test_tenant_init(void **state)
{
    db_fx_t *f = *state;
    tenant_init_t t;
    err_t e = {0};
    int rc = tenant_init(f->c, &t, &e);
    if (rc != 1) fail_msg("tenant_init: %d %s", rc, e.message);
    assert_true(ulid_valid(t.project_id));
    assert_true(ulid_valid(t.key_id));
    assert_true(strlen(t.key_secret) >= 40); /* 32 random bytes, base64url */
    assert_string_equal(t.admin_email, "admin@parley.local");
    assert_true(strlen(t.admin_password) >= 20);

    assert_int_equal(tenant_project_exists(f->c, t.project_id, &e), 1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM projects"), 1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM access_keys"), 1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM users"), 1);

    /* the admin's password is stored as a verifiable Argon2id hash, not in clear */
    store_stmt_t *st =
        store_query(f->c, &e, "SELECT email, role, password_hash, project_id FROM users", "");
    assert_non_null(st);
    assert_int_equal(store_step(st, &e), 1);
    assert_string_equal(store_col_text(st, 0), "admin@parley.local");
    assert_string_equal(store_col_text(st, 1), "admin");
    const char *hash = store_col_text(st, 2);
    assert_null(strstr(hash, t.admin_password));
    assert_int_equal(sec_password_verify(hash, t.admin_password), 1);
    assert_int_equal(sec_password_verify(hash, "not the password"), 0);
    assert_string_equal(store_col_text(st, 3), t.project_id);
    store_done(st);

    /* the key secret is stored hashed too */
    st = store_query(f->c, &e, "SELECT secret_hash FROM access_keys WHERE id = $1", "s", t.key_id);
    assert_non_null(st);
    assert_int_equal(store_step(st, &e), 1);
    size_t hlen = 0;
    const void *h = store_col_blob(st, 0, &hlen);
    assert_int_equal(hlen, SEC_HASH_LEN);
    assert_true(memcmp(h, t.key_secret, hlen) != 0);
    store_done(st);

    /* the printed JSON carries every field */
    json_t *j = tenant_init_json(&t);
    assert_string_equal(json_string_value(json_object_get(j, "project_id")), t.project_id);
    assert_string_equal(json_string_value(json_object_get(j, "key_id")), t.key_id);
    assert_string_equal(json_string_value(json_object_get(j, "key_secret")), t.key_secret);
    assert_string_equal(json_string_value(json_object_get(j, "admin_password")), t.admin_password);
    json_decref(j);

    /* second call: already initialised, nothing added */
    tenant_init_t t2;
    assert_int_equal(tenant_init(f->c, &t2, &e), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM projects"), 1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM access_keys"), 1);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM users"), 1);
    /* and no transaction was left open: a new one can begin */
    assert_int_equal(store_begin(f->c, &e), 0);
    store_rollback(f->c);
}

static void test_key_verify(void **state)
{
    db_fx_t *f = *state;
    tenant_init_t t;
    err_t e = {0};
    assert_int_equal(tenant_init(f->c, &t, &e), 1);

    char pid[ULID_LEN + 1] = "";
    if (tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e) != 0)
        fail_msg("verify: %s", e.message);
    assert_string_equal(pid, t.project_id);

    /* wrong secret */
    char wrong[TENANT_SECRET_MAX];
    snprintf(wrong, sizeof wrong, "%s", t.key_secret);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    err_t e_wrong = {0};
    assert_int_equal(tenant_key_verify(f->c, t.key_id, wrong, pid, &e_wrong), -1);
    assert_int_equal(e_wrong.code, ERR_UNAUTHENTICATED);
    err_t e_empty = {0};
    assert_int_equal(tenant_key_verify(f->c, t.key_id, "", pid, &e_empty), -1);
    assert_int_equal(e_empty.code, ERR_UNAUTHENTICATED);
    char prefix[TENANT_SECRET_MAX];
    snprintf(prefix, sizeof prefix, "%.20s", t.key_secret);
    assert_int_equal(tenant_key_verify(f->c, t.key_id, prefix, pid, &e), -1);

    /* unknown id: same code and same message (no oracle) */
    char unknown[ULID_LEN + 1];
    ulid_new(unknown);
    err_t e_unknown = {0};
    assert_int_equal(tenant_key_verify(f->c, unknown, t.key_secret, pid, &e_unknown), -1);
    assert_int_equal(e_unknown.code, ERR_UNAUTHENTICATED);
    assert_string_equal(e_unknown.message, e_wrong.message);

    /* the secret of one key does not open another */
    char kid2[ULID_LEN + 1], sec2[TENANT_SECRET_MAX];
    assert_int_equal(tenant_key_create(f->c, t.project_id, "second", kid2, sec2, &e), 0);
    assert_string_not_equal(sec2, t.key_secret);
    assert_int_equal(tenant_key_verify(f->c, kid2, t.key_secret, pid, &e), -1);
    assert_int_equal(tenant_key_verify(f->c, t.key_id, sec2, pid, &e), -1);
    assert_int_equal(tenant_key_verify(f->c, kid2, sec2, pid, &e), 0);
    assert_string_equal(pid, t.project_id);
}

static void test_key_revoke(void **state)
{
    db_fx_t *f = *state;
    tenant_init_t t;
    err_t e = {0};
    assert_int_equal(tenant_init(f->c, &t, &e), 1);
    char kid[ULID_LEN + 1], secret[TENANT_SECRET_MAX], pid[ULID_LEN + 1] = "";
    assert_int_equal(tenant_key_create(f->c, t.project_id, "to revoke", kid, secret, &e), 0);
    assert_int_equal(tenant_key_verify(f->c, kid, secret, pid, &e), 0);
    memset(pid, 0, sizeof pid);
    assert_int_equal(tenant_key_active(f->c, kid, pid, &e), 0);
    assert_string_equal(pid, t.project_id);

    err_t e_wrong = {0};
    assert_int_equal(tenant_key_verify(f->c, kid, "wrong", pid, &e_wrong), -1);

    assert_int_equal(tenant_key_revoke(f->c, t.project_id, kid, &e), 0);
    err_t e_revoked = {0};
    assert_int_equal(tenant_key_verify(f->c, kid, secret, pid, &e_revoked), -1);
    assert_int_equal(e_revoked.code, ERR_UNAUTHENTICATED);
    assert_string_equal(e_revoked.message, e_wrong.message); /* no oracle */
    assert_int_equal(tenant_key_active(f->c, kid, pid, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);

    /* revoking twice: nothing active to revoke */
    assert_int_equal(tenant_key_revoke(f->c, t.project_id, kid, &e), -1);
    assert_int_equal(e.code, ERR_NOT_FOUND);

    /* the other key is unaffected */
    assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), 0);
    assert_int_equal(tenant_key_active(f->c, t.key_id, pid, &e), 0);

    /* the listing shows which one is revoked */
    json_t *keys = tenant_key_list(f->c, t.project_id, &e);
    assert_non_null(keys);
    assert_int_equal(json_array_size(keys), 2);
    size_t i;
    json_t *k;
    int revoked = 0, active = 0;
    json_array_foreach(keys, i, k)
    {
        const char *id = json_string_value(json_object_get(k, "key_id"));
        if (strcmp(id, kid) == 0) revoked = json_is_string(json_object_get(k, "revoked_at"));
        if (strcmp(id, t.key_id) == 0) active = json_is_null(json_object_get(k, "revoked_at"));
        assert_null(json_object_get(k, "secret_hash"));
    }
    assert_true(revoked);
    assert_true(active);
    json_decref(keys);
}

/* Another process (the CLI) changes the store behind this one's back: a verified key is
 * cached, and yet its revocation, or its project's deletion, counts at the next request. */
static void other_process(db_fx_t *f, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/parley.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void test_key_cache_sees_other_writers(void **state)
{
    db_fx_t *f = *state;
    tenant_init_t t;
    err_t e = {0};
    assert_int_equal(tenant_init(f->c, &t, &e), 1);
    char kid[ULID_LEN + 1], secret[TENANT_SECRET_MAX], pid[ULID_LEN + 1] = "", sql[256];
    assert_int_equal(tenant_key_create(f->c, t.project_id, "second", kid, secret, &e), 0);
    uint64_t g0, g1;
    assert_int_equal(store_config_gen(f->c, &g0, &e), 0);
    for (int i = 0; i < 3; i++) /* the first fills the cache, the others hit it */
        assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), 0);
    assert_int_equal(tenant_key_verify(f->c, kid, secret, pid, &e), 0);
    assert_string_equal(pid, t.project_id);
    assert_int_equal(store_config_gen(f->c, &g1, &e), 0);
    assert_true(g1 == g0); /* reading changes nothing */

    snprintf(sql, sizeof sql, "UPDATE access_keys SET revoked_at = 1 WHERE id = '%s'", kid);
    other_process(f, sql);
    assert_int_equal(store_config_gen(f->c, &g1, &e), 0);
    assert_true(g1 != g0);
    assert_int_equal(tenant_key_verify(f->c, kid, secret, pid, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(tenant_key_active(f->c, kid, pid, &e), -1);
    assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), 0);

    snprintf(sql, sizeof sql, "UPDATE projects SET deleted_at = 1 WHERE id = '%s'", t.project_id);
    other_process(f, sql);
    assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    /* and back: the cache does not remember the refusal either */
    snprintf(sql, sizeof sql, "UPDATE projects SET deleted_at = NULL WHERE id = '%s'",
             t.project_id);
    other_process(f, sql);
    assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), 0);
}

static void test_key_scoped_to_project(void **state)
{
    db_fx_t *f = *state;
    tenant_init_t t;
    err_t e = {0};
    assert_int_equal(tenant_init(f->c, &t, &e), 1);
    char pb[ULID_LEN + 1], kb[ULID_LEN + 1], sb[TENANT_SECRET_MAX], pid[ULID_LEN + 1];
    assert_int_equal(tenant_project_create(f->c, "Project B", pb, &e), 0);
    assert_int_equal(tenant_key_create(f->c, pb, "b", kb, sb, &e), 0);

    assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), 0);
    assert_string_equal(pid, t.project_id);
    assert_int_equal(tenant_key_verify(f->c, kb, sb, pid, &e), 0);
    assert_string_equal(pid, pb);
    assert_int_equal(tenant_key_active(f->c, kb, pid, &e), 0);
    assert_string_equal(pid, pb);

    /* project B cannot revoke project A's key */
    assert_int_equal(tenant_key_revoke(f->c, pb, t.key_id, &e), -1);
    assert_int_equal(e.code, ERR_NOT_FOUND);
    assert_int_equal(tenant_key_verify(f->c, t.key_id, t.key_secret, pid, &e), 0);
    assert_string_equal(pid, t.project_id);

    /* listings are per project */
    json_t *ka = tenant_key_list(f->c, t.project_id, &e), *kbl = tenant_key_list(f->c, pb, &e);
    assert_int_equal(json_array_size(ka), 1);
    assert_int_equal(json_array_size(kbl), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(kbl, 0), "key_id")), kb);
    json_decref(ka);
    json_decref(kbl);

    /* a deleted project's keys stop working */
    assert_int_equal(store_exec(f->c, &e, "UPDATE projects SET deleted_at = $1 WHERE id = $2", "is",
                                clock_now_ms(), pb),
                     1);
    assert_int_equal(tenant_project_exists(f->c, pb, &e), 0);
    assert_int_equal(tenant_key_verify(f->c, kb, sb, pid, &e), -1);
    assert_int_equal(e.code, ERR_UNAUTHENTICATED);
    assert_int_equal(tenant_key_active(f->c, kb, pid, &e), -1);
    assert_int_equal(tenant_key_create(f->c, pb, "late", kb, sb, &e), -1);
    assert_int_equal(e.code, ERR_NOT_FOUND);
}

static void test_key_create_unknown_project(void **state)
{
    db_fx_t *f = *state;
    char ghost[ULID_LEN + 1], kid[ULID_LEN + 1], secret[TENANT_SECRET_MAX];
    ulid_new(ghost);
    err_t e = {0};
    assert_int_equal(tenant_key_create(f->c, ghost, "k", kid, secret, &e), -1);
    assert_int_equal(e.code, ERR_NOT_FOUND);
    assert_contains(e.message, ghost);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM access_keys"), 0);

    /* and project names are validated */
    char id[ULID_LEN + 1];
    assert_int_equal(tenant_project_create(f->c, "", id, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM projects"), 0);
}

static int group_setup(void **state)
{
    (void)state;
    return sec_init();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_round_trip, tok_setup, tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_issue_small_buffer, tok_setup, tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_expired, tok_setup, tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_tampered_anywhere, tok_setup, tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_forged_payload, tok_setup, tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_wrong_key, tok_setup, tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_well_signed_bad_payload, tok_setup,
                                        tok_teardown),
        cmocka_unit_test_setup_teardown(test_token_garbage, tok_setup, tok_teardown),
        cmocka_unit_test(test_bug_token_issue_long_ids_no_overread),
        cmocka_unit_test_setup_teardown(test_tenant_init, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_key_verify, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_key_revoke, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_key_cache_sees_other_writers, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_key_scoped_to_project, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_key_create_unknown_project, db_setup, db_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
