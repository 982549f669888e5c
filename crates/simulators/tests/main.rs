//! Integration tests of simfer-simulators: one test binary, one module per topic (the
//! modules live in `tests/main/`).

#[path = "main/determinism.rs"]
mod determinism;
#[path = "main/external.rs"]
mod external;
#[path = "main/runner.rs"]
mod runner;
