/**
 * Issue 14, the live explorer in a real browser: Debian's Chromium driven by playwright-core (which
 * never downloads a browser), as the report's test. A short smoothconvnet run on the shipped data;
 * the explorer served (serveExplorer) and written as static files (writeStaticExplorer, then served
 * by a plain static server that sends the _headers file's headers, as a static host would). In
 * each: pick two examples, wait for the Web Worker's result, and compare ‖B‖ and the logit effect
 * J_f(z)·B with the library's `lie-bracket bracket --run RUN --step S --pairs x,y --probes 32
 * --dtype float32` (runBracket) to 1e-5 relative; no console error; no request leaves the page's
 * origin; moving the checkpoint slider recomputes; swap gives −B; the keyboard picks a pair. Saves
 * a screenshot as test-artifacts/explorer.png and prints the worker's timings.
 *
 * Needs /usr/bin/chromium (Debian: apt-get install -y chromium). Without it the test fails, unless
 * LIE_BRACKET_SKIP_BROWSER=1.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openDataset } from '../src/data/registry.js';
import { serveExplorer, writeStaticExplorer, type ServedExplorer } from '../src/explore/files.js';
import { runBracket } from '../src/study/bracket-report.js';
import { resolveModel } from '../src/study/resolve.js';
import { lossFor, parseTrainConfig, train } from '../src/study/train.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.LIE_BRACKET_SKIP_BROWSER === '1';
const ROOT = resolve(import.meta.dirname, '..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const STEPS = [0, 2, 4];

/** What the tests read of the page's globals (the project's TypeScript has no DOM library). */
interface Result {
  x: number;
  y: number;
  step: number;
  bracketNorm: number;
  logitEffect: number[][];
  ms: number;
  kernels: string;
}
interface LieBracketGlobal {
  lieBracket: { ready: boolean; kernels: string; probes: number[]; lastResult: Result | null };
}
declare const window: LieBracketGlobal;
interface RangeInput {
  value: string;
  dispatchEvent(e: Event): boolean;
}
/** Runs in the page (serialised: no closure), so the value comes as the argument. */
const setRange = (el: unknown, value: string) => {
  const r = el as RangeInput;
  r.value = value;
  r.dispatchEvent(new Event('input', { bubbles: true }));
};

/** Serve a directory as a static host would: its files, with the headers its _headers file lists. */
function staticServer(dir: string): Promise<ServedExplorer> {
  const headers = readFileSync(join(dir, '_headers'), 'utf8')
    .split('\n')
    .map((l) => /^\s+([^:]+):\s*(.*)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => [m[1]!, m[2]!] as const);
  const types: Record<string, string> = { html: 'text/html', js: 'text/javascript', css: 'text/css', json: 'application/json' };
  const server = createServer((req, res) => {
    const rel = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/+/, '') || 'index.html';
    const p = join(dir, rel);
    for (const [k, v] of headers) res.setHeader(k, v);
    if (!p.startsWith(dir) || !existsSync(p) || !statSync(p).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': types[rel.replace(/^.*\./, '')] ?? 'application/octet-stream' }).end(readFileSync(p));
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address() as { port: number };
      ok({
        url: `http://127.0.0.1:${a.port}/`,
        server,
        close: () => new Promise<void>((d) => (server.close(() => d()), server.closeAllConnections())),
      });
    }),
  );
}

/** The library's (the CLI's) numbers: bracket --run RUN --step S --pairs x,y --probes 32 --dtype float32. */
function reference(run: string, step: number, x: number, y: number) {
  const r = runBracket({ run, step, pairs: [[x, y]], probes: 32, dtype: 'float32', seed: 0, split: 'test', bn: 'eval' });
  const p = r.pairs[0]!;
  const eff = p.probeEffects!; // [probes][outputs]
  return { probes: r.probeIndices!, bracketNorm: p.bracketNorm, logitEffect: eff[0]!.map((_, o) => eff.map((row) => row[o]!)) };
}

const testSet = openDataset('fashion-mnist', 'test', { loss: 'bce' });
/** The class name of test example i. */
const testLabel = (i: number) => testSet.labelNames[testSet.get(i).y.indexOf(1)];

/** Largest relative difference, elementwise, against the reference's values (floored at 1e-6 of its largest). */
function relErr(a: number[][], b: number[][]): number {
  const scale = Math.max(...b.flat().map(Math.abs));
  let worst = 0;
  b.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(a[i]![j]! - v) / Math.max(Math.abs(v), 1e-6 * scale)))));
  return worst;
}

