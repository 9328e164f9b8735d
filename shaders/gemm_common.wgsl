// gemm_common.wgsl: parameters, bindings and the store of the input-projection kernels
// (input_projection.wgsl, input_projection_direct.wgsl); prepended to each by src/shaders.rs.
// Each kernel declares bindings 0 (X) and 1 (Wt) itself: as S (tiled), or X as S (or S4 when
// K is a multiple of 4) and Wt as S4 (direct). Storage type S:
// dtype_f32.wgsl / dtype_f16.wgsl; accumulation is f32.
//
// XP[M, N] = X[M, K] · Wt[K, N] + bias[N], one GEMM for all timesteps: M = T·B rows (every
// timestep of every sequence), K = the layer's input width, N = D·3H (directions × gates z, r,
// h). Wt is every direction's W transposed on upload, so that loads along N are contiguous;
// its rows are padded to n_stride columns (a multiple of 4).
//
// One dispatch covers rows [row_offset, m) and the K range [k_begin, k_end); the host splits
// larger problems into several dispatches (each with its own params slot). With
// accumulate = 0 the bias is added; with 1 the partial sum is added to XP's contents.
// Loop trips per invocation: at most k_end − k_begin ≤ 16384 (REFERENCES.md §6).

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    row_offset: u32,
    k_begin: u32,
    k_end: u32,
    accumulate: u32,
    n_stride: u32,   // row stride of Wt (≥ n, a multiple of 4)
}

@group(0) @binding(2) var<storage, read> bias: array<S>;
@group(0) @binding(3) var<storage, read_write> xp: array<S>;
@group(0) @binding(4) var<uniform> p: GemmParams;

// XP[row, col .. col+3] = v + (bias, or XP's partial sum); rows ≥ m and columns ≥ n are skipped.
fn store_row(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    for (var q = 0u; q < 4u; q++) {
        let cq = col + q;
        if (cq < p.n) {
            let i = row * p.n + cq;
            var base = f32(bias[cq]);
            if (p.accumulate != 0u) {
                base = f32(xp[i]);
            }
            xp[i] = to_s(base + v[q]);
        }
    }
}
