//! `gru_wgpu` for Python: GRU networks with PyTorch `nn.GRU`'s names and shapes on any GPU
//! through wgpu, with the library's `f64` CPU reference path as the fallback.
//!
//! - `adapters()`: what `gru info` prints, as dicts.
//! - `GRU` (`model.rs`): a network from an `nn.GRU`, a model file or fresh weights;
//!   `y, h_n = model(x, h0, lengths)`; `state_dict`, `save`, `session`, `predict`.
//! - `Session` (`session.rs`): many stateful streams fed a chunk at a time.
//! - `train(x, y, ...)` (`fit.rs`): `gru train` from NumPy arrays, returning the trained
//!   model and the per-epoch metrics.
//!
//! The Python-facing documentation is the docstrings below and the stubs in `gru_wgpu.pyi`.
//!
//! Arrays cross without copies where the layout allows: a C-contiguous `float32` array (or a
//! torch CPU tensor, through `__array__`) is read in place; other float dtypes are converted
//! once. Outputs are NumPy arrays that own the library's result vectors. The GIL is released
//! while the GPU (or the CPU reference) works. Errors: `ValueError` for shapes, dtypes, values
//! and files that are not models, `OSError` for files that cannot be read or written
//! (`FileNotFoundError` when missing),
//! `FloatingPointError` for a training step whose loss or gradients are not finite, and
//! `RuntimeError` for device failures; each carries the library's one-line message.

use std::sync::OnceLock;

use gru_wgpu::gpu::{enumerate_adapters, GpuContext};
use gru_wgpu::GruError;
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{
    PyFileNotFoundError, PyFloatingPointError, PyOSError, PyRuntimeError, PyRuntimeWarning,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

mod fit;
mod model;
mod session;

/// A library error as the Python exception its kind calls for (see the module docs).
pub(crate) fn py_err(e: GruError) -> PyErr {
    let message = e.to_string();
    match e {
        GruError::Shape { .. }
        | GruError::InvalidArgument { .. }
        | GruError::Npy { .. }
        | GruError::Import { .. } => PyValueError::new_err(message),
        GruError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        GruError::Io { .. } => PyOSError::new_err(message),
        GruError::NonFinite { .. } => PyFloatingPointError::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}

/// Where a model runs: `"auto"` (the GPU, else the CPU reference with a `RuntimeWarning`),
/// `"gpu"` (the GPU or `RuntimeError`) or `"cpu"` (the reference path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Device {
    Auto,
    Gpu,
    Cpu,
}

impl Device {
    pub(crate) fn parse(s: &str) -> PyResult<Device> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "gpu" | "wgpu" => Ok(Device::Gpu),
            "cpu" => Ok(Device::Cpu),
            _ => Err(PyValueError::new_err(format!(
                "invalid device: expected \"auto\", \"gpu\" or \"cpu\", got {s:?}"
            ))),
        }
    }
}

/// `"float32"` / `"float16"` (also `"f32"`, `"f16"`, `"half"`): the GPU's storage type.
pub(crate) fn parse_dtype(s: &str) -> PyResult<gru_wgpu::Dtype> {
    match s.to_ascii_lowercase().as_str() {
        "float32" | "f32" | "float" => Ok(gru_wgpu::Dtype::F32),
        "float16" | "f16" | "half" => Ok(gru_wgpu::Dtype::F16),
        _ => Err(PyValueError::new_err(format!(
            "invalid dtype: expected \"float32\" or \"float16\", got {s:?}"
        ))),
    }
}

/// The process's GPU context, made on first use and shared by every model and session (one
/// device, one queue). A failure is remembered: the next model falls back (or raises) at once.
pub(crate) fn context() -> Result<GpuContext, String> {
    static CONTEXT: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| GpuContext::new().map_err(|e| e.to_string()))
        .clone()
}

