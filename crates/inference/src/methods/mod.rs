//! The inference methods, each a [`Method`](crate::Method) of the sequential runner.

pub mod nle;
pub mod npe;
pub mod nre;
