/* config.c: a descriptor table drives defaults, INI parsing, environment overrides and
 * help text, so adding a setting is one line here and one field in config_t. */
#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { CFG_STR, CFG_INT, CFG_DBL } cfg_type_t;

typedef struct {
    const char *name;
    cfg_type_t type;
    size_t offset, size;
    const char *def;
    int64_t min, max;
    const char *help;
} cfg_desc_t;

#define STR(n, f, d, h)                                                                            \
    {                                                                                              \
        n, CFG_STR, offsetof(config_t, f), sizeof(((config_t *)0)->f), d, 0, 0, h                  \
    }
#define INT(n, f, d, lo, hi, h)                                                                    \
    {                                                                                              \
        n, CFG_INT, offsetof(config_t, f), 0, d, lo, hi, h                                         \
    }
#define DBL(n, f, d, lo, hi, h)                                                                    \
    {                                                                                              \
        n, CFG_DBL, offsetof(config_t, f), 0, d, lo, hi, h                                         \
    }

static const cfg_desc_t cfg_table[] = {
    STR("listen", listen, "127.0.0.1:8080", "address and port to listen on"),
    STR("data_dir", data_dir, "./var", "directory holding the store and keys"),
    STR("log_level", log_level, "info", "debug, info, warn, error or off"),
    INT("threads", threads, "0", 0, 256, "HTTP worker threads (0 = one per core)"),
    INT("http.max_body", max_body, "1048576", 1024, 1073741824, "largest request body, bytes"),
    INT("http.shutdown_grace", shutdown_grace, "10", 0, 3600,
        "seconds to let in-flight requests finish on SIGTERM"),
    DBL("http.rate_limit", rate_limit, "0", 0, 1000000, "requests/s per project (0 = off)"),
    INT("http.rate_burst", rate_burst, "0", 0, 10000000, "rate-limit burst (0 = 1 s worth)"),
    INT("auth.token_ttl", token_ttl, "3600", 1, 86400, "OAuth2 access token lifetime, s"),
    INT("dispatch.max_inflight", dispatch_inflight, "64", 1, 10000, "callbacks in flight at once"),
    INT("dispatch.per_target", dispatch_per_target, "4", 1, 1000,
        "callbacks in flight per webhook"),
    INT("dispatch.per_app", dispatch_per_app, "0", 0, 10000,
        "requests in flight per app (0 = a quarter of max_inflight)"),
    INT("dispatch.timeout_ms", dispatch_timeout_ms, "10000", 100, 600000,
        "callback request timeout, ms"),
    INT("dispatch.retry_base_ms", dispatch_retry_ms, "1000", 10, 3600000,
        "first callback retry delay, ms (doubles per attempt, with jitter)"),
    INT("dispatch.retry_max_ms", dispatch_retry_max_ms, "3600000", 10, 86400000,
        "longest callback retry delay, ms"),
    INT("store.group_commit", store_group_commit, "256", 0, 100000,
        "messages:send writes committed together, at most (0 = one transaction per request)"),
    INT("store.synchronous_full", store_sync_full, "0", 0, 1,
        "1 = fsync every commit (survives power loss; slower), 0 = survives process crashes"),
    STR("channels.whatsapp_url", whatsapp_url, "",
        "WhatsApp Cloud API base (default: the real host)"),
    STR("channels.messenger_url", messenger_url, "", "Messenger Platform API base"),
    STR("channels.instagram_url", instagram_url, "", "Instagram Messaging API base"),
    STR("channels.viber_url", viber_url, "", "Viber REST API base"),
    STR("channels.telegram_url", telegram_url, "", "Telegram Bot API base"),
    STR("channels.rcs_url", rcs_url, "", "Google RBM API base"),
    INT("privacy.batch", privacy_batch, "500", 1, 100000, "rows removed per sweeper batch"),
    INT("privacy.batch_ms", privacy_batch_ms, "50", 1, 60000,
        "time budget of one sweeper batch, ms (a step stops early when it is spent)"),
    INT("privacy.pause_ms", privacy_pause_ms, "20", 0, 60000,
        "pause between sweeper batches, ms (lets live writes through)"),
    INT("privacy.interval_s", privacy_interval_s, "60", 1, 86400,
        "pause between two full retention passes, s"),
    INT("privacy.project_grace_days", privacy_grace_days, "30", 0, 3650,
        "days a deleted project can still be exported or restored before it is purged"),
    INT("backup.interval_s", backup_interval_s, "86400", 0, 31536000,
        "automatic backup into DATA_DIR/backups every so many s (0 = off)"),
    INT("backup.keep", backup_keep, "14", 1, 10000, "automatic backups kept"),
    STR("tls.cert", tls_cert, "", "PEM certificate: enables HTTPS together with tls.key"),
    STR("tls.key", tls_key, "", "PEM private key"),
    STR("public_url", public_url, "http://127.0.0.1:8080",
        "public base URL of this server, for links in mails (invitations)"),
    STR("smtp.host", smtp_host, "", "SMTP server for invitation mails (empty: log the link)"),
    INT("smtp.port", smtp_port, "587", 1, 65535, "SMTP port (465: implicit TLS, else STARTTLS)"),
    STR("smtp.user", smtp_user, "", "SMTP user name (empty: no authentication)"),
    STR("smtp.password", smtp_password, "", "SMTP password"),
    STR("smtp.from", smtp_from, "parley@localhost", "sender address of Parley's mails"),
    INT("auth.session_idle", session_idle, "28800", 1, 31536000, "contact session idle timeout, s"),
    INT("auth.session_max", session_max, "604800", 1, 31536000,
        "contact session absolute lifetime, s"),
    INT("auth.login_failures", login_failures, "5", 1, 1000,
        "failed logins allowed per email and per IP within auth.login_window"),
    INT("auth.login_window", login_window, "900", 1, 86400, "failed-login window, s"),
    INT("auth.invitation_ttl", invitation_ttl, "604800", 60, 31536000,
        "how long an invitation link stays valid, s"),
    INT("contact.offline_grace_s", contact_offline_grace_s, "120", 0, 86400,
        "seconds an agent gone offline keeps their conversations before they are requeued"),
    INT("contact.stats_interval_s", contact_stats_interval_s, "30", 1, 3600,
        "seconds between contact-center stats events on the real-time stream"),
    INT("contact.events_keep_s", contact_events_keep_s, "86400", 60, 31536000,
        "how long contact-center real-time events stay resumable, s"),
};
#define CFG_COUNT (sizeof cfg_table / sizeof cfg_table[0])

