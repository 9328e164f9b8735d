//! Rewriting the model's kernel layouts from the trainer's parameters on the device.

use crate::gpu::model::GpuGru;
use crate::gpu::params::HeadParams;

use super::super::f32_bytes;
use super::{groups_for, head_bind_group, slot_buffer, HeadPipelines};

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
    let slot_buf = slot_buffer(device, "weight layout params", &slots, stride);
    let groups: Vec<(wgpu::BindGroup, u32, (u32, u32))> = transposes
        .iter()
        .map(|&(slot, l, d, rec, n)| {
            let lw = &gru.layers[l];
            let dst = if rec { &lw.rec } else { &lw.wt };
            let bufs = [
                &params[l * nd + d],
                &head.unused_read,
                &head.unused_read,
                dst,
                &head.unused_write,
            ];
            let g = head_bind_group(device, head, bufs, &slot_buf);
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
