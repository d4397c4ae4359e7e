/**
 * The public API: what `import … from 'lie-bracket'` and `'lie-bracket/engine'` give. A change to
 * either list is a change of the package's interface: make it on purpose, here and in the README.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const MAIN = [
  'MODELS',
  'allPairsLogitEffects',
  'analyzePairs',
  'batch',
  'bce',
  'bracket',
  'ce',
  'convnet',
  'engine',
  'evalState',
  'featureScores',
  'firstKPairs',
  'getLoss',
  'getModel',
  'groupedLoss',
  'initBuffers',
  'initModel',
  'initOptimizerState',
  'logitEffect',
  'minibatchBracket',
  'mlp',
  'modelFromSpec',
  'modelLoss',
  'openDataset',
  'openRun',
  'optimizerStep',
  'optimizerSwap',
  'parseTrainConfig',
  'perExampleState',
  'probabilityEffect',
  'readSafetensors',
  'runStudy',
  'runSweep',
  'smoothconvnet',
  'train',
  'trainAsync',
  'trainState',
  'verifySwap',
  'writeReport',
  'writeSafetensors',
  'xresnet',
  'xresnetSpec',
];

const ENGINE = [
  'DTYPES',
  'PRIMS',
  'Rng',
  'Tensor',
  'Tracer',
  'Val',
  'abs',
  'activeKernels',
  'add',
  'allocBuf',
  'assertShape',
  'avgPool2d',
  'bceWithLogits',
  'bindConv',
  'bindConvFilterGrad',
  'bindConvInputGrad',
  'bindMaxPool',
  'bindMaxPoolScatter',
  'bnNormalize',
  'bnNormalizeJvp',
  'broadcastInDim',
  'broadcastShapes',
  'broadcastTo',
  'cast',
  'channelAffine',
  'channelMoments',
  'channelSums',
  'checkGrads',
  'compare',
  'concatenate',
  'concrete',
  'conv2d',
  'convParams',
  'div',
  'dtypeOf',
  'eq',
  'erf',
  'exp',
  'flatten',
  'fmtShape',
  'full',
  'gelu',
  'geluErf',
  'geluTanh',
  'grad',
  'gt',
  'hvp',
  'isDType',
  'isTensor',
  'isVal',
  'jvp',
  'log',
  'log1p',
  'logSoftmax',
  'logsumexp',
  'lt',
  'mapParams',
  'markKink',
  'matmul',
  'max',
  'maxPool2d',
  'maximum',
  'mean',
  'minimum',
  'mish',
  'mishComposite',
  'mishGrad',
  'mishGrad2',
  'mul',
  'neg',
  'normAxes',
  'onesLike',
  'pad',
  'pow',
  'primalValue',
  'recordTape',
  'relu',
  'replayTape',
  'reshape',
  'scalar',
  'setKernels',
  'setThreads',
  'shapesEqual',
  'sigmoid',
  'silu',
  'sizeOf',
  'slice',
  'sliceAxis',
  'softmax',
  'softmaxCrossEntropy',
  'softplus',
  'sqrt',
  'square',
  'stopGradient',
  'stridesOf',
  'sub',
  'sum',
  'tanh',
  'tensor',
  'threads',
  'transpose',
  'treeLeaves',
  'treeMap',
  'treeUnflatten',
  'valueAndGrad',
  'variance',
  'vjp',
  'where',
  'withKernels',
  'zeros',
  'zerosLike',
];

describe('public API', () => {
  test("'lie-bracket' exports exactly these names", async () => {
    expect(Object.keys(await import('../src/index.js')).sort()).toEqual(MAIN);
  });
  test("'lie-bracket/engine' exports exactly these names", async () => {
    expect(Object.keys(await import('../src/engine/index.js')).sort()).toEqual(ENGINE);
  });
  test('package.json exports only these entry points, each built from its source', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string; default: string }>;
    };
    expect(Object.keys(pkg.exports)).toEqual(['.', './engine', './package.json']);
    for (const [entry, src] of [
      ['.', 'src/index.ts'],
      ['./engine', 'src/engine/index.ts'],
    ] as const) {
      const target = pkg.exports[entry] as { types: string; default: string };
      expect(target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')).toBe(src);
      expect(target.types).toBe(target.default.replace(/\.js$/, '.d.ts'));
      expect(existsSync(join(ROOT, src))).toBe(true);
    }
  });
});
