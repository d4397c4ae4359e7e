#!/usr/bin/env python3
"""Writes test/fixtures/optim.json: PyTorch's optimizer trajectories, for src/nn/optim.test.ts.

For each optimizer config (sgd, momentum, nesterov with weight decay, adam as in the seed study,
adam with L2 weight decay, adamw, ...) it takes a fixed initial parameter dict of two small float64
tensors and a fixed sequence of gradient dicts (deterministic formulas, no RNG), sets each as
`.grad` and calls `optimizer.step()`, and records the parameters after every step plus the final
optimizer state under lie-bracket's buffer names. Floats are written with repr (shortest round
trip), so the JSON holds PyTorch's float64 results exactly.

Reads nothing. Needs Debian's PyTorch (python3-torch, tested with 1.13):

    /usr/bin/python3 scripts/make-optim-fixtures.py [--out test/fixtures/optim.json]

The tests only read the committed fixture; they never need torch.
"""

import argparse
import json
import math
import os

import torch

STEPS = 5
SHAPES = [("layer.weight", (2, 3)), ("layer.bias", (3,))]

# (case name, lie-bracket OptimizerConfig, torch constructor, torch keyword arguments).
CASES = [
    ("sgd", {"name": "sgd", "lr": 0.1}, "SGD", {"lr": 0.1}),
    ("sgd+wd", {"name": "sgd", "lr": 0.1, "weightDecay": 0.05}, "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("momentum", {"name": "momentum", "lr": 0.05, "momentum": 0.9}, "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("momentum(default)", {"name": "momentum", "lr": 0.05}, "SGD", {"lr": 0.05, "momentum": 0.9}),
    (
        "momentum+dampening",
        {"name": "momentum", "lr": 0.05, "momentum": 0.8, "dampening": 0.3},
        "SGD",
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    ),
    (
        "momentum+nesterov+wd",
        {"name": "momentum", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weightDecay": 0.01},
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    ("adam(seed study)", {"name": "adam", "lr": 5e-3, "betas": [0.8, 0.999]}, "Adam", {"lr": 5e-3, "betas": (0.8, 0.999)}),
    ("adam(default)", {"name": "adam", "lr": 1e-3}, "Adam", {"lr": 1e-3}),
    (
        "adam+wd",
        {"name": "adam", "lr": 1e-2, "weightDecay": 0.1},
        "Adam",
        {"lr": 1e-2, "weight_decay": 0.1},
    ),
    ("adamw(default wd)", {"name": "adamw", "lr": 1e-2}, "AdamW", {"lr": 1e-2}),
    (
        "adamw+betas+eps+wd",
        {"name": "adamw", "lr": 2e-2, "betas": [0.5, 0.9], "eps": 1e-6, "weightDecay": 0.2},
        "AdamW",
        {"lr": 2e-2, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.2},
    ),
]


def initial_params():
    out = {}
    for j, (name, shape) in enumerate(SHAPES):
        n = math.prod(shape)
        vals = [0.75 * math.sin(1.3 * i + 0.7 + 2.1 * j) for i in range(n)]
        out[name] = torch.tensor(vals, dtype=torch.float64).reshape(shape)
    return out


def gradients(k):
    """The gradients of step k: varied signs and scales, one exact zero, one tiny entry near eps."""
    out = {}
    for j, (name, shape) in enumerate(SHAPES):
        n = math.prod(shape)
        vals = [math.cos(0.9 * i + 1.7 * k + 0.3 + 0.5 * j) * (1 + 0.5 * k) * (0.1 if i % 2 else 1.0) for i in range(n)]
        if j == 0:
            vals[0] = 0.0  # a parameter that never gets a gradient (Adam: update 0 / eps)
        if j == 1:
            vals[1] = 3e-9 * (k - 2)  # comparable to eps
        out[name] = torch.tensor(vals, dtype=torch.float64).reshape(shape)
    return out


def as_lists(d):
    return {k: {"shape": list(v.shape), "values": [float(x) for x in v.reshape(-1).tolist()]} for k, v in d.items()}


# lie-bracket's buffer names for torch's state entries.
STATE_NAMES = {"momentum_buffer": "momentum_buffer", "exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}


def run_case(name, cfg, ctor, kwargs):
    params = {k: v.clone().requires_grad_(True) for k, v in initial_params().items()}
    opt = getattr(torch.optim, ctor)(list(params.values()), foreach=False, **kwargs)
    grads, after = [], []
    for k in range(STEPS):
        g = gradients(k)
        for pname, p in params.items():
            p.grad = g[pname].clone()
        opt.step()
        grads.append(as_lists(g))
        after.append({pname: [float(x) for x in p.detach().reshape(-1).tolist()] for pname, p in params.items()})
    state = {}
    steps = set()
    for pname, p in params.items():
        st = opt.state[p]
        for key, ours in STATE_NAMES.items():
            if key in st and st[key] is not None:
                state["%s.%s" % (ours, pname)] = [float(x) for x in st[key].reshape(-1).tolist()]
        if "step" in st:
            steps.add(float(st["step"]))
    return {
        "name": name,
        "config": cfg,
        "torch": {"optimizer": ctor, "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}},
        "params": as_lists(initial_params()),
        "grads": grads,
        "after": after,
        "finalState": state,
        "finalStep": int(steps.pop()) if len(steps) == 1 else STEPS,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="test/fixtures/optim.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {
        "generator": "scripts/make-optim-fixtures.py",
        "torch": torch.__version__,
        "dtype": "float64",
        "steps": STEPS,
        "cases": [run_case(*c) for c in CASES],
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
