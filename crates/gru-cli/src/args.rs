//! The command line's arguments: clap's derive parsers for `gru run`, `gru grad`, `gru inspect`
//! and `gru info`, and clap's errors turned into the one-line `gru: …` usage messages (exit 2).
//!
//! clap expresses what it can: the required flags, `--model` against the weight-array flags
//! (`conflicts_with_all`), a flag given twice, the values of `--device` and `--direction`, and
//! the checks of each value (`--clip` positive, `--layout 0|1`, …). What needs two flags'
//! values together (`--dtype f16` with `--device cpu`, `--y` naming the same file as `--y-h`
//! or as an input, `gru grad` without any output) is checked after it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand, ValueEnum};

use gru_wgpu::io::ImportOptions;
use gru_wgpu::{Convention, Direction, Dtype, Layout};

use crate::train::{EvaluateFlags, PredictFlags, TrainFlags};
use crate::{CliResult, Failure};

/// The text of `gru --help`.
pub const USAGE: &str = "\
gru: GRU inference through wgpu, with PyTorch's, Keras's and ONNX's semantics (gate order z, r, h)

Usage:
  gru run --model MODEL --x X.npy [--initial-h H0.npy] [--sequence-lens L.npy]
          [--batch-first] [--keras-reset-after true|false] [--prefix P]
          [--device auto|gpu|cpu] [--dtype f32|f16] --y Y.npy --y-h Y_H.npy
  gru run --x X.npy --w W.npy --r R.npy [--b B.npy] [--initial-h H0.npy]
          [--sequence-lens L.npy] [--direction forward|reverse|bidirectional]
          [--layout 0|1] [--clip C] [--linear-before-reset]
          [--device auto|gpu|cpu] [--dtype f32|f16] --y Y.npy --y-h Y_H.npy
  gru grad --model MODEL --x X.npy [--initial-h H0.npy] [--sequence-lens L.npy]
           [--batch-first] [--keras-reset-after true|false] [--prefix P]
           [--device auto|gpu|cpu] --dy DY.npy [--dy-h DY_H.npy]
           [--dx DX.npy] [--dh0 DH0.npy] [--grads FILE]
  gru grad --x X.npy --w W.npy --r R.npy [--b B.npy] [--initial-h H0.npy]
           [--sequence-lens L.npy] [--direction forward|reverse|bidirectional]
           [--layout 0|1] [--clip C] [--linear-before-reset] [--device auto|gpu|cpu]
           --dy DY.npy [--dy-h DY_H.npy] [--dx DX.npy] [--dh0 DH0.npy]
           [--dw DW.npy] [--dr DR.npy] [--db DB.npy] [--grads FILE]
  gru train --x X.npy --labels Y.npy (--hidden H [--layers N] [--bidirectional]
            [--convention reset-after|reset-before] | --from MODEL [--new-head])
            [--head sigmoid|softmax|linear|sequence] [--classes K] [--lens L.npy]
            [--val-x X.npy --val-labels Y.npy [--val-lens L.npy] | --validation-split F]
            [--epochs 10] [--batch-size 32] [--optimizer rmsprop|adam|adamw|sgd] [--lr LR]
            [--momentum M] [--nesterov] [--centered] [--weight-decay W]
            [--clip-norm C | --clip-value C]
            [--init keras|pytorch] [--seed S] [--no-shuffle] [--skip-non-finite]
            [--log METRICS.jsonl [--log-steps]] [--plot CURVES.svg]
            [--checkpoint-every N] [--checkpoint FILE] [--resume]
            [--device auto|gpu|cpu] [--quiet]
            --out MODEL.safetensors|MODEL.npz|MODEL.onnx
  gru evaluate --model MODEL --x X.npy --labels Y.npy [--lens L.npy] [--head H]
               [--batch-size 128] [--device auto|gpu|cpu]
  gru predict --model MODEL --x X.npy [--lens L.npy] [--head H] [--batch-size 128]
              [--device auto|gpu|cpu] --out P.npy
  gru inspect MODEL [--keras-reset-after true|false] [--prefix P]
  gru info
  gru help | gru --help

