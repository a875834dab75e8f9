// apps.test.mjs: the Conversation API's apps through the official SDK: create with every
// supported channel's credential type, get, list, update (mask, no mask, credentials,
// retention), delete, project isolation, secrets never returned in full, and bad input
// that must be rejected without writing anything.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startParley, runCli, sdkRejects } from './lib/parley.mjs';

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

// Long enough that convo_mask_secret keeps only 3 + 2 characters.
const TOKENS = {
  SMS: 'sms-token-0123456789abcdef',
  WHATSAPP: 'wa-token-0123456789abcdef',
  RCS: 'rcs-token-0123456789abcdef',
  VIBERBM: 'viber-token-0123456789abcdef',
  MESSENGER: 'fb-token-0123456789abcdef',
  INSTAGRAM: 'ig-token-0123456789abcdef',
  TELEGRAM: 'tg-token-0123456789abcdef',
};
const CALLBACK_SECRET = 'callback-secret-0123456789';
const OVERRIDE_SECRET = 'override-secret-0123456789';

function allChannelCredentials() {
  return [
    { channel: 'SMS', static_bearer: { claimed_identity: 'sms-plan-1', token: TOKENS.SMS }, callback_secret: CALLBACK_SECRET },
    { channel: 'WHATSAPP', static_bearer: { claimed_identity: '+46700000001', token: TOKENS.WHATSAPP } },
    { channel: 'RCS', static_bearer: { claimed_identity: 'rcs-agent', token: TOKENS.RCS } },
    { channel: 'VIBERBM', static_bearer: { claimed_identity: 'viber-sender', token: TOKENS.VIBERBM } },
    { channel: 'MESSENGER', static_token: { token: TOKENS.MESSENGER } },
    { channel: 'INSTAGRAM', instagram_credentials: { token: TOKENS.INSTAGRAM, business_account_id: 'ig-biz-1' } },
    { channel: 'TELEGRAM', telegram_credentials: { token: TOKENS.TELEGRAM } },
  ];
}

// Credential states move on their own (a background check with the provider), so whole-app
// comparisons leave them out after checking each is a valid state.
function noState(app) {
  return { ...app, channel_credentials: (app.channel_credentials || []).map(({ state, ...c }) => {
    assert.ok(['PENDING', 'ACTIVE', 'FAILING'].includes(state.status), JSON.stringify(state));
    return c;
  }) };
}

function assertNoSecrets(obj) {
  const text = JSON.stringify(obj);
  for (const t of [...Object.values(TOKENS), CALLBACK_SECRET, OVERRIDE_SECRET, 'replacement-token-0123456789'])
    assert.ok(!text.includes(t), `response contains a secret in full: ${t}`);
}

function masked(secret) {
  return secret.slice(0, 3) + '*'.repeat(secret.length - 5) + secret.slice(-2);
}

