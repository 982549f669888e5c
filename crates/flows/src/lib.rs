//! Conditional normalizing flows (MADE, MAF) with hand-written backprop on nalgebra, Adam and gradient clipping; usable on its own as a density estimator.
