//! Analysis of posterior samples: marginals, pairplots (data and SVG), C2ST, MMD and calibration (SBC, coverage, TARP).
