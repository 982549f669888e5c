//! Per-dimension z-scoring of the modelled variable and of the condition, as the
//! reference library does it (`sbi.utils.sbiutils.standardizing_transform` and
//! `standardizing_net`): the mean and the unbiased standard deviation of the training
//! data, the standard deviation floored at a minimum.

use nalgebra::DMatrix;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::FlowError;

/// Lower bound on the standard deviation used to standardize the modelled variable (as
/// the reference).
pub const INPUT_MIN_STD: f64 = 1e-14;
/// Lower bound on the standard deviation used to standardize the condition (as the
/// reference).
pub const CONDITION_MIN_STD: f64 = 1e-7;

/// Per-dimension mean and standard deviation used to standardize a variable:
/// `z = (v − mean) / std`.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Standardization {
    /// Means (one per dimension).
    pub mean: Vec<f64>,
    /// Standard deviations (one per dimension), already floored.
    pub std: Vec<f64>,
}

impl Standardization {
    /// Mean 0 and standard deviation 1 (no standardization).
    pub fn identity(dim: usize) -> Self {
        Standardization {
            mean: vec![0.0; dim],
            std: vec![1.0; dim],
        }
    }

    /// Per-row mean and unbiased standard deviation (floored at `min_std`) over the
    /// columns of `data` where `valid` is true. At least two valid columns are needed
    /// (the caller checks).
    pub fn from_columns(data: &DMatrix<f64>, valid: &[bool], min_std: f64) -> Self {
        let d = data.nrows();
        let count = valid.iter().filter(|v| **v).count() as f64;
        let mut mean = vec![0.0; d];
        for (j, col) in data.column_iter().enumerate() {
            if valid[j] {
                for (m, v) in mean.iter_mut().zip(col.iter()) {
                    *m += *v;
                }
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut var = vec![0.0; d];
        for (j, col) in data.column_iter().enumerate() {
            if valid[j] {
                for ((s, v), m) in var.iter_mut().zip(col.iter()).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
        }
        let std = var
            .iter()
            .map(|s| (s / (count - 1.0)).sqrt().max(min_std))
            .collect();
        Standardization { mean, std }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `−Σ_i ln std_i`, the log-determinant of the standardization's Jacobian.
    pub fn log_det(&self) -> f64 {
        -self.std.iter().map(|s| s.ln()).sum::<f64>()
    }

    /// Checks the dimension, finiteness and positivity; `what` names it in the error.
    pub fn check(&self, dim: usize, what: &'static str) -> Result<(), FlowError> {
        if self.mean.len() != dim || self.std.len() != dim {
            return Err(FlowError::dims(
                what,
                format!("{dim} means and standard deviations"),
                format!("{} and {}", self.mean.len(), self.std.len()),
            ));
        }
        if self.mean.iter().chain(&self.std).any(|v| !v.is_finite()) {
            return Err(FlowError::NonFinite(what));
        }
        if let Some(s) = self.std.iter().find(|s| **s <= 0.0) {
            return Err(FlowError::InvalidConfig(format!(
                "{what}: standard deviations must be positive, found {s}"
            )));
        }
        Ok(())
    }
}

/// The statistics of an estimator's input and condition, from training data: columns
/// with any non-finite entry in either are left out; a side is only standardized if its
/// flag is set (and the condition only if it has rows). Errors if fewer than two valid
/// columns remain while statistics are needed.
pub fn statistics(
    input: &DMatrix<f64>,
    condition: &DMatrix<f64>,
    standardize_input: bool,
    standardize_condition: bool,
) -> Result<(Standardization, Standardization), FlowError> {
    if condition.nrows() > 0 && condition.ncols() != input.ncols() {
        return Err(FlowError::dims(
            "number of condition columns (one per input column)",
            input.ncols(),
            condition.ncols(),
        ));
    }
    let n = input.ncols();
    let valid: Vec<bool> = (0..n)
        .map(|j| {
            input.column(j).iter().all(|v| v.is_finite())
                && (condition.nrows() == 0 || condition.column(j).iter().all(|v| v.is_finite()))
        })
        .collect();
    let found = valid.iter().filter(|v| **v).count();
    let cond_stats = standardize_condition && condition.nrows() > 0;
    if (standardize_input || cond_stats) && found < 2 {
        return Err(FlowError::InsufficientData {
            needed: 2,
            found,
            total: n,
        });
    }
    let input_stats = if standardize_input {
        Standardization::from_columns(input, &valid, INPUT_MIN_STD)
    } else {
        Standardization::identity(input.nrows())
    };
    let condition_stats = if cond_stats {
        Standardization::from_columns(condition, &valid, CONDITION_MIN_STD)
    } else {
        Standardization::identity(condition.nrows())
    };
    Ok((input_stats, condition_stats))
}
