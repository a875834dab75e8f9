#!/usr/bin/env node
// bench/messaging_fake.mjs: a minimal, fast stand-in for the Telegram Bot API, used by
// bench/messaging so that messages:send deliveries have somewhere to go. Loopback only.
//
//   node bench/messaging_fake.mjs PORT [TOKEN]        (TOKEN defaults to 1:BENCH)
//
// POST /bot<TOKEN>/sendMessage -> {"ok":true,"result":{"message_id":N,"chat":{"id":..},...}}
// GET|POST /bot<TOKEN>/getMe  -> {"ok":true,"result":{"id":1,"is_bot":true,...}}
// GET /healthz                -> 200 (for bench_wait_http)
// GET /stats                  -> {"sendMessage":N,"getMe":N,"other":N}
// Anything else               -> 404 in Telegram's error shape.
import http from 'node:http';

const port = Number(process.argv[2]);
const token = process.argv[3] || '1:BENCH';
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write('usage: messaging_fake.mjs PORT [TOKEN]\n');
  process.exit(2);
}

const stats = { sendMessage: 0, getMe: 0, other: 0 };
let nextId = 1;
const sendPath = `/bot${token}/sendMessage`;
const getMePath = `/bot${token}/getMe`;
const getMeBody = JSON.stringify({ ok: true, result: { id: 1, is_bot: true, first_name: 'bench', username: 'bench_bot' } });
const notFound = JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' });

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = req.url.split('?')[0];
    if (url === sendPath) {
      stats.sendMessage++;
      let chat = 0, text = '';
      try {
        const b = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        chat = Number(b.chat_id) || 0;
        text = typeof b.text === 'string' ? b.text : '';
      } catch { /* answer anyway: the fake only has to be fast */ }
      reply(res, 200, JSON.stringify({ ok: true, result: { message_id: nextId++, chat: { id: chat, type: 'private' }, date: 1, text } }));
    } else if (url === getMePath) {
      stats.getMe++;
      reply(res, 200, getMeBody);
    } else if (url === '/healthz') {
      reply(res, 200, '{"status":"ok"}');
    } else if (url === '/stats') {
      reply(res, 200, JSON.stringify(stats));
    } else {
      stats.other++;
      reply(res, 404, notFound);
    }
  });
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.listen(port, '127.0.0.1');
const stop = () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref(); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