gru run --model MODEL: the file's contents say which framework it is from, and every array
has that framework's shapes (T steps, B batch, I inputs, H units, L layers, D directions):
  ONNX (.onnx, a graph of one GRU node; layout from its layout attribute):
    X [T, B, I] (layout 0) or [B, T, I] (layout 1); initial_h [D, B, H] or [B, D, H];
    Y [T, D, B, H] or [B, T, D, H]; Y_h [D, B, H] or [B, D, H]
  PyTorch (.safetensors of an nn.GRU state_dict: weight_ih_l0, … optionally under a prefix):
    input [T, B, I], or [B, T, I] with --batch-first; h0 [L*D, B, H];
    output [T, B, D*H], or [B, T, D*H] with --batch-first; h_n [L*D, B, H]
    --prefix P picks the GRU whose names start with P when the file holds several
  Keras (.npz or .safetensors with kernel, recurrent_kernel, bias; batch-major always):
    x [B, T, I]; initial state [B, H]; y [B, T, H] (return_sequences); last state [B, H]
    --keras-reset-after true|false: needed when the file has no bias; otherwise the bias
    shape decides it ((3H,) False, (2, 3H) True) and a value given must agree

gru run with weight arrays: ONNX's GRU shapes, D = 2 for bidirectional, else 1:
  --x X.npy              X [T, B, I] (layout 0, the default) or [B, T, I] (--layout 1)
  --w W.npy              W [D, 3*hidden_size, input_size]
  --r R.npy              R [D, 3*hidden_size, hidden_size] (hidden_size is read from R)
  --b B.npy              B [D, 6*hidden_size] = [Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h]
                         (optional; zeros when absent)
  --initial-h H0.npy     initial_h [D, B, H] ([B, D, H] for layout 1; optional: zeros)
  --direction D          forward (default), reverse or bidirectional
  --layout 0|1           0: sequence-major (default), 1: batch-major
  --clip C               ONNX's clip: every gate pre-activation is clamped to [-C, C] (C > 0)
  --linear-before-reset  ONNX linear_before_reset=1 (PyTorch, cuDNN, Keras reset_after=True);
                         without it, linear_before_reset=0 (the ONNX default)
  --y Y.npy              output Y [T, D, B, H] ([B, T, D, H] for layout 1), float32
  --y-h Y_H.npy          output Y_h [D, B, H] ([B, D, H] for layout 1), float32

Both forms:
  --sequence-lens L.npy  lengths [B], each in 0..=T (integers, or floats holding whole
                         numbers): Y is zero past an entry's length and Y_h is its last valid
                         state (ONNX, PyTorch packed sequences); not for Keras models
  --device D             auto (default): the GPU, else the CPU reference path;
                         gpu: the GPU or an error; cpu: the CPU reference path
  --dtype T              f32 (default) or f16: how the GPU stores weights and activations
                         (f16 needs the adapter's SHADER_F16; math stays f32; the CPU
                         reference path is always f64). Outputs are float32 either way
  Inputs are float32 or float64 (converted to float32) arrays in C order, as np.save writes
  them. `--flag=value` works too.

gru grad: the gradients of a loss L through the GRU (backpropagation through time), given
dL/dY and dL/dY_h. It reads what `gru run` reads, with the same flags and shapes, computes on
the GPU in f32 (on the CPU reference path in f64; --dtype f16 is refused: gradients are f32)
and writes float32 arrays:
  --dy DY.npy            dL/dY, in the shape `gru run` writes Y (required)
  --dy-h DY_H.npy        dL/dY_h, in the shape `gru run` writes Y_h (optional: zeros)
  --dx DX.npy            output dL/dX, in X's shape
  --dh0 DH0.npy          output dL/d(initial state), in its shape (the zero state's when
                         --initial-h is absent)
  --dw DW.npy            output dL/dW [D, 3*hidden_size, input_size]   (weight arrays only)
  --dr DR.npy            output dL/dR [D, 3*hidden_size, hidden_size]  (weight arrays only)
  --db DB.npy            output dL/dB [D, 6*hidden_size]               (weight arrays only)
  --grads FILE           output: every weight gradient under the names and in the shapes of
                         the model's own weights: PyTorch: a .safetensors state_dict
                         (weight_ih_l0, ..., bias_hh_l0_reverse, under the file's prefix; no
                         bias tensors for bias=False); Keras: kernel, recurrent_kernel and bias
                         (when the file has one) in the model file's container (.npz or
                         .safetensors); ONNX model or weight arrays: W, R, B in ONNX's shapes,
                         an .npz (a .safetensors file when FILE ends in .safetensors)
  At least one output is required. Every output is written only once all are computed.

