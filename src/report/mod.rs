//! Rendering results for people. For now: the terminal summary table.

pub mod table;
