// gru_train.wgsl: the per-step kernels of training (src/gpu/train/): the training forward,
// which keeps a reserve space, and the backward through time. f32 throughout. Gate order z, r,
// h. Clip c(·) as ONNX: every pre-activation clamped to [−clip, clip]; its derivative c' is 0
// where it clamped, 1 elsewhere (and for NaN, which passes through).
//
// Layouts (D directions, T steps, B entries, H units; s is the step, t the time it handles:
// t = s forward, len_b − 1 − s reverse; a row of the layer's input, output and XP is t·B + b):
//   hs[D, T+1, B, H]        the state before step s (hs[d, 0] = initial_h); a step past an
//                           entry's length carries the state unchanged
//   reserve[D, T, B, 4H]    per step: the pre-activations a_z, a_r, a_n (before the clip), then
//                           q = R_h h + Rb_h (reset-after) or u = r ⊙ h_prev (reset-before)
//   y[T, B, D, H]           the layer's output (zero past an entry's length)
//   G_x[T, B, D, 3H]        ∂L/∂(XP): the gate gradients by time (dX, dW, dWb GEMMs)
//   G_h[D, T, B, 3H]        ∂L/∂(R·h + Rb) by step (dR, dRb GEMMs), at lp.gh_base in `outs`
//   carry[L, D, B, H]       the part of ∂L/∂h_prev that is not a product with R (g ⊙ z, plus
//                           ∂u ⊙ r for reset-before); starts as dY_h, ends as d initial_h
//
// Bindings: the forward binds (xp, R, hs, reserve, y, lp, ·, sp), the backward (dY, R, hs,
// reserve, G, lp, carry, sp); lp holds the layer's sizes followed by the entries' lengths.
// Read-only storage, not a uniform buffer: lavapipe specialises a shader for the values of
// small uniforms that steer control flow and recompiled this kernel at every dispatch for some
// of them (the reset-after backward at B = 1 took 6 ms per step).
//
// Each workgroup owns one hidden unit (j, or k in the backward) of four entries 4·y .. 4·y+3
// and direction d: workgroup (x, y, d), units x, x + num_workgroups.x, … (the shape of the
// inference forward's split kernel, gru_split.wgsl). Its 64 lanes split the dot products of
// the step over the reduced axis (K = H, 2H or 3H), reading consecutive addresses of R's
// row-major layout (forward: R_g[j, ·]) or of Rᵀ (backward: column k of every R_g), each
// weight load serving the four entries (vec4 accumulators); then they add their partial sums
// in a fixed tree in workgroup memory (bitwise reproducible), and lanes 0..3 finish one entry
// each. Loop trips per lane: ⌈K / 64⌉ ≤ 1536 (H ≤ 32768), plus 6 rounds.

struct TrainStepParams {
    s: u32,
    s_end: u32,   // the persistent entry points: the end of their range
    _pad1: u32,
    _pad2: u32,
}

struct TrainMeta {
    batch: u32,
    seq_len: u32,
    reverse_mask: u32,
    has_clip: u32,
    clip: f32,
    n_dir: u32,
    rb_offset: u32,   // D · 3H · H: where Rb starts in R's buffer
    gh_base: u32,     // where G_h starts in the backward's gradient buffer
    carry_base: u32,  // (layer · D) · B · H
    from_start: u32,  // 1 unless this piece of a sequence split over time starts after t = 0
    _pad1: u32,
    _pad2: u32,
    lens: array<u32>,  // [B] sequence lengths
}

@group(0) @binding(0) var<storage, read> src: array<f32>;           // xp | dY
@group(0) @binding(1) var<storage, read> rmat: array<f32>;          // R rows | Rᵀ, then Rb
// Bindings 2 (hs), 3 (reserve) and 4 (outs: y | G_x and G_h) and their accessors:
// train_state.wgsl (scalar arrays) or train_state_vec4.wgsl, placed before this file.
@group(0) @binding(5) var<storage, read> lp: TrainMeta;
@group(0) @binding(6) var<storage, read_write> carry: array<f32>;
@group(0) @binding(7) var<storage, read> sp: TrainStepParams;

// The step s (forward) or dispatch n (backward) being run: sp.s, or in the persistent entry
// points each of their range in turn.
var<private> cur_s: u32;

