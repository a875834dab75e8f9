// receiver.mjs: a local HTTP endpoint that records every request (raw body and headers)
// and answers as a test tells it to: the stand-in for a customer's webhook target.
import http from 'node:http';

export async function startReceiver() {
  const requests = [];
  const waiters = [];
  let handler = () => ({ status: 200, body: '' });
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', async () => {
      const rec = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
      requests.push(rec);
      for (const w of [...waiters]) if (w.pred(rec)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(rec); }
      const out = await handler(rec);
      if (out === 'hang') return; // never answer
      res.writeHead(out.status, { 'Content-Type': 'application/json' });
      res.end(out.body ?? '');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests,
    // handler(rec) -> {status, body} | 'hang' (may be async)
    respond(fn) { handler = fn; },
    // Resolves with the first recorded (or future) request matching pred.
    waitFor(pred, timeoutMs = 10000) {
      const found = requests.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { const i = waiters.indexOf(w); if (i >= 0) { waiters.splice(i, 1); reject(new Error(`no matching request within ${timeoutMs} ms; got ${requests.length}: ${requests.map((r) => r.url + ' ' + r.body.slice(0, 80)).join(' | ')}`)); } }, timeoutMs);
        const w = { pred, resolve: (rec) => { clearTimeout(timer); resolve(rec); } };
        waiters.push(w);
      });
    },
    close() { server.closeAllConnections?.(); return new Promise((r) => server.close(r)); },
  };
}
