// contacts.test.mjs: the Conversation API's contacts, driven through the official Sinch SDK
// (contact.create/get/list/update/delete/mergeContact/listIdentityConflicts). Apps,
// conversations and messages needed as fixtures are inserted straight into the SQLite file
// (WAL lets the CLI write while the server runs), since those resources live elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startParley, runCli, sdkRejects, basicAuth } from './lib/parley.mjs';

let p, sinch, db;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function ulid() {
  let t = Date.now(), s = '';
  for (let i = 0; i < 10; i++) { s = CROCKFORD[t % 32] + s; t = Math.floor(t / 32); }
  for (const b of randomBytes(16)) s += CROCKFORD[b % 32];
  return s;
}

function sql(statement) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 10000', db, statement], { encoding: 'utf8' }).trim();
}
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

function insertApp(projectId = p.init.project_id) {
  const id = ulid(), now = Date.now();
  sql(`INSERT INTO apps (id, project_id, display_name, created_at, updated_at) VALUES (${q(id)}, ${q(projectId)}, 'fixture app', ${now}, ${now})`);
  return id;
}

function insertConversation(appId, contactId, active = 1) {
  const id = ulid(), now = Date.now();
  sql(`INSERT INTO conversations (id, project_id, app_id, contact_id, active, created_at, updated_at) VALUES (${q(id)}, ${q(p.init.project_id)}, ${q(appId)}, ${q(contactId)}, ${active}, ${now}, ${now})`);
  return id;
}

function insertMessage(appId, conversationId, contactId) {
  const id = ulid();
  sql(`INSERT INTO messages (id, project_id, app_id, conversation_id, contact_id, direction, accept_time, kind, content) VALUES (${q(id)}, ${q(p.init.project_id)}, ${q(appId)}, ${q(conversationId)}, ${q(contactId)}, 'TO_APP', ${Date.now()}, 'contact_message', '{"text_message":{"text":"hi"}}')`);
  return id;
}

// A second project with its own key, made with the CLI while the server runs.
async function newProject(name) {
  const proj = await runCli(['projects', 'create', '--name', name, '--data-dir', p.dataDir]);
  assert.equal(proj.code, 0, proj.stderr);
  const projectId = JSON.parse(proj.stdout).project_id;
  const key = await runCli(['keys', 'create', '--project', projectId, '--data-dir', p.dataDir]);
  assert.equal(key.code, 0, key.stderr);
  const { key_id: keyId, key_secret: keySecret } = JSON.parse(key.stdout);
  return { projectId, keyId, keySecret, sinch: p.sdk({ projectId, keyId, keySecret }), auth: basicAuth(keyId, keySecret) };
}

// The SDK keeps nextPageValue JSON-quoted.
const token = (v) => (v.startsWith('"') ? JSON.parse(v) : v);

let phoneSeq = 0;
const phone = () => `+46701${String(++phoneSeq).padStart(6, '0')}`;

async function count() {
  const r = await p.api('GET', `/v1/projects/${p.init.project_id}/contacts?page_size=1`);
  assert.equal(r.status, 200);
  return r.json.total_size;
}

before(async () => {
  p = await startParley();
  sinch = p.sdk();
  db = p.dataDir + '/parley.db';
});

after(async () => {
  await p.stop();
});

