//! SVG rendering with plotters: pairplots, loss curves and calibration plots.
//!
//! Every figure is one SVG document. Each panel is drawn by plotters into its own `<svg>`
//! element, wrapped in `<g class="panel" data-row=".." data-col="..">` and placed with a
//! `transform`; legends are `<g class="legend">`. So a figure can be inspected (or styled)
//! panel by panel, and panels are rendered in parallel.

mod calibration;
mod loss;
mod pairplot;

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{AnalysisError, Result};

pub use calibration::{
    CalibrationStyle, SbcPlotKind, coverage_svg, sbc_rank_svg, tarp_svg, write_coverage_svg,
    write_sbc_rank_svg, write_tarp_svg,
};
pub use loss::{LossRound, LossStyle, loss_curves_svg, write_loss_curves_svg};
pub use pairplot::{PairplotStyle, pairplot_svg, write_pairplot_svg};

/// matplotlib's default colour cycle (`C0`–`C9`).
pub(crate) const MPL_CYCLE: [[u8; 3]; 10] = [
    [0x1f, 0x77, 0xb4],
    [0xff, 0x7f, 0x0e],
    [0x2c, 0xa0, 0x2c],
    [0xd6, 0x27, 0x28],
    [0x94, 0x67, 0xbd],
    [0x8c, 0x56, 0x4b],
    [0xe3, 0x77, 0xc2],
    [0x7f, 0x7f, 0x7f],
    [0xbc, 0xbd, 0x22],
    [0x17, 0xbe, 0xcf],
];

/// viridis at 10 equally spaced positions (matplotlib's `viridis(linspace(0, 1, 10))`).
const VIRIDIS: [[u8; 3]; 10] = [
    [0x44, 0x01, 0x54],
    [0x48, 0x28, 0x78],
    [0x3e, 0x49, 0x89],
    [0x31, 0x68, 0x8e],
    [0x26, 0x82, 0x8e],
    [0x1f, 0x9e, 0x89],
    [0x35, 0xb7, 0x79],
    [0x6e, 0xce, 0x58],
    [0xb5, 0xde, 0x2b],
    [0xfd, 0xe7, 0x25],
];

/// The viridis colour at `t ∈ [0, 1]` (piecewise linear between the 10 anchors).
pub(crate) fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let c =
        |k: usize| (VIRIDIS[i][k] as f64 * (1.0 - f) + VIRIDIS[i + 1][k] as f64 * f).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

pub(crate) fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Colour `k` of a palette, cycling.
pub(crate) fn pick(palette: &[[u8; 3]], k: usize) -> RGBColor {
    if palette.is_empty() {
        rgb(MPL_CYCLE[k % MPL_CYCLE.len()])
    } else {
        rgb(palette[k % palette.len()])
    }
}

/// Converts any displayable plotting error into ours.
pub(crate) trait OrPlot<T> {
    fn or_plot(self) -> Result<T>;
}

impl<T, E: std::fmt::Display> OrPlot<T> for std::result::Result<T, E> {
    fn or_plot(self) -> Result<T> {
        self.map_err(|e| AnalysisError::Plot(e.to_string()))
    }
}

/// Draws one panel of `w × h` pixels with plotters and returns its `<svg>` text.
pub(crate) fn render_panel(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).or_plot()?;
        draw(&root)?;
        root.present().or_plot()?;
    }
    Ok(buf)
}

/// Escapes text for XML content and attribute values.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// What a legend entry shows next to its text.
#[derive(Clone, Copy)]
pub(crate) enum Swatch {
    Line,
    Dot,
    Band,
}

/// A legend entry: text, colour, swatch.
pub(crate) type LegendEntry = (String, RGBColor, Swatch);

/// Estimated width of a legend entry (swatch, text, gap) in pixels.
fn entry_width(text: &str, fs: f64) -> f64 {
    24.0 + 0.6 * fs * text.chars().count() as f64 + 18.0
}

/// Entries grouped into lines no wider than `width` (at least one entry per line).
fn legend_rows(entries: &[LegendEntry], font_size: u32, width: u32) -> Vec<Vec<usize>> {
    let fs = font_size as f64;
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = 0.0;
    for (k, (text, _, _)) in entries.iter().enumerate() {
        let w = entry_width(text, fs);
        match rows.last_mut() {
            Some(row) if used + w <= width as f64 => row.push(k),
            _ => {
                rows.push(vec![k]);
                used = 0.0;
            }
        }
        used += w;
    }
    rows
}

