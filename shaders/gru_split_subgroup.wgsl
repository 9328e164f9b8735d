// gru_split_subgroup.wgsl: the entry points of the split step kernel (gru_split.wgsl) with
// the lanes' partial sums added by subgroup operations (needs Features::SUBGROUP): one
// subgroupAdd per gate, then the first lane of each gate adds the subgroups' sums in
// subgroup order (2 on a 32-wide GPU, 8 on lavapipe, 1 on a 64-wide one): two barriers in
// all. Subgroups are found by subgroup_id, so nothing assumes how lanes map onto them; the
// order of the additions is fixed on a device, so a forward gives the same bits every time.

// Leaves gate g's total over the lanes in red[g · SPLIT_WG], visible to every lane.
fn split_reduce(acc: Partial, lid: u32, lanes: Lanes) {
    let z = subgroupAdd(acc.z);
    let r = subgroupAdd(acc.r);
    let h = subgroupAdd(acc.h);
    if (lanes.lane == 0u) {
        red[lanes.id] = z;
        red[SPLIT_WG + lanes.id] = r;
        red[2u * SPLIT_WG + lanes.id] = h;
    }
    workgroupBarrier();
    if (lid < 3u) {
        let at = lid * SPLIT_WG;
        var total = red[at];
        for (var q = 1u; q < lanes.count; q++) {
            total += red[at + q];
        }
        red[at] = total;
    }
    workgroupBarrier();
}

@compute @workgroup_size(SPLIT_WG)
fn step_reset_after(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(num_subgroups) count: u32,
) {
    split_step(MODE_RESET_AFTER, lid, wid, groups.x, Lanes(sg, lane, count));
}

@compute @workgroup_size(SPLIT_WG)
fn gates_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(num_subgroups) count: u32,
) {
    split_step(MODE_GATES, lid, wid, groups.x, Lanes(sg, lane, count));
}

@compute @workgroup_size(SPLIT_WG)
fn candidate_reset_before(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(num_subgroups) count: u32,
) {
    split_step(MODE_CANDIDATE, lid, wid, groups.x, Lanes(sg, lane, count));
}
