//! The command line (clap): flags, their defaults, and the [`Options`] a run uses.

use clap::{Parser, ValueEnum};
use gru_wgpu::gpu::{KernelPath, StepKernel};
use gru_wgpu::{Convention, Dtype};

/// A positive integer (every count and size of the command line).
fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive integer, got {s:?}")),
    }
}

/// `--convention`: the GRU's reset-gate convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConventionArg {
    /// Reset after the recurrent matmul (`linear_before_reset = 1`, PyTorch, cuDNN).
    #[value(alias = "ra")]
    After,
    /// Reset before the recurrent matmul (ONNX's default).
    #[value(alias = "rb")]
    Before,
    /// Both conventions.
    Both,
}

/// `--path`: the GPU kernel path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PathArg {
    /// The library's automatic choice.
    Auto,
    /// One fused dispatch per step.
    Step,
    /// One persistent dispatch for the whole sequence.
    Persistent,
    /// Both paths.
    All,
}

/// `--dtype`: how the GPU stores weights and activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// 32-bit floats.
    F32,
    /// 16-bit floats (where the adapter has them).
    F16,
    /// Both dtypes.
    Both,
}

/// `--step-kernel`: the step-fused path's kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StepKernelArg {
    /// The library's automatic choice.
    Auto,
    /// The staged kernel.
    Staged,
    /// The direct kernel.
    Direct,
    /// The split kernel (subgroup reduction where the adapter has subgroups).
    Split,
    /// The split kernel with its reduction in workgroup memory.
    SplitWorkgroup,
    /// The staged and the direct kernel.
    Both,
    /// Every kernel: staged, direct, split, split-workgroup.
    All,
}

/// `--choose-as`: which kind of adapter the automatic choices (path, step kernel, GEMM)
/// are made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChooseAsArg {
    /// The adapter the run uses.
    Adapter,
    /// A discrete GPU, whatever the adapter is (e.g. to report on lavapipe the structure of
    /// what a GPU would run).
    Gpu,
    /// A CPU adapter.
    Cpu,
}

/// gru-bench: times gru-wgpu's GPU forward against its CPU reference over a grid of shapes
/// (the default), a session serving many streams (`--streaming`), or compares two JSON files
/// of rows (`--compare`). Always build with `--release`.
#[derive(Debug, Parser)]
#[command(name = "gru-bench", version)]
pub struct Cli {
    /// A small grid: H 64,256, B 1,16, T 50, 3 repeats (flags given explicitly win).
    #[arg(long)]
    quick: bool,
    /// Hidden sizes H (comma-separated) [default: 128,256,512,1024; 384 with --streaming].
    #[arg(long, value_delimiter = ',', value_parser = positive, value_name = "H,...")]
    hidden: Option<Vec<usize>>,
    /// Batch sizes B (comma-separated) [default: 1,4,16,64].
    #[arg(long, value_delimiter = ',', value_parser = positive, value_name = "B,...")]
    batch: Option<Vec<usize>>,
    /// Sequence lengths T (comma-separated) [default: 100].
    #[arg(long, value_delimiter = ',', value_parser = positive, value_name = "T,...")]
    seq_len: Option<Vec<usize>>,
    /// Input size I [default: H on the grid; 128 with --streaming].
    #[arg(long, value_parser = positive, value_name = "I")]
    input: Option<usize>,
    /// The reset-gate convention(s).
    #[arg(long, value_enum, default_value = "after")]
    convention: ConventionArg,
    /// The GPU kernel path(s).
    #[arg(long, value_enum, default_value = "auto")]
    path: PathArg,
    /// The dtype(s) the GPU stores.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DtypeArg,
    /// The step-fused path's kernel(s).
    #[arg(long, value_enum, default_value = "auto")]
    step_kernel: StepKernelArg,
    /// Make the automatic choices (path, step kernel, GEMM) as for this kind of adapter.
    #[arg(long, value_enum, default_value = "adapter")]
    choose_as: ChooseAsArg,
    /// Timed forwards per row [default: 5; 3 with --quick].
    #[arg(long, value_parser = positive, value_name = "N")]
    repeats: Option<usize>,
    /// Untimed forwards (or frames, with --streaming) before the timed ones.
    #[arg(long, default_value_t = 1, value_name = "N")]
    warmup: usize,
    /// Skip the CPU reference (no max error, no per-element check).
    #[arg(long)]
    no_cpu: bool,
    /// Write the rows to FILE as a JSON array (rewritten as each row finishes).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Draw µs per step against H to FILE.svg (grid only).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<String>,
    /// Time a GruSession serving many streams, one frame per stream per feed.
    #[arg(long, conflicts_with = "backward")]
    streaming: bool,
    /// Time training on the grid: the inference forward, the training forward (which keeps
    /// the reserve space) and the backward, per step, with the backward/forward ratio and the
    /// gradients' check against the f64 CPU reference.
    #[arg(long)]
    backward: bool,
    /// Time the whole training step (forward, head and loss, backward, RMSprop; one submit)
    /// on the grid [default grid: H 128,256,512, B 16,64, T 100; the article's model is
    /// --input 1 --hidden 100 --batch 128], per step and per epoch of --epoch-size sequences,
    /// beside the CPU reference step.
    #[arg(long, conflicts_with_all = ["backward", "streaming"])]
    train: bool,
    /// Time --repeats calls of a tiny forward (I = H = 8, B = 1, T = 1, PyTorch's output
    /// style) on the GPU and on the CPU reference, as `model(x)` of the Python package makes
    /// them: the baseline of benches/python_gru.py's per-call overhead.
    #[arg(long, conflicts_with_all = ["backward", "streaming", "train"])]
    call_overhead: bool,
    /// Sequences per epoch of --train (the epoch time is ⌈N/B⌉ steps).
    #[arg(long, value_parser = positive, default_value_t = 10000, value_name = "N")]
    epoch_size: usize,
    /// Stream counts of --streaming (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = positive, value_name = "N,...",
          default_value = "1,16,256,1024")]
    streams: Vec<usize>,
    /// Stacked GRU layers of --streaming.
    #[arg(long, value_parser = positive, default_value_t = 3, value_name = "L")]
    layers: usize,
    /// Timed frames of --streaming.
    #[arg(long, value_parser = positive, default_value_t = 20, value_name = "N")]
    frames: usize,
    /// Print, per shape, the fastest GPU path of OURS against THEIRS (e.g.
    /// benches/torch_gru.py's JSON) and the speed-up; takes no other flag.
    #[arg(long, num_args = 2, value_names = ["OURS", "THEIRS"], exclusive = true)]
    compare: Option<Vec<String>>,
}

