//! Training and validation loss per epoch, one panel per round.

use std::path::Path;

use plotters::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Figure, LEGEND_X, LegendEntry, MPL_CYCLE, OrPlot, Swatch, header_layout, padded_range,
    render_panel, rgb, tick,
};
use crate::error::{Result, invalid};

/// The losses of one training round, with epochs counted from 1 as in simfer-snpe's
/// `TrainingHistory`: `train[i]` and `val[i]` are the losses of epoch `i + 1` (either
/// series may be empty), and `best_epoch` is the epoch whose weights were kept (0 = the
/// initial weights). So a history plots as
/// `LossRound { train: &h.train_loss, val: &h.validation_loss, best_epoch: Some(h.best_epoch) }`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossRound<'a> {
    /// Training loss per epoch (epoch `i + 1` at index `i`).
    pub train: &'a [f64],
    /// Validation loss per epoch (epoch `i + 1` at index `i`).
    pub val: &'a [f64],
    /// The kept epoch (1-based; 0 = before the first epoch), marked with a vertical line.
    pub best_epoch: Option<usize>,
}

/// How a loss-curve figure looks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossStyle {
    /// Panel width in pixels.
    pub panel_width: u32,
    /// Panel height in pixels.
    pub panel_height: u32,
    /// Panels per row.
    pub columns: usize,
    /// Font size in pixels.
    pub font_size: u32,
    /// A title above the panels.
    pub title: Option<String>,
    /// y-axis label.
    pub y_label: String,
}

impl Default for LossStyle {
    fn default() -> Self {
        Self {
            panel_width: 320,
            panel_height: 240,
            columns: 3,
            font_size: 12,
            title: None,
            y_label: "loss".into(),
        }
    }
}

