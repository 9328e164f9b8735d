//! Compiles ONNX's schema to Rust with prost-build: `onnx-prost-gen PROTO OUT_DIR` writes
//! `OUT_DIR/onnx.rs` (the schema's package is `onnx`).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(proto), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: onnx-prost-gen PROTO OUT_DIR");
        std::process::exit(2);
    };
    let proto = PathBuf::from(proto);
    let include = proto.parent().map(PathBuf::from).unwrap_or_default();
    prost_build::Config::new()
        .out_dir(out)
        .compile_protos(&[proto], &[include])
}
