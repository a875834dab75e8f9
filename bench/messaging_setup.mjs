#!/usr/bin/env node
// bench/messaging_setup.mjs: prepares a freshly started Parley for bench/messaging.
//
//   node bench/messaging_setup.mjs --url http://127.0.0.1:PORT --init FILE
//        [--fake http://127.0.0.1:FAKEPORT] [--webhook http://127.0.0.1:CBPORT/cb] [--probe-send]
//
// Reads the init JSON line that `parley serve` printed on its first start (FILE, its stdout),
// creates an app with a TELEGRAM credential (token 1:BENCH, callback_secret "s"), optionally a
// MESSAGE_INBOUND webhook, waits until the credential check against the fake says ACTIVE, and
// with --probe-send checks that one messages:send is accepted and reaches the fake. Prints
// KEY=VALUE lines on stdout: project_id, app_id, auth (the Basic header value).
import { readFileSync } from 'node:fs';

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--probe-send') args.probeSend = true;
  else if (a.startsWith('--') && i + 1 < process.argv.length) args[a.slice(2)] = process.argv[++i];
  else fail(`unexpected argument ${a}`);
}
function fail(msg) {
  process.stderr.write(`messaging_setup: ${msg}\n`);
  process.exit(1);
}
const loopback = (u) => /^http:\/\/127\.0\.0\.1:\d+(\/|$)/.test(u);
if (!args.url || !args.init) fail('need --url and --init');
for (const k of ['url', 'fake', 'webhook']) if (args[k] && !loopback(args[k])) fail(`--${k} must be a http://127.0.0.1:PORT URL`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The init line can land a moment after the server starts answering.
let init = null;
for (let i = 0; i < 100 && !init; i++) {
  const line = (() => { try { return readFileSync(args.init, 'utf8').split('\n')[0]; } catch { return ''; } })();
  if (line) {
    try { init = JSON.parse(line); } catch { /* partial line: retry */ }
  }
  if (!init) await sleep(50);
}
if (!init || !init.project_id || !init.key_id || !init.key_secret) fail(`no init JSON line in ${args.init}`);
const auth = 'Basic ' + Buffer.from(`${init.key_id}:${init.key_secret}`).toString('base64');
const base = args.url.replace(/\/$/, '');
const p = init.project_id;

async function api(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: auth, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  if (res.status !== 200) fail(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// New projects start with the "Hello world!" flow, which answers every inbound message:
// this benchmark measures the messaging pipeline, so the project runs without flows.
await api('POST', `/v1/projects/${p}/flows`, { flows: [] });

const app = await api('POST', `/v1/projects/${p}/apps`, {
  display_name: 'bench',
  channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: '1:BENCH' }, callback_secret: 's' }],
});
if (args.webhook) {
  await api('POST', `/v1/projects/${p}/webhooks`, { app_id: app.id, target: args.webhook, triggers: ['MESSAGE_INBOUND'], secret: 'x' });
}

// The credential check (getMe) goes to the fake: ACTIVE proves Parley is talking to it.
let state = '';
for (let i = 0; i < 100; i++) {
  const a = await api('GET', `/v1/projects/${p}/apps/${app.id}`);
  state = a.channel_credentials?.[0]?.state?.status || '';
  if (state === 'ACTIVE') break;
  if (state === 'FAILING') fail(`the TELEGRAM credential check failed: ${JSON.stringify(a.channel_credentials[0].state)}`);
  await sleep(50);
}
if (state !== 'ACTIVE') fail(`the TELEGRAM credential did not become ACTIVE (last: ${state || 'none'})`);

if (args.probeSend) {
  const before = args.fake ? (await (await fetch(`${args.fake}/stats`)).json()).sendMessage : 0;
  await api('POST', `/v1/projects/${p}/messages:send`, {
    app_id: app.id,
    recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '100' }] } },
    message: { text_message: { text: 'probe' } },
  });
  if (args.fake) {
    let n = before;
    for (let i = 0; i < 100 && n <= before; i++) {
      await sleep(50);
      n = (await (await fetch(`${args.fake}/stats`)).json()).sendMessage;
    }
    if (n <= before) fail('a probe messages:send was accepted but never reached the fake Telegram');
  }
}

process.stdout.write(`project_id=${p}\napp_id=${app.id}\nauth=${auth}\n`);
