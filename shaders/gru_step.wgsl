// gru_step.wgsl: the recurrent part of one GRU timestep (step sp.s) of one layer, both
// directions at once (workgroup z = direction), fused. Bindings and helpers: gru_layer.wgsl.
//
// Reset-after (PyTorch, cuDNN, ONNX linear_before_reset=1) is one dispatch per step,
// `step_reset_after`: the three products R_z·h, R_r·h, R_h·h share one pass over h, then
//   z = σ(xp_z + R_z h + Rb_z), r = σ(xp_r + R_r h + Rb_r),
//   h̃ = tanh(xp_h + r ⊙ (R_h h + Rb_h)),  h_t = (1 − z) ⊙ h̃ + z ⊙ h.
// Reset-before (ONNX default, Keras reset_after=False) needs every unit's r before R_h can
// be applied to r ⊙ h, so it is two dispatches per step: `gates_reset_before` writes z and
// r ⊙ h to scratch, `candidate_reset_before` computes h̃ = tanh(xp_h + R_h (r ⊙ h) + Rb_h)
// and the blend.
//
// Work split: invocation (j, b0..b0+3, d) owns hidden unit j of four batch entries, so every
// load of R is reused four times (vec4 accumulators) and consecutive invocations read
// consecutive addresses of rec. The state is staged through workgroup memory in chunks of
// KC units. Loop trips per invocation: HIDDEN (+ HIDDEN/KC), far below lavapipe's 65535 cap
// (REFERENCES.md §6) for every H the crate accepts (≤ 32768).

const NB: u32 = 4u;   // batch entries per invocation (one vec4)
// Read the state straight from memory instead of staging it through workgroup memory.
override DIRECT: bool = false;
// With DIRECT: read it four units at a time (the module has gru_state_vec4.wgsl's view and H
// is a multiple of 4; every row of the state then starts at a multiple of 4).
override VEC_H: bool = false;
const KC: u32 = 64u;  // state units staged per chunk

var<workgroup> h_tile: array<vec4<f32>, KC>;

// The staged operand for entry b, unit k: zero where the entry has no step or k ≥ H.
fn operand(src: u32, d: u32, b: u32, k: u32) -> f32 {
    if (!has_step(b, sp.s) || k >= HIDDEN) {
        return 0.0;
    }
    if (src == SRC_STATE) {
        return prev_state(d, b, k, sp.s);
    }
    return scratch_at(scratch_index(d, 1u, b, k));
}

fn staged(src: u32, d: u32, b0: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(operand(src, d, b0, k), operand(src, d, b0 + 1u, k),
                     operand(src, d, b0 + 2u, k), operand(src, d, b0 + 3u, k));
}

struct Products {
    z: vec4<f32>,
    r: vec4<f32>,
    h: vec4<f32>,
}

// The operand of unit k for the four entries: row starts `base`, zero where `live` is false
// (select, not a multiply: a NaN elsewhere must not leak in).
fn direct_operand(src: u32, base: vec4<u32>, live: vec4<bool>, k: u32) -> vec4<f32> {
    var v: vec4<f32>;
    if (src == SRC_RESET_H) {
        v = vec4<f32>(scratch_at(base.x + k), scratch_at(base.y + k), scratch_at(base.z + k), scratch_at(base.w + k));
    } else if (sp.s == 0u) {
        v = vec4<f32>(h0_at(base.x + k), h0_at(base.y + k), h0_at(base.z + k), h0_at(base.w + k));
    } else {
        v = vec4<f32>(y_at(base.x + k), y_at(base.y + k), y_at(base.z + k), y_at(base.w + k));
    }
    return select(vec4<f32>(0.0), v, live);
}

// One entry's operand at units 4q .. 4q+3 (its row starts at a multiple of 4), zero where the
// entry has no step.
fn direct_operand4(src: u32, q: u32, live: bool) -> vec4<f32> {
    var v: vec4<f32>;
    if (src == SRC_RESET_H) {
        v = scratch_4(q);
    } else if (sp.s == 0u) {
        v = h0_4(q);
    } else {
        v = y_4(q);
    }
    return select(vec4<f32>(0.0), v, live);
}

// Adds unit k's term (Rᵀ row at `at`, operand hv of the four entries) to the products.
fn add_unit(out: ptr<function, Products>, at: u32, hv: vec4<f32>, zr: bool, hh: bool) {
    if (zr) {
        (*out).z += f32(rec[at]) * hv;
        (*out).r += f32(rec[at + HIDDEN]) * hv;
    }
    if (hh) {
        (*out).h += f32(rec[at + 2u * HIDDEN]) * hv;
    }
}

