// messaging.test.mjs: the messaging pipeline end to end against a fake provider (the
// Telegram Bot API, faithful to its wire format): SDK messages.send reaches the provider,
// MESSAGE_SUBMIT / MESSAGE_DELIVERY callbacks, inbound webhooks (signature, parsing,
// de-duplication of provider retries) producing MESSAGE_INBOUND, provider failures
// (permanent -> FAILED with a reason, transient -> retried), and bad input.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ConversationCallbackWebhooks, validateWebhookSignature } from '@sinch/sdk-core';
import { startParley, sdkRejects } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const SECRET = 'whsec-messaging-0123456789';
const TG_TOKEN = '123456:ABCDEF';
const TG_SECRET = 'tg-webhook-secret';
const FAST = { PARLEY_DISPATCH_RETRY_BASE_MS: '100', PARLEY_DISPATCH_RETRY_MAX_MS: '300', PARLEY_DISPATCH_TIMEOUT_MS: '2000' };

function parsed(rec) {
  assert.equal(validateWebhookSignature(SECRET, rec.headers, rec.body), true);
  return ConversationCallbackWebhooks.parseEvent(rec.body);
}

describe('messaging over Telegram', () => {
  let p, fake, hooks, sinch, app;
  let nextId = 100;
  const sends = [];
  before(async () => {
    fake = await startReceiver();
    hooks = await startReceiver();
    // The fake Telegram: records sends; a chat id may be set to fail in the tests below.
    fake.respond((rec) => {
      if (rec.url.startsWith('/bot7:HANG/')) return 'hang';
      const m = rec.url.match(/^\/bot([^/]+)\/(\w+)$/);
      if (!m || m[1] !== TG_TOKEN) return { status: 404, body: JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' }) };
      const body = rec.body ? JSON.parse(rec.body) : {};
      sends.push({ method: m[2], body });
      if (body.chat_id === '403') return { status: 403, body: JSON.stringify({ ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' }) };
      if (body.chat_id === '429' && sends.filter((s) => s.body.chat_id === '429').length <= 2)
        return { status: 429, body: JSON.stringify({ ok: false, error_code: 429, description: 'Too Many Requests: retry after 1', parameters: { retry_after: 1 } }) };
      return { status: 200, body: JSON.stringify({ ok: true, result: { message_id: nextId++, chat: { id: Number(body.chat_id), type: 'private' }, date: 1700000000, text: body.text } }) };
    });
    // A small dispatcher (8 in flight, so 2 per app) makes fairness observable.
    p = await startParley({ env: { ...FAST, PARLEY_CHANNELS_TELEGRAM_URL: fake.url, PARLEY_DISPATCH_MAX_INFLIGHT: '8' } });
    // These tests count messages: replace the Hello world flow every new project starts
    // with (it answers each inbound message) by an empty flow set.
    const noFlows = await p.api('POST', `/v1/projects/${p.init.project_id}/flows`, { body: { flows: [] } });
    if (noFlows.status !== 200) throw new Error(`cannot clear the default flows: ${noFlows.text}`);
    sinch = p.sdk();
    app = await sinch.conversation.app.create({ appCreateRequestBody: {
      display_name: 'tg', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: TG_TOKEN }, callback_secret: TG_SECRET }] } });
    await sinch.conversation.webhooks.create({ webhookCreateRequestBody: {
      app_id: app.id, target: `${hooks.url}/cb`, secret: SECRET,
      triggers: ['MESSAGE_INBOUND', 'MESSAGE_DELIVERY', 'MESSAGE_SUBMIT', 'CONVERSATION_START', 'CONTACT_CREATE'] } });
  });
  after(async () => { await p.stop(); await fake.close(); await hooks.close(); });

  test('messages.send reaches Telegram in its format; submit and delivery callbacks follow', async () => {
    const res = await sinch.conversation.messages.send({ sendMessageRequestBody: {
      app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '555' }] } },
      message: { text_message: { text: 'Hello from Parley' } },
      message_metadata: 'order-42',
    } });
    assert.match(res.message_id, /^[0-9A-Z]{26}$/);
    assert.ok(res.accepted_time instanceof Date);
    const sent = await fake.waitFor((r) => r.url === `/bot${TG_TOKEN}/sendMessage` && r.body.includes('Hello from Parley'));
    assert.equal(sent.method, 'POST');
    assert.match(sent.headers['content-type'], /^application\/json/);
    const body = JSON.parse(sent.body);
    assert.equal(String(body.chat_id), '555');
    assert.equal(body.text, 'Hello from Parley');

    const submit = parsed(await hooks.waitFor((r) => r.body.includes('message_submit_notification') && r.body.includes(res.message_id)));
    assert.equal(submit.trigger, 'MESSAGE_SUBMIT');
    assert.equal(submit.message_submit_notification.message_id, res.message_id);
    assert.deepEqual(submit.message_submit_notification.channel_identity, { channel: 'TELEGRAM', identity: '555' });
    assert.deepEqual(submit.message_submit_notification.submitted_message, { text_message: { text: 'Hello from Parley' } });
    assert.equal(submit.message_metadata, 'order-42');
    const report = parsed(await hooks.waitFor((r) => r.body.includes('message_delivery_report') && r.body.includes(res.message_id)));
    assert.equal(report.trigger, 'MESSAGE_DELIVERY');
    assert.equal(report.message_delivery_report.status, 'QUEUED_ON_CHANNEL');
    assert.ok(report.message_delivery_report.contact_id);
    assert.ok(report.message_delivery_report.conversation_id);
    // The contact was created for the unknown identity, as Sinch does, and a conversation started.
    const created = parsed(await hooks.waitFor((r) => r.body.includes('contact_create_notification') && r.body.includes('"555"')));
    assert.equal(created.trigger, 'CONTACT_CREATE');
    const msg = await sinch.conversation.messages.get({ message_id: res.message_id });
    assert.equal(msg.direction, 'TO_CONTACT');
    assert.equal(msg.message_status.status, 'QUEUED_ON_CHANNEL');
    assert.equal(msg.metadata, 'order-42');
    assert.equal(msg.conversation_id, report.message_delivery_report.conversation_id);
  });

  test('an inbound Telegram update becomes a stored message and MESSAGE_INBOUND; retries are not stored twice', async () => {
    const update = { update_id: 9001, message: { message_id: 77, from: { id: 556, is_bot: false, first_name: 'Grace', last_name: 'Hopper' },
      chat: { id: 556, type: 'private', first_name: 'Grace' }, date: 1700000100, text: 'Hi Parley!' } };
    const post = (headers) => p.api('POST', `/channels/${app.id}/telegram`, { auth: 'none', body: JSON.stringify(update), headers: { 'Content-Type': 'application/json', ...headers } });
    const bad = await post({ 'X-Telegram-Bot-Api-Secret-Token': 'wrong' });
    assert.equal(bad.status, 401);
    const none = await post({});
    assert.equal(none.status, 401);
    const ok = await post({ 'X-Telegram-Bot-Api-Secret-Token': TG_SECRET });
    assert.equal(ok.status, 200, ok.text);
    const again = await post({ 'X-Telegram-Bot-Api-Secret-Token': TG_SECRET });
    assert.equal(again.status, 200);
    const inbound = parsed(await hooks.waitFor((r) => r.body.includes('Hi Parley!') && r.body.includes('"message"')));
    assert.equal(inbound.trigger, 'MESSAGE_INBOUND');
    assert.equal(inbound.app_id, app.id);
    assert.equal(inbound.message.direction, 'TO_APP');
    assert.deepEqual(inbound.message.contact_message, { text_message: { text: 'Hi Parley!' } });
    assert.deepEqual(inbound.message.channel_identity, { channel: 'TELEGRAM', identity: '556' });
    const list = await sinch.conversation.messages.list({ contact_id: inbound.message.contact_id });
    assert.equal(list.data.length, 1, 'the provider retry was not stored again');
    const contact = await sinch.conversation.contact.get({ contact_id: inbound.message.contact_id });
    assert.equal(contact.display_name, 'Grace Hopper');
    // A reply goes back to the same chat through the contact.
    const reply = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id, recipient: { contact_id: contact.id }, message: { text_message: { text: 'Hello Grace' } } } });
    const out = await fake.waitFor((r) => r.body.includes('Hello Grace'));
    assert.equal(String(JSON.parse(out.body).chat_id), '556');
    const conv = await sinch.conversation.messages.get({ message_id: reply.message_id });
    assert.equal(conv.conversation_id, inbound.message.conversation_id, 'the reply joins the inbound conversation');
  });

  test('malformed inbound payloads, unknown apps and channels are refused', async () => {
    const h = { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': TG_SECRET };
    assert.equal((await p.api('POST', `/channels/${app.id}/telegram`, { auth: 'none', body: '{"update_id": ', headers: h })).status, 400);
    assert.equal((await p.api('POST', `/channels/01ZZZZZZZZZZZZZZZZZZZZZZZZ/telegram`, { auth: 'none', body: '{}', headers: h })).status, 404);
    assert.equal((await p.api('POST', `/channels/${app.id}/whatsapp`, { auth: 'none', body: '{}', headers: h })).status, 404);
    assert.equal((await p.api('POST', `/channels/${app.id}/fax`, { auth: 'none', body: '{}', headers: h })).status, 404);
  });

  test('a permanent provider failure reports FAILED with a reason; a transient one is retried', async () => {
    const failed = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '403' }] } }, message: { text_message: { text: 'blocked?' } } } });
    const rep = parsed(await hooks.waitFor((r) => r.body.includes(failed.message_id) && r.body.includes('"FAILED"')));
    assert.equal(rep.message_delivery_report.status, 'FAILED');
    assert.equal(rep.message_delivery_report.reason.code, 'RECIPIENT_NOT_REACHABLE');
    assert.equal((await sinch.conversation.messages.get({ message_id: failed.message_id })).message_status.status, 'FAILED');

    const slow = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '429' }] } }, message: { text_message: { text: 'eventually' } } } });
    const ok = parsed(await hooks.waitFor((r) => r.body.includes(slow.message_id) && r.body.includes('QUEUED_ON_CHANNEL')));
    assert.equal(ok.message_delivery_report.status, 'QUEUED_ON_CHANNEL');
    assert.equal(sends.filter((s) => s.body.chat_id === '429').length, 3);
  });

  test('bad sends are refused precisely and store nothing', async () => {
    const before = (await sinch.conversation.messages.list({ page_size: 1000 })).data.length;
    const base = { app_id: app.id, recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '777' }] } }, message: { text_message: { text: 'x' } } };
    await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, app_id: '01ZZZZZZZZZZZZZZZZZZZZZZZZ' } }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, message: { text_message: {} } } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, message: { text_message: { text: 'x'.repeat(5000) } } } }), 400, 'INVALID_ARGUMENT');
    const noChan = await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, recipient: { identified_by: { channel_identities: [{ channel: 'SMS', identity: '+46700000999' }] } } } }), 400, 'INVALID_ARGUMENT');
    assert.match(noChan.message, /no identity on any channel/);
    await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, recipient: {} } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, channel_priority_order: ['FAX'] } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.send({ sendMessageRequestBody: { ...base, ttl: 'soon' } }), 400, 'INVALID_ARGUMENT');
    assert.equal((await sinch.conversation.messages.list({ page_size: 1000 })).data.length, before);
  });

  test('credentials are checked with the provider: ACTIVE, or FAILING with its words', async () => {
    const waitState = async (id, want) => {
      for (let i = 0; i < 100; i++) {
        const a = await sinch.conversation.app.get({ app_id: id });
        if (a.channel_credentials[0].state.status === want) return a.channel_credentials[0].state;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`state never became ${want}`);
    };
    assert.equal((await waitState(app.id, 'ACTIVE')).status, 'ACTIVE');
    assert.ok(sends.some((s) => s.method === 'getMe'), 'getMe was called');
    const bad = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'bad token',
      channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: '999:WRONG' } }] } });
    assert.equal(bad.channel_credentials[0].state.status, 'PENDING');
    const failing = await waitState(bad.id, 'FAILING');
    assert.match(failing.description, /Not Found|404/);
  });

  test("one app's hanging provider does not delay another app's messages", async () => {
    const stuck = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'stuck',
      channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: '7:HANG' } }] } });
    for (let i = 0; i < 20; i++)
      await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: stuck.id,
        recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: `90${i}` }] } }, message: { text_message: { text: `stuck ${i}` } } } });
    await fake.waitFor((r) => r.url === '/bot7:HANG/sendMessage');
    const t0 = Date.now();
    await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '555' }] } }, message: { text_message: { text: 'not stuck' } } } });
    await fake.waitFor((r) => r.body.includes('not stuck'), 3000);
    assert.ok(Date.now() - t0 < 1000, `waited ${Date.now() - t0} ms behind another app`);
    assert.ok(fake.requests.filter((r) => r.url === '/bot7:HANG/sendMessage').length <= 2 + 2, 'at most per_app requests hang at once');
  });

  test('conversation_metadata_report_view FULL puts the conversation metadata in callbacks', async () => {
    await sinch.conversation.app.update({ app_id: app.id, update_mask: ['conversation_metadata_report_view'],
      appUpdateRequestBody: { conversation_metadata_report_view: 'FULL' } });
    const full = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '4242' }] } },
      message: { text_message: { text: 'with metadata' } }, conversation_metadata: { order: 42, tier: 'gold' } } });
    const ev = parsed(await hooks.waitFor((r) => r.body.includes(full.message_id) && r.body.includes('QUEUED_ON_CHANNEL')));
    assert.deepEqual(ev.conversation_metadata, { order: 42, tier: 'gold' });
    await sinch.conversation.app.update({ app_id: app.id, update_mask: ['conversation_metadata_report_view'],
      appUpdateRequestBody: { conversation_metadata_report_view: 'NONE' } });
    const none = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '4242' }] } },
      message: { text_message: { text: 'without metadata' } } } });
    const ev2 = parsed(await hooks.waitFor((r) => r.body.includes(none.message_id) && r.body.includes('QUEUED_ON_CHANNEL')));
    assert.equal(ev2.conversation_metadata, undefined);
  });

  test('messages:transcode shows what each channel receives', async () => {
    const res = await sinch.conversation.transcoding.transcodeMessage({ transcodeMessageRequestBody: {
      app_id: app.id, app_message: { choice_message: { text_message: { text: 'Pick one' }, choices: [{ text_message: { text: 'Yes' } }, { text_message: { text: 'No' } }] } },
      channels: ['SMS', 'TELEGRAM'] } });
    assert.equal(JSON.parse(res.transcoded_message.SMS).text, 'Pick one\n1. Yes\n2. No');
    const tg = JSON.parse(res.transcoded_message.TELEGRAM);
    assert.equal(tg.text, 'Pick one');
    assert.ok(tg.reply_markup, 'choices become a keyboard');
  });
});
