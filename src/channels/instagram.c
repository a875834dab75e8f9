/* instagram.c: the INSTAGRAM channel adapter, for Instagram Messaging (Graph API):
 * POST {base}/me/messages, or {base}/{business_account_id}/messages when the credential
 * names the account, with a Bearer token and {"recipient":{"id":IGSID},"message":{...}};
 * the "instagram" webhook (entry[].messaging[], or entry[].changes[] with field
 * "messages") signed with X-Hub-Signature-256; and GET {base}/me?fields=id,username as
 * the credential check. The credential is instagram_credentials {token,
 * business_account_id?}; the app secret is its callback_secret. Message shapes and webhook
 * events are shared with Messenger in meta.c; mapping table: docs/channels.md. */
#include "base/buf.h"
#include "channels/channel.h"
#include "channels/meta.h"
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

#define IG_TEXT_MAX  1000 /* UTF-8 bytes */
#define IG_TOKEN_MAX 900

static const channel_meta_msgr_t ig_opts = {
    .channel = "Instagram",
    .text_max = IG_TEXT_MAX,
    .text_in_bytes = 1,
    .button_template = 0,
    .phone_buttons = 0,
};

static const char *ig_token(json_t *cred, err_t *e)
{
    const char *token = channel_meta_cred(cred, "instagram_credentials", "token");
    if (!token || strlen(token) > IG_TOKEN_MAX) {
        err_set(e, ERR_FAILED_PRECONDITION,
                "the INSTAGRAM credential needs instagram_credentials.token (the access token)");
        return NULL;
    }
    return token;
}

static json_t *ig_transcode(json_t *app_message, err_t *e)
{
    return channel_meta_msgr_message(app_message, &ig_opts, e);
}

static int ig_send(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = ig_token(in->credential, e);
    if (!token) return -1;
    if (!in->recipient || !*in->recipient)
        return err_set(e, ERR_INVALID_ARGUMENT, "no Instagram recipient (Instagram-scoped id)");
    const char *tag = channel_str_or(in->channel_properties, "INSTAGRAM_MESSAGE_TAG");
    json_t *msg = channel_meta_msgr_message(in->app_message, &ig_opts, e);
    if (!msg) return -1;
    json_t *body = json_pack("{s:{s:s}}", "recipient", "id", in->recipient);
    if (*tag) {
        json_object_set_new(body, "messaging_type", json_string("MESSAGE_TAG"));
        json_object_set_new(body, "tag", json_string(tag));
    }
    json_object_set_new(body, "message", msg);
    const char *account =
        channel_meta_cred(in->credential, "instagram_credentials", "business_account_id");
    char *base = channel_meta_base(in->base_url), *id = channel_meta_pct(account ? account : "me");
    buf_t url;
    buf_init(&url);
    buf_printf(&url, "%s/%s/messages", base, id);
    char *s = channel_meta_dump(body);
    json_decref(body);
    channel_http_set(out, "POST", url.data, "application/json", s);
    channel_http_header(out, "Authorization: Bearer %s", token);
    free(s);
    free(base);
    free(id);
    buf_free(&url);
    return 0;
}

static int ig_check(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = ig_token(in->credential, e);
    if (!token) return -1;
    char *base = channel_meta_base(in->base_url);
    buf_t url;
    buf_init(&url);
    buf_printf(&url, "%s/me?fields=id,username", base);
    channel_http_set(out, "GET", url.data, NULL, NULL);
    channel_http_header(out, "Authorization: Bearer %s", token);
    free(base);
    buf_free(&url);
    return 0;
}

static int ig_verify(const channel_inbound_t *in, json_t *credential, const char *secret, err_t *e)
{
    (void)credential;
    return channel_meta_verify(in, secret, e);
}

static int ig_handshake(const channel_inbound_t *in, json_t *credential, const char *secret,
                        channel_reply_t *reply, err_t *e)
{
    (void)credential;
    return channel_meta_handshake(in, secret, reply, e);
}

static int ig_parse(const channel_inbound_t *in, channel_events_t *out, err_t *e)
{
    return channel_meta_msgr_parse(in, "instagram", 1, out, e);
}

const channel_t channel_instagram = {
    .channel = CONVO_INSTAGRAM,
    .name = "INSTAGRAM",
    .credential_key = "instagram_credentials",
    .default_base_url = CHANNEL_META_BASE_URL,
    .send = ig_send,
    .send_result = channel_meta_msgr_result,
    .verify = ig_verify,
    .parse = ig_parse,
    .handshake = ig_handshake,
    .check = ig_check,
    .check_result = channel_meta_check_result,
    .transcode = ig_transcode,
};
