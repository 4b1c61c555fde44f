// A session streamed into a real browser while a rolling deploy replaces the fleet.
//
// Headless Chromium opens page/stream.html, served from its own origin; the page creates a
// session at the router of a local fleet (cross-origin: CORS preflight, `--cors-origin`)
// and reads it with EventSource (`?token=`). When the first events have arrived, the test
// deploys through the ECS API and waits for the rollout to complete. The fleet comes from
// `dropzero ecs-emulator` (docs/ecs-emulator.md): it runs until stopped and prints the
// router's address at start, so the page can be pointed at it, and the deploy starts when
// the test says (a `dropzero run` deploy fault would fire at a scenario time, racing the
// browser's start-up). One replica: the page cannot hold the router's stickiness cookie
// across origins (the runtime's CORS does not allow credentials), and the naive runtime
// needs every request of a session on one replica.
//
// Resilient: the old replica drains, hands the session off and ends the stream; the browser
// reconnects by itself with Last-Event-ID and the new replica continues the session: every
// id once, in order, the digest the page computed equals `done.content_sha256`.
// Naive: the old replica exits; the browser's reconnect reaches a replica that never heard
// of the session (404) and EventSource gives up: no `done`.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  REPO,
  ecs,
  launchBrowser,
  outputDir,
  serveStatic,
  startDropzero,
  stop,
  until,
} from './support.mjs';

// ~400 tokens at 40 tokens/s in one step: ~10 s, long enough to span the deploy (a new
// replica healthy in ~1 s, 1 s deregistration delay, 1 s drain) with room for a slow machine.
const QUERY = 'summarise the incident for the browser test [dz tokens=400] [dz steps=1]';
const FIRST_EVENTS = 8;

// The fleet behind the emulated service, in real time (time_scale 1): short delays so the
// deploy takes seconds, one replica, and the page's origin allowed by CORS.
function scenario(mode, origin) {
  return `name = "browser-${mode}"
description = "the fleet of tests/browser/stream.test.mjs"
seed = 7
duration = "2m"

[target]
kind = "local"
replicas = 1
mode = "${mode}"
journal = "sqlite"
stop_timeout = "10s"
drain_timeout = "1s"
deregistration_delay = "1s"
keepalive = "2s"
lease_ttl = "2s"
cors_origins = ["${origin}"]
deployment = { minimum_healthy_percent = 100, maximum_percent = 200 }
router = { algorithm = "least_outstanding", health_check_interval = "250ms", healthy_threshold = 2, unhealthy_threshold = 2, idle_timeout = "10s" }

[load]
model = "closed"
stages = [ { users = 1, hold = "2m" } ]

[sessions]
tokens_per_second = 40

[llm]
ttft = { median = "100ms", p99 = "400ms" }
`;
}

// Starts the page's server, the fleet and the browser; runs `body`; stops them all and,
// if `body` threw, adds what the page and the network showed to the error.
async function withFleet(t, mode, body) {
  const out = await outputDir(`stream-${mode}`);
  const site = await serveStatic(join(REPO, 'tests/browser/page'));
  const file = join(out, 'scenario.toml');
  await writeFile(file, scenario(mode, site.origin));
  const emulator = await startDropzero(
    ['ecs-emulator', '--scenario', file, '--out', join(out, 'fleet')],
    join(out, 'ecs-emulator.log'),
  );
  let browser;
  try {
    browser = await launchBrowser();
  } catch (e) {
    await stop(emulator);
    await site.close();
    throw e;
  }
  const page = await browser.newPage();
  const seen = { console: [], events: [] };
  page.on('console', (m) => seen.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => seen.console.push(`pageerror: ${e.message}`));
  // Every request for the session's events, as Chromium sent it, and its response:
  // the proof that the browser itself reconnected with Last-Event-ID.
  page.on('request', async (req) => {
    if (!req.url().includes('/events')) return;
    const entry = { url: req.url(), lastEventId: null, status: null, replica: null };
    seen.events.push(entry);
    entry.lastEventId = (await req.allHeaders())['last-event-id'] ?? null;
  });
  page.on('response', async (res) => {
    const entry = seen.events.find((e) => e.url === res.url() && e.status === null);
    if (!entry) return;
    entry.status = res.status();
    const headers = await res.allHeaders();
    entry.replica = headers['x-dropzero-replica'] ?? null;
    entry.allowOrigin = headers['access-control-allow-origin'] ?? null;
  });
  try {
    const router = emulator.info.router;
    const url = `${site.origin}/stream.html?router=${encodeURIComponent(router)}&query=${encodeURIComponent(QUERY)}`;
    await page.goto(url);
    await body({ page, seen, endpoint: emulator.info.listening, origin: site.origin });
    const dz = await page.evaluate(() => window.dz);
    t.diagnostic(
      `${dz.ids.length} events (ids ${dz.ids[0]}..${dz.ids.at(-1)}), done: ${dz.done?.status ?? 'none'}, ` +
        `breaks: ${JSON.stringify(dz.breaks)}, takeovers: ${JSON.stringify(dz.takeovers)}, ` +
        `events requests: ${JSON.stringify(seen.events.map(({ lastEventId, status, replica }) => ({ lastEventId, status, replica })))}`,
    );
  } catch (e) {
    const dz = await page.evaluate(() => window.dz).catch(() => null);
    const { ids, ...rest } = dz ?? {};
    e.message += `\n  page: ${JSON.stringify(rest)}\n  ids: ${JSON.stringify(ids)}\n  events requests: ${JSON.stringify(seen.events)}\n  console: ${JSON.stringify(seen.console)}\n  logs: ${out}`;
    throw e;
  } finally {
    await browser.close();
    await stop(emulator);
    await site.close();
  }
}

