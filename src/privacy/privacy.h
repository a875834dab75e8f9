/* privacy.h: the data lifecycle. Retention (a sweeper that removes what each policy says
 * has expired), project settings (contact retention, a Parley extension), tenant deletion
 * (soft delete, purge after a grace period, restore), backups (online copy, daily
 * rotation, checked restore) and export/import of one project as JSON Lines.
 *
 * The sweeper is a registry of named steps. Each step removes (or anonymizes) at most
 * `limit` items per call, in its own transaction(s), and returns how many it removed;
 * the sweeper calls it again (yielding between batches) until it answers 0. Every count
 * is added to /metrics as parley_retention_removed_total{kind="<step name>"}. A module
 * that keeps personal data (flows, contact) registers its own step at start-up:
 *
 *     static int64_t flows_sweep_logs(store_conn_t *c, int64_t now_ms, int limit, err_t *e);
 *     privacy_sweep_register("flow_logs", flows_sweep_logs);
 *
 * Rules for a step: read its policy from the store on every call (a policy change applies
 * on the next pass); judge age against now_ms, never the wall clock (so `parley retention
 * run --as-of` works); find candidates with reads before store_begin (WAL readers do not
 * block writers) and keep the write transaction to the deletions, re-checking what could
 * have changed since the read; remove dependent rows in the same transaction (no orphans,
 * and no outbox row left that would send a callback about a removed item); return -1
 * with e filled on error (the sweeper logs it and moves on to the next step). The
 * sweeper adapts `limit` to its time budget (privacy.batch_ms).
 *
 * Memory: returned JSON is owned by the caller (json_decref); privacy_t is freed by
 * privacy_stop. */
#ifndef PARLEY_PRIVACY_H
#define PARLEY_PRIVACY_H

#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdint.h>

/* ---- the sweeper ---- */

typedef int64_t (*privacy_sweep_fn)(store_conn_t *c, int64_t now_ms, int limit, err_t *e);

/* Add a step (name: [a-z_]+, used as the metrics kind and the JSON key of `retention
 * run`). Call before privacy_start or privacy_sweep_all, from one thread. Registering a
 * name twice replaces its function. At most 32 steps. */
void privacy_sweep_register(const char *name, privacy_sweep_fn fn);
/* The built-in steps of the Conversation API and tenancy (steps.c), in order:
 * "projects" (purge deleted projects past the grace period), "contacts"
 * (CONTACT_EXPIRE_POLICY), "conversations" (CONVERSATION_EXPIRE_POLICY), "messages"
 * (MESSAGE_EXPIRE_POLICY and dispatch retention). Idempotent. */
void privacy_register_builtin(void);

/* Settings the steps read (from config: privacy.*). */
void privacy_configure(const config_t *cfg);
/* The configured grace period of deleted projects, ms. */
int64_t privacy_grace_days_ms(void);

/* One full sweep as if the time were now_ms: every step until it has nothing left.
 * Returns {"as_of": RFC 3339, "removed": {"<step>": n, ...}} or NULL with e filled. */
json_t *privacy_sweep_all(store_t *s, int64_t now_ms, err_t *e);

/* Background work of a running server: the sweeper (continuous, batches of
 * privacy.batch rows with a privacy.batch_ms budget, a pause between batches and
 * privacy.interval_s between passes) and the daily backup into DATA_DIR/backups. */
typedef struct privacy privacy_t;
privacy_t *privacy_start(store_t *s, const config_t *cfg, err_t *e);
void privacy_stop(privacy_t *p);
void privacy_metrics_render(buf_t *out);

/* ---- tenant deletion ---- */

/* Mark a project deleted now (inaccessible at once); its data is purged by the
 * "projects" step after privacy.project_grace_days. NOT_FOUND if unknown or already
 * deleted. */
int privacy_project_delete(store_conn_t *c, const char *project_id, int64_t now_ms, err_t *e);
/* Undo a deletion during the grace period. NOT_FOUND if not deleted (or already purged). */
int privacy_project_restore(store_conn_t *c, const char *project_id, err_t *e);

