//! Helpers shared by the integration tests: a seeded generator, the GPU context, and
//! comparisons that print seed, shape, worst index, got, expected and tolerance.
#![allow(dead_code)]

pub mod cli;

/// The repository's root (where `tests/data` is), from the root package's tests or from a
/// member crate's under `crates/`.
pub fn repo_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("tests/data").is_dir())
        .unwrap_or(manifest)
        .to_path_buf()
}

use std::sync::OnceLock;

use gru_wgpu::gpu::GpuContext;
use gru_wgpu::{Convention, GruWeights, Tolerance};

/// The seeded generator of the crate (SplitMix64).
pub use gru_wgpu::seeded::SplitMix64 as Rng;

/// Random weights; `scale` multiplies the usual 1/√H range.
pub fn random_weights(
    rng: &mut Rng,
    convention: Convention,
    i: usize,
    h: usize,
    scale: f32,
    bias: bool,
) -> GruWeights {
    let k = scale / (h as f32).sqrt();
    let w = rng.vec(3 * h * i, k);
    let r = rng.vec(3 * h * h, k);
    let b = bias.then(|| rng.vec(6 * h, k));
    GruWeights::new(convention, i, h, w, r, b).expect("valid random weights")
}

/// `w` with every weight rounded to `dtype` (what a model stored in `dtype` computes with).
pub fn round_weights(w: &GruWeights, dtype: gru_wgpu::Dtype) -> GruWeights {
    w.rounded_to(dtype)
}

/// `model` with every weight rounded to `dtype`.
pub fn round_model(model: &gru_wgpu::GruModel, dtype: gru_wgpu::Dtype) -> gru_wgpu::GruModel {
    model.rounded_to(dtype)
}

/// `v` rounded to `dtype`.
pub fn round_vec(v: &[f32], dtype: gru_wgpu::Dtype) -> Vec<f32> {
    v.iter().map(|&x| dtype.round(x)).collect()
}

/// The tolerance of a dtype against the f64 reference (onnxruntime's rules).
pub fn tolerance(dtype: gru_wgpu::Dtype) -> Tolerance {
    Tolerance::for_dtype(dtype)
}

/// The f64 reference of `model` on `input` as the GPU holds them in `dtype`: weights, X and
/// initial_h rounded to `dtype` (unchanged for f32).
pub fn rounded_reference(
    model: &gru_wgpu::GruModel,
    input: &gru_wgpu::GruInput<'_>,
    dtype: gru_wgpu::Dtype,
) -> gru_wgpu::GruOutput {
    let x = round_vec(input.x, dtype);
    let h0 = input.initial_h.map(|h| round_vec(h, dtype));
    let rounded = gru_wgpu::GruInput {
        x: &x,
        initial_h: h0.as_deref(),
        ..*input
    };
    gru_wgpu::cpu::forward_model(&model.rounded_to(dtype), &rounded)
        .unwrap_or_else(|e| panic!("cpu reference ({dtype:?}): {e}"))
}

