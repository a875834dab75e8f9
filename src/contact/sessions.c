/* sessions.c: logging in, session tokens and their CSRF tokens, and failed-login rate
 * limiting (people.h). A session row is keyed by the hash of its token, so a stolen
 * database does not yield usable cookies; the CSRF token is derived from the session
 * token, so it needs no storage and a token from an earlier session is simply wrong. */
#include "contact/people.h"
#include "base/sec.h"
#include "base/utf8.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int contact_password_check(const char *password, err_t *e)
{
    size_t n = password ? utf8_len(password) : 0;
    if (n < CONTACT_PASSWORD_MIN)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "password is too short: %zu characters, at least %d required", n,
                       CONTACT_PASSWORD_MIN);
    if (strlen(password) > CONTACT_PASSWORD_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "password is too long: at most %d bytes",
                       CONTACT_PASSWORD_MAX);
    const char *p = password;
    while (*p == password[0])
        p++;
    if (!*p) return err_set(e, ERR_INVALID_ARGUMENT, "password must not repeat one character only");
    return 0;
}

static void token_hash(const char *token, uint8_t out[SEC_HASH_LEN])
{
    sec_hash(NULL, token, strlen(token), out);
}

void contact_csrf_token(const char *session_token, char out[CONTACT_TOKEN_MAX])
{
    static const char label[] = "parley contact csrf v1:";
    char in[CONTACT_TOKEN_MAX + sizeof label];
    /* Hash label + token (a token longer than any Parley issues is cut: never valid anyway). */
    int n = snprintf(in, sizeof in, "%s%s", label, session_token);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof in ? sizeof in - 1 : (size_t)n;
    uint8_t h[SEC_HASH_LEN];
    sec_hash(NULL, in, len, h);
    sec_b64url_encode(h, sizeof h, out, CONTACT_TOKEN_MAX);
}

int contact_csrf_valid(const char *session_token, const char *given)
{
    char want[CONTACT_TOKEN_MAX];
    contact_csrf_token(session_token, want);
    size_t n = strlen(want);
    return given && strlen(given) == n && sec_equal(want, given, n);
}

/* ---- failed-login limiting ---- */

/* Failures of key within the window: count, and the oldest one's time. */
static int failures(store_conn_t *c, const char *key, int64_t since, int64_t *count,
                    int64_t *oldest, err_t *e)
{
    store_stmt_t *st = store_query(
        c, e, "SELECT COUNT(*), MIN(at) FROM contact_login_failures WHERE key = $1 AND at > $2",
        "si", key, since);
    int rc = st ? store_step(st, e) : -1;
    if (rc == 1) {
        *count = store_col_int(st, 0);
        *oldest = store_col_int(st, 1);
    }
    store_done(st);
    return rc < 0 ? -1 : 0;
}

static void lower_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* Argon2id of a random password, computed once: unknown emails verify against it so that
 * they cost the same as a wrong password. */
static char dummy_hash[256];
static void dummy_init(void)
{
    char pw[40];
    sec_random_token(24, pw, sizeof pw);
    sec_password_hash(pw, dummy_hash, sizeof dummy_hash);
}

