//! Priors for simulation-based inference: box-uniform, Gaussian, log-normal and independent products, with support checks and seeded batch sampling.
