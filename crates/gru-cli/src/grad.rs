//! `gru grad`: the gradients of a loss through the GRU, given `dL/dY` (and `dL/dY_h`), for the
//! inputs and model `gru run` reads: on the GPU ([`GpuGru::forward_train`] then
//! [`GpuGru::backward`], f32) or the CPU reference path ([`cpu::backward_model`], f64).
//!
//! The outputs are `.npy` arrays (`--dx`, `--dh0`, and for weight arrays the ONNX-shaped
//! `--dw`, `--dr`, `--db`) and `--grads`, every weight gradient under the names and in the
//! shapes of the model file's own weights ([`WeightsFormat`]). Everything is computed and
//! encoded before the first file is written ([`write::write_files`]).
//!
//! [`GpuGru::forward_train`]: gru_wgpu::gpu::GpuGru::forward_train
//! [`GpuGru::backward`]: gru_wgpu::gpu::GpuGru::backward

use std::path::Path;

use gru_wgpu::cpu::{self, GruGradients, LayerGradients};
use gru_wgpu::npy::{self, format_shape};
use gru_wgpu::{Dims, Dtype, Layout};

use crate::args::GradArgs;
use crate::write::{self, NamedTensor};
use crate::{
    describe_run, gpu_model, load_inputs, on_device, one_line, CliResult, DiskFiles, Failure,
    Files, Frame, GpuFailure, Network, Problem, Tensor,
};

/// How a model's weights are named and shaped in its file: what `--grads` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WeightsFormat {
    /// An ONNX GRU node or ONNX-shaped weight arrays: `W [D, 3H, I]`, `R [D, 3H, H]`,
    /// `B [D, 6H]` (gate order z, r, h), as the node's initializers.
    Onnx,
    /// A PyTorch `nn.GRU` `state_dict`: `{prefix}weight_ih_l0`, … (gate order r, z, n).
    PyTorch {
        /// The common prefix of the GRU's names (`"gru."`, or empty).
        prefix: String,
        /// `bias=True`: the file has the bias tensors.
        bias: bool,
    },
    /// Keras `GRU` weights: `kernel (I, 3H)`, `recurrent_kernel (H, 3H)`, `bias`.
    Keras {
        /// `reset_after`: the bias is `(2, 3H)` (True) or `(3H,)` (False).
        reset_after: bool,
        /// `use_bias=True`: the file has a bias.
        bias: bool,
        /// The file's container: `"npz"` or `"safetensors"`.
        container: &'static str,
    },
}

/// A file of named tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Safetensors,
    Npz,
}

impl Container {
    fn extension(self) -> &'static str {
        match self {
            Container::Safetensors => "safetensors",
            Container::Npz => "npz",
        }
    }

    fn encode(self, tensors: &[NamedTensor]) -> CliResult<Vec<u8>> {
        match self {
            Container::Safetensors => write::encode_safetensors(tensors),
            Container::Npz => write::encode_npz(tensors),
        }
    }
}

