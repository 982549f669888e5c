//! Losses (maximum likelihood, APT atomic) and the trainer for neural posterior estimation.
