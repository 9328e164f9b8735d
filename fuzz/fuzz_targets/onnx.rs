//! The ONNX importer, `io::onnx::parse`, on arbitrary bytes. An accepted model must run.
#![no_main]

use gru_wgpu::io::onnx;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = onnx::parse(data, "fuzz.onnx") {
        assert_eq!(m.outputs.len(), 2);
        common::exercise(&m.model);
    }
});