impl WeightsFormat {
    /// The container `--grads path` is written in: the model file's own (PyTorch:
    /// safetensors; Keras: the file's), or for ONNX `.npz` unless the path ends in
    /// `.safetensors`. A path ending in the other container's extension is a usage error.
    fn container(&self, path: &Path, what: &str) -> CliResult<Container> {
        let named = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("safetensors") => Some(Container::Safetensors),
            Some("npz") => Some(Container::Npz),
            _ => None,
        };
        let own = match self {
            WeightsFormat::Onnx => return Ok(named.unwrap_or(Container::Npz)),
            WeightsFormat::PyTorch { .. } => Container::Safetensors,
            WeightsFormat::Keras { container, .. } if *container == "npz" => Container::Npz,
            WeightsFormat::Keras { .. } => Container::Safetensors,
        };
        match named {
            Some(other) if other != own => Err(Failure::Usage(format!(
                "--grads {path:?} names a .{} file, but the gradients of the {what} are written \
                 as .{} (the model file's own container): give a path ending in .{}",
                other.extension(),
                own.extension(),
                own.extension()
            ))),
            _ => Ok(own),
        }
    }

    /// Every weight gradient under the name and in the shape of the weight it belongs to.
    fn tensors(&self, g: &GruGradients, dims: &Dims) -> Vec<NamedTensor> {
        match self {
            WeightsFormat::Onnx => onnx_arrays(g, dims).into(),
            WeightsFormat::PyTorch { prefix, bias } => g
                .to_pytorch_named()
                .into_iter()
                .filter(|(name, _, _)| *bias || !name.starts_with("bias_"))
                .map(|(name, shape, data)| (format!("{prefix}{name}"), shape, f32s(&data)))
                .collect(),
            WeightsFormat::Keras {
                reset_after, bias, ..
            } => {
                let Some(layer) = g.layers.first().and_then(|l| l.first()) else {
                    return Vec::new();
                };
                let (i, h) = (dims.input_size, dims.hidden_size);
                let k = layer.to_keras(*reset_after);
                let mut out = vec![
                    ("kernel".to_string(), vec![i, 3 * h], f32s(&k.kernel)),
                    (
                        "recurrent_kernel".to_string(),
                        vec![h, 3 * h],
                        f32s(&k.recurrent_kernel),
                    ),
                ];
                if *bias {
                    let shape = if *reset_after {
                        vec![2, 3 * h]
                    } else {
                        vec![3 * h]
                    };
                    out.push(("bias".to_string(), shape, f32s(&k.bias)));
                }
                out
            }
        }
    }
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The first layer's weight gradients in ONNX's shapes, its directions stacked: `W [D, 3H,
/// I]`, `R [D, 3H, H]`, `B [D, 6H]` (an ONNX GRU node, and weight arrays, have one layer).
fn onnx_arrays(g: &GruGradients, dims: &Dims) -> [NamedTensor; 3] {
    let layer: &[LayerGradients] = g.layers.first().map(Vec::as_slice).unwrap_or_default();
    let (d, i, h) = (layer.len(), dims.input_size, dims.hidden_size);
    let stack = |part: fn(&LayerGradients) -> &[f64]| -> Vec<f32> {
        layer.iter().flat_map(|l| f32s(part(l))).collect()
    };
    [
        ("W".to_string(), vec![d, 3 * h, i], stack(|l| &l.dw)),
        ("R".to_string(), vec![d, 3 * h, h], stack(|l| &l.dr)),
        ("B".to_string(), vec![d, 6 * h], stack(|l| &l.db)),
    ]
}

/// What the dimensions of `Y` mean, in the network's framework.
fn y_meaning(net: &Network) -> &'static str {
    match (net.frame, net.layout) {
        (Frame::Keras, _) => "[batch, timesteps, units] (Keras's return_sequences output)",
        (Frame::PyTorch, Layout::SequenceMajor) => {
            "[seq_len, batch, num_directions*hidden_size] (PyTorch's output)"
        }
        (Frame::PyTorch, Layout::BatchMajor) => {
            "[batch, seq_len, num_directions*hidden_size] (PyTorch's output, batch_first)"
        }
        (Frame::Onnx, Layout::SequenceMajor) => {
            "[seq_length, num_directions, batch_size, hidden_size]"
        }
        (Frame::Onnx, Layout::BatchMajor) => {
            "[batch_size, seq_length, num_directions, hidden_size] (layout 1)"
        }
    }
}

/// Runs `gru grad`.
/// What `gru grad` computes from: the problem `gru run` would run, and the loss's gradients
/// `dY` (and `dY_h`) checked against the shapes `gru run` writes `Y` and `Y_h` in.
pub struct GradProblem {
    problem: Problem,
    dy: Vec<f32>,
    dy_h: Option<Vec<f32>>,
}

impl GradProblem {
    /// The problem of the forward.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// `dY`, in `Y`'s shape.
    pub fn dy(&self) -> &[f32] {
        &self.dy
    }

    /// `dY_h`, in `Y_h`'s shape, when given.
    pub fn dy_h(&self) -> Option<&[f32]> {
        self.dy_h.as_deref()
    }
}

