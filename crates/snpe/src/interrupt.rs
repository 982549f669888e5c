//! Cooperative interruption of training.
//!
//! A caller that must be able to stop a long training from outside — a language binding
//! that honours Ctrl-C, a service with a deadline — installs a check for the current
//! thread with [`with_interrupt_check`]. Every [`Trainer::train`](crate::Trainer::train)
//! run on that thread inside it calls the check before each minibatch and, once the check
//! returns `true`, restores the best weights so far and returns
//! [`SnpeError::Interrupted`](crate::SnpeError::Interrupted). With no check installed
//! training is unchanged (the cost is one thread-local look-up per minibatch).
//!
//! ```
//! use simfer_snpe::{interrupt_requested, with_interrupt_check};
//!
//! assert!(!interrupt_requested());
//! let stopped = with_interrupt_check(|| true, interrupt_requested);
//! assert!(stopped);
//! assert!(!interrupt_requested()); // the check is gone once the closure returns
//! ```

use std::cell::RefCell;

type Check = Box<dyn FnMut() -> bool>;

thread_local! {
    static CHECKS: RefCell<Vec<Check>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `check` installed as an interruption check of the current thread, and
/// removes it afterwards (also when `f` panics). Checks nest: training stops when any
/// installed check returns `true`.
pub fn with_interrupt_check<R>(check: impl FnMut() -> bool + 'static, f: impl FnOnce() -> R) -> R {
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            CHECKS.with(|c| {
                if let Ok(mut checks) = c.try_borrow_mut() {
                    checks.pop();
                }
            });
        }
    }
    CHECKS.with(|c| c.borrow_mut().push(Box::new(check)));
    let _remove = Remove;
    f()
}

/// Whether a check installed on this thread asks to stop (`false` when none is
/// installed). A check that is already running (a check that trains) is skipped rather
/// than called again.
pub fn interrupt_requested() -> bool {
    CHECKS.with(|c| match c.try_borrow_mut() {
        // Innermost first: the check of the call running now sees a signal before any
        // other.
        Ok(mut checks) => checks.iter_mut().rev().any(|check| check()),
        Err(_) => false,
    })
}
