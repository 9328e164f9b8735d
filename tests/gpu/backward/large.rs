//! The backward at the sizes the issue names: T up to 1000, H up to 1024, odd sizes, stacked
//! and bidirectional, against the f64 reference (lavapipe-sized: one entry or two).

use super::random::check_case;
use crate::common::NetCase;
use gru_wgpu::{Convention, Direction, Layout, OutputStyle};

fn case(seed: u64, convention: Convention, direction: Direction, layers: usize) -> NetCase {
    NetCase {
        seed,
        convention,
        direction,
        layers,
        i: 5,
        h: 16,
        t: 8,
        b: 2,
        layout: Layout::SequenceMajor,
        style: OutputStyle::Onnx,
        clip: None,
        lens: None,
        initial_h: true,
        weight_scale: 1.0,
        x_scale: 1.0,
    }
}

fn check(c: NetCase) {
    if let Some(report) = check_case(&c, true) {
        panic!("{report}");
    }
}

/// T = 1000 and T = 3000, one layer, both conventions (the gradient flows back through
/// thousands of steps). At H = 64 and T = 3000 one persistent dispatch over every step would
/// pass lavapipe's 65535 loop trips and stop silently (REFERENCES.md §6): this checks that
/// the persistent ranges keep under it.
#[test]
fn thousand_steps() {
    for (seed, conv, t, h, len) in [
        (1000, Convention::ResetAfter, 1000, 24, 613),
        (1001, Convention::ResetBefore, 3000, 64, 1613),
    ] {
        check(NetCase {
            t,
            h,
            b: 2,
            lens: Some(vec![t as i64, len]),
            ..case(seed, conv, Direction::Forward, 1)
        });
    }
}

/// H = 1024 (the width of DeepBench's and cuDNN's reference shapes), a few steps.
#[test]
fn hidden_1024() {
    check(NetCase {
        h: 1024,
        i: 33,
        t: 4,
        b: 1,
        ..case(1024, Convention::ResetAfter, Direction::Forward, 1)
    });
    check(NetCase {
        h: 1024,
        i: 7,
        t: 3,
        b: 1,
        clip: Some(1.0),
        ..case(1025, Convention::ResetBefore, Direction::Reverse, 1)
    });
}

/// Odd sizes past one workgroup's 64 lanes and one GEMM tile (H = 257, I = 131), two
/// bidirectional layers with lengths, batch-major PyTorch-style outputs, T = 100.
#[test]
fn odd_sizes_stacked_bidirectional() {
    check(NetCase {
        h: 257,
        i: 131,
        t: 100,
        b: 3,
        lens: Some(vec![100, 0, 57]),
        layout: Layout::BatchMajor,
        style: OutputStyle::PyTorch,
        ..case(257, Convention::ResetAfter, Direction::Bidirectional, 2)
    });
    check(NetCase {
        h: 67,
        i: 3,
        t: 150,
        b: 5,
        lens: Some(vec![150, 149, 1, 77, 0]),
        clip: Some(2.0),
        ..case(67, Convention::ResetBefore, Direction::Bidirectional, 3)
    });
}