/// Height a legend of these entries takes in a figure `width` pixels wide (0 if empty).
pub(crate) fn legend_height(entries: &[LegendEntry], font_size: u32, width: u32) -> u32 {
    let rows = legend_rows(entries, font_size, width.saturating_sub(LEGEND_X)).len() as u32;
    if rows == 0 {
        0
    } else {
        rows * (font_size + 8) + 6
    }
}

/// Left offset of legends.
pub(crate) const LEGEND_X: u32 = 8;

/// Layout of a figure's header: `(total height, title baseline, legend baseline)`.
pub(crate) fn header_layout(
    title: bool,
    entries: &[LegendEntry],
    font_size: u32,
    width: u32,
) -> (u32, u32) {
    let mut top = 0;
    if title {
        top += font_size + 10;
    }
    let legend_y = top + font_size + 6;
    (top + legend_height(entries, font_size, width), legend_y)
}

/// An SVG document assembled from panels and legends.
pub(crate) struct Figure {
    width: u32,
    height: u32,
    body: String,
}

impl Figure {
    pub(crate) fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            body: String::new(),
        }
    }

    /// Places a panel's `<svg>` at `(x, y)`.
    pub(crate) fn panel(&mut self, x: u32, y: u32, attrs: &str, svg: &str) {
        let _ = writeln!(
            self.body,
            r#"<g class="panel" {attrs} transform="translate({x},{y})">"#
        );
        self.body.push_str(svg.trim());
        self.body.push_str("\n</g>\n");
    }

    /// A one-line title centred at the top.
    pub(crate) fn title(&mut self, text: &str, font_size: u32) {
        let _ = writeln!(
            self.body,
            r#"<text class="title" x="{}" y="{}" text-anchor="middle" font-family="sans-serif" font-size="{}">{}</text>"#,
            self.width / 2,
            font_size + 4,
            font_size + 2,
            xml_escape(text)
        );
    }

    /// A legend starting at `(x, y)` (the baseline of its first line), wrapped into lines
    /// no wider than the figure; see [`legend_height`] for the height it takes.
    pub(crate) fn legend(&mut self, x: u32, y: u32, font_size: u32, entries: &[LegendEntry]) {
        let _ = writeln!(
            self.body,
            r#"<g class="legend" font-family="sans-serif" font-size="{font_size}">"#
        );
        let fs = font_size as f64;
        for (line, row) in legend_rows(entries, font_size, self.width.saturating_sub(x))
            .iter()
            .enumerate()
        {
            let mut cx = x as f64;
            let fy = y as f64 + line as f64 * (fs + 8.0);
            for &k in row {
                let (text, c, swatch) = &entries[k];
                let col = format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2);
                let _ = match swatch {
                    Swatch::Line => writeln!(
                        self.body,
                        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{col}" stroke-width="2"/>"#,
                        cx,
                        fy - 0.35 * fs,
                        cx + 18.0,
                        fy - 0.35 * fs
                    ),
                    Swatch::Dot => writeln!(
                        self.body,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{col}"/>"#,
                        cx + 9.0,
                        fy - 0.35 * fs
                    ),
                    Swatch::Band => writeln!(
                        self.body,
                        r#"<rect x="{:.1}" y="{:.1}" width="18" height="{:.1}" fill="{col}" fill-opacity="0.35"/>"#,
                        cx,
                        fy - 0.8 * fs,
                        0.8 * fs
                    ),
                };
                let _ = writeln!(
                    self.body,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    cx + 24.0,
                    fy,
                    xml_escape(text)
                );
                cx += entry_width(text, fs);
            }
        }
        self.body.push_str("</g>\n");
    }

    pub(crate) fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n{body}</svg>\n",
            w = self.width,
            h = self.height,
            body = self.body
        )
    }
}

