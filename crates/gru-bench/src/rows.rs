//! The JSON rows (serde): a grid row, a `--streaming` row, their per-element check fields,
//! and what `--compare` reads of either file. Numbers that are not finite are written as
//! null (JSON has no NaN or infinity).

use gru_wgpu::Comparison;
use serde::{Deserialize, Serialize};

/// `Some(v)` where `v` is finite: JSON has no NaN or infinity, so those are null.
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The per-element check's fields of a JSON row (all null without a check): the tolerance,
/// whether every element is within it, how many are not, and the worst element (index, got,
/// expected, and `|got − expected| / (atol + rtol·|expected|)`, ≤ 1 within tolerance; null
/// where a NaN or infinity does not match).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckFields {
    pub tolerance_atol: Option<f64>,
    pub tolerance_rtol: Option<f64>,
    pub within_tolerance: Option<bool>,
    pub elements_outside_tolerance: Option<usize>,
    pub worst_index: Option<usize>,
    pub worst_got: Option<f64>,
    pub worst_expected: Option<f64>,
    pub worst_ratio: Option<f64>,
}

impl CheckFields {
    /// The fields of `check`; all null without one.
    pub fn of(check: Option<&Comparison>) -> Self {
        let Some(c) = check else {
            return CheckFields::default();
        };
        let tol = c.tolerance;
        let mut fields = CheckFields {
            tolerance_atol: finite(tol.atol),
            tolerance_rtol: finite(tol.rtol),
            within_tolerance: Some(c.passed()),
            elements_outside_tolerance: Some(c.failures + c.len_got.abs_diff(c.len_expected)),
            ..CheckFields::default()
        };
        if let Some((i, g, e)) = c.worst {
            let bound = tol.atol + tol.rtol * (e as f64).abs();
            let ratio = if tol.accepts(g, e) && !(g as f64 - e as f64).is_finite() {
                0.0 // NaN where NaN was expected, or the same infinity
            } else {
                (g as f64 - e as f64).abs() / bound
            };
            fields.worst_index = Some(i);
            fields.worst_got = finite(g as f64);
            fields.worst_expected = finite(e as f64);
            fields.worst_ratio = finite(ratio);
        }
        fields
    }
}

/// The parallel structure of one step of the kernel a GPU row ran (a grid row, or a
/// `--streaming` row's feed of every stream; [`gru_wgpu::gpu::StepStructure`]; all null on
/// the CPU reference's rows): what a GPU's step time follows, whatever adapter measured the
/// row.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructureFields {
    /// `staged`, `direct`, `split-subgroup`, `split-workgroup` or `persistent`.
    pub step_kernel: Option<String>,
    /// Dispatches per timestep (a fraction on the persistent path).
    pub step_dispatches: Option<f64>,
    /// Workgroups of one step dispatch.
    pub step_workgroups: Option<u64>,
    /// Invocations of one step dispatch.
    pub step_invocations: Option<u64>,
    /// Trips of the longest serial loop one invocation runs per step.
    pub step_longest_loop: Option<u64>,
}

impl StructureFields {
    /// The fields of `structure`; all null without one.
    pub fn of(structure: Option<&gru_wgpu::gpu::StepStructure>) -> Self {
        let Some(s) = structure else {
            return StructureFields::default();
        };
        StructureFields {
            step_kernel: Some(s.kernel.into()),
            step_dispatches: finite(s.dispatches_per_step),
            step_workgroups: Some(s.workgroups),
            step_invocations: Some(s.invocations),
            step_longest_loop: Some(s.longest_loop),
        }
    }
}

/// One row of the grid: a shape, a path, its times, and its check against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridRow {
    /// `ResetAfter` or `ResetBefore`.
    pub convention: String,
    /// `f32` or `f16`.
    pub dtype: String,
    pub input_size: usize,
    pub hidden_size: usize,
    pub batch: usize,
    pub seq_len: usize,
    /// `cpu-reference`, `gpu-step-fused` (staged), `gpu-step-direct`, `gpu-step-split`,
    /// `gpu-step-split-wg` or `gpu-persistent`.
    pub path: String,
    pub us_per_step_median: Option<f64>,
    pub us_per_step_min: Option<f64>,
    pub us_per_step_max: Option<f64>,
    pub us_per_sequence_median: Option<f64>,
    pub gflops: Option<f64>,
    /// Largest |GPU − CPU| over Y; null on the reference's own row and with `--no-cpu`.
    pub max_abs_err: Option<f64>,
    /// GPU time of the input projection, µs per sequence (timestamp queries).
    pub gpu_input_projection_us: Option<f64>,
    /// GPU time of the recurrence, µs per step (timestamp queries).
    pub gpu_recurrence_us_per_step: Option<f64>,
    /// Host time to record one forward's commands, µs per step.
    pub host_encode_us_per_step: Option<f64>,
    #[serde(flatten)]
    pub structure: StructureFields,
    #[serde(flatten)]
    pub check: CheckFields,
}

/// One stream count of `--streaming`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamingRow {
    /// Always `streaming`.
    pub mode: String,
    pub convention: String,
    pub dtype: String,
    pub layers: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    pub streams: usize,
    /// Timed frames.
    pub frames: usize,
    /// Round trip of a feed (upload, one submit, GPU, readback), µs.
    pub latency_us_median: Option<f64>,
    pub latency_us_min: Option<f64>,
    pub latency_us_max: Option<f64>,
    /// Median GPU time of a frame (timestamp queries), µs.
    pub gpu_us_per_frame: Option<f64>,
    /// That time per stream-step, µs.
    pub gpu_us_per_stream_step: Option<f64>,
    /// Largest error of stream 0's outputs against the CPU reference.
    pub max_abs_err: Option<f64>,
    #[serde(flatten)]
    pub structure: StructureFields,
    #[serde(flatten)]
    pub check: CheckFields,
}

fn f32_name() -> String {
    "f32".into()
}

/// What `--compare` reads of a row of a gru-bench or torch_gru.py JSON file (other fields
/// are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Measured {
    pub convention: String,
    pub input_size: u64,
    pub hidden_size: u64,
    pub batch: u64,
    pub seq_len: u64,
    /// `f32` where the file does not say (torch_gru.py runs f32).
    #[serde(default = "f32_name")]
    pub dtype: String,
    pub path: String,
    pub us_per_step_median: f64,
}

impl Measured {
    /// The shape rows are paired by.
    pub fn key(&self) -> (&str, u64, u64, u64, u64) {
        (
            &self.convention,
            self.input_size,
            self.hidden_size,
            self.batch,
            self.seq_len,
        )
    }
}

/// The rows of the JSON file at `path`.
pub fn read_rows(path: &str) -> Result<Vec<Measured>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{path}: expected a JSON array of rows with the fields {}: {e}",
            "convention, input_size, hidden_size, batch, seq_len, path, us_per_step_median"
        )
    })
}
