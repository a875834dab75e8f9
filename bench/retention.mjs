#!/usr/bin/env node
// bench/retention.mjs: does the retention sweeper stall live traffic? Seeds a backlog of
// expired messages (BENCH_BACKLOG, default 100000) with sqlite3, then measures the latency
// of a write endpoint (POST /contacts, BENCH_CONCURRENCY clients for BENCH_SECONDS) twice:
// with the sweeper idle (the backlog waits) and while the sweeper removes the backlog in
// its batches. Prints both latency figures and the sweeper's removal rate; the last line
// is machine-readable:
//   retention backlog=N idle_p50_ms=.. idle_p99_ms=.. sweep_p50_ms=.. sweep_p99_ms=.. removed=R removed_per_s=..
// Environment: PARLEY_BIN (default build/parley), BENCH_BACKLOG, BENCH_SECONDS (5),
// BENCH_CONCURRENCY (16). Loopback only; servers are stopped on exit.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

const BIN = process.env.PARLEY_BIN || new URL('../build/parley', import.meta.url).pathname;
const BACKLOG = Number(process.env.BENCH_BACKLOG || 100000);
const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const CONC = Number(process.env.BENCH_CONCURRENCY || 16);
const dir = mkdtempSync(join(tmpdir(), 'parley-bench-retention-'));
let server = null;
process.on('exit', () => { if (server) server.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function start(env) {
  const port = await freePort();
  const p = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dir], { env: { ...process.env, PARLEY_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  server = p;
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return { p, url, out: () => out, err: () => err };
    } catch { /* not up yet */ }
  }
  throw new Error(`server did not start: ${err}`);
}

async function stop(s) {
  s.p.kill('SIGTERM');
  await new Promise((r) => s.p.on('exit', r));
  server = null;
}

const sqlite = (stmt) => execFileSync('sqlite3', ['-cmd', '.timeout 10000', join(dir, 'parley.db'), stmt], { encoding: 'utf8' }).trim();

let n = 0; // contacts created so far (identities stay unique across phases)
async function load(url, auth, base) {
  const lat = [];
  const end = Date.now() + SECONDS * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      const r = await fetch(`${url}${base}/contacts`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ display_name: 'c', language: 'EN', channel_identities: [{ channel: 'SMS', identity: `+4670${String(n++).padStart(7, '0')}` }] }) });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`POST /contacts: ${r.status}`);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
  lat.sort((a, b) => a - b);
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor(lat.length * f))].toFixed(2);
  return { n: lat.length, p50: q(0.5), p99: q(0.99), rps: Math.round(lat.length / SECONDS) };
}

// First start initialises the data dir; the sweeper then idles for a day.
let s1 = await start({ PARLEY_PRIVACY_INTERVAL_S: '86400', PARLEY_BACKUP_INTERVAL_S: '0' });
for (let i = 0; i < 100 && !s1.out().includes('\n'); i++) await new Promise((r) => setTimeout(r, 20));
const init = JSON.parse(s1.out().split('\n')[0]);
const auth = 'Basic ' + Buffer.from(`${init.key_id}:${init.key_secret}`).toString('base64');
const base = `/v1/projects/${init.project_id}`;
const app = await (await fetch(`${s1.url}${base}/apps`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ display_name: 'bench', channel_credentials: [], retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 1 } }) })).json();
const pid = init.project_id;
sqlite(`INSERT INTO contacts (id, project_id, created_at, updated_at, last_activity) VALUES ('01JBENCHC0NTACT00000000000', '${pid}', 0, 0, 0);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${BACKLOG})
  INSERT INTO messages (id, project_id, app_id, contact_id, direction, accept_time, kind, content)
  SELECT printf('01JBENCH%018d', i), '${pid}', '${app.id}', '01JBENCHC0NTACT00000000000', 'TO_APP', 1577836800000 + i, 'contact_message', '{"text_message":{"text":"old"}}' FROM n;`);

const idle = await load(s1.url, auth, base);
await stop(s1);
// Now with the sweeper running continuously over the backlog.
const s2 = await start({ PARLEY_PRIVACY_INTERVAL_S: '1', PARLEY_BACKUP_INTERVAL_S: '0' });
const t0 = Date.now();
const sweep = await load(s2.url, auth, base);
const secs = (Date.now() - t0) / 1000;
const metrics = await (await fetch(`${s2.url}/metrics`)).text();
const removed = Number(metrics.match(/parley_retention_removed_total\{kind="messages"\} (\d+)/)?.[1] || 0);
await stop(s2);

console.log(`retention: POST /contacts x${CONC} for ${SECONDS}s, backlog ${BACKLOG} expired messages, ${cpus().length} cores, ${BIN}`);
console.log('phase            requests/s   p50 ms   p99 ms');
console.log(`sweeper idle     ${String(idle.rps).padStart(10)} ${idle.p50.padStart(8)} ${idle.p99.padStart(8)}`);
console.log(`sweeper running  ${String(sweep.rps).padStart(10)} ${sweep.p50.padStart(8)} ${sweep.p99.padStart(8)}   (removed ${removed} messages, ${Math.round(removed / secs)}/s)`);
console.log(`retention backlog=${BACKLOG} idle_p50_ms=${idle.p50} idle_p99_ms=${idle.p99} sweep_p50_ms=${sweep.p50} sweep_p99_ms=${sweep.p99} removed=${removed} removed_per_s=${Math.round(removed / secs)}`);
