//! `gru train --plot`: the loss and the accuracy per epoch, training and validation, as an SVG
//! of two panels (one, the loss, for a linear head), drawn with plotters' SVG backend.

use plotters::prelude::*;

use gru_wgpu::loss::Loss;

use crate::{CliResult, Failure};

/// One epoch's metrics.
#[derive(Clone, Copy, Debug)]
pub(super) struct EpochRecord {
    pub(super) loss: f64,
    pub(super) accuracy: f64,
    pub(super) val: Option<(f64, f64)>,
}

/// The curves of `history` (epoch 1 first) as SVG text.
pub(super) fn curves_svg(history: &[EpochRecord], loss: Loss) -> CliResult<String> {
    let failed = |e: &dyn std::fmt::Display| Failure::Runtime(format!("--plot: drawing: {e}"));
    let panels = if loss == Loss::MeanSquaredError { 1 } else { 2 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480 * panels, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        let areas = root.split_evenly((1, panels as usize));
        let epochs = history.len().max(1) as f64;
        type Pick = fn(&EpochRecord) -> Option<f64>;
        let train_loss: Pick = |r| Some(r.loss);
        let val_loss: Pick = |r| r.val.map(|v| v.0);
        let train_acc: Pick = |r| Some(r.accuracy);
        let val_acc: Pick = |r| r.val.map(|v| v.1);
        let specs: [(&str, Pick, Pick); 2] = [
            ("loss", train_loss, val_loss),
            ("accuracy", train_acc, val_acc),
        ];
        for (area, (name, train, val)) in areas.iter().zip(specs) {
            let values: Vec<f64> = history
                .iter()
                .flat_map(|r| [train(r), val(r)])
                .flatten()
                .filter(|v| v.is_finite())
                .collect();
            let (lo, hi) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let (lo, hi) = if lo.is_finite() && hi > lo {
                let pad = 0.05 * (hi - lo);
                (lo - pad, hi + pad)
            } else if lo.is_finite() {
                (lo - 0.5, lo + 0.5)
            } else {
                (0.0, 1.0)
            };
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(52)
                .build_cartesian_2d(1.0..epochs.max(2.0), lo..hi)
                .map_err(|e| failed(&e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .draw()
                .map_err(|e| failed(&e))?;
            for (label, pick, color) in [("train", train, &BLUE), ("validation", val, &RED)] {
                let points: Vec<(f64, f64)> = history
                    .iter()
                    .enumerate()
                    .filter_map(|(e, r)| pick(r).map(|v| ((e + 1) as f64, v)))
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(points, color))
                    .map_err(|e| failed(&e))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| failed(&e))?;
        }
        root.present().map_err(|e| failed(&e))?;
    }
    Ok(svg)
}
