//! Rendering results for people: the comparison's reports (terminal,
//! Markdown), the full report with its plots, in English or Korean.

pub mod calibration;
pub mod dashboard;
pub mod escape;
pub mod findings;
pub mod format;
pub mod full;
mod layout;
pub mod plots;
pub mod render;
pub mod table;
mod view;
pub mod words;

pub use words::Lang;
