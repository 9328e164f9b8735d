//! Writing a model back in the frameworks' own names and layouts (the inverse of the
//! importers, so that each file round-trips through them exactly): a PyTorch `nn.GRU`
//! `state_dict`, Keras `GRU` weights, or an ONNX GRU node's `W`, `R`, `B`. A dense head goes
//! beside the GRU's tensors as each framework names it. The tensors are named arrays
//! ([`NamedTensor`]); `.safetensors`, `.npz` and `.onnx` containers are written by the caller
//! (the command line).

use std::io::{Cursor, Write};

use crate::error::{GruError, Result};
use crate::model::{Direction, GruModel};
use crate::npy;
use crate::weights::{transpose, zrh_to_rzn, Convention, GruWeights};

/// A tensor to write: its name, shape and values (row-major).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// A dense head `z = W·x + b`: `weight [out, in]` (PyTorch's order) and `bias [out]`.
#[derive(Clone, Copy, Debug)]
pub struct HeadTensors<'a> {
    /// `[out, in]`.
    pub weight: &'a [f32],
    /// `[out]`.
    pub bias: &'a [f32],
}

/// Errors unless `model` has no clip (no framework but ONNX stores one).
fn no_clip(model: &GruModel, to: &str) -> Result<()> {
    match model.clip() {
        None => Ok(()),
        Some(c) => Err(GruError::invalid(
            format!("model for {to}"),
            "no clip (only ONNX stores one)",
            format!("clip {c}"),
        )),
    }
}

/// The `nn.GRU` `state_dict` of `model` under `prefix` (`"gru."`, or `""`): per layer `k` and
/// direction `weight_ih_l{k}[_reverse] [3H, K]`, `weight_hh_l{k} [3H, H]`, `bias_ih_l{k}
/// [3H]`, `bias_hh_l{k} [3H]` in PyTorch's gate order r, z, n; then, with `head`, PyTorch
/// `nn.Linear`'s `head.weight [out, D·H]` and `head.bias [out]`.
///
/// Errors: a reset-before model (`nn.GRU` is reset-after), a model with a clip, a reverse-only
/// network (`nn.GRU` runs forward or both ways).
pub fn pytorch_state_dict(
    model: &GruModel,
    prefix: &str,
    head: Option<HeadTensors<'_>>,
) -> Result<Vec<NamedTensor>> {
    if model.convention() != Convention::ResetAfter {
        return Err(GruError::invalid(
            "model for a PyTorch state_dict",
            "the reset-after convention (nn.GRU's)",
            "reset-before",
        ));
    }
    no_clip(model, "a PyTorch state_dict")?;
    if model.direction() == Direction::Reverse {
        return Err(GruError::invalid(
            "model for a PyTorch state_dict",
            "a forward or bidirectional network (nn.GRU has no reverse-only form)",
            "a reverse network",
        ));
    }
    let mut out = Vec::new();
    for (l, layer) in model.layers().iter().enumerate() {
        for (d, w) in layer.iter().enumerate() {
            let suffix = if d == 1 { "_reverse" } else { "" };
            let (h, k) = (w.hidden_size(), w.input_size());
            let h3 = 3 * h;
            let name = |stem: &str| format!("{prefix}{stem}_l{l}{suffix}");
            out.push((name("weight_ih"), vec![h3, k], zrh_to_rzn(w.w())));
            out.push((name("weight_hh"), vec![h3, h], zrh_to_rzn(w.r())));
            out.push((name("bias_ih"), vec![h3], zrh_to_rzn(&w.b()[..h3])));
            out.push((name("bias_hh"), vec![h3], zrh_to_rzn(&w.b()[h3..])));
        }
    }
    if let Some(head) = head {
        let n = head.bias.len();
        let k = head.weight.len() / n.max(1);
        out.push(("head.weight".into(), vec![n, k], head.weight.to_vec()));
        out.push(("head.bias".into(), vec![n], head.bias.to_vec()));
    }
    Ok(out)
}

