// routing_latency.mjs: inbound-message-to-agent-event latency of the contact center through a
// real server (bench/routing runs it; see bench/README.md).
//
// A fresh data dir gets, besides what `parley init` makes, one WhatsApp app linked to the
// contact center and (seeded straight into SQLite with the sqlite3 CLI, so the run stays short)
// 17 skills, 16 categories with rules, 1,000 online agents with mixed skills and 10,000
// conversations already waiting in 8 backlog categories that no online agent can take. Then
// native WhatsApp webhooks arrive at BENCH_RATE/s for BENCH_SECONDS, each a new customer whose
// first message routes (keyword rule) to one of 8 live categories; each is allocated at once.
// The latency of one customer = from the webhook POST being sent to the `assignment` event
// for its conversation arriving on a Server-Sent Events stream (one measuring client plus
// BENCH_SSE_IDLE other open streams). Prints one machine-readable line:
//   routing_latency waiting=10000 agents=1000 sent=N assigned=M p50_ms=.. p99_ms=.. max_ms=..
import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.PARLEY_BIN;
const RATE = Number(process.env.BENCH_RATE || 50);
const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const IDLE = Number(process.env.BENCH_SSE_IDLE || 20);
const KEEP = process.env.BENCH_KEEP_TMP === '1';
const WAITING = 10000, AGENTS = 1000, LIVE = 8, BACKLOG = 8;
const WA_PNID = '106540352242922', WA_SECRET = 'bench-wa-secret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => process.stderr.write(`routing_latency: ${m}\n`);

