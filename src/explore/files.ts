/**
 * `lie-bracket explore`'s files: the page, its bundled script and Web Worker (the engine with its
 * WebAssembly kernels, built by scripts/build-explorer.mjs into dist/explore/assets), and a run's
 * data for it — explorer.json (the manifest: model, loss, labels, gallery targets and thumbnails),
 * examples.bin (the gallery's pixels, float32) and ckpt/<step>.bin (each checkpoint's parameters
 * and BatchNorm buffers, float32). Served from memory on localhost (serveExplorer) or written as
 * static files (writeStaticExplorer).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, dirname, join, resolve } from 'node:path';
import type { Vec } from '../bracket/vec.js';
import { UserError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import { xresnetSpec } from '../nn/spec.js';
import { imageDataUri, imageFromCHW } from '../report/png.js';
import { openRun, type Run } from '../study/run.js';
import { resolveGroups } from '../study/train.js';
import type { Manifest, ModelDescriptor, TensorEntry } from './protocol.js';

/** The gallery's default size: the first 256 test examples. */
export const DEFAULT_GALLERY = 256;
/** The default probe batch: the first 32 test examples. */
export const DEFAULT_PROBES = 32;
/** The file that marks a directory as the explorer's output (a later --static may replace it). */
export const MARKER = '.lie-bracket-explorer';
/** The page's own files, from the bundle. */
export const ASSETS = ['index.html', 'page.js', 'worker.js', 'style.css'] as const;

export interface ExplorerOptions {
  /** Test examples 0…gallery−1 in the gallery (default DEFAULT_GALLERY, at most the test split). */
  gallery?: number;
  /** The checkpoints shipped (default: all of the run's), each one of its steps. */
  steps?: readonly number[];
}

/** Where the bundled page is (dist/explore/assets, from `npm run build`). */
export function assetsDir(): string {
  return join(PACKAGE_ROOT, 'dist', 'explore', 'assets');
}

function readAssets(): Map<string, Uint8Array> {
  const dir = assetsDir();
  const out = new Map<string, Uint8Array>();
  for (const f of ASSETS) {
    const p = join(dir, f);
    if (!existsSync(p)) throw new UserError(`the explorer's page is not built (${p} is missing); run npm run build`);
    out.set(f, readFileSync(p));
  }
  return out;
}

function modelDescriptor(run: Run): ModelDescriptor {
  const m = run.config.model;
  if (typeof m !== 'string') return { spec: m, name: run.model.name };
  if (/\.onnx$/i.test(m)) throw new UserError(`${run.dir}: the explorer cannot run ONNX models (${m}) yet; use a preset or a JSON spec model`);
  if (m.endsWith('.json')) return { spec: JSON.parse(readFileSync(m, 'utf8')) as unknown, name: basename(m).replace(/\.json$/, '') };
  if (m === 'xresnet') return { spec: xresnetSpec({ input: [...run.test.inputShape], outputs: run.test.labelNames.length }), name: run.model.name };
  return { preset: m };
}

function packTensors(v: Vec, offset: number): { entries: TensorEntry[]; parts: Float32Array[]; length: number } {
  const entries: TensorEntry[] = [];
  const parts: Float32Array[] = [];
  let at = offset;
  for (const [name, t] of Object.entries(v)) {
    const f = Float32Array.from(t.data);
    entries.push({ name, shape: [...t.shape], offset: at, length: f.length });
    parts.push(f);
    at += f.length;
  }
  return { entries, parts, length: at - offset };
}

function bytesOf(parts: readonly Float32Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const all = new Float32Array(n);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(all.buffer);
}

