// lifecycle.test.mjs: backups, restore, export/import and tenant deletion.
// - a backup taken while sends are written at full speed restores to a database that
//   passes PRAGMA integrity_check and holds every send acknowledged before it began;
// - automatic backups rotate; restore refuses truncated, foreign, newer-schema files and
//   a data dir a running server holds;
// - export then import into an empty data dir reproduces the project (same API answers,
//   secrets usable); conflicting or wrongly-keyed imports change nothing;
// - a deleted project is inaccessible at once, restorable and exportable during the grace
//   period, and purged (every row) after it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startParley, runCli, tempDir, basicAuth } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const DAY = 86400000;
const TG_SECRET = 'tg-callback-secret-0123';

function sqlite(file, stmt) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, stmt], { encoding: 'utf8' }).trim();
}

async function cli(args, env) {
  const r = await runCli(args, { env });
  return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout.trim().split('\n').pop()) : null };
}

async function telegramFake() {
  const fake = await startReceiver();
  let seq = 1;
  fake.respond((rec) => {
    if (rec.url.endsWith('/getMe')) return { status: 200, body: JSON.stringify({ ok: true, result: { id: 42, is_bot: true, first_name: 'bot' } }) };
    const body = JSON.parse(rec.body || '{}');
    return { status: 200, body: JSON.stringify({ ok: true, result: { message_id: seq++, chat: { id: Number(body.chat_id) }, date: 1, text: body.text } }) };
  });
  return fake;
}

