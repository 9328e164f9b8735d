//! Safetensors model files: format detection and both readers (PyTorch `nn.GRU` state_dict,
//! Keras GRU weights) through `io::load_bytes`, plus the explicit readers with the options the
//! CLI can pass (`--prefix`, `--keras-reset-after`). An accepted model must run.
#![no_main]

use gru_wgpu::io::{self, keras, pytorch, ImportOptions};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = io::load_bytes(data, "fuzz.safetensors", &ImportOptions::default()) {
        common::exercise(m.model());
    }
    if let Ok(m) = pytorch::parse(data, "fuzz.safetensors", Some("gru.")) {
        common::exercise(&m.model);
    }
    if let Ok(m) = keras::parse(data, "fuzz.safetensors", Some(true)) {
        common::exercise(&m.model);
    }
});
