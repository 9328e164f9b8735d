// gru_step.wgsl: the recurrent part of one GRU timestep of one layer, both directions at
// once (workgroup z = direction), fused.
//
// Gate order z, r, h everywhere. Bindings (one bind group per layer):
//   xp[rows, D·3H]  the layer's input projection X·Wᵀ + Wb for every step and direction
//                   (input_projection.wgsl); row(t, b) = t·B + b, or b·T + t when batch-major
//   rec             Rᵀ of every direction, rec[d·H·3H + k·3H + g·H + j] = R_d[g·H + j, k],
//                   followed (at rb_offset) by the recurrent biases Rb[D, 3H]
//   h0              the initial state, state layout (base + d·st_ld + b·st_b + k)
//   y               the layer's output, y[t·y_t + d·y_d + b·y_b + j]: step s reads the state
//                   the previous step wrote there, and writes h_t
//   scratch[D, 2, B, H]  reset-before only: z, then r ⊙ h_prev
//   lens[B]         per-entry sequence lengths (all T when the user gave none)
//   yh              the state after each entry's last valid step (state layout)
//
// Step s of direction d handles entry b when s < len_b, at time t = s (forward) or
// len_b − 1 − s (reverse); otherwise it writes the zero padding of Y at time s.
//
// Reset-after (PyTorch, cuDNN, ONNX linear_before_reset=1) is one dispatch per step,
// `step_reset_after`: the three products R_z·h, R_r·h, R_h·h share one pass over h, then
//   z = σ(xp_z + R_z h + Rb_z), r = σ(xp_r + R_r h + Rb_r),
//   h̃ = tanh(xp_h + r ⊙ (R_h h + Rb_h)),  h_t = (1 − z) ⊙ h̃ + z ⊙ h.
// Reset-before (ONNX default, Keras reset_after=False) needs every unit's r before R_h can
// be applied to r ⊙ h, so it is two dispatches per step: `gates_reset_before` writes z and
// r ⊙ h to scratch, `candidate_reset_before` computes h̃ = tanh(xp_h + R_h (r ⊙ h) + Rb_h)
// and the blend. With ONNX's clip, every pre-activation is clamped to [−clip, clip].
//
// Work split: invocation (j, b0..b0+3, d) owns hidden unit j of four batch entries, so every
// load of R is reused four times (vec4 accumulators) and consecutive invocations read
// consecutive addresses of rec. The state is staged through workgroup memory in chunks of
// KC units. Loop trips per invocation: HIDDEN (+ HIDDEN/KC), far below lavapipe's 65535 cap
// (REFERENCES.md §6) for every H the crate accepts (≤ 32768).

