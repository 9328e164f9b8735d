//! Keras `.npz` (zip) weight files through `io::load_bytes` and `keras::parse`, with and
//! without `reset_after` given. An accepted model must run.
#![no_main]

use gru_wgpu::io::{self, keras, ImportOptions};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = io::load_bytes(data, "fuzz.npz", &ImportOptions::default()) {
        common::exercise(m.model());
    }
    if let Ok(m) = keras::parse(data, "fuzz.npz", Some(false)) {
        common::exercise(&m.model);
    }
});
