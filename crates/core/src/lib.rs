//! infergate's pure core: the data a run produces and the judgement made on
//! it, with no I/O.
//!
//! The results and baseline schemas (every type they hold), the suite
//! definitions, the metric catalogue, the statistics, the tolerance rules and
//! the gate with its typed findings live here. Nothing in this crate starts a
//! runtime, speaks HTTP, touches a file or reads the clock: the application
//! crate (`infergate`) reads and writes the files, runs the suite and turns
//! the gate's findings into words and exit codes. Every function here is a
//! function of its arguments, so the whole gate is unit-testable.

pub mod baseline;
pub mod capabilities;
pub mod filter;
pub mod gate;
pub mod history;
pub mod limits;
pub mod metrics;
pub mod results;
pub mod rng;
pub mod stats;
pub mod suite;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod tomldoc;
mod tomlsplit;
