//! The one error type of the crate.
//!
//! Every variant says what was expected and what came, so that a user who passed a wrong
//! shape, a wrong file or asked for more than the device allows can fix the call without
//! reading the source.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = GruError> = std::result::Result<T, E>;

/// Everything that can go wrong in gru-wgpu.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GruError {
    /// A tensor passed in has the wrong number of elements or the wrong shape.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// The tensor or argument, e.g. `"X"` or `"initial_h"`.
        what: String,
        /// What was expected, e.g. `"[T=5, B=2, I=3] = 30 elements"`.
        expected: String,
        /// What came.
        got: String,
    },
    /// A training step met a loss or a gradient that is not finite; the step changed nothing
    /// (parameters and optimizer state are those before it).
    #[error(
        "training step {step}: the {what} is not finite ({value}); the step was not applied \
         (parameters and optimizer state are those before it)"
    )]
    NonFinite {
        /// The optimizer step it would have been (1 for the first).
        step: u64,
        /// `"loss"` or `"gradient norm"`.
        what: String,
        /// The value met.
        value: f64,
    },
    /// A size or option has a value the operation cannot take.
    #[error("invalid {what}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The argument.
        what: String,
        /// The allowed values.
        expected: String,
        /// What came.
        got: String,
    },
    /// No GPU adapter could be found (or none matched `WGPU_ADAPTER_NAME` / `WGPU_BACKEND`).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a device on adapter {adapter}: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// The problem needs more than a limit of the device allows.
    #[error("{what} needs {needed}, but the device's {limit} is {available}")]
    DeviceLimit {
        /// What needed it, e.g. `"buffer Y [T, B, H]"`.
        what: String,
        /// The limit's name as wgpu calls it, e.g. `max_storage_buffer_binding_size`.
        limit: &'static str,
        /// How much was needed.
        needed: u64,
        /// What the device allows.
        available: u64,
    },
    /// The operation needs a device feature the adapter does not have.
    #[error("{needed_for} needs the device feature {feature}, which {adapter} does not have")]
    MissingFeature {
        /// wgpu's name of the feature, e.g. `SHADER_F16`.
        feature: &'static str,
        /// What needed it.
        needed_for: String,
        /// The adapter.
        adapter: String,
    },
    /// A GPU operation reported a validation, out-of-memory or internal error.
    #[error("GPU error during {operation}: {message}")]
    Gpu {
        /// What was being done, e.g. `"creating pipeline gru_step_ra"`.
        operation: String,
        /// wgpu's message.
        message: String,
        /// wgpu's error value, when there is one (also [`std::error::Error::source`]).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The device was lost (driver reset, GPU removed, watchdog, or `Device::destroy`). Every
    /// later call on models of this context returns this error; recover by building a new
    /// [`crate::gpu::GpuContext`] and uploading the models again.
    #[error("the GPU device was lost ({reason}): {message}; build a new GpuContext and upload the model again")]
    DeviceLost {
        /// wgpu's reason (`Destroyed` or `Unknown`).
        reason: String,
        /// The driver's message.
        message: String,
    },
    /// Reading or writing a `.npy` file failed.
    #[error("{path}: {message}")]
    Npy {
        /// The file.
        path: String,
        /// What was wrong, and what was expected.
        message: String,
    },
    /// A model file (safetensors, npz, ONNX) is malformed or holds something the importer
    /// cannot run faithfully; the message names the tensor, attribute or node, what was
    /// expected and what came.
    #[error("{path}: {message}")]
    Import {
        /// The file.
        path: String,
        /// What was wrong, and what was expected.
        message: String,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl GruError {
    /// Convenience constructor for [`GruError::Shape`].
    pub fn shape(
        what: impl Into<String>,
        expected: impl fmt::Display,
        got: impl fmt::Display,
    ) -> Self {
        GruError::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Convenience constructor for [`GruError::InvalidArgument`].
    pub fn invalid(
        what: impl Into<String>,
        expected: impl fmt::Display,
        got: impl fmt::Display,
    ) -> Self {
        GruError::InvalidArgument {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}
