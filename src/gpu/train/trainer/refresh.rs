//! Rewriting the model's kernel layouts from the trainer's parameters on the device.

use wgpu::util::DeviceExt;

use crate::gpu::model::GpuGru;
use crate::gpu::params::{entry, HeadParams, HEAD_PARAMS};

use super::super::f32_bytes;
use super::{groups_for, HeadPipelines};

/// Records the refresh of `gru`'s kernel layouts from the trainer's `params` (per layer and
/// direction `[W | R | B]`): `Wᵀ` and `Rᵀ` by the transpose kernel, `R`, `Wb` and `Rb` by
/// copies.
pub(super) fn encode_refresh(
    device: &wgpu::Device,
    encoder: &mut wgpu::CommandEncoder,
    gru: &GpuGru,
    params: &[wgpu::Buffer],
    head: &HeadPipelines,
    stride: usize,
    most: u32,
) {
    let (h, nd) = (gru.hidden_size, gru.direction.num_directions());
    let mut slots: Vec<HeadParams> = Vec::new();
    let mut transposes = Vec::new();
    for (l, lw) in gru.layers.iter().enumerate() {
        let k = lw.input_size;
        let n_stride = (nd * 3 * h).next_multiple_of(4);
        for d in 0..nd {
            let p = &params[l * nd + d];
            let (w_len, r_len) = (3 * h * k, 3 * h * h);
            let bias_at = f32_bytes(nd * 3 * h * h + d * 3 * h);
            encoder.copy_buffer_to_buffer(
                p,
                f32_bytes(w_len),
                &lw.rows,
                f32_bytes(d * r_len),
                f32_bytes(r_len),
            );
            encoder.copy_buffer_to_buffer(
                p,
                f32_bytes(w_len + r_len),
                &lw.wb,
                f32_bytes(d * 3 * h),
                f32_bytes(3 * h),
            );
            for target in [&lw.rec, &lw.rows] {
                encoder.copy_buffer_to_buffer(
                    p,
                    f32_bytes(w_len + r_len + 3 * h),
                    target,
                    bias_at,
                    f32_bytes(3 * h),
                );
            }
            for (rows, cols, src_off, dst_off, dst_stride, rec) in [
                (3 * h, k, 0, d * 3 * h, n_stride, false),
                (3 * h, h, 3 * h * k, d * h * 3 * h, 3 * h, true),
            ] {
                slots.push(HeadParams {
                    rows: rows as u32,
                    cols: cols as u32,
                    src_off: src_off as u32,
                    dst_off: dst_off as u32,
                    dst_stride: dst_stride as u32,
                    ..Default::default()
                });
                transposes.push((slots.len() - 1, l, d, rec, rows * cols));
            }
        }
    }
    let mut bytes = vec![0u8; slots.len().max(1) * stride];
    for (s, p) in slots.iter().enumerate() {
        bytes[s * stride..s * stride + HEAD_PARAMS].copy_from_slice(bytemuck::bytes_of(p));
    }
    let slot_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("weight layout params"),
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE,
    });
    let groups: Vec<(wgpu::BindGroup, u32, (u32, u32))> = transposes
        .iter()
        .map(|&(slot, l, d, rec, n)| {
            let lw = &gru.layers[l];
            let dst = if rec { &lw.rec } else { &lw.wt };
            let entries = [
                entry(0, params[l * nd + d].as_entire_binding()),
                entry(1, head.unused_read.as_entire_binding()),
                entry(2, head.unused_read.as_entire_binding()),
                entry(3, dst.as_entire_binding()),
                entry(4, head.unused_write.as_entire_binding()),
                entry(
                    5,
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &slot_buf,
                        offset: 0,
                        size: wgpu::BufferSize::new(HEAD_PARAMS as u64),
                    }),
                ),
            ];
            let g = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("transpose bind group"),
                layout: &head.layout,
                entries: &entries,
            });
            (g, (slot * stride) as u32, groups_for(n, most))
        })
        .collect();
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("weight layouts"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&head.transpose);
    for (g, offset, (gx, gy)) in &groups {
        pass.set_bind_group(0, g, &[*offset]);
        pass.dispatch_workgroups(*gx, *gy, 1);
    }
}
