//! The one place that loads WGSL.
//!
//! Each kernel family is one file in `shaders/`; a storage-type file (`dtype_f32.wgsl` or
//! `dtype_f16.wgsl`: `alias S = f32;` or `f16`) comes first in every kernel, then
//! `shaders/common.wgsl` (stable activations, ONNX's clip) in every kernel but `stream_state.wgsl`, then
//! `shaders/gemm_common.wgsl` in the input-projection kernels, and `shaders/gru_state.wgsl`
//! (or `gru_state_vec4.wgsl`: the state bindings) then `shaders/gru_layer.wgsl` (the other
//! bindings and index helpers of a layer) in the recurrent ones, `gru_split.wgsl` (the split
//! step kernel's body) before the split kernel's entry-point files, `train_state.wgsl` (or
//! `train_state_vec4.wgsl`) before `gru_train.wgsl`, and `train_gemm_operands.wgsl` (or
//! `train_gemm_operands_vec4.wgsl`) before `train_gemm.wgsl`, at compile time of the
//! crate: one fixed source per kernel and storage type. Kernels are specialised with
//! WGSL `override` constants when their pipelines are created, never by editing source text.

use crate::dtype::Dtype;

/// The file that sets the storage type `S` (and `S4`, `stored`) for `dtype`; it comes first
/// in every kernel (`enable f16;` must precede every declaration).
pub fn dtype_prelude(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::F32 => "dtype_f32.wgsl",
        Dtype::F16 => "dtype_f16.wgsl",
    }
}

/// `shaders/common.wgsl`: functions shared by every kernel.
pub const COMMON: &str = include_str!("../shaders/common.wgsl");

/// `shaders/dtype_f32.wgsl`: storage type `S = f32`.
pub const DTYPE_F32: &str = include_str!("../shaders/dtype_f32.wgsl");

/// `shaders/dtype_f16.wgsl`: storage type `S = f16`.
pub const DTYPE_F16: &str = include_str!("../shaders/dtype_f16.wgsl");

/// `shaders/gemm_common.wgsl`: parameters, bindings and the store of the input-projection
/// kernels, placed between [`COMMON`] and the kernel's own file.
pub const GEMM_COMMON: &str = include_str!("../shaders/gemm_common.wgsl");

/// `shaders/gru_state.wgsl`: the recurrent kernels' state bindings as scalar arrays, with
/// their accessors; placed between [`COMMON`] and [`GRU_LAYER`].
pub const GRU_STATE: &str = include_str!("../shaders/gru_state.wgsl");

/// `shaders/gru_state_vec4.wgsl`: the same bindings and accessors over vec4 arrays (the
/// direct step kernel's module when H is a multiple of 4).
pub const GRU_STATE_VEC4: &str = include_str!("../shaders/gru_state_vec4.wgsl");

