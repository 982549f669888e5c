//! Data parallelism behind the `parallel` feature.
//!
//! With the feature (the default) the loops run on rayon's pool; without it they run in
//! order on the calling thread. Every caller in this workspace gives each item its own
//! output and reduces in a fixed order, so the results are the same bits either way and
//! for any number of threads.

/// Calls `f` on every item, in parallel with the `parallel` feature.
///
/// ```
/// let mut out = vec![0usize; 4];
/// let items: Vec<(usize, &mut usize)> = out.iter_mut().enumerate().collect();
/// simfer_nn::par::for_each(items, |(i, o)| *o = i * i);
/// assert_eq!(out, [0, 1, 4, 9]);
/// ```
#[cfg(feature = "parallel")]
pub fn for_each<I: Send, F: Fn(I) + Sync + Send>(items: Vec<I>, f: F) {
    use rayon::prelude::*;
    items.into_par_iter().for_each(f);
}

/// Calls `f` on every item, in order (the crate was built without `parallel`).
#[cfg(not(feature = "parallel"))]
pub fn for_each<I: Send, F: Fn(I) + Sync + Send>(items: Vec<I>, f: F) {
    items.into_iter().for_each(f);
}

/// `f` applied to every item, results in the items' order (in parallel with the
/// `parallel` feature).
///
/// ```
/// let squares = simfer_nn::par::map((0..5).collect(), |i: usize| i * i);
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// ```
#[cfg(feature = "parallel")]
pub fn map<I: Send, O: Send, F: Fn(I) -> O + Sync + Send>(items: Vec<I>, f: F) -> Vec<O> {
    use rayon::prelude::*;
    items.into_par_iter().map(f).collect()
}

/// `f` applied to every item, in order (the crate was built without `parallel`).
#[cfg(not(feature = "parallel"))]
pub fn map<I: Send, O: Send, F: Fn(I) -> O + Sync + Send>(items: Vec<I>, f: F) -> Vec<O> {
    items.into_iter().map(f).collect()
}

/// Splits `data` into consecutive pieces of the given lengths (which must sum to at most
/// `data.len()`); the pieces are disjoint, so they can be filled in parallel.
///
/// # Panics
/// If the lengths sum to more than `data.len()` (a programming error).
pub fn split_lengths<T>(
    mut data: &mut [T],
    lengths: impl IntoIterator<Item = usize>,
) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for len in lengths {
        let (a, b) = data.split_at_mut(len);
        out.push(a);
        data = b;
    }
    out
}