/* ---- project settings (a Parley extension) ---- */

/* {"contact_retention_policy": {"retention_type", "ttl_days"}} */
json_t *privacy_settings_get(store_conn_t *c, const char *project_id, err_t *e);
/* Apply a partial settings object; validates everything before writing, and writes in
 * one transaction (a section's error rolls back the whole PATCH). */
json_t *privacy_settings_patch(store_conn_t *c, const char *project_id, json_t *body, err_t *e);

/* A settings section owned by another module (e.g. "contact_center_retention" of
 * src/contact/retention.h): GET shows get()'s object (new reference) under key; a PATCH
 * naming key calls patch() with its value inside the PATCH's transaction; patch validates
 * (precise INVALID_ARGUMENT naming "key.field") and writes, or returns -1 with e filled.
 * Register at start-up, before serving (not thread-safe); up to 8 sections. */
typedef json_t *(*privacy_settings_get_fn)(store_conn_t *c, const char *project_id, err_t *e);
typedef int (*privacy_settings_patch_fn)(store_conn_t *c, const char *project_id, json_t *value,
                                         err_t *e);
void privacy_settings_register(const char *key, privacy_settings_get_fn get,
                               privacy_settings_patch_fn patch);

/* ---- backups ---- */

/* Copy the store to path (see store_backup). */
int privacy_backup(store_t *s, const char *path, err_t *e);
/* Take DATA_DIR/backups/parley-YYYYMMDDTHHMMSSZ.db and keep the newest `keep`. */
int privacy_backup_rotate(store_t *s, const char *data_dir, int keep, int64_t now_ms, err_t *e);
/* Wall-clock ms of the newest automatic backup in DATA_DIR/backups, 0 if none. */
int64_t privacy_backup_newest_ms(const char *data_dir);
/* Replace DATA_DIR/parley.db with a checked copy of from (integrity, schema version);
 * refuses while a server holds the data dir. The old file is kept as
 * parley.db.before-restore. */
int privacy_restore(const char *from, const char *data_dir, err_t *e);
/* A running server holds DATA_DIR/serve.lock (flock) for its lifetime. 0 = taken,
 * -1 = another process holds it. */
int privacy_lock_data_dir(const char *data_dir, int *fd_out, err_t *e);

/* ---- export / import ---- */

/* Write every record of the project as JSON Lines to out: a header line
 * {"kind":"parley_export",...} then one {"kind": TABLE, ...columns} per row, parents
 * before children. Tables are found from the schema: every table with a project_id
 * column, and tables reached from those through foreign keys, except the outbox (a work
 * queue); one read snapshot. Sealed columns
 * (*_sealed) stay sealed (import needs the same secret key) unless plain_secrets, which
 * writes them opened (the file then holds secrets in clear). */
int privacy_export(store_conn_t *c, const uint8_t seal_key[32], const char *project_id,
                   int plain_secrets, FILE *out, err_t *e);
/* Read an export into the store in one transaction: nothing is written unless every
 * record goes in. Existing ids answer ERR_ALREADY_EXISTS naming the record. Returns
 * {"project_id", "records": n}. */
json_t *privacy_import(store_conn_t *c, const uint8_t seal_key[32], FILE *in, err_t *e);

/* ---- command line (cli.c) ---- */

/* Look up an option (name without "--"): its value, or NULL when absent. */
typedef const char *(*privacy_opt_fn)(void *ctx, const char *name);
/* 1 for the commands privacy_cli runs: retention run, backup, restore, export, import,
 * projects delete, projects restore. */
int privacy_cli_handles(const char *cmd, const char *sub);
/* Run one; prints JSON on stdout, a message on stderr; returns the exit code. */
int privacy_cli(const char *cmd, const char *sub, privacy_opt_fn opt, void *ctx,
                const config_t *cfg);
/* The sealing key of stored secrets from the master key (as api_ctx_setup derives it). */
void privacy_seal_key(const uint8_t master[32], uint8_t out[32]);

#endif