/// Renders loss curves: one panel per round (titled `round 1`, `round 2`, …) with the
/// training loss (blue), the validation loss (orange) and the best epoch (grey line),
/// against the epoch (1, 2, …). Non-finite losses (a diverged epoch) are left out of the
/// lines.
///
/// ```
/// use simfer_analysis::{LossRound, LossStyle, loss_curves_svg};
/// let (train, val) = (vec![3.0, 2.0, 1.5, 1.4], vec![3.1, 2.2, 1.9, 2.0]);
/// let svg = loss_curves_svg(&[LossRound { train: &train, val: &val, best_epoch: Some(2) }],
///                           &LossStyle::default()).unwrap();
/// assert!(svg.contains("class=\"panel\""));
/// ```
///
/// # Errors
/// No rounds, a round without any finite loss, a best epoch beyond the series, a zero
/// size or column count, plotting failures.
pub fn loss_curves_svg(rounds: &[LossRound<'_>], style: &LossStyle) -> Result<String> {
    if rounds.is_empty() {
        return Err(invalid("loss rounds", "at least one round", 0));
    }
    if style.columns == 0 || style.panel_width < 80 || style.panel_height < 60 {
        return Err(invalid(
            "loss style",
            "columns ≥ 1 and panels of at least 80 × 60 pixels",
            format!(
                "{} columns, {} × {}",
                style.columns, style.panel_width, style.panel_height
            ),
        ));
    }
    for (i, r) in rounds.iter().enumerate() {
        if !r.train.iter().chain(r.val).any(|v| v.is_finite()) {
            return Err(invalid(
                format!("losses of round {}", i + 1),
                "at least one finite value",
                "none",
            ));
        }
        if let Some(b) = r.best_epoch {
            let len = r.train.len().max(r.val.len());
            if b > len {
                return Err(invalid(
                    format!("best epoch of round {}", i + 1),
                    format!("≤ {len} (the number of epochs)"),
                    b,
                ));
            }
        }
    }
    let fs = style.font_size.max(6);
    let cols = style.columns.min(rounds.len());
    let nrows = rounds.len().div_ceil(cols);
    let (c_train, c_val, c_best) = (rgb(MPL_CYCLE[0]), rgb(MPL_CYCLE[1]), rgb(MPL_CYCLE[7]));
    let entries: Vec<LegendEntry> = vec![
        ("training".into(), c_train, Swatch::Line),
        ("validation".into(), c_val, Swatch::Line),
        ("best epoch".into(), c_best, Swatch::Line),
    ];
    let (pw, ph) = (style.panel_width, style.panel_height);
    let width = pw * cols as u32;
    let (top, legend_y) = header_layout(style.title.is_some(), &entries, fs, width);
    let mut fig = Figure::new(width, top + ph * nrows as u32);
    if let Some(t) = &style.title {
        fig.title(t, fs);
    }
    fig.legend(LEGEND_X, legend_y, fs, &entries);
    let panels = rounds
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            render_panel(pw, ph, |root| {
                let len = r.train.len().max(r.val.len());
                // Epochs 1..=len, widened to show epoch 0 when the initial weights were kept.
                let x0 = if r.best_epoch == Some(0) || len < 2 {
                    0.0
                } else {
                    1.0
                };
                let x1 = (len as f64).max(x0 + 1.0);
                let (ylo, yhi) =
                    padded_range(r.train.iter().chain(r.val).copied()).unwrap_or((0.0, 1.0));
                let mut chart = ChartBuilder::on(root)
                    .caption(format!("round {}", i + 1), ("sans-serif", fs as f64))
                    .margin(8)
                    .x_label_area_size(fs * 3)
                    .y_label_area_size(fs * 4)
                    .build_cartesian_2d(x0..x1, ylo..yhi)
                    .or_plot()?;
                chart
                    .configure_mesh()
                    .light_line_style(WHITE)
                    .x_labels(6)
                    .y_labels(5)
                    .x_label_formatter(&tick)
                    .y_label_formatter(&tick)
                    .x_desc("epoch")
                    .y_desc(style.y_label.as_str())
                    .label_style(("sans-serif", fs as f64 * 0.85))
                    .axis_desc_style(("sans-serif", fs as f64))
                    .draw()
                    .or_plot()?;
                if let Some(b) = r.best_epoch {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(b as f64, ylo), (b as f64, yhi)],
                            c_best.stroke_width(1),
                        )))
                        .or_plot()?;
                }
                for (series, color) in [(r.train, c_train), (r.val, c_val)] {
                    // Split at non-finite values so a diverged epoch leaves a gap.
                    for run in finite_runs(series) {
                        if let [single] = run[..] {
                            // An isolated epoch has no line: show it as a dot.
                            chart
                                .draw_series(std::iter::once(Circle::new(
                                    single,
                                    3,
                                    color.filled(),
                                )))
                                .or_plot()?;
                            continue;
                        }
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                run,
                                color.stroke_width(2),
                            )))
                            .or_plot()?;
                    }
                }
                Ok(())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for (i, svg) in panels.iter().enumerate() {
        let (row, col) = (i / cols, i % cols);
        fig.panel(
            col as u32 * pw,
            top + row as u32 * ph,
            &format!(
                r#"data-row="{row}" data-col="{col}" data-round="{}""#,
                i + 1
            ),
            svg,
        );
    }
    Ok(fig.finish())
}

/// Maximal runs of finite values as `(epoch, value)` polylines (epochs from 1).
fn finite_runs(series: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for (e, &v) in series.iter().enumerate() {
        if v.is_finite() {
            cur.push(((e + 1) as f64, v));
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Renders with [`loss_curves_svg`] and writes the SVG to `path`.
///
/// # Errors
/// As [`loss_curves_svg`], and I/O errors.
pub fn write_loss_curves_svg(
    path: impl AsRef<Path>,
    rounds: &[LossRound<'_>],
    style: &LossStyle,
) -> Result<()> {
    crate::write_file(path.as_ref(), &loss_curves_svg(rounds, style)?)
}
