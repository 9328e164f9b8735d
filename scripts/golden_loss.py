#!/usr/bin/env python3
"""Golden losses: a Dense head's loss, accuracy and gradients in float64, from PyTorch
(autograd through BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, mean reduction) and Keras 3
(torch backend: keras.losses.binary_crossentropy on sigmoid outputs,
sparse_categorical_crossentropy on softmax outputs, mean_squared_error, and the accuracy
metrics).

Run from anywhere: `python scripts/golden_loss.py`. Writes tests/data/golden/loss_*/: in
loss.safetensors the features x [n, in], the head's weight [out, in] and bias [out] and the
targets, drawn in float32 (so the Rust tests start from the same values), and in float64
PyTorch's loss and gradients dW, db, dx, and Keras's loss and accuracy. The logits stay
within |z| < 6, where Keras's clipping of probabilities to [1e-7, 1 − 1e-7] changes nothing
(the crate computes binary cross-entropy from the logit; src/loss.rs). Seeded: the bytes are
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

from golden_common import CaseWriter, versions  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

SCRIPT = "scripts/golden_loss.py"


def f64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32).astype(np.float64))


def case(name, seed, kind, n, inputs, out):
    rng = np.random.default_rng(seed)
    x32 = rng.standard_normal((n, inputs)).astype(np.float32)
    w32 = rng.uniform(-0.8, 0.8, (out, inputs)).astype(np.float32)
    b32 = rng.uniform(-0.5, 0.5, (out,)).astype(np.float32)
    if kind == "bce":
        t32 = rng.integers(0, 2, (n,)).astype(np.float32)
    elif kind == "sparse_ce":
        t32 = rng.integers(0, out, (n,)).astype(np.float32)
    else:
        t32 = rng.standard_normal((n, out)).astype(np.float32)
    x, w, b = (f64(a).requires_grad_(True) for a in (x32, w32, b32))
    t = f64(t32)
    z = x @ w.T + b
    assert float(z.detach().abs().max()) < 6.0
    if kind == "bce":
        loss = torch.nn.BCEWithLogitsLoss()(z[:, 0], t)
        zd = z.detach()
        k_loss = keras.ops.mean(keras.losses.binary_crossentropy(t[:, None], torch.sigmoid(zd)))
        k_acc = keras.ops.mean(keras.metrics.binary_accuracy(t[:, None], torch.sigmoid(zd)))
    elif kind == "sparse_ce":
        loss = torch.nn.CrossEntropyLoss()(z, t.long())
        zd = z.detach()
        p = torch.softmax(zd, dim=1)
        k_loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(t, p))
        k_acc = keras.ops.mean(keras.metrics.sparse_categorical_accuracy(t, p))
    else:
        loss = torch.nn.MSELoss()(z, t)
        k_loss = keras.ops.mean(keras.losses.mean_squared_error(t, z.detach()))
        k_acc = None
    dw, db, dx = torch.autograd.grad(loss, [w, b, x])
    tensors = {
        "x": x32, "weight": w32, "bias": b32, "targets": t32,
        "torch_loss": np.array([loss.item()], dtype="<f8"),
        "keras_loss": np.array([float(k_loss)], dtype="<f8"),
        "dW": dw.numpy().astype("<f8"), "db": db.numpy().astype("<f8"), "dx": dx.numpy().astype("<f8"),
    }
    if k_acc is not None:
        tensors["keras_accuracy"] = np.array([float(k_acc)], dtype="<f8")
    cw = CaseWriter(name, {
        "framework": "pytorch and keras",
        "generator": SCRIPT,
        "versions": versions(torch, keras, safetensors),
        "seed": seed,
        "loss": kind,
        "what": "z = x·Wᵀ + b; mean loss over the n entries; dW, db, dx by float64 autograd (PyTorch); "
                "Keras's loss and accuracy on sigmoid/softmax/identity outputs (torch backend)",
        "n": n, "inputs": inputs, "outputs": out,
        "init": "x ~ N(0, 1), weight U(-0.8, 0.8), bias U(-0.5, 0.5), targets (labels or N(0, 1)), float32, "
                "from np.random.default_rng(seed) in that order",
    })
    path = cw.other("loss.safetensors", "inputs (float32) and expected values (float64)", tensors=tensors)
    safetensors.numpy.save_file(tensors, path)
    cw.finish()


def main():
    keras.config.set_floatx("float64")
    case("loss_binary_crossentropy", 51, "bce", 12, 5, 1)
    case("loss_sparse_categorical_crossentropy", 67, "sparse_ce", 10, 6, 4)
    case("loss_mean_squared_error", 53, "mse", 9, 4, 3)


if __name__ == "__main__":
    main()
