// gru_layer.wgsl: bindings, parameters and index arithmetic shared by the recurrent kernels
// (gru_step.wgsl, gru_persistent.wgsl); prepended to each of them by src/shaders.rs, after
// gru_state.wgsl or gru_state_vec4.wgsl.
//
// Gate order z, r, h everywhere. Storage type S (f32 or f16, dtype_*.wgsl) for weights and
// activations; loads convert to f32, all arithmetic is f32. Bindings (one bind group per layer):
//   xp[rows, D·3H]  the layer's input projection X·Wᵀ + Wb for every step and direction
//                   (input_projection.wgsl); row(t, b) = t·B + b, or b·T + t when batch-major
//   rec             Rᵀ of every direction, rec[d·H·3H + k·3H + g·H + j] = R_d[g·H + j, k]
//                   (gru_step.wgsl, gru_persistent.wgsl), or R row-major,
//                   rec[d·3H·H + (g·H + j)·H + k] = R_d[g·H + j, k] (gru_split.wgsl);
//                   followed in both (at rb_offset = D·H·3H) by the recurrent biases Rb[D, 3H]
//   h0              the initial state, state layout (base + d·st_ld + b·st_b + k)
//   y               the layer's output, y[t·y_t + d·y_d + b·y_b + j]: a step reads the state
//                   the previous step wrote there, and writes h_t
//   scratch[D, 2, B, H]  step-fused reset-before only (gru_step, gru_split): z, then r ⊙ h_prev (always f32)
//   lens[B]         per-entry sequence lengths (all T when the user gave none)
//   yh              the state after each entry's last valid step (state layout)
//   sp              the steps of this dispatch: [s, s_end) (the step-fused kernels do step s)
//   lp              the layer's sizes and strides
//
// Step s of direction d has work for entry b when s < len_b, at time t = s (forward) or
// len_b − 1 − s (reverse); otherwise the kernel writes the zero padding of Y at time s, so
// over the T steps every padded element of Y is written exactly once.
// With ONNX's clip, every pre-activation is clamped to [−clip, clip].

struct StepParams {
    s: u32,
    s_end: u32,
    _pad0: u32,
    _pad1: u32,
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

@group(0) @binding(0) var<storage, read> xp: array<S>;
@group(0) @binding(1) var<storage, read> rec: array<S>;
// Bindings 2 (h0), 3 (y) and 4 (scratch): gru_state.wgsl or gru_state_vec4.wgsl, read and
// written through their accessors (h0_at, y_at, set_y, scratch_at, set_scratch, …_4).
@group(0) @binding(5) var<storage, read> lens: array<u32>;
@group(0) @binding(6) var<storage, read_write> yh: array<S>;
// Read-only storage, not uniform: lavapipe recompiles a shader for every value of a small
// uniform that steers control flow, which would mean one compile per timestep.
@group(0) @binding(7) var<storage, read> sp: StepParams;
@group(0) @binding(8) var<uniform> lp: LayerParams;

// Hidden size H, fixed per model.
override HIDDEN: u32 = 1u;
// Invocations per workgroup.
override WG: u32 = 64u;

// Whether step s has work for entry b.
fn has_step(b: u32, s: u32) -> bool {
    return b < lp.batch && s < lens[b];
}

fn is_reverse(d: u32) -> bool {
    return ((lp.reverse_mask >> d) & 1u) != 0u;
}

// The time index step s handles for entry b, direction d (only when has_step(b, s)).
fn time_of(b: u32, d: u32, s: u32) -> u32 {
    if (is_reverse(d)) {
        return lens[b] - 1u - s;
    }
    return s;
}

fn y_index(t: u32, d: u32, b: u32, j: u32) -> u32 {
    return t * lp.y_t + d * lp.y_d + b * lp.y_b + j;
}

fn state_index(d: u32, b: u32, j: u32) -> u32 {
    return lp.state_base + d * lp.st_ld + b * lp.st_b + j;
}

// The state step s of direction d starts from, for entry b, unit k (only when has_step(b, s)):
// initial_h at s = 0, else what step s − 1 wrote to Y.
fn prev_state(d: u32, b: u32, k: u32, s: u32) -> f32 {
    if (s == 0u) {
        return h0_at(state_index(d, b, k));
    }
    let t = time_of(b, d, s);
    var t_prev = t - 1u;
    if (is_reverse(d)) {
        t_prev = t + 1u;
    }
    return y_at(y_index(t_prev, d, b, k));
}

// ONNX's clip, NaN-preserving (a NaN compares false and passes through).
fn clip(x: f32) -> f32 {
    return onnx_clip(x, lp.has_clip != 0u, lp.clip);
}

fn xp_at(t: u32, b: u32, d: u32, gate: u32, j: u32) -> f32 {
    var row = t * lp.batch + b;
    if (lp.batch_major != 0u) {
        row = b * lp.seq_len + t;
    }
    return f32(xp[row * lp.xp_width + d * 3u * HIDDEN + gate * HIDDEN + j]);
}

fn rb_at(d: u32, gate: u32, j: u32) -> f32 {
    return f32(rec[lp.rb_offset + d * 3u * HIDDEN + gate * HIDDEN + j]);
}

fn write_state(t: u32, d: u32, b: u32, j: u32, value: f32) {
    set_y(y_index(t, d, b, j), value);
    yh[state_index(d, b, j)] = to_s(value);
}

// Entry b has no step s (s ≥ len_b): Y at time s is padding and must be zero, in either
// direction (a reverse direction covers exactly t < len_b too); an entry of length 0 gets a
// zero Y_h.
fn write_padding(d: u32, b: u32, j: u32, s: u32) {
    if (b < lp.batch && s >= lens[b]) {
        set_y(y_index(s, d, b, j), 0.0);
        if (s == 0u) {
            yh[state_index(d, b, j)] = S(0.0);
        }
    }
}

// The operand of a step's recurrent products: the previous state, or (reset-before's
// candidate) r ⊙ h_prev from scratch.
const SRC_STATE: u32 = 0u;
const SRC_RESET_H: u32 = 1u;

// scratch[d, which, b, j]: which = 0 holds z, 1 holds r ⊙ h_prev (reset-before).
fn scratch_index(d: u32, which: u32, b: u32, j: u32) -> u32 {
    return ((d * 2u + which) * lp.batch + b) * HIDDEN + j;
}

// Where entry b's operand row starts (unit 0), when it has step sp.s: in h0 or y (the state),
// or in scratch (r ⊙ h).
fn operand_base(src: u32, d: u32, b: u32) -> u32 {
    if (src == SRC_RESET_H) {
        return scratch_index(d, 1u, b, 0u);
    }
    if (sp.s == 0u) {
        return state_index(d, b, 0u);
    }
    let t = time_of(b, d, sp.s);
    var t_prev = t - 1u;
    if (is_reverse(d)) {
        t_prev = t + 1u;
    }
    return y_index(t_prev, d, b, 0u);
}
