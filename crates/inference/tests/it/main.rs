//! Integration tests of simfer-inference (one binary).

mod errors;
mod non_atomic;
mod posterior;
mod tutorial;