describe('backups', () => {
  test('a backup taken under full-speed sends restores whole, with every send acknowledged before it began', { timeout: 120000 }, async () => {
    const fake = await telegramFake();
    const p = await startParley({ env: { PARLEY_CHANNELS_TELEGRAM_URL: fake.url } });
    const base = `/v1/projects/${p.init.project_id}`;
    const auth = basicAuth(p.init.key_id, p.init.key_secret);
    try {
      const app = (await p.api('POST', `${base}/apps`, { body: { display_name: 'load', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: '42:LOAD' } }] } })).json;
      const acked = [];
      let stop = false, n = 0;
      const worker = async () => {
        while (!stop) {
          const i = n++;
          const r = await fetch(`${p.url}${base}/messages:send`, { method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' },
            body: JSON.stringify({ app_id: app.id, recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: String(1000 + (i % 5)) }] } }, message: { text_message: { text: `m${i}` } } }) });
          if (r.status === 200) acked.push((await r.json()).message_id);
        }
      };
      const workers = [worker(), worker(), worker(), worker()];
      while (acked.length < 50) await new Promise((r) => setTimeout(r, 20));
      const before = [...acked];
      const file = join(tempDir(), 'under-load.db');
      const b = await cli(['backup', '--to', file, '--data-dir', p.dataDir]);
      const during = acked.length;
      // An export under the same load is one snapshot: it imports cleanly (every message's
      // conversation and contact came along).
      const jsonl = join(tempDir(), 'under-load.jsonl');
      const ex = await cli(['export', '--project', p.init.project_id, '--to', jsonl, '--plain-secrets', '--data-dir', p.dataDir]);
      assert.equal(ex.code, 0, ex.stderr);
      const im = await cli(['import', '--from', jsonl, '--data-dir', tempDir()]);
      assert.equal(im.code, 0, im.stderr);
      await new Promise((r) => setTimeout(r, 200));
      stop = true;
      await Promise.all(workers);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.json.backup, file);
      assert.ok(acked.length > during, 'sends went on after the backup');
      assert.ok(!existsSync(file + '.tmp'));
      // Restore into a fresh data dir and check it.
      const dir = tempDir();
      const r = await cli(['restore', '--from', file, '--data-dir', dir]);
      assert.equal(r.code, 0, r.stderr);
      const db = join(dir, 'parley.db');
      assert.equal(sqlite(db, 'PRAGMA integrity_check'), 'ok');
      const stored = new Set(sqlite(db, 'SELECT id FROM messages').split('\n'));
      const lost = before.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${before.length} acknowledged sends missing from the backup`);
      // A running server's data dir is refused; nothing in it changes.
      const held = await cli(['restore', '--from', file, '--data-dir', p.dataDir]);
      assert.equal(held.code, 1);
      assert.match(held.stderr, /a parley server is running on .*: stop it first/);
      assert.ok(!existsSync(join(p.dataDir, 'parley.db.before-restore')));
    } finally {
      await p.stop();
      await fake.close();
    }
  });

  test('restore refuses truncated, non-SQLite, non-Parley and newer-schema files before touching anything', async () => {
    const p = await startParley();
    const dir = tempDir();
    const good = join(dir, 'good.db');
    try {
      assert.equal((await cli(['backup', '--to', good, '--data-dir', p.dataDir])).code, 0);
      const unwritable = await cli(['backup', '--to', '/proc/no-such-dir/b.db', '--data-dir', p.dataDir]);
      assert.equal(unwritable.code, 1);
      assert.match(unwritable.stderr, /cannot write backup to \/proc\/no-such-dir\/b\.db: No such file or directory/);
    } finally {
      await p.stop();
    }
    const target = tempDir();
    assert.equal((await cli(['restore', '--from', good, '--data-dir', target])).code, 0);
    const marker = sqlite(join(target, 'parley.db'), 'SELECT count(*) FROM projects');
    const bytes = readFileSync(good);
    writeFileSync(join(dir, 'trunc.db'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    writeFileSync(join(dir, 'text.db'), 'not a database at all, just text\n'.repeat(200));
    sqlite(join(dir, 'other.db'), 'CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    copyFileSync(good, join(dir, 'newer.db'));
    sqlite(join(dir, 'newer.db'), 'PRAGMA user_version = 999');
    const cases = [
      ['trunc.db', /is not a whole SQLite database \(integrity check: .*\); refusing it/],
      ['text.db', /is not a whole SQLite database \(integrity check: file is not a database\)/],
      ['other.db', /is an SQLite file but not a Parley store/],
      ['newer.db', /has schema version 999 but this parley knows only up to \d+: .*newer parley/],
      ['missing.db', /cannot read .*missing\.db: No such file or directory/],
    ];
    for (const [name, msg] of cases) {
      const r = await cli(['restore', '--from', join(dir, name), '--data-dir', target]);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, msg, name);
    }
    assert.equal(sqlite(join(target, 'parley.db'), 'SELECT count(*) FROM projects'), marker);
    assert.ok(!existsSync(join(target, 'parley.db.before-restore')), 'nothing was moved');
  });

  test('the server takes automatic backups into DATA_DIR/backups and keeps backup.keep of them', { timeout: 30000 }, async () => {
    const p = await startParley({ env: { PARLEY_BACKUP_INTERVAL_S: '1', PARLEY_BACKUP_KEEP: '2' } });
    try {
      const dir = join(p.dataDir, 'backups');
      let metrics = '';
      for (let i = 0; i < 100; i++) {
        metrics = (await p.api('GET', '/metrics', { auth: 'none' })).text;
        if (/parley_backups_total\{result="ok"\} [3-9]/.test(metrics)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(metrics, /parley_backups_total\{result="ok"\} [3-9]/);
      const files = readdirSync(dir).filter((f) => /^parley-\d{8}T\d{6}Z\.db$/.test(f));
      assert.equal(files.length, 2, readdirSync(dir).join(','));
      assert.equal(sqlite(join(dir, files[1]), 'PRAGMA integrity_check'), 'ok');
    } finally {
      await p.stop();
    }
  });
});

describe('export and import', () => {
  let fake, a, init, base, auth, app;
  const snapshot = async (srv) => {
    const get = async (path) => {
      const r = await srv.api('GET', base + path, { auth });
      assert.equal(r.status, 200, `${path}: ${r.text}`);
      return r.json;
    };
    return {
      apps: await get('/apps'),
      app: await get(`/apps/${app.id}`),
      contacts: await get('/contacts?page_size=100'),
      conversations: await get('/conversations?page_size=100'),
      messages: await get('/messages?page_size=100'),
      webhooks: await get(`/apps/${app.id}/webhooks`),
      settings: await get('/settings'),
    };
  };

  before(async () => {
    fake = await telegramFake();
    a = await startParley({ env: { PARLEY_CHANNELS_TELEGRAM_URL: fake.url } });
    init = a.init;
    base = `/v1/projects/${init.project_id}`;
    auth = basicAuth(init.key_id, init.key_secret);
    const ok = async (method, path, body) => {
      const r = await a.api(method, base + path, { body });
      assert.equal(r.status, 200, `${method} ${path}: ${r.text}`);
      return r.json;
    };
    app = await ok('POST', '/apps', { display_name: 'exported', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: '42:EXPORT' }, callback_secret: TG_SECRET }] });
    await ok('POST', '/webhooks', { app_id: app.id, target: 'http://127.0.0.1:9/hook', triggers: ['MESSAGE_INBOUND'], secret: 'hook-secret' });
    const c1 = await ok('POST', '/contacts', { display_name: 'Ann', language: 'EN_US', channel_identities: [{ channel: 'TELEGRAM', identity: '777' }], metadata: 'vip' });
    await ok('POST', '/contacts', { display_name: 'Bob', language: 'SV', channel_identities: [{ channel: 'SMS', identity: '+46700000002' }] });
    const conv = await ok('POST', '/conversations', { app_id: app.id, contact_id: c1.id, metadata: 'conv-meta' });
    for (const [i, t] of ['2031-01-01T00:00:00Z', '2031-01-02T00:00:00Z'].entries())
      await ok('POST', `/conversations/${conv.id}:inject-message`, { accept_time: t, channel_identity: { channel: 'TELEGRAM', identity: '777' }, contact_id: c1.id, direction: 'TO_APP', contact_message: { text_message: { text: `hi ${i}` } } });
    await ok('PATCH', '/settings', { contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 365 } });
    // Let the credential check settle, so the state is part of what must come back.
    for (let i = 0; i < 100; i++) {
      const got = await ok('GET', `/apps/${app.id}`);
      if (got.channel_credentials[0].state.status === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => { await a.stop(); await fake.close(); });

  test('export then import into an empty data dir reproduces the project; its secrets still work', { timeout: 60000 }, async () => {
    const file = join(tempDir(), 'p.jsonl');
    const ex = await cli(['export', '--project', init.project_id, '--to', file, '--plain-secrets', '--data-dir', a.dataDir]);
    assert.equal(ex.code, 0, ex.stderr);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].kind, 'parley_export');
    assert.equal(lines[0].secrets, 'plain');
    const kinds = new Set(lines.slice(1).map((l) => l.kind));
    for (const k of ['projects', 'access_keys', 'apps', 'app_credentials', 'contacts', 'contact_identities', 'conversations', 'messages', 'webhooks', 'project_settings'])
      assert.ok(kinds.has(k), `export has ${k}`);
    assert.ok(!kinds.has('outbox') && !kinds.has('inbound_seen'), 'work queues stay behind');
    assert.ok(lines.every((l, i) => i === 0 || (typeof l.record === 'object' && l.record)), 'one record per line');
    const want = await snapshot(a);

    const dir = tempDir();
    const im = await cli(['import', '--from', file, '--data-dir', dir]);
    assert.equal(im.code, 0, im.stderr);
    assert.equal(im.json.project_id, init.project_id);
    assert.equal(im.json.records, lines.length - 1);
    const b = await startParley({ dataDir: dir, env: { PARLEY_CHANNELS_TELEGRAM_URL: fake.url } });
    try {
      assert.deepEqual(await snapshot(b), want);
      // The callback secret was re-sealed under the new data dir's key: inbound works.
      const update = { update_id: 1, message: { message_id: 9, from: { id: 777, first_name: 'Ann' }, chat: { id: 777, type: 'private' }, date: 1700000000, text: 'after import' } };
      const post = (secret) => fetch(`${b.url}/channels/${app.id}/telegram`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': secret }, body: JSON.stringify(update) });
      assert.equal((await post('wrong-secret')).status >= 400, true);
      assert.equal((await post(TG_SECRET)).status, 200);
    } finally {
      await b.stop();
    }

    // Importing again into the same data dir: conflicting ids, nothing changed.
    const count = () => sqlite(join(dir, 'parley.db'), 'SELECT (SELECT count(*) FROM messages) || \'/\' || (SELECT count(*) FROM contacts) || \'/\' || (SELECT count(*) FROM projects)');
    const beforeCount = count();
    const again = await cli(['import', '--from', file, '--data-dir', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /line 2: projects [0-9A-Z]{26}: already exists: .*this data dir already holds that id; nothing was imported/);
    assert.equal(count(), beforeCount);
  });

  test('a sealed export needs the source key; a wrong key changes nothing, the right one works', async () => {
    const file = join(tempDir(), 'sealed.jsonl');
    const ex = await cli(['export', '--project', init.project_id, '--to', file, '--data-dir', a.dataDir]);
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(JSON.parse(readFileSync(file, 'utf8').split('\n')[0]).secrets, 'sealed');
    assert.ok(!readFileSync(file, 'utf8').includes(TG_SECRET), 'no secret in clear');
    const dir = tempDir();
    const wrong = await cli(['import', '--from', file, '--data-dir', dir]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /line \d+: (app_credentials|webhooks)\.\w+_sealed is sealed with another data dir's key: import with that key .* or export again with --plain-secrets/);
    assert.equal(sqlite(join(dir, 'parley.db'), 'SELECT count(*) FROM projects'), '0');
    const dir2 = tempDir();
    mkdirSync(dir2, { recursive: true });
    copyFileSync(join(a.dataDir, 'secret.key'), join(dir2, 'secret.key'));
    const right = await cli(['import', '--from', file, '--data-dir', dir2]);
    assert.equal(right.code, 0, right.stderr);
  });

  test('bad export input is precise', async () => {
    const r = await cli(['export', '--project', '01JZZZZZZZZZZZZZZZZZZZZZZZ', '--data-dir', a.dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /project 01JZZZZZZZZZZZZZZZZZZZZZZZ not found/);
    const notExport = join(tempDir(), 'x.jsonl');
    writeFileSync(notExport, '{"kind":"apps"}\n');
    const im = await cli(['import', '--from', notExport, '--data-dir', tempDir()]);
    assert.equal(im.code, 1);
    assert.match(im.stderr, /not a Parley export/);
  });
});

describe('tenant deletion', () => {
  test('a deleted project is inaccessible at once, restorable and exportable in the grace period, then purged whole', { timeout: 60000 }, async () => {
    const p = await startParley();
    try {
      const dd = ['--data-dir', p.dataDir];
      const p2 = (await cli(['projects', 'create', '--name', 'doomed', ...dd])).json.project_id;
      const k2 = (await cli(['keys', 'create', '--project', p2, ...dd])).json;
      const auth2 = basicAuth(k2.key_id, k2.key_secret);
      const b2 = `/v1/projects/${p2}`;
      const mk = async (projBase, authz) => {
        const app = (await p.api('POST', `${projBase}/apps`, { auth: authz, body: { display_name: 'x', channel_credentials: [{ channel: 'SMS', static_bearer: { claimed_identity: 'plan', token: 'sms-token-0123456789' } }] } })).json;
        const c = (await p.api('POST', `${projBase}/contacts`, { auth: authz, body: { display_name: 'c', language: 'EN_US', channel_identities: [{ channel: 'SMS', identity: '+46711111111' }] } })).json;
        const conv = (await p.api('POST', `${projBase}/conversations`, { auth: authz, body: { app_id: app.id, contact_id: c.id } })).json;
        const r = await p.api('POST', `${projBase}/conversations/${conv.id}:inject-message`, { auth: authz, body: { accept_time: '2031-01-01T00:00:00Z', channel_identity: { channel: 'SMS', identity: '+46711111111' }, contact_id: c.id, direction: 'TO_APP', contact_message: { text_message: { text: 't' } } } });
        assert.equal(r.status, 200, r.text);
        await p.api('POST', `${projBase}/webhooks`, { auth: authz, body: { app_id: app.id, target: 'http://127.0.0.1:9/h', triggers: ['MESSAGE_INBOUND'] } });
        return app;
      };
      await mk(b2, auth2);
      await mk(`/v1/projects/${p.init.project_id}`, 'basic');
      const keepCount = sqlite(join(p.dataDir, 'parley.db'), `SELECT count(*) FROM messages WHERE project_id = '${p.init.project_id}'`);

      const del = await p.api('DELETE', b2, { auth: auth2 });
      assert.equal(del.status, 200, del.text);
      assert.equal(del.json.project_id, p2);
      assert.equal(Date.parse(del.json.purge_time) - Date.parse(del.json.delete_time), 30 * DAY);
      assert.equal((await p.api('GET', `${b2}/apps`, { auth: auth2 })).status, 401);
      assert.equal((await p.api('DELETE', b2, { auth: auth2 })).status, 401);
      // Restore and delete again through the CLI.
      const rs = await cli(['projects', 'restore', '--project', p2, ...dd]);
      assert.equal(rs.code, 0, rs.stderr);
      assert.equal((await p.api('GET', `${b2}/apps`, { auth: auth2 })).status, 200);
      const del2 = await cli(['projects', 'delete', '--project', p2, ...dd]);
      assert.equal(del2.code, 0, del2.stderr);
      assert.equal((await p.api('GET', `${b2}/apps`, { auth: auth2 })).status, 401);
      assert.match((await cli(['projects', 'delete', '--project', p2, ...dd])).stderr, /not found \(or already deleted\)/);
      // Exportable during the grace period.
      const ex = await cli(['export', '--project', p2, ...dd]);
      assert.equal(ex.code, 0, ex.stderr);
      assert.ok(ex.stdout.includes('"kind":"messages"'));
      // Not purged a day before the end of the grace period; purged a day after.
      const now = Date.now();
      const run = async (ms) => (await cli(['retention', 'run', '--as-of', new Date(ms).toISOString(), ...dd])).json.removed;
      assert.equal((await run(now + 29 * DAY)).projects, 0);
      assert.ok((await run(now + 31 * DAY)).projects > 0);
      const db = join(p.dataDir, 'parley.db');
      const tables = sqlite(db, `SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = 'project_id'`).split('\n');
      assert.ok(tables.length >= 8);
      for (const t of tables) assert.equal(sqlite(db, `SELECT count(*) FROM ${t} WHERE project_id = '${p2}'`), '0', t);
      assert.equal(sqlite(db, `SELECT count(*) FROM projects WHERE id = '${p2}'`), '0');
      assert.equal(sqlite(db, 'SELECT count(*) FROM app_credentials WHERE app_id NOT IN (SELECT id FROM apps)'), '0');
      assert.equal(sqlite(db, 'SELECT count(*) FROM message_refs WHERE message_id NOT IN (SELECT id FROM messages)'), '0');
      assert.equal(sqlite(db, `SELECT count(*) FROM messages WHERE project_id = '${p.init.project_id}'`), keepCount, 'the other project is untouched');
      assert.equal((await p.api('GET', `/v1/projects/${p.init.project_id}/apps`)).status, 200);
      assert.match((await cli(['projects', 'restore', '--project', p2, ...dd])).stderr, /is not deleted \(or was already purged/);
    } finally {
      await p.stop();
    }
  });
});
