//! The `gru` command line (its binary is `src/main.rs`): argument parsing, reading the files, building
//! the model and its input, running it and writing the outputs; `gru grad` (in `grad.rs`), `gru
//! inspect` and `gru info`.
//!
//! It lives in the library so that its parse-and-load path can be tested and fuzzed without
//! a process or a file system: [`parse_run`] and [`load_problem`] read every file through a
//! [`Files`] ([`DiskFiles`] for the binary, a map of names to bytes in `fuzz/`). Not a stable
//! API: the binary is the interface.
//!
//! Every error is one line on stderr starting with `gru: `; the exit status is 2 for usage
//! errors (including a flag that does not apply to the model file given), 1 for everything
//! else (unreadable or malformed files, shapes that do not fit together, no GPU with
//! `--device gpu`, device failures).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use gru_wgpu::gpu::{enumerate_adapters, GpuContext, GpuGru, ModelOptions};
use gru_wgpu::io::{self, keras, ImportOptions, Imported};
use gru_wgpu::npy::{self, format_shape, NpyArray};

mod args;
mod grad;
mod train;
mod write;

pub use args::{
    parse, parse_grad, parse_inspect, parse_run, GradArgs, InspectArgs, Invocation, RunArgs, USAGE,
};
use args::{DeviceChoice, InputArgs, Source};
use grad::WeightsFormat;
pub use grad::{load_grad_problem, GradProblem};
use gru_wgpu::{
    cpu, Convention, Dims, Direction, Dtype, GruError, GruInput, GruModel, GruWeights, Layout,
    OutputStyle,
};

/// Why the command failed; each is printed as one line.
#[derive(Debug)]
pub enum Failure {
    /// Wrong command line: exit status 2.
    Usage(String),
    /// Anything else: exit status 1.
    Runtime(String),
}

impl From<GruError> for Failure {
    fn from(e: GruError) -> Self {
        Failure::Runtime(e.to_string())
    }
}

impl Failure {
    /// The process exit status: 2 for a usage error, 1 for anything else.
    pub fn exit_status(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }

    /// The message, without the `gru: ` prefix.
    pub fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) => m,
        }
    }
}

/// The result of a command-line step.
pub type CliResult<T = ()> = Result<T, Failure>;

/// Joins the lines of a message so that every error stays on one line.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes to stdout; a closed pipe (`gru info | head`) is not an error.
fn print(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Runtime(format!("writing to stdout: {e}"))),
    }
}