/// Line segments of the contour of `v` at level `t` (marching squares). `v[iy][ix]` is the
/// value at `(x[ix], y[iy])`; saddles are resolved with the cell's mean.
pub(crate) fn contour_segments(
    x: &[f64],
    y: &[f64],
    v: &[Vec<f64>],
    t: f64,
) -> Vec<[(f64, f64); 2]> {
    let mut segs = Vec::new();
    if x.len() < 2 || y.len() < 2 {
        return segs;
    }
    let lerp = |a: (f64, f64, f64), b: (f64, f64, f64)| -> (f64, f64) {
        // Points (x, y, value); the crossing where value = t.
        let f = if (b.2 - a.2).abs() > 0.0 {
            (t - a.2) / (b.2 - a.2)
        } else {
            0.5
        };
        (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1))
    };
    for iy in 0..y.len() - 1 {
        for ix in 0..x.len() - 1 {
            let bl = (x[ix], y[iy], v[iy][ix]);
            let br = (x[ix + 1], y[iy], v[iy][ix + 1]);
            let tr = (x[ix + 1], y[iy + 1], v[iy + 1][ix + 1]);
            let tl = (x[ix], y[iy + 1], v[iy + 1][ix]);
            let case = (usize::from(bl.2 >= t))
                | (usize::from(br.2 >= t) << 1)
                | (usize::from(tr.2 >= t) << 2)
                | (usize::from(tl.2 >= t) << 3);
            let bottom = || lerp(bl, br);
            let right = || lerp(br, tr);
            let top = || lerp(tl, tr);
            let left = || lerp(bl, tl);
            let centre_in = (bl.2 + br.2 + tr.2 + tl.2) / 4.0 >= t;
            match case {
                0 | 15 => {}
                1 | 14 => segs.push([left(), bottom()]),
                2 | 13 => segs.push([bottom(), right()]),
                3 | 12 => segs.push([left(), right()]),
                4 | 11 => segs.push([right(), top()]),
                6 | 9 => segs.push([bottom(), top()]),
                7 | 8 => segs.push([left(), top()]),
                5 => {
                    // bl and tr inside.
                    if centre_in {
                        segs.push([left(), top()]);
                        segs.push([bottom(), right()]);
                    } else {
                        segs.push([left(), bottom()]);
                        segs.push([right(), top()]);
                    }
                }
                10 => {
                    // br and tl inside.
                    if centre_in {
                        segs.push([left(), bottom()]);
                        segs.push([right(), top()]);
                    } else {
                        segs.push([left(), top()]);
                        segs.push([bottom(), right()]);
                    }
                }
                _ => unreachable!("a 4-bit case index"),
            }
        }
    }
    segs
}

/// Finite `(min, max)` of the values, padded by 5 % (or ±0.5 when flat); `None` if none.
pub(crate) fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return None;
    }
    let r = hi - lo;
    Some(if r > 0.0 {
        (lo - 0.05 * r, hi + 0.05 * r)
    } else {
        (lo - 0.5, hi + 0.5)
    })
}

/// Compact tick labels.
pub(crate) fn tick(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_endpoints() {
        assert_eq!(viridis(0.0), RGBColor(0x44, 0x01, 0x54));
        assert_eq!(viridis(1.0), RGBColor(0xfd, 0xe7, 0x25));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }

    #[test]
    fn contour_of_a_cone_is_a_circle() {
        // v = −r on a grid; the contour at −1 lies on the unit circle.
        let g: Vec<f64> = (0..41).map(|k| -2.0 + 0.1 * k as f64).collect();
        let v: Vec<Vec<f64>> = g
            .iter()
            .map(|&yy| g.iter().map(|&xx| -(xx * xx + yy * yy).sqrt()).collect())
            .collect();
        let segs = contour_segments(&g, &g, &v, -1.0);
        assert!(segs.len() > 30);
        for s in &segs {
            for (px, py) in s {
                let r = (px * px + py * py).sqrt();
                // Linear interpolation of a cone along grid lines: error ≤ h²/(8r) ≈ 1e-3.
                assert!((r - 1.0).abs() < 5e-3, "r = {r}");
            }
        }
    }

    #[test]
    fn ticks_are_compact() {
        assert_eq!(tick(&1.5), "1.5");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&2.0), "2");
        assert_eq!(tick(&12345.0), "1.2e4");
    }
}
