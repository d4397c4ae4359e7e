/**
 * loadOnnx on small graphs built by scripts/make-onnx-op-fixtures.py (committed in
 * test/fixtures/onnx/ops): each graph's output equals numpy's float64 reference, derivatives
 * through a loaded graph pass the engine's gradient checks, and every malformed file or graph is a
 * one-line UserError.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, test } from 'vitest';
import { userError } from '../../test/expect-user-error.js';
import { Rng } from '../engine/random.js';
import * as o from '../engine/ops.js';
import { Tensor, type Val } from '../engine/tensor.js';
import { checkGrads } from '../engine/testing.js';
import { concrete, hvp } from '../engine/transforms.js';
import { evalState, perExampleState, trainState } from '../nn/layers.js';
import { initBuffers, initModel, type Model } from '../nn/models.js';
import { resolveModel } from '../study/resolve.js';
import { loadOnnx, ONNX_OPS, parseOnnx } from './onnx.js';

const { onnx } = onnxProto;
const DIR = 'test/fixtures/onnx/ops';
const tmp = mkdtempSync(join(tmpdir(), 'onnx-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Fixture {
  inputShape: number[];
  input: number[];
  outputShape: number[];
  output: number[];
}

function fixture(name: string): { model: Model; fx: Fixture; x: Tensor } {
  const fx = JSON.parse(readFileSync(`${DIR}/${name}.json`, 'utf8')) as Fixture;
  return { model: loadOnnx(`${DIR}/${name}.onnx`), fx, x: new Tensor(Float64Array.from(fx.input), fx.inputShape) };
}

function run(model: Model, x: Tensor, dtype: 'float32' | 'float64' = 'float64'): Tensor {
  const { params, buffers } = model.initialState!(dtype);
  const xin = dtype === 'float64' ? x : concrete(o.cast(x, 'float32'));
  return concrete(model.apply(params, xin, evalState(buffers)));
}

function maxRelErr(got: ArrayLike<number>, want: readonly number[]): number {
  const scale = Math.max(1, ...want.map(Math.abs));
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / scale);
  return e;
}

const OP_GRAPHS = ['cnn', 'attention', 'layernorm-chain', 'softmax-opset11', 'shapes', 'elementwise', 'mish-gelu', 'conv1d'];

describe('ONNX graphs against numpy (float64)', () => {
  for (const name of OP_GRAPHS) {
    test(name, () => {
      const { model, fx, x } = fixture(name);
      expect(model.inputShape).toEqual(fx.inputShape.slice(1));
      expect(model.numOutputs).toBe(fx.outputShape[1]);
      const y = run(model, x);
      expect(y.shape).toEqual(fx.outputShape);
      expect(maxRelErr(y.data, fx.output)).toBeLessThan(1e-12);
      // the same graph in float32
      const y32 = run(model, x, 'float32');
      expect(y32.dtype).toBe('float32');
      expect(maxRelErr(y32.data, fx.output)).toBeLessThan(1e-4);
    });
  }
});

describe('parameters, buffers and modes', () => {
  test('PyTorch names: parameters, BatchNorm buffers (with num_batches_tracked), initial state', () => {
    const { model, x } = fixture('cnn');
    expect(Object.keys(model.paramShapes)).toEqual(['conv1.weight', 'conv1.bias', 'bn1.weight', 'bn1.bias', 'conv2.weight', 'fc.weight', 'fc.bias']);
    expect(model.bufferShapes).toEqual({ 'bn1.running_mean': [4], 'bn1.running_var': [4], 'bn1.num_batches_tracked': [] });
    expect(model.paramShapes['conv1.weight']).toEqual([4, 2, 3, 2]);
    // initModel and initBuffers start from the file's weights, whatever the seed
    const p = initModel(model, 123, 'float32');
    expect(p['fc.weight']!.dtype).toBe('float32');
    const st = model.initialState!('float64');
    expect(Array.from(p['fc.bias']!.data)).toEqual(Array.from(Float32Array.from(st.params['fc.bias']!.data)));
    const b = initBuffers(model);
    expect(b['bn1.running_var']!.dtype).toBe('float64');
    expect(Array.from(b['bn1.running_var']!.data)).toEqual(Array.from(st.buffers['bn1.running_var']!.data));
    expect(b['bn1.num_batches_tracked']!.item()).toBe(0);
    // apply without a state: eval mode with the file's buffers
    expect(maxRelErr(concrete(model.apply(st.params, x)).data, Array.from(run(model, x).data))).toBe(0);
  });

  test("a fresh BatchNorm's statistics merged by the exporter into Identity(weight) and Identity(bias) are buffers of their own", () => {
    // torch.onnx.export dedups equal initializers: running_var (ones) → Identity(bn.weight), running_mean (zeros) → Identity(bn.bias)
    const m = onnx.ModelProto.decode(new Uint8Array(readFileSync(`${DIR}/cnn.onnx`)));
    const g = m.graph!;
    g.initializer = g.initializer!.filter((t) => t.name !== 'bn1.running_mean' && t.name !== 'bn1.running_var');
    g.node!.unshift(
      onnx.NodeProto.create({ opType: 'Identity', name: 'Identity_0', input: ['bn1.weight'], output: ['bn1.running_var'] }),
      onnx.NodeProto.create({ opType: 'Identity', name: 'Identity_1', input: ['bn1.bias'], output: ['bn1.running_mean'] }),
    );
    const model = parseOnnx(onnx.ModelProto.encode(m).finish(), 'dedup.onnx');
    expect(model.bufferShapes).toEqual({ 'bn1.running_mean': [4], 'bn1.running_var': [4], 'bn1.num_batches_tracked': [] });
    expect(Object.keys(model.paramShapes)).toContain('bn1.weight');
    const { params, buffers } = model.initialState!('float64');
    expect(Array.from(buffers['bn1.running_var']!.data)).toEqual(Array.from(params['bn1.weight']!.data));
    expect(Array.from(buffers['bn1.running_mean']!.data)).toEqual(Array.from(params['bn1.bias']!.data));
    // training moves the statistics, not the parameters they were copied from
    const { x } = fixture('cnn');
    const state = trainState(buffers);
    model.apply(params, x, state);
    expect(Array.from(state.updates['bn1.running_var']!.data)).not.toEqual(Array.from(params['bn1.weight']!.data));
    // an Identity that feeds anything else (a tied parameter) stays a node
    const m2 = onnx.ModelProto.decode(new Uint8Array(readFileSync(`${DIR}/cnn.onnx`)));
    const bnNode = m2.graph!.node!.find((n) => n.opType === 'BatchNormalization')!;
    m2.graph!.node!.unshift(onnx.NodeProto.create({ opType: 'Identity', name: 'Identity_0', input: ['bn1.weight'], output: ['tied'] }));
    bnNode.input![1] = 'tied';
    const tied = parseOnnx(onnx.ModelProto.encode(m2).finish(), 'tied.onnx');
    expect(Object.keys(tied.paramShapes)).not.toContain('tied');
  });

  test('Dropout is the identity in inference; a training-mode pass through a non-zero ratio is an error, not a silent skip', () => {
    const T = onnx.TensorProto.DataType.FLOAT;
    const vi = (name: string) =>
      onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: T, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }] } } } });
    const graph = (ratio: number) =>
      onnx.ModelProto.encode({
        irVersion: 7,
        opsetImport: [{ domain: '', version: 11 }],
        graph: {
          name: 'g',
          input: [vi('x')],
          output: [vi('y')],
          node: [{ opType: 'Dropout', name: 'drop', input: ['x'], output: ['y'], attribute: [{ name: 'ratio', type: onnx.AttributeProto.AttributeType.FLOAT, f: ratio }] }],
        },
      }).finish();
    const x = new Tensor(Float64Array.of(1, -2, 3, 4, 5, -6), [2, 3]);
    const m = parseOnnx(graph(0.1), 'drop.onnx');
    expect(Array.from(concrete(m.apply({}, x, evalState({}))).data)).toEqual(Array.from(x.data));
    expect(userError(() => m.apply({}, x, trainState({})))).toMatch(/node "drop" \(Dropout\).*training would skip its dropout \(ratio 0\.1/);
    const m0 = parseOnnx(graph(0), 'drop0.onnx');
    expect(Array.from(concrete(m0.apply({}, x, trainState({}))).data)).toEqual(Array.from(x.data));
  });

  test('BatchNormalization in training mode updates the running statistics; per-example mode does not', () => {
    const { model, x } = fixture('cnn');
    const { params, buffers } = model.initialState!('float64');
    const state = trainState(buffers);
    const yTrain = concrete(model.apply(params, x, state));
    expect(Object.keys(state.updates).sort()).toEqual(['bn1.num_batches_tracked', 'bn1.running_mean', 'bn1.running_var']);
    expect(state.updates['bn1.num_batches_tracked']!.item()).toBe(1);
    expect(Array.from(state.updates['bn1.running_mean']!.data)).not.toEqual(Array.from(buffers['bn1.running_mean']!.data));
    expect(maxRelErr(yTrain.data, Array.from(run(model, x).data))).toBeGreaterThan(1e-6);
    const pe = perExampleState(buffers);
    const y0 = concrete(model.apply(params, o.sliceAxis(x, 0, 0, 1), pe));
    const both = concrete(model.apply(params, x, perExampleState(buffers)));
    expect(maxRelErr(y0.data, Array.from(both.data).slice(0, y0.size))).toBeLessThan(1e-12);
    expect(Object.keys(pe.updates)).toEqual([]);
  });

  test('ONNX_OPS lists the supported ops', () => {
    for (const op of ['Conv', 'Gemm', 'MatMul', 'BatchNormalization', 'LayerNormalization', 'Softmax', 'Reshape', 'Erf', 'Gather', 'Slice']) {
      expect(ONNX_OPS).toContain(op);
    }
    expect([...ONNX_OPS].sort()).toEqual(ONNX_OPS);
  });
});

test("the README's table of supported ONNX ops lists exactly ONNX_OPS", () => {
  const readme = readFileSync('README.md', 'utf8');
  const table = readme.slice(readme.indexOf('<!-- onnx-ops'), readme.indexOf('<!-- /onnx-ops -->'));
  const listed = [...table.matchAll(/^\| [^|]+ \| (.*) \|$/gm)].flatMap((m) => [...m[1]!.matchAll(/`([A-Z][A-Za-z0-9]*)`/g)].map((k) => k[1]!));
  expect([...new Set(listed)].sort()).toEqual([...ONNX_OPS]);
});

describe('derivatives through a loaded graph (float64)', () => {
  /** The model as a function of its parameter list, on a fixed input. */
  function asFunction(name: string) {
    const { model, x } = fixture(name);
    const { params, buffers } = model.initialState!('float64');
    const names = Object.keys(params);
    const f = (xs: Val[]) => model.apply(Object.fromEntries(names.map((k, i) => [k, xs[i]!])), x, evalState(buffers));
    return { f, xs: names.map((k) => params[k]!) };
  }

  for (const name of ['attention', 'layernorm-chain']) {
    test(`${name}: gradient and HVP against finite differences, forward against reverse`, () => {
      const { f, xs } = asFunction(name);
      const r = checkGrads(f, xs, { seed: 3 });
      expect(r.jvpVsFd).toBeLessThan(1e-6);
      expect(r.adjoint).toBeLessThan(1e-10);
      expect(r.hvpVsFd).toBeLessThan(1e-5);
      expect(r.hvpFwdVsRev).toBeLessThan(1e-10);
    });
  }

  test('the Hessian of a loss through the graph is symmetric: ⟨u, H v⟩ = ⟨v, H u⟩', () => {
    const { f, xs } = asFunction('attention');
    const loss = (zs: Val[]) => o.sum(o.square(f(zs)));
    const rng = new Rng(5);
    const u = xs.map((t) => rng.normalTensor(t.shape));
    const v = xs.map((t) => rng.normalTensor(t.shape));
    const dot = (a: Val[], b: Tensor[]) => a.reduce((s, t, i) => s + concrete(o.sum(o.mul(t, b[i]!))).item(), 0);
    const uHv = dot(hvp(loss, xs, v).hvp, u);
    const vHu = dot(hvp(loss, xs, u).hvp, v);
    expect(Math.abs(uHv - vHu)).toBeLessThan(1e-10 * Math.max(1, Math.abs(uHv)));
  });
});

