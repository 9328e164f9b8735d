//! The `#[repr(C)]` parameter structs the kernels read (their sizes come from `size_of`),
//! and the bind-group layout entries and bindings built from them.

use crate::dtype::Dtype;
use crate::error::{GruError, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct GemmParams {
    pub(super) m: u32,
    pub(super) n: u32,
    pub(super) k: u32,
    pub(super) row_offset: u32,
    pub(super) k_begin: u32,
    pub(super) k_end: u32,
    pub(super) accumulate: u32,
    pub(super) n_stride: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct StepParams {
    pub(super) s: u32,
    pub(super) s_end: u32,
    pub(super) _pad: [u32; 2],
}

/// `LayerParams` of `gru_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct LayerParams {
    pub(super) batch: u32,
    pub(super) seq_len: u32,
    pub(super) batch_major: u32,
    pub(super) reverse_mask: u32,
    pub(super) y_t: u32,
    pub(super) y_d: u32,
    pub(super) y_b: u32,
    pub(super) state_base: u32,
    pub(super) st_ld: u32,
    pub(super) st_b: u32,
    pub(super) xp_width: u32,
    pub(super) rb_offset: u32,
    pub(super) has_clip: u32,
    pub(super) clip: f32,
    pub(super) _pad: [u32; 2],
}

/// `TrainGemmParams` of `train_gemm.wgsl`: `C[m, n] (+)= Σ_k A(m, k) · B(k, n) + bias[n]`
/// with every operand addressed by an offset and two strides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct TrainGemmParams {
    pub(super) m: u32,
    pub(super) n: u32,
    pub(super) k_begin: u32,
    pub(super) k_end: u32,
    pub(super) a_off: u32,
    pub(super) a_sm: u32,
    pub(super) a_sk: u32,
    pub(super) b_off: u32,
    pub(super) b_sk: u32,
    pub(super) b_sn: u32,
    pub(super) c_off: u32,
    pub(super) c_sm: u32,
    pub(super) c_sn: u32,
    pub(super) has_bias: u32,
    pub(super) accumulate: u32,
    pub(super) _pad: u32,
}

/// The header of `TrainMeta` in `gru_train.wgsl` (the entries' lengths follow it in the same
/// read-only storage buffer).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct TrainLayerParams {
    pub(super) batch: u32,
    pub(super) seq_len: u32,
    pub(super) reverse_mask: u32,
    pub(super) has_clip: u32,
    pub(super) clip: f32,
    pub(super) n_dir: u32,
    pub(super) rb_offset: u32,
    pub(super) gh_base: u32,
    pub(super) carry_base: u32,
    /// 1 unless the piece of a sequence split over time starts after `t = 0`.
    pub(super) from_start: u32,
    pub(super) _pad: [u32; 2],
}

/// Bytes of [`TrainGemmParams`].
pub(super) const TRAIN_GEMM_PARAMS: usize = std::mem::size_of::<TrainGemmParams>();

/// Bytes of [`GemmParams`] (`Params` of the input-projection kernels).
pub(super) const GEMM_PARAMS: usize = std::mem::size_of::<GemmParams>();
/// `OptimParams` of `optim.wgsl` (field meanings there).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct OptimParams {
    pub(super) n: u32,
    pub(super) kind: u32,
    pub(super) flags: u32,
    pub(super) partial_base: u32,
    pub(super) lr: f32,
    pub(super) a: f32,
    pub(super) b: f32,
    pub(super) c: f32,
    pub(super) d: f32,
    pub(super) step_size: f32,
    pub(super) bc2_sqrt: f32,
    pub(super) clip: f32,
    pub(super) partials: u32,
    pub(super) scale_at: u32,
    pub(super) _pad: [u32; 2],
}

/// `HeadParams` of `train_head.wgsl` (field meanings there).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct HeadParams {
    pub(super) n: u32,
    pub(super) first: u32,
    pub(super) features: u32,
    pub(super) outputs: u32,
    pub(super) hidden: u32,
    pub(super) steps: u32,
    pub(super) carry_base: u32,
    pub(super) loss: u32,
    pub(super) scale: f32,
    pub(super) total: u32,
    pub(super) rows: u32,
    pub(super) cols: u32,
    pub(super) src_off: u32,
    pub(super) dst_off: u32,
    pub(super) dst_stride: u32,
    pub(super) lens_at: u32,
    pub(super) seq_len: u32,
    pub(super) t0: u32,
    pub(super) _pad: [u32; 2],
}

/// Bytes of [`HeadParams`].
pub(super) const HEAD_PARAMS: usize = std::mem::size_of::<HeadParams>();
/// Bytes of [`OptimParams`].
pub(super) const OPTIM_PARAMS: usize = std::mem::size_of::<OptimParams>();
/// Bytes of [`StepParams`].
pub(super) const STEP_PARAMS: usize = std::mem::size_of::<StepParams>();
/// Bytes of [`LayerParams`].
pub(super) const LAYER_PARAMS: usize = std::mem::size_of::<LayerParams>();
/// Bytes of the largest parameter struct: the least stride of one parameter slot.
pub(super) const PARAMS_SLOT: usize = {
    let sizes = [
        GEMM_PARAMS,
        STEP_PARAMS,
        LAYER_PARAMS,
        TRAIN_GEMM_PARAMS,
        OPTIM_PARAMS,
        HEAD_PARAMS,
    ];
    let mut most = 0;
    let mut i = 0;
    while i < sizes.len() {
        if sizes[i] > most {
            most = sizes[i];
        }
        i += 1;
    }
    most
};

pub(super) fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

pub(super) fn uniform_entry(binding: u32, size: u64, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: wgpu::BufferSize::new(size),
        },
        count: None,
    }
}

/// The per-step parameters: read-only storage with a dynamic offset. Not a uniform buffer:
/// lavapipe specialises (recompiles) a shader for the values of small uniforms that steer
/// control flow, which would compile one shader variant per timestep.
pub(super) fn step_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    params_entry(binding, STEP_PARAMS)
}

/// Parameters of `size` bytes in read-only storage with a dynamic offset (as [`step_entry`]).
pub(super) fn params_entry(binding: u32, size: usize) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(size as u64),
        },
        count: None,
    }
}

pub(super) fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}

pub(super) fn uniform_binding(
    buffer: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: wgpu::BufferSize::new(size),
    })
}

pub(super) fn bytes_of(what: &str, elements: usize, dtype: Dtype) -> Result<u64> {
    (elements as u64)
        .checked_mul(dtype.size() as u64)
        .ok_or_else(|| GruError::invalid(what, "a byte size that fits in u64", elements))
}
