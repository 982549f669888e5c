//! Analysis of posterior samples: marginals, pairplots (data and SVG), C2ST, MMD and
//! calibration (SBC, expected coverage, TARP).
//!
//! Samples are `DMatrix<f64>` with **one sample per column** (`D × n`). Everything that a
//! user can get wrong — sets of different dimensions, empty sets, NaN/±∞ — is an
//! [`AnalysisError`]. Randomized computations take a seed or an RNG, and parallel ones give
//! the same result whatever the number of threads.
//!
//! * Marginals as data: [`summarize`], [`histogram_1d`] (Freedman–Diaconis or given bins),
//!   [`histogram_2d`], [`GaussianKde`], [`kde_1d`], [`kde_2d`], [`hpd_levels`],
//!   [`hpd_mass_map`], and the whole pairplot as [`PairplotData`] (JSON).
//! * Plots as SVG: [`pairplot_svg`], [`loss_curves_svg`], [`sbc_rank_svg`],
//!   [`coverage_svg`], [`tarp_svg`] and their `write_*` variants.
//! * Two-sample scores: [`c2st`] exactly as the benchmark defines it, [`mmd_squared`].
//! * Calibration: [`run_sbc`], [`expected_coverage`], [`run_tarp`], with the posterior as a
//!   closure, so this crate needs no inference crate.
//! * Sample files as CSV (one sample per row, optional header), exact round trip:
//!   [`write_samples_csv`], [`read_samples_csv`] and their in-memory forms.
//!
//! ```
//! use nalgebra::DMatrix;
//! use simfer_analysis::{PairplotOptions, PairplotStyle, pairplot_data, pairplot_svg};
//!
//! // 200 samples of a 2-D distribution, one per column.
//! let samples = DMatrix::from_fn(2, 200, |i, j| ((j * 37 + i * 11) % 101) as f64 / 101.0);
//! let data = pairplot_data(&[("posterior", &samples)], &[("θ_o", &[0.5, 0.5])],
//!                          &PairplotOptions::default())?;
//! let svg = pairplot_svg(&data, &PairplotStyle::default())?;
//! assert!(svg.starts_with("<svg"));
//! let json = data.to_json()?; // for any other plotting tool
//! # let _ = json;
//! # Ok::<(), simfer_analysis::AnalysisError>(())
//! ```

mod c2st;
mod calibration;
mod error;
mod hist;
mod hpd;
mod io;
mod kde;
mod mmd;
mod pairplot;
mod plot;
mod stats;

pub use c2st::{C2stOptions, C2stResult, c2st, c2st_with_details};
pub use calibration::{
    Coverage, Sbc, Tarp, TarpOptions, expected_coverage, run_sbc, run_tarp, sbc_from_ranks,
};
pub use error::{AnalysisError, Result};
pub use hist::{
    Bins, FD_FALLBACK_BINS, Histogram1d, Histogram2d, MAX_FD_BINS, bin_edges, histogram_1d,
    histogram_2d,
};
pub use hpd::{DEFAULT_HPD_MASSES, hpd_levels, hpd_mass_map};
pub use io::{
    SampleFile, check_column_names, default_column_names, parse_samples_csv, read_samples_csv,
    samples_to_csv, write_samples_csv,
};
pub use kde::{Bandwidth, GaussianKde, Grid1d, Grid2d, kde_1d, kde_2d};
pub use mmd::{MEDIAN_MAX_POINTS, Mmd, MmdBandwidth, mmd_squared};
pub use pairplot::{
    DiagKind, Marginal1d, Marginal2d, NamedPoint, PairplotData, PairplotOptions, Panel2d,
    SetMarginals, UpperKind, pairplot_data,
};
pub use plot::{
    CalibrationStyle, LossRound, LossStyle, PairplotStyle, SbcPlotKind, coverage_svg,
    loss_curves_svg, pairplot_svg, sbc_rank_svg, tarp_svg, write_coverage_svg,
    write_loss_curves_svg, write_pairplot_svg, write_sbc_rank_svg, write_tarp_svg,
};
pub use stats::{
    DEFAULT_QUANTILES, KsTest, MarginalSummary, default_limits, ks_uniform, quantile, summarize,
};

/// Writes `contents` to `path`, naming the path in the error.
pub(crate) fn write_file(path: &std::path::Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })
}
