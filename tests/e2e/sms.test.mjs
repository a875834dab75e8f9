// sms.test.mjs: SMS over SMPP 3.4 end to end, against a real SMSC peer (the npm smpp
// package, tests/e2e/fixtures/smsc.mjs): the credential's bind (ACTIVE / FAILING), SDK sends
// arriving as submit_sm (GSM and multi-part UCS-2), delivery receipts -> MESSAGE_DELIVERY,
// MO deliver_sm -> MESSAGE_INBOUND, and fallback to another channel when the SMSC refuses.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { ConversationCallbackWebhooks, validateWebhookSignature } from '@sinch/sdk-core';
import { startParley } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const SECRET = 'whsec-sms-0123456789';
const parsed = (rec) => {
  assert.equal(validateWebhookSignature(SECRET, rec.headers, rec.body), true);
  return ConversationCallbackWebhooks.parseEvent(rec.body);
};

async function startSmsc(args = []) {
  const proc = spawn('node', [new URL('./fixtures/smsc.mjs', import.meta.url).pathname, '--port', '0', '--system-id', 'parley', '--password', 'secret', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pdus = [];
  const rl = readline.createInterface({ input: proc.stdout });
  const port = await new Promise((resolve) => rl.on('line', (line) => {
    const v = JSON.parse(line);
    if (v.port) resolve(v.port); else pdus.push(v);
  }));
  return {
    port, pdus,
    send(cmd) { proc.stdin.write(JSON.stringify(cmd) + '\n'); },
    async waitPdu(pred, ms = 10000) {
      const t0 = Date.now();
      for (;;) {
        const hit = pdus.find(pred);
        if (hit) return hit;
        if (Date.now() - t0 > ms) throw new Error(`no such PDU; saw ${pdus.map((p) => p.pdu || p.event).join(',')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop() { proc.stdin.end(); proc.kill(); },
  };
}

const text = (hex) => Buffer.from(hex, 'hex');

describe('SMS over SMPP', () => {
  let smsc, p, hooks, tg, sinch, app;
  const waitState = async (id, want, ms = 10000) => {
    const t0 = Date.now();
    for (;;) {
      const a = await sinch.conversation.app.get({ app_id: id });
      const s = a.channel_credentials.find((c) => c.channel === 'SMS').state;
      if (s.status === want) return s;
      if (Date.now() - t0 > ms) throw new Error(`SMS state stayed ${s.status}: ${s.description}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  before(async () => {
    smsc = await startSmsc(['--receipts']);
    hooks = await startReceiver();
    tg = await startReceiver();
    tg.respond((rec) => ({ status: 200, body: JSON.stringify({ ok: true, result: rec.url.endsWith('/getMe') ? { id: 1, is_bot: true } : { message_id: 1, chat: { id: 1 }, date: 1 } }) }));
    p = await startParley({ env: { PARLEY_DISPATCH_RETRY_BASE_MS: '100', PARLEY_CHANNELS_TELEGRAM_URL: tg.url } });
    sinch = p.sdk();
    app = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'sms', channel_credentials: [
      { channel: 'SMS', static_bearer: { claimed_identity: '46700000000', token: `smpp://parley:secret@127.0.0.1:${smsc.port}?window=5` } }] } });
    await sinch.conversation.webhooks.create({ webhookCreateRequestBody: { app_id: app.id, target: `${hooks.url}/cb`, secret: SECRET,
      triggers: ['MESSAGE_DELIVERY', 'MESSAGE_INBOUND', 'MESSAGE_SUBMIT'] } });
  });
  // Stop everything even when parley's stop fails (a failure used to leave the SMSC peer
  // running, which kept this file's process, and the whole run, from ever ending).
  after(async () => { try { await p.stop(); } finally { smsc.stop(); await hooks.close(); await tg.close(); } });

  test('the credential binds to the SMSC and becomes ACTIVE; the token is masked', async () => {
    assert.equal((await waitState(app.id, 'ACTIVE')).status, 'ACTIVE');
    const got = await sinch.conversation.app.get({ app_id: app.id });
    assert.ok(!JSON.stringify(got).includes('secret@'), 'the SMSC password is not echoed');
    await smsc.waitPdu((x) => x.pdu === 'bind_transceiver' && x.system_id === 'parley');
  });

  test('a send arrives as submit_sm; the receipt becomes DELIVERED', async () => {
    const res = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'SMS', identity: '+46700000123' }] } },
      message: { text_message: { text: 'Hello SMS [1]' } } } });
    const pdu = await smsc.waitPdu((x) => x.pdu === 'submit_sm' && text(x.short_message).toString('latin1').includes('Hello SMS'));
    assert.equal(pdu.destination_addr, '46700000123');
    assert.equal(pdu.source_addr, '46700000000');
    assert.equal(pdu.data_coding, 0, 'GSM 7-bit');
    assert.equal(pdu.registered_delivery, 1);
    // '[' is a GSM extension character: sent as ESC (0x1B) '<'
    assert.equal(text(pdu.short_message).toString('hex'), Buffer.concat([Buffer.from('Hello SMS '), Buffer.from([0x1b, 0x3c]), Buffer.from('1'), Buffer.from([0x1b, 0x3e])]).toString('hex'));
    const queued = parsed(await hooks.waitFor((r) => r.body.includes(res.message_id) && r.body.includes('QUEUED_ON_CHANNEL')));
    assert.deepEqual(queued.message_delivery_report.channel_identity, { channel: 'SMS', identity: '+46700000123' });
    const delivered = parsed(await hooks.waitFor((r) => r.body.includes(res.message_id) && r.body.includes('"DELIVERED"')));
    assert.equal(delivered.message_delivery_report.status, 'DELIVERED');
    assert.equal((await sinch.conversation.messages.get({ message_id: res.message_id })).message_status.status, 'DELIVERED');
  });

  test('a long non-GSM text is split into UCS-2 parts with a UDH', async () => {
    const long = 'Привет! '.repeat(20); // 160 characters of Cyrillic: 3 UCS-2 parts of 67
    await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: app.id,
      recipient: { identified_by: { channel_identities: [{ channel: 'SMS', identity: '+46700000124' }] } }, message: { text_message: { text: long } } } });
    await smsc.waitPdu((x) => x.pdu === 'submit_sm' && x.destination_addr === '46700000124' && x.esm_class === 64 && text(x.short_message)[5] === 3);
    const parts = smsc.pdus.filter((x) => x.pdu === 'submit_sm' && x.destination_addr === '46700000124');
    assert.equal(parts.length, 3);
    assert.ok(parts.every((x) => x.data_coding === 8 && x.esm_class === 64));
    const body = Buffer.concat(parts.sort((a, b) => text(a.short_message)[5] - text(b.short_message)[5]).map((x) => text(x.short_message).subarray(6)));
    assert.equal(body.swap16().toString('utf16le'), long);
  });

  test('an MO deliver_sm becomes MESSAGE_INBOUND from an E.164 identity', async () => {
    smsc.send({ cmd: 'deliver', from: '46700000999', to: '46700000000', text: 'Hi from SMS' });
    const ev = parsed(await hooks.waitFor((r) => r.body.includes('Hi from SMS')));
    assert.equal(ev.trigger, 'MESSAGE_INBOUND');
    assert.deepEqual(ev.message.channel_identity, { channel: 'SMS', identity: '+46700000999' });
    assert.deepEqual(ev.message.contact_message, { text_message: { text: 'Hi from SMS' } });
  });

  test('phone identities match with or without "+"', async () => {
    const c = await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', display_name: 'Plus',
      channel_identities: [{ channel: 'SMS', identity: '+46700000888' }] } });
    smsc.send({ cmd: 'deliver', from: '46700000888', to: '46700000000', text: 'same person' });
    const ev = parsed(await hooks.waitFor((r) => r.body.includes('same person')));
    assert.equal(ev.message.contact_id, c.id, 'the inbound SMS found the contact stored with "+"');
    const dup = sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: '46700000888' }] } });
    await assert.rejects(dup, (err) => err.statusCode === 409);
  });

  test('a refused message falls back to the next channel', async () => {
    const two = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'sms+tg', channel_credentials: [
      { channel: 'SMS', static_bearer: { claimed_identity: '46700000001', token: `smpp://parley:secret@127.0.0.1:${smsc.port}` } },
      { channel: 'TELEGRAM', telegram_credentials: { token: '5:FALL' } }] } });
    await sinch.conversation.webhooks.create({ webhookCreateRequestBody: { app_id: two.id, target: `${hooks.url}/two`, secret: SECRET, triggers: ['MESSAGE_DELIVERY'] } });
    await waitState(two.id, 'ACTIVE');
    const contact = await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [
      { channel: 'SMS', identity: '+46700000555' }, { channel: 'TELEGRAM', identity: '555' }] } });
    smsc.send({ cmd: 'reject_next', status: 11 }); // ESME_RINVDSTADR: permanent
    await new Promise((r) => setTimeout(r, 200));
    const res = await sinch.conversation.messages.send({ sendMessageRequestBody: { app_id: two.id, recipient: { contact_id: contact.id }, message: { text_message: { text: 'fall over' } } } });
    const sw = parsed(await hooks.waitFor((r) => r.url === '/two' && r.body.includes(res.message_id) && r.body.includes('SWITCHING_CHANNEL')));
    assert.equal(sw.message_delivery_report.reason.code, 'RECIPIENT_INVALID_CHANNEL_IDENTITY');
    await tg.waitFor((r) => r.body.includes('fall over'));
    const ok = parsed(await hooks.waitFor((r) => r.url === '/two' && r.body.includes(res.message_id) && r.body.includes('QUEUED_ON_CHANNEL')));
    assert.equal(ok.message_delivery_report.channel_identity.channel, 'TELEGRAM');
  });

  test('a refused bind makes the credential FAILING with the SMSC\'s reason', async () => {
    const bad = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'bad sms', channel_credentials: [
      { channel: 'SMS', static_bearer: { claimed_identity: '4670', token: `smpp://parley:wrong@127.0.0.1:${smsc.port}` } }] } });
    const s = await waitState(bad.id, 'FAILING');
    assert.match(s.description, /ESME_RINVPASWD/);
    const unknown = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'no smsc', channel_credentials: [
      { channel: 'SMS', static_bearer: { claimed_identity: '4670', token: 'nosuchsmsc' } }] } });
    assert.match((await waitState(unknown.id, 'FAILING')).description, /neither an smpp:\/\/ URL nor the name of an \[smsc.NAME\]/);
  });
});
