/* cli.c: the data-lifecycle commands of the parley CLI (main.c hands them over):
 * retention run, backup, restore, export, import, projects delete|restore. Each prints
 * one JSON object on stdout (export writes its JSON Lines there when --to is absent). */
#define _GNU_SOURCE
#include "privacy/privacy.h"
#include "base/clock.h"
#include "base/sec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const commands[][2] = {
    {"retention", "run"}, {"backup", NULL},       {"restore", NULL},       {"export", NULL},
    {"import", NULL},     {"projects", "delete"}, {"projects", "restore"},
};

int privacy_cli_handles(const char *cmd, const char *sub)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i][0]) == 0 &&
            (!commands[i][1] || (sub && strcmp(sub, commands[i][1]) == 0)))
            return 1;
    return 0;
}

/* The key that seals stored secrets, derived as api/auth.c's api_ctx_setup does
 * (tests/unit/test_privacy.c pins that the two agree). */
void privacy_seal_key(const uint8_t master[32], uint8_t out[32])
{
    static const char seal_label[] = "parley secrets at rest v1";
    sec_hash(master, seal_label, sizeof seal_label - 1, out);
}

static void print(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    if (s) puts(s);
    fflush(stdout);
    free(s);
    json_decref(v);
}

static int need(const char *v, const char *what, err_t *e)
{
    return v ? 0 : err_set(e, ERR_INVALID_ARGUMENT, "%s is required", what);
}

static json_t *time_json(int64_t ms)
{
    char t[32];
    clock_format_rfc3339(ms, t, sizeof t);
    return json_string(t);
}

static int run(const char *cmd, const char *sub, privacy_opt_fn opt, void *ctx, const config_t *cfg,
               err_t *e)
{
    if (strcmp(cmd, "restore") == 0) {
        const char *from = opt(ctx, "from");
        if (need(from, "--from FILE", e) < 0 || privacy_restore(from, cfg->data_dir, e) < 0)
            return -1;
        print(json_pack("{s:s, s:s}", "restored", from, "data_dir", cfg->data_dir));
        return 0;
    }
    store_opts_t so = {0};
    store_t *s = store_open(cfg->data_dir, &so, e);
    if (!s) return -1;
    store_conn_t *c = store_conn(s, e);
    int rc = c ? 0 : -1;
    uint8_t master[32], seal[32];
    if (rc == 0 && strcmp(cmd, "retention") == 0) {
        int64_t now = clock_now_ms();
        const char *as_of = opt(ctx, "as-of");
        if (as_of && clock_parse_rfc3339(as_of, &now) < 0)
            rc = err_set(e, ERR_INVALID_ARGUMENT,
                         "--as-of must be an RFC 3339 time like 2030-01-01T00:00:00Z, got \"%s\"",
                         as_of);
        privacy_configure(cfg);
        privacy_register_builtin();
        json_t *r = rc == 0 ? privacy_sweep_all(s, now, e) : NULL;
        if (r)
            print(r);
        else
            rc = -1;
    } else if (rc == 0 && strcmp(cmd, "backup") == 0) {
        const char *to = opt(ctx, "to");
        rc = need(to, "--to FILE", e);
        if (rc == 0) rc = privacy_backup(s, to, e);
        struct stat sb;
        if (rc == 0 && stat(to, &sb) == 0)
            print(json_pack("{s:s, s:i, s:I}", "backup", to, "schema_version",
                            store_schema_version(s), "bytes", (json_int_t)sb.st_size));
    } else if (rc == 0 && (strcmp(cmd, "export") == 0 || strcmp(cmd, "import") == 0)) {
        rc = store_keyfile_load(cfg->data_dir, master, e);
        if (rc == 0) privacy_seal_key(master, seal);
        if (rc == 0 && strcmp(cmd, "export") == 0) {
            const char *project = opt(ctx, "project"), *to = opt(ctx, "to");
            rc = need(project, "--project ID", e);
            FILE *out = rc < 0 ? NULL : to ? fopen(to, "w") : stdout;
            if (rc == 0 && !out)
                rc = err_set(e, ERR_INVALID_ARGUMENT, "cannot write %s: %s", to, strerror(errno));
            if (rc == 0)
                rc = privacy_export(c, seal, project, opt(ctx, "plain-secrets") != NULL, out, e);
            if (out && out != stdout && fclose(out) != 0 && rc == 0)
                rc = err_set(e, ERR_INVALID_ARGUMENT, "cannot write %s: %s", to, strerror(errno));
            if (rc == 0 && to) print(json_pack("{s:s, s:s}", "project_id", project, "export", to));
        } else if (rc == 0) {
            const char *from = opt(ctx, "from");
            rc = need(from, "--from FILE", e);
            FILE *in = rc < 0 ? NULL : strcmp(from, "-") == 0 ? stdin : fopen(from, "r");
            if (rc == 0 && !in)
                rc = err_set(e, ERR_INVALID_ARGUMENT, "cannot read %s: %s", from, strerror(errno));
            json_t *r = rc == 0 ? privacy_import(c, seal, in, e) : NULL;
            if (in && in != stdin) fclose(in);
            if (r)
                print(r);
            else
                rc = -1;
        }
        memset(master, 0, sizeof master);
        memset(seal, 0, sizeof seal);
    } else if (rc == 0) { /* projects delete | restore */
        const char *project = opt(ctx, "project");
        rc = need(project, "--project ID", e);
        if (rc == 0 && strcmp(sub, "delete") == 0) {
            privacy_configure(cfg);
            int64_t now = clock_now_ms();
            rc = privacy_project_delete(c, project, now, e);
            if (rc == 0)
                print(json_pack("{s:s, s:o, s:o}", "project_id", project, "delete_time",
                                time_json(now), "purge_time",
                                time_json(now + privacy_grace_days_ms())));
        } else if (rc == 0) {
            rc = privacy_project_restore(c, project, e);
            if (rc == 0) print(json_pack("{s:s, s:b}", "project_id", project, "restored", 1));
        }
    }
    store_close(s);
    return rc;
}

int privacy_cli(const char *cmd, const char *sub, privacy_opt_fn opt, void *ctx,
                const config_t *cfg)
{
    err_t e;
    if (run(cmd, sub, opt, ctx, cfg, &e) < 0) {
        fprintf(stderr, "parley: %s\n", e.message);
        return 1;
    }
    return 0;
}