gru train: trains a GRU with a dense head on its final state (Keras's fit): on the GPU, one
submit per step (forward, head and loss, backward, clipping, optimizer), else on the CPU
reference path (f64). Arrays are .npy files or members of an .npz archive (FILE.npz:NAME),
float or integer:
  --x X.npy              sequences [N, T, I] (or [N, T]: one feature), batch-major
  --labels Y.npy         [N]: 0/1 for --head sigmoid (the default: Dense(1) -> sigmoid, binary
                         cross-entropy from the logit), class indices for --head softmax
                         (Dense(K) -> softmax, cross-entropy; K from --classes or the labels),
                         targets [N] or [N, out] for --head linear (mean squared error),
                         targets [N, T] or [N, T, out] for --head sequence (Dense on every
                         step's output, mean squared error over the steps within each length)
  --lens L.npy           sequence lengths [N] (default: every sequence is T steps; padded
                         sequences without lengths run over their padding, as Keras does)
  --validation-split F   the last fraction F of the data validates (Keras's rule)
  --epochs, --batch-size batches of a shuffled epoch (seeded by --seed; --no-shuffle keeps the
                         order), the last one partial
  --optimizer            rmsprop (the default: Keras's defaults, lr 1e-3, rho 0.9, epsilon 1e-7),
                         adam, adamw (PyTorch's defaults), sgd (lr 0.01); --momentum (sgd,
                         rmsprop), --nesterov (sgd), --centered (rmsprop), --weight-decay
  --clip-norm C          clip the gradients' global norm (PyTorch's clip_grad_norm_)
  --init                 keras (glorot_uniform, orthogonal, zero bias) or pytorch (U(+-1/sqrt H))
  --from MODEL           fine-tune a model file (any the importers read; its convention kept;
                         its head too unless --new-head or it has none)
  --out MODEL            .safetensors: a PyTorch state_dict (gru.weight_ih_l0, ..., head.weight,
                         head.bias); .npz: Keras weights (kernel, recurrent_kernel, bias,
                         dense_kernel, dense_bias); .onnx: an ONNX GRU node (without the head)
  --log FILE             one JSON line per epoch (loss, accuracy, val_loss, val_accuracy,
                         seconds, steps, entries), and per step with --log-steps
  --plot FILE            the loss and accuracy per epoch (training, validation) as an SVG
  --checkpoint-every N   every N epochs, write a checkpoint (parameters, optimizer state,
                         epoch, metrics) to --checkpoint FILE (default: --out's name with
                         .checkpoint.safetensors), through a temporary file renamed into place
  --resume               go on from the checkpoint (the network is the checkpoint's; --epochs
                         is the total): the same model as a run that was never stopped
  --skip-non-finite      skip a step whose loss or gradients are not finite (default: stop,
                         naming the step; the parameters are those before it)
  Progress goes to stderr as Keras prints it (loss, accuracy, steps/s, ETA).

gru evaluate: prints the loss and accuracy of a model file with a dense head (as --out writes)
on X and labels; gru predict writes the head's outputs [N, out] (probabilities for sigmoid
and softmax heads). --head defaults to sigmoid for one output and softmax for more.

gru inspect: prints what a model file holds: format, convention, layers, directions, sizes,
parameter count, the shapes `gru run` expects, and an ONNX node's attributes and inputs.

gru info: lists the adapters wgpu sees, with the limits and features that matter here.

Environment: WGPU_BACKEND (vulkan, metal, dx12, gl), WGPU_ADAPTER_NAME (a substring of the
adapter name) and WGPU_POWER_PREF (low, high) choose the adapter of `gru run` and `gru grad`.
Exit status: 0 success, 1 error (files, shapes, device), 2 usage error.
";

/// What a command line asks for.
pub enum Invocation {
    /// `gru run …`.
    Run(RunArgs),
    /// `gru grad …`.
    Grad(GradArgs),
    /// `gru train …`.
    Train(TrainArgs),
    /// `gru evaluate …`.
    Evaluate(EvaluateArgs),
    /// `gru predict …`.
    Predict(PredictArgs),
    /// `gru inspect …`.
    Inspect(InspectArgs),
    /// `gru info`.
    Info,
    /// `gru`, `gru help`, `--help` anywhere: print [`USAGE`].
    Help,
    /// `gru --version`.
    Version,
}

/// Where `gru run` runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeviceChoice {
    /// The GPU, else the CPU reference path (saying why on stderr).
    #[default]
    Auto,
    /// The GPU or an error.
    Gpu,
    /// The CPU reference path.
    Cpu,
}

/// Where the weights come from.
pub(crate) enum Source {
    /// A model file (`--model`).
    Model {
        path: PathBuf,
        batch_first: bool,
        keras_reset_after: Option<bool>,
        prefix: Option<String>,
    },
    /// ONNX-shaped arrays.
    Arrays {
        w: PathBuf,
        r: PathBuf,
        b: Option<PathBuf>,
        convention: Convention,
        direction: Direction,
        layout: Layout,
        clip: Option<f32>,
    },
}

/// The network and the inputs `gru run` and `gru grad` both read, and where they compute.
pub(crate) struct InputArgs {
    pub(crate) source: Source,
    pub(crate) x: PathBuf,
    pub(crate) initial_h: Option<PathBuf>,
    pub(crate) sequence_lens: Option<PathBuf>,
    pub(crate) device: DeviceChoice,
    pub(crate) dtype: Dtype,
}

/// The arguments of `gru run`, parsed and checked against each other (not yet against the
/// files).
pub struct RunArgs {
    pub(crate) input: InputArgs,
    pub(crate) y: PathBuf,
    pub(crate) y_h: PathBuf,
}

/// The files `gru grad` writes (at least one is given).
#[derive(Default)]
pub(crate) struct GradOutputs {
    pub(crate) dx: Option<PathBuf>,
    pub(crate) dh0: Option<PathBuf>,
    pub(crate) dw: Option<PathBuf>,
    pub(crate) dr: Option<PathBuf>,
    pub(crate) db: Option<PathBuf>,
    pub(crate) grads: Option<PathBuf>,
}

impl GradOutputs {
    /// Every output given, with its flag.
    pub(crate) fn given(&self) -> Vec<(&'static str, &Path)> {
        [
            ("--dx", &self.dx),
            ("--dh0", &self.dh0),
            ("--dw", &self.dw),
            ("--dr", &self.dr),
            ("--db", &self.db),
            ("--grads", &self.grads),
        ]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect()
    }
}

/// The arguments of `gru grad`, parsed and checked against each other (not yet against the
/// files).
pub struct GradArgs {
    pub(crate) input: InputArgs,
    pub(crate) dy: PathBuf,
    pub(crate) dy_h: Option<PathBuf>,
    pub(crate) outputs: GradOutputs,
}

/// The arguments of `gru train` as parsed (checked against the files when it runs).
pub struct TrainArgs(pub(crate) TrainFlags);

/// The arguments of `gru evaluate` as parsed.
pub struct EvaluateArgs(pub(crate) EvaluateFlags);

/// The arguments of `gru predict` as parsed.
pub struct PredictArgs(pub(crate) PredictFlags);

/// The arguments of `gru inspect`.
pub struct InspectArgs {
    pub(crate) path: PathBuf,
    pub(crate) options: ImportOptions,
}

#[derive(Parser, Debug)]
#[command(name = "gru", version, arg_required_else_help = true)]
struct Gru {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(RunFlags),
    Grad(GradFlags),
    Train(TrainFlags),
    Evaluate(EvaluateFlags),
    Predict(PredictFlags),
    Inspect(InspectFlags),
    Info,
}

/// The flags `gru run` and `gru grad` share as given: the network, its inputs and the device;
/// see [`USAGE`]. Multi-word flags also take `_` (`--initial_h`).
#[derive(Args, Debug)]
struct InputFlags {
    #[arg(long, conflicts_with_all = [
        "w", "r", "b", "direction", "layout", "clip", "linear_before_reset",
    ])]
    model: Option<PathBuf>,
    #[arg(long)]
    x: PathBuf,
    #[arg(long, required_unless_present = "model")]
    w: Option<PathBuf>,
    #[arg(long, required_unless_present = "model")]
    r: Option<PathBuf>,
    #[arg(long)]
    b: Option<PathBuf>,
    #[arg(long, alias = "initial_h")]
    initial_h: Option<PathBuf>,
    #[arg(long, alias = "sequence_lens")]
    sequence_lens: Option<PathBuf>,
    #[arg(long)]
    direction: Option<DirectionArg>,
    #[arg(long, value_parser = layout)]
    layout: Option<Layout>,
    #[arg(long, value_parser = clip, allow_negative_numbers = true)]
    clip: Option<f32>,
    #[arg(long, alias = "linear_before_reset")]
    linear_before_reset: bool,
    #[arg(long, alias = "batch_first")]
    batch_first: bool,
    #[arg(long, alias = "keras_reset_after", value_parser = boolean)]
    keras_reset_after: Option<bool>,
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceChoice,
    #[arg(long, value_parser = dtype, default_value = "f32")]
    dtype: Dtype,
}

