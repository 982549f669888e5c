//! `report.md`: the suite's results in the layout of the published table (one row per
//! task, ours beside the published NPE / SNPE numbers per budget), where we are worse, the
//! tutorial, the posterior-predictive distances and every run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use simfer_flows::EstimatorKind;
use simfer_inference::MethodKind;

use crate::bench::{Report, RunRecord, TUTORIAL};
use crate::published::{Method, published};

/// A C2ST-like value as in the published table: `.694` (and `1.000`).
pub fn fmt3(v: f64) -> String {
    let s = format!("{v:.3}");
    match s.strip_prefix("0.") {
        Some(rest) => format!(".{rest}"),
        None => s,
    }
}

/// A budget as a power of ten where it is one (`10³`), else the number.
pub fn fmt_budget(b: usize) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut p = 0;
    let mut v = b;
    while v >= 10 && v.is_multiple_of(10) {
        v /= 10;
        p += 1;
    }
    if v == 1 && p > 0 {
        let exp: String = p
            .to_string()
            .chars()
            .map(|c| SUP[(c as u8 - b'0') as usize])
            .collect();
        format!("10{exp}")
    } else {
        b.to_string()
    }
}

/// Mean and unbiased standard deviation (`None` for fewer than 2 values).
pub fn mean_sd(v: &[f64]) -> Option<(f64, Option<f64>)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, sd))
}

fn fmt_mean_sd(v: &[f64]) -> String {
    match mean_sd(v) {
        None => "—".into(),
        Some((m, None)) => fmt3(m),
        Some((m, Some(sd))) => format!("{} ± {}", fmt3(m), fmt3(sd)),
    }
}

fn runs_of<'a>(
    report: &'a Report,
    entry: &'a str,
    budget: usize,
    column: Column,
) -> impl Iterator<Item = &'a RunRecord> {
    report.runs.iter().filter(move |r| {
        r.entry == entry
            && r.budget == budget
            && r.method == column.0
            && r.estimator == column.1
            && (r.rounds > 1) == column.0.is_sequential()
    })
}

/// One of our columns: a method with an estimator.
type Column = (MethodKind, EstimatorKind);

/// Our columns of the report's non-tutorial runs: methods in their canonical order, each
/// with its estimators in order of first appearance.
fn columns(report: &Report) -> Vec<Column> {
    let mut seen: Vec<Column> = Vec::new();
    for r in report.runs.iter().filter(|r| r.entry != TUTORIAL) {
        if !seen.contains(&(r.method, r.estimator)) {
            seen.push((r.method, r.estimator));
        }
    }
    let order = |m: MethodKind| MethodKind::ALL.iter().position(|k| *k == m);
    seen.sort_by_key(|c| order(c.0));
    seen
}

/// A column's label: `SNPE nsf`, or `SNRE` for a method without an estimator.
fn column_label(c: Column) -> String {
    let m = c.0.name().to_uppercase();
    if c.0.uses_estimator() {
        format!("{m} {}", c.1)
    } else {
        m
    }
}

/// Our cell: mean ± sd of the C2ST over the observations, `n/a` without reference samples,
/// `—` when not run; failed runs are counted.
fn ours_cell(report: &Report, entry: &str, budget: usize, column: Column) -> String {
    let runs: Vec<&RunRecord> = runs_of(report, entry, budget, column).collect();
    if runs.is_empty() {
        return "—".into();
    }
    let scores: Vec<f64> = runs.iter().filter_map(|r| r.c2st).collect();
    let failed = runs.iter().filter(|r| r.round_details.is_empty()).count();
    let mut cell = if scores.is_empty() {
        "n/a".to_string()
    } else {
        fmt_mean_sd(&scores)
    };
    if failed > 0 {
        let _ = write!(cell, " ({failed} failed)");
    }
    cell
}

fn seconds_cell(report: &Report, entry: &str, budget: usize, column: Column) -> String {
    let s: Vec<f64> = runs_of(report, entry, budget, column)
        .filter(|r| !r.round_details.is_empty())
        .map(|r| r.seconds.phases.inference)
        .collect();
    mean_sd(&s).map_or("—".into(), |(m, _)| format!("{m:.1}"))
}

