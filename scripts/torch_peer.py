#!/usr/bin/env python3
"""Independent PyTorch oracle and benchmark peer for lie-bracket.

Computes, for pairs of training examples (x, y), the training-example Lie
bracket

    B = H_y g_x - H_x g_y,

where g_x = grad_theta L_x(theta) is the per-example loss gradient and H_x the
per-example Hessian, by double backward in PyTorch. Used to generate reference
fixtures for the TypeScript tests and, with --bench, to time the same
computations side by side with the TypeScript engine.

PyTorch is never a runtime dependency of lie-bracket; this script is only run
by hand or by `npm run bench` when a python3 with torch is available.

With --train-bench it times whole training steps instead (zero_grad, forward in
training mode, backward, Adam step) of a reference model or of a lie-bracket JSON
model spec (--spec), built as nested nn.Sequential with the same parameter names;
--forward prints the logits of such a model (eval and training mode) for a
by-hand comparison with lie-bracket's forward pass.

Only stdlib, numpy and torch are used (safetensors I/O is implemented here).
Stdout carries nothing but the JSON result (unless --out is given).
Errors go to stderr with exit code 2.
"""

import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np


class PeerError(Exception):
    """A user-facing error: printed to stderr, exit code 2."""


def fail(msg):
    sys.stderr.write("torch_peer: error: %s\n" % msg)
    sys.exit(2)


# ---------------------------------------------------------------------------
# safetensors (minimal reader/writer)
# ---------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}
_NP_TO_ST = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32"}


