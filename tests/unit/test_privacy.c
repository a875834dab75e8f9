/* test_privacy.c: the data lifecycle's pieces that later modules build on: the sweep step
 * registry, the project scope derived from the schema (a table added later is exported
 * and purged without code changes), export/import of such a table, backups, and the
 * sealing key agreeing with the API's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

#include "api/api.h"
#include "base/sec.h"
#include "privacy/privacy.h"
#include "privacy/privacy_internal.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char root[64];
    char dir[128], dir2[128];
    store_t *s, *s2;
    store_conn_t *c, *c2;
} fx_t;

static store_t *open_at(const char *dir, store_conn_t **c)
{
    store_t *s = fx_store_open(dir, c);
    if (!s) fail_msg("cannot open the store in %s", dir);
    return s;
}

/* Two stores, each with a "later" module's tables: flows_x (project_id) and flows_step
 * (reached only through a foreign key). */
static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (fx_tmpdir(f->root, "privacy") < 0) return -1;
    snprintf(f->dir, sizeof f->dir, "%s/a", f->root);
    snprintf(f->dir2, sizeof f->dir2, "%s/b", f->root);
    f->s = open_at(f->dir, &f->c);
    f->s2 = open_at(f->dir2, &f->c2);
    static const char later[] =
        "CREATE TABLE flows_x (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, body TEXT);"
        "CREATE TABLE flows_step (flow_id TEXT NOT NULL REFERENCES flows_x(id), n INTEGER, "
        "blob BLOB, PRIMARY KEY (flow_id, n));";
    err_t e = {0};
    if (store_exec_script(f->c, later, &e) < 0 || store_exec_script(f->c2, later, &e) < 0)
        fail_msg("%s", e.message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    store_close(f->s2);
    int rc = fx_rmdir(f->root);
    free(f);
    return rc;
}

static int position(const privacy_scope_t *sc, const char *name)
{
    for (int i = 0; i < sc->n; i++)
        if (strcmp(sc->tables[sc->order[i]].name, name) == 0) return i;
    return -1;
}

static void test_scope_follows_the_schema(void **state)
{
    fx_t *f = *state;
    privacy_scope_t sc;
    err_t e = {0};
    assert_int_equal(privacy_scope_build(f->c, &sc, &e), 0);
    assert_int_equal(position(&sc, "projects"), 0);
    /* In scope: project_id tables, and children through foreign keys; parents first. */
    assert_true(position(&sc, "apps") < position(&sc, "app_credentials"));
    assert_true(position(&sc, "messages") < position(&sc, "message_refs"));
    assert_true(position(&sc, "contacts") < position(&sc, "conversations"));
    assert_true(position(&sc, "conversations") < position(&sc, "messages"));
    assert_true(position(&sc, "outbox") > 0);
    assert_true(position(&sc, "flows_x") > 0);
    assert_true(position(&sc, "flows_x") < position(&sc, "flows_step"));
    assert_string_equal(sc.pred[position(&sc, "flows_step")],
                        "flow_id IN (SELECT id FROM flows_x WHERE project_id = $1)");
    /* Provider dedupe bookkeeping is not project data (cleaned with its messages). */
    assert_int_equal(position(&sc, "inbound_seen"), -1);
    privacy_scope_free(&sc);
}

static int64_t left = 3, seen_now;
static int64_t countdown(store_conn_t *c, int64_t now_ms, int limit, err_t *e)
{
    (void)c, (void)e;
    seen_now = now_ms;
    assert_true(limit > 0);
    return left > 0 ? (left--, 1) : 0;
}

static void test_registered_step_runs_until_done(void **state)
{
    fx_t *f = *state;
    privacy_register_builtin();
    privacy_sweep_register("flow_logs", countdown);
    err_t e = {0};
    json_t *r = privacy_sweep_all(f->s, 1893456000000LL, &e);
    assert_non_null(r);
    assert_int_equal(seen_now, 1893456000000LL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r, "removed"), "flow_logs")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "removed"), "messages")),
                     0);
    assert_string_equal(json_string_value(json_object_get(r, "as_of")), "2030-01-01T00:00:00.000Z");
    json_decref(r);
    buf_t b;
    buf_init(&b);
    privacy_metrics_render(&b);
    assert_non_null(strstr(b.data, "parley_retention_removed_total{kind=\"flow_logs\"} 3\n"));
    buf_free(&b);
}

