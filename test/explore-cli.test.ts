/**
 * Issue 14, `lie-bracket explore`: its bad input (a missing run, a bad port, a non-empty --static
 * directory …) is one line on stderr with exit code 2, like every command's; --static writes the
 * page and the run's data, and may replace its own earlier output; the server answers with the
 * page, its files and the isolation headers, and nothing else.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { captureOutput, expectOneLineError } from './capture-output.js';
import { runExplore } from '../src/cli/explore.js';
import { main } from '../src/cli/main.js';
import { openDataset } from '../src/data/registry.js';
import { MARKER, serveExplorer, serveFiles } from '../src/explore/files.js';
import type { Manifest } from '../src/explore/protocol.js';
import { resolveModel } from '../src/study/resolve.js';
import { lossFor, parseTrainConfig, train } from '../src/study/train.js';

const io = captureOutput();
const run = (...args: string[]) => main(['node', 'lie-bracket', ...args]);
const tmp = mkdtempSync(join(tmpdir(), 'lb-explore-cli-'));
const runDir = join(tmp, 'run');

beforeAll(() => {
  execFileSync(process.execPath, [resolve(import.meta.dirname, '..', 'scripts', 'build-explorer.mjs')]);
  const config = parseTrainConfig(
    { model: 'mlp', loss: 'bce', steps: 2, evalSize: 50, evalEvery: 2, batchSize: 16, checkpointSteps: [0, 2] },
    'fixture',
  );
  const trainSet = openDataset(config.data, 'train', { loss: config.loss });
  const testSet = openDataset(config.data, 'test', { loss: config.loss });
  train({ config, model: resolveModel(config.model, trainSet), loss: lossFor(config, trainSet), train: trainSet, test: testSet }, runDir);
}, 120_000);

describe('lie-bracket explore: bad input', () => {
  test('a missing run directory', async () => {
    expectOneLineError(io, await run('explore', join(tmp, 'nope')), /nope: run directory not found/);
  });
  test('a directory that is not a run', async () => {
    const d = join(tmp, 'not-a-run');
    mkdirSync(d, { recursive: true });
    expectOneLineError(io, await run('explore', d), /not a run directory \(no run\.json\)/);
  });
  test('a bad port', async () => {
    for (const p of ['70000', 'abc', '-1', '8.5']) {
      io.err = '';
      expectOneLineError(io, await run('explore', runDir, '--port', p), /--port must be an integer 0…65535/);
    }
  });
  test('a port in use', async () => {
    const s = await serveFiles(new Map(), 0);
    try {
      const port = new URL(s.url).port;
      expectOneLineError(io, await run('explore', runDir, '--port', port), new RegExp(`--port ${port}: the port is in use`));
    } finally {
      await s.close();
    }
  });
  test('a non-empty --static directory that is not an explorer output, and a file', async () => {
    const d = join(tmp, 'full');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'keep.txt'), 'mine');
    expectOneLineError(
      io,
      await run('explore', runDir, '--static', d),
      /--static .*full: the directory is not empty and is not a previous explorer output/,
    );
    expect(readdirSync(d)).toEqual(['keep.txt']);
    io.err = '';
    expectOneLineError(io, await run('explore', runDir, '--static', join(d, 'keep.txt')), /exists and is not a directory/);
    io.err = '';
    expectOneLineError(io, await run('explore', runDir, '--static', join(tmp, 'no', 'such', 'parent')), /parent directory .* does not exist/);
  });
  test('--steps that the run does not have, or that are not steps', async () => {
    expectOneLineError(
      io,
      await run('explore', runDir, '--steps', '0,7', '--static', join(tmp, 's7')),
      /--steps: the run has no checkpoint at step 7; available: 0, 2/,
    );
    io.err = '';
    expectOneLineError(io, await run('explore', runDir, '--steps', '0,x'), /--steps must be checkpoint steps/);
    expect(existsSync(join(tmp, 's7'))).toBe(false);
  });
  test('a gallery too small for a pair', async () => {
    expectOneLineError(io, await run('explore', runDir, '--gallery', '1', '--static', join(tmp, 'g1')), /--gallery must be an integer ≥ 2/);
  });
});

describe('lie-bracket explore --static', () => {
  test('writes the page, the bundle and the run’s data; replaces its own earlier output', async () => {
    const d = join(tmp, 'site');
    expect(await run('explore', runDir, '--static', d, '--gallery', '40')).toBe(0);
    expect(io.out).toMatch(/wrote the explorer of .* \(\d+ files/);
    for (const f of [
      'index.html',
      'page.js',
      'worker.js',
      'style.css',
      'explorer.json',
      'examples.bin',
      'ckpt/0.bin',
      'ckpt/2.bin',
      '_headers',
      MARKER,
    ])
      expect(existsSync(join(d, f)), f).toBe(true);
    const m = JSON.parse(readFileSync(join(d, 'explorer.json'), 'utf8')) as Manifest;
    expect(m.examples.count).toBe(40);
    expect(m.steps).toEqual([0, 2]);
    expect(m.probes).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(readFileSync(join(d, 'examples.bin')).length).toBe(40 * 784 * 4);
    expect(readFileSync(join(d, 'ckpt/2.bin')).length).toBe(m.paramCount * 4);
    // the engine's WebAssembly kernels travel inside the worker's bundle (base64 of "\0asm")
    expect(readFileSync(join(d, 'worker.js'), 'utf8').includes('"AGFzbQ')).toBe(true);
    // again: a previous explorer output is replaced, nothing else left behind
    expect(await run('explore', runDir, '--static', d, '--gallery', '10')).toBe(0);
    expect((JSON.parse(readFileSync(join(d, 'explorer.json'), 'utf8')) as Manifest).examples.count).toBe(10);
    // --steps: only those checkpoints
    expect(await run('explore', runDir, '--static', d, '--steps', '2', '--json')).toBe(0);
    expect(JSON.parse(io.out.trim().split('\n').at(-1)!)).toMatchObject({ static: d, files: 9 });
    expect((JSON.parse(readFileSync(join(d, 'explorer.json'), 'utf8')) as Manifest).steps).toEqual([2]);
    expect(existsSync(join(d, 'ckpt/0.bin'))).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('the explorer’s server', () => {
  test('lie-bracket explore RUN --port 0 --json: says where it serves, serves until stopped', async () => {
    const stop = new AbortController();
    const served = runExplore(runDir, { port: 0, json: true }, stop.signal);
    for (let i = 0; i < 200 && io.out === ''; i++) await new Promise((r) => setTimeout(r, 20));
    const { url, steps } = JSON.parse(io.out) as { url: string; steps: number[] };
    expect(steps).toEqual([0, 2]);
    expect((await fetch(url)).status).toBe(200);
    stop.abort();
    await served;
    await expect(fetch(url)).rejects.toThrow();
  });

  test('serves the page and its files with the isolation headers; 404 for anything else, 405 for other methods', async () => {
    const s = await serveExplorer(runDir, 0, { gallery: 8 });
    try {
      const page = await fetch(s.url);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
      expect(await page.text()).toMatch(/data-testid="checkpoint-slider"/);
      expect((await fetch(`${s.url}worker.js`)).headers.get('content-type')).toMatch(/javascript/);
      expect(((await (await fetch(`${s.url}explorer.json`)).json()) as Manifest).examples.count).toBe(8);
      for (const p of ['nope', '../run.json', MARKER, '_headers']) expect((await fetch(`${s.url}${p}`)).status, p).toBe(404);
      expect((await fetch(s.url, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${s.url}%E0%A4%A`)).status).toBe(400);
      expect((await fetch(s.url)).status).toBe(200); // still serving
    } finally {
      await s.close();
    }
  });
});
