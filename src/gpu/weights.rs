//! A model's weights on the device: the layout the kernels read (`Wᵀ`, `Wb`, `Rᵀ` + `Rb`
//! per layer, every direction side by side), the binding-size checks for it, and the upload.

use wgpu::util::DeviceExt;

use crate::dtype::Dtype;
use crate::error::Result;
use crate::gpu::limits::check_binding;
use crate::gpu::params::bytes_of;
use crate::model::ModelView;
use crate::weights::GruWeights;

/// A layer's weights on the device (cloning shares the buffers: [`crate::gpu::GpuGru::share`]).
#[derive(Clone)]
pub(super) struct LayerWeights {
    /// `[K, D·3H]`: every direction's `Wᵀ`, side by side.
    pub(super) wt: wgpu::Buffer,
    /// `[D·3H]`: every direction's `Wb`.
    pub(super) wb: wgpu::Buffer,
    /// Every direction's `Rᵀ [H, 3H]`, then every direction's `Rb [3H]`: the staged, direct
    /// and persistent kernels, where consecutive invocations own consecutive hidden units.
    pub(super) rec: wgpu::Buffer,
    /// Every direction's `R [3H, H]` row-major, then every direction's `Rb [3H]` (the same
    /// size and bias offset as `rec`): the split kernel, whose lanes walk one row along K.
    /// Both layouts are uploaded once, with the model, so any step kernel can be chosen
    /// later without touching the weights again; this doubles `R`'s device memory.
    pub(super) rows: wgpu::Buffer,
    /// `K`: `I` for layer 0, `D·H` after.
    pub(super) input_size: usize,
}

/// Errors when a layer's weights of `model`, stored as `dtype`, exceed a binding limit.
pub(super) fn check_weights(
    limits: &wgpu::Limits,
    model: &ModelView<'_>,
    dtype: Dtype,
) -> Result<()> {
    let h = model.first().hidden_size();
    let n_dir = model.num_directions();
    for (l, layer) in model.layers.iter().enumerate() {
        let k = layer[0].input_size();
        check_binding(
            limits,
            format!("layer {l} weights Wᵀ [K={k}, D·3H={}]", n_dir * 3 * h),
            bytes_of("W", n_dir * 3 * h * k, dtype)?,
        )?;
        check_binding(
            limits,
            format!(
                "layer {l} weights Rᵀ and Rb [D={n_dir}, H+1={}, 3H={}]",
                h + 1,
                3 * h
            ),
            bytes_of("R", n_dir * 3 * h * (h + 1), dtype)?,
        )?;
    }
    Ok(())
}

/// Uploads every layer of `model` to `device` as `dtype`, laid out by [`layer_arrays`].
pub(super) fn upload_layers(
    device: &wgpu::Device,
    model: &ModelView<'_>,
    dtype: Dtype,
) -> Vec<LayerWeights> {
    let upload = |label: &str, data: &[f32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &dtype.encode(data),
            // Copies: the trainer refreshes these layouts from its parameters after a step.
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        })
    };
    model
        .layers
        .iter()
        .map(|layer| {
            let (wt, wb, rec, rows) = layer_arrays(layer);
            LayerWeights {
                wt: upload("Wt [K, D·3H]", &wt),
                wb: upload("Wb [D·3H]", &wb),
                rec: upload("Rt [D, H, 3H] + Rb [D, 3H]", &rec),
                rows: upload("R [D, 3H, H] + Rb [D, 3H]", &rows),
                input_size: layer[0].input_size(),
            }
        })
        .collect()
}

/// A layer's weights laid out for the kernels (see [`LayerWeights`]).
fn layer_arrays(layer: &[&GruWeights]) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = layer[0].hidden_size();
    let k = layer[0].input_size();
    let (h3, width) = (3 * h, 3 * h * layer.len());
    let n_stride = width.next_multiple_of(4);
    let mut wt = vec![0.0f32; k * n_stride];
    let mut wb = Vec::with_capacity(width);
    let mut rec = vec![0.0f32; layer.len() * h * h3];
    let mut rb = Vec::with_capacity(width);
    for (d, w) in layer.iter().enumerate() {
        for n in 0..h3 {
            for kk in 0..k {
                wt[kk * n_stride + d * h3 + n] = w.w()[n * k + kk];
            }
            for kk in 0..h {
                rec[d * h * h3 + kk * h3 + n] = w.r()[n * h + kk];
            }
        }
        wb.extend_from_slice(&w.b()[..h3]);
        rb.extend_from_slice(&w.b()[h3..]);
    }
    // R as given ([3H, H] row-major per direction), directions one after the other.
    let mut rows: Vec<f32> = layer.iter().flat_map(|w| w.r().iter().copied()).collect();
    rows.extend_from_slice(&rb);
    rec.extend(rb);
    (wt, wb, rec, rows)
}
