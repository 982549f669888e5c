//! Integration tests of simfer-nn (one test binary).

mod passes;
