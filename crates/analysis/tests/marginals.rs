//! Histograms, KDE and highest-density levels against exact values.

use approx::assert_relative_eq;
use nalgebra::DMatrix;
use simfer_analysis::{
    Bins, GaussianKde, default_limits, histogram_1d, histogram_2d, hpd_levels, hpd_mass_map,
    kde_1d, kde_2d, quantile, summarize,
};

use crate::common::{normal, rng};

#[test]
fn histogram_counts_sum_to_n() {
    let s = normal(2, 10_000, 0.0, 1.0, &mut rng(1));
    let lim = default_limits(&[&s], &[]).unwrap();
    let x: Vec<f64> = s.row(0).iter().copied().collect();
    let y: Vec<f64> = s.row(1).iter().copied().collect();
    for bins in [
        Bins::FreedmanDiaconis,
        Bins::Count(37),
        Bins::Edges(vec![-10.0, -1.0, 0.0, 3.0, 10.0]),
    ] {
        let lim0 = if let Bins::Edges(_) = bins {
            [-10.0, 10.0]
        } else {
            lim[0]
        };
        let h = histogram_1d(&x, lim0, &bins).unwrap();
        assert_eq!(h.total(), 10_000, "{bins:?}");
        assert_eq!(h.outside, 0);
        assert_eq!(h.edges.len(), h.counts.len() + 1);
    }
    // Narrower limits: what is not binned is counted as outside.
    let h = histogram_1d(&x, [-1.0, 1.0], &Bins::Count(10)).unwrap();
    assert_eq!(h.total() + h.outside, 10_000);
    assert!(h.outside > 2_000 && h.outside < 4_000);
    let h2 = histogram_2d(&x, &y, lim[0], lim[1], (50, 50)).unwrap();
    assert_eq!(h2.total(), 10_000);
    assert_eq!(h2.counts.len(), 50);
    assert_eq!(h2.counts[0].len(), 50);
    // Rows are y: the column sums are the x histogram with the same edges.
    let hx = histogram_1d(&x, lim[0], &Bins::Edges(h2.x_edges.clone())).unwrap();
    for ix in 0..50 {
        let col: u64 = h2.counts.iter().map(|r| r[ix]).sum();
        assert_eq!(col, hx.counts[ix]);
    }
    // A density integrates to 1 over the bins when nothing is outside.
    let hd = histogram_1d(&x, lim[0], &Bins::FreedmanDiaconis).unwrap();
    let integral: f64 = hd
        .density()
        .iter()
        .zip(hd.edges.windows(2))
        .map(|(d, w)| d * (w[1] - w[0]))
        .sum();
    assert_relative_eq!(integral, 1.0, epsilon = 1e-12);
}

#[test]
fn freedman_diaconis_width_is_two_iqr_over_cube_root_n() {
    let s = normal(1, 8_000, 3.0, 2.0, &mut rng(2));
    let x: Vec<f64> = s.row(0).iter().copied().collect();
    let iqr = quantile(&x, 0.75).unwrap() - quantile(&x, 0.25).unwrap();
    let h = histogram_1d(&x, [-10.0, 16.0], &Bins::FreedmanDiaconis).unwrap();
    let w = 2.0 * iqr / 8_000f64.cbrt();
    assert_relative_eq!(h.edges[1] - h.edges[0], w, max_relative = 1e-9);
    assert_eq!(h.edges[0], -10.0);
    assert!(*h.edges.last().unwrap() >= 16.0);
    assert!(*h.edges.last().unwrap() < 16.0 + w + 1e-9);
}

#[test]
fn summaries_match_exact_moments_and_quantiles() {
    let s = normal(2, 20_000, 1.0, 0.5, &mut rng(3));
    let sum = summarize(&s, &[0.025, 0.5, 0.975]).unwrap();
    for m in &sum {
        // Monte Carlo error of the mean: 0.5/√20000 ≈ 0.0035.
        assert!((m.mean - 1.0).abs() < 0.015);
        assert!((m.std - 0.5).abs() < 0.015);
        assert!((m.quantiles[1].1 - 1.0).abs() < 0.02);
        assert!((m.quantiles[0].1 - (1.0 - 0.5 * 1.959_964)).abs() < 0.03);
        assert!((m.quantiles[2].1 - (1.0 + 0.5 * 1.959_964)).abs() < 0.03);
    }
}

fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(a, b)| 0.5 * (a[1] - a[0]) * (b[0] + b[1]))
        .sum()
}

#[test]
fn kde_integrates_to_one() {
    // A bimodal sample: the KDE integral does not care about the shape.
    let mut r = rng(4);
    let mut s = normal(2, 3_000, 0.0, 1.0, &mut r);
    for j in 0..1_000 {
        s[(0, j)] += 4.0;
        s[(1, j)] = 0.3 * s[(1, j)] - 2.0 + 0.5 * s[(0, j)];
    }
    let x: Vec<f64> = s.row(0).iter().copied().collect();
    let y: Vec<f64> = s.row(1).iter().copied().collect();
    let g = kde_1d(&x, [-10.0, 15.0], 2_001).unwrap();
    assert_relative_eq!(trapezoid(&g.x, &g.density), 1.0, epsilon = 1e-6);
    let g2 = kde_2d(&x, &y, [-8.0, 13.0], [-10.0, 10.0], 201).unwrap();
    let rows: Vec<f64> = g2.density.iter().map(|row| trapezoid(&g2.x, row)).collect();
    // 2-D trapezoid on a 0.1 grid with kernels of std ≈ 0.3: error well below 1e-3.
    assert_relative_eq!(trapezoid(&g2.y, &rows), 1.0, epsilon = 1e-3);
}

