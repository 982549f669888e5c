//! Choosing the estimator at run time: [`EstimatorKind`] (a name), [`EstimatorConfig`]
//! (a kind with its settings, e.g. from a flag or a config file) and [`Estimator`] (a
//! built estimator of any kind of this crate, which saves and loads self-describing).

use std::any::Any;
use std::fmt;
use std::str::FromStr;

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::RngCore;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::{Gradients, Parameterized, Precision, Workspace};

use crate::estimator::ConditionalDensityEstimator;
use crate::nsf::{Nsf, NsfConfig};
use crate::{FlowError, Maf, MafConfig};
use crate::{Mdn, MdnConfig};

/// The settings of one kind of estimator: what [`EstimatorConfig`] holds for it.
pub trait EstimatorSettings: Clone + fmt::Debug + PartialEq + Default + Send + Sync {
    /// The estimator built.
    type Model: ConditionalDensityEstimator + Clone;
    /// Builds an estimator of `input` (`D × n`) given `condition` (`C × n`; `0 × n` when
    /// unconditional), with standardization statistics from these data and weights from
    /// `seed`.
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Self::Model, FlowError>;
    /// The precision of the training passes.
    fn precision(&self) -> Precision;
    /// Sets the precision of the training passes.
    fn set_precision(&mut self, precision: Precision);
}

impl EstimatorSettings for MafConfig {
    type Model = Maf;
    fn build(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Maf, FlowError> {
        Maf::new(self, input, condition, seed)
    }
    fn precision(&self) -> Precision {
        self.precision
    }
    fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }
}

/// Generates the three run-time types from one list of the kinds of this crate.
macro_rules! kinds {
    ($d:tt $($variant:ident($model:ident, $settings:ident, $name:literal, $doc:literal)),* $(,)?) => {
        /// The kinds of estimator this crate builds, by name (`"maf"`, …).
        ///
        /// ```
        /// use simfer_flows::EstimatorKind;
        /// let kind: EstimatorKind = "maf".parse()?;
        /// assert_eq!(kind.to_string(), "maf");
        /// assert!("made-up".parse::<EstimatorKind>().is_err());
        /// # Ok::<(), simfer_flows::FlowError>(())
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(rename_all = "lowercase"))]
        pub enum EstimatorKind {
            $(#[doc = $doc] $variant,)*
        }

        impl EstimatorKind {
            /// Every kind, in a fixed order.
            pub const ALL: &'static [EstimatorKind] = &[$(EstimatorKind::$variant),*];

            /// The kind's name, as in files and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $(EstimatorKind::$variant => $name,)*
                }
            }

            /// The reference library's default settings of this kind.
            pub fn default_config(self) -> EstimatorConfig {
                match self {
                    $(EstimatorKind::$variant => EstimatorConfig::$variant($settings::default()),)*
                }
            }
        }

        /// A kind of estimator with its settings; [`build`](Self::build) makes an
        /// [`Estimator`]. In files it is the settings with a `kind` field, e.g.
        /// `{"kind": "maf", "hidden_features": 50, …}`.
        #[derive(Clone, Debug, PartialEq)]
        #[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(tag = "kind", rename_all = "lowercase"))]
        pub enum EstimatorConfig {
            $(#[doc = $doc] $variant($settings),)*
        }

        impl EstimatorConfig {
            /// The kind.
            pub fn kind(&self) -> EstimatorKind {
                match self {
                    $(EstimatorConfig::$variant(_) => EstimatorKind::$variant,)*
                }
            }

            /// Builds the estimator (see [`EstimatorSettings::build`]).
            pub fn build(
                &self,
                input: &DMatrix<f64>,
                condition: &DMatrix<f64>,
                seed: u64,
            ) -> Result<Estimator, FlowError> {
                Ok(match self {
                    $(EstimatorConfig::$variant(s) => Estimator::$variant(s.build(input, condition, seed)?),)*
                })
            }

            /// The precision of the training passes.
            pub fn precision(&self) -> Precision {
                match self {
                    $(EstimatorConfig::$variant(s) => s.precision(),)*
                }
            }

            /// Sets the precision of the training passes.
            pub fn set_precision(&mut self, precision: Precision) {
                match self {
                    $(EstimatorConfig::$variant(s) => s.set_precision(precision),)*
                }
            }
        }

        $(
            impl From<$settings> for EstimatorConfig {
                fn from(s: $settings) -> Self {
                    EstimatorConfig::$variant(s)
                }
            }

            impl From<$model> for Estimator {
                fn from(m: $model) -> Self {
                    Estimator::$variant(m)
                }
            }
        )*

        /// An estimator of any kind of this crate, chosen at run time; it implements
        /// [`ConditionalDensityEstimator`] by delegation and saves and loads in the
        /// self-describing format of [`io`](crate::io).
        #[derive(Clone, Debug)]
        pub enum Estimator {
            $(#[doc = $doc] $variant($model),)*
        }

        /// `$body` with `$m` bound to the estimator inside, whatever its kind.
        macro_rules! each {
            ($d e:expr, $d m:ident => $d body:expr) => {
                match $d e {
                    $(Estimator::$variant($d m) => $d body,)*
                }
            };
        }

        impl Estimator {
            /// The kind.
            pub fn estimator_kind(&self) -> EstimatorKind {
                match self {
                    $(Estimator::$variant(_) => EstimatorKind::$variant,)*
                }
            }
        }

        #[cfg(feature = "serde")]
        impl Estimator {
            /// The binary encoding (see [`io`](crate::io)).
            pub fn to_bytes(&self) -> Result<Vec<u8>, FlowError> {
                match self {
                    $(Estimator::$variant(m) => crate::io::to_bytes(m),)*
                }
            }

            /// An estimator of any kind from its binary encoding.
            pub fn from_bytes(bytes: &[u8]) -> Result<Estimator, FlowError> {
                let (kind, version, body) = crate::io::read_header(bytes)?;
                match kind.as_str() {
                    $($name => {
                        crate::io::check_version::<$model>(version)?;
                        Ok(Estimator::$variant(crate::io::decode_binary::<$model>(bytes, version, body)?))
                    })*
                    _ => Err(unknown_kind(&kind)),
                }
            }

            /// The JSON encoding.
            pub fn to_json(&self) -> Result<String, FlowError> {
                match self {
                    $(Estimator::$variant(m) => crate::io::to_json(m),)*
                }
            }

            /// An estimator of any kind from its JSON encoding.
            pub fn from_json(json: &str) -> Result<Estimator, FlowError> {
                Estimator::from_json_parts(crate::io::read_json(json)?)
            }

            fn from_json_parts(parts: crate::io::JsonParts) -> Result<Estimator, FlowError> {
                match parts.kind.as_str() {
                    $($name => Ok(Estimator::$variant(crate::io::model_from_json_parts(parts)?)),)*
                    _ => Err(unknown_kind(&parts.kind)),
                }
            }
        }
    };
}

