//! Integration tests of simfer-analysis (one test binary, modules per topic).

mod c2st;
mod calibration;
mod common;
mod errors;
mod io;
mod marginals;
mod mmd;
mod plots;
