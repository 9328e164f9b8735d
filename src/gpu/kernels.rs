//! The kernels on the device: the constants the WGSL files are written for, and the kernel
//! cache every [`GpuContext`](crate::gpu::GpuContext) owns.
//!
//! The cache holds one shader module per (kernel, storage type), one bind-group layout per
//! layout family (input projection, recurrence, stream state) and one compute pipeline per
//! (kernel, storage type, entry point, `override` constants); every model and session of a
//! context takes its pipelines from it, so `gru_step.wgsl` is compiled once per storage type
//! and a second model of the same shape compiles nothing. A creation the device refuses is
//! reported ([`GruError::Gpu`]) and not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::dtype::Dtype;
use crate::error::Result;
use crate::gpu::errors::{caught, gpu_error};
use crate::gpu::params::{
    params_entry, step_entry, storage_entry, uniform_entry, GEMM_PARAMS, HEAD_PARAMS, LAYER_PARAMS,
    OPTIM_PARAMS, TRAIN_GEMM_PARAMS,
};
use crate::shaders::Kernel;

/// Invocations per workgroup of the step kernels (`WG` override of `gru_step.wgsl`).
pub(super) const STEP_WG: u32 = 64;
/// Batch entries per step invocation (`NB` in `gru_step.wgsl`), and per workgroup of the
/// split kernel (`SPLIT_NB` in `gru_split.wgsl`).
pub(super) const STEP_NB: u32 = 4;
/// Lanes per workgroup of the split step kernel, all on one hidden unit (`SPLIT_WG` in
/// `gru_split.wgsl`).
pub(super) const SPLIT_WG: u32 = 64;
/// State units each lane of the split kernel reads per loop trip (`SPLIT_UNROLL`).
pub(super) const SPLIT_UNROLL: u32 = 4;
/// Workgroup memory the split kernel declares (`red` in `gru_split.wgsl`).
pub(super) const SPLIT_WORKGROUP_BYTES: u32 = 3 * SPLIT_WG * 16;
/// Output tile of the input-projection GEMM (`TILE` in `input_projection.wgsl`).
pub(super) const GEMM_TILE: u32 = 64;
/// Most K columns one GEMM dispatch walks: keeps every invocation's loop trips below
/// lavapipe's silent 65535 cap (REFERENCES.md §6); larger inputs are split over dispatches.
pub(super) const GEMM_MAX_K: u32 = 16384;
/// Storage buffers the step kernels bind.
pub(super) const STEP_STORAGE_BUFFERS: u32 = 8;
/// Largest hidden size: the step kernels loop H times per invocation (REFERENCES.md §6).
pub const MAX_HIDDEN: usize = 32768;
/// Largest hidden size of the persistent path (`PMAX` in `gru_persistent.wgsl`).
pub const PERSISTENT_MAX_HIDDEN: usize = 256;
/// Workgroup memory the persistent kernels declare (`buf` in `gru_persistent.wgsl`).
pub(super) const PERSISTENT_WORKGROUP_BYTES: u32 = 768 * 16;
/// Loop trips one persistent dispatch may spend per invocation: half of lavapipe's silent
/// 65535 cap (REFERENCES.md §6). It also keeps each dispatch short (a few ms on any GPU).
pub(super) const PERSISTENT_LOOP_BUDGET: usize = 32768;

/// The bind-group layout families: every pipeline of a family binds the same resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum LayoutFamily {
    /// The input-projection kernels: X, Wᵀ, Wb, XP, GEMM params (dynamic offset).
    Gemm,
    /// The recurrent kernels: XP, Rᵀ+Rb, initial state, Y, gates, lengths, Y_h, step params
    /// (dynamic offset), layer params.
    Step,
    /// `stream_state.wgsl`: session state, layer state, slots, params.
    StreamState,
    /// `train_gemm.wgsl`: A, B, bias, C, GEMM params (dynamic offset).
    TrainGemm,
    /// `gru_train.wgsl`: src, R, hs, reserve, outs, layer params and lengths, carry, step
    /// params (dynamic offset).
    TrainStep,
    /// `optim.wgsl`: parameters, gradients, optimizer state, partial sums and clip factor,
    /// optimizer params (dynamic offset).
    Optim,
    /// `train_head.wgsl`: features or source, head, targets, carry or destination, work,
    /// head params (dynamic offset).
    TrainHead,
}

