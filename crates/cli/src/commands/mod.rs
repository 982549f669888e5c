//! The commands of `simfer`, as functions: each returns what it did, and the binary prints
//! it.

pub mod run;
pub mod sample;
pub mod shard;