describe('errors', () => {
  const load = (name: string) => userError(() => loadOnnx(`${DIR}/${name}.onnx`));
  const bytes = (name: string) => new Uint8Array(readFileSync(`${DIR}/${name}.onnx`));

  test('missing file', () => {
    expect(load('no-such-model')).toMatch(/no-such-model\.onnx: file not found/);
  });
  test('truncated file and a file that is not a protobuf', () => {
    const b = bytes('cnn');
    expect(userError(() => parseOnnx(b.subarray(0, b.length - 40), 'cut.onnx'))).toMatch(/^cut\.onnx: not a valid ONNX file .*truncated/);
    const junk = join(tmp, 'junk.onnx');
    writeFileSync(junk, 'this is not an onnx model at all, just text');
    expect(userError(() => loadOnnx(junk))).toMatch(/not a valid ONNX file/);
  });
  test('no graph', () => {
    const b = onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }] }).finish();
    expect(userError(() => parseOnnx(b, 'empty.onnx'))).toMatch(/^empty\.onnx: not an ONNX model: it has no graph/);
  });
  test('external data', () => {
    const m = onnx.ModelProto.decode(bytes('conv1d'));
    const w = m.graph!.initializer![0]!;
    w.rawData = new Uint8Array(0);
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.externalData = [{ key: 'location', value: 'weights.bin' }];
    const b = onnx.ModelProto.encode(m).finish();
    expect(userError(() => parseOnnx(b, 'ext.onnx'))).toMatch(/initializer "w" keeps its data in an external file.*export with the weights inside/);
  });
  test('missing initializer', () => {
    expect(load('missing-init')).toMatch(/ONNX node "add_1" \(Add\): its input "w_missing" is missing/);
  });
  test('unsupported op', () => {
    const msg = load('unsupported-op');
    expect(msg).toMatch(/ONNX op Hardmax \(node "hm_1"\) is not supported; supported ops: .*Conv/);
  });
  test('more than one data input', () => {
    expect(load('two-inputs')).toMatch(/2 data inputs \(x, x2\)/);
  });
  test('unsupported attribute value', () => {
    expect(load('ceil-mode')).toMatch(/ONNX node "pool_1" \(MaxPool\): ceil_mode=1 is not supported/);
  });
  test('an operand that must be constant depends on the data', () => {
    expect(load('data-shape')).toMatch(/ONNX node "Reshape_12" \(Reshape\): its shape input depends on the data/);
    expect(load('data-exponent')).toMatch(/ONNX node "pow_1" \(Pow\): its exponent depends on the data/);
  });
  test('wrong input rank or shape', () => {
    const { model, x } = fixture('attention');
    const { params } = model.initialState!('float64');
    expect(userError(() => model.apply(params, o.reshape(x, [2, 12])))).toMatch(/takes input \[N,3,4\], got \[2,12\]/);
    expect(userError(() => model.apply(params, o.reshape(x, [2, 4, 3])))).toMatch(/takes input \[N,3,4\], got \[2,4,3\]/);
  });
});

describe('resolveModel', () => {
  test('a .onnx path is loaded and checked against the data set', () => {
    const ds = { inputShape: [2, 7, 7] as const, labelNames: ['a', 'b', 'c'], name: 'fake' };
    const m = resolveModel(`${DIR}/cnn.onnx`, ds);
    expect(m.name).toBe('cnn');
    expect(m.numOutputs).toBe(3);
    expect(userError(() => resolveModel(`${DIR}/cnn.onnx`, { ...ds, labelNames: ['a', 'b'] }))).toMatch(/has 3 outputs but fake has 2 labels/);
    expect(userError(() => resolveModel(`${DIR}/cnn.onnx`, { ...ds, inputShape: [1, 7, 7] as const }))).toMatch(/takes input \[2,7,7\] but fake has \[1,7,7\]/);
    expect(userError(() => resolveModel(`${DIR}/nope.onnx`, ds))).toMatch(/nope\.onnx: file not found/);
  });
});
