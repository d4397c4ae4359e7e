/**
 * The live explorer's speed in Chromium: serves `lie-bracket explore RUN` (from dist/: run npm run
 * build first), opens it in Debian's Chromium (playwright-core), brackets pairs (0,1), (2,3) … at
 * the last checkpoint with the default 32 probes, and prints the worker's time per pair (the
 * bracket plus the 32-probe logit effect, from its performance.now(); the checkpoint's download
 * and decoding are not included) and the time from the click to the result on the page.
 *
 *   node scripts/explorer-timing.mjs RUN [pairs=6] [screenshot.png]
 *
 * With a file name, a screenshot of the page (pair 4,5 … whichever came last) is saved there
 * (docs/img/explorer.png was made so, on the demo's 300-step smoothconvnet run).
 */
/* global window */ // (in the functions that run in the page)
import { chromium } from 'playwright-core';
import { serveExplorer } from '../dist/explore/files.js';

const [run, n = '6', shot] = process.argv.slice(2);
if (!run) {
  process.stderr.write('usage: node scripts/explorer-timing.mjs RUN [pairs]\n');
  process.exit(2);
}
const s = await serveExplorer(run, 0);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(s.url);
  await page.waitForFunction(() => window.lieBracket?.ready, null, { timeout: 120_000 });
  const rows = [];
  for (let k = 0; k < Number(n); k++) {
    const [x, y] = [2 * k, 2 * k + 1];
    const t0 = Date.now();
    await page.click(`[data-testid="example-${x}"]`);
    await page.click(`[data-testid="example-${y}"]`);
    await page.waitForFunction(([x, y]) => window.lieBracket.lastResult?.x === x && window.lieBracket.lastResult?.y === y, [x, y], {
      timeout: 300_000,
    });
    const r = await page.evaluate(() => window.lieBracket.lastResult);
    rows.push({ pair: `${x},${y}`, workerMs: Math.round(r.ms), clickToResultMs: Date.now() - t0, kernels: r.kernels });
  }
  if (shot) await page.screenshot({ path: shot });
  const med = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  const m = s.manifest;
  process.stdout.write(
    `${JSON.stringify({ model: m.modelName, params: m.paramCount, probes: m.probes.length, rows, medianWorkerMs: med(rows.slice(1).map((r) => r.workerMs)) })}\n`,
  );
} finally {
  await browser.close();
  await s.close();
}
