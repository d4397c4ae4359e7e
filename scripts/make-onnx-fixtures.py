#!/usr/bin/env python3
"""Regenerates test/fixtures/onnx/torch/: small PyTorch models exported to ONNX, with PyTorch's
float64 losses, gradients, brackets B = H_y g_x - H_x g_y and logit effects J_f(probe) B (double
backward, as scripts/torch_peer.py), for test/onnx-torch.test.ts.

Models (fixed seeds): mlp (1x8x8 -> Linear 64->32, exact GELU, Linear 32->5), resnet (3x16x16,
conv+BN+ReLU, one residual block, max pool, global average pool, Linear -> 5) and transformer
(1x16x16, ViT-style: 4x4 patches by a stride-4 conv, learnt position embedding, one pre-norm
encoder block with nn.MultiheadAttention, 2 heads, dim 16, exact-GELU MLP, final LayerNorm, mean
pooling, Linear -> 5), the last exported at opset 17 (LayerNormalization) and at opset 13 (the
ReduceMean/Sub/Pow/Sqrt/Div chain).

The ONNX graphs are exported from the float64 modules, so every constant in them (GELU's sqrt(2),
LayerNorm's eps, attention's 1/sqrt(d)) is the float64 PyTorch uses: a float32 export rounds them
to float32, which alone moves results by ~1e-8 relative.

For each model <name>:
  <name>.onnx                   the export (do_constant_folding=False: initializers keep their
                                state_dict names; BatchNorm exported with TrainingMode.PRESERVE
                                from an eval-mode module, see below)
  <name>.weights.safetensors    the state_dict in float64 (num_batches_tracked as I64)
  <name>.inputs.safetensors     x [8, ...input] float64, t [8, 5] multi-hot targets, labels [8]
  <name>.json                   loss bce (summed BCE with logits over the 5 outputs against the
                                multi-hot t), model in eval mode, for pairs (0,1) and (2,3) and
                                probe 4: losses, gradients and brackets (every sampleStride-th
                                entry of each tensor, strides per tensor), norms, logit effects;
                                eval-mode logits of the 8 inputs; the state_dict's names, shapes
                                and dtypes; the ONNX op types.

BatchNorm: with training=TrainingMode.EVAL, torch.onnx runs its eval peephole pass, which fuses
Conv+BatchNormalization into the Conv regardless of do_constant_folding (the BN weights, biases
and running statistics disappear from the initializers). TrainingMode.PRESERVE on an eval-mode
module keeps the BatchNormalization nodes (inference form, one output) and the names.

Modes:
  make-onnx-fixtures.py [--out DIR]            write the fixtures (default test/fixtures/onnx/torch)
  make-onnx-fixtures.py --check-state-dict FILE --model NAME --inputs FILE
      rebuild the module NAME, load_state_dict(FILE, strict=True) (keys `optim.*` of a
      lie-bracket checkpoint are dropped and counted) in float64, print JSON
      {"logits": [...], "shape": [n, 5], "droppedOptimKeys": k} of the eval-mode module on x.

Needs Debian's python3-torch (/usr/bin/python3) and python3-onnx. Only run by hand; the tests
read the committed fixtures.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = "test/fixtures/onnx/torch"
N = 8
K = 5
PAIRS = [(0, 1), (2, 3)]
PROBE = 4
SAMPLES_PER_TENSOR = 48  # entries kept of each gradient/bracket tensor (all of a small one)

# ---------------------------------------------------------------------------
# safetensors (minimal, with I64 for num_batches_tracked)
# ---------------------------------------------------------------------------

_ST = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
_NP_TO_ST = {v: k for k, v in _ST.items()}


def write_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.asarray(arr, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        dt = arr.dtype.newbyteorder("<")
        raw = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NP_TO_ST[dt], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for c in chunks:
            fh.write(c)


def read_safetensors(path):
    with open(path, "rb") as fh:
        buf = fh.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + hlen].decode("utf-8"))
    header.pop("__metadata__", None)
    data = buf[8 + hlen :]
    out = {}
    for name, info in header.items():
        dt = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4"}[info["dtype"]]
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=np.dtype(dt)).reshape(info["shape"]).copy()
    return out


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.act = nn.GELU()  # exact (erf) form
        self.fc2 = nn.Linear(32, K)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(torch.flatten(x, 1))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + x)


class ResNet(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)  # with a bias, the block's convs without
        self.bn1 = nn.BatchNorm2d(c)
        self.block = Block(c)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, K)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.pool(self.block(h))
        return self.fc(torch.flatten(self.gap(h), 1))


class EncoderBlock(nn.Module):
    def __init__(self, d=16, heads=2, hidden=32):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.patch = nn.Conv2d(1, d, 4, stride=4)  # 16 patches of 4x4
        self.pos = nn.Parameter(torch.zeros(1, 16, d))
        self.block = EncoderBlock(d)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, K)

    def forward(self, x):
        h = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # [N, 16, d]
        h = self.norm(self.block(h))
        return self.head(h.mean(dim=1))


INPUT_SHAPES = {"mlp": (1, 8, 8), "resnet": (3, 16, 16), "transformer": (1, 16, 16)}
SEEDS = {"mlp": 101, "resnet": 102, "transformer": 103}


def build(name):
    return {"mlp": MLP, "resnet": ResNet, "transformer": ViT}[name]()


def make_model(name):
    """The module with seeded weights; non-trivial BN/LayerNorm affines, position embeddings and BN
    running statistics (a few training-mode forward passes on random data)."""
    torch.manual_seed(SEEDS[name])
    m = build(name)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
                mod.weight.copy_(1 + 0.2 * torch.randn_like(mod.weight))
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
            if isinstance(mod, nn.MultiheadAttention):
                mod.in_proj_bias.copy_(0.1 * torch.randn_like(mod.in_proj_bias))
                mod.out_proj.bias.copy_(0.1 * torch.randn_like(mod.out_proj.bias))
        if name == "transformer":
            m.pos.copy_(0.5 * torch.randn_like(m.pos))
        if name == "resnet":
            m.train()
            for _ in range(5):
                m(torch.rand(16, *INPUT_SHAPES[name]) * 1.5 - 0.25)
    return m.eval()


# ---------------------------------------------------------------------------
# Oracle (double backward, float64, eval mode)
# ---------------------------------------------------------------------------


def grads(out, plist, create_graph=False, grad_outputs=None):
    gs = torch.autograd.grad(out, plist, grad_outputs=grad_outputs, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, plist)]


def oracle(m, xs, ts):
    names = [n for n, _ in m.named_parameters()]
    plist = [p for _, p in m.named_parameters()]

    def loss(i):
        z = m(xs[i : i + 1])[0]
        return F.binary_cross_entropy_with_logits(z, ts[i], reduction="sum")

    def norm(t):
        return math.sqrt(float((t.double() ** 2).sum()))

    strides = {n: max(1, math.ceil(p.numel() / SAMPLES_PER_TENSOR)) for n, p in zip(names, plist)}

    def sample(ts_):
        return {n: t.detach().reshape(-1)[:: strides[n]].tolist() for n, t in zip(names, ts_)}

    pairs = []
    for a, b in PAIRS:
        Lx, Ly = loss(a), loss(b)
        gx = grads(Lx, plist, create_graph=True)
        gy = grads(Ly, plist, create_graph=True)
        gxd = [t.detach() for t in gx]
        gyd = [t.detach() for t in gy]
        hy_gx = grads(sum((u * v).sum() for u, v in zip(gy, gxd)), plist)
        hx_gy = grads(sum((u * v).sum() for u, v in zip(gx, gyd)), plist)
        B = [u - v for u, v in zip(hy_gx, hx_gy)]
        # J_f(probe) B by the double-backward jvp trick
        z = m(xs[PROBE : PROBE + 1])[0]
        u = torch.zeros_like(z, requires_grad=True)
        vjp = grads(z, plist, create_graph=True, grad_outputs=u)
        (jd,) = torch.autograd.grad(sum((s * d).sum() for s, d in zip(vjp, B)), [u], allow_unused=True)
        pairs.append(
            {
                "x": a,
                "y": b,
                "lossX": float(Lx),
                "lossY": float(Ly),
                "gradNormX": math.sqrt(sum(norm(t) ** 2 for t in gxd)),
                "gradNormY": math.sqrt(sum(norm(t) ** 2 for t in gyd)),
                "bracketNorm": math.sqrt(sum(norm(t) ** 2 for t in B)),
                "tensors": {
                    n: {"bracketNorm": norm(tb), "gradNormX": norm(tx), "gradNormY": norm(ty)}
                    for n, tx, ty, tb in zip(names, gxd, gyd, B)
                },
                "logitEffect": (torch.zeros_like(z) if jd is None else jd).tolist(),
                "gradX": sample(gxd),
                "gradY": sample(gyd),
                "bracket": sample(B),
            }
        )
    return strides, pairs


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def export(m, name, path, opset):
    example = torch.zeros(2, *INPUT_SHAPES[name], dtype=torch.float64)
    has_bn = any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())
    torch.onnx.export(
        m,
        example,
        path,
        do_constant_folding=False,
        opset_version=opset,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        # EVAL would fuse BatchNormalization into the Conv (torch.onnx's eval peephole)
        training=torch.onnx.TrainingMode.PRESERVE if has_bn else torch.onnx.TrainingMode.EVAL,
    )


def onnx_summary(path):
    import onnx

    g = onnx.load(path).graph
    ops = sorted({n.op_type for n in g.node})
    inits = {i.name: list(i.dims) for i in g.initializer}
    return ops, inits


def make(out):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name, exports in (("mlp", [("mlp", 17)]), ("resnet", [("resnet", 17)]), ("transformer", [("transformer-op17", 17), ("transformer-op13", 13)])):
        m = make_model(name).double()
        sd = m.state_dict()
        write_safetensors(
            os.path.join(out, "%s.weights.safetensors" % name),
            {k: v.detach().cpu().numpy() for k, v in sd.items()},
            {"seed": SEEDS[name], "note": "float64 state_dict of scripts/make-onnx-fixtures.py's %s" % name},
        )
        g = torch.Generator().manual_seed(SEEDS[name] + 1000)
        xs = torch.rand(N, *INPUT_SHAPES[name], generator=g, dtype=torch.float64)
        ts = (torch.rand(N, K, generator=g, dtype=torch.float64) < 0.4).double()
        labels = torch.randint(0, K, (N,), generator=g).double()
        write_safetensors(
            os.path.join(out, "%s.inputs.safetensors" % name),
            {"x": xs.numpy(), "t": ts.numpy(), "labels": labels.numpy()},
            {"note": "x uniform [0,1); t multi-hot targets for bce; labels unused class indices"},
        )
        strides, pairs = oracle(m, xs, ts)
        with torch.no_grad():
            logits = m(xs)
        onnx_files = {}
        for fname, opset in exports:
            p = os.path.join(out, fname + ".onnx")
            export(m, name, p, opset)
            ops, inits = onnx_summary(p)
            onnx_files[fname] = {"opset": opset, "ops": ops, "initializers": inits}
        res = {
            "torch": torch.__version__,
            "dtype": "float64",
            "model": name,
            "inputShape": list(INPUT_SHAPES[name]),
            "loss": "bce",
            "targets": "multi-hot t from the inputs file (bce summed over the 5 outputs, one example)",
            "mode": "eval (BatchNorm with running statistics)",
            "probe": PROBE,
            "sampleStride": strides,
            "stateDict": [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in sd.items()],
            "parameters": [n for n, _ in m.named_parameters()],
            "onnx": onnx_files,
            "logits": logits.tolist(),
            "pairs": pairs,
        }
        with open(os.path.join(out, name + ".json"), "w") as fh:
            json.dump(res, fh, separators=(",", ":"))
            fh.write("\n")
        print(
            "%s: %d params, |B| = %s; onnx %s"
            % (name, sum(p.numel() for p in m.parameters()), ", ".join("%.4e" % p["bracketNorm"] for p in pairs), {k: v["ops"] for k, v in onnx_files.items()}),
            file=sys.stderr,
        )


def check_state_dict(path, name, inputs):
    m = build(name).double()
    raw = read_safetensors(path)
    dropped = [k for k in raw if k.startswith("optim.")]
    state = {}
    for k, v in raw.items():
        if k.startswith("optim."):
            continue
        want = m.state_dict().get(k)
        dtype = want.dtype if want is not None else torch.float64
        state[k] = torch.tensor(v).to(dtype)
    m.load_state_dict(state, strict=True)
    m.eval()
    x = torch.tensor(read_safetensors(inputs)["x"], dtype=torch.float64)
    with torch.no_grad():
        z = m(x)
    return {"logits": z.reshape(-1).tolist(), "shape": list(z.shape), "droppedOptimKeys": len(dropped)}


def main():
    ap = argparse.ArgumentParser(prog="make-onnx-fixtures.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check-state-dict", metavar="FILE", default=None)
    ap.add_argument("--model", choices=sorted(INPUT_SHAPES))
    ap.add_argument("--inputs", default=None)
    args = ap.parse_args()
    if args.check_state_dict is not None:
        if args.model is None or args.inputs is None:
            ap.error("--check-state-dict needs --model and --inputs")
        try:
            res = check_state_dict(args.check_state_dict, args.model, args.inputs)
        except (RuntimeError, OSError, KeyError, ValueError) as exc:
            sys.stderr.write("make-onnx-fixtures: error: %s\n" % exc)
            sys.exit(2)
        sys.stdout.write(json.dumps(res) + "\n")
        return
    make(args.out)


if __name__ == "__main__":
    main()