static int cfg_apply(config_t *c, const cfg_desc_t *d, const char *value, const char *source,
                     err_t *e)
{
    char *field = (char *)c + d->offset;
    char *end;
    switch (d->type) {
    case CFG_STR:
        if (strlen(value) >= d->size)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: %s is too long", source, d->name);
        strcpy(field, value);
        return 0;
    case CFG_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < d->min || v > d->max)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: %s must be an integer in %lld..%lld, got \"%s\"", source, d->name,
                           (long long)d->min, (long long)d->max, value);
        *(int64_t *)(void *)field = v;
        return 0;
    }
    case CFG_DBL: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !(v >= (double)d->min && v <= (double)d->max))
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: %s must be a number in %lld..%lld, got \"%s\"", source, d->name,
                           (long long)d->min, (long long)d->max, value);
        *(double *)(void *)field = v;
        return 0;
    }
    }
    return 0;
}

void config_defaults(config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < CFG_COUNT; i++)
        cfg_apply(c, &cfg_table[i], cfg_table[i].def, "default", NULL);
}

/* smsc.NAME.KEY: a named SMSC connection. */
static int smsc_set(config_t *c, const char *name, const char *value, const char *source, err_t *e)
{
    const char *dot = strrchr(name, '.');
    size_t nlen = dot > name + 5 ? (size_t)(dot - name - 5) : 0;
    if (nlen == 0 || nlen >= sizeof c->smsc[0].name)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected [smsc.NAME] with a short NAME",
                       source);
    config_smsc_t *s = NULL;
    for (int i = 0; i < c->nsmsc && !s; i++)
        if (strlen(c->smsc[i].name) == nlen && strncmp(c->smsc[i].name, name + 5, nlen) == 0)
            s = &c->smsc[i];
    if (!s) {
        if (c->nsmsc == CONFIG_SMSC_MAX)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: at most %d SMSC sections", source,
                           CONFIG_SMSC_MAX);
        s = &c->smsc[c->nsmsc++];
        memset(s, 0, sizeof *s);
        memcpy(s->name, name + 5, nlen);
        s->port = 2775;
    }
    const char *key = dot + 1;
    char *end;
    struct {
        const char *key;
        char *dst;
        size_t cap;
    } strs[] = {{"host", s->host, sizeof s->host},
                {"system_id", s->system_id, sizeof s->system_id},
                {"password", s->password, sizeof s->password},
                {"system_type", s->system_type, sizeof s->system_type},
                {"source_addr", s->source_addr, sizeof s->source_addr}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strcmp(key, strs[i].key) == 0) {
            if (strlen(value) >= strs[i].cap)
                return err_set(e, ERR_INVALID_ARGUMENT, "%s: %s is at most %zu characters", source,
                               name, strs[i].cap - 1);
            strcpy(strs[i].dst, value);
            return 0;
        }
    if (strcmp(key, "port") == 0 || strcmp(key, "window") == 0) {
        long long v = strtoll(value, &end, 10);
        if (*end || end == value || v < 1 || v > 65535)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: %s must be 1..65535", source, name);
        *(key[0] == 'p' ? &s->port : &s->window) = v;
        return 0;
    }
    if (strcmp(key, "throughput") == 0) {
        double v = strtod(value, &end);
        if (*end || end == value || !(v >= 0 && v <= 100000))
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: %s must be 0..100000", source, name);
        s->throughput = v;
        return 0;
    }
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: unknown setting \"%s\"", source, name);
}

