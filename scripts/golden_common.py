"""Shared helpers of the golden-file generators (scripts/golden_*.py) and of
scripts/conformance_vectors.py (which uses `onnx_gru` to check the conformance vectors).

- `CaseWriter` writes one case folder, tests/data/golden/<case>/: arrays as .npy
  (float32 little-endian C-order, integer lengths int64), and a case.json that lists every
  file with its dtype and exact shape.
- `onnx_gru` is an independent float64 NumPy reference of ONNX's GRU (both conventions,
  clip, sequence_lens, initial_h, multi-layer / bidirectional stacks) that every generator
  checks its framework's numbers against, through the weight conversions below. So each
  golden file is confirmed twice: by the framework that produced it and by this reference.
- `torch_to_onnx` / `keras_to_onnx` convert weights to ONNX layout (gate order z, r, h).

Nothing here downloads anything; every random number comes from a seeded generator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")


def versions(*modules) -> dict:
    """Versions of the packages that produced a case (recorded in case.json)."""
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for m in modules:
        out[m.__name__] = m.__version__
    return out


class CaseWriter:
    """Writes one case folder; `finish` writes case.json with the file table."""

    def __init__(self, name: str, meta: dict):
        self.name = name
        self.dir = os.path.join(GOLDEN, name)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.meta = {"case": name}
        self.meta.update(meta)
        self.files: dict = {}

    def f32(self, fname: str, arr, role: str) -> np.ndarray:
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        assert np.all(np.isfinite(a)), f"{self.name}/{fname}: non-finite values"
        np.save(os.path.join(self.dir, fname), a, allow_pickle=False)
        self.files[fname] = {"role": role, "dtype": "float32", "shape": list(a.shape)}
        return a

    def i64(self, fname: str, arr, role: str) -> np.ndarray:
        a = np.ascontiguousarray(np.asarray(arr, dtype="<i8"))
        np.save(os.path.join(self.dir, fname), a, allow_pickle=False)
        self.files[fname] = {"role": role, "dtype": "int64", "shape": list(a.shape)}
        return a

    def other(self, fname: str, role: str, tensors: dict | None = None, **extra) -> str:
        """Registers a file written by the caller (safetensors, npz, onnx); `tensors`
        maps each stored tensor name to its array, to record names, dtypes and shapes."""
        entry = {"role": role}
        if tensors is not None:
            entry["tensors"] = {
                k: {"dtype": str(np.asarray(v).dtype), "shape": list(np.asarray(v).shape)}
                for k, v in tensors.items()
            }
        entry.update(extra)
        self.files[fname] = entry
        return os.path.join(self.dir, fname)

    def fix_modes(self):
        """safetensors writes 0600 files; make every file 0644."""
        for f in os.listdir(self.dir):
            os.chmod(os.path.join(self.dir, f), 0o644)

    def finish(self, **extra):
        self.meta.update(extra)
        self.meta["files"] = self.files
        self.fix_modes()
        text = json.dumps(self.meta, indent=2, ensure_ascii=False)
        # Lists of plain numbers (shapes, lengths) on one line.
        text = re.sub(
            r"\[\s*(-?[0-9.e+-]+(?:,\s*-?[0-9.e+-]+)*)\s*\]",
            lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
            text,
        )
        with open(os.path.join(self.dir, "case.json"), "w", encoding="utf-8", newline="\n") as f:
            f.write(text + "\n")
        print(f"wrote {os.path.relpath(self.dir, ROOT)}: {sorted(self.files)}")


def save_npz(path: str, tensors: dict):
    """Like np.savez (uncompressed, members NAME.npy), but byte-reproducible: np.savez
    stamps each member with the current time; here every member is dated 1980-01-01."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for k, v in tensors.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(v), allow_pickle=False)
            info = zipfile.ZipInfo(f"{k}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue())


# ---------------------------------------------------------------------------------------
# Independent NumPy reference (float64), ONNX layout and semantics
# ---------------------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def onnx_gru_layer(x, W, R, B, h0, lens, reverse: bool, lbr: bool, clip=None):
    """One direction of one layer. x [T, Bt, I], W [3H, I], R [3H, H], B [6H] or None,
    h0 [Bt, H], lens [Bt]. Returns y [T, Bt, H] (zero past each length) and h_last [Bt, H]
    (zero for a zero length, as onnxruntime)."""
    x = np.asarray(x, np.float64)
    W, R = np.asarray(W, np.float64), np.asarray(R, np.float64)
    T, Bt, _ = x.shape
    H = R.shape[1]
    B = np.zeros(6 * H) if B is None else np.asarray(B, np.float64)
    wb, rb = B[: 3 * H], B[3 * H :]
    Wz, Wr, Wh = W[:H], W[H : 2 * H], W[2 * H :]
    Rz, Rr, Rh = R[:H], R[H : 2 * H], R[2 * H :]
    c = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)
    y = np.zeros((T, Bt, H))
    hl = np.zeros((Bt, H))
    clipped = 0
    for b in range(Bt):
        L = int(lens[b])
        h = np.asarray(h0[b], np.float64).copy()
        steps = range(L - 1, -1, -1) if reverse else range(L)
        for t in steps:
            xt = x[t, b]
            pz = xt @ Wz.T + h @ Rz.T + wb[:H] + rb[:H]
            pr = xt @ Wr.T + h @ Rr.T + wb[H : 2 * H] + rb[H : 2 * H]
            z = _sigmoid(c(pz))
            r = _sigmoid(c(pr))
            if lbr:
                ph = xt @ Wh.T + wb[2 * H :] + r * (h @ Rh.T + rb[2 * H :])
            else:
                ph = xt @ Wh.T + wb[2 * H :] + (r * h) @ Rh.T + rb[2 * H :]
            if clip is not None:
                clipped += int(np.sum(np.abs(np.concatenate([pz, pr, ph])) > clip))
            hh = np.tanh(c(ph))
            h = (1.0 - z) * hh + z * h
            y[t, b] = h
        if L > 0:
            hl[b] = h
    return y, hl, clipped


