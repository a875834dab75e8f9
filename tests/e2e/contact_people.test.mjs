// contact_people.test.mjs: the contact center's people side over real HTTP: invitations,
// login sessions (cookie + CSRF), logout, forged/expired sessions, failed-login rate limits,
// user administration, the role matrix of every people endpoint, the GDPR audit log fed by
// Conversation API changes made with the Sinch SDK, DPO search + anonymize, and the contacts
// CSV export/import round trip.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { startParley } from './lib/parley.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const NO_SUCH = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

// A logged-in browser: cookie jar of one, plus the CSRF token.
async function login(p, email, password, extra = {}) {
  const r = await p.api('POST', '/auth/login', { auth: 'none', body: { email, password, ...extra } });
  if (r.status !== 200) return { status: r.status, res: r };
  const cookie = r.headers.get('set-cookie');
  const token = /parley_session=([^;]+)/.exec(cookie)[1];
  return { status: 200, res: r, cookie, token, csrf: r.json.csrf_token, user: r.json.user };
}

// A request as a session: cookie always, CSRF token unless csrf: null / a given value.
function as(p, s, method, path, { body, csrf = s.csrf, headers = {} } = {}) {
  const h = { Cookie: `parley_session=${s.token}`, ...headers };
  if (csrf !== null && method !== 'GET') h['X-CSRF-Token'] = csrf;
  return p.api(method, path, { auth: 'none', body, headers: h });
}

// Invite email as role (by an admin session or the key), accept with password, log in.
async function invite(p, admin, email, role, password = 'correct horse battery') {
  const path = `/v1/projects/${p.init.project_id}/contact/invitations`;
  const r = admin ? await as(p, admin, 'POST', path, { body: { email, role } }) : await p.api('POST', path, { body: { email, role } });
  assert.equal(r.status, 201, r.text);
  const token = r.json.link.split('/').pop();
  const a = await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password } });
  assert.equal(a.status, 201, a.text);
  const s = await login(p, email, password);
  assert.equal(s.status, 200, s.res.text);
  return s;
}