// The leading `$` lets the generated `each!` macro have metavariables of its own.
kinds! {
    $
    Maf(Maf, MafConfig, "maf", "The masked autoregressive flow ([`Maf`], the reference's default)."),
    Mdn(Mdn, MdnConfig, "mdn", "The mixture density network ([`Mdn`], full-covariance Gaussian components)."),
    Nsf(Nsf, NsfConfig, "nsf", "The neural spline flow ([`Nsf`]: rational-quadratic spline couplings)."),
}

fn unknown_kind(found: &str) -> FlowError {
    let names: Vec<String> = EstimatorKind::ALL
        .iter()
        .map(|k| format!("`{}`", k.name()))
        .collect();
    FlowError::UnknownKind {
        expected: format!("one of {}", names.join(", ")),
        found: found.into(),
    }
}

impl fmt::Display for EstimatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EstimatorKind {
    type Err = FlowError;
    fn from_str(s: &str) -> Result<Self, FlowError> {
        let lower = s.trim().to_ascii_lowercase();
        EstimatorKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == lower)
            .ok_or_else(|| unknown_kind(s))
    }
}

impl Estimator {
    /// The estimator inside as an `M` (e.g. [`Maf`]), if it is one.
    pub fn downcast_ref<M: 'static>(&self) -> Option<&M> {
        self.as_any().downcast_ref::<M>()
    }
}

impl Default for EstimatorConfig {
    /// The reference library's default: a MAF.
    fn default() -> Self {
        EstimatorConfig::Maf(MafConfig::default())
    }
}

#[cfg(feature = "serde")]
impl Estimator {
    /// Saves the estimator to a file in the binary format.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), FlowError> {
        let path = path.as_ref();
        crate::io::write_file(path, &self.to_bytes()?)
    }

    /// Loads an estimator of any kind saved with [`save`](Self::save); a changed or
    /// corrupted file is a [`FlowError::Corrupted`] naming it.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Estimator, FlowError> {
        let path = path.as_ref();
        let bytes = crate::io::read_file(path)?;
        Estimator::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }
}

/// In a serde document (e.g. a posterior file) an estimator is its JSON envelope
/// `{"format", "kind", "version", "checksum", "model"}`, checksummed as in
/// [`io`](crate::io). Reading needs a self-describing format (JSON and the like); for
/// compact binary files use [`Estimator::to_bytes`]. A bare MAF model (the estimator field
/// of earlier posterior files) reads as a MAF.
#[cfg(feature = "serde")]
impl Serialize for Estimator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        each!(self, m => crate::io::json_envelope(m))
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de> Deserialize<'de> for Estimator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let legacy_maf = value.get("format").is_none() && value.get("config").is_some();
        let parts = if legacy_maf {
            Ok(crate::io::JsonParts {
                kind: "maf".to_owned(),
                version: 2,
                recorded: None,
                computed: String::new(),
                model: value,
            })
        } else {
            crate::io::read_json_value(&mut value)
        };
        parts
            .and_then(Estimator::from_json_parts)
            .map_err(D::Error::custom)
    }
}

impl Parameterized for Estimator {
    fn num_params(&self) -> usize {
        each!(self, m => m.num_params())
    }
    fn params(&self) -> &[f64] {
        each!(self, m => m.params())
    }
    fn params_mut(&mut self) -> &mut [f64] {
        each!(self, m => m.params_mut())
    }
}

impl ConditionalDensityEstimator for Estimator {
    fn kind(&self) -> &'static str {
        each!(self, m => m.kind())
    }
    fn input_dim(&self) -> usize {
        each!(self, m => m.input_dim())
    }
    fn condition_dim(&self) -> usize {
        each!(self, m => m.condition_dim())
    }
    fn forward(
        &self,
        ws: &mut Workspace,
        input: DMatrixView<'_, f64>,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        each!(self, m => m.forward(ws, input, condition, out))
    }
    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        each!(self, m => m.backward(ws, weights, grads))
    }
    fn log_prob(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        each!(self, m => m.log_prob(input, condition))
    }
    fn log_prob_grad_input(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        each!(self, m => m.log_prob_grad_input(input, condition))
    }
    fn log_prob_grad_condition(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        each!(self, m => m.log_prob_grad_condition(input, condition))
    }
    fn sample(
        &self,
        n: usize,
        condition: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        each!(self, m => m.sample(n, condition, rng))
    }
    /// The estimator inside (a [`Maf`], …), not the enum.
    fn as_any(&self) -> &dyn Any {
        each!(self, m => m.as_any())
    }
    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator> {
        Box::new(self.clone())
    }
}
