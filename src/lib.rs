//! # simfer: simulation-based inference in Rust
//!
//! Given a prior p(θ), a stochastic simulator x ~ p(x | θ) and an observation x_o,
//! simfer estimates the posterior p(θ | x_o) with neural posterior estimation, in one
//! round or in several rounds that focus on x_o (SNPE-C / APT).
//!
//! This crate is a facade: it re-exports the workspace's crates under short names.

pub use simfer_analysis as analysis;
pub use simfer_distributions as distributions;
pub use simfer_flows as flows;
pub use simfer_inference as inference;
pub use simfer_simulators as simulators;
pub use simfer_snpe as snpe;

/// The most used items, for `use simfer::prelude::*`.
pub mod prelude {}
