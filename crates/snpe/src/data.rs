//! Training data and its random train/validation split.

use nalgebra::DMatrix;
use rand::RngCore;
use simfer_distributions::Prior;

use crate::SnpeError;

/// Pooled training data, one sample per column, with what the losses need per sample.
#[derive(Debug, Clone)]
pub struct TrainingData {
    theta: DMatrix<f64>,
    x: DMatrix<f64>,
    prior_log_prob: Vec<f64>,
    from_prior: Vec<bool>,
}

impl TrainingData {
    /// Bundles θ (`theta_dim × n`), x (`x_dim × n`), log p(θ_i) under the true prior and
    /// whether each sample was simulated from the prior.
    ///
    /// Every value of θ and x must be finite: invalid simulations are filtered (and
    /// reported) before training.
    pub fn new(
        theta: DMatrix<f64>,
        x: DMatrix<f64>,
        prior_log_prob: Vec<f64>,
        from_prior: Vec<bool>,
    ) -> Result<Self, SnpeError> {
        let n = theta.ncols();
        for (what, found) in [
            ("number of x samples (columns)", x.ncols()),
            ("number of prior log-probs", prior_log_prob.len()),
            ("number of prior flags", from_prior.len()),
        ] {
            if found != n {
                return Err(SnpeError::DimensionMismatch {
                    what: format!("{what}, to match the number of θ samples"),
                    expected: n,
                    found,
                });
            }
        }
        if n == 0 {
            return Err(SnpeError::NotEnoughData {
                found: 0,
                needed: 2,
                reason: "training needs data".into(),
            });
        }
        if theta.nrows() == 0 {
            return Err(SnpeError::DimensionMismatch {
                what: "dimension of θ".into(),
                expected: 1,
                found: 0,
            });
        }
        for (what, m) in [("θ", &theta), ("x", &x)] {
            for (j, col) in m.column_iter().enumerate() {
                if col.iter().any(|v| !v.is_finite()) {
                    return Err(SnpeError::NonFiniteData { what, row: j });
                }
            }
        }
        Ok(Self {
            theta,
            x,
            prior_log_prob,
            from_prior,
        })
    }

    /// Like [`new`](Self::new), computing log p(θ_i) with `prior`.
    pub fn with_prior(
        theta: DMatrix<f64>,
        x: DMatrix<f64>,
        prior: &dyn Prior,
        from_prior: Vec<bool>,
    ) -> Result<Self, SnpeError> {
        let lp = prior.log_prob_batch(&theta)?;
        Self::new(theta, x, lp.as_slice().to_vec(), from_prior)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.theta.ncols()
    }

    /// Whether there are no samples (never true for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// θ, `theta_dim × n`.
    pub fn theta(&self) -> &DMatrix<f64> {
        &self.theta
    }

    /// x, `x_dim × n`.
    pub fn x(&self) -> &DMatrix<f64> {
        &self.x
    }

    /// log p(θ_i) under the true prior.
    pub fn prior_log_prob(&self) -> &[f64] {
        &self.prior_log_prob
    }

    /// Whether each sample was simulated from the prior.
    pub fn from_prior(&self) -> &[bool] {
        &self.from_prior
    }

    /// θ and x of the given samples, gathered into new matrices (e.g. the training split,
    /// from which an estimator's standardization statistics are computed).
    pub fn gather(&self, indices: &[usize]) -> (DMatrix<f64>, DMatrix<f64>) {
        let mut theta = DMatrix::zeros(self.theta.nrows(), indices.len());
        let mut x = DMatrix::zeros(self.x.nrows(), indices.len());
        for (j, &i) in indices.iter().enumerate() {
            theta.column_mut(j).copy_from(&self.theta.column(i));
            x.column_mut(j).copy_from(&self.x.column(i));
        }
        (theta, x)
    }
}

/// A random split of sample indices into training and validation sets (spec §4.1):
/// `n_train = ⌊(1 − validation_fraction)·n⌋`, the rest validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSplit {
    /// Indices of the training samples.
    pub train: Vec<usize>,
    /// Indices of the validation samples.
    pub validation: Vec<usize>,
}

impl DataSplit {
    /// The fewest rows `n` for which [`random`](Self::random) with `validation_fraction`
    /// leaves at least `per_part` rows in the training set and in the validation set;
    /// `None` for a fraction outside (0, 1) or `per_part` = 0.
    pub fn min_rows(validation_fraction: f64, per_part: usize) -> Option<usize> {
        if !(validation_fraction > 0.0 && validation_fraction < 1.0) || per_part == 0 {
            return None;
        }
        let p = per_part as f64;
        // Both parts grow with n; start a little below where each reaches `per_part`.
        let start = ((p - 1.0) / validation_fraction)
            .max(p / (1.0 - validation_fraction))
            .floor() as usize;
        let mut n = start.saturating_sub(2).max(2 * per_part);
        loop {
            let n_train = ((1.0 - validation_fraction) * n as f64) as usize;
            if n_train >= per_part && n - n_train >= per_part {
                return Some(n);
            }
            n = n.checked_add(1)?;
        }
    }

    /// A fresh random split of `0..n`.
    pub fn random(
        n: usize,
        validation_fraction: f64,
        rng: &mut dyn RngCore,
    ) -> Result<Self, SnpeError> {
        if !(validation_fraction > 0.0 && validation_fraction < 1.0) {
            return Err(SnpeError::InvalidConfig {
                name: "validation_fraction",
                message: format!("expected a number in (0, 1), found {validation_fraction}"),
            });
        }
        let n_train = ((1.0 - validation_fraction) * n as f64) as usize;
        if n_train == 0 || n_train == n {
            return Err(SnpeError::NotEnoughData {
                found: n,
                needed: Self::min_rows(validation_fraction, 1).unwrap_or(2),
                reason: format!(
                    "a validation fraction of {validation_fraction} must leave at least one \
                     training and one validation sample"
                ),
            });
        }
        let mut perm: Vec<usize> = (0..n).collect();
        shuffle(&mut perm, rng);
        let validation = perm.split_off(n_train);
        Ok(Self {
            train: perm,
            validation,
        })
    }
}

pub(crate) use simfer_flows::nn::shuffle;

#[cfg(test)]
mod tests {
    use super::DataSplit;

    /// Whether a split of `n` rows leaves at least `p` in each part.
    fn splits(n: usize, fraction: f64, p: usize) -> bool {
        let n_train = ((1.0 - fraction) * n as f64) as usize;
        n_train >= p && n - n_train >= p
    }

    #[test]
    fn min_rows_is_the_fewest_rows_that_split() {
        for fraction in [0.01, 0.05, 0.1, 0.2, 0.25, 1.0 / 3.0, 0.5, 0.75, 0.9, 0.99] {
            for p in 1..=12 {
                let n = DataSplit::min_rows(fraction, p).unwrap();
                assert!(splits(n, fraction, p), "{fraction} {p}: {n}");
                assert!(
                    (0..n).all(|m| !splits(m, fraction, p)),
                    "{fraction} {p}: fewer than {n} split"
                );
            }
        }
        assert_eq!(DataSplit::min_rows(0.1, 1), Some(2));
        assert_eq!(DataSplit::min_rows(0.1, 2), Some(11));
        assert_eq!(DataSplit::min_rows(0.0, 1), None);
        assert_eq!(DataSplit::min_rows(0.1, 0), None);
    }
}