test('create, then get, answers the full Contact', async () => {
  const sms = phone();
  const c = await sinch.conversation.contact.create({
    contactCreateRequestBody: {
      channel_identities: [{ channel: 'SMS', identity: sms }, { channel: 'WHATSAPP', identity: sms, app_id: 'ignored' }],
      channel_priority: ['WHATSAPP', 'SMS'],
      display_name: 'Ada Lovelace',
      email: 'ada@example.com',
      external_id: 'crm-ada',
      language: 'EN_GB',
      metadata: 'vip',
    },
  });
  assert.match(c.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.deepEqual(c.channel_identities, [{ channel: 'SMS', identity: sms }, { channel: 'WHATSAPP', identity: sms }]);
  assert.deepEqual(c.channel_priority, ['WHATSAPP', 'SMS']);
  assert.equal(c.display_name, 'Ada Lovelace');
  assert.equal(c.email, 'ada@example.com');
  assert.equal(c.external_id, 'crm-ada');
  assert.equal(c.language, 'EN_GB');
  assert.equal(c.metadata, 'vip');
  const got = await sinch.conversation.contact.get({ contact_id: c.id });
  assert.deepEqual(got, c);

  // Defaults: only the required fields.
  const m = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'TELEGRAM', identity: 'tg-' + phone() }], language: 'UNSPECIFIED' },
  });
  assert.deepEqual(
    { ...m, id: undefined, channel_identities: undefined },
    { id: undefined, channel_identities: undefined, channel_priority: [], display_name: '', email: '', external_id: '', language: 'UNSPECIFIED', metadata: '' },
  );
  // metadata of exactly 1024 characters (multi-byte ones count once) is accepted.
  const long = 'é'.repeat(1024);
  const l = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'RCS', identity: phone() }], language: 'SV', metadata: long },
  });
  assert.equal(l.metadata, long);
});

test('create rejects bad input and writes nothing', async () => {
  const before = await count();
  const body = (over) => ({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: phone() }], language: 'EN', ...over } });
  const bad = [
    [{ channel_identities: undefined }, /channel_identities/],
    [{ channel_identities: [] }, /channel_identities must not be empty/],
    [{ language: undefined }, /language/],
    [{ language: 'KLINGON' }, /language/],
    [{ metadata: 'x'.repeat(1025) }, /metadata/],
    [{ display_name: 'x'.repeat(257) }, /display_name/],
    [{ email: 'not-an-address' }, /email/],
    [{ external_id: 'x'.repeat(257) }, /external_id/],
    [{ channel_priority: ['SMS', 'SMS'] }, /channel_priority/],
    [{ channel_priority: ['FAX'] }, /channel_priority\[0\]/],
    [{ channel_identities: [{ channel: 'CARRIER_PIGEON', identity: '1' }] }, /channel_identities\[0\]\.channel/],
    [{ channel_identities: [{ channel: 'MMS', identity: '1' }] }, /not supported/],
    [{ channel_identities: [{ channel: 'SMS', identity: '' }] }, /channel_identities\[0\]\.identity/],
    [{ channel_identities: [{ channel: 'SMS' }] }, /channel_identities\[0\]\.identity/],
    [{ channel_identities: [{ channel: 'SMS', identity: 'x'.repeat(257) }] }, /identity/],
    [{ channel_identities: [{ channel: 'MESSENGER', identity: 'psid-1' }] }, /channel_identities\[0\]\.app_id/],
    [{ channel_identities: [{ channel: 'INSTAGRAM', identity: 'ig-1', app_id: 'nope' }] }, /channel_identities\[0\]\.app_id/],
    [{ channel_identities: [{ channel: 'SMS', identity: '+4611' }, { channel: 'SMS', identity: '+4611' }] }, /channel_identities\[1\] repeats/],
    [{ channel_identities: 'SMS' }, /channel_identities/],
    [{ metadata: 42 }, /metadata/],
  ];
  for (const [over, msg] of bad) {
    const err = await sdkRejects(sinch.conversation.contact.create(body(over)), 400, 'INVALID_ARGUMENT');
    assert.match(err.message, msg, JSON.stringify(over));
  }
  // A well-formed app id that is not an app of this project.
  const err = await sdkRejects(sinch.conversation.contact.create(body({ channel_identities: [{ channel: 'VIBERBM', identity: 'v-1', app_id: ulid() }] })), 404, 'NOT_FOUND');
  assert.match(err.message, /channel_identities\[0\]\.app_id/);
  assert.equal(await count(), before);
});

