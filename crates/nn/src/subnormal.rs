//! Subnormal numbers flushed to zero while a pass runs.
//!
//! On x86-64 CPUs an arithmetic operation with a subnormal operand or result (an `f32`
//! below 1.2·10⁻³⁸ in magnitude) takes a microcode assist of a hundred cycles or more,
//! instead of the fraction of a cycle of a fused multiply-add. Training produces such
//! numbers — tiny gradients of columns that barely move the loss, which the backward
//! products then multiply by every weight — and they made the tutorial's training take
//! 2.3–2.6 times the CPU time it takes with them flushed. [`FlushSubnormals`] sets the
//! thread's MXCSR to flush subnormal results to zero (FTZ) and read subnormal operands as
//! zero (DAZ) until it is dropped, which restores the previous mode. The pass driver
//! holds one for every chunk, on whichever thread runs it, so results stay independent
//! of the number of threads. Numbers that small carry no weight in a gradient step or a
//! log-density; on other architectures the guard does nothing.

/// Flushes subnormal `f32` and `f64` numbers to zero on the current thread while it
/// lives (x86-64; elsewhere it does nothing).
///
/// ```
/// use std::hint::black_box;
/// use simfer_nn::subnormal::FlushSubnormals;
///
/// let tiny = black_box(1e-30f32);
/// {
///     let _flush = FlushSubnormals::new();
///     # #[cfg(target_arch = "x86_64")]
///     assert_eq!(black_box(tiny * black_box(1e-10f32)), 0.0);
/// }
/// assert!(black_box(tiny * black_box(1e-10f32)) > 0.0); // the mode is restored
/// ```
#[must_use = "subnormals are flushed only while the guard lives"]
#[derive(Debug)]
pub struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) flags.
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR register at the address given, a live
    // `u32` here; every x86-64 CPU has SSE.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: `ldmxcsr` loads MXCSR from a live `u32`; the values written differ from
    // the one read only in the FTZ and DAZ flags (valid on every x86-64 CPU), which
    // change only how subnormal numbers are treated.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly));
    }
}

impl FlushSubnormals {
    /// Starts flushing subnormals on this thread.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            if saved & FTZ_DAZ != FTZ_DAZ {
                write_mxcsr(saved | FTZ_DAZ);
            }
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Default for FlushSubnormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if self.saved & FTZ_DAZ != FTZ_DAZ {
            // Only the two modes go back; the exception flags raised meanwhile stay.
            write_mxcsr((read_mxcsr() & !FTZ_DAZ) | (self.saved & FTZ_DAZ));
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    #[test]
    fn subnormal_results_and_operands_are_zero_inside_the_guard_only() {
        let before = read_mxcsr();
        let sub = black_box(f32::MIN_POSITIVE / 8.0);
        assert!(sub > 0.0 && black_box(sub * black_box(2.0)) > 0.0);
        {
            let _flush = FlushSubnormals::new();
            // DAZ: a subnormal operand reads as zero.
            assert_eq!(black_box(sub * black_box(2.0)), 0.0);
            // FTZ: a subnormal result is written as zero (in f64 too).
            assert_eq!(black_box(black_box(1e-30f32) * black_box(1e-10f32)), 0.0);
            assert_eq!(black_box(black_box(1e-300f64) * black_box(1e-10f64)), 0.0);
            // Nested guards leave the mode on until the outer one ends.
            drop(FlushSubnormals::new());
            assert_eq!(black_box(sub * black_box(2.0)), 0.0);
        }
        assert_eq!(read_mxcsr() & FTZ_DAZ, before & FTZ_DAZ);
        assert!(black_box(sub * black_box(2.0)) > 0.0);
    }
}
