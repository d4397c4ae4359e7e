#!/usr/bin/env node
/**
 * Compiles the WebAssembly SIMD kernels (AssemblyScript: the entry src/engine/kernels/wasm/kernels.as.ts
 * and the gemm, conv, pool, elementwise and common sources it imports) and writes
 * src/engine/kernels/wasm/kernels.wasm.ts, a generated module that holds two builds of the same
 * sources as base64 strings: the plain SIMD module (WASM_BASE64) and the relaxed-SIMD one
 * (WASM_RELAXED_BASE64, compiled with `--enable relaxed-simd` as well, so that
 * ASC_FEATURE_RELAXED_SIMD is true and the float32 GEMM micro-kernels, shared by the conv family,
 * use f32x4.relaxed_madd). src/engine/kernels/wasm.ts runs the relaxed one where
 * WebAssembly.validate accepts it, else the plain one. The generated file is committed, so that a fresh clone type-checks and
 * runs its tests before any build; `npm run build` regenerates it, and a test
 * (src/engine/kernels/wasm.test.ts, through `--check`) fails if it is stale.
 *
 *   node scripts/build-wasm.mjs            regenerate the file; skipped when the file records the
 *                                          same sources, flags and compiler version (a compile
 *                                          takes seconds), or, with a notice, when assemblyscript
 *                                          is not installed
 *   node scripts/build-wasm.mjs --force    recompile even if the recorded inputs are unchanged
 *   node scripts/build-wasm.mjs --check    compile and exit 1 if the committed file differs from
 *                                          the result (either module); exit 3 if assemblyscript is
 *                                          not installed
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, 'src', 'engine', 'kernels', 'wasm');
const ENTRY = join(DIR, 'kernels.as.ts');
/** Every AssemblyScript source of the module (*.as.ts in wasm/, sorted): all of them are inputs of the digest. */
const SOURCES = readdirSync(DIR)
  .filter((f) => f.endsWith('.as.ts'))
  .sort();
const TARGET = join(DIR, 'kernels.wasm.ts');

/**
 * Compiler flags: SIMD, fully optimised, no runtime, no abort import, no assertions; the memory
 * imported (env.memory) and shared, for the kernel worker threads (src/engine/kernels/threads.ts)
 * that run the same module on the calling thread's memory: a shared memory needs the threads
 * feature and a maximum (65536 pages: all of wasm32's 4 GiB); the initial size (4 pages) is
 * INITIAL_PAGES in src/engine/kernels/wasm.ts; and the memory is known to start zeroed, so that
 * the 64 KiB packing buffer needs no data segment (an instantiation in a worker rewrites the
 * module's data segments, which must therefore be only the constant tables).
 */
const FLAGS = [
  '--enable',
  'simd',
  '--enable',
  'threads',
  '--importMemory',
  '--sharedMemory',
  '--zeroFilledMemory',
  '--initialMemory',
  '4',
  '--maximumMemory',
  '65536',
  '-O3',
  '--runtime',
  'stub',
  '--noAssert',
  '--use',
  'abort=',
  '--noColors',
];
/** The relaxed-SIMD build: the same flags, plus the relaxed-simd feature. */
const RELAXED_FLAGS = [...FLAGS, '--enable', 'relaxed-simd'];

function ascVersion() {
  const pkg = join(ROOT, 'node_modules', 'assemblyscript', 'package.json');
  return existsSync(pkg) ? JSON.parse(readFileSync(pkg, 'utf8')).version : null;
}

/** A digest of everything the binary depends on: every source (name and text), the flags, the compiler version. */
function inputsDigest(version) {
  const h = createHash('sha256');
  for (const f of SOURCES)
    h.update(`${f}\0`)
      .update(readFileSync(join(DIR, f)))
      .update('\0');
  return h.update(JSON.stringify(FLAGS)).update(JSON.stringify(RELAXED_FLAGS)).update(version).digest('hex');
}