def read_safetensors(path):
    """Return ({name: np.ndarray}, metadata dict or None)."""
    try:
        with open(path, "rb") as fh:
            buf = fh.read()
    except OSError as exc:
        raise PeerError("cannot read %s: %s" % (path, exc.strerror or exc))
    if len(buf) < 8:
        raise PeerError("%s: not a safetensors file (shorter than 8 bytes)" % path)
    (hlen,) = struct.unpack("<Q", buf[:8])
    if hlen > len(buf) - 8:
        raise PeerError("%s: header length %d exceeds file size" % (path, hlen))
    try:
        header = json.loads(buf[8 : 8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PeerError("%s: bad safetensors JSON header: %s" % (path, exc))
    if not isinstance(header, dict):
        raise PeerError("%s: safetensors header is not a JSON object" % path)
    data = buf[8 + hlen :]
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        try:
            dt = info["dtype"]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise PeerError("%s: malformed header entry for %r" % (path, name))
        if dt not in _ST_DTYPES:
            raise PeerError("%s: tensor %r has unsupported dtype %s" % (path, name, dt))
        npdt = _ST_DTYPES[dt]
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(data)):
            raise PeerError("%s: tensor %r data_offsets out of range" % (path, name))
        if end - begin != count * npdt.itemsize:
            raise PeerError(
                "%s: tensor %r: %d bytes for shape %s of %s"
                % (path, name, end - begin, shape, dt)
            )
        arr = np.frombuffer(data, dtype=npdt, count=count, offset=begin).reshape(shape)
        out[name] = arr.copy()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Write {name: np.ndarray (float32/float64)} as safetensors."""
    header = {}
    chunks = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<")
        if dt not in _NP_TO_ST:
            raise PeerError("write_safetensors: unsupported dtype %s" % arr.dtype)
        raw = arr.astype(dt, copy=False).tobytes()
        header[name] = {
            "dtype": _NP_TO_ST[dt],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)  # pad header to 8 bytes
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for c in chunks:
            fh.write(c)


# ---------------------------------------------------------------------------
# Models (functional forms; parameter names match the nn.Module definitions)
# ---------------------------------------------------------------------------

# Parameter names and shapes, in module definition order.
MODEL_PARAMS = {
    "mlp": [
        ("fc1.weight", (128, 784)),
        ("fc1.bias", (128,)),
        ("fc2.weight", (10, 128)),
        ("fc2.bias", (10,)),
    ],
    "convnet": [
        ("conv1.weight", (16, 1, 3, 3)),
        ("conv1.bias", (16,)),
        ("conv2.weight", (32, 16, 3, 3)),
        ("conv2.bias", (32,)),
        ("fc.weight", (10, 1568)),
        ("fc.bias", (10,)),
    ],
}
MODEL_PARAMS["smoothconvnet"] = MODEL_PARAMS["convnet"]


def make_forward(model, F):
    """Return forward(params: dict, x: [N,1,28,28]) -> logits [N,10]."""
    if model == "mlp":

        def fwd(p, x):
            h = torch.tanh(F.linear(x.reshape(x.shape[0], 784), p["fc1.weight"], p["fc1.bias"]))
            return F.linear(h, p["fc2.weight"], p["fc2.bias"])

        return fwd

    if model == "convnet":
        act, pool = F.relu, F.max_pool2d
    else:  # smoothconvnet
        act, pool = F.silu, F.avg_pool2d

    def fwd(p, x):
        h = pool(act(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)), 2)
        h = pool(act(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1)), 2)
        h = h.reshape(h.shape[0], 1568)  # NCHW flatten
        return F.linear(h, p["fc.weight"], p["fc.bias"])

    return fwd


def make_loss(loss, F):
    """Return lossfn(logits [10], label int) -> scalar."""
    if loss == "bce":

        def lf(z, c):
            t = torch.zeros_like(z)
            t[c] = 1.0
            return F.binary_cross_entropy_with_logits(z, t, reduction="sum")

        return lf

    def lf(z, c):
        return -torch.log_softmax(z, dim=0)[c]

    return lf


# ---------------------------------------------------------------------------
# Computations
# ---------------------------------------------------------------------------


class Peer:
    def __init__(self, model, loss, params, xs, labels):
        import torch.nn.functional as F

        self.names = [n for n, _ in MODEL_PARAMS[model]]
        self.params = params  # dict name -> leaf tensor, requires_grad
        self.plist = [params[n] for n in self.names]
        self.xs = xs
        self.labels = labels
        self.fwd = make_forward(model, F)
        self.lossfn = make_loss(loss, F)

    def logits(self, i):
        return self.fwd(self.params, self.xs[i : i + 1])[0]

    def loss(self, i):
        return self.lossfn(self.logits(i), self.labels[i])

    def _grads(self, out, inputs, create_graph=False, grad_outputs=None):
        gs = torch.autograd.grad(
            out,
            inputs,
            grad_outputs=grad_outputs,
            create_graph=create_graph,
            allow_unused=True,
        )
        return [torch.zeros_like(t) if g is None else g for g, t in zip(gs, inputs)]

    def grad(self, i, create_graph=False):
        L = self.loss(i)
        return L, self._grads(L, self.plist, create_graph=create_graph)

    def hvp(self, i, v):
        """(L_i, g_i, H_i v) for a fixed list of tensors v."""
        L, g = self.grad(i, create_graph=True)
        dot = sum((gk * vk).sum() for gk, vk in zip(g, v))
        hv = self._grads(dot, self.plist)
        return L, [t.detach() for t in g], hv

    def bracket(self, x, y):
        """(L_x, L_y, g_x, g_y, B) with B = H_y g_x - H_x g_y."""
        Lx, gx = self.grad(x, create_graph=True)
        Ly, gy = self.grad(y, create_graph=True)
        gxd = [t.detach() for t in gx]
        gyd = [t.detach() for t in gy]
        hy_gx = self._grads(sum((a * b).sum() for a, b in zip(gy, gxd)), self.plist)
        hx_gy = self._grads(sum((a * b).sum() for a, b in zip(gx, gyd)), self.plist)
        B = [a - b for a, b in zip(hy_gx, hx_gy)]
        return Lx.detach(), Ly.detach(), gxd, gyd, B

    def logit_effect(self, k, direction):
        """J_f(x_k) . direction, exact, via the double-backward jvp trick."""
        z = self.logits(k)
        u = torch.zeros_like(z, requires_grad=True)
        vjp = self._grads(z, self.plist, create_graph=True, grad_outputs=u)
        # vjp is linear in u; differentiating <vjp, direction> w.r.t. u gives J d.
        dot = sum((a * b).sum() for a, b in zip(vjp, direction))
        (jd,) = torch.autograd.grad(dot, [u], allow_unused=True)
        return torch.zeros_like(z) if jd is None else jd.detach()


def _norm(ts):
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in ts))


def _flat(t):
    return t.detach().double().reshape(-1).tolist()


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return med * 1e3


# ---------------------------------------------------------------------------
# Models as nn.Module (for training): reference models and lie-bracket JSON specs
# ---------------------------------------------------------------------------

_ACTIVATIONS = ("relu", "tanh", "silu", "mish", "gelu", "sigmoid")


def _pair(v, default):
    if v is None:
        return (default, default)
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise PeerError("model spec: expected a number or a pair, got %r" % (v,))
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def _window_out(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _activation(nn, name):
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "silu":
        return nn.SiLU()
    if name == "mish":
        return nn.Mish()
    if name == "gelu":
        return nn.GELU(approximate="tanh")  # lie-bracket's gelu is the tanh form
    if name == "sigmoid":
        return nn.Sigmoid()
    raise PeerError("model spec: unknown activation %r (choose one of %s)" % (name, ", ".join(_ACTIVATIONS)))


def build_spec_model(spec):
    """An nn.Module for a lie-bracket JSON model spec (src/nn/spec.ts): the layers in an
    nn.Sequential, residual blocks as modules with `body` and `shortcut` Sequentials, so the
    state_dict keys are lie-bracket's parameter and buffer names. Returns (module, input shape)."""
    import torch.nn as nn

    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    class Residual(nn.Module):
        """act(body(x) + shortcut(x)); an absent or empty shortcut is the identity."""

        def __init__(self, body, shortcut, act):
            super().__init__()
            self.body = body
            self.shortcut = shortcut
            self.act = act

        def forward(self, x):
            y = self.body(x) + (self.shortcut(x) if self.shortcut is not None else x)
            return self.act(y) if self.act is not None else y

    def layers(specs, shape, where):
        mods = []
        for i, l in enumerate(specs):
            if not isinstance(l, dict) or "type" not in l:
                raise PeerError("model spec: layer %s%d is not an object with a type" % (where, i))
            t = l["type"]

            def need(rank, what):
                if len(shape) != rank:
                    raise PeerError("model spec: layer %s%d (%s) needs %s, got shape %s" % (where, i, t, what, list(shape)))

            if t == "linear":
                need(1, "a flat input")
                mods.append(nn.Linear(shape[0], int(l["out"]), bias=l.get("bias", True) is not False))
                shape = [int(l["out"])]
            elif t == "conv2d":
                need(3, "a [C,H,W] input")
                c, h, w = shape
                k = _pair(l["kernel"], 1)
                st = _pair(l.get("stride"), 1)
                pd = _pair(l.get("padding"), 0)
                dl = _pair(l.get("dilation"), 1)
                g = int(l.get("groups", 1))
                out = int(l["out"])
                mods.append(nn.Conv2d(c, out, k, stride=st, padding=pd, dilation=dl, groups=g, bias=l.get("bias", True) is not False))
                shape = [out, _window_out(h, k[0], st[0], pd[0], dl[0]), _window_out(w, k[1], st[1], pd[1], dl[1])]
            elif t == "batchnorm2d":
                need(3, "a [C,H,W] input")
                mods.append(nn.BatchNorm2d(shape[0], eps=float(l.get("eps", 1e-5)), momentum=float(l.get("momentum", 0.1))))
            elif t in _ACTIVATIONS:
                mods.append(_activation(nn, t))
            elif t in ("maxpool2d", "avgpool2d"):
                need(3, "a [C,H,W] input")
                k = _pair(l["kernel"], 1)
                st = k if l.get("stride") is None else _pair(l["stride"], 1)
                pd = _pair(l.get("padding"), 0)
                cls = nn.MaxPool2d if t == "maxpool2d" else nn.AvgPool2d  # AvgPool2d counts the padding, as lie-bracket
                mods.append(cls(k, stride=st, padding=pd))
                shape = [shape[0], _window_out(shape[1], k[0], st[0], pd[0]), _window_out(shape[2], k[1], st[1], pd[1])]
            elif t == "globalavgpool":
                need(3, "a [C,H,W] input")
                mods.append(GlobalAvgPool())
                shape = [shape[0]]
            elif t == "flatten":
                mods.append(nn.Flatten())
                shape = [int(np.prod(shape))]
            elif t == "residual":
                body, bshape = layers(l["body"], shape, "%s%d.body." % (where, i))
                sc_specs = l.get("shortcut") or []
                if sc_specs:
                    sc, sshape = layers(sc_specs, shape, "%s%d.shortcut." % (where, i))
                else:
                    sc, sshape = None, shape
                if list(sshape) != list(bshape):
                    raise PeerError("model spec: residual %s%d: body output %s and shortcut output %s differ" % (where, i, bshape, sshape))
                act = _activation(nn, l["activation"]) if l.get("activation") else None
                mods.append(Residual(body, sc, act))
                shape = bshape
            else:
                raise PeerError("model spec: layer %s%d has unknown type %r" % (where, i, t))
        return nn.Sequential(*mods), shape

    if not isinstance(spec, dict) or "input" not in spec or "layers" not in spec:
        raise PeerError("model spec: expected an object with input and layers")
    inp = [int(v) for v in spec["input"]]
    model, out = layers(spec["layers"], inp, "")
    if len(out) != 1:
        raise PeerError("model spec: the last layer must produce a flat output, got %s" % (out,))
    return model, inp


def build_reference_model(name):
    """mlp / convnet / smoothconvnet as nn.Modules with the reference models' parameter names."""
    import torch.nn as nn
    import torch.nn.functional as F

    if name == "mlp":

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(784, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):
                return self.fc2(torch.tanh(self.fc1(x.reshape(x.shape[0], 784))))

        return MLP(), [1, 28, 28]

    act, pool = (F.relu, F.max_pool2d) if name == "convnet" else (F.silu, F.avg_pool2d)

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.fc = nn.Linear(1568, 10)

        def forward(self, x):
            h = pool(act(self.conv1(x)), 2)
            h = pool(act(self.conv2(h)), 2)
            return self.fc(h.reshape(h.shape[0], 1568))

    return ConvNet(), [1, 28, 28]


def load_state(module, weights, path, dtype):
    """Copy safetensors weights into the module's state_dict (exactly the same keys, shapes)."""
    own = module.state_dict()
    extra = sorted(set(weights) - set(own))
    missing = sorted(set(own) - set(weights))
    if missing or extra:
        raise PeerError("%s: tensors do not match the model (missing: %s; unexpected: %s)" % (path, missing[:8], extra[:8]))
    state = {}
    for k, ref in own.items():
        w = weights[k]
        if tuple(w.shape) != tuple(ref.shape):
            raise PeerError("%s: tensor %r has shape %s, want %s" % (path, k, list(w.shape), list(ref.shape)))
        if ref.dtype == torch.long:  # num_batches_tracked (lie-bracket stores it as a float)
            state[k] = torch.tensor(np.asarray(w, dtype=np.float64).round().astype(np.int64))
        else:
            if not np.all(np.isfinite(w)):
                raise PeerError("%s: tensor %r holds NaN or Inf" % (path, k))
            state[k] = torch.tensor(np.asarray(w, dtype=np.float64), dtype=dtype)
    module.to(dtype)
    module.load_state_dict(state, strict=True)


def run_training(args):
    """--train-bench: median ms per Adam step; --forward: logits in eval and training mode."""
    global torch
    if args.threads < 1:
        raise PeerError("--threads must be >= 1")
    if args.repeats < 1 or args.warmup < 0:
        raise PeerError("--repeats must be >= 1 and --warmup >= 0")
    if args.batch < 1:
        raise PeerError("--batch must be >= 1")
    inputs, _ = read_safetensors(args.inputs)
    weights, _ = read_safetensors(args.weights)
    spec = None
    if args.spec is not None:
        try:
            with open(args.spec, "r", encoding="utf-8") as fh:
                spec = json.load(fh)
        except OSError as exc:
            raise PeerError("cannot read %s: %s" % (args.spec, exc.strerror or exc))
        except ValueError as exc:
            raise PeerError("%s: not JSON: %s" % (args.spec, exc))
    try:
        import torch as _torch
    except ImportError:
        raise PeerError("PyTorch is not available (on Debian: apt-get install python3-torch)")
    torch = _torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass
    dtype = torch.float32 if args.dtype == "float32" else torch.float64

    module, in_shape = build_spec_model(spec) if spec is not None else build_reference_model(args.model)
    load_state(module, weights, args.weights, dtype)

    if "x" not in inputs:
        raise PeerError("%s: missing tensor 'x' (have: %s)" % (args.inputs, sorted(inputs)))
    x = inputs["x"]
    n = x.shape[0] if x.ndim > 0 else 0
    per = int(np.prod(in_shape))
    if n < 1 or x.size != n * per:
        raise PeerError("%s: x has shape %s, want [n,%s]" % (args.inputs, list(x.shape), ",".join(map(str, in_shape))))
    xs = torch.tensor(x.astype(np.float64).reshape([n] + in_shape), dtype=dtype)
    with torch.no_grad():
        k = module.eval()(xs[:1]).shape[1]
    if "t" in inputs:
        t = inputs["t"].astype(np.float64)
        if t.shape != (n, k):
            raise PeerError("%s: t has shape %s, want [%d,%d]" % (args.inputs, list(t.shape), n, k))
    elif "labels" in inputs:
        lab = inputs["labels"].astype(np.float64)
        if lab.shape != (n,) or not np.all(lab == np.round(lab)) or lab.min() < 0 or lab.max() >= k:
            raise PeerError("%s: labels must be [%d] integers in [0, %d)" % (args.inputs, n, k))
        t = np.eye(k)[lab.astype(np.int64)]
    else:
        raise PeerError("%s: missing tensor 't' (targets [n,K]) or 'labels' [n]" % args.inputs)
    ts = torch.tensor(t, dtype=dtype)
    # the first --batch examples, cycling through the inputs when there are fewer
    idx = torch.arange(args.batch) % n
    xb, tb = xs[idx].contiguous(), ts[idx].contiguous()

    result = {"torch": torch.__version__, "dtype": args.dtype, "model": args.model or (spec.get("name") or "spec"), "threads": args.threads}
    if args.bracket_bench:
        # B = H_y g_x - H_x g_y by double backward, as Peer.bracket, on the module's parameters
        module.eval()
        plist = [q for q in module.parameters()]

        def per_example(i):
            z = module(xb[i : i + 1])[0]
            return F.binary_cross_entropy_with_logits(z, tb[i], reduction="sum")

        def grads(out, create_graph=False):
            gs = torch.autograd.grad(out, plist, create_graph=create_graph, allow_unused=True)
            return [torch.zeros_like(q) if g is None else g for g, q in zip(gs, plist)]

        def bracket():
            gx = grads(per_example(0), create_graph=True)
            gy = grads(per_example(1), create_graph=True)
            gxd = [t.detach() for t in gx]
            gyd = [t.detach() for t in gy]
            hy_gx = grads(sum((a * b).sum() for a, b in zip(gy, gxd)))
            hx_gy = grads(sum((a * b).sum() for a, b in zip(gx, gyd)))
            return [a - b for a, b in zip(hy_gx, hx_gy)]

        result["bracketNorm"] = _norm(bracket())
        result["bracketBench"] = {"ms": median_ms(bracket, args.warmup, args.repeats), "repeats": args.repeats, "warmup": args.warmup}
        return result
    if args.forward:
        with torch.no_grad():
            result["logits"] = module.eval()(xb).double().reshape(-1).tolist()
            result["trainLogits"] = module.train()(xb).double().reshape(-1).tolist()
        result["shape"] = [args.batch, k]
        return result

    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=args.lr, betas=(0.9, 0.999))

    def step():
        opt.zero_grad()
        z = module(xb)
        # bce: Σ over outputs of BCE with logits, mean over the batch
        loss = F.binary_cross_entropy_with_logits(z, tb, reduction="none").sum(dim=1).mean()
        loss.backward()
        opt.step()
        return loss

    first = float(step().detach())
    result["trainBench"] = {
        "msPerStep": median_ms(step, args.warmup, args.repeats),
        "batch": args.batch,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "firstLoss": first,
    }
    return result


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def parse_pairs(s, n):
    pairs = []
    for part in s.split(";"):
        part = part.strip()
        if not part:
            continue
        bits = part.split(",")
        if len(bits) != 2:
            raise PeerError("bad pair %r in --pairs (want \"x,y;x,y\")" % part)
        try:
            a, b = int(bits[0]), int(bits[1])
        except ValueError:
            raise PeerError("bad pair %r in --pairs (indices must be integers)" % part)
        for v in (a, b):
            if not 0 <= v < n:
                raise PeerError("pair index %d out of range [0, %d)" % (v, n))
        pairs.append((a, b))
    if not pairs:
        raise PeerError("--pairs is empty")
    return pairs


