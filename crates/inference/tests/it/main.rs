//! Integration tests of simfer-inference (one binary).

mod errors;
mod mcmc;
mod posterior;
mod tutorial;