/// What `device="gpu"` raises and `device="auto"` warns about (a `RuntimeWarning`) when the
/// GPU is not there: `gpu` failed with `error`; `doing` is what falls back to the CPU.
pub(crate) fn no_gpu(py: Python<'_>, device: Device, error: &str, doing: &str) -> PyResult<()> {
    if device == Device::Gpu {
        return Err(PyRuntimeError::new_err(format!(
            "device=\"gpu\": {error}; pass device=\"cpu\" (or \"auto\") for the CPU reference path"
        )));
    }
    let text = format!("gru_wgpu: no GPU ({error}); {doing} on the CPU reference path");
    let text = std::ffi::CString::new(text.replace('\0', " ")).unwrap_or_default();
    PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &text, 1)
}

/// `obj` as a C-contiguous `float32` NumPy array: itself when it already is one (no copy), a
/// torch tensor through `detach().cpu()` and `__array__`, other float dtypes converted once.
/// Integer, boolean and object arrays are refused (`ValueError`), naming `what`.
pub(crate) fn as_f32<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let np = py.import("numpy")?;
    let arr = ndarray(py, obj, what)?;
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if kind != "f" {
        return Err(PyValueError::new_err(format!(
            "{what}: expected a float32 array (float64 and float16 are converted), got dtype {}",
            dtype.str()?
        )));
    }
    contiguous(&np, &arr, "float32")
}

/// `numpy.ascontiguousarray(arr, dtype=numpy.<dtype>)` as a typed array (no copy when `arr`
/// already is one).
fn contiguous<'py, T: numpy::Element>(
    np: &Bound<'py, PyModule>,
    arr: &Bound<'py, PyAny>,
    dtype: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let kwargs = PyDict::new(np.py());
    kwargs.set_item("dtype", np.getattr(dtype)?)?;
    let arr = np.call_method("ascontiguousarray", (arr,), Some(&kwargs))?;
    Ok(arr.cast_into::<PyArrayDyn<T>>()?)
}

/// `obj` as a 1-D `int64` vector of whole numbers (`lengths`, stream ids): integer arrays, and
/// float arrays whose values are all whole numbers; anything else is refused, naming `what`.
pub(crate) fn as_i64<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Vec<i64>> {
    let np = py.import("numpy")?;
    let arr = ndarray(py, obj, what)?;
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let whole_floats = kind == "f" && {
        // Whole numbers stored as floats (lengths saved as float32) are taken as they are.
        let ok = np
            .call_method1("isfinite", (&arr,))?
            .call_method0("all")?
            .is_truthy()?
            && np
                .call_method1("array_equal", (&arr, np.call_method1("round", (&arr,))?))?
                .is_truthy()?;
        if !ok {
            return Err(PyValueError::new_err(format!(
                "{what}: expected whole numbers, got dtype {} holding fractions or non-finite \
                 values",
                dtype.str()?
            )));
        }
        true
    };
    if kind != "i" && kind != "u" && !whole_floats {
        return Err(PyValueError::new_err(format!(
            "{what}: expected integers, got dtype {}",
            dtype.str()?
        )));
    }
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        let shape = arr.getattr("shape")?;
        return Err(PyValueError::new_err(format!(
            "{what}: expected a 1-D array, got shape {}",
            shape.str()?
        )));
    }
    let arr = contiguous::<i64>(&np, &arr, "int64")?;
    let ro = arr.readonly();
    Ok(ro.as_slice()?.to_vec())
}

/// `obj` as a NumPy array without copying where it can: `numpy.asarray` (arrays, anything
/// with `__array__`, sequences), else `numpy.from_dlpack` for an object that only speaks
/// DLPack. `ValueError` naming `what` when neither works.
fn ndarray<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let np = py.import("numpy")?;
    let obj = detached(obj)?;
    match np.call_method1("asarray", (&obj,)) {
        Ok(a) => Ok(a),
        Err(e) => {
            if obj.hasattr("__dlpack__")? {
                if let Ok(a) = np.call_method1("from_dlpack", (&obj,)) {
                    return Ok(a);
                }
            }
            Err(PyValueError::new_err(format!("{what}: not an array ({e})")))
        }
    }
}

