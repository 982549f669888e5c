//! Integration tests of simfer-benchmark: one test binary, one module per topic (the
//! modules live in `tests/main/`).

#[path = "main/common.rs"]
mod common;
#[path = "main/gaussian_tasks.rs"]
mod gaussian_tasks;
#[path = "main/glm_and_slcp.rs"]
mod glm_and_slcp;
#[path = "main/mcmc_references.rs"]
mod mcmc_references;
#[path = "main/ode_tasks.rs"]
mod ode_tasks;
#[path = "main/registry.rs"]
mod registry;
#[path = "main/two_moons.rs"]
mod two_moons;
