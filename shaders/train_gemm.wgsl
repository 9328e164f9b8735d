// train_gemm.wgsl: the strided f32 GEMM of training (src/gpu/train/): the training forward's
// input projection and, after the backward's time loop, dX = G_x · W, dW = G_xᵀ · X,
// dR = G_hᵀ · H_prev and the bias gradients (column sums: a GEMM with a ones operand of stride
// 0), each over all T·B rows at once.
//
//   C[m, n] = (accumulate ? C[m, n] : 0) + Σ_{k_begin ≤ k < k_end} A(m, k) · B(k, n) + bias[n]
//   A(m, k) = a[a_off + m·a_sm + k·a_sk],  B(k, n) = b[b_off + k·b_sk + n·b_sn],
//   C at c[c_off + m·c_sm + n·c_sn]
//
// Strides express every transpose the backward needs without copying. Each workgroup owns a
// 16×16 tile of C (several, walking the grid, where the device dispatches fewer workgroups than
// tiles) and walks K in 16-wide slices through workgroup memory; each invocation sums its one
// element in a fixed order (k ascending), so results are bitwise the same on every run (no
// atomics). A slice is loaded with consecutive invocations on the operand's contiguous axis
// (m or k for A, k or n for B), so the loads coalesce whichever way the operand is strided.
// Loop trips per invocation: (k_end − k_begin) / 16; the host splits K into ranges of at most
// TRAIN_GEMM_MAX_K (accumulate = 1 after the first) to stay under lavapipe's 65535-trip cap
// (REFERENCES.md §6).

struct TrainGemmParams {
    m: u32,
    n: u32,
    k_begin: u32,
    k_end: u32,
    a_off: u32,
    a_sm: u32,
    a_sk: u32,
    b_off: u32,
    b_sk: u32,
    b_sn: u32,
    c_off: u32,
    c_sm: u32,
    c_sn: u32,
    has_bias: u32,
    accumulate: u32,
    _pad: u32,
}

// Bindings 0 (a) and 1 (b) and their accessors: train_gemm_operands.wgsl (scalar arrays) or
// train_gemm_operands_vec4.wgsl, placed before this file.
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> gp: TrainGemmParams;

const TILE: u32 = 16u;

var<workgroup> tile_a: array<f32, 256>;   // [m_local · 16 + k_local]
var<workgroup> tile_b: array<f32, 256>;   // [k_local · 16 + n_local]

fn load_a(m: u32, k: u32) -> f32 {
    if (m < gp.m && k < gp.k_end) {
        return a_at(gp.a_off + m * gp.a_sm + k * gp.a_sk);
    }
    return 0.0;
}

fn load_b(k: u32, n: u32) -> f32 {
    if (k < gp.k_end && n < gp.n) {
        return b_at(gp.b_off + k * gp.b_sk + n * gp.b_sn);
    }
    return 0.0;
}

@compute @workgroup_size(16, 16)
fn train_gemm(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let tiles_m = (gp.m + TILE - 1u) / TILE;
    let tiles_n = (gp.n + TILE - 1u) / TILE;
    // Which axis of each operand is contiguous (uniform: the same for every invocation).
    let a_m_fast = gp.a_sm < gp.a_sk;
    let b_k_fast = gp.b_sk < gp.b_sn;
    for (var tm = wid.y; tm < tiles_m; tm += groups.y) {
        for (var tn = wid.x; tn < tiles_n; tn += groups.x) {
            let m0 = tm * TILE;
            let n0 = tn * TILE;
            var acc = 0.0;
            for (var k0 = gp.k_begin; k0 < gp.k_end; k0 += TILE) {
                if (a_m_fast) {
                    tile_a[lid.x * TILE + lid.y] = load_a(m0 + lid.x, k0 + lid.y);
                } else {
                    tile_a[lid.y * TILE + lid.x] = load_a(m0 + lid.y, k0 + lid.x);
                }
                if (b_k_fast) {
                    tile_b[lid.x * TILE + lid.y] = load_b(k0 + lid.x, n0 + lid.y);
                } else {
                    tile_b[lid.y * TILE + lid.x] = load_b(k0 + lid.y, n0 + lid.x);
                }
                workgroupBarrier();
                for (var kk = 0u; kk < TILE; kk++) {
                    acc += tile_a[lid.y * TILE + kk] * tile_b[kk * TILE + lid.x];
                }
                workgroupBarrier();
            }
            let m = m0 + lid.y;
            let n = n0 + lid.x;
            if (m < gp.m && n < gp.n) {
                let at = gp.c_off + m * gp.c_sm + n * gp.c_sn;
                var v = acc;
                if (gp.has_bias != 0u) {
                    v += bias[n];
                }
                if (gp.accumulate != 0u) {
                    v = c[at] + v;
                }
                c[at] = v;
            }
        }
    }
}

