// The report page of a real run, in a real browser: `dropzero run` of the shipped
// rolling-deploy scenario, compressed (time scale 0.02, 8 users: ~25 s), then its
// index.html opened from file:// in headless Chromium. The page must load with no console
// error and no failed request (it is self-contained: docs/reports.md), and show every chart
// such a run has, each an <svg> with a size on screen. The screenshot is kept as
// target/browser/report/index.png for a person to look at.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { REPO, launchBrowser, outputDir, runDropzero } from './support.mjs';

// What reports/src/charts/mod.rs draws for a run with a deploy fault and no autoscaling,
// in page order (each <figure id="chart-<id>">).
const CHARTS = ['load', 'latency', 'activity', 'replicas', 'faults', 'percentiles'];

test('index.html of a rolling-deploy run renders every chart with no console error', async () => {
  const out = await outputDir('report');
  const run = join(out, 'run');
  const code = await runDropzero(
    [
      'run',
      join(REPO, 'scenarios/rolling-deploy.toml'),
      '--time-scale',
      '0.02',
      '--set',
      'load.stages.0.users=8',
      '--out',
      run,
    ],
    join(out, 'run.log'),
  );
  // The gates' verdict is not this test's business (0 pass, 1 a gate failed); 2 is a
  // harness failure, and then there may be no page.
  assert.ok(code === 0 || code === 1, `dropzero run exited ${code} (see ${join(out, 'run.log')})`);
  const report = JSON.parse(await readFile(join(run, 'report.json'), 'utf8'));
  assert.equal(report.autoscaling ?? null, null, 'the scenario has no autoscaling chart');
  assert.equal(report.faults.length, 1, 'one deploy fault');

  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    const response = await page.goto(pathToFileURL(join(run, 'index.html')).href, { waitUntil: 'load' });
    assert.ok(response === null || response.ok(), 'index.html loaded');

    const figures = await page.$$eval('figure[id^="chart-"]', (all) =>
      all.map((f) => {
        const svg = f.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return {
          id: f.id.slice('chart-'.length),
          caption: f.querySelector('figcaption')?.textContent ?? '',
          svgs: f.querySelectorAll('svg').length,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          // plotters draws lines and areas as <polyline>/<path>/<rect>, labels as <text>.
          shapes: svg ? svg.querySelectorAll('polyline, path, rect, circle, line').length : 0,
          texts: svg ? svg.querySelectorAll('text').length : 0,
        };
      }),
    );
    assert.deepEqual(figures.map((f) => f.id), CHARTS, 'every chart of the run, in order');
    for (const f of figures) {
      assert.equal(f.svgs, 1, `${f.id}: one <svg>`);
      assert.ok(f.width > 100 && f.height > 100, `${f.id}: drawn on screen (${f.width}×${f.height})`);
      assert.ok(f.shapes > 0 && f.texts > 0, `${f.id}: has shapes and labels`);
      assert.ok(f.caption.length > 0, `${f.id}: has a caption`);
    }
    const title = await page.title();
    assert.ok(title.includes('rolling-deploy'), `title names the scenario: ${title}`);

    const png = join(out, 'index.png');
    await page.screenshot({ path: png, fullPage: true });
    console.log(`screenshot: ${png}`);
    assert.deepEqual(problems, [], 'no console error or warning, no failed request');
  } finally {
    await browser.close();
  }
});
