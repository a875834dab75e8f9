// send_batch.test.mjs: messages:send through the group-commit writer (store.group_commit).
// Many sends at once share transactions; each still gets its own answer: 200 only for a
// message that is stored, the precise 400/404 for a bad one (whether the HTTP thread or
// the writer finds the problem) with nothing stored for it, and a bad send never undoes
// the good ones committed with it. With store.group_commit = 0 the same requests commit
// one by one on the HTTP threads, with the same answers.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startParley } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const TG_TOKEN = '123456:BATCH';

for (const groupCommit of ['256', '0']) {
  describe(`messages:send with store.group_commit = ${groupCommit}`, () => {
    let p, fake, app, smsApp;
    before(async () => {
      fake = await startReceiver();
      fake.respond((rec) => {
        const body = rec.body ? JSON.parse(rec.body) : {};
        return { status: 200, body: JSON.stringify({ ok: true, result: { message_id: 1, chat: { id: Number(body.chat_id) }, date: 1700000000 } }) };
      });
      p = await startParley({ env: { PARLEY_CHANNELS_TELEGRAM_URL: fake.url, PARLEY_STORE_GROUP_COMMIT: groupCommit } });
      const created = await p.api('POST', `/v1/projects/${p.init.project_id}/apps`, { body: {
        display_name: 'batch', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: TG_TOKEN } }] } });
      assert.equal(created.status, 200, created.text);
      app = created.json;
      const sms = await p.api('POST', `/v1/projects/${p.init.project_id}/apps`, { body: {
        display_name: 'sms only', channel_credentials: [{ channel: 'SMS', static_bearer: { claimed_identity: 'smsc1', token: 'x' } }] } });
      assert.equal(sms.status, 200, sms.text);
      smsApp = sms.json;
    });
    after(async () => { await p.stop(); await fake.close(); });

    test('concurrent sends: every good one is stored and answered 200, every bad one gets its own error', async () => {
      const path = `/v1/projects/${p.init.project_id}/messages:send`;
      const good = (i) => ({ app_id: app.id, recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: String(7000 + (i % 5)) }] } }, message: { text_message: { text: `batch ${i}` } } });
      const kinds = [];
      for (let i = 0; i < 60; i++) {
        switch (i % 6) {
          case 1: kinds.push({ want: 400, re: /message/, body: { app_id: app.id, recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '1' }] } } } }); break; // HTTP thread: no message
          case 3: kinds.push({ want: 404, re: /contact 01ARZ3NDEKTSV4RRFFQ69G5FAV not found/, body: { app_id: app.id, recipient: { contact_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }, message: { text_message: { text: `lost ${i}` } } } }); break; // writer: unknown contact
          case 5: kinds.push({ want: 400, re: /no identity on any channel/, body: { app_id: smsApp.id, recipient: { identified_by: { channel_identities: [{ channel: 'TELEGRAM', identity: '9' }] } }, message: { text_message: { text: `nochannel ${i}` } } } }); break; // writer: no usable channel
          default: kinds.push({ want: 200, body: good(i) });
        }
      }
      const res = await Promise.all(kinds.map((k) => p.api('POST', path, { body: k.body })));
      const ids = [];
      res.forEach((r, i) => {
        assert.equal(r.status, kinds[i].want, `request ${i}: ${r.text}`);
        if (kinds[i].want === 200) {
          assert.match(r.json.message_id, /^[0-9A-Z]{26}$/);
          assert.ok(r.json.accepted_time);
          ids.push([r.json.message_id, kinds[i].body.message.text_message.text]);
        } else {
          assert.equal(r.json.error.code, kinds[i].want);
          assert.match(r.json.error.message, kinds[i].re);
        }
      });
      assert.equal(ids.length, 30);
      for (const [id, text] of ids) {
        const m = await p.api('GET', `/v1/projects/${p.init.project_id}/messages/${id}`);
        assert.equal(m.status, 200, m.text);
        assert.equal(m.json.app_message.text_message.text, text);
      }
      // Nothing of the refused ones was stored.
      const list = await p.api('GET', `/v1/projects/${p.init.project_id}/messages?page_size=1000`);
      assert.equal(list.status, 200);
      assert.equal(list.json.messages.length, 30);
      assert.ok(!list.text.includes('lost ') && !list.text.includes('nochannel '));
      // And the good ones are delivered.
      const sent = () => fake.requests.filter((r) => r.url === `/bot${TG_TOKEN}/sendMessage`);
      for (let i = 0; i < 100 && sent().length < 30; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(sent().length, 30);
      if (groupCommit !== '0') {
        const m = await p.api('GET', '/metrics', { auth: 'none' });
        const units = Number(m.text.match(/parley_group_commit_units_total (\d+)/)[1]);
        const batches = Number(m.text.match(/parley_group_commits_total (\d+)/)[1]);
        assert.ok(units >= 50, 'the writer saw the 50 sends that passed the HTTP checks (and dispatcher turns)');
        assert.ok(batches >= 1 && batches <= units);
      }
    });
  });
}
