//! infergate: a merge gate for LLM-serving performance.
//!
//! Data flows one way: config and suite, then the runner (client, server),
//! then [`results::Results`]; later stages read only that file. See the
//! book under `docs/` for the commands and DESIGN notes for the architecture.

pub mod app;
pub mod baseline;
pub mod ci;
pub mod cli;
pub mod client;
pub mod config;
pub mod exit;
pub mod fsutil;
pub mod gate;
pub mod github;
pub mod http;
pub mod input;
pub mod json;
pub mod limits;
pub mod progress;
pub mod report;
pub mod results;
pub mod rng;
pub mod runner;
pub mod server;
pub mod sim;
pub mod stats;
pub mod suite;
pub mod telemetry;
pub mod text;
mod tomlsplit;