// DIRECT: the products without workgroup memory or barriers, each invocation reading the
// operands straight from memory (CPU adapters, where barriers are expensive).
fn recurrent_products_direct(src: u32, d: u32, j: u32, b0: u32, zr: bool, hh: bool) -> Products {
    var out = Products(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if (j >= HIDDEN) {
        return out;
    }
    var live = vec4<bool>(false);
    var base = vec4<u32>(0u);
    for (var i = 0u; i < NB; i++) {
        if (has_step(b0 + i, sp.s)) {
            live[i] = true;
            base[i] = operand_base(src, d, b0 + i);
        }
    }
    let h3 = 3u * HIDDEN;
    let rt_base = d * HIDDEN * h3 + j;
    if (VEC_H && HIDDEN % 4u == 0u && all((base & vec4<u32>(3u)) == vec4<u32>(0u))) {
        // Four units of the four entries' operands per iteration, one vec4 load per entry.
        let q = base / vec4<u32>(4u);
        for (var kq = 0u; kq < HIDDEN / 4u; kq++) {
            let a0 = direct_operand4(src, q.x + kq, live.x);
            let a1 = direct_operand4(src, q.y + kq, live.y);
            let a2 = direct_operand4(src, q.z + kq, live.z);
            let a3 = direct_operand4(src, q.w + kq, live.w);
            let at = rt_base + 4u * kq * h3;
            add_unit(&out, at, vec4<f32>(a0.x, a1.x, a2.x, a3.x), zr, hh);
            add_unit(&out, at + h3, vec4<f32>(a0.y, a1.y, a2.y, a3.y), zr, hh);
            add_unit(&out, at + 2u * h3, vec4<f32>(a0.z, a1.z, a2.z, a3.z), zr, hh);
            add_unit(&out, at + 3u * h3, vec4<f32>(a0.w, a1.w, a2.w, a3.w), zr, hh);
        }
        return out;
    }
    for (var k = 0u; k < HIDDEN; k++) {
        add_unit(&out, rt_base + k * h3, direct_operand(src, base, live, k), zr, hh);
    }
    return out;
}

// Σ_k R_g[j, k] · src[b, k] for the four batch entries b0..b0+3 of direction d and the gates
// asked for (zr: z and r; hh: h). Must be called from uniform control flow (it has barriers).
fn recurrent_products(src: u32, d: u32, j: u32, b0: u32, lid: u32, zr: bool, hh: bool) -> Products {
    if (DIRECT) {
        return recurrent_products_direct(src, d, j, b0, zr, hh);
    }
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
                    out.z += f32(rec[base]) * hv;
                    out.r += f32(rec[base + HIDDEN]) * hv;
                }
                if (hh) {
                    out.h += f32(rec[base + 2u * HIDDEN]) * hv;
                }
            }
        }
        workgroupBarrier();
    }
    return out;
}

@compute @workgroup_size(WG)
fn step_reset_after(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let j = wid.x * WG + lid.x;
    let b0 = wid.y * NB;
    let d = wid.z;
    let s = sp.s;
    let acc = recurrent_products(SRC_STATE, d, j, b0, lid.x, true, true);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (has_step(b, s)) {
            let t = time_of(b, d, s);
            let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + acc.z[i] + rb_at(d, 0u, j)));
            let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + acc.r[i] + rb_at(d, 1u, j)));
            let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + r * (acc.h[i] + rb_at(d, 2u, j))));
            let h = prev_state(d, b, j, s);
            write_state(t, d, b, j, (1.0 - z) * n + z * h);
        } else {
            write_padding(d, b, j, s);
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
    let s = sp.s;
    let acc = recurrent_products(SRC_STATE, d, j, b0, lid.x, true, false);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (has_step(b, s)) {
            let t = time_of(b, d, s);
            let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + acc.z[i] + rb_at(d, 0u, j)));
            let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + acc.r[i] + rb_at(d, 1u, j)));
            set_scratch(scratch_index(d, 0u, b, j), z);
            set_scratch(scratch_index(d, 1u, b, j), r * prev_state(d, b, j, s));
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
    let s = sp.s;
    let acc = recurrent_products(SRC_RESET_H, d, j, b0, lid.x, false, true);
    if (j >= HIDDEN) {
        return;
    }
    for (var i = 0u; i < NB; i++) {
        let b = b0 + i;
        if (has_step(b, s)) {
            let t = time_of(b, d, s);
            let z = scratch_at(scratch_index(d, 0u, b, j));
            let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + acc.h[i] + rb_at(d, 2u, j)));
            let h = prev_state(d, b, j, s);
            write_state(t, d, b, j, (1.0 - z) * n + z * h);
        } else {
            write_padding(d, b, j, s);
        }
    }
}