def build_argparser():
    ap = argparse.ArgumentParser(
        prog="torch_peer.py",
        description="PyTorch oracle / benchmark peer for the training-example Lie bracket "
        "B = H_y g_x - H_x g_y.",
    )
    # --inputs, --weights, --model, --loss and --pairs are required for brackets (checked in main)
    ap.add_argument("--inputs", help="safetensors with x [n,1,28,28] and labels [n]; "
                    "for --train-bench/--forward: x [n,...input] and targets t [n,K] (or labels [n])")
    ap.add_argument("--weights", help="safetensors with the model parameters (and BatchNorm buffers)")
    ap.add_argument("--model", choices=["mlp", "convnet", "smoothconvnet"])
    ap.add_argument("--spec", default=None, help="--train-bench/--forward: a lie-bracket JSON model spec instead of --model")
    ap.add_argument("--loss", choices=["bce", "ce"])
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--pairs", help='pairs of example indices, e.g. "0,1;2,3"')
    ap.add_argument("--probe", type=int, default=None, help="example index K for the logit effect J_f(x_K) B")
    ap.add_argument("--out", default=None, help="write JSON here instead of stdout")
    ap.add_argument("--full", action="store_true", help="include full gradX, gradY, bracket vectors")
    ap.add_argument("--bench", action="store_true", help="time loss/grad/hvp/bracket on the first pair")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-bench", action="store_true",
                    help="time Adam training steps (batch --batch, loss bce, lr 1e-3) instead of brackets")
    ap.add_argument("--bracket-bench", action="store_true",
                    help="with --spec or --model: time the bracket of examples 0 and 1 (loss bce, BatchNorm in eval mode)")
    ap.add_argument("--forward", action="store_true",
                    help="print the logits of the first --batch inputs in eval and training mode")
    ap.add_argument("--batch", type=int, default=32, help="--train-bench/--forward: examples per step")
    ap.add_argument("--lr", type=float, default=1e-3, help="--train-bench: Adam's learning rate")
    return ap