impl LayoutFamily {
    /// The family of `kernel`'s pipelines.
    fn of(kernel: Kernel) -> Self {
        match kernel {
            Kernel::InputProjection | Kernel::InputProjectionDirect => LayoutFamily::Gemm,
            Kernel::GruStep
            | Kernel::GruStepVec4
            | Kernel::GruPersistent
            | Kernel::GruSplit
            | Kernel::GruSplitSubgroup => LayoutFamily::Step,
            Kernel::StreamState => LayoutFamily::StreamState,
            Kernel::TrainGemm | Kernel::TrainGemmVec4 => LayoutFamily::TrainGemm,
            Kernel::GruTrain | Kernel::GruTrainVec4 => LayoutFamily::TrainStep,
            Kernel::Optim => LayoutFamily::Optim,
            Kernel::TrainHead => LayoutFamily::TrainHead,
        }
    }

    fn label(self) -> &'static str {
        match self {
            LayoutFamily::Gemm => "input_projection layout",
            LayoutFamily::Step => "gru_step layout",
            LayoutFamily::StreamState => "stream_state layout",
            LayoutFamily::TrainGemm => "train_gemm layout",
            LayoutFamily::TrainStep => "gru_train layout",
            LayoutFamily::Optim => "optim layout",
            LayoutFamily::TrainHead => "train_head layout",
        }
    }

    fn entries(self) -> Vec<wgpu::BindGroupLayoutEntry> {
        match self {
            LayoutFamily::Gemm => vec![
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                uniform_entry(4, GEMM_PARAMS as u64, true),
            ],
            LayoutFamily::Step => vec![
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                storage_entry(4, false),
                storage_entry(5, true),
                storage_entry(6, false),
                step_entry(7),
                uniform_entry(8, LAYER_PARAMS as u64, false),
            ],
            LayoutFamily::StreamState => vec![
                storage_entry(0, false),
                storage_entry(1, false),
                storage_entry(2, true),
                storage_entry(3, true),
            ],
            LayoutFamily::TrainGemm => vec![
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                uniform_entry(4, TRAIN_GEMM_PARAMS as u64, true),
            ],
            LayoutFamily::TrainStep => vec![
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, false),
                storage_entry(3, false),
                storage_entry(4, false),
                storage_entry(5, true),
                storage_entry(6, false),
                step_entry(7),
            ],
            LayoutFamily::Optim => vec![
                storage_entry(0, false),
                storage_entry(1, true),
                storage_entry(2, false),
                storage_entry(3, false),
                params_entry(4, OPTIM_PARAMS),
            ],
            LayoutFamily::TrainHead => vec![
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                storage_entry(4, false),
                params_entry(5, HEAD_PARAMS),
            ],
        }
    }
}

/// A pipeline of the cache: the kernel file, storage type, entry point and `override`
/// constants (values by their bits, so that the key is `Eq`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    kernel: Kernel,
    dtype: Dtype,
    entry: &'static str,
    overrides: Vec<(&'static str, u64)>,
}

/// What a context's kernel cache has compiled and served (see
/// [`GpuContext::kernel_stats`](crate::gpu::GpuContext::kernel_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Shader modules created: at most one per (kernel, storage type).
    pub modules_compiled: usize,
    /// Compute pipelines created (cache misses).
    pub pipelines_created: usize,
    /// Pipeline requests served from the cache (hits).
    pub pipeline_hits: usize,
}

#[derive(Default)]
struct Entries {
    modules: HashMap<(Kernel, Dtype), wgpu::ShaderModule>,
    layouts: HashMap<LayoutFamily, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    pipelines: HashMap<PipelineKey, wgpu::ComputePipeline>,
    stats: KernelStats,
}

/// The kernel cache of a context: shareable between threads (clones share one cache).
#[derive(Clone, Default)]
pub(crate) struct KernelCache(Arc<Mutex<Entries>>);

impl std::fmt::Debug for KernelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KernelCache").field(&self.stats()).finish()
    }
}

