//! The random streams of a run, in one place: every generator of a [`Sequential`]
//! run is `derive_rng(seed, STREAM + counter)` for one of these stream numbers, so one seed
//! reproduces the whole run whatever the number of threads, and no two uses share a
//! stream. The counters are the proposals drawn, the round, or the `train` calls so far.
//!
//! (The `xtask` runner derives its own streams from 2⁴⁰ up.)
//!
//! [`Sequential`]: crate::Sequential

/// Proposals: `+ proposals drawn so far` (the prior's draws, or the posterior's samples;
/// for TSNPE its first `u64` seeds the truncation: the posterior samples behind the
/// threshold and the estimate of the region's prior mass).
pub const PROPOSE: u64 = 1 << 32;
/// Simulations of round `r`: `+ r`; one `u64` from it seeds the simulation runner.
pub const SIMULATE: u64 = 2 << 32;
/// Training: `+ train calls so far`; the split, the minibatches and the atoms.
pub const TRAIN: u64 = 3 << 32;
/// Building a network: `+ train calls so far`; one `u64` from it seeds the weights.
pub const BUILD: u64 = 4 << 32;
/// Posteriors: `+ train calls so far`; one `u64` from it seeds the posterior's own
/// randomness (its acceptance-rate estimates, its MCMC runs).
pub const POSTERIOR: u64 = 5 << 32;

/// The seed of round `round`'s simulations in a run with seed `seed` (simulation `i` of the
/// round draws from `derive_rng(simulation_seed(seed, round), i)`), for simulating part of
/// a round in another process with the streams it has in the run
/// ([`Sequential::simulation_seed`](crate::Sequential::simulation_seed) is this).
pub fn simulation_seed(seed: u64, round: usize) -> u64 {
    use rand::RngCore;
    simfer_distributions::derive_rng(seed, SIMULATE + round as u64).next_u64()
}
