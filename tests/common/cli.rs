//! Running a binary of the workspace (`gru`, `gru-bench`) in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh working directory under Cargo's per-target temp dir, named after the test binary,
/// `name`, the process and a per-process count (tests of several modules share one binary and
/// may pick the same `name`), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{}-{name}-{}-{n}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
    pub fn write(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.join(file), bytes).unwrap();
    }
    pub fn write_f32(&self, file: &str, shape: &[usize], data: &[f32]) {
        gru_wgpu::npy::write_f32(&self.join(file), shape, data).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run of the binary gave.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stderr lines, without the Vulkan loader's XDG_RUNTIME_DIR notice.
    pub fn lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
            .collect()
    }

    /// Asserts a failure with exit status `code` and exactly one `gru: ` line on stderr that
    /// contains every needle, with no panic or internal error; returns the line.
    pub fn one_error(&self, code: i32, context: &str, needles: &[&str]) -> String {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("internal error"),
            "{context}: panicked: {}",
            self.stderr
        );
        assert_eq!(
            self.code,
            Some(code),
            "{context}: exit status; stderr: {}",
            self.stderr
        );
        let lines = self.lines();
        assert_eq!(
            lines.len(),
            1,
            "{context}: expected one line on stderr, got {lines:?}"
        );
        let line = lines[0];
        assert!(line.starts_with("gru: "), "{context}: {line}");
        for n in needles {
            assert!(line.contains(n), "{context}: {n:?} not in {line:?}");
        }
        line.to_string()
    }

    pub fn assert_success(&self, context: &str) {
        assert!(
            !self.stderr.contains("panicked"),
            "{context}: {}",
            self.stderr
        );
        assert_eq!(self.code, Some(0), "{context}: stderr: {}", self.stderr);
    }
}

/// Runs the program `exe` with `args…` in `dir` and the extra environment `env` (the test
/// crates of `gru` and `gru-bench` pass their `env!("CARGO_BIN_EXE_…")`).
pub fn run_in(exe: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(exe);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap_or_else(|e| panic!("spawn {exe}: {e}"));
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}
