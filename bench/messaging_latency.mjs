#!/usr/bin/env node
// bench/messaging_latency.mjs: inbound-webhook-to-callback latency, for bench/messaging.
//
//   node bench/messaging_latency.mjs --url http://127.0.0.1:PORT --app APP_ID --port CBPORT
//        [--rate 200] [--seconds 10] [--wait 10]
//
// Runs the webhook target (the customer's callback receiver) on 127.0.0.1:CBPORT, path /cb,
// and POSTs Telegram updates to PARLEY/channels/APP_ID/telegram (with
// X-Telegram-Bot-Api-Secret-Token: s) at a fixed offered rate: open loop, on a schedule that
// does not wait for answers. Each update has a unique update_id and message_id and a text
// carrying its sequence number and send time. For each update it measures the time from
// sending the webhook to receiving the MESSAGE_INBOUND callback that carries its text. After
// the last send it waits up to --wait seconds for stragglers. Defaults come from BENCH_RATE
// and BENCH_DURATION (10, 10s or 1m). Progress goes to stderr; the last stdout line is
//   latency rate=R seconds=S sent=N received=M p50_ms=.. p99_ms=.. max_ms=.. ...
import http from 'node:http';
import { performance } from 'node:perf_hooks';

function fail(msg) {
  process.stderr.write(`messaging_latency: ${msg}\n`);
  process.exit(1);
}
function seconds(v) {
  const m = /^(\d+)(s|m)?$/.exec(String(v));
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

const args = { rate: process.env.BENCH_RATE || '200', seconds: process.env.BENCH_DURATION || '10', wait: '10' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  if (!k.startsWith('--') || i + 1 >= process.argv.length) fail(`bad argument ${k}`);
  args[k.slice(2)] = process.argv[i + 1];
}
const rate = Number(args.rate);
const secs = seconds(args.seconds);
const waitS = seconds(args.wait);
const cbPort = Number(args.port);
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(args.url || '')) fail('--url must be http://127.0.0.1:PORT');
if (!/^[0-9A-Za-z]{26}$/.test(args.app || '')) fail('--app must be an app id');
if (!(rate > 0 && rate <= 100000)) fail('rate must be a number in (0, 100000]');
if (!(secs > 0 && secs <= 3600)) fail('seconds must be 1..3600 (10, 10s or 1m)');
if (!(waitS >= 0 && waitS <= 600)) fail('wait must be 0..600 seconds');
if (!Number.isInteger(cbPort) || cbPort <= 0 || cbPort > 65535) fail('--port must be a TCP port');

const total = Math.max(1, Math.round(rate * secs));
const sentAt = new Float64Array(total).fill(NaN);   // performance.now() when the webhook was sent
const cbAt = new Float64Array(total).fill(NaN);     // ... when its callback arrived
const hookAt = new Float64Array(total).fill(NaN);   // ... when Parley answered the webhook
let sent = 0, received = 0, duplicates = 0, strangers = 0, hookOk = 0, hookNon200 = 0, hookErrors = 0;
const hookStatus = {};
let lastError = '';

// ---- the callback receiver ----
const RE = /bench-lat seq=(\d+) /;
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const now = performance.now();
    res.writeHead(200, { 'Content-Length': '0' });
    res.end();
    let text = '';
    try {
      const ev = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      text = ev?.message?.contact_message?.text_message?.text || '';
    } catch { /* not ours */ }
    const m = RE.exec(text);
    const seq = m ? Number(m[1]) : -1;
    if (seq < 0 || seq >= total) { strangers++; return; }
    if (!Number.isNaN(cbAt[seq])) { duplicates++; return; }
    cbAt[seq] = now;
    received++;
  });
});
receiver.keepAliveTimeout = 60000;
receiver.headersTimeout = 65000;
await new Promise((resolve, reject) => {
  receiver.once('error', (e) => reject(new Error(`cannot listen on 127.0.0.1:${cbPort}: ${e.message}`)));
  receiver.listen(cbPort, '127.0.0.1', resolve);
}).catch((e) => fail(e.message));

