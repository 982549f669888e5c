//! Integration tests of simfer-snpe (one binary).

mod losses;
mod mock;
mod non_atomic;
mod nre;
mod training;
