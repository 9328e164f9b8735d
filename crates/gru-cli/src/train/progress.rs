//! Keras's progress line on stderr, and the metrics as text and as JSON (`--log`).

use std::io::{IsTerminal, Write};
use std::time::Instant;

use gru_wgpu::loss::{Loss, LossValue};

/// Keras's progress line for one epoch, on stderr: rewritten in place on a terminal, printed
/// once at the end of the epoch otherwise.
pub(super) struct Progress {
    steps: usize,
    pub(super) start: Instant,
    last_draw: Option<Instant>,
    live: bool,
    quiet: bool,
}

fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!(
            "{}:{:02}:{:02}",
            s as u64 / 3600,
            s as u64 / 60 % 60,
            s as u64 % 60
        )
    } else if s >= 60.0 {
        format!("{}:{:02}", s as u64 / 60, s as u64 % 60)
    } else {
        format!("{}s", s.round() as u64)
    }
}

impl Progress {
    pub(super) fn new(steps: usize, quiet: bool) -> Self {
        Progress {
            steps,
            start: Instant::now(),
            last_draw: None,
            live: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    fn bar(&self, done: usize) -> String {
        const WIDTH: usize = 30;
        let filled = WIDTH * done / self.steps.max(1);
        let mut bar = "=".repeat(filled);
        if filled < WIDTH {
            if done > 0 {
                bar.pop();
                bar.push('>');
            }
            bar.push_str(&".".repeat(WIDTH - bar.chars().count()));
        }
        let w = self.steps.to_string().len();
        format!("{done:>w$}/{} [{bar}]", self.steps)
    }

    pub(super) fn update(&mut self, done: usize, metrics: &str) {
        if self.quiet || !self.live {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t).as_millis() < 100)
        {
            return;
        }
        self.last_draw = Some(now);
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        let eta = (self.steps - done) as f64 / rate.max(1e-9);
        eprint!(
            "\r{} - ETA: {} - {rate:.1} steps/s{metrics}\x1b[K",
            self.bar(done),
            seconds(eta)
        );
        let _ = std::io::stderr().flush();
    }

    pub(super) fn finish(&self, metrics: &str) {
        if self.quiet {
            return;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let per = 1000.0 * elapsed / self.steps.max(1) as f64;
        let rate = self.steps as f64 / elapsed.max(1e-9);
        let clear = if self.live { "\r" } else { "" };
        eprintln!(
            "{clear}{} - {} {per:.0}ms/step - {rate:.1} steps/s{metrics}{}",
            self.bar(self.steps),
            seconds(elapsed),
            if self.live { "\x1b[K" } else { "" }
        );
    }
}

/// ` - loss: 0.6931 - accuracy: 0.5000` (with a `prefix` such as `val_`).
pub(super) fn metrics_text(v: &LossValue, loss: Loss, prefix: &str) -> String {
    let mut s = format!(" - {prefix}loss: {:.4}", v.loss);
    if loss != Loss::MeanSquaredError {
        s.push_str(&format!(" - {prefix}accuracy: {:.4}", v.accuracy()));
    }
    s
}

pub(super) fn metrics_json(v: &LossValue, loss: Loss) -> serde_json::Value {
    let number = |x: f64| {
        serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
    };
    let mut m = serde_json::json!({ "loss": number(v.loss), "entries": v.count });
    if loss != Loss::MeanSquaredError {
        m["accuracy"] = number(v.accuracy());
    }
    m
}