/// `gru run`'s flags as given.
#[derive(Args, Debug)]
struct RunFlags {
    #[command(flatten)]
    input: InputFlags,
    #[arg(long)]
    y: PathBuf,
    #[arg(long, alias = "y_h")]
    y_h: PathBuf,
}

/// `gru grad`'s flags as given: `gru run`'s inputs, dY (and dY_h), and the outputs. The
/// ONNX-shaped weight gradients (`--dw`, `--dr`, `--db`) are for weight arrays; a model file's
/// go to `--grads` in the file's own names.
#[derive(Args, Debug)]
struct GradFlags {
    #[command(flatten)]
    input: InputFlags,
    #[arg(long)]
    dy: PathBuf,
    #[arg(long, alias = "dy_h")]
    dy_h: Option<PathBuf>,
    #[arg(long)]
    dx: Option<PathBuf>,
    #[arg(long)]
    dh0: Option<PathBuf>,
    #[arg(long, conflicts_with = "model")]
    dw: Option<PathBuf>,
    #[arg(long, conflicts_with = "model")]
    dr: Option<PathBuf>,
    #[arg(long, conflicts_with = "model")]
    db: Option<PathBuf>,
    #[arg(long)]
    grads: Option<PathBuf>,
}

/// `gru inspect`'s arguments as given.
#[derive(Args, Debug)]
struct InspectFlags {
    model: PathBuf,
    #[arg(long, alias = "keras_reset_after", value_parser = boolean)]
    keras_reset_after: Option<bool>,
    #[arg(long)]
    prefix: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DirectionArg {
    Forward,
    Reverse,
    Bidirectional,
}

fn layout(v: &str) -> Result<Layout, String> {
    match v {
        "0" => Ok(Layout::SequenceMajor),
        "1" => Ok(Layout::BatchMajor),
        _ => Err("expected 0 ([T, B, I]) or 1 ([B, T, I])".into()),
    }
}

fn clip(v: &str) -> Result<f32, String> {
    match v.parse::<f32>() {
        Ok(c) if c.is_finite() && c > 0.0 => Ok(c),
        _ => Err("expected a positive number".into()),
    }
}

pub(crate) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn dtype(v: &str) -> Result<Dtype, String> {
    Dtype::parse(v).ok_or_else(|| "expected f32 or f16".into())
}

/// Parses a whole command line (without the program name).
pub fn parse(args: Vec<OsString>) -> CliResult<Invocation> {
    let command = args.first().and_then(|a| a.to_str()).and_then(|a| {
        [
            "run", "grad", "train", "evaluate", "predict", "inspect", "info",
        ]
        .into_iter()
        .find(|c| *c == a)
    });
    let parsed = match Gru::try_parse_from(std::iter::once(OsString::from("gru")).chain(args)) {
        Ok(parsed) => parsed,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Ok(Invocation::Help)
                }
                ErrorKind::DisplayVersion => Ok(Invocation::Version),
                _ => Err(Failure::Usage(usage_message(&e, command))),
            }
        }
    };
    Ok(match parsed.command {
        Command::Run(flags) => Invocation::Run(run_args(flags)?),
        Command::Grad(flags) => Invocation::Grad(grad_args(flags)?),
        Command::Train(flags) => Invocation::Train(TrainArgs(flags)),
        Command::Evaluate(flags) => Invocation::Evaluate(EvaluateArgs(flags)),
        Command::Predict(flags) => Invocation::Predict(PredictArgs(flags)),
        Command::Inspect(flags) => Invocation::Inspect(InspectArgs {
            path: flags.model,
            options: ImportOptions {
                keras_reset_after: flags.keras_reset_after,
                pytorch_prefix: flags.prefix,
            },
        }),
        Command::Info => Invocation::Info,
    })
}

