//! Writes every plot this crate draws, for a look: a pairplot (two sample sets and a point),
//! a contour pairplot, loss curves, SBC rank plots, coverage and TARP.
//!
//! `cargo run -p simfer-analysis --release --example plots [OUT_DIR]` (default: the
//! system's temporary directory)

use nalgebra::DMatrix;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_analysis::{
    CalibrationStyle, LossRound, LossStyle, PairplotOptions, PairplotStyle, SbcPlotKind,
    TarpOptions, UpperKind, pairplot_data, run_sbc, run_tarp, write_coverage_svg,
    write_loss_curves_svg, write_pairplot_svg, write_sbc_rank_svg, write_tarp_svg,
};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut gauss = |d: usize, n: usize, mean: &[f64], std: f64| {
        DMatrix::from_fn(d, n, |i, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            mean[i] + std * z
        })
    };
    // A correlated posterior and a reference.
    let mut post = gauss(3, 10_000, &[-1.0, -1.0, -1.0], 0.1);
    for j in 0..post.ncols() {
        post[(1, j)] += 0.8 * (post[(0, j)] + 1.0);
    }
    let reference = gauss(3, 10_000, &[-1.0, -0.98, -1.02], 0.12);
    let truth = [-1.0, -1.0, -1.0];
    let labels = Some(vec!["θ₁".to_string(), "θ₂".into(), "θ₃".into()]);
    let data = pairplot_data(
        &[("posterior", &post), ("reference", &reference)],
        &[("true θ", &truth)],
        &PairplotOptions {
            labels: labels.clone(),
            ..Default::default()
        },
    )?;
    write_pairplot_svg(dir.join("pairplot.svg"), &data, &PairplotStyle::default())?;
    let contour = pairplot_data(
        &[("posterior", &post), ("reference", &reference)],
        &[("true θ", &truth)],
        &PairplotOptions {
            labels,
            upper: UpperKind::Contour,
            diag: simfer_analysis::DiagKind::Kde,
            ..Default::default()
        },
    )?;
    write_pairplot_svg(
        dir.join("pairplot_contour.svg"),
        &contour,
        &PairplotStyle::default(),
    )?;
    data.write_json(dir.join("pairplot.json"))?;

    let train: Vec<Vec<f64>> = (0..3)
        .map(|r| {
            (0..40 + 10 * r)
                .map(|e| 2.0 / (1.0 + 0.2 * e as f64) - r as f64)
                .collect()
        })
        .collect();
    let val: Vec<Vec<f64>> = train
        .iter()
        .map(|t| {
            t.iter()
                .enumerate()
                .map(|(e, v)| v + 0.1 + 0.002 * e as f64)
                .collect()
        })
        .collect();
    let rounds: Vec<LossRound<'_>> = train
        .iter()
        .zip(&val)
        .map(|(t, v)| LossRound {
            train: t,
            val: v,
            best_epoch: Some(t.len() - 21),
        })
        .collect();
    write_loss_curves_svg(dir.join("loss.svg"), &rounds, &LossStyle::default())?;

    // gaussian_linear in 2-D with a slightly too narrow posterior.
    let thetas = gauss(2, 500, &[0.0, 0.0], 0.1f64.sqrt());
    let xs = &thetas + gauss(2, 500, &[0.0, 0.0], 0.1f64.sqrt());
    let posterior = |x: &[f64], n: usize, rng: &mut dyn RngCore| {
        Ok::<_, std::convert::Infallible>(DMatrix::from_fn(2, n, |i, _| {
            let z: f64 = StandardNormal.sample(rng);
            x[i] / 2.0 + 0.8 * 0.05f64.sqrt() * z
        }))
    };
    let mut rng2 = Xoshiro256PlusPlus::seed_from_u64(8);
    let sbc = run_sbc(&thetas, &xs, 200, posterior, &mut rng2)?;
    let style = CalibrationStyle::default();
    write_sbc_rank_svg(
        dir.join("sbc_hist.svg"),
        &sbc,
        SbcPlotKind::Histogram { bins: None },
        &style,
    )?;
    write_sbc_rank_svg(dir.join("sbc_cdf.svg"), &sbc, SbcPlotKind::Cdf, &style)?;
    let levels: Vec<f64> = (0..=20).map(|k| k as f64 / 20.0).collect();
    write_coverage_svg(
        dir.join("coverage.svg"),
        &sbc.marginal_coverage(&levels)?,
        &style,
    )?;
    let tarp = run_tarp(
        &thetas,
        &xs,
        200,
        &TarpOptions::default(),
        posterior,
        &mut rng2,
    )?;
    write_tarp_svg(dir.join("tarp.svg"), &tarp, &style)?;
    println!("wrote the plots to {}", dir.display());
    Ok(())
}
