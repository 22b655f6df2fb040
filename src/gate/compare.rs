//! Comparison of results with a baseline.
