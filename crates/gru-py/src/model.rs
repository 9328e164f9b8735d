//! `gru_wgpu.GRU`: a network (and, after training, its dense head) on the GPU or the CPU
//! reference path, with `nn.GRU`'s constructor, call, `state_dict` and `load_state_dict`.

use std::sync::Mutex;

use gru_wgpu::gpu::{GpuGru, ModelOptions};
use gru_wgpu::head::{final_features, Dense, HeadActivation};
use gru_wgpu::init::{self, Init};
use gru_wgpu::io::export::{self, HeadTensors, NamedTensor};
use gru_wgpu::io::{self as gio, onnx, pytorch, ImportOptions, Imported};
use gru_wgpu::{
    cpu, Convention, Direction, Dtype, GruError, GruInput, GruModel, GruOutput, GruWeights, Layout,
    OutputStyle,
};
use numpy::{PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use crate::{
    as_f32, as_i64, context, count, no_gpu, parse_dtype, py_err, shape_text, to_numpy, Device,
};

/// What a trained head computes from the GRU's features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadKind {
    /// `sigmoid(W·h + b)` on the final state (binary classifier).
    Sigmoid,
    /// `softmax(W·h + b)` on the final state (classes).
    Softmax,
    /// `W·h + b` on the final state (regression, or a loaded head of unknown activation).
    Linear,
    /// `W·y_t + b` on every step's output (sequence to sequence).
    Sequence,
}

impl HeadKind {
    pub(crate) fn parse(s: &str) -> PyResult<HeadKind> {
        match s.to_ascii_lowercase().as_str() {
            "sigmoid" => Ok(HeadKind::Sigmoid),
            "softmax" => Ok(HeadKind::Softmax),
            "linear" => Ok(HeadKind::Linear),
            "sequence" => Ok(HeadKind::Sequence),
            _ => Err(PyValueError::new_err(format!(
                "invalid head: expected \"sigmoid\", \"softmax\", \"linear\" or \"sequence\", \
                 got {s:?}"
            ))),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            HeadKind::Sigmoid => "sigmoid",
            HeadKind::Softmax => "softmax",
            HeadKind::Linear => "linear",
            HeadKind::Sequence => "sequence",
        }
    }

    fn activation(self) -> HeadActivation {
        match self {
            HeadKind::Sigmoid => HeadActivation::Sigmoid,
            HeadKind::Softmax => HeadActivation::Softmax,
            HeadKind::Linear | HeadKind::Sequence => HeadActivation::Identity,
        }
    }
}

/// A dense head `weight [out, D·H]`, `bias [out]`.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) kind: HeadKind,
    pub(crate) weight: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

/// Where the network's forward runs.
pub(crate) enum Place {
    /// Resident on the GPU (one upload, shared by the model's sessions), behind a lock so
    /// the GIL can be released (the lock is never taken while holding the GIL).
    Gpu { gru: Box<Mutex<GpuGru>> },
    /// The `f64` CPU reference path over `model` (rounded to the storage type).
    Cpu { model: GruModel },
}

/// The place `device` asks for, with a description; `auto` warns and falls back.
pub(crate) fn place(
    py: Python<'_>,
    model: &GruModel,
    device: Device,
    dtype: Dtype,
) -> PyResult<(Place, String)> {
    const CPU: &str = "cpu (the f64 reference path)";
    let cpu = || Place::Cpu {
        model: model.rounded_to(dtype),
    };
    if device == Device::Cpu {
        return Ok((cpu(), CPU.into()));
    }
    let gpu = py.detach(|| -> Result<(Place, String), String> {
        let ctx = context()?;
        let options = ModelOptions {
            dtype,
            allow_f32_fallback: false,
        };
        let gru = GpuGru::from_model_with(&ctx, model, &options).map_err(|e| e.to_string())?;
        let describe = format!("gpu: {}", ctx.describe());
        Ok((
            Place::Gpu {
                gru: Box::new(Mutex::new(gru)),
            },
            describe,
        ))
    });
    match gpu {
        Ok(p) => Ok(p),
        Err(e) => {
            no_gpu(py, device, &e, "running")?;
            Ok((cpu(), CPU.into()))
        }
    }
}