/// The arguments of `gru run` (after `run`), or `None` when `--help` was asked for.
pub fn parse_run(args: Vec<OsString>) -> CliResult<Option<RunArgs>> {
    let line = std::iter::once(OsString::from("run")).chain(args).collect();
    Ok(match parse(line)? {
        Invocation::Run(run) => Some(run),
        _ => None,
    })
}

/// The arguments of `gru grad` (after `grad`), or `None` when `--help` was asked for.
pub fn parse_grad(args: Vec<OsString>) -> CliResult<Option<GradArgs>> {
    let line = std::iter::once(OsString::from("grad"))
        .chain(args)
        .collect();
    Ok(match parse(line)? {
        Invocation::Grad(grad) => Some(grad),
        _ => None,
    })
}

/// The arguments of `gru inspect` (after `inspect`), or `None` when `--help` was asked for.
pub fn parse_inspect(args: Vec<OsString>) -> CliResult<Option<InspectArgs>> {
    let line = std::iter::once(OsString::from("inspect"))
        .chain(args)
        .collect();
    Ok(match parse(line)? {
        Invocation::Inspect(inspect) => Some(inspect),
        _ => None,
    })
}

/// `gru run`'s flags checked against each other.
fn run_args(f: RunFlags) -> CliResult<RunArgs> {
    let outputs = [("--y", f.y.as_path()), ("--y-h", f.y_h.as_path())];
    let input = input_args(f.input, &outputs)?;
    refuse_overwriting_inputs(&input, &[], &outputs)?;
    Ok(RunArgs {
        input,
        y: f.y,
        y_h: f.y_h,
    })
}

