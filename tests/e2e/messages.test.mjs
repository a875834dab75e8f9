// messages.test.mjs: the Conversation API's messages through the official SDK: list with
// every filter (conversation, contact, app, channel identity, channel, direction, time
// range, source, only_recipient_originated, view), paging, get (with a stored delivery
// status), update of metadata, delete, bad ids and filters, and project isolation. Apps
// and contacts are seeded with the sqlite3 CLI; messages arrive through inject-message.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startParley, runCli, sdkRejects } from './lib/parley.mjs';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const id = (prefix, n) => prefix + String(n).padStart(26 - prefix.length, '0');
const APP1 = id('01JAPP', 1), APP2 = id('01JAPP', 2);
const CA = id('01JCNT', 1), CB = id('01JCNT', 2), CP = id('01JCNT', 3);
const MISSING = id('01JZZZ', 9);

function sql(p, stmt) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', p.dataDir + '/parley.db', stmt], { encoding: 'utf8' });
}

function seed(p, projectId, apps, contacts) {
  const now = Date.now();
  sql(p, [
    ...apps.map((a) => `INSERT INTO apps (id, project_id, display_name, created_at, updated_at) VALUES ('${a}', '${projectId}', 'app', ${now}, ${now});`),
    ...contacts.map((c) => `INSERT INTO contacts (id, project_id, created_at, updated_at, last_activity) VALUES ('${c}', '${projectId}', ${now}, ${now}, ${now});`),
  ].join('\n'));
}

