// conversations.test.mjs: the Conversation API's conversations through the official SDK:
// create (one active conversation per app and contact), get, list with filters and paging,
// recent (order, last_message, keyset paging), update (REPLACE and MERGE_PATCH of
// metadata_json), stop, inject-message (every message type, and bad content that must be
// rejected without writing), delete (with its messages), and project isolation. Apps and
// contacts are seeded straight into the store with the sqlite3 CLI.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startParley, runCli, sdkRejects } from './lib/parley.mjs';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const EPOCH = new Date('1970-01-01T00:00:00Z');

const id = (prefix, n) => prefix + String(n).padStart(26 - prefix.length, '0');
const APP1 = id('01JAPP', 1), APP2 = id('01JAPP', 2);
const C = [1, 2, 3, 4, 5, 6].map((n) => id('01JCNT', n)); // contacts
const MISSING = id('01JZZZ', 9);

function sql(p, stmt) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', p.dataDir + '/parley.db', stmt], { encoding: 'utf8' });
}

function seed(p, projectId, apps, contacts) {
  const now = Date.now();
  const rows = [
    ...apps.map((a) => `INSERT INTO apps (id, project_id, display_name, created_at, updated_at) VALUES ('${a}', '${projectId}', 'app ${a}', ${now}, ${now});`),
    ...contacts.map((c) => `INSERT INTO contacts (id, project_id, created_at, updated_at, last_activity) VALUES ('${c}', '${projectId}', ${now}, ${now}, ${now});`),
  ];
  sql(p, rows.join('\n'));
}

// A minimal valid inject body.
function contactText(contactId, text, acceptTime = '2024-05-01T10:00:00Z', extra = {}) {
  return {
    accept_time: acceptTime,
    channel_identity: { channel: 'SMS', identity: '+46700000001' },
    contact_id: contactId,
    direction: 'TO_APP',
    contact_message: { text_message: { text } },
    ...extra,
  };
}
function appText(contactId, text, acceptTime = '2024-05-01T10:00:00Z', extra = {}) {
  return {
    accept_time: acceptTime,
    channel_identity: { channel: 'SMS', identity: '+46700000001' },
    contact_id: contactId,
    direction: 'TO_CONTACT',
    app_message: { text_message: { text } },
    ...extra,
  };
}