static void seed(store_conn_t *c)
{
    err_t e = {0};
    if (store_exec_script(c,
                          "INSERT INTO projects (id, name, created_at) VALUES ('P1', 'one', 1), "
                          "('P2', 'two', 1);"
                          "INSERT INTO flows_x VALUES ('F1', 'P1', 'a'), ('F2', 'P2', 'b');"
                          "INSERT INTO flows_step VALUES ('F1', 1, x'00ff10'), ('F1', 2, NULL), "
                          "('F2', 1, NULL);",
                          &e) < 0)
        fail_msg("%s", e.message);
}

static void test_export_import_carries_later_tables(void **state)
{
    fx_t *f = *state;
    seed(f->c);
    uint8_t key[32] = {1};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    err_t e = {0};
    assert_int_equal(privacy_export(f->c, key, "P1", 0, out, &e), 0);
    fclose(out);
    assert_non_null(strstr(text, "{\"kind\":\"flows_x\",\"record\":{\"id\":\"F1\""));
    assert_null(strstr(text, "F2"));
    FILE *in = fmemopen(text, len, "r");
    json_t *r = privacy_import(f->c2, key, in, &e);
    fclose(in);
    if (!r) fail_msg("%s", e.message);
    assert_int_equal(json_integer_value(json_object_get(r, "records")), 4);
    json_decref(r);
    assert_int_equal(fx_count(f->c2, "SELECT count(*) FROM flows_step WHERE flow_id = 'F1' AND "
                                     "(n = 2 OR hex(blob) = '00FF10')"),
                     2);
    /* Again: conflicts, and nothing of the second attempt stays. */
    in = fmemopen(text, len, "r");
    assert_null(privacy_import(f->c2, key, in, &e));
    fclose(in);
    assert_int_equal(e.code, ERR_ALREADY_EXISTS);
    assert_int_equal(fx_count(f->c2, "SELECT count(*) FROM flows_step"), 2);
    free(text);
}

static void test_purge_reaches_later_tables(void **state)
{
    fx_t *f = *state;
    seed(f->c);
    err_t e = {0};
    privacy_register_builtin();
    assert_int_equal(privacy_project_delete(f->c, "P1", 1000, &e), 0);
    json_t *r = privacy_sweep_all(f->s, 1000 + 31 * PRIVACY_DAY_MS, &e);
    assert_non_null(r);
    json_decref(r);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM flows_step WHERE flow_id = 'F1'"), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM flows_x WHERE project_id = 'P1'"), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM projects WHERE id = 'P1'"), 0);
    assert_int_equal(fx_count(f->c, "SELECT count(*) FROM flows_step WHERE flow_id = 'F2'"), 1);
}

static void test_seal_key_matches_the_api(void **state)
{
    (void)state;
    config_t cfg;
    config_defaults(&cfg);
    api_ctx_t ctx = {.cfg = &cfg};
    for (int i = 0; i < 32; i++)
        ctx.master_key[i] = (uint8_t)(i * 7);
    api_ctx_setup(&ctx);
    uint8_t mine[32];
    privacy_seal_key(ctx.master_key, mine);
    assert_memory_equal(mine, ctx.seal_key, 32);
    api_ctx_cleanup(&ctx);
}

static void test_backup_copies_the_store(void **state)
{
    fx_t *f = *state;
    seed(f->c);
    char path[200];
    snprintf(path, sizeof path, "%s/copy.db", f->root);
    err_t e = {0};
    assert_int_equal(store_backup(f->s, path, &e), 0);
    int v = 0;
    assert_int_equal(store_check_file(path, &v, &e), 0);
    assert_int_equal(v, store_schema_latest());
    snprintf(path, sizeof path, "%s/nope/copy.db", f->root);
    assert_int_equal(store_backup(f->s, path, &e), -1);
    assert_int_equal(e.code, ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.message, "No such file or directory"));
}

int main(void)
{
    sec_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scope_follows_the_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_step_runs_until_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_import_carries_later_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_reaches_later_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_key_matches_the_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_copies_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