// The same GEMM without workgroup memory, for CPU adapters (as input_projection_direct.wgsl
// is for the forward): the 64 invocations of a workgroup form row groups of `quads` lanes
// (`direct_quads`: enough column quads for n, a power of two ≤ 64), each lane owning 4
// columns of 8 rows (eight vec4 accumulators); a workgroup covers 8 · (64 / quads) rows ×
// 4 · quads columns of C, so every lane has columns even where n is narrow (n = 64: four
// row groups of 16 lanes). One k per loop trip in ascending order. Rows past m read row
// m − 1 and are not stored; columns past n read zero and are not stored. Loop trips per
// invocation: k_end − k_begin (the host keeps it at most TRAIN_GEMM_DIRECT_MAX_K). The host
// computes the same block sizes (train/encode.rs).

// Lanes per row group of train_gemm_direct for n columns: ⌈n/4⌉ rounded up to a power of
// two, at most 64.
fn direct_quads(n: u32) -> u32 {
    let q = (n + 3u) / 4u;
    if (q <= 1u) {
        return 1u;
    }
    return min(64u, 1u << (32u - countLeadingZeros(q - 1u)));
}

fn load_b4(k: u32, n0: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    let at = gp.b_off + k * gp.b_sk;
    for (var i = 0u; i < 4u; i++) {
        if (n0 + i < gp.n) {
            v[i] = b_at(at + (n0 + i) * gp.b_sn);
        }
    }
    return v;
}

// Which vec4 loads the direct GEMM's operands allow (uniform: from the parameters), with the
// vec4 view (VEC4_OPERANDS): x, A's 8 rows of a block are consecutive and start at a multiple
// of 4 (A read transposed: dW, dR); y, B's 4 columns of a lane are consecutive and start at a
// multiple of 4 (n too, so a quad is wholly inside or outside); z, both operands are
// contiguous along k with rows and columns starting at multiples of 4 and k_begin one too
// (dX). Rows or columns a vec4 reads past m or n are never stored.
fn direct_modes() -> vec3<bool> {
    let a_rows = gp.a_sm == 1u && gp.a_off % 4u == 0u && gp.a_sk % 4u == 0u;
    let b_cols = gp.b_sn == 1u && gp.b_off % 4u == 0u && gp.b_sk % 4u == 0u && gp.n % 4u == 0u;
    let along_k = gp.a_sk == 1u && gp.b_sk == 1u && gp.a_off % 4u == 0u && gp.a_sm % 4u == 0u
        && gp.b_off % 4u == 0u && gp.b_sn % 4u == 0u && gp.k_begin % 4u == 0u;
    return vec3<bool>(VEC4_OPERANDS && a_rows, VEC4_OPERANDS && b_cols, VEC4_OPERANDS && along_k);
}

// B(k, n0 .. n0+3): one vec4 load where `quad` (direct_modes().y), else load_b4.
fn direct_b(quad: bool, k: u32, n0: u32) -> vec4<f32> {
    if (quad) {
        return b_4((gp.b_off + k * gp.b_sk + n0) >> 2u);
    }
    return load_b4(k, n0);
}