/// `obj` as float64 values with their shape (training targets): any integer, boolean or float
/// dtype, converted once; anything else is refused, naming `what`.
pub(crate) fn as_f64<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<(Vec<usize>, Vec<f64>)> {
    let np = py.import("numpy")?;
    let arr = ndarray(py, obj, what)?;
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "f" | "i" | "u" | "b") {
        return Err(PyValueError::new_err(format!(
            "{what}: expected numbers, got dtype {}",
            dtype.str()?
        )));
    }
    let arr = contiguous::<f64>(&np, &arr, "float64")?;
    let ro = arr.readonly();
    Ok((ro.shape().to_vec(), ro.as_slice()?.to_vec()))
}

/// A torch tensor's `detach().cpu()` (so that `__array__` works on one that requires grad or
/// lives on another device); anything else as it is. torch itself is never imported.
fn detached<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if obj.hasattr("detach")? && obj.hasattr("cpu")? && obj.hasattr("__dlpack__")? {
        Ok(obj.call_method0("detach")?.call_method0("cpu")?)
    } else {
        Ok(obj.clone())
    }
}

/// A size or count argument (`what`) as `usize`: Python ints may be negative, which is a
/// `ValueError` naming it (not pyo3's `OverflowError`).
pub(crate) fn count(v: i64, what: &str) -> PyResult<usize> {
    usize::try_from(v)
        .map_err(|_| PyValueError::new_err(format!("{what}: expected a value ≥ 0, got {v}")))
}

/// A shape as `[a, b, c]`.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A result vector as a NumPy array of `shape`, owning `data` (no copy).
pub(crate) fn to_numpy<'py>(
    py: Python<'py>,
    data: Vec<f32>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let arr = numpy::PyArray1::from_vec(py, data);
    Ok(arr.reshape(shape.to_vec())?.into_any())
}

/// The GPU adapters wgpu can see, as `gru info` lists them: one dict per adapter with `name`,
/// `backend`, `device_type`, `driver`, `driver_info`, `vendor`, `device` (PCI ids),
/// `features` (`SHADER_F16`, `TIMESTAMP_QUERY`, `SUBGROUP`: bool each) and `limits` (the
/// limits the library checks, by wgpu's field names). An empty list when there is none.
#[pyfunction]
fn adapters(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let reports = py.detach(|| enumerate_adapters(None));
    let list = PyList::empty(py);
    for r in reports {
        let d = PyDict::new(py);
        d.set_item("name", &r.info.name)?;
        d.set_item("backend", format!("{:?}", r.info.backend))?;
        d.set_item("device_type", format!("{:?}", r.info.device_type))?;
        d.set_item("driver", &r.info.driver)?;
        d.set_item("driver_info", &r.info.driver_info)?;
        d.set_item("vendor", r.info.vendor)?;
        d.set_item("device", r.info.device)?;
        let features = PyDict::new(py);
        for (name, f) in [
            ("SHADER_F16", wgpu::Features::SHADER_F16),
            ("TIMESTAMP_QUERY", wgpu::Features::TIMESTAMP_QUERY),
            ("SUBGROUP", wgpu::Features::SUBGROUP),
        ] {
            features.set_item(name, r.features.contains(f))?;
        }
        d.set_item("features", features)?;
        let l = &r.limits;
        let limits = PyDict::new(py);
        limits.set_item(
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        )?;
        limits.set_item("max_buffer_size", l.max_buffer_size)?;
        limits.set_item(
            "max_compute_workgroups_per_dimension",
            l.max_compute_workgroups_per_dimension,
        )?;
        limits.set_item(
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup,
        )?;
        limits.set_item(
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size,
        )?;
        limits.set_item(
            "min_uniform_buffer_offset_alignment",
            l.min_uniform_buffer_offset_alignment,
        )?;
        d.set_item("limits", limits)?;
        list.append(d)?;
    }
    Ok(list)
}

/// The extension module `gru_wgpu`.
#[pymodule]
#[pyo3(name = "gru_wgpu")]
fn gru_wgpu_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(adapters, m)?)?;
    m.add_function(wrap_pyfunction!(fit::train, m)?)?;
    m.add_class::<model::Gru>()?;
    m.add_class::<session::Session>()?;
    Ok(())
}
