//! Integration tests of simfer-mcmc: one test binary, one module per topic (the modules
//! live in `tests/main/`). Run them in release: the statistical tests draw 10⁴–10⁵ samples.

#[path = "main/common.rs"]
mod common;
#[path = "main/errors.rs"]
mod errors;
#[path = "main/init.rs"]
mod init;
#[path = "main/mechanics.rs"]
mod mechanics;
#[path = "main/targets.rs"]
mod targets;
