/**
 * Bundles the live explorer's page for the browser (esbuild): src/explore/worker.ts (the engine,
 * its WebAssembly kernels inlined as base64, the models, losses and brackets) into worker.js, and
 * src/explore/browser/page.js, index.html and style.css, into dist/explore/assets/ (what
 * `lie-bracket explore` ships). Part of `npm run build`.
 *
 * The engine's Node-only modules are replaced in the bundle: node:os and node:worker_threads by a
 * stub where the thread count is 1 (isMainThread false: src/engine/kernels/threads.ts then starts
 * no kernel threads and reads no environment), src/bracket/parallel.ts by a stub whose brackets
 * are all serial (its second engine instance is a Node worker thread), node:crypto by one that throws if used (the data
 * sets' fingerprints, which the worker never asks for), and any other node: module by one whose
 * functions throw (file reading in modules the worker imports for other functions).
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'explore', 'assets');
const src = join(root, 'src', 'explore');

const STUBS = {
  os: 'export const availableParallelism = () => 1; export const cpus = () => [{}]; export const totalmem = () => 4e9;',
  worker_threads: `export const isMainThread = false;
export class Worker { constructor() { throw new Error('no kernel threads in the browser'); } }
`,
  parallel: `export function parallelBracket() { return null; }
export function noteSerialBracket() {}`,
  crypto: `export function createHash() { throw new Error('node:crypto is not available in the browser'); }`,
};

/**
 * Any other Node module (node:fs, node:path … imported by modules the worker reaches but whose
 * file-reading functions it never calls): every export a function that throws, so a call by
 * mistake fails loudly with the module's name.
 */
const unused = (name) => `module.exports = new Proxy({}, { get: (_, k) => k === '__esModule' ? false : () => {
  throw new Error('node:${name} is not available in the browser (' + String(k) + ')');
} });`;

const nodeStubs = {
  name: 'node-stubs',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path.slice(5), namespace: 'node-stub' }));
    // the bracket's second engine instance is a Node worker thread: in the browser, brackets are serial
    b.onResolve({ filter: /^\.\/parallel\.js$/ }, (args) =>
      args.importer.includes('/bracket/') ? { path: 'parallel', namespace: 'node-stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => {
      const contents = STUBS[args.path] ?? unused(args.path);
      return { contents, loader: 'js' };
    });
  },
};

mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(src, 'worker.ts')],
  outfile: join(out, 'worker.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  plugins: [nodeStubs],
  logLevel: 'warning',
});
await build({
  entryPoints: [join(src, 'browser', 'page.js')],
  outfile: join(out, 'page.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) copyFileSync(join(src, 'browser', f), join(out, f));