/// Reads and checks everything `gru grad` reads (the model or weight arrays, X and the other
/// inputs as [`crate::load_problem`] does, then `dY` and `dY_h`), from `files`.
pub fn load_grad_problem(args: &GradArgs, files: &dyn Files) -> CliResult<GradProblem> {
    let p = load_inputs(&args.input, files)?;
    let net = &p.net;
    let dims = p.dims;
    // A --grads file the model's format cannot be written as is a usage error, found before
    // dY is read.
    if let Some(path) = &args.outputs.grads {
        net.weights.container(path, &net.what)?;
    }
    // dY and dY_h in the shapes `gru run` writes Y and Y_h in.
    let why = |output: &str| {
        format!(
            " ({output}'s shape, as 'gru run' writes it for X of shape {} and the {})",
            format_shape(&dims.x_shape()),
            net.what
        )
    };
    let dy = Tensor::load("dY", &args.dy, files)?;
    dy.expect_shape(&dims.y_shape(), y_meaning(net), &why("Y"))?;
    let state_shape = net.state_shape(&dims);
    let dy_h = match &args.dy_h {
        Some(path) => {
            let t = Tensor::load("dY_h", path, files)?;
            t.expect_shape(&state_shape, net.state_meaning(), &why("Y_h"))?;
            Some(t.array.data)
        }
        None => None,
    };
    Ok(GradProblem {
        problem: p,
        dy: dy.array.data,
        dy_h,
    })
}

pub(crate) fn grad(args: GradArgs) -> CliResult {
    let files = DiskFiles;
    let outputs = &args.outputs;
    let loaded = load_grad_problem(&args, &files)?;
    let p = &loaded.problem;
    let net = &p.net;
    let dims = p.dims;
    let container = match &outputs.grads {
        Some(path) => Some(net.weights.container(path, &net.what)?),
        None => None,
    };
    let state_shape = net.state_shape(&dims);
    let (dy, dy_h) = (&loaded.dy, loaded.dy_h.as_deref());

    let model = &net.model;
    let input = p.input();
    let (g, ran_on, _) = on_device(
        args.input.device,
        || {
            let (mut gpu, describe) = gpu_model(model, Dtype::F32)?;
            let (_, saved) = gpu.forward_train(&input).map_err(GpuFailure::Run)?;
            let g = gpu.backward(&saved, dy, dy_h).map_err(GpuFailure::Run)?;
            Ok((g, describe))
        },
        || cpu::backward_model(model, &input, dy, dy_h),
    )?;

    // Every output encoded before the first is written.
    let [w, r, b] = onnx_arrays(&g, &dims);
    let arrays = [
        (&outputs.dx, "dX", dims.x_shape(), f32s(&g.dx)),
        (&outputs.dh0, "dh0", state_shape, f32s(&g.dh0)),
        (&outputs.dw, "dW", w.1, w.2),
        (&outputs.dr, "dR", r.1, r.2),
        (&outputs.db, "dB", b.1, b.2),
    ];
    let mut files: Vec<(&Path, Vec<u8>)> = Vec::new();
    let mut wrote = Vec::new();
    for (path, label, shape, data) in &arrays {
        if let Some(path) = path {
            files.push((path, npy::encode_f32(shape, data)?));
            wrote.push(format!(
                "{label} {} {}",
                path.display(),
                format_shape(shape)
            ));
        }
    }
    if let (Some(path), Some(container)) = (&outputs.grads, container) {
        let tensors = net.weights.tensors(&g, &dims);
        files.push((path, container.encode(&tensors)?));
        let names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
        let names = match names.as_slice() {
            [first, .., last] if names.len() > 4 => format!("{first}, …, {last}"),
            _ => names.join(", "),
        };
        wrote.push(format!(
            "{} ({} tensors: {names})",
            path.display(),
            tensors.len()
        ));
    }
    write::write_files(&files)?;

    for note in &p.notes {
        eprintln!("gru: note: {}", one_line(note));
    }
    eprintln!(
        "gru: computed gradients on {}: {}; wrote {}",
        one_line(&ran_on),
        describe_run(p),
        wrote.join(", ")
    );
    Ok(())
}