struct StepParams {
    s: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct LayerParams {
    batch: u32,
    seq_len: u32,
    batch_major: u32,
    reverse_mask: u32,   // bit d set: direction d runs backwards
    y_t: u32,
    y_d: u32,
    y_b: u32,
    state_base: u32,     // (layer · D) · st_ld
    st_ld: u32,
    st_b: u32,
    xp_width: u32,       // D · 3H
    rb_offset: u32,      // D · H · 3H
    has_clip: u32,
    clip: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> xp: array<f32>;
@group(0) @binding(1) var<storage, read> rec: array<f32>;
@group(0) @binding(2) var<storage, read> h0: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(5) var<storage, read> lens: array<u32>;
@group(0) @binding(6) var<storage, read_write> yh: array<f32>;
@group(0) @binding(7) var<storage, read> sp: StepParams;
@group(0) @binding(8) var<uniform> lp: LayerParams;

// Hidden size H, fixed per model.
override HIDDEN: u32 = 1u;
// Invocations per workgroup, along the hidden units.
override WG: u32 = 64u;

const NB: u32 = 4u;   // batch entries per invocation (one vec4)
const KC: u32 = 64u;  // state units staged per chunk

const SRC_STATE: u32 = 0u;     // stage h_prev
const SRC_RESET_H: u32 = 1u;   // stage r ⊙ h_prev from scratch

var<workgroup> h_tile: array<vec4<f32>, KC>;

// Whether step s has work for entry b.
fn has_step(b: u32) -> bool {
    return b < lp.batch && sp.s < lens[b];
}

fn is_reverse(d: u32) -> bool {
    return ((lp.reverse_mask >> d) & 1u) != 0u;
}

// The time index step s handles for entry b, direction d (b must be active).
fn time_of(b: u32, d: u32) -> u32 {
    if (is_reverse(d)) {
        return lens[b] - 1u - sp.s;
    }
    return sp.s;
}

fn y_index(t: u32, d: u32, b: u32, j: u32) -> u32 {
    return t * lp.y_t + d * lp.y_d + b * lp.y_b + j;
}

fn state_index(d: u32, b: u32, j: u32) -> u32 {
    return lp.state_base + d * lp.st_ld + b * lp.st_b + j;
}

// h_prev[b, k] of direction d; zero for inactive entries and k ≥ H.
fn prev_state(d: u32, b: u32, k: u32) -> f32 {
    if (!has_step(b) || k >= HIDDEN) {
        return 0.0;
    }
    if (sp.s == 0u) {
        return h0[state_index(d, b, k)];
    }
    let t = time_of(b, d);
    var t_prev = t - 1u;
    if (is_reverse(d)) {
        t_prev = t + 1u;
    }
    return y[y_index(t_prev, d, b, k)];
}

fn scratch_index(d: u32, which: u32, b: u32, j: u32) -> u32 {
    return ((d * 2u + which) * lp.batch + b) * HIDDEN + j;
}

fn reset_h(d: u32, b: u32, k: u32) -> f32 {
    if (!has_step(b) || k >= HIDDEN) {
        return 0.0;
    }
    return scratch[scratch_index(d, 1u, b, k)];
}

fn staged(src: u32, d: u32, b0: u32, k: u32) -> vec4<f32> {
    if (src == SRC_STATE) {
        return vec4<f32>(prev_state(d, b0, k), prev_state(d, b0 + 1u, k),
                         prev_state(d, b0 + 2u, k), prev_state(d, b0 + 3u, k));
    }
    return vec4<f32>(reset_h(d, b0, k), reset_h(d, b0 + 1u, k),
                     reset_h(d, b0 + 2u, k), reset_h(d, b0 + 3u, k));
}

struct Products {
    z: vec4<f32>,
    r: vec4<f32>,
    h: vec4<f32>,
}

// Σ_k R_g[j, k] · src[b, k] for the four batch entries b0..b0+3 of direction d and the gates
// asked for (zr: z and r; hh: h). Must be called from uniform control flow (it has barriers).
fn recurrent_products(src: u32, d: u32, j: u32, b0: u32, lid: u32, zr: bool, hh: bool) -> Products {
    var out = Products(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let h3 = 3u * HIDDEN;
    let rt_base = d * HIDDEN * h3;
    let chunks = (HIDDEN + KC - 1u) / KC;
    for (var c = 0u; c < chunks; c++) {
        let k0 = c * KC;
        for (var q = lid; q < KC; q += WG) {
            h_tile[q] = staged(src, d, b0, k0 + q);
        }
        workgroupBarrier();
        if (j < HIDDEN) {
            let kn = min(KC, HIDDEN - k0);
            for (var kk = 0u; kk < kn; kk++) {
                let hv = h_tile[kk];
                let base = rt_base + (k0 + kk) * h3 + j;
                if (zr) {
                    out.z += rec[base] * hv;
                    out.r += rec[base + HIDDEN] * hv;
                }
                if (hh) {
                    out.h += rec[base + 2u * HIDDEN] * hv;
                }
            }
        }
        workgroupBarrier();
    }
    return out;
}

// ONNX's clip, NaN-preserving (a NaN compares false and passes through).
fn clip(x: f32) -> f32 {
    if (lp.has_clip != 0u) {
        if (x > lp.clip) {
            return lp.clip;
        }
        if (x < -lp.clip) {
            return -lp.clip;
        }
    }
    return x;
}

fn xp_at(t: u32, b: u32, d: u32, gate: u32, j: u32) -> f32 {
    var row = t * lp.batch + b;
    if (lp.batch_major != 0u) {
        row = b * lp.seq_len + t;
    }
    return xp[row * lp.xp_width + d * 3u * HIDDEN + gate * HIDDEN + j];
}

fn rb_at(d: u32, gate: u32, j: u32) -> f32 {
    return rec[lp.rb_offset + d * 3u * HIDDEN + gate * HIDDEN + j];
}

fn write_state(t: u32, d: u32, b: u32, j: u32, value: f32) {
    y[y_index(t, d, b, j)] = value;
    yh[state_index(d, b, j)] = value;
}

// Entry b has no step s (s ≥ len_b): Y at time s is padding and must be zero, in either
// direction (a reverse direction covers exactly t < len_b too); an entry of length 0 gets a
// zero Y_h. Over the T steps every padded element is written exactly once.
fn write_padding(d: u32, b: u32, j: u32) {
    if (b < lp.batch && sp.s >= lens[b]) {
        y[y_index(sp.s, d, b, j)] = 0.0;
        if (sp.s == 0u) {
            yh[state_index(d, b, j)] = 0.0;
        }
    }
}

@compute @workgroup_size(WG)
fn step_reset_after(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = wid.x * WG + lid.x;
    let b0 = wid.y * NB;
    let d = wid.z;
    let acc = recurrent_products(SRC_STATE, d, j, b0, lid.x, true, true);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (has_step(b)) {
            let t = time_of(b, d);
            let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + acc.z[i] + rb_at(d, 0u, j)));
            let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + acc.r[i] + rb_at(d, 1u, j)));
            let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + r * (acc.h[i] + rb_at(d, 2u, j))));
            let h = prev_state(d, b, j);
            write_state(t, d, b, j, (1.0 - z) * n + z * h);
        } else {
            write_padding(d, b, j);
        }
    }
}

@compute @workgroup_size(WG)
fn gates_reset_before(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = wid.x * WG + lid.x;
    let b0 = wid.y * NB;
    let d = wid.z;
    let acc = recurrent_products(SRC_STATE, d, j, b0, lid.x, true, false);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (has_step(b)) {
            let t = time_of(b, d);
            let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + acc.z[i] + rb_at(d, 0u, j)));
            let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + acc.r[i] + rb_at(d, 1u, j)));
            scratch[scratch_index(d, 0u, b, j)] = z;
            scratch[scratch_index(d, 1u, b, j)] = r * prev_state(d, b, j);
        }
    }
}

@compute @workgroup_size(WG)
fn candidate_reset_before(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = wid.x * WG + lid.x;
    let b0 = wid.y * NB;
    let d = wid.z;
    let acc = recurrent_products(SRC_RESET_H, d, j, b0, lid.x, false, true);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (has_step(b)) {
            let t = time_of(b, d);
            let z = scratch[scratch_index(d, 0u, b, j)];
            let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + acc.h[i] + rb_at(d, 2u, j)));
            let h = prev_state(d, b, j);
            write_state(t, d, b, j, (1.0 - z) * n + z * h);
        } else {
            write_padding(d, b, j);
        }
    }
}
