//! The `[prior]` section: one entry per named parameter (or group of parameters), in the
//! order of the file, each a uniform, normal, log-normal or joint Gaussian prior.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use simfer_distributions::PriorSpec;

/// One number, or a list of numbers (a group of parameters).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Numbers(pub Vec<f64>);

impl<'de> Deserialize<'de> for Numbers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Numbers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a list of numbers")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Numbers, E> {
                Ok(Numbers(vec![v]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Numbers, E> {
                Ok(Numbers(vec![v as f64]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Numbers, E> {
                Ok(Numbers(vec![v as f64]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Numbers, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<f64>()? {
                    out.push(v);
                }
                Ok(Numbers(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One entry of `[prior]`, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParamEntry {
    kind: String,
    low: Option<Numbers>,
    high: Option<Numbers>,
    mean: Option<Numbers>,
    std: Option<Numbers>,
    mu: Option<Numbers>,
    sigma: Option<Numbers>,
    covariance: Option<Vec<Vec<f64>>>,
    precision: Option<Vec<Vec<f64>>>,
    names: Option<Vec<String>>,
}

/// The kinds of `[prior]` entries and the keys each takes.
pub(crate) const KINDS: &[(&str, &[&str])] = &[
    ("uniform", &["low", "high"]),
    ("normal", &["mean", "std"]),
    ("lognormal", &["mu", "sigma"]),
    ("gaussian", &["mean", "covariance|precision"]),
];

impl ParamEntry {
    fn given(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        for (key, present) in [
            ("low", self.low.is_some()),
            ("high", self.high.is_some()),
            ("mean", self.mean.is_some()),
            ("std", self.std.is_some()),
            ("mu", self.mu.is_some()),
            ("sigma", self.sigma.is_some()),
            ("covariance", self.covariance.is_some()),
            ("precision", self.precision.is_some()),
        ] {
            if present {
                keys.push(key);
            }
        }
        keys
    }

    /// The prior of this entry and its parameter names (`name` for one parameter,
    /// `name_1, …` or `names` for a group).
    ///
    /// # Errors
    /// A message (for the entry's key) naming what was expected and found.
    pub(crate) fn resolve(&self, name: &str) -> Result<(PriorSpec, Vec<String>), String> {
        let Some((_, takes)) = KINDS.iter().find(|(k, _)| *k == self.kind) else {
            let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "expected `kind` to be one of {}, found {:?}",
                kinds.join(", "),
                self.kind
            ));
        };
        let allowed: Vec<&str> = takes.iter().flat_map(|t| t.split('|')).collect();
        if let Some(bad) = self.given().into_iter().find(|k| !allowed.contains(k)) {
            return Err(format!(
                "a {} prior takes {}, found `{bad}`",
                self.kind,
                takes.join(" and ").replace('|', " or ")
            ));
        }
        let need = |v: &Option<Numbers>, key: &str| {
            v.as_ref()
                .map(|n| n.0.clone())
                .ok_or_else(|| format!("a {} prior needs `{key}`, found none", self.kind))
        };
        let pair = |a: Vec<f64>, an: &str, b: Vec<f64>, bn: &str| {
            if a.len() == b.len() && !a.is_empty() {
                Ok((a, b))
            } else {
                Err(format!(
                    "expected `{an}` and `{bn}` of the same length (1 or more), found {} and {}",
                    a.len(),
                    b.len()
                ))
            }
        };
        let spec = match self.kind.as_str() {
            "uniform" => {
                let (low, high) = pair(
                    need(&self.low, "low")?,
                    "low",
                    need(&self.high, "high")?,
                    "high",
                )?;
                PriorSpec::BoxUniform { low, high }
            }
            "normal" => {
                let (mean, std) = pair(
                    need(&self.mean, "mean")?,
                    "mean",
                    need(&self.std, "std")?,
                    "std",
                )?;
                if let Some(s) = std.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
                    return Err(format!("expected `std` > 0, found {s}"));
                }
                let d = mean.len();
                let covariance = (0..d)
                    .map(|i| {
                        (0..d)
                            .map(|j| if i == j { std[i] * std[i] } else { 0.0 })
                            .collect()
                    })
                    .collect();
                PriorSpec::MultivariateNormal { mean, covariance }
            }
            "lognormal" => {
                let (mu, sigma) = pair(
                    need(&self.mu, "mu")?,
                    "mu",
                    need(&self.sigma, "sigma")?,
                    "sigma",
                )?;
                PriorSpec::LogNormal { mu, sigma }
            }
            _ => {
                let mean = need(&self.mean, "mean")?;
                match (&self.covariance, &self.precision) {
                    (Some(covariance), None) => PriorSpec::MultivariateNormal {
                        mean,
                        covariance: covariance.clone(),
                    },
                    (None, Some(precision)) => PriorSpec::GaussianPrecision {
                        mean,
                        precision: precision.clone(),
                    },
                    _ => {
                        return Err(
                            "a gaussian prior needs exactly one of `covariance` and `precision`"
                                .into(),
                        );
                    }
                }
            }
        };
        let dim = match &spec {
            PriorSpec::BoxUniform { low, .. } => low.len(),
            PriorSpec::LogNormal { mu, .. } => mu.len(),
            PriorSpec::MultivariateNormal { mean, .. }
            | PriorSpec::GaussianPrecision { mean, .. } => mean.len(),
            _ => 0,
        };
        let names = match &self.names {
            Some(names) if names.len() == dim => names.clone(),
            Some(names) => {
                return Err(format!(
                    "expected {dim} `names` (one per dimension), found {}",
                    names.len()
                ));
            }
            None if dim == 1 => vec![name.to_string()],
            None => (1..=dim).map(|i| format!("{name}_{i}")).collect(),
        };
        Ok((spec, names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> ParamEntry {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn entries_resolve_to_priors_and_names() {
        let (spec, names) = entry("kind = 'uniform'\nlow = -1\nhigh = 2.5")
            .resolve("a")
            .unwrap();
        assert_eq!(
            spec,
            PriorSpec::BoxUniform {
                low: vec![-1.0],
                high: vec![2.5]
            }
        );
        assert_eq!(names, ["a"]);
        let (spec, names) = entry("kind = 'normal'\nmean = [0, 1]\nstd = [2, 3]")
            .resolve("b")
            .unwrap();
        assert_eq!(
            spec,
            PriorSpec::MultivariateNormal {
                mean: vec![0.0, 1.0],
                covariance: vec![vec![4.0, 0.0], vec![0.0, 9.0]]
            }
        );
        assert_eq!(names, ["b_1", "b_2"]);
        let (_, names) = entry(
            "kind = 'gaussian'\nmean = [0, 0]\ncovariance = [[1, 0.5], [0.5, 1]]\n\
             names = ['x', 'y']",
        )
        .resolve("g")
        .unwrap();
        assert_eq!(names, ["x", "y"]);
    }

    #[test]
    fn wrong_entries_say_what_was_expected() {
        let e = entry("kind = 'unifrom'").resolve("a").unwrap_err();
        assert!(
            e.contains("one of uniform, normal") && e.contains("\"unifrom\""),
            "{e}"
        );
        let e = entry("kind = 'uniform'\nlow = 0").resolve("a").unwrap_err();
        assert!(e.contains("needs `high`"), "{e}");
        let e = entry("kind = 'uniform'\nlow = 0\nhigh = 1\nstd = 1")
            .resolve("a")
            .unwrap_err();
        assert!(e.contains("takes low and high, found `std`"), "{e}");
        let e = entry("kind = 'normal'\nmean = 0\nstd = -1")
            .resolve("a")
            .unwrap_err();
        assert!(e.contains("`std` > 0"), "{e}");
        let e = entry("kind = 'uniform'\nlow = [0, 0]\nhigh = [1]")
            .resolve("a")
            .unwrap_err();
        assert!(e.contains("found 2 and 1"), "{e}");
    }
}