override HIDDEN: u32 = 1u;
// Lanes per workgroup (a power of two, at most 64): 64 on GPUs; fewer on CPU adapters, where
// a workgroup's lanes run as one SIMD loop and every barrier switches between them.
override LANES: u32 = 64u;
// The CPU-adapter shape (set by the host with the direct step kernel): each lane owns a hidden
// unit of its own (consecutive units on consecutive lanes, 64 per workgroup) and runs the
// whole dot product itself: no reduction, no barrier (a CPU runs a workgroup as one SIMD loop,
// where barriers are slow). The forward then reads Rᵀ (binding 1 holds Rᵀ) and the backward R
// row-major, so that consecutive lanes read consecutive addresses either way. Loop trips per
// lane: the reduced axis itself (H, 2H or 3H; the host keeps it below lavapipe's cap).
override DIRECT: bool = false;
// Elements each lane takes per loop trip: that many independent loads in flight.
const UNROLL: u32 = 4u;

// Entries per workgroup: each weight load serves four entries (vec4 accumulators), as in the
// inference forward's split kernel (gru_split.wgsl).
const NB: u32 = 4u;

var<workgroup> red: array<vec4<f32>, 192>;

fn has_step(b: u32, s: u32) -> bool {
    return b < lp.batch && s < lp.seq_len && s < lp.lens[b];
}

fn time_of(b: u32, d: u32, s: u32) -> u32 {
    if (((lp.reverse_mask >> d) & 1u) != 0u) {
        return lp.lens[b] - 1u - s;
    }
    return s;
}

fn clip(x: f32) -> f32 {
    return onnx_clip(x, lp.has_clip != 0u, lp.clip);
}

// c'(x): 0 where the clip clamped x, else 1.
fn clip_grad(x: f32) -> f32 {
    if (lp.has_clip != 0u && (x > lp.clip || x < -lp.clip)) {
        return 0.0;
    }
    return 1.0;
}

fn hs_index(d: u32, s: u32, b: u32, k: u32) -> u32 {
    return ((d * (lp.seq_len + 1u) + s) * lp.batch + b) * HIDDEN + k;
}

fn reserve_index(d: u32, s: u32, b: u32, slot: u32, j: u32) -> u32 {
    return ((d * lp.seq_len + s) * lp.batch + b) * 4u * HIDDEN + slot * HIDDEN + j;
}

// Row t·B + b of a [T, B, D, ·] tensor, direction d's block of `width` units.
fn by_time(t: u32, b: u32, d: u32, width: u32) -> u32 {
    return ((t * lp.batch + b) * lp.n_dir + d) * width;
}

fn gh_index(d: u32, s: u32, b: u32) -> u32 {
    return lp.gh_base + ((d * lp.seq_len + s) * lp.batch + b) * 3u * HIDDEN;
}

fn rb_at(d: u32, gate: u32, j: u32) -> f32 {
    return rmat[lp.rb_offset + d * 3u * HIDDEN + gate * HIDDEN + j];
}

// Adds the lanes' values of each of the three columns of red; the totals end in red[0],
// red[64], red[128]. Called from uniform control flow.
fn reduce3(lid: u32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>) {
    red[lid] = v0;
    red[LANES + lid] = v1;
    red[2u * LANES + lid] = v2;
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            red[lid] += red[lid + half];
            red[LANES + lid] += red[LANES + lid + half];
            red[2u * LANES + lid] += red[2u * LANES + lid + half];
        }
        workgroupBarrier();
    }
}

// ---- training forward ----------------------------------------------------------------------

const FWD_RESET_AFTER: u32 = 0u;
const FWD_GATES: u32 = 1u;       // reset-before, first dispatch: z, r, u = r ⊙ h_prev
const FWD_CANDIDATE: u32 = 2u;   // reset-before, second dispatch: R_h u, n and the blend

fn xp_at(t: u32, b: u32, d: u32, gate: u32, j: u32) -> f32 {
    return src[by_time(t, b, d, 3u * HIDDEN) + gate * HIDDEN + j];
}

// Which of the four entries b0 .. b0+3 have step s, and where their rows of `base(b)` start.
struct Entries {
    live: vec4<bool>,
    any: bool,
}

