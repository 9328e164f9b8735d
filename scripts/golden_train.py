#!/usr/bin/env python3
"""Golden training steps. Keras: the seed article's model shape — GRU(H) → Dense(1, sigmoid)
— compiled with RMSprop (Keras's defaults) and binary cross-entropy, trained by Keras 3 (torch
backend, float64) with `train_on_batch` for ten steps over fixed batches. PyTorch: an nn.GRU
stack (two bidirectional layers, batch_first) with an nn.Linear head on h_n[-2:] (direction 0
first), trained in float64 with Adam and CrossEntropyLoss, or SGD (momentum, Nesterov) with
clip_grad_norm_ and BCEWithLogitsLoss, ten steps over fixed batches.

Run from anywhere: `python scripts/golden_train.py`. Writes tests/data/golden/train_keras_*/:
x.npy [N, T, I] and y.npy [N] (float32), weights.npz (the initial GRU kernel,
recurrent_kernel, bias and dense_kernel, dense_bias, float32 — the file gru-wgpu's Keras
importer reads), after_step1.npz and after_step10.npz (the same names, float64, after those
optimizer steps), losses.npy (float64: train_on_batch's loss at each step, computed before
that step's update). PyTorch cases (train_torch_*/): x.npy [N, T, I], y.npy [N] (labels),
model.safetensors (a whole model's state_dict: gru.weight_ih_l0, …, head.weight, head.bias;
float32),
after_step1.safetensors and after_step10.safetensors (the same names, float64), losses.npy.
Step s trains on batch s mod 2 (entries 0..B−1, then B..2B−1). Seeded: the bytes are
reproducible.
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

from golden_common import CaseWriter, save_npz, versions  # noqa: E402

torch.set_num_threads(1)

SCRIPT = "scripts/golden_train.py"
STEPS = 10


def case(name, seed, reset_after, N=8, B=4, T=6, I=2, H=5):
    rng = np.random.default_rng(seed)
    bias_shape = (2, 3 * H) if reset_after else (3 * H,)
    w32 = {
        "kernel": rng.uniform(-0.5, 0.5, (I, 3 * H)).astype(np.float32),
        "recurrent_kernel": rng.uniform(-0.5, 0.5, (H, 3 * H)).astype(np.float32),
        "bias": rng.uniform(-0.3, 0.3, bias_shape).astype(np.float32),
        "dense_kernel": rng.uniform(-0.5, 0.5, (H, 1)).astype(np.float32),
        "dense_bias": rng.uniform(-0.1, 0.1, (1,)).astype(np.float32),
    }
    x32 = rng.standard_normal((N, T, I)).astype(np.float32)
    y32 = rng.integers(0, 2, (N,)).astype(np.float32)
    keras.config.set_floatx("float64")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((T, I), dtype="float64"),
        keras.layers.GRU(H, reset_after=reset_after, dtype="float64"),
        keras.layers.Dense(1, activation="sigmoid", dtype="float64"),
    ])
    model.set_weights([w32[k].astype(np.float64) for k in
                       ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    losses, after = [], {}
    for s in range(STEPS):
        lo = (s % (N // B)) * B
        out = model.train_on_batch(x32[lo:lo + B].astype(np.float64), y32[lo:lo + B].astype(np.float64))
        losses.append(float(out[0] if isinstance(out, (list, tuple)) else out))
        if s + 1 in (1, STEPS):
            names = ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")
            after[s + 1] = {n: np.asarray(v, dtype="<f8") for n, v in zip(names, model.get_weights())}
    keras.config.set_floatx("float32")
    cw = CaseWriter(name, {
        "framework": "keras",
        "generator": SCRIPT,
        "versions": versions(keras, torch),
        "keras_backend": keras.backend.backend(),
        "seed": seed,
        "what": "GRU → Dense(1, sigmoid), compile(optimizer='rmsprop', loss='binary_crossentropy'), "
                "train_on_batch over fixed batches, float64",
        "convention": {"reset_after": reset_after, "gate_order": "z, r, h (Keras)"},
        "n": N, "batch_size": B, "seq_len": T, "input_size": I, "hidden_size": H, "steps": STEPS,
        "batches": "step s trains on entries (s mod 2)·B .. (s mod 2)·B + B − 1",
        "init": "kernel, recurrent_kernel U(-0.5, 0.5), bias U(-0.3, 0.3), dense_kernel U(-0.5, 0.5), "
                "dense_bias U(-0.1, 0.1), x ~ N(0, 1), y in {0, 1}, float32, np.random.default_rng(seed)",
    })
    save_npz(cw.other("weights.npz", "initial weights (float32)", tensors=w32), w32)
    for step, w in after.items():
        save_npz(cw.other(f"after_step{step}.npz", f"weights after step {step} (float64)", tensors=w), w)
    cw.f32("x.npy", x32, "inputs (N, T, I)")
    cw.f32("y.npy", y32, "labels (N,)")
    path = cw.other("losses.npy", "train_on_batch's loss per step (float64)",
                    dtype="float64", shape=[STEPS])
    np.save(path, np.asarray(losses, dtype="<f8"), allow_pickle=False)
    cw.finish()


def torch_init(rng, gru, head):
    """Draws every state_dict tensor of `gru`, then of `head`, from U(-0.5, 0.5) in float32 and
    loads them into float64 copies: (gru64, head64, gru float32 tensors, head float32 tensors)."""
    state32 = {k: rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32) for k, p in gru.state_dict().items()}
    head32 = {k: rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32) for k, p in head.state_dict().items()}
    gru, head = gru.double(), head.double()
    gru.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in state32.items()})
    head.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in head32.items()})
    return gru, head, state32, head32


def torch_weights(gru, head):
    """The weights now, as a module with attributes gru and head names them (float64)."""
    w = {f"gru.{k}": v.detach().numpy().astype("<f8") for k, v in gru.state_dict().items()}
    w.update({f"head.{k}": v.detach().numpy().astype("<f8") for k, v in head.state_dict().items()})
    return w


def write_torch_weights(cw, state32, head32, after):
    """model.safetensors (the initial float32 weights) and after_stepK.safetensors."""
    model32 = {f"gru.{k}": v for k, v in state32.items()}
    model32.update({f"head.{k}": v for k, v in head32.items()})
    path = cw.other("model.safetensors", "initial GRU state_dict and head (float32)", tensors=model32)
    safetensors.numpy.save_file(model32, path)
    for step, w in after.items():
        path = cw.other(f"after_step{step}.safetensors", f"weights after step {step} (float64)", tensors=w)
        safetensors.numpy.save_file(w, path)


def torch_case(name, seed, out, loss_name, make_opt, hyper, clip, N=8, B=4, T=5, I=3, H=4):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gru = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True)
    head = torch.nn.Linear(2 * H, out)
    gru, head, state32, head32 = torch_init(rng, gru, head)
    x32 = rng.standard_normal((N, T, I)).astype(np.float32)
    y32 = rng.integers(0, 2 if out == 1 else out, (N,)).astype(np.float32)
    params = list(gru.parameters()) + list(head.parameters())
    opt = make_opt(params)
    loss_fn = torch.nn.BCEWithLogitsLoss() if loss_name == "bce" else torch.nn.CrossEntropyLoss()
    losses, after = [], {}
    for s in range(STEPS):
        lo = (s % (N // B)) * B
        xb = torch.from_numpy(x32[lo:lo + B].astype(np.float64))
        yb = torch.from_numpy(y32[lo:lo + B].astype(np.float64))
        _, hn = gru(xb)
        z = head(torch.cat([hn[-2], hn[-1]], dim=1))
        loss = loss_fn(z[:, 0], yb) if loss_name == "bce" else loss_fn(z, yb.long())
        opt.zero_grad()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        losses.append(loss.item())
        if s + 1 in (1, STEPS):
            after[s + 1] = torch_weights(gru, head)
    cw = CaseWriter(name, {
        "framework": "pytorch",
        "generator": SCRIPT,
        "versions": versions(torch, safetensors),
        "seed": seed,
        "what": "nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True) → nn.Linear(2H, out) on "
                "cat(h_n[-2], h_n[-1]); float64; ten steps over fixed batches",
        "loss": loss_name, "optimizer": hyper, "clip_grad_norm": clip,
        "n": N, "batch_size": B, "seq_len": T, "input_size": I, "hidden_size": H, "outputs": out,
        "steps": STEPS,
        "batches": "step s trains on entries (s mod 2)·B .. (s mod 2)·B + B − 1",
        "init": "every state_dict tensor (GRU, then head) U(-0.5, 0.5), x ~ N(0, 1), labels, float32, "
                "np.random.default_rng(seed)",
    })
    write_torch_weights(cw, state32, head32, after)
    cw.f32("x.npy", x32, "inputs (N, T, I), batch_first")
    cw.f32("y.npy", y32, "labels (N,)")
    path = cw.other("losses.npy", "the loss per step, before its update (float64)", dtype="float64", shape=[STEPS])
    np.save(path, np.asarray(losses, dtype="<f8"), allow_pickle=False)
    cw.finish()


def torch_seq_case(name, seed, out, N=8, B=4, T=5, I=3, H=4):
    """A per-step head (sequence to sequence): nn.GRU(bidirectional, batch_first) over packed
    sequences of per-entry lengths, nn.Linear(2H, out) on every step's output, the mean squared
    error over the (entry, step) pairs within each length, Adam; float64."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gru = torch.nn.GRU(I, H, num_layers=1, bidirectional=True, batch_first=True)
    head = torch.nn.Linear(2 * H, out)
    gru, head, state32, head32 = torch_init(rng, gru, head)
    x32 = rng.standard_normal((N, T, I)).astype(np.float32)
    y32 = rng.standard_normal((N, T, out)).astype(np.float32)
    lens = np.array([T, 3, 1, T, 2, T, 4, 1][:N], dtype=np.int64)
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=0.01)
    losses, after = [], {}
    for s in range(STEPS):
        lo = (s % (N // B)) * B
        xb = torch.from_numpy(x32[lo:lo + B].astype(np.float64))
        yb = torch.from_numpy(y32[lo:lo + B].astype(np.float64))
        lb = torch.from_numpy(lens[lo:lo + B])
        packed = torch.nn.utils.rnn.pack_padded_sequence(xb, lb, batch_first=True, enforce_sorted=False)
        y, _ = gru(packed)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=T)
        z = head(y)
        mask = (torch.arange(T)[None, :] < lb[:, None]).double()[..., None]
        loss = (((z - yb) ** 2) * mask).sum() / (mask.sum() * out)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if s + 1 in (1, STEPS):
            after[s + 1] = torch_weights(gru, head)
    cw = CaseWriter(name, {
        "framework": "pytorch",
        "generator": SCRIPT,
        "versions": versions(torch, safetensors),
        "seed": seed,
        "what": "nn.GRU(I, H, bidirectional=True, batch_first=True) over pack_padded_sequence → nn.Linear(2H, "
                "out) on every step's output; MSE over the steps within each length; Adam; float64",
        "loss": "mse per step", "optimizer": {"name": "Adam", "lr": 0.01}, "clip_grad_norm": None,
        "n": N, "batch_size": B, "seq_len": T, "input_size": I, "hidden_size": H, "outputs": out,
        "steps": STEPS,
        "batches": "step s trains on entries (s mod 2)·B .. (s mod 2)·B + B − 1",
        "init": "every state_dict tensor (GRU, then head) U(-0.5, 0.5), x and y ~ N(0, 1), float32, "
                "np.random.default_rng(seed)",
    })
    write_torch_weights(cw, state32, head32, after)
    cw.f32("x.npy", x32, "inputs (N, T, I), batch_first")
    cw.f32("y.npy", y32, "targets (N, T, out)")
    cw.f32("lens.npy", lens.astype(np.float32), "sequence lengths (N,), whole numbers")
    path = cw.other("losses.npy", "the loss per step, before its update (float64)", dtype="float64", shape=[STEPS])
    np.save(path, np.asarray(losses, dtype="<f8"), allow_pickle=False)
    cw.finish()


def main():
    case("train_keras_rmsprop_bce_reset_after", 61, True)
    case("train_keras_rmsprop_bce_reset_before", 62, False)
    torch_case("train_torch_adam_ce", 63, 3, "ce", lambda ps: torch.optim.Adam(ps, lr=0.01),
               {"name": "Adam", "lr": 0.01}, None)
    torch_case("train_torch_sgd_nesterov_clip_bce", 64, 1, "bce",
               lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
               {"name": "SGD", "lr": 0.1, "momentum": 0.9, "nesterov": True}, 0.5)
    torch_seq_case("train_torch_adam_mse_per_step", 65, 2)


if __name__ == "__main__":
    main()