/** Every file of the explorer for run `runDir`, by path relative to the page. */
export function explorerFiles(runDir: string, opts: ExplorerOptions = {}): { files: Map<string, Uint8Array>; manifest: Manifest } {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new UserError(`${runDir}: run directory not found`);
  const assets = readAssets();
  const run = openRun(runDir);
  const ds = run.test;
  const count = Math.min(opts.gallery ?? DEFAULT_GALLERY, ds.length);
  if (count < 2) throw new UserError(`--gallery: at least 2 examples are needed to form a pair (the test split has ${ds.length})`);
  const [c, h, w] = ds.inputShape;
  const px = c * h * w;
  const pixels = new Float32Array(count * px);
  const targets: number[][] = [];
  const thumbs: string[] = [];
  for (let i = 0; i < count; i++) {
    const ex = ds.get(i);
    pixels.set(ex.x, i * px);
    targets.push(Array.from(ex.y));
    thumbs.push(imageDataUri(imageFromCHW(ex.x, ds.inputShape)));
  }
  const files = new Map<string, Uint8Array>(assets);
  let params: TensorEntry[] = [];
  let buffers: TensorEntry[] = [];
  const missing = (opts.steps ?? []).filter((s) => !run.steps.includes(s));
  if (missing.length > 0) throw new UserError(`--steps: the run has no checkpoint at step ${missing.join(', ')}; available: ${run.steps.join(', ')}`);
  const steps = opts.steps ? [...new Set(opts.steps)].sort((a, b) => a - b) : run.steps;
  for (const step of steps) {
    const ck = run.checkpoint(step);
    const p = packTensors(ck.params, 0);
    const b = packTensors(ck.buffers, p.length);
    params = p.entries;
    buffers = b.entries;
    files.set(`ckpt/${step}.bin`, bytesOf([...p.parts, ...b.parts]));
  }
  const manifest: Manifest = {
    format: 'lie-bracket-explorer/1',
    run: basename(resolve(runDir)),
    model: modelDescriptor(run),
    modelName: run.model.name,
    paramCount: params.reduce((a, e) => a + e.length, 0),
    loss: { name: run.config.loss, groups: resolveGroups(run.config, run.train), numOutputs: ds.labelNames.length },
    data: run.config.data,
    labelNames: ds.labelNames,
    labelKind: ds.labelKind,
    oneOfK: targets.every((t) => t.filter((v) => v > 0.5).length === 1),
    inputShape: ds.inputShape,
    steps,
    params,
    buffers,
    examples: { count, targets, thumbs },
    probes: Array.from({ length: Math.min(DEFAULT_PROBES, count) }, (_, i) => i),
  };
  files.set('explorer.json', new TextEncoder().encode(JSON.stringify(manifest)));
  files.set('examples.bin', new Uint8Array(pixels.buffer));
  // for static hosts that read it (Netlify, Cloudflare Pages): cross-origin isolation, so that the
  // WebAssembly kernels get their shared memory, and the page's content policy
  files.set(
    '_headers',
    new TextEncoder().encode(
      `/*\n${Object.entries(HEADERS)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join('\n')}\n`,
    ),
  );
  files.set(MARKER, new TextEncoder().encode('written by lie-bracket explore --static; a later --static may replace this directory\n'));
  return { files, manifest };
}

/**
 * Headers of every response: cross-origin isolation (the engine's WebAssembly memory is shared;
 * a browser that allows shared memory only in an isolated page would otherwise give the worker the
 * plain-JS kernels, with the same results to float32 rounding — Chromium 14x runs the WebAssembly
 * kernels in the worker either way) and a content policy that lets nothing load from, or be sent
 * to, another origin.
 */
export const HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
};

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  bin: 'application/octet-stream',
};

/** `--static DIR`: refuse a non-empty DIR unless it holds a previous explorer output (MARKER). */
function checkTarget(dir: string): boolean {
  if (!existsSync(dir)) return false;
  if (!statSync(dir).isDirectory()) throw new UserError(`--static ${dir}: exists and is not a directory`);
  const entries = readdirSync(dir);
  if (entries.length === 0) return true;
  if (!entries.includes(MARKER)) {
    throw new UserError(
      `--static ${dir}: the directory is not empty and is not a previous explorer output (no ${MARKER}); give a new or empty directory`,
    );
  }
  return true;
}

/** Write the explorer as static files into `dir`: into a temporary sibling first, then renamed into place. */
export function writeStaticExplorer(runDir: string, dir: string, opts: ExplorerOptions = {}): { dir: string; files: number; bytes: number } {
  const exists = checkTarget(dir);
  const { files } = explorerFiles(runDir, opts);
  const parent = dirname(resolve(dir));
  if (!existsSync(parent)) throw new UserError(`--static ${dir}: the parent directory ${parent} does not exist`);
  const tmp = join(parent, `.${basename(resolve(dir))}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  let bytes = 0;
  try {
    for (const [name, data] of files) {
      const p = join(tmp, name);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, data);
      bytes += data.length;
    }
    if (exists) {
      const old = `${tmp}-old`;
      renameSync(dir, old);
      renameSync(tmp, dir);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, files: files.size, bytes };
}

export interface ServedExplorer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serve files on localhost (`port` 0: any free port), GET and HEAD only, with HEADERS on every response. */
export function serveFiles(files: ReadonlyMap<string, Uint8Array>, port: number, host = '127.0.0.1'): Promise<ServedExplorer> {
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).replace(/^\/+/, '') || 'index.html';
    } catch {
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end('bad request\n'); // a malformed %-escape
      return;
    }
    const data = files.get(path);
    for (const [k, v] of Object.entries(HEADERS)) res.setHeader(k, v);
    res.setHeader('Cache-Control', 'no-cache');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (!data || path === MARKER || path === '_headers') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.replace(/^.*\./, '')] ?? 'application/octet-stream', 'Content-Length': data.length });
    res.end(req.method === 'HEAD' ? undefined : data);
  });
  return new Promise((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      fail(
        e.code === 'EADDRINUSE'
          ? new UserError(`--port ${port}: the port is in use; choose another (or 0 for any free port)`)
          : e.code === 'EACCES'
            ? new UserError(`--port ${port}: not allowed to listen there; choose a port above 1023`)
            : e,
      );
    });
    server.listen(port, host, () => {
      const a = server.address();
      const p = typeof a === 'object' && a !== null ? a.port : port;
      ok({
        url: `http://${host}:${p}/`,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** `lie-bracket explore RUN`: the explorer of a run, served on localhost. */
export function serveExplorer(runDir: string, port: number, opts: ExplorerOptions = {}): Promise<ServedExplorer & { manifest: Manifest }> {
  const { files, manifest } = explorerFiles(runDir, opts);
  return serveFiles(files, port).then((s) => ({ ...s, manifest }));
}
