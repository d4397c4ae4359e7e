/** The report: escaping, the PNG encoder, its statistics, defensive reading, and specs that compile and render in Node. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { syntheticRun } from '../../test/report-fixture.js';
import { reportCommand, runReport } from '../cli/report.js';
import { renderSvg } from './export.js';
import { spreadLogLabels } from './figures.js';
import { escapeHtml, jsonForScript } from './html.js';
import { crc32, encodePng, imageFromCHW, sideBySide, upscale } from './png.js';
import { buildReport, collectReport, readSweepSummary, writeReport } from './report.js';
import { factorModelR2, groupedFit, type TensorPoint } from './figure-data.js';
import { loadRun } from './load.js';

const tmp = mkdtempSync(join(tmpdir(), 'lb-report-'));

/** Substring checks on a 1 MB page without printing the page on failure. */
function has(html: string, s: string): void {
  if (!html.includes(s)) expect.fail(`the report does not contain ${JSON.stringify(s)}`);
}
function hasNot(html: string, s: string): void {
  const i = html.indexOf(s);
  if (i >= 0) expect.fail(`the report contains ${JSON.stringify(s)}: …${html.slice(Math.max(0, i - 120), i + 120)}…`);
}
const HOSTILE = '<script>alert(1)</script>';
const HOSTILE_IMG = '<img src=x onerror=alert(2)>';