/// The Keras `GRU` weights of a one-layer forward `model`: `kernel (I, 3H)`,
/// `recurrent_kernel (H, 3H)` and `bias`: `(2, 3H)` for reset-after (`reset_after=True`),
/// `(3H,)` for reset-before (`reset_after=False`, whose one bias is the sum `Wb + Rb`: the
/// same network); then, with `head`, `dense_kernel (H, out)` and `dense_bias (out,)`.
///
/// Errors: more than one layer, a reverse or bidirectional network, a clip.
pub fn keras_weights(model: &GruModel, head: Option<HeadTensors<'_>>) -> Result<Vec<NamedTensor>> {
    if model.num_layers() != 1 || model.direction() != Direction::Forward {
        return Err(GruError::invalid(
            "model for Keras weights",
            "one forward layer (a Keras GRU layer)",
            format!("{} layer(s), {:?}", model.num_layers(), model.direction()),
        ));
    }
    no_clip(model, "Keras weights")?;
    let w: &GruWeights = &model.layers()[0][0];
    let (h, k) = (w.hidden_size(), w.input_size());
    let h3 = 3 * h;
    let (bias, shape) = match w.convention() {
        Convention::ResetAfter => (w.b().to_vec(), vec![2, h3]),
        Convention::ResetBefore => (
            (0..h3).map(|j| w.b()[j] + w.b()[h3 + j]).collect(),
            vec![h3],
        ),
    };
    let mut out = vec![
        ("kernel".to_string(), vec![k, h3], transpose(w.w(), h3, k)),
        (
            "recurrent_kernel".to_string(),
            vec![h, h3],
            transpose(w.r(), h3, h),
        ),
        ("bias".to_string(), shape, bias),
    ];
    if let Some(head) = head {
        let n = head.bias.len();
        let f = head.weight.len() / n.max(1);
        out.push((
            "dense_kernel".into(),
            vec![f, n],
            transpose(head.weight, n, f),
        ));
        out.push(("dense_bias".into(), vec![n], head.bias.to_vec()));
    }
    Ok(out)
}

/// An ONNX GRU node's initializers for a one-layer `model`: `W [D, 3H, I]`, `R [D, 3H, H]`,
/// `B [D, 6H]` (gate order z, r, h, directions stacked).
///
/// Errors: more than one layer (an ONNX GRU node is one layer).
pub fn onnx_arrays(model: &GruModel) -> Result<[NamedTensor; 3]> {
    if model.num_layers() != 1 {
        return Err(GruError::invalid(
            "model for an ONNX GRU node",
            "one layer",
            format!("{} layers", model.num_layers()),
        ));
    }
    let layer = &model.layers()[0];
    let (d, h, i) = (layer.len(), model.hidden_size(), layer[0].input_size());
    let stack = |part: fn(&GruWeights) -> &[f32]| -> Vec<f32> {
        layer.iter().flat_map(|w| part(w).iter().copied()).collect()
    };
    Ok([
        ("W".to_string(), vec![d, 3 * h, i], stack(GruWeights::w)),
        ("R".to_string(), vec![d, 3 * h, h], stack(GruWeights::r)),
        ("B".to_string(), vec![d, 6 * h], stack(GruWeights::b)),
    ])
}

/// The bytes of a `.safetensors` file holding `tensors` as `F32` (safetensors' own writer).
/// Errors: a shape that does not match its values, a name given twice.
pub fn encode_safetensors(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let failed = |e: safetensors::SafeTensorError| {
        GruError::invalid(
            "tensors for a .safetensors file",
            "shapes that match their values",
            e,
        )
    };
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), data).map_err(failed)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(failed)
}

/// The bytes of an `.npz` archive holding `tensors` as stored `NAME.npy` members, as
/// `np.savez` writes them (`np.load` and the Keras importer read it).
pub fn encode_npz(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let failed = |e: &dyn std::fmt::Display| {
        GruError::invalid("tensors for an .npz archive", "an archive zip can write", e)
    };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, shape, data) in tensors {
        let member = npy::encode_f32(shape, data)?;
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(member.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{name}.npy"), options)
            .map_err(|e| failed(&e))?;
        zip.write_all(&member).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}
