//! `gru`: runs an ONNX-style GRU over `.npy` files on the GPU (wgpu) or the CPU reference
//! path, and lists the adapters wgpu sees. Run `gru --help` for the usage.
//!
//! Every error is one line on stderr starting with `gru: `; the exit status is 2 for usage
//! errors, 1 for everything else (unreadable or malformed files, shapes that do not fit
//! together, no GPU with `--device gpu`, device failures).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gru_wgpu::gpu::{enumerate_adapters, GpuContext, GpuGru};
use gru_wgpu::npy::{self, format_shape, NpyArray};
use gru_wgpu::{cpu, Convention, GruError, GruInput, GruOutput, GruWeights};

const USAGE: &str = "\
gru: GRU inference through wgpu (ONNX GRU semantics, one direction, gate order z, r, h)

Usage:
  gru run --x X.npy --w W.npy --r R.npy [--b B.npy] [--initial-h H0.npy]
          [--linear-before-reset] [--device auto|gpu|cpu] --y Y.npy --y-h Y_H.npy
  gru info
  gru help | gru --help

gru run: shapes are those of the ONNX GRU operator (layout 0, num_directions = 1):
  --x X.npy              input X[seq_length, batch_size, input_size]
  --w W.npy              W[1, 3*hidden_size, input_size]
  --r R.npy              R[1, 3*hidden_size, hidden_size] (hidden_size is read from R)
  --b B.npy              B[1, 6*hidden_size] = [Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h]
                         (optional; zeros when absent)
  --initial-h H0.npy     initial_h[1, batch_size, hidden_size] (optional; zeros when absent)
  --linear-before-reset  ONNX linear_before_reset=1 (PyTorch, cuDNN, Keras reset_after=True);
                         without it, linear_before_reset=0 (the ONNX default)
  --device D             auto (default): the GPU, else the CPU reference path;
                         gpu: the GPU or an error; cpu: the CPU reference path
  --y Y.npy              output Y[seq_length, 1, batch_size, hidden_size], float32
  --y-h Y_H.npy          output Y_h[1, batch_size, hidden_size], float32
  Inputs are float32 or float64 (converted to float32) arrays in C order, as np.save writes
  them. `--flag=value` works too.

gru info: lists the adapters wgpu sees, with the limits and features that matter here.

Environment: WGPU_BACKEND (vulkan, metal, dx12, gl), WGPU_ADAPTER_NAME (a substring of the
adapter name) and WGPU_POWER_PREF (low, high) choose the adapter of `gru run`.
Exit status: 0 success, 1 error (files, shapes, device), 2 usage error.
";