fn published_cell(task: &str, method: Method, budget: usize) -> String {
    published(task, method, budget).map_or("—".into(), fmt3)
}

/// The entries of the report in order of first appearance, the tutorial apart.
fn entries(report: &Report) -> Vec<(String, String)> {
    let mut seen = Vec::<(String, String)>::new();
    for r in &report.runs {
        if r.entry != TUTORIAL && !seen.iter().any(|(e, _)| e == &r.entry) {
            seen.push((r.entry.clone(), r.task.clone()));
        }
    }
    seen
}

/// A comparison of our mean with a published number.
struct Comparison {
    entry: String,
    budget: usize,
    ours_label: String,
    ours: Vec<f64>,
    method: Method,
    published: f64,
    other: Option<(Method, f64)>,
}

fn comparisons(report: &Report, budgets: &[usize]) -> Vec<Comparison> {
    let mut out = Vec::new();
    for (entry, task) in entries(report) {
        for &b in budgets {
            for column in columns(report) {
                let published_methods = Method::for_ours(column.0);
                let Some(&method) = published_methods.first() else {
                    continue;
                };
                let ours: Vec<f64> = runs_of(report, &entry, b, column)
                    .filter_map(|r| r.c2st)
                    .collect();
                if let (false, Some(p)) = (ours.is_empty(), published(&task, method, b)) {
                    let other = published_methods
                        .get(1)
                        .and_then(|&m| published(&task, m, b).map(|v| (m, v)));
                    out.push(Comparison {
                        entry: entry.clone(),
                        budget: b,
                        ours_label: column_label(column),
                        ours,
                        method,
                        published: p,
                        other,
                    });
                }
            }
        }
    }
    out
}