/// `gru grad`'s flags checked against each other: `gru run`'s checks, f32 only, at least one
/// output, no two outputs (and no output and input) naming the same file.
fn grad_args(f: GradFlags) -> CliResult<GradArgs> {
    if f.input.dtype == Dtype::F16 {
        return Err(Failure::Usage(
            "--dtype f16 does not apply to 'gru grad': training and gradients are f32 on the \
             GPU (f64 on the CPU reference path); drop --dtype f16"
                .into(),
        ));
    }
    let outputs = GradOutputs {
        dx: f.dx,
        dh0: f.dh0,
        dw: f.dw,
        dr: f.dr,
        db: f.db,
        grads: f.grads,
    };
    let given = outputs.given();
    if given.is_empty() {
        return Err(Failure::Usage(format!(
            "'gru grad' writes nothing without an output: give at least one of --dx, --dh0, {}",
            if f.input.model.is_some() {
                "--grads (with --model)"
            } else {
                "--dw, --dr, --db, --grads"
            }
        )));
    }
    let input = input_args(f.input, &given)?;
    let mut inputs = vec![("--dy", f.dy.as_path())];
    inputs.extend(f.dy_h.as_deref().map(|p| ("--dy-h", p)));
    refuse_overwriting_inputs(&input, &inputs, &given)?;
    Ok(GradArgs {
        input,
        dy: f.dy,
        dy_h: f.dy_h,
        outputs,
    })
}