/// What a grid or `--streaming` run measures.
pub struct Options {
    pub hidden: Vec<usize>,
    pub batch: Vec<usize>,
    pub seq_len: Vec<usize>,
    pub input: Option<usize>,
    pub conventions: Vec<Convention>,
    /// `None`: the automatic choice.
    pub paths: Vec<Option<KernelPath>>,
    pub repeats: usize,
    pub warmup: usize,
    pub cpu: bool,
    pub json: Option<String>,
    pub plot: Option<String>,
    pub dtypes: Vec<Dtype>,
    /// `None`: the automatic choice.
    pub step_kernels: Vec<Option<StepKernel>>,
    /// Make the automatic choices for this adapter type instead of the adapter's own.
    pub choose_as: Option<wgpu::DeviceType>,
    pub streaming: bool,
    pub backward: bool,
    pub train: bool,
    pub call_overhead: bool,
    pub epoch_size: usize,
    pub streams: Vec<usize>,
    pub layers: usize,
    pub frames: usize,
}

/// What the command line asks for.
pub enum Command {
    /// The grid, or `--streaming`.
    Run(Box<Options>),
    /// `--compare OURS THEIRS`.
    Compare { ours: String, theirs: String },
}

impl Cli {
    /// The command, with the defaults `--quick` and `--streaming` change filled in.
    pub fn command(self) -> Command {
        if let Some(files) = self.compare {
            let mut files = files.into_iter();
            return Command::Compare {
                ours: files.next().unwrap_or_default(),
                theirs: files.next().unwrap_or_default(),
            };
        }
        let quick = self.quick;
        let hidden = self
            .hidden
            .unwrap_or_else(|| match (self.streaming, quick) {
                (true, _) => vec![384],
                (false, true) => vec![64, 256],
                (false, false) if self.train => vec![128, 256, 512],
                (false, false) => vec![128, 256, 512, 1024],
            });
        let batch = self.batch.unwrap_or_else(|| {
            if self.train && !quick {
                vec![16, 64]
            } else if quick {
                vec![1, 16]
            } else {
                vec![1, 4, 16, 64]
            }
        });
        let seq_len = self
            .seq_len
            .unwrap_or_else(|| if quick { vec![50] } else { vec![100] });
        let repeats = self.repeats.unwrap_or(if quick { 3 } else { 5 });
        Command::Run(Box::new(Options {
            hidden,
            batch,
            seq_len,
            input: self.input,
            conventions: match self.convention {
                ConventionArg::After => vec![Convention::ResetAfter],
                ConventionArg::Before => vec![Convention::ResetBefore],
                ConventionArg::Both => vec![Convention::ResetAfter, Convention::ResetBefore],
            },
            paths: match self.path {
                PathArg::Auto => vec![None],
                PathArg::Step => vec![Some(KernelPath::StepFused)],
                PathArg::Persistent => vec![Some(KernelPath::Persistent)],
                PathArg::All => vec![Some(KernelPath::StepFused), Some(KernelPath::Persistent)],
            },
            repeats,
            warmup: self.warmup,
            cpu: !self.no_cpu,
            json: self.json,
            plot: self.plot,
            dtypes: match self.dtype {
                DtypeArg::F32 => vec![Dtype::F32],
                DtypeArg::F16 => vec![Dtype::F16],
                DtypeArg::Both => vec![Dtype::F32, Dtype::F16],
            },
            step_kernels: match self.step_kernel {
                StepKernelArg::Auto => vec![None],
                StepKernelArg::Staged => vec![Some(StepKernel::Staged)],
                StepKernelArg::Direct => vec![Some(StepKernel::Direct)],
                StepKernelArg::Split => vec![Some(StepKernel::Split)],
                StepKernelArg::SplitWorkgroup => vec![Some(StepKernel::SplitWorkgroup)],
                StepKernelArg::Both => vec![Some(StepKernel::Staged), Some(StepKernel::Direct)],
                StepKernelArg::All => vec![
                    Some(StepKernel::Staged),
                    Some(StepKernel::Direct),
                    Some(StepKernel::Split),
                    Some(StepKernel::SplitWorkgroup),
                ],
            },
            choose_as: match self.choose_as {
                ChooseAsArg::Adapter => None,
                ChooseAsArg::Gpu => Some(wgpu::DeviceType::DiscreteGpu),
                ChooseAsArg::Cpu => Some(wgpu::DeviceType::Cpu),
            },
            streaming: self.streaming,
            backward: self.backward,
            train: self.train,
            call_overhead: self.call_overhead,
            epoch_size: self.epoch_size,
            streams: self.streams,
            layers: self.layers,
            frames: self.frames,
        }))
    }
}