/// Renders the report as Markdown.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let s = &report.settings;
    let _ = writeln!(md, "# simfer benchmark: {} suite\n", report.suite);
    let _ = writeln!(
        md,
        "{} observation(s) per task (run seed = observation index); C2ST between {} posterior \
         and {} reference samples (0.5: indistinguishable, 1.0: fully separable), shown as \
         mean ± standard deviation over the observations. Published: Lueckmann et al. 2021 \
         (sbibm), mean over its 10 observations. NPE is 1 round, SNPE 10 rounds with the \
         budget split evenly. Ours: the method and estimator named in each column ({}) with \
         the reference's settings (training passes in {}); published NPE/SNPE used a neural \
         spline flow (NSF), SNPE-MAF and the NLE methods a MAF, NRE a residual-net classifier. \
         Seconds: the inference of one run (simulate + train + sample), mean over the \
         observations, on {} thread(s). The suite took {:.0} s.\n",
        s.observations,
        s.samples,
        s.samples,
        columns(report)
            .iter()
            .map(|c| column_label(*c))
            .collect::<Vec<_>>()
            .join(", "),
        match s.precision {
            simfer_flows::Precision::F32 => "f32",
            simfer_flows::Precision::F64 => "f64",
        },
        s.threads,
        report.seconds_total
    );

    let budgets: Vec<usize> = report
        .runs
        .iter()
        .filter(|r| r.entry != TUTORIAL)
        .map(|r| r.budget)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let table_entries = entries(report);
    if !table_entries.is_empty() {
        let bs = budgets
            .iter()
            .map(|&b| fmt_budget(b))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(md, "## C2ST at {bs} simulations\n");
        let cols = columns(report);
        // Our columns, each method's followed by its published columns (each published
        // column once).
        let mut layout: Vec<Result<Column, Method>> = Vec::new();
        for (k, &c) in cols.iter().enumerate() {
            layout.push(Ok(c));
            let last_of_method = cols.get(k + 1).is_none_or(|n| n.0 != c.0);
            if last_of_method {
                for &m in Method::for_ours(c.0) {
                    if !layout.contains(&Err(m)) {
                        layout.push(Err(m));
                    }
                }
            }
        }
        let mut header = String::from("| task |");
        for item in &layout {
            match item {
                Ok(c) => {
                    let _ = write!(header, " {} {bs} |", column_label(*c));
                }
                Err(m) => {
                    let _ = write!(header, " {} {bs} |", m.label());
                }
            }
        }
        for c in &cols {
            let _ = write!(header, " seconds {} {bs} |", column_label(*c));
        }
        let _ = writeln!(md, "{header}");
        let _ = writeln!(md, "|{}", "---|".repeat(header.matches('|').count() - 1));
        for (entry, task) in &table_entries {
            let join = |f: &dyn Fn(usize) -> String| {
                budgets
                    .iter()
                    .map(|&b| f(b))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            let mut row = format!("| {entry} |");
            for item in &layout {
                let cell = match item {
                    Ok(c) => join(&|b| ours_cell(report, entry, b, *c)),
                    Err(m) => join(&|b| published_cell(task, *m, b)),
                };
                let _ = write!(row, " {cell} |");
            }
            for &c in &cols {
                let _ = write!(row, " {} |", join(&|b| seconds_cell(report, entry, b, c)));
            }
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(
            md,
            "\n`n/a`: no reference samples for this task (see the posterior-predictive \
             distance below); `—`: not run, or no published number.\n"
        );

        let _ = writeln!(md, "## Where we are worse than published\n");
        let cmp = comparisons(report, &budgets);
        let worse: Vec<&Comparison> = cmp
            .iter()
            .filter(|c| mean_sd(&c.ours).is_some_and(|(m, _)| m > c.published))
            .collect();
        let _ = writeln!(
            md,
            "Our mean C2ST against the published mean of the same method and budget (NPE with \
             NPE (NSF), SNPE and TSNPE with SNPE (NSF), NLE with NLE-MAF, SNLE with SNLE-MAF, \
             NRE with NRE, SNRE with SNRE); higher is worse. {} comparison(s), worse in {}.\n",
            cmp.len(),
            worse.len()
        );
        for c in &worse {
            let (m, _) = mean_sd(&c.ours).unwrap_or((f64::NAN, None));
            let mut line = format!(
                "- **{}**, {} simulations, {}: ours {} vs {} {} (+{})",
                c.entry,
                fmt_budget(c.budget),
                c.ours_label,
                fmt_mean_sd(&c.ours),
                c.method.label(),
                fmt3(c.published),
                fmt3(m - c.published)
            );
            if let Some((om, ov)) = c.other {
                let rel = if m > ov {
                    "also worse than"
                } else {
                    "better than"
                };
                let _ = write!(line, "; {rel} {} {}", om.label(), fmt3(ov));
            }
            let _ = writeln!(md, "{line}");
        }
        if worse.is_empty() && !cmp.is_empty() {
            let _ = writeln!(
                md,
                "Nowhere: every mean is at or below its published number."
            );
        }
        let _ = writeln!(md);
    }

    tutorial_section(report, &mut md);
    references_section(report, &mut md);
    predictive_section(report, &mut md);
    runs_section(report, &mut md);
    md
}

fn tutorial_section(report: &Report, md: &mut String) {
    let all: Vec<&RunRecord> = report.runs.iter().filter(|r| r.entry == TUTORIAL).collect();
    let Some(r0) = all.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "## The tutorial\n\nlinear_gaussian (3-D), x_o = 0, {} rounds × {} simulations, seeds \
         1–{} (exact posterior N(−1, 0.1²·I)).\n",
        r0.rounds,
        r0.simulations_per_round,
        all.iter().map(|r| r.observation).max().unwrap_or(0)
    );
    let _ = writeln!(
        md,
        "| method | runs | C2ST | seconds per run | simulate | train | sample |\n\
         |---|---|---|---|---|---|---|"
    );
    let mut kinds: Vec<Column> = Vec::new();
    for r in &all {
        if !kinds.contains(&(r.method, r.estimator)) {
            kinds.push((r.method, r.estimator));
        }
    }
    for e in kinds {
        let runs: Vec<&RunRecord> = all
            .iter()
            .copied()
            .filter(|r| (r.method, r.estimator) == e)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let scores: Vec<f64> = runs.iter().filter_map(|r| r.c2st).collect();
        let ok: Vec<&&RunRecord> = runs
            .iter()
            .filter(|r| !r.round_details.is_empty())
            .collect();
        let avg = |f: &dyn Fn(&RunRecord) -> f64| {
            ok.iter().map(|r| f(r)).sum::<f64>() / ok.len().max(1) as f64
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} | {:.3} | {:.2} | {:.3} |",
            column_label(e),
            runs.len(),
            fmt_mean_sd(&scores),
            avg(&|r| r.seconds.phases.inference),
            avg(&|r| r.seconds.phases.simulate),
            avg(&|r| r.seconds.phases.train),
            avg(&|r| r.seconds.phases.sample),
        );
    }
    let _ = writeln!(md);
}

