//! The published C2ST scores (Lueckmann et al., "Benchmarking Simulation-Based Inference",
//! AISTATS 2021; mean over the 10 benchmark observations), as in
//! `shared/spec/benchmark-tasks.md`.

/// The published methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// NPE (one round), neural spline flow.
    NpeNsf,
    /// SNPE (10 rounds, the budget split evenly), neural spline flow.
    SnpeNsf,
    /// SNPE (10 rounds) with a MAF.
    SnpeMaf,
}

impl Method {
    /// The column heading of the published table.
    pub fn label(self) -> &'static str {
        match self {
            Method::NpeNsf => "NPE (NSF)",
            Method::SnpeNsf => "SNPE (NSF)",
            Method::SnpeMaf => "SNPE-MAF",
        }
    }
}

/// The budgets of the published table.
pub const BUDGETS: [usize; 3] = [1_000, 10_000, 100_000];

/// One row: NPE (NSF), SNPE (NSF), SNPE-MAF, each at 10³ / 10⁴ / 10⁵ simulations.
type Row = (&'static str, [f64; 3], [f64; 3], [f64; 3]);

const TABLE: [Row; 10] = [
    (
        "gaussian_linear",
        [0.694, 0.552, 0.506],
        [0.652, 0.544, 0.507],
        [0.663, 0.546, 0.510],
    ),
    (
        "gaussian_linear_uniform",
        [0.696, 0.553, 0.509],
        [0.631, 0.527, 0.507],
        [0.649, 0.539, 0.510],
    ),
    (
        "two_moons",
        [0.725, 0.606, 0.542],
        [0.643, 0.554, 0.530],
        [0.822, 0.754, 0.643],
    ),
    (
        "slcp",
        [0.975, 0.901, 0.831],
        [0.965, 0.845, 0.666],
        [0.972, 0.908, 0.733],
    ),
    (
        "slcp_distractors",
        [0.982, 0.970, 0.863],
        [0.978, 0.931, 0.778],
        [0.979, 0.976, 0.908],
    ),
    (
        "gaussian_mixture",
        [0.716, 0.615, 0.548],
        [0.669, 0.551, 0.536],
        [0.744, 0.722, 0.627],
    ),
    (
        "bernoulli_glm",
        [0.863, 0.678, 0.559],
        [0.855, 0.614, 0.525],
        [0.804, 0.561, 0.515],
    ),
    (
        "bernoulli_glm_raw",
        [0.900, 0.765, 0.607],
        [0.906, 0.658, 0.607],
        [0.935, 0.707, 0.536],
    ),
    (
        "sir",
        [0.815, 0.680, 0.585],
        [0.638, 0.561, 0.575],
        [0.815, 0.621, 0.556],
    ),
    (
        "lotka_volterra",
        [0.999, 0.997, 0.981],
        [0.990, 0.953, 0.928],
        [0.985, 0.890, 0.795],
    ),
];

/// The published C2ST of `method` on `task` at `budget` total simulations, if there is one.
///
/// ```
/// use xtask::published::{Method, published};
/// assert_eq!(published("two_moons", Method::SnpeNsf, 1000), Some(0.643));
/// assert_eq!(published("two_moons", Method::SnpeNsf, 500), None);
/// assert_eq!(published("linear_gaussian", Method::NpeNsf, 1000), None);
/// ```
pub fn published(task: &str, method: Method, budget: usize) -> Option<f64> {
    let b = BUDGETS.iter().position(|&b| b == budget)?;
    let row = TABLE.iter().find(|r| r.0 == task)?;
    Some(match method {
        Method::NpeNsf => row.1[b],
        Method::SnpeNsf => row.2[b],
        Method::SnpeMaf => row.3[b],
    })
}

/// The tasks of the published table, in its order.
pub fn tasks() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_suite_and_scores_are_c2st_values() {
        let names: Vec<&str> = tasks().collect();
        let suite: Vec<&str> = simfer_benchmark::task_names()
            .iter()
            .copied()
            .filter(|n| *n != "linear_gaussian")
            .collect();
        assert_eq!(names, suite);
        for r in TABLE {
            for v in r.1.iter().chain(&r.2).chain(&r.3) {
                assert!((0.5..=1.0).contains(v), "{r:?}");
            }
        }
        // Spot checks against the spec's table (first, middle, last cells).
        assert_eq!(
            published("gaussian_linear", Method::NpeNsf, 1000),
            Some(0.694)
        );
        assert_eq!(
            published("bernoulli_glm_raw", Method::SnpeMaf, 10_000),
            Some(0.707)
        );
        assert_eq!(
            published("lotka_volterra", Method::SnpeMaf, 100_000),
            Some(0.795)
        );
    }
}
