//! The `gru` command line's tests, in one test crate (one link of the library, wgpu and
//! naga): running it ([`run`]), its gradients ([`grad`]), the bad-input checklist through the
//! library API and the command line ([`bad_input`]), and the fuzz targets' regressions and
//! corpus replay ([`fuzz_regressions`]). The helpers are the root package's `tests/common`.

#[path = "../../../../tests/common/mod.rs"]
mod common;

mod bad_input;
mod fuzz_regressions;
mod grad;
mod run;
mod train;
