// input_projection.wgsl: the input-projection GEMM for GPUs (see gemm_common.wgsl).
//
// Tiling: a workgroup of 16×16 invocations computes a 64×64 tile of XP; each invocation
// holds a 4×4 block in registers (four vec4 accumulators). K is walked in tiles of 16 that
// are staged in workgroup memory (8 KiB). Every load is bounds-checked, so sizes that are
// not multiples of the tile read zeros, never out of bounds.

@group(0) @binding(0) var<storage, read> x: array<S>;
@group(0) @binding(1) var<storage, read> wt: array<S>;

const TILE: u32 = 64u;
const TK: u32 = 16u;

// a_tile[kk·16 + r4] holds X rows 4·r4 .. 4·r4+3 at column kk; b_tile[kk·16 + c4] holds
// Wt columns 4·c4 .. 4·c4+3 at row kk.
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn load_x(row: u32, col: u32) -> f32 {
    if (row < p.m && col < p.k_end) {
        return f32(x[row * p.k + col]);
    }
    return 0.0;
}

fn load_wt(row: u32, col: u32) -> f32 {
    if (row < p.k_end && col < p.n) {
        return f32(wt[row * p.n_stride + col]);
    }
    return 0.0;
}

@compute @workgroup_size(16, 16)
fn input_projection(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let row0 = p.row_offset + wid.y * TILE;
    let col0 = wid.x * TILE;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    // Staging assignment: invocation li loads one vec4 of each tile.
    let a_kk = li % TK;
    let a_r4 = li / TK;
    let b_c4 = li % 16u;
    let b_kk = li / 16u;

    for (var k0 = p.k_begin; k0 < p.k_end; k0 += TK) {
        let ar = row0 + a_r4 * 4u;
        let ac = k0 + a_kk;
        a_tile[a_kk * 16u + a_r4] = vec4<f32>(
            load_x(ar, ac), load_x(ar + 1u, ac), load_x(ar + 2u, ac), load_x(ar + 3u, ac));
        let br = k0 + b_kk;
        let bc = col0 + b_c4 * 4u;
        b_tile[b_kk * 16u + b_c4] = vec4<f32>(
            load_wt(br, bc), load_wt(br, bc + 1u), load_wt(br, bc + 2u), load_wt(br, bc + 3u));
        workgroupBarrier();

        for (var kk = 0u; kk < TK; kk++) {
            let a = a_tile[kk * 16u + lid.y];
            let b = b_tile[kk * 16u + lid.x];
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }

    let r = row0 + lid.y * 4u;
    let c = col0 + lid.x * 4u;
    store_row(r, c, acc0);
    store_row(r + 1u, c, acc1);
    store_row(r + 2u, c, acc2);
    store_row(r + 3u, c, acc3);
}
