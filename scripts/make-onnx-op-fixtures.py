#!/usr/bin/python3
"""Small ONNX graphs, one per group of operators, for src/data/onnx.test.ts.

Builds each graph with onnx.helper (the Debian `onnx` package; no PyTorch, no onnxruntime),
computes its output for a fixed input with numpy in float64 (the operator semantics written out
by hand, from the ONNX operator specs), and writes test/fixtures/onnx/ops/<name>.onnx plus
<name>.json ({"inputShape", "input", "outputShape", "output"}, flat row-major lists). Also writes
the malformed graphs the error tests load (<name>.onnx without a .json).

    /usr/bin/python3 scripts/make-onnx-op-fixtures.py
"""
import json
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'onnx', 'ops')
D = TensorProto.DOUBLE
I64 = TensorProto.INT64
INT64_MAX = 2**63 - 1
rng = np.random.default_rng(7)
# float attributes (epsilon, alpha) are float32 in ONNX: the references use the stored values
f32 = lambda v: float(np.float32(v))


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def const(name, array):
    """A Constant node with a tensor value."""
    return helper.make_node('Constant', [], [name], name=name, value=numpy_helper.from_array(np.asarray(array), name))


def save(name, nodes, inits, x, y, opset, in_shape=None, out_shape=None, extra_inputs=()):
    """Write <name>.onnx (and <name>.json when y is given). x: one example batch (float64)."""
    in_dims = in_shape if in_shape is not None else ['batch', *x.shape[1:]]
    out_dims = out_shape if out_shape is not None else (['batch', y.shape[1]] if y is not None else None)
    inputs = [helper.make_tensor_value_info('x', D, in_dims), *extra_inputs]
    outputs = [helper.make_tensor_value_info('y', D, out_dims)]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], producer_name='make-onnx-op-fixtures')
    model.ir_version = 8
    with open(os.path.join(OUT, f'{name}.onnx'), 'wb') as f:
        f.write(model.SerializeToString())
    if y is not None:
        doc = {
            'inputShape': list(x.shape),
            'input': x.reshape(-1).tolist(),
            'outputShape': list(y.shape),
            'output': y.reshape(-1).tolist(),
        }
        with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
            json.dump(doc, f)
            f.write('\n')


# ------------------------------------------------------------------ numpy references


def conv2d(x, w, b, stride, lo, hi, dil, group):
    x = np.pad(x, ((0, 0), (0, 0), (lo[0], hi[0]), (lo[1], hi[1])))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    og = o // group
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = x[:, g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + dil[0] * (kh - 1) + 1:dil[0], j * stride[1]:j * stride[1] + dil[1] * (kw - 1) + 1:dil[1]]
                y[:, oc, i, j] = np.sum(patch * w[oc], axis=(1, 2, 3))
    return y + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def pool(x, k, s, lo, hi, kind, count_include_pad=0):
    fill = -np.inf if kind == 'max' else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (lo[0], hi[0]), (lo[1], hi[1])), constant_values=fill)
    ones = np.pad(np.ones(x.shape[2:]), ((lo[0], hi[0]), (lo[1], hi[1])))
    oh = (xp.shape[2] - k[0]) // s[0] + 1
    ow = (xp.shape[3] - k[1]) // s[1] + 1
    y = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
            if kind == 'max':
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                cnt = k[0] * k[1] if count_include_pad else ones[i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]].sum()
                y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layernorm(x, scale, bias, axis, eps):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * scale + bias


erf = np.vectorize(math.erf)


def softplus(x):
    return np.log1p(np.exp(x))


# ------------------------------------------------------------------ graphs