/// `shaders/gru_split.wgsl`: the split step kernel's body, placed after [`GRU_LAYER`] and
/// before the file with its entry points and reduction (`gru_split_workgroup.wgsl` or
/// `gru_split_subgroup.wgsl`).
pub const GRU_SPLIT: &str = include_str!("../shaders/gru_split.wgsl");

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
    /// `gru_step.wgsl` again, with the state bindings viewed as vec4 arrays
    /// (`gru_state_vec4.wgsl` instead of `gru_state.wgsl`): the direct step kernel's module
    /// when H is a multiple of 4 (its `VEC_H` override reads the state four units at a time).
    GruStepVec4,
    /// `gru_persistent.wgsl`: many timesteps in one dispatch, the state in workgroup memory.
    GruPersistent,
    /// `gru_split.wgsl` with `gru_split_workgroup.wgsl`: one timestep with each hidden unit's
    /// dot products split over a workgroup of 64 lanes (R row-major), the lanes' partial
    /// sums added in workgroup memory. GPUs at small batch; any device.
    GruSplit,
    /// `gru_split.wgsl` with `gru_split_subgroup.wgsl`: the same kernel, the partial sums
    /// added with `subgroupAdd` (devices with `Features::SUBGROUP`).
    GruSplitSubgroup,
    /// `stream_state.wgsl`: gathers and scatters the resident state of a streaming session's
    /// streams.
    StreamState,
    /// `train_gemm.wgsl`: the strided f32 GEMM of training (input projection, `dX`, `dW`,
    /// `dR`, bias gradients), deterministic (A and B from `train_gemm_operands.wgsl`).
    TrainGemm,
    /// `train_gemm.wgsl` again, with A and B viewed as vec4 arrays
    /// (`train_gemm_operands_vec4.wgsl`): the direct GEMM's module, which then reads four
    /// consecutive elements per load wherever an operand's strides allow.
    TrainGemmVec4,
    /// `gru_train.wgsl`: the training forward's steps (keeping the reserve space) and the
    /// backward's steps in reverse time (bindings 2 to 4 from `train_state.wgsl`).
    GruTrain,
    /// `gru_train.wgsl` again, with bindings 2 to 4 viewed as vec4 arrays
    /// (`train_state_vec4.wgsl`): the CPU-adapter shape's module when H is a multiple of 4
    /// (its loops then read four elements of a row per load).
    GruTrainVec4,
    /// `optim.wgsl`: the optimizer step (clipping, then the update of each parameter tensor
    /// in place, the state on the device).
    Optim,
    /// `train_head.wgsl`: the trainer's dense head, its loss and gradient, and the refresh
    /// of the weights' kernel layouts (transposes) after an update.
    TrainHead,
}

/// The one table of kernel files: each [`Kernel`], its preludes (after the storage-type file)
/// and its own file. It generates [`Kernel::file_name`], [`Kernel::preludes`] and
/// [`Kernel::source`], so the list a kernel is built from is written once.
macro_rules! kernel_files {
    ($($kernel:ident => [$($prelude:literal),*] $file:literal;)+) => {
        impl Kernel {
            /// The file name under `shaders/`.
            pub fn file_name(self) -> &'static str {
                match self {
                    $(Kernel::$kernel => $file,)+
                }
            }

            /// The preludes placed before the kernel's own file: the storage-type file
            /// (`dtype_f32.wgsl` or `dtype_f16.wgsl`, see [`dtype_prelude`]) first, then
            /// `common.wgsl` (all but `stream_state.wgsl`), then `gemm_common.wgsl` or the
            /// state and layer files of the recurrent kernels. The storage-type file is not
            /// listed here.
            pub fn preludes(self) -> &'static [&'static str] {
                match self {
                    $(Kernel::$kernel => &[$($prelude),*],)+
                }
            }

            /// The full WGSL source for storage type `dtype`: the storage-type prelude, the
            /// other preludes, then the kernel's own file.
            pub fn source(self, dtype: Dtype) -> &'static str {
                match (self, dtype) {
                    $(
                        (Kernel::$kernel, Dtype::F32) => concat!(
                            include_str!("../shaders/dtype_f32.wgsl"),
                            $(include_str!(concat!("../shaders/", $prelude)),)*
                            include_str!(concat!("../shaders/", $file)),
                        ),
                        (Kernel::$kernel, Dtype::F16) => concat!(
                            include_str!("../shaders/dtype_f16.wgsl"),
                            $(include_str!(concat!("../shaders/", $prelude)),)*
                            include_str!(concat!("../shaders/", $file)),
                        ),
                    )+
                }
            }
        }
    };
}

