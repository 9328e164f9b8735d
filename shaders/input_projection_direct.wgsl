// input_projection_direct.wgsl: the input-projection GEMM (see gemm_common.wgsl) without
// workgroup memory, for CPU adapters (lavapipe), where workgroup memory and barriers are slow
// and a register-blocked kernel that streams straight from memory runs faster
// (REFERENCES.md §6, issue 4's probe). GPUs use input_projection.wgsl.
//
// A workgroup of 64 invocations covers 8 rows × 256 columns: the 8 rows are the same for every
// invocation of the workgroup (they come from the workgroup id), so lavapipe loads each X value
// once and broadcasts it; invocation c4 owns columns 4·c4 .. 4·c4+3, read as one vec4 of Wt
// (its rows are padded to n_stride columns, a multiple of 4). Eight vec4 accumulators per
// invocation. Rows past M read row M−1 (always in bounds) and are not stored.
//
// VEC_K (set by the host when K, k_begin and k_end are multiples of 4): X is read four
// columns at a time, one vec4 per row for four rows of Wt. On lavapipe every storage load is
// a bounds-checked scalar access, so the eight per-k X loads cost more than the arithmetic;
// reading them four at a time takes the input projection from 8.1–9.0 to 11.6–12.4 GFLOP/s at
// I=H=512, B=64, T=100 (BENCHMARKS.md). Without VEC_K the same X buffer is read one
// element at a time.

@group(0) @binding(0) var<storage, read> x4: array<S4>;
@group(0) @binding(1) var<storage, read> wt4: array<S4>;

override VEC_K: bool = false;

fn x_at(i: u32) -> f32 {
    return f32(x4[i >> 2u][i & 3u]);
}

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
    let x4_ = min(r0 + 4u, last) * p.k;
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
    if (VEC_K) {
        // Rows start at multiples of 4 (K is one), so row r's columns k .. k+3 are x4[(r·K + k)/4].
        let q0 = x0 / 4u;
        let q1 = x1 / 4u;
        let q2 = x2 / 4u;
        let q3 = x3 / 4u;
        let q4 = x4_ / 4u;
        let q5 = x5 / 4u;
        let q6 = x6 / 4u;
        let q7 = x7 / 4u;
        for (var kq = p.k_begin / 4u; kq < p.k_end / 4u; kq++) {
            let w = kq * 4u * n4 + c4;
            let b0 = vec4<f32>(wt4[w]);
            let b1 = vec4<f32>(wt4[w + n4]);
            let b2 = vec4<f32>(wt4[w + 2u * n4]);
            let b3 = vec4<f32>(wt4[w + 3u * n4]);
            var a = vec4<f32>(x4[q0 + kq]);
            acc0 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q1 + kq]);
            acc1 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q2 + kq]);
            acc2 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q3 + kq]);
            acc3 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q4 + kq]);
            acc4 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q5 + kq]);
            acc5 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q6 + kq]);
            acc6 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
            a = vec4<f32>(x4[q7 + kq]);
            acc7 += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
        }
    } else {
        for (var k = p.k_begin; k < p.k_end; k++) {
            let b = vec4<f32>(wt4[k * n4 + c4]);
            acc0 += x_at(x0 + k) * b;
            acc1 += x_at(x1 + k) * b;
            acc2 += x_at(x2 + k) * b;
            acc3 += x_at(x3 + k) * b;
            acc4 += x_at(x4_ + k) * b;
            acc5 += x_at(x5 + k) * b;
            acc6 += x_at(x6 + k) * b;
            acc7 += x_at(x7 + k) * b;
        }
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
