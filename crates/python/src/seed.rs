//! Where the seeds come from when the caller gives none: one generator for the module,
//! seeded from the operating system at import, or by `simfer.manual_seed(seed)` (as
//! `torch.manual_seed`), after which every unseeded object and call draws its seed from
//! it in order, so a script that seeds once is reproducible.

use std::sync::Mutex;

use rand::RngCore;
use simfer_distributions::{SeededRng, rng_from_seed};

static SOURCE: Mutex<Option<SeededRng>> = Mutex::new(None);

/// Seeds the module's generator.
pub fn manual_seed(seed: u64) {
    let mut source = SOURCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *source = Some(rng_from_seed(seed));
}

/// `seed`, or the next seed of the module's generator when `None`.
pub fn seed_or_next(seed: Option<u64>) -> u64 {
    if let Some(s) = seed {
        return s;
    }
    let mut source = SOURCE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    source
        .get_or_insert_with(|| rng_from_seed(rand::rng().next_u64()))
        .next_u64()
}
