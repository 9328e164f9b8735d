//! `gru`: runs a GRU over `.npy` files on the GPU (wgpu) or the CPU reference path, from a
//! PyTorch, Keras or ONNX model file or from ONNX-shaped weight arrays, and computes its
//! gradients (`gru grad`); describes model files; and lists the adapters wgpu sees. Run `gru --help` for the usage.
//!
//! The command line's logic is the `gru_cli` library beside this binary, so that it can be fuzzed.
//! Every error is one line on stderr starting with `gru: `; the exit status is 2 for usage
//! errors (including a flag that does not apply to the model file given), 1 for everything
//! else (unreadable or malformed files, shapes that do not fit together, no GPU with
//! `--device gpu`, device failures).

use std::ffi::OsString;
use std::process::ExitCode;

use gru_cli::{self as cli, one_line};

fn main() -> ExitCode {
    // A bug must still be one line on stderr, not a backtrace prompt.
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "gru: internal error{place}: {}; please report it",
            one_line(&payload)
        );
    }));
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match std::panic::catch_unwind(move || cli::cli(args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(failure)) => {
            eprintln!("gru: {}", one_line(failure.message()));
            ExitCode::from(failure.exit_status())
        }
        Err(_) => ExitCode::from(1),
    }
}