// Waits for the page's first events, deploys (a new PRIMARY deployment of the same
// revision, as `aws ecs update-service --force-new-deployment`), and waits until the
// rollout COMPLETED, i.e. every old task is stopped.
async function deployWhileStreaming(page, endpoint) {
  await page.waitForFunction((n) => window.dz.failure || window.dz.ids.length >= n, FIRST_EVENTS, {
    timeout: 30_000,
  });
  const before = await page.evaluate(() => window.dz);
  assert.equal(before.failure, null, 'the page created its session and streamed');
  assert.equal(before.done, null, `the session outlasts the start of the deploy`);
  const service = { cluster: 'dropzero', service: 'agent-runtime' };
  const tasks = await ecs(endpoint, 'ListTasks', { cluster: 'dropzero', serviceName: 'agent-runtime' });
  const updated = await ecs(endpoint, 'UpdateService', { ...service, forceNewDeployment: true });
  const deployment = updated.service.deployments.find((d) => d.status === 'PRIMARY').id;
  await until(
    `deployment ${deployment} to complete`,
    async () => {
      const { services } = await ecs(endpoint, 'DescribeServices', { cluster: 'dropzero', services: ['agent-runtime'] });
      const d = services[0].deployments;
      return d.length === 1 && d[0].id === deployment && d[0].rolloutState === 'COMPLETED';
    },
    40_000,
  );
  // The old tasks are stopped: the deploy replaced every replica.
  const after = await ecs(endpoint, 'ListTasks', { cluster: 'dropzero', serviceName: 'agent-runtime' });
  assert.equal(tasks.taskArns.length, 1);
  assert.equal(after.taskArns.length, 1);
  assert.notEqual(after.taskArns[0], tasks.taskArns[0], 'the deploy replaced the replica');
  return before.ids.length;
}

test('resilient: the browser resumes across a rolling deploy with Last-Event-ID; nothing lost, nothing twice', async (t) => {
  await withFleet(t, 'resilient', async ({ page, seen, endpoint, origin }) => {
    await deployWhileStreaming(page, endpoint);
    await page.waitForFunction(() => window.dz.done || window.dz.closed || window.dz.failure, null, {
      timeout: 45_000,
    });
    const dz = await page.evaluate(() => window.dz);
    assert.equal(dz.failure, null);
    assert.equal(dz.closed, false, 'EventSource never gave up');
    assert.equal(dz.done?.status, 'completed');

    // Ids 1..=last_seq, each once, in order; done is the last.
    const expected = Array.from({ length: dz.done.last_seq }, (_, i) => i + 1);
    assert.deepEqual(dz.ids, expected, 'event ids are contiguous from 1, with no duplicate');
    assert.equal(dz.types.at(-1), 'done');
    assert.equal(dz.digest, dz.done.content_sha256, 'the digest of the tokens the browser assembled');

    // The stream broke (the old replica handed off), and the browser reconnected by itself
    // with the last id it had seen, to another replica, which took the session over.
    assert.ok(dz.breaks.length >= 1, 'the stream was interrupted');
    assert.ok(dz.breaks.every((b) => b.readyState === 0), 'every break was followed by a reconnect (CONNECTING)');
    assert.ok(dz.opens >= 2, 'EventSource opened again');
    assert.ok(seen.events.length >= 2, 'the browser sent more than one events request');
    const [first, ...resumes] = seen.events;
    assert.equal(first.lastEventId, null, 'the first request starts from the beginning');
    assert.equal(resumes[0].lastEventId, String(dz.breaks[0].lastId), 'the reconnect carried Last-Event-ID = the last id seen');
    assert.ok(seen.events.every((e) => e.status === 200), 'every events request was served');
    assert.notEqual(resumes.at(-1).replica, first.replica, 'the resumed stream came from a new replica');
    assert.ok(seen.events.every((e) => e.allowOrigin === origin), 'CORS allowed the page origin on every stream');
    assert.ok(
      dz.takeovers.some((t) => t.reason === 'released'),
      `a new replica took the handed-off session over: ${JSON.stringify(dz.takeovers)}`,
    );
  });
});

test('naive: the browser\'s stream dies in a rolling deploy (the new replica does not know the session)', async (t) => {
  await withFleet(t, 'naive', async ({ page, seen, endpoint }) => {
    const beforeDeploy = await deployWhileStreaming(page, endpoint);
    await page.waitForFunction(() => window.dz.done || window.dz.closed || window.dz.failure, null, {
      timeout: 45_000,
    });
    const dz = await page.evaluate(() => window.dz);
    assert.equal(dz.failure, null);
    assert.equal(dz.done, null, 'no done: the session was dropped');
    assert.equal(dz.closed, true, 'EventSource gave up (readyState CLOSED)');
    assert.equal(dz.breaks.at(-1).readyState, 2);
    // What arrived before the cut was still in order.
    assert.ok(dz.ids.length >= beforeDeploy);
    assert.deepEqual(dz.ids, Array.from({ length: dz.ids.length }, (_, i) => i + 1));
    // The browser did try to resume, with Last-Event-ID, and was told the session is unknown.
    assert.ok(seen.events.length >= 2, 'the browser reconnected');
    const last = seen.events.at(-1);
    assert.equal(last.lastEventId, String(dz.ids.at(-1)));
    assert.equal(last.status, 404);
    assert.notEqual(last.replica, seen.events[0].replica);
  });
});
