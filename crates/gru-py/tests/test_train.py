"""gru_wgpu.train against the framework's own training runs (tests/data/golden/train_*:
float64 Keras / PyTorch, ten steps over two fixed batches of 4), and the API around it.

Every train_* case is reachable: the Keras ones through GRU.load(weights.npz, head="sigmoid"),
the PyTorch ones through GRU.load(model.safetensors) with its `head.*` tensors (softmax, sigmoid
or the per-step "sequence" head). A golden run is ten `train_on_batch` / optimizer steps where
step s trains on entries (s mod 2)·4 … (case.json "batches"), so it is
`train(..., batch_size=4, shuffle=False, epochs=5)` here (not epochs=10 over one batch of 8:
that would be ten steps on all eight entries, another run). History reports an epoch's loss,
the mean of its two steps' losses (each taken before its update) weighted as the loss averages,
so it is compared with losses.npy averaged the same way; step 1 alone (one epoch over the first
batch) is compared with losses[0] and after_step1.

Tolerances: the golden runs are float64; ours train in f32 on the GPU (the CPU reference
accumulates in f64 but stores f32 weights). A loss is a smooth function of the logits, which
a few f32 roundings per step move by ~1e-7 relative, so the loss keeps onnxruntime's f32
tolerance (1e-5 + 1e-4·|e|): the worst seen is ~1e-6 relative, 100× inside it. Parameters are
compared at the Rust suite's PARAMS tolerance (atol 2e-5, rtol 1e-4, tests/gpu/trainer.rs): an
update is lr·(something of order 1) for Adam/RMSprop, so f32 noise in a gradient moves it by
lr·1e-7-ish per step, and ten steps drift a little more than one forward does (the worst seen
is 3% of that tolerance)."""
import numpy as np
import pytest

import gru_wgpu
from conftest import GOLDEN, assert_close, case_files, case_json, load_npy, need, rng

PARAMS = dict(atol=2e-5, rtol=1e-4)

CASES = {
    # case: (start file, head, train() options)
    "train_keras_rmsprop_bce_reset_after": ("weights.npz", "sigmoid", dict(optimizer="rmsprop")),
    "train_keras_rmsprop_bce_reset_before": ("weights.npz", "sigmoid", dict(optimizer="rmsprop")),
    "train_torch_adam_ce": ("model.safetensors", "softmax",
                            dict(optimizer="adam", lr=0.01, classes=3)),
    "train_torch_sgd_nesterov_clip_bce": ("model.safetensors", "sigmoid",
                                          dict(optimizer="sgd", lr=0.1, momentum=0.9,
                                               nesterov=True, clip_norm=0.5)),
    "train_torch_adam_mse_per_step": ("model.safetensors", "sequence",
                                      dict(optimizer="adam", lr=0.01)),
}