// ---- the webhook sender ----
const target = new URL(`${args.url}/channels/${args.app}/telegram`);
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function sendOne(seq) {
  const text = `bench-lat seq=${seq} t=${Date.now()}`;
  const body = JSON.stringify({
    update_id: 100000 + seq,
    message: { message_id: 100000 + seq, from: { id: 77, first_name: 'B' }, chat: { id: 77, type: 'private' }, date: 1700000000, text },
  });
  const req = http.request({
    host: '127.0.0.1', port: target.port, path: target.pathname, method: 'POST', agent,
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'X-Telegram-Bot-Api-Secret-Token': 's' },
    timeout: 30000,
  }, (res) => {
    res.resume();
    res.on('end', () => {
      hookAt[seq] = performance.now();
      hookStatus[res.statusCode] = (hookStatus[res.statusCode] || 0) + 1;
      if (res.statusCode === 200) hookOk++; else hookNon200++;
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => { hookErrors++; lastError = e.message; });
  sentAt[seq] = performance.now();
  req.end(body);
  sent++;
}

process.stderr.write(`[latency] ${total} Telegram updates at ${rate}/s for ${secs}s to ${target.href}, callbacks on 127.0.0.1:${cbPort}/cb\n`);
const t0 = performance.now();
await new Promise((resolve) => {
  const tick = () => {
    // Send everything that is due by now (catching up after a late timer), then sleep.
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    while (sent < due) sendOne(sent);
    if (sent >= total) return resolve();
    const next = t0 + (sent * 1000) / rate;
    setTimeout(tick, Math.max(0, next - performance.now()));
  };
  tick();
});
const sendSpan = (performance.now() - t0) / 1000;

// ---- stragglers ----
const deadline = performance.now() + waitS * 1000;
while (performance.now() < deadline) {
  const answered = hookOk + hookNon200 + hookErrors;
  if (received >= sent && answered >= sent) break;
  // Updates Parley refused will never call back: stop waiting once only they are missing.
  if (answered >= sent && received >= hookOk) break;
  await new Promise((r) => setTimeout(r, 20));
}
receiver.closeAllConnections?.();
receiver.close();
agent.destroy();

// ---- results ----
function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
const lat = [], hook = [];
for (let i = 0; i < total; i++) {
  if (!Number.isNaN(cbAt[i])) lat.push(cbAt[i] - sentAt[i]);
  if (!Number.isNaN(hookAt[i])) hook.push(hookAt[i] - sentAt[i]);
}
lat.sort((a, b) => a - b);
hook.sort((a, b) => a - b);
const f = (v) => (Number.isNaN(v) ? 'nan' : v.toFixed(2));
const achieved = sent / Math.max(sendSpan, 1e-9);

process.stderr.write(`[latency] sent ${sent} in ${sendSpan.toFixed(2)}s (${achieved.toFixed(1)}/s); webhook answers ${JSON.stringify(hookStatus)}` +
  (hookErrors ? `, ${hookErrors} errors (last: ${lastError})` : '') + '\n');
process.stderr.write(`[latency] callbacks received ${received}/${sent}` + (duplicates ? `, ${duplicates} duplicates` : '') +
  (strangers ? `, ${strangers} unrecognised` : '') + '\n');
if (received < sent) process.stderr.write('[latency] WARNING: some updates never produced a callback; percentiles cover only those that did\n');

console.log(`latency rate=${rate} seconds=${secs} sent=${sent} received=${received} achieved_rate=${achieved.toFixed(1)}` +
  ` p50_ms=${f(pct(lat, 50))} p99_ms=${f(pct(lat, 99))} max_ms=${f(lat.length ? lat[lat.length - 1] : NaN)}` +
  ` webhook_p50_ms=${f(pct(hook, 50))} webhook_p99_ms=${f(pct(hook, 99))}` +
  ` webhook_non200=${hookNon200} webhook_errors=${hookErrors} duplicates=${duplicates}`);
process.exit(0);
