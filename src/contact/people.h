/* people.h: the contact center's people: users and their roles (the users table of
 * 001_foundation), invitations, login sessions with their CSRF tokens, and failed-login
 * rate limiting (tables in 008_contact_people.sql). No HTTP here: src/api/contact_people.c
 * and contact_session.c translate.
 *
 * Secrets (session and invitation tokens) are 256-bit random values handed to the client
 * once and stored only as BLAKE2b hashes; passwords are Argon2id. Returned JSON is owned
 * by the caller (json_decref). Times are ms; `now` is passed in so tests can move time. */
#ifndef PARLEY_CONTACT_PEOPLE_H
#define PARLEY_CONTACT_PEOPLE_H

#include "base/err.h"
#include "base/ulid.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CONTACT_TOKEN_MAX    64 /* a session / invitation / CSRF token as text, with NUL */
#define CONTACT_PASSWORD_MIN 10 /* characters */
#define CONTACT_PASSWORD_MAX 256

typedef struct {
    char id[ULID_LEN + 1];
    char project_id[ULID_LEN + 1];
    char email[128];
    char role[16]; /* admin | supervisor | agent | dpo */
} contact_user_t;

/* ---- passwords ---- */

/* The minimum policy: 10..256 characters (UTF-8), not all the same character. */
int contact_password_check(const char *password, err_t *e);

/* ---- sessions (sessions.c) ---- */

typedef struct {
    int64_t idle_ms, max_ms;     /* session idle timeout and absolute lifetime */
    int64_t failures, window_ms; /* failed logins allowed per email and per IP per window */
} contact_login_opts_t;

/* Check email + password (project_id may be NULL: the email's only project) and open a
 * session: token (to set as cookie) and *u filled. Bad email, bad password and a
 * deactivated user all answer ERR_UNAUTHENTICATED "invalid email or password" after the
 * same work (no oracle). Too many recent failures for this email or this ip answer
 * ERR_RESOURCE_EXHAUSTED with *retry_after_s set, without checking the password. */
int contact_login(store_conn_t *c, const contact_login_opts_t *o, const char *email,
                  const char *password, const char *project_id, const char *ip, int64_t now,
                  char token[CONTACT_TOKEN_MAX], contact_user_t *u, int64_t *retry_after_s,
                  err_t *e);
/* The user behind a session token, refreshing its idle timer. ERR_UNAUTHENTICATED with a
 * precise message: unknown (forged), ended (logged out / user deactivated), idle-expired,
 * expired. */
int contact_session_resolve(store_conn_t *c, const contact_login_opts_t *o, const char *token,
                            int64_t now, contact_user_t *u, err_t *e);
/* End the session (logout). 0 even if it had already ended. */
int contact_session_end(store_conn_t *c, const char *token, int64_t now, err_t *e);
/* The CSRF token bound to a session token (a hash of it: no storage, changes with every
 * new session). */
void contact_csrf_token(const char *session_token, char out[CONTACT_TOKEN_MAX]);
/* 1 if `given` is the CSRF token of session_token (constant time), else 0. */
int contact_csrf_valid(const char *session_token, const char *given);

/* ---- users (users.c) ---- */

/* {"users": [{id, email, role, active, created_at, deactivated_at?}]} in id order. */
json_t *contact_user_list(store_conn_t *c, const char *project_id, err_t *e);
json_t *contact_user_get(store_conn_t *c, const char *project_id, const char *id, err_t *e);
/* PATCH {role?, active?}: deactivation ends the user's sessions at once; the last active
 * admin can be neither demoted nor deactivated. Returns the updated user. */
json_t *contact_user_update(store_conn_t *c, const char *project_id, const char *id, json_t *body,
                            int64_t now, err_t *e);

/* ---- invitations (users.c) ---- */

/* A new invitation for email with role, valid ttl_ms: out_token gets the secret token (for
 * the link), the JSON {id, email, role, expires_at, ...} is returned. ALREADY_EXISTS when
 * an active user of the project has that email. */
json_t *contact_invitation_create(store_conn_t *c, const char *project_id, const char *email,
                                  const char *role, const char *actor, int64_t ttl_ms, int64_t now,
                                  char out_token[CONTACT_TOKEN_MAX], err_t *e);
/* {"invitations": [{id, email, role, status: pending|accepted|expired|revoked, ...}]} */
json_t *contact_invitation_list(store_conn_t *c, const char *project_id, err_t *e);
int contact_invitation_revoke(store_conn_t *c, const char *project_id, const char *id, int64_t now,
                              err_t *e);
/* What the invitee sees before accepting: {email, role, project_id, expires_at}. NOT_FOUND
 * for an unknown, used or revoked token; FAILED_PRECONDITION when expired. */
json_t *contact_invitation_peek(store_conn_t *c, const char *token, int64_t now, err_t *e);
/* Accept: checks the password policy, creates the user (single use) and fills *u. */
int contact_invitation_accept(store_conn_t *c, const char *token, const char *password, int64_t now,
                              contact_user_t *u, err_t *e);

/* ---- mail (mail.c) ---- */

typedef struct {
    const char *host, *user, *password, *from; /* host "" = no mail server */
    int port;
} contact_smtp_t;

/* Send a plain-text mail with libcurl's SMTP (implicit TLS on port 465, STARTTLS when the
 * server offers it otherwise). */
int contact_mail_send(const contact_smtp_t *smtp, const char *to, const char *subject,
                      const char *body, err_t *e);

#endif