/// Says on the process's real stderr that part of a test did not run. libtest captures
/// `eprintln!` and shows it only for failing tests; this line shows in a plain `cargo test`.
pub fn announce_skip(what: &str) {
    use std::io::Write as _;
    // libtest names each test's thread after the test. One write, so that lines of tests
    // running in parallel do not interleave.
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("SKIPPED in {test}: {what}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Whether `GRU_REQUIRE_GPU` asks for GPU tests to be required (anything but `0`, the default).
pub fn gpu_required() -> bool {
    std::env::var("GRU_REQUIRE_GPU").as_deref() != Ok("0")
}

/// The storage types the shared context can run: f32, and f16 where the adapter has
/// `SHADER_F16` (an adapter without it must refuse f16 with a typed error, checked in
/// tests/gpu/f16.rs).
///
/// With GPU tests required (`GRU_REQUIRE_GPU` unset or `1`), an adapter without
/// `SHADER_F16` fails the test instead of leaving f16 untested: lavapipe, CI's adapter, has
/// it. Set `GRU_ALLOW_NO_F16=1` to run on an adapter without it; every skipped f16 part is
/// then announced on stderr.
pub fn dtypes(ctx: &GpuContext) -> Vec<gru_wgpu::Dtype> {
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        return vec![gru_wgpu::Dtype::F32, gru_wgpu::Dtype::F16];
    }
    let allowed = std::env::var("GRU_ALLOW_NO_F16").as_deref() == Ok("1");
    assert!(
        allowed || !gpu_required(),
        "{}: the device has no SHADER_F16, so the f16 tests cannot run; set \
         GRU_ALLOW_NO_F16=1 to skip them on this adapter (each skip is announced)",
        ctx.describe()
    );
    announce_skip(&format!(
        "f16 part ({}: no SHADER_F16, GRU_ALLOW_NO_F16=1)",
        ctx.describe()
    ));
    vec![gru_wgpu::Dtype::F32]
}

/// The shared GPU context. No adapter is a failure, never a skip; set GRU_REQUIRE_GPU=0 to
/// let a machine without any adapter skip explicitly (the skip is printed).
pub fn gpu() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        // lavapipe runs each dispatch's workgroups on LP_NUM_THREADS worker threads (one per
        // core by default) and the harness runs tests on as many threads again: on a 2-core
        // machine a worker preempted by a test computing its CPU reference holds up every
        // dispatch, and a kernel of many small workgroups (the split step kernel: H per step)
        // then runs ~7× slower (parity:: 192 s against 27 s with one worker). One worker per
        // test process unless the caller chose; no other driver reads this variable. Set
        // before the first adapter is enumerated, which is when llvmpipe reads it.
        if std::env::var_os("LP_NUM_THREADS").is_none() {
            std::env::set_var("LP_NUM_THREADS", "1");
        }
        GpuContext::new().map_err(|e| e.to_string())
    });
    match ctx {
        Ok(c) => Some(c),
        Err(e) => {
            if !gpu_required() {
                announce_skip(&format!("GPU part (GRU_REQUIRE_GPU=0): {e}"));
                None
            } else {
                panic!(
                    "no GPU adapter ({e}); GPU tests fail without one. Install a Vulkan driver \
                     (apt-get install mesa-vulkan-drivers gives lavapipe), or set GRU_REQUIRE_GPU=0 \
                     to skip them explicitly"
                );
            }
        }
    }
}

/// A device of its own on the shared context's adapter, made with `options` (their
/// `adapter_name` is set here): for tests about one device (lowered limits, injected faults,
/// device loss, its kernel cache) that must not touch the shared context.
pub fn own_device(
    shared: &GpuContext,
    options: gru_wgpu::gpu::ContextOptions,
    what: &str,
) -> GpuContext {
    GpuContext::with_options(&gru_wgpu::gpu::ContextOptions {
        adapter_name: Some(shared.adapter_info().name.clone()),
        ..options
    })
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Asserts `got` matches `expected` within `tol`, printing the context on failure.
pub fn assert_close(context: &str, got: &[f32], expected: &[f32], tol: Tolerance) {
    let c = tol.compare(got, expected);
    assert!(c.passed(), "{context}: {c}");
}

/// One way the GPU runs a model: kernel path, step kernel and input-projection GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub path: gru_wgpu::gpu::KernelPath,
    pub step: gru_wgpu::gpu::StepKernel,
    pub gemm: gru_wgpu::gpu::GemmKernel,
}

impl Variant {
    /// Makes `model` run this way.
    pub fn apply(self, model: &mut gru_wgpu::gpu::GpuGru) {
        model.set_kernel_path(Some(self.path)).expect("kernel path");
        model.set_step_kernel(Some(self.step));
        model.set_gemm_kernel(Some(self.gemm));
    }