def params(model):
    """Every weight of the network and the head, in one order."""
    out = []
    for layer in model.to_numpy_weights():
        for d in layer:
            out += [d["W"], d["R"], d["B"]]
    return out + [model.head["weight"], model.head["bias"]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_training_runs(case, device):
    start, head, options = CASES[case]
    seed = case_json(case)["seed"]
    model = gru_wgpu.GRU.load(GOLDEN / case / start, device=device, head=head)
    x, y = load_npy(case, "x.npy"), load_npy(case, "y.npy")
    files = case_files(case)
    lengths = load_npy(case, "lens.npy") if "lens.npy" in files else None
    x_before, y_before = x.copy(), y.copy()
    trained, history = gru_wgpu.train(x, y, lengths=lengths, model=model, head=head, epochs=5,
                                      batch_size=4, shuffle=False, device=device, **options)
    assert np.array_equal(x, x_before) and np.array_equal(y, y_before)
    losses = load_npy(case, "losses.npy").astype(np.float64).reshape(5, 2)
    # An epoch's loss is the mean over what the loss averages: entries, or for the per-step
    # head the valid steps, so each batch weighs by its entries' lengths there.
    weights = (np.array([lengths[:4].sum(), lengths[4:].sum()]) if lengths is not None
               else np.ones(2))
    assert_close([h["loss"] for h in history], losses @ weights / weights.sum(),
                 f"{case} epoch losses on {device}", seed=seed)
    assert [h["steps"] for h in history] == [2] * 5
    assert trained.device == device and trained.head["kind"] == head
    ext = start.rsplit(".", 1)[1]
    expected = gru_wgpu.GRU.load(GOLDEN / case / f"after_step10.{ext}", device="cpu", head=head)
    for k, (g, e) in enumerate(zip(params(trained), params(expected))):
        assert_close(g, e, f"{case} on {device}: parameter {k} after step 10", seed=seed,
                     **PARAMS)
    # The model it started from is not changed by training.
    again = gru_wgpu.GRU.load(GOLDEN / case / start, device="cpu", head=head)
    for k, (g, e) in enumerate(zip(params(model), params(again))):
        assert np.array_equal(g, e), f"{case}: train() changed the start model's parameter {k}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_first_step(case, device):
    """Step 1 alone: one epoch over the first batch gives losses[0] and after_step1."""
    start, head, options = CASES[case]
    seed = case_json(case)["seed"]
    model = gru_wgpu.GRU.load(GOLDEN / case / start, device=device, head=head)
    x, y = load_npy(case, "x.npy")[:4], load_npy(case, "y.npy")[:4]
    lengths = load_npy(case, "lens.npy")[:4] if "lens.npy" in case_files(case) else None
    trained, history = gru_wgpu.train(x, y, lengths=lengths, model=model, head=head, epochs=1,
                                      batch_size=4, shuffle=False, device=device, **options)
    assert len(history) == 1 and history[0]["steps"] == 1 and history[0]["skipped"] == 0
    assert_close(history[0]["loss"], load_npy(case, "losses.npy")[0],
                 f"{case} step 1 loss on {device}", seed=seed)
    ext = start.rsplit(".", 1)[1]
    expected = gru_wgpu.GRU.load(GOLDEN / case / f"after_step1.{ext}", device="cpu", head=head)
    for k, (g, e) in enumerate(zip(params(trained), params(expected))):
        assert_close(g, e, f"{case} on {device}: parameter {k} after step 1", seed=seed,
                     **PARAMS)


def separable(n=48, t=6, i=3, seed=0):
    x = rng(seed).standard_normal((n, t, i)).astype(np.float32)
    return x, (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)


def test_train_learns_and_reports(device):
    x, y = separable()
    model, history = gru_wgpu.train(x, y, hidden_size=8, epochs=12, batch_size=8, lr=0.01,
                                    validation_split=0.25, device=device, seed=3)
    assert len(history) == 12
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                               "seconds", "steps", "skipped"}
    assert history[-1]["loss"] < history[0]["loss"], history
    p = model.predict(x)
    assert p.shape == (48, 1) and np.all((p > 0) & (p < 1))
    accuracy = float(((p[:, 0] > 0.5) == (y == 1)).mean())
    assert accuracy > 0.7, f"accuracy {accuracy} after 12 epochs on a separable task"
    assert model.batch_first and model.head["kind"] == "sigmoid"


def test_gpu_and_cpu_train_alike(request):
    need("gpu", request.node.nodeid)
    x, y = separable(n=16)
    runs = [gru_wgpu.train(x, y, hidden_size=5, epochs=3, batch_size=8, device=d, seed=1,
                           optimizer="adam") for d in ("gpu", "cpu")]
    assert_close([h["loss"] for h in runs[0][1]], [h["loss"] for h in runs[1][1]],
                 "loss per epoch, GPU against CPU")
    for k, (g, c) in enumerate(zip(params(runs[0][0]), params(runs[1][0]))):
        assert_close(g, c, f"parameter {k}, GPU against CPU", **PARAMS)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(hidden_size=4, head="nope"), "head"),
    (dict(hidden_size=4, optimizer="lbfgs"), "optimizer"),
    (dict(hidden_size=4, batch_size=0), "batch_size"),
    (dict(hidden_size=4, momentum=0.9, optimizer="adam"), "momentum"),
    (dict(hidden_size=4, clip_norm=1.0, clip_value=1.0), "clip"),
    (dict(hidden_size=4, validation_split=1.5), "validation"),
    (dict(), "hidden_size"),
    (dict(hidden_size=4, classes=3), "classes"),
    (dict(hidden_size=4, device="tpu"), "device"),
])
def test_train_refuses_bad_options(kwargs, needle):
    x, y = separable(n=8)
    with pytest.raises(ValueError, match=needle):
        gru_wgpu.train(x, y, device=kwargs.pop("device", "cpu"), **kwargs)


