/* main.c: the parley command line: serve, init, projects, keys, version. Every command
 * that touches data takes --data-dir and is safe to run while `parley serve` uses the
 * same data dir (SQLite WAL with a busy timeout). Machine-readable output (JSON) goes to
 * stdout; logs go to stderr. */
#define _GNU_SOURCE
#include "api/api.h"
#include "base/buf.h"
#include "base/config.h"
#include "base/sec.h"
#include "base/log.h"
#include "base/nudge.h"
#include "contact/contact.h"
#include "contact/audit.h"
#include "contact/gdpr.h"
#include "contact/retention.h"
#include "dispatch/dispatch.h"
#include "dispatch/sms.h"
#include "contact/gdpr.h"
#include "flows/claim.h"
#include "flows/convapi.h"
#include "flows/flows.h"
#include "flows/hello.h"
#include "flows/httpd.h"
#include "flows/retention.h"
#include "privacy/privacy.h"
#include "stream/stream.h"

#include <curl/curl.h>
#include "tenant/tenant.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_OPTS 16

typedef struct {
    const char *cmd, *sub;
    const char *names[MAX_OPTS], *values[MAX_OPTS];
    int nopts;
    const char *positional[4];
    int npositional;
} cli_t;

static const char usage[] =
    "usage: parley COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve [--listen ADDR:PORT] [--data-dir DIR] [--config FILE] [--tls-cert PEM --tls-key PEM]\n"
    "                            run the server (initialises an empty data dir first)\n"
    "  init --data-dir DIR       create the store, a first project, an access key and an admin\n"
    "                            user; prints them as one JSON object\n"
    "  projects create --name NAME | projects list\n"
    "  keys create --project ID [--name NAME] | keys list --project ID\n"
    "  keys revoke --project ID --key KEY_ID\n"
    "  projects delete --project ID | projects restore --project ID\n"
    "                            delete (purged after privacy.project_grace_days) or undelete\n"
    "  retention run [--as-of RFC3339]  one full retention sweep (as if at that time)\n"
    "  backup --to FILE          consistent copy of the store (safe while serving)\n"
    "  restore --from FILE       check a backup and install it (server stopped)\n"
    "  export --project ID [--to FILE] [--plain-secrets]   the project as JSON Lines\n"
    "  import --from FILE        load an export (one transaction)\n"
    "  version                   print the version\n"
    "\n"
    "common options: --data-dir DIR, --config FILE, --log-level LEVEL\n"
    "\n"
    "settings (INI file keys, environment variables):\n";

static const char *opt(const cli_t *c, const char *name)
{
    for (int i = 0; i < c->nopts; i++)
        if (strcmp(c->names[i], name) == 0) return c->values[i];
    return NULL;
}

static int parse_cli(int argc, char **argv, cli_t *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0 && a[2]) {
            if (c->nopts == MAX_OPTS) return -1;
            const char *eq = strchr(a, '=');
            if (eq) {
                c->names[c->nopts] = strndup(a + 2, (size_t)(eq - a - 2));
                c->values[c->nopts++] = eq + 1;
            } else if (strcmp(a, "--help") == 0 || strcmp(a, "--plain-secrets") == 0) {
                c->names[c->nopts] = strdup(a + 2);
                c->values[c->nopts++] = "1";
            } else {
                if (i + 1 >= argc) {
                    fprintf(stderr, "parley: option %s needs a value\n", a);
                    return -1;
                }
                c->names[c->nopts] = strdup(a + 2);
                c->values[c->nopts++] = argv[++i];
            }
        } else if (!c->cmd) {
            c->cmd = a;
        } else if (!c->sub) {
            c->sub = a;
        } else if (c->npositional < 4) {
            c->positional[c->npositional++] = a;
        } else {
            return -1;
        }
    }
    return 0;
}

static void free_cli(cli_t *c)
{
    for (int i = 0; i < c->nopts; i++)
        free((char *)c->names[i]);
}

/* Flags that are settings: flag name -> setting name. */
static const struct {
    const char *flag, *setting;
} flag_settings[] = {
    {"listen", "listen"},
    {"data-dir", "data_dir"},
    {"log-level", "log_level"},
    {"tls-cert", "tls.cert"},
    {"tls-key", "tls.key"},
    {"threads", "threads"},
    {"rate-limit", "http.rate_limit"},
};

