// input_projection_direct.wgsl: XP[M, N] = X[M, K] · Wt[K, N] + bias[N] without workgroup
// memory, for CPU adapters (lavapipe), where workgroup memory and barriers are slow and a
// register-blocked kernel that streams straight from memory runs several times faster
// (REFERENCES.md §6, issue 4's probe). GPUs use input_projection.wgsl.
//
// Parameters and bindings: gemm_common.wgsl; Wt is read as vec4 (its rows are padded to
// n_stride columns, a multiple of 4). Invocation (c4, r4) computes
// rows 4·r4 .. 4·r4+3 (after row_offset) of columns 4·c4 .. 4·c4+3: four vec4 accumulators,
// one vec4 load of Wt and four scalar loads of X per k. Rows past M read row M−1 (always in
// bounds) and are not stored. Loop trips per invocation: k_end − k_begin ≤ 16384.

@group(0) @binding(1) var<storage, read> wt4: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn input_projection_direct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c4 = gid.x;
    let r0 = p.row_offset + gid.y * 4u;
    if (c4 * 4u >= p.n || r0 >= p.m) {
        return;
    }
    let last = p.m - 1u;
    let x0 = min(r0, last) * p.k;
    let x1 = min(r0 + 1u, last) * p.k;
    let x2 = min(r0 + 2u, last) * p.k;
    let x3 = min(r0 + 3u, last) * p.k;
    let n4 = p.n_stride / 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = p.k_begin; k < p.k_end; k++) {
        let b = wt4[k * n4 + c4];
        acc0 += x[x0 + k] * b;
        acc1 += x[x1 + k] * b;
        acc2 += x[x2 + k] * b;
        acc3 += x[x3 + k] * b;
    }
    let c = c4 * 4u;
    store_row(r0, c, acc0);
    store_row(r0 + 1u, c, acc1);
    store_row(r0 + 2u, c, acc2);
    store_row(r0 + 3u, c, acc3);
}