async function waitFor(fn, what, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('users, invitations and sessions', () => {
  let p, pid, admin;
  before(async () => {
    p = await startParley();
    pid = p.init.project_id;
    admin = await login(p, p.init.admin_email, p.init.admin_password);
    assert.equal(admin.status, 200);
  });
  after(async () => { await p.stop(); });

  test('the session cookie is HttpOnly, SameSite=Strict, Path=/, and login returns the CSRF token', async () => {
    assert.match(admin.cookie, /HttpOnly/);
    assert.match(admin.cookie, /SameSite=Strict/);
    assert.match(admin.cookie, /Path=\//);
    assert.doesNotMatch(admin.cookie, /Secure/); // plain HTTP here
    assert.equal(admin.user.role, 'admin');
    assert.equal(admin.user.project_id, pid);
    assert.match(admin.csrf, /^[A-Za-z0-9_-]{43}$/);
    const me = await as(p, admin, 'GET', '/auth/me');
    assert.equal(me.status, 200);
    assert.equal(me.json.user.email, p.init.admin_email);
    assert.equal(me.json.csrf_token, admin.csrf);
  });

  test('invite -> accept -> login -> me -> logout', async () => {
    const r = await as(p, admin, 'POST', `/v1/projects/${pid}/contact/invitations`, { body: { email: 'Agent.One@Example.com', role: 'agent' } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.email, 'agent.one@example.com');
    assert.equal(r.json.status, 'pending');
    assert.equal(r.json.delivery, 'log'); // no smtp.host: the link is logged
    assert.match(r.json.link, /^http:\/\/127\.0\.0\.1:8080\/auth\/invitations\/[A-Za-z0-9_-]{43}$/);
    await waitFor(() => p.stderr().includes(r.json.link), 'the logged link');
    const token = r.json.link.split('/').pop();

    const peek = await p.api('GET', `/auth/invitations/${token}`, { auth: 'none' });
    assert.equal(peek.status, 200);
    assert.deepEqual([peek.json.email, peek.json.role, peek.json.project_id], ['agent.one@example.com', 'agent', pid]);

    // Password policy: too short -> 400, and the invitation is still usable.
    const short = await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password: 'short' } });
    assert.equal(short.status, 400);
    assert.match(short.json.error.message, /too short: 5 characters, at least 10/);
    assert.equal((await p.api('GET', `/auth/invitations/${token}`, { auth: 'none' })).status, 200);

    const acc = await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password: 'a long enough pw' } });
    assert.equal(acc.status, 201, acc.text);
    assert.equal(acc.json.user.role, 'agent');
    // Single use.
    const again = await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password: 'a long enough pw' } });
    assert.equal(again.status, 404);
    assert.match(again.json.error.message, /already used/);
    const list = await as(p, admin, 'GET', `/v1/projects/${pid}/contact/invitations`);
    assert.equal(list.json.invitations.find((i) => i.email === 'agent.one@example.com').status, 'accepted');
    // Inviting an existing user's email is refused.
    const dup = await as(p, admin, 'POST', `/v1/projects/${pid}/contact/invitations`, { body: { email: 'agent.one@example.com', role: 'dpo' } });
    assert.equal(dup.status, 409);

    const s = await login(p, 'agent.one@example.com', 'a long enough pw');
    assert.equal(s.status, 200);
    assert.equal(s.user.role, 'agent');
    const me = await as(p, s, 'GET', '/auth/me');
    assert.equal(me.json.user.id, acc.json.user.id);
    assert.equal(me.json.csrf_token, s.csrf);
    // Logout needs the CSRF token too.
    const noCsrf = await as(p, s, 'POST', '/auth/logout', { csrf: null });
    assert.equal(noCsrf.status, 403);
    assert.match(noCsrf.json.error.message, /missing X-CSRF-Token/);
    const out = await as(p, s, 'POST', '/auth/logout');
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie'), /parley_session=; .*Max-Age=0/);
    const after = await as(p, s, 'GET', '/auth/me');
    assert.equal(after.status, 401);
    assert.match(after.json.error.message, /session has ended/);
  });

  test('bad invitation input: unknown role, bad email, unknown token', async () => {
    const path = `/v1/projects/${pid}/contact/invitations`;
    const role = await as(p, admin, 'POST', path, { body: { email: 'x@example.com', role: 'boss' } });
    assert.equal(role.status, 400);
    assert.match(role.json.error.message, /unknown role "boss"/);
    const email = await as(p, admin, 'POST', path, { body: { email: 'not-an-address', role: 'agent' } });
    assert.equal(email.status, 400);
    assert.match(email.json.error.message, /not an address/);
    const unknown = await p.api('POST', `/auth/invitations/${'A'.repeat(43)}`, { auth: 'none', body: { password: 'long enough password' } });
    assert.equal(unknown.status, 404);
    // A revoked invitation cannot be accepted.
    const r = await as(p, admin, 'POST', path, { body: { email: 'revoked@example.com', role: 'agent' } });
    const del = await as(p, admin, 'DELETE', `${path}/${r.json.id}`);
    assert.equal(del.status, 200);
    const acc = await p.api('POST', `/auth/invitations/${r.json.link.split('/').pop()}`, { auth: 'none', body: { password: 'long enough password' } });
    assert.equal(acc.status, 404);
  });

  test('a stale or wrong CSRF token -> 403 and nothing changes', async () => {
    const sup = await invite(p, admin, 'sup1@example.com', 'supervisor');
    const old = await login(p, p.init.admin_email, p.init.admin_password); // a second admin session
    const path = `/v1/projects/${pid}/contact/users/${sup.user.id}`;
    // The CSRF token of another (or an earlier) session is stale for this one.
    const stale = await as(p, admin, 'PATCH', path, { body: { role: 'agent' }, csrf: old.csrf });
    assert.equal(stale.status, 403);
    assert.match(stale.json.error.message, /X-CSRF-Token is stale or wrong for this session/);
    const wrong = await as(p, admin, 'PATCH', path, { body: { role: 'agent' }, csrf: 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    const missing = await as(p, admin, 'PATCH', path, { body: { role: 'agent' }, csrf: null });
    assert.equal(missing.status, 403);
    assert.equal((await as(p, admin, 'GET', path)).json.role, 'supervisor');
    const ok = await as(p, admin, 'PATCH', path, { body: { role: 'agent' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.role, 'agent');
    // GET needs no CSRF token.
    assert.equal((await as(p, sup, 'GET', '/auth/me', { csrf: null })).json.user.role, 'agent');
  });

  test('forged sessions and sessions of another project are refused', async () => {
    const forged = await as(p, { token: randomBytes(32).toString('base64url'), csrf: 'x' }, 'GET', '/auth/me');
    assert.equal(forged.status, 401);
    assert.match(forged.json.error.message, /invalid session/);
    const other = await as(p, admin, 'GET', `/v1/projects/${NO_SUCH}/contact/users`);
    assert.equal(other.status, 403);
    assert.match(other.json.error.message, /no access to project/);
    const none = await p.api('GET', `/v1/projects/${pid}/contact/users`, { auth: 'none' });
    assert.equal(none.status, 401);
    assert.match(none.json.error.message, /POST \/auth\/login/);
  });

  test('admins list users, change roles and deactivate (sessions end at once); the last admin stays', async () => {
    const ag = await invite(p, admin, 'deact@example.com', 'agent');
    const users = await as(p, admin, 'GET', `/v1/projects/${pid}/contact/users`);
    assert.ok(users.json.users.some((u) => u.email === 'deact@example.com' && u.active));
    const path = `/v1/projects/${pid}/contact/users/${ag.user.id}`;
    const bad = await as(p, admin, 'PATCH', path, { body: { role: 'king' } });
    assert.equal(bad.status, 400);
    const unknownField = await as(p, admin, 'PATCH', path, { body: { email: 'x@y.z' } });
    assert.equal(unknownField.status, 400);
    assert.equal((await as(p, ag, 'GET', '/auth/me')).status, 200);
    const off = await as(p, admin, 'PATCH', path, { body: { active: false } });
    assert.equal(off.status, 200);
    assert.equal(off.json.active, false);
    assert.ok(off.json.deactivated_at);
    const me = await as(p, ag, 'GET', '/auth/me');
    assert.equal(me.status, 401);
    assert.match(me.json.error.message, /ended/);
    const relog = await login(p, 'deact@example.com', 'correct horse battery');
    assert.equal(relog.status, 401);
    assert.equal(relog.res.json.error.message, 'invalid email or password');
    // The only admin can be neither demoted nor deactivated.
    const self = await as(p, admin, 'PATCH', `/v1/projects/${pid}/contact/users/${admin.user.id}`, { body: { role: 'agent' } });
    assert.equal(self.status, 400);
    assert.match(self.json.error.message, /last active admin/);
    assert.equal((await as(p, admin, 'GET', '/auth/me')).json.user.role, 'admin');
    const missing = await as(p, admin, 'GET', `/v1/projects/${pid}/contact/users/${NO_SUCH}`);
    assert.equal(missing.status, 404);
  });

  test('the role matrix: every people endpoint x every role (and an access key)', async () => {
    const roles = {
      admin,
      supervisor: await invite(p, admin, 'm-sup@example.com', 'supervisor'),
      agent: await invite(p, admin, 'm-agent@example.com', 'agent'),
      dpo: await invite(p, admin, 'm-dpo@example.com', 'dpo'),
    };
    const cp = `/v1/projects/${pid}/contact`;
    const target = roles.agent.user.id;
    let n = 0;
    const endpoints = [
      ['GET', '/auth/me', ['admin', 'supervisor', 'agent', 'dpo']],
      ['GET', `${cp}/users`, ['admin', 'supervisor']],
      ['GET', `${cp}/users/${target}`, ['admin', 'supervisor']],
      ['PATCH', `${cp}/users/${target}`, ['admin'], () => ({ role: 'agent' })],
      ['GET', `${cp}/invitations`, ['admin']],
      ['POST', `${cp}/invitations`, ['admin'], () => ({ email: `matrix${++n}@example.com`, role: 'agent' })],
      ['DELETE', `${cp}/invitations/${NO_SUCH}`, ['admin']],
      ['GET', `${cp}/audit`, ['admin', 'dpo']],
      ['GET', `${cp}/gdpr/search?name=nobody-here`, ['dpo']],
      ['POST', `${cp}/gdpr/contacts/${NO_SUCH}:anonymize`, ['dpo']],
      ['GET', `${cp}/contacts:export`, ['admin', 'dpo']],
      ['POST', `${cp}/contacts:import`, ['admin'], () => 'display_name,channel_identities\r\n', 'text/csv'],
    ];
    for (const [method, path, allowed, body, ctype] of endpoints) {
      for (const [role, s] of Object.entries(roles)) {
        const headers = ctype ? { 'Content-Type': ctype } : {};
        const r = await as(p, s, method, path, { body: body?.(), headers });
        if (allowed.includes(role)) assert.notEqual(r.status, 403, `${role} ${method} ${path}: ${r.text}`);
        else {
          assert.equal(r.status, 403, `${role} ${method} ${path}: ${r.text}`);
          assert.match(r.json.error.message, new RegExp(`role ${role} may not`));
        }
        assert.ok(r.status < 500, `${role} ${method} ${path}: ${r.text}`);
      }
      const k = await p.api(method, path, { body: body?.(), headers: ctype ? { 'Content-Type': ctype } : {} });
      assert.ok(k.status !== 403 && k.status !== 401 && k.status < 500, `key ${method} ${path}: ${k.text}`);
      const anon = await p.api(method, path, { auth: 'none', body: body?.(), headers: ctype ? { 'Content-Type': ctype } : {} });
      assert.equal(anon.status, 401, `anonymous ${method} ${path}`);
    }
  });
});

describe('session expiry', () => {
  let p;
  // Generous periods: a loaded machine must still do login + one request well within them.
  before(async () => { p = await startParley({ env: { PARLEY_AUTH_SESSION_IDLE: '3', PARLEY_AUTH_SESSION_MAX: '6' } }); });
  after(async () => { await p.stop(); });

  test('a session idle longer than auth.session_idle is refused', async () => {
    const s = await login(p, p.init.admin_email, p.init.admin_password);
    assert.equal((await as(p, s, 'GET', '/auth/me')).status, 200);
    await sleep(3300);
    const r = await as(p, s, 'GET', '/auth/me');
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /session expired after 3 s without use/);
  });

  test('a session in use still ends at auth.session_max', async () => {
    const s = await login(p, p.init.admin_email, p.init.admin_password);
    const end = Date.now() + 6300;
    assert.equal((await as(p, s, 'GET', '/auth/me')).status, 200);
    while (Date.now() < end) {
      await as(p, s, 'GET', '/auth/me'); // keeps it from going idle
      await sleep(500);
    }
    const last = await as(p, s, 'GET', '/auth/me');
    assert.equal(last.status, 401);
    assert.match(last.json.error.message, /sessions last at most 6 s/);
  });
});

// POST /auth/login from a given loopback source address (127.0.0.0/8 all reach 127.0.0.1).
function loginFrom(p, ip, email, password) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ email, password });
    const req = request({ host: '127.0.0.1', port: p.port, path: '/auth/login', method: 'POST', localAddress: ip,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('failed-login rate limit', () => {
  let p;
  before(async () => { p = await startParley(); });
  after(async () => { await p.stop(); });

  test('bad email and bad password answer the same; 5 failures per email -> 429 with Retry-After', async () => {
    const unknown = await loginFrom(p, '127.0.0.2', 'nobody@example.com', 'whatever password');
    const wrong = await loginFrom(p, '127.0.0.3', p.init.admin_email, 'wrong password!');
    assert.equal(unknown.status, 401);
    assert.equal(wrong.status, 401);
    assert.deepEqual(unknown.json, wrong.json);
    assert.equal(unknown.json.error.message, 'invalid email or password');
    // Four more failures for the admin's address, each from another client address.
    for (let i = 4; i < 8; i++) assert.equal((await loginFrom(p, `127.0.0.${i}`, p.init.admin_email, `wrong ${i} password`)).status, 401);
    // Five failures for the address: even the right password, from a fresh address, is refused.
    const limited = await loginFrom(p, '127.0.0.8', p.init.admin_email, p.init.admin_password);
    assert.equal(limited.status, 429);
    const retry = Number(limited.headers['retry-after']);
    assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry}`);
    assert.match(limited.json.error.message, /too many failed logins/);
  });

  test('5 failures from one address across emails -> 429 for any email from it, others unaffected', async () => {
    await invite(p, null, 'ratelimited@example.com', 'agent', 'the right password');
    for (let i = 0; i < 5; i++) assert.equal((await loginFrom(p, '127.0.0.20', `guess${i}@example.com`, 'whatever password')).status, 401);
    const r = await loginFrom(p, '127.0.0.20', 'ratelimited@example.com', 'the right password');
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers['retry-after']) > 0);
    const ok = await loginFrom(p, '127.0.0.21', 'ratelimited@example.com', 'the right password');
    assert.equal(ok.status, 200);
  });
});

describe('GDPR: audit log, DPO search and anonymize, CSV', () => {
  let p, pid, sinch, admin, dpo, keyActor;
  const cp = () => `/v1/projects/${pid}/contact`;
  const audit = async (s, q) => (await as(p, s, 'GET', `${cp()}/audit?${q}`)).json;

  before(async () => {
    p = await startParley();
    pid = p.init.project_id;
    sinch = p.sdk();
    keyActor = `key:${p.init.key_id}`;
    admin = await login(p, p.init.admin_email, p.init.admin_password);
    dpo = await invite(p, admin, 'dpo@example.com', 'dpo');
  });
  after(async () => { await p.stop(); });

  test('Conversation API contact changes (Sinch SDK) land in the audit log with actor, attribute and new value', async () => {
    const c = await sinch.conversation.contact.create({
      contactCreateRequestBody: { language: 'EN', display_name: 'Audit Person', email: 'audit@example.com', channel_identities: [{ channel: 'SMS', identity: '+46701112233' }] },
    });
    await sinch.conversation.contact.update({ contact_id: c.id, updateContactRequestBody: { display_name: 'Audit Person Renamed' } });
    const rows = await waitFor(async () => {
      const a = await audit(dpo, `subject=${c.id}`);
      return a.entries.length >= 5 ? a.entries : null;
    }, 'audit rows');
    const by = (action, attribute) => rows.filter((r) => r.action === action && r.attribute === attribute).map((r) => r.new_value);
    assert.deepEqual(by('create', 'display_name'), ['Audit Person']);
    assert.deepEqual(by('create', 'email'), ['audit@example.com']);
    assert.deepEqual(by('create', 'channel_identities'), ['SMS:+46701112233']);
    assert.deepEqual(by('create', 'language'), ['EN']);
    assert.deepEqual(by('update', 'display_name'), ['Audit Person Renamed']);
    assert.equal(by('update', 'email').length, 0, 'unchanged attributes are not logged');
    for (const r of rows) {
      assert.equal(r.actor, keyActor);
      assert.equal(r.subject, c.id);
      assert.match(r.id, /^[0-9A-Z]{26}$/);
      assert.ok(!Number.isNaN(Date.parse(r.time)));
    }
    // Newest first, filters by attribute and actor, paging.
    assert.equal(rows[0].action, 'update');
    const names = await audit(admin, `subject=${c.id}&attribute=display_name`);
    assert.deepEqual(names.entries.map((r) => r.new_value), ['Audit Person Renamed', 'Audit Person']);
    const page1 = await audit(admin, `subject=${c.id}&page_size=2`);
    assert.equal(page1.entries.length, 2);
    const page2 = await audit(admin, `subject=${c.id}&page_size=2&page_token=${page1.next_page_token}`);
    assert.notEqual(page2.entries[0].id, page1.entries[0].id);
    assert.equal((await audit(admin, `subject=${c.id}&actor=user:${NO_SUCH}`)).entries.length, 0);
    const bad = await as(p, admin, 'GET', `${cp()}/audit?from=yesterday`);
    assert.equal(bad.status, 400);
    // Deleting a message of their transcript is logged (MESSAGE_DELETE on the stream).
    const app = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'Audit app', channel_credentials: [] } });
    const conv = await sinch.conversation.conversation.create({ createConversationRequestBody: { app_id: app.id, contact_id: c.id } });
    await sinch.conversation.conversation.injectMessage({ conversation_id: conv.id, injectMessageRequestBody: {
      accept_time: '2026-01-01T10:00:00Z', channel_identity: { channel: 'SMS', identity: '+46701112233' }, contact_id: c.id, direction: 'TO_APP',
      contact_message: { text_message: { text: 'please forget me' } } } });
    const [msg] = (await sinch.conversation.messages.list({ conversation_id: conv.id })).data;
    await sinch.conversation.messages.delete({ message_id: msg.id });
    const del = await waitFor(async () => (await audit(dpo, `subject=${c.id}&attribute=transcript`)).entries.find((r) => r.new_value === `[deleted] message ${msg.id}`), 'the message delete row');
    assert.equal(del.actor, keyActor);
    assert.equal(del.action, 'delete');
    // Deleting the contact logs [deleted].
    await sinch.conversation.contact.delete({ contact_id: c.id });
    await waitFor(async () => (await audit(dpo, `subject=${c.id}&attribute=*`)).entries.some((r) => r.new_value === '[deleted]'), 'the delete row');
  });

  test('DPO search finds the person; anonymize leaves nothing of them but keeps the statistics', async () => {
    const app = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'GDPR app', channel_credentials: [] } });
    const c = await sinch.conversation.contact.create({
      contactCreateRequestBody: {
        language: 'DE', display_name: 'Erika Mustermann', email: 'erika@example.org', external_id: 'crm-4711', metadata: 'vip; born 1964',
        channel_identities: [{ channel: 'SMS', identity: '+4915112345678' }, { channel: 'TELEGRAM', identity: 'erika_tg' }],
      },
    });
    const other = await sinch.conversation.contact.create({
      contactCreateRequestBody: { language: 'EN', display_name: 'Someone Else', channel_identities: [{ channel: 'SMS', identity: '+4915100000000' }] },
    });
    const conv = await sinch.conversation.conversation.create({ createConversationRequestBody: { app_id: app.id, contact_id: c.id, metadata: 'erika@example.org' } });
    const inject = (body) => sinch.conversation.conversation.injectMessage({ conversation_id: conv.id, injectMessageRequestBody: body });
    const ident = { channel: 'SMS', identity: '+4915112345678' };
    await inject({ accept_time: '2026-01-01T10:00:00Z', channel_identity: ident, contact_id: c.id, direction: 'TO_APP', contact_message: { text_message: { text: 'Hi, this is Erika Mustermann, call me on +49 151 12345678' } } });
    await inject({ accept_time: '2026-01-01T10:01:00Z', channel_identity: ident, contact_id: c.id, direction: 'TO_CONTACT', app_message: { text_message: { text: 'Hello Erika!' } } });

    const search = async (q) => {
      const r = await as(p, dpo, 'GET', `${cp()}/gdpr/search?${q}`);
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    const byPhone = await search('phone=' + encodeURIComponent('+49 151 1234 5678'));
    assert.deepEqual(byPhone.contacts.map((x) => x.id), [c.id]);
    assert.deepEqual(byPhone.conversations.map((x) => x.id), [conv.id]);
    assert.equal(byPhone.messages.length, 2, 'both messages carry the number (identity)');
    assert.deepEqual((await search('email=ERIKA@example.org')).contacts.map((x) => x.id), [c.id]);
    const byName = await search('name=mustermann');
    assert.deepEqual(byName.contacts.map((x) => x.id), [c.id]);
    assert.equal(byName.messages.length, 1);
    assert.deepEqual((await search('identity=erika_tg')).contacts.map((x) => x.id), [c.id]);
    // Bad searches.
    assert.equal((await as(p, dpo, 'GET', `${cp()}/gdpr/search`)).status, 400);
    assert.equal((await as(p, dpo, 'GET', `${cp()}/gdpr/search?name=ab`)).status, 400);
    assert.equal((await as(p, dpo, 'GET', `${cp()}/gdpr/search?phone=12ab34567`)).status, 400);
    assert.equal((await as(p, dpo, 'GET', `${cp()}/gdpr/search?name=abc&email=a@b.c`)).status, 400);
    // Wait until the audit consumer has logged the person's values.
    await waitFor(async () => (await audit(dpo, `subject=${c.id}`)).entries.some((r) => r.new_value === 'Erika Mustermann'), 'audit of the create');

    const an = await as(p, dpo, 'POST', `${cp()}/gdpr/contacts/${c.id}:anonymize`);
    assert.equal(an.status, 200, an.text);
    assert.equal(an.json.contact_id, c.id);
    assert.equal(an.json.identities, 2);
    assert.ok(an.json.messages >= 2);

    for (const q of ['phone=%2B4915112345678', 'email=erika@example.org', 'name=Erika', 'name=Mustermann', 'identity=erika_tg', 'name=crm-4711', 'name=born 1964']) {
      const r = await search(q);
      assert.deepEqual([r.contacts, r.conversations, r.messages], [[], [], []], `search ${q} still finds ${JSON.stringify(r)}`);
    }
    // Through the Conversation API: the contact and its messages hold placeholders only.
    const got = await sinch.conversation.contact.get({ contact_id: c.id });
    assert.equal(got.display_name, '[anonymized]');
    assert.equal(got.email, '');
    assert.equal(got.external_id, '');
    assert.equal(got.metadata, '');
    assert.equal(got.language, 'DE', 'non-identifying fields stay');
    assert.equal(got.channel_identities.length, 2);
    for (const i of got.channel_identities) assert.match(i.identity, new RegExp(`^anonymized-${c.id}-\\d+$`));
    const msgs = (await sinch.conversation.messages.list({ conversation_id: conv.id, page_size: 100 })).data;
    assert.equal(msgs.length, 2, 'the message count stays');
    const blob = JSON.stringify(msgs) + JSON.stringify(got) + JSON.stringify(await sinch.conversation.conversation.get({ conversation_id: conv.id }));
    for (const s of ['Erika', 'Mustermann', '12345678', 'erika', 'crm-4711', '1964']) assert.ok(!blob.includes(s), `${s} remains in ${blob}`);
    assert.deepEqual(msgs.map((m) => m.direction).sort(), ['TO_APP', 'TO_CONTACT']);
    // The other contact is untouched.
    assert.equal((await sinch.conversation.contact.get({ contact_id: other.id })).display_name, 'Someone Else');

    // The audit log: the anonymize is logged, and no entry shows the old values.
    const rows = await waitFor(async () => {
      const a = await audit(dpo, `subject=${c.id}&page_size=1000`);
      return a.entries.some((r) => r.action === 'anonymize') && a.entries.some((r) => r.action === 'update') ? a.entries : null;
    }, 'the anonymize rows');
    const an1 = rows.find((r) => r.action === 'anonymize');
    assert.equal(an1.actor, `user:${dpo.user.id}`);
    assert.equal(an1.new_value, '[anonymized]');
    const text = JSON.stringify(rows);
    for (const s of ['Erika', 'Mustermann', '12345678', 'erika_tg', 'crm-4711']) assert.ok(!text.includes(s), `${s} remains in the audit log`);
    // Nothing of them anywhere in the store: not in the event stream, callbacks, audit, any table.
    await sleep(200);
    const dump = execFileSync('sqlite3', ['-cmd', '.timeout 10000', `${p.dataDir}/parley.db`, '.dump'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const s of ['Erika', 'Mustermann', '4915112345678', 'erika_tg', 'erika@example.org', 'crm-4711', 'born 1964']) assert.ok(!dump.includes(s), `${s} remains in the store`);
    assert.ok(dump.includes('Someone Else'), 'the dump does hold the other contact');
    // Unknown contact -> 404, bad id -> 400.
    assert.equal((await as(p, dpo, 'POST', `${cp()}/gdpr/contacts/${NO_SUCH}:anonymize`)).status, 404);
    assert.equal((await as(p, dpo, 'POST', `${cp()}/gdpr/contacts/nope:anonymize`)).status, 400);
  });

  test('contacts CSV: export, import (create + update) round trip, per-row errors, all or nothing, audited', async () => {
    const a = await sinch.conversation.contact.create({
      contactCreateRequestBody: { language: 'EN', display_name: 'Doe, "Johnny"', email: 'john@example.com', metadata: 'line1\nline2', channel_identities: [{ channel: 'SMS', identity: '+46709990001' }] },
    });
    const exp = await as(p, admin, 'GET', `${cp()}/contacts:export`);
    assert.equal(exp.status, 200);
    assert.match(exp.headers.get('content-type'), /^text\/csv/);
    const lines = exp.text.split('\r\n');
    assert.equal(lines[0], 'id,display_name,email,external_id,language,metadata,channel_identities');
    assert.ok(exp.text.includes(`${a.id},"Doe, ""Johnny""",john@example.com,,EN,"line1\nline2",SMS:+46709990001\r\n`), exp.text);
    // Re-import the export unchanged plus one new row and one change.
    const csv = exp.text.replace('john@example.com', 'john.doe@example.com') + ',New Person,new@example.com,ext-1,FR,,SMS:+46709990002;TELEGRAM:new_tg\r\n';
    const imp = await as(p, admin, 'POST', `${cp()}/contacts:import`, { body: csv, headers: { 'Content-Type': 'text/csv' } });
    assert.equal(imp.status, 200, imp.text);
    assert.equal(imp.json.created, 1);
    assert.ok(imp.json.updated >= 1);
    const upd = await sinch.conversation.contact.get({ contact_id: a.id });
    assert.equal(upd.email, 'john.doe@example.com');
    assert.equal(upd.display_name, 'Doe, "Johnny"');
    assert.equal(upd.metadata, 'line1\nline2');
    const newId = imp.json.contacts[imp.json.contacts.length - 1];
    const created = await sinch.conversation.contact.get({ contact_id: newId });
    assert.equal(created.display_name, 'New Person');
    assert.equal(created.language, 'FR');
    assert.deepEqual(created.channel_identities.map((i) => `${i.channel}:${i.identity}`), ['SMS:+46709990002', 'TELEGRAM:new_tg']);
    // A second export matches the imported data.
    const exp2 = await as(p, admin, 'GET', `${cp()}/contacts:export`);
    assert.ok(exp2.text.includes(`${newId},New Person,new@example.com,ext-1,FR,,SMS:+46709990002;TELEGRAM:new_tg`));

    // Bad rows: every error reported, nothing imported.
    const before = (await sinch.conversation.contact.list({ page_size: 100 })).data.length;
    const badCsv = 'display_name,channel_identities,language\nGood Row,SMS:+46709990003,EN\nNo Colon,SMS+4670,EN\nBad Channel,FAX:123,EN\nBad Language,SMS:+46709990004,XX\n"unterminated';
    const bad1 = await as(p, admin, 'POST', `${cp()}/contacts:import`, { body: badCsv, headers: { 'Content-Type': 'text/csv' } });
    assert.equal(bad1.status, 400);
    assert.match(bad1.json.error.message, /quoted field never closed/);
    const bad = await as(p, admin, 'POST', `${cp()}/contacts:import`, { body: badCsv.replace('\n"unterminated', '\nshort row'), headers: { 'Content-Type': 'text/csv' } });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.json.error.message, /4 of 5 rows are invalid; nothing was imported/);
    assert.deepEqual(bad.json.error.details.map((d) => d.row), [2, 3, 4, 5]);
    assert.match(bad.json.error.details[0].message, /expected CHANNEL:identity/);
    assert.equal(bad.json.error.details[0].column, 'channel_identities');
    assert.match(bad.json.error.details[1].message, /FAX/);
    assert.match(bad.json.error.details[2].message, /XX|language/);
    assert.match(bad.json.error.details[3].message, /has 1 fields, the header has 3/);
    assert.equal((await sinch.conversation.contact.list({ page_size: 100 })).data.length, before, 'the good row was not imported');
    const hdr = await as(p, admin, 'POST', `${cp()}/contacts:import`, { body: 'name,phone\n', headers: { 'Content-Type': 'text/csv' } });
    assert.equal(hdr.status, 400);
    assert.match(hdr.json.error.message, /unknown column "name"/);
    const ct = await as(p, admin, 'POST', `${cp()}/contacts:import`, { body: { x: 1 } });
    assert.equal(ct.status, 415);

    // Both directions are in the audit log.
    const rows = (await audit(admin, `subject=${newId}&page_size=100`)).entries;
    assert.ok(rows.some((r) => r.action === 'import' && r.actor === `user:${admin.user.id}`));
    assert.ok(rows.some((r) => r.action === 'export'));
    await waitFor(async () => (await audit(admin, `subject=${newId}&attribute=email`)).entries.some((r) => r.new_value === 'new@example.com' && r.actor === `user:${admin.user.id}`), 'the import create row');
  });
});

// A fake mail server: just enough SMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA) to take mails.
function startSmtp() {
  const mails = [];
  const server = createServer((sock) => {
    let buf = '', data = null, mail = { rcpt: [] }, authNext = false;
    const plain = (b64) => Buffer.from(b64, 'base64').toString().split('\0').slice(1);
    const say = (l) => sock.write(l + '\r\n');
    say('220 fake.smtp ESMTP');
    sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (authNext) { authNext = false; mail.auth = plain(line); say('235 ok'); continue; }
        if (data !== null) {
          if (line === '.') { mail.data = data.join('\r\n'); mails.push(mail); mail = { rcpt: [] }; data = null; say('250 queued'); }
          else data.push(line.startsWith('..') ? line.slice(1) : line);
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === 'EHLO') { say('250-fake.smtp'); say('250 AUTH PLAIN'); }
        else if (cmd === 'AUTH' && !line.split(' ')[2]) { authNext = true; say('334 '); }
        else if (cmd === 'AUTH') { mail.auth = plain(line.split(' ')[2]); say('235 ok'); }
        else if (cmd === 'MAIL') { mail.from = line; say('250 ok'); }
        else if (cmd === 'RCPT') { mail.rcpt.push(line); say('250 ok'); }
        else if (cmd === 'DATA') { data = []; say('354 go on'); }
        else if (cmd === 'QUIT') { say('221 bye'); sock.end(); }
        else say('250 ok');
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, mails, close: () => new Promise((r) => server.close(r)) })));
}

describe('invitation mail over SMTP', () => {
  let p, smtp;
  before(async () => {
    smtp = await startSmtp();
    p = await startParley({ env: {
      PARLEY_SMTP_HOST: '127.0.0.1', PARLEY_SMTP_PORT: String(smtp.port), PARLEY_SMTP_USER: 'mailer',
      PARLEY_SMTP_PASSWORD: 'mail-secret', PARLEY_SMTP_FROM: 'parley@example.com', PARLEY_PUBLIC_URL: 'https://cc.example.com/',
    } });
  });
  after(async () => { await p.stop(); await smtp.close(); });

  test('with smtp.host set, the invitation link is mailed (and not logged)', async () => {
    const r = await p.api('POST', `/v1/projects/${p.init.project_id}/contact/invitations`, { body: { email: 'mailed@example.com', role: 'supervisor' } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.delivery, 'mail', p.stderr().split('\n').filter((l) => l.includes('mail')).join('\n'));
    assert.match(r.json.link, /^https:\/\/cc\.example\.com\/auth\/invitations\/[A-Za-z0-9_-]{43}$/);
    assert.equal(smtp.mails.length, 1);
    const m = smtp.mails[0];
    assert.deepEqual(m.auth, ['mailer', 'mail-secret']);
    assert.equal(m.from, 'MAIL FROM:<parley@example.com>');
    assert.deepEqual(m.rcpt, ['RCPT TO:<mailed@example.com>']);
    assert.match(m.data, /^From: parley@example.com\r\nTo: mailed@example.com\r\nSubject: Your Parley invitation\r\n/);
    assert.ok(m.data.includes(r.json.link), m.data);
    assert.ok(m.data.includes('as supervisor'));
    assert.ok(!p.stderr().includes(r.json.link), 'a mailed link is not logged');
    // The mailed link works.
    const token = r.json.link.split('/').pop();
    assert.equal((await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password: 'mailed password' } })).status, 201);
  });
});
