#!/usr/bin/env node
// Write the shipped Fashion-MNIST subset: the first 5000 training and the first 1000 test examples
// of the full data set, as gzip IDX files with the standard names, plus a README.md.
//
//   node scripts/make-fashion-subset.mjs [SOURCE_DIR] [OUT_DIR]
//
// SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) and
// must hold the four standard files, gzipped or not. OUT_DIR defaults to data/fashion-mnist in the
// package root. The output is deterministic: same input, same bytes (gzip level 9, mtime 0).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
const OUT = process.argv[3] ?? join(ROOT, 'data', 'fashion-mnist');

const SUBSET = { train: 5000, t10k: 1000 };
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function die(msg) {
  console.error(`make-fashion-subset: ${msg}`);
  process.exit(1);
}

/** Read a ubyte IDX file (gzip or not) → {dims, data: Uint8Array (a view)}. */
function readIdxU8(base) {
  let path = join(SRC, base);
  if (!existsSync(path)) path += '.gz';
  if (!existsSync(path)) die(`${join(SRC, base)}(.gz) not found; pass the Fashion-MNIST directory as the first argument`);
  let b = readFileSync(path);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  if (b[0] !== 0 || b[1] !== 0 || b[2] !== 0x08) die(`${path}: not a ubyte IDX file`);
  const nd = b[3];
  const dims = [];
  for (let i = 0; i < nd; i++) dims.push(b.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * nd;
  const count = dims.reduce((a, d) => a * d, 1);
  if (b.length !== start + count) die(`${path}: ${b.length - start} data bytes, dims [${dims.join(',')}] need ${count}`);
  return { path, dims, data: b.subarray(start) };
}

function encodeIdxU8(dims, data) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

mkdirSync(OUT, { recursive: true });
const written = [];
for (const [prefix, n] of Object.entries(SUBSET)) {
  const img = readIdxU8(`${prefix}-images-idx3-ubyte`);
  const lbl = readIdxU8(`${prefix}-labels-idx1-ubyte`);
  const [count, rows, cols] = img.dims;
  if (img.dims.length !== 3 || lbl.dims.length !== 1 || lbl.dims[0] !== count) die(`${prefix}: image/label files do not match`);
  if (count < n) die(`${prefix}: only ${count} examples, need ${n}`);
  const outs = [
    [`${prefix}-images-idx3-ubyte.gz`, encodeIdxU8([n, rows, cols], img.data.subarray(0, n * rows * cols))],
    [`${prefix}-labels-idx1-ubyte.gz`, encodeIdxU8([n], lbl.data.subarray(0, n))],
  ];
  const hist = new Array(10).fill(0);
  for (const l of lbl.data.subarray(0, n)) hist[l]++;
  for (const [name, raw] of outs) {
    const gz = gzipSync(raw, { level: 9 });
    writeFileSync(join(OUT, name), gz);
    written.push({ name, bytes: gz.length, sha256: createHash('sha256').update(raw).digest('hex') });
  }
  written.push({ hist: { prefix, n, hist } });
}

const files = written.filter((w) => w.name);
const hists = written.filter((w) => w.hist).map((w) => w.hist);
const readme = `# Fashion-MNIST subset

A small subset of [Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist) by Zalando
Research (Han Xiao, Kashif Rasul, Roland Vollgraf, 2017), shipped so the package works offline.
28×28 grey-scale images of clothing, 10 classes.

## Subset rule

The first ${SUBSET.train} examples of the training set and the first ${SUBSET.t10k} examples of the
test set, in their original order, unmodified. Written by \`scripts/make-fashion-subset.mjs\` from
Debian's \`dataset-fashion-mnist\` package (\`/usr/share/datasets/fashion-mnist\`, the original
files of the full 60000/10000 data set); running the script again gives the same bytes.

Files are IDX (the MNIST format), gzip-compressed, with the standard names:

| file | bytes (gz) | sha256 of the uncompressed IDX |
|---|---:|---|
${files.map((f) => `| \`${String(f.name)}\` | ${f.bytes} | \`${String(f.sha256)}\` |`).join('\n')}

Examples per class (label 0..9):

${hists.map((h) => `- ${h.prefix === 'train' ? 'train' : 'test (t10k)'}: ${h.hist.join(', ')} (${h.n} in all)`).join('\n')}

To use the full data set, point the loader at a directory with the four standard files
(\`train-images-idx3-ubyte\`, \`train-labels-idx1-ubyte\`, \`t10k-images-idx3-ubyte\`,
\`t10k-labels-idx1-ubyte\`, each optionally with \`.gz\`).

## Classes

| label | class |
|---:|---|
${CLASSES.map((c, i) => `| ${i} | ${c} |`).join('\n')}

## License

Fashion-MNIST is released under the MIT License:

> The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com
>
> Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
> associated documentation files (the "Software"), to deal in the Software without restriction,
> including without limitation the rights to use, copy, modify, merge, publish, distribute,
> sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
> furnished to do so, subject to the following conditions:
>
> The above copyright notice and this permission notice shall be included in all copies or
> substantial portions of the Software.
>
> THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
> NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
> NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
> DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
> OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;
writeFileSync(join(OUT, 'README.md'), readme);
const total = files.reduce((a, f) => a + f.bytes, 0);
console.log(`wrote ${files.length} files (${total} bytes gzip) and README.md to ${OUT}`);