describe('apps', () => {
  let p, sinch;
  before(async () => {
    p = await startParley();
    sinch = p.sdk();
  });
  after(async () => {
    await p.stop();
  });

  const listIds = async () => (await sinch.conversation.app.list({})).apps.map((a) => a.id);

  test('create with every supported channel; defaults; masked secrets', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: { display_name: 'All channels', channel_credentials: allChannelCredentials() },
    });
    assert.match(app.id, ULID);
    assert.equal(app.display_name, 'All channels');
    assert.deepEqual(app.channel_credentials.map((c) => c.channel),
      ['SMS', 'WHATSAPP', 'RCS', 'VIBERBM', 'MESSENGER', 'INSTAGRAM', 'TELEGRAM']);
    const [sms, wa, rcs, viber, fb, ig, tg] = app.channel_credentials;
    assert.deepEqual(sms.static_bearer, { claimed_identity: 'sms-plan-1', token: masked(TOKENS.SMS) });
    assert.equal(sms.callback_secret, masked(CALLBACK_SECRET));
    assert.deepEqual(wa.static_bearer, { claimed_identity: '+46700000001', token: masked(TOKENS.WHATSAPP) });
    assert.equal(wa.callback_secret, undefined);
    assert.deepEqual(rcs.static_bearer, { claimed_identity: 'rcs-agent', token: masked(TOKENS.RCS) });
    assert.deepEqual(viber.static_bearer, { claimed_identity: 'viber-sender', token: masked(TOKENS.VIBERBM) });
    assert.deepEqual(fb.static_token, { token: masked(TOKENS.MESSENGER) });
    assert.deepEqual(ig.instagram_credentials, { token: masked(TOKENS.INSTAGRAM), business_account_id: 'ig-biz-1' });
    assert.deepEqual(tg.telegram_credentials, { token: masked(TOKENS.TELEGRAM) });
    for (const c of app.channel_credentials) {
      assert.equal(c.credential_ordinal_number, 0);
      assert.deepEqual(c.state, { status: 'PENDING', description: '' }, 'new credentials start PENDING');
      assert.equal(c.channel_known_id, undefined);
    }
    assert.equal(app.conversation_metadata_report_view, 'NONE');
    assert.equal(app.processing_mode, 'CONVERSATION');
    assert.deepEqual(app.retention_policy, { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 180 });
    assert.deepEqual(app.dispatch_retention_policy, { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 0 });
    assert.deepEqual(app.rate_limits, { inbound: 25, outbound: 25, webhooks: 25 });
    assert.deepEqual(app.queue_stats, { outbound_size: 0, outbound_limit: 500000 });
    assert.deepEqual(app.smart_conversation, { enabled: false });
    assert.deepEqual(app.persist_message_status, { enabled: false });
    assert.deepEqual(app.message_search, { enabled: false });
    assert.deepEqual(app.callback_settings, {});
    assert.equal(app.delivery_report_based_fallback, undefined);
    assert.equal(app.message_retry_settings, undefined);
    assertNoSecrets(app);

    const got = await sinch.conversation.app.get({ app_id: app.id });
    assert.deepEqual(noState(got), noState(app));
  });

  test('create with every setting; rate_limits from the client are ignored', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: {
        display_name: 'Dispatcher ✓',
        channel_credentials: [
          { channel: 'SMS', static_bearer: { claimed_identity: 'a', token: TOKENS.SMS } },
          { channel: 'SMS', static_bearer: { claimed_identity: 'b', token: TOKENS.SMS }, credential_ordinal_number: 1 },
        ],
        conversation_metadata_report_view: 'FULL',
        retention_policy: { retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 3650 },
        dispatch_retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 7 },
        processing_mode: 'DISPATCH',
        smart_conversation: { enabled: true },
        callback_settings: { secret_for_overridden_callback_urls: OVERRIDE_SECRET },
        delivery_report_based_fallback: { enabled: true, delivery_report_waiting_time: 120 },
        message_retry_settings: { retry_duration: 300 },
        persist_message_status: { enabled: true },
        message_search: { enabled: true },
        rate_limits: { inbound: 1000, outbound: 1000, webhooks: 1000 },
      },
    });
    assert.equal(app.display_name, 'Dispatcher ✓');
    assert.deepEqual(app.channel_credentials.map((c) => [c.channel, c.credential_ordinal_number, c.static_bearer.claimed_identity]),
      [['SMS', 0, 'a'], ['SMS', 1, 'b']]);
    assert.equal(app.conversation_metadata_report_view, 'FULL');
    assert.deepEqual(app.retention_policy, { retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 3650 });
    assert.deepEqual(app.dispatch_retention_policy, { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 7 });
    assert.equal(app.processing_mode, 'DISPATCH');
    assert.deepEqual(app.smart_conversation, { enabled: true });
    assert.deepEqual(app.callback_settings, { secret_for_overridden_callback_urls: masked(OVERRIDE_SECRET) });
    assert.deepEqual(app.delivery_report_based_fallback, { enabled: true, delivery_report_waiting_time: 120 });
    assert.deepEqual(app.message_retry_settings, { retry_duration: 300 });
    assert.deepEqual(app.persist_message_status, { enabled: true });
    assert.deepEqual(app.message_search, { enabled: true });
    assert.deepEqual(app.rate_limits, { inbound: 25, outbound: 25, webhooks: 25 });
    assertNoSecrets(app);
    assert.deepEqual(noState(await sinch.conversation.app.get({ app_id: app.id })), noState(app));
  });

  test('an app may start with no credentials; list is in id order and masked', async () => {
    const empty = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'Empty', channel_credentials: [] } });
    assert.deepEqual(empty.channel_credentials, []);
    const list = await sinch.conversation.app.list({});
    assert.ok(Array.isArray(list.apps));
    const ids = list.apps.map((a) => a.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.ok(ids.includes(empty.id));
    assert.ok(list.apps.length >= 3);
    assertNoSecrets(list);
    const fromList = list.apps.find((a) => a.id === empty.id);
    assert.deepEqual(fromList, await sinch.conversation.app.get({ app_id: empty.id }));
  });

  test('update with a mask changes only the listed fields', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: {
        display_name: 'Masked', channel_credentials: allChannelCredentials().slice(0, 2),
        smart_conversation: { enabled: true },
      },
    });
    const upd = await sinch.conversation.app.update({
      app_id: app.id,
      update_mask: ['display_name', 'smart_conversation'],
      // processing_mode is in the body but not in the mask: not applied. smart_conversation
      // is in the mask but not in the body: cleared to its default.
      appUpdateRequestBody: { display_name: 'Masked 2', processing_mode: 'DISPATCH' },
    });
    assert.equal(upd.display_name, 'Masked 2');
    assert.equal(upd.processing_mode, 'CONVERSATION');
    assert.deepEqual(upd.smart_conversation, { enabled: false });
    assert.deepEqual(noState(upd).channel_credentials, noState(app).channel_credentials);
    assert.deepEqual(noState(await sinch.conversation.app.get({ app_id: app.id })), noState(upd));

    const two = await sinch.conversation.app.update({
      app_id: app.id,
      update_mask: ['conversation_metadata_report_view', 'message_retry_settings'],
      appUpdateRequestBody: { conversation_metadata_report_view: 'FULL', message_retry_settings: { retry_duration: 60 }, display_name: 'ignored' },
    });
    assert.equal(two.conversation_metadata_report_view, 'FULL');
    assert.deepEqual(two.message_retry_settings, { retry_duration: 60 });
    assert.equal(two.display_name, 'Masked 2');
  });

  test('update without a mask changes every field in the body; retention; credentials replaced', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: { display_name: 'NoMask', channel_credentials: allChannelCredentials() },
    });
    const ret = await sinch.conversation.app.update({
      app_id: app.id,
      appUpdateRequestBody: {
        retention_policy: { retention_type: 'CONVERSATION_EXPIRE_POLICY', ttl_days: 30 },
        delivery_report_based_fallback: { enabled: true },
      },
    });
    assert.deepEqual(ret.retention_policy, { retention_type: 'CONVERSATION_EXPIRE_POLICY', ttl_days: 30 });
    assert.deepEqual(ret.delivery_report_based_fallback, { enabled: true });
    assert.equal(ret.display_name, 'NoMask');
    assert.deepEqual(noState(ret).channel_credentials, noState(app).channel_credentials);

    const repl = await sinch.conversation.app.update({
      app_id: app.id,
      appUpdateRequestBody: {
        channel_credentials: [
          { channel: 'TELEGRAM', telegram_credentials: { token: 'replacement-token-0123456789' }, credential_ordinal_number: 2 },
          { channel: 'WHATSAPP', static_bearer: { claimed_identity: '+46700000009', token: TOKENS.WHATSAPP } },
        ],
      },
    });
    assert.deepEqual(repl.channel_credentials.map((c) => [c.channel, c.credential_ordinal_number]), [['TELEGRAM', 2], ['WHATSAPP', 0]]);
    assert.deepEqual(repl.channel_credentials[0].telegram_credentials, { token: masked('replacement-token-0123456789') });
    assert.equal(repl.channel_credentials[1].static_bearer.claimed_identity, '+46700000009');
    assert.deepEqual(repl.retention_policy, ret.retention_policy);
    assertNoSecrets(repl);
    assert.deepEqual(await sinch.conversation.app.get({ app_id: app.id }), repl);

    // Sending back what a GET returned (masked secrets) is accepted and changes nothing.
    const same = await sinch.conversation.app.update({
      app_id: app.id, update_mask: ['channel_credentials'],
      appUpdateRequestBody: { channel_credentials: repl.channel_credentials },
    });
    assert.deepEqual(same, repl);

    const cleared = await sinch.conversation.app.update({
      app_id: app.id, update_mask: ['channel_credentials'], appUpdateRequestBody: {},
    });
    assert.deepEqual(cleared.channel_credentials, []);
  });

  test('delete answers {} and the app is gone', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: { display_name: 'Doomed', channel_credentials: allChannelCredentials().slice(0, 1) },
    });
    assert.ok((await listIds()).includes(app.id));
    assert.deepEqual(await sinch.conversation.app.delete({ app_id: app.id }), {});
    const err = await sdkRejects(sinch.conversation.app.get({ app_id: app.id }), 404, 'NOT_FOUND');
    assert.match(err.message, new RegExp(`app ${app.id} not found`));
    assert.ok(!(await listIds()).includes(app.id));
    await sdkRejects(sinch.conversation.app.delete({ app_id: app.id }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.app.update({ app_id: app.id, appUpdateRequestBody: { display_name: 'x' } }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.app.get({ app_id: '01ZZZZZZZZZZZZZZZZZZZZZZZZ' }), 404, 'NOT_FOUND');
    await sdkRejects(sinch.conversation.app.get({ app_id: 'not-an-id' }), 400, 'INVALID_ARGUMENT');
  });

  test('delete removes identities scoped to the app and its conversations; ids are case-insensitive', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: { display_name: 'Scoped', channel_credentials: allChannelCredentials().slice(0, 1) },
    });
    assert.equal((await sinch.conversation.app.get({ app_id: app.id.toLowerCase() })).id, app.id);
    const contact = await sinch.conversation.contact.create({
      contactCreateRequestBody: {
        language: 'EN',
        channel_identities: [
          { channel: 'MESSENGER', identity: 'psid-1', app_id: app.id },
          { channel: 'SMS', identity: '+46700000077' },
        ],
      },
    });
    const conv = await sinch.conversation.conversation.create({
      createConversationRequestBody: { app_id: app.id, contact_id: contact.id },
    });
    await sinch.conversation.app.delete({ app_id: app.id });
    const after = await sinch.conversation.contact.get({ contact_id: contact.id });
    assert.deepEqual(after.channel_identities, [{ channel: 'SMS', identity: '+46700000077' }]);
    await sdkRejects(sinch.conversation.conversation.get({ conversation_id: conv.id }), 404, 'NOT_FOUND');
  });

  test("another project's app is not found", async () => {
    const appA = await sinch.conversation.app.create({
      appCreateRequestBody: { display_name: 'Project A app', channel_credentials: allChannelCredentials().slice(0, 1) },
    });
    const proj = await runCli(['projects', 'create', '--name', 'B', '--data-dir', p.dataDir]);
    assert.equal(proj.code, 0, proj.stderr);
    const projectId = JSON.parse(proj.stdout).project_id;
    const key = await runCli(['keys', 'create', '--project', projectId, '--data-dir', p.dataDir]);
    assert.equal(key.code, 0, key.stderr);
    const { key_id: keyId, key_secret: keySecret } = JSON.parse(key.stdout);
    const b = p.sdk({ projectId, keyId, keySecret });
    assert.deepEqual(await b.conversation.app.list({}), { apps: [] });
    await sdkRejects(b.conversation.app.get({ app_id: appA.id }), 404, 'NOT_FOUND');
    await sdkRejects(b.conversation.app.update({ app_id: appA.id, appUpdateRequestBody: { display_name: 'stolen' } }), 404, 'NOT_FOUND');
    await sdkRejects(b.conversation.app.delete({ app_id: appA.id }), 404, 'NOT_FOUND');
    const own = await b.conversation.app.create({ appCreateRequestBody: { display_name: 'B app', channel_credentials: [] } });
    assert.deepEqual((await b.conversation.app.list({})).apps.map((a) => a.id), [own.id]);
    assert.ok(!(await listIds()).includes(own.id));
    const stillA = await sinch.conversation.app.get({ app_id: appA.id });
    assert.equal(stillA.display_name, 'Project A app');
  });

  test('bad create input is 400 and writes nothing', async () => {
    const before = await listIds();
    const base = () => ({ display_name: 'Bad', channel_credentials: allChannelCredentials().slice(0, 2) });
    const cases = [
      [{ ...base(), retention_policy: { ttl_days: 0 } }, /retention_policy\.ttl_days must be between 1 and 3650, got 0/],
      [{ ...base(), retention_policy: { ttl_days: 3651 } }, /retention_policy\.ttl_days must be between 1 and 3650, got 3651/],
      [{ ...base(), retention_policy: { retention_type: 'FOREVER' } }, /retention_policy\.retention_type.*MESSAGE_EXPIRE_POLICY/],
      [{ ...base(), dispatch_retention_policy: { ttl_days: 8 } }, /dispatch_retention_policy\.ttl_days/],
      [{ ...base(), channel_credentials: [{ channel: 'PIGEON', static_bearer: { claimed_identity: 'a', token: 'b' } }] }, /channel_credentials\[0\]\.channel: unknown channel/],
      [{ ...base(), channel_credentials: [{ channel: 'KAKAOTALK', kakaotalk_credentials: { kakaotalk_plus_friend_id: 'a', kakaotalk_sender_key: 'b' } }] }, /KAKAOTALK is not supported by Parley/],
      [{ ...base(), channel_credentials: [base().channel_credentials[0], { channel: 'MESSENGER', static_bearer: { claimed_identity: 'a', token: 'b' } }] }, /channel_credentials\[1\]\.static_bearer is not valid for channel MESSENGER/],
      [{ ...base(), channel_credentials: [base().channel_credentials[0], { channel: 'TELEGRAM' }] }, /missing required field channel_credentials\[1\]\.telegram_credentials/],
      [{ ...base(), channel_credentials: [base().channel_credentials[0], { channel: 'SMS', static_bearer: { claimed_identity: 'x' }, credential_ordinal_number: 1 }] }, /missing required field channel_credentials\[1\]\.static_bearer\.token/],
      [{ ...base(), channel_credentials: [base().channel_credentials[0], base().channel_credentials[0]] }, /channel_credentials\[1\] duplicates channel_credentials\[0\]/],
      [{ ...base(), channel_credentials: [{ ...base().channel_credentials[0], credential_ordinal_number: -1 }] }, /credential_ordinal_number/],
      [{ ...base(), channel_credentials: { channel: 'SMS' } }, /channel_credentials must be an array/],
      [{ channel_credentials: [] }, /missing required field display_name/],
      [{ display_name: 'No credentials' }, /missing required field channel_credentials/],
      [{ ...base(), display_name: '' }, /display_name must be 1 to 100 characters/],
      [{ ...base(), display_name: 'x'.repeat(101) }, /display_name must be 1 to 100 characters, got 101/],
      [{ ...base(), processing_mode: 'BATCH' }, /processing_mode has unknown value "BATCH"; expected one of: CONVERSATION, DISPATCH/],
      [{ ...base(), conversation_metadata_report_view: 'SOME' }, /conversation_metadata_report_view/],
      [{ ...base(), smart_conversation: { enabled: 'yes' } }, /smart_conversation\.enabled must be a boolean/],
      [{ ...base(), delivery_report_based_fallback: { enabled: true, delivery_report_waiting_time: 59 } }, /delivery_report_waiting_time/],
      [{ ...base(), message_retry_settings: { retry_duration: 'soon' } }, /message_retry_settings\.retry_duration must be an integer/],
      [{ ...base(), callback_settings: { secret_for_overridden_callback_urls: 5 } }, /secret_for_overridden_callback_urls must be a string/],
      [{ ...base(), processing_mode: 'DISPATCH', retention_policy: { retention_type: 'CONVERSATION_EXPIRE_POLICY' } }, /CONVERSATION_EXPIRE_POLICY cannot be used with processing_mode DISPATCH/],
    ];
    for (const [body, re] of cases) {
      const err = await sdkRejects(sinch.conversation.app.create({ appCreateRequestBody: body }), 400, 'INVALID_ARGUMENT');
      assert.match(err.message, re, JSON.stringify(body));
    }
    assert.deepEqual(await listIds(), before);
  });

  test('bad update input is 400 and changes nothing', async () => {
    const app = await sinch.conversation.app.create({
      appCreateRequestBody: { display_name: 'Stable', channel_credentials: allChannelCredentials().slice(0, 3), processing_mode: 'DISPATCH' },
    });
    const snapshot = await sinch.conversation.app.get({ app_id: app.id });
    const idsBefore = await listIds();
    const cases = [
      [{ update_mask: ['display_name', 'colour'], appUpdateRequestBody: { display_name: 'New' } }, /update_mask: unknown path "colour"/],
      [{ appUpdateRequestBody: { retention_policy: { retention_type: 'CONVERSATION_EXPIRE_POLICY' } } }, /cannot be used with processing_mode DISPATCH/],
      [{ appUpdateRequestBody: { retention_policy: { ttl_days: 0 } } }, /retention_policy\.ttl_days/],
      [{ appUpdateRequestBody: { display_name: 'y'.repeat(101) } }, /display_name/],
      [{ update_mask: ['display_name'], appUpdateRequestBody: {} }, /missing required field display_name/],
      [{ appUpdateRequestBody: { processing_mode: 'LATER' } }, /processing_mode/],
      // Valid first credential, bad second: the list must not be half-replaced.
      [{ appUpdateRequestBody: { display_name: 'Half', channel_credentials: [
        { channel: 'TELEGRAM', telegram_credentials: { token: 'tok-0123456789abc' } },
        { channel: 'INSTAGRAM', static_token: { token: 'tok-0123456789abc' } }] } }, /channel_credentials\[1\]\.static_token is not valid for channel INSTAGRAM/],
    ];
    for (const [req, re] of cases) {
      const err = await sdkRejects(sinch.conversation.app.update({ app_id: app.id, ...req }), 400, 'INVALID_ARGUMENT');
      assert.match(err.message, re, JSON.stringify(req));
    }
    assert.deepEqual(noState(await sinch.conversation.app.get({ app_id: app.id })), noState(snapshot));
    assert.deepEqual(await listIds(), idsBefore);

    // Leaving DISPATCH and choosing CONVERSATION_EXPIRE_POLICY together is fine.
    const ok = await sinch.conversation.app.update({
      app_id: app.id,
      appUpdateRequestBody: { processing_mode: 'CONVERSATION', retention_policy: { retention_type: 'CONVERSATION_EXPIRE_POLICY', ttl_days: 10 } },
    });
    assert.equal(ok.processing_mode, 'CONVERSATION');
    assert.deepEqual(ok.retention_policy, { retention_type: 'CONVERSATION_EXPIRE_POLICY', ttl_days: 10 });
  });
});
