//! Which kernels a forward runs: the recurrence path and the GEMM and step kernel variants,
//! chosen by the caller or automatically from the adapter.

use crate::gpu::kernels::PERSISTENT_MAX_HIDDEN;

/// How the recurrence of each layer is dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// One dispatch per timestep (two for reset-before), each spread over `⌈H/64⌉ × ⌈B/4⌉ × D`
    /// workgroups: any H, and the most parallel work per step.
    StepFused,
    /// One dispatch per chunk of timesteps; a workgroup keeps four batch entries' state in
    /// workgroup memory and loops over the chunk. H ≤ [`PERSISTENT_MAX_HIDDEN`]. Saves the
    /// per-dispatch cost when one step is little work (small H).
    Persistent,
}

/// Which kernel computes the input projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmKernel {
    /// `input_projection.wgsl`: 64×64 output tiles staged through workgroup memory. GPUs.
    Tiled,
    /// `input_projection_direct.wgsl`: 8 rows × 4 columns of registers per invocation streamed
    /// straight from memory, no workgroup memory or barriers; X is read four columns at a
    /// time where the layer's input width is a multiple of 4. CPU adapters (lavapipe), where
    /// workgroup memory and barriers are slow.
    Direct,
}

/// How the step-fused kernels read the previous state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKernel {
    /// Staged through workgroup memory in chunks of 64 units, every load of the state shared
    /// by the workgroup's 64 invocations. GPUs.
    Staged = 0,
    /// Each invocation reads the state straight from memory (four units at a time when H is
    /// a multiple of 4): no workgroup memory and no barriers. CPU adapters (lavapipe), where
    /// barriers are expensive: 1.4–1.6× faster there at H = 384–512, level at H ≤ 128, and up
    /// to 1.5–1.7× more with the four-unit reads (BENCHMARKS.md).
    Direct = 1,
}

/// The step kernel for an adapter: [`StepKernel::Direct`] on CPU adapters,
/// [`StepKernel::Staged`] elsewhere.
pub fn auto_step_kernel(info: &wgpu::AdapterInfo) -> StepKernel {
    if info.device_type == wgpu::DeviceType::Cpu {
        StepKernel::Direct
    } else {
        StepKernel::Staged
    }
}

/// The input-projection kernel for an adapter: [`GemmKernel::Direct`] on CPU adapters,
/// [`GemmKernel::Tiled`] elsewhere (BENCHMARKS.md has the lavapipe measurements).
pub fn auto_gemm_kernel(info: &wgpu::AdapterInfo) -> GemmKernel {
    if info.device_type == wgpu::DeviceType::Cpu {
        GemmKernel::Direct
    } else {
        GemmKernel::Tiled
    }
}

/// The path [`GpuGru`](crate::gpu::GpuGru) takes for a batch of `batch` entries when the caller has not chosen
/// one.
///
/// Heuristic, from lavapipe measurements (BENCHMARKS.md, 2026-11-27): on a CPU adapter the
/// persistent path is 1.2–3× faster for H ≤ 64, and for H ≤ 256 once there are ≥ 8 entries
/// (then enough workgroups exist to fill the cores); at B = 1 and H ≥ 128 the step-fused path
/// wins, because it spreads a step over ⌈H/64⌉ workgroups. On other adapters a dispatch
/// costs microseconds, more than one step of a small layer: persistent for H ≤ 128. That
/// threshold is provisional until measured on discrete GPUs.
pub fn auto_kernel_path(info: &wgpu::AdapterInfo, hidden_size: usize, batch: usize) -> KernelPath {
    let persistent = if info.device_type == wgpu::DeviceType::Cpu {
        hidden_size <= 64 || (hidden_size <= PERSISTENT_MAX_HIDDEN && batch >= 8)
    } else {
        hidden_size <= 128
    };
    if persistent {
        KernelPath::Persistent
    } else {
        KernelPath::StepFused
    }
}
