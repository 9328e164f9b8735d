#!/usr/bin/env python3
"""Golden gradients from float64 autograd: PyTorch's nn.GRU (packed sequences, bidirectional
stacks, batch_first) and Keras 3's GRU (reset_after False and True, on the torch backend).

Run from anywhere: `python scripts/golden_grads.py`. Writes tests/data/golden/grads_*/.
Every parameter and input is drawn in float32 and widened exactly to float64, so the Rust
tests run the same real-valued network from the committed float32 files; the loss is
L = sum(Y * dY) + sum(Y_h * dY_h) with dY, dY_h drawn in float32 too, so the gradients are
those of `backward(dY, dY_h)`. Gradients are stored in float64 (grads.safetensors for
PyTorch, with the state_dict's names plus `x` and `h0`; grads.npz for Keras, with the layer's
weight names plus `x` and `h0`). Single-threaded and seeded: the bytes are reproducible.
"""

from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "torch"
sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.numpy  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402

from golden_common import CaseWriter, save_npz, versions  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

SCRIPT = "scripts/golden_grads.py"


def f32_then_f64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32).astype(np.float64))


def torch_case(name: str, seed: int, *, layers: int, bidirectional: bool, batch_first: bool,
               T: int, B: int, I: int, H: int, lengths=None, with_h0: bool, with_dyh: bool):
    rng = np.random.default_rng(seed)
    gru = torch.nn.GRU(I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    D = 2 if bidirectional else 1
    state32 = {}
    with torch.no_grad():
        for k, p in gru.state_dict().items():
            state32[k] = rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32)
    gru = gru.double()
    gru.load_state_dict({k: f32_then_f64(v) for k, v in state32.items()})
    xs = (B, T, I) if batch_first else (T, B, I)
    x32 = rng.standard_normal(xs).astype(np.float32)
    h032 = rng.standard_normal((layers * D, B, H)).astype(np.float32)
    ys = (B, T, D * H) if batch_first else (T, B, D * H)
    dy32 = rng.standard_normal(ys).astype(np.float32)
    dyh32 = rng.standard_normal((layers * D, B, H)).astype(np.float32)
    if lengths is not None:
        # Y is zero past each entry's length: its dY there takes no part.
        for b, n in enumerate(lengths):
            if batch_first:
                dy32[b, n:] = 0.0
            else:
                dy32[n:, b] = 0.0
    x = f32_then_f64(x32).requires_grad_(True)
    h0 = f32_then_f64(h032).requires_grad_(True)
    if lengths is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
        out, hn = gru(packed, h0 if with_h0 else None)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        y, hn = gru(x, h0 if with_h0 else None)
    loss = (y * f32_then_f64(dy32)).sum()
    if with_dyh:
        loss = loss + (hn * f32_then_f64(dyh32)).sum()
    names = [k for k, _ in gru.named_parameters()]
    params = [p for _, p in gru.named_parameters()]
    wrt = params + [x] + ([h0] if with_h0 else [])
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    out = {}
    for n, g, p in zip(names + ["x", "h0"], grads, wrt):
        # C order: a batch_first gradient is a transposed view, and safetensors writes an
        # array's memory as it lies.
        out[n] = np.ascontiguousarray((torch.zeros_like(p) if g is None else g).detach().numpy(), dtype="<f8")
    if not with_h0:
        # The gradient of the zero initial state (the input the forward starts from).
        h0z = torch.zeros(layers * D, B, H, dtype=torch.float64, requires_grad=True)
        if lengths is not None:
            o2, hn2 = gru(torch.nn.utils.rnn.pack_padded_sequence(
                x.detach(), torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False), h0z)
            y2, _ = torch.nn.utils.rnn.pad_packed_sequence(o2, batch_first=batch_first, total_length=T)
        else:
            y2, hn2 = gru(x.detach(), h0z)
        l2 = (y2 * f32_then_f64(dy32)).sum()
        if with_dyh:
            l2 = l2 + (hn2 * f32_then_f64(dyh32)).sum()
        (g0,) = torch.autograd.grad(l2, [h0z])
        out["h0"] = np.ascontiguousarray(g0.numpy(), dtype="<f8")
    cw = CaseWriter(name, {
        "framework": "pytorch",
        "generator": SCRIPT,
        "versions": versions(torch, safetensors),
        "seed": seed,
        "what": "float64 autograd gradients of L = sum(Y*dY) + sum(h_n*dY_h) (dY_h only if with_dyh)",
        "convention": {"reset_after": True, "gate_order": "r, z, n (PyTorch)"},
        "num_layers": layers,
        "bidirectional": bidirectional,
        "batch_first": batch_first,
        "input_size": I, "hidden_size": H, "seq_len": T, "batch": B,
        "lengths": lengths,
        "packed": lengths is not None,
        "with_h0": with_h0,
        "with_dyh": with_dyh,
        "weight_init": "every state_dict tensor uniform(-0.5, 0.5) in float32 from np.random.default_rng(seed), in state_dict order",
        "input_init": "x, h0, dY, dY_h ~ N(0, 1) in float32, drawn in that order after the weights (dY zeroed past each length)",
    })
    path = cw.other("model.safetensors", "the nn.GRU state_dict (float32)", tensors=state32)
    safetensors.numpy.save_file(state32, path)
    cw.f32("x.npy", x32, "input, " + ("(B, T, I)" if batch_first else "(T, B, I)"))
    if with_h0:
        cw.f32("h0.npy", h032, "initial state (L*D, B, H)")
    if lengths is not None:
        cw.i64("lengths.npy", lengths, "sequence lengths (B,)")
    cw.f32("dy.npy", dy32, "dL/dY, " + ("(B, T, D*H)" if batch_first else "(T, B, D*H)"))
    if with_dyh:
        cw.f32("dyh.npy", dyh32, "dL/dh_n (L*D, B, H)")
    gpath = cw.other("grads.safetensors", "float64 gradients: state_dict names, x, h0", tensors=out)
    safetensors.numpy.save_file(out, gpath)
    cw.finish()


