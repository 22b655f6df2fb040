//! Rendering results for people. For now: the terminal summary table.

pub mod render;
pub mod table;
