//! Integration tests of simfer-cli, through the `simfer` binary: one test binary, one module
//! per topic (the modules live in `tests/main/`).

#[path = "main/bad_inputs.rs"]
mod bad_inputs;
#[path = "main/commands.rs"]
mod commands;
#[path = "main/common.rs"]
mod common;
#[path = "main/config.rs"]
mod config;
#[path = "main/durable.rs"]
mod durable;
#[path = "main/external.rs"]
mod external;
#[path = "main/shards.rs"]
mod shards;