def keras_case(name: str, seed: int, reset_after: bool, B: int, T: int, I: int, H: int):
    keras.config.set_floatx("float64")
    rng = np.random.default_rng(seed)
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=reset_after,
                             name="gru", dtype="float64")
    layer.build((B, T, I))
    bias_shape = (2, 3 * H) if reset_after else (3 * H,)
    kernel = rng.uniform(-0.5, 0.5, (I, 3 * H)).astype(np.float32)
    rkernel = rng.uniform(-0.5, 0.5, (H, 3 * H)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, bias_shape).astype(np.float32)
    layer.set_weights([kernel.astype(np.float64), rkernel.astype(np.float64), bias.astype(np.float64)])
    x32 = rng.standard_normal((B, T, I)).astype(np.float32)
    h032 = rng.standard_normal((B, H)).astype(np.float32)
    dy32 = rng.standard_normal((B, T, H)).astype(np.float32)
    dyh32 = rng.standard_normal((B, H)).astype(np.float32)
    x = f32_then_f64(x32).requires_grad_(True)
    h0 = f32_then_f64(h032).requires_grad_(True)
    y, h = layer(x, initial_state=[h0])
    loss = (y * f32_then_f64(dy32)).sum() + (h * f32_then_f64(dyh32)).sum()
    weights = [w.value for w in layer.weights]
    grads = torch.autograd.grad(loss, weights + [x, h0])
    names = ["kernel", "recurrent_kernel", "bias", "x", "h0"]
    out = {n: np.ascontiguousarray(g.detach().numpy(), dtype="<f8") for n, g in zip(names, grads)}
    keras.config.set_floatx("float32")
    cw = CaseWriter(name, {
        "framework": "keras",
        "generator": SCRIPT,
        "versions": versions(keras, torch),
        "keras_backend": keras.backend.backend(),
        "seed": seed,
        "what": "float64 autograd gradients of L = sum(Y*dY) + sum(h*dY_h), Y = return_sequences, h = return_state",
        "convention": {"reset_after": reset_after, "gate_order": "z, r, h (Keras)"},
        "keras_layer": f"keras.layers.GRU({H}, return_sequences=True, return_state=True, reset_after={reset_after}, dtype='float64')",
        "input_size": I, "hidden_size": H, "seq_len": T, "batch": B,
        "weight_init": "kernel, recurrent_kernel, bias uniform(-0.5, 0.5) in float32 from np.random.default_rng(seed)",
        "input_init": "x, h0, dY, dY_h ~ N(0, 1) in float32, drawn in that order after the weights",
    })
    tensors = {"kernel": kernel, "recurrent_kernel": rkernel, "bias": bias}
    save_npz(cw.other("weights.npz", "the layer's weights (float32)", tensors=tensors), tensors)
    cw.f32("x.npy", x32, "input (B, T, I)")
    cw.f32("h0.npy", h032, "initial state (B, H)")
    cw.f32("dy.npy", dy32, "dL/dY (B, T, H)")
    cw.f32("dyh.npy", dyh32, "dL/dh (B, H)")
    save_npz(cw.other("grads.npz", "float64 gradients: kernel, recurrent_kernel, bias, x, h0", tensors=out), out)
    cw.finish()


def main():
    torch_case("grads_torch_packed_bidir", 21, layers=2, bidirectional=True, batch_first=False,
               T=7, B=4, I=3, H=5, lengths=[7, 3, 5, 1], with_h0=True, with_dyh=True)
    torch_case("grads_torch_batch_first", 22, layers=1, bidirectional=False, batch_first=True,
               T=6, B=3, I=4, H=6, lengths=None, with_h0=False, with_dyh=False)
    keras_case("grads_keras_reset_after_false", 23, False, B=3, T=5, I=4, H=6)
    keras_case("grads_keras_reset_after_true", 24, True, B=3, T=5, I=4, H=6)


if __name__ == "__main__":
    main()