def main(argv=None):
    ap = build_argparser()
    args = ap.parse_args(argv)
    if args.train_bench or args.forward or args.bracket_bench:
        if args.train_bench + args.forward + args.bracket_bench > 1:
            ap.error("--train-bench, --forward and --bracket-bench exclude each other")
        if (args.model is None) == (args.spec is None):
            ap.error("give exactly one of --model and --spec")
        missing = [f for f in ("inputs", "weights") if getattr(args, f) is None]
    else:
        if args.spec is not None:
            ap.error("--spec needs --train-bench or --forward")
        missing = [f for f in ("inputs", "weights", "model", "loss", "pairs") if getattr(args, f) is None]
    if missing:
        ap.error("the following arguments are required: %s" % ", ".join("--" + f for f in missing))
    try:
        result = run_training(args) if (args.train_bench or args.forward or args.bracket_bench) else run(args)
    except PeerError as exc:
        fail(str(exc))
    text = json.dumps(result, allow_nan=True)
    if args.out:
        try:
            d = os.path.dirname(os.path.abspath(args.out))
            tmp = os.path.join(d, ".%s.tmp" % os.path.basename(args.out))
            with open(tmp, "w") as fh:
                fh.write(text)
                fh.write("\n")
            os.replace(tmp, args.out)
        except OSError as exc:
            fail("cannot write %s: %s" % (args.out, exc.strerror or exc))
    else:
        sys.stdout.write(text + "\n")