const freePort = () => new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
const id26 = (prefix, n) => prefix + String(n).padStart(26 - prefix.length, '0');

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-routing-'));
let server;
const cleanup = () => { try { server?.kill('SIGTERM'); } catch { /* gone */ } };
process.on('exit', () => { cleanup(); if (!KEEP) rmSync(dir, { recursive: true, force: true }); else log(`kept ${dir}`); });
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const init = JSON.parse(execFileSync(BIN, ['init', '--data-dir', dir], { encoding: 'utf8' }).split('\n')[0]);
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
server = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dir], {
  env: { ...process.env, PARLEY_LOG_LEVEL: 'warn', PARLEY_CHANNELS_WHATSAPP_URL: 'http://127.0.0.1:9/v19.0', PARLEY_CONTACT_STATS_INTERVAL_S: '3600' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const auth = 'Basic ' + Buffer.from(`${init.key_id}:${init.key_secret}`).toString('base64');
const api = async (method, path, body) => {
  const r = await fetch(url + path, { method, headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
};
for (let i = 0; ; i++) {
  try { if ((await fetch(`${url}/healthz`)).status === 200) break; } catch { /* not yet */ }
  if (i > 200) throw new Error('parley did not start');
  await sleep(50);
}
const pid = init.project_id, base = `/v1/projects/${pid}/contact`;
// New projects start with the "Hello world!" flow, which takes every inbound message (a
// flow that handles an app keeps its conversations out of the queue): run without flows.
await api('POST', `/v1/projects/${pid}/flows`, { flows: [] });
const app = await api('POST', `/v1/projects/${pid}/apps`, { display_name: 'bench', channel_credentials: [
  { channel: 'WHATSAPP', static_bearer: { claimed_identity: WA_PNID, token: 'bench-token' }, callback_secret: WA_SECRET }] });
await api('POST', `${base}/channels`, { app_id: app.id });

// ---- seed: skills, categories, rules, agents, the waiting backlog ----
log(`seeding ${AGENTS} agents and ${WAITING} waiting conversations`);
let seed = 'BEGIN;\n';
const now = Date.now();
const q = (s) => `'${s}'`;
const skills = [];
for (let s = 0; s <= LIVE; s++) {
  skills.push(id26('SKIL', s));
  seed += `INSERT INTO contact_skills (id, project_id, name, created_at) VALUES (${q(skills[s])}, ${q(pid)}, 'skill${s}', ${now});\n`;
}
const overflow = skills[LIVE]; // held by nobody online: the backlog waits
for (let c = 0; c < LIVE + BACKLOG; c++) {
  const live = c < LIVE;
  const req = live ? [skills[c]] : [overflow, skills[c % LIVE]];
  seed += `INSERT INTO contact_categories (id, project_id, name, priority, skills, is_default, created_at) VALUES (${q(id26('CATG', c))}, ${q(pid)}, '${live ? 'live' : 'backlog'}${c}', ${live ? 0 : c % 3}, '${JSON.stringify(req)}', ${c === 0 ? 1 : 0}, ${now});\n`;
  if (live) seed += `INSERT INTO contact_rules (id, project_id, position, category_id, keywords, created_at) VALUES (${q(id26('RULE', c))}, ${q(pid)}, ${c}, ${q(id26('CATG', c))}, '["topic${c}"]', ${now});\n`;
}
let rnd = 12345;
const rand = (n) => { rnd ^= rnd << 13; rnd >>>= 0; rnd ^= rnd >>> 17; rnd ^= rnd << 5; rnd >>>= 0; return rnd % n; };
for (let g = 0; g < AGENTS; g++) {
  const u = id26('USER', g);
  seed += `INSERT INTO users (id, project_id, email, password_hash, role, created_at) VALUES (${q(u)}, ${q(pid)}, 'agent${g}@bench.test', 'x', 'agent', ${now});\n`;
  seed += `INSERT INTO contact_agents (user_id, project_id, capacity, auto_allocate, presence, presence_at, idle_since, updated_at) VALUES (${q(u)}, ${q(pid)}, 1000000, 1, 'online', ${now}, ${now - rand(100000)}, ${now});\n`;
  const mine = new Set();
  for (let k = 2 + rand(4); k > 0; k--) mine.add(rand(LIVE));
  for (const s of mine) seed += `INSERT INTO contact_agent_skills (user_id, skill_id, project_id, active) VALUES (${q(u)}, ${q(skills[s])}, ${q(pid)}, 1);\n`;
}
for (let i = 0; i < WAITING; i++) {
  const c = LIVE + rand(BACKLOG);
  seed += `INSERT INTO contact_conversations (id, project_id, conversation_id, app_id, category_id, priority, source, status, queued_at, created_at) VALUES (${q(id26('CONV', i))}, ${q(pid)}, ${q(id26('BACK', i))}, ${q(app.id)}, ${q(id26('CATG', c))}, ${c % 3}, 'inbound', 'waiting', ${now - WAITING + i}, ${now - WAITING + i});\n`;
}
seed += 'COMMIT;\n';
writeFileSync(join(dir, 'seed.sql'), seed);
execFileSync('sqlite3', ['-cmd', '.timeout 10000', join(dir, 'parley.db'), `.read ${join(dir, 'seed.sql')}`]);

// ---- SSE clients ----
const assigned = new Map(); // contact_id -> time the assignment event arrived
function openStream(record) {
  const ctl = new AbortController();
  const ready = (async () => {
    const res = await fetch(`${url}${base}/events`, { headers: { Authorization: auth, Accept: 'text/event-stream' }, signal: ctl.signal });
    if (res.status !== 200) throw new Error(`events: ${res.status}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (!record) continue;
          const at = performance.now();
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!block.includes('event: assignment')) continue;
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
            const ev = JSON.parse(data);
            assigned.set(ev.conversation.contact_id, at);
          }
        }
      } catch { /* aborted */ }
    })();
  })();
  return { ready, close: () => ctl.abort() };
}
const streams = [openStream(true)];
for (let i = 0; i < IDLE; i++) streams.push(openStream(false));
await Promise.all(streams.map((s) => s.ready));

// ---- inbound webhooks ----
const sentAt = new Map(); // phone -> send time
const inbound = async (phone, text) => {
  const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'messages', value: {
    messaging_product: 'whatsapp', metadata: { display_phone_number: '15550100001', phone_number_id: WA_PNID },
    contacts: [{ profile: { name: 'Bench' }, wa_id: phone }],
    messages: [{ from: phone, id: 'wamid.' + randomBytes(16).toString('base64url'), timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }] } }] }] });
  const sig = 'sha256=' + createHmac('sha256', WA_SECRET).update(body).digest('hex');
  sentAt.set(phone, performance.now());
  const r = await fetch(`${url}/channels/${app.id}/whatsapp`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': sig }, body });
  if (r.status !== 200) throw new Error(`inbound: ${r.status} ${await r.text()}`);
};
// Warm-up: loads the project's allocator mirror (10,000 waiting, 1,000 agents).
await inbound('4600000000', 'topic0 warm-up');
for (let i = 0; assigned.size === 0; i++) { if (i > 400) throw new Error('no assignment for the warm-up'); await sleep(25); }
assigned.clear();
sentAt.clear();
log(`offering ${RATE} new customers/s for ${SECONDS} s to ${IDLE + 1} SSE clients`);
const total = RATE * SECONDS, t0 = performance.now(), pending = [];
for (let i = 0; i < total; i++) {
  const due = t0 + (i * 1000) / RATE;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  pending.push(inbound(String(4610000000 + i), `topic${i % LIVE} hello`));
}
await Promise.all(pending);
for (let i = 0; assigned.size < total && i < 400; i++) await sleep(25);

// phone -> contact id, through the Conversation API.
const contactOf = new Map();
let token = '';
do {
  const page = await api('GET', `/v1/projects/${pid}/contacts?page_size=1000${token ? `&page_token=${token}` : ''}`);
  for (const c of page.contacts) for (const ci of c.channel_identities || []) contactOf.set(ci.identity, c.id);
  token = page.next_page_token;
} while (token);
const lat = [];
for (const [phone, at] of sentAt) {
  const got = assigned.get(contactOf.get(phone));
  if (got !== undefined) lat.push(got - at);
}
lat.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))].toFixed(1) : 'NaN');
const dash = await api('GET', `${base}/dashboard`);
for (const s of streams) s.close();
console.log(`routing_latency waiting=${dash.waiting} agents=${AGENTS} sse_clients=${IDLE + 1} rate=${RATE} sent=${total} assigned=${lat.length} p50_ms=${pct(50)} p99_ms=${pct(99)} max_ms=${lat.length ? lat[lat.length - 1].toFixed(1) : 'NaN'}`);
cleanup();
await sleep(200);
process.exit(lat.length === total ? 0 : 1);
