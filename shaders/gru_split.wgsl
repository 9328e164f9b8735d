// gru_split.wgsl: one GRU timestep (step sp.s) of one layer with each hidden unit's dot
// products spread over a workgroup: the small-batch step kernel for GPUs. Bindings and
// helpers: gru_layer.wgsl. The entry points and the reduction over the workgroup's lanes
// come after this file: gru_split_subgroup.wgsl (subgroupAdd, Features::SUBGROUP) or
// gru_split_workgroup.wgsl (a tree in workgroup memory, any device).
//
// Same dispatches and same arithmetic as gru_step.wgsl: reset-after is one dispatch per
// step (`step_reset_after`); reset-before is two (`gates_reset_before` writes z and r ⊙ h to
// scratch, `candidate_reset_before` applies R_h to r ⊙ h and blends).
//
// Work split: workgroup (j, bt, d) owns hidden unit j of batch entries 4·bt .. 4·bt+3 of
// direction d, so a step is H · ⌈B/4⌉ · D workgroups of SPLIT_WG lanes (where the device
// dispatches fewer than H workgroups in x, each takes units j, j + num_workgroups.x, …). The reduction over
// the state units k is split across the lanes: lane l takes k = l, l + SPLIT_WG, …, reading
// the rows R_z[j, ·], R_r[j, ·], R_h[j, ·] of the row-major layout (binding 1 holds R, not
// Rᵀ, for this kernel), so consecutive lanes read consecutive addresses (coalesced), and
// every weight load serves the four entries (vec4 accumulators). Each trip of the loop reads
// SPLIT_UNROLL units per lane: 3 · SPLIT_UNROLL weight loads that do not depend on each
// other, in flight together. Then the lanes' partial sums are added (split_reduce) and
// lanes 0..3 each finish one entry: activations, blend, writes.
//
// Loop trips per lane: ⌈H / (SPLIT_WG · SPLIT_UNROLL)⌉, plus the reduction's (≤ 6), far below
// lavapipe's 65535 cap (REFERENCES.md §6). NaN propagates through the sums; an entry without
// a step contributes zeros (its loads are skipped, so nothing it holds is multiplied in).

const SPLIT_WG: u32 = 64u;      // lanes per workgroup, all on one hidden unit
const SPLIT_UNROLL: u32 = 4u;   // state units per lane per loop trip
const SPLIT_NB: u32 = 4u;       // batch entries per workgroup (one vec4)

const MODE_RESET_AFTER: u32 = 0u;
const MODE_GATES: u32 = 1u;      // reset-before, first dispatch: z and r ⊙ h
const MODE_CANDIDATE: u32 = 2u;  // reset-before, second dispatch: h̃ and the blend

// The lanes' partial sums, then the totals: red[g · SPLIT_WG + ·] holds gate g (z, r, h) of
// the four entries; after split_reduce, red[g · SPLIT_WG] is gate g's total.
var<workgroup> red: array<vec4<f32>, 192>;

// A lane's partial sums of the three gates' products for the four entries.
struct Partial {
    z: vec4<f32>,
    r: vec4<f32>,
    h: vec4<f32>,
}

// Where a lane sits in its subgroup (subgroup_id, subgroup_invocation_id, num_subgroups);
// zeros for the workgroup-memory reduction, which does not use it.
struct Lanes {
    id: u32,
    lane: u32,
    count: u32,
}

// Unit k of the operand of one entry whose row starts at `base` (operand_base).
fn split_operand(src: u32, base: u32, k: u32) -> f32 {
    if (src == SRC_RESET_H) {
        return scratch_at(base + k);
    }
    if (sp.s == 0u) {
        return h0_at(base + k);
    }
    return y_at(base + k);
}

// Unit k of the four entries' operands; zero (not loaded) where an entry has no step.
fn split_state(src: u32, base: vec4<u32>, live: vec4<bool>, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (live.x) {
        v.x = split_operand(src, base.x, k);
    }
    if (live.y) {
        v.y = split_operand(src, base.y, k);
    }
    if (live.z) {
        v.z = split_operand(src, base.z, k);
    }
    if (live.w) {
        v.w = split_operand(src, base.w, k);
    }
    return v;
}