fn entries(b0: u32, s: u32) -> Entries {
    var e = Entries(vec4<bool>(false), false);
    for (var i = 0u; i < NB; i++) {
        if (has_step(b0 + i, s)) {
            e.live[i] = true;
            e.any = true;
        }
    }
    return e;
}

// Row starts for the four entries: entries without a step take a live entry's row (or 0), so
// that loads need no branch; what they accumulate is masked out (`masked`) before use.
fn fill_dead(base: vec4<u32>, live: vec4<bool>) -> vec4<u32> {
    var any_row = 0u;
    for (var i = 0u; i < NB; i++) {
        if (live[i]) {
            any_row = base[i];
        }
    }
    return select(vec4<u32>(any_row), base, live);
}

// Zero for the entries without a step.
fn masked(v: vec4<f32>, live: vec4<bool>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, live);
}

// Element `k` of the four rows starting at `base` (after fill_dead) of hs, the reserve or the
// gradient buffer.
fn gather_hs(base: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(hs_at(base.x + k), hs_at(base.y + k), hs_at(base.z + k),
                     hs_at(base.w + k));
}

fn gather_reserve(base: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(reserve_at(base.x + k), reserve_at(base.y + k), reserve_at(base.z + k),
                     reserve_at(base.w + k));
}

fn gather_outs(base: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(outs_at(base.x + k), outs_at(base.y + k), outs_at(base.z + k),
                     outs_at(base.w + k));
}

// A forward step's four entries b0 .. b0+3: which have step s, and where their states (hs)
// and their u = r ⊙ h_prev rows (reserve) start (fill_dead applied).
struct ForwardRows {
    e: Entries,
    h_base: vec4<u32>,
    u_base: vec4<u32>,
}

fn forward_rows(b0: u32, d: u32, s: u32) -> ForwardRows {
    let e = entries(b0, s);
    var h_base = vec4<u32>(0u);
    var u_base = vec4<u32>(0u);
    for (var i = 0u; i < NB; i++) {
        if (e.live[i]) {
            h_base[i] = hs_index(d, s, b0 + i, 0u);
            u_base[i] = reserve_index(d, s, b0 + i, 3u, 0u);
        }
    }
    return ForwardRows(e, fill_dead(h_base, e.live), fill_dead(u_base, e.live));
}

// Entry b of unit j after a forward dispatch's products pz, pr, ph: its step finished, or,
// past its length, its state carried over unchanged.
fn forward_entry(mode: u32, d: u32, b: u32, j: u32, pz: f32, pr: f32, ph: f32) {
    let s = cur_s;
    if (b >= lp.batch) {
        return;
    }
    if (has_step(b, s)) {
        forward_finish(mode, d, b, j, pz, pr, ph);
    } else if (mode != FWD_GATES) {
        set_hs(hs_index(d, s + 1u, b, j), hs_at(hs_index(d, s, b, j)));
    }
}

fn forward_step(mode: u32, lid: u32, wid: vec3<u32>, units: u32) {
    let b0 = wid.y * NB;
    let d = wid.z;
    let s = cur_s;
    let rows = forward_rows(b0, d, s);
    let e = rows.e;
    let h_base = rows.h_base;
    let u_base = rows.u_base;
    let plane = HIDDEN * HIDDEN;
    for (var j = wid.x; j < HIDDEN; j += units) {
        var pz = vec4<f32>(0.0);
        var pr = vec4<f32>(0.0);
        var ph = vec4<f32>(0.0);
        if (e.any) {
            let row_z = 3u * d * plane + j * HIDDEN;
            if (mode == FWD_CANDIDATE) {
                let row_h = row_z + 2u * plane;
                for (var k0 = lid; k0 < HIDDEN; k0 += LANES * UNROLL) {
                    for (var u = 0u; u < UNROLL; u++) {
                        let k = k0 + u * LANES;
                        if (k < HIDDEN) {
                            ph += rmat[row_h + k] * gather_reserve(u_base, k);
                        }
                    }
                }
            } else {
                for (var k0 = lid; k0 < HIDDEN; k0 += LANES * UNROLL) {
                    for (var u = 0u; u < UNROLL; u++) {
                        let k = k0 + u * LANES;
                        if (k < HIDDEN) {
                            let h = gather_hs(h_base, k);
                            pz += rmat[row_z + k] * h;
                            pr += rmat[row_z + plane + k] * h;
                            if (mode == FWD_RESET_AFTER) {
                                ph += rmat[row_z + 2u * plane + k] * h;
                            }
                        }
                    }
                }
            }
        }
        reduce3(lid, pz, pr, ph);
        for (var i = lid; i < NB; i += LANES) {
            forward_entry(mode, d, b0 + i, j, red[0][i], red[LANES][i], red[2u * LANES][i]);
        }
        workgroupBarrier();
    }
}

