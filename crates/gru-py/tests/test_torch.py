"""Against PyTorch itself, when torch is installed (CI does not need it: without torch these
tests say so on stderr and are skipped — the only skip in the suite)."""
import numpy as np
import pytest

import gru_wgpu
from conftest import TORCH_SKIP, assert_close, read_safetensors, rng

try:
    import torch
except ImportError:  # conftest.pytest_configure says so on stderr
    torch = None

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_SKIP)

CONFIGS = [
    # (I, H, layers, bidirectional, batch_first, bias, seed)
    (3, 5, 1, False, False, True, 0),
    (4, 6, 2, True, False, True, 1),
    (2, 7, 3, False, True, True, 2),
    (5, 4, 2, True, True, False, 3),
    (1, 8, 1, True, False, False, 4),
    (6, 3, 3, True, True, True, 5),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_from_torch_matches_module(cfg, device):
    i, h, layers, bidir, batch_first, bias, seed = cfg
    torch.manual_seed(seed)
    module = torch.nn.GRU(i, h, num_layers=layers, bidirectional=bidir,
                          batch_first=batch_first, bias=bias)
    t, b, d = 7, 3, 2 if bidir else 1
    x = torch.randn((b, t, i) if batch_first else (t, b, i))
    h0 = torch.rand(layers * d, b, h) * 2 - 1
    with torch.no_grad():
        y_ref, h_ref = module(x, h0)
    model = gru_wgpu.GRU.from_torch(module, device=device)
    assert (model.num_layers, model.bidirectional, model.batch_first, model.bias) == \
        (layers, bidir, batch_first, bias)
    y, h_n = model(x, h0)  # torch tensors in, through __array__
    assert_close(y, y_ref.numpy(), f"y, config {cfg}, {device}", seed=seed)
    assert_close(h_n, h_ref.numpy(), f"h_n, config {cfg}, {device}", seed=seed)
    # Tensors that require grad are read through detach(), and left as they were.
    xg = x.clone().requires_grad_(True)
    hg = h0.clone().requires_grad_(True)
    yg, hng = model(xg, hg)
    assert_close(yg, y_ref.numpy(), f"y from tensors requiring grad, config {cfg}", seed=seed)
    assert_close(hng, h_ref.numpy(), f"h_n from tensors requiring grad, config {cfg}",
                 seed=seed)
    assert xg.requires_grad and xg.grad is None and torch.equal(xg.detach(), x)
    assert torch.equal(hg.detach(), h0)
    # A non-contiguous tensor (a transposed view) is read correctly.
    xt = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not xt.is_contiguous()
    assert_close(model(xt, h0)[0], y_ref.numpy(), f"y from a strided tensor, config {cfg}",
                 seed=seed)


def test_packed_sequence_lengths(device):
    torch.manual_seed(9)
    module = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(6, 3, 3)
    lengths = torch.tensor([6, 2, 4])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    with torch.no_grad():
        out, h_ref = module(packed)
    y_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=6)
    y, h_n = gru_wgpu.GRU.from_torch(module, device=device)(x, lengths=lengths)
    assert_close(y, y_ref.numpy(), f"packed y, {device}")
    assert_close(h_n, h_ref.numpy(), f"packed h_n, {device}")


def test_not_a_gru_is_refused():
    with pytest.raises(ValueError, match="invalid device"):
        gru_wgpu.GRU.from_torch(torch.nn.GRU(3, 4), device="cuda")
    with pytest.raises(ValueError, match="invalid dtype"):
        gru_wgpu.GRU.from_torch(torch.nn.GRU(3, 4), device="cpu", dtype="bfloat16")
    with pytest.raises(ValueError, match="GRU"):
        gru_wgpu.GRU.from_torch(torch.nn.LSTM(3, 4), device="cpu")
    with pytest.raises(ValueError, match="nn.GRU"):
        gru_wgpu.GRU.from_torch(torch.nn.Linear(3, 4), device="cpu")


def test_trained_model_loads_back_into_torch(device):
    x = rng(0).standard_normal((32, 6, 3)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    model, _ = gru_wgpu.train(x, y, hidden_size=5, num_layers=2, bidirectional=True,
                              epochs=2, batch_size=8, device=device, init="pytorch")
    module = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    with torch.no_grad():
        y_ref, h_ref = module(torch.from_numpy(x))
    ours, h_n = model(x)
    assert_close(ours, y_ref.numpy(), f"trained model in nn.GRU, {device}")
    assert_close(h_n, h_ref.numpy(), f"trained model's h_n in nn.GRU, {device}")
    # The head, as nn.Linear on cat(h_n[-2], h_n[-1]), gives model.predict.
    head = model.head
    feats = torch.cat([h_ref[-2], h_ref[-1]], dim=1).numpy()
    logits = feats @ head["weight"].T + head["bias"]
    assert_close(model.predict(x), 1 / (1 + np.exp(-logits)), "predict against torch's head")


def test_torch_dtypes(device):
    torch.manual_seed(1)
    module = torch.nn.GRU(3, 4)
    model = gru_wgpu.GRU.from_torch(module, device=device)
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        ref = module(x)[0].numpy()
    assert_close(model(x.double())[0], ref, "float64 tensor", atol=1e-5)
    with pytest.raises(ValueError, match="float32"):
        model(torch.ones(5, 2, 3, dtype=torch.int64))


def test_module_with_double_weights(device):
    torch.manual_seed(7)
    module = torch.nn.GRU(3, 4, num_layers=2).double()
    model = gru_wgpu.GRU.from_torch(module, device=device)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        y_ref, h_ref = module(x)
    y, h_n = model(x)
    assert_close(y, y_ref.numpy(), f"a float64 nn.GRU's y on {device}", seed=7)
    assert_close(h_n, h_ref.numpy(), f"a float64 nn.GRU's h_n on {device}", seed=7)


def test_saved_file_loads_into_nn_gru(tmp_path, device):
    """save(format="pytorch") of a model without a head is an nn.GRU state_dict file (read
    here as safetensors.torch.load_file would, without needing that package)."""
    for bias in (True, False):
        torch.manual_seed(8)
        module = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, bias=bias)
        path = tmp_path / f"bias_{bias}.safetensors"
        gru_wgpu.GRU.from_torch(module, device=device).save(path)
        other = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True, bias=bias)
        other.load_state_dict({k: torch.from_numpy(v.copy())
                               for k, v in read_safetensors(path).items()})
        for name, value in module.state_dict().items():
            assert torch.equal(other.state_dict()[name], value), f"bias={bias}: {name}"
