//! infergate: a merge gate for LLM-serving performance.

pub mod rng;
pub mod sim;