// `staged`: the persistent shape, whose operand rows stage_forward put in `red`.
fn forward_step_direct(mode: u32, lid: u32, wid: vec3<u32>, groups_x: u32, staged: bool) {
    let b0 = wid.y * NB;
    let d = wid.z;
    let s = cur_s;
    let rows = forward_rows(b0, d, s);
    let e = rows.e;
    let h_base = rows.h_base;
    let u_base = rows.u_base;
    let h3 = 3u * HIDDEN;
    for (var j = wid.x * LANES + lid; j < HIDDEN; j += groups_x * LANES) {
        var pz = vec4<f32>(0.0);
        var pr = vec4<f32>(0.0);
        var ph = vec4<f32>(0.0);
        if (e.any) {
            // Rᵀ: rmat[d·H·3H + k·3H + g·H + j].
            let base = d * HIDDEN * h3 + j;
            if (staged) {
                for (var k = 0u; k < HIDDEN; k++) {
                    let h = red[k];
                    let at = base + k * h3;
                    if (mode == FWD_CANDIDATE) {
                        ph += rmat[at + 2u * HIDDEN] * h;
                    } else {
                        pz += rmat[at] * h;
                        pr += rmat[at + HIDDEN] * h;
                        if (mode == FWD_RESET_AFTER) {
                            ph += rmat[at + 2u * HIDDEN] * h;
                        }
                    }
                }
            } else if (VEC4_VIEW && HIDDEN % 4u == 0u) {
                // Four units k of the four entries' rows per trip, one vec4 load per entry
                // (every row starts at a multiple of H); tr[c] holds unit 4·kq + c.
                let rows = select(h_base, u_base, mode == FWD_CANDIDATE) / vec4<u32>(4u);
                for (var kq = 0u; kq < HIDDEN / 4u; kq++) {
                    var tr: mat4x4<f32>;
                    if (mode == FWD_CANDIDATE) {
                        tr = transpose(mat4x4<f32>(reserve_4(rows.x + kq), reserve_4(rows.y + kq),
                                                   reserve_4(rows.z + kq), reserve_4(rows.w + kq)));
                    } else {
                        tr = transpose(mat4x4<f32>(hs_4(rows.x + kq), hs_4(rows.y + kq),
                                                   hs_4(rows.z + kq), hs_4(rows.w + kq)));
                    }
                    for (var c = 0u; c < 4u; c++) {
                        let at = base + (4u * kq + c) * h3;
                        if (mode == FWD_CANDIDATE) {
                            ph += rmat[at + 2u * HIDDEN] * tr[c];
                        } else {
                            pz += rmat[at] * tr[c];
                            pr += rmat[at + HIDDEN] * tr[c];
                            if (mode == FWD_RESET_AFTER) {
                                ph += rmat[at + 2u * HIDDEN] * tr[c];
                            }
                        }
                    }
                }
            } else if (mode == FWD_CANDIDATE) {
                for (var k = 0u; k < HIDDEN; k++) {
                    ph += rmat[base + k * h3 + 2u * HIDDEN] * gather_reserve(u_base, k);
                }
            } else {
                for (var k = 0u; k < HIDDEN; k++) {
                    let h = gather_hs(h_base, k);
                    let at = base + k * h3;
                    pz += rmat[at] * h;
                    pr += rmat[at + HIDDEN] * h;
                    if (mode == FWD_RESET_AFTER) {
                        ph += rmat[at + 2u * HIDDEN] * h;
                    }
                }
            }
        }
        for (var i = 0u; i < NB; i++) {
            forward_entry(mode, d, b0 + i, j, pz[i], pr[i], ph[i]);
        }
    }
}

