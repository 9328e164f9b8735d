#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (fuzz/corpus/<target>/).

Standard library only. Valid files come from tests/data/golden (written by PyTorch, Keras,
NumPy and onnx) and from small writers below; the rest are edge cases each reader must refuse
cleanly. Run from the repository root: python3 fuzz/make_seeds.py
"""

import io
import json
import os
import struct
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def golden(case, name):
    with open(os.path.join(GOLDEN, case, name), "rb") as f:
        return f.read()


def npy(descr, shape, payload, version=(1, 0), fortran=False):
    """A .npy file with the given header fields and raw payload bytes."""
    shape_text = "(" + "".join(f"{d}, " for d in shape)
    shape_text = shape_text[:-2] + ",)" if len(shape) == 1 else shape_text.rstrip(", ") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}"
    len_bytes = 2 if version == (1, 0) else 4
    pad = 64 - (10 + len_bytes - 2 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    fmt = "<H" if len_bytes == 2 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header)) + header.encode() + payload


def f32(values, big=False):
    return struct.pack((">" if big else "<") + "f" * len(values), *values)


def safetensors(tensors):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def npz(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, raw in members:
            z.writestr(name, raw)
    return buf.getvalue()


def half(values):
    return struct.pack("<" + "e" * len(values), *values)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    i, h = 2, 3
    k = [0.1 * n for n in range(i * 3 * h)]
    rk = [0.05 * n for n in range(h * 3 * h)]
    b2 = [0.01 * n for n in range(2 * 3 * h)]

    # --- npy
    write("npy", "golden_x_f4.npy", golden("keras_reset_after_false", "x.npy"))
    write("npy", "golden_lens_int.npy", golden("onnx_bidir_seqlens_lbr1", "sequence_lens.npy"))
    write("npy", "f4_2x3.npy", npy("<f4", [2, 3], f32([1, 2, 3, 4, 5, 6])))
    write("npy", "f8_big.npy", npy(">f8", [3], struct.pack(">3d", 1.5, -2.0, 1e300)))
    write("npy", "i8.npy", npy("<i8", [3], struct.pack("<3q", 0, 7, -1)))
    write("npy", "u4_scalar.npy", npy("<u4", [], struct.pack("<I", 9)))
    write("npy", "v2_f4.npy", npy("<f4", [1, 1], f32([0.5]), version=(2, 0)))
    write("npy", "v3_f4.npy", npy("<f4", [2], f32([0.5, 1.0]), version=(3, 0)))
    write("npy", "fortran_1d.npy", npy("<f4", [2], f32([1, 2]), fortran=True))
    write("npy", "empty_0.npy", npy("<f4", [0, 4], b""))
    write("npy", "truncated.npy", npy("<f4", [4], f32([1, 2, 3])))
    write("npy", "u1.npy", npy("|u1", [2], b"\x01\x02"))
    write("npy", "empty_file.npy", b"")

    # --- safetensors (PyTorch and Keras)
    write("safetensors", "torch_no_bias.safetensors", golden("torch_no_bias", "model.safetensors"))
    write("safetensors", "torch_3layer.safetensors", golden("torch_3layer_forward", "model.safetensors"))
    write("safetensors", "torch_packed.safetensors", golden("torch_packed_lengths", "model.safetensors"))
    write("safetensors", "keras_false.safetensors", golden("keras_reset_after_false", "weights.safetensors"))
    write("safetensors", "keras_true.safetensors", golden("keras_reset_after_true", "weights.safetensors"))
    wi = [0.1] * (3 * h * i)
    wh = [0.2] * (3 * h * h)
    bias = [0.0] * (3 * h)
    write("safetensors", "torch_prefix_bidir_f16.safetensors", safetensors([
        ("gru.weight_ih_l0", "F16", [3 * h, i], half(wi)),
        ("gru.weight_hh_l0", "F16", [3 * h, h], half(wh)),
        ("gru.bias_ih_l0", "F16", [3 * h], half(bias)),
        ("gru.bias_hh_l0", "F16", [3 * h], half(bias)),
        ("gru.weight_ih_l0_reverse", "F32", [3 * h, i], f32(wi)),
        ("gru.weight_hh_l0_reverse", "F32", [3 * h, h], f32(wh)),
        ("gru.bias_ih_l0_reverse", "F32", [3 * h], f32(bias)),
        ("gru.bias_hh_l0_reverse", "F32", [3 * h], f32(bias)),
        ("head.weight", "F32", [1, 2 * h], f32([0.0] * 2 * h)),
    ]))
    write("safetensors", "torch_f64_bf16.safetensors", safetensors([
        ("weight_ih_l0", "F64", [3 * h, i], struct.pack("<%dd" % len(wi), *wi)),
        ("weight_hh_l0", "BF16", [3 * h, h], b"\x80\x3f" * len(wh)),
    ]))
    write("safetensors", "keras_dense.safetensors", safetensors([
        ("kernel", "F32", [i, 3 * h], f32(k)),
        ("recurrent_kernel", "F32", [h, 3 * h], f32(rk)),
        ("bias", "F32", [2, 3 * h], f32(b2)),
        ("dense_kernel", "F32", [h, 2], f32([0.5] * 2 * h)),
        ("dense_bias", "F32", [2], f32([0.0, 1.0])),
    ]))
    write("safetensors", "int_dtype.safetensors", safetensors([
        ("weight_ih_l0", "I64", [1], b"\0" * 8),
    ]))
    write("safetensors", "empty_header.safetensors", safetensors([]))

    # --- npz (Keras)
    write("npz", "keras_false.npz", golden("keras_reset_after_false", "weights.npz"))
    write("npz", "keras_true.npz", golden("keras_reset_after_true", "weights.npz"))
    write("npz", "keras_dense_deflated.npz", npz([
        ("kernel.npy", npy("<f4", [i, 3 * h], f32(k))),
        ("recurrent_kernel.npy", npy("<f8", [h, 3 * h], struct.pack("<%dd" % len(rk), *rk))),
        ("bias.npy", npy("<f4", [2, 3 * h], f32(b2))),
        ("dense_kernel.npy", npy("<f4", [h, 1], f32([1.0] * h))),
    ], zipfile.ZIP_DEFLATED))
    write("npz", "keras_no_bias.npz", npz([
        ("kernel.npy", npy("<f4", [i, 3 * h], f32(k))),
        ("recurrent_kernel.npy", npy("<f4", [h, 3 * h], f32(rk))),
    ]))
    write("npz", "not_npy_member.npz", npz([("data.pkl", b"\x80\x02}q\x00.")]))

    # --- onnx
    for case in ["onnx_forward_no_bias", "onnx_reverse_layout1_lbr0", "onnx_bidir_seqlens_lbr1",
                 "onnx_two_gru_nodes", "onnx_unsupported_activation"]:
        write("onnx", case + ".onnx", golden(case, "model.onnx"))

    # --- cli: arguments one per line, then files as "path\ncontents", separated by SEP.
    sep = b"\n%%%%\n"

    def cli(name, args, files):
        data = "\n".join(args).encode()
        for path, contents in files:
            data += sep + path.encode() + b"\n" + contents
        write("cli", name, data)

    out = ["--y", "y.npy", "--y-h", "yh.npy", "--device", "cpu"]
    cli("torch_model", ["run", "--model", "m", "--x", "x.npy"] + out, [
        ("m", golden("torch_no_bias", "model.safetensors")),
        ("x.npy", golden("torch_no_bias", "x.npy")),
    ])
    g = "onnx_bidir_seqlens_lbr1"
    cli("onnx_model_lens_h0", ["run", "--model", "m.onnx", "--x", "X.npy", "--initial-h", "h0",
                               "--sequence-lens", "L"] + out, [
        ("m.onnx", golden(g, "model.onnx")),
        ("X.npy", golden(g, "X.npy")),
        ("h0", golden(g, "initial_h.npy")),
        ("L", golden(g, "sequence_lens.npy")),
    ])
    cli("keras_npz", ["run", "--model=w.npz", "--x", "x", "--keras-reset-after", "true"] + out, [
        ("w.npz", golden("keras_reset_after_true", "weights.npz")),
        ("x", golden("keras_reset_after_true", "x.npy")),
    ])
    g = "onnx_reverse_layout1_lbr0"
    cli("arrays_reverse_layout1", ["run", "--x", "X", "--w", "W", "--r", "R", "--b", "B",
                                   "--initial-h", "H", "--direction", "reverse", "--layout", "1",
                                   "--clip", "2.5"] + out, [
        ("X", golden(g, "X.npy")), ("W", golden(g, "W.npy")), ("R", golden(g, "R.npy")),
        ("B", golden(g, "B.npy")), ("H", golden(g, "initial_h.npy")),
    ])
    g = "onnx_bidir_seqlens_lbr1"
    cli("arrays_bidir_lbr", ["run", "--x", "X", "--w", "W", "--r", "R", "--direction",
                             "bidirectional", "--linear-before-reset", "--sequence-lens", "L"] + out, [
        ("X", golden(g, "X.npy")), ("W", golden(g, "W.npy")), ("R", golden(g, "R.npy")),
        ("L", npy("<f4", [3], f32([1, 2, 0]))),
    ])
    cli("inspect_onnx", ["inspect", "m.onnx"], [("m.onnx", golden("onnx_forward_no_bias", "model.onnx"))])
    cli("inspect_torch_prefix", ["inspect", "--prefix", "gru.", "m"], [
        ("m", open(os.path.join(CORPUS, "safetensors", "torch_prefix_bidir_f16.safetensors"), "rb").read()),
    ])
    cli("usage_error", ["run", "--model", "m", "--w", "w.npy"], [])
    # gru grad: the gradient golden cases (a packed bidirectional PyTorch stack, a Keras GRU).
    g = "grads_torch_packed_bidir"
    cli("grad_torch_packed", ["grad", "--model", "m", "--x", "x", "--initial-h", "h0",
                              "--sequence-lens", "L", "--dy", "dy", "--dy-h", "dyh", "--dx", "dx.npy",
                              "--grads", "g.safetensors", "--device", "cpu"], [
        ("m", golden(g, "model.safetensors")), ("x", golden(g, "x.npy")),
        ("h0", golden(g, "h0.npy")), ("L", golden(g, "lengths.npy")),
        ("dy", golden(g, "dy.npy")), ("dyh", golden(g, "dyh.npy")),
    ])
    g = "grads_keras_reset_after_false"
    cli("grad_keras", ["grad", "--model=w.npz", "--x", "x", "--keras-reset-after", "false",
                       "--dy", "dy", "--dh0", "dh0.npy", "--device", "cpu"], [
        ("w.npz", golden(g, "weights.npz")), ("x", golden(g, "x.npy")), ("dy", golden(g, "dy.npy")),
    ])


if __name__ == "__main__":
    main()
