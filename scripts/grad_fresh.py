#!/usr/bin/env python3
"""`gru grad` against float64 autograd on fresh random cases (issue 14's acceptance check).

    python scripts/grad_fresh.py [--cases N] [--seed S] [--gru target/release/gru] [--devices auto,cpu]

Draws N random cases (a fresh seed unless --seed is given; the seed is printed, so a failure
can be replayed), a third each of:
- PyTorch: an nn.GRU of 1-3 layers, uni- or bidirectional, with or without biases, batch_first
  or not, packed sequences (lengths 1..T) or not, h0 and dL/dh_n given or not; float64
  autograd of L = sum(Y*dY) + sum(h_n*dY_h) through nn.GRU itself.
- Keras 3 (torch backend): GRU(H, reset_after=False or True, return_sequences, return_state),
  an initial state or not; float64 autograd through the Keras layer.
- ONNX weight arrays: one layer, forward, reverse or bidirectional, linear_before_reset 0 or
  1, clip or not, sequence_lens (0..T) or not, layout 0 or 1, initial_h and dY_h given or not;
  float64 autograd through a PyTorch transcription of ONNX's GRU written here (the NumPy
  reference in golden_common.py, step by step).

Each case is written to a temporary folder (float32 arrays), `gru grad` runs on every device
of --devices (auto: the GPU when there is one; cpu: the f64 CPU path), and every gradient it
writes (dX, d initial state, and dW/dR/dB or the model's own weight names) is compared with
autograd's: per tensor max|g - e| <= 1e-5 + 1e-4 * max|e|. Prints one line per case and
device; exits 1 if any gradient is outside the tolerance or any run fails.

Needs torch, keras, numpy, safetensors (scripts/requirements-golden.txt).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "torch"
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import safetensors.numpy  # noqa: E402
import torch  # noqa: E402

from golden_common import ROOT, save_npz  # noqa: E402

torch.set_num_threads(1)


def f64(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32).astype(np.float64))


def grad_of(loss, wrt):
    if not torch.is_tensor(loss) or not loss.requires_grad:
        # Nothing reaches the loss (every length 0 and no dY_h): every gradient is zero.
        return [np.zeros(tuple(w.shape)) for w in wrt]
    gs = torch.autograd.grad(loss, wrt, allow_unused=True)
    return [np.zeros(tuple(w.shape)) if g is None else g.detach().numpy().copy() for g, w in zip(gs, wrt)]


def arrays(d, args, given):
    """Saves each (flag, file, array) of `given` whose array is not None in folder d and adds
    `flag file` to the command line `args`."""
    for flag, name, a in given:
        if a is not None:
            np.save(os.path.join(d, name), a)
            args += [flag, name]


def lengths_for(rng, B, T, allow_zero):
    lo = 0 if allow_zero else 1
    return [int(v) for v in rng.integers(lo, T + 1, size=B)]


# ---------------------------------------------------------------------------------------------
# PyTorch


def torch_case(rng, d):
    layers = int(rng.integers(1, 4))
    bidir = bool(rng.integers(0, 2))
    bias = bool(rng.random() < 0.8)
    batch_first = bool(rng.integers(0, 2))
    T, B, I, H = int(rng.integers(1, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 10))
    packed = bool(rng.integers(0, 2))
    with_h0, with_dyh = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    D = 2 if bidir else 1
    gru = torch.nn.GRU(I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first, bias=bias)
    state = {k: rng.uniform(-0.6, 0.6, tuple(p.shape)).astype(np.float32) for k, p in gru.state_dict().items()}
    gru = gru.double()
    gru.load_state_dict({k: f64(v) for k, v in state.items()})
    xs = (B, T, I) if batch_first else (T, B, I)
    x32 = rng.standard_normal(xs).astype(np.float32)
    h032 = rng.standard_normal((layers * D, B, H)).astype(np.float32)
    dy32 = rng.standard_normal((B, T, D * H) if batch_first else (T, B, D * H)).astype(np.float32)
    dyh32 = rng.standard_normal((layers * D, B, H)).astype(np.float32)
    lens = lengths_for(rng, B, T, allow_zero=False) if packed else None
    x = f64(x32).requires_grad_(True)
    h0 = (f64(h032) if with_h0 else torch.zeros(layers * D, B, H, dtype=torch.float64)).requires_grad_(True)
    if lens is not None:
        p = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lens), batch_first=batch_first, enforce_sorted=False)
        out, hn = gru(p, h0)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        y, hn = gru(x, h0)
    loss = (y * f64(dy32)).sum() + ((hn * f64(dyh32)).sum() if with_dyh else 0.0)
    names = [k for k, _ in gru.named_parameters()]
    grads = grad_of(loss, [p for _, p in gru.named_parameters()] + [x, h0])
    expected = {f"grads:{n}": g for n, g in zip(names, grads)}
    expected["dx"], expected["dh0"] = grads[-2], grads[-1]
    safetensors.numpy.save_file(state, os.path.join(d, "model.safetensors"))
    args = ["--model", "model.safetensors"] + (["--batch-first"] if batch_first else [])
    arrays(d, args, [("--x", "x.npy", x32), ("--dy", "dy.npy", dy32),
                     ("--initial-h", "h0.npy", h032 if with_h0 else None),
                     ("--dy-h", "dyh.npy", dyh32 if with_dyh else None),
                     ("--sequence-lens", "lens.npy", None if lens is None else np.asarray(lens, np.int64))])
    what = (f"torch L={layers} D={D} bias={bias} batch_first={batch_first} T={T} B={B} I={I} H={H} "
            f"lens={lens} h0={with_h0} dY_h={with_dyh}")
    return what, args + ["--grads", "grads.safetensors", "--dx", "dx.npy", "--dh0", "dh0.npy"], expected


# ---------------------------------------------------------------------------------------------
# Keras


def keras_case(rng, d):
    reset_after = bool(rng.integers(0, 2))
    with_h0 = bool(rng.integers(0, 2))
    T, B, I, H = int(rng.integers(1, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 10))
    keras.config.set_floatx("float64")
    try:
        layer = keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=reset_after, dtype="float64")
        layer.build((B, T, I))
        kernel = rng.uniform(-0.6, 0.6, (I, 3 * H)).astype(np.float32)
        rkernel = rng.uniform(-0.6, 0.6, (H, 3 * H)).astype(np.float32)
        bias = rng.uniform(-0.6, 0.6, (2, 3 * H) if reset_after else (3 * H,)).astype(np.float32)
        layer.set_weights([kernel.astype(np.float64), rkernel.astype(np.float64), bias.astype(np.float64)])
        x32 = rng.standard_normal((B, T, I)).astype(np.float32)
        h032 = rng.standard_normal((B, H)).astype(np.float32)
        dy32 = rng.standard_normal((B, T, H)).astype(np.float32)
        dyh32 = rng.standard_normal((B, H)).astype(np.float32)
        x = f64(x32).requires_grad_(True)
        h0 = (f64(h032) if with_h0 else torch.zeros(B, H, dtype=torch.float64)).requires_grad_(True)
        y, h = layer(x, initial_state=[h0])
        loss = (y * f64(dy32)).sum() + (h * f64(dyh32)).sum()
        grads = grad_of(loss, [w.value for w in layer.weights] + [x, h0])
    finally:
        keras.config.set_floatx("float32")
    expected = {"grads:kernel": grads[0], "grads:recurrent_kernel": grads[1], "grads:bias": grads[2],
                "dx": grads[3], "dh0": grads[4]}
    save_npz(os.path.join(d, "weights.npz"), {"kernel": kernel, "recurrent_kernel": rkernel, "bias": bias})
    args = ["--model", "weights.npz"]
    arrays(d, args, [("--x", "x.npy", x32), ("--dy", "dy.npy", dy32), ("--dy-h", "dyh.npy", dyh32),
                     ("--initial-h", "h0.npy", h032 if with_h0 else None)])
    what = f"keras reset_after={reset_after} T={T} B={B} I={I} H={H} h0={with_h0}"
    return what, args + ["--grads", "grads.npz", "--dx", "dx.npy", "--dh0", "dh0.npy"], expected


# ---------------------------------------------------------------------------------------------
# ONNX weight arrays: a float64 PyTorch transcription of ONNX's GRU (golden_common.onnx_gru)


def onnx_layer_torch(x, W, R, Bv, h0, lens, reverse, lbr, clip):
    """x [T, B, I]; W [3H, I]; R [3H, H]; Bv [6H]; h0 [B, H]. Returns y [T, B, H] (zero past
    each length) and h_last [B, H] (zero for a zero length, as onnxruntime)."""
    T, Bt, _ = x.shape
    H = R.shape[1]
    wb, rb = Bv[: 3 * H], Bv[3 * H:]
    c = (lambda v: torch.clamp(v, -clip, clip)) if clip is not None else (lambda v: v)
    ys = [[torch.zeros(H, dtype=torch.float64) for _ in range(Bt)] for _ in range(T)]
    last = []
    for b in range(Bt):
        h = h0[b]
        L = int(lens[b])
        for t in (range(L - 1, -1, -1) if reverse else range(L)):
            xp = W @ x[t, b] + wb
            pz = xp[:H] + R[:H] @ h + rb[:H]
            pr = xp[H:2 * H] + R[H:2 * H] @ h + rb[H:2 * H]
            z, r = torch.sigmoid(c(pz)), torch.sigmoid(c(pr))
            if lbr:
                ph = xp[2 * H:] + r * (R[2 * H:] @ h + rb[2 * H:])
            else:
                ph = xp[2 * H:] + R[2 * H:] @ (r * h) + rb[2 * H:]
            h = (1.0 - z) * torch.tanh(c(ph)) + z * h
            ys[t][b] = h
        last.append(h if L > 0 else torch.zeros(H, dtype=torch.float64))
    y = torch.stack([torch.stack(row) for row in ys])
    return y, torch.stack(last)


def onnx_case(rng, d):
    direction = ["forward", "reverse", "bidirectional"][int(rng.integers(0, 3))]
    D = 2 if direction == "bidirectional" else 1
    lbr = bool(rng.integers(0, 2))
    clip = float(rng.uniform(0.5, 2.0)) if rng.random() < 0.5 else None
    layout = int(rng.integers(0, 2))
    with_lens, with_h0, with_dyh = bool(rng.integers(0, 2)), bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    T, B, I, H = int(rng.integers(1, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 10))
    w32 = rng.uniform(-0.8, 0.8, (D, 3 * H, I)).astype(np.float32)
    r32 = rng.uniform(-0.8, 0.8, (D, 3 * H, H)).astype(np.float32)
    b32 = rng.uniform(-0.8, 0.8, (D, 6 * H)).astype(np.float32)
    x32 = rng.standard_normal((T, B, I)).astype(np.float32) * 1.5
    h032 = rng.standard_normal((D, B, H)).astype(np.float32)
    dy32 = rng.standard_normal((T, D, B, H)).astype(np.float32)
    dyh32 = rng.standard_normal((D, B, H)).astype(np.float32)
    lens = lengths_for(rng, B, T, allow_zero=True) if with_lens else [T] * B
    W, R, Bv = (f64(a).requires_grad_(True) for a in (w32, r32, b32))
    x = f64(x32).requires_grad_(True)
    h0 = (f64(h032) if with_h0 else torch.zeros(D, B, H, dtype=torch.float64)).requires_grad_(True)
    ys, hs = [], []
    for dd in range(D):
        reverse = direction == "reverse" or dd == 1
        y, hl = onnx_layer_torch(x, W[dd], R[dd], Bv[dd], h0[dd], lens, reverse, lbr, clip)
        ys.append(y)
        hs.append(hl)
    Y = torch.stack(ys, dim=1)  # [T, D, B, H]
    Yh = torch.stack(hs)  # [D, B, H]
    loss = (Y * f64(dy32)).sum() + ((Yh * f64(dyh32)).sum() if with_dyh else 0.0)
    gw, gr, gb, gx, gh0 = grad_of(loss, [W, R, Bv, x, h0])
    # Layout 1: X [B, T, I], initial_h [B, D, H], Y [B, T, D, H], Y_h [B, D, H].
    if layout == 1:
        x32, h032 = x32.transpose(1, 0, 2).copy(), h032.transpose(1, 0, 2).copy()
        dy32, dyh32 = dy32.transpose(2, 0, 1, 3).copy(), dyh32.transpose(1, 0, 2).copy()
        gx, gh0 = gx.transpose(1, 0, 2), gh0.transpose(1, 0, 2)
    expected = {"dw": gw, "dr": gr, "db": gb, "dx": gx, "dh0": gh0}
    args = ["--direction", direction, "--layout", str(layout)]
    args += (["--linear-before-reset"] if lbr else []) + (["--clip", repr(clip)] if clip is not None else [])
    arrays(d, args, [("--x", "x.npy", x32), ("--w", "w.npy", w32), ("--r", "r.npy", r32),
                     ("--b", "b.npy", b32), ("--dy", "dy.npy", dy32),
                     ("--sequence-lens", "lens.npy", np.asarray(lens, np.int64) if with_lens else None),
                     ("--initial-h", "h0.npy", h032 if with_h0 else None),
                     ("--dy-h", "dyh.npy", dyh32 if with_dyh else None)])
    what = (f"onnx {direction} lbr={int(lbr)} clip={clip} layout={layout} T={T} B={B} I={I} H={H} "
            f"lens={lens if with_lens else None} h0={with_h0} dY_h={with_dyh}")
    outs = ["--dx", "dx.npy", "--dh0", "dh0.npy", "--dw", "dw.npy", "--dr", "dr.npy", "--db", "db.npy"]
    return what, args + outs, expected


# ---------------------------------------------------------------------------------------------


def load_output(d, key):
    if key.startswith("grads:"):
        name = key.split(":", 1)[1]
        if os.path.exists(os.path.join(d, "grads.safetensors")):
            return safetensors.numpy.load_file(os.path.join(d, "grads.safetensors"))[name]
        with np.load(os.path.join(d, "grads.npz")) as z:
            return z[name]
    return np.load(os.path.join(d, f"{key}.npy"))


def compare(d, expected):
    """(worst ratio of error to tolerance over the tensors, report of failures)."""
    worst, bad = 0.0, []
    for key, e in expected.items():
        g = load_output(d, key).astype(np.float64)
        e = np.asarray(e, np.float64)
        if g.shape != e.shape:
            bad.append(f"{key}: shape {g.shape}, expected {e.shape}")
            worst = float("inf")
            continue
        if e.size == 0:
            continue
        tol = 1e-5 + 1e-4 * float(np.abs(e).max())
        err = np.abs(g - e)
        k = int(np.nanargmax(np.where(np.isnan(err), np.inf, err)))
        ratio = float(err.flat[k]) / tol if not np.isnan(err.flat[k]) else float("inf")
        worst = max(worst, ratio)
        if ratio > 1.0:
            bad.append(f"{key}: worst index {np.unravel_index(k, e.shape)} got {g.flat[k]!r} "
                       f"expected {e.flat[k]!r} |err| {err.flat[k]:.3e} > tolerance {tol:.3e}")
    return worst, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=30)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--gru", default=os.path.join(ROOT, "target", "release", "gru"))
    ap.add_argument("--devices", default="auto,cpu")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed} (replay with --seed {seed}); {a.cases} cases; devices {a.devices}")
    rng = np.random.default_rng(seed)
    makers = [torch_case, keras_case, onnx_case]
    failures, runs, worst_all = 0, 0, 0.0
    for n in range(a.cases):
        with tempfile.TemporaryDirectory() as d:
            what, args, expected = makers[n % 3](rng, d)
            for dev in a.devices.split(","):
                for f in os.listdir(d):
                    if f.startswith(("grads.", "dx.", "dh0.", "dw.", "dr.", "db.")):
                        os.remove(os.path.join(d, f))
                p = subprocess.run([a.gru, "grad", "--device", dev] + args, cwd=d, capture_output=True, text=True)
                runs += 1
                # gru grad's summary line, up to the model: "computed gradients on the GPU, <adapter>".
                summary = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
                summary = summary.removeprefix("gru: ").split("): ")[0] + ")" if "): " in summary else summary
                if p.returncode != 0:
                    failures += 1
                    print(f"case {n} [{dev}] {what}: gru grad exited {p.returncode}: {p.stderr.strip()}")
                    continue
                worst, bad = compare(d, expected)
                worst_all = max(worst_all, worst)
                status = "ok" if not bad else "FAIL"
                failures += bool(bad)
                print(f"case {n} [{dev}] {status} worst {worst:.3f} of tolerance; {what}; {summary}")
                for line in bad:
                    print(f"    {line}")
    print(f"{runs - failures} of {runs} runs within max|g - e| <= 1e-5 + 1e-4*max|e| "
          f"(worst {worst_all:.3f} of the tolerance); seed {seed}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
