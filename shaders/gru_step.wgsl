// gru_step.wgsl: the recurrent part of one GRU timestep, fused.
//
// Inputs of step t (gate order z, r, h everywhere):
//   xp[T·B, 3H]  the input projection X·Wᵀ + Wb of every step (input_projection.wgsl)
//   rt[H, 3H]    R[3H, H] transposed on upload: rt[k·3H + g·H + j] = R[g·H + j, k]
//   rb[3H]       the recurrent bias Rb
//   h0[B, H]     the initial state (read at t = 0)
//   y[T, B, H]   every step's state: step t reads h_{t−1} = y[t−1] and writes y[t]
//   scratch[2, B, H]  reset-before only: z, then r ⊙ h_{t−1}
//
// Reset-after (PyTorch, cuDNN, ONNX linear_before_reset=1) is one dispatch per step,
// `step_reset_after`: the three products R_z·h, R_r·h, R_h·h share one pass over h, then
//   z = σ(xp_z + R_z h + Rb_z), r = σ(xp_r + R_r h + Rb_r),
//   h̃ = tanh(xp_h + r ⊙ (R_h h + Rb_h)),  y[t] = (1 − z) ⊙ h̃ + z ⊙ h.
// Reset-before (ONNX default, Keras reset_after=False) needs every unit's r before R_h can
// be applied to r ⊙ h, so it is two dispatches per step: `gates_reset_before` writes z and
// r ⊙ h to scratch, `candidate_reset_before` computes h̃ = tanh(xp_h + R_h (r ⊙ h) + Rb_h)
// and the blend.
//
// Work split: invocation (j, b0..b0+3) owns hidden unit j of four batch entries, so every
// load of R is reused four times (vec4 accumulators) and consecutive invocations read
// consecutive addresses of rt. The state vector is staged through workgroup memory in
// chunks of KC units. Loop trips per invocation: HIDDEN (+ HIDDEN/KC), far below
// lavapipe's 65535 cap (REFERENCES.md §6) for every H the crate accepts (≤ 32768).

struct StepParams {
    t: u32,
    batch: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> xp: array<f32>;
@group(0) @binding(1) var<storage, read> rt: array<f32>;
@group(0) @binding(2) var<storage, read> rb: array<f32>;
@group(0) @binding(3) var<storage, read> h0: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<uniform> sp: StepParams;

// Hidden size H, fixed per model.
override HIDDEN: u32 = 1u;
// Invocations per workgroup, along the hidden units.
override WG: u32 = 64u;

const NB: u32 = 4u;   // batch entries per invocation (one vec4)
const KC: u32 = 64u;  // state units staged per chunk

const SRC_STATE: u32 = 0u;     // stage h_{t−1}
const SRC_RESET_H: u32 = 1u;   // stage r ⊙ h_{t−1} from scratch

var<workgroup> h_tile: array<vec4<f32>, KC>;

// h_{t−1}[b, k]; zero outside the problem.
fn prev_state(b: u32, k: u32) -> f32 {
    if (b >= sp.batch || k >= HIDDEN) {
        return 0.0;
    }
    if (sp.t == 0u) {
        return h0[b * HIDDEN + k];
    }
    return y[((sp.t - 1u) * sp.batch + b) * HIDDEN + k];
}

fn reset_h(b: u32, k: u32) -> f32 {
    if (b >= sp.batch || k >= HIDDEN) {
        return 0.0;
    }
    return scratch[sp.batch * HIDDEN + b * HIDDEN + k];
}

fn staged(src: u32, b0: u32, k: u32) -> vec4<f32> {
    if (src == SRC_STATE) {
        return vec4<f32>(prev_state(b0, k), prev_state(b0 + 1u, k),
                         prev_state(b0 + 2u, k), prev_state(b0 + 3u, k));
    }
    return vec4<f32>(reset_h(b0, k), reset_h(b0 + 1u, k), reset_h(b0 + 2u, k), reset_h(b0 + 3u, k));
}

struct Products {
    z: vec4<f32>,
    r: vec4<f32>,
    h: vec4<f32>,
}

// Σ_k R_g[j, k] · src[b, k] for the four batch entries b0..b0+3 and the gates asked for
// (zr: z and r; hh: h). Must be called from uniform control flow (it has barriers).
fn recurrent_products(src: u32, j: u32, b0: u32, lid: u32, zr: bool, hh: bool) -> Products {
    var out = Products(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let h3 = 3u * HIDDEN;
    for (var k0 = 0u; k0 < HIDDEN; k0 += KC) {
        for (var q = lid; q < KC; q += WG) {
            h_tile[q] = staged(src, b0, k0 + q);
        }
        workgroupBarrier();
        if (j < HIDDEN) {
            let kn = min(KC, HIDDEN - k0);
            for (var kk = 0u; kk < kn; kk++) {
                let hv = h_tile[kk];
                let base = (k0 + kk) * h3 + j;
                if (zr) {
                    out.z += rt[base] * hv;
                    out.r += rt[base + HIDDEN] * hv;
                }
                if (hh) {
                    out.h += rt[base + 2u * HIDDEN] * hv;
                }
            }
        }
        workgroupBarrier();
    }
    return out;
}

fn xp_at(b: u32, gate: u32, j: u32) -> f32 {
    return xp[(sp.t * sp.batch + b) * 3u * HIDDEN + gate * HIDDEN + j];
}

fn y_index(b: u32, j: u32) -> u32 {
    return (sp.t * sp.batch + b) * HIDDEN + j;
}

@compute @workgroup_size(WG)
fn step_reset_after(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = wid.x * WG + lid.x;
    let b0 = wid.y * NB;
    let acc = recurrent_products(SRC_STATE, j, b0, lid.x, true, true);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (b < sp.batch) {
            let z = sigmoid_stable(xp_at(b, 0u, j) + acc.z[i] + rb[j]);
            let r = sigmoid_stable(xp_at(b, 1u, j) + acc.r[i] + rb[HIDDEN + j]);
            let n = tanh_stable(xp_at(b, 2u, j) + r * (acc.h[i] + rb[2u * HIDDEN + j]));
            let h = prev_state(b, j);
            y[y_index(b, j)] = (1.0 - z) * n + z * h;
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
    let acc = recurrent_products(SRC_STATE, j, b0, lid.x, true, false);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (b < sp.batch) {
            let z = sigmoid_stable(xp_at(b, 0u, j) + acc.z[i] + rb[j]);
            let r = sigmoid_stable(xp_at(b, 1u, j) + acc.r[i] + rb[HIDDEN + j]);
            scratch[b * HIDDEN + j] = z;
            scratch[sp.batch * HIDDEN + b * HIDDEN + j] = r * prev_state(b, j);
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
    let acc = recurrent_products(SRC_RESET_H, j, b0, lid.x, false, true);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (b < sp.batch) {
            let z = scratch[b * HIDDEN + j];
            let n = tanh_stable(xp_at(b, 2u, j) + acc.h[i] + rb[2u * HIDDEN + j]);
            let h = prev_state(b, j);
            y[y_index(b, j)] = (1.0 - z) * n + z * h;
        }
    }
}