/// Why the command failed; each is printed as one line.
enum Failure {
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

type CliResult<T = ()> = Result<T, Failure>;

fn main() -> ExitCode {
    // A bug must still be one line on stderr, not a backtrace prompt.
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "gru: internal error{place}: {}; please report it",
            one_line(&payload)
        );
    }));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match std::panic::catch_unwind(move || cli(args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Failure::Usage(m))) => {
            eprintln!("gru: {}", one_line(&m));
            ExitCode::from(2)
        }
        Ok(Err(Failure::Runtime(m))) => {
            eprintln!("gru: {}", one_line(&m));
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// Joins the lines of a message so that every error stays on one line.
fn one_line(s: &str) -> String {
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

fn cli(args: Vec<OsString>) -> CliResult {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return print(USAGE);
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("run") => match parse_run(rest)? {
            Some(args) => run(args),
            None => Ok(()),
        },
        Some("info") => {
            if let Some(extra) = rest.first() {
                if matches!(extra.to_str(), Some("--help" | "-h")) {
                    return print(USAGE);
                }
                return Err(Failure::Usage(format!(
                    "'gru info' takes no arguments, got {extra:?}; see 'gru --help'"
                )));
            }
            info()
        }
        Some("help" | "--help" | "-h") => print(USAGE),
        Some("--version" | "-V") => print(&format!("gru {}\n", env!("CARGO_PKG_VERSION"))),
        Some(other) if other.starts_with('-') => Err(Failure::Usage(format!(
            "unknown flag '{other}' before a subcommand; expected 'run', 'info' or 'help' \
             (see 'gru --help')"
        ))),
        Some(other) => Err(Failure::Usage(format!(
            "unknown subcommand '{other}'; expected 'run', 'info' or 'help' (see 'gru --help')"
        ))),
        None => Err(Failure::Usage(format!(
            "unknown subcommand {command:?}; expected 'run', 'info' or 'help'"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// gru run: arguments

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

struct RunArgs {
    x: PathBuf,
    w: PathBuf,
    r: PathBuf,
    b: Option<PathBuf>,
    initial_h: Option<PathBuf>,
    convention: Convention,
    device: DeviceChoice,
    y: PathBuf,
    y_h: PathBuf,
}

/// The value flags of `gru run`, in the order the usage lists them.
const VALUE_FLAGS: [&str; 8] = ["x", "w", "r", "b", "initial-h", "device", "y", "y-h"];

/// The arguments of `gru run`, or `None` when `--help` was asked for (and printed).
fn parse_run(args: Vec<OsString>) -> CliResult<Option<RunArgs>> {
    let mut values: [Option<OsString>; VALUE_FLAGS.len()] = Default::default();
    let mut linear_before_reset = false;
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(Failure::Usage(format!(
                "unexpected argument {arg:?} for 'gru run'; see 'gru run --help'"
            )));
        };
        if text == "--help" || text == "-h" {
            // Help wins over every other problem on the line.
            print(USAGE)?;
            return Ok(None);
        }
        let Some(flag) = text.strip_prefix("--") else {
            return Err(Failure::Usage(format!(
                "unexpected argument '{text}' for 'gru run' (flags start with --); \
                 see 'gru run --help'"
            )));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(OsString::from(v))),
            None => (flag, None),
        };
        let name = name.replace('_', "-");
        if name == "linear-before-reset" {
            if inline.is_some() {
                return Err(Failure::Usage(
                    "--linear-before-reset takes no value (it selects linear_before_reset=1)"
                        .into(),
                ));
            }
            if linear_before_reset {
                return Err(Failure::Usage("--linear-before-reset given twice".into()));
            }
            linear_before_reset = true;
            continue;
        }
        let Some(slot) = VALUE_FLAGS.iter().position(|f| *f == name) else {
            return Err(Failure::Usage(format!(
                "unknown flag '--{name}' for 'gru run'; see 'gru run --help'"
            )));
        };
        let value = match inline {
            Some(v) => v,
            None => match args.peek().and_then(|v| v.to_str()) {
                Some(next) if next.starts_with("--") => {
                    return Err(Failure::Usage(format!(
                        "missing value for --{name} (found the flag '{next}' instead)"
                    )))
                }
                _ => args
                    .next()
                    .ok_or_else(|| Failure::Usage(format!("missing value for --{name}")))?,
            },
        };
        if value.is_empty() {
            return Err(Failure::Usage(format!("empty value for --{name}")));
        }
        if values[slot].is_some() {
            return Err(Failure::Usage(format!("--{name} given twice")));
        }
        values[slot] = Some(value);
    }

    let [x, w, r, b, initial_h, device, y, y_h] = values;
    let missing: Vec<String> = [("x", &x), ("w", &w), ("r", &r), ("y", &y), ("y-h", &y_h)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| format!("--{n}"))
        .collect();
    let (Some(x), Some(w), Some(r), Some(y), Some(y_h)) = (x, w, r, y, y_h) else {
        return Err(Failure::Usage(format!(
            "'gru run' needs {} (missing: {}); see 'gru run --help'",
            "--x, --w, --r, --y and --y-h",
            missing.join(", ")
        )));
    };
    let device = match device.as_ref().map(|d| d.to_str()) {
        None => DeviceChoice::Auto,
        Some(Some("auto")) => DeviceChoice::Auto,
        Some(Some("gpu")) => DeviceChoice::Gpu,
        Some(Some("cpu")) => DeviceChoice::Cpu,
        Some(_) => {
            return Err(Failure::Usage(format!(
                "invalid --device {:?}; expected auto, gpu or cpu",
                device.unwrap_or_default()
            )))
        }
    };
    if y == y_h {
        return Err(Failure::Usage(format!(
            "--y and --y-h name the same file {y:?}; give two different paths"
        )));
    }
    Ok(Some(RunArgs {
        x: x.into(),
        w: w.into(),
        r: r.into(),
        b: b.map(Into::into),
        initial_h: initial_h.map(Into::into),
        convention: if linear_before_reset {
            Convention::ResetAfter
        } else {
            Convention::ResetBefore
        },
        device,
        y: y.into(),
        y_h: y_h.into(),
    }))
}

// ---------------------------------------------------------------------------------------------
// gru run: shapes

/// One loaded input: its ONNX name, its file and its contents.
struct Tensor {
    label: &'static str,
    path: PathBuf,
    array: NpyArray,
}

impl Tensor {
    fn load(label: &'static str, path: &Path) -> CliResult<Tensor> {
        Ok(Tensor {
            label,
            path: path.to_path_buf(),
            array: npy::read_f32(path)?,
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

/// The validated problem: weights, inputs and sizes.
struct Problem {
    weights: GruWeights,
    x: Vec<f32>,
    initial_h: Option<Vec<f32>>,
    seq_len: usize,
    batch: usize,
    hidden: usize,
}

fn load_problem(args: &RunArgs) -> CliResult<Problem> {
    let x = Tensor::load("X", &args.x)?;
    let w = Tensor::load("W", &args.w)?;
    let r = Tensor::load("R", &args.r)?;
    let b = args
        .b
        .as_deref()
        .map(|p| Tensor::load("B", p))
        .transpose()?;
    let initial_h = args
        .initial_h
        .as_deref()
        .map(|p| Tensor::load("initial_h", p))
        .transpose()?;

    // X[T, B, I].
    let &[t, batch, i] = x.array.shape.as_slice() else {
        return Err(Failure::Runtime(format!(
            "{} has {} dimensions, expected 3: [seq_length, batch_size, input_size]",
            x.describe(),
            x.array.shape.len()
        )));
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

    // R[1, 3H, H] gives H.
    let &[dirs, h3, h] = r.array.shape.as_slice() else {
        return Err(Failure::Runtime(format!(
            "{} has {} dimensions, expected 3: [num_directions=1, 3*hidden_size, hidden_size]",
            r.describe(),
            r.array.shape.len()
        )));
    };
    if dirs != 1 {
        return Err(Failure::Runtime(format!(
            "{} has num_directions {dirs}; only forward (num_directions = 1) GRUs are \
             supported, so R must be [1, 3*hidden_size, hidden_size]",
            r.describe()
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
                 [1, 3*hidden_size, input_size] instead of R?)",
                h3 / 3
            )
        } else {
            format!(
                " (dimension 1 gives hidden_size {}, dimension 2 gives {h})",
                h3 / 3
            )
        };
        return Err(Failure::Runtime(format!(
            "{} is not [1, 3*hidden_size, hidden_size]: dimension 1 must be 3 × dimension 2 \
             and hidden_size at least 1{detail}",
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
        &[1, h3, i],
        "[num_directions=1, 3*hidden_size, input_size]",
        &why_w,
    )?;
    if let Some(b) = &b {
        let h6 = mul(2, h3, "6*hidden_size")?;
        b.expect_shape(
            &[1, h6],
            "[num_directions=1, 6*hidden_size]",
            &format!(" (hidden_size {h} from {})", r.describe()),
        )?;
    }
    if let Some(h0) = &initial_h {
        h0.expect_shape(
            &[1, batch, h],
            "[num_directions=1, batch_size, hidden_size]",
            &format!(
                " (batch_size {batch} from {}, hidden_size {h} from {})",
                x.describe(),
                r.describe()
            ),
        )?;
    }
    mul(mul(t, batch, "seq_length*batch_size")?, h, "Y elements")?;

    let weights = GruWeights::new(
        args.convention,
        i,
        h,
        w.array.data,
        r.array.data,
        b.map(|b| b.array.data),
    )?;
    Ok(Problem {
        weights,
        x: x.array.data,
        initial_h: initial_h.map(|h0| h0.array.data),
        seq_len: t,
        batch,
        hidden: h,
    })
}

// ---------------------------------------------------------------------------------------------
// gru run: compute

/// Why the GPU path did not produce a result.
enum GpuFailure {
    /// No context could be made (no adapter, or the device was refused).
    Context(GruError),
    /// The context exists but the model or the forward failed.
    Run(GruError),
}

fn run_gpu(weights: &GruWeights, input: &GruInput<'_>) -> Result<(GruOutput, String), GpuFailure> {
    let ctx = GpuContext::new().map_err(GpuFailure::Context)?;
    let describe = ctx.describe();
    let mut model = GpuGru::new(&ctx, weights).map_err(GpuFailure::Run)?;
    let out = model.forward(input).map_err(GpuFailure::Run)?;
    Ok((out, describe))
}

fn run(args: RunArgs) -> CliResult {
    let p = load_problem(&args)?;
    let mut input = GruInput::new(&p.x, p.seq_len, p.batch);
    if let Some(h0) = &p.initial_h {
        input = input.with_initial_h(h0);
    }
    const CPU: &str = "the CPU reference path (f64 accumulation)";

    let (out, ran_on) = match args.device {
        DeviceChoice::Cpu => (cpu::forward(&p.weights, &input)?, CPU.to_string()),
        DeviceChoice::Gpu => match run_gpu(&p.weights, &input) {
            Ok((out, describe)) => (out, format!("the GPU, {describe}")),
            Err(GpuFailure::Context(e)) => {
                return Err(Failure::Runtime(format!(
                    "--device gpu: {e}; pass --device cpu (or auto) to run on the CPU \
                     reference path"
                )))
            }
            Err(GpuFailure::Run(e)) => {
                return Err(Failure::Runtime(format!(
                    "--device gpu: {e}; pass --device cpu to run on the CPU reference path"
                )))
            }
        },
        DeviceChoice::Auto => match run_gpu(&p.weights, &input) {
            Ok((out, describe)) => (out, format!("the GPU, {describe}")),
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
                (cpu::forward(&p.weights, &input)?, CPU.to_string())
            }
        },
    };

    let (t, b, h) = (p.seq_len, p.batch, p.hidden);
    npy::write_f32(&args.y, &[t, 1, b, h], &out.y)?;
    npy::write_f32(&args.y_h, &[1, b, h], &out.y_h)?;
    eprintln!(
        "gru: ran on {}: seq_length {t}, batch_size {b}, input_size {}, hidden_size {h}, \
         linear_before_reset={}; wrote {} and {}",
        one_line(&ran_on),
        p.weights.input_size(),
        p.weights.convention().linear_before_reset(),
        args.y.display(),
        args.y_h.display()
    );
    Ok(())
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
