//! Running simfer's work from Python: with the interpreter's lock released, interruptible
//! by Ctrl-C, and with no panic crossing into Python.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use simfer_snpe::with_interrupt_check;

use crate::error::{PyError, Result};

/// How often training looks for Ctrl-C (it takes the interpreter's lock for a moment).
const SIGNAL_INTERVAL: Duration = Duration::from_millis(50);

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs `f`, turning a panic into [`PyError::Panic`].
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(PyError::Panic(panic_message(&*p))))
}

/// Runs `f` with the interpreter's lock released, so other Python threads run meanwhile.
///
/// Training inside `f` stops between minibatches once Python's signal handlers raise
/// (Ctrl-C raises `KeyboardInterrupt`): every 50 ms it takes the lock for a moment to run
/// them (`Python::check_signals`, effective on the main thread, where Python handles
/// signals). The exception a handler raised is returned, also when `f` finished anyway.
/// A panic becomes [`PyError::Panic`].
pub fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let raised: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&raised);
    let outcome = py.detach(move || {
        let mut last = Instant::now();
        let check = move || {
            if last.elapsed() < SIGNAL_INTERVAL {
                return false;
            }
            last = Instant::now();
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(e);
                    }
                    true
                }
            })
        };
        catch_unwind(AssertUnwindSafe(|| with_interrupt_check(check, f)))
    });
    let raised = raised.lock().ok().and_then(|mut s| s.take());
    match (outcome, raised) {
        (_, Some(e)) => Err(PyError::Python(e)),
        (Ok(result), None) => result,
        (Err(p), None) => Err(PyError::Panic(panic_message(&*p))),
    }
}