fn references_section(report: &Report, md: &mut String) {
    let (mut exact, mut mcmc, mut without) = (Vec::new(), Vec::new(), Vec::new());
    for o in &report.observations {
        let list = match o.reference_info.as_ref().map(|i| i.kind.as_str()) {
            Some("mcmc") => &mut mcmc,
            Some(_) => &mut exact,
            None => &mut without,
        };
        if !list.contains(&o.entry) {
            list.push(o.entry.clone());
        }
    }
    let names = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        md,
        "## Reference samples
"
    );
    let _ = writeln!(
        md,
        "Exact samplers: {}.  \nMCMC on the exact likelihood: {}.  \nNone (posterior-predictive \
         distance only): {}.\n",
        names(&exact),
        names(&mcmc),
        names(&without)
    );
    let runs: Vec<_> = report
        .observations
        .iter()
        .filter_map(|o| Some((o, o.reference_info.as_ref()?.mcmc.as_ref()?)))
        .collect();
    if !runs.is_empty() {
        let _ = writeln!(
            md,
            "MCMC references passed their convergence checks (split-R̂ ≤ 1.01, bulk and tail ESS \
             ≥ the number of samples):\n\n| task | obs | chains × iterations (+ warm-up) | \
             acceptance | max R̂ | min ESS | seconds |\n|---|---|---|---|---|---|---|"
        );
        for (o, m) in runs {
            let _ = writeln!(
                md,
                "| {} | {} | {} × {} (+ {}) | {:.3} | {:.4} | {:.0} | {:.1} |",
                o.entry,
                o.index,
                m.chains,
                m.iterations,
                m.warmup,
                m.acceptance_rate,
                m.max_rhat,
                m.min_ess,
                o.seconds_reference
            );
        }
        let _ = writeln!(md);
    }
    let failures: Vec<_> = report
        .observations
        .iter()
        .filter(|o| o.reference_error.is_some())
        .collect();
    for o in &failures {
        let _ = writeln!(
            md,
            "- {} observation {}: the reference sampler failed: {}",
            o.entry,
            o.index,
            o.reference_error.as_deref().unwrap_or_default()
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(md);
    }
}

fn predictive_section(report: &Report, md: &mut String) {
    let no_ref: Vec<&RunRecord> = report
        .runs
        .iter()
        .filter(|r| r.c2st.is_none() && r.predictive.is_some())
        .collect();
    if no_ref.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Posterior-predictive distance (runs without C2ST)\n\n{} posterior samples are \
         simulated; simulations and x_o are scaled per dimension by the standard deviation of \
         as many prior-predictive simulations. Median distance: the median Euclidean distance \
         of the scaled posterior-predictive simulations to x_o; floor: the same for as many \
         simulations at θ_true; MMD²: between those two sets (median-heuristic bandwidth). \
         Smaller is better; mean over the observations.\n",
        report.settings.predictive_samples
    );
    let _ = writeln!(
        md,
        "| task | method | budget | rounds | median distance | floor (θ_true) | MMD² | seconds \
         per run |\n|---|---|---|---|---|---|---|---|"
    );
    let mut keys: Vec<(String, Column, usize, usize)> = Vec::new();
    for r in &no_ref {
        let k = (r.entry.clone(), (r.method, r.estimator), r.budget, r.rounds);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (entry, column, budget, rounds) in keys {
        let rs: Vec<&RunRecord> = no_ref
            .iter()
            .copied()
            .filter(|r| {
                r.entry == entry
                    && (r.method, r.estimator) == column
                    && r.budget == budget
                    && r.rounds == rounds
            })
            .collect();
        let estimator = column_label(column);
        let col = |f: &dyn Fn(&RunRecord) -> Option<f64>| -> String {
            let v: Vec<f64> = rs.iter().filter_map(|r| f(r)).collect();
            match mean_sd(&v) {
                None => "—".into(),
                Some((m, None)) => format!("{m:.3}"),
                Some((m, Some(sd))) => format!("{m:.3} ± {sd:.3}"),
            }
        };
        let _ = writeln!(
            md,
            "| {entry} | {estimator} | {} | {rounds} | {} | {} | {} | {:.1} |",
            fmt_budget(budget),
            col(&|r| r.predictive.as_ref().map(|p| p.median_distance)),
            col(&|r| r.predictive.as_ref().and_then(|p| p.true_median_distance)),
            col(&|r| r.predictive.as_ref().and_then(|p| p.mmd2)),
            rs.iter().map(|r| r.seconds.phases.inference).sum::<f64>() / rs.len() as f64,
        );
    }
    let _ = writeln!(md);
}