async function compile() {
  let asc;
  try {
    asc = (await import('assemblyscript/asc')).default;
  } catch {
    return null;
  }
  const plain = await compileWith(asc, FLAGS);
  const relaxed = await compileWith(asc, RELAXED_FLAGS);
  return { binary: plain, relaxed, version: ascVersion() };
}

async function compileWith(asc, flags) {
  let binary = null;
  const out = [];
  const stream = {
    write: (s) => {
      out.push(String(s));
      return true;
    },
  };
  const { error } = await asc.main([ENTRY, ...flags, '--outFile', 'kernels.wasm'], {
    stdout: stream,
    stderr: stream,
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = contents;
    },
  });
  if (error || binary === null) {
    throw new Error(`build-wasm: compilation failed\n${out.join('')}${error ? String(error) : ''}`);
  }
  return Buffer.from(binary);
}

function base64Lines(binary) {
  const b64 = binary.toString('base64');
  const lines = [];
  for (let i = 0; i < b64.length; i += 100) lines.push(`  '${b64.slice(i, i + 100)}'`);
  return `${lines.join(' +\n')};`;
}

function render({ binary, relaxed, version }) {
  const sha = (b) => createHash('sha256').update(b).digest('hex');
  const shown = (flags) => flags.filter((f) => f !== '--noColors').join(' ');
  return [
    `// Generated by scripts/build-wasm.mjs from ${SOURCES.join(', ')}; do not edit (run \`npm run build\`).`,
    `// assemblyscript ${version}, asc ${shown(FLAGS)}`,
    `// simd: ${binary.length} bytes, sha256 ${sha(binary)}`,
    `// relaxed-simd (+ --enable relaxed-simd): ${relaxed.length} bytes, sha256 ${sha(relaxed)}`,
    `// inputs ${inputsDigest(version)}`,
    '',
    '/** The compiled kernels (a WebAssembly module using SIMD), base64. */',
    'export const WASM_BASE64 =',
    base64Lines(binary),
    '',
    '/** The same sources compiled with relaxed SIMD as well (f32x4.relaxed_madd in the float32 GEMM micro-kernels), base64. */',
    'export const WASM_RELAXED_BASE64 =',
    base64Lines(relaxed),
    '',
  ].join('\n');
}

const check = process.argv.includes('--check');
const force = process.argv.includes('--force');
const version = ascVersion();
if (!check && !force && version !== null && existsSync(TARGET) && readFileSync(TARGET, 'utf8').includes(`// inputs ${inputsDigest(version)}\n`)) {
  console.error('build-wasm: src/engine/kernels/wasm/kernels.wasm.ts is up to date (same sources, flags and assemblyscript version)');
  process.exit(0);
}
const built = await compile();
if (built === null) {
  const msg = 'build-wasm: assemblyscript is not installed; keeping the committed src/engine/kernels/wasm/kernels.wasm.ts';
  if (check) {
    console.error(msg);
    process.exit(3);
  }
  console.warn(msg);
  process.exit(0);
}
const text = render(built);
if (check) {
  const current = existsSync(TARGET) ? readFileSync(TARGET, 'utf8') : '';
  if (current !== text) {
    console.error('build-wasm: src/engine/kernels/wasm/kernels.wasm.ts is stale: run `node scripts/build-wasm.mjs` (or `npm run build`)');
    process.exit(1);
  }
  console.error(`build-wasm: kernels.wasm.ts is up to date (${built.binary.length} + ${built.relaxed.length} bytes)`);
} else {
  const current = existsSync(TARGET) ? readFileSync(TARGET, 'utf8') : '';
  if (current !== text) writeFileSync(TARGET, text);
  console.error(
    `build-wasm: ${current === text ? 'unchanged' : 'wrote'} src/engine/kernels/wasm/kernels.wasm.ts (${built.binary.length} + ${built.relaxed.length} bytes)`,
  );
}
