// crash.test.mjs: durability. parley serve is killed with SIGKILL repeatedly while SDK sends
// and provider webhooks are under way; after a final restart every acknowledged send has
// reached the provider and produced its MESSAGE_DELIVERY callback, and every acknowledged
// inbound message is stored and produced its MESSAGE_INBOUND callback, at least once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startParley, tempDir, basicAuth } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const TG_TOKEN = '42:CRASH';
const TG_SECRET = 'crash-secret';
const ROUNDS = Number(process.env.CRASH_ROUNDS || 4);

test('every acknowledged send and inbound message survives kill -9', { timeout: 240000 }, async (t) => {
  const fake = await startReceiver();
  let seq = 1;
  fake.respond((rec) => {
    if (rec.url.endsWith('/getMe')) return { status: 200, body: JSON.stringify({ ok: true, result: { id: 42, is_bot: true, first_name: 'bot' } }) };
    const body = JSON.parse(rec.body || '{}');
    return { status: 200, body: JSON.stringify({ ok: true, result: { message_id: seq++, chat: { id: Number(body.chat_id) }, date: 1, text: body.text } }) };
  });
  const hooks = await startReceiver();
  const dir = tempDir();
  const env = { PARLEY_CHANNELS_TELEGRAM_URL: fake.url, PARLEY_DISPATCH_RETRY_BASE_MS: '50', PARLEY_DISPATCH_RETRY_MAX_MS: '200' };
  let p = await startParley({ dataDir: dir, env });
  let finished = false;
  t.after(async () => { // a failed assertion must not leave a server running
    if (finished) return;
    await p.stop({ signal: 'SIGKILL', expectClean: false }).catch(() => {});
    await fake.close().catch(() => {});
    await hooks.close().catch(() => {});
  });
  const init = p.init;
  const auth = basicAuth(init.key_id, init.key_secret);
  const base = `/v1/projects/${init.project_id}`;
  const app = (await p.api('POST', `${base}/apps`, { body: { display_name: 'crash', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: TG_TOKEN }, callback_secret: TG_SECRET }] } })).json;
  await p.api('POST', `${base}/webhooks`, { body: { app_id: app.id, target: `${hooks.url}/cb`, triggers: ['MESSAGE_DELIVERY', 'MESSAGE_INBOUND'] } });

  const ackedSends = new Map(); // text -> message_id
  const ackedInbound = new Set(); // text
  let n = 0;
  // At least ROUNDS kills, and more (up to 4x) until enough was acknowledged: on a loaded
  // machine a round may be too short to acknowledge much.
  for (let round = 0; round < ROUNDS * 4 && (round < ROUNDS || ackedSends.size <= 10 || ackedInbound.size <= 10); round++) {
    const url = p.url;
    let stop = false;
    const worker = async (kind) => {
      while (!stop) {
        const i = n++;
        try {
          if (kind === 'send') {
            const text = `out-${i}`;
            const r = await fetch(`${url}${base}/messages:send`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' },
              body: JSON.stringify({ app_id: app.id, recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: String(1000 + (i % 7)) }] } }, message: { text_message: { text } } }) });
            if (r.status === 200) ackedSends.set(text, (await r.json()).message_id);
          } else {
            const text = `in-${i}`;
            const update = { update_id: i, message: { message_id: i, from: { id: 2000 + (i % 5), first_name: 'C' }, chat: { id: 2000 + (i % 5), type: 'private' }, date: 1700000000, text } };
            const r = await fetch(`${url}/channels/${app.id}/telegram`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': TG_SECRET }, body: JSON.stringify(update) });
            if (r.status === 200) ackedInbound.add(text);
          }
        } catch { /* the server died mid-request: not acknowledged */ }
      }
    };
    const workers = [worker('send'), worker('send'), worker('inbound'), worker('inbound')];
    await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 500)));
    await p.stop({ signal: 'SIGKILL', expectClean: false });
    stop = true;
    await Promise.all(workers);
    p = await startParley({ dataDir: dir, env });
  }
  assert.ok(ackedSends.size > 10 && ackedInbound.size > 10, `load ran: ${ackedSends.size} sends, ${ackedInbound.size} inbound`);

  // Everything acknowledged completes after the last restart.
  const deadline = Date.now() + 60000;
  const sentTexts = () => new Set(fake.requests.filter((r) => r.url.endsWith('/sendMessage')).map((r) => JSON.parse(r.body).text));
  const callbackBodies = () => hooks.requests.map((r) => r.body).join('\n');
  let missing;
  for (;;) {
    const sent = sentTexts();
    const cbs = callbackBodies();
    missing = [
      ...[...ackedSends.keys()].filter((t) => !sent.has(t)).map((t) => `send ${t} not at provider`),
      ...[...ackedSends.values()].filter((id) => !cbs.includes(`"message_id":"${id}"`)).map((id) => `no MESSAGE_DELIVERY for ${id}`),
      ...[...ackedInbound].filter((t) => !cbs.includes(`"text":"${t}"`)).map((t) => `no MESSAGE_INBOUND for ${t}`),
    ];
    if (missing.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged items lost`);
  // Inbound messages are stored exactly once each.
  const all = [];
  let token;
  do {
    const page = (await p.api('GET', `${base}/messages?page_size=1000${token ? `&page_token=${token}` : ''}`, { auth })).json;
    all.push(...page.messages);
    token = page.next_page_token;
  } while (token);
  const inboundTexts = all.filter((m) => m.direction === 'TO_APP').map((m) => m.contact_message.text_message.text);
  for (const t of ackedInbound) assert.equal(inboundTexts.filter((x) => x === t).length, 1, `${t} stored once`);
  finished = true;
  await p.stop();
  await fake.close();
  await hooks.close();
});