/// The flags `gru run` and `gru grad` share, checked against each other and against the
/// command's `outputs` (no two of which may name the same file).
fn input_args(f: InputFlags, outputs: &[(&str, &Path)]) -> CliResult<InputArgs> {
    if f.model.is_none() {
        for (given, flag, instead) in [
            (
                f.batch_first,
                "batch-first",
                " (with weight arrays, --layout 1 reads X as [B, T, I])",
            ),
            (
                f.keras_reset_after.is_some(),
                "keras-reset-after",
                " (with weight arrays, --linear-before-reset is Keras's reset_after=True)",
            ),
            (f.prefix.is_some(), "prefix", ""),
        ] {
            if given {
                return Err(Failure::Usage(format!(
                    "--{flag} applies to a model file (--model){instead}"
                )));
            }
        }
    }
    if f.dtype == Dtype::F16 && f.device == DeviceChoice::Cpu {
        return Err(Failure::Usage(
            "--dtype f16 is a GPU storage type; the CPU reference path (--device cpu) always \
             computes in f64: drop one of the two"
                .into(),
        ));
    }
    for (k, (a, path)) in outputs.iter().enumerate() {
        if let Some((b, _)) = outputs[k + 1..].iter().find(|(_, p)| same_file(path, p)) {
            return Err(Failure::Usage(format!(
                "{a} and {b} name the same file {path:?}; give two different paths"
            )));
        }
    }
    let source = match (f.model, f.w, f.r) {
        (Some(path), _, _) => Source::Model {
            path,
            batch_first: f.batch_first,
            keras_reset_after: f.keras_reset_after,
            prefix: f.prefix,
        },
        (None, Some(w), Some(r)) => Source::Arrays {
            w,
            r,
            b: f.b,
            convention: if f.linear_before_reset {
                Convention::ResetAfter
            } else {
                Convention::ResetBefore
            },
            direction: match f.direction {
                None | Some(DirectionArg::Forward) => Direction::Forward,
                Some(DirectionArg::Reverse) => Direction::Reverse,
                Some(DirectionArg::Bidirectional) => Direction::Bidirectional,
            },
            layout: f.layout.unwrap_or(Layout::SequenceMajor),
            clip: f.clip,
        },
        // clap requires --w and --r without --model.
        (None, _, _) => {
            return Err(Failure::Usage(
                "--w and --r are needed without --model".into(),
            ))
        }
    };
    Ok(InputArgs {
        source,
        x: f.x,
        initial_h: f.initial_h,
        sequence_lens: f.sequence_lens,
        device: f.device,
        dtype: f.dtype,
    })
}

/// An output path that names one of the inputs (the shared ones and the command's `extra`)
/// is a usage error: the command would read the file and then write its result over it.
fn refuse_overwriting_inputs(
    args: &InputArgs,
    extra: &[(&str, &Path)],
    outputs: &[(&str, &Path)],
) -> CliResult {
    let mut inputs: Vec<(&str, &Path)> = vec![("--x", &args.x)];
    match &args.source {
        Source::Model { path, .. } => inputs.push(("--model", path)),
        Source::Arrays { w, r, b, .. } => {
            inputs.extend([("--w", w.as_path()), ("--r", r.as_path())]);
            inputs.extend(b.as_deref().map(|b| ("--b", b)));
        }
    }
    inputs.extend(args.initial_h.as_deref().map(|p| ("--initial-h", p)));
    inputs.extend(
        args.sequence_lens
            .as_deref()
            .map(|p| ("--sequence-lens", p)),
    );
    inputs.extend_from_slice(extra);
    for (output, path) in outputs {
        if let Some((input, _)) = inputs.iter().find(|(_, i)| same_file(path, i)) {
            return Err(Failure::Usage(format!(
                "{output} {path:?} names the same file as the input {input}; the command \
                 would write over its own input: give another output path"
            )));
        }
    }
    Ok(())
}

