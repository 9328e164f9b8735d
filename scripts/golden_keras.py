#!/usr/bin/env python3
"""Golden files from Keras 3's GRU layer (gate order z, r, h), run on the torch backend.

Run from anywhere: `python scripts/golden_keras.py` (sets KERAS_BACKEND=torch itself, so
TensorFlow is not needed). Writes tests/data/golden/keras_*/. Weights are set explicitly with
layer.set_weights from a seeded NumPy generator; every output is also checked against the
independent NumPy reference in golden_common.py through the Keras -> ONNX conversion.
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
import torch  # noqa: E402

from golden_common import CaseWriter, assert_close, keras_to_onnx, onnx_gru, save_npz, versions  # noqa: E402

torch.set_num_threads(1)
SCRIPT = "scripts/golden_keras.py"


def meta(reset_after: bool, B: int, T: int, I: int, H: int, seed: int, **kw) -> dict:
    m = {
        "framework": "keras",
        "generator": SCRIPT,
        "versions": versions(keras, torch, safetensors),
        "keras_backend": keras.backend.backend(),
        "seed": seed,
        "convention": {
            "reset_after": reset_after,
            "onnx_linear_before_reset": 1 if reset_after else 0,
            "gate_order": "z, r, h (Keras)",
            "activation": "tanh",
            "recurrent_activation": "sigmoid",
        },
        "num_layers": 1,
        "bidirectional": False,
        "num_directions": 1,
        "batch_first": True,
        "layout": "batch-major [B, T, I] (Keras always)",
        "input_size": I,
        "hidden_size": H,
        "seq_len": T,
        "batch": B,
    }
    m.update(kw)
    return m


def save_weights(cw: CaseWriter, tensors: dict, keras_paths: dict):
    """weights.npz and weights.safetensors with the same names (float32)."""
    tensors = {k: np.ascontiguousarray(v, dtype="<f4") for k, v in tensors.items()}
    path = cw.other("weights.npz", "weights (npz: uncompressed zip of NAME.npy members)", tensors=tensors)
    save_npz(path, tensors)
    with np.load(path) as z:  # readable by NumPy as an ordinary npz
        assert all(np.array_equal(z[k], v) for k, v in tensors.items())
    safetensors.numpy.save_file(
        tensors,
        cw.other(
            "weights.safetensors",
            "the same weights via safetensors.numpy.save_file",
            tensors=tensors,
            keras_variable_paths=keras_paths,
        ),
    )


def gru_case(name: str, reset_after: bool, seed: int):
    B, T, I, H = 3, 5, 4, 6
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=reset_after, name="gru")
    layer.build((B, T, I))
    bias_shape = (2, 3 * H) if reset_after else (3 * H,)
    kernel = rng.uniform(-0.5, 0.5, (I, 3 * H)).astype(np.float32)
    rkernel = rng.uniform(-0.5, 0.5, (H, 3 * H)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, bias_shape).astype(np.float32)
    assert [tuple(w.shape) for w in layer.weights] == [kernel.shape, rkernel.shape, bias.shape]
    layer.set_weights([kernel, rkernel, bias])
    paths = {k: w.path for k, w in zip(["kernel", "recurrent_kernel", "bias"], layer.weights)}
    x = rng.standard_normal((B, T, I)).astype(np.float32)

    y, h = layer(x)
    y = keras.ops.convert_to_numpy(y)
    h = keras.ops.convert_to_numpy(h)
    assert y.shape == (B, T, H) and h.shape == (B, H)
    assert np.array_equal(y[:, -1], h)

    W, R, Bb = keras_to_onnx(kernel, rkernel, bias, reset_after)
    ry, rh, _ = onnx_gru(x.transpose(1, 0, 2), [[(W, R, Bb)]], lbr=reset_after)
    assert_close(f"{name} y", y, ry.transpose(1, 0, 2))
    assert_close(f"{name} h", h, rh[0])

    cw = CaseWriter(
        name,
        meta(
            reset_after,
            B,
            T,
            I,
            H,
            seed,
            weight_init="kernel, recurrent_kernel, bias uniform(-0.5, 0.5) from np.random.default_rng(seed), in that order; set with layer.set_weights",
            input_init="x ~ N(0, 1), drawn after the weights from the same generator",
            keras_layer=f"keras.layers.GRU({H}, return_sequences=True, return_state=True, reset_after={reset_after})",
            bias_layout=(
                "(2, 3H): row 0 input bias, row 1 recurrent bias, each z|r|h"
                if reset_after
                else "(3H,): z|r|h, one bias (ONNX: Wb = bias, Rb = 0)"
            ),
        ),
    )
    save_weights(cw, {"kernel": kernel, "recurrent_kernel": rkernel, "bias": bias}, paths)
    cw.f32("x.npy", x, "input (B, T, I)")
    cw.f32("y.npy", y, "return_sequences output (B, T, H)")
    cw.f32("h.npy", h, "return_state final state (B, H)")
    cw.finish()


def classifier_case():
    """The seed article §5 model: Sequential([Input((100, 1)), GRU(100), Dense(1, sigmoid)])."""
    name, seed = "keras_classifier_seed_article", 13
    B, T, I, H = 4, 100, 1, 100
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((T, I)),
            keras.layers.GRU(H, name="gru"),
            keras.layers.Dense(1, activation="sigmoid", name="dense"),
        ]
    )
    gru, dense = model.layers
    assert gru.reset_after is True  # Keras 3 default
    kernel = rng.uniform(-0.2, 0.2, (I, 3 * H)).astype(np.float32)
    rkernel = rng.uniform(-0.2, 0.2, (H, 3 * H)).astype(np.float32)
    bias = rng.uniform(-0.2, 0.2, (2, 3 * H)).astype(np.float32)
    dkernel = rng.uniform(-0.2, 0.2, (H, 1)).astype(np.float32)
    dbias = rng.uniform(-0.2, 0.2, (1,)).astype(np.float32)
    gru.set_weights([kernel, rkernel, bias])
    dense.set_weights([dkernel, dbias])
    paths = {k: w.path for k, w in zip(["kernel", "recurrent_kernel", "bias"], gru.weights)}
    paths.update({k: w.path for k, w in zip(["dense_kernel", "dense_bias"], dense.weights)})

    # Like the article's pad_sequences(maxlen=100) output (zeros in front, padding='pre'),
    # with token-like integers 1..20 scaled by 0.1; no masking, so the zeros are real inputs.
    lengths = [100, 63, 27, 8]
    x = np.zeros((B, T, I), np.float32)
    for b, n in enumerate(lengths):
        x[b, T - n :, 0] = rng.integers(1, 21, n) * np.float32(0.1)

    pred = model.predict(x, batch_size=B, verbose=0)
    state_model = keras.Model(model.inputs, gru.output)
    state = state_model.predict(x, batch_size=B, verbose=0)
    assert pred.shape == (B, 1) and state.shape == (B, H)

    W, R, Bb = keras_to_onnx(kernel, rkernel, bias, True)
    _, rh, _ = onnx_gru(x.transpose(1, 0, 2), [[(W, R, Bb)]], lbr=True)
    assert_close("classifier state", state, rh[0])
    logits = rh[0] @ dkernel.astype(np.float64) + dbias
    assert_close("classifier predictions", pred, 1.0 / (1.0 + np.exp(-logits)))

    cw = CaseWriter(
        name,
        meta(
            True,
            B,
            T,
            I,
            H,
            seed,
            model="Sequential([Input((100, 1)), GRU(100), Dense(1, activation='sigmoid')])",
            trained=False,
            weight_init=(
                "gru kernel, recurrent_kernel, bias, dense kernel, dense bias uniform(-0.2, 0.2) "
                "from np.random.default_rng(seed), in that order; set with set_weights"
            ),
            input_init=(
                "pre-padded (zeros first, as pad_sequences) token-like values k*0.1, k in 1..20, "
                "drawn after the weights; unpadded lengths below"
            ),
            unpadded_lengths=lengths,
            dense={"units": 1, "activation": "sigmoid", "formula": "sigmoid(gru_state @ dense_kernel + dense_bias)"},
        ),
    )
    save_weights(
        cw,
        {
            "kernel": kernel,
            "recurrent_kernel": rkernel,
            "bias": bias,
            "dense_kernel": dkernel,
            "dense_bias": dbias,
        },
        paths,
    )
    cw.f32("x.npy", x, "input (B, T, I) = (4, 100, 1)")
    cw.f32("predictions.npy", pred, "model.predict(x): sigmoid outputs (B, 1)")
    cw.f32("gru_state.npy", state, "the GRU's last state (B, H) (its output, return_sequences=False)")
    cw.finish()


if __name__ == "__main__":
    gru_case("keras_reset_after_true", True, 11)
    gru_case("keras_reset_after_false", False, 12)
    classifier_case()