    /// Whether a model of hidden size `h` can run this way (the persistent path holds the
    /// state in one workgroup: H ≤ `PERSISTENT_MAX_HIDDEN`).
    pub fn applies_to(self, h: usize) -> bool {
        self.path != gru_wgpu::gpu::KernelPath::Persistent
            || h <= gru_wgpu::gpu::PERSISTENT_MAX_HIDDEN
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}/{:?}/{:?} GEMM", self.path, self.step, self.gemm)
    }
}

/// Every kernel variant the tests run, each step kernel and each GEMM at least once: the
/// step-fused path with the staged and the direct step kernel (each with the other GEMM), the
/// split kernel with its subgroup reduction (where the device has subgroups; lavapipe's
/// Vulkan adapter does) and with its workgroup-memory reduction, and the persistent path with
/// both GEMMs. **A new kernel variant is added here, and only here**:
/// every test that runs a model in every configuration gets it through [`variants`],
/// [`configs`] or [`each_gpu_config`].
pub const VARIANTS: [Variant; 6] = {
    use gru_wgpu::gpu::{GemmKernel, KernelPath, StepKernel};
    const fn v(path: KernelPath, step: StepKernel, gemm: GemmKernel) -> Variant {
        Variant { path, step, gemm }
    }
    [
        v(KernelPath::StepFused, StepKernel::Staged, GemmKernel::Tiled),
        v(
            KernelPath::StepFused,
            StepKernel::Direct,
            GemmKernel::Direct,
        ),
        v(KernelPath::StepFused, StepKernel::Split, GemmKernel::Tiled),
        v(
            KernelPath::StepFused,
            StepKernel::SplitWorkgroup,
            GemmKernel::Direct,
        ),
        v(
            KernelPath::Persistent,
            StepKernel::Staged,
            GemmKernel::Direct,
        ),
        v(
            KernelPath::Persistent,
            StepKernel::Staged,
            GemmKernel::Tiled,
        ),
    ]
};

/// The [`VARIANTS`] a model of hidden size `h` can run ([`Variant::applies_to`]), in order.
pub fn variants(h: usize) -> Vec<Variant> {
    VARIANTS.into_iter().filter(|v| v.applies_to(h)).collect()
}

/// The kernel paths a model of hidden size `h` can take (those of [`variants`], each once),
/// for tests of the path itself.
pub fn kernel_paths(h: usize) -> Vec<gru_wgpu::gpu::KernelPath> {
    let mut paths = Vec::new();
    for v in variants(h) {
        if !paths.contains(&v.path) {
            paths.push(v.path);
        }
    }
    paths
}

/// One configuration a GPU test runs a model in: storage type and kernel variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub dtype: gru_wgpu::Dtype,
    pub variant: Variant,
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.dtype, self.variant)
    }
}

/// Every configuration a model of hidden size `h` runs in on `ctx`, each once: every storage
/// type the context has ([`dtypes`]) × every [`variants`] of `h`, grouped by dtype (a test
/// builds its GPU model again when the dtype changes). The one generator of GPU test
/// configurations.
pub fn configs(ctx: &GpuContext, h: usize) -> Vec<Config> {
    dtypes(ctx)
        .into_iter()
        .flat_map(|dtype| {
            variants(h)
                .into_iter()
                .map(move |variant| Config { dtype, variant })
        })
        .collect()
}

/// The GPU model of `model` in `dtype` (no f32 fallback), outputs poisoned with NaN.
pub fn gpu_model(
    ctx: &GpuContext,
    model: &gru_wgpu::GruModel,
    dtype: gru_wgpu::Dtype,
) -> gru_wgpu::gpu::GpuGru {
    let options = gru_wgpu::gpu::ModelOptions {
        dtype,
        allow_f32_fallback: false,
    };
    let mut gpu = gru_wgpu::gpu::GpuGru::from_model_with(ctx, model, &options)
        .unwrap_or_else(|e| panic!("GpuGru::from_model_with ({dtype:?}): {e}"));
    gpu.set_poison(Some(f32::NAN));
    gpu
}