#[test]
fn kde_bandwidth_is_scotts_rule_on_the_unbiased_covariance() {
    let s = normal(2, 1_000, 0.0, 1.0, &mut rng(5));
    let kde = GaussianKde::new(&s).unwrap();
    let f = 1_000f64.powf(-1.0 / 6.0);
    assert_relative_eq!(kde.factor(), f, max_relative = 1e-14);
    let mean = s.column_mean();
    let c = s.clone().add_scalar(0.0) - &mean * nalgebra::RowDVector::from_element(1_000, 1.0);
    let cov = &c * c.transpose() / 999.0;
    assert_relative_eq!(
        *kde.kernel_covariance(),
        cov * (f * f),
        max_relative = 1e-10
    );
    // density_batch agrees with density.
    let pts = DMatrix::from_row_slice(2, 3, &[0.0, 1.0, -2.0, 0.5, 0.0, 1.0]);
    let batch = kde.density_batch(&pts).unwrap();
    for (j, b) in batch.iter().enumerate() {
        let p = [pts[(0, j)], pts[(1, j)]];
        assert_relative_eq!(*b, kde.density(&p).unwrap(), max_relative = 1e-12);
    }
}

#[test]
fn hpd_levels_of_a_standard_normal_match_the_analytic_radii() {
    let masses = [0.68, 0.95, 0.99];
    // 2-D: the m-HPD region of N(0, I) is the disc of radius √(−2 ln(1 − m)), its density
    // threshold (1 − m)/(2π).
    let g: Vec<f64> = (0..801).map(|k| -6.0 + 0.015 * k as f64).collect();
    let dens: Vec<f64> = g
        .iter()
        .flat_map(|&y| {
            g.iter()
                .map(move |&x| (-(x * x + y * y) / 2.0).exp() / (2.0 * std::f64::consts::PI))
        })
        .collect();
    let t = hpd_levels(&dens, &masses).unwrap();
    for (m, t) in masses.iter().zip(&t) {
        let r = (-2.0 * (2.0 * std::f64::consts::PI * t).ln()).sqrt();
        let want = (-2.0 * (1.0f64 - m).ln()).sqrt();
        // Grid cells of 0.015: the discretized region boundary is within a cell or so.
        assert_relative_eq!(r, want, max_relative = 5e-3);
    }
    // 1-D: the interval ±z with z the (1 + m)/2 quantile: 0.9945, 1.9600, 2.5758.
    let x: Vec<f64> = (0..20_001).map(|k| -8.0 + 0.0008 * k as f64).collect();
    let d1: Vec<f64> = x
        .iter()
        .map(|v| (-v * v / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt())
        .collect();
    let t1 = hpd_levels(&d1, &masses).unwrap();
    for (z, t) in [0.994_458, 1.959_964, 2.575_829].iter().zip(&t1) {
        let half = (-2.0 * ((2.0 * std::f64::consts::PI).sqrt() * t).ln()).sqrt();
        assert_relative_eq!(half, *z, max_relative = 1e-3);
    }
    // The mass map marks exactly the cells of {density ≥ t} as inside (the symmetric grid
    // has many exact ties: they must be treated alike).
    let map = hpd_mass_map(&dens).unwrap();
    for (m, t) in masses.iter().zip(&t) {
        let inside_map = map.iter().filter(|&&v| v < *m).count();
        let inside_t = dens.iter().filter(|&&v| v >= *t).count();
        assert_eq!(inside_map, inside_t);
    }
}

#[test]
fn hpd_regions_of_a_kde_hold_their_mass_of_samples() {
    let s = normal(2, 20_000, 0.0, 1.0, &mut rng(6));
    let x: Vec<f64> = s.row(0).iter().copied().collect();
    let y: Vec<f64> = s.row(1).iter().copied().collect();
    let g = kde_2d(&x, &y, [-6.0, 6.0], [-6.0, 6.0], 121).unwrap();
    let flat: Vec<f64> = g.density.iter().flatten().copied().collect();
    let masses = [0.68, 0.95, 0.99];
    let t = hpd_levels(&flat, &masses).unwrap();
    let kde = GaussianKde::new(&s).unwrap();
    let dens = kde
        .density_batch(&s.columns(0, 4_000).into_owned())
        .unwrap();
    for (m, t) in masses.iter().zip(&t) {
        let frac = dens.iter().filter(|&&d| d >= *t).count() as f64 / dens.len() as f64;
        // The KDE is the sample's law smoothed (variance × 1.037 here), so its regions are a
        // little wider: +1.3 % of mass at 68 %; plus sampling error ≈ 0.7 %.
        assert!(
            (frac - m).abs() < 0.025,
            "mass {m}: fraction of samples inside {frac}"
        );
        // And the region's radius matches the analytic one for N(0, (1 + h²)·I).
        let h2 = kde.factor() * kde.factor();
        let r = (-2.0 * (1.0 + h2) * (2.0 * std::f64::consts::PI * (1.0 + h2) * t).ln()).sqrt();
        let want = (-2.0 * (1.0 + h2) * (1.0f64 - m).ln()).sqrt();
        assert_relative_eq!(r, want, max_relative = 0.03);
    }
}