static int load_config(const cli_t *c, config_t *cfg, err_t *e)
{
    config_defaults(cfg);
    const char *file = opt(c, "config");
    if (!file) file = getenv("PARLEY_CONFIG");
    if (file && *file && config_load_file(cfg, file, e) < 0) return -1;
    if (config_load_env(cfg, e) < 0) return -1;
    for (size_t i = 0; i < sizeof flag_settings / sizeof flag_settings[0]; i++) {
        const char *v = opt(c, flag_settings[i].flag);
        char src[64];
        snprintf(src, sizeof src, "--%s", flag_settings[i].flag);
        if (v && config_set(cfg, flag_settings[i].setting, v, src, e) < 0) return -1;
    }
    log_level_t lvl;
    if (log_level_parse(cfg->log_level, &lvl) < 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "log_level must be debug, info, warn, error or off");
    log_set_level(lvl);
    return 0;
}

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    json_decref(v);
}

static int fail(const err_t *e)
{
    fprintf(stderr, "parley: %s\n", e->message);
    return 1;
}

static store_t *open_store(const config_t *cfg, err_t *e)
{
    store_opts_t so = {.synchronous_full = cfg->store_sync_full != 0};
    return store_open(cfg->data_dir, &so, e);
}

static int cmd_init(const config_t *cfg, int quiet_if_done)
{
    err_t e;
    store_t *s = open_store(cfg, &e);
    if (!s) return fail(&e);
    uint8_t key[32];
    store_conn_t *c = store_keyfile_load(cfg->data_dir, key, &e) == 0 ? store_conn(s, &e) : NULL;
    tenant_init_t t;
    int rc = c ? tenant_init(c, &t, &e) : -1;
    store_close(s);
    if (rc < 0) return fail(&e);
    if (rc == 0) {
        if (quiet_if_done) return 0;
        fprintf(stderr,
                "parley: %s is already initialised; use `parley keys create` for a new key\n",
                cfg->data_dir);
        return 1;
    }
    print_json(tenant_init_json(&t));
    memset(&t, 0, sizeof t);
    return 0;
}

