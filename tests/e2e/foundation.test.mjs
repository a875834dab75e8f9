// foundation.test.mjs: the parley binary end to end: init, CLI, HTTP layer (routing,
// errors, limits, request ids, metrics), authentication (Basic, OAuth2 via the official
// SDK, expiry, revocation, project scoping, rate limit), config precedence, migrations
// refusal, TLS and graceful shutdown.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { writeFileSync, existsSync, statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RequestFailedError } from '@sinch/sdk-core';
import { startParley, runCli, tempDir, basicAuth, sdkRejects } from './lib/parley.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('init and CLI', () => {
  test('parley init prints one JSON object and refuses a second init', async () => {
    const dir = tempDir();
    const r = await runCli(['init', '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const init = JSON.parse(lines[0]);
    assert.deepEqual(Object.keys(init).sort(), ['admin_email', 'admin_password', 'key_id', 'key_secret', 'project_id']);
    assert.match(init.project_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.match(init.key_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.ok(init.key_secret.length >= 32);
    assert.ok(existsSync(join(dir, 'parley.db')));
    assert.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600);
    // The secret is stored hashed only.
    const dump = execFileSync('sqlite3', [join(dir, 'parley.db'), '.dump']).toString();
    assert.ok(!dump.includes(init.key_secret));
    assert.ok(!dump.includes(init.admin_password));
    const again = await runCli(['init', '--data-dir', dir]);
    assert.equal(again.code, 1);
    assert.equal(again.stdout, '');
    assert.match(again.stderr, /already initialised/);
    rmSync(dir, { recursive: true });
  });

  test('serve initialises an empty data dir once; a restart prints nothing', async () => {
    const dir = tempDir();
    const p = await startParley({ dataDir: dir });
    assert.ok(p.init.key_secret);
    const h = await p.api('GET', '/healthz', { auth: 'none' });
    assert.equal(h.status, 200);
    await p.stop();
    const p2 = await startParley({ dataDir: dir });
    assert.equal(p2.init, null);
    assert.equal(p2.stdout(), '');
    // The first key still works after the restart.
    const ok = await p2.api('GET', `/v1/projects/${p.init.project_id}/apps`, { auth: basicAuth(p.init.key_id, p.init.key_secret) });
    assert.equal(ok.status, 200);
    await p2.stop();
    rmSync(dir, { recursive: true });
  });

  test('projects and keys commands work while the server runs', async () => {
    const p = await startParley();
    const proj = await runCli(['projects', 'create', '--name', 'Second', '--data-dir', p.dataDir]);
    assert.equal(proj.code, 0, proj.stderr);
    const { project_id } = JSON.parse(proj.stdout);
    const list = JSON.parse((await runCli(['projects', 'list', '--data-dir', p.dataDir])).stdout);
    assert.deepEqual(list.map((x) => x.id).sort(), [p.init.project_id, project_id].sort());
    const key = JSON.parse((await runCli(['keys', 'create', '--project', project_id, '--name', 'ci', '--data-dir', p.dataDir])).stdout);
    assert.equal(key.project_id, project_id);
    const use = await p.api('GET', `/v1/projects/${project_id}/apps`, { auth: basicAuth(key.key_id, key.key_secret) });
    assert.equal(use.status, 200);
    const keys = JSON.parse((await runCli(['keys', 'list', '--project', project_id, '--data-dir', p.dataDir])).stdout);
    assert.equal(keys.length, 1);
    assert.equal(keys[0].name, 'ci');
    assert.equal(keys[0].revoked_at, null);
    assert.ok(!JSON.stringify(keys).includes(key.key_secret));
    const rev = await runCli(['keys', 'revoke', '--project', project_id, '--key', key.key_id, '--data-dir', p.dataDir]);
    assert.equal(rev.code, 0, rev.stderr);
    const after = await p.api('GET', `/v1/projects/${project_id}/apps`, { auth: basicAuth(key.key_id, key.key_secret) });
    assert.equal(after.status, 401);
    const again = await runCli(['keys', 'revoke', '--project', project_id, '--key', key.key_id, '--data-dir', p.dataDir]);
    assert.equal(again.code, 1);
    const unknown = await runCli(['keys', 'create', '--project', '01ZZZZZZZZZZZZZZZZZZZZZZZZ', '--data-dir', p.dataDir]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /not found/);
    await p.stop();
  });

  test('version, help and unknown commands', async () => {
    const v = await runCli(['version']);
    assert.match(v.stdout, /^parley \d+\.\d+\.\d+/);
    const h = await runCli(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /serve/);
    assert.match(h.stdout, /PARLEY_HTTP_MAX_BODY/);
    const u = await runCli(['frobnicate']);
    assert.equal(u.code, 2);
  });
});

describe('HTTP layer and authentication', () => {
  let p;
  let base;
  before(async () => { p = await startParley(); base = `/v1/projects/${p.init.project_id}`; });
  after(async () => { await p.stop(); });

  test('healthz, request ids and structured logs', async () => {
    const r = await p.api('GET', '/healthz', { auth: 'none' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ok' });
    assert.match(r.headers.get('x-request-id'), /^[0-9A-Z]{26}$/);
    const mine = await p.api('GET', '/healthz', { auth: 'none', headers: { 'X-Request-Id': 'abc-123' } });
    assert.equal(mine.headers.get('x-request-id'), 'abc-123');
    await sleep(50);
    const line = p.stderr().split('\n').find((l) => l.includes('"request_id":"abc-123"'));
    const entry = JSON.parse(line);
    assert.equal(entry.msg, 'request');
    assert.equal(entry.status, 200);
    assert.equal(entry.path, '/healthz');
  });

  test('the official SDK obtains an OAuth2 token and lists apps', async () => {
    const sinch = p.sdk();
    const res = await sinch.conversation.app.list({});
    assert.deepEqual(res, { apps: [] });
  });

  test('the SDK with a wrong secret gets 401 from the token endpoint', async () => {
    const sinch = p.sdk({ keySecret: 'wrong' });
    await assert.rejects(sinch.conversation.app.list({}), (e) => e instanceof RequestFailedError && e.statusCode === 401 && e.message.includes('OAuth2Token'));
  });

  test('OAuth2 token endpoint: grants, errors and bearer use', async () => {
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const ok = await p.api('POST', '/oauth2/token', { body: 'grant_type=client_credentials', headers: form });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.token_type, 'bearer');
    assert.equal(ok.json.expires_in, 3600);
    assert.equal(typeof ok.json.scope, 'string');
    const use = await p.api('GET', `${base}/apps`, { auth: `Bearer ${ok.json.access_token}` });
    assert.equal(use.status, 200);
    const grant = await p.api('POST', '/oauth2/token', { body: 'grant_type=password', headers: form });
    assert.equal(grant.status, 400);
    assert.equal(grant.json.error.status, 'INVALID_ARGUMENT');
    const none = await p.api('POST', '/oauth2/token', { body: '', headers: form });
    assert.equal(none.status, 400);
    const bad = await p.api('POST', '/oauth2/token', { body: 'grant_type=client_credentials', headers: form, auth: basicAuth(p.init.key_id, 'nope') });
    assert.equal(bad.status, 401);
    assert.equal(bad.json.error.status, 'UNAUTHENTICATED');
    const noauth = await p.api('POST', '/oauth2/token', { body: 'grant_type=client_credentials', headers: form, auth: 'none' });
    assert.equal(noauth.status, 401);
    const tampered = ok.json.access_token.slice(0, -2) + (ok.json.access_token.endsWith('A') ? 'BB' : 'AA');
    const t = await p.api('GET', `${base}/apps`, { auth: `Bearer ${tampered}` });
    assert.equal(t.status, 401);
  });

  test('missing and malformed credentials answer 401 in the error model', async () => {
    for (const auth of ['none', 'Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Digest x', 'Bearer ', 'Bearer pt1.x.y', basicAuth('not-a-key', 'x')]) {
      const r = await p.api('GET', `${base}/apps`, { auth });
      assert.equal(r.status, 401, auth);
      assert.equal(r.json.error.code, 401);
      assert.equal(r.json.error.status, 'UNAUTHENTICATED');
      assert.deepEqual(r.json.error.details, []);
    }
  });

  test('a key reaches only its own project: 403 without an existence oracle', async () => {
    const proj = JSON.parse((await runCli(['projects', 'create', '--name', 'Other', '--data-dir', p.dataDir])).stdout);
    const other = await p.api('GET', `/v1/projects/${proj.project_id}/apps`);
    const ghost = await p.api('GET', '/v1/projects/01ZZZZZZZZZZZZZZZZZZZZZZZZ/apps');
    assert.equal(other.status, 403);
    assert.equal(ghost.status, 403);
    assert.equal(other.json.error.status, 'PERMISSION_DENIED');
    assert.equal(other.json.error.message.replace(proj.project_id, 'X'), ghost.json.error.message.replace('01ZZZZZZZZZZZZZZZZZZZZZZZZ', 'X'));
    const sinch = p.sdk({ projectId: proj.project_id });
    await sdkRejects(sinch.conversation.app.list({}), 403, 'PERMISSION_DENIED');
  });

  test('routing errors: 404, 405 with Allow, bad paths', async () => {
    const nf = await p.api('GET', '/nope', { auth: 'none' });
    assert.equal(nf.status, 404);
    assert.equal(nf.json.error.status, 'NOT_FOUND');
    const m = await p.api('DELETE', '/healthz', { auth: 'none' });
    assert.equal(m.status, 405);
    assert.equal(m.headers.get('allow'), 'GET');
    const long = await p.api('GET', `/v1/projects/${'A'.repeat(300)}/apps`, { auth: 'none' });
    assert.equal(long.status, 400);
    // Path traversal, sent raw (fetch would normalise the dots away).
    for (const path of ['/v1/projects/../healthz', '/v1/%2e%2e/healthz', '/a/./b']) {
      const raw = await rawRequest(p.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 400/, path);
      assert.match(raw, /"status":"INVALID_ARGUMENT"/);
    }
  });

  test('bodies: malformed JSON, wrong types, wrong media type, too large', async () => {
    const bad = await p.api('POST', `${base}/apps`, { body: '{"display_name": ', headers: { 'Content-Type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /invalid JSON at line 1/);
    const arr = await p.api('POST', `${base}/apps`, { body: '[1,2]', headers: { 'Content-Type': 'application/json' } });
    assert.equal(arr.status, 400);
    const media = await p.api('POST', `${base}/apps`, { body: '{}', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(media.status, 415);
    assert.equal(media.json.error.status, 'INVALID_ARGUMENT');
    const big = await p.api('POST', `${base}/apps`, { body: JSON.stringify({ display_name: 'x'.repeat(1100000) }) });
    assert.equal(big.status, 413);
    const list = await p.api('GET', `${base}/apps`);
    assert.deepEqual(list.json, { apps: [] }, 'nothing was written');
    const h = await p.api('GET', '/healthz', { auth: 'none' });
    assert.equal(h.status, 200, 'still serving');
  });

  test('metrics in Prometheus text format', async () => {
    await p.api('GET', '/healthz', { auth: 'none' });
    const r = await p.api('GET', '/metrics', { auth: 'none' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain/);
    const m = r.text.match(/parley_http_requests_total\{route="GET \/healthz",status="200"\} (\d+)/);
    assert.ok(m && Number(m[1]) >= 2, r.text);
    assert.match(r.text, /parley_http_requests_total\{route="unmatched",status="404"\} \d+/);
    assert.match(r.text, /parley_http_request_duration_seconds_bucket\{le="\+Inf"\} \d+/);
    assert.match(r.text, /parley_http_request_duration_seconds_count \d+/);
    assert.match(r.text, /parley_store_errors_total 0/);
    // a fresh server has committed its init: some commits, each at least one page
    const commits = Number(r.text.match(/parley_store_commits_total (\d+)/)[1]);
    const frames = Number(r.text.match(/parley_store_wal_frames_total (\d+)/)[1]);
    assert.ok(commits > 0 && frames >= commits, r.text);
    // The WAL's writes are gathered: far fewer write calls than SQLite's two per page.
    const wal = (text) => ['commits', 'wal_frames', 'wal_writes'].map((k) => Number(text.match(new RegExp(`parley_store_${k}_total (\\d+)`))[1]));
    const [c0, f0, w0] = wal(r.text);
    for (let i = 0; i < 5; i++) assert.equal((await p.api('POST', `/v1/projects/${p.init.project_id}/contacts`, { body: { display_name: `m${i}`, language: 'EN_US', channel_identities: [{ channel: 'SMS', identity: `+4670000000${i}` }] } })).status, 200);
    const [c1, f1, w1] = wal((await p.api('GET', '/metrics', { auth: 'none' })).text);
    assert.ok(c1 - c0 >= 5 && w1 - w0 >= c1 - c0 && w1 - w0 < 2 * (f1 - f0), `commits ${c1 - c0}, frames ${f1 - f0}, writes ${w1 - w0}`);
  });
});

describe('expiry, rate limits, config, migrations, TLS, shutdown', () => {
  test('expired tokens answer 401 "expired" and the SDK refreshes by itself', async () => {
    const p = await startParley({ env: { PARLEY_AUTH_TOKEN_TTL: '1' } });
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const tok = await p.api('POST', '/oauth2/token', { body: 'grant_type=client_credentials', headers: form });
    assert.equal(tok.json.expires_in, 1);
    const sinch = p.sdk();
    await sinch.conversation.app.list({});
    await sleep(1300);
    const r = await p.api('GET', `/v1/projects/${p.init.project_id}/apps`, { auth: `Bearer ${tok.json.access_token}` });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /expired/);
    assert.deepEqual(await sinch.conversation.app.list({}), { apps: [] });
    await p.stop();
  });

  test('a revoked key stops its bearer tokens at once', async () => {
    const p = await startParley();
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const tok = await p.api('POST', '/oauth2/token', { body: 'grant_type=client_credentials', headers: form });
    await runCli(['keys', 'revoke', '--project', p.init.project_id, '--key', p.init.key_id, '--data-dir', p.dataDir]);
    const r = await p.api('GET', `/v1/projects/${p.init.project_id}/apps`, { auth: `Bearer ${tok.json.access_token}` });
    assert.equal(r.status, 401);
    await p.stop();
  });

  test('per-project rate limit answers 429 with Retry-After', async () => {
    const p = await startParley({ args: ['--rate-limit', '2'], env: { PARLEY_HTTP_RATE_BURST: '3' } });
    const path = `/v1/projects/${p.init.project_id}/apps`;
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await p.api('GET', path));
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 4, results.map((r) => r.status).join(','));
    assert.equal(limited[0].json.error.status, 'RESOURCE_EXHAUSTED');
    assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
    // Another project has its own budget.
    const proj = JSON.parse((await runCli(['projects', 'create', '--name', 'B', '--data-dir', p.dataDir])).stdout);
    const key = JSON.parse((await runCli(['keys', 'create', '--project', proj.project_id, '--data-dir', p.dataDir])).stdout);
    const other = await p.api('GET', `/v1/projects/${proj.project_id}/apps`, { auth: basicAuth(key.key_id, key.key_secret) });
    assert.equal(other.status, 200);
    // Unauthenticated operations endpoints are not limited.
    assert.equal((await p.api('GET', '/healthz', { auth: 'none' })).status, 200);
    await p.stop();
  });

  test('config precedence: file < environment < flags', async () => {
    const dir = tempDir();
    const conf = join(dir, 'parley.conf');
    writeFileSync(conf, '# test config\nlog_level = warn\n[http]\nmax_body = 2048\n');
    const body = JSON.stringify({ display_name: 'x'.repeat(3000) });
    const p = await startParley({ args: ['--config', conf, '--log-level', 'info'] });
    assert.equal((await p.api('POST', `/v1/projects/${p.init.project_id}/apps`, { body })).status, 413);
    assert.match(p.stderr(), /"msg":"listening"/, 'the --log-level flag beat the file');
    await p.stop();
    const p2 = await startParley({ args: ['--config', conf], env: { PARLEY_HTTP_MAX_BODY: '8192' } });
    assert.notEqual((await p2.api('POST', `/v1/projects/${p2.init.project_id}/apps`, { body })).status, 413);
    await p2.stop();
    writeFileSync(conf, '[http]\nmax_bodyy = 1\n');
    const bad = await runCli(['serve', '--config', conf, '--data-dir', dir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /parley.conf:2: unknown setting "http.max_bodyy"/);
    rmSync(dir, { recursive: true });
  });

  test('a store from a newer parley is refused and left untouched', async () => {
    const dir = tempDir();
    assert.equal((await runCli(['init', '--data-dir', dir])).code, 0);
    execFileSync('sqlite3', [join(dir, 'parley.db'), 'PRAGMA user_version = 999;']);
    const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--data-dir', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /schema version 999.*newer parley/);
    assert.equal(execFileSync('sqlite3', [join(dir, 'parley.db'), 'PRAGMA user_version;']).toString().trim(), '999');
    rmSync(dir, { recursive: true });
  });

  test('TLS with --tls-cert and --tls-key', async () => {
    const dir = tempDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const p = await startParley({ args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')] });
    const body = await new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: p.port, path: '/healthz', rejectUnauthorized: false }, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => resolve({ status: res.statusCode, b }));
      }).on('error', reject);
    });
    assert.equal(body.status, 200);
    assert.equal(body.b, '{"status":"ok"}');
    await p.stop();
    rmSync(dir, { recursive: true });
  });

  test('SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const p = await startParley();
    const sock = net.connect(p.port, '127.0.0.1');
    await new Promise((r) => sock.on('connect', r));
    let reply = '';
    sock.on('data', (d) => { reply += d; });
    const body = 'grant_type=client_credentials';
    sock.write(`POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: ${basicAuth(p.init.key_id, p.init.key_secret)}\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 5)}`);
    await sleep(200);
    p.proc.kill('SIGTERM');
    await sleep(300);
    assert.equal(p.exited(), null, 'still running while a request is in flight');
    sock.write(body.slice(5));
    await new Promise((r) => sock.on('close', r));
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.match(reply, /access_token/);
    const res = await p.stop();
    assert.equal(res.code, 0);
    assert.match(p.stderr(), /"msg":"stopped"/);
  });
});

function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}
