/**
 * The report in a real browser: Debian's Chromium driven by playwright-core (which never downloads
 * a browser). A 4-step mlp run on the shipped data with a sweep written by the fixture; checks
 * that every figure draws marks, that nothing is fetched and nothing logs an error, that the
 * checkpoint slider and the pair selector change the logit heatmap, that hovering the all-pairs
 * matrix shows the two images, and that hostile label names are text, not markup. Saves a
 * screenshot as test-artifacts/report.png.
 *
 * Needs /usr/bin/chromium (Debian: apt-get install -y chromium). Without it the test fails, unless
 * LIE_BRACKET_SKIP_BROWSER=1.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeReport } from '../src/report/report.js';
import { syntheticRun, trainedRun } from './report-fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.LIE_BRACKET_SKIP_BROWSER === '1';
const ARTIFACTS = resolve(import.meta.dirname, '..', 'test-artifacts');
const FIGURES = ['logits', 'features', 'pairs', 'fit', 'training', 'verify', 'allpairs'];

/** What the tests touch of a page's DOM (the project's TypeScript has no DOM library). */
interface RangeInput {
  value: string;
  max: string;
  dispatchEvent(e: Event): boolean;
}
interface BrowserGlobals {
  scrollTo(x: number, y: number): void;
  document: { documentElement: { scrollWidth: number } };
}
/** Runs in the page (serialised: no closure), so the value comes as the argument. */
const setRange = (el: unknown, value: string) => {
  const r = el as RangeInput;
  r.value = value === 'max' ? r.max : value;
  r.dispatchEvent(new Event('input', { bubbles: true }));
};

interface Opened {
  page: Page;
  url: string;
  errors: string[];
  warnings: string[];
  requests: string[];
  dialogs: string[];
}

describe.skipIf(skip)('report.html in Chromium', () => {
  let browser: Browser;
  const tmp = mkdtempSync(join(tmpdir(), 'lb-report-browser-'));

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `the report's browser test needs Chromium at ${CHROMIUM}, which is missing: install it (Debian: sudo apt-get install -y chromium), or set LIE_BRACKET_SKIP_BROWSER=1 to skip this test`,
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  async function open(file: string): Promise<Opened> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const o: Opened = { page, url: pathToFileURL(file).href, errors: [], warnings: [], requests: [], dialogs: [] };
    page.on('console', (m) => {
      if (m.type() === 'error') o.errors.push(m.text());
      if (m.type() === 'warning') o.warnings.push(m.text());
    });
    page.on('pageerror', (e) => o.errors.push(`page error: ${e.message}`));
    page.on('request', (r) => o.requests.push(r.url()));
    page.on('dialog', (d) => {
      o.dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(o.url);
    await page.waitForSelector('body[data-rendered]', { timeout: 60_000 });
    return o;
  }

  /** The fill colours of the data marks of a figure (its heatmap cells, points …), in order. */
  const markFills = (page: Page, id: string) =>
    page.$$eval(`#fig-${id} svg g.role-mark path`, (ps) => ps.map((p) => `${p.getAttribute('fill')}|${p.getAttribute('transform')}`));

  test('a trained run: every figure renders, offline, with no error; the controls change the logit heatmap; hover shows the images', async () => {
    const run = join(tmp, 'run');
    trainedRun(run);
    const file = writeReport(run);
    const o = await open(file);
    const { page } = o;

    // every figure: an SVG with data marks in it
    const figs = await page.$$eval('.fig', (els) =>
      els.map((e) => ({ id: e.id, svgs: e.querySelectorAll('svg').length, marks: e.querySelectorAll('svg g.role-mark > *').length })),
    );
    expect(figs.map((f) => f.id)).toEqual(FIGURES.map((id) => `fig-${id}`));
    for (const f of figs) {
      expect(f.svgs, f.id).toBeGreaterThan(0);
      expect(f.marks, f.id).toBeGreaterThan(0);
    }
    expect(await page.getAttribute('body', 'data-rendered')).toBe(String(FIGURES.length));

    // the checkpoint slider (last checkpoint by default) changes the heatmap and its title
    const title = () => page.$eval('#fig-logits svg', (s) => [...s.querySelectorAll('.role-title-text')].map((t) => t.textContent).join(' '));
    const before = await markFills(page, 'logits');
    expect(await title()).toContain('step 4');
    const slider = page.locator('#fig-logits input[type=range]');
    expect(await slider.count()).toBe(1);
    await slider.evaluate(setRange, '0');
    await expect.poll(title).toContain('step 0');
    const after = await markFills(page, 'logits');
    expect(after.length).toBeGreaterThan(0);
    expect(after).not.toEqual(before);

    // the pair selector too
    const select = page.locator('#fig-logits select');
    await select.selectOption({ index: 3 });
    await expect.poll(() => markFills(page, 'logits')).not.toEqual(after);

    // hovering a cell of the all-pairs matrix shows a tooltip with the two images
    const cell = page.locator('#fig-allpairs svg g.role-mark path').nth(1);
    await cell.hover();
    const tip = page.locator('#vg-tooltip-element');
    await expect.poll(() => tip.evaluate((e) => e.classList.contains('visible'))).toBe(true);
    const img = await tip.locator('img').getAttribute('src');
    expect(img).toMatch(/^data:image\/png;base64,/);
    expect(await tip.innerText()).toMatch(/first \(i, left\)/);

    // nothing fetched but the file itself; no errors and no Vega warnings
    expect(o.requests.filter((u) => !u.startsWith('data:'))).toEqual([o.url]);
    expect(o.errors).toEqual([]);
    expect(o.warnings).toEqual([]);

    await page.mouse.move(0, 0);
    await slider.evaluate(setRange, 'max');
    await select.selectOption({ index: 0 });
    await page.evaluate(() => (globalThis as unknown as BrowserGlobals).scrollTo(0, 0));
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.documentElement.scrollWidth)).toBeLessThanOrEqual(1400); // no sideways scrolling
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'report.png'))).toBe(true);
    await page.close();
  }, 180_000);

  test('hostile label names are shown as text and never run', async () => {
    const dir = join(tmp, 'evil');
    const labels = ['<script>alert(1)</script>', '<img src=x onerror=alert(2)>', 'plain'];
    syntheticRun(dir, { labels, withAllPairs: true, withVerify: true, configExtra: { data: '</script><script>alert(3)</script>' } });
    const o = await open(writeReport(dir));
    const { page } = o;
    expect(o.dialogs).toEqual([]);
    expect(await page.$$eval('script', (s) => s.length)).toBe(4);
    expect(await page.$$eval('img:not([src^="data:"])', (s) => s.length)).toBe(0);
    // the names appear literally: in the header's ranking and as SVG axis labels
    const text = await page.innerText('header.top');
    expect(text).toContain(labels[0]);
    const axisText = await page.$$eval('#fig-logits svg text', (ts) => ts.map((t) => t.textContent ?? ''));
    expect(axisText.some((t) => t.includes('<img src=x'))).toBe(true);
    expect(o.errors).toEqual([]);
    expect(o.requests.filter((u) => !u.startsWith('data:'))).toEqual([o.url]);
    await page.close();
  }, 120_000);
});