test('app-scoped identities carry their app; others do not', async () => {
  const appA = insertApp(), appB = insertApp();
  const c = await sinch.conversation.contact.create({
    contactCreateRequestBody: {
      channel_identities: [
        { channel: 'MESSENGER', identity: 'psid-42', app_id: appA },
        { channel: 'SMS', identity: '+46709999999', app_id: appA },
        { channel: 'INSTAGRAM', identity: 'ig-42', app_id: appB },
      ],
      language: 'EN',
    },
  });
  assert.deepEqual(c.channel_identities, [
    { channel: 'MESSENGER', identity: 'psid-42', app_id: appA },
    { channel: 'SMS', identity: '+46709999999' },
    { channel: 'INSTAGRAM', identity: 'ig-42', app_id: appB },
  ]);
  assert.equal(sql(`SELECT app_id FROM contact_identities WHERE contact_id = ${q(c.id)} AND channel = 'SMS'`), '');
  // The same PSID under another app is another identity; under the same app it is taken.
  const other = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'MESSENGER', identity: 'psid-42', app_id: appB }], language: 'EN' },
  });
  assert.notEqual(other.id, c.id);
  // Listing by an app-scoped identity finds it under every app.
  const byPsid = await sinch.conversation.contact.list({ channel: 'MESSENGER', identity: 'psid-42' });
  assert.deepEqual(byPsid.data.map((x) => x.id), [c.id, other.id].sort());
  // Ids are ULIDs, so case does not matter: a lower-case app id names the same app.
  const lower = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'VIBERBM', identity: 'viber-42', app_id: appA.toLowerCase() }], language: 'EN' },
  });
  assert.deepEqual(lower.channel_identities, [{ channel: 'VIBERBM', identity: 'viber-42', app_id: appA }]);
  const before = await count();
  const err = await sdkRejects(sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'MESSENGER', identity: 'psid-42', app_id: appA }], language: 'EN' },
  }), 409, 'ALREADY_EXISTS');
  assert.match(err.message, new RegExp(`MESSENGER.*psid-42.*${c.id}`));
  // An app of another project is not found.
  const proj = await newProject('scoped-other');
  const foreignApp = insertApp(proj.projectId);
  await sdkRejects(sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'VIBERBM', identity: 'v-9', app_id: foreignApp }], language: 'EN' },
  }), 404, 'NOT_FOUND');
  assert.equal(await count(), before);
});

test('an identity already owned by another contact is 409 and nothing is written', async () => {
  const sms = phone();
  const a = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: sms }], language: 'EN' },
  });
  const before = await count();
  const fresh = phone();
  const err = await sdkRejects(sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'WHATSAPP', identity: fresh }, { channel: 'SMS', identity: sms }], language: 'EN', external_id: 'dup-attempt' },
  }), 409, 'ALREADY_EXISTS');
  assert.match(err.message, /SMS/);
  assert.ok(err.message.includes(sms) && err.message.includes(a.id), err.message);
  assert.equal(await count(), before);
  // Nothing half-written: the fresh WHATSAPP identity is still free.
  assert.equal(sql(`SELECT COUNT(*) FROM contact_identities WHERE identity = ${q(fresh)}`), '0');
  const page = await sinch.conversation.contact.list({ external_id: 'dup-attempt' });
  assert.deepEqual(page.data, []);
});

test('page tokens stay stable while contacts are inserted and deleted between pages', async () => {
  const proj = await newProject('paging-live');
  const create = (n) => proj.sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: `+4673${String(n).padStart(7, '0')}` }], language: 'EN' },
  });
  const before = [];
  for (let i = 0; i < 30; i++) before.push((await create(i)).id);
  const seen = [];
  let page = await proj.sinch.conversation.contact.list({ page_size: 7 });
  let n = 1000;
  for (;;) {
    seen.push(...page.data.map((c) => c.id));
    // Inserts and deletes between pages must neither shift a page nor repeat an item
    // (offset paging would skip one contact for every already-listed contact deleted).
    await create(n++);
    await create(n++);
    await proj.sinch.conversation.contact.delete({ contact_id: page.data[0].id });
    if (!page.hasNextPage) break;
    page = await page.nextPage();
  }
  assert.equal(new Set(seen).size, seen.length, 'no contact is listed twice');
  for (const id of before) assert.ok(seen.includes(id), `${id} was skipped`);
  assert.deepEqual(seen, [...seen].sort(), 'id order throughout');
});

