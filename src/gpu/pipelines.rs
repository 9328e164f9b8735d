//! The pipelines one model dispatches, taken from its context's kernel cache: every
//! input-projection variant, every step-fused kernel of its convention, and the persistent
//! kernel where the hidden size and the device allow it.

use crate::dtype::Dtype;
use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{
    LayoutFamily, PERSISTENT_MAX_HIDDEN, PERSISTENT_WORKGROUP_BYTES, STEP_WG,
};
use crate::gpu::path::StepKernel;
use crate::shaders::Kernel;
use crate::weights::Convention;

/// The input-projection pipelines, one per [`GemmKernel`] variant.
#[derive(Clone)]
pub(super) struct GemmPipelines {
    /// `input_projection.wgsl`.
    pub(super) tiled: wgpu::ComputePipeline,
    /// `input_projection_direct.wgsl` with `VEC_K = false`.
    pub(super) direct: wgpu::ComputePipeline,
    /// `input_projection_direct.wgsl` with `VEC_K = true`: layers whose input width is a
    /// multiple of 4.
    pub(super) direct_vec_k: wgpu::ComputePipeline,
}

/// The step-fused pipelines of each [`StepKernel`]: one entry point per dispatch of a
/// step (one for reset-after, gates then candidate for reset-before).
#[derive(Clone)]
pub(super) struct StepPipelines {
    pub(super) staged: Vec<wgpu::ComputePipeline>,
    pub(super) direct: Vec<wgpu::ComputePipeline>,
    /// [`StepKernel::Split`]: `gru_split_subgroup.wgsl` where the device has
    /// `Features::SUBGROUP` (`split_subgroups`), else the same pipelines as
    /// `split_workgroup`.
    pub(super) split: Vec<wgpu::ComputePipeline>,
    pub(super) split_workgroup: Vec<wgpu::ComputePipeline>,
    pub(super) split_subgroups: bool,
}

impl StepPipelines {
    /// The pipelines of `kernel`, in dispatch order.
    pub(super) fn get(&self, kernel: StepKernel) -> &[wgpu::ComputePipeline] {
        match kernel {
            StepKernel::Staged => &self.staged,
            StepKernel::Direct => &self.direct,
            StepKernel::Split => &self.split,
            StepKernel::SplitWorkgroup => &self.split_workgroup,
        }
    }
}

/// Everything a model dispatches, with the layouts its bind groups follow.
#[derive(Clone)]
pub(super) struct ModelPipelines {
    /// The input-projection kernels' bind-group layout.
    pub(super) gemm_layout: wgpu::BindGroupLayout,
    /// The recurrent kernels' bind-group layout.
    pub(super) step_layout: wgpu::BindGroupLayout,
    pub(super) gemms: GemmPipelines,
    pub(super) steps: StepPipelines,
    /// The persistent kernel and its workgroup size, where `H ≤ PERSISTENT_MAX_HIDDEN` and
    /// the device has its workgroup memory.
    pub(super) persistent: Option<(wgpu::ComputePipeline, u32)>,
    /// How many of these pipelines the kernel cache had to create (its misses).
    pub(super) created: usize,
}

impl ModelPipelines {
    /// The pipelines of a model of hidden size `h`, storage type `dtype` and `convention`.
    pub(super) fn build(
        ctx: &GpuContext,
        dtype: Dtype,
        h: usize,
        convention: Convention,
    ) -> Result<Self> {
        let (device, kernels) = (ctx.device(), ctx.kernels());
        let gemm_layout = kernels.bind_group_layout(device, LayoutFamily::Gemm)?;
        let step_layout = kernels.bind_group_layout(device, LayoutFamily::Step)?;
        let mut created = 0;
        let mut pipeline =
            |kernel: Kernel, entry: &'static str, constants: &[(&'static str, f64)]| {
                let (p, miss) = kernels.pipeline(device, kernel, dtype, entry, constants)?;
                created += miss as usize;
                Ok::<_, crate::error::GruError>(p)
            };
        let gemms = GemmPipelines {
            tiled: pipeline(Kernel::InputProjection, "input_projection", &[])?,
            direct: pipeline(
                Kernel::InputProjectionDirect,
                "input_projection_direct",
                &[("VEC_K", 0.0)],
            )?,
            direct_vec_k: pipeline(
                Kernel::InputProjectionDirect,
                "input_projection_direct",
                &[("VEC_K", 1.0)],
            )?,
        };
        // [staged, direct]: the DIRECT override of gru_step.wgsl; the direct kernel reads the
        // state four units at a time (VEC_H, through the vec4 view of the state bindings)
        // when H is a multiple of 4.
        let vec_h = h.is_multiple_of(4);
        let step_constants = |direct: bool| {
            [
                ("HIDDEN", h as f64),
                ("WG", STEP_WG as f64),
                ("DIRECT", direct as u8 as f64),
                ("VEC_H", (direct && vec_h) as u8 as f64),
            ]
        };
        let entries: &[&'static str] = match convention {
            Convention::ResetAfter => &["step_reset_after"],
            Convention::ResetBefore => &["gates_reset_before", "candidate_reset_before"],
        };
        let mut step_variant = |direct: bool| {
            let kernel = if direct && vec_h {
                Kernel::GruStepVec4
            } else {
                Kernel::GruStep
            };
            entries
                .iter()
                .map(|e| pipeline(kernel, e, &step_constants(direct)))
                .collect::<Result<Vec<_>>>()
        };
        let staged = step_variant(false)?;
        let direct = step_variant(true)?;
        // The split kernel: R row-major, one workgroup per hidden unit; its lanes' sums added
        // by subgroup operations where the device has them.
        let split_constants = [("HIDDEN", h as f64)];
        let mut split_variant = |kernel: Kernel| {
            entries
                .iter()
                .map(|e| pipeline(kernel, e, &split_constants))
                .collect::<Result<Vec<_>>>()
        };
        let split_workgroup = split_variant(Kernel::GruSplit)?;
        // A device with SUBGROUP whose compiler still refuses the subgroup kernel (a browser
        // without the `subgroup_id` builtin, say) gets the workgroup-memory kernel, which
        // computes the same sums; the refusal is not cached, nor is it an error of the model.
        let subgroup_kernel = device
            .features()
            .contains(wgpu::Features::SUBGROUP)
            .then(|| split_variant(Kernel::GruSplitSubgroup).ok())
            .flatten();
        let split_subgroups = subgroup_kernel.is_some();
        let split = subgroup_kernel.unwrap_or_else(|| split_workgroup.clone());
        let steps = StepPipelines {
            staged,
            direct,
            split,
            split_workgroup,
            split_subgroups,
        };
        let persistent = if h <= PERSISTENT_MAX_HIDDEN
            && ctx.limits().max_compute_workgroup_storage_size >= PERSISTENT_WORKGROUP_BYTES
        {
            let wg = (h as u32).next_multiple_of(32).clamp(32, 256);
            let entry = match convention {
                Convention::ResetAfter => "persistent_reset_after",
                Convention::ResetBefore => "persistent_reset_before",
            };
            let constants = [("HIDDEN", h as f64), ("WG", wg as f64)];
            Some((pipeline(Kernel::GruPersistent, entry, &constants)?, wg))
        } else {
            None
        };
        Ok(ModelPipelines {
            gemm_layout,
            step_layout,
            gemms,
            steps,
            persistent,
            created,
        })
    }
}
