//! Integration tests of simfer-nn (one test binary).

mod gemm;
mod passes;
