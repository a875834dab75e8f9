// parley.mjs: starts the built `parley serve` on a free port with a fresh data dir, and
// gives tests an HTTP helper, an official Sinch SDK client, and a stop() that fails the
// test if the server exits uncleanly or printed a sanitizer report.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SinchClient } from '@sinch/sdk-core';

export const PARLEY_BIN = process.env.PARLEY_BIN || new URL('../../../build/asan/parley', import.meta.url).pathname;

const SANITIZER = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer)/;

// Run a parley CLI command to completion; resolves {code, stdout, stderr}.
export function runCli(args, { env = {}, input } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(PARLEY_BIN, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (SANITIZER.test(stderr)) reject(new Error(`sanitizer report from parley ${args.join(' ')}:\n${stderr}`));
      else resolve({ code, stdout, stderr });
    });
    if (input) p.stdin.end(input); else p.stdin.end();
  });
}

export function tempDir(prefix = 'parley-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// Start a server. Options: dataDir (reused if given), env, args (extra flags).
export async function startParley({ dataDir, env = {}, args = [], keepDir = false } = {}) {
  const dir = dataDir || tempDir();
  const fresh = !existsSync(join(dir, 'parley.db'));
  const proc = spawn(PARLEY_BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir, ...args], {
    // The retention sweeper stays idle unless a test asks for it (PARLEY_PRIVACY_INTERVAL_S):
    // tests inject messages dated years ago, which a real-time sweep would rightly remove.
    env: { ...process.env, PARLEY_LOG_LEVEL: 'info', PARLEY_PRIVACY_INTERVAL_S: '86400', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  // PARLEY_TEST_LOG_DIR=dir keeps every server's log (one file per process) for a flake hunt.
  if (process.env.PARLEY_TEST_LOG_DIR) {
    const log = join(process.env.PARLEY_TEST_LOG_DIR, `parley-${Date.now()}-${proc.pid}.log`);
    proc.stderr.on('data', (d) => appendFileSync(log, d));
  }
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`parley did not start within 15 s:\n${stderr}`)), 15000);
    const check = () => {
      const m = stderr.match(/"msg":"listening"[^\n]*"port":(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      else if (exited) { clearTimeout(timer); reject(new Error(`parley exited (${JSON.stringify(exited)}):\n${stderr}`)); }
      else setTimeout(check, 20);
    };
    check();
  });
  const url = `http://127.0.0.1:${port}`;
  // A fresh data dir prints its init JSON on stdout; it may arrive after the log line.
  for (let i = 0; fresh && !stdout.includes('\n') && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
  const firstLine = stdout.split('\n')[0];
  const init = firstLine ? JSON.parse(firstLine) : null;
  const parley = {
    url, port, dataDir: dir, proc, init,
    stderr: () => stderr,
    stdout: () => stdout,
    exited: () => exited,
    // Stop with a signal and check the exit was clean (code 0, no sanitizer report).
    async stop({ signal = 'SIGTERM', expectClean = true } = {}) {
      if (!exited) proc.kill(signal);
      let timer;
      const res = await Promise.race([exitPromise, new Promise((r) => { timer = setTimeout(() => r(null), 20000); })]);
      clearTimeout(timer);
      if (!res) { proc.kill('SIGKILL'); await exitPromise; throw new Error('parley did not stop within 20 s'); }
      if (!keepDir && !dataDir) rmSync(dir, { recursive: true, force: true });
      if (SANITIZER.test(stderr)) throw new Error(`sanitizer report:\n${stderr}`);
      if (expectClean && signal !== 'SIGKILL' && res.code !== 0) throw new Error(`parley exited with ${JSON.stringify(res)}:\n${stderr.slice(-3000)}`);
      return res;
    },
    // Raw HTTP. auth: 'basic' (default, the init key), 'none', or a full header value.
    async api(method, path, { body, auth = 'basic', headers = {}, raw = false } = {}) {
      const h = { ...headers };
      if (auth === 'basic') h.Authorization = basicAuth(init.key_id, init.key_secret);
      else if (auth !== 'none') h.Authorization = auth;
      let payload = body;
      if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
        payload = JSON.stringify(body);
        h['Content-Type'] = h['Content-Type'] || 'application/json';
      }
      const res = await fetch(url + path, { method, headers: h, body: payload });
      const text = await res.text();
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
      return { status: res.status, headers: res.headers, text, json, raw: raw ? res : undefined };
    },
    // The official SDK, pointed at this server, with the init key (or the key given).
    sdk({ projectId = init.project_id, keyId = init.key_id, keySecret = init.key_secret } = {}) {
      return new SinchClient({
        projectId, keyId, keySecret,
        authHostname: url, conversationHostname: url, conversationTemplatesHostname: url,
        logger: null,
      });
    },
  };
  return parley;
}

export function basicAuth(id, secret) {
  return 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
}

// Assert-friendly view of an SDK RequestFailedError: {status, body}.
export function sdkError(err) {
  let body = null;
  try { body = JSON.parse(err.data); } catch { /* not JSON */ }
  return { status: err.statusCode, body };
}

// Expect an SDK call to fail with an error-model body; returns it.
export async function sdkRejects(promise, status, grpcStatus) {
  try {
    await promise;
  } catch (err) {
    const { status: got, body } = sdkError(err);
    if (got !== status) throw new Error(`expected HTTP ${status}, got ${got}: ${err.data ?? err.message}`);
    if (grpcStatus && body?.error?.status !== grpcStatus) throw new Error(`expected ${grpcStatus}, got ${JSON.stringify(body)}`);
    if (!body?.error || body.error.code !== status || typeof body.error.message !== 'string' || !Array.isArray(body.error.details))
      throw new Error(`not the error model: ${err.data}`);
    return body.error;
  }
  throw new Error(`expected the call to fail with ${status}`);
}

export function readJsonLines(text) {
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

export { readFileSync };