fn forward_finish(mode: u32, d: u32, b: u32, j: u32, pz: f32, pr: f32, ph: f32) {
    let s = cur_s;
    let t = time_of(b, d, s);
    let h = hs_at(hs_index(d, s, b, j));
    if (mode == FWD_GATES) {
        let a_z = xp_at(t, b, d, 0u, j) + pz + rb_at(d, 0u, j);
        let a_r = xp_at(t, b, d, 1u, j) + pr + rb_at(d, 1u, j);
        let r = sigmoid_stable(clip(a_r));
        set_reserve(reserve_index(d, s, b, 0u, j), a_z);
        set_reserve(reserve_index(d, s, b, 1u, j), a_r);
        set_reserve(reserve_index(d, s, b, 3u, j), r * h);
        return;
    }
    var a_z: f32;
    var a_n: f32;
    if (mode == FWD_RESET_AFTER) {
        a_z = xp_at(t, b, d, 0u, j) + pz + rb_at(d, 0u, j);
        let a_r = xp_at(t, b, d, 1u, j) + pr + rb_at(d, 1u, j);
        let q = ph + rb_at(d, 2u, j);
        let r = sigmoid_stable(clip(a_r));
        a_n = xp_at(t, b, d, 2u, j) + r * q;
        set_reserve(reserve_index(d, s, b, 0u, j), a_z);
        set_reserve(reserve_index(d, s, b, 1u, j), a_r);
        set_reserve(reserve_index(d, s, b, 3u, j), q);
    } else {
        a_z = reserve_at(reserve_index(d, s, b, 0u, j));
        a_n = xp_at(t, b, d, 2u, j) + ph + rb_at(d, 2u, j);
    }
    set_reserve(reserve_index(d, s, b, 2u, j), a_n);
    let z = sigmoid_stable(clip(a_z));
    let n = tanh_stable(clip(a_n));
    let next = (1.0 - z) * n + z * h;
    set_hs(hs_index(d, s + 1u, b, j), next);
    set_outs(by_time(t, b, d, HIDDEN) + j, next);
}

@compute @workgroup_size(LANES)
fn train_step_reset_after(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    cur_s = sp.s;
    if (DIRECT) {
        forward_step_direct(FWD_RESET_AFTER, lid, wid, groups.x, false);
    } else {
        forward_step(FWD_RESET_AFTER, lid, wid, groups.x);
    }
}

@compute @workgroup_size(LANES)
fn train_gates_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    cur_s = sp.s;
    if (DIRECT) {
        forward_step_direct(FWD_GATES, lid, wid, groups.x, false);
    } else {
        forward_step(FWD_GATES, lid, wid, groups.x);
    }
}

@compute @workgroup_size(LANES)
fn train_candidate_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    cur_s = sp.s;
    if (DIRECT) {
        forward_step_direct(FWD_CANDIDATE, lid, wid, groups.x, false);
    } else {
        forward_step(FWD_CANDIDATE, lid, wid, groups.x);
    }
}

// ---- backward through time -----------------------------------------------------------------
//
// Dispatch n (n = T, T−1, …, 0) of the reset-after backward, for unit k of entry b:
//   ∂h_prev of step n = carry[k] + Σ_{g, j} R_g[j, k] · G_h[n][g, j]      (no product at n = T
//                       or where step n was past the entry's length)
//   n = 0: that is d initial_h (zero for an entry of length 0); done.
//   step s = n − 1, with g = ∂h_prev + dY[t] (past the length: carry = ∂h_prev, nothing else):
//     g_n = g (1 − z)(1 − n²) c'(a_n),  g_z = g (h_prev − n) z(1 − z) c'(a_z)
//     ∂q = g_n r,  g_r = g_n q r(1 − r) c'(a_r)
//     G_x[t] = (g_z, g_r, g_n),  G_h[s] = (g_z, g_r, ∂q),  carry = g z
// Reset-before takes two dispatches per step: BWD_GATES(n) (the product over G_h[n]'s z and
// r rows, then g_z, g_n; G_h[s]'s h row = g_n) and BWD_CANDIDATE(n) for step s = n − 1
// (∂u = R_hᵀ g_n, g_r = ∂u h_prev r(1 − r) c'(a_r), carry += ∂u r).

