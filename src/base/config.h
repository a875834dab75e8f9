/* config.h: Parley's settings. Precedence, lowest first: built-in defaults, the INI file
 * (--config FILE, else PARLEY_CONFIG), PARLEY_* environment variables, command-line flags.
 * INI `[section] key = value` names the setting "section.key"; its environment variable is
 * PARLEY_SECTION_KEY (upper case, dots to underscores). */
#ifndef PARLEY_BASE_CONFIG_H
#define PARLEY_BASE_CONFIG_H

#include "base/err.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* An SMSC connection from a [smsc.NAME] section (SMS credentials name it). */
#define CONFIG_SMSC_MAX 8
typedef struct {
    char name[32];
    char host[128];
    int64_t port;
    char system_id[16];
    char password[9];
    char system_type[13];
    char source_addr[21];
    int64_t window;
    double throughput;
} config_smsc_t;

typedef struct {
    char listen[128];                /* listen: ADDR:PORT */
    char data_dir[PATH_MAX];         /* data_dir */
    char log_level[16];              /* log_level: debug|info|warn|error|off */
    int64_t threads;                 /* threads: HTTP worker threads, 0 = one per core */
    int64_t max_body;                /* http.max_body: bytes */
    int64_t shutdown_grace;          /* http.shutdown_grace: seconds to finish in-flight requests */
    double rate_limit;               /* http.rate_limit: requests/s per project, 0 = off */
    int64_t rate_burst;              /* http.rate_burst: bucket size, 0 = one second's worth */
    int64_t token_ttl;               /* auth.token_ttl: OAuth2 token lifetime, seconds */
    int64_t dispatch_inflight;       /* dispatch.max_inflight: callbacks in flight */
    int64_t dispatch_per_target;     /* dispatch.per_target: in flight per webhook */
    int64_t dispatch_per_app;        /* dispatch.per_app: in flight per app (0 = max/4) */
    int64_t dispatch_timeout_ms;     /* dispatch.timeout_ms: per request */
    int64_t dispatch_retry_ms;       /* dispatch.retry_base_ms: first retry delay */
    int64_t dispatch_retry_max_ms;   /* dispatch.retry_max_ms */
    int64_t store_group_commit;      /* store.group_commit: max sends per group commit, 0 = off */
    int64_t store_sync_full;         /* store.synchronous_full: 1 = synchronous=FULL */
    char whatsapp_url[256];          /* channels.whatsapp_url: provider API base (tests: a fake) */
    char messenger_url[256];         /* channels.messenger_url */
    char instagram_url[256];         /* channels.instagram_url */
    char viber_url[256];             /* channels.viber_url */
    char telegram_url[256];          /* channels.telegram_url */
    char rcs_url[256];               /* channels.rcs_url */
    char tls_cert[PATH_MAX];         /* tls.cert: PEM file, enables HTTPS with tls.key */
    char tls_key[PATH_MAX];          /* tls.key */
    int64_t privacy_batch;           /* privacy.batch: rows per sweeper batch */
    int64_t privacy_batch_ms;        /* privacy.batch_ms: time budget of one batch, ms */
    int64_t privacy_pause_ms;        /* privacy.pause_ms: pause between batches, ms */
    int64_t privacy_interval_s;      /* privacy.interval_s: pause between full passes, s */
    int64_t privacy_grace_days;      /* privacy.project_grace_days: deleted project kept, days */
    int64_t backup_interval_s;       /* backup.interval_s: automatic backups, s (0 = off) */
    int64_t backup_keep;             /* backup.keep: automatic backups kept */
    char public_url[256];            /* public_url: base of links Parley mails (invitations) */
    char smtp_host[256];             /* smtp.host: mail server; "" = log invitation links */
    int64_t smtp_port;               /* smtp.port */
    char smtp_user[128];             /* smtp.user */
    char smtp_password[128];         /* smtp.password */
    char smtp_from[256];             /* smtp.from: sender address */
    int64_t session_idle;            /* auth.session_idle: s without use before a session ends */
    int64_t session_max;             /* auth.session_max: s a session lives at most */
    int64_t login_failures;          /* auth.login_failures: failed logins allowed per window */
    int64_t login_window;            /* auth.login_window: s */
    int64_t invitation_ttl;          /* auth.invitation_ttl: s an invitation stays valid */
    int64_t contact_offline_grace_s; /* contact.offline_grace_s: offline agent keeps convs, s */
    int64_t contact_stats_interval_s;    /* contact.stats_interval_s: stats events period, s */
    int64_t contact_events_keep_s;       /* contact.events_keep_s: SSE resume window, s */
    config_smsc_t smsc[CONFIG_SMSC_MAX]; /* smsc.NAME.host, .port, .system_id, .password,
                                            .system_type, .source_addr, .window, .throughput */
    int nsmsc;
} config_t;

void config_defaults(config_t *c);
/* Apply one setting by name ("http.max_body"); source is used in error messages. */
int config_set(config_t *c, const char *name, const char *value, const char *source, err_t *e);
/* Apply an INI file. A missing file is an error: it was asked for by name. */
int config_load_file(config_t *c, const char *path, err_t *e);
/* Apply PARLEY_* variables from environ (unknown PARLEY_ variables are ignored). */
int config_load_env(config_t *c, err_t *e);
/* Print every setting with its env name and default, for --help. */
void config_describe(void);

#endif
