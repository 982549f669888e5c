//! Integration tests of simfer-distributions: one test binary, one module per topic
//! (the modules live in `tests/main/`).

#[path = "main/arbitrary.rs"]
mod arbitrary;
#[path = "main/box_uniform.rs"]
mod box_uniform;
#[path = "main/common.rs"]
mod common;
#[path = "main/gradients.rs"]
mod gradients;
#[path = "main/independent.rs"]
mod independent;
#[path = "main/lognormal.rs"]
mod lognormal;
#[path = "main/normal.rs"]
mod normal;
#[path = "main/prior_properties.rs"]
mod prior_properties;
#[path = "main/traits.rs"]
mod traits;
#[path = "main/transform_properties.rs"]
mod transform_properties;
