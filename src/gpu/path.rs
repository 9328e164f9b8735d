//! Which kernels a forward runs: the recurrence path and the GEMM and step kernel variants,
//! chosen by the caller or automatically from the adapter.

use crate::gpu::kernels::{PERSISTENT_MAX_HIDDEN, SPLIT_UNROLL, SPLIT_WG, STEP_NB, STEP_WG};
use crate::weights::Convention;

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

/// The kernel of the step-fused path: how one timestep's recurrent products `R_g · h` are
/// spread over invocations. Every variant fuses the three gate products, the activations and
/// the blend into one dispatch per step (two for reset-before), and computes the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKernel {
    /// Invocation `j` owns hidden unit `j` of four entries and walks all `H` state units,
    /// the state staged through workgroup memory in chunks of 64 units (`Rᵀ` layout):
    /// `⌈H/64⌉·⌈B/4⌉·D` workgroups of 64 per step, `H` loop trips each.
    Staged = 0,
    /// As [`StepKernel::Staged`], but each invocation reads the state straight from memory
    /// (four units at a time when H is a multiple of 4): no workgroup memory and no barriers.
    /// CPU adapters (lavapipe), where barriers are expensive: 1.4–1.6× faster there at
    /// H = 384–512, level at H ≤ 128, and up to 1.5–1.7× more with the four-unit reads
    /// (BENCHMARKS.md).
    Direct = 1,
    /// One workgroup of 64 lanes per hidden unit and group of four entries: the lanes split
    /// the `H` state units of the unit's three rows of `R` (row-major layout, coalesced along
    /// K), then add their partial sums with `subgroupAdd` where the device has
    /// `Features::SUBGROUP`, else in workgroup memory. `H·⌈B/4⌉·D` workgroups per step,
    /// `⌈H/256⌉` loop trips plus the reduction's. GPUs at small batch, where the other
    /// kernels leave most of the chip idle (BENCHMARKS.md, "Step structure").
    Split = 2,
    /// [`StepKernel::Split`] with the partial sums always added in workgroup memory (as on a
    /// device without subgroups), whatever the device has.
    SplitWorkgroup = 3,
}