def run(args):
    global torch
    if args.threads < 1:
        raise PeerError("--threads must be >= 1")
    if args.repeats < 1 or args.warmup < 0:
        raise PeerError("--repeats must be >= 1 and --warmup >= 0")

    inputs, _ = read_safetensors(args.inputs)
    weights, _ = read_safetensors(args.weights)

    try:
        import torch as _torch
    except ImportError:
        raise PeerError("PyTorch is not available (on Debian: apt-get install python3-torch)")
    torch = _torch
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass
    dtype = torch.float32 if args.dtype == "float32" else torch.float64

    # ---- inputs
    for key in ("x", "labels"):
        if key not in inputs:
            raise PeerError("%s: missing tensor %r (have: %s)" % (args.inputs, key, sorted(inputs)))
    x = inputs["x"]
    lab = inputs["labels"]
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise PeerError("%s: x has shape %s, want [n,1,28,28]" % (args.inputs, list(x.shape)))
    n = x.shape[0]
    if lab.ndim != 1 or lab.shape[0] != n:
        raise PeerError("%s: labels has shape %s, want [%d]" % (args.inputs, list(lab.shape), n))
    labf = lab.astype(np.float64)
    if not np.all(np.isfinite(labf)) or not np.all(labf == np.round(labf)):
        raise PeerError("%s: labels must hold integers" % args.inputs)
    labels = [int(v) for v in labf]
    for v in labels:
        if not 0 <= v < 10:
            raise PeerError("%s: label %d out of range [0, 10)" % (args.inputs, v))

    # ---- weights
    params = {}
    for name, shape in MODEL_PARAMS[args.model]:
        if name not in weights:
            raise PeerError(
                "%s: missing parameter %r for model %s (have: %s)"
                % (args.weights, name, args.model, sorted(weights))
            )
        w = weights[name]
        if tuple(w.shape) != shape:
            raise PeerError(
                "%s: parameter %r has shape %s, want %s"
                % (args.weights, name, list(w.shape), list(shape))
            )
        if w.dtype.kind != "f":
            raise PeerError("%s: parameter %r must be floating point" % (args.weights, name))
        params[name] = torch.tensor(w.astype(np.float64), dtype=dtype).requires_grad_(True)

    xs = torch.tensor(x.astype(np.float64), dtype=dtype)
    pairs = parse_pairs(args.pairs, n)
    if args.probe is not None and not 0 <= args.probe < n:
        raise PeerError("--probe %d out of range [0, %d)" % (args.probe, n))

    peer = Peer(args.model, args.loss, params, xs, labels)
    names = peer.names

    out_pairs = []
    for (a, b) in pairs:
        Lx, Ly, gx, gy, B = peer.bracket(a, b)
        tensors = {}
        for nm, tgx, tgy, tb in zip(names, gx, gy, B):
            bn = _norm([tb])
            tensors[nm] = {
                "bracketNorm": bn,
                "bracketRms": bn / math.sqrt(tb.numel()),
                "gradNormX": _norm([tgx]),
                "gradNormY": _norm([tgy]),
            }
        rec = {
            "x": a,
            "y": b,
            "lossX": float(Lx),
            "lossY": float(Ly),
            "gradNormX": _norm(gx),
            "gradNormY": _norm(gy),
            "bracketNorm": _norm(B),
            "tensors": tensors,
        }
        if args.probe is not None:
            rec["logitEffect"] = _flat(peer.logit_effect(args.probe, B))
        if args.full:
            rec["gradX"] = {nm: _flat(t) for nm, t in zip(names, gx)}
            rec["gradY"] = {nm: _flat(t) for nm, t in zip(names, gy)}
            rec["bracket"] = {nm: _flat(t) for nm, t in zip(names, B)}
        out_pairs.append(rec)

    result = {
        "torch": torch.__version__,
        "dtype": args.dtype,
        "model": args.model,
        "loss": args.loss,
        "threads": args.threads,
    }
    if args.probe is not None:
        result["probe"] = args.probe
    result["pairs"] = out_pairs

    if args.bench:
        a, b = pairs[0]
        v = [t.detach() for t in peer.grad(b)[1]]  # fixed v = g_y

        def f_loss():
            with torch.no_grad():
                peer.loss(a)

        def f_grad():
            peer.grad(a)

        def f_hvp():
            peer.hvp(a, v)

        def f_bracket():
            peer.bracket(a, b)

        result["bench"] = {
            "loss": median_ms(f_loss, args.warmup, args.repeats),
            "grad": median_ms(f_grad, args.warmup, args.repeats),
            "hvp": median_ms(f_hvp, args.warmup, args.repeats),
            "bracket": median_ms(f_bracket, args.warmup, args.repeats),
        }
        result["benchPair"] = [a, b]
        result["repeats"] = args.repeats
        result["warmup"] = args.warmup
    return result


torch = None  # imported lazily in run(), after argument/file validation

if __name__ == "__main__":
    main()
