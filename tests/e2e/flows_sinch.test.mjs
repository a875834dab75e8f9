// flows_sinch.test.mjs: the conversation nodes end to end against a fake Telegram Bot API.
// The example flow of Sinch's Node-RED package (fixtures/sinch-example-flow.json, as it
// ships in github.com/sinch/node-red-conversation-api) is deployed unchanged: an inbound
// Telegram message -> sinch-received-message -> sinch-message -> sinch-send with "await
// response" -> the customer answers -> sinch-message -> sinch-send. Also: the await
// timeout goes to output 2, a waiting conversation survives a restart of parley serve,
// sinch-events, contact-handover, and the Hello world flow every new project starts with.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { startParley, tempDir, basicAuth } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const TG_TOKEN = '123456:ABCDEF';
const TG_SECRET = 'tg-webhook-secret';
const EXAMPLE = readFileSync(new URL('./fixtures/sinch-example-flow.json', import.meta.url), 'utf8');
const FAST = { PARLEY_DISPATCH_RETRY_BASE_MS: '100', PARLEY_DISPATCH_RETRY_MAX_MS: '300', PARLEY_DISPATCH_TIMEOUT_MS: '2000' };

let updateId = 5000;
function update(chatId, text) {
  updateId += 1;
  return { update_id: updateId, message: { message_id: updateId, from: { id: chatId, is_bot: false, first_name: 'Ada' },
    chat: { id: chatId, type: 'private', first_name: 'Ada' }, date: 1700000000 + updateId, text } };
}

