//! Highest-density regions of a density (or histogram) tabulated on a grid of equal cells.

use crate::error::{AnalysisError, Result, check_probability};

/// The levels the reference draws as contours: 68 %, 95 % and 99 % highest-density regions.
pub const DEFAULT_HPD_MASSES: [f64; 3] = [0.68, 0.95, 0.99];

fn check_density(values: &[f64]) -> Result<f64> {
    if values.is_empty() {
        return Err(AnalysisError::TooFewSamples {
            what: "density grid".into(),
            expected: 1,
            found: 0,
        });
    }
    if let Some(k) = values.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(crate::error::invalid(
            "density grid value",
            "finite and ≥ 0",
            format!("{} at index {k}", values[k]),
        ));
    }
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return Err(crate::error::invalid(
            "density grid",
            "a positive total mass",
            total,
        ));
    }
    Ok(total)
}

/// Density thresholds of the highest-density regions holding the given masses.
///
/// `density` holds the values of a density (or histogram counts) on cells of equal size, in
/// any order; it need not be normalized. For each mass `m`, the result `t` is the largest
/// value such that the cells with `density ≥ t` hold at least a fraction `m` of the total:
/// the `m`-HPD region is `{density ≥ t}` and its boundary is the contour at `t`.
///
/// # Errors
/// Empty grid, negative or non-finite values, zero total, masses outside `(0, 1]`.
///
/// ```
/// // Four cells; the two densest hold 70 % of the mass.
/// let t = simfer_analysis::hpd_levels(&[0.1, 0.4, 0.3, 0.2], &[0.7]).unwrap();
/// assert_eq!(t, vec![0.3]);
/// ```
pub fn hpd_levels(density: &[f64], masses: &[f64]) -> Result<Vec<f64>> {
    let total = check_density(density)?;
    for &m in masses {
        if m == 1.0 {
            continue;
        }
        check_probability("HPD mass", m, true)?;
    }
    let mut sorted = density.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut cum = Vec::with_capacity(sorted.len());
    let mut acc = 0.0;
    for &v in &sorted {
        acc += v;
        cum.push(acc / total);
    }
    Ok(masses
        .iter()
        .map(|&m| {
            // First index whose cumulative mass reaches m (tolerating rounding at m = 1).
            let k = cum
                .partition_point(|&c| c < m - 1e-12)
                .min(sorted.len() - 1);
            sorted[k]
        })
        .collect())
}

/// For every cell, the fraction of the total mass in the cells strictly denser than it: the
/// mass of the smallest highest-density region that reaches the cell (the reference's
/// `probs2contours`, with ties treated alike). A cell lies in the `m`-HPD region
/// `{density ≥ t}` of [`hpd_levels`] exactly when its value is `< m`, so contours of this
/// map at 0.68/0.95/0.99 are the HPD contours.
///
/// # Errors
/// Empty grid, negative or non-finite values, zero total.
pub fn hpd_mass_map(density: &[f64]) -> Result<Vec<f64>> {
    let total = check_density(density)?;
    let mut idx: Vec<usize> = (0..density.len()).collect();
    idx.sort_by(|&a, &b| density[b].total_cmp(&density[a]));
    let mut out = vec![0.0; density.len()];
    let mut acc = 0.0;
    let mut k = 0;
    while k < idx.len() {
        // A group of tied cells: all get the mass strictly denser than them.
        let v = density[idx[k]];
        let mut j = k;
        while j < idx.len() && density[idx[j]] == v {
            out[idx[j]] = (acc / total).min(1.0);
            j += 1;
        }
        acc += v * (j - k) as f64;
        k = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_map_and_levels_agree() {
        let d = [0.05, 0.4, 0.3, 0.2, 0.05];
        let map = hpd_mass_map(&d).unwrap();
        approx::assert_relative_eq!(map[1], 0.0, epsilon = 1e-12);
        approx::assert_relative_eq!(map[2], 0.4, epsilon = 1e-12);
        approx::assert_relative_eq!(map[3], 0.7, epsilon = 1e-12);
        approx::assert_relative_eq!(map[0], 0.9, epsilon = 1e-12);
        approx::assert_relative_eq!(map[4], 0.9, epsilon = 1e-12);
        let masses = [0.5, 0.9, 0.95, 1.0];
        let t = hpd_levels(&d, &masses).unwrap();
        assert_eq!(t, vec![0.3, 0.2, 0.05, 0.05]);
        for (m, t) in masses.iter().zip(&t) {
            // The region {density ≥ t} holds at least m …
            let inside: f64 = d.iter().filter(|&&v| v >= *t).sum();
            assert!(inside >= *m - 1e-12);
            // … and is exactly the set of cells whose map value is below m.
            for (v, mv) in d.iter().zip(&map) {
                assert_eq!(*v >= *t, *mv < *m - 1e-12, "m = {m}");
            }
        }
    }

    #[test]
    fn bad_input() {
        assert!(hpd_levels(&[], &[0.5]).is_err());
        assert!(hpd_levels(&[1.0, f64::NAN], &[0.5]).is_err());
        assert!(hpd_levels(&[0.0, 0.0], &[0.5]).is_err());
        assert!(hpd_levels(&[1.0, 2.0], &[1.5]).is_err());
        assert!(hpd_levels(&[1.0, 2.0], &[0.0]).is_err());
    }
}