/// The step kernel for an adapter: [`StepKernel::Direct`] on CPU adapters,
/// [`StepKernel::Split`] elsewhere.
///
/// On a GPU a step's time follows the parallel work it exposes (REFERENCES.md §8): the
/// staged kernel gives a step `⌈H/64⌉·⌈B/4⌉` workgroups whose invocations each walk `H`
/// state units, 512 invocations with 512-trip loops at H = 512, B = 1, on a chip with
/// ~17 000 lanes; the split kernel gives the same step 512 workgroups of 64 lanes with 2
/// trips each, and the same bytes of `R` read once per group of four entries. From B ≈ 64
/// on either kernel fills a large GPU and both read `R` ⌈B/4⌉ times per step; the split
/// kernel's reduction then costs a few barriers more per workgroup, against a serial loop
/// 256× shorter, so it stays the choice at every batch. Provisional until measured on a GPU
/// (`benches/gpu_compare.sh`).
pub fn auto_step_kernel(info: &wgpu::AdapterInfo) -> StepKernel {
    if info.device_type == wgpu::DeviceType::Cpu {
        StepKernel::Direct
    } else {
        StepKernel::Split
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
/// wins, because it spreads a step over ⌈H/64⌉ workgroups.
///
/// On other adapters, by the structure of the work: the persistent path runs a step of a
/// group of four entries on one workgroup, so one SM streams the step's `3H²` weights
/// (48 KiB in f32 at H = 64, 192 KiB at H = 128) at its own share of L2 bandwidth, about
/// 64 bytes a clock: ≈ 0.4 µs a step at H = 64, ≈ 1.5 µs at H = 128 on a 2 GHz part. A
/// step-fused step costs at least one dispatch and the barrier after it, 1–3 µs through
/// Vulkan, however little work it has, but spreads the weights over the whole chip
/// ([`StepKernel::Split`]). So: persistent for H ≤ 64, where one SM's loop beats a
/// dispatch, step-fused above. Provisional until measured on a GPU
/// (`benches/gpu_compare.sh`).
pub fn auto_kernel_path(info: &wgpu::AdapterInfo, hidden_size: usize, batch: usize) -> KernelPath {
    let persistent = if info.device_type == wgpu::DeviceType::Cpu {
        hidden_size <= 64 || (hidden_size <= PERSISTENT_MAX_HIDDEN && batch >= 8)
    } else {
        hidden_size <= 64
    };
    if persistent {
        KernelPath::Persistent
    } else {
        KernelPath::StepFused
    }
}

/// The recurrent kernel a forward runs, resolved: what [`StepStructure`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recurrence {
    /// [`StepKernel::Staged`].
    Staged,
    /// [`StepKernel::Direct`], reading four state units at a time when `vec_h`.
    Direct { vec_h: bool },
    /// [`StepKernel::Split`] or [`StepKernel::SplitWorkgroup`]; `subgroups` when the partial
    /// sums are added with `subgroupAdd` on subgroups of at least `subgroup_min` lanes;
    /// `groups_x` workgroups in x (H, or the device's most, each then taking several units).
    Split {
        subgroups: bool,
        subgroup_min: u32,
        groups_x: u32,
    },
    /// [`KernelPath::Persistent`]: `wg` invocations per workgroup, `steps` timesteps per
    /// dispatch.
    Persistent { wg: u32, steps: usize },
}

impl Recurrence {
    /// Workgroups `[x, y, z]` of one step dispatch (one persistent dispatch) for `h` hidden
    /// units, `batch` entries and `n_dir` directions.
    pub(crate) fn grid(self, h: usize, batch: usize, n_dir: usize) -> [u32; 3] {
        let groups_b = (batch as u32).div_ceil(STEP_NB);
        let n_dir = n_dir as u32;
        match self {
            Recurrence::Staged | Recurrence::Direct { .. } => {
                [(h as u32).div_ceil(STEP_WG), groups_b, n_dir]
            }
            Recurrence::Split { groups_x, .. } => {
                [groups_x.clamp(1, h.max(1) as u32), groups_b, n_dir]
            }
            Recurrence::Persistent { .. } => [groups_b, n_dir, 1],
        }
    }

    /// The parallel structure of one timestep of a layer (see [`StepStructure`]).
    pub(crate) fn structure(
        self,
        convention: Convention,
        h: usize,
        batch: usize,
        n_dir: usize,
    ) -> StepStructure {
        let h = h as u64;
        let per_step = match convention {
            Convention::ResetAfter => 1,
            Convention::ResetBefore => 2,
        };
        let [x, y, z] = self.grid(h as usize, batch, n_dir);
        let workgroups = x as u64 * y as u64 * z as u64;
        let (kernel, dispatches, lanes, longest_loop) = match self {
            // Per chunk of 64 units: one staging trip, then up to 64 units.
            Recurrence::Staged => ("staged", per_step as f64, STEP_WG, h + h.div_ceil(64)),
            Recurrence::Direct { vec_h } => (
                "direct",
                per_step as f64,
                STEP_WG,
                if vec_h { h / 4 } else { h },
            ),
            Recurrence::Split {
                subgroups,
                subgroup_min,
                ..
            } => {
                // Units per workgroup (1 unless the device dispatches fewer than H).
                let units = h.div_ceil(x.max(1) as u64);
                let trips = h.div_ceil((SPLIT_WG * SPLIT_UNROLL) as u64);
                let (name, reduce) = if subgroups {
                    // The first lane of a gate adds the other subgroups' sums.
                    let count = SPLIT_WG.div_ceil(subgroup_min.clamp(1, SPLIT_WG)) as u64;
                    ("split-subgroup", count - 1)
                } else {
                    ("split-workgroup", SPLIT_WG.ilog2() as u64)
                };
                (name, per_step as f64, SPLIT_WG, units * (trips + reduce))
            }
            // Invocation lid owns units lid, lid + wg, …: each a dot product over H, once per
            // step for reset-after, twice for reset-before (z, r, then the candidate).
            Recurrence::Persistent { wg, steps } => (
                "persistent",
                1.0 / steps.max(1) as f64,
                wg,
                per_step * h.div_ceil(wg as u64) * h,
            ),
        };
        StepStructure {
            kernel,
            dispatches_per_step: dispatches,
            workgroups,
            invocations: workgroups * lanes as u64,
            longest_loop,
        }
    }
}

/// The parallel structure of one timestep of one layer on the GPU: what a GPU's step time
/// follows (REFERENCES.md §8), independent of the adapter's speed. gru-bench prints it for
/// every configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStructure {
    /// The kernel that runs: `staged`, `direct`, `split-subgroup`, `split-workgroup` or
    /// `persistent`.
    pub kernel: &'static str,
    /// Dispatches per timestep: 1 (reset-after) or 2 (reset-before) on the step-fused path;
    /// on the persistent path `1 / steps per dispatch`.
    pub dispatches_per_step: f64,
    /// Workgroups of one dispatch: the independent work the GPU can spread over its SMs.
    pub workgroups: u64,
    /// Invocations (lanes) of one dispatch.
    pub invocations: u64,
    /// Trips of the longest serial loop one invocation runs per timestep (per dispatch of a
    /// step; per step of a persistent dispatch), counting the reduction's rounds.
    pub longest_loop: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPLIT: Recurrence = Recurrence::Split {
        subgroups: false,
        subgroup_min: 0,
        groups_x: 65535,
    };

    /// The targets of issue 13 at B = 1, H ∈ {256, 512, 1024}: at least 16 · 3H invocations
    /// per step and a longest loop of at most H/16 + 16 trips, with either reduction (the
    /// subgroup one on 8-lane subgroups, as lavapipe's, and 32-lane ones, as NVIDIA's); at
    /// B = 16, at least 128 workgroups per step. The staged kernel meets none of them.
    #[test]
    fn split_kernel_meets_the_small_batch_targets() {
        let kernels = [
            SPLIT,
            Recurrence::Split {
                subgroups: true,
                subgroup_min: 8,
                groups_x: 65535,
            },
            Recurrence::Split {
                subgroups: true,
                subgroup_min: 32,
                groups_x: 65535,
            },
        ];
        for convention in [Convention::ResetAfter, Convention::ResetBefore] {
            for h in [256u64, 512, 1024] {
                for kernel in kernels {
                    let one = kernel.structure(convention, h as usize, 1, 1);
                    assert!(one.invocations >= 16 * 3 * h, "H={h} {one:?}");
                    assert!(one.longest_loop <= h / 16 + 16, "H={h} {one:?}");
                    let sixteen = kernel.structure(convention, h as usize, 16, 1);
                    assert!(sixteen.workgroups >= 128, "H={h} B=16 {sixteen:?}");
                }
                let staged = Recurrence::Staged.structure(convention, h as usize, 1, 1);
                assert!(staged.invocations < 16 * 3 * h, "{staged:?}");
                assert!(staged.longest_loop > h / 16 + 16, "{staged:?}");
            }
        }
    }

    /// The structure follows the grid the encoder dispatches: H = 300, B = 9, two directions.
    #[test]
    fn structure_counts_the_dispatched_grid() {
        let c = Convention::ResetBefore;
        let split = SPLIT.structure(c, 300, 9, 2);
        assert_eq!(SPLIT.grid(300, 9, 2), [300, 3, 2]);
        assert_eq!(
            (
                split.workgroups,
                split.invocations,
                split.dispatches_per_step
            ),
            (1800, 1800 * 64, 2.0)
        );
        assert_eq!(split.longest_loop, 2 + 6);
        // A device that dispatches at most 100 workgroups in x: three units per workgroup.
        let few = Recurrence::Split {
            subgroups: true,
            subgroup_min: 32,
            groups_x: 100,
        };
        assert_eq!(few.grid(300, 9, 2), [100, 3, 2]);
        assert_eq!(few.structure(c, 300, 9, 2).longest_loop, 3 * (2 + 1));
        let staged = Recurrence::Staged.structure(c, 300, 9, 2);
        assert_eq!(
            (staged.workgroups, staged.longest_loop),
            (5 * 3 * 2, 300 + 5)
        );
        let p = Recurrence::Persistent { wg: 96, steps: 10 };
        let persistent = p.structure(c, 96, 9, 1);
        assert_eq!(p.grid(96, 9, 1), [3, 1, 1]);
        assert_eq!((persistent.workgroups, persistent.invocations), (3, 3 * 96));
        assert!((persistent.dispatches_per_step - 0.1).abs() < 1e-12);
        assert_eq!(persistent.longest_loop, 2 * 96);
    }

    fn info(device_type: wgpu::DeviceType) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo::new(device_type, wgpu::Backend::Noop)
    }

    /// GPU adapters get the split kernel and the persistent path only for H ≤ 64; CPU
    /// adapters keep the kernels tuned for them.
    #[test]
    fn gpu_adapters_choose_the_split_kernel() {
        for t in [
            wgpu::DeviceType::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu,
            wgpu::DeviceType::Other,
        ] {
            assert_eq!(auto_step_kernel(&info(t)), StepKernel::Split, "{t:?}");
            assert_eq!(auto_kernel_path(&info(t), 64, 1), KernelPath::Persistent);
            assert_eq!(auto_kernel_path(&info(t), 128, 1), KernelPath::StepFused);
            assert_eq!(auto_kernel_path(&info(t), 128, 64), KernelPath::StepFused);
        }
        let cpu = info(wgpu::DeviceType::Cpu);
        assert_eq!(auto_step_kernel(&cpu), StepKernel::Direct);
        assert_eq!(auto_kernel_path(&cpu, 128, 8), KernelPath::Persistent);
    }
}
