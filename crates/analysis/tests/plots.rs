//! Pairplot data and every SVG: well-formed XML, one panel per dimension pair.

use std::collections::BTreeSet;

use simfer_analysis::{
    Bins, CalibrationStyle, Coverage, DiagKind, LossRound, LossStyle, Marginal1d, Marginal2d,
    PairplotData, PairplotOptions, PairplotStyle, SbcPlotKind, UpperKind, coverage_svg,
    loss_curves_svg, pairplot_data, pairplot_svg, sbc_from_ranks, write_pairplot_svg,
};

use crate::common::{check_xml, normal, rng};

/// `(row, col)` of every `<g class="panel" …>` start tag.
fn panels(tags: &[String]) -> Vec<(usize, usize)> {
    let attr = |t: &str, name: &str| -> usize {
        let k = t.find(&format!("{name}=\"")).expect("attribute present") + name.len() + 2;
        t[k..].split('"').next().unwrap().parse().unwrap()
    };
    tags.iter()
        .filter(|t| t.starts_with("g ") && t.contains("class=\"panel\""))
        .map(|t| (attr(t, "data-row"), attr(t, "data-col")))
        .collect()
}

#[test]
fn pairplot_svg_parses_and_has_one_panel_per_dimension_pair() {
    let mut r = rng(10);
    let a = normal(3, 2_000, 0.0, 1.0, &mut r);
    let b = normal(3, 1_000, 0.5, 0.7, &mut r);
    let truth = [0.2, -0.1, 0.4];
    for (diag, upper) in [
        (DiagKind::Hist, UpperKind::Hist),
        (DiagKind::Kde, UpperKind::Kde),
        (DiagKind::Hist, UpperKind::Contour),
    ] {
        let opts = PairplotOptions {
            diag,
            upper,
            labels: Some(vec!["μ".into(), "σ <&> τ".into(), "ρ".into()]),
            ..Default::default()
        };
        let data = pairplot_data(
            &[("posterior", &a), ("reference", &b)],
            &[("θ_o", &truth)],
            &opts,
        )
        .unwrap();
        let style = PairplotStyle {
            title: Some("posterior & reference".into()),
            ..Default::default()
        };
        let svg = pairplot_svg(&data, &style).unwrap();
        let tags = check_xml(&svg).unwrap_or_else(|e| panic!("{diag:?}/{upper:?}: {e}"));
        let got: BTreeSet<(usize, usize)> = panels(&tags).into_iter().collect();
        let want: BTreeSet<(usize, usize)> =
            (0..3).flat_map(|r| (r..3).map(move |c| (r, c))).collect();
        assert_eq!(panels(&tags).len(), 6, "{diag:?}/{upper:?}");
        assert_eq!(got, want);
        // Labels (escaped) and legend entries made it in.
        assert!(svg.contains("σ &lt;&amp;&gt; τ"));
        assert!(
            svg.contains(">posterior<") && svg.contains(">reference<") && svg.contains(">θ_o<")
        );
        // Each set is drawn in its own colour (matplotlib C0 and C2).
        assert!(svg.to_lowercase().contains("#1f77b4") && svg.to_lowercase().contains("#2ca02c"));
    }
}