test('list pages to the end of 250 contacts with page_size 20', async () => {
  const proj = await newProject('paging');
  const ids = [];
  for (let b = 0; b < 10; b++) {
    const batch = await Promise.all(Array.from({ length: 25 }, (_, i) => proj.sinch.conversation.contact.create({
      contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: `+4672${String(b * 25 + i).padStart(7, '0')}` }], language: 'EN' },
    })));
    ids.push(...batch.map((c) => c.id));
  }
  ids.sort();
  // Follow next_page_token with nextPage() until it is empty.
  const seen = [];
  let page = await proj.sinch.conversation.contact.list({ page_size: 20 });
  let pages = 1;
  for (;;) {
    assert.ok(page.data.length <= 20);
    seen.push(...page.data.map((c) => c.id));
    if (!page.hasNextPage) break;
    assert.match(token(page.nextPageValue), /^[A-Za-z0-9_-]+$/);
    page = await page.nextPage();
    pages++;
  }
  assert.equal(pages, 13);
  assert.equal(seen.length, 250);
  assert.equal(new Set(seen).size, 250);
  assert.deepEqual(seen, ids);
  // for await gives the same sequence.
  const iterated = [];
  for await (const c of proj.sinch.conversation.contact.list({ page_size: 20 })) iterated.push(c.id);
  assert.deepEqual(iterated, ids);
  // total_size (not surfaced by the SDK) on the raw wire, on the first and a later page.
  const r1 = await p.api('GET', `/v1/projects/${proj.projectId}/contacts?page_size=20`, { auth: proj.auth });
  assert.equal(r1.json.total_size, 250);
  assert.equal(r1.json.contacts.length, 20);
  const r2 = await p.api('GET', `/v1/projects/${proj.projectId}/contacts?page_size=20&page_token=${r1.json.next_page_token}`, { auth: proj.auth });
  assert.equal(r2.json.total_size, 250);
  assert.equal(r2.json.contacts[0].id, ids[20]);
  // The last page has an empty token.
  const last = await p.api('GET', `/v1/projects/${proj.projectId}/contacts?page_size=1000`, { auth: proj.auth });
  assert.equal(last.json.contacts.length, 250);
  assert.equal(last.json.next_page_token, '');
  // Bad paging input.
  await sdkRejects(proj.sinch.conversation.contact.list({ page_size: 0 }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(proj.sinch.conversation.contact.list({ page_size: 1001 }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(proj.sinch.conversation.contact.list({ page_token: 'garbage' }), 400, 'INVALID_ARGUMENT');
});

test('list filters by external_id and by channel + identity (a raw +)', async () => {
  const sms = '+46700000001';
  const a = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: sms }], language: 'EN', external_id: 'ext/filter-1' },
  });
  const b = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'WHATSAPP', identity: sms }], language: 'EN', external_id: 'ext/filter-2' },
  });
  let page = await sinch.conversation.contact.list({ external_id: 'ext/filter-1' });
  assert.deepEqual(page.data.map((c) => c.id), [a.id]);
  assert.equal(page.hasNextPage, false);
  page = await sinch.conversation.contact.list({ channel: 'SMS', identity: sms });
  assert.deepEqual(page.data.map((c) => c.id), [a.id]);
  assert.deepEqual(page.data[0].channel_identities, [{ channel: 'SMS', identity: sms }]);
  page = await sinch.conversation.contact.list({ channel: 'WHATSAPP', identity: sms });
  assert.deepEqual(page.data.map((c) => c.id), [b.id]);
  page = await sinch.conversation.contact.list({ channel: 'TELEGRAM', identity: sms });
  assert.deepEqual(page.data, []);
  page = await sinch.conversation.contact.list({ channel: 'SMS', identity: '46700000001' });
  assert.deepEqual(page.data, []);
  // Counted with the same filter.
  const raw = await p.api('GET', `/v1/projects/${p.init.project_id}/contacts?channel=SMS&identity=${sms}`);
  assert.equal(raw.json.total_size, 1);
  const encoded = await p.api('GET', `/v1/projects/${p.init.project_id}/contacts?channel=SMS&identity=%2B46700000001`);
  assert.deepEqual(encoded.json.contacts.map((c) => c.id), [a.id]);
  await sdkRejects(sinch.conversation.contact.list({ channel: 'SMS' }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.list({ identity: sms }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.list({ channel: 'PAGER', identity: sms }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.list({ external_id: 'x', channel: 'SMS', identity: sms }), 400, 'INVALID_ARGUMENT');
});

test('update with and without a mask', async () => {
  const sms = phone();
  const c = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: sms }], language: 'EN', display_name: 'Old', email: 'old@example.com', metadata: 'm1' },
  });
  const before = Number(sql(`SELECT updated_at FROM contacts WHERE id = ${q(c.id)}`));
  await new Promise((r) => setTimeout(r, 5));
  // Mask: only display_name changes although the body carries email too.
  let u = await sinch.conversation.contact.update({
    contact_id: c.id, update_mask: ['display_name'], updateContactRequestBody: { display_name: 'New', email: 'ignored@example.com' },
  });
  assert.equal(u.display_name, 'New');
  assert.equal(u.email, 'old@example.com');
  assert.equal(u.metadata, 'm1');
  const [upd, act] = sql(`SELECT updated_at, last_activity FROM contacts WHERE id = ${q(c.id)}`).split('|').map(Number);
  assert.ok(upd > before && act === upd, `${before} ${upd} ${act}`);
  // A masked field absent from the body is cleared.
  u = await sinch.conversation.contact.update({ contact_id: c.id, update_mask: ['metadata', 'language'], updateContactRequestBody: {} });
  assert.equal(u.metadata, '');
  assert.equal(u.language, 'UNSPECIFIED');
  assert.equal(u.display_name, 'New');
  // No mask: every field present; channel_identities replaces the list.
  const wa = phone();
  u = await sinch.conversation.contact.update({
    contact_id: c.id,
    updateContactRequestBody: { channel_identities: [{ channel: 'WHATSAPP', identity: wa }, { channel: 'SMS', identity: sms }], channel_priority: ['WHATSAPP'], external_id: 'crm-9', language: 'DE' },
  });
  assert.deepEqual(u.channel_identities, [{ channel: 'WHATSAPP', identity: wa }, { channel: 'SMS', identity: sms }]);
  assert.deepEqual(u.channel_priority, ['WHATSAPP']);
  assert.equal(u.external_id, 'crm-9');
  assert.equal(u.language, 'DE');
  assert.equal(u.display_name, 'New');
  assert.deepEqual(await sinch.conversation.contact.get({ contact_id: c.id }), u);
  // Dropping an identity frees it.
  u = await sinch.conversation.contact.update({ contact_id: c.id, update_mask: ['channel_identities'], updateContactRequestBody: { channel_identities: [{ channel: 'WHATSAPP', identity: wa }] } });
  assert.deepEqual(u.channel_identities, [{ channel: 'WHATSAPP', identity: wa }]);
  const freed = await sinch.conversation.contact.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: sms }], language: 'EN' } });
  // Taking another contact's identity is 409 and changes nothing.
  const err = await sdkRejects(sinch.conversation.contact.update({
    contact_id: c.id, updateContactRequestBody: { display_name: 'Thief', channel_identities: [{ channel: 'SMS', identity: sms }] },
  }), 409, 'ALREADY_EXISTS');
  assert.ok(err.message.includes(freed.id));
  // Bad input.
  await sdkRejects(sinch.conversation.contact.update({ contact_id: c.id, updateContactRequestBody: { metadata: 'x'.repeat(1025) } }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.update({ contact_id: c.id, updateContactRequestBody: { language: 'xx' } }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.update({ contact_id: c.id, updateContactRequestBody: { channel_identities: [] } }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.update({ contact_id: c.id, update_mask: ['channel_identities'], updateContactRequestBody: {} }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.update({ contact_id: c.id, update_mask: ['id'], updateContactRequestBody: {} }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(sinch.conversation.contact.update({ contact_id: c.id, updateContactRequestBody: { email: 'nope' } }), 400, 'INVALID_ARGUMENT');
  assert.deepEqual(await sinch.conversation.contact.get({ contact_id: c.id }), u);
  await sdkRejects(sinch.conversation.contact.update({ contact_id: ulid(), updateContactRequestBody: { display_name: 'x' } }), 404, 'NOT_FOUND');
});

test('delete removes the contact, its identities, conversations and messages', async () => {
  const sms = phone();
  const c = await sinch.conversation.contact.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: sms }], language: 'EN' } });
  const app = insertApp();
  const conv = insertConversation(app, c.id);
  insertMessage(app, conv, c.id);
  const before = await count();
  assert.deepEqual(await sinch.conversation.contact.delete({ contact_id: c.id }), {});
  assert.equal(await count(), before - 1);
  await sdkRejects(sinch.conversation.contact.get({ contact_id: c.id }), 404, 'NOT_FOUND');
  await sdkRejects(sinch.conversation.contact.delete({ contact_id: c.id }), 404, 'NOT_FOUND');
  assert.equal(sql(`SELECT (SELECT COUNT(*) FROM contact_identities WHERE contact_id = ${q(c.id)}) || ',' || (SELECT COUNT(*) FROM conversations WHERE contact_id = ${q(c.id)}) || ',' || (SELECT COUNT(*) FROM messages WHERE conversation_id = ${q(conv)})`), '0,0,0');
  // The identity is free again.
  await sinch.conversation.contact.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: sms }], language: 'EN' } });
});

