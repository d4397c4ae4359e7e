#!/usr/bin/env python3
"""Writes test/fixtures/pytorch-run/: a run trained in PyTorch, for `lie-bracket import`.

A short PyTorch training loop of the smoothconvnet preset's architecture (conv 3x3 1->16, silu,
avg-pool 2, conv 3x3 16->32, silu, avg-pool 2, fc 1568->10; the same state_dict names as
lie-bracket's preset) with Adam and a BCE loss on one-hot targets, on the first 256 training
examples of the shipped Fashion-MNIST subset (data/fashion-mnist, pixels / 255, as lie-bracket
reads them). It saves the model's state_dict at steps 0, 5 and 20 as step-<n>.safetensors, with
the small safetensors writer below (what docs/pytorch-runs.md shows; no `safetensors` package is
needed). src/study/import.test.ts imports these files and compares the sweep of the import with
the sweep of the same files in a run of lie-bracket's own format.

    /usr/bin/python3 scripts/make-pytorch-run-fixture.py [--out test/fixtures/pytorch-run]

Also, by hand: check that a checkpoint written by `lie-bracket train` is a plain PyTorch
state_dict (loads with load_state_dict(strict=True), same logits as lie-bracket's):

    /usr/bin/python3 scripts/make-pytorch-run-fixture.py --check runs/x/checkpoints/step-10.safetensors \\
        --model smoothconvnet|mlp|spec.json

Needs Debian's PyTorch (python3-torch, tested with 1.13). The tests only read the committed files.
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STEPS = [0, 5, 20]


# --- the saving code (about twenty lines; docs/pytorch-runs.md) -------------------------------
ST_DTYPE = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def save_safetensors(state_dict, path):
    """Write a state_dict as safetensors (what safetensors.torch.save_file does), atomically."""
    header, chunks, offset = {}, [], 0
    for name, t in state_dict.items():  # all in one buffer; the order does not matter to readers
        t = t.detach().cpu().contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
    os.replace(path + ".tmp", path)


# ------------------------------------------------------------------------------------------------


def reference_model(name):
    """The preset as an nn.Module with its parameter names (torch_peer.py's, the one copy)."""
    sys.path.insert(0, HERE)
    import torch_peer  # noqa: E402

    return torch_peer.build_reference_model(name)[0]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    (magic,) = struct.unpack(">I", buf[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, buf[4 : 4 + 4 * ndim])
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion(split, n):
    prefix = "train" if split == "train" else "t10k"
    d = os.path.join(ROOT, "data", "fashion-mnist")
    x = read_idx(os.path.join(d, "%s-images-idx3-ubyte.gz" % prefix))[:n].astype(np.float32) / 255.0
    y = read_idx(os.path.join(d, "%s-labels-idx1-ubyte.gz" % prefix))[:n].astype(np.int64)
    return torch.from_numpy(x).reshape(n, 1, 28, 28), torch.from_numpy(y)


def make_fixture(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = reference_model("smoothconvnet")
    x, y = fashion("train", 256)
    targets = F.one_hot(y, 10).float()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(STEPS[-1] + 1):
        if step in STEPS:
            save_safetensors(model.state_dict(), os.path.join(out, "step-%d.safetensors" % step))
        if step == STEPS[-1]:
            break
        idx = torch.randint(0, x.shape[0], (32,), generator=g)
        loss = F.binary_cross_entropy_with_logits(model(x[idx]), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print("wrote %s: steps %s, final batch loss %.4f" % (out, STEPS, loss.item()))


def read_safetensors(path):
    np_dtype = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out, dtypes = {}, {}
    for k, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(buf[8 + n + b : 8 + n + end], dtype=np_dtype[e["dtype"]]).reshape(e["shape"])
        out[k] = torch.from_numpy(arr.copy())
        dtypes[k] = e["dtype"]
    return out, dtypes, meta


def check(path, model_name):
    """load_state_dict(strict=True) of a lie-bracket checkpoint; prints the dtypes and the logits of 4 test images."""
    sys.path.insert(0, HERE)
    if model_name in ("smoothconvnet", "mlp", "convnet"):
        model = reference_model(model_name)
    else:
        import torch_peer  # noqa: E402  (spec models)

        with open(model_name) as f:
            model = torch_peer.build_spec_model(json.load(f))[0]
    state, dtypes, meta = read_safetensors(path)
    if "F64" in dtypes.values():
        model = model.double()
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key, or shape
    own = model.state_dict()
    for k, t in state.items():
        assert t.dtype == own[k].dtype, "%s: %s in the file, %s in the module" % (k, t.dtype, own[k].dtype)
    model.eval()
    x, _ = fashion("test", 4)
    with torch.no_grad():
        z = model(x.to(next(model.parameters()).dtype))
    print(json.dumps({"ok": True, "dtypes": dtypes, "metadata": meta, "logits": z.double().numpy().ravel().tolist()}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "test", "fixtures", "pytorch-run"))
    ap.add_argument("--check", help="a lie-bracket checkpoint to load into the PyTorch module")
    ap.add_argument("--model", default="smoothconvnet")
    a = ap.parse_args()
    if a.check:
        check(a.check, a.model)
    else:
        make_fixture(a.out)
