//! Rendering results for people. For now: the terminal summary table.

pub mod full;
pub mod plots;
pub mod render;
pub mod table;
mod view;