/// Runs `gru` with its arguments (without the program name), on the real file system and
/// devices; prints to stdout and stderr.
pub fn cli(args: Vec<OsString>) -> CliResult {
    match args::parse(args)? {
        Invocation::Run(args) => run(args),
        Invocation::Grad(args) => grad::grad(args),
        Invocation::Train(args) => train::train(args.0),
        Invocation::Evaluate(args) => train::evaluate(args.0),
        Invocation::Predict(args) => train::predict(args.0),
        Invocation::Inspect(args) => inspect(args),
        Invocation::Info => info(),
        Invocation::Help => print(USAGE),
        Invocation::Version => print(&format!("gru {}\n", env!("CARGO_PKG_VERSION"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Where `gru` reads its input files from.
pub trait Files {
    /// The whole contents of `path`; a missing or unreadable file is [`GruError::Io`] naming
    /// it.
    fn read(&self, path: &Path) -> Result<Vec<u8>, GruError>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskFiles;

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, GruError> {
        std::fs::read(path).map_err(|source| GruError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Named files held in memory (tests, fuzzing); any other path is not found.
#[derive(Clone, Debug, Default)]
pub struct MemoryFiles {
    /// Path → contents.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Files for MemoryFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, GruError> {
        self.files.get(path).cloned().ok_or_else(|| GruError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"),
        })
    }
}

impl MemoryFiles {
    /// The arguments and files of one input of the `cli` fuzz target (`fuzz/`): sections
    /// separated by [`FUZZ_SEPARATOR`]; the first holds the arguments after `gru`, one per
    /// line, and each further section is a file, its path on the first line and its contents
    /// after that newline. Every byte string decodes to something.
    pub fn from_fuzz_input(data: &[u8]) -> (Vec<OsString>, MemoryFiles) {
        let mut sections = Vec::new();
        let mut rest = data;
        while let Some(at) = rest
            .windows(FUZZ_SEPARATOR.len())
            .position(|w| w == FUZZ_SEPARATOR)
        {
            sections.push(&rest[..at]);
            rest = &rest[at + FUZZ_SEPARATOR.len()..];
        }
        sections.push(rest);
        let args = sections[0]
            .split(|&b| b == b'\n')
            .map(os_string_from_bytes)
            .collect();
        let mut files = MemoryFiles::default();
        for file in &sections[1..] {
            let (name, contents) = match file.iter().position(|&b| b == b'\n') {
                Some(at) => (&file[..at], &file[at + 1..]),
                None => (*file, &[][..]),
            };
            files
                .files
                .insert(PathBuf::from(os_string_from_bytes(name)), contents.to_vec());
        }
        (args, files)
    }
}

/// What separates the sections of a `cli` fuzz input ([`MemoryFiles::from_fuzz_input`]).
pub const FUZZ_SEPARATOR: &[u8] = b"\n%%%%\n";

/// Raw bytes as an argument (non-UTF-8 ones included, on Unix).
fn os_string_from_bytes(bytes: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes.to_vec())
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// A `.npy` file read as float32 (float64 converted).
fn read_npy_f32(files: &dyn Files, path: &Path) -> Result<NpyArray, GruError> {
    let bytes = files.read(path)?;
    npy::parse_f32(&bytes, &path.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// gru run: shapes

/// One loaded input: its name, its file and its contents.
struct Tensor {
    label: &'static str,
    path: PathBuf,
    array: NpyArray,
}

impl Tensor {
    fn load(label: &'static str, path: &Path, files: &dyn Files) -> CliResult<Tensor> {
        Ok(Tensor {
            label,
            path: path.to_path_buf(),
            array: read_npy_f32(files, path)?,
        })
    }

    /// `W (w.npy) of shape (1, 12, 3)`.
    fn describe(&self) -> String {
        format!(
            "{} ({}) of shape {}",
            self.label,
            self.path.display(),
            self.array.shape_string()
        )
    }

    /// An error unless the shape is `expected`; `meaning` names the dimensions and `why`
    /// says where the expected sizes come from.
    fn expect_shape(&self, expected: &[usize], meaning: &str, why: &str) -> CliResult {
        if self.array.shape == expected {
            return Ok(());
        }
        Err(Failure::Runtime(format!(
            "{} ({}) has shape {}, expected {} = {meaning}{why}",
            self.label,
            self.path.display(),
            self.array.shape_string(),
            format_shape(expected),
        )))
    }
}

fn mul(a: usize, b: usize, what: &str) -> CliResult<usize> {
    a.checked_mul(b)
        .ok_or_else(|| Failure::Runtime(format!("{what} = {a} × {b} overflows")))
}

/// Which framework's shapes the arrays have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// ONNX (a model file or weight arrays).
    Onnx,
    /// PyTorch nn.GRU.
    PyTorch,
    /// Keras GRU (batch-major, one layer, states without a layer axis).
    Keras,
}

/// The network and how its arrays are laid out.
struct Network {
    model: GruModel,
    frame: Frame,
    /// How the file names and shapes its weights (for `gru grad --grads`).
    weights: WeightsFormat,
    layout: Layout,
    /// E.g. `ONNX model m.onnx`.
    what: String,
}

impl Network {
    fn style(&self) -> OutputStyle {
        match self.frame {
            Frame::Onnx => OutputStyle::Onnx,
            Frame::PyTorch | Frame::Keras => OutputStyle::PyTorch,
        }
    }

    fn dims(&self, seq_len: usize, batch: usize) -> Dims {
        Dims {
            seq_len,
            batch,
            input_size: self.model.input_size(),
            hidden_size: self.model.hidden_size(),
            num_layers: self.model.num_layers(),
            num_directions: self.model.num_directions(),
            layout: self.layout,
            style: self.style(),
        }
    }

    /// The shape of the initial state and of the last state, in this framework's terms.
    fn state_shape(&self, dims: &Dims) -> Vec<usize> {
        match self.frame {
            Frame::Keras => vec![dims.batch, dims.hidden_size],
            _ => dims.state_shape(),
        }
    }

    /// What the state's dimensions mean.
    fn state_meaning(&self) -> &'static str {
        match (self.frame, self.layout) {
            (Frame::Keras, _) => "[batch, hidden_size] (Keras's initial state)",
            (Frame::PyTorch, _) => "[num_layers*num_directions, batch, hidden_size] (PyTorch h0)",
            (Frame::Onnx, Layout::SequenceMajor) => "[num_directions, batch_size, hidden_size]",
            (Frame::Onnx, Layout::BatchMajor) => {
                "[batch_size, num_directions, hidden_size] (layout 1)"
            }
        }
    }

    fn x_meaning(&self) -> &'static str {
        x_meaning(self.layout)
    }
}

fn x_meaning(layout: Layout) -> &'static str {
    match layout {
        Layout::SequenceMajor => "[seq_length, batch_size, input_size]",
        Layout::BatchMajor => "[batch_size, seq_length, input_size]",
    }
}

/// Flags that only some model formats take: a usage error when the file is of another.
fn check_model_flags(args: &InputArgs, imported: &Imported, path: &Path) -> CliResult {
    let Source::Model {
        batch_first,
        keras_reset_after,
        prefix,
        ..
    } = &args.source
    else {
        return Ok(());
    };
    let file = path.display();
    let format = imported.format().name();
    let article = if format.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    let not_for = |flag: &str, why: &str| {
        Err(Failure::Usage(format!(
            "--{flag} does not apply to {file}, {article} {format} model{why}"
        )))
    };
    match imported {
        Imported::PyTorch(_) => {
            if keras_reset_after.is_some() {
                return not_for("keras-reset-after", " (nn.GRU is always reset-after)");
            }
        }
        Imported::Keras(_) => {
            if *batch_first {
                return not_for("batch-first", " (Keras inputs are always [B, T, I])");
            }
            if prefix.is_some() {
                return not_for("prefix", "");
            }
            if args.sequence_lens.is_some() {
                return not_for(
                    "sequence-lens",
                    " (Keras masks steps instead, and its outputs at masked steps differ from \
                     sequence lengths' zeros)",
                );
            }
        }
        Imported::Onnx(m) => {
            if *batch_first {
                return not_for(
                    "batch-first",
                    " (the GRU node's layout attribute decides the layout)",
                );
            }
            if keras_reset_after.is_some() {
                return not_for(
                    "keras-reset-after",
                    " (linear_before_reset is an attribute)",
                );
            }
            if prefix.is_some() {
                return not_for("prefix", "");
            }
            if args.initial_h.is_some() && m.initial_h.is_none() {
                return Err(Failure::Usage(format!(
                    "--initial-h given, but the GRU node of {file} has no initial_h input"
                )));
            }
            if args.sequence_lens.is_some() && m.sequence_lens.is_none() {
                return Err(Failure::Usage(format!(
                    "--sequence-lens given, but the GRU node of {file} has no sequence_lens \
                     input"
                )));
            }
        }
    }
    Ok(())
}

/// The validated problem of `gru run`: the network, its inputs and sizes.
pub struct Problem {
    net: Network,
    x: Vec<f32>,
    initial_h: Option<Vec<f32>>,
    sequence_lens: Option<Vec<i64>>,
    dims: Dims,
    notes: Vec<String>,
}

impl Problem {
    /// The network.
    pub fn model(&self) -> &GruModel {
        &self.net.model
    }

    /// The sizes, layout and output style of the run.
    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// The input, as `gru run` passes it to the CPU or GPU path.
    pub fn input(&self) -> GruInput<'_> {
        let mut input = GruInput::new(&self.x, self.dims.seq_len, self.dims.batch)
            .with_layout(self.dims.layout)
            .with_style(self.dims.style);
        if let Some(h0) = &self.initial_h {
            input = input.with_initial_h(h0);
        }
        if let Some(lens) = &self.sequence_lens {
            input = input.with_sequence_lens(lens);
        }
        input
    }
}

/// Reads `sequence_lens`: integers, or floats that hold whole numbers.
fn load_lengths(path: &Path, files: &dyn Files) -> CliResult<(Vec<usize>, Vec<i64>)> {
    let bytes = files.read(path)?;
    let name = path.display().to_string();
    let int_error = match npy::parse_i64(&bytes, &name) {
        Ok(v) => return Ok(v),
        Err(e @ GruError::Npy { .. }) => e,
        Err(e) => return Err(e.into()),
    };
    // Some files store lengths as floats; take them when every value is a whole number.
    let Ok(array) = npy::parse_f32(&bytes, &name) else {
        return Err(int_error.into());
    };
    let mut values = Vec::with_capacity(array.data.len());
    for (k, &v) in array.data.iter().enumerate() {
        if !(v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15) {
            return Err(Failure::Runtime(format!(
                "sequence_lens ({}) holds {v} at index {k}; expected whole numbers (lengths)",
                path.display()
            )));
        }
        values.push(v as i64);
    }
    Ok((array.shape, values))
}

/// The network and X (read after a model file, so that a flag the file does not take is
/// reported first; before weight arrays, whose shapes are checked against X's).
fn load_network(args: &InputArgs, files: &dyn Files) -> CliResult<(Network, Vec<String>, Tensor)> {
    let mut notes = Vec::new();
    match &args.source {
        Source::Model {
            path,
            batch_first,
            keras_reset_after,
            prefix,
        } => {
            let options = ImportOptions {
                keras_reset_after: *keras_reset_after,
                pytorch_prefix: prefix.clone(),
            };
            let bytes = files.read(path)?;
            let imported = io::load_bytes(&bytes, &path.display().to_string(), &options)?;
            drop(bytes);
            check_model_flags(args, &imported, path)?;
            let x = Tensor::load("X", &args.x, files)?;
            let file = path.display();
            let net = match imported {
                Imported::PyTorch(m) => Network {
                    what: format!(
                        "PyTorch nn.GRU {file}{}",
                        if m.prefix.is_empty() {
                            String::new()
                        } else {
                            format!(" (prefix '{}')", m.prefix)
                        }
                    ),
                    weights: WeightsFormat::PyTorch {
                        prefix: m.prefix,
                        bias: m.bias,
                    },
                    model: m.model,
                    frame: Frame::PyTorch,
                    layout: if *batch_first {
                        Layout::BatchMajor
                    } else {
                        Layout::SequenceMajor
                    },
                },
                Imported::Keras(m) => {
                    if let Some(d) = &m.dense {
                        notes.push(format!(
                            "{file} also holds a dense head (dense_kernel ({}, {})); 'gru run' \
                             and 'gru grad' cover the GRU only",
                            d.in_features, d.out_features
                        ));
                    }
                    Network {
                        what: format!(
                            "Keras GRU {file} (reset_after={})",
                            if m.reset_after { "True" } else { "False" }
                        ),
                        weights: WeightsFormat::Keras {
                            reset_after: m.reset_after,
                            bias: m.bias,
                            container: m.container,
                        },
                        model: m.model,
                        frame: Frame::Keras,
                        layout: Layout::BatchMajor,
                    }
                }
                Imported::Onnx(m) => Network {
                    what: format!("ONNX GRU node {} of {file}", node_label(&m.node_name)),
                    model: m.model,
                    frame: Frame::Onnx,
                    weights: WeightsFormat::Onnx,
                    layout: m.layout,
                },
            };
            Ok((net, notes, x))
        }
        Source::Arrays {
            w,
            r,
            b,
            convention,
            direction,
            layout,
            clip,
        } => {
            let x = Tensor::load("X", &args.x, files)?;
            x_rank(&x, x_meaning(*layout))?;
            let model = load_arrays(
                &x,
                ArrayPaths {
                    w,
                    r,
                    b: b.as_deref(),
                },
                *convention,
                *direction,
                *clip,
                files,
            )?;
            Ok((
                Network {
                    what: "weight arrays".into(),
                    model,
                    frame: Frame::Onnx,
                    weights: WeightsFormat::Onnx,
                    layout: *layout,
                },
                notes,
                x,
            ))
        }
    }
}

/// The files of `--w`, `--r` and `--b`.
struct ArrayPaths<'a> {
    w: &'a Path,
    r: &'a Path,
    b: Option<&'a Path>,
}

/// The model of ONNX-shaped arrays: W [D, 3H, I], R [D, 3H, H], B [D, 6H].
fn load_arrays(
    x: &Tensor,
    paths: ArrayPaths<'_>,
    convention: Convention,
    direction: Direction,
    clip: Option<f32>,
    files: &dyn Files,
) -> CliResult<GruModel> {
    let w = Tensor::load("W", paths.w, files)?;
    let r = Tensor::load("R", paths.r, files)?;
    let b = paths.b.map(|p| Tensor::load("B", p, files)).transpose()?;
    let d = direction.num_directions();
    let i = match *x.array.shape.as_slice() {
        [_, _, i] => i,
        _ => 0, // reported by the caller's X check first
    };

    // R[D, 3H, H] gives H.
    let &[dirs, h3, h] = r.array.shape.as_slice() else {
        return Err(Failure::Runtime(format!(
            "{} has {} dimensions, expected 3: [num_directions, 3*hidden_size, hidden_size]",
            r.describe(),
            r.array.shape.len()
        )));
    };
    if dirs != d {
        return Err(Failure::Runtime(format!(
            "{} has num_directions {dirs}, but --direction {} needs {d}, so R must be [{d}, \
             3*hidden_size, hidden_size]{}",
            r.describe(),
            direction.onnx_name(),
            if dirs == 2 {
                " (pass --direction bidirectional for two directions)"
            } else {
                ""
            }
        )));
    }
    if h == 0 || h3 % 3 != 0 || h3 / 3 != h {
        let detail = if h == 0 {
            " (hidden_size 0)".to_string()
        } else if h3 % 3 != 0 {
            format!(" ({h3} is not a multiple of 3)")
        } else if h == i {
            format!(
                " (dimension 1 gives hidden_size {}, dimension 2 gives {h}; is this W \
                 [D, 3*hidden_size, input_size] instead of R?)",
                h3 / 3
            )
        } else {
            format!(
                " (dimension 1 gives hidden_size {}, dimension 2 gives {h})",
                h3 / 3
            )
        };
        return Err(Failure::Runtime(format!(
            "{} is not [num_directions, 3*hidden_size, hidden_size]: dimension 1 must be 3 × \
             dimension 2 and hidden_size at least 1{detail}",
            r.describe()
        )));
    }
    let h3 = mul(3, h, "3*hidden_size")?;
    let why_w = format!(
        " (input_size {i} from {}, hidden_size {h} from {})",
        x.describe(),
        r.describe()
    );
    w.expect_shape(
        &[d, h3, i],
        "[num_directions, 3*hidden_size, input_size]",
        &why_w,
    )?;
    let h6 = mul(2, h3, "6*hidden_size")?;
    if let Some(b) = &b {
        b.expect_shape(
            &[d, h6],
            "[num_directions, 6*hidden_size]",
            &format!(" (hidden_size {h} from {})", r.describe()),
        )?;
    }
    let (wn, rn) = (h3 * i, h3 * h);
    let mut layer = Vec::with_capacity(d);
    for k in 0..d {
        layer.push(GruWeights::new(
            convention,
            i,
            h,
            w.array.data[k * wn..(k + 1) * wn].to_vec(),
            r.array.data[k * rn..(k + 1) * rn].to_vec(),
            b.as_ref()
                .map(|b| b.array.data[k * h6..(k + 1) * h6].to_vec()),
        )?);
    }
    Ok(GruModel::new(direction, vec![layer], clip)?)
}

/// X's three dimensions, or an error saying what they should be.
fn x_rank(x: &Tensor, meaning: &str) -> CliResult<[usize; 3]> {
    match *x.array.shape.as_slice() {
        [d0, d1, d2] => Ok([d0, d1, d2]),
        _ => Err(Failure::Runtime(format!(
            "{} has {} dimensions, expected 3: {meaning}",
            x.describe(),
            x.array.shape.len(),
        ))),
    }
}

/// Reads the files of `gru run` and checks them against each other: the model (or weight
/// arrays), X, the initial state and the lengths.
pub fn load_problem(args: &RunArgs, files: &dyn Files) -> CliResult<Problem> {
    load_inputs(&args.input, files)
}

/// [`load_problem`] for the inputs `gru run` and `gru grad` share.
fn load_inputs(args: &InputArgs, files: &dyn Files) -> CliResult<Problem> {
    let (net, notes, x) = load_network(args, files)?;

    // X in the network's layout.
    let [d0, d1, i] = x_rank(&x, net.x_meaning())?;
    let (t, batch) = match net.layout {
        Layout::SequenceMajor => (d0, d1),
        Layout::BatchMajor => (d1, d0),
    };
    if t == 0 {
        return Err(Failure::Runtime(format!(
            "{} has seq_length 0; expected at least 1 step",
            x.describe()
        )));
    }
    if i == 0 {
        return Err(Failure::Runtime(format!(
            "{} has input_size 0; expected at least 1 feature",
            x.describe()
        )));
    }
    if i != net.model.input_size() {
        return Err(Failure::Runtime(format!(
            "{} has input_size {i} (the last dimension of {}), but the {} reads {} features",
            x.describe(),
            net.x_meaning(),
            net.what,
            net.model.input_size()
        )));
    }
    let dims = net.dims(t, batch);
    mul(
        mul(t, batch, "seq_length*batch_size")?,
        net.model.num_directions() * net.model.hidden_size(),
        "Y elements",
    )?;

    let initial_h = match &args.initial_h {
        Some(p) => {
            let h0 = Tensor::load("initial_h", p, files)?;
            h0.expect_shape(
                &net.state_shape(&dims),
                net.state_meaning(),
                &format!(
                    " (batch {batch} from {}, hidden_size {}, {} layer(s) × {} direction(s) of \
                     the {})",
                    x.describe(),
                    net.model.hidden_size(),
                    net.model.num_layers(),
                    net.model.num_directions(),
                    net.what
                ),
            )?;
            Some(h0.array.data)
        }
        None => None,
    };
    let sequence_lens = match &args.sequence_lens {
        Some(p) => {
            let (shape, lens) = load_lengths(p, files)?;
            if shape != [batch] {
                return Err(Failure::Runtime(format!(
                    "sequence_lens ({}) has shape {}, expected ({batch},) = [batch_size] (batch \
                     {batch} from {})",
                    p.display(),
                    format_shape(&shape),
                    x.describe()
                )));
            }
            if let Some((k, bad)) = lens
                .iter()
                .enumerate()
                .find(|(_, &l)| l < 0 || l as u64 > t as u64)
            {
                return Err(Failure::Runtime(format!(
                    "sequence_lens ({}) holds {bad} at index {k}; expected lengths in 0..={t} \
                     (seq_length {t} from {})",
                    p.display(),
                    x.describe()
                )));
            }
            Some(lens)
        }
        None => None,
    };
    Ok(Problem {
        net,
        x: x.array.data,
        initial_h,
        sequence_lens,
        dims,
        notes,
    })
}

// ---------------------------------------------------------------------------------------------
// gru run: compute

/// Why the GPU path did not produce a result.
enum GpuFailure {
    /// No context could be made (no adapter, or the device was refused).
    Context(GruError),
    /// The context exists but the model or the computation failed.
    Run(GruError),
}

/// The GPU model of `model` storing `dtype`, and a description of the adapter.
fn gpu_model(model: &GruModel, dtype: Dtype) -> Result<(GpuGru, String), GpuFailure> {
    let ctx = GpuContext::new().map_err(GpuFailure::Context)?;
    let describe = match dtype {
        Dtype::F32 => ctx.describe(),
        Dtype::F16 => format!("{}, f16 storage", ctx.describe()),
    };
    let options = ModelOptions {
        dtype,
        allow_f32_fallback: false,
    };
    let gpu = GpuGru::from_model_with(&ctx, model, &options).map_err(GpuFailure::Run)?;
    Ok((gpu, describe))
}

/// Computes with `gpu` or `cpu` as `--device` asks (`auto`: the GPU, else the CPU reference
/// path, saying why on stderr): the result, where it ran, and whether that was the GPU.
fn on_device<T>(
    device: DeviceChoice,
    gpu: impl FnOnce() -> Result<(T, String), GpuFailure>,
    cpu: impl FnOnce() -> Result<T, GruError>,
) -> CliResult<(T, String, bool)> {
    const CPU: &str = "the CPU reference path (f64 accumulation)";
    match device {
        DeviceChoice::Cpu => Ok((cpu()?, CPU.to_string(), false)),
        DeviceChoice::Gpu => match gpu() {
            Ok((out, describe)) => Ok((out, format!("the GPU, {describe}"), true)),
            Err(GpuFailure::Context(e)) => Err(Failure::Runtime(format!(
                "--device gpu: {e}; pass --device cpu (or auto) to run on the CPU reference path"
            ))),
            Err(GpuFailure::Run(e)) => Err(Failure::Runtime(format!(
                "--device gpu: {e}; pass --device cpu to run on the CPU reference path"
            ))),
        },
        DeviceChoice::Auto => match gpu() {
            Ok((out, describe)) => Ok((out, format!("the GPU, {describe}"), true)),
            Err(failure) => {
                let reason = match failure {
                    GpuFailure::Context(GruError::NoAdapter(m)) => format!("no GPU adapter ({m})"),
                    GpuFailure::Context(e) => format!("GPU unavailable ({e})"),
                    GpuFailure::Run(e) => format!("the GPU path failed ({e})"),
                };
                eprintln!(
                    "gru: {}; running on the CPU reference path",
                    one_line(&reason)
                );
                Ok((cpu()?, CPU.to_string(), false))
            }
        },
    }
}

/// What the GPU's storage type saturated (see [`Dtype::F16`]), per array, as one line, or
/// `None` when nothing was: `--dtype f16 stored 24 values of X … as ±65504 …`.
fn saturation_note(dtype: Dtype, model: &GruModel, input: &GruInput<'_>) -> Option<String> {
    let weights = || model.layers().iter().flatten();
    let counts = [
        ("X", dtype.saturated(input.x)),
        (
            "the initial state",
            dtype.saturated(input.initial_h.unwrap_or(&[])),
        ),
        ("W", weights().map(|w| dtype.saturated(w.w())).sum()),
        ("R", weights().map(|w| dtype.saturated(w.r())).sum()),
        ("B", weights().map(|w| dtype.saturated(w.b())).sum()),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} of {name}"))
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "--dtype {} stored values beyond its range as ±{} (its largest finite value): {}; \
             --dtype f32 keeps them",
            dtype.name(),
            gru_wgpu::F16_MAX,
            parts.join(", ")
        )
    })
}