impl KernelCache {
    /// The entries, also after a thread panicked while holding them (every entry in the maps
    /// is complete: nothing is inserted half-built).
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the cache has compiled and served so far.
    pub(crate) fn stats(&self) -> KernelStats {
        self.lock().stats
    }

    /// The bind-group layout of `family`'s pipelines, created on first use.
    pub(super) fn bind_group_layout(
        &self,
        device: &wgpu::Device,
        family: LayoutFamily,
    ) -> Result<wgpu::BindGroupLayout> {
        let mut entries = self.lock();
        Ok(layouts(&mut entries, device, family)?.0.clone())
    }

    /// The pipeline of `kernel`'s `entry` for storage type `dtype` with `overrides`, and
    /// whether this call created it (a cache miss). Creating the module or the pipeline runs
    /// in error scopes of its own: an error is returned, nothing is cached, and the caller's
    /// scopes see nothing.
    pub(super) fn pipeline(
        &self,
        device: &wgpu::Device,
        kernel: Kernel,
        dtype: Dtype,
        entry: &'static str,
        overrides: &[(&'static str, f64)],
    ) -> Result<(wgpu::ComputePipeline, bool)> {
        let key = PipelineKey {
            kernel,
            dtype,
            entry,
            overrides: overrides.iter().map(|&(n, v)| (n, v.to_bits())).collect(),
        };
        let mut entries = self.lock();
        if let Some(p) = entries.pipelines.get(&key) {
            let p = p.clone();
            entries.stats.pipeline_hits += 1;
            return Ok((p, false));
        }
        let module = match entries.modules.get(&(kernel, dtype)) {
            Some(m) => m.clone(),
            None => {
                let (module, error) = caught(device, || {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(kernel.file_name()),
                        source: wgpu::ShaderSource::Wgsl(kernel.source(dtype).into()),
                    })
                });
                if let Some(e) = error {
                    return Err(gpu_error(
                        &format!("compiling {} ({dtype:?})", kernel.file_name()),
                        e,
                    ));
                }
                entries.modules.insert((kernel, dtype), module.clone());
                entries.stats.modules_compiled += 1;
                module
            }
        };
        let layout = layouts(&mut entries, device, LayoutFamily::of(kernel))?
            .1
            .clone();
        let (pipeline, error) = caught(device, || {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: overrides,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        });
        if let Some(e) = error {
            return Err(gpu_error(&format!("creating pipeline {entry}"), e));
        }
        entries.pipelines.insert(key, pipeline.clone());
        entries.stats.pipelines_created += 1;
        Ok((pipeline, true))
    }
}

