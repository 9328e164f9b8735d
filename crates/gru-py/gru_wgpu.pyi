"""GRU networks with PyTorch ``nn.GRU``'s names and shapes on any GPU through wgpu (Vulkan,
Metal, DX12, GL), with an f64 CPU reference path as the fallback.

Shapes: ``T`` steps, batch ``B``, ``I`` inputs, ``L`` layers, ``D`` directions (2 when
bidirectional), ``H`` units. Gate order z, r, h inside; PyTorch's r, z, n in ``state_dict``.

Errors: ``ValueError`` for shapes, dtypes, values and files that are not models; ``OSError``
for files that cannot be read or written (``FileNotFoundError`` when missing); ``FloatingPointError`` for a training step whose loss
or gradients are not finite; ``RuntimeError`` for device failures.
"""

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, Literal, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = Any
"""A NumPy array, anything with ``__array__`` (a torch CPU tensor), or nested sequences."""

Device = Literal["auto", "gpu", "cpu"]
DType = Literal["float32", "float16"]
HeadKind = Literal["sigmoid", "softmax", "linear", "sequence"]
F32 = npt.NDArray[np.float32]

def adapters() -> list[dict[str, Any]]:
    """The GPU adapters wgpu sees, as ``gru info`` lists them: ``name``, ``backend``,
    ``device_type``, ``driver``, ``driver_info``, ``vendor``, ``device``, ``features``
    (``SHADER_F16``, ``TIMESTAMP_QUERY``, ``SUBGROUP`` → bool) and ``limits`` (dict)."""