fn runs_section(report: &Report, md: &mut String) {
    let _ = writeln!(
        md,
        "## All runs\n\n| task | method | budget | R | obs | C2ST | pred. distance (floor) | \
         epochs per round | acceptance | seconds: simulate + train + sample | C2ST seconds | \
         error |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &report.runs {
        let p = &r.seconds.phases;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} + {:.2} + {:.2} | {:.1} | {} |",
            r.entry,
            column_label((r.method, r.estimator)),
            fmt_budget(r.budget),
            r.rounds,
            r.observation,
            r.c2st.map_or("—".into(), fmt3),
            r.predictive
                .as_ref()
                .map_or("—".into(), |p| match p.true_median_distance {
                    Some(f) => format!("{:.2} ({f:.2})", p.median_distance),
                    None => format!("{:.2}", p.median_distance),
                }),
            r.epochs
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            r.acceptance_rate.map_or("—".into(), |a| format!("{a:.3}")),
            p.simulate,
            p.train,
            p.sample,
            r.seconds.c2st,
            r.error.as_deref().unwrap_or("").replace('|', "\\|"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{BenchSettings, ObservationRecord, RunSeconds};
    use crate::infer::{PhaseSeconds, RoundSummary};
    use simfer_analysis::C2stOptions;

    #[test]
    fn number_formats() {
        assert_eq!(fmt3(0.6941), ".694");
        assert_eq!(fmt3(1.0), "1.000");
        assert_eq!(fmt3(0.0123), ".012");
        assert_eq!(fmt_budget(1000), "10³");
        assert_eq!(fmt_budget(10_000), "10⁴");
        assert_eq!(fmt_budget(10_000_000_000), "10¹⁰");
        assert_eq!(fmt_budget(500), "500");
        assert_eq!(fmt_budget(1), "1");
        assert_eq!(mean_sd(&[]), None);
        assert_eq!(mean_sd(&[2.0]), Some((2.0, None)));
        // 1, 2, 3: mean 2, unbiased sd 1.
        assert_eq!(mean_sd(&[1.0, 2.0, 3.0]), Some((2.0, Some(1.0))));
    }

    fn run(entry: &str, budget: usize, rounds: usize, obs: usize, c2st: Option<f64>) -> RunRecord {
        RunRecord {
            entry: entry.into(),
            task: if entry == TUTORIAL {
                "linear_gaussian"
            } else {
                entry
            }
            .into(),
            method: if rounds > 1 {
                MethodKind::Snpe
            } else {
                MethodKind::Npe
            },
            estimator: EstimatorKind::Maf,
            budget,
            rounds,
            simulations_per_round: budget / rounds,
            observation: obs,
            seed: obs as u64,
            c2st,
            c2st_folds: vec![],
            c2st_epochs: vec![],
            predictive: None,
            epochs: vec![10; rounds],
            acceptance_rate: Some(1.0),
            round_details: vec![
                RoundSummary {
                    round: 0,
                    proposal: "prior".into(),
                    simulations: budget / rounds,
                    invalid_nan: 0,
                    invalid_inf: 0,
                    failed: 0,
                    epochs: 10,
                    best_epoch: 5,
                    best_validation_loss: 1.0,
                    stop_reason: "converged".into(),
                    acceptance_rate: Some(1.0),
                    mcmc: None,
                    seconds_simulate: 0.1,
                    seconds_train: 1.0,
                };
                rounds
            ],
            seconds: RunSeconds {
                phases: PhaseSeconds {
                    simulate: 0.1,
                    train: 1.0,
                    sample: 0.5,
                    inference: 1.6,
                    acceptance: 0.1,
                },
                c2st: 2.0,
                predictive: 0.1,
            },
            error: None,
        }
    }

    fn report(runs: Vec<RunRecord>) -> Report {
        Report {
            suite: "test".into(),
            settings: BenchSettings {
                observations: 2,
                samples: 10_000,
                predictive_samples: 1000,
                max_epochs: None,
                precision: simfer_flows::Precision::F32,
                observation_seed: 2021,
                c2st: C2stOptions::default(),
                threads: 2,
            },
            observations: vec![ObservationRecord {
                entry: "two_moons".into(),
                task: "two_moons".into(),
                index: 1,
                theta_true: Some(vec![0.1, 0.2]),
                x_o: vec![0.0, 0.1],
                attempts: 0,
                reference: true,
                reference_info: Some(crate::reference::ReferenceInfo {
                    kind: "exact".into(),
                    mcmc: None,
                }),
                reference_error: None,
                seconds_reference: 0.0,
            }],
            runs,
            seconds_total: 100.0,
        }
    }

    #[test]
    fn table_has_ours_beside_published_and_lists_where_we_are_worse() {
        let md = markdown(&report(vec![
            run(TUTORIAL, 1000, 2, 1, Some(0.52)),
            run("two_moons", 1000, 1, 1, Some(0.70)),
            run("two_moons", 1000, 1, 2, Some(0.72)),
            run("two_moons", 1000, 10, 1, Some(0.60)),
            run("two_moons", 1000, 10, 2, Some(0.62)),
            run("sir", 1000, 10, 1, None),
        ]));
        // two_moons: NPE .710 ± .014 beside .725; SNPE .610 ± .014 beside .643 and .822.
        let row = md
            .lines()
            .find(|l| l.starts_with("| two_moons |"))
            .unwrap_or_else(|| panic!("no two_moons row in\n{md}"));
        assert_eq!(
            row,
            "| two_moons | .710 ± .014 | .725 | .872 | .610 ± .014 | .643 | .822 | 1.6 | 1.6 |"
        );
        let sir = md.lines().find(|l| l.starts_with("| sir |")).unwrap();
        assert_eq!(
            sir,
            "| sir | — | .815 | .825 | n/a | .638 | .815 | — | 1.6 |"
        );
        assert!(md.contains("## C2ST at 10³ simulations"), "{md}");
        assert!(md.contains("2 comparison(s), worse in 0"), "{md}");
        assert!(md.contains("Nowhere"), "{md}");
        assert!(md.contains("## The tutorial"), "{md}");
        assert!(!md.contains("\n\n\n"), "no double blank lines:\n{md}");
        // Every table row has as many cells as its header.
        for table in md.split("\n\n").filter(|t| t.starts_with('|')) {
            let cells: Vec<usize> = table
                .lines()
                .map(|l| l.matches('|').count() - l.matches("\\|").count())
                .collect();
            assert!(cells.iter().all(|&c| c == cells[0]), "{table}");
        }

        let md = markdown(&report(vec![
            run("two_moons", 1000, 10, 1, Some(0.70)),
            run("two_moons", 1000, 10, 2, Some(0.70)),
        ]));
        assert!(md.contains("1 comparison(s), worse in 1"), "{md}");
        assert!(
            md.contains(
                "- **two_moons**, 10³ simulations, SNPE maf: ours .700 ± .000 vs SNPE (NSF) .643 \
                 (+.057); better than SNPE-MAF .822"
            ),
            "{md}"
        );
    }

    #[test]
    fn failed_runs_are_counted_and_shown() {
        let mut failed = run("gaussian_linear", 1000, 1, 2, None);
        failed.round_details.clear();
        failed.error = Some("sampling | budget spent".into());
        let md = markdown(&report(vec![
            run("gaussian_linear", 1000, 1, 1, Some(0.6)),
            failed,
        ]));
        assert!(
            md.contains("| gaussian_linear | .600 (1 failed) | .694 |"),
            "{md}"
        );
        assert!(md.contains("sampling \\| budget spent"), "{md}");
    }
}