/// What ran, for the summary line on stderr: `ONNX GRU node 'g' of m.onnx: seq_length 3, …`.
fn describe_run(p: &Problem) -> String {
    let (d, model) = (&p.dims, &p.net.model);
    format!(
        "{}: seq_length {}, batch_size {}, input_size {}, hidden_size {}, {} layer(s), {}, \
         linear_before_reset={}{}",
        p.net.what,
        d.seq_len,
        d.batch,
        d.input_size,
        d.hidden_size,
        d.num_layers,
        model.direction().onnx_name(),
        model.convention().linear_before_reset(),
        model
            .clip()
            .map(|c| format!(", clip {c}"))
            .unwrap_or_default(),
    )
}

fn run(args: RunArgs) -> CliResult {
    let p = load_inputs(&args.input, &DiskFiles)?;
    let model = &p.net.model;
    let input = p.input();
    let dtype = args.input.dtype;
    let (out, ran_on, on_gpu) = on_device(
        args.input.device,
        || {
            let (mut gpu, describe) = gpu_model(model, dtype)?;
            Ok((gpu.forward(&input).map_err(GpuFailure::Run)?, describe))
        },
        || cpu::forward_model(model, &input),
    )?;

    let y_shape = out.dims.y_shape();
    let state_shape = p.net.state_shape(&out.dims);
    write::write_files(&[
        (&args.y, npy::encode_f32(&y_shape, &out.y)?),
        (&args.y_h, npy::encode_f32(&state_shape, &out.y_h)?),
    ])?;
    for note in &p.notes {
        eprintln!("gru: note: {}", one_line(note));
    }
    if on_gpu {
        if let Some(note) = saturation_note(dtype, model, &input) {
            eprintln!("gru: note: {note}");
        }
    }
    eprintln!(
        "gru: ran on {}: {}; wrote {} {} and {} {}",
        one_line(&ran_on),
        describe_run(&p),
        args.y.display(),
        format_shape(&y_shape),
        args.y_h.display(),
        format_shape(&state_shape),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// gru inspect

/// `'gru'`, or `(unnamed)`.
fn node_label(name: &str) -> String {
    if name.is_empty() {
        "(unnamed)".into()
    } else {
        format!("'{name}'")
    }
}

fn convention_line(c: Convention) -> String {
    match c {
        Convention::ResetAfter => "reset-after: h~ = tanh(W_h x + Wb_h + r * (R_h h + Rb_h)) \
                                   (ONNX linear_before_reset=1, PyTorch, Keras reset_after=True)"
            .into(),
        Convention::ResetBefore => "reset-before: h~ = tanh(W_h x + Wb_h + R_h (r * h) + Rb_h) \
                                    (ONNX linear_before_reset=0, Keras reset_after=False)"
            .into(),
    }
}

fn shape_text(shape: &[&str]) -> String {
    format!("[{}]", shape.join(", "))
}

fn inspect(args: InspectArgs) -> CliResult {
    print(&inspect_report(&args, &DiskFiles)?)
}

/// What `gru inspect` prints about the model file.
pub fn inspect_report(args: &InspectArgs, files: &dyn Files) -> CliResult<String> {
    let bytes = files.read(&args.path)?;
    let imported = io::load_bytes(&bytes, &args.path.display().to_string(), &args.options)?;
    drop(bytes);
    let model = imported.model();
    let (l, d, i, h) = (
        model.num_layers(),
        model.num_directions(),
        model.input_size(),
        model.hidden_size(),
    );
    let mut s = String::new();
    let mut line = |key: &str, value: String| s.push_str(&format!("{key:<13}{value}\n"));
    line("file:", args.path.display().to_string());
    let s_i = i.to_string();
    let s_h = h.to_string();
    let s_ld = (l * d).to_string();
    let s_dh = (d * h).to_string();
    let s_d = d.to_string();
    match &imported {
        Imported::PyTorch(m) => {
            line(
                "format:",
                format!(
                    "PyTorch nn.GRU state_dict (safetensors){}",
                    if m.prefix.is_empty() {
                        ", unprefixed names".to_string()
                    } else {
                        format!(", names under the prefix '{}'", m.prefix)
                    }
                ),
            );
        }
        Imported::Keras(m) => line("format:", format!("Keras GRU weights ({})", m.container)),
        Imported::Onnx(m) => line(
            "format:",
            format!(
                "ONNX model, one GRU node {} (IR version {}, opset {}{})",
                node_label(&m.node_name),
                m.ir_version,
                m.opset
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "not imported".into()),
                if m.producer.is_empty() {
                    String::new()
                } else {
                    format!(", producer {}", m.producer)
                }
            ),
        ),
    }
    line("convention:", convention_line(model.convention()));
    line("layers:", l.to_string());
    line(
        "directions:",
        format!("{} (D = {d})", model.direction().onnx_name()),
    );
    line("input_size:", s_i.clone());
    line("hidden_size:", s_h.clone());
    line(
        "clip:",
        model
            .clip()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into()),
    );
    line(
        "parameters:",
        format!(
            "{} (W, R and B = [Wb, Rb] of every layer and direction, as ONNX counts them)",
            model.parameter_count()
        ),
    );
    match &imported {
        Imported::PyTorch(m) => {
            line(
                "bias:",
                if m.bias { "yes" } else { "no (bias=False)" }.into(),
            );
            if !m.ignored.is_empty() {
                line(
                    "ignored:",
                    format!(
                        "{} tensor(s) outside the prefix: {}",
                        m.ignored.len(),
                        m.ignored.join(", ")
                    ),
                );
            }
            line(
                "gru run:",
                format!(
                    "input {} ({} with --batch-first); h0 {}; lengths [B]; output {} ({} with \
                     --batch-first); h_n {}",
                    shape_text(&["T", "B", &s_i]),
                    shape_text(&["B", "T", &s_i]),
                    shape_text(&[&s_ld, "B", &s_h]),
                    shape_text(&["T", "B", &s_dh]),
                    shape_text(&["B", "T", &s_dh]),
                    shape_text(&[&s_ld, "B", &s_h]),
                ),
            );
        }
        Imported::Keras(m) => {
            line(
                "reset_after:",
                format!(
                    "{} ({})",
                    if m.reset_after { "True" } else { "False" },
                    match m.reset_after_source {
                        keras::ResetAfterSource::BiasShape => "from the bias shape",
                        keras::ResetAfterSource::Given => "given; the file has no bias",
                    }
                ),
            );
            line(
                "bias:",
                if m.bias { "yes" } else { "no (use_bias=False)" }.into(),
            );
            line(
                "dense head:",
                match &m.dense {
                    Some(dense) => format!(
                        "dense_kernel ({}, {}), dense_bias ({},) (activation not stored in the \
                         weights)",
                        dense.in_features, dense.out_features, dense.out_features
                    ),
                    None => "none".into(),
                },
            );
            line(
                "gru run:",
                format!(
                    "x {}; initial state {}; y {}; last state {}",
                    shape_text(&["B", "T", &s_i]),
                    shape_text(&["B", &s_h]),
                    shape_text(&["B", "T", &s_h]),
                    shape_text(&["B", &s_h]),
                ),
            );
        }
        Imported::Onnx(m) => {
            line(
                "layout:",
                match m.layout {
                    Layout::SequenceMajor => "0 (X [T, B, I])".into(),
                    Layout::BatchMajor => "1 (X [B, T, I])".into(),
                },
            );
            line(
                "attributes:",
                if m.attributes.is_empty() {
                    "none set (all defaults)".into()
                } else {
                    m.attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            );
            let optional = |name: &Option<String>| match name {
                Some(n) => format!("'{n}'"),
                None => "none".into(),
            };
            line(
                "inputs:",
                format!(
                    "X '{}', sequence_lens {}, initial_h {}",
                    m.x,
                    optional(&m.sequence_lens),
                    optional(&m.initial_h)
                ),
            );
            line(
                "outputs:",
                format!(
                    "Y {}, Y_h {}",
                    optional(&m.outputs[0]),
                    optional(&m.outputs[1])
                ),
            );
            let (x, y, st) = match m.layout {
                Layout::SequenceMajor => (
                    shape_text(&["T", "B", &s_i]),
                    shape_text(&["T", &s_d, "B", &s_h]),
                    shape_text(&[&s_d, "B", &s_h]),
                ),
                Layout::BatchMajor => (
                    shape_text(&["B", "T", &s_i]),
                    shape_text(&["B", "T", &s_d, &s_h]),
                    shape_text(&["B", &s_d, &s_h]),
                ),
            };
            let mut shapes = vec![format!("X {x}")];
            if m.initial_h.is_some() {
                shapes.push(format!("initial_h {st}"));
            }
            if m.sequence_lens.is_some() {
                shapes.push("sequence_lens [B]".into());
            }
            shapes.push(format!("Y {y}; Y_h {st}"));
            line("gru run:", shapes.join("; "));
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// gru info

fn bytes_human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit == "B" {
        format!("{n} B")
    } else {
        format!("{value:.1} {unit}")
    }
}

fn info() -> CliResult {
    let adapters = enumerate_adapters(None);
    if adapters.is_empty() {
        return Err(Failure::Runtime(
            "no GPU adapter: wgpu sees none on any backend (Vulkan, Metal, DX12, GL); install \
             a driver (on Debian: apt-get install mesa-vulkan-drivers gives lavapipe), or use \
             'gru run --device cpu'"
                .into(),
        ));
    }
    let mut s = String::new();
    let plural = if adapters.len() == 1 { "" } else { "s" };
    s.push_str(&format!(
        "gru {}: wgpu sees {} adapter{plural}\n",
        env!("CARGO_PKG_VERSION"),
        adapters.len()
    ));
    for var in ["WGPU_BACKEND", "WGPU_ADAPTER_NAME", "WGPU_POWER_PREF"] {
        if let Ok(v) = std::env::var(var) {
            s.push_str(&format!("{var}={v:?} (used by 'gru run' to pick one)\n"));
        }
    }
    for (n, a) in adapters.iter().enumerate() {
        let (info, l, f) = (&a.info, &a.limits, a.features);
        s.push_str(&format!("\nadapter {n}: {}\n", info.name));
        s.push_str(&format!("  backend:      {:?}\n", info.backend));
        s.push_str(&format!("  device type:  {:?}\n", info.device_type));
        s.push_str(&format!(
            "  driver:       {} ({})\n",
            if info.driver.is_empty() {
                "unknown"
            } else {
                &info.driver
            },
            if info.driver_info.is_empty() {
                "no driver info"
            } else {
                &info.driver_info
            }
        ));
        s.push_str(&format!(
            "  vendor/device: {:#06x} / {:#06x}\n",
            info.vendor, info.device
        ));
        s.push_str("  limits:\n");
        let bytes = |name: &str, v: u64| format!("    {name:<40}{v} ({})\n", bytes_human(v));
        let plain = |name: &str, v: u64| format!("    {name:<40}{v}\n");
        s.push_str(&bytes(
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        ));
        s.push_str(&bytes("max_buffer_size", l.max_buffer_size));
        s.push_str(&plain(
            "max_compute_workgroups_per_dimension",
            u64::from(l.max_compute_workgroups_per_dimension),
        ));
        s.push_str(&plain(
            "max_compute_invocations_per_workgroup",
            u64::from(l.max_compute_invocations_per_workgroup),
        ));
        s.push_str(&bytes(
            "max_compute_workgroup_storage_size",
            u64::from(l.max_compute_workgroup_storage_size),
        ));
        s.push_str(&plain(
            "min_uniform_buffer_offset_alignment",
            u64::from(l.min_uniform_buffer_offset_alignment),
        ));
        let yes = |feature: wgpu::Features| if f.contains(feature) { "yes" } else { "no" };
        s.push_str(&format!(
            "  features:     SHADER_F16 {}, TIMESTAMP_QUERY {}, SUBGROUP {}\n",
            yes(wgpu::Features::SHADER_F16),
            yes(wgpu::Features::TIMESTAMP_QUERY),
            yes(wgpu::Features::SUBGROUP)
        ));
    }
    print(&s)
}