class GRU:
    """A GRU network on the GPU (weights uploaded once) or the CPU reference path.

    ``x [T, B, I]`` (``[B, T, I]`` with ``batch_first``, ``[T, I]`` unbatched); ``h0`` and
    ``h_n`` ``[L·D, B, H]`` (``[L·D, H]`` unbatched); ``y [T, B, D·H]`` (``[B, T, D·H]``).
    """

    batch_first: bool
    """``x`` and ``y`` are ``[B, T, …]`` (settable)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        reset_after: bool = True,
        device: Device = "auto",
        dtype: DType = "float32",
        seed: int = 0,
        init: Literal["pytorch", "keras"] = "pytorch",
    ) -> None:
        """Fresh weights drawn from ``seed`` (PyTorch's ``U(±1/√H)`` or Keras's glorot /
        orthogonal / zero bias). ``reset_after=False`` is the reset-before convention (ONNX's
        default, Keras ``reset_after=False``). ``device="auto"`` uses the GPU, else the CPU
        with a ``RuntimeWarning``; ``"gpu"`` raises ``RuntimeError`` without one."""

    @classmethod
    def from_torch(cls, module: Any, device: Device = "auto", dtype: DType = "float32") -> "GRU":
        """From a PyTorch ``nn.GRU`` (any layers, bidirectional, ``batch_first``, bias or
        not), through its ``state_dict()``; torch is not imported."""

    @staticmethod
    def load(
        path: Union[str, PathLike[str]],
        device: Device = "auto",
        dtype: DType = "float32",
        batch_first: Optional[bool] = None,
        prefix: Optional[str] = None,
        keras_reset_after: Optional[bool] = None,
        head: HeadKind = "linear",
    ) -> "GRU":
        """From a PyTorch ``state_dict`` (``.safetensors``), Keras GRU weights
        (``.safetensors``, ``.npz``) or an ONNX model with one GRU node. ``batch_first``
        defaults to True for Keras files and ONNX files of ``layout=1``; ``head`` names the activation of the file's dense
        head, if any."""

    def __call__(
        self, x: ArrayLike, h0: Optional[ArrayLike] = None, lengths: Optional[ArrayLike] = None
    ) -> tuple[F32, F32]:
        """``y, h_n = model(x, h0=None, lengths=None)``: ``y [T, B, D·H]`` (``[B, T, D·H]``
        with ``batch_first``), ``h_n [L·D, B, H]``. ``lengths [B]`` in ``0..=T``: ``y`` is zero
        past an entry's length and ``h_n`` its last valid state (PackedSequence's result; a
        zero length gives zeros, onnxruntime's rule).
        float64/float16 inputs are converted; a contiguous float32 array is read in place."""

    def forward(
        self, x: ArrayLike, h0: Optional[ArrayLike] = None, lengths: Optional[ArrayLike] = None
    ) -> tuple[F32, F32]:
        """Same as calling the model."""

    def predict(self, x: ArrayLike, lengths: Optional[ArrayLike] = None) -> F32:
        """The head's outputs ``[B, out]`` (sigmoid / softmax probabilities or linear values)
        from the final state, or ``[T, B, out]`` (``[B, T, out]``) for a sequence head.
        ``ValueError`` without a head."""

    def state_dict(self) -> dict[str, F32]:
        """PyTorch names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
        ``…_reverse``), gate order r, z, n; ``nn.GRU.load_state_dict`` takes it through
        ``torch.from_numpy``. ``ValueError`` for a reset-before model."""

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Replaces the weights with a PyTorch-named state dict of the same shape
        (``head.weight``/``head.bias`` become the head); uploads them once."""

    def to_numpy_weights(self) -> list[list[dict[str, F32]]]:
        """Per layer, per direction: ``{"W": [3H, I or D·H], "R": [3H, H], "B": [6H]}``,
        ONNX layout, gate order z, r, h."""

    def save(
        self,
        path: Union[str, PathLike[str]],
        format: Optional[Literal["pytorch", "keras", "onnx"]] = None,
    ) -> None:
        """Writes a PyTorch ``.safetensors`` state dict (with the head as ``head.*`` and the
        GRU under ``gru.``), Keras ``.npz`` weights (with ``dense_kernel``/``dense_bias``) or
        an ONNX GRU node (one layer, no head); ``None``: from the extension."""

    def session(self, streams: int = 256) -> "Session":
        """A streaming session of ``streams`` slots (forward networks only)."""

    @property
    def input_size(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def num_layers(self) -> int: ...
    @property
    def bidirectional(self) -> bool: ...
    @property
    def bias(self) -> bool: ...
    @property
    def reset_after(self) -> bool:
        """True: reset-after (PyTorch, cuDNN); False: reset-before (ONNX default)."""
    @property
    def device(self) -> Literal["gpu", "cpu"]: ...
    @property
    def adapter(self) -> str:
        """The adapter (name, backend, type, driver) or the CPU path, in words."""
    @property
    def dtype(self) -> DType: ...
    @property
    def head(self) -> Optional[dict[str, Any]]:
        """``{"kind", "weight" [out, D·H], "bias" [out]}`` or None."""

class Session:
    """Independent streams through one forward GRU, each fed a chunk at a time with its state
    (``[L, H]``) kept between calls. Separate sessions run side by side in threads."""

    def open(self, state: Optional[ArrayLike] = None) -> int:
        """Opens a stream from ``state [L, H]`` or zeros; returns its id."""

    def feed(
        self, ids: Sequence[int], frames: ArrayLike, lengths: Optional[ArrayLike] = None
    ) -> F32:
        """Advances ``k`` distinct streams by ``frames [k, C, I]`` (``[k, I]``: one step), or
        stream ``i`` by ``lengths[i]`` in ``1..=C`` steps; returns ``[k, C, H]`` (``[k, H]``),
        zero past a stream's length. A failed feed changes no state."""

    def state(self, id: int) -> F32:
        """Stream ``id``'s state, ``[L, H]``."""

    def set_state(self, id: int, state: ArrayLike) -> None:
        """Sets stream ``id``'s state (``[L, H]``)."""

    def reset(self, id: int) -> None:
        """Sets stream ``id``'s state to zeros."""

    def close(self, id: int) -> None:
        """Closes stream ``id``; its id is refused from now on."""

    @property
    def capacity(self) -> int: ...
    @property
    def open_streams(self) -> int: ...

def train(
    x: ArrayLike,
    y: ArrayLike,
    *,
    lengths: Optional[ArrayLike] = None,
    model: Optional[GRU] = None,
    hidden_size: Optional[int] = None,
    num_layers: int = 1,
    bidirectional: bool = False,
    reset_after: bool = True,
    head: HeadKind = "sigmoid",
    classes: Optional[int] = None,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: Literal["rmsprop", "adam", "adamw", "sgd"] = "rmsprop",
    lr: Optional[float] = None,
    momentum: Optional[float] = None,
    centered: bool = False,
    nesterov: bool = False,
    weight_decay: Optional[float] = None,
    clip_norm: Optional[float] = None,
    clip_value: Optional[float] = None,
    init: Literal["keras", "pytorch"] = "keras",
    seed: int = 0,
    shuffle: bool = True,
    validation_split: Optional[float] = None,
    validation_data: Optional[tuple[Any, ...]] = None,
    new_head: bool = False,
    skip_non_finite: bool = False,
    device: Device = "auto",
    verbose: bool = False,
) -> tuple[GRU, list[dict[str, float]]]:
    """``gru train`` from arrays: ``x [N, T, I]`` (batch first), targets ``y`` for ``head``
    (``sigmoid``: labels 0/1 ``[N]``; ``softmax``: class indices ``[N]``; ``linear``: ``[N]``
    or ``[N, out]``; ``sequence``: ``[N, T]`` or ``[N, T, out]``). Fine-tunes ``model`` or
    trains a new network of ``hidden_size``. Returns the trained model (with its head,
    ``batch_first=True``) and one dict per epoch (``epoch``, ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``seconds``, ``steps``, ``skipped``)."""
