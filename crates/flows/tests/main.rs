//! Integration tests of simfer-flows (one test binary).

mod common;
mod conformance;
mod density;
mod gradients;
mod integrity;
mod invertibility;
mod io;
mod mdn;
mod nsf;
mod precision;
mod repeated_condition;
mod training;
