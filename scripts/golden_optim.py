#!/usr/bin/env python3
"""Golden optimizer trajectories: torch.optim (SGD, Adam, AdamW, with clip_grad_norm_ /
clip_grad_value_) and Keras 3's RMSprop (torch backend), in float64.

Run from anywhere: `python scripts/golden_optim.py`. Writes tests/data/golden/optim_*/:
three parameter tensors drawn in float32 (so the Rust tests start from the same values), ten
steps of gradients drawn in float32 (independent of the parameters, so the optimizer alone is
tested), and the parameters after step 1 and step 10 in float64, in optim.safetensors
(`p{i}` initial, `g{s}_{i}` step s's gradients, `p{i}_step1`, `p{i}_step10`). case.json has
the optimizer, its hyperparameters and the clipping. Single-threaded and seeded: the bytes
are reproducible.
"""

from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "torch"
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.numpy  # noqa: E402
import torch  # noqa: E402

from golden_common import CaseWriter, versions  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

SCRIPT = "scripts/golden_optim.py"
SHAPES = [(4, 3), (5,), (2, 2, 2)]
STEPS = 10


def draw(seed: int, grad_scale: float):
    rng = np.random.default_rng(seed)
    p0 = [rng.uniform(-1.0, 1.0, s).astype(np.float32) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * grad_scale).astype(np.float32) for s in SHAPES]
             for _ in range(STEPS)]
    return p0, grads


def torch_run(p0, grads, make, clip):
    params = [torch.nn.Parameter(torch.from_numpy(p.astype(np.float64))) for p in p0]
    opt = make(params)
    after = {}
    for s, gs in enumerate(grads):
        for p, g in zip(params, gs):
            p.grad = torch.from_numpy(g.astype(np.float64))
        if clip is not None and clip[0] == "norm":
            torch.nn.utils.clip_grad_norm_(params, clip[1])
        if clip is not None and clip[0] == "value":
            torch.nn.utils.clip_grad_value_(params, clip[1])
        opt.step()
        if s + 1 in (1, STEPS):
            after[s + 1] = [p.detach().numpy().copy() for p in params]
    return after


def keras_run(p0, grads, kwargs):
    variables = [keras.Variable(p.astype(np.float64), dtype="float64") for p in p0]
    opt = keras.optimizers.RMSprop(**kwargs)
    after = {}
    for s, gs in enumerate(grads):
        opt.apply_gradients([(torch.from_numpy(g.astype(np.float64)), v) for g, v in zip(gs, variables)])
        if s + 1 in (1, STEPS):
            after[s + 1] = [np.asarray(keras.ops.convert_to_numpy(v.value), dtype=np.float64).copy()
                            for v in variables]
    return after


def write(name, seed, grad_scale, framework, optimizer, hyper, clip, after, p0, grads, pkgs):
    cw = CaseWriter(name, {
        "framework": framework,
        "generator": SCRIPT,
        "versions": versions(*pkgs),
        "seed": seed,
        "what": f"{optimizer} in float64 over {STEPS} steps of given gradients",
        "optimizer": optimizer,
        "hyperparameters": hyper,
        "clip": None if clip is None else {"kind": clip[0], "threshold": clip[1]},
        "shapes": [list(s) for s in SHAPES],
        "init": "p{i} uniform(-1, 1) in float32, then g{s}_{i} ~ N(0, 1)·grad_scale in float32, from np.random.default_rng(seed)",
        "grad_scale": grad_scale,
    })
    tensors = {}
    for i, p in enumerate(p0):
        tensors[f"p{i}"] = p
    for s, gs in enumerate(grads):
        for i, g in enumerate(gs):
            tensors[f"g{s}_{i}"] = g
    for step, ps in after.items():
        for i, p in enumerate(ps):
            tensors[f"p{i}_step{step}"] = np.ascontiguousarray(p, dtype="<f8")
    path = cw.other("optim.safetensors", "initial parameters, gradients, parameters after steps 1 and 10",
                    tensors=tensors)
    safetensors.numpy.save_file(tensors, path)
    cw.finish()


def main():
    torch_cases = [
        ("optim_torch_sgd", 31, 1.0, "SGD", {"lr": 0.1}, None,
         lambda ps: torch.optim.SGD(ps, lr=0.1)),
        ("optim_torch_sgd_nesterov", 32, 1.0, "SGD",
         {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, None,
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("optim_torch_sgd_dampening_clip_value", 33, 2.0, "SGD",
         {"lr": 0.05, "momentum": 0.8, "dampening": 0.25}, ("value", 0.5),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.25)),
        ("optim_torch_adam", 34, 1.0, "Adam", {}, None,
         lambda ps: torch.optim.Adam(ps)),
        ("optim_torch_adam_l2_clip_norm", 35, 3.0, "Adam", {"lr": 0.01, "weight_decay": 0.1},
         ("norm", 1.0), lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1)),
        ("optim_torch_adamw", 36, 1.0, "AdamW", {"lr": 0.01}, None,
         lambda ps: torch.optim.AdamW(ps, lr=0.01)),
    ]
    for name, seed, scale, opt, hyper, clip, make in torch_cases:
        p0, grads = draw(seed, scale)
        after = torch_run(p0, grads, make, clip)
        write(name, seed, scale, "pytorch", opt, hyper, clip, after, p0, grads, (torch, safetensors))
    keras_cases = [
        ("optim_keras_rmsprop", 41, 1.0, {}),
        ("optim_keras_rmsprop_centered_momentum", 42, 1.0,
         {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True}),
    ]
    for name, seed, scale, kwargs in keras_cases:
        p0, grads = draw(seed, scale)
        after = keras_run(p0, grads, kwargs)
        write(name, seed, scale, "keras", "RMSprop", kwargs, None, after, p0, grads,
              (keras, torch, safetensors))


if __name__ == "__main__":
    main()