test('merge moves identities, conversations and messages, then deletes the source', async () => {
  const app = insertApp(), app2 = insertApp();
  const dSms = phone(), sWa = phone();
  const dst = await sinch.conversation.contact.create({
    contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: dSms }], channel_priority: ['SMS'], language: 'UNSPECIFIED', display_name: 'Keep me', email: '' },
  });
  const src = await sinch.conversation.contact.create({
    contactCreateRequestBody: {
      channel_identities: [{ channel: 'WHATSAPP', identity: sWa }, { channel: 'MESSENGER', identity: 'psid-merge', app_id: app }],
      channel_priority: ['WHATSAPP', 'SMS', 'MESSENGER'], language: 'FR', display_name: 'Lose me', email: 'src@example.com', external_id: 'src-ext', metadata: 'src-meta',
    },
  });
  // Both have an active conversation on `app`; the source has another on app2.
  const dConv = insertConversation(app, dst.id);
  const sConv = insertConversation(app, src.id);
  const sConv2 = insertConversation(app2, src.id);
  const sMsg = insertMessage(app, sConv, src.id);
  const sMsg2 = insertMessage(app2, sConv2, src.id);
  const before = await count();

  const m = await sinch.conversation.contact.mergeContact({ destination_id: dst.id, mergeContactRequestBody: { source_id: src.id, strategy: 'MERGE' } });
  assert.equal(m.id, dst.id);
  assert.deepEqual(m.channel_identities, [
    { channel: 'SMS', identity: dSms },
    { channel: 'WHATSAPP', identity: sWa },
    { channel: 'MESSENGER', identity: 'psid-merge', app_id: app },
  ]);
  assert.deepEqual(m.channel_priority, ['SMS', 'WHATSAPP', 'MESSENGER']);
  assert.equal(m.display_name, 'Keep me');
  assert.equal(m.email, 'src@example.com');
  assert.equal(m.external_id, 'src-ext');
  assert.equal(m.metadata, 'src-meta');
  assert.equal(m.language, 'FR');
  assert.deepEqual(await sinch.conversation.contact.get({ contact_id: dst.id }), m);

  await sdkRejects(sinch.conversation.contact.get({ contact_id: src.id }), 404, 'NOT_FOUND');
  assert.equal(await count(), before - 1);
  assert.equal(sql(`SELECT COUNT(*) FROM contacts WHERE id = ${q(src.id)}`), '0');
  assert.equal(sql(`SELECT COUNT(*) FROM contact_identities WHERE contact_id = ${q(src.id)}`), '0');
  const convs = sql(`SELECT id || ':' || contact_id || ':' || active FROM conversations WHERE id IN (${[dConv, sConv, sConv2].map(q).join(',')}) ORDER BY id`).split('\n');
  assert.deepEqual(convs, [`${dConv}:${dst.id}:1`, `${sConv}:${dst.id}:0`, `${sConv2}:${dst.id}:1`]);
  const msgs = sql(`SELECT id || ':' || contact_id || ':' || conversation_id FROM messages WHERE id IN (${q(sMsg)}, ${q(sMsg2)}) ORDER BY id`).split('\n');
  assert.deepEqual(msgs, [`${sMsg}:${dst.id}:${sConv}`, `${sMsg2}:${dst.id}:${sConv2}`]);
  // The moved identities now resolve to the destination.
  const page = await sinch.conversation.contact.list({ channel: 'WHATSAPP', identity: sWa });
  assert.deepEqual(page.data.map((c) => c.id), [dst.id]);

  // Merge errors, none of which writes anything.
  const other = await sinch.conversation.contact.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: phone() }], language: 'EN' } });
  const merge = (destination_id, body) => sinch.conversation.contact.mergeContact({ destination_id, mergeContactRequestBody: body });
  await sdkRejects(merge(dst.id, { source_id: dst.id }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(merge(dst.id, { source_id: other.id, strategy: 'SQUASH' }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(merge(dst.id, { source_id: 'not-an-id' }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(merge(dst.id, {}), 400, 'INVALID_ARGUMENT');
  await sdkRejects(merge('bad-id', { source_id: other.id }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(merge(dst.id, { source_id: src.id }), 404, 'NOT_FOUND');
  await sdkRejects(merge(ulid(), { source_id: other.id }), 404, 'NOT_FOUND');
  assert.deepEqual(await sinch.conversation.contact.get({ contact_id: other.id }), other);
  assert.deepEqual(await sinch.conversation.contact.get({ contact_id: dst.id }), m);
  // Without a strategy, MERGE is assumed.
  const m2 = await merge(dst.id, { source_id: other.id });
  assert.equal(m2.channel_identities.length, 4);
  await sdkRejects(sinch.conversation.contact.get({ contact_id: other.id }), 404, 'NOT_FOUND');
});

test('identity conflicts list identities held by several contacts, paged', async () => {
  const proj = await newProject('conflicts');
  const c = proj.sinch.conversation.contact;
  const mk = (ids) => c.create({ contactCreateRequestBody: { channel_identities: ids, language: 'EN' } });
  const a = await mk([{ channel: 'SMS', identity: '+4670' }, { channel: 'SMS', identity: '+4671' }, { channel: 'TELEGRAM', identity: 'solo' }]);
  const b = await mk([{ channel: 'WHATSAPP', identity: '+4670' }, { channel: 'RCS', identity: '+4671' }]);
  const d = await mk([{ channel: 'RCS', identity: '+4670' }, { channel: 'WHATSAPP', identity: '+4672' }]);
  const byId = [a.id, b.id, d.id].sort();
  const first = await c.listIdentityConflicts({ page_size: 1 });
  assert.deepEqual(first.data, [{ identity: '+4670', channels: ['SMS', 'WHATSAPP', 'RCS'], contact_ids: byId }]);
  assert.equal(first.hasNextPage, true);
  assert.match(token(first.nextPageValue), /^[A-Za-z0-9_-]+$/);
  const second = await first.nextPage();
  assert.deepEqual(second.data, [{ identity: '+4671', channels: ['SMS', 'RCS'], contact_ids: [a.id, b.id].sort() }]);
  assert.equal(second.hasNextPage, false);
  const all = [];
  for await (const x of c.listIdentityConflicts({ page_size: 1 })) all.push(x.identity);
  assert.deepEqual(all, ['+4670', '+4671']);
  await sdkRejects(c.listIdentityConflicts({ page_token: 'djE6bm9wZQ' }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(c.listIdentityConflicts({ page_size: 0 }), 400, 'INVALID_ARGUMENT');
  // A merge resolves a conflict.
  await c.mergeContact({ destination_id: a.id, mergeContactRequestBody: { source_id: b.id } });
  const after = await c.listIdentityConflicts({});
  assert.deepEqual(after.data, [{ identity: '+4670', channels: ['SMS', 'WHATSAPP', 'RCS'], contact_ids: [a.id, d.id].sort() }]);
});

test('ids: malformed is 400, unknown and other-project contacts are 404', async () => {
  const c = sinch.conversation.contact;
  await sdkRejects(c.get({ contact_id: 'nope' }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(c.delete({ contact_id: 'nope' }), 400, 'INVALID_ARGUMENT');
  await sdkRejects(c.update({ contact_id: 'nope', updateContactRequestBody: {} }), 400, 'INVALID_ARGUMENT');
  const some = await c.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: phone() }], language: 'EN' } });
  assert.deepEqual(await c.get({ contact_id: some.id.toLowerCase() }), some);
  const unknown = ulid();
  const err = await sdkRejects(c.get({ contact_id: unknown }), 404, 'NOT_FOUND');
  assert.match(err.message, new RegExp(`contact ${unknown} not found`));
  await sdkRejects(c.delete({ contact_id: unknown }), 404, 'NOT_FOUND');

  const proj = await newProject('other');
  const theirs = await proj.sinch.conversation.contact.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: '+46700000001' }], language: 'EN' } });
  // Same SMS identity in another project is no conflict (see the filter test), and their contact is invisible here.
  await sdkRejects(c.get({ contact_id: theirs.id }), 404, 'NOT_FOUND');
  await sdkRejects(c.update({ contact_id: theirs.id, updateContactRequestBody: { display_name: 'x' } }), 404, 'NOT_FOUND');
  await sdkRejects(c.delete({ contact_id: theirs.id }), 404, 'NOT_FOUND');
  const mine = await c.create({ contactCreateRequestBody: { channel_identities: [{ channel: 'SMS', identity: phone() }], language: 'EN' } });
  await sdkRejects(c.mergeContact({ destination_id: mine.id, mergeContactRequestBody: { source_id: theirs.id } }), 404, 'NOT_FOUND');
  await sdkRejects(c.mergeContact({ destination_id: theirs.id, mergeContactRequestBody: { source_id: mine.id } }), 404, 'NOT_FOUND');
  const page = await c.list({ channel: 'SMS', identity: '+46700000001' });
  assert.ok(!page.data.some((x) => x.id === theirs.id));
  assert.deepEqual(await proj.sinch.conversation.contact.get({ contact_id: theirs.id }), theirs);
  // Their key cannot reach this project at all.
  const cross = p.sdk({ projectId: p.init.project_id, keyId: proj.keyId, keySecret: proj.keySecret });
  await sdkRejects(cross.conversation.contact.get({ contact_id: mine.id }), 403);
});