/// Runs `model` on the GPU in each of `configs` (grouped by dtype, as [`configs`] gives them),
/// its outputs poisoned with NaN before each run: `check` gets the configuration and the
/// model to run, built again only when the dtype changes ([`gpu_model`]) and set to the
/// configuration's variant.
pub fn each_config(
    ctx: &GpuContext,
    model: &gru_wgpu::GruModel,
    configs: impl IntoIterator<Item = Config>,
    mut check: impl FnMut(Config, &mut gru_wgpu::gpu::GpuGru),
) {
    let mut built: Option<(gru_wgpu::Dtype, gru_wgpu::gpu::GpuGru)> = None;
    for config in configs {
        if built.as_ref().map(|b| b.0) != Some(config.dtype) {
            built = Some((config.dtype, gpu_model(ctx, model, config.dtype)));
        }
        let gpu = &mut built.as_mut().expect("built above").1;
        config.variant.apply(gpu);
        check(config, gpu);
    }
}

/// Runs `model` on the GPU in every [`configs`] of its hidden size ([`each_config`]): `check`
/// gets the dtype, the variant and the model to run.
pub fn each_gpu_config(
    ctx: &GpuContext,
    model: &gru_wgpu::GruModel,
    mut check: impl FnMut(gru_wgpu::Dtype, Variant, &mut gru_wgpu::gpu::GpuGru),
) {
    each_config(ctx, model, configs(ctx, model.hidden_size()), |c, gpu| {
        check(c.dtype, c.variant, gpu)
    });
}

/// A value computed once per dtype while the configurations go by grouped by dtype: typically
/// the f64 reference on the weights and inputs rounded to it.
pub struct PerDtype<R>(Option<(gru_wgpu::Dtype, R)>);

impl<R> Default for PerDtype<R> {
    fn default() -> Self {
        PerDtype(None)
    }
}

impl<R> PerDtype<R> {
    /// The value of `dtype`: the one held if it is `dtype`'s, else `make(dtype)`.
    pub fn get(&mut self, dtype: gru_wgpu::Dtype, make: impl FnOnce(gru_wgpu::Dtype) -> R) -> &R {
        if self.0.as_ref().map(|v| v.0) != Some(dtype) {
            self.0 = Some((dtype, make(dtype)));
        }
        &self.0.as_ref().expect("made above").1
    }
}

/// A seeded random network and its input: the whole model surface (layers × directions ×
/// lengths × layout × output style × convention × clip, with or without `initial_h`).
#[derive(Clone, Debug)]
pub struct NetCase {
    pub seed: u64,
    pub convention: Convention,
    pub direction: gru_wgpu::Direction,
    pub layers: usize,
    pub i: usize,
    pub h: usize,
    pub t: usize,
    pub b: usize,
    pub layout: gru_wgpu::Layout,
    pub style: gru_wgpu::OutputStyle,
    pub clip: Option<f32>,
    pub lens: Option<Vec<i64>>,
    pub initial_h: bool,
    /// Scale of the weights (× the usual 1/√H range) and of X.
    pub weight_scale: f32,
    pub x_scale: f32,
}

/// What a [`NetCase`] draws from its seed: the network, X and an initial state for every
/// layer and direction (used when `initial_h` is set).
pub struct NetData {
    pub model: gru_wgpu::GruModel,
    pub x: Vec<f32>,
    pub h0: Vec<f32>,
}

