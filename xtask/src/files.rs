//! `cargo xtask c2st` and `cargo xtask mmd`: two-sample scores of sample files.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use nalgebra::DMatrix;
use simfer_analysis::{
    C2stOptions, C2stResult, Mmd, MmdBandwidth, c2st_with_details, mmd_squared, read_samples_csv,
};

fn read_pair(a: &Path, b: &Path) -> Result<(DMatrix<f64>, DMatrix<f64>)> {
    let a_file = read_samples_csv(a).with_context(|| format!("reading {}", a.display()))?;
    let b_file = read_samples_csv(b).with_context(|| format!("reading {}", b.display()))?;
    ensure!(
        a_file.samples.nrows() == b_file.samples.nrows(),
        "{} has {} columns but {} has {}: the sample files must have the same dimension",
        a.display(),
        a_file.samples.nrows(),
        b.display(),
        b_file.samples.nrows()
    );
    Ok((a_file.samples, b_file.samples))
}

/// The C2ST of the samples in `estimate` against those in `reference` (whose mean and
/// standard deviation z-score both), with the benchmark's classifier and `seed`.
///
/// # Errors
/// Unreadable or malformed files, different dimensions, too few samples, non-finite values.
pub fn c2st_files(reference: &Path, estimate: &Path, seed: u64) -> Result<C2stResult> {
    let (a, b) = read_pair(reference, estimate)?;
    let options = C2stOptions {
        seed,
        ..C2stOptions::default()
    };
    Ok(c2st_with_details(&a, &b, &options)?)
}

/// The unbiased squared MMD of the samples in two files, Gaussian kernel with bandwidth
/// `bandwidth` or the median heuristic.
///
/// # Errors
/// As [`c2st_files`], and a non-positive bandwidth.
pub fn mmd_files(first: &Path, second: &Path, bandwidth: Option<f64>) -> Result<Mmd> {
    let (a, b) = read_pair(first, second)?;
    let bandwidth = bandwidth.map_or(MmdBandwidth::Median, MmdBandwidth::Fixed);
    Ok(mmd_squared(&a, &b, bandwidth)?)
}
