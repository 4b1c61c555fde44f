// Shared parts of the browser tests: headless Chromium (Debian's, driven by playwright-core),
// the `dropzero` binary's processes, a static server for the test page, and the ECS API of
// `dropzero ecs-emulator`. Not a test framework: `node --test` runs the tests.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DROPZERO_BIN = process.env.DROPZERO_BIN ?? join(REPO, 'target/debug/dropzero');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// Where a test keeps what it leaves behind (run directories, logs, screenshots):
// `target/browser/<name>/`, emptied first.
export async function outputDir(name) {
  const dir = join(REPO, 'target/browser', name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

// Headless Chromium with a fresh profile (playwright's `launch` makes a new temporary
// user-data-dir each time and deletes it on close). Without the background-networking
// flags Chromium keeps trying to reach Google's services and logs every refused connection.
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// Serves `root`'s files on 127.0.0.1 at a free port: the test page's own origin, which is
// not the router's, so every request the page makes to the fleet is cross-origin.
export async function serveStatic(root) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file) || !types[extname(file)]) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] });
    createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, close: () => new Promise((ok) => server.close(ok)) };
}

// Starts `dropzero <args>` with stderr to `log`; resolves with the child and the JSON of
// its first stdout line (`{"listening": …}`), or rejects when it exits or stays silent.
export async function startDropzero(args, log, timeoutMs = 60_000) {
  if (!existsSync(DROPZERO_BIN)) {
    throw new Error(`no dropzero binary at ${DROPZERO_BIN} (cargo build --bin dropzero, or set DROPZERO_BIN)`);
  }
  const child = spawn(DROPZERO_BIN, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(createWriteStream(log));
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const first = new Promise((ok) => lines.once('line', ok));
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`dropzero ${args[0]} printed nothing within ${timeoutMs} ms (see ${log})`)), timeoutMs);
  });
  try {
    const line = await Promise.race([
      first,
      exited.then(({ code, signal }) => {
        throw new Error(`dropzero ${args[0]} exited (code ${code}, signal ${signal}) before it listened (see ${log})`);
      }),
      timeout,
    ]);
    return { child, exited, info: JSON.parse(line) };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

// Ctrl-C, as a person stops `dropzero ecs-emulator`; SIGKILL if it has not exited in 20 s.
export async function stop({ child, exited }) {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

// One ECS API call (AWS JSON 1.1) to the emulator at `endpoint` (`host:port`). The emulator
// wants a SigV4 `Authorization` header but does not check the signature
// (docs/ecs-emulator.md), so a syntactically complete one is enough.
export async function ecs(endpoint, action, body) {
  const res = await fetch(`http://${endpoint}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `AmazonEC2ContainerServiceV20141113.${action}`,
      authorization:
        'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0',
    },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`ECS ${action} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

// Polls `check` every `everyMs` until it returns something truthy; throws `what` after
// `timeoutMs`. For conditions outside the page (the page's own use `waitForFunction`).
export async function until(what, check, timeoutMs, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, everyMs));
  }
}

// Runs `dropzero <args>` to the end with stdout and stderr to `log`; resolves with the exit
// code (null if killed after `timeoutMs`).
export async function runDropzero(args, log, timeoutMs = 120_000) {
  if (!existsSync(DROPZERO_BIN)) {
    throw new Error(`no dropzero binary at ${DROPZERO_BIN} (cargo build --bin dropzero, or set DROPZERO_BIN)`);
  }
  const child = spawn(DROPZERO_BIN, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const sink = createWriteStream(log);
  child.stdout.pipe(sink, { end: false });
  child.stderr.pipe(sink, { end: false });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = await new Promise((ok) => child.once('close', (...r) => ok(r)));
  clearTimeout(timer);
  sink.end();
  return code;
}