#[test]
fn pairplot_of_one_dimension_and_of_a_subset() {
    let s = normal(4, 500, 0.0, 1.0, &mut rng(11));
    let one = pairplot_data(
        &[("s", &s)],
        &[],
        &PairplotOptions {
            subset: Some(vec![2]),
            ..Default::default()
        },
    )
    .unwrap();
    let svg = pairplot_svg(&one, &PairplotStyle::default()).unwrap();
    assert_eq!(panels(&check_xml(&svg).unwrap()), vec![(0, 0)]);
    let sub = pairplot_data(
        &[("s", &s)],
        &[],
        &PairplotOptions {
            subset: Some(vec![3, 0]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(sub.labels, vec!["θ₄", "θ₁"]);
    assert_eq!(
        panels(&check_xml(&pairplot_svg(&sub, &PairplotStyle::default()).unwrap()).unwrap()).len(),
        3
    );
}

#[test]
fn pairplot_data_is_complete_and_round_trips_through_json() {
    let s = normal(3, 1_000, 1.0, 2.0, &mut rng(12));
    let opts = PairplotOptions {
        limits: Some(vec![[-8.0, 10.0]]),
        diag_bins: Bins::Count(30),
        upper: UpperKind::Contour,
        kde_points: 40,
        ..Default::default()
    };
    let data = pairplot_data(&[("s", &s)], &[("p", &[0.0, 1.0, 2.0])], &opts).unwrap();
    assert_eq!(data.limits, vec![[-8.0, 10.0]; 3]);
    let set = &data.sets[0];
    assert_eq!(set.diag.len(), 3);
    assert_eq!(set.upper.len(), 3);
    for d in &set.diag {
        let Marginal1d::Hist(h) = d else {
            panic!("histogram expected")
        };
        assert_eq!(h.counts.len(), 30);
        assert_eq!(h.total() + h.outside, 1_000);
    }
    for p in &set.upper {
        let Marginal2d::Contour {
            kde,
            masses,
            levels,
        } = &p.marginal
        else {
            panic!("contour expected")
        };
        assert_eq!((kde.x.len(), kde.y.len()), (40, 40));
        assert_eq!(masses, &vec![0.68, 0.95, 0.99]);
        // Larger regions have lower thresholds.
        assert!(levels[0] > levels[1] && levels[1] > levels[2]);
    }
    let back = PairplotData::from_json(&data.to_json().unwrap()).unwrap();
    assert_eq!(back.dims, data.dims);
    assert_eq!(back.labels, data.labels);
    // serde_json's default float parser can be 1 ulp off; counts are exact.
    for (b, d) in back.sets[0].diag.iter().zip(&data.sets[0].diag) {
        let (Marginal1d::Hist(b), Marginal1d::Hist(d)) = (b, d) else {
            panic!("histograms expected")
        };
        assert_eq!(b.counts, d.counts);
        for (x, y) in b.edges.iter().zip(&d.edges) {
            approx::assert_relative_eq!(x, y, max_relative = 1e-15);
        }
    }
    assert_eq!(back.sets[0].upper.len(), 3);
    let dir = std::env::temp_dir().join(format!("simfer-analysis-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pairplot.svg");
    write_pairplot_svg(&path, &data, &PairplotStyle::default()).unwrap();
    check_xml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    data.write_json(dir.join("pairplot.json")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loss_curves_have_one_panel_per_round() {
    let train: Vec<Vec<f64>> = (0..4)
        .map(|r| {
            (0..30 + r)
                .map(|e| 3.0 / (1.0 + e as f64) - r as f64)
                .collect()
        })
        .collect();
    let mut val: Vec<Vec<f64>> = train
        .iter()
        .map(|t| t.iter().map(|v| v + 0.2).collect())
        .collect();
    val[2][5] = f64::NAN; // a diverged epoch leaves a gap, not an error
    let rounds: Vec<LossRound<'_>> = train
        .iter()
        .zip(&val)
        .map(|(t, v)| LossRound {
            train: t,
            val: v,
            best_epoch: Some(t.len() - 3),
        })
        .collect();
    let svg = loss_curves_svg(&rounds, &LossStyle::default()).unwrap();
    let tags = check_xml(&svg).unwrap();
    assert_eq!(panels(&tags).len(), 4);
    assert!(svg.contains("round 4"));
    // Epochs count from 1 (as simfer-snpe's history): the last epoch and 0 (the initial
    // weights kept) are valid best epochs, one past the last is not.
    let n = train[0].len();
    for (best, ok) in [(0, true), (n, true), (n + 1, false)] {
        let r = [LossRound {
            train: &train[0],
            val: &val[0],
            best_epoch: Some(best),
        }];
        assert_eq!(
            loss_curves_svg(&r, &LossStyle::default()).is_ok(),
            ok,
            "best epoch {best}"
        );
    }
    // A single epoch still plots.
    let one = [LossRound {
        train: &[1.0],
        val: &[],
        best_epoch: Some(1),
    }];
    check_xml(&loss_curves_svg(&one, &LossStyle::default()).unwrap()).unwrap();
}

#[test]
fn calibration_plots_parse() {
    let mut r = rng(13);
    let n = 200;
    let ranks: Vec<Vec<usize>> = (0..3)
        .map(|_| {
            (0..n)
                .map(|_| rand::Rng::random_range(&mut r, 0..=100))
                .collect()
        })
        .collect();
    let sbc = sbc_from_ranks(ranks, 100, nalgebra::DMatrix::zeros(3, n)).unwrap();
    let style = CalibrationStyle::default();
    let hist = sbc_rank_svg_checked(&sbc, SbcPlotKind::Histogram { bins: None }, &style);
    assert_eq!(panels(&hist).len(), 3);
    let cdf = sbc_rank_svg_checked(&sbc, SbcPlotKind::Cdf, &style);
    assert_eq!(panels(&cdf).len(), 1);
    let levels: Vec<f64> = (0..=20).map(|k| k as f64 / 20.0).collect();
    let mut curves = sbc.marginal_coverage(&levels).unwrap();
    curves.push(Coverage {
        name: "joint".into(),
        levels: levels.clone(),
        empirical: levels.clone(),
        n,
    });
    check_xml(&coverage_svg(&curves, &style).unwrap()).unwrap();
}

fn sbc_rank_svg_checked(
    sbc: &simfer_analysis::Sbc,
    kind: SbcPlotKind,
    style: &CalibrationStyle,
) -> Vec<String> {
    check_xml(&simfer_analysis::sbc_rank_svg(sbc, kind, style).unwrap()).unwrap()
}