static char *read_file(const char *path, err_t *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(e, ERR_INVALID_ARGUMENT, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf_t b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return buf_steal(&b);
}

/* Every retention step of every module, for the server's sweeper and `retention run`. */
static void register_retention_steps(void)
{
    privacy_register_builtin();
    privacy_sweep_register("stream_events", stream_sweep);
    /* The contact center (#7 item 3): per-project settings "contact_center_retention". */
    privacy_sweep_register("contact_center_anonymize", contact_retention_anonymize);
    privacy_sweep_register("contact_center_delete", contact_retention_delete);
    privacy_sweep_register("contact_center_events", contact_retention_events);
    privacy_sweep_register("contact_audit", contact_retention_audit);
    privacy_settings_register("contact_center_retention", contact_retention_settings_get,
                              contact_retention_settings_patch);
    /* Flows (#7 item 4). */
    privacy_sweep_register("flows_anonymize", flows_retention_anonymize);
    privacy_sweep_register("flows_delete", flows_retention_delete);
}

static int cmd_serve(config_t *cfg)
{
    if (cmd_init(cfg, 1) != 0) return 1;
    err_t e;
    api_ctx_t ctx = {.cfg = cfg};
    ctx.store = open_store(cfg, &e);
    if (!ctx.store) return fail(&e);
    if (store_keyfile_load(cfg->data_dir, ctx.master_key, &e) < 0) {
        store_close(ctx.store);
        return fail(&e);
    }
    api_ctx_setup(&ctx);
    char *cert = NULL, *key = NULL;
    if (cfg->tls_cert[0] || cfg->tls_key[0]) {
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            err_set(&e, ERR_INVALID_ARGUMENT, "TLS needs both --tls-cert and --tls-key");
            goto out;
        }
        if (!(cert = read_file(cfg->tls_cert, &e)) || !(key = read_file(cfg->tls_key, &e)))
            goto out;
    }
    /* Block the stop signals before any thread starts, so only sigwait below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    size_t nroutes;
    const http_route_t *routes = api_routes(&nroutes);
    http_server_opts_t ho = {.listen = cfg->listen,
                             .threads = (int)cfg->threads,
                             .max_body = (size_t)cfg->max_body,
                             .tls_cert_pem = cert,
                             .tls_key_pem = key,
                             .routes = routes,
                             .nroutes = nroutes,
                             .authenticate = api_authenticate,
                             .finish = api_finish,
                             .ctx = &ctx};
    dispatch_opts_t dopts = {.max_inflight = (int)cfg->dispatch_inflight,
                             .per_target = (int)cfg->dispatch_per_target,
                             .per_app = (int)cfg->dispatch_per_app,
                             .timeout_ms = (int)cfg->dispatch_timeout_ms,
                             .retry_base_ms = (int)cfg->dispatch_retry_ms,
                             .retry_max_ms = (int)cfg->dispatch_retry_max_ms,
                             .base_url = {[CONVO_WHATSAPP] = cfg->whatsapp_url,
                                          [CONVO_MESSENGER] = cfg->messenger_url,
                                          [CONVO_INSTAGRAM] = cfg->instagram_url,
                                          [CONVO_VIBERBM] = cfg->viber_url,
                                          [CONVO_TELEGRAM] = cfg->telegram_url,
                                          [CONVO_RCS] = cfg->rcs_url}};
    if (cfg->store_group_commit > 0) {
        store_group_opts_t go = {.max_batch = (int)cfg->store_group_commit};
        ctx.writer = store_group_start(ctx.store, &go, &e);
        if (!ctx.writer) goto out;
    }
    dopts.writer = ctx.writer;
    sms_t *sms = sms_start(ctx.store, ctx.seal_key, cfg, &e);
    dopts.sms = sms;
    dispatch_t *dispatcher = dispatch_start(ctx.store, ctx.seal_key, &dopts, &e);
    if (!dispatcher) {
        sms_stop(sms);
        store_group_stop(ctx.writer);
        goto out;
    }
    int lock = -1;
    if (privacy_lock_data_dir(cfg->data_dir, &lock, &e) < 0)
        log_kv(LOG_WARN, "data dir lock not taken", "error", e.message);
    register_retention_steps();
    /* The background services start in this order and stop in reverse; `up` counts how
     * many started, so a failure stops exactly those. */
    int up = 0;
    stream_use_writer(ctx.writer); /* the stream consumers write through it too */
    {
        static const char *const consumers[] = {FLOWS_CONSUMER, CONTACT_CONSUMER,
                                                CONTACT_AUDIT_CONSUMER, NULL};
        store_conn_t *c = store_conn(ctx.store, &e);
        if (!c || stream_cursors_prune(c, consumers, &e) < 0)
            log_kv(LOG_WARN, "stream cursors not checked", "error", e.message);
    }
    privacy_t *sweeper = privacy_start(ctx.store, cfg, &e); /* retention and backups */
    http_server_t *srv = NULL;
    if (sweeper) up = 1;
    if (up == 1 && flows_start(ctx.store, ctx.seal_key, cfg, &e) == 0) up = 2;
    if (up == 2 && flows_convapi_start(ctx.store, &e) < 0) /* conversation entry points */
        log_kv(LOG_WARN, "flows conversation consumer not started", "error", e.message);
    if (up == 2 && contact_audit_start(ctx.store, &e) == 0) up = 3; /* the GDPR audit log */
    /* Flows and Contact meet here: a flow that takes an app's inbound messages keeps them out
     * of the contact-center queue, and anonymizing a person also clears what flows hold. */
    contact_set_flow_claim(flows_claims_inbound);
    contact_anonymize_register(flows_gdpr_anonymize);
    if (up == 3 && contact_start(ctx.store, ctx.seal_key, cfg, &e) == 0) up = 4;
    if (up == 4 && (srv = http_server_start(&ho, &e))) up = 5;
    if (up == 5) {
        char port[16];
        snprintf(port, sizeof port, "%d", http_server_port(srv));
        log_kv(LOG_INFO, "listening", "listen", cfg->listen, "#port", port, "data_dir",
               cfg->data_dir, "version", PARLEY_VERSION, "scheme", cert ? "https" : "http");
        int sig = 0;
        sigwait(&stop, &sig);
        log_kv(LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
        flows_http_shutdown((int)cfg->shutdown_grace); /* answer requests waiting for a flow */
        http_server_stop(srv, (int)cfg->shutdown_grace);
    }
    if (up >= 4) contact_stop();
    if (up >= 3) contact_audit_stop();
    if (up >= 2) {
        flows_convapi_stop();
        flows_stop();
        flows_claim_cleanup();
    }
    if (up >= 1) privacy_stop(sweeper);
    stream_use_writer(NULL);
    if (lock >= 0) close(lock);
    dispatch_stop(dispatcher);
    sms_stop(sms);
    store_group_stop(ctx.writer); /* last: deferred sends and dispatcher turns use it */
    if (up < 5) goto out;
    log_kv(LOG_INFO, "stopped");
    e.code = ERR_OK;
out:
    free(cert);
    free(key);
    api_ctx_cleanup(&ctx);
    store_close(ctx.store);
    return e.code == ERR_OK ? 0 : fail(&e);
}

static const char *cli_opt(void *c, const char *name)
{
    return opt(c, name);
}

static int need(const char *v, const char *what)
{
    if (v) return 1;
    fprintf(stderr, "parley: %s is required\n", what);
    return 0;
}

static int cmd_data(const cli_t *c, const config_t *cfg)
{
    err_t e;
    store_t *s = open_store(cfg, &e);
    if (!s) return fail(&e);
    store_conn_t *conn = store_conn(s, &e);
    int rc = 2;
    char id[ULID_LEN + 1], secret[TENANT_SECRET_MAX];
    const char *sub = c->sub ? c->sub : "";
    if (!conn) {
        rc = -1;
    } else if (strcmp(c->cmd, "projects") == 0 && strcmp(sub, "create") == 0) {
        if (!need(opt(c, "name"), "--name")) goto out;
        rc = tenant_project_create(conn, opt(c, "name"), id, &e);
        if (rc == 0) print_json(json_pack("{s:s, s:s}", "project_id", id, "name", opt(c, "name")));
    } else if (strcmp(c->cmd, "projects") == 0 && strcmp(sub, "list") == 0) {
        json_t *l = tenant_project_list(conn, &e);
        rc = l ? 0 : -1;
        if (l) print_json(l);
    } else if (strcmp(c->cmd, "keys") == 0 && strcmp(sub, "create") == 0) {
        if (!need(opt(c, "project"), "--project")) goto out;
        rc = tenant_key_create(conn, opt(c, "project"), opt(c, "name"), id, secret, &e);
        if (rc == 0)
            print_json(json_pack("{s:s, s:s, s:s}", "project_id", opt(c, "project"), "key_id", id,
                                 "key_secret", secret));
    } else if (strcmp(c->cmd, "keys") == 0 && strcmp(sub, "list") == 0) {
        if (!need(opt(c, "project"), "--project")) goto out;
        json_t *l = tenant_key_list(conn, opt(c, "project"), &e);
        rc = l ? 0 : -1;
        if (l) print_json(l);
    } else if (strcmp(c->cmd, "keys") == 0 && strcmp(sub, "revoke") == 0) {
        const char *key = opt(c, "key") ? opt(c, "key") : c->positional[0];
        if (!need(opt(c, "project"), "--project") || !need(key, "--key")) goto out;
        rc = tenant_key_revoke(conn, opt(c, "project"), key, &e);
        if (rc == 0) print_json(json_pack("{s:s, s:b}", "key_id", key, "revoked", 1));
    } else {
        fprintf(stderr, "parley: unknown command \"%s %s\"; see parley --help\n", c->cmd, sub);
    }
out:
    store_close(s);
    if (rc < 0) return fail(&e);
    return rc;
}

int main(int argc, char **argv)
{
    tenant_project_hook = flows_hello_deploy; /* io: new projects get the Hello world flow */
    cli_t c;
    if (parse_cli(argc, argv, &c) < 0) {
        free_cli(&c);
        fputs("parley: bad arguments; see parley --help\n", stderr);
        return 2;
    }
    int rc;
    config_t cfg;
    err_t e;
    if (!c.cmd || opt(&c, "help") || strcmp(c.cmd, "help") == 0) {
        int asked = opt(&c, "help") || (c.cmd && strcmp(c.cmd, "help") == 0);
        fputs(usage, asked ? stdout : stderr);
        if (asked) config_describe();
        rc = asked ? 0 : 2;
    } else if (strcmp(c.cmd, "version") == 0) {
        printf("parley %s\n", PARLEY_VERSION);
        rc = 0;
    } else if (sec_init() < 0 || nudge_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fputs("parley: cannot initialise libsodium, eventfd or libcurl\n", stderr);
        rc = 1;
    } else if (load_config(&c, &cfg, &e) < 0) {
        rc = fail(&e);
    } else if (strcmp(c.cmd, "serve") == 0) {
        rc = cmd_serve(&cfg);
    } else if (strcmp(c.cmd, "init") == 0) {
        rc = cmd_init(&cfg, 0);
    } else if (privacy_cli_handles(c.cmd, c.sub)) {
        register_retention_steps();
        rc = privacy_cli(c.cmd, c.sub, cli_opt, &c, &cfg);
    } else if (strcmp(c.cmd, "projects") == 0 || strcmp(c.cmd, "keys") == 0) {
        rc = cmd_data(&c, &cfg);
    } else {
        fprintf(stderr, "parley: unknown command \"%s\"; see parley --help\n", c.cmd);
        rc = 2;
    }
    free_cli(&c);
    curl_global_cleanup();
    return rc;
}