describe('conversations', () => {
  let p, sinch, pid;
  const conv = (createConversationRequestBody) => sinch.conversation.conversation.create({ createConversationRequestBody });
  const inject = (conversation_id, injectMessageRequestBody) =>
    sinch.conversation.conversation.injectMessage({ conversation_id, injectMessageRequestBody });
  const total = async (query) => (await p.api('GET', `/v1/projects/${pid}/conversations?${query}`)).json.total_size;
  const msgCount = async (conversationId) =>
    (await p.api('GET', `/v1/projects/${pid}/messages?conversation_id=${conversationId}`)).json.total_size;

  before(async () => {
    p = await startParley();
    sinch = p.sdk();
    pid = p.init.project_id;
    seed(p, pid, [APP1, APP2], C);
  });
  after(async () => { await p.stop(); });

  test('create answers the Conversation and enforces one active conversation per app and contact', async () => {
    const c = await conv({
      app_id: APP1, contact_id: C[0], active_channel: 'SMS',
      metadata: 'crm ticket 42', metadata_json: { tier: 'gold', n: 3, nested: { a: [1, 2] } }, correlation_id: 'corr-1',
    });
    assert.match(c.id, ULID);
    assert.equal(c.app_id, APP1);
    assert.equal(c.contact_id, C[0]);
    assert.equal(c.active, true);
    assert.equal(c.active_channel, 'SMS');
    assert.ok(c.last_received instanceof Date);
    assert.equal(c.last_received.getTime(), EPOCH.getTime());
    assert.equal(c.metadata, 'crm ticket 42');
    assert.deepEqual(c.metadata_json, { tier: 'gold', n: 3, nested: { a: [1, 2] } });
    assert.equal(c.correlation_id, 'corr-1');

    // Defaults: active, no channel, no metadata_json.
    const d = await conv({ app_id: APP2, contact_id: C[0] });
    assert.equal(d.active, true);
    assert.equal(d.active_channel, undefined);
    assert.equal(d.metadata_json, undefined);
    assert.equal(d.metadata, '');
    assert.equal(d.correlation_id, '');

    // A second active one for the same app and contact names the existing conversation.
    const before = await total(`app_id=${APP1}`);
    const err = await sdkRejects(conv({ app_id: APP1, contact_id: C[0] }), 400, 'FAILED_PRECONDITION');
    assert.ok(err.message.includes(c.id), err.message);
    assert.equal(await total(`app_id=${APP1}`), before);

    // An inactive one is fine.
    const inactive = await conv({ app_id: APP1, contact_id: C[0], active: false });
    assert.equal(inactive.active, false);
    assert.equal(await total(`app_id=${APP1}`), before + 1);
  });

  test('create rejects bad input and unknown apps or contacts, writing nothing', async () => {
    const before = await total('');
    const bad = [
      [{ contact_id: C[1] }, 'app_id'],
      [{ app_id: APP1 }, 'contact_id'],
      [{ app_id: 'nope', contact_id: C[1] }, 'app_id'],
      [{ app_id: APP1, contact_id: 'short' }, 'contact_id'],
      [{ app_id: APP1, contact_id: C[1], active: 'yes' }, 'active'],
      [{ app_id: APP1, contact_id: C[1], active_channel: 'MMS' }, 'not supported'],
      [{ app_id: APP1, contact_id: C[1], active_channel: 'CARRIER_PIGEON' }, 'unknown channel'],
      [{ app_id: APP1, contact_id: C[1], metadata: 'x'.repeat(1025) }, 'metadata'],
      [{ app_id: APP1, contact_id: C[1], metadata: 7 }, 'metadata'],
      [{ app_id: APP1, contact_id: C[1], metadata_json: 'not an object' }, 'metadata_json'],
      [{ app_id: APP1, contact_id: C[1], correlation_id: 'c'.repeat(129) }, 'correlation_id'],
    ];
    for (const [body, word] of bad) {
      const err = await sdkRejects(conv(body), 400, 'INVALID_ARGUMENT');
      assert.ok(err.message.includes(word), `${JSON.stringify(body).slice(0, 80)}: ${err.message}`);
    }
    let err = await sdkRejects(conv({ app_id: MISSING, contact_id: C[1] }), 404, 'NOT_FOUND');
    assert.ok(err.message.includes(`app ${MISSING}`), err.message);
    err = await sdkRejects(conv({ app_id: APP1, contact_id: MISSING }), 404, 'NOT_FOUND');
    assert.ok(err.message.includes(`contact ${MISSING}`), err.message);
    assert.equal(await total(''), before);
  });

  test('get answers the stored conversation; unknown is 404, malformed 400', async () => {
    const c = await conv({ app_id: APP1, contact_id: C[1], metadata_json: { k: 'v' } });
    const g = await sinch.conversation.conversation.get({ conversation_id: c.id });
    assert.deepEqual(g, c);
    await sdkRejects(sinch.conversation.conversation.get({ conversation_id: MISSING }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.conversation.get({ conversation_id: 'not-a-ulid' }), 400, 'INVALID_ARGUMENT');
  });

  test('list filters by app, contact, only_active and active_channel, and pages by id', async () => {
    const mine = [];
    for (const [app, contact, channel] of [[APP1, C[2], 'WHATSAPP'], [APP2, C[2], 'SMS'], [APP2, C[3], 'WHATSAPP']])
      mine.push(await conv({ app_id: app, contact_id: contact, active_channel: channel }));
    await sinch.conversation.conversation.stopActive({ conversation_id: mine[1].id });

    let page = await sinch.conversation.conversation.list({ contact_id: C[2] });
    assert.deepEqual(page.data.map((c) => c.id), [mine[0].id, mine[1].id]);
    page = await sinch.conversation.conversation.list({ contact_id: C[2], only_active: true });
    assert.deepEqual(page.data.map((c) => c.id), [mine[0].id]);
    page = await sinch.conversation.conversation.list({ contact_id: C[2], only_active: false });
    assert.equal(page.data.length, 2);
    page = await sinch.conversation.conversation.list({ app_id: APP2, active_channel: 'WHATSAPP' });
    assert.deepEqual(page.data.map((c) => c.id), [mine[2].id]);
    page = await sinch.conversation.conversation.list({ app_id: APP2, contact_id: C[2] });
    assert.deepEqual(page.data.map((c) => c.id), [mine[1].id]);
    assert.equal(page.data[0].active, false);
    const raw = await p.api('GET', `/v1/projects/${pid}/conversations?app_id=${APP2}&contact_id=${C[2]}`);
    assert.equal(raw.json.total_size, 1);
    assert.equal(raw.json.next_page_token, '');

    // Paging: all conversations, two per page, ascending ids, no repeats.
    const all = await total('');
    const seen = [];
    page = await sinch.conversation.conversation.list({ page_size: 2 });
    for (;;) {
      assert.ok(page.data.length <= 2);
      seen.push(...page.data.map((c) => c.id));
      if (!page.hasNextPage) break;
      page = await page.nextPage();
    }
    assert.equal(seen.length, all);
    assert.deepEqual([...seen].sort(), seen);
    assert.equal(new Set(seen).size, seen.length);

    // Every filter is validated.
    for (const q of [{ only_active: 'maybe' }, { page_size: 0 }, { page_size: 1001 }, { page_token: 'bogus' },
      { app_id: 'x' }, { contact_id: 'y' }, { active_channel: 'PAGER' }])
      await sdkRejects(sinch.conversation.conversation.list(q), 400, 'INVALID_ARGUMENT');
  });

  test('recent orders by last activity, carries the last message, and pages with its own token', async () => {
    const APP3 = id('01JAPP', 3);
    seed(p, pid, [APP3], []);
    // Four conversations; activity: c2 newest, then c0, c3 none, c1 oldest.
    const cs = [];
    for (const contact of [C[0], C[1], C[2], C[3]]) cs.push(await conv({ app_id: APP3, contact_id: contact }));
    await inject(cs[0].id, contactText(C[0], 'c0 in', '2024-03-02T00:00:00Z'));
    await inject(cs[0].id, appText(C[0], 'c0 reply', '2024-03-02T00:05:00Z'));
    await inject(cs[1].id, contactText(C[1], 'c1 in', '2024-03-01T00:00:00Z'));
    await inject(cs[2].id, contactText(C[2], 'c2 in', '2024-03-03T00:00:00Z'));
    // An app message does not move last_received.
    await inject(cs[3].id, appText(C[3], 'c3 out', '2024-03-09T00:00:00Z'));

    const res = await sinch.conversation.conversation.listRecent({ app_id: APP3 });
    const ids = res.data.map((r) => r.conversation.id);
    assert.deepEqual(ids, [cs[2].id, cs[0].id, cs[1].id, cs[3].id]);
    const c0 = res.data[1];
    assert.equal(c0.conversation.last_received.toISOString(), '2024-03-02T00:00:00.000Z');
    assert.equal(c0.last_message.app_message.text_message.text, 'c0 reply');
    assert.equal(c0.last_message.direction, 'TO_CONTACT');
    assert.ok(c0.last_message.accept_time instanceof Date);
    assert.equal(res.data[3].conversation.last_received.getTime(), EPOCH.getTime());

    const asc = await sinch.conversation.conversation.listRecent({ app_id: APP3, order: 'ASC' });
    assert.deepEqual(asc.data.map((r) => r.conversation.id), [...ids].reverse());

    // A conversation with no messages has no last_message.
    const empty = await conv({ app_id: APP3, contact_id: C[4] });
    const withEmpty = await sinch.conversation.conversation.listRecent({ app_id: APP3, order: 'ASC' });
    const e = withEmpty.data.find((r) => r.conversation.id === empty.id);
    assert.ok(e);
    assert.equal(e.last_message, undefined);

    // only_active
    await sinch.conversation.conversation.stopActive({ conversation_id: cs[1].id });
    const act = await sinch.conversation.conversation.listRecent({ app_id: APP3, only_active: true });
    assert.ok(!act.data.some((r) => r.conversation.id === cs[1].id));
    assert.equal(act.data.length, 4);

    // Paging one at a time follows the same order.
    const paged = [];
    let page = await sinch.conversation.conversation.listRecent({ app_id: APP3, page_size: 1 });
    for (;;) {
      paged.push(page.data[0].conversation.id);
      if (!page.hasNextPage) break;
      page = await page.nextPage();
    }
    const full = await sinch.conversation.conversation.listRecent({ app_id: APP3, page_size: 100 });
    assert.deepEqual(paged, full.data.map((r) => r.conversation.id));
    const raw = await p.api('GET', `/v1/projects/${pid}/conversations:recent?app_id=${APP3}&page_size=2`);
    assert.equal(raw.json.total_size, 5);
    assert.equal(raw.json.conversations.length, 2);
    assert.match(raw.json.next_page_token, /^[A-Za-z0-9_-]+$/);

    // Bad input.
    const first = await sinch.conversation.conversation.listRecent({ app_id: APP3, page_size: 1 });
    await sdkRejects(sinch.conversation.conversation.listRecent({ app_id: APP3, order: 'ASC', page_token: first.nextPageValue }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.conversation.listRecent({}), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.conversation.listRecent({ app_id: APP3, order: 'SIDEWAYS' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.conversation.listRecent({ app_id: APP3, page_token: 'garbage' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.conversation.listRecent({ app_id: APP3, only_active: 'perhaps' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(sinch.conversation.conversation.listRecent({ app_id: APP3, page_size: 0 }), 400, 'INVALID_ARGUMENT');
  });

  test('update with REPLACE and MERGE_PATCH', async () => {
    const c = await conv({
      app_id: APP1, contact_id: C[5], active_channel: 'SMS', metadata: 'm0',
      metadata_json: { a: 1, b: { c: 1, d: 2 }, e: 'x' }, correlation_id: 'k0',
    });
    const update = (body, extra = {}) => sinch.conversation.conversation.update({ conversation_id: c.id, updateConversationRequestBody: body, ...extra });

    // REPLACE (the SDK default) with a mask.
    let u = await update({ metadata: 'm1', metadata_json: { z: true }, correlation_id: 'ignored' }, { update_mask: ['metadata', 'metadata_json'] });
    assert.equal(u.metadata, 'm1');
    assert.deepEqual(u.metadata_json, { z: true });
    assert.equal(u.correlation_id, 'k0');
    assert.equal(u.active_channel, 'SMS');

    // MERGE_PATCH: RFC 7386.
    await update({ metadata_json: { a: 1, b: { c: 1, d: 2 }, e: 'x' } });
    u = await update({ metadata_json: { b: { c: null, f: 3 }, e: null, g: [1] } }, { metadata_update_strategy: 'MERGE_PATCH' });
    assert.deepEqual(u.metadata_json, { a: 1, b: { d: 2, f: 3 }, g: [1] });
    assert.deepEqual((await sinch.conversation.conversation.get({ conversation_id: c.id })).metadata_json, { a: 1, b: { d: 2, f: 3 }, g: [1] });
    // MERGE_PATCH without metadata_json leaves it alone.
    u = await update({ metadata: 'm2' }, { metadata_update_strategy: 'MERGE_PATCH' });
    assert.deepEqual(u.metadata_json, { a: 1, b: { d: 2, f: 3 }, g: [1] });
    assert.equal(u.metadata, 'm2');

    // No mask: the fields present. A listed field that is absent is cleared.
    u = await update({ active_channel: 'WHATSAPP', correlation_id: 'k1' });
    assert.equal(u.active_channel, 'WHATSAPP');
    assert.equal(u.correlation_id, 'k1');
    assert.equal(u.metadata, 'm2');
    u = await update({}, { update_mask: ['active_channel', 'metadata_json'] });
    assert.equal(u.active_channel, undefined);
    assert.equal(u.metadata_json, undefined);
    assert.equal(u.metadata, 'm2');

    // Bad input changes nothing.
    const snapshot = await sinch.conversation.conversation.get({ conversation_id: c.id });
    await sdkRejects(update({ metadata: 'x' }, { update_mask: ['active'] }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(update({ metadata: 'x' }, { metadata_update_strategy: 'SHUFFLE' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(update({ metadata: 'x', metadata_json: [1, 2] }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(update({ metadata: 'x'.repeat(1025) }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(update({ metadata: 'x', active_channel: 'LINE' }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(update({ correlation_id: 'c'.repeat(129) }), 400, 'INVALID_ARGUMENT');
    assert.deepEqual(await sinch.conversation.conversation.get({ conversation_id: c.id }), snapshot);
    await sdkRejects(sinch.conversation.conversation.update({ conversation_id: MISSING, updateConversationRequestBody: { metadata: 'x' } }), 404, 'NOT_FOUND');
  });

  test('stop makes a conversation inactive once, and frees the slot for a new one', async () => {
    const contact = id('01JCNT', 50);
    seed(p, pid, [], [contact]);
    const c = await conv({ app_id: APP1, contact_id: contact });
    assert.deepEqual(await sinch.conversation.conversation.stopActive({ conversation_id: c.id }), {});
    assert.equal((await sinch.conversation.conversation.get({ conversation_id: c.id })).active, false);
    const err = await sdkRejects(sinch.conversation.conversation.stopActive({ conversation_id: c.id }), 400, 'FAILED_PRECONDITION');
    assert.ok(err.message.includes(c.id));
    const again = await conv({ app_id: APP1, contact_id: contact });
    assert.equal(again.active, true);
    await sdkRejects(sinch.conversation.conversation.stopActive({ conversation_id: MISSING }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.conversation.stopActive({ conversation_id: 'bad' }), 400, 'INVALID_ARGUMENT');
  });

  test('inject-message stores app and contact messages of every type', async () => {
    const contact = id('01JCNT', 60);
    seed(p, pid, [], [contact]);
    const c = await conv({ app_id: APP1, contact_id: contact });
    const media = { url: 'https://example.com/cat.jpg', thumbnail_url: 'https://example.com/t.jpg' };
    const choices = [
      { text_message: { text: 'Yes' }, postback_data: 'yes' },
      { url_message: { title: 'Site', url: 'https://example.com' } },
      { call_message: { title: 'Call us', phone_number: '+46700000009' } },
      { location_message: { title: 'HQ', coordinates: { latitude: 59.33, longitude: 18.06 } } },
      { calendar_message: { title: 'Meet', event_start: '2024-06-01T10:00:00Z', event_end: '2024-06-01T11:00:00Z', event_title: 'Demo', fallback_url: 'https://example.com/cal' } },
      { share_location_message: { title: 'Share', fallback_url: 'https://example.com/loc' } },
    ];
    const appMessages = [
      { text_message: { text: 'hello' }, agent: { display_name: 'Ann', type: 'HUMAN' } },
      { media_message: media },
      { choice_message: { text_message: { text: 'Pick' }, choices } },
      { card_message: { title: 'Card', description: 'd', media_message: media, height: 'MEDIUM', choices: choices.slice(0, 2) } },
      { carousel_message: { cards: [{ title: 'a' }, { description: 'b' }, { media_message: media }], choices: choices.slice(0, 1) } },
      { location_message: { title: 'Here', label: 'L', coordinates: { latitude: -90, longitude: 180 } } },
      { contact_info_message: { name: { full_name: 'Ann Example' }, phone_numbers: [{ phone_number: '+46700000002' }] } },
      { list_message: { title: 'Menu', sections: [{ title: 's', items: [{ choice: { title: 'one' } }] }, { items: [{ product: { id: 'p1', marketplace: 'FACEBOOK' } }] }] } },
      { template_message: { omni_template: { template_id: 't1', version: '1', parameters: { name: 'Ann' } } } },
      { template_message: { channel_template: { WHATSAPP: { template_id: 'wa1', language_code: 'en' } } }, explicit_channel_message: { SMS: 'plain' } },
    ];
    const contactMessages = [
      { text_message: { text: 'hi' }, reply_to: { message_id: 'x1' } },
      { media_message: { url: 'http://example.com/a.png' } },
      { location_message: { coordinates: { latitude: 1, longitude: 2 } } },
      { choice_response_message: { message_id: 'm1', postback_data: 'yes' } },
      { media_card_message: { url: 'https://example.com/v.mp4', caption: 'c' } },
      { fallback_message: { raw_message: 'raw', reason: { code: 'UNKNOWN' } } },
      { product_response_message: { products: [{ id: 'p', marketplace: 'FACEBOOK', quantity: 2 }] } },
      { channel_specific_message: { message_type: 'nfm_reply', message: { type: 'nfm_reply' } } },
    ];
    let t = Date.parse('2024-04-01T00:00:00Z');
    for (const app_message of appMessages) {
      const r = await inject(c.id, {
        accept_time: new Date((t += 1000)).toISOString(), channel_identity: { channel: 'MESSENGER', identity: 'psid-1', app_id: APP1 },
        contact_id: contact, direction: 'TO_CONTACT', app_message, sender_id: 'agent-7', metadata: 'meta',
      });
      assert.deepEqual(r, {});
    }
    for (const contact_message of contactMessages)
      assert.deepEqual(await inject(c.id, { ...contactText(contact, 'x', new Date((t += 1000)).toISOString()), contact_message }), {});

    const msgs = (await sinch.conversation.messages.list({ conversation_id: c.id, page_size: 100 })).data;
    assert.equal(msgs.length, appMessages.length + contactMessages.length);
    const first = msgs[0];
    assert.equal(first.direction, 'TO_CONTACT');
    assert.equal(first.injected, true);
    assert.equal(first.conversation_id, c.id);
    assert.equal(first.contact_id, contact);
    assert.equal(first.sender_id, 'agent-7');
    assert.equal(first.metadata, 'meta');
    assert.equal(first.processing_mode, 'CONVERSATION');
    assert.deepEqual(first.channel_identity, { channel: 'MESSENGER', identity: 'psid-1', app_id: APP1 });
    assert.deepEqual(first.app_message, appMessages[0]);
    assert.equal(first.accept_time.toISOString(), '2024-04-01T00:00:01.000Z');
    const last = msgs[msgs.length - 1];
    assert.equal(last.direction, 'TO_APP');
    assert.deepEqual(last.contact_message, contactMessages[contactMessages.length - 1]);
    assert.deepEqual(last.channel_identity, { channel: 'SMS', identity: '+46700000001' });

    // last_received follows the newest TO_APP accept_time.
    const g = await sinch.conversation.conversation.get({ conversation_id: c.id });
    assert.equal(g.last_received.toISOString(), last.accept_time.toISOString());
  });

  test('inject-message rejects bad requests and bad content, writing nothing', async () => {
    const contact = id('01JCNT', 70), other = id('01JCNT', 71);
    seed(p, pid, [], [contact, other]);
    const c = await conv({ app_id: APP1, contact_id: contact });
    const base = appText(contact, 'ok');
    const withApp = (app_message) => ({ ...base, app_message });
    const goodChoices = [{ text_message: { text: 'a' } }, { text_message: { text: 'b' } }];
    const cases = [
      // request shape
      [{ ...base, direction: 'TO_APP' }, 'TO_APP'],
      [{ ...contactText(contact, 'x'), direction: 'TO_CONTACT' }, 'TO_CONTACT'],
      [{ ...base, app_message: undefined }, 'app_message'],
      [{ ...base, contact_message: { text_message: { text: 'x' } } }, 'both'],
      [{ ...base, accept_time: undefined }, 'accept_time'],
      [{ ...base, accept_time: 'last tuesday' }, 'accept_time'],
      [{ ...base, channel_identity: undefined }, 'channel_identity'],
      [{ ...base, channel_identity: { channel: 'SMS' } }, 'channel_identity.identity'],
      [{ ...base, channel_identity: { channel: 'FAX', identity: '1' } }, 'channel_identity.channel'],
      [{ ...base, contact_id: other }, 'contact_id'],
      [{ ...base, contact_id: 'bad' }, 'contact_id'],
      [{ ...base, direction: 'SIDEWAYS' }, 'direction'],
      [{ ...base, direction: undefined }, 'direction'],
      [{ ...base, processing_mode: 'BATCH' }, 'processing_mode'],
      [{ ...base, metadata: 'm'.repeat(1025) }, 'metadata'],
      [{ ...base, conversation_id: MISSING }, 'conversation_id'],
      // content
      [withApp({}), 'exactly one message type'],
      [withApp({ text_message: { text: 'a' }, media_message: { url: 'https://e.com/x' } }), 'app_message has both text_message and media_message'],
      [withApp({ fax_message: { pages: 1 } }), 'app_message.fax_message'],
      [withApp({ text_message: {} }), 'app_message.text_message.text is required'],
      [withApp({ text_message: { text: 'x'.repeat(4097) } }), 'app_message.text_message.text'],
      [withApp({ text_message: 'hi' }), 'app_message.text_message must be an object'],
      [withApp({ media_message: { url: 'ftp://e.com/x' } }), 'app_message.media_message.url'],
      [withApp({ choice_message: { choices: [...goodChoices, { url_message: { title: 'no url' } }] } }), 'app_message.choice_message.choices[2].url_message.url is required'],
      [withApp({ choice_message: { choices: [] } }), 'app_message.choice_message.choices'],
      [withApp({ choice_message: { choices: Array(11).fill(goodChoices[0]) } }), 'app_message.choice_message.choices'],
      [withApp({ choice_message: { choices: [{ text_message: { text: 'a' }, call_message: { title: 't', phone_number: '1' } }] } }), 'choices[0] has both'],
      [withApp({ choice_message: { choices: [{ postback_data: 'p' }] } }), 'choices[0] must contain exactly one choice type'],
      [withApp({ card_message: { height: 'MEDIUM' } }), 'app_message.card_message must have at least a title'],
      [withApp({ card_message: { title: 't', height: 'HUGE' } }), 'app_message.card_message.height'],
      [withApp({ carousel_message: { cards: [] } }), 'app_message.carousel_message.cards'],
      [withApp({ carousel_message: { cards: [{ title: 'a' }, {}] } }), 'app_message.carousel_message.cards[1]'],
      [withApp({ location_message: { coordinates: { latitude: 1, longitude: 2 } } }), 'app_message.location_message.title is required'],
      [withApp({ location_message: { title: 't', coordinates: { latitude: 91, longitude: 2 } } }), 'app_message.location_message.coordinates.latitude'],
      [withApp({ location_message: { title: 't', coordinates: { latitude: 1, longitude: -181 } } }), 'app_message.location_message.coordinates.longitude'],
      [withApp({ location_message: { title: 't' } }), 'app_message.location_message.coordinates is required'],
      [withApp({ contact_info_message: { name: {}, phone_numbers: [{ phone_number: '1' }] } }), 'app_message.contact_info_message.name.full_name is required'],
      [withApp({ contact_info_message: { name: { full_name: 'A' }, phone_numbers: [] } }), 'app_message.contact_info_message.phone_numbers'],
      [withApp({ contact_info_message: { name: { full_name: 'A' }, phone_numbers: [{}] } }), 'app_message.contact_info_message.phone_numbers[0].phone_number is required'],
      [withApp({ list_message: { title: 't', sections: [] } }), 'app_message.list_message.sections'],
      [withApp({ list_message: { title: 't', sections: [{ items: [{ choice: {} }] }] } }), 'app_message.list_message.sections[0].items[0].choice.title is required'],
      [withApp({ list_message: { title: 't', sections: [{ items: [{ product: { id: 'p' } }] }] } }), 'app_message.list_message.sections[0].items[0].product.marketplace is required'],
      [withApp({ list_message: { sections: [{ items: [{ choice: { title: 'a' } }] }] } }), 'app_message.list_message.title is required'],
      [withApp({ template_message: {} }), 'app_message.template_message'],
      [withApp({ template_message: { omni_template: { template_id: 't' } } }), 'app_message.template_message.omni_template.version is required'],
      [withApp({ text_message: { text: 'a' }, agent: { type: 'ROBOT' } }), 'app_message.agent.type'],
      [withApp({ text_message: { text: 'a' }, explicit_channel_message: { SMS: 5 } }), 'app_message.explicit_channel_message.SMS'],
      [{ ...contactText(contact, 'x'), contact_message: { choice_response_message: { message_id: 'm' } } }, 'contact_message.choice_response_message.postback_data is required'],
      [{ ...contactText(contact, 'x'), contact_message: { media_card_message: {} } }, 'contact_message.media_card_message.url is required'],
      [{ ...contactText(contact, 'x'), contact_message: { card_message: { title: 't' } } }, 'contact_message.card_message'],
      [{ ...contactText(contact, 'x'), contact_message: { reply_to: { message_id: 'x' } } }, 'contact_message must contain exactly one message type'],
      [{ ...contactText(contact, 'x'), contact_message: { text_message: { text: 'a' }, reply_to: {} } }, 'contact_message.reply_to.message_id is required'],
    ];
    for (const [body, word] of cases) {
      const err = await sdkRejects(inject(c.id, body), 400, 'INVALID_ARGUMENT');
      assert.ok(err.message.includes(word), `expected "${word}" in: ${err.message}`);
    }
    await sdkRejects(inject(MISSING, base), 404, 'NOT_FOUND');
    await sdkRejects(inject('bad-id', base), 400, 'INVALID_ARGUMENT');
    assert.equal(await msgCount(c.id), 0);
    const g = await sinch.conversation.conversation.get({ conversation_id: c.id });
    assert.equal(g.last_received.getTime(), EPOCH.getTime());
  });

  test('delete removes the conversation and its messages', async () => {
    const contact = id('01JCNT', 80);
    seed(p, pid, [], [contact]);
    const c = await conv({ app_id: APP1, contact_id: contact });
    await inject(c.id, contactText(contact, 'one'));
    await inject(c.id, appText(contact, 'two'));
    const msgs = (await sinch.conversation.messages.list({ conversation_id: c.id })).data;
    assert.equal(msgs.length, 2);
    assert.deepEqual(await sinch.conversation.conversation.delete({ conversation_id: c.id }), {});
    await sdkRejects(sinch.conversation.conversation.get({ conversation_id: c.id }), 404, 'NOT_FOUND');
    assert.equal(await msgCount(c.id), 0);
    for (const m of msgs) await sdkRejects(sinch.conversation.messages.get({ message_id: m.id }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.conversation.delete({ conversation_id: c.id }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.conversation.delete({ conversation_id: 'nope' }), 400, 'INVALID_ARGUMENT');
    // The slot is free again.
    assert.equal((await conv({ app_id: APP1, contact_id: contact })).active, true);
  });

  test('another project sees none of it', async () => {
    const proj = await runCli(['projects', 'create', '--name', 'B', '--data-dir', p.dataDir]);
    assert.equal(proj.code, 0, proj.stderr);
    const B = JSON.parse(proj.stdout).project_id;
    const key = await runCli(['keys', 'create', '--project', B, '--data-dir', p.dataDir]);
    assert.equal(key.code, 0, key.stderr);
    const k = JSON.parse(key.stdout);
    const sb = p.sdk({ projectId: B, keyId: k.key_id, keySecret: k.key_secret });

    const contact = id('01JCNT', 90);
    seed(p, pid, [], [contact]);
    const c = await conv({ app_id: APP1, contact_id: contact });
    await sdkRejects(sb.conversation.conversation.get({ conversation_id: c.id }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.conversation.update({ conversation_id: c.id, updateConversationRequestBody: { metadata: 'x' } }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.conversation.stopActive({ conversation_id: c.id }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.conversation.injectMessage({ conversation_id: c.id, injectMessageRequestBody: contactText(contact, 'x') }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.conversation.delete({ conversation_id: c.id }), 404, 'NOT_FOUND');
    await sdkRejects(sb.conversation.conversation.create({ createConversationRequestBody: { app_id: APP1, contact_id: contact } }), 404, 'NOT_FOUND');
    assert.equal((await sb.conversation.conversation.list({})).data.length, 0);
    assert.equal((await sb.conversation.conversation.listRecent({ app_id: APP1 })).data.length, 0);
    // B's token cannot reach A's project at all.
    await sdkRejects(p.sdk({ projectId: pid, keyId: k.key_id, keySecret: k.key_secret }).conversation.conversation.get({ conversation_id: c.id }), 403);
    // A still sees it, unchanged.
    assert.equal((await sinch.conversation.conversation.get({ conversation_id: c.id })).active, true);
  });
});
