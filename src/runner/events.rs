//! What a run tells its listeners: progress events, in order, for the
//! terminal and for tests. The runner emits them and never prints; the
//! progress display never reaches into the runner.

use crate::results::{PhaseName, PhaseSummary, ServerInfo};

/// Progress of a run, for display.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The server answered; `total_requests` recorded requests will be sent.
    Started {
        /// Server facts.
        server: Box<ServerInfo>,
        /// Number of cases.
        cases: usize,
        /// Recorded requests in the whole run.
        total_requests: u64,
    },
    /// Prompts are being sized for a case.
    Sizing {
        /// Case id.
        case: String,
    },
    /// A case begins.
    CaseStarted {
        /// 1-based position.
        index: usize,
        /// Number of cases.
        total: usize,
        /// Case id.
        case: String,
    },
    /// One recorded request finished.
    RequestDone {
        /// Whether it succeeded.
        ok: bool,
    },
    /// A phase of a case finished.
    PhaseDone {
        /// Case id.
        case: String,
        /// Phase.
        phase: PhaseName,
        /// Its summary.
        summary: Box<PhaseSummary>,
    },
    /// Something the user should know.
    Warning(String),
}

/// Receives progress events.
pub trait Reporter {
    /// Called for each event, in order.
    fn event(&mut self, event: &RunEvent);
}

/// A reporter that ignores everything.
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: &RunEvent) {}
}
