//! Times the pairplot of 10,000 samples in 10 dimensions (data and SVG), for each kind of
//! upper panel, and writes the SVGs.
//!
//! `cargo run -p simfer-analysis --release --example pairplot_10d [OUT_DIR]`

use std::time::Instant;

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_analysis::{
    DiagKind, PairplotOptions, PairplotStyle, UpperKind, pairplot_data, pairplot_svg,
};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let s = DMatrix::from_fn(10, 10_000, |_, _| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z
    });
    for (name, diag, upper) in [
        ("hist", DiagKind::Hist, UpperKind::Hist),
        ("kde", DiagKind::Kde, UpperKind::Kde),
        ("contour", DiagKind::Kde, UpperKind::Contour),
    ] {
        let opts = PairplotOptions {
            diag,
            upper,
            ..Default::default()
        };
        let t = Instant::now();
        let data = pairplot_data(&[("samples", &s)], &[("origin", &[0.0; 10])], &opts)?;
        let t_data = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let svg = pairplot_svg(&data, &PairplotStyle::default())?;
        let t_svg = t.elapsed().as_secs_f64();
        std::fs::write(dir.join(format!("pairplot_10d_{name}.svg")), &svg)?;
        println!(
            "{name:8} data {t_data:.2} s, svg {t_svg:.2} s, {:.1} MB",
            svg.len() as f64 / 1e6
        );
    }
    Ok(())
}