kernel_files! {
    InputProjection => ["common.wgsl", "gemm_common.wgsl"] "input_projection.wgsl";
    InputProjectionDirect => ["common.wgsl", "gemm_common.wgsl"] "input_projection_direct.wgsl";
    GruStep => ["common.wgsl", "gru_state.wgsl", "gru_layer.wgsl"] "gru_step.wgsl";
    GruStepVec4 => ["common.wgsl", "gru_state_vec4.wgsl", "gru_layer.wgsl"] "gru_step.wgsl";
    GruPersistent => ["common.wgsl", "gru_state.wgsl", "gru_layer.wgsl"] "gru_persistent.wgsl";
    GruSplit => ["common.wgsl", "gru_state.wgsl", "gru_layer.wgsl", "gru_split.wgsl"]
        "gru_split_workgroup.wgsl";
    GruSplitSubgroup => ["common.wgsl", "gru_state.wgsl", "gru_layer.wgsl", "gru_split.wgsl"]
        "gru_split_subgroup.wgsl";
    StreamState => [] "stream_state.wgsl";
    TrainGemm => ["train_gemm_operands.wgsl"] "train_gemm.wgsl";
    TrainGemmVec4 => ["train_gemm_operands_vec4.wgsl"] "train_gemm.wgsl";
    GruTrain => ["common.wgsl", "train_state.wgsl"] "gru_train.wgsl";
    GruTrainVec4 => ["common.wgsl", "train_state_vec4.wgsl"] "gru_train.wgsl";
    Optim => [] "optim.wgsl";
    TrainHead => ["common.wgsl"] "train_head.wgsl";
}

impl Kernel {
    /// Every kernel family.
    pub const ALL: [Kernel; 14] = [
        Kernel::InputProjection,
        Kernel::InputProjectionDirect,
        Kernel::GruStep,
        Kernel::GruStepVec4,
        Kernel::GruPersistent,
        Kernel::GruSplit,
        Kernel::GruSplitSubgroup,
        Kernel::StreamState,
        Kernel::TrainGemm,
        Kernel::TrainGemmVec4,
        Kernel::GruTrain,
        Kernel::GruTrainVec4,
        Kernel::Optim,
        Kernel::TrainHead,
    ];

    /// The compute entry points the crate uses from this file.
    pub fn entry_points(self) -> &'static [&'static str] {
        match self {
            Kernel::InputProjection => &["input_projection"],
            Kernel::InputProjectionDirect => &["input_projection_direct"],
            Kernel::GruStep | Kernel::GruStepVec4 | Kernel::GruSplit | Kernel::GruSplitSubgroup => {
                &[
                    "step_reset_after",
                    "gates_reset_before",
                    "candidate_reset_before",
                ]
            }
            Kernel::GruPersistent => &["persistent_reset_after", "persistent_reset_before"],
            Kernel::StreamState => &["gather_state", "scatter_state"],
            Kernel::TrainGemm => &["train_gemm", "train_gemm_direct"],
            Kernel::TrainGemmVec4 => &["train_gemm_direct"],
            Kernel::Optim => &["sum_squares", "norm_scale", "update"],
            Kernel::TrainHead => &["head_forward", "head_steps", "head_grad", "transpose"],
            Kernel::GruTrain | Kernel::GruTrainVec4 => &[
                "train_step_reset_after",
                "train_gates_reset_before",
                "train_candidate_reset_before",
                "grad_step_reset_after",
                "grad_gates_reset_before",
                "grad_candidate_reset_before",
                "train_persistent_reset_after",
                "train_persistent_reset_before",
                "grad_persistent_reset_after",
                "grad_persistent_reset_before",
            ],
        }
    }

    /// The `override` constants the crate sets on this file's pipelines.
    pub fn overrides(self) -> &'static [&'static str] {
        match self {
            Kernel::InputProjection
            | Kernel::StreamState
            | Kernel::TrainGemm
            | Kernel::TrainGemmVec4
            | Kernel::Optim
            | Kernel::TrainHead => &[],
            Kernel::InputProjectionDirect => &["VEC_K"],
            Kernel::GruStep | Kernel::GruStepVec4 => &["HIDDEN", "WG", "DIRECT", "VEC_H"],
            Kernel::GruPersistent => &["HIDDEN", "WG"],
            Kernel::GruSplit | Kernel::GruSplitSubgroup => &["HIDDEN"],
            Kernel::GruTrain | Kernel::GruTrainVec4 => &["HIDDEN", "LANES", "DIRECT"],
        }
    }

    /// Whether the kernel needs `Features::SUBGROUP` (subgroup builtins and operations).
    pub fn needs_subgroups(self) -> bool {
        self == Kernel::GruSplitSubgroup
    }
}