/// The layouts of `family` in `entries`, created (in error scopes of their own) on first use.
fn layouts<'a>(
    entries: &'a mut Entries,
    device: &wgpu::Device,
    family: LayoutFamily,
) -> Result<&'a (wgpu::BindGroupLayout, wgpu::PipelineLayout)> {
    let vacant = match entries.layouts.entry(family) {
        std::collections::hash_map::Entry::Occupied(made) => return Ok(made.into_mut()),
        std::collections::hash_map::Entry::Vacant(vacant) => vacant,
    };
    let (made, error) = caught(device, || {
        let group = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(family.label()),
            entries: &family.entries(),
        });
        let pipeline = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(family.label()),
            bind_group_layouts: &[Some(&group)],
            immediate_size: 0,
        });
        (group, pipeline)
    });
    if let Some(e) = error {
        return Err(gpu_error(&format!("creating the {}", family.label()), e));
    }
    Ok(vacant.insert(made))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GruError;

    /// A pipeline the device refuses (an `override` the kernel does not declare) is a
    /// `GruError::Gpu` with wgpu's error as its source, and is not cached: the same request
    /// fails again, and a valid one afterwards is created and then served from the cache.
    #[test]
    fn a_refused_pipeline_is_reported_and_not_cached() {
        let Some(ctx) = own_context("a_refused_pipeline_is_reported_and_not_cached") else {
            return;
        };
        let (device, kernels) = (ctx.device(), ctx.kernels());
        let bad = [("NO_SUCH_OVERRIDE", 1.0)];
        for attempt in 0..2 {
            let refused = kernels.pipeline(
                device,
                Kernel::StreamState,
                Dtype::F32,
                "gather_state",
                &bad,
            );
            let Err(GruError::Gpu {
                operation, source, ..
            }) = refused
            else {
                panic!("attempt {attempt}: expected GruError::Gpu, got {refused:?}");
            };
            assert!(operation.contains("gather_state"), "{operation}");
            assert!(source.is_some(), "wgpu's error is kept as the source");
            assert_eq!(kernels.stats().pipelines_created, 0, "nothing cached");
        }
        for expect_created in [true, false] {
            let (_, created) = kernels
                .pipeline(device, Kernel::StreamState, Dtype::F32, "gather_state", &[])
                .expect("a valid pipeline");
            assert_eq!(created, expect_created);
        }
        let stats = kernels.stats();
        assert_eq!(
            (
                stats.modules_compiled,
                stats.pipelines_created,
                stats.pipeline_hits
            ),
            (1, 1, 1)
        );
        assert!(ctx.check_lost().is_ok());
    }

    use crate::gpu::context::test_context as own_context;

    /// Reset-after weights with `I = 3`, `H = 8`, a value pattern and no bias.
    fn weights() -> crate::weights::GruWeights {
        let (i, h) = (3, 8);
        let value = |n: usize| ((n * 7919) % 13) as f32 / 13.0 - 0.5;
        crate::weights::GruWeights::new(
            crate::weights::Convention::ResetAfter,
            i,
            h,
            (0..3 * h * i).map(value).collect(),
            (0..3 * h * h).map(value).collect(),
            None,
        )
        .expect("valid weights")
    }

    /// Eight threads build the same model on one fresh context at once: the kernel files are
    /// compiled once (the six or seven modules of an f32 model with `H = 8`), every pipeline is
    /// created once (by whichever model asked first), the models' `pipelines_created` add up
    /// to the context's misses and every other request was a hit.
    #[test]
    fn concurrent_models_compile_each_kernel_once() {
        let Some(ctx) = own_context("concurrent_models_compile_each_kernel_once") else {
            return;
        };
        let weights = weights();
        let created: Vec<usize> = std::thread::scope(|scope| {
            let builds: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| crate::gpu::GpuGru::new(&ctx, &weights)))
                .collect();
            builds
                .into_iter()
                .map(|b| {
                    let model = b.join().expect("no panic").expect("model");
                    model.stats().pipelines_created
                })
                .collect()
        });
        let stats = ctx.kernel_stats();
        let subgroups = ctx.device().features().contains(wgpu::Features::SUBGROUP);
        assert_eq!(stats.modules_compiled, 6 + subgroups as usize, "{stats:?}");
        assert_eq!(created.iter().sum::<usize>(), stats.pipelines_created);
        assert_eq!(
            stats.pipeline_hits,
            7 * stats.pipelines_created,
            "{stats:?}"
        );
    }

    /// `gru_step.wgsl` and the other kernel files are compiled once per storage type: an f16
    /// model after an f32 one compiles the same files again for f16, a second f16 model
    /// compiles nothing. Skipped on devices without `SHADER_F16`.
    #[test]
    fn each_kernel_is_compiled_once_per_storage_type() {
        let Some(ctx) = own_context("each_kernel_is_compiled_once_per_storage_type") else {
            return;
        };
        if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
            eprintln!("SKIPPED each_kernel_is_compiled_once_per_storage_type: no SHADER_F16");
            return;
        }
        let model = crate::model::GruModel::from(weights());
        let build = |dtype| {
            let options = crate::gpu::ModelOptions {
                dtype,
                allow_f32_fallback: false,
            };
            crate::gpu::GpuGru::from_model_with(&ctx, &model, &options).expect("model")
        };
        let f32_model = build(Dtype::F32);
        let after_f32 = ctx.kernel_stats();
        let f16_model = build(Dtype::F16);
        let after_f16 = ctx.kernel_stats();
        assert_eq!(f16_model.dtype(), Dtype::F16);
        assert_eq!(after_f16.modules_compiled, 2 * after_f32.modules_compiled);
        assert_eq!(
            f16_model.stats().pipelines_created,
            f32_model.stats().pipelines_created
        );
        let again = build(Dtype::F16);
        assert_eq!(again.stats().pipelines_created, 0);
        assert_eq!(
            ctx.kernel_stats().modules_compiled,
            after_f16.modules_compiled
        );
    }
}
