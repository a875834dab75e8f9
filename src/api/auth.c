/* auth.c: who is calling. HTTP Basic with an access key, or a Bearer token minted by
 * POST /oauth2/token. Tokens are stateless: "pt1.<payload>.<mac>" where payload is
 * key_id:project_id:expiry and mac is HMAC-SHA256 under a key derived from the data
 * dir's secret, so no token table is needed; every use still checks that the key is not
 * revoked, so revocation takes effect at once. */
#include "api/api.h"
#include "base/clock.h"
#include "base/sec.h"
#include "base/log.h"
#include "tenant/tenant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void api_ctx_setup(api_ctx_t *ctx)
{
    static const char label[] = "parley oauth2 token signing v1";
    static const char seal_label[] = "parley secrets at rest v1";
    sec_hash(ctx->master_key, label, sizeof label - 1, ctx->token_key);
    sec_hash(ctx->master_key, seal_label, sizeof seal_label - 1, ctx->seal_key);
    ctx->ratelimit = ctx->cfg->rate_limit > 0
                         ? ratelimit_new(ctx->cfg->rate_limit, (double)ctx->cfg->rate_burst)
                         : NULL;
    ctx->started_ms = clock_now_ms();
}

void api_ctx_cleanup(api_ctx_t *ctx)
{
    ratelimit_free(ctx->ratelimit);
    ctx->ratelimit = NULL;
}

store_conn_t *api_conn(http_req_t *req)
{
    api_ctx_t *ctx = http_ctx(req);
    err_t e;
    store_conn_t *c = store_conn(ctx->store, &e);
    if (!c) http_reply_err(req, &e);
    return c;
}

int api_token_issue(const uint8_t key[32], const char *key_id, const char *project_id,
                    int64_t expires_ms, char *out, size_t cap)
{
    char payload[128], p64[192], m64[64];
    uint8_t mac[SEC_HMAC_LEN];
    int n =
        snprintf(payload, sizeof payload, "%s:%s:%lld", key_id, project_id, (long long)expires_ms);
    if (n < 0 || (size_t)n >= sizeof payload) return -1;
    sec_hmac_sha256(key, 32, payload, (size_t)n, mac);
    if (sec_b64url_encode(payload, (size_t)n, p64, sizeof p64) < 0 ||
        sec_b64url_encode(mac, sizeof mac, m64, sizeof m64) < 0)
        return -1;
    return snprintf(out, cap, "pt1.%s.%s", p64, m64) < (int)cap ? 0 : -1;
}

int api_token_check(const uint8_t key[32], const char *token, int64_t now_ms, char key_id[27],
                    char project_id[27], err_t *e)
{
    char p64[192], payload[160];
    uint8_t mac[SEC_HMAC_LEN], want[SEC_HMAC_LEN];
    const char *dot = strncmp(token, "pt1.", 4) == 0 ? strchr(token + 4, '.') : NULL;
    size_t plen = dot ? (size_t)(dot - token - 4) : 0;
    if (!dot || plen == 0 || plen >= sizeof p64)
        return err_set(e, ERR_UNAUTHENTICATED, "malformed bearer token");
    memcpy(p64, token + 4, plen);
    p64[plen] = '\0';
    int n = sec_b64url_decode(p64, payload, sizeof payload - 1);
    if (n <= 0 || sec_b64url_decode(dot + 1, mac, sizeof mac) != (int)sizeof mac)
        return err_set(e, ERR_UNAUTHENTICATED, "malformed bearer token");
    sec_hmac_sha256(key, 32, payload, (size_t)n, want);
    if (!sec_equal(mac, want, sizeof mac))
        return err_set(e, ERR_UNAUTHENTICATED, "invalid bearer token");
    payload[n] = '\0';
    char *c1 = strchr(payload, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || c1 - payload != 26 || c2 - c1 - 1 != 26)
        return err_set(e, ERR_UNAUTHENTICATED, "invalid bearer token");
    if (strtoll(c2 + 1, NULL, 10) <= now_ms)
        return err_set(e, ERR_UNAUTHENTICATED, "bearer token expired");
    memcpy(key_id, payload, 26);
    key_id[26] = '\0';
    memcpy(project_id, c1 + 1, 26);
    project_id[26] = '\0';
    return 0;
}

/* "Basic base64(id:secret)" -> id, secret. */
static int parse_basic(const char *value, char *id, size_t idcap, char *secret, size_t seccap,
                       err_t *e)
{
    char raw[256];
    int n = sec_b64_decode(value, raw, sizeof raw - 1);
    if (n < 0) return err_set(e, ERR_UNAUTHENTICATED, "malformed Basic credentials: not base64");
    raw[n] = '\0';
    char *colon = strchr(raw, ':');
    if (!colon || colon == raw || (size_t)(colon - raw) >= idcap || strlen(colon + 1) >= seccap ||
        strlen(raw) != (size_t)n)
        return err_set(e, ERR_UNAUTHENTICATED,
                       "malformed Basic credentials: expected key_id:key_secret");
    *colon = '\0';
    snprintf(id, idcap, "%s", raw);
    snprintf(secret, seccap, "%s", colon + 1);
    return 0;
}