const BWD_RESET_AFTER: u32 = 0u;
const BWD_GATES: u32 = 1u;
const BWD_CANDIDATE: u32 = 2u;

// The G_h rows a backward dispatch n reduces for four entries b0 .. b0+3: step n's
// (BWD_RESET_AFTER: all 3H; BWD_GATES: the z and r rows) or step n − 1's h row
// (BWD_CANDIDATE, whose dispatch 0 does nothing: `live` false); which entries have that step,
// and where their rows start (fill_dead applied).
struct BackwardRows {
    e: Entries,
    live: bool,
    first: u32,
    count: u32,
    g_base: vec4<u32>,
}

fn backward_rows(mode: u32, b0: u32, d: u32, n: u32) -> BackwardRows {
    var rows = BackwardRows(Entries(vec4<bool>(false), false), true, 0u, 3u * HIDDEN,
                            vec4<u32>(0u));
    var rs = n;
    if (mode == BWD_GATES) {
        rows.count = 2u * HIDDEN;
    }
    if (mode == BWD_CANDIDATE) {
        rows.live = n > 0u;
        rs = n - 1u;
        rows.first = 2u * HIDDEN;
        rows.count = HIDDEN;
    }
    if (rows.live) {
        rows.e = entries(b0, rs);
    }
    for (var i = 0u; i < NB; i++) {
        if (rows.e.live[i]) {
            rows.g_base[i] = gh_index(d, rs, b0 + i) + rows.first;
        }
    }
    rows.g_base = fill_dead(rows.g_base, rows.e.live);
    return rows;
}

fn backward_step(mode: u32, lid: u32, wid: vec3<u32>, units: u32) {
    let b0 = wid.y * NB;
    let d = wid.z;
    let rows = backward_rows(mode, b0, d, cur_s);
    let e = rows.e;
    let live = rows.live;
    let first = rows.first;
    let count = rows.count;
    let g_base = rows.g_base;
    for (var k = wid.x; k < HIDDEN; k += units) {
        var p = vec4<f32>(0.0);
        if (e.any) {
            let col = 3u * d * HIDDEN * HIDDEN + k * 3u * HIDDEN + first;
            for (var i0 = lid; i0 < count; i0 += LANES * UNROLL) {
                for (var u = 0u; u < UNROLL; u++) {
                    let i = i0 + u * LANES;
                    if (i < count) {
                        p += rmat[col + i] * gather_outs(g_base, i);
                    }
                }
            }
        }
        reduce3(lid, masked(p, e.live), vec4<f32>(0.0), vec4<f32>(0.0));
        for (var i = lid; i < NB; i += LANES) {
            if (b0 + i < lp.batch && live) {
                backward_finish(mode, d, b0 + i, k, red[0][i]);
            }
        }
        workgroupBarrier();
    }
}

// `staged`: the persistent shape, whose G_h rows stage_backward put in `red`.
fn backward_step_direct(mode: u32, lid: u32, wid: vec3<u32>, groups_x: u32, staged: bool) {
    let b0 = wid.y * NB;
    let d = wid.z;
    let rows = backward_rows(mode, b0, d, cur_s);
    let e = rows.e;
    let live = rows.live;
    let first = rows.first;
    let count = rows.count;
    let g_base = rows.g_base;
    for (var k = wid.x * LANES + lid; k < HIDDEN; k += groups_x * LANES) {
        var p = vec4<f32>(0.0);
        if (e.any) {
            // R row-major: rmat[d·3H·H + (g·H + j)·H + k], row g·H + j = first + i.
            let col = 3u * d * HIDDEN * HIDDEN + first * HIDDEN + k;
            if (staged) {
                for (var i = 0u; i < count; i++) {
                    p += rmat[col + i * HIDDEN] * red[i];
                }
            } else if (VEC4_VIEW && HIDDEN % 4u == 0u) {
                // Four rows of the four entries' G_h per trip, one vec4 load per entry (every
                // row starts at a multiple of H); tr[c] holds row 4·iq + c.
                let q = g_base / vec4<u32>(4u);
                for (var iq = 0u; iq < count / 4u; iq++) {
                    let tr = transpose(mat4x4<f32>(outs_4(q.x + iq), outs_4(q.y + iq),
                                                   outs_4(q.z + iq), outs_4(q.w + iq)));
                    let at = col + 4u * iq * HIDDEN;
                    p += rmat[at] * tr[0];
                    p += rmat[at + HIDDEN] * tr[1];
                    p += rmat[at + 2u * HIDDEN] * tr[2];
                    p += rmat[at + 3u * HIDDEN] * tr[3];
                }
            } else {
                for (var i = 0u; i < count; i++) {
                    p += rmat[col + i * HIDDEN] * gather_outs(g_base, i);
                }
            }
        }
        p = masked(p, e.live);
        if (live) {
            for (var i = 0u; i < NB; i++) {
                if (b0 + i < lp.batch) {
                    backward_finish(mode, d, b0 + i, k, p[i]);
                }
            }
        }
    }
}