def onnx_gru(x, layers, h0=None, lens=None, lbr=True, direction="forward", clip=None):
    """A stack of layers. x [T, B, I] (sequence-major); layers[k] = list of D (W, R, B)
    tuples in ONNX layout; direction "forward", "reverse" or "bidirectional";
    h0 [L*D, B, H] or None. Returns Y as PyTorch-style [T, B, D*H], Y_h [L*D, B, H],
    and the count of clipped pre-activations."""
    D = 2 if direction == "bidirectional" else 1
    x = np.asarray(x, np.float64)
    T, Bt, _ = x.shape
    H = np.asarray(layers[0][0][1]).shape[1]
    if lens is None:
        lens = np.full(Bt, T)
    hs, clipped, inp = [], 0, x
    for k, layer in enumerate(layers):
        outs = []
        for d, (W, R, B) in enumerate(layer):
            assert len(layer) == D
            reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
            init = np.zeros((Bt, H)) if h0 is None else h0[k * D + d]
            y, hl, c = onnx_gru_layer(inp, W, R, B, init, lens, reverse, lbr, clip)
            outs.append(y)
            hs.append(hl)
            clipped += c
        inp = np.concatenate(outs, axis=2)
    return inp, np.stack(hs), clipped


def torch_to_onnx(sd: dict, layer: int, reverse: bool, bias: bool = True, prefix: str = ""):
    """PyTorch (r, z, n) weights of one layer/direction -> ONNX (z, r, h) W, R, B."""
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")

    def reorder(a):
        H = a.shape[0] // 3
        return np.concatenate([a[H : 2 * H], a[:H], a[2 * H :]], axis=0)

    W = reorder(np.asarray(sd[f"{prefix}weight_ih{sfx}"]))
    R = reorder(np.asarray(sd[f"{prefix}weight_hh{sfx}"]))
    B = None
    if bias:
        B = np.concatenate(
            [reorder(np.asarray(sd[f"{prefix}bias_ih{sfx}"])), reorder(np.asarray(sd[f"{prefix}bias_hh{sfx}"]))]
        )
    return W, R, B


def keras_to_onnx(kernel, recurrent_kernel, bias, reset_after: bool):
    """Keras (z, r, h) kernel (I, 3H), recurrent_kernel (H, 3H), bias (2, 3H) or (3H,)
    -> ONNX W [3H, I], R [3H, H], B [6H] (recurrent half zero when reset_after=False)."""
    W = np.asarray(kernel).T
    R = np.asarray(recurrent_kernel).T
    bias = np.asarray(bias)
    if reset_after:
        B = bias.reshape(-1)
    else:
        B = np.concatenate([bias, np.zeros_like(bias)])
    return W, R, B


def assert_close(name, got, want, atol=1e-5, rtol=1e-4):
    """onnxruntime's own f32 tolerance: |a - e| <= atol + rtol*|e|."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    bad = err > atol + rtol * np.abs(want)
    assert not bad.any(), f"{name}: max error {err.max():.3g}"
    return float(err.max()) if err.size else 0.0
