// gru_persistent.wgsl: many timesteps of one layer in one dispatch, the state kept in
// workgroup memory. Bindings and helpers: gru_layer.wgsl.
//
// Workgroup (tile, d) owns batch entries 4·tile .. 4·tile+3 of direction d and runs steps
// [sp.s, sp.s_end) back to back: no other workgroup touches its entries, so it needs no
// cross-workgroup synchronisation, only workgroup barriers between the phases of a step.
// The state of its four entries lives in workgroup memory as vec4 (one lane per entry), so
// every load of R serves four entries; R itself is read from device memory (or cache) every
// step. Invocation lid owns hidden units lid, lid + WG, …
//
// Reset-after, per step: new h_j from the three products over the whole state (read from one
// half of `buf`, written to the other: ping-pong), one barrier.
// Reset-before, per step: z_j and r_j ⊙ h_j into `buf`, barrier, then the candidate over
// r ⊙ h and the blend written in place (each invocation reads only its own h_j there),
// barrier.
//
// The state kept in workgroup memory is rounded to the storage type S after each step
// (stored()), as the step-fused path rounds it by writing Y, so both paths agree in f16 too.
//
// Limits: H ≤ PMAX (the state of four entries in 4·PMAX·3 floats = 12 KiB of workgroup
// memory). Loop trips per invocation: about (s_end − s) · ⌈H/WG⌉ · H (twice that for
// reset-before); the host sizes each dispatch's step range to stay far below lavapipe's
// 65535-trip cap (REFERENCES.md §6) and short enough for any watchdog.

const PNB: u32 = 4u;
const PMAX: u32 = 256u;

var<workgroup> buf: array<vec4<f32>, 768>;

// The state entry b of direction d starts step s from; zero if it has no step s.
fn start_state(d: u32, b: u32, k: u32, s: u32) -> f32 {
    if (!has_step(b, s)) {
        return 0.0;
    }
    return prev_state(d, b, k, s);
}

fn load_state(d: u32, b0: u32, lid: u32, at: u32) {
    for (var k = lid; k < HIDDEN; k += WG) {
        buf[at + k] = vec4<f32>(start_state(d, b0, k, sp.s), start_state(d, b0 + 1u, k, sp.s),
                                start_state(d, b0 + 2u, k, sp.s), start_state(d, b0 + 3u, k, sp.s));
    }
}

@compute @workgroup_size(WG)
fn persistent_reset_after(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let b0 = wid.x * PNB;
    let d = wid.y;
    let h3 = 3u * HIDDEN;
    load_state(d, b0, lid.x, 0u);
    workgroupBarrier();
    var cur = 0u;
    for (var s = sp.s; s < sp.s_end; s++) {
        let nxt = PMAX - cur;
        for (var j = lid.x; j < HIDDEN; j += WG) {
            var az = vec4<f32>(0.0);
            var ar = vec4<f32>(0.0);
            var ah = vec4<f32>(0.0);
            for (var k = 0u; k < HIDDEN; k++) {
                let hv = buf[cur + k];
                let base = (d * HIDDEN + k) * h3 + j;
                az += f32(rec[base]) * hv;
                ar += f32(rec[base + HIDDEN]) * hv;
                ah += f32(rec[base + 2u * HIDDEN]) * hv;
            }
            var hn = buf[cur + j];
            for (var i = 0u; i < PNB; i++) {
                let b = b0 + i;
                if (has_step(b, s)) {
                    let t = time_of(b, d, s);
                    let z = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + az[i] + rb_at(d, 0u, j)));
                    let r = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + ar[i] + rb_at(d, 1u, j)));
                    let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + r * (ah[i] + rb_at(d, 2u, j))));
                    let h = (1.0 - z) * n + z * hn[i];
                    write_state(t, d, b, j, h);
                    hn[i] = stored(h);
                } else {
                    write_padding(d, b, j, s);
                }
            }
            buf[nxt + j] = hn;
        }
        workgroupBarrier();
        cur = nxt;
    }
}

@compute @workgroup_size(WG)
fn persistent_reset_before(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let b0 = wid.x * PNB;
    let d = wid.y;
    let h3 = 3u * HIDDEN;
    let H_AT = 0u;
    let RH_AT = PMAX;
    let Z_AT = 2u * PMAX;
    load_state(d, b0, lid.x, H_AT);
    workgroupBarrier();
    for (var s = sp.s; s < sp.s_end; s++) {
        // Gates z and r; r ⊙ h for the candidate.
        for (var j = lid.x; j < HIDDEN; j += WG) {
            var az = vec4<f32>(0.0);
            var ar = vec4<f32>(0.0);
            for (var k = 0u; k < HIDDEN; k++) {
                let hv = buf[H_AT + k];
                let base = (d * HIDDEN + k) * h3 + j;
                az += f32(rec[base]) * hv;
                ar += f32(rec[base + HIDDEN]) * hv;
            }
            var z4 = vec4<f32>(0.0);
            var r4 = vec4<f32>(0.0);
            for (var i = 0u; i < PNB; i++) {
                let b = b0 + i;
                if (has_step(b, s)) {
                    let t = time_of(b, d, s);
                    z4[i] = sigmoid_stable(clip(xp_at(t, b, d, 0u, j) + az[i] + rb_at(d, 0u, j)));
                    r4[i] = sigmoid_stable(clip(xp_at(t, b, d, 1u, j) + ar[i] + rb_at(d, 1u, j)));
                }
            }
            buf[Z_AT + j] = z4;
            buf[RH_AT + j] = r4 * buf[H_AT + j];
        }
        workgroupBarrier();
        // Candidate over r ⊙ h, and the blend.
        for (var j = lid.x; j < HIDDEN; j += WG) {
            var ah = vec4<f32>(0.0);
            for (var k = 0u; k < HIDDEN; k++) {
                ah += f32(rec[(d * HIDDEN + k) * h3 + 2u * HIDDEN + j]) * buf[RH_AT + k];
            }
            var hn = buf[H_AT + j];
            let z4 = buf[Z_AT + j];
            for (var i = 0u; i < PNB; i++) {
                let b = b0 + i;
                if (has_step(b, s)) {
                    let t = time_of(b, d, s);
                    let n = tanh_stable(clip(xp_at(t, b, d, 2u, j) + ah[i] + rb_at(d, 2u, j)));
                    let h = (1.0 - z4[i]) * n + z4[i] * hn[i];
                    write_state(t, d, b, j, h);
                    hn[i] = stored(h);
                } else {
                    write_padding(d, b, j, s);
                }
            }
            buf[H_AT + j] = hn;
        }
        workgroupBarrier();
    }
}