// This lane's share of Σ_k R_g[j, k] · src[b, k] for the four entries b0..b0+3 and the
// gates asked for (zr: z and r; hh: h).
fn split_products(src: u32, d: u32, j: u32, b0: u32, lid: u32, zr: bool, hh: bool) -> Partial {
    var live = vec4<bool>(false);
    var base = vec4<u32>(0u);
    for (var i = 0u; i < SPLIT_NB; i++) {
        if (has_step(b0 + i, sp.s)) {
            live[i] = true;
            base[i] = operand_base(src, d, b0 + i);
        }
    }
    let plane = HIDDEN * HIDDEN;
    let row_z = 3u * d * plane + j * HIDDEN;
    let row_r = row_z + plane;
    let row_h = row_r + plane;
    var acc = Partial(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = lid; k0 < HIDDEN; k0 += SPLIT_WG * SPLIT_UNROLL) {
        for (var u = 0u; u < SPLIT_UNROLL; u++) {
            let k = k0 + u * SPLIT_WG;
            if (k < HIDDEN) {
                let hv = split_state(src, base, live, k);
                if (zr) {
                    acc.z += f32(rec[row_z + k]) * hv;
                    acc.r += f32(rec[row_r + k]) * hv;
                }
                if (hh) {
                    acc.h += f32(rec[row_h + k]) * hv;
                }
            }
        }
    }
    return acc;
}

// One dispatch of a step: for each hidden unit j of this workgroup (j = wid.x, wid.x + units,
// …: one unit per workgroup where the device can dispatch H workgroups in x, several where
// its limit is lower), the products (all lanes), their sum over the lanes, then lane i < 4
// finishes entry b0 + i of unit j. Called from the entry points of the variant file, from
// uniform control flow (it has barriers; j, units and the loop bound are the same for every
// lane of a workgroup).
fn split_step(mode: u32, lid: u32, wid: vec3<u32>, units: u32, lanes: Lanes) {
    let b0 = wid.y * SPLIT_NB;
    let d = wid.z;
    let s = sp.s;
    var src = SRC_STATE;
    if (mode == MODE_CANDIDATE) {
        src = SRC_RESET_H;
    }
    for (var j = wid.x; j < HIDDEN; j += units) {
        let acc = split_products(src, d, j, b0, lid, mode != MODE_CANDIDATE, mode != MODE_GATES);
        split_reduce(acc, lid, lanes);
        if (lid < SPLIT_NB) {
            split_finish(mode, d, j, b0 + lid, red[0u][lid], red[SPLIT_WG][lid],
                         red[2u * SPLIT_WG][lid]);
        }
        if (j + units < HIDDEN) {
            // The next unit's reduction overwrites red: wait for this one's readers.
            workgroupBarrier();
        }
    }
}

// Entry b of unit j, from the three products pz, pr, ph (as each mode needs them).
fn split_finish(mode: u32, d: u32, j: u32, b: u32, pz: f32, pr: f32, ph: f32) {
    let s = sp.s;
    if (!has_step(b, s)) {
        if (mode != MODE_GATES) {
            write_padding(d, b, j, s);
        }
        return;
    }
    let t = time_of(b, d, s);
    let h = prev_state(d, b, j, s);
    if (mode == MODE_RESET_AFTER) {
        let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + pz + rb_at(d, 0u, j)));
        let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + pr + rb_at(d, 1u, j)));
        let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + r * (ph + rb_at(d, 2u, j))));
        write_state(t, d, b, j, (1.0 - z) * n + z * h);
    } else if (mode == MODE_GATES) {
        let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + pz + rb_at(d, 0u, j)));
        let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + pr + rb_at(d, 1u, j)));
        set_scratch(scratch_index(d, 0u, b, j), z);
        set_scratch(scratch_index(d, 1u, b, j), r * h);
    } else {
        let z = scratch_at(scratch_index(d, 0u, b, j));
        let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + ph + rb_at(d, 2u, j)));
        write_state(t, d, b, j, (1.0 - z) * n + z * h);
    }
}