def test_train_refuses_bad_data():
    x, y = separable(n=8)
    with pytest.raises(ValueError, match=r"\[N\] = \[8\]"):
        gru_wgpu.train(x, y[:5], hidden_size=4, device="cpu")
    with pytest.raises(ValueError, match="labels|0 or 1|label"):
        gru_wgpu.train(x, y + 1, hidden_size=4, device="cpu")
    with pytest.raises(ValueError, match=r"\[N, T, I\]"):
        gru_wgpu.train(x[0], y, hidden_size=4, device="cpu")
    bad = x.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        gru_wgpu.train(bad, y, hidden_size=4, device="cpu")
    model = gru_wgpu.GRU(5, 4, device="cpu")
    with pytest.raises(ValueError, match="I=5"):
        gru_wgpu.train(x, y, model=model, device="cpu")


def test_non_finite_step_raises_or_is_skipped():
    x, _ = separable(n=8)
    # Finite targets whose squared error overflows float64: the first step's loss is inf.
    # The CPU reference trains in float64, so the overflow is the loss's, not a cast's.
    y = np.full(8, 1e200)
    kwargs = dict(hidden_size=4, head="linear", epochs=2, batch_size=4, device="cpu")
    with pytest.raises(FloatingPointError):
        gru_wgpu.train(x, y, **kwargs)
    model, history = gru_wgpu.train(x, y, skip_non_finite=True, **kwargs)
    assert [h["skipped"] for h in history] == [2, 2], history
    fresh, _ = gru_wgpu.train(x, np.zeros(8), epochs=0, hidden_size=4, head="linear",
                              device="cpu")
    for k, (a, b) in enumerate(zip(params(model), params(fresh))):
        assert np.array_equal(a, b), f"parameter {k} changed by a skipped step"


def test_fine_tune_keeps_or_replaces_the_head():
    x, y = separable(n=16)
    model, _ = gru_wgpu.train(x, y, hidden_size=4, epochs=1, batch_size=8, device="cpu")
    tuned, _ = gru_wgpu.train(x, y, model=model, epochs=1, batch_size=8, device="cpu")
    assert tuned.head["weight"].shape == (1, 4)
    classes = (np.arange(16) % 3).astype(np.int64)
    with pytest.raises(ValueError, match="new_head"):
        gru_wgpu.train(x, classes, model=model, head="softmax", device="cpu")
    tuned, _ = gru_wgpu.train(x, classes, model=model, head="softmax", new_head=True,
                              epochs=1, batch_size=8, device="cpu")
    p = tuned.predict(x)
    assert p.shape == (16, 3)
    assert_close(p.sum(axis=1), np.ones(16), "softmax rows sum to 1")


def test_accuracy_at_a_tie_counts_as_class_0(device):
    """Keras's binary accuracy predicts 1 only for p > 0.5, so a logit of exactly 0 (p = 0.5)
    counts as class 0 on both paths. Here every entry has length 0, so the features are zeros
    and the Keras-initialised head's bias is 0: every logit is exactly 0 on step 1, whose
    accuracy (taken before the update) must then be the share of 0 labels, 1.0 here."""
    x, _ = separable(n=8)
    y = np.zeros(8, np.int64)
    _, history = gru_wgpu.train(x, y, lengths=np.zeros(8, np.int64), hidden_size=4, epochs=1,
                                batch_size=8, init="keras", device=device)
    assert_close(history[0]["loss"], np.log(2.0), f"BCE of logit 0 on {device}")
    assert history[0]["accuracy"] == 1.0, (
        f"device={device}: logits exactly 0 (p = 0.5) with labels 0 gave accuracy "
        f"{history[0]['accuracy']}, expected 1.0 (Keras: class 1 only when p > 0.5)")
