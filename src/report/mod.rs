//! Rendering for people: the comparison (terminal, Markdown), the full
//! report and its plots, the calibration, tables.

pub mod calibration;
pub mod findings;
pub mod full;
pub mod plots;
pub mod render;
pub mod table;
mod view;