describe('messages', () => {
  let p, sinch, pid;
  let convA, convB, convP; // A: APP1+CA, B: APP2+CB, P (paging): APP1+CP
  const m = {}; // named messages
  const list = (q) => sinch.conversation.messages.list(q);
  const ids = async (q) => (await list({ page_size: 1000, ...q })).data.map((x) => x.id);
  const inject = async (conversation_id, body) => {
    await sinch.conversation.conversation.injectMessage({ conversation_id, injectMessageRequestBody: body });
    const all = (await list({ conversation_id, page_size: 1000 })).data;
    return all[all.length - 1]; // the newest by id
  };

  before(async () => {
    p = await startParley();
    sinch = p.sdk();
    pid = p.init.project_id;
    seed(p, pid, [APP1, APP2], [CA, CB, CP]);
    const create = (app_id, contact_id) => sinch.conversation.conversation.create({ createConversationRequestBody: { app_id, contact_id } });
    convA = await create(APP1, CA);
    convB = await create(APP2, CB);
    convP = await create(APP1, CP);
    m.a1 = await inject(convA.id, {
      accept_time: '2024-01-01T00:00:00Z', channel_identity: { channel: 'SMS', identity: '+46700000001' },
      contact_id: CA, direction: 'TO_APP', contact_message: { text_message: { text: 'a1 in' } }, metadata: 'meta-a1',
    });
    m.a2 = await inject(convA.id, {
      accept_time: '2024-01-02T00:00:00Z', channel_identity: { channel: 'SMS', identity: '+46700000001' },
      contact_id: CA, direction: 'TO_CONTACT', app_message: { text_message: { text: 'a2 out' } }, sender_id: 'agent-1', metadata: 'meta-a2',
    });
    m.a3 = await inject(convA.id, {
      accept_time: '2024-01-03T00:00:00Z', channel_identity: { channel: 'WHATSAPP', identity: '+46700000099' },
      contact_id: CA, direction: 'TO_APP', contact_message: { media_message: { url: 'https://example.com/p.png' } },
    });
    m.b1 = await inject(convB.id, {
      accept_time: '2024-01-02T12:00:00Z', channel_identity: { channel: 'MESSENGER', identity: 'psid-b', app_id: APP2 },
      contact_id: CB, direction: 'TO_CONTACT', app_message: { text_message: { text: 'b1 out' } }, processing_mode: 'DISPATCH',
    });
  });
  after(async () => { await p.stop(); });

  test('injected messages come back as ConversationMessage', async () => {
    const got = await sinch.conversation.messages.get({ message_id: m.a2.id });
    assert.match(got.id, ULID);
    assert.equal(got.direction, 'TO_CONTACT');
    assert.deepEqual(got.channel_identity, { channel: 'SMS', identity: '+46700000001' });
    assert.equal(got.contact_id, CA);
    assert.equal(got.conversation_id, convA.id);
    assert.ok(got.accept_time instanceof Date);
    assert.equal(got.accept_time.toISOString(), '2024-01-02T00:00:00.000Z');
    assert.deepEqual(got.app_message, { text_message: { text: 'a2 out' } });
    assert.equal(got.contact_message, undefined);
    assert.equal(got.metadata, 'meta-a2');
    assert.equal(got.injected, true);
    assert.equal(got.sender_id, 'agent-1');
    assert.equal(got.processing_mode, 'CONVERSATION');
    assert.equal(got.message_status, undefined);
    const b = await sinch.conversation.messages.get({ message_id: m.b1.id, messages_source: 'DISPATCH_SOURCE' });
    assert.deepEqual(b.channel_identity, { channel: 'MESSENGER', identity: 'psid-b', app_id: APP2 });
    assert.equal(b.processing_mode, 'DISPATCH');
    assert.equal(b.sender_id, undefined);
  });

  test('a stored delivery status is returned as message_status', async () => {
    const mid = id('01JMSG', 1);
    sql(p, `INSERT INTO messages (id, project_id, app_id, conversation_id, contact_id, direction, channel, identity, accept_time, kind, content, status, status_time, status_reason)
            VALUES ('${mid}', '${pid}', '${APP2}', '${convB.id}', '${CB}', 'TO_CONTACT', 'SMS', '+46700000002', 1700000000000, 'app_message', '{"text_message":{"text":"s"}}', 'FAILED', 1700000005000, 'RECIPIENT_NOT_REACHABLE')`);
    const got = await sinch.conversation.messages.get({ message_id: mid });
    assert.equal(got.message_status.status, 'FAILED');
    assert.ok(got.message_status.event_time instanceof Date);
    assert.equal(got.message_status.event_time.toISOString(), '2023-11-14T22:13:25.000Z');
    assert.equal(got.message_status.reason, 'RECIPIENT_NOT_REACHABLE');
    assert.equal(got.injected, false);
    assert.deepEqual(await sinch.conversation.messages.delete({ message_id: mid }), {});
  });

  test('list filters', async () => {
    assert.deepEqual(await ids({ conversation_id: convA.id }), [m.a1.id, m.a2.id, m.a3.id]);
    assert.deepEqual(await ids({ conversation_id: convB.id }), [m.b1.id]);
    assert.deepEqual(await ids({ contact_id: CB }), [m.b1.id]);
    assert.deepEqual(await ids({ app_id: APP2 }), [m.b1.id]);
    assert.deepEqual(await ids({ app_id: APP1, channel_identity: '+46700000001' }), [m.a1.id, m.a2.id]);
    assert.deepEqual(await ids({ app_id: APP1, channel: 'WHATSAPP' }), [m.a3.id]);
    assert.deepEqual(await ids({ conversation_id: convA.id, direction: 'TO_CONTACT' }), [m.a2.id]);
    assert.deepEqual(await ids({ conversation_id: convA.id, direction: 'TO_APP' }), [m.a1.id, m.a3.id]);
    assert.deepEqual(await ids({ conversation_id: convA.id, only_recipient_originated: true }), [m.a1.id, m.a3.id]);
    assert.deepEqual(await ids({ conversation_id: convA.id, only_recipient_originated: false }), [m.a1.id, m.a2.id, m.a3.id]);
    // Time range: start inclusive, end exclusive; Dates go through the SDK.
    assert.deepEqual(await ids({ app_id: APP1, start_time: new Date('2024-01-02T00:00:00Z'), end_time: new Date('2024-01-03T00:00:00Z') }), [m.a2.id]);
    assert.deepEqual(await ids({ start_time: new Date('2024-01-02T00:00:00Z'), end_time: new Date('2024-01-03T00:00:00Z') }), [m.a2.id, m.b1.id]);
    assert.deepEqual(await ids({ conversation_id: convA.id, start_time: new Date('2024-01-02T00:00:01Z') }), [m.a3.id]);
    assert.deepEqual(await ids({ conversation_id: convA.id, end_time: new Date('2024-01-02T00:00:00Z') }), [m.a1.id]);
    // Sources.
    assert.deepEqual(await ids({ messages_source: 'DISPATCH_SOURCE' }), [m.b1.id]);
    assert.ok(!(await ids({ messages_source: 'CONVERSATION_SOURCE' })).includes(m.b1.id));
    assert.ok((await ids({ messages_source: 'CONVERSATION_SOURCE' })).includes(m.a1.id));
    // Combined filters that exclude each other.
    assert.deepEqual(await ids({ conversation_id: convA.id, contact_id: CB }), []);
    // Views.
    const withMeta = (await list({ conversation_id: convA.id, view: 'WITH_METADATA' })).data;
    assert.equal(withMeta[0].metadata, 'meta-a1');
    const noMeta = (await list({ conversation_id: convA.id, view: 'WITHOUT_METADATA' })).data;
    assert.equal(noMeta.length, 3);
    for (const x of noMeta) assert.ok(!('metadata' in x), JSON.stringify(x));
    assert.deepEqual(noMeta[0].contact_message, { text_message: { text: 'a1 in' } });
    // total_size
    const raw = await p.api('GET', `/v1/projects/${pid}/messages?conversation_id=${convA.id}&page_size=2`);
    assert.equal(raw.json.total_size, 3);
    assert.equal(raw.json.messages.length, 2);
    assert.match(raw.json.next_page_token, /^[A-Za-z0-9_-]+$/);
  });

  test('list rejects every malformed filter', async () => {
    const bad = [
      [{ start_time: 'yesterday' }, 'start_time'],
      [{ end_time: '2024-13-01T00:00:00Z' }, 'end_time'],
      [{ start_time: new Date('2024-01-03T00:00:00Z'), end_time: new Date('2024-01-02T00:00:00Z') }, 'end_time'],
      [{ channel: 'TELEX' }, 'channel'],
      [{ direction: 'UP' }, 'direction'],
      [{ view: 'SOME_METADATA' }, 'view'],
      [{ messages_source: 'ELSEWHERE' }, 'messages_source'],
      [{ only_recipient_originated: 'maybe' }, 'only_recipient_originated'],
      [{ page_size: 0 }, 'page_size'],
      [{ page_size: 1001 }, 'page_size'],
      [{ page_token: 'not-a-token' }, 'page_token'],
      [{ conversation_id: 'c1' }, 'conversation_id'],
      [{ contact_id: 'c2' }, 'contact_id'],
      [{ app_id: 'a1' }, 'app_id'],
    ];
    for (const [q, word] of bad) {
      const err = await sdkRejects(list(q), 400, 'INVALID_ARGUMENT');
      assert.ok(err.message.includes(word), `${JSON.stringify(q)}: ${err.message}`);
    }
  });

  test('pages through 30 messages, 7 at a time', async () => {
    const base = Date.parse('2024-02-01T00:00:00Z');
    const made = [];
    for (let i = 0; i < 30; i++) {
      await sinch.conversation.conversation.injectMessage({
        conversation_id: convP.id,
        injectMessageRequestBody: {
          accept_time: new Date(base + i * 1000).toISOString(), channel_identity: { channel: 'TELEGRAM', identity: 'tg-1' },
          contact_id: CP, direction: i % 2 ? 'TO_CONTACT' : 'TO_APP',
          ...(i % 2 ? { app_message: { text_message: { text: `out ${i}` } } } : { contact_message: { text_message: { text: `in ${i}` } } }),
        },
      });
      made.push(i);
    }
    const sizes = [], seen = [];
    let page = await list({ conversation_id: convP.id, page_size: 7 });
    for (;;) {
      sizes.push(page.data.length);
      seen.push(...page.data);
      if (!page.hasNextPage) break;
      page = await page.nextPage();
    }
    assert.deepEqual(sizes, [7, 7, 7, 7, 2]);
    assert.equal(seen.length, 30);
    assert.equal(new Set(seen.map((x) => x.id)).size, 30);
    assert.deepEqual(seen.map((x) => x.id), [...seen.map((x) => x.id)].sort());
    // id order is accept order here, and texts come back in injection order.
    seen.forEach((x, i) => {
      const text = (x.app_message ?? x.contact_message).text_message.text;
      assert.equal(text, `${i % 2 ? 'out' : 'in'} ${i}`);
      assert.equal(x.accept_time.getTime(), base + i * 1000);
    });
    // for await walks the same pages.
    let n = 0;
    for await (const x of list({ conversation_id: convP.id, page_size: 7 })) { assert.equal(x.id, seen[n].id); n++; }
    assert.equal(n, 30);
    // The conversation's last_received is the newest TO_APP message (i = 28).
    const c = await sinch.conversation.conversation.get({ conversation_id: convP.id });
    assert.equal(c.last_received.getTime(), base + 28 * 1000);
  });

  test('update sets metadata and returns the message', async () => {
    const u = await sinch.conversation.messages.update({ message_id: m.a1.id, updateMessageRequestBody: { metadata: 'new meta' } });
    assert.equal(u.id, m.a1.id);
    assert.equal(u.metadata, 'new meta');
    assert.deepEqual(u.contact_message, { text_message: { text: 'a1 in' } });
    assert.equal((await sinch.conversation.messages.get({ message_id: m.a1.id })).metadata, 'new meta');
    const upd = (body, extra = {}) => sinch.conversation.messages.update({ message_id: m.a1.id, updateMessageRequestBody: body, ...extra });
    await sdkRejects(upd({ metadata: 'x'.repeat(1025) }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({}), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ metadata: 42 }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ metadata: 'x' }, { messages_source: 'NOWHERE' }), 400, 'INVALID_ARGUMENT');
    assert.equal((await sinch.conversation.messages.get({ message_id: m.a1.id })).metadata, 'new meta');
    await sdkRejects(sinch.conversation.messages.update({ message_id: MISSING, updateMessageRequestBody: { metadata: 'x' } }), 404, 'NOT_FOUND');
    // Clearing is allowed.
    assert.equal((await upd({ metadata: '' })).metadata, '');
  });

  test('get and delete, with bad ids and sources', async () => {
    await sdkRejects(sinch.conversation.messages.get({ message_id: 'not-an-id' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.update({ message_id: 'not-an-id', updateMessageRequestBody: { metadata: 'x' } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.delete({ message_id: 'not-an-id' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.get({ message_id: MISSING }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.messages.get({ message_id: m.a3.id, messages_source: 'BOTH' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.messages.delete({ message_id: m.a3.id, messages_source: 'BOTH' }), 400, 'INVALID_ARGUMENT');
    assert.equal((await sinch.conversation.messages.get({ message_id: m.a3.id })).id, m.a3.id);

    assert.deepEqual(await sinch.conversation.messages.delete({ message_id: m.a3.id }), {});
    await sdkRejects(sinch.conversation.messages.get({ message_id: m.a3.id }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.messages.delete({ message_id: m.a3.id }), 404, 'NOT_FOUND');
    assert.deepEqual(await ids({ conversation_id: convA.id }), [m.a1.id, m.a2.id]);
  });

  test('another project sees none of it', async () => {
    const proj = await runCli(['projects', 'create', '--name', 'B', '--data-dir', p.dataDir]);
    assert.equal(proj.code, 0, proj.stderr);
    const B = JSON.parse(proj.stdout).project_id;
    const key = await runCli(['keys', 'create', '--project', B, '--data-dir', p.dataDir]);
    assert.equal(key.code, 0, key.stderr);
    const k = JSON.parse(key.stdout);
    const sb = p.sdk({ projectId: B, keyId: k.key_id, keySecret: k.key_secret });
    await sdkRejects(sb.conversation.messages.get({ message_id: m.a1.id }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.messages.update({ message_id: m.a1.id, updateMessageRequestBody: { metadata: 'pwned' } }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.messages.delete({ message_id: m.a1.id }), 404, 'NOT_FOUND');
    assert.equal((await sb.conversation.messages.list({})).data.length, 0);
    assert.equal((await sb.conversation.messages.list({ conversation_id: convA.id })).data.length, 0);
    const mine = await sinch.conversation.messages.get({ message_id: m.a1.id });
    assert.equal(mine.metadata, '');
  });
});