describe('escaping', () => {
  test('escapeHtml escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`a&b<c>d"e'f`)).toBe('a&amp;b&lt;c&gt;d&quot;e&#39;f');
    expect(escapeHtml(HOSTILE)).toBe('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  test('jsonForScript cannot end a <script> element and still parses to the same value', () => {
    const v = { label: HOSTILE, c: '<!-- x -->', amp: 'a&b', ls: 'a\u2028b\u2029c', n: [1, 2.5, null] };
    const s = jsonForScript(v);
    expect(s).not.toMatch(/[<>&\u2028\u2029]/);
    expect(s).toContain('\\u003cscript\\u003e');
    expect(JSON.parse(s)).toEqual(v);
    // also a JavaScript expression with the same value
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- evaluating the embedded JSON as script is the point of the test
    expect(new Function(`return ${s};`)()).toEqual(v);
  });
});

describe('PNG encoder', () => {
  function chunks(png: Uint8Array): { type: string; data: Uint8Array; crcOk: boolean }[] {
    const out = [];
    const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
    let o = 8;
    while (o < png.length) {
      const len = dv.getUint32(o);
      const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
      const data = png.subarray(o + 8, o + 8 + len);
      out.push({ type, data, crcOk: dv.getUint32(o + 8 + len) === crc32(png, o + 4, o + 8 + len) });
      o += 12 + len;
    }
    return out;
  }

  function decode(png: Uint8Array): { w: number; h: number; channels: number; pixels: Uint8Array } {
    const cs = chunks(png);
    const ihdr = new DataView(cs[0]!.data.buffer, cs[0]!.data.byteOffset, 13);
    const w = ihdr.getUint32(0);
    const h = ihdr.getUint32(4);
    const channels = cs[0]!.data[9] === 0 ? 1 : 3;
    const raw = inflateSync(Buffer.concat(cs.filter((c) => c.type === 'IDAT').map((c) => c.data)));
    const stride = w * channels;
    const pixels = new Uint8Array(stride * h);
    for (let y = 0; y < h; y++) {
      const f = raw[y * (stride + 1)]!;
      for (let x = 0; x < stride; x++) {
        const v = raw[y * (stride + 1) + 1 + x]!;
        const up = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
        pixels[y * stride + x] = f === 0 ? v : f === 2 ? (v + up) & 0xff : NaN;
      }
    }
    return { w, h, channels, pixels };
  }

  test('CRC-32 check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  test('greyscale and RGB images round-trip through a PNG decoder written here', () => {
    for (const channels of [1, 3] as const) {
      const w = 7;
      const h = 5;
      const px = Uint8Array.from({ length: w * h * channels }, (_, i) => (i * 37 + 11) & 0xff);
      const png = encodePng(w, h, channels, px);
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const cs = chunks(png);
      expect(cs.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
      expect(cs.every((c) => c.crcOk)).toBe(true);
      const d = decode(png);
      expect([d.w, d.h, d.channels]).toEqual([w, h, channels]);
      expect([...d.pixels]).toEqual([...px]);
    }
  });

  test('pixels [C,H,W] in [0,1] → 8 bits, clipped; enlargement and side by side', () => {
    const img = imageFromCHW(Float32Array.from([0, 0.5, 1, 2, -1, NaN]), [1, 2, 3]);
    expect([...img.data]).toEqual([0, 128, 255, 255, 0, 0]);
    const rgb = imageFromCHW(Float32Array.from([1, 0, 0, 1, 0, 0]), [3, 1, 2]);
    expect([...rgb.data]).toEqual([1, 0, 0, 0, 1, 0].map((v) => v * 255));
    const big = upscale(img, 3);
    expect([big.width, big.height]).toEqual([9, 6]);
    expect(big.data[0 * 9 + 4]).toBe(128);
    const both = sideBySide([img, rgb], 2);
    expect([both.width, both.height, both.channels]).toEqual([3 + 2 + 2, 2, 3]);
    expect(() => encodePng(2, 2, 1, new Uint8Array(3))).toThrow(/bytes/);
  });
});

describe('statistics', () => {
  const point = (x: number, y: number, tensor: string, g: number, b: number): TensorPoint => ({ step: 0, x, y, tensor, gradRms: g, bracketRms: b });

  test('grouped fit: one slope, one intercept per pair, exact on exact data', () => {
    // ln b = α_pair + 1.5 ln g with α = 0, 2: slope 1.5, R² 1
    const pts = [0.1, 0.2, 0.5, 1].flatMap((g, t) => [point(0, 1, `t${t}`, g, g ** 1.5), point(0, 2, `t${t}`, g, Math.exp(2) * g ** 1.5)]);
    const fit = groupedFit(pts, (p) => `${p.x},${p.y}`)!;
    expect(fit.slope).toBeCloseTo(1.5, 12);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fit.withinR2).toBeCloseTo(1, 12);
    expect(fit.groups).toBe(2);
    expect(fit.intercepts.get('0,2')!.alpha - fit.intercepts.get('0,1')!.alpha).toBeCloseTo(2, 12);
    expect(factorModelR2(pts)).toBeCloseTo(1, 12);
    // an interaction term: the factor model no longer explains everything
    const noisy = pts.map((p, i) => ({ ...p, bracketRms: p.bracketRms * (i === 3 ? 3 : 1) }));
    expect(factorModelR2(noisy)!).toBeLessThan(0.999);
    expect(groupedFit([point(0, 1, 'a', 1, 1)], () => 'g')).toBeNull();
  });

  test('label spreading keeps neighbours at least a gap apart, order kept', () => {
    const vals = [100, 101, 102, 1, 1000];
    const ys = spreadLogLabels(vals, 0.1).map(Math.log10);
    const sorted = [...ys].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(0.1 - 1e-9);
    expect(ys[0]!).toBeLessThan(ys[1]!);
    expect(ys[1]!).toBeLessThan(ys[2]!);
  });

  test('summary.json is read by its documented fields and ignores anything else', () => {
    expect(readSweepSummary(null)).toBeNull();
    expect(readSweepSummary([1, 2] as never)).toBeNull();
    const v = readSweepSummary({
      overall: {
        gradientFit: { slope: 1.2, r2: 0.9 },
        features: [{ feature: 'b', rank: 2, meanAbsEffect: 1 }, { feature: 'a', rank: 1, meanAbsEffect: 2, ci90: [1, 3] }, { nonsense: true }],
      },
    })!;
    expect(v.fits).toEqual([{ step: 'all', slope: 1.2, slopeStderr: null, r2: 0.9, withinR2: null, residualSd: null, n: null, tensorR2: null }]);
    expect(v.features.map((f) => f.feature)).toEqual(['a', 'b']);
    expect(v.features[0]!.ci).toEqual([1, 3]);
  });
});

describe('the report', () => {
  const full = join(tmp, 'full');
  syntheticRun(full, {
    labels: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    data: 'fashion-mnist',
    withAllPairs: true,
    withVerify: true,
  });

  test('one self-contained file: the three libraries inlined, no external resource, every figure present', () => {
    const html = buildReport(full, { now: new Date('2025-01-02T03:04:05Z') });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.match(/<script>/g)!.length).toBe(4); // vega, vega-lite, vega-embed, the embed calls
    has(html, '/* vega 6.');
    has(html, '/* vega-lite 6.');
    has(html, '/* vega-embed 7.');
    expect(/sourceMappingURL/.test(html)).toBe(false);
    // outside the libraries, every src/href is a data URI or an in-page anchor; a CSP forbids any fetch
    const page = html.replace(/<script>\/\* vega[\s\S]*?<\/script>/g, '');
    expect(page.length).toBeLessThan(html.length - 500_000);
    for (const m of page.matchAll(/\s(?:src|href)="([^"]*)"/g)) expect(m[1]).toMatch(/^(data:image\/png;base64,|#)/);
    has(html, `content="default-src 'none';`);
    expect(/<link\b|@import|url\(/i.test(page)).toBe(false);
    for (const id of ['logits', 'features', 'pairs', 'fit', 'training', 'verify', 'allpairs']) has(html, `id="fig-${id}"`);
    has(html, '2025-01-02 03:04');
    // thumbnails of the bracketed and probe examples
    expect(html.match(/<img src="data:image\/png;base64,/g)!.length).toBe(4 + 6);
    // the sweep's summary.json numbers appear in the statistics and the header
    has(html, '1.234');
    has(html, 'from sweep/summary.json');
  });

  test('every figure compiles with Vega-Lite and renders in Node without a warning, with marks', async () => {
    const { figures } = collectReport(full);
    expect(figures.filter((f) => f.spec).map((f) => f.id)).toEqual(['logits', 'features', 'pairs', 'fit', 'training', 'verify', 'allpairs']);
    for (const f of figures) {
      const warnings: string[] = [];
      const svg = await renderSvg(f.spec!, warnings, f.id);
      expect(warnings, f.id).toEqual([]);
      expect(svg.startsWith('<svg'), f.id).toBe(true);
      expect(svg.match(/role-mark/g)?.length ?? 0, f.id).toBeGreaterThan(0);
    }
  });

  test('hostile label names, run paths and config values are escaped everywhere', () => {
    const dir = join(tmp, `evil-${'<b>bold</b>'.replace(/\//g, '_')}`);
    syntheticRun(dir, {
      labels: [HOSTILE, HOSTILE_IMG, 'plain & simple', '"quoted"'],
      withAllPairs: true,
      configExtra: { data: '</script><script>alert(3)</script>' },
    });
    const html = buildReport(dir, { title: `${HOSTILE} report` });
    for (const raw of [HOSTILE, HOSTILE_IMG, '</script><script>alert(3)', '<b>bold', '<img src=x']) hasNot(html, raw);
    expect(html.match(/<script\b/gi)!.length).toBe(4);
    has(html, '&lt;script&gt;alert(1)&lt;/script&gt;'); // header list, tables, title
    has(html, '&lt;img src=x onerror=alert(2)&gt;');
    has(html, '&lt;b&gt;bold&lt;_b&gt;'); // the run path
    has(html, '\\u003cscript\\u003ealert(1)\\u003c/script\\u003e'); // inside the figures' JSON
    has(html, 'plain &amp; simple');
  });

  test('a run without checkpoints: its data opens through openConfigData (dataOptions only with the synthetic data)', () => {
    const wrong = join(tmp, 'data-options-wrong');
    mkdirSync(wrong, { recursive: true });
    writeFileSync(join(wrong, 'run.json'), JSON.stringify({ config: { data: 'fashion-mnist', loss: 'bce', dataOptions: { seed: 3 } } }));
    const a = loadRun(wrong);
    expect(a.notes.some((n) => n.includes('apply to the synthetic data only'))).toBe(true);
    const right = join(tmp, 'data-options-synthetic');
    mkdirSync(right, { recursive: true });
    writeFileSync(join(right, 'run.json'), JSON.stringify({ config: { data: 'synthetic', loss: 'bce', dataOptions: { seed: 3 } } }));
    const b = loadRun(right);
    expect(b.notes.some((n) => n.includes('could not be opened'))).toBe(false);
  });

  test('missing and malformed inputs become notes, not errors', () => {
    const dir = join(tmp, 'partial');
    syntheticRun(dir, { labels: ['a', 'b'], withSweep: false });
    let html = buildReport(dir);
    has(html, 'No sweep results in this run');
    has(html, 'No verify.json in this run');
    has(html, 'No sweep/allpairs.jsonl');
    has(html, 'id="fig-training"');
    hasNot(html, 'id="fig-logits"');

    const bad = join(tmp, 'bad');
    mkdirSync(join(bad, 'sweep'), { recursive: true });
    writeFileSync(join(bad, 'run.json'), '{ not json');
    writeFileSync(
      join(bad, 'sweep', 'results.jsonl'),
      [
        JSON.stringify({ step: 0, x: 0, y: 1, bracketNorm: 1, tensors: { w: { bracketRms: 'x' } }, probeEffects: [[1, -2]] }),
        '{"step": "zero"}',
        'garbage',
        JSON.stringify({ step: 0, x: 0, y: 2, bracketNorm: 2, probeEffects: [[0.5, null]] }),
        '{"step":1,"x":',
      ].join('\n'),
    );
    writeFileSync(join(bad, 'sweep', 'allpairs.jsonl'), JSON.stringify({ step: 0, indices: [0, 1], matrices: [[[0, 1]]] }) + '\n');
    writeFileSync(join(bad, 'verify.json'), JSON.stringify({ eps: [0.1, -1], relErrors: [1] }));
    html = buildReport(bad);
    has(html, 'run.json is not valid JSON');
    has(html, 'sweep/results.jsonl: 2 line(s) malformed');
    has(html, 'sweep/results.jsonl ends with an incomplete line');
    has(
      html,
      'sweep/results.jsonl:1 does not match its format (lossX: expected a number (null for NaN), got nothing); what can be read is shown (and 1 more line(s))',
    );
    has(html, 'sweep/allpairs.jsonl: 1 line(s) malformed');
    has(html, 'the swap verification is not shown');
    has(html, 'id="fig-logits"'); // two good lines are enough for the logit figure
    has(html, 'output 1'); // no names anywhere: generic ones
  });

  test('writeReport writes RUN/report.html atomically; the command writes SVG and PNG figures', async () => {
    const dir = join(tmp, 'cli');
    syntheticRun(dir, { labels: ['a', 'b', 'c'], data: 'fashion-mnist', withVerify: true });
    expect(writeReport(dir)).toBe(join(dir, 'report.html'));
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<!DOCTYPE html>');
    const figs = join(tmp, 'figs');
    const r = await runReport(dir, { out: join(tmp, 'cli.html'), png: figs });
    expect(existsSync(join(tmp, 'cli.html'))).toBe(true);
    expect(r.pngUnavailable).toBeNull();
    expect(r.exported.map((e) => e.id)).toEqual(r.figures);
    for (const e of r.exported) {
      expect(readFileSync(e.svg, 'utf8')).toMatch(/^<svg/);
      expect([...readFileSync(e.png!).subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    }
    const help = reportCommand().helpInformation();
    expect(help).toMatch(/--png <dir>/);
    expect(help).toMatch(/SVG and PNG/);
    await expect(runReport(join(tmp, 'nowhere'), {})).rejects.toThrow(/run directory not found/);
    await expect(runReport(tmp, {})).rejects.toThrow(/not a run directory/);
  }, 60_000);
});
