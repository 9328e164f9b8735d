//! The one place that loads WGSL.
//!
//! Each kernel family is one file in `shaders/`; `shaders/common.wgsl` (stable activations)
//! is prepended to every kernel, `shaders/gemm_common.wgsl` to the input-projection kernels,
//! and `shaders/gru_layer.wgsl` (bindings and index helpers of
//! a layer) to the recurrent ones, at compile time of the crate. Kernels are specialised with
//! WGSL `override` constants when their pipelines are created, never by editing source text.

/// `shaders/common.wgsl`: functions shared by every kernel.
pub const COMMON: &str = include_str!("../shaders/common.wgsl");

/// `shaders/gemm_common.wgsl`: parameters, bindings and the store of the input-projection
/// kernels, placed between [`COMMON`] and the kernel's own file.
pub const GEMM_COMMON: &str = include_str!("../shaders/gemm_common.wgsl");

/// `shaders/gru_layer.wgsl`: bindings, parameters and index helpers of the recurrent kernels,
/// placed between [`COMMON`] and the kernel's own file.
pub const GRU_LAYER: &str = include_str!("../shaders/gru_layer.wgsl");

/// A kernel family: one `.wgsl` file in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `input_projection.wgsl`: `XP[T·B, D·3H] = X[T·B, K] · Wᵀ + Wb` (K = I for layer 0,
    /// D·H after), one tiled GEMM.
    InputProjection,
    /// `input_projection_direct.wgsl`: the same GEMM register-blocked without workgroup
    /// memory, for CPU adapters.
    InputProjectionDirect,
    /// `gru_step.wgsl`: one timestep's recurrent products, activations and blend.
    GruStep,
    /// `gru_persistent.wgsl`: many timesteps in one dispatch, the state in workgroup memory.
    GruPersistent,
    /// `stream_state.wgsl`: gathers and scatters the resident state of a streaming session's
    /// streams.
    StreamState,
}

impl Kernel {
    /// Every kernel family.
    pub const ALL: [Kernel; 5] = [
        Kernel::InputProjection,
        Kernel::InputProjectionDirect,
        Kernel::GruStep,
        Kernel::GruPersistent,
        Kernel::StreamState,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Kernel::InputProjection => "input_projection.wgsl",
            Kernel::InputProjectionDirect => "input_projection_direct.wgsl",
            Kernel::GruStep => "gru_step.wgsl",
            Kernel::GruPersistent => "gru_persistent.wgsl",
            Kernel::StreamState => "stream_state.wgsl",
        }
    }

    /// The preludes placed before the kernel's own file: `common.wgsl` (all but
    /// `stream_state.wgsl`), then `gemm_common.wgsl` or `gru_layer.wgsl`.
    pub fn preludes(self) -> &'static [&'static str] {
        match self {
            Kernel::InputProjection | Kernel::InputProjectionDirect => {
                &["common.wgsl", "gemm_common.wgsl"]
            }
            Kernel::GruStep | Kernel::GruPersistent => &["common.wgsl", "gru_layer.wgsl"],
            Kernel::StreamState => &[],
        }
    }

    /// The full WGSL source: the preludes followed by the kernel's own file.
    pub fn source(self) -> &'static str {
        match self {
            Kernel::InputProjection => concat!(
                include_str!("../shaders/common.wgsl"),
                include_str!("../shaders/gemm_common.wgsl"),
                include_str!("../shaders/input_projection.wgsl")
            ),
            Kernel::InputProjectionDirect => concat!(
                include_str!("../shaders/common.wgsl"),
                include_str!("../shaders/gemm_common.wgsl"),
                include_str!("../shaders/input_projection_direct.wgsl")
            ),
            Kernel::GruStep => concat!(
                include_str!("../shaders/common.wgsl"),
                include_str!("../shaders/gru_layer.wgsl"),
                include_str!("../shaders/gru_step.wgsl")
            ),
            Kernel::GruPersistent => concat!(
                include_str!("../shaders/common.wgsl"),
                include_str!("../shaders/gru_layer.wgsl"),
                include_str!("../shaders/gru_persistent.wgsl")
            ),
            Kernel::StreamState => include_str!("../shaders/stream_state.wgsl"),
        }
    }

    /// The compute entry points the crate uses from this file.
    pub fn entry_points(self) -> &'static [&'static str] {
        match self {
            Kernel::InputProjection => &["input_projection"],
            Kernel::InputProjectionDirect => &["input_projection_direct"],
            Kernel::GruStep => &[
                "step_reset_after",
                "gates_reset_before",
                "candidate_reset_before",
            ],
            Kernel::GruPersistent => &["persistent_reset_after", "persistent_reset_before"],
            Kernel::StreamState => &["gather_state", "scatter_state"],
        }
    }

    /// The `override` constants the crate sets on this file's pipelines.
    pub fn overrides(self) -> &'static [&'static str] {
        match self {
            Kernel::InputProjection | Kernel::InputProjectionDirect | Kernel::StreamState => &[],
            Kernel::GruStep | Kernel::GruPersistent => &["HIDDEN", "WG"],
        }
    }
}