fn backward_finish(mode: u32, d: u32, b: u32, k: u32, product: f32) {
    let n = cur_s;
    let ci = lp.carry_base + (d * lp.batch + b) * HIDDEN + k;
    if (mode == BWD_CANDIDATE) {
        let s = n - 1u;
        if (has_step(b, s)) {
            let t = time_of(b, d, s);
            let a_r = reserve_at(reserve_index(d, s, b, 1u, k));
            let r = sigmoid_stable(clip(a_r));
            let h = hs_at(hs_index(d, s, b, k));
            let g_r = product * h * r * (1.0 - r) * clip_grad(a_r);
            set_outs(by_time(t, b, d, 3u * HIDDEN) + HIDDEN + k, g_r);
            set_outs(gh_index(d, s, b) + HIDDEN + k, g_r);
            carry[ci] = carry[ci] + product * r;
        }
        return;
    }
    let dprev = carry[ci] + product;
    if (n == 0u) {
        // A length-0 entry's Y_h is zero (onnxruntime), so nothing reaches its initial state;
        // in a later piece of a sequence split over time an entry whose steps ended in an
        // earlier piece passes its carry on.
        carry[ci] = select(dprev, 0.0, lp.lens[b] == 0u && lp.from_start != 0u);
        return;
    }
    let s = n - 1u;
    if (!has_step(b, s)) {
        carry[ci] = dprev;
        return;
    }
    let t = time_of(b, d, s);
    let g = dprev + src[by_time(t, b, d, HIDDEN) + k];
    let a_z = reserve_at(reserve_index(d, s, b, 0u, k));
    let a_n = reserve_at(reserve_index(d, s, b, 2u, k));
    let z = sigmoid_stable(clip(a_z));
    let c = tanh_stable(clip(a_n));
    let h = hs_at(hs_index(d, s, b, k));
    let g_n = g * (1.0 - z) * (1.0 - c * c) * clip_grad(a_n);
    let g_z = g * (h - c) * z * (1.0 - z) * clip_grad(a_z);
    let gx = by_time(t, b, d, 3u * HIDDEN);
    let gh = gh_index(d, s, b);
    set_outs(gx + k, g_z);
    set_outs(gx + 2u * HIDDEN + k, g_n);
    set_outs(gh + k, g_z);
    carry[ci] = g * z;
    if (mode == BWD_RESET_AFTER) {
        let a_r = reserve_at(reserve_index(d, s, b, 1u, k));
        let r = sigmoid_stable(clip(a_r));
        let q = reserve_at(reserve_index(d, s, b, 3u, k));
        let g_r = g_n * q * r * (1.0 - r) * clip_grad(a_r);
        set_outs(gx + HIDDEN + k, g_r);
        set_outs(gh + HIDDEN + k, g_r);
        set_outs(gh + 2u * HIDDEN + k, g_n * r);
    } else {
        set_outs(gh + 2u * HIDDEN + k, g_n);
    }
}

@compute @workgroup_size(LANES)
fn grad_step_reset_after(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    cur_s = sp.s;
    if (DIRECT) {
        backward_step_direct(BWD_RESET_AFTER, lid, wid, groups.x, false);
    } else {
        backward_step(BWD_RESET_AFTER, lid, wid, groups.x);
    }
}

@compute @workgroup_size(LANES)
fn grad_gates_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    cur_s = sp.s;
    if (DIRECT) {
        backward_step_direct(BWD_GATES, lid, wid, groups.x, false);
    } else {
        backward_step(BWD_GATES, lid, wid, groups.x);
    }
}

