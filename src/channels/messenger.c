/* messenger.c: the MESSENGER channel adapter, for the Messenger Platform Send API (Graph
 * API): POST {base}/me/messages?access_token=<page access token> with
 * {"recipient":{"id":PSID},"messaging_type",...,"message":{...}}, the "page" webhook
 * (entry[].messaging[] messages, postbacks, deliveries and reads) signed with
 * X-Hub-Signature-256, and GET {base}/me as the credential check. The credential is
 * static_token {token: the page access token}; the app secret is its callback_secret.
 * Message shapes and webhook events are shared with Instagram in meta.c; the mapping
 * table is docs/channels.md. */
#include "base/buf.h"
#include "channels/channel.h"
#include "channels/meta.h"
#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

#define MS_TEXT_MAX  2000 /* characters */
#define MS_TOKEN_MAX 900

static const channel_meta_msgr_t ms_opts = {
    .channel = "Messenger",
    .text_max = MS_TEXT_MAX,
    .text_in_bytes = 0,
    .button_template = 1,
    .phone_buttons = 1,
};

static const char *ms_token(json_t *cred, err_t *e)
{
    const char *token = channel_meta_cred(cred, "static_token", "token");
    if (!token || strlen(token) > MS_TOKEN_MAX) {
        err_set(e, ERR_FAILED_PRECONDITION,
                "the MESSENGER credential needs static_token.token (the page access token)");
        return NULL;
    }
    return token;
}

/* {base}{path}?access_token=<token>[&extra] (malloc'd). */
static char *ms_url(const char *base_url, const char *path, const char *token)
{
    char *base = channel_meta_base(base_url), *tok = channel_meta_pct(token);
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s%s?access_token=%s", base, path, tok);
    free(base);
    free(tok);
    return buf_steal(&b);
}

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0) return 1;
    return 0;
}

static json_t *ms_transcode(json_t *app_message, err_t *e)
{
    return channel_meta_msgr_message(app_message, &ms_opts, e);
}

static int ms_send(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    static const char *const types[] = {"RESPONSE", "UPDATE", "MESSAGE_TAG", NULL};
    static const char *const notes[] = {"REGULAR", "SILENT_PUSH", "NO_PUSH", NULL};
    const char *token = ms_token(in->credential, e);
    if (!token) return -1;
    if (!in->recipient || !*in->recipient)
        return err_set(e, ERR_INVALID_ARGUMENT, "no Messenger recipient (page-scoped id)");
    json_t *props = in->channel_properties;
    const char *type = channel_str_or(props, "MESSENGER_MESSAGING_TYPE");
    const char *tag = channel_str_or(props, "MESSENGER_MESSAGE_TAG");
    const char *note = channel_str_or(props, "MESSENGER_NOTIFICATION_TYPE");
    if (!*type) type = *tag ? "MESSAGE_TAG" : "RESPONSE";
    if (!one_of(type, types))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "channel_properties.MESSENGER_MESSAGING_TYPE must be RESPONSE, UPDATE or "
                       "MESSAGE_TAG");
    if (strcmp(type, "MESSAGE_TAG") == 0 && !*tag)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "MESSENGER_MESSAGING_TYPE MESSAGE_TAG needs "
                       "channel_properties.MESSENGER_MESSAGE_TAG");
    if (*note && !one_of(note, notes))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "channel_properties.MESSENGER_NOTIFICATION_TYPE must be REGULAR, "
                       "SILENT_PUSH or NO_PUSH");
    json_t *msg = channel_meta_msgr_message(in->app_message, &ms_opts, e);
    if (!msg) return -1;
    json_t *body =
        json_pack("{s:{s:s},s:s}", "recipient", "id", in->recipient, "messaging_type", type);
    if (strcmp(type, "MESSAGE_TAG") == 0) json_object_set_new(body, "tag", json_string(tag));
    json_object_set_new(body, "message", msg);
    if (*note) json_object_set_new(body, "notification_type", json_string(note));
    char *s = channel_meta_dump(body), *url = ms_url(in->base_url, "/me/messages", token);
    json_decref(body);
    channel_http_set(out, "POST", url, "application/json", s);
    free(s);
    free(url);
    return 0;
}

static int ms_check(const channel_send_t *in, channel_http_t *out, err_t *e)
{
    const char *token = ms_token(in->credential, e);
    if (!token) return -1;
    char *url = ms_url(in->base_url, "/me", token);
    channel_http_set(out, "GET", url, NULL, NULL);
    free(url);
    return 0;
}

static int ms_verify(const channel_inbound_t *in, json_t *credential, const char *secret, err_t *e)
{
    (void)credential;
    return channel_meta_verify(in, secret, e);
}

static int ms_handshake(const channel_inbound_t *in, json_t *credential, const char *secret,
                        channel_reply_t *reply, err_t *e)
{
    (void)credential;
    return channel_meta_handshake(in, secret, reply, e);
}

static int ms_parse(const channel_inbound_t *in, channel_events_t *out, err_t *e)
{
    return channel_meta_msgr_parse(in, "page", 0, out, e);
}

const channel_t channel_messenger = {
    .channel = CONVO_MESSENGER,
    .name = "MESSENGER",
    .credential_key = "static_token",
    .default_base_url = CHANNEL_META_BASE_URL,
    .send = ms_send,
    .send_result = channel_meta_msgr_result,
    .verify = ms_verify,
    .parse = ms_parse,
    .handshake = ms_handshake,
    .check = ms_check,
    .check_result = channel_meta_check_result,
    .transcode = ms_transcode,
};