describe.skipIf(skip)('the live explorer in Chromium', () => {
  let browser: Browser;
  const tmp = mkdtempSync(join(tmpdir(), 'lb-explore-browser-'));
  const run = join(tmp, 'run');
  const timings: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `the explorer's browser test needs Chromium at ${CHROMIUM}, which is missing: install it (Debian: sudo apt-get install -y chromium), or set LIE_BRACKET_SKIP_BROWSER=1 to skip this test`,
      );
    }
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-explorer.mjs')], { stdio: 'inherit' }); // the page from the current sources
    const config = parseTrainConfig(
      {
        model: 'smoothconvnet',
        loss: 'bce',
        steps: 4,
        evalSize: 100,
        evalEvery: 4,
        batchSize: 32,
        checkpointSteps: STEPS,
        optimizer: { name: 'adam', lr: 3e-3 },
      },
      'fixture',
    );
    const trainSet = openDataset(config.data, 'train', { loss: config.loss });
    const testSet = openDataset(config.data, 'test', { loss: config.loss });
    train({ config, model: resolveModel(config.model, trainSet), loss: lossFor(config, trainSet), train: trainSet, test: testSet }, run);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (timings.length > 0) process.stdout.write(`explorer timings (bracket + logit effect on 32 probes, in the worker): ${timings.join('; ')}\n`);
  });

  async function open(url: string) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const o = { page, errors: [] as string[], requests: [] as string[] };
    page.on('console', (m) => {
      if (m.type() === 'error') o.errors.push(m.text());
    });
    page.on('pageerror', (e) => o.errors.push(`page error: ${e.message}`));
    page.on('request', (r) => o.requests.push(r.url()));
    await page.goto(url);
    await page.waitForFunction(() => window.lieBracket?.ready === true, null, { timeout: 60_000 });
    return o;
  }

  async function result(page: Page, x: number, y: number, step: number): Promise<Result> {
    await page
      .waitForFunction(
        ([x, y, step]) => {
          const r = window.lieBracket.lastResult;
          return r !== null && r.x === x && r.y === y && r.step === step;
        },
        [x, y, step] as const,
        { timeout: 60_000 },
      )
      .catch(async (e: unknown) => {
        const last = await page.evaluate(() => {
          const r = window.lieBracket.lastResult;
          return r && [r.x, r.y, r.step, r.logitEffect[0]?.length];
        });
        const status = await page.getByTestId('status').textContent();
        const slider = await page.getByTestId('checkpoint-slider').inputValue();
        throw new Error(`waiting for ${x},${y}@${step}: last ${JSON.stringify(last)}, status "${status}", slider ${slider}: ${String(e)}`);
      });
    return page.evaluate(() => window.lieBracket.lastResult!);
  }

  async function checkPage(url: string, label: string, screenshot: boolean): Promise<void> {
    const { page, errors, requests } = await open(url);
    const probes = await page.evaluate(() => window.lieBracket.probes);
    expect(probes).toEqual(Array.from({ length: 32 }, (_, i) => i));
    // the last checkpoint is selected at first
    await page.click('[data-testid="example-3"]');
    await page.click('[data-testid="example-7"]');
    const r = await result(page, 3, 7, 4);
    const ref = reference(run, 4, 3, 7);
    expect(ref.probes).toEqual(probes);
    expect(Math.abs(r.bracketNorm - ref.bracketNorm) / ref.bracketNorm).toBeLessThan(1e-5);
    expect(r.logitEffect).toHaveLength(10);
    expect(r.logitEffect[0]).toHaveLength(32);
    expect(relErr(r.logitEffect, ref.logitEffect)).toBeLessThan(1e-5);
    expect(Number((await page.getByTestId('bracket-norm').textContent())!)).toBeCloseTo(ref.bracketNorm, 1);
    timings.push(`${label} step 4: ${r.ms.toFixed(0)} ms (${r.kernels})`);

    // the slider recomputes: step 0 (a fresh init: a different bracket)
    await page.$eval('[data-testid="checkpoint-slider"]', setRange, '0');
    const r0 = await result(page, 3, 7, 0);
    const ref0 = reference(run, 0, 3, 7);
    expect(r0.bracketNorm).not.toBe(r.bracketNorm);
    expect(Math.abs(r0.bracketNorm - ref0.bracketNorm) / ref0.bracketNorm).toBeLessThan(1e-5);
    expect(relErr(r0.logitEffect, ref0.logitEffect)).toBeLessThan(1e-5);
    timings.push(`${label} step 0: ${r0.ms.toFixed(0)} ms`);

    // swap: B(y, x) = −B(x, y)
    await page.getByTestId('swap').click();
    const s = await result(page, 7, 3, 0);
    expect(s.bracketNorm).toBe(r0.bracketNorm);
    expect(s.logitEffect).toEqual(r0.logitEffect.map((row) => row.map((v) => (v === 0 ? 0 : -v))));

    // the keyboard: Tab to an example, Enter picks x, another with Space picks y
    await page.getByTestId('example-10').focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('example-11').focus();
    await page.keyboard.press(' ');
    const k = await result(page, 10, 11, 0);
    expect(k.bracketNorm).toBeGreaterThan(0);
    // back to the last step by the keyboard (End on the slider): recomputed and cached per (pair, checkpoint)
    await page.getByTestId('checkpoint-slider').focus();
    await page.keyboard.press('End');
    await result(page, 10, 11, 4);

    // another probe set (typed, Enter): its columns are those of the same probes in the 32-probe batch
    await page.getByTestId('checkpoint-slider').focus();
    await page.keyboard.press('Home');
    await page.getByTestId('example-3').click();
    await page.getByTestId('example-7').click();
    await result(page, 3, 7, 0);
    await page.getByTestId('probes').fill('5, 9-11');
    await page.getByTestId('probes').press('Enter');
    await page.waitForFunction(() => window.lieBracket.lastResult?.logitEffect[0]?.length === 4, null, { timeout: 60_000 });
    expect(await page.evaluate(() => window.lieBracket.probes)).toEqual([5, 9, 10, 11]);
    const sub = await result(page, 3, 7, 0);
    expect(
      relErr(
        sub.logitEffect,
        ref0.logitEffect.map((row) => [5, 9, 10, 11].map((j) => row[j]!)),
      ),
    ).toBeLessThan(1e-5);
    await page.getByTestId('probes').fill('0-31');
    await page.getByTestId('probes-apply').click();
    await page.waitForFunction(() => window.lieBracket.lastResult?.logitEffect[0]?.length === 32, null, { timeout: 60_000 });

    // filter by class, and jump to an index (which shows it again)
    const classOf = (i: number) => ref.logitEffect.length === 10 && testLabel(i);
    await page.getByTestId('filter-class').selectOption('Trouser');
    const shown = await page.$$eval('[data-testid^="example-"]', (els) => els.filter((e) => !(e as unknown as { hidden: boolean }).hidden).length);
    const trousers = Array.from({ length: 256 }, (_, i) => i).filter((i) => classOf(i) === 'Trouser').length;
    expect(shown).toBe(trousers);
    await page.getByTestId('jump').fill('0'); // an Ankle boot: hidden by the filter until the jump
    await page.getByTestId('jump').press('Enter');
    await expect.poll(() => page.getByTestId('example-0').isVisible()).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id)).toBe(
      'example-0',
    );

    await page.getByTestId('filter-class').selectOption('all');
    await page.getByTestId('checkpoint-slider').focus();
    await page.keyboard.press('End');
    if (screenshot) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.getByTestId('example-3').click();
      await page.getByTestId('example-7').click();
      await result(page, 3, 7, 4);
      await page.screenshot({ path: join(ARTIFACTS, 'explorer.png'), fullPage: false });
    }
    expect(errors).toEqual([]);
    const origin = new URL(url).origin;
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'))).toEqual([]);
    expect(requests.some((u) => u.endsWith('/worker.js'))).toBe(true);
    await page.close();
  }

  test('served (lie-bracket explore RUN): the bracket of a picked pair matches the CLI, the slider recomputes', async () => {
    const s = await serveExplorer(run, 0);
    try {
      expect(s.manifest.steps).toEqual(STEPS);
      await checkPage(s.url, 'served', true);
    } finally {
      await s.close();
    }
  }, 180_000);

  test('static (lie-bracket explore RUN --static DIR) behind a static server: the same numbers', async () => {
    const dir = join(tmp, 'site');
    writeStaticExplorer(run, dir);
    const s = await staticServer(dir);
    try {
      await checkPage(s.url, 'static', false);
    } finally {
      await s.close();
    }
  }, 180_000);
});