@compute @workgroup_size(LANES)
fn grad_candidate_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    cur_s = sp.s;
    if (DIRECT) {
        backward_step_direct(BWD_CANDIDATE, lid, wid, groups.x, false);
    } else {
        backward_step(BWD_CANDIDATE, lid, wid, groups.x);
    }
}

// ---- persistent: many steps in one dispatch ------------------------------------------------
//
// The CPU-adapter shape over a range of steps in one dispatch, where the inference forward
// takes its persistent path and H ≤ 64 (few units: a dispatch would cost more than its
// step): one workgroup per four entries and direction holds all H units (lane l takes unit
// l; the host dispatches one workgroup in x). Each phase first stages the rows it reduces
// (the state, u = r ⊙ h, or G_h: every unit of what the phase before wrote) in `red`, and
// barriers separate the phases. The forward runs steps sp.s .. sp.s_end − 1 in order, the
// backward dispatches n = sp.s_end − 1 down to sp.s; the host bounds a range by the loop
// budget (REFERENCES.md §6).

// The operand rows of one phase of the four entries (the state, or u for the candidate)
// into `red` as vec4 over the entries, as the inference persistent kernel keeps its state:
// the product loop then reads one workgroup vec4 per unit instead of four rows of storage.
// H ≤ 64 here, so the rows fit `red`.
fn stage_forward(mode: u32, lid: u32, wid: vec3<u32>) {
    let rows = forward_rows(wid.y * NB, wid.z, cur_s);
    for (var k = lid; k < HIDDEN; k += LANES) {
        if (mode == FWD_CANDIDATE) {
            red[k] = gather_reserve(rows.u_base, k);
        } else {
            red[k] = gather_hs(rows.h_base, k);
        }
    }
}

// The G_h rows one backward phase reduces (≤ 3H = 192), into `red` likewise.
fn stage_backward(mode: u32, lid: u32, wid: vec3<u32>) {
    let rows = backward_rows(mode, wid.y * NB, wid.z, cur_s);
    for (var i = lid; i < rows.count; i += LANES) {
        red[i] = gather_outs(rows.g_base, i);
    }
}

// Between phases: what one phase wrote to storage is visible to the next, and `red` is read
// to the end before it is staged again.
fn phase_barrier() {
    storageBarrier();
    workgroupBarrier();
}

// One phase of the persistent shape: its operand rows staged, then the step's products.
fn forward_phase(mode: u32, lid: u32, wid: vec3<u32>) {
    stage_forward(mode, lid, wid);
    workgroupBarrier();
    forward_step_direct(mode, lid, wid, 1u, true);
}

fn backward_phase(mode: u32, lid: u32, wid: vec3<u32>) {
    stage_backward(mode, lid, wid);
    workgroupBarrier();
    backward_step_direct(mode, lid, wid, 1u, true);
}

fn persistent_forward(before: bool, lid: u32, wid: vec3<u32>) {
    for (var s = sp.s; s < sp.s_end; s++) {
        cur_s = s;
        if (before) {
            forward_phase(FWD_GATES, lid, wid);
            phase_barrier();
            forward_phase(FWD_CANDIDATE, lid, wid);
        } else {
            forward_phase(FWD_RESET_AFTER, lid, wid);
        }
        phase_barrier();
    }
}

fn persistent_backward(before: bool, lid: u32, wid: vec3<u32>) {
    for (var n = sp.s_end; n > sp.s; n--) {
        cur_s = n - 1u;
        if (before) {
            backward_phase(BWD_GATES, lid, wid);
            phase_barrier();
            backward_phase(BWD_CANDIDATE, lid, wid);
        } else {
            backward_phase(BWD_RESET_AFTER, lid, wid);
        }
        phase_barrier();
    }
}

@compute @workgroup_size(LANES)
fn train_persistent_reset_after(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    persistent_forward(false, lid, wid);
}

@compute @workgroup_size(LANES)
fn train_persistent_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    persistent_forward(true, lid, wid);
}

@compute @workgroup_size(LANES)
fn grad_persistent_reset_after(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    persistent_backward(false, lid, wid);
}

@compute @workgroup_size(LANES)
fn grad_persistent_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    persistent_backward(true, lid, wid);
}
