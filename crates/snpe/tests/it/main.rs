//! Integration tests of simfer-snpe (one binary).

mod losses;
mod mock;
mod nre;
mod training;
