// fakes.mjs: faithful fake providers for the channel end-to-end tests, one per provider:
// WhatsApp Cloud API, Messenger Platform, Instagram Messaging (all three Graph API), the
// Viber REST bot API and Google RCS Business Messaging. Each one checks a request the way
// the real API does (method, path, authentication, the JSON fields it requires and their
// limits) and answers in the provider's real response shape: a provider message id on
// success, the provider's own error body otherwise. Each also builds the webhooks the
// provider POSTs (messages and delivery/read receipts) and signs them as it does.
//
// A fake records every request it answered in `calls` ({kind: 'send' | 'check' | 'refused',
// path, query, headers, raw, json, status, response, id, at}); `waitFor(pred)` resolves
// with the first matching call. `failures` maps a recipient to a function giving the
// provider's answer for it (used to script permanent and transient failures); it runs
// after the request passed authentication and validation, where the real API fails too.
import http from 'node:http';
import { createHmac, randomBytes, randomInt } from 'node:crypto';

class Refusal extends Error {
  constructor(status, body, why) {
    super(why);
    this.status = status;
    this.body = body;
  }
}

// Start a fake on a free port. route(call, fake) returns {status, body, kind, id?} or
// throws a Refusal (the provider's error answer).
function startFake(name, route) {
  const calls = [];
  const waiters = [];
  const fake = {
    name,
    calls,
    failures: new Map(),
    waitFor(pred, timeoutMs = 10000) {
      const found = calls.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`${name}: no matching request within ${timeoutMs} ms; got ${calls.length}:\n` +
            calls.map((c) => `  ${c.kind} ${c.status} ${c.method} ${c.url} ${c.raw.slice(0, 160)} -> ${String(c.response).slice(0, 160)}`).join('\n')));
        }, timeoutMs);
        w.resolve = (call) => { clearTimeout(timer); resolve(call); };
        waiters.push(w);
      });
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url, 'http://fake.invalid');
      const call = {
        provider: name, method: req.method, url: req.url, path: decodeURIComponent(u.pathname),
        query: Object.fromEntries(u.searchParams), headers: req.headers, raw, json: undefined, at: Date.now(),
      };
      let out;
      try {
        out = route(call, fake);
      } catch (err) {
        if (!(err instanceof Refusal)) throw err;
        out = { status: err.status, body: err.body, kind: 'refused', error: err.message };
      }
      call.kind = out.kind;
      call.status = out.status;
      call.id = out.id;
      call.error = out.error;
      call.response = typeof out.body === 'string' ? out.body : JSON.stringify(out.body);
      calls.push(call);
      for (const w of [...waiters]) if (w.pred(call)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(call); }
      res.writeHead(out.status, { 'Content-Type': 'application/json; charset=UTF-8' });
      res.end(call.response);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    fake.origin = `http://127.0.0.1:${server.address().port}`;
    fake.close = () => { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); };
    resolve(fake);
  }));
}

// ---------- shared checks ----------

const chars = (s) => [...s].length;
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const bearer = (call) => (call.headers.authorization || '').match(/^Bearer (.+)$/)?.[1];
const trace = () => randomBytes(12).toString('base64').replace(/[+/=]/g, 'A');

function jsonBody(call, refuse) {
  if (!/^application\/json\b/.test(call.headers['content-type'] || '')) refuse('Content-Type must be application/json');
  try { call.json = JSON.parse(call.raw); } catch { refuse('the body is not JSON'); }
  if (!isObj(call.json)) refuse('the body must be a JSON object');
  return call.json;
}

// Test helper: the signature headers of each provider.
export function hubSignature(appSecret, body) {
  return { 'X-Hub-Signature-256': 'sha256=' + createHmac('sha256', appSecret).update(body).digest('hex') };
}
export function viberSignature(authToken, body) {
  return { 'X-Viber-Content-Signature': createHmac('sha256', authToken).update(body).digest('hex') };
}
// RBM signs the base64-decoded message.data of its Pub/Sub push envelope with HMAC-SHA512
// keyed with the webhook's client token.
export function googSignature(clientToken, envelopeBody) {
  const data = Buffer.from(JSON.parse(envelopeBody).message.data, 'base64');
  return { 'X-Goog-Signature': createHmac('sha512', clientToken).update(data).digest('base64') };
}

const unixSeconds = () => String(Math.floor(Date.now() / 1000));

