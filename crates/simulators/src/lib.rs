//! Simulators for simulation-based inference: the Simulator trait, a seeded parallel runner and the standard benchmark tasks.