int contact_login(store_conn_t *c, const contact_login_opts_t *o, const char *email,
                  const char *password, const char *project_id, const char *ip, int64_t now,
                  char token[CONTACT_TOKEN_MAX], contact_user_t *u, int64_t *retry_after_s,
                  err_t *e)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, dummy_init);
    char lemail[128], kemail[160], kip[80];
    lower_copy(lemail, sizeof lemail, email);
    snprintf(kemail, sizeof kemail, "email:%s", lemail);
    snprintf(kip, sizeof kip, "ip:%s", ip && *ip ? ip : "unknown");
    const char *keys[2] = {kemail, kip};
    int64_t since = now - o->window_ms, wait_ms = 0;
    for (int k = 0; k < 2; k++) {
        int64_t n = 0, oldest = 0;
        if (failures(c, keys[k], since, &n, &oldest, e) < 0) return -1;
        if (n >= o->failures && oldest + o->window_ms - now > wait_ms)
            wait_ms = oldest + o->window_ms - now;
    }
    if (wait_ms > 0) {
        *retry_after_s = (wait_ms + 999) / 1000;
        return err_set(e, ERR_RESOURCE_EXHAUSTED,
                       "too many failed logins for this email or address; retry in %lld s",
                       (long long)*retry_after_s);
    }

    /* Every user with that email (one per project), password checked against each. */
    store_stmt_t *st = store_query(c, e,
                                   "SELECT id, project_id, email, password_hash, role FROM users "
                                   "WHERE lower(email) = $1 AND deactivated_at IS NULL "
                                   "AND ($2 IS NULL OR project_id = $2) ORDER BY id",
                                   "ss", lemail, project_id);
    if (!st) return -1;
    int rc, matches = 0, checked = 0;
    while ((rc = store_step(st, e)) == 1) {
        checked++;
        if (sec_password_verify(store_col_text(st, 3), password) != 1) continue;
        if (++matches == 1) {
            snprintf(u->id, sizeof u->id, "%s", store_col_text(st, 0));
            snprintf(u->project_id, sizeof u->project_id, "%s", store_col_text(st, 1));
            snprintf(u->email, sizeof u->email, "%s", store_col_text(st, 2));
            snprintf(u->role, sizeof u->role, "%s", store_col_text(st, 4));
        }
    }
    store_done(st);
    if (rc < 0) return -1;
    if (checked == 0) sec_password_verify(dummy_hash, password);
    if (matches == 0) {
        if (store_begin(c, e) < 0) return -1;
        for (int k = 0; k < 2; k++)
            if (store_exec(c, e, "INSERT INTO contact_login_failures (key, at) VALUES ($1, $2)",
                           "si", keys[k], now) < 0) {
                store_rollback(c);
                return -1;
            }
        /* Old records go as new ones come: the table stays as small as the window. */
        if (store_exec(c, e, "DELETE FROM contact_login_failures WHERE at <= $1", "i", since) < 0 ||
            store_commit(c, e) < 0) {
            store_rollback(c);
            return -1;
        }
        return err_set(e, ERR_UNAUTHENTICATED, "invalid email or password");
    }
    if (matches > 1)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "this account exists in several projects: pass project_id");

    sec_random_token(32, token, CONTACT_TOKEN_MAX);
    uint8_t h[SEC_HASH_LEN];
    token_hash(token, h);
    if (store_begin(c, e) < 0) return -1;
    if (store_exec(c, e,
                   "INSERT INTO contact_sessions (token_hash, project_id, user_id, created_at, "
                   "last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
                   "bssii", h, sizeof h, u->project_id, u->id, now, now + o->max_ms) < 0 ||
        store_exec(c, e, "DELETE FROM contact_login_failures WHERE key = $1", "s", kemail) < 0 ||
        store_commit(c, e) < 0) {
        store_rollback(c);
        return -1;
    }
    return 0;
}

int contact_session_resolve(store_conn_t *c, const contact_login_opts_t *o, const char *token,
                            int64_t now, contact_user_t *u, err_t *e)
{
    uint8_t h[SEC_HASH_LEN];
    token_hash(token, h);
    store_stmt_t *st = store_query(
        c, e,
        "SELECT s.project_id, s.user_id, s.last_seen_at, s.expires_at, s.ended_at, u.email, "
        "u.role, u.deactivated_at FROM contact_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = $1",
        "b", h, sizeof h);
    if (!st) return -1;
    int rc = store_step(st, e);
    int64_t last = 0, expires = 0;
    int ended = 0;
    if (rc == 1) {
        snprintf(u->project_id, sizeof u->project_id, "%s", store_col_text(st, 0));
        snprintf(u->id, sizeof u->id, "%s", store_col_text(st, 1));
        last = store_col_int(st, 2);
        expires = store_col_int(st, 3);
        ended = !store_col_is_null(st, 4) || !store_col_is_null(st, 7);
        snprintf(u->email, sizeof u->email, "%s", store_col_text(st, 5));
        snprintf(u->role, sizeof u->role, "%s", store_col_text(st, 6));
    }
    store_done(st);
    if (rc < 0) return -1;
    if (rc == 0)
        return err_set(e, ERR_UNAUTHENTICATED, "invalid session: unknown session token; log in");
    if (ended)
        return err_set(e, ERR_UNAUTHENTICATED,
                       "session has ended (logged out or user deactivated); log in again");
    if (now >= expires)
        return err_set(e, ERR_UNAUTHENTICATED,
                       "session expired: sessions last at most %lld s; log in again",
                       (long long)(o->max_ms / 1000));
    if (now - last >= o->idle_ms)
        return err_set(e, ERR_UNAUTHENTICATED,
                       "session expired after %lld s without use; log in again",
                       (long long)(o->idle_ms / 1000));
    /* Refresh the idle timer, at most once a second per session (most requests only read). */
    if (now - last >= 1000 &&
        store_exec(c, e, "UPDATE contact_sessions SET last_seen_at = $2 WHERE token_hash = $1",
                   "bi", h, sizeof h, now) < 0)
        return -1;
    return 0;
}

int contact_session_end(store_conn_t *c, const char *token, int64_t now, err_t *e)
{
    uint8_t h[SEC_HASH_LEN];
    token_hash(token, h);
    return store_exec(c, e,
                      "UPDATE contact_sessions SET ended_at = $2 "
                      "WHERE token_hash = $1 AND ended_at IS NULL",
                      "bi", h, sizeof h, now) < 0
               ? -1
               : 0;
}