impl NetCase {
    /// The network, X and initial state, drawn in that order from `Rng::new(seed)`.
    pub fn data(&self) -> NetData {
        let mut rng = Rng::new(self.seed);
        let d = self.direction.num_directions();
        let layers = (0..self.layers)
            .map(|k| {
                let input = if k == 0 { self.i } else { d * self.h };
                (0..d)
                    .map(|_| {
                        random_weights(
                            &mut rng,
                            self.convention,
                            input,
                            self.h,
                            self.weight_scale,
                            true,
                        )
                    })
                    .collect()
            })
            .collect();
        let model =
            gru_wgpu::GruModel::new(self.direction, layers, self.clip).expect("valid random model");
        let x = rng.vec(self.t * self.b * self.i, self.x_scale);
        let h0 = rng.vec(self.layers * d * self.b * self.h, 1.0);
        NetData { model, x, h0 }
    }

    /// The input of this case over `data`'s X and initial state.
    pub fn input<'a>(&'a self, data: &'a NetData) -> gru_wgpu::GruInput<'a> {
        let mut input = gru_wgpu::GruInput::new(&data.x, self.t, self.b)
            .with_layout(self.layout)
            .with_style(self.style);
        if self.initial_h {
            input = input.with_initial_h(&data.h0);
        }
        if let Some(lens) = &self.lens {
            input = input.with_sequence_lens(lens);
        }
        input
    }
}

/// The ranges [`NetCase::random`] draws from (each size uniform in `1..=max`).
#[derive(Clone, Copy, Debug)]
pub struct NetRanges {
    pub max_t: usize,
    pub max_b: usize,
    pub max_i: usize,
    pub max_h: usize,
    /// Clip (on a third of the cases): `clip_min + 2·k/100`, k in `0..100`.
    pub clip_min: f32,
    pub weight_scale: f32,
    pub x_scale: f32,
}

impl NetCase {
    /// A random case of the whole surface drawn from `rng` (recorded as `seed`): T, B, lengths
    /// (a third without; else entry 0 full, entry 1 anything including 0, the others ≥ 1),
    /// convention, direction, 1–3 layers, I, H, layout, output style, clip, initial_h.
    pub fn random(seed: u64, rng: &mut Rng, r: &NetRanges) -> NetCase {
        let t = 1 + rng.below(r.max_t);
        let b = 1 + rng.below(r.max_b);
        let lens = (rng.below(3) > 0).then(|| {
            (0..b)
                .map(|k| match k % 4 {
                    0 => t as i64,                // one full-length entry
                    1 => rng.below(t + 1) as i64, // anything, including 0
                    _ => 1 + rng.below(t) as i64,
                })
                .collect()
        });
        NetCase {
            seed,
            convention: [Convention::ResetAfter, Convention::ResetBefore][rng.below(2)],
            direction: [
                gru_wgpu::Direction::Forward,
                gru_wgpu::Direction::Reverse,
                gru_wgpu::Direction::Bidirectional,
            ][rng.below(3)],
            layers: 1 + rng.below(3),
            i: 1 + rng.below(r.max_i),
            h: 1 + rng.below(r.max_h),
            t,
            b,
            layout: [
                gru_wgpu::Layout::SequenceMajor,
                gru_wgpu::Layout::BatchMajor,
            ][rng.below(2)],
            style: [gru_wgpu::OutputStyle::Onnx, gru_wgpu::OutputStyle::PyTorch][rng.below(2)],
            clip: (rng.below(3) == 0).then(|| r.clip_min + 2.0 * rng.below(100) as f32 / 100.0),
            lens,
            initial_h: rng.below(2) == 0,
            weight_scale: r.weight_scale,
            x_scale: r.x_scale,
        }
    }
}

/// `[i0, i1, …]` of a flat row-major index into an array of `shape` (for failure messages).
pub fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut at = vec![0; shape.len()];
    for (a, &n) in at.iter_mut().zip(shape).rev() {
        *a = index % n.max(1);
        index /= n.max(1);
    }
    at
}

/// A `.npy` file laid out as `np.save` does, with any dtype and order.
pub fn raw_npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let pad = 64 - (10 + dict.len() + 1) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad));
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}