/// A GRU network with PyTorch `nn.GRU`'s shapes, on the GPU (wgpu) or the CPU reference path.
///
/// Gate order z, r, h inside; PyTorch's r, z, n in `state_dict`. Shapes with `T` steps, batch
/// `B`, `I` inputs, `L` layers, `D` directions (2 when bidirectional) and `H` units:
/// `x [T, B, I]` (`[B, T, I]` with `batch_first`, or `[T, I]` unbatched), `h0` and `h_n`
/// `[L·D, B, H]` (`[L·D, H]` unbatched), `y [T, B, D·H]` (`[B, T, D·H]` with `batch_first`).
#[pyclass(name = "GRU", module = "gru_wgpu")]
pub struct Gru {
    pub(crate) model: GruModel,
    pub(crate) place: Place,
    pub(crate) describe: String,
    pub(crate) dtype: Dtype,
    pub(crate) bias: bool,
    /// `x` and `y` are `[B, T, …]` (PyTorch's `batch_first`).
    #[pyo3(get, set)]
    pub(crate) batch_first: bool,
    pub(crate) head: Option<Head>,
}

fn direction(bidirectional: bool) -> Direction {
    if bidirectional {
        Direction::Bidirectional
    } else {
        Direction::Forward
    }
}

/// The same network without its biases (zeros), for `bias=False`.
fn without_bias(model: &GruModel) -> Result<GruModel, GruError> {
    let layers = model
        .layers()
        .iter()
        .map(|dirs| {
            dirs.iter()
                .map(|w| {
                    GruWeights::new(
                        w.convention(),
                        w.input_size(),
                        w.hidden_size(),
                        w.w().to_vec(),
                        w.r().to_vec(),
                        None,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    GruModel::new(model.direction(), layers, model.clip())
}

/// A state dict (name → array-like) as a PyTorch `.safetensors` blob, read back by the
/// library's importer (which checks every name and shape).
fn parse_state_dict(py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<pytorch::PyTorchGru> {
    let items = state
        .call_method0("items")
        .map_err(|_| PyValueError::new_err("state_dict: expected a mapping of names to arrays"))?;
    let mut tensors: Vec<NamedTensor> = Vec::new();
    for item in items.try_iter()? {
        let (name, value): (String, Bound<'_, PyAny>) = item?.extract()?;
        let arr = as_f32(py, &value, &format!("state_dict[{name:?}]"))?;
        let shape = arr.shape().to_vec();
        let data = arr.readonly().as_slice()?.to_vec();
        tensors.push((name, shape, data));
    }
    let bytes = export::encode_safetensors(&tensors).map_err(py_err)?;
    pytorch::parse(&bytes, "state_dict", None).map_err(py_err)
}

impl Gru {
    /// A model of `model` placed on `device`.
    pub(crate) fn build(
        py: Python<'_>,
        model: GruModel,
        device: Device,
        dtype: Dtype,
        bias: bool,
        batch_first: bool,
        head: Option<Head>,
    ) -> PyResult<Gru> {
        let (place, describe) = place(py, &model, device, dtype)?;
        Ok(Gru {
            model,
            place,
            describe,
            dtype,
            bias,
            batch_first,
            head,
        })
    }

    /// The device this model runs on (`Gpu` or `Cpu`, never `Auto`).
    pub(crate) fn runs_on(&self) -> Device {
        match self.place {
            Place::Gpu { .. } => Device::Gpu,
            Place::Cpu { .. } => Device::Cpu,
        }
    }

    /// One forward with the library's PyTorch-style shapes; `unbatched` when `x` was `[T, I]`.
    fn run(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        h0: Option<&Bound<'_, PyAny>>,
        lengths: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(GruOutput, bool)> {
        let (i, h) = (self.model.input_size(), self.model.hidden_size());
        let ld = self.model.num_layers() * self.model.num_directions();
        let xa = as_f32(py, x, "x")?;
        let shape = xa.shape().to_vec();
        let expected = if self.batch_first {
            format!("[B, T, I={i}] (batch_first=True) or [T, I={i}]")
        } else {
            format!("[T, B, I={i}] or [T, I={i}]")
        };
        let (t, b, unbatched) = match *shape.as_slice() {
            [t, ii] if ii == i => (t, 1, true),
            [a, bb, ii] if ii == i => {
                if self.batch_first {
                    (bb, a, false)
                } else {
                    (a, bb, false)
                }
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "x: expected {expected}, got {}",
                    shape_text(&shape)
                )))
            }
        };
        let h0a = match h0 {
            Some(o) if !o.is_none() => {
                let a = as_f32(py, o, "h0")?;
                let want: Vec<usize> = if unbatched {
                    vec![ld, h]
                } else {
                    vec![ld, b, h]
                };
                if a.shape() != want.as_slice() {
                    return Err(PyValueError::new_err(format!(
                        "h0: expected [L·D={ld}{}, H={h}], got {}",
                        if unbatched {
                            String::new()
                        } else {
                            format!(", B={b}")
                        },
                        shape_text(a.shape())
                    )));
                }
                Some(a.readonly())
            }
            _ => None,
        };
        let lens = match lengths {
            Some(o) if !o.is_none() => {
                let l = as_i64(py, o, "lengths")?;
                if l.len() != b {
                    return Err(PyValueError::new_err(format!(
                        "lengths: expected [B={b}] values, got {}",
                        l.len()
                    )));
                }
                Some(l)
            }
            _ => None,
        };
        let xr = xa.readonly();
        let xs = xr.as_slice()?;
        let hs = match &h0a {
            Some(a) => Some(a.as_slice()?),
            None => None,
        };
        let layout = if self.batch_first && !unbatched {
            Layout::BatchMajor
        } else {
            Layout::SequenceMajor
        };
        let out = py.detach(|| -> PyResult<GruOutput> {
            let mut input = GruInput::new(xs, t, b)
                .with_layout(layout)
                .with_style(OutputStyle::PyTorch);
            if let Some(hs) = hs {
                input = input.with_initial_h(hs);
            }
            if let Some(l) = &lens {
                input = input.with_sequence_lens(l);
            }
            match &self.place {
                Place::Gpu { gru, .. } => match gru.lock() {
                    Ok(mut g) => g.forward(&input).map_err(py_err),
                    Err(_) => Err(PyRuntimeError::new_err(
                        "the model is unusable: a previous call panicked while holding it",
                    )),
                },
                Place::Cpu { model } => cpu::forward_model(model, &input).map_err(py_err),
            }
        });
        Ok((out?, unbatched))
    }

    fn head_tensors(&self) -> Option<HeadTensors<'_>> {
        self.head.as_ref().map(|h| HeadTensors {
            weight: &h.weight,
            bias: &h.bias,
        })
    }

    fn replace_model(&mut self, py: Python<'_>, model: GruModel) -> PyResult<()> {
        let device = self.runs_on();
        let (place, describe) = place(py, &model, device, self.dtype)?;
        self.model = model;
        self.place = place;
        self.describe = describe;
        Ok(())
    }

    fn check_same_shape(&self, other: &GruModel, what: &str) -> PyResult<()> {
        let m = &self.model;
        let same = other.input_size() == m.input_size()
            && other.hidden_size() == m.hidden_size()
            && other.num_layers() == m.num_layers()
            && other.direction() == m.direction()
            && other.convention() == m.convention();
        if same {
            return Ok(());
        }
        let text = |m: &GruModel| {
            format!(
                "I={}, H={}, {} layer(s), {:?}, {:?}",
                m.input_size(),
                m.hidden_size(),
                m.num_layers(),
                m.direction(),
                m.convention()
            )
        };
        Err(PyValueError::new_err(format!(
            "{what}: expected a GRU of {}, got {}",
            text(m),
            text(other)
        )))
    }

    /// A model from a file's import, its head (of activation `head`, `linear` when unknown).
    fn from_imported(
        py: Python<'_>,
        imported: Imported,
        device: Device,
        dtype: Dtype,
        batch_first: Option<bool>,
        head: HeadKind,
    ) -> PyResult<Gru> {
        let (head_w, bias, default_bf) = match &imported {
            Imported::Keras(k) => (
                k.dense.as_ref().map(|d| (d.weight(), d.bias.clone())),
                k.bias,
                true,
            ),
            Imported::PyTorch(p) => (
                p.head.as_ref().map(|h| (h.weight.clone(), h.bias.clone())),
                p.bias,
                false,
            ),
            Imported::Onnx(o) => (None, true, o.layout == Layout::BatchMajor),
        };
        let head = head_w.map(|(weight, bias)| Head {
            kind: head,
            weight,
            bias,
        });
        let model = imported.model().clone();
        Gru::build(
            py,
            model,
            device,
            dtype,
            bias,
            batch_first.unwrap_or(default_bf),
            head,
        )
    }
}

#[pymethods]
impl Gru {
    /// A new network with fresh weights: `GRU(input_size, hidden_size, num_layers=1,
    /// bias=True, batch_first=False, bidirectional=False, reset_after=True, device="auto",
    /// dtype="float32", seed=0, init="pytorch")`. Weights are drawn from `seed` with PyTorch's
    /// (`U(±1/√H)`) or Keras's (glorot, orthogonal, zero bias) initialisers. `reset_after=False`
    /// is the reset-before convention (ONNX's default, Keras `reset_after=False`).
    #[new]
    #[pyo3(signature = (input_size, hidden_size, num_layers=1, bias=true, batch_first=false,
        bidirectional=false, reset_after=true, device="auto", dtype="float32", seed=0,
        init="pytorch"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        input_size: i64,
        hidden_size: i64,
        num_layers: i64,
        bias: bool,
        batch_first: bool,
        bidirectional: bool,
        reset_after: bool,
        device: &str,
        dtype: &str,
        seed: u64,
        init: &str,
    ) -> PyResult<Gru> {
        let (input_size, hidden_size, num_layers) = (
            count(input_size, "input_size")?,
            count(hidden_size, "hidden_size")?,
            count(num_layers, "num_layers")?,
        );
        let device = Device::parse(device)?;
        let dtype = parse_dtype(dtype)?;
        let init = parse_init(init)?;
        let convention = if reset_after {
            Convention::ResetAfter
        } else {
            Convention::ResetBefore
        };
        let model = init::gru_model(
            init,
            convention,
            direction(bidirectional),
            num_layers,
            input_size,
            hidden_size,
            seed,
        )
        .map_err(py_err)?;
        let model = if bias {
            model
        } else {
            without_bias(&model).map_err(py_err)?
        };
        Gru::build(py, model, device, dtype, bias, batch_first, None)
    }

    /// A model from a PyTorch `nn.GRU` (any layers, bidirectional, `batch_first`, with or
    /// without bias), read through its `state_dict()`; torch is not imported.
    #[classmethod]
    #[pyo3(signature = (module, device="auto", dtype="float32"))]
    fn from_torch(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        module: &Bound<'_, PyAny>,
        device: &str,
        dtype: &str,
    ) -> PyResult<Gru> {
        let device = Device::parse(device)?;
        let dtype = parse_dtype(dtype)?;
        if let Ok(mode) = module.getattr("mode") {
            let mode: String = mode.extract().unwrap_or_default();
            if mode != "GRU" {
                return Err(PyValueError::new_err(format!(
                    "from_torch: expected an nn.GRU, got a module of mode {mode:?}"
                )));
            }
        }
        let attr = |name: &str| -> PyResult<Bound<'_, PyAny>> {
            module.getattr(name).map_err(|_| {
                PyValueError::new_err(format!(
                    "from_torch: expected an nn.GRU (with .{name}), got {}",
                    module
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })
        };
        let batch_first: bool = attr("batch_first")?.extract()?;
        let layers: usize = attr("num_layers")?.extract()?;
        let bidirectional: bool = attr("bidirectional")?.extract()?;
        let input_size: usize = attr("input_size")?.extract()?;
        let hidden_size: usize = attr("hidden_size")?.extract()?;
        let state = module.call_method0("state_dict")?;
        let parsed = parse_state_dict(py, &state)?;
        let m = &parsed.model;
        if m.num_layers() != layers
            || m.direction() != direction(bidirectional)
            || m.input_size() != input_size
            || m.hidden_size() != hidden_size
        {
            return Err(PyValueError::new_err(format!(
                "from_torch: the module says {layers} layer(s), I={input_size}, \
                 H={hidden_size}, bidirectional={bidirectional}, its state_dict holds {} \
                 layer(s), I={}, H={}, {:?}",
                m.num_layers(),
                m.input_size(),
                m.hidden_size(),
                m.direction()
            )));
        }
        Gru::build(
            py,
            parsed.model,
            device,
            dtype,
            parsed.bias,
            batch_first,
            None,
        )
    }

    /// A model from a file any importer reads: a PyTorch `state_dict` in `.safetensors`, Keras
    /// GRU weights (`.safetensors`, `.npz`) or an ONNX model with one GRU node. `batch_first`
    /// defaults to True for Keras files and ONNX files of `layout=1`, False otherwise;
    /// `prefix` picks one GRU of a PyTorch file holding several; `keras_reset_after` is
    /// needed for a Keras file without a bias; `head` names the activation of the file's
    /// dense head, if it has one.
    #[staticmethod]
    #[pyo3(signature = (path, device="auto", dtype="float32", batch_first=None, prefix=None,
        keras_reset_after=None, head="linear"))]
    #[allow(clippy::too_many_arguments)]
    fn load(
        py: Python<'_>,
        path: std::path::PathBuf,
        device: &str,
        dtype: &str,
        batch_first: Option<bool>,
        prefix: Option<String>,
        keras_reset_after: Option<bool>,
        head: &str,
    ) -> PyResult<Gru> {
        let device = Device::parse(device)?;
        let dtype = parse_dtype(dtype)?;
        let head = HeadKind::parse(head)?;
        let options = ImportOptions {
            keras_reset_after,
            pytorch_prefix: prefix,
        };
        let imported = py.detach(|| gio::load(&path, &options)).map_err(py_err)?;
        Gru::from_imported(py, imported, device, dtype, batch_first, head)
    }

    /// `y, h_n = model(x, h0=None, lengths=None)`.
    ///
    /// `x` `[T, B, I]` (`[B, T, I]` with `batch_first`, `[T, I]` unbatched), float32 (float64
    /// and float16 are converted; a C-contiguous float32 array is read in place); `h0`
    /// `[L·D, B, H]` or None for zeros; `lengths` `[B]` integers in `0..=T` (what a
    /// PackedSequence holds: `y` is zero past an entry's length and `h_n` is its last valid
    /// state; a zero length gives zeros in both, onnxruntime's rule). Returns float32 NumPy arrays `y [T, B, D·H]` (`[B, T, D·H]`) and
    /// `h_n [L·D, B, H]`. The GIL is released while the device works.
    #[pyo3(signature = (x, h0=None, lengths=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        h0: Option<&Bound<'py, PyAny>>,
        lengths: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let (out, unbatched) = self.run(py, x, h0, lengths)?;
        let mut y_shape = out.dims.y_shape();
        let mut h_shape = out.dims.state_shape();
        if unbatched {
            y_shape.remove(1);
            h_shape.remove(1);
        }
        let GruOutput { y, y_h, .. } = out;
        Ok((to_numpy(py, y, &y_shape)?, to_numpy(py, y_h, &h_shape)?))
    }

    /// Same as calling the model: `y, h_n = model.forward(x, h0=None, lengths=None)`.
    #[pyo3(signature = (x, h0=None, lengths=None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        h0: Option<&Bound<'py, PyAny>>,
        lengths: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        self.__call__(py, x, h0, lengths)
    }

    /// The trained head's outputs: `[B, out]` probabilities (sigmoid, softmax) or values
    /// (linear) from the last layer's final state (both directions), or for a sequence head
    /// `[T, B, out]` (`[B, T, out]` with `batch_first`) from every step's output (rows past an
    /// entry's length see zeros: the bias). `ValueError` when the model has no head.
    #[pyo3(signature = (x, lengths=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        lengths: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(head) = &self.head else {
            return Err(PyValueError::new_err(
                "predict: this model has no head (train one with gru_wgpu.train, or load a \
                 file that holds one)",
            ));
        };
        let (out, unbatched) = self.run(py, x, None, lengths)?;
        let features = self.model.num_directions() * self.model.hidden_size();
        let n_out = head.bias.len();
        let dense = Dense::new(
            features,
            n_out,
            head.weight.clone(),
            Some(head.bias.clone()),
            head.kind.activation(),
        )
        .map_err(py_err)?;
        if head.kind == HeadKind::Sequence {
            let mut shape = out.dims.y_shape();
            let values = dense.apply(&out.y).map_err(py_err)?;
            let last = shape.len() - 1;
            shape[last] = n_out;
            if unbatched {
                shape.remove(1);
            }
            return to_numpy(py, values, &shape);
        }
        let values = dense
            .apply(&final_features(&out).map_err(py_err)?)
            .map_err(py_err)?;
        let shape = if unbatched {
            vec![n_out]
        } else {
            vec![out.dims.batch, n_out]
        };
        to_numpy(py, values, &shape)
    }

    /// The weights under PyTorch's names, as float32 NumPy arrays: per layer `k` and direction
    /// (`_reverse` for the second) `weight_ih_l{k} [3H, I or D·H]`, `weight_hh_l{k} [3H, H]`,
    /// `bias_ih_l{k} [3H]`, `bias_hh_l{k} [3H]` (no biases when built with `bias=False`), gate
    /// order r, z, n; `nn.GRU(...).load_state_dict(...)` takes it as it is (through
    /// `torch.from_numpy`). `ValueError` for a reset-before model, which `nn.GRU` cannot hold.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let tensors = export::pytorch_state_dict(&self.model, "", None).map_err(py_err)?;
        let d = PyDict::new(py);
        for (name, shape, data) in tensors {
            if !self.bias && name.starts_with("bias_") {
                continue;
            }
            d.set_item(&name, to_numpy(py, data, &shape)?)?;
        }
        Ok(d)
    }

    /// Replaces the weights with those of a PyTorch-named state dict (arrays or tensors) of
    /// the same shape (`ValueError` otherwise); a `head.weight [out, D·H]` / `head.bias [out]`
    /// pair, if present, becomes the head (its activation is kept, `linear` for a new one).
    /// The new weights are uploaded once.
    fn load_state_dict(&mut self, py: Python<'_>, state_dict: &Bound<'_, PyAny>) -> PyResult<()> {
        let parsed = parse_state_dict(py, state_dict)?;
        if self.model.convention() != Convention::ResetAfter {
            return Err(PyValueError::new_err(
                "load_state_dict: a PyTorch state_dict is reset-after; this model is \
                 reset-before",
            ));
        }
        self.check_same_shape(&parsed.model, "load_state_dict")?;
        if let Some(h) = parsed.head {
            let kind = self.head.as_ref().map_or(HeadKind::Linear, |old| old.kind);
            self.head = Some(Head {
                kind,
                weight: h.weight,
                bias: h.bias,
            });
        }
        self.bias = parsed.bias;
        self.replace_model(py, parsed.model)
    }

    /// Every layer's and direction's weights in ONNX's layout, gate order z, r, h: a list per
    /// layer of a list per direction of dicts `{"W": [3H, I or D·H], "R": [3H, H],
    /// "B": [6H]}` (`B` = input biases then recurrent biases), float32 copies.
    fn to_numpy_weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let layers = PyList::empty(py);
        for dirs in self.model.layers() {
            let list = PyList::empty(py);
            for w in dirs {
                let (i, h) = (w.input_size(), w.hidden_size());
                let d = PyDict::new(py);
                d.set_item("W", to_numpy(py, w.w().to_vec(), &[3 * h, i])?)?;
                d.set_item("R", to_numpy(py, w.r().to_vec(), &[3 * h, h])?)?;
                d.set_item("B", to_numpy(py, w.b().to_vec(), &[6 * h])?)?;
                list.append(d)?;
            }
            layers.append(list)?;
        }
        Ok(layers)
    }

    /// Writes the model (and its head) to `path`: `format` `"pytorch"` (a `.safetensors`
    /// state dict, `gru.`-prefixed with `head.weight`/`head.bias` when there is a head),
    /// `"keras"` (`.npz`: kernel, recurrent_kernel, bias, dense_kernel, dense_bias) or `"onnx"`
    /// (one GRU node, one layer, no head); a `bias=False` model's PyTorch file has no bias
    /// tensors (its Keras and ONNX files hold zero biases); `None` takes it from the extension (`.safetensors`,
    /// `.npz`, `.onnx`).
    #[pyo3(signature = (path, format=None))]
    fn save(&self, py: Python<'_>, path: std::path::PathBuf, format: Option<&str>) -> PyResult<()> {
        let format = match format {
            Some(f) => f.to_ascii_lowercase(),
            None => match path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("safetensors") => "pytorch".into(),
                Some("npz") => "keras".into(),
                Some("onnx") => "onnx".into(),
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "save {}: expected format=\"pytorch\", \"keras\" or \"onnx\", or an \
                         extension that says it (.safetensors, .npz, .onnx)",
                        path.display()
                    )))
                }
            },
        };
        let head = self.head_tensors();
        let bytes = match format.as_str() {
            "pytorch" | "torch" => {
                let prefix = if head.is_some() { "gru." } else { "" };
                let mut tensors =
                    export::pytorch_state_dict(&self.model, prefix, head).map_err(py_err)?;
                if !self.bias {
                    // nn.GRU(bias=False) has no bias tensors: the file holds its state_dict.
                    tensors
                        .retain(|(n, _, _)| !n.contains("bias_ih_l") && !n.contains("bias_hh_l"));
                }
                export::encode_safetensors(&tensors)
            }
            "keras" => {
                export::encode_npz(&export::keras_weights(&self.model, head).map_err(py_err)?)
            }
            "onnx" => onnx::encode(&self.model),
            other => {
                return Err(PyValueError::new_err(format!(
                    "save: expected format \"pytorch\", \"keras\" or \"onnx\", got {other:?}"
                )))
            }
        }
        .map_err(py_err)?;
        py.detach(|| std::fs::write(&path, bytes))
            .map_err(|source| {
                py_err(GruError::Io {
                    path: path.display().to_string(),
                    source,
                })
            })
    }

    /// A streaming session of `streams` slots over this network (forward direction only):
    /// every stream's state stays on the device between calls. See `Session`.
    #[pyo3(signature = (streams=256))]
    fn session(&self, py: Python<'_>, streams: i64) -> PyResult<crate::session::Session> {
        crate::session::Session::new(py, self, count(streams, "streams")?)
    }

    /// `I`.
    #[getter]
    fn input_size(&self) -> usize {
        self.model.input_size()
    }

    /// `H`.
    #[getter]
    fn hidden_size(&self) -> usize {
        self.model.hidden_size()
    }

    /// `L`.
    #[getter]
    fn num_layers(&self) -> usize {
        self.model.num_layers()
    }

    /// Whether there are two directions (`D = 2`).
    #[getter]
    fn bidirectional(&self) -> bool {
        self.model.direction() == Direction::Bidirectional
    }

    /// Whether the model has biases (`bias=False` models hold zeros).
    #[getter]
    fn bias(&self) -> bool {
        self.bias
    }

    /// True for reset-after (PyTorch, cuDNN, ONNX `linear_before_reset=1`), False for
    /// reset-before (ONNX's default, Keras `reset_after=False`).
    #[getter]
    fn reset_after(&self) -> bool {
        self.model.convention() == Convention::ResetAfter
    }

    /// `"gpu"` or `"cpu"`: where the forward runs.
    #[getter]
    fn device(&self) -> &'static str {
        match self.place {
            Place::Gpu { .. } => "gpu",
            Place::Cpu { .. } => "cpu",
        }
    }

    /// The adapter (name, backend, type, driver) or the CPU path, in words.
    #[getter]
    fn adapter(&self) -> String {
        self.describe.clone()
    }

    /// `"float32"` or `"float16"`: the storage type of weights and activations.
    #[getter]
    fn dtype(&self) -> &'static str {
        // The GPU model is built without an f32 fallback: its storage type is the one asked.
        match self.dtype {
            Dtype::F16 => "float16",
            _ => "float32",
        }
    }

    /// The dense head as `{"kind", "weight" [out, D·H], "bias" [out]}`, or None.
    #[getter]
    fn head<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(h) = &self.head else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        let out = h.bias.len();
        d.set_item("kind", h.kind.name())?;
        d.set_item(
            "weight",
            to_numpy(py, h.weight.clone(), &[out, h.weight.len() / out.max(1)])?,
        )?;
        d.set_item("bias", to_numpy(py, h.bias.clone(), &[out])?)?;
        Ok(Some(d))
    }

    fn __repr__(&self) -> String {
        format!(
            "GRU({}, {}, num_layers={}, bias={}, batch_first={}, bidirectional={}, \
             reset_after={}, device='{}', dtype='{}'{})",
            self.model.input_size(),
            self.model.hidden_size(),
            self.model.num_layers(),
            py_bool(self.bias),
            py_bool(self.batch_first),
            py_bool(self.model.direction() == Direction::Bidirectional),
            py_bool(self.model.convention() == Convention::ResetAfter),
            self.device(),
            self.dtype(),
            self.head
                .as_ref()
                .map(|h| format!(", head='{}'", h.kind.name()))
                .unwrap_or_default()
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

pub(crate) fn parse_init(s: &str) -> PyResult<Init> {
    match s.to_ascii_lowercase().as_str() {
        "pytorch" | "torch" => Ok(Init::PyTorch),
        "keras" => Ok(Init::Keras),
        _ => Err(PyValueError::new_err(format!(
            "invalid init: expected \"pytorch\" or \"keras\", got {s:?}"
        ))),
    }
}
