//! The `gru` command line from its arguments to the model and input it would run: argument
//! parsing (`cli::parse_run`, `cli::parse_grad`, `cli::parse_inspect`), reading every file
//! named (from memory, not disk), importing the model or weight arrays, and checking the
//! arrays against each other (`cli::load_problem`, `cli::load_grad_problem` with dY and
//! dY_h, `cli::inspect_report`); a problem that passes runs on the CPU reference path (the
//! forward, or the backward for `grad`) when it is small. An error is a legitimate outcome (one line, exit status
//! 1 or 2); a panic, a hang or a huge allocation is a bug.
//!
//! Input: `cli::MemoryFiles::from_fuzz_input`: sections separated by `\n%%%%\n`; the first
//! holds the arguments after `gru`, one per line (raw bytes, so non-UTF-8 arguments are
//! fuzzed too); each further section is a file: its path on the first line, its contents
//! after the newline.
#![no_main]

use gru_cli::{self as cli, MemoryFiles};
use gru_wgpu::cpu;
use libfuzzer_sys::fuzz_target;

/// Whether a forward over `d` costs at most `limit` multiply-adds (roughly), so that the CPU
/// reference runs it in a fuzzing iteration's time.
fn small(d: &gru_wgpu::Dims, limit: usize) -> bool {
    [
        d.seq_len,
        d.batch.max(1),
        d.input_size.saturating_add(d.hidden_size),
        d.hidden_size.saturating_mul(3),
        d.num_layers * d.num_directions,
    ]
    .iter()
    .try_fold(1usize, |acc, &n| acc.checked_mul(n))
    .is_some_and(|w| w <= limit)
}

fuzz_target!(|data: &[u8]| {
    let (args, files) = MemoryFiles::from_fuzz_input(data);
    let Some((command, rest)) = args.split_first() else {
        return;
    };
    match command.to_str() {
        Some("run") => {
            let Ok(Some(run)) = cli::parse_run(rest.to_vec()) else {
                return;
            };
            let Ok(problem) = cli::load_problem(&run, &files) else {
                return;
            };
            if small(problem.dims(), 2_000_000) {
                let _ = cpu::forward_model(problem.model(), &problem.input());
            }
        }
        Some("grad") => {
            let Ok(Some(grad)) = cli::parse_grad(rest.to_vec()) else {
                return;
            };
            let Ok(loaded) = cli::load_grad_problem(&grad, &files) else {
                return;
            };
            let problem = loaded.problem();
            if small(problem.dims(), 500_000) {
                let _ = cpu::backward_model(
                    problem.model(),
                    &problem.input(),
                    loaded.dy(),
                    loaded.dy_h(),
                );
            }
        }
        Some("inspect") => {
            if let Ok(Some(inspect)) = cli::parse_inspect(rest.to_vec()) {
                let _ = cli::inspect_report(&inspect, &files);
            }
        }
        _ => {}
    }
});
