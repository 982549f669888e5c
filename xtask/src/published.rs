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
    /// NPE with a MAF.
    NpeMaf,
    /// NLE (one round), MAF likelihood, slice-sampling MCMC.
    NleMaf,
    /// SNLE (10 rounds), MAF likelihood.
    SnleMaf,
    /// NRE (one round), residual-net classifier.
    Nre,
    /// SNRE (10 rounds).
    Snre,
}

impl Method {
    /// The column heading of the published table.
    pub fn label(self) -> &'static str {
        match self {
            Method::NpeNsf => "NPE (NSF)",
            Method::SnpeNsf => "SNPE (NSF)",
            Method::SnpeMaf => "SNPE-MAF",
            Method::NpeMaf => "NPE-MAF",
            Method::NleMaf => "NLE-MAF",
            Method::SnleMaf => "SNLE-MAF",
            Method::Nre => "NRE",
            Method::Snre => "SNRE",
        }
    }

    /// The published methods to put beside a method of ours: the one to compare with
    /// first, then others of the same family.
    pub fn for_ours(method: simfer_inference::MethodKind) -> &'static [Method] {
        use simfer_inference::MethodKind as K;
        match method {
            K::Npe => &[Method::NpeNsf, Method::NpeMaf],
            K::Snpe | K::Tsnpe => &[Method::SnpeNsf, Method::SnpeMaf],
            K::Nle => &[Method::NleMaf],
            K::Snle => &[Method::SnleMaf],
            K::Nre => &[Method::Nre],
            K::Snre => &[Method::Snre],
        }
    }
}

/// One row of the other methods' table: NPE-MAF, NLE-MAF, SNLE-MAF, NRE, SNRE, each at
/// 10³ / 10⁴ / 10⁵ (gaussian_mixture's SNLE from the benchmark's rerun).
type OtherRow = (&'static str, [[f64; 3]; 5]);

const OTHERS: [OtherRow; 6] = [
    (
        "two_moons",
        [
            [0.872, 0.814, 0.770],
            [0.773, 0.713, 0.668],
            [0.657, 0.571, 0.582],
            [0.822, 0.761, 0.629],
            [0.651, 0.582, 0.563],
        ],
    ),
    (
        "slcp",
        [
            [0.976, 0.938, 0.869],
            [0.946, 0.771, 0.699],
            [0.921, 0.713, 0.578],
            [0.972, 0.947, 0.919],
            [0.968, 0.917, 0.721],
        ],
    ),
    (
        "gaussian_mixture",
        [
            [0.779, 0.752, 0.711],
            [0.812, 0.731, 0.757],
            [0.706, 0.685, 0.646],
            [0.784, 0.752, 0.734],
            [0.723, 0.662, 0.542],
        ],
    ),
    (
        "bernoulli_glm",
        [
            [0.837, 0.637, 0.555],
            [0.740, 0.605, 0.545],
            [0.634, 0.553, 0.522],
            [0.899, 0.812, 0.751],
            [0.718, 0.584, 0.529],
        ],
    ),
    (
        "sir",
        [
            [0.825, 0.837, 0.665],
            [0.761, 0.748, 0.730],
            [0.745, 0.745, 0.650],
            [0.841, 0.770, 0.690],
            [0.637, 0.646, 0.547],
        ],
    ),
    (
        "lotka_volterra",
        [
            [0.999, 0.989, 0.977],
            [0.994, 0.956, 0.952],
            [0.909, 0.738, 0.695],
            [1.0, 0.998, 0.996],
            [0.971, 0.848, 0.831],
        ],
    ),
];

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
    let other = |k: usize| OTHERS.iter().find(|r| r.0 == task).map(|r| r.1[k][b]);
    let row = || TABLE.iter().find(|r| r.0 == task);
    match method {
        Method::NpeNsf => row().map(|r| r.1[b]),
        Method::SnpeNsf => row().map(|r| r.2[b]),
        Method::SnpeMaf => row().map(|r| r.3[b]),
        Method::NpeMaf => other(0),
        Method::NleMaf => other(1),
        Method::SnleMaf => other(2),
        Method::Nre => other(3),
        Method::Snre => other(4),
    }
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
        // The other methods' table.
        assert_eq!(published("two_moons", Method::SnleMaf, 10_000), Some(0.571));
        assert_eq!(published("slcp", Method::SnleMaf, 10_000), Some(0.713));
        assert_eq!(
            published("gaussian_mixture", Method::SnleMaf, 1000),
            Some(0.706)
        );
        assert_eq!(published("lotka_volterra", Method::Nre, 1000), Some(1.0));
        assert_eq!(published("sir", Method::Snre, 100_000), Some(0.547));
        assert_eq!(published("gaussian_linear", Method::Snre, 1000), None);
        for r in OTHERS {
            assert!(tasks().any(|t| t == r.0), "{}", r.0);
            for v in r.1.iter().flatten() {
                assert!((0.5..=1.0).contains(v), "{r:?}");
            }
        }
    }
}