/// Whether two output paths name the same file: compared after resolving their directories
/// (`y.npy` and `./y.npy` are the same), falling back to the text when a directory is missing.
fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(std::fs::canonicalize(dir).ok()?.join(p.file_name()?))
    };
    match (resolve(a), resolve(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// One context value of a clap error as text (`--x <X>` becomes `--x`).
fn context(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    let flag = |s: &str| s.split(' ').next().unwrap_or(s).to_string();
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![flag(s)],
        Some(ContextValue::Strings(v)) => v.iter().map(|s| flag(s)).collect(),
        Some(ContextValue::StyledStr(s)) => vec![flag(&s.to_string())],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(|s| flag(&s.to_string())).collect(),
        Some(ContextValue::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// The one-line usage message of a clap error. `command` is the subcommand the line named,
/// if any.
fn usage_message(e: &clap::Error, command: Option<&str>) -> String {
    let first = |kind| context(e, kind).into_iter().next().unwrap_or_default();
    let (gru, help) = match command {
        Some(c) => (format!("'gru {c}'"), format!("see 'gru {c} --help'")),
        None => ("'gru'".to_string(), "see 'gru --help'".to_string()),
    };
    match e.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown subcommand '{}'; expected 'run', 'grad', 'train', 'evaluate', 'predict', \
             'inspect', 'info' or 'help' ({help})",
            first(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::UnknownArgument => {
            let arg = first(ContextKind::InvalidArg);
            match command {
                Some("info") => format!("'gru info' takes no arguments, got '{arg}'; {help}"),
                None if arg.starts_with('-') => format!(
                    "unknown flag '{arg}' before a subcommand; expected 'run', 'grad', 'train', \
                     'evaluate', 'predict', 'inspect', 'info' or 'help' ({help})"
                ),
                _ if arg.starts_with('-') => format!("unknown flag '{arg}' for {gru}; {help}"),
                _ => format!("unexpected argument '{arg}' for {gru} (flags start with --); {help}"),
            }
        }
        ErrorKind::ArgumentConflict => {
            let arg = first(ContextKind::InvalidArg);
            let prior = first(ContextKind::PriorArg);
            let other = if arg == "--model" { &prior } else { &arg };
            if arg == prior || prior.is_empty() {
                format!("{arg} given twice")
            } else if ["--dw", "--dr", "--db"].contains(&other.as_str()) {
                format!(
                    "{other} cannot be combined with --model: it is for weight arrays (an \
                     ONNX-shaped array); with a model file, --grads FILE writes every weight \
                     gradient under the file's own names and shapes"
                )
            } else {
                format!(
                    "{other} cannot be combined with --model: the model file holds the \
                     weights and the GRU's settings"
                )
            }
        }
        ErrorKind::MissingRequiredArgument => match command {
            Some("inspect") => "'gru inspect' needs a model file: gru inspect MODEL (.onnx, \
                                .safetensors or .npz)"
                .to_string(),
            Some(c @ ("train" | "evaluate" | "predict")) => format!(
                "'gru {c}' needs {} (missing: {}); {help}",
                match c {
                    "train" => "--x, --labels, --out, and --hidden or --from",
                    "evaluate" => "--model, --x and --labels",
                    _ => "--model, --x and --out",
                },
                context(e, ContextKind::InvalidArg).join(", ")
            ),
            Some("grad") => format!(
                "'gru grad' needs --x and --dy, and --model or --w and --r (missing: {}); \
                 {help}",
                missing_in_usage_order(context(e, ContextKind::InvalidArg)).join(", ")
            ),
            _ => format!(
                "'gru run' needs --x, --y and --y-h, and --model or --w and --r (missing: {}); \
                 {help}",
                missing_in_usage_order(context(e, ContextKind::InvalidArg)).join(", ")
            ),
        },
        ErrorKind::TooManyValues => match first(ContextKind::InvalidArg) {
            arg if arg.is_empty() => one_line_of(e),
            arg => format!("{arg} takes no value"),
        },
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = first(ContextKind::InvalidArg);
            let value = first(ContextKind::InvalidValue);
            let valid = context(e, ContextKind::ValidValue);
            let why = match std::error::Error::source(e) {
                Some(source) => source.to_string(),
                None if !valid.is_empty() => format!("expected {}", either(&valid)),
                None => String::new(),
            };
            if value.is_empty() && why.is_empty() {
                format!("missing value for {arg}")
            } else if value.is_empty() {
                format!("empty value for {arg}; {why}")
            } else {
                format!("invalid {arg} '{value}'; {why}")
            }
        }
        ErrorKind::InvalidUtf8 => format!("{} (values must be UTF-8)", one_line_of(e)),
        _ => one_line_of(e),
    }
}

/// The missing flags of `gru run` or `gru grad` in the order their usage lists them.
fn missing_in_usage_order(mut missing: Vec<String>) -> Vec<String> {
    const ORDER: [&str; 7] = ["--model", "--x", "--w", "--r", "--dy", "--y", "--y-h"];
    missing.sort_by_key(|m| ORDER.iter().position(|o| o == m).unwrap_or(ORDER.len()));
    missing
}

/// `a`, `a or b`, `a, b or c`.
fn either(values: &[String]) -> String {
    match values {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// clap's own message on one line, without its `error: ` prefix and usage footer.
fn one_line_of(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .trim()
        .to_string()
}