fn store_c4(m: u32, n0: u32, acc: vec4<f32>) {
    if (m >= gp.m) {
        return;
    }
    for (var i = 0u; i < 4u; i++) {
        let n = n0 + i;
        if (n < gp.n) {
            let at = gp.c_off + m * gp.c_sm + n * gp.c_sn;
            var v = acc[i];
            if (gp.has_bias != 0u) {
                v += bias[n];
            }
            if (gp.accumulate != 0u) {
                v = c[at] + v;
            }
            c[at] = v;
        }
    }
}

@compute @workgroup_size(64)
fn train_gemm_direct(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let quads = direct_quads(gp.n);
    let block_m = 8u * (64u / quads);
    let block_n = 4u * quads;
    let blocks_m = (gp.m + block_m - 1u) / block_m;
    let blocks_n = (gp.n + block_n - 1u) / block_n;
    let last = gp.m - 1u;
    for (var bm = wid.y; bm < blocks_m; bm += groups.y) {
        for (var bn = wid.x; bn < blocks_n; bn += groups.x) {
            let m0 = bm * block_m + (lid / quads) * 8u;
            let n0 = bn * block_n + (lid % quads) * 4u;
            var rows: array<u32, 8>;
            for (var i = 0u; i < 8u; i++) {
                rows[i] = gp.a_off + min(m0 + i, last) * gp.a_sm;
            }
            var acc: array<vec4<f32>, 8>;
            for (var i = 0u; i < 8u; i++) {
                acc[i] = vec4<f32>(0.0);
            }
            if (n0 < gp.n) {
                let modes = direct_modes();
                if (modes.z) {
                    // dX = G_x · W (both operands contiguous along k): four k per trip, one
                    // vec4 of A per row and one of B per column; bt[j] holds k0 + j.
                    var k = gp.k_begin;
                    for (; k + 4u <= gp.k_end; k += 4u) {
                        let bq = gp.b_off + n0 * gp.b_sn + k;
                        let bt = transpose(mat4x4<f32>(b_4(bq >> 2u), b_4((bq + gp.b_sn) >> 2u),
                                                       b_4((bq + 2u * gp.b_sn) >> 2u),
                                                       b_4((bq + 3u * gp.b_sn) >> 2u)));
                        for (var i = 0u; i < 8u; i++) {
                            let av = a_4((rows[i] + k) >> 2u);
                            acc[i] += av.x * bt[0];
                            acc[i] += av.y * bt[1];
                            acc[i] += av.z * bt[2];
                            acc[i] += av.w * bt[3];
                        }
                    }
                    for (; k < gp.k_end; k++) {
                        let bv = load_b4(k, n0);
                        for (var i = 0u; i < 8u; i++) {
                            acc[i] += a_at(rows[i] + k) * bv;
                        }
                    }
                } else if (modes.x) {
                    // dW, dR (A read transposed: its 8 rows are 8 consecutive elements).
                    let a0 = gp.a_off + m0;
                    for (var k = gp.k_begin; k < gp.k_end; k++) {
                        let bv = direct_b(modes.y, k, n0);
                        let q = (a0 + k * gp.a_sk) >> 2u;
                        let lo = a_4(q);
                        let hi = a_4(q + 1u);
                        acc[0] += lo.x * bv;
                        acc[1] += lo.y * bv;
                        acc[2] += lo.z * bv;
                        acc[3] += lo.w * bv;
                        acc[4] += hi.x * bv;
                        acc[5] += hi.y * bv;
                        acc[6] += hi.z * bv;
                        acc[7] += hi.w * bv;
                    }
                } else {
                    for (var k = gp.k_begin; k < gp.k_end; k++) {
                        let bv = direct_b(modes.y, k, n0);
                        let ka = k * gp.a_sk;
                        for (var i = 0u; i < 8u; i++) {
                            acc[i] += a_at(rows[i] + ka) * bv;
                        }
                    }
                }
                for (var i = 0u; i < 8u; i++) {
                    store_c4(m0 + i, n0, acc[i]);
                }
            }
        }
    }
}