static int check_credentials(http_req_t *req, store_conn_t *c, char project[27], char key_id[27],
                             err_t *e)
{
    const char *h = http_header(req, "Authorization");
    if (!h || !*h)
        return err_set(
            e, ERR_UNAUTHENTICATED,
            "missing Authorization header: use Basic key_id:key_secret or a Bearer token "
            "from POST /oauth2/token");
    if (strncasecmp(h, "Basic ", 6) == 0) {
        char secret[TENANT_SECRET_MAX + 8];
        char id[64];
        if (parse_basic(h + 6, id, sizeof id, secret, sizeof secret, e) < 0) return -1;
        if (!ulid_valid(id))
            return err_set(e, ERR_UNAUTHENTICATED, "invalid or revoked access key");
        if (tenant_key_verify(c, id, secret, project, e) < 0) return -1;
        memcpy(key_id, id, ULID_LEN + 1);
        return 0;
    }
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        api_ctx_t *ctx = http_ctx(req);
        char tok_project[27];
        if (api_token_check(ctx->token_key, h + 7, clock_now_ms(), key_id, tok_project, e) < 0)
            return -1;
        if (tenant_key_active(c, key_id, project, e) < 0) return -1;
        if (strcmp(project, tok_project) != 0)
            return err_set(e, ERR_UNAUTHENTICATED, "invalid bearer token");
        return 0;
    }
    return err_set(e, ERR_UNAUTHENTICATED, "unsupported Authorization scheme: use Basic or Bearer");
}

void api_finish(void *arg)
{
    api_ctx_t *ctx = arg;
    err_t e;
    store_conn_t *c = store_conn(ctx->store, &e);
    if (c) store_config_pin(c, 0);
}

int api_authenticate(http_req_t *req)
{
    api_ctx_t *ctx = http_ctx(req);
    store_conn_t *c = api_conn(req);
    if (!c) return -1;
    store_config_pin(c, 1); /* until api_finish: the key check and the send read it once */
    char project[27] = "", key_id[27] = "";
    err_t e;
    if (check_credentials(req, c, project, key_id, &e) < 0) {
        /* The SDK refreshes its token only when WWW-Authenticate says "expired". */
        if (strstr(e.message, "expired"))
            http_add_header(req, "WWW-Authenticate",
                            "Bearer error=\"invalid_token\", error_description=\"token expired\"");
        else if (e.code == ERR_UNAUTHENTICATED)
            http_add_header(req, "WWW-Authenticate", "Basic realm=\"parley\", Bearer");
        http_reply_err(req, &e);
        return -1;
    }
    http_set_principal(req, project, key_id);
    /* Same answer whether or not the other project exists: no existence oracle. */
    const char *want = http_param(req, "project_id");
    if (want && strcmp(want, project) != 0) {
        http_reply_error(req, ERR_PERMISSION_DENIED,
                         "this access key has no access to project %.64s", want);
        return -1;
    }
    double retry;
    if (ctx->ratelimit && !ratelimit_take(ctx->ratelimit, project, &retry)) {
        char secs[32];
        snprintf(secs, sizeof secs, "%d", (int)ceil(retry));
        http_add_header(req, "Retry-After", secs);
        http_reply_error(req, ERR_RESOURCE_EXHAUSTED,
                         "rate limit of %g requests/s for project %s exceeded",
                         ctx->cfg->rate_limit, project);
        return -1;
    }
    return 0;
}

void api_oauth2_token(http_req_t *req)
{
    api_ctx_t *ctx = http_ctx(req);
    store_conn_t *c = api_conn(req);
    if (!c) return;
    err_t e;
    char id[64] = "", secret[TENANT_SECRET_MAX + 8] = "", project[27];
    const char *h = http_header(req, "Authorization");
    if (h && strncasecmp(h, "Basic ", 6) == 0) {
        if (parse_basic(h + 6, id, sizeof id, secret, sizeof secret, &e) < 0) goto unauth;
    } else if (http_form(req, "client_id") && http_form(req, "client_secret")) {
        snprintf(id, sizeof id, "%s", http_form(req, "client_id"));
        snprintf(secret, sizeof secret, "%s", http_form(req, "client_secret"));
    } else {
        err_set(&e, ERR_UNAUTHENTICATED,
                "client authentication required: HTTP Basic key_id:key_secret");
        goto unauth;
    }
    if (!ulid_valid(id)) {
        err_set(&e, ERR_UNAUTHENTICATED, "invalid or revoked access key");
        goto unauth;
    }
    if (tenant_key_verify(c, id, secret, project, &e) < 0) goto unauth;
    const char *grant = http_form(req, "grant_type");
    if (!grant) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "missing grant_type; only client_credentials is supported");
        return;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        http_reply_error(req, ERR_INVALID_ARGUMENT,
                         "unsupported grant_type \"%.64s\"; only client_credentials is supported",
                         grant);
        return;
    }
    char token[512], scope[64];
    int64_t ttl = ctx->cfg->token_ttl;
    api_token_issue(ctx->token_key, id, project, clock_now_ms() + ttl * 1000, token, sizeof token);
    snprintf(scope, sizeof scope, "projects/%s", project);
    http_add_header(req, "Cache-Control", "no-store");
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s, s:I, s:s}", "access_token", token, "token_type", "bearer",
                              "expires_in", (json_int_t)ttl, "scope", scope));
    return;
unauth:
    if (e.code == ERR_UNAUTHENTICATED)
        http_add_header(req, "WWW-Authenticate", "Basic realm=\"parley\"");
    http_reply_err(req, &e);
}
