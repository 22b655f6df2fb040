//! infergate: a merge gate for LLM-serving performance.
//!
//! Data flows one way: config and suite, then the runner (client, server),
//! then [`results::Results`]; later stages read only that file. This crate
//! is the application: the command line, the runner, the server lifecycle,
//! telemetry, the reports and GitHub, and the only place where outcomes
//! become exit codes ([`exit`]). The judgement itself (schemas, statistics,
//! rules, the gate) is the pure `infergate-core` crate, re-exported here
//! under the same module names; the simulator is `infergate-sim`. The
//! book under `docs/` documents the commands.

pub mod app;
pub mod baseline;
pub mod ci;
pub mod cli;
pub mod client;
pub mod config;
pub mod exit;
pub mod export;
pub mod fsutil;
pub mod github;
pub mod history;
pub mod http;
pub mod input;
pub mod json;
pub mod progress;
pub mod report;
pub mod results;
pub mod runner;
pub mod server;
pub mod suite;
pub mod telemetry;
pub mod text;

pub use infergate_core::{capabilities, gate, limits, rng, stats, tomldoc};
pub use infergate_sim as sim;
