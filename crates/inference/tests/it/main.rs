//! Integration tests of simfer-inference (one binary).

mod errors;
mod posterior;
mod tutorial;
