//! Recording a forward's dispatches: per layer the input-projection GEMM pieces, then the
//! recurrence (one or two step dispatches per timestep, or persistent chunks).

use crate::gpu::model::GpuGru;
use crate::gpu::path::KernelPath;
use crate::gpu::scratch::Scratch;

impl GpuGru {
    /// Records every layer of a forward over `s`'s shape into `encoder`: the input
    /// projection, then the recurrence, each in a compute pass of its own (so that each can
    /// carry its own timestamps when profiling); then resolves the timestamps. `s.x`,
    /// `s.lens` and `s.h0` must hold the input, the lengths and the initial state.
    pub(super) fn encode_layers(&self, s: &Scratch, encoder: &mut wgpu::CommandEncoder) {
        let dims = &s.key.dims;
        if let Some(v) = self.poison {
            // Debugging aid (set_poison): every output and scratch element starts as `v`.
            let queue = self.ctx.queue();
            for buf in [
                Some(&s.xp),
                Some(&s.y),
                Some(&s.yh),
                Some(&s.gates),
                s.inter.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                let fill = vec![v; (buf.size() / 4) as usize];
                queue.write_buffer(buf, 0, bytemuck::cast_slice(&fill));
            }
        }
        let [groups_x, groups_y, groups_z] =
            self.recurrence(dims.batch)
                .grid(self.hidden_size, dims.batch, dims.num_directions);
        let step_pipelines = self.pipelines.steps.get(self.step_kernel());
        let single = step_pipelines.len() == 1;
        let persistent = match (s.key.path, &self.pipelines.persistent) {
            (KernelPath::Persistent, Some((p, _))) => Some(p),
            _ => None,
        };
        let pass_desc = |label: &'static str, first: u32| wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: s
                .timestamps
                .as_ref()
                .map(|ts| wgpu::ComputePassTimestampWrites {
                    query_set: &ts.set,
                    beginning_of_pass_write_index: Some(first),
                    end_of_pass_write_index: Some(first + 1),
                }),
        };
        for l in 0..self.layers.len() {
            let first = 4 * l as u32;
            {
                let mut pass = encoder.begin_compute_pass(&pass_desc("input projection", first));
                pass.set_pipeline(self.gemm_pipeline(s.key.gemm, l));
                for d in &s.gemm_dispatches[l] {
                    pass.set_bind_group(0, &s.gemm_binds[l], &[d.offset]);
                    pass.dispatch_workgroups(d.groups_x, d.groups_y, 1);
                }
            }
            let mut pass = encoder.begin_compute_pass(&pass_desc("recurrence", first + 2));
            if let Some(p) = persistent {
                pass.set_pipeline(p);
                for &offset in &s.chunk_offsets {
                    pass.set_bind_group(0, &s.step_binds[l], &[offset]);
                    pass.dispatch_workgroups(groups_x, groups_y, groups_z);
                }
                continue;
            }
            if single {
                pass.set_pipeline(&step_pipelines[0]);
            }
            for &offset in &s.chunk_offsets {
                pass.set_bind_group(0, &s.step_binds[l], &[offset]);
                for p in step_pipelines {
                    if !single {
                        pass.set_pipeline(p);
                    }
                    pass.dispatch_workgroups(groups_x, groups_y, groups_z);
                }
            }
        }
        if let Some(ts) = &s.timestamps {
            encoder.resolve_query_set(&ts.set, 0..ts.count, &ts.resolve, 0);
            encoder.copy_buffer_to_buffer(&ts.resolve, 0, &ts.read, 0, 8 * ts.count as u64);
        }
    }
}