int config_set(config_t *c, const char *name, const char *value, const char *source, err_t *e)
{
    if (strncmp(name, "smsc.", 5) == 0) return smsc_set(c, name, value, source, e);
    for (size_t i = 0; i < CFG_COUNT; i++)
        if (strcmp(cfg_table[i].name, name) == 0)
            return cfg_apply(c, &cfg_table[i], value, source, e);
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: unknown setting \"%s\"", source, name);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int config_load_file(config_t *c, const char *path, err_t *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, ERR_INVALID_ARGUMENT, "cannot open config file %s: %s", path,
                       strerror(errno));
    char line[4096], section[64] = "", source[PATH_MAX + 32];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(source, sizeof source, "%s:%d", path, lineno);
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] || close - s - 1 >= (long)sizeof section) {
                rc = err_set(e, ERR_INVALID_ARGUMENT, "%s: malformed section header", source);
                break;
            }
            *close = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = err_set(e, ERR_INVALID_ARGUMENT, "%s: expected key = value", source);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1), name[160];
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') value[vl - 1] = '\0', value++;
        snprintf(name, sizeof name, "%s%s%s", section, *section ? "." : "", key);
        rc = config_set(c, name, value, source, e);
    }
    fclose(f);
    return rc;
}

static void env_name(const char *name, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "PARLEY_");
    for (const char *p = name; *p && n + 1 < cap; p++)
        out[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

int config_load_env(config_t *c, err_t *e)
{
    for (size_t i = 0; i < CFG_COUNT; i++) {
        char var[96];
        env_name(cfg_table[i].name, var, sizeof var);
        const char *v = getenv(var);
        if (v && cfg_apply(c, &cfg_table[i], v, var, e) < 0) return -1;
    }
    return 0;
}

void config_describe(void)
{
    for (size_t i = 0; i < CFG_COUNT; i++) {
        char var[96];
        env_name(cfg_table[i].name, var, sizeof var);
        printf("  %-22s %-28s %s (default \"%s\")\n", cfg_table[i].name, var, cfg_table[i].help,
               cfg_table[i].def);
    }
}
