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

use std::cell::{Cell, RefCell};
use std::rc::Rc;

type Check = Rc<RefCell<dyn FnMut() -> bool>>;

thread_local! {
    /// The installed checks, outermost first, each with the number that removes it.
    /// Borrowed only for a moment (never while a check runs), so that installing and
    /// removing always succeed, whatever a check does.
    static CHECKS: RefCell<Vec<(u64, Check)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` with `check` installed as an interruption check of the current thread, and
/// removes it afterwards (also when `f` panics). Checks nest: training stops when any
/// installed check returns `true`. A check is removed by its own number, so a check can
/// never outlive its call, in whatever order nested calls end.
pub fn with_interrupt_check<R>(check: impl FnMut() -> bool + 'static, f: impl FnOnce() -> R) -> R {
    struct Remove(u64);
    impl Drop for Remove {
        fn drop(&mut self) {
            // `try_with`: the thread's storage may already be gone when a thread exits.
            let _ = CHECKS.try_with(|c| c.borrow_mut().retain(|(id, _)| *id != self.0));
        }
    }
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    let check: Check = Rc::new(RefCell::new(check));
    CHECKS.with(|c| c.borrow_mut().push((id, check)));
    let _remove = Remove(id);
    f()
}

/// Whether a check installed on this thread asks to stop (`false` when none is
/// installed). The innermost check is asked first, so the check of the call running now
/// sees a signal before any other. A check that is already running (a check that trains)
/// is skipped rather than called again.
pub fn interrupt_requested() -> bool {
    // A snapshot, so that no borrow is held while the checks run: a check may itself
    // install or remove checks.
    let checks: Vec<Check> =
        CHECKS.with(|c| c.borrow().iter().map(|(_, k)| Rc::clone(k)).collect());
    checks
        .iter()
        .rev()
        .any(|check| check.try_borrow_mut().is_ok_and(|mut check| check()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed() -> usize {
        CHECKS.with(|c| c.borrow().len())
    }

    #[test]
    fn nested_checks_are_asked_innermost_first_and_removed_with_their_call() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let (outer, inner) = (Rc::clone(&order), Rc::clone(&order));
        with_interrupt_check(
            move || {
                outer.borrow_mut().push("outer");
                false
            },
            || {
                with_interrupt_check(
                    move || {
                        inner.borrow_mut().push("inner");
                        false
                    },
                    || assert!(!interrupt_requested()),
                );
                assert_eq!(installed(), 1);
            },
        );
        assert_eq!(*order.borrow(), ["inner", "outer"]);
        assert_eq!(installed(), 0);
    }

    #[test]
    fn a_check_that_installs_and_removes_a_check_while_it_runs_leaves_none_behind() {
        // A call that ends while the checks are being asked: were a borrow held while
        // the checks run, its check could be neither installed nor removed.
        let stop = with_interrupt_check(
            || with_interrupt_check(|| true, interrupt_requested),
            interrupt_requested,
        );
        // The inner check said stop (the outer, running, was skipped inside).
        assert!(stop);
        assert_eq!(installed(), 0);
        assert!(!interrupt_requested());
    }

    #[test]
    fn a_check_that_asks_for_the_checks_is_not_called_again() {
        let calls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&calls);
        let stop = with_interrupt_check(
            move || {
                counted.set(counted.get() + 1);
                interrupt_requested()
            },
            interrupt_requested,
        );
        assert!(!stop);
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_panicking_call_removes_its_check() {
        let caught = std::panic::catch_unwind(|| with_interrupt_check(|| true, || panic!("x")));
        assert!(caught.is_err());
        assert_eq!(installed(), 0);
        assert!(!interrupt_requested());
    }
}
