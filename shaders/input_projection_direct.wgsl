// input_projection_direct.wgsl: the input-projection GEMM (see gemm_common.wgsl) without
// workgroup memory, for CPU adapters (lavapipe), where workgroup memory and barriers are slow
// and a register-blocked kernel that streams straight from memory runs faster
// (REFERENCES.md §6, issue 4's probe). GPUs use input_projection.wgsl.
//
// A workgroup of 64 invocations covers 8 rows × 256 columns: the 8 rows are the same for every
// invocation of the workgroup (they come from the workgroup id), so lavapipe loads each X value
// once and broadcasts it; invocation c4 owns columns 4·c4 .. 4·c4+3, read as one vec4 of Wt
// (its rows are padded to n_stride columns, a multiple of 4). Eight vec4 accumulators per
// invocation. Rows past M read row M−1 (always in bounds) and are not stored. Measured on
// lavapipe (I=H=512, B=64, T=100): 8.8 GFLOP/s, against 6.2 for 4×4 blocks over an 8×8
// workgroup and 5.8 for the tiled kernel; 16 rows spill registers (4.0), one scalar column per
// invocation turns every Wt load into a gather (2.6).

@group(0) @binding(1) var<storage, read> wt4: array<S4>;

@compute @workgroup_size(64, 1)
fn input_projection_direct(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let c4 = gid.x;
    let r0 = p.row_offset + wid.y * 8u;
    if (c4 * 4u >= p.n || r0 >= p.m) {
        return;
    }
    let last = p.m - 1u;
    let x0 = min(r0 + 0u, last) * p.k;
    let x1 = min(r0 + 1u, last) * p.k;
    let x2 = min(r0 + 2u, last) * p.k;
    let x3 = min(r0 + 3u, last) * p.k;
    let x4 = min(r0 + 4u, last) * p.k;
    let x5 = min(r0 + 5u, last) * p.k;
    let x6 = min(r0 + 6u, last) * p.k;
    let x7 = min(r0 + 7u, last) * p.k;
    let n4 = p.n_stride / 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    for (var k = p.k_begin; k < p.k_end; k++) {
        let b = vec4<f32>(wt4[k * n4 + c4]);
        acc0 += f32(x[x0 + k]) * b;
        acc1 += f32(x[x1 + k]) * b;
        acc2 += f32(x[x2 + k]) * b;
        acc3 += f32(x[x3 + k]) * b;
        acc4 += f32(x[x4 + k]) * b;
        acc5 += f32(x[x5 + k]) * b;
        acc6 += f32(x[x6 + k]) * b;
        acc7 += f32(x[x7 + k]) * b;
    }
    let c = c4 * 4u;
    store_row(r0 + 0u, c, acc0);
    store_row(r0 + 1u, c, acc1);
    store_row(r0 + 2u, c, acc2);
    store_row(r0 + 3u, c, acc3);
    store_row(r0 + 4u, c, acc4);
    store_row(r0 + 5u, c, acc5);
    store_row(r0 + 6u, c, acc6);
    store_row(r0 + 7u, c, acc7);
}