def cnn():
    """Conv (asymmetric pads; groups, dilation, SAME_UPPER, stride 2) + BatchNormalization + Relu +
    MaxPool (asymmetric pads) + AveragePool (count_include_pad 0 and 1) + GlobalAveragePool + Flatten + Gemm."""
    x = rng.normal(size=(2, 2, 7, 7))
    w1 = rng.normal(size=(4, 2, 3, 2)) * 0.5
    b1 = rng.normal(size=4)
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.normal(size=4)
    mean, var = rng.normal(size=4) * 0.1, rng.uniform(0.5, 2, 4)
    w2 = rng.normal(size=(4, 2, 2, 2)) * 0.5
    wf = rng.normal(size=(3, 8))
    bf = rng.normal(size=(3,))
    nodes = [
        helper.make_node('Conv', ['x', 'conv1.weight', 'conv1.bias'], ['c1'], name='conv1', pads=[1, 0, 0, 1], kernel_shape=[3, 2]),
        helper.make_node('BatchNormalization', ['c1', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var'], ['b1'], name='bn1', epsilon=1e-3),
        helper.make_node('Relu', ['b1'], ['r1'], name='relu1'),
        helper.make_node('MaxPool', ['r1'], ['p1'], name='pool1', kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node('Conv', ['p1', 'conv2.weight'], ['c2'], name='conv2', group=2, dilations=[2, 1], strides=[2, 1], auto_pad='SAME_UPPER'),
        helper.make_node('AveragePool', ['c2'], ['a1'], name='avg1', kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node('AveragePool', ['c2'], ['a2'], name='avg2', kernel_shape=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1),
        helper.make_node('GlobalAveragePool', ['a1'], ['g1'], name='gap1'),
        helper.make_node('GlobalAveragePool', ['a2'], ['g2'], name='gap2'),
        helper.make_node('Concat', ['g1', 'g2'], ['g'], name='cat', axis=1),
        helper.make_node('Flatten', ['g'], ['f'], name='flat'),
        helper.make_node('Gemm', ['f', 'fc.weight', 'fc.bias'], ['y'], name='fc', transB=1, alpha=0.5, beta=2.0),
    ]
    inits = [init('conv1.weight', w1), init('conv1.bias', b1), init('bn1.weight', gamma), init('bn1.bias', beta),
             init('bn1.running_mean', mean), init('bn1.running_var', var), init('conv2.weight', w2), init('fc.weight', wf), init('fc.bias', bf)]
    c1 = conv2d(x, w1, b1, (1, 1), (1, 0), (0, 1), (1, 1), 1)
    b = (c1 - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + f32(1e-3)) * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    p1 = pool(np.maximum(b, 0), (3, 3), (2, 2), (0, 0), (1, 1), 'max')
    # SAME_UPPER: out = ceil(in / stride); total = (out - 1)·stride + (k - 1)·d + 1 − in, the extra at the end
    h, wd = p1.shape[2:]
    th = max(0, (math.ceil(h / 2) - 1) * 2 + (2 - 1) * 2 + 1 - h)
    tw = max(0, (wd - 1) * 1 + (2 - 1) * 1 + 1 - wd)
    c2 = conv2d(p1, w2, None, (2, 1), (th // 2, tw // 2), (th - th // 2, tw - tw // 2), (2, 1), 2)
    a1 = pool(c2, (2, 2), (1, 1), (1, 1), (1, 1), 'avg', 0)
    a2 = pool(c2, (2, 2), (1, 1), (1, 1), (0, 0), 'avg', 1)
    f = np.concatenate([a1.mean(axis=(2, 3)), a2.mean(axis=(2, 3))], axis=1)
    y = 0.5 * f @ wf.T + 2.0 * bf
    save('cnn', nodes, inits, x, y, 13)


def attention():
    """MatMul (batched, broadcasting, a 1-D right operand) + Softmax + LayerNormalization (opset 17)."""
    x = rng.normal(size=(2, 3, 4))
    wq = rng.normal(size=(4, 4)) * 0.5
    v = rng.normal(size=(4,))
    scale, bias = rng.uniform(0.5, 1.5, 4), rng.normal(size=4)
    nodes = [
        helper.make_node('MatMul', ['x', 'wq'], ['q'], name='q'),
        helper.make_node('Transpose', ['x'], ['xt'], name='xt', perm=[0, 2, 1]),
        helper.make_node('MatMul', ['q', 'xt'], ['s'], name='scores'),
        helper.make_node('Softmax', ['s'], ['p'], name='softmax', axis=-1),
        helper.make_node('MatMul', ['p', 'x'], ['h'], name='mix'),
        helper.make_node('LayerNormalization', ['h', 'ln.weight', 'ln.bias'], ['n'], name='ln', axis=-1, epsilon=1e-5),
        helper.make_node('MatMul', ['n', 'v'], ['y'], name='head'),
    ]
    inits = [init('wq', wq), init('v', v), init('ln.weight', scale), init('ln.bias', bias)]
    p = softmax((x @ wq) @ x.transpose(0, 2, 1), -1)
    y = layernorm(p @ x, scale, bias, -1, f32(1e-5)) @ v
    save('attention', nodes, inits, x, y, 17)


def layernorm_chain():
    """The opset < 17 LayerNorm chain (ReduceMean, Sub, Pow, Sqrt, Div) and ReduceSum with axes as input (opset 13)."""
    x = rng.normal(size=(2, 3, 5))
    scale, bias = rng.uniform(0.5, 1.5, 5), rng.normal(size=5)
    nodes = [
        helper.make_node('ReduceMean', ['x'], ['mu'], name='mean1', axes=[-1]),
        helper.make_node('Sub', ['x', 'mu'], ['d'], name='sub'),
        const('two', np.array(2.0)),
        helper.make_node('Pow', ['d', 'two'], ['d2'], name='pow'),
        helper.make_node('ReduceMean', ['d2'], ['var'], name='mean2', axes=[-1]),
        const('eps', np.array(1e-5)),
        helper.make_node('Add', ['var', 'eps'], ['ve'], name='add_eps'),
        helper.make_node('Sqrt', ['ve'], ['sd'], name='sqrt'),
        helper.make_node('Div', ['d', 'sd'], ['z'], name='div'),
        helper.make_node('Mul', ['z', 'ln.weight'], ['zs'], name='scale'),
        helper.make_node('Add', ['zs', 'ln.bias'], ['n'], name='shift'),
        const('axes', np.array([1], dtype=np.int64)),
        helper.make_node('ReduceSum', ['n', 'axes'], ['y'], name='sum', keepdims=0),
    ]
    inits = [init('ln.weight', scale), init('ln.bias', bias)]
    y = layernorm(x, scale, bias, -1, 1e-5).sum(axis=1)
    save('layernorm-chain', nodes, inits, x, y, 13)


def softmax_opset11():
    """Softmax before opset 13 (coerced to 2-D at axis 1), Unsqueeze/Squeeze with axes attributes, Slice opset 11."""
    x = rng.normal(size=(2, 3, 4))
    nodes = [
        helper.make_node('Softmax', ['x'], ['p'], name='softmax', axis=1),
        helper.make_node('Unsqueeze', ['p'], ['u'], name='unsq', axes=[1]),
        helper.make_node('Squeeze', ['u'], ['s'], name='sq', axes=[1]),
        helper.make_node('ReduceSum', ['s'], ['r'], name='sum', axes=[2], keepdims=0),
        helper.make_node('Mul', ['r', 'r'], ['y'], name='sq2'),
    ]
    p = softmax(x.reshape(2, 12), 1).reshape(2, 3, 4)
    r = p.sum(axis=2)
    save('softmax-opset11', nodes, [], x, r * r, 11)


def shapes():
    """Shape/Gather/Unsqueeze/Concat → Reshape, Transpose, Slice (clamped ends, negative index, step 2),
    Gather on data (1-D and scalar index), Expand, Squeeze/Unsqueeze (axes inputs), Split, Range,
    Cast, Less, Where, ConstantOfShape, Identity, Dropout."""
    x = rng.normal(size=(2, 3, 4))
    c = lambda name, v: const(name, np.array(v, dtype=np.int64))
    nodes = [
        helper.make_node('Transpose', ['x'], ['t'], name='t', perm=[0, 2, 1]),
        c('st', [1, 0]), c('en', [INT64_MAX, -1]), c('ax', [1, 2]), c('sp', [1, 1]),
        helper.make_node('Slice', ['t', 'st', 'en', 'ax', 'sp'], ['s'], name='slice1'),
        c('st2', [0]), c('en2', [4]), c('ax2', [2]), c('sp2', [2]),
        helper.make_node('Slice', ['x', 'st2', 'en2', 'ax2', 'sp2'], ['s2'], name='slice2'),
        helper.make_node('Add', ['s', 's2'], ['a'], name='add'),
        c('idx', [2, 0]),
        helper.make_node('Gather', ['x', 'idx'], ['g'], name='gather1', axis=1),
        c('one', 1),
        helper.make_node('Gather', ['x', 'one'], ['gs'], name='gather2', axis=2),
        c('ax_u', [2]),
        helper.make_node('Unsqueeze', ['gs', 'ax_u'], ['u'], name='unsq1'),
        c('eshape', [1, 1, 2]),
        helper.make_node('Expand', ['u', 'eshape'], ['e'], name='expand'),
        c('ax_1', [1]),
        helper.make_node('Unsqueeze', ['a', 'ax_1'], ['au'], name='unsq2'),
        helper.make_node('Squeeze', ['au', 'ax_1'], ['sq'], name='sq'),
        helper.make_node('Mul', ['sq', 'e'], ['m'], name='mul'),
        helper.make_node('Shape', ['x'], ['sh'], name='shape'),
        c('zero', 0),
        helper.make_node('Gather', ['sh', 'zero'], ['n0'], name='gather_n'),
        c('ax_0', [0]),
        helper.make_node('Unsqueeze', ['n0', 'ax_0'], ['n1'], name='unsq_n'),
        c('minus1', [-1]),
        helper.make_node('Concat', ['n1', 'minus1'], ['target'], name='cat_shape', axis=0),
        helper.make_node('Reshape', ['m', 'target'], ['r'], name='reshape1'),
        helper.make_node('Reshape', ['g', 'target'], ['rg'], name='reshape2'),
        helper.make_node('Concat', ['r', 'rg'], ['cc'], name='cat', axis=1),
        c('r0', 0), c('r1', 14), c('r2', 1),
        helper.make_node('Range', ['r0', 'r1', 'r2'], ['rng'], name='range'),
        helper.make_node('Cast', ['rng'], ['rngf'], name='cast', to=D),
        c('seven', 7),
        helper.make_node('Less', ['rng', 'seven'], ['cond'], name='less'),
        helper.make_node('Mul', ['cc', 'rngf'], ['scaled'], name='mul2'),
        helper.make_node('Where', ['cond', 'cc', 'scaled'], ['w'], name='where'),
        c('cshape', [14]),
        helper.make_node('ConstantOfShape', ['cshape'], ['half'], name='cos', value=numpy_helper.from_array(np.array([0.5]))),
        helper.make_node('Add', ['w', 'half'], ['w2'], name='add_half'),
        c('split', [1, 3]),
        helper.make_node('Split', ['x', 'split'], ['sp_a', 'sp_b'], name='split', axis=2),
        helper.make_node('ReduceSum', ['sp_b', 'ax2'], ['sb'], name='rsum', keepdims=1),
        helper.make_node('Mul', ['sp_a', 'sb'], ['ab'], name='mul3'),
        helper.make_node('Flatten', ['ab'], ['abf'], name='flat'),
        helper.make_node('Identity', ['abf'], ['abi'], name='id'),
        helper.make_node('Dropout', ['abi'], ['abd'], name='drop'),
        helper.make_node('Concat', ['w2', 'abd'], ['y'], name='cat_out', axis=1),
    ]
    t = x.transpose(0, 2, 1)
    a = t[:, 1:, 0:2] + x[:, :, 0:4:2]
    e = np.broadcast_to(x[:, :, 1][:, :, None], (2, 3, 2))
    cc = np.concatenate([(a * e).reshape(2, -1), x[:, [2, 0], :].reshape(2, -1)], axis=1)
    rngv = np.arange(14)
    w = np.where(rngv < 7, cc, cc * rngv) + 0.5
    ab = (x[:, :, 0:1] * x[:, :, 1:4].sum(axis=2, keepdims=True)).reshape(2, -1)
    save('shapes', nodes, [], x, np.concatenate([w, ab], axis=1), 13)


def elementwise():
    """Pow, Sqrt, Div, Erf, Sigmoid, Tanh, Softplus, LeakyRelu, Exp, Log, Neg, Abs, Relu, Clip, Reciprocal, Sum, Max, Min, ReduceMax, ReduceMin, Sub with broadcasting."""
    x = rng.normal(size=(2, 5))
    b = rng.normal(size=(5,))
    ops = [
        ('Pow', ['x', 'three'], {}, lambda v: v ** 3),
        ('Sqrt', ['sq1'], {}, lambda v: np.sqrt(v * v + 1)),
        ('Div', ['x', 'sq1'], {}, lambda v: v / (v * v + 1)),
        ('Erf', ['x'], {}, erf),
        ('Sigmoid', ['x'], {}, lambda v: 1 / (1 + np.exp(-v))),
        ('Tanh', ['x'], {}, np.tanh),
        ('Softplus', ['x'], {}, softplus),
        ('LeakyRelu', ['x'], {'alpha': 0.2}, lambda v: np.where(v > 0, v, f32(0.2) * v)),
        ('Exp', ['x'], {}, np.exp),
        ('Log', ['sq1'], {}, lambda v: np.log(v * v + 1)),
        ('Neg', ['x'], {}, lambda v: -v),
        ('Abs', ['x'], {}, np.abs),
        ('Relu', ['x'], {}, lambda v: np.maximum(v, 0)),
        ('Clip', ['x', 'lo', 'hi'], {}, lambda v: np.clip(v, -0.5, 0.7)),
        ('Reciprocal', ['sq1'], {}, lambda v: 1 / (v * v + 1)),
        ('Sum', ['x', 'b', 'x'], {}, lambda v: 2 * v + b),
        ('Max', ['x', 'b'], {}, lambda v: np.maximum(v, b)),
        ('Min', ['x', 'b'], {}, lambda v: np.minimum(v, b)),
        ('Sub', ['b', 'x'], {}, lambda v: b - v),
    ]
    nodes = [
        const('three', np.array(3.0)), const('lo', np.array(-0.5)), const('hi', np.array(0.7)),
        helper.make_node('Mul', ['x', 'x'], ['xx'], name='xx'),
        const('onef', np.array(1.0)),
        helper.make_node('Add', ['xx', 'onef'], ['sq1'], name='sq1'),
    ]
    outs, parts = [], []
    for i, (op, ins, attrs, f) in enumerate(ops):
        nodes.append(helper.make_node(op, ins, [f'o{i}'], name=f'{op.lower()}_{i}', **attrs))
        outs.append(f'o{i}')
        parts.append(f(x))
    nodes.append(helper.make_node('ReduceMax', ['x'], ['rmax'], name='rmax', axes=[1], keepdims=1))
    nodes.append(helper.make_node('ReduceMin', ['x'], ['rmin'], name='rmin', axes=[1], keepdims=1))
    nodes.append(helper.make_node('Concat', outs + ['rmax', 'rmin'], ['y'], name='cat', axis=1))
    y = np.concatenate(parts + [x.max(axis=1, keepdims=True), x.min(axis=1, keepdims=True)], axis=1)
    save('elementwise', nodes, [init('b', b)], x, y, 13)


def mish_gelu():
    """Mish (opset 18) and Gelu (opset 20), newer than this onnx package's opsets: declared at opset 17
    (so onnx.checker refuses the graph, but the loader maps them whatever the opset)."""
    x = rng.normal(size=(2, 5))
    nodes = [
        helper.make_node('Mish', ['x'], ['m'], name='mish'),
        helper.make_node('Gelu', ['x'], ['g'], name='gelu'),
        helper.make_node('Gelu', ['x'], ['gt'], name='gelu_tanh', approximate='tanh'),
        helper.make_node('Concat', ['m', 'g', 'gt'], ['y'], name='cat', axis=1),
    ]
    gt = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    y = np.concatenate([x * np.tanh(softplus(x)), 0.5 * x * (1 + erf(x / math.sqrt(2))), gt], axis=1)
    save('mish-gelu', nodes, [], x, y, 17)


def conv1d():
    """Conv and MaxPool on [N, C, L], and a fixed batch dimension in the input shape."""
    x = rng.normal(size=(2, 2, 6))
    w = rng.normal(size=(3, 2, 3))
    nodes = [
        helper.make_node('Conv', ['x', 'w'], ['c'], name='conv', pads=[1, 1]),
        helper.make_node('MaxPool', ['c'], ['p'], name='pool', kernel_shape=[2], strides=[2]),
        helper.make_node('Flatten', ['p'], ['y'], name='flat'),
    ]
    c = conv2d(x[:, :, None, :], w[:, :, None, :], None, (1, 1), (0, 1), (0, 1), (1, 1), 1)
    p = pool(c, (1, 2), (1, 2), (0, 0), (0, 0), 'max')
    save('conv1d', nodes, [init('w', w)], x, p.reshape(2, -1), 13, in_shape=[2, 2, 6], out_shape=None)


def malformed():
    x = np.zeros((1, 3))
    add = lambda a, b, out, name: helper.make_node('Add', [a, b], [out], name=name)
    save('missing-init', [add('x', 'w_missing', 'y', 'add_1')], [], x, None, 13, out_shape=['batch', 3])
    save('unsupported-op', [helper.make_node('Hardmax', ['x'], ['y'], name='hm_1')], [], x, None, 13, out_shape=['batch', 3])
    save('two-inputs', [add('x', 'x2', 'y', 'add_1')], [], x, None, 13, out_shape=['batch', 3],
         extra_inputs=[helper.make_tensor_value_info('x2', D, ['batch', 3])])
    x4 = np.zeros((1, 1, 4, 4))
    save('ceil-mode', [helper.make_node('MaxPool', ['x'], ['p'], name='pool_1', kernel_shape=[2, 2], ceil_mode=1),
                       helper.make_node('Flatten', ['p'], ['y'], name='flat')], [], x4, None, 13, out_shape=['batch', 9])
    save('data-exponent', [helper.make_node('Pow', ['x', 'x'], ['y'], name='pow_1')], [], x, None, 13, out_shape=['batch', 3])
    shape_nodes = [
        helper.make_node('ReduceMean', ['x'], ['s'], name='rs', axes=[1], keepdims=1),
        helper.make_node('Concat', ['s', 's'], ['sh'], name='cat', axis=0),
        helper.make_node('Reshape', ['x', 'sh'], ['y'], name='Reshape_12'),
    ]
    save('data-shape', shape_nodes, [], x, None, 13, out_shape=['batch', 3])


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    for f in (cnn, attention, layernorm_chain, softmax_opset11, shapes, elementwise, mish_gelu, conv1d, malformed):
        f()
    print('wrote', sorted(os.listdir(OUT)))