// Meta's webhook bodies escape slashes and every non-ASCII character (emoji as surrogate
// pairs), and sign those exact bytes.
const metaJson = (v) => JSON.stringify(v).replace(/\//g, '\\/').replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));

// ---------- Graph API (WhatsApp, Messenger, Instagram) ----------

function graphError(status, code, message, { subcode, details, type = 'OAuthException', whatsapp = false } = {}) {
  const error = { message, type, code };
  if (subcode) error.error_subcode = subcode;
  if (details || whatsapp) error.error_data = whatsapp ? { messaging_product: 'whatsapp', details: details || message } : { details };
  error.fbtrace_id = trace();
  return { status, body: { error } };
}

function graphRefuser(whatsapp) {
  return (details, code = 100) => {
    const message = { 100: '(#100) Invalid parameter', 131053: '(#131053) Media upload error' }[code] || `(#${code}) Parameter value is not valid`;
    const r = graphError(400, code, message, { details, whatsapp });
    throw new Refusal(r.status, r.body, details);
  };
}

function graphAuth(call, tokens) {
  const token = bearer(call) || call.query.access_token;
  if (!token) {
    const r = graphError(400, 104, 'An access token is required to request this resource.');
    throw new Refusal(r.status, r.body, 'no access token');
  }
  if (!tokens.includes(token)) {
    const r = graphError(401, 190, 'Invalid OAuth access token - Cannot parse access token');
    throw new Refusal(r.status, r.body, 'bad access token');
  }
  return token;
}

// ---- WhatsApp Cloud API ----

const WA_MEDIA = ['image', 'video', 'audio', 'document', 'sticker'];

function waValidate(b, refuse) {
  if (b.messaging_product !== 'whatsapp') refuse('The parameter messaging_product is required.');
  if (b.recipient_type !== undefined && b.recipient_type !== 'individual') refuse('recipient_type must be individual');
  if (typeof b.to !== 'string' || !/^\+?\d{6,15}$/.test(b.to)) refuse('Param to must be a phone number', 131009);
  const type = b.type ?? 'text';
  const v = b[type];
  if (!isObj(v) && !Array.isArray(v)) refuse(`Param ${type} is required.`);
  const len = (s, max, what) => { if (typeof s !== 'string' || !s) refuse(`${what} is required.`); if (chars(s) > max) refuse(`${what} is too long (max ${max})`, 131009); };
  if (type === 'text') len(v.body, 4096, "Param text['body']");
  else if (WA_MEDIA.includes(type)) {
    if (!!v.link === !!v.id) refuse(`Param ${type} needs exactly one of link or id`);
    if (v.link && !/^https?:\/\//.test(v.link)) refuse(`${type}.link must be an http(s) URL`, 131009);
    // Images are JPEG or PNG, stickers WebP. (The real API learns the type when it fetches
    // the link and reports a mismatch later, as a failed status with 131053; the fake
    // judges by the extension, at once.)
    const ext = v.link && new URL(v.link).pathname.match(/\.([A-Za-z0-9]+)$/)?.[1]?.toLowerCase();
    if (ext && type === 'image' && !['jpg', 'jpeg', 'png'].includes(ext)) refuse(`Unsupported Image mime type for .${ext}`, 131053);
    if (ext && type === 'sticker' && ext !== 'webp') refuse(`Unsupported Sticker mime type for .${ext}`, 131053);
    if (v.caption !== undefined && !['image', 'video', 'document'].includes(type)) refuse(`${type} takes no caption`, 131009);
    if (v.caption !== undefined) len(v.caption, 1024, `${type}.caption`);
    if (v.filename !== undefined && type !== 'document') refuse('only documents take a filename', 131009);
  } else if (type === 'location') {
    if (typeof v.latitude !== 'number' || typeof v.longitude !== 'number') refuse('location needs numeric latitude and longitude');
  } else if (type === 'contacts') {
    if (!Array.isArray(v) || !v.length) refuse('contacts must be a non-empty array');
    for (const c of v) {
      if (!c.name?.formatted_name) refuse("Param contacts[0]['name']['formatted_name'] is required.");
      if (!['first_name', 'last_name', 'middle_name', 'prefix', 'suffix'].some((k) => c.name[k])) refuse('contacts need one name part besides formatted_name');
    }
  } else if (type === 'interactive') {
    const t = v.type;
    if (!['button', 'list', 'product_list', 'product', 'cta_url', 'flow'].includes(t)) refuse('interactive.type is not valid', 131009);
    if (t !== 'product') len(v.body?.text, t === 'button' ? 1024 : 4096, 'interactive.body.text');
    if (v.footer !== undefined) len(v.footer.text, 60, 'interactive.footer.text');
    if (v.header !== undefined) {
      if (v.header.type === 'text') len(v.header.text, 60, 'interactive.header.text');
      else if (['image', 'video', 'document'].includes(v.header.type)) { if (!v.header[v.header.type]?.link && !v.header[v.header.type]?.id) refuse('interactive.header media needs a link'); }
      else refuse('interactive.header.type is not valid', 131009);
    }
    if (!isObj(v.action)) refuse('interactive.action is required.');
    if (t === 'button') {
      const bs = v.action.buttons;
      if (!Array.isArray(bs) || bs.length < 1 || bs.length > 3) refuse('interactive.action.buttons must hold 1 to 3 buttons', 131009);
      const ids = new Set(), titles = new Set();
      for (const x of bs) {
        if (x.type !== 'reply') refuse('button type must be reply', 131009);
        len(x.reply?.id, 256, 'button reply.id');
        len(x.reply?.title, 20, 'button reply.title');
        if (ids.has(x.reply.id) || titles.has(x.reply.title)) refuse('button ids and titles must be unique', 131009);
        ids.add(x.reply.id); titles.add(x.reply.title);
      }
    } else if (t === 'list') {
      len(v.action.button, 20, 'interactive.action.button');
      const secs = v.action.sections;
      if (!Array.isArray(secs) || secs.length < 1 || secs.length > 10) refuse('list needs 1 to 10 sections', 131009);
      let rows = 0;
      for (const s of secs) {
        if (secs.length > 1) len(s.title, 24, 'section title');
        for (const r of s.rows || []) { rows++; len(r.id, 200, 'row id'); len(r.title, 24, 'row title'); if (r.description !== undefined) len(r.description, 72, 'row description'); }
      }
      if (rows < 1 || rows > 10) refuse('list needs 1 to 10 rows in all', 131009);
    }
  } else if (type === 'template') {
    if (!v.name || !v.language?.code) refuse('template needs name and language.code');
  } else refuse(`Unsupported message type ${type}`, 131051);
}

export async function startWhatsApp({ phoneNumberId, tokens, version = 'v19.0', wabaId = '102290129340398', displayPhone = '15550100001' }) {
  const refuse = graphRefuser(true);
  const fake = await startFake('WhatsApp', (call, f) => {
    const m = call.path.match(new RegExp(`^/${version}/([^/]+)(/messages)?$`));
    if (!m) { const r = graphError(400, 2500, 'Unknown path components: ' + call.path); throw new Refusal(r.status, r.body, 'unknown path'); }
    graphAuth(call, tokens);
    if (m[1] !== phoneNumberId) {
      const r = graphError(400, 100, `Unsupported ${call.method.toLowerCase()} request. Object with ID '${m[1]}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, { subcode: 33 });
      throw new Refusal(r.status, r.body, 'unknown phone number id');
    }
    if (!m[2] && call.method === 'GET')
      return { kind: 'check', status: 200, body: { verified_name: 'Parley Test', code_verification_status: 'VERIFIED', display_phone_number: '+' + displayPhone, quality_rating: 'GREEN', platform_type: 'CLOUD_API', throughput: { level: 'STANDARD' }, id: phoneNumberId } };
    if (!m[2] || call.method !== 'POST') { const r = graphError(400, 100, 'Unsupported request method'); throw new Refusal(r.status, r.body, 'bad method'); }
    const b = jsonBody(call, (why) => refuse(why));
    waValidate(b, refuse);
    const fail = f.failures.get(b.to)?.(call);
    if (fail) return { kind: 'send', failed: true, ...fail };
    const id = 'wamid.' + randomBytes(30).toString('base64');
    return { kind: 'send', status: 200, id, body: { messaging_product: 'whatsapp', contacts: [{ input: b.to, wa_id: b.to.replace(/^\+/, '') }], messages: [{ id }] } };
  });
  fake.url = `${fake.origin}/${version}`;
  fake.errors = {
    // Test numbers not on the allowed list: a synchronous, permanent Cloud API error.
    notAllowed: () => graphError(400, 131030, '(#131030) Recipient phone number not in allowed list', { details: 'Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.', whatsapp: true }),
    unavailable: () => graphError(503, 131016, '(#131016) Service unavailable', { whatsapp: true }),
  };
  const envelope = (value) => ({ object: 'whatsapp_business_account', entry: [{ id: wabaId, changes: [{ value: { messaging_product: 'whatsapp', metadata: { display_phone_number: displayPhone, phone_number_id: phoneNumberId }, ...value }, field: 'messages' }] }] });
  fake.webhook = {
    // A message from a user: message is the type-specific part, e.g. {type:'text', text:{body}}.
    message({ from, name, id = 'wamid.' + randomBytes(30).toString('base64'), timestamp = unixSeconds(), ...message }) {
      return metaJson(envelope({ contacts: [{ profile: { name }, wa_id: from }], messages: [{ from, id, timestamp, ...message }] }));
    },
    status({ id, status, recipient, timestamp = unixSeconds(), errors }) {
      const s = { id, status, timestamp, recipient_id: recipient };
      if (status === 'sent' || status === 'delivered') {
        s.conversation = { id: randomBytes(16).toString('hex'), origin: { type: 'service' } };
        s.pricing = { billable: true, pricing_model: 'CBP', category: 'service' };
      }
      if (errors) s.errors = errors;
      return metaJson(envelope({ statuses: [s] }));
    },
  };
  return fake;
}

// ---- Messenger Platform and Instagram Messaging (the Send API) ----

function msgrValidateMessage(msg, refuse, { textMax, textBytes, buttonTemplate, phoneButtons }) {
  if (!isObj(msg)) refuse('param message must be an object');
  const has = ['text', 'attachment'].filter((k) => msg[k] !== undefined);
  if (has.length !== 1) refuse('message must have exactly one of text and attachment');
  if (msg.text !== undefined) {
    if (typeof msg.text !== 'string' || !msg.text) refuse('message.text must be a non-empty string');
    const n = textBytes ? Buffer.byteLength(msg.text) : chars(msg.text);
    if (n > textMax) refuse(`message.text is limited to ${textMax} ${textBytes ? 'bytes' : 'characters'}`);
  }
  if (msg.quick_replies !== undefined) {
    if (!Array.isArray(msg.quick_replies) || !msg.quick_replies.length || msg.quick_replies.length > 13) refuse('quick_replies must hold 1 to 13 items');
    for (const q of msg.quick_replies) {
      if (q.content_type !== 'text') continue;
      if (!q.title || chars(q.title) > 20) refuse('quick_replies[].title is required (at most 20 characters)');
      if (!q.payload || chars(q.payload) > 1000) refuse('quick_replies[].payload is required (at most 1000 characters)');
    }
  }
  const button = (x) => {
    if (!x.title || chars(x.title) > 20) refuse('button title is required (at most 20 characters)');
    if (x.type === 'postback') { if (!x.payload) refuse('postback buttons need a payload'); }
    else if (x.type === 'web_url') { if (!/^https?:\/\//.test(x.url || '')) refuse('web_url buttons need a url'); }
    else if (x.type === 'phone_number' && phoneButtons) { if (!/^\+\d+$/.test(x.payload || '')) refuse('phone_number buttons need a +E.164 payload'); }
    else refuse(`button type ${x.type} is not supported`);
  };
  const a = msg.attachment;
  if (a !== undefined) {
    if (['image', 'video', 'audio', 'file'].includes(a.type)) {
      if (!/^https?:\/\//.test(a.payload?.url || '') && !a.payload?.attachment_id) refuse('attachment.payload.url is required');
    } else if (a.type === 'template') {
      const p = a.payload || {};
      if (p.template_type === 'generic') {
        if (!Array.isArray(p.elements) || !p.elements.length || p.elements.length > 10) refuse('generic template needs 1 to 10 elements');
        for (const el of p.elements) {
          if (!el.title || chars(el.title) > 80) refuse('element title is required (at most 80 characters)');
          if (el.subtitle !== undefined && chars(el.subtitle) > 80) refuse('element subtitle is at most 80 characters');
          if (el.buttons !== undefined) { if (el.buttons.length > 3) refuse('at most 3 buttons per element'); el.buttons.forEach(button); }
        }
      } else if (p.template_type === 'button' && buttonTemplate) {
        if (!p.text || chars(p.text) > 640) refuse('button template text is required (at most 640 characters)');
        if (!Array.isArray(p.buttons) || !p.buttons.length || p.buttons.length > 3) refuse('button template needs 1 to 3 buttons');
        p.buttons.forEach(button);
      } else refuse(`template_type ${p.template_type} is not supported`);
    } else refuse(`attachment type ${a.type} is not supported`);
  }
}

const MESSAGING_TYPES = ['RESPONSE', 'UPDATE', 'MESSAGE_TAG'];

function msgrValidateSend(b, refuse, opts) {
  if (!isObj(b.recipient) || typeof b.recipient.id !== 'string' || !b.recipient.id) refuse('param recipient must be non-empty.');
  if (opts.messagingTypeRequired || b.messaging_type !== undefined) {
    if (!MESSAGING_TYPES.includes(b.messaging_type)) refuse('param messaging_type must be one of RESPONSE, UPDATE, MESSAGE_TAG');
    if (b.messaging_type === 'MESSAGE_TAG' && !b.tag) refuse('param tag is required with MESSAGE_TAG');
  }
  if (b.notification_type !== undefined && !['REGULAR', 'SILENT_PUSH', 'NO_PUSH'].includes(b.notification_type)) refuse('notification_type is not valid');
  msgrValidateMessage(b.message, refuse, opts);
}

function msgrWebhook(object, pageId) {
  const entry = (messaging) => metaJson({ object, entry: [{ id: pageId, time: Date.now(), messaging: [messaging] }] });
  return {
    message({ sender, mid = 'm_' + randomBytes(24).toString('base64url'), timestamp = Date.now(), ...message }) {
      return entry({ sender: { id: sender }, recipient: { id: pageId }, timestamp, message: { mid, ...message } });
    },
    delivery({ sender, mids, watermark = Date.now() }) {
      return entry({ sender: { id: sender }, recipient: { id: pageId }, delivery: { mids, watermark } });
    },
    read({ sender, watermark = Date.now(), mid }) {
      return entry({ sender: { id: sender }, recipient: { id: pageId }, timestamp: Date.now(), read: mid ? { mid } : { watermark } });
    },
  };
}

export async function startMessenger({ tokens, version = 'v19.0', pageId = '109876543210987' }) {
  const refuse = graphRefuser(false);
  const opts = { textMax: 2000, textBytes: false, buttonTemplate: true, phoneButtons: true, messagingTypeRequired: true };
  const fake = await startFake('Messenger', (call, f) => {
    if (call.path !== `/${version}/me/messages` && call.path !== `/${version}/me`) { const r = graphError(400, 2500, 'Unknown path components: ' + call.path); throw new Refusal(r.status, r.body, 'unknown path'); }
    graphAuth(call, tokens);
    if (call.path === `/${version}/me`) {
      if (call.method !== 'GET') refuse('Unsupported request method');
      return { kind: 'check', status: 200, body: { name: 'Parley Test Page', id: pageId } };
    }
    if (call.method !== 'POST') refuse('Unsupported request method');
    const b = jsonBody(call, (why) => refuse(why));
    msgrValidateSend(b, refuse, opts);
    const fail = f.failures.get(b.recipient.id)?.(call);
    if (fail) return { kind: 'send', failed: true, ...fail };
    const id = 'm_' + randomBytes(48).toString('base64url');
    return { kind: 'send', status: 200, id, body: { recipient_id: b.recipient.id, message_id: id } };
  });
  fake.url = `${fake.origin}/${version}`;
  fake.errors = {
    notAvailable: () => graphError(400, 551, "(#551) This person isn't available right now.", { subcode: 1545041 }),
    outsideWindow: () => graphError(400, 10, '(#10) This message is sent outside of allowed window.', { subcode: 2018278 }),
  };
  fake.webhook = msgrWebhook('page', pageId);
  return fake;
}

export async function startInstagram({ tokens, version = 'v19.0', igUserId = '17841400000000001' }) {
  const refuse = graphRefuser(false);
  const opts = { textMax: 1000, textBytes: true, buttonTemplate: false, phoneButtons: false, messagingTypeRequired: false };
  const fake = await startFake('Instagram', (call, f) => {
    const m = call.path.match(new RegExp(`^/${version}/(me|\\d+)(/messages)?$`));
    if (!m || (m[1] !== 'me' && m[1] !== igUserId)) { const r = graphError(400, 2500, 'Unknown path components: ' + call.path); throw new Refusal(r.status, r.body, 'unknown path'); }
    graphAuth(call, tokens);
    if (!m[2]) {
      if (call.method !== 'GET') refuse('Unsupported request method');
      const fields = (call.query.fields || 'id').split(',');
      const me = { id: igUserId, username: 'parley.test', user_id: igUserId };
      return { kind: 'check', status: 200, body: Object.fromEntries(fields.filter((k) => k in me).map((k) => [k, me[k]])) };
    }
    if (call.method !== 'POST') refuse('Unsupported request method');
    const b = jsonBody(call, (why) => refuse(why));
    msgrValidateSend(b, refuse, opts);
    const fail = f.failures.get(b.recipient.id)?.(call);
    if (fail) return { kind: 'send', failed: true, ...fail };
    const id = 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx' + randomBytes(24).toString('base64url');
    return { kind: 'send', status: 200, id, body: { recipient_id: b.recipient.id, message_id: id } };
  });
  fake.url = `${fake.origin}/${version}`;
  fake.errors = {
    noUser: () => graphError(400, 100, 'No matching user found', { subcode: 2534014 }),
  };
  fake.webhook = msgrWebhook('instagram', igUserId);
  return fake;
}

// ---------- Viber REST bot API ----------

const VIBER_TYPES = ['text', 'picture', 'video', 'file', 'location', 'contact', 'sticker', 'url', 'rich_media'];

function viberButtons(buttons, refuse, maxRows) {
  if (!Array.isArray(buttons) || !buttons.length) refuse('Buttons must be a non-empty array');
  for (const x of buttons) {
    if (x.Columns !== undefined && (!Number.isInteger(x.Columns) || x.Columns < 1 || x.Columns > 6)) refuse('Button Columns must be 1 to 6');
    if (x.Rows !== undefined && (!Number.isInteger(x.Rows) || x.Rows < 1 || x.Rows > maxRows)) refuse(`Button Rows must be 1 to ${maxRows}`);
    if (x.ActionType !== undefined && !['reply', 'open-url', 'location-picker', 'share-phone', 'none'].includes(x.ActionType)) refuse('Button ActionType is not valid');
    if (typeof x.ActionBody !== 'string' || !x.ActionBody) refuse('Button ActionBody is required');
  }
}

function viberValidate(b, refuse, missing) {
  if (typeof b.receiver !== 'string' || !b.receiver) missing('receiver');
  if (!isObj(b.sender) || typeof b.sender.name !== 'string' || !b.sender.name) missing('sender.name');
  if (chars(b.sender.name) > 28) refuse('sender.name is limited to 28 characters');
  if (b.min_api_version !== undefined && !Number.isInteger(b.min_api_version)) refuse('min_api_version must be an integer');
  if (b.tracking_data !== undefined && (typeof b.tracking_data !== 'string' || b.tracking_data.length > 4096)) refuse('tracking_data must be a string of at most 4096 characters');
  if (!VIBER_TYPES.includes(b.type)) refuse(`type ${b.type} is not supported`);
  const t = b.type;
  if (t === 'text') { if (typeof b.text !== 'string' || !b.text) missing('text'); if (chars(b.text) > 7000) refuse('text is limited to 7000 characters'); }
  if (t === 'picture') { if (!b.media) missing('media'); if (typeof b.text !== 'string' || chars(b.text) > 768) refuse('picture text is a string of at most 768 characters'); }
  if (t === 'url') { if (!b.media) missing('media'); if (chars(b.media) > 2000) refuse('url media is limited to 2000 characters'); }
  if ((t === 'video' || t === 'file') && (!b.media || !b.size)) missing('media and size');
  if (t === 'file' && !b.file_name) missing('file_name');
  if (t === 'location' && (typeof b.location?.lat !== 'number' || typeof b.location?.lon !== 'number')) missing('location.lat and location.lon');
  if (t === 'contact' && (!b.contact?.name || !b.contact?.phone_number)) missing('contact.name and contact.phone_number');
  if (t === 'rich_media') {
    const r = b.rich_media;
    if (!isObj(r) || r.Type !== 'rich_media') missing('rich_media');
    if ((b.min_api_version ?? 1) < 2) refuse('rich_media needs min_api_version 2 or later');
    if (r.ButtonsGroupColumns !== undefined && (r.ButtonsGroupColumns < 1 || r.ButtonsGroupColumns > 6)) refuse('ButtonsGroupColumns must be 1 to 6');
    if (r.ButtonsGroupRows !== undefined && (r.ButtonsGroupRows < 1 || r.ButtonsGroupRows > 7)) refuse('ButtonsGroupRows must be 1 to 7');
    viberButtons(r.Buttons, refuse, 7);
    // each group of ButtonsGroupColumns x ButtonsGroupRows must be filled exactly
    const cells = r.Buttons.reduce((n, x) => n + (x.Columns ?? 6) * (x.Rows ?? 1), 0);
    if (cells % ((r.ButtonsGroupColumns ?? 6) * (r.ButtonsGroupRows ?? 7)) !== 0) refuse('rich_media buttons do not fill their groups');
  }
  if (b.keyboard !== undefined) {
    if (!isObj(b.keyboard) || b.keyboard.Type !== 'keyboard') refuse('keyboard.Type must be keyboard');
    viberButtons(b.keyboard.Buttons, refuse, 2);
  }
}

export async function startViber({ tokens, accountName = 'Parley Bot' }) {
  const viberStatus = (status, message) => ({ status: 200, body: { status, status_message: message, chat_hostname: 'SN-CHAT-05_' } });
  const fake = await startFake('Viber', (call, f) => {
    const bad = (status, message) => { const r = viberStatus(status, message); throw new Refusal(r.status, r.body, message); };
    if (call.method !== 'POST' || !['/pa/send_message', '/pa/get_account_info'].includes(call.path))
      throw new Refusal(404, '<html><body>Not Found</body></html>', 'unknown path');
    const token = call.headers['x-viber-auth-token'];
    if (!token || !tokens.includes(token)) bad(2, 'invalidAuthToken');
    let b;
    try { b = call.json = JSON.parse(call.raw); } catch { bad(3, 'badData'); }
    if (call.path === '/pa/get_account_info')
      return { kind: 'check', status: 200, body: { status: 0, status_message: 'ok', id: 'pa:75346594275468546724', chat_hostname: 'SN-CHAT-05_', name: accountName, uri: 'parleybot', icon: 'http://example.com/icon.png', category: 'Organisations', subcategory: 'Community', location: { lon: 18.0686, lat: 59.3293 }, country: 'SE', webhook: 'https://parley.example/channels/x/viber', event_types: ['delivered', 'seen', 'failed', 'conversation_started'], subscribers_count: 2, members: [] } };
    viberValidate(b, (why) => bad(3, `badData: ${why}`), (what) => bad(4, `missingData: ${what}`));
    const fail = f.failures.get(b.receiver)?.(call);
    if (fail) return { kind: 'send', failed: true, ...fail };
    // message_token is a 64-bit integer, beyond JavaScript's exact range: written literally.
    const id = '5' + Array.from({ length: 18 }, () => randomInt(10)).join('');
    return { kind: 'send', status: 200, id, body: `{"status":0,"status_message":"ok","message_token":${id},"chat_hostname":"SN-CHAT-05_","billing_status":1}` };
  });
  fake.url = `${fake.origin}/pa`;
  fake.errors = {
    notSubscribed: () => viberStatus(6, 'receiverNotSubscribed'),
    notRegistered: () => viberStatus(5, 'receiverNotRegistered'),
  };
  // Callbacks; message_token stays a literal 64-bit integer.
  const cb = (fields, token) => JSON.stringify({ ...fields, message_token: '@@TOKEN@@' }).replace('"@@TOKEN@@"', String(token));
  fake.webhook = {
    message({ sender, name, token = '4' + Array.from({ length: 18 }, () => randomInt(10)).join(''), timestamp = Date.now(), message }) {
      return cb({ event: 'message', timestamp, chat_hostname: 'SN-376_', sender: { id: sender, name, avatar: 'https://media-direct.cdn.viber.com/download_photo?dlid=x', language: 'en', country: 'SE', api_version: 10 }, message, silent: false }, token);
    },
    receipt({ event, user, token, timestamp = Date.now(), desc }) {
      const f = { event, timestamp, chat_hostname: 'SN-448_', user_id: user };
      if (event === 'failed') f.desc = desc || 'failure description';
      return cb(f, token);
    },
  };
  return fake;
}

// ---------- Google RCS Business Messaging ----------

function googleError(status, code, message) {
  return { status: code, body: { error: { code, message, status } } };
}

function rbmValidateSuggestions(list, max, refuse) {
  if (list === undefined) return;
  if (!Array.isArray(list) || list.length > max) refuse(`at most ${max} suggestions`);
  for (const s of list) {
    const kinds = ['reply', 'action'].filter((k) => s[k] !== undefined);
    if (kinds.length !== 1) refuse('a suggestion has exactly one of reply and action');
    const x = s[kinds[0]];
    if (!x.text || chars(x.text) > 25) refuse('suggestion text is required (at most 25 characters)');
    if (!x.postbackData || chars(x.postbackData) > 2048) refuse('suggestion postbackData is required (at most 2048 characters)');
    if (kinds[0] === 'action') {
      const acts = ['dialAction', 'viewLocationAction', 'createCalendarEventAction', 'openUrlAction', 'shareLocationAction'].filter((k) => x[k] !== undefined);
      if (acts.length !== 1) refuse('a suggested action has exactly one action');
      if (x.openUrlAction && !/^https?:\/\//.test(x.openUrlAction.url || '')) refuse('openUrlAction.url is required');
      if (x.dialAction && !/^\+\d+$/.test(x.dialAction.phoneNumber || '')) refuse('dialAction.phoneNumber must be E.164');
    }
  }
}

function rbmValidateCard(cc, refuse) {
  if (!isObj(cc)) refuse('cardContent is required');
  if (cc.title !== undefined && chars(cc.title) > 200) refuse('title is limited to 200 characters');
  if (cc.description !== undefined && chars(cc.description) > 2000) refuse('description is limited to 2000 characters');
  if (cc.media !== undefined) {
    if (!['SHORT', 'MEDIUM', 'TALL'].includes(cc.media.height)) refuse('media.height must be SHORT, MEDIUM or TALL');
    if (!/^https?:\/\//.test(cc.media.contentInfo?.fileUrl || '')) refuse('media.contentInfo.fileUrl is required');
  }
  if (cc.title === undefined && cc.description === undefined && cc.media === undefined) refuse('a card needs a title, description or media');
  rbmValidateSuggestions(cc.suggestions, 4, refuse);
}

function rbmValidate(b, refuse) {
  const c = b.contentMessage;
  if (!isObj(c)) refuse('contentMessage is required');
  const kinds = ['text', 'fileName', 'uploadedRbmFile', 'richCard', 'contentInfo'].filter((k) => c[k] !== undefined);
  if (kinds.length !== 1) refuse('contentMessage needs exactly one of text, fileName, uploadedRbmFile, richCard and contentInfo');
  if (c.text !== undefined && (typeof c.text !== 'string' || !c.text || chars(c.text) > 3072)) refuse('text is a non-empty string of at most 3072 characters');
  if (c.contentInfo !== undefined && !/^https?:\/\//.test(c.contentInfo.fileUrl || '')) refuse('contentInfo.fileUrl is required');
  if (c.richCard !== undefined) {
    const rc = c.richCard;
    if (rc.standaloneCard) {
      if (!['VERTICAL', 'HORIZONTAL'].includes(rc.standaloneCard.cardOrientation)) refuse('cardOrientation is required');
      rbmValidateCard(rc.standaloneCard.cardContent, refuse);
    } else if (rc.carouselCard) {
      if (!['SMALL', 'MEDIUM'].includes(rc.carouselCard.cardWidth)) refuse('cardWidth is required');
      const cs = rc.carouselCard.cardContents;
      if (!Array.isArray(cs) || cs.length < 2 || cs.length > 10) refuse('a carousel holds 2 to 10 cards');
      cs.forEach((cc) => rbmValidateCard(cc, refuse));
    } else refuse('richCard needs standaloneCard or carouselCard');
  }
  rbmValidateSuggestions(c.suggestions, 11, refuse);
}

export async function startRbm({ tokens, version = 'v1' }) {
  // tokens: {token: agentId}; the service account behind a token may act for that agent only.
  const seen = new Set();
  const fake = await startFake('RBM', (call, f) => {
    const g = (status, code, message) => { const r = googleError(status, code, message); throw new Refusal(r.status, r.body, message); };
    const m = call.path.match(new RegExp(`^/${version}/phones/([^/]+)/(agentMessages|capabilities)$`));
    if (!m) g('NOT_FOUND', 404, 'Method not found.');
    const token = bearer(call);
    if (!token || !(token in tokens))
      g('UNAUTHENTICATED', 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.');
    if (call.query.agentId !== tokens[token]) g('PERMISSION_DENIED', 403, 'The caller does not have permission');
    const phone = m[1];
    if (!/^\+[1-9]\d{2,14}$/.test(phone)) g('INVALID_ARGUMENT', 400, 'Request contains an invalid argument.');
    if (m[2] === 'capabilities') {
      if (call.method !== 'GET') g('NOT_FOUND', 404, 'Method not found.');
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(call.query.requestId || '')) g('INVALID_ARGUMENT', 400, 'requestId must be a UUID');
      if (phone === '+10000000000') return { kind: 'check', status: 404, body: googleError('NOT_FOUND', 404, 'Requested entity was not found.').body };
      return { kind: 'check', status: 200, body: { features: ['RICHCARD_STANDALONE', 'RICHCARD_CAROUSEL', 'ACTION_CREATE_CALENDAR_EVENT', 'ACTION_DIAL', 'ACTION_OPEN_URL', 'ACTION_SHARE_LOCATION', 'ACTION_VIEW_LOCATION'] } };
    }
    if (call.method !== 'POST') g('NOT_FOUND', 404, 'Method not found.');
    const id = call.query.messageId;
    if (!id) g('INVALID_ARGUMENT', 400, 'Request contains an invalid argument.');
    const b = jsonBody(call, () => g('INVALID_ARGUMENT', 400, 'Invalid JSON payload received.'));
    rbmValidate(b, (why) => g('INVALID_ARGUMENT', 400, `Request contains an invalid argument: ${why}`));
    const fail = f.failures.get(phone)?.(call);
    if (fail) return { kind: 'send', failed: true, ...fail };
    if (phone === '+10000000000') g('NOT_FOUND', 404, 'Requested entity was not found.');
    if (seen.has(id)) g('ALREADY_EXISTS', 409, 'Requested entity already exists');
    seen.add(id);
    return { kind: 'send', status: 200, id, body: { name: `phones/${phone}/agentMessages/${id}`, sendTime: new Date().toISOString().replace('Z', '123456Z'), contentMessage: b.contentMessage } };
  });
  fake.url = `${fake.origin}/${version}`;
  fake.errors = {
    notCapable: () => googleError('NOT_FOUND', 404, 'Requested entity was not found.'),
    unavailable: () => googleError('UNAVAILABLE', 503, 'The service is currently unavailable.'),
  };
  // Pub/Sub push envelopes around RBM events.
  const envelope = (event, pubsubId = String(randomInt(1e9, 1e10)), now = new Date().toISOString()) => JSON.stringify({
    message: { attributes: { message_type: event.eventType ? 'EVENT' : 'USER_MESSAGE' }, data: Buffer.from(JSON.stringify(event)).toString('base64'), messageId: pubsubId, message_id: pubsubId, publishTime: now, publish_time: now },
    subscription: 'projects/rbm-parley-test/subscriptions/rbm-parley-test',
  });
  fake.webhook = {
    envelope,
    message({ from, agentId, messageId = 'MxQc' + randomBytes(12).toString('base64url'), ...content }) {
      return envelope({ senderPhoneNumber: from, messageId, sendTime: new Date().toISOString().replace('Z', '123456Z'), agentId, ...content });
    },
    event({ from, agentId, eventType, messageId }) {
      return envelope({ senderPhoneNumber: from, eventType, eventId: 'Ms' + randomBytes(12).toString('base64url'), messageId, sendTime: new Date().toISOString(), agentId });
    },
  };
  return fake;
}