describe('conversation nodes', () => {
  let fake, dir, p, app, init, auth;
  const sends = [];
  let nextId = 100;

  const start = async () => {
    p = await startParley({ dataDir: dir, env: { ...FAST, PARLEY_CHANNELS_TELEGRAM_URL: fake.url } });
    if (!init) { init = p.init; auth = basicAuth(init.key_id, init.key_secret); }
  };
  const inbound = async (chat, text) => {
    const r = await p.api('POST', `/channels/${app.id}/telegram`, { auth: 'none', body: JSON.stringify(update(chat, text)),
      headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': TG_SECRET } });
    assert.equal(r.status, 200, r.text);
  };
  const sentTo = (chat, text) => fake.waitFor((r) => r.url === `/bot${TG_TOKEN}/sendMessage` &&
    String(JSON.parse(r.body).chat_id) === String(chat) && JSON.parse(r.body).text === text);
  const deploy = async (flows) => {
    const r = await p.api('POST', `/v1/projects/${init.project_id}/flows`, { body: { flows }, auth });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const debug = async () => (await p.api('GET', `/v1/projects/${init.project_id}/debug`, { auth })).json.messages;
  const waitDebug = async (pred, ms = 8000) => {
    const until = Date.now() + ms;
    for (;;) {
      const found = (await debug()).find(pred);
      if (found) return found;
      if (Date.now() > until) throw new Error(`no matching debug message: ${JSON.stringify(await debug()).slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    fake = await startReceiver();
    fake.respond((rec) => {
      const m = rec.url.match(/^\/bot([^/]+)\/(\w+)$/);
      if (!m || m[1] !== TG_TOKEN) return { status: 404, body: JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' }) };
      const body = rec.body ? JSON.parse(rec.body) : {};
      sends.push(body);
      return { status: 200, body: JSON.stringify({ ok: true, result: { message_id: nextId++, chat: { id: Number(body.chat_id), type: 'private' }, date: 1700000000, text: body.text } }) };
    });
    dir = tempDir();
    await start();
    app = await p.sdk().conversation.app.create({ appCreateRequestBody: {
      display_name: 'tg', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: TG_TOKEN }, callback_secret: TG_SECRET }] } });
  });
  after(async () => { await p.stop(); await fake.close(); rmSync(dir, { recursive: true, force: true }); });

  test('a new project answers Hello world! over HTTP and on an inbound message', async () => {
    const r = await p.api('GET', `/flows/${p.init.project_id}/hello`, { auth: 'none' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'Hello world!');
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    const lower = await p.api('GET', `/flows/${p.init.project_id.toLowerCase()}/hello`, { auth: 'none' });
    assert.equal(lower.text, 'Hello world!');
    await inbound(701, 'hi there');
    await sentTo(701, 'Hello world!');
    const flows = (await p.api('GET', `/v1/projects/${p.init.project_id}/flows`)).json.flows;
    assert.ok(flows.some((n) => n.type === 'sinch-received-message'));
  });

  test("Sinch's example flow imports unchanged and runs: question, await the answer, thank you", async () => {
    const flows = JSON.parse(EXAMPLE);
    await deploy(flows);
    const exported = (await p.api('GET', `/v1/projects/${p.init.project_id}/flows`)).json.flows;
    assert.deepEqual(exported, flows, 'export returns the example exactly');
    // Hello world is gone with the new deploy
    assert.equal((await p.api('GET', `/flows/${p.init.project_id}/hello`, { auth: 'none' })).status, 404);
    await inbound(702, 'Hello');
    await sentTo(702, 'Would you recommend Sinch as a place to work?');
    // another customer gets their own question meanwhile
    await inbound(703, 'Hey');
    await sentTo(703, 'Would you recommend Sinch as a place to work?');
    // the answer continues the waiting conversation (not a new one from the entry node)
    await inbound(702, 'Yes, absolutely');
    await sentTo(702, 'Thanks for your answer . Have a lovely weekeend!');
    await new Promise((r) => setTimeout(r, 300));
    const q702 = sends.filter((s) => String(s.chat_id) === '702' && s.text.startsWith('Would you'));
    assert.equal(q702.length, 1, 'the answer did not start the flow again');
    // the events node saw delivery reports (sinch-events -> debug)
    const ev = await waitDebug((m) => m.node_id === '86784d41efd6e8c9');
    assert.ok(ev.msg.messageDeliveryReport, JSON.stringify(ev.msg));
    assert.equal(ev.msg.appId, app.id);
  });

  test('outbound: start-conversation -> message with variables -> send on the configured app', async () => {
    const flows = JSON.parse(EXAMPLE);
    // the example leaves the configuration empty; point its outbound send at the app
    flows.push({ id: 'cfgout', type: 'sinch-convapi-configuration', appId: app.id, appDisplayName: 'tg', region: 'eu' });
    flows.find((n) => n.id === '25a4139ed922705c').convapiConfiguration = 'cfgout';
    flows.find((n) => n.id === '25a4139ed922705c').wires = [['dbgok'], ['dbgfail']];
    flows.push({ id: 'dbgok', type: 'debug', z: 'b26d3a7cc456a1d8', complete: 'messageId', wires: [] });
    flows.push({ id: 'dbgfail', type: 'debug', z: 'b26d3a7cc456a1d8', complete: 'error', wires: [] });
    await deploy(flows);
    assert.equal((await p.api('POST', `/v1/projects/${init.project_id}/inject/736d932371771a05`, { auth })).status, 200);
    await sentTo(1449922041, 'Hello Calle, Welcome to Sinch!');
    const ok = await waitDebug((m) => m.node_id === 'dbgok');
    assert.match(ok.msg, /^[0-9A-Z]{26}$/);
    // without an app (the example as shipped), the send fails to output 2
    await deploy(JSON.parse(EXAMPLE).map((n) => (n.id === '25a4139ed922705c' ? { ...n, wires: [[], ['dbgfail']] } : n))
      .concat([{ id: 'dbgfail', type: 'debug', z: 'b26d3a7cc456a1d8', complete: 'error', wires: [] }]));
    assert.equal((await p.api('POST', `/v1/projects/${init.project_id}/inject/736d932371771a05`, { auth })).status, 200);
    const fail = await waitDebug((m) => m.node_id === 'dbgfail' && /no app/.test(JSON.stringify(m.msg)));
    assert.match(fail.msg.message, /no app/);
  });

  test('await response: the timeout sends the msg to output 2', async () => {
    const flows = [
      { id: 't1', type: 'tab', label: 'timeout' },
      { id: 'rx', type: 'sinch-received-message', z: 't1', convapiConfiguration: 'cfg', wires: [['m1']] },
      { id: 'cfg', type: 'sinch-convapi-configuration', appId: app.id, appDisplayName: 'tg', region: 'eu' },
      { id: 'm1', type: 'sinch-message', z: 't1', message: '{"text_message":{"text":"Quick, {{payload}}?"}}', wires: [['s1']] },
      { id: 's1', type: 'sinch-send', z: 't1', convapiConfiguration: 'cfg', receive: true, timeout: 1, wires: [['ok'], ['late']] },
      { id: 'ok', type: 'debug', z: 't1', name: 'answered', complete: 'true', wires: [] },
      { id: 'late', type: 'debug', z: 't1', name: 'timed out', complete: 'true', wires: [] },
    ];
    await deploy(flows);
    await inbound(704, 'ready');
    await sentTo(704, 'Quick, ready?');
    const late = await waitDebug((m) => m.node_id === 'late');
    assert.equal(late.msg.timeout, true);
    assert.equal(late.msg.payload, 'ready');
    assert.deepEqual(late.msg.message, { text_message: { text: 'Quick, ready?' } });
    // after the timeout, the next message starts the flow again
    await inbound(704, 'again');
    await sentTo(704, 'Quick, again?');
  });

  test('a waiting conversation survives a restart of parley serve', async () => {
    await deploy(JSON.parse(EXAMPLE));
    await inbound(705, 'start');
    await sentTo(705, 'Would you recommend Sinch as a place to work?');
    await p.stop();
    await start();
    await inbound(705, 'after restart: yes');
    await sentTo(705, 'Thanks for your answer . Have a lovely weekeend!');
  });

  test('an await timeout is re-armed after a restart', async () => {
    const flows = [
      { id: 't3', type: 'tab', label: 'rearm' },
      { id: 'rx3', type: 'sinch-received-message', z: 't3', convapiConfiguration: '', wires: [['m3']] },
      { id: 'm3', type: 'sinch-message', z: 't3', message: '{"text_message":{"text":"Still there?"}}', wires: [['s3']] },
      { id: 's3', type: 'sinch-send', z: 't3', receive: true, timeout: 2, wires: [[], ['late3']] },
      { id: 'late3', type: 'debug', z: 't3', complete: 'true', wires: [] },
    ];
    await deploy(flows);
    await inbound(709, 'hi');
    await sentTo(709, 'Still there?');
    await p.stop();
    await start();
    const late = await waitDebug((m) => m.node_id === 'late3');
    assert.equal(late.msg.timeout, true);
    assert.equal(late.msg.payload, 'hi');
  });

  test('an inbound message accepted just before kill -9 is answered exactly once', async () => {
    await deploy(JSON.parse(EXAMPLE));
    await inbound(708, 'then the power went out');
    await p.stop({ signal: 'SIGKILL' });
    await start();
    await sentTo(708, 'Would you recommend Sinch as a place to work?');
    await inbound(708, 'yes');
    await sentTo(708, 'Thanks for your answer . Have a lovely weekeend!');
    await new Promise((r) => setTimeout(r, 300));
    const questions = sends.filter((s) => String(s.chat_id) === '708' && s.text.startsWith('Would you'));
    assert.equal(questions.length, 1, 'neither lost nor handled twice across the crash');
  });

  test('a flow killed between its entry node and its first send runs again after the restart, and sends once', async () => {
    const flows = [
      { id: 't4', type: 'tab', label: 'slow' },
      { id: 'rx4', type: 'sinch-received-message', z: 't4', convapiConfiguration: '', wires: [['seen4', 'wait4']] },
      { id: 'seen4', type: 'debug', z: 't4', complete: 'payload', wires: [] },
      { id: 'wait4', type: 'delay', z: 't4', pauseType: 'delay', timeout: '1500', timeoutUnits: 'milliseconds', wires: [['m4']] },
      { id: 'm4', type: 'sinch-message', z: 't4', message: '{"text_message":{"text":"Sorry for the wait"}}', wires: [['s4']] },
      { id: 's4', type: 'sinch-send', z: 't4', receive: false, wires: [[], []] },
    ];
    await deploy(flows);
    await inbound(710, 'anyone?');
    await waitDebug((m) => m.node_id === 'seen4'); // the flow has taken the message...
    await p.stop({ signal: 'SIGKILL' }); // ...and dies in its delay, before any send
    assert.equal(sends.filter((s) => String(s.chat_id) === '710').length, 0);
    await start();
    await sentTo(710, 'Sorry for the wait');
    await new Promise((r) => setTimeout(r, 2000)); // a second run would have sent by now
    assert.equal(sends.filter((s) => String(s.chat_id) === '710').length, 1, 'sent once, not lost');
  });

  test('contact-handover appends CONTACT_HANDOVER and ends the flow for that conversation', async () => {
    const flows = [
      { id: 't2', type: 'tab', label: 'handover' },
      { id: 'rx2', type: 'sinch-received-message', z: 't2', convapiConfiguration: '', wires: [['m2']] },
      { id: 'm2', type: 'sinch-message', z: 't2', message: '{"text_message":{"text":"An agent will answer"}}', wires: [['s2']] },
      { id: 's2', type: 'sinch-send', z: 't2', receive: false, wires: [['h2'], []] },
      { id: 'h2', type: 'contact-handover', z: 't2', category: 'billing', priority: 3, wires: [['d2']] },
      { id: 'd2', type: 'debug', z: 't2', complete: 'handover', wires: [] },
    ];
    await deploy(flows);
    await inbound(706, 'I need a human');
    await sentTo(706, 'An agent will answer');
    const h = await waitDebug((m) => m.node_id === 'd2');
    assert.equal(h.msg.category, 'billing');
    assert.equal(h.msg.priority, 3);
    assert.equal(h.msg.app_id, app.id);
    assert.equal(h.msg.channel, 'TELEGRAM');
    assert.match(h.msg.conversation_id, /^[0-9A-Z]{26}$/);
    assert.match(h.msg.contact_id, /^[0-9A-Z]{26}$/);
    // the conversation is the contact center's now: no flow answer to the next message
    await inbound(706, 'hello?');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(sends.filter((s) => String(s.chat_id) === '706').length, 1);
  });
});
